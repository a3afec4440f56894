// Package executortest provides a lib.Runner written in Go for tests of
// the executors and the run lifecycle that must not depend on the JS
// runtime: its VUs run a Go function per iteration.
package executortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
)

// Runner is a lib.Runner whose VUs call Iter for every iteration. It keeps
// the lib contract: RunOnce returns lib.ErrInterrupted when the
// activation's RunContext ends first, and Deactivate is called once the
// context is done and no iteration runs. Complete iterations emit
// `iterations` when Builtin is set, as the JS runner does.
type Runner struct {
	Iter       func(ctx context.Context, vu *VU) error
	SetupFn    func(ctx context.Context) (json.RawMessage, error)
	TeardownFn func(ctx context.Context, data json.RawMessage) error
	// Exports are the executable names; nil means only "default".
	Exports []string
	Builtin *metrics.Builtin
	// InitDelay makes every NewVU take this long.
	InitDelay time.Duration

	active, maxActive atomic.Int64
	mu                sync.Mutex
	log               []string
	setupData         json.RawMessage
	teardownCalls     atomic.Int64
	teardownData      json.RawMessage
}

// MaxActive returns the most VUs that were active at once.
func (r *Runner) MaxActive() int64 { return r.maxActive.Load() }

// Log returns the recorded events: "stop <id>" at every deactivation.
func (r *Runner) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// TeardownCalls returns how many times teardown ran and its last data.
func (r *Runner) TeardownCalls() (int64, json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.teardownCalls.Load(), r.teardownData
}

// NewVU implements lib.Runner.
func (r *Runner) NewVU(ctx context.Context, id, idGlobal uint64, samples chan<- metrics.Samples) (lib.InitializedVU, error) {
	if r.InitDelay > 0 {
		select {
		case <-time.After(r.InitDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &VU{r: r, id: id, samples: samples}, nil
}

// Setup implements lib.Runner.
func (r *Runner) Setup(ctx context.Context, _ chan<- metrics.Samples) (json.RawMessage, error) {
	if r.SetupFn == nil {
		return nil, nil
	}
	return r.SetupFn(ctx)
}

// Teardown implements lib.Runner; it records the call.
func (r *Runner) Teardown(ctx context.Context, _ chan<- metrics.Samples, data json.RawMessage) error {
	r.mu.Lock()
	r.teardownCalls.Add(1)
	r.teardownData = data
	r.mu.Unlock()
	if r.TeardownFn == nil {
		return nil
	}
	return r.TeardownFn(ctx, data)
}

// IsExecutable implements lib.Runner.
func (r *Runner) IsExecutable(name string) bool {
	if r.Exports == nil {
		return name == "default"
	}
	for _, e := range r.Exports {
		if e == name {
			return true
		}
	}
	return false
}

// SetSetupData implements lib.Runner.
func (r *Runner) SetSetupData(d json.RawMessage) {
	r.mu.Lock()
	r.setupData = d
	r.mu.Unlock()
}

// VU is a fake VU.
type VU struct {
	r       *Runner
	id      uint64
	samples chan<- metrics.Samples
	busy    sync.Mutex // held while an iteration runs
	params  *lib.ActivationParams
	iters   atomic.Int64
	// inInstance and inTest are the numbers of the running iteration.
	inInstance, inTest uint64
	// SetupData is the setup result the runner had at the VU's latest
	// activation (VUs are made before setup runs).
	SetupData json.RawMessage
}

// ID implements lib.InitializedVU.
func (v *VU) ID() uint64 { return v.id }

// IDGlobal implements lib.InitializedVU.
func (v *VU) IDGlobal() uint64 { return v.id }

// Iterations returns how many iterations the VU started.
func (v *VU) Iterations() int64 { return v.iters.Load() }

// IterationNumbers returns the running iteration's numbers in the
// instance and in the test (what NextIteration gave); call it from Iter.
func (v *VU) IterationNumbers() (inInstance, inTest uint64) { return v.inInstance, v.inTest }

// Params returns the current activation.
func (v *VU) Params() *lib.ActivationParams { return v.params }

// Activate implements lib.InitializedVU.
func (v *VU) Activate(p *lib.ActivationParams) lib.ActiveVU {
	v.params = p
	v.r.mu.Lock()
	v.SetupData = v.r.setupData
	v.r.mu.Unlock()
	n := v.r.active.Add(1)
	for {
		m := v.r.maxActive.Load()
		if n <= m || v.r.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	go func() {
		<-p.RunContext.Done()
		v.busy.Lock()
		v.busy.Unlock()
		v.r.active.Add(-1)
		v.r.mu.Lock()
		v.r.log = append(v.r.log, fmt.Sprintf("stop %d", v.id))
		v.r.mu.Unlock()
		p.Deactivate(v)
	}()
	return v
}

// RunOnce implements lib.ActiveVU.
func (v *VU) RunOnce() error {
	v.busy.Lock()
	defer v.busy.Unlock()
	ctx := v.params.RunContext
	if ctx.Err() != nil {
		return lib.ErrInterrupted
	}
	v.inInstance, v.inTest = v.params.NextIteration()
	v.iters.Add(1)
	if err := v.r.Iter(ctx, v); err != nil {
		var ab *lib.AbortError
		if errors.As(err, &ab) {
			return err
		}
		if ctx.Err() != nil {
			return lib.ErrInterrupted
		}
		return err
	}
	if ctx.Err() != nil {
		return lib.ErrInterrupted
	}
	if v.r.Builtin != nil {
		tags := metrics.NewTagSet(v.params.Tags)
		metrics.PushIfNotDone(ctx, v.samples, metrics.Sample{Metric: v.r.Builtin.Iterations, Tags: tags, Time: time.Now(), Value: 1})
	}
	return nil
}

// Sleep makes iterations that last d unless interrupted.
func Sleep(d time.Duration) func(context.Context, *VU) error {
	return func(ctx context.Context, _ *VU) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return lib.ErrInterrupted
		}
	}
}
