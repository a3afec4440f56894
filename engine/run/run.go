// Package run is the lifecycle of one test run: VU initialisation, setup(),
// the scenarios, teardown(), the sample pump that feeds the outputs, the
// periodic threshold check, and the exit code.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/executor"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/output"
)

// Config is everything a run needs.
type Config struct {
	// Options are the consolidated options; Options.Scenarios must be set
	// (options.Consolidate does it).
	Options options.Options
	// Placement locates the instance in a segmented test (Options'
	// scenarios are then already scaled to its segment); nil runs the
	// whole test.
	Placement *options.Placement
	// NewRunner makes the script's runner; it gets the run's TestControl
	// (k6/execution's test.abort/fail/options, instance stats).
	NewRunner func(ctl lib.TestControl) (lib.Runner, error)
	Registry  *metrics.Registry
	Builtin   *metrics.Builtin
	// RunTags are added to the samples the run itself emits (vus,
	// vus_max, dropped_iterations).
	RunTags *metrics.TagSet
	// Outputs receive every sample. Run starts them before VU init and
	// stops them after Finish. The metrics engine is one of them.
	Outputs []output.Output
	Logger  *slog.Logger
	Hooks   Hooks

	// Tuning; zero values take the defaults in brackets.
	SampleBuffer      int           // samples channel capacity [10000]
	FlushInterval     time.Duration // pump batching [50ms]
	ThresholdInterval time.Duration // OnThresholdCheck period [2s]
	GaugeInterval     time.Duration // vus / vus_max period [1s]
	InitWorkers       int           // concurrent VU inits [GOMAXPROCS]
}

// Hooks are the run's extension points. Every field is optional.
type Hooks struct {
	// OnStatus is called at every status change.
	OnStatus func(Status)
	// OnExecution is called once the executors exist, before VU init;
	// it gives progress and counters to the CLI and the REST API.
	OnExecution func(*Execution)
	// WaitStart is called after VU init when the paused option is set;
	// the run starts when it returns nil.
	WaitStart func(ctx context.Context) error
	// OnThresholdCheck is called every ThresholdInterval while the
	// scenarios run; abort=true stops the run with exit code 99 (the
	// reason is the error message). Teardown still runs.
	OnThresholdCheck func(elapsed time.Duration) (abort bool, reason string)
	// Finish is called after teardown, once every sample has been handed
	// to the outputs and before they are stopped: final threshold
	// evaluation and the end-of-test summary. It returns whether
	// thresholds failed (exit code 99 unless an earlier error decided the
	// code).
	Finish func(ctx context.Context, r *Result) (thresholdsFailed bool)
}

// Result is the outcome of a run.
type Result struct {
	// ExitCode is k6's exit code for the run; Err is the error that set it
	// (nil for 0).
	ExitCode lib.ExitCode
	Err      error
	// Iteration counters over all scenarios.
	Complete, Interrupted, Dropped uint64
	// VUsMax is how many VUs were initialised.
	VUsMax int64
	// Duration is from the start of setup to the end of teardown.
	Duration time.Duration
	// SetupData is setup()'s JSON result (nil without setup).
	SetupData json.RawMessage
	// Failed is set by exec.test.fail(); FailReason is its message.
	Failed     bool
	FailReason string
	// Aborted reports that the scenarios were cut short (abort, signal,
	// threshold abortOnFail, REST stop, a fatal error).
	Aborted bool
}

// Run runs the whole test. Cancelling ctx is an external abort (the first
// SIGINT/SIGTERM): the scenarios stop, teardown still runs, the exit code
// is 105 unless context.Cause(ctx) carries another code. Run returns a
// Result in every case; the error is Result.Err.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r := newRunState(cfg)
	res := r.run(ctx)
	return res, res.Err
}

type runState struct {
	cfg    Config
	log    *slog.Logger
	res    Result
	stats  *executor.Stats
	pool   *executor.Pool
	exec   *Execution
	runner lib.Runner

	errMu  sync.Mutex
	runErr error
	cancel context.CancelCauseFunc

	failed     atomic.Bool
	failMu     sync.Mutex
	failReason string
	startNanos atomic.Int64
}

