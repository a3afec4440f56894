package js

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
)

// RunnerConfig is what a runner needs from the run.
type RunnerConfig struct {
	// Control is what k6/execution's test and instance reach.
	Control lib.TestControl
	// SetupTimeout, TeardownTimeout and HandleSummaryTimeout bound those
	// functions; 0 means no limit other than the context.
	SetupTimeout         time.Duration
	TeardownTimeout      time.Duration
	HandleSummaryTimeout time.Duration
}

// Runner makes VUs from a parsed script and runs its lifecycle functions.
// It implements lib.Runner.
type Runner struct {
	s         *Script
	rc        RunnerConfig
	setupData atomic.Pointer[[]byte]
	// moduleOptions are the options modules read (modules.State.Options).
	moduleOptions []byte
}

var _ lib.Runner = (*Runner)(nil)

// NewRunner returns a runner for the script.
func (s *Script) NewRunner(rc RunnerConfig) (*Runner, error) {
	r := &Runner{s: s, rc: rc}
	var consolidated json.RawMessage
	if rc.Control != nil {
		consolidated = rc.Control.Options()
	}
	opts, err := mergeModuleOptions(s.options, consolidated)
	if err != nil {
		return nil, err
	}
	r.moduleOptions = opts
	return r, nil
}

// mergeModuleOptions overlays the consolidated options on the script's
// own: the consolidation keeps only the options it knows, and modules
// (k6/http) read others, such as hosts or tlsAuth, from the script. A null
// (unset) value never hides the other source's.
func mergeModuleOptions(script, consolidated json.RawMessage) ([]byte, error) {
	merged := map[string]json.RawMessage{}
	for _, src := range []json.RawMessage{script, consolidated} {
		if len(src) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(src, &m); err != nil {
			return nil, fmt.Errorf("js: reading the options for modules: %w", err)
		}
		for k, v := range m {
			if string(v) == "null" {
				continue // unset in this source (the consolidated options list every key)
			}
			merged[k] = v
		}
	}
	return json.Marshal(merged)
}

// NewVU makes a VU: a fresh runtime that ran the init code with
// __VU = idLocal. Safe for concurrent use. Samples of the VU go to samples.
func (r *Runner) NewVU(ctx context.Context, idLocal, idGlobal uint64, samples chan<- metrics.Samples) (lib.InitializedVU, error) {
	v := newVUObject(r.s, r, idLocal, idGlobal, samples)
	// ctx bounds the VU's initialisation only (the executor's pool cancels
	// it once VUs are ready); the VU's built-in samples must outlive it.
	v.lifeCtx = context.WithoutCancel(ctx)
	if err := v.init(ctx); err != nil {
		return nil, initError(r.s.cfg.Filename, fmt.Errorf("VU %d: %w", idLocal, err))
	}
	return v, nil
}

// IsExecutable reports whether name is an exported function.
func (r *Runner) IsExecutable(name string) bool { return r.s.fnSet[name] }

// SetSetupData hands the setup result to VUs activated after the call.
func (r *Runner) SetSetupData(data json.RawMessage) {
	b := []byte(data)
	r.setupData.Store(&b)
}

// transient makes a VU with __VU = 0 for setup, teardown or handleSummary.
func (r *Runner) transient(ctx context.Context, samples chan<- metrics.Samples, group string) (*vu, error) {
	v := newVUObject(r.s, r, 0, 0, samples)
	v.lifeCtx = ctx
	if err := v.init(ctx); err != nil {
		return nil, err
	}
	v.groupPath = group
	v.iteration = 0
	return v, nil
}

// lifecycle runs the exported function name in a transient VU with arg
// (JSON, may be nil) and returns its JSON result.
func (r *Runner) lifecycle(ctx context.Context, samples chan<- metrics.Samples, name, group string, arg []byte,
	timeout time.Duration, timeoutCode lib.ExitCode,
) (sobek.Value, *vu, error) {
	if samples == nil { // handleSummary: samples are dropped
		var stop func()
		samples, stop = discardSamples()
		defer stop()
	}
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	fail := func(err error) error {
		var ae *lib.AbortError
		switch {
		case errors.As(err, &ae):
			return lib.WithExitCode(lib.ExitScriptAborted, ae)
		case timeout > 0 && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded):
			return lib.Errorf(timeoutCode, "%s() execution timed out after %s", name, timeout)
		case ctx.Err() != nil:
			return fmt.Errorf("%s(): %w: %w", name, lib.ErrInterrupted, ctx.Err())
		}
		return lib.WithExitCode(lib.ExitScriptException, fmt.Errorf("%s() failed: %w", name, err))
	}
	v, err := r.transient(cctx, samples, group)
	if err != nil {
		return nil, nil, fail(err)
	}
	fn, ok := v.fn(name)
	if !ok {
		return nil, v, lib.Errorf(lib.ExitScriptException, "%s is not an exported function", name)
	}
	var args []sobek.Value
	if arg != nil {
		val, err := v.parseJSON(arg)
		if err != nil {
			return nil, v, fail(err)
		}
		args = append(args, val)
	}
	res, err := v.call(cctx, func() (sobek.Value, error) { return fn(sobek.Undefined(), args...) })
	v.closeIdle()
	if err != nil {
		return nil, v, fail(err)
	}
	return res, v, nil
}

