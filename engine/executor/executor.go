package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
)

// Env is what every executor of a run shares.
type Env struct {
	Pool *Pool
	// Samples receives dropped_iterations samples; SamplesCtx bounds the
	// sends (it ends when nobody reads Samples any more).
	Samples    chan<- metrics.Samples
	SamplesCtx context.Context
	Builtin    *metrics.Builtin
	// RunTags are the run-wide tags (options.tags / --tag).
	RunTags *metrics.TagSet
	Logger  *slog.Logger
	Stats   *Stats
	// MinIterationDuration makes a complete iteration last at least this
	// long (the VU sleeps the remainder).
	MinIterationDuration time.Duration
	// VUTagEnabled adds the vu tag to dropped_iterations of per-VU loops.
	VUTagEnabled bool
	// ScenarioTagEnabled adds scenario=<name> to the samples' tags.
	ScenarioTagEnabled bool
	// Abort stops the whole run with err (exec.test.abort(), a fatal
	// error in a VU). The first call wins.
	Abort func(err error)
	// Placement locates the instance in a segmented test so that
	// exec.scenario.iterationInTest is unique across instances (see
	// numbering); nil when the instance runs the whole test.
	Placement *options.Placement
}

// Executor runs one scenario.
type Executor interface {
	// Scenario returns the scenario's configuration.
	Scenario() *options.Scenario
	// Run runs the scenario from now until its end (duration plus
	// gracefulStop at most), or until ctx is done. It returns after every
	// VU it activated went back to the pool.
	Run(ctx context.Context) error
	// Progress returns the scenario's progress (0..1) and a short status,
	// e.g. "3/10 VUs" or "7/20 shared iters".
	Progress() (float64, string)
	// State is what k6/execution's `scenario` reports.
	State() *lib.ScenarioState
}

// New returns the executor of a validated scenario.
func New(sc *options.Scenario, env *Env) (Executor, error) {
	num, err := newNumbering(sc, env.Placement)
	if err != nil {
		return nil, err
	}
	b := newBase(sc, env)
	b.num = num
	var ex Executor
	switch sc.Executor {
	case options.SharedIterations:
		ex = &sharedIterations{base: b}
	case options.PerVUIterations:
		ex = &perVUIterations{base: b}
	case options.ConstantVUs:
		ex = &constantVUs{base: b}
	case options.RampingVUs:
		ex = newRampingVUs(b)
	case options.ConstantArrivalRate:
		ex = newArrivalRate(b, constantStarts(sc))
	case options.RampingArrivalRate:
		ex = newArrivalRate(b, rampingStarts(sc))
	default:
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: unknown executor %q", sc.Name, sc.Executor)
	}
	b.state.Progress = func() float64 { f, _ := ex.Progress(); return f }
	return ex, nil
}

// base holds what all executors do alike: activating VUs, running an
// iteration and counting it, emitting dropped_iterations, timing.
type base struct {
	sc    *options.Scenario
	env   *Env
	state *lib.ScenarioState
	// tags are the scenario's tags plus scenario=<name>, for VUs.
	tags map[string]string
	// sampleTags are run tags + tags, for the executor's own samples.
	sampleTags *metrics.TagSet
	// num numbers the iterations test-wide.
	num numbering

	iter        atomic.Uint64
	complete    atomic.Uint64
	interrupted atomic.Uint64
	startNanos  atomic.Int64
	vus         sync.WaitGroup
}

func newBase(sc *options.Scenario, env *Env) *base {
	tags := make(map[string]string, len(sc.Tags)+1)
	for k, v := range sc.Tags {
		tags[k] = v
	}
	if env.ScenarioTagEnabled {
		tags["scenario"] = sc.Name
	}
	st := env.RunTags
	for k, v := range tags {
		st = st.With(k, v)
	}
	b := &base{sc: sc, env: env, tags: tags, sampleTags: st}
	b.state = &lib.ScenarioState{Name: sc.Name, Executor: sc.Executor}
	return b
}

func (b *base) Scenario() *options.Scenario { return b.sc }
func (b *base) State() *lib.ScenarioState   { return b.state }

// begin marks the scenario as started and returns the regular context
// (no new iterations after it) and the max context (hard stop after
// gracefulStop).
func (b *base) begin(ctx context.Context) (regular, hard context.Context, cancel func()) {
	now := time.Now()
	b.state.StartTime = now
	b.startNanos.Store(now.UnixNano())
	reg := b.sc.RegularDuration()
	hardCtx, c1 := context.WithDeadline(ctx, now.Add(reg+b.sc.GracefulStop.D()))
	regCtx, c2 := context.WithDeadline(hardCtx, now.Add(reg))
	return regCtx, hardCtx, func() { c2(); c1() }
}