func newRunState(cfg Config) *runState {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
	}
	if cfg.Builtin == nil {
		cfg.Builtin = metrics.RegisterBuiltin(cfg.Registry)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.FlushInterval, 50*time.Millisecond)
	def(&cfg.ThresholdInterval, 2*time.Second)
	def(&cfg.GaugeInterval, time.Second)
	if cfg.SampleBuffer <= 0 {
		cfg.SampleBuffer = 10000
	}
	if cfg.InitWorkers <= 0 {
		cfg.InitWorkers = runtime.GOMAXPROCS(0)
	}
	return &runState{cfg: cfg, log: cfg.Logger, stats: &executor.Stats{}}
}

func (r *runState) status(s Status) {
	if r.cfg.Hooks.OnStatus != nil {
		r.cfg.Hooks.OnStatus(s)
	}
}

// fail records the first error of the run and stops the scenarios.
func (r *runState) fail(err error) {
	r.errMu.Lock()
	if r.runErr == nil {
		r.runErr = err
	}
	r.errMu.Unlock()
	if r.cancel != nil {
		r.cancel(err)
	}
}

func (r *runState) firstErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.runErr
}

// withCode keeps err's exit code, or gives it code.
func withCode(code lib.ExitCode, err error) error {
	if err == nil || lib.ExitCodeOf(err) != lib.ExitUnknown {
		return err
	}
	return lib.WithExitCode(code, err)
}

// externalAbort is the error of a cancelled ctx: its cause if that carries
// an exit code, else 105.
func externalAbort(ctx context.Context) error {
	cause := context.Cause(ctx)
	if lib.ExitCodeOf(cause) != lib.ExitUnknown {
		return cause
	}
	return lib.Errorf(lib.ExitExternalAbort, "test run aborted: %v", cause)
}

func (r *runState) run(parent context.Context) *Result {
	cfg := r.cfg
	r.status(StatusCreated)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r.cancel = cancel

	pmp := newPump(cfg.SampleBuffer, cfg.FlushInterval, cfg.Outputs)
	var started []output.Output
	for _, o := range cfg.Outputs {
		if err := o.Start(); err != nil {
			r.fail(fmt.Errorf("starting output %q: %w", o.Description(), err))
			break
		}
		started = append(started, o)
	}
	pmp.outputs = started
	pmp.start()
	samplesCtx, stopSamples := context.WithCancel(context.WithoutCancel(parent))
	defer stopSamples()

	teardownDue := r.prepareAndRun(ctx, parent, pmp, samplesCtx)
	if teardownDue {
		r.teardown(parent, pmp.in)
	}
	if parent.Err() != nil && r.firstErr() == nil {
		// A signal during teardown lets teardown finish (it cleans up)
		// but the run was still aborted from outside: exit 105.
		r.res.Aborted = true
		r.fail(externalAbort(parent))
	}
	r.res.Duration = r.elapsed()
	r.finish(parent, pmp, started)
	return &r.res
}

// prepareAndRun does everything up to the end of the scenarios. It
// reports whether teardown must run (setup succeeded).
func (r *runState) prepareAndRun(ctx, parent context.Context, pmp *pump, samplesCtx context.Context) bool {
	cfg := r.cfg
	if r.firstErr() != nil {
		return false
	}
	runner, err := cfg.NewRunner(&control{r: r})
	if err != nil {
		r.fail(withCode(lib.ExitScriptException, err))
		return false
	}
	r.runner = runner
	if err := executor.CheckExec(cfg.Options.Scenarios, runner.IsExecutable); err != nil {
		r.fail(err)
		return false
	}
	r.pool = executor.NewPool(runner, pmp.in)
	env := &executor.Env{
		Pool: r.pool, Samples: pmp.in, SamplesCtx: samplesCtx, Builtin: cfg.Builtin, RunTags: cfg.RunTags,
		Logger: r.log, Stats: r.stats, MinIterationDuration: cfg.Options.MinIterationDurationOrZero(),
		VUTagEnabled: cfg.Options.SystemTagEnabled("vu"), ScenarioTagEnabled: cfg.Options.SystemTagEnabled("scenario"),
		Abort: r.fail, Placement: cfg.Placement,
	}
	r.status(StatusInitExecutors)
	sched, err := executor.NewScheduler(cfg.Options.Scenarios, env)
	if err != nil {
		r.fail(err)
		return false
	}
	r.exec = &Execution{r: r, sched: sched}
	if cfg.Hooks.OnExecution != nil {
		cfg.Hooks.OnExecution(r.exec)
	}

	r.status(StatusInitVUs)
	if err := r.pool.Init(ctx, sched.Plan().MaxPlannedVUs, cfg.InitWorkers); err != nil {
		if ctx.Err() != nil {
			r.fail(r.ctxErr(ctx, parent))
		} else {
			r.fail(withCode(lib.ExitScriptException, err))
		}
		return false
	}
	r.status(StatusInitDone)

	if options.IsSet(cfg.Options.Paused) && cfg.Hooks.WaitStart != nil {
		r.status(StatusPausedBeforeRun)
		if err := cfg.Hooks.WaitStart(ctx); err != nil {
			if ctx.Err() != nil {
				err = r.ctxErr(ctx, parent)
			}
			r.fail(err)
			return false
		}
	}
	r.status(StatusStarted)
	r.startNanos.Store(time.Now().UnixNano())

	stopBackground := r.background(ctx, pmp.in, samplesCtx)
	defer stopBackground()

	if !options.IsSet(cfg.Options.NoSetup) {
		r.status(StatusSetup)
		if !r.setup(ctx, parent, pmp.in) {
			return false
		}
	}
	if ctx.Err() == nil {
		r.status(StatusRunning)
		sched.Run(ctx)
	}
	if ctx.Err() != nil {
		r.res.Aborted = true
		if r.firstErr() == nil {
			r.fail(r.ctxErr(ctx, parent))
		}
	}
	return true
}