// Setup runs setup() if exported and returns its result as JSON (nil when
// not exported or when it returns undefined).
func (r *Runner) Setup(ctx context.Context, samples chan<- metrics.Samples) (json.RawMessage, error) {
	if !r.s.fnSet["setup"] {
		return nil, nil
	}
	res, v, err := r.lifecycle(ctx, samples, "setup", "::setup", nil, r.rc.SetupTimeout, lib.ExitSetupTimeout)
	if err != nil {
		return nil, err
	}
	raw, err := v.stringify(res)
	if err != nil {
		return nil, lib.WithExitCode(lib.ExitScriptException, fmt.Errorf("setup() returned a value that can't be turned into JSON: %w", err))
	}
	return raw, nil
}

// Teardown runs teardown(data) if exported.
func (r *Runner) Teardown(ctx context.Context, samples chan<- metrics.Samples, setupData json.RawMessage) error {
	if !r.s.fnSet["teardown"] {
		return nil
	}
	_, _, err := r.lifecycle(ctx, samples, "teardown", "::teardown", setupData, r.rc.TeardownTimeout, lib.ExitTeardownTimeout)
	return err
}

// HandleSummary runs handleSummary(data) if exported. It returns the
// returned object's entries (string or []byte values) and whether the
// function is exported.
func (r *Runner) HandleSummary(ctx context.Context, data json.RawMessage) (map[string]any, bool, error) {
	if !r.s.fnSet["handleSummary"] {
		r.initForSummary(ctx)
		return nil, false, nil
	}
	res, v, err := r.lifecycle(ctx, nil, "handleSummary", "", data, r.rc.HandleSummaryTimeout, lib.ExitGenericTimeout)
	if err != nil {
		return nil, true, err
	}
	obj, ok := res.(*sobek.Object)
	if !ok || sobek.IsNull(res) {
		return nil, true, fmt.Errorf("handleSummary() must return an object of {path: content}, got %s", describeValue(res))
	}
	out := map[string]any{}
	for _, k := range obj.Keys() {
		val := obj.Get(k)
		switch x := val.Export().(type) {
		case string:
			out[k] = x
		case sobek.ArrayBuffer:
			out[k] = append([]byte(nil), x.Bytes()...)
		default:
			if o, ok := val.(*sobek.Object); ok {
				if ab, ok := o.Get("buffer").Export().(sobek.ArrayBuffer); ok {
					out[k] = append([]byte(nil), ab.Bytes()...)
					continue
				}
			}
			s, err := v.stringify(val)
			if err != nil || s == nil {
				return nil, true, fmt.Errorf("handleSummary(): the value of %q must be a string or an ArrayBuffer", k)
			}
			out[k] = string(s)
		}
	}
	return out, true, nil
}

// initForSummary runs the init code once more, as k6 does for the VU that
// makes the end-of-test summary even without handleSummary (console
// output of the init code shows once more). An error there changes
// nothing: the text summary is printed either way.
func (r *Runner) initForSummary(ctx context.Context) {
	if r.rc.HandleSummaryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.rc.HandleSummaryTimeout)
		defer cancel()
	}
	samples, stop := discardSamples()
	defer stop()
	_, _ = r.transient(ctx, samples, "")
}