// elapsed is the time since begin, 0 before.
func (b *base) elapsed() time.Duration {
	n := b.startNanos.Load()
	if n == 0 {
		return 0
	}
	return time.Since(time.Unix(0, n))
}

func (b *base) timeProgress() float64 {
	reg := b.sc.RegularDuration()
	if reg <= 0 {
		return 1
	}
	return min(1, float64(b.elapsed())/float64(reg))
}

// nextIteration counts an iteration of the scenario and returns its
// numbers in the instance and in the test.
func (b *base) nextIteration() (uint64, uint64) {
	n := b.iter.Add(1) - 1
	return n, b.num.inTest(n, 0, 0)
}

// nextIterationOfVU returns the NextIteration of the scenario's VU number
// vu (0-based, in this instance): per-vu-iterations numbers iterations by
// VU in a segmented test.
func (b *base) nextIterationOfVU(vu uint64) func() (uint64, uint64) {
	if b.num.kind != numPerVU {
		return b.nextIteration
	}
	var k atomic.Uint64
	return func() (uint64, uint64) {
		n := b.iter.Add(1) - 1
		return n, b.num.inTest(n, vu, k.Add(1)-1)
	}
}

// activate binds vu to the scenario until ctx is done, numbering its
// iterations with next (nil: nextIteration); when the VU deactivates it
// goes back to the pool.
func (b *base) activate(ctx context.Context, vu lib.InitializedVU, next func() (uint64, uint64)) lib.ActiveVU {
	if next == nil {
		next = b.nextIteration
	}
	b.vus.Add(1)
	b.env.Stats.ActiveVUs.Add(1)
	var once sync.Once
	return vu.Activate(&lib.ActivationParams{
		RunContext: ctx,
		Exec:       b.sc.ExecName(),
		Scenario:   b.state,
		Env:        b.sc.Env,
		Tags:       b.tags,
		Deactivate: func(v lib.InitializedVU) {
			once.Do(func() {
				b.env.Stats.ActiveVUs.Add(-1)
				b.env.Pool.Put(v)
				b.vus.Done()
			})
		},
		NextIteration: next,
	})
}

// iterate runs one iteration of avu and counts it. It reports whether the
// iteration completed.
func (b *base) iterate(ctx context.Context, avu lib.ActiveVU) bool {
	start := time.Now()
	err := avu.RunOnce()
	if err == nil {
		b.complete.Add(1)
		b.env.Stats.Complete.Add(1)
		if d := b.env.MinIterationDuration - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return true
	}
	b.interrupted.Add(1)
	b.env.Stats.Interrupted.Add(1)
	var abort *lib.AbortError
	switch {
	case errors.As(err, &abort):
		b.env.Abort(lib.WithExitCode(lib.ExitScriptAborted, err))
	case errors.Is(err, lib.ErrInterrupted), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case lib.ExitCodeOf(err) != lib.ExitUnknown:
		b.env.Abort(err)
	default:
		b.env.Logger.Error("iteration failed", "scenario", b.sc.Name, "error", err)
	}
	return false
}

// dropped counts n iterations that were never started and emits them.
func (b *base) dropped(n int64, vuID uint64) {
	if n <= 0 {
		return
	}
	b.env.Stats.Dropped.Add(uint64(n))
	if b.env.Builtin == nil || b.env.Samples == nil {
		return
	}
	tags := b.sampleTags
	if vuID > 0 && b.env.VUTagEnabled {
		tags = tags.With("vu", fmt.Sprint(vuID))
	}
	ctx := b.env.SamplesCtx
	if ctx == nil {
		ctx = context.Background()
	}
	metrics.PushIfNotDone(ctx, b.env.Samples, metrics.Sample{
		Metric: b.env.Builtin.DroppedIterations, Tags: tags, Time: time.Now(), Value: float64(n),
	})
}

// waitVUs waits until every VU activated by the executor went back to
// the pool.
func (b *base) waitVUs() { b.vus.Wait() }

// sleepUntil waits until t or ctx is done; it reports whether t arrived.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func fmtDur(d time.Duration) string {
	return d.Truncate(100 * time.Millisecond).String()
}