// ctxErr is the error for a cancelled run context.
func (r *runState) ctxErr(ctx, parent context.Context) error {
	if err := r.firstErr(); err != nil {
		return err
	}
	if parent.Err() != nil {
		return externalAbort(parent)
	}
	return externalAbort(ctx)
}

func (r *runState) setup(ctx, parent context.Context, samples chan<- metrics.Samples) bool {
	timeout := r.cfg.Options.SetupTimeoutOrDefault()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	data, err := r.runner.Setup(sctx, samples)
	if err == nil && sctx.Err() != nil {
		// setup() returned after its context ended (e.g. a sleep cut
		// short): it did not finish in time.
		err = sctx.Err()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			r.fail(r.ctxErr(ctx, parent))
		case errors.Is(sctx.Err(), context.DeadlineExceeded):
			r.fail(lib.Errorf(lib.ExitSetupTimeout, "setup() execution timed out after %s (setupTimeout)", timeout))
		default:
			r.fail(withCode(lib.ExitScriptException, fmt.Errorf("setup() failed: %w", err)))
		}
		return false
	}
	r.res.SetupData = data
	r.runner.SetSetupData(data)
	return true
}

func (r *runState) teardown(parent context.Context, samples chan<- metrics.Samples) {
	if options.IsSet(r.cfg.Options.NoTeardown) || r.runner == nil {
		return
	}
	r.status(StatusTeardown)
	timeout := r.cfg.Options.TeardownTimeoutOrDefault()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(parent), timeout)
	defer cancel()
	err := r.runner.Teardown(tctx, samples, r.res.SetupData)
	if err == nil && tctx.Err() != nil {
		err = tctx.Err()
	}
	if err != nil {
		if errors.Is(tctx.Err(), context.DeadlineExceeded) {
			err = lib.Errorf(lib.ExitTeardownTimeout, "teardown() execution timed out after %s (teardownTimeout)", timeout)
		} else {
			err = withCode(lib.ExitScriptException, fmt.Errorf("teardown() failed: %w", err))
		}
		r.errMu.Lock()
		if r.runErr == nil {
			r.runErr = err
		}
		r.errMu.Unlock()
	}
}