// discardSamples returns a channel whose samples are dropped, and stop,
// which closes it and waits until it is drained.
func discardSamples() (samples chan<- metrics.Samples, stop func()) {
	ch := make(chan metrics.Samples, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	return ch, func() { close(ch); <-done }
}

// activeVU is a VU bound to a scenario.
type activeVU struct {
	v          *vu
	p          *lib.ActivationParams
	exec       string
	fn         sobek.Callable
	inScenario int64
	inInstance uint64
	inTest     uint64
	executor   string
	scenario   string
}

// Activate implements lib.InitializedVU.
func (v *vu) Activate(p *lib.ActivationParams) lib.ActiveVU {
	v.busy <- struct{}{}
	defer func() { <-v.busy }()
	exec := p.Exec
	if exec == "" {
		exec = "default"
	}
	a := &activeVU{v: v, p: p, exec: exec, inScenario: -1}
	if p.Scenario != nil {
		a.scenario = p.Scenario.Name
		a.executor = p.Scenario.Executor
	}
	a.fn, _ = v.fn(exec)
	v.act = a

	t := v.script.cfg.RunTags
	for k, val := range p.Tags {
		t = t.With(k, val)
	}
	v.baseTags = t
	v.vuTags = nil
	v.userMeta = nil
	v.groupPath = ""
	v.curTags = nil
	v.curMeta = nil

	if len(p.Env) > 0 || v.envOverlaid {
		env := v.rt.NewObject()
		for k, val := range v.script.cfg.Env {
			must(env.Set(k, val))
		}
		for k, val := range p.Env {
			must(env.Set(k, val))
		}
		must(v.rt.Set("__ENV", env))
		v.envOverlaid = len(p.Env) > 0
	}
	v.loadSetupData()

	if p.RunContext != nil {
		context.AfterFunc(p.RunContext, func() {
			v.busy <- struct{}{} // wait for the running iteration
			<-v.busy
			v.closeIdle()
			if p.Deactivate != nil {
				p.Deactivate(v)
			}
		})
	}
	return a
}

// loadSetupData parses the runner's setup data into this VU, once per
// distinct value.
func (v *vu) loadSetupData() {
	ptr := v.runner.setupData.Load()
	if ptr == nil || len(*ptr) == 0 {
		v.setupVal = nil
		v.setupRaw = nil
		return
	}
	if v.setupVal != nil && bytes.Equal(*ptr, v.setupRaw) {
		return
	}
	val, err := v.parseJSON(*ptr)
	if err != nil {
		v.script.logw.log("error", "parsing the setup data: "+err.Error(), "source", "setup")
		v.setupVal = nil
		return
	}
	v.setupRaw = *ptr
	v.setupVal = val
}

// RunOnce implements lib.ActiveVU: it runs one iteration. A complete
// iteration, even one that threw, returns nil; an iteration cut short by
// the end of RunContext returns lib.ErrInterrupted; exec.test.abort()
// returns *lib.AbortError.
func (a *activeVU) RunOnce() error {
	v := a.v
	rc := a.p.RunContext
	if rc == nil {
		rc = context.Background()
	}
	if rc.Err() != nil {
		return lib.ErrInterrupted
	}
	v.busy <- struct{}{}
	defer func() { <-v.busy }()
	if a.fn == nil {
		return lib.Errorf(lib.ExitScriptException, "function %q is not exported by the script", a.exec)
	}
	if a.p.NextIteration != nil {
		a.inInstance, a.inTest = a.p.NextIteration()
	}
	a.inScenario++
	v.iteration++
	v.state.Iteration = v.iteration
	v.curMeta = nil
	if v.groupPath != "" {
		v.groupPath = ""
		v.curTags = nil
	}
	must(v.rt.GlobalObject().Set("__ITER", v.iteration))

	args := v.argsBuf[:0]
	if v.setupVal != nil {
		args = append(args, v.setupVal)
	}
	start := time.Now()
	_, err := v.call(rc, func() (sobek.Value, error) { return a.fn(sobek.Undefined(), args...) })
	end := time.Now()
	if err != nil {
		var ae *lib.AbortError
		if errors.As(err, &ae) {
			return ae
		}
		if isInterrupt(err) || rc.Err() != nil {
			return lib.ErrInterrupted
		}
		v.script.logw.log("error", err.Error(), "executor", a.executor, "scenario", a.scenario, "source", "stacktrace")
	}
	tags, meta := v.tags()
	b := v.script.cfg.Builtin
	metrics.PushIfNotDone(v.lifeCtx, v.samples,
		metrics.Sample{Metric: b.Iterations, Tags: tags, Time: end, Value: 1, Metadata: meta},
		metrics.Sample{Metric: b.IterationDuration, Tags: tags, Time: end, Value: metrics.D(end.Sub(start)), Metadata: meta},
		// k6 emits the iteration's network bytes after every iteration,
		// 0 without traffic, so both always appear in the summary.
		metrics.Sample{Metric: b.DataSent, Tags: tags, Time: end, Value: 0, Metadata: meta},
		metrics.Sample{Metric: b.DataReceived, Tags: tags, Time: end, Value: 0, Metadata: meta},
	)
	return nil
}