// background emits vus/vus_max and calls OnThresholdCheck until the
// returned function is called.
func (r *runState) background(ctx context.Context, samples chan<- metrics.Samples, samplesCtx context.Context) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		gauge := time.NewTicker(r.cfg.GaugeInterval)
		defer gauge.Stop()
		var thr <-chan time.Time
		if r.cfg.Hooks.OnThresholdCheck != nil {
			t := time.NewTicker(r.cfg.ThresholdInterval)
			defer t.Stop()
			thr = t.C
		}
		r.emitGauges(samplesCtx, samples)
		for {
			select {
			case <-done:
				r.emitGauges(samplesCtx, samples)
				return
			case <-gauge.C:
				r.emitGauges(samplesCtx, samples)
			case <-thr:
				if ctx.Err() != nil {
					continue
				}
				if abort, reason := r.cfg.Hooks.OnThresholdCheck(r.elapsed()); abort {
					if reason == "" {
						reason = "thresholds were crossed and at least one has abortOnFail enabled; stopping the test"
					}
					r.fail(lib.Errorf(lib.ExitThresholdsFailed, "%s", reason))
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (r *runState) emitGauges(ctx context.Context, samples chan<- metrics.Samples) {
	now := time.Now()
	metrics.PushIfNotDone(ctx, samples,
		metrics.Sample{Metric: r.cfg.Builtin.VUs, Tags: r.cfg.RunTags, Time: now, Value: float64(r.stats.ActiveVUs.Load())},
		metrics.Sample{Metric: r.cfg.Builtin.VUsMax, Tags: r.cfg.RunTags, Time: now, Value: float64(r.pool.Initialized())},
	)
}

func (r *runState) elapsed() time.Duration {
	n := r.startNanos.Load()
	if n == 0 {
		return 0
	}
	return time.Since(time.Unix(0, n))
}

func (r *runState) finish(parent context.Context, pmp *pump, started []output.Output) {
	cfg := r.cfg
	pmp.finish()
	r.res.Complete = r.stats.Complete.Load()
	r.res.Interrupted = r.stats.Interrupted.Load()
	r.res.Aborted = r.res.Aborted || r.firstErr() != nil
	r.res.Dropped = r.stats.Dropped.Load()
	if r.pool != nil {
		r.res.VUsMax = r.pool.Initialized()
	}
	r.res.Failed = r.failed.Load()
	r.failMu.Lock()
	r.res.FailReason = r.failReason
	r.failMu.Unlock()
	r.res.Err = r.firstErr()
	thresholdsFailed := false
	// An exec.test.abort() in a VU's init code still gets the summary
	// (and handleSummary), as in k6; other failures before the start do
	// not.
	var abort *lib.AbortError
	if cfg.Hooks.Finish != nil && (r.startNanos.Load() != 0 || errors.As(r.res.Err, &abort)) {
		thresholdsFailed = cfg.Hooks.Finish(context.WithoutCancel(parent), &r.res)
	}
	for _, o := range started {
		if err := o.Stop(); err != nil {
			r.log.Error("stopping output", "output", o.Description(), "error", err)
		}
	}
	switch {
	case r.res.Err != nil:
	case thresholdsFailed:
		r.res.Err = lib.Errorf(lib.ExitThresholdsFailed, "thresholds on metrics have been crossed")
	case r.res.Failed:
		reason := r.res.FailReason
		if reason == "" {
			reason = "test marked as failed by exec.test.fail()"
		}
		r.res.Err = lib.Errorf(lib.ExitMarkedAsFailed, "%s", reason)
	}
	r.res.ExitCode = lib.ExitCodeOf(r.res.Err)
	switch {
	case r.res.Err == nil:
		r.status(StatusEnded)
	case r.res.ExitCode == lib.ExitMarkedAsFailed:
		r.status(StatusMarkedAsFailed)
	default:
		r.status(StatusInterrupted)
	}
}

// control is the run's lib.TestControl.
type control struct{ r *runState }

func (c *control) Abort(reason string) { c.AbortAt(reason, "") }

// AbortAt is Abort with the script location of the call.
func (c *control) AbortAt(reason, location string) {
	c.r.fail(lib.WithExitCode(lib.ExitScriptAborted, &lib.AbortError{Reason: reason, Location: location}))
}

func (c *control) Fail(reason string) {
	c.r.failMu.Lock()
	if !c.r.failed.Load() {
		c.r.failReason = reason
	}
	c.r.failMu.Unlock()
	c.r.failed.Store(true)
}

func (c *control) Instance() lib.InstanceStats {
	s := lib.InstanceStats{
		CurrentTestRunDuration: c.r.elapsed(),
		IterationsCompleted:    c.r.stats.Complete.Load(),
		IterationsInterrupted:  c.r.stats.Interrupted.Load(),
		VUsActive:              c.r.stats.ActiveVUs.Load(),
	}
	if c.r.pool != nil {
		s.VUsInitialized = c.r.pool.Initialized()
	}
	return s
}

func (c *control) Options() json.RawMessage { return c.r.cfg.Options.JSON() }
