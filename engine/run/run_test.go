package run

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/output"
)

// recorder is an output that keeps every sample.
type recorder struct {
	mu      sync.Mutex
	samples []metrics.Sample
	started atomic.Bool
	stopped atomic.Bool
}

func (r *recorder) Description() string { return "recorder" }
func (r *recorder) Start() error        { r.started.Store(true); return nil }
func (r *recorder) Stop() error         { r.stopped.Store(true); return nil }
func (r *recorder) AddMetricSamples(b []metrics.Samples) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ss := range b {
		r.samples = append(r.samples, ss...)
	}
}

func (r *recorder) sum(name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s float64
	for _, x := range r.samples {
		if x.Metric.Name == name {
			s += x.Value
		}
	}
	return s
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.samples {
		if x.Metric.Name == name {
			n++
		}
	}
	return n
}

func consolidated(t *testing.T, script string) options.Options {
	t.Helper()
	o, _, err := options.Parse([]byte(script))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := options.Consolidate(options.Tier{Name: "script", Options: o})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type setup struct {
	runner *executortest.Runner
	rec    *recorder
	cfg    Config
	ctl    lib.TestControl
}

func newSetup(t *testing.T, script string, iter func(context.Context, *executortest.VU) error) *setup {
	reg := metrics.NewRegistry()
	b := metrics.RegisterBuiltin(reg)
	s := &setup{runner: &executortest.Runner{Iter: iter, Builtin: b}, rec: &recorder{}}
	s.cfg = Config{
		Options: consolidated(t, script), Registry: reg, Builtin: b,
		RunTags: metrics.NewTagSet(map[string]string{"testid": "t1"}),
		Outputs: []output.Output{s.rec},
		NewRunner: func(ctl lib.TestControl) (lib.Runner, error) {
			s.ctl = ctl
			return s.runner, nil
		},
		GaugeInterval: 100 * time.Millisecond, ThresholdInterval: 100 * time.Millisecond,
	}
	return s
}

func TestRunSetupDataReachesVUsAndTeardown(t *testing.T) {
	t.Parallel()
	var seen atomic.Int64
	s := newSetup(t, `{"scenarios":{"a":{"executor":"per-vu-iterations","vus":2,"iterations":3}}}`,
		func(ctx context.Context, v *executortest.VU) error {
			if string(v.SetupData) == `{"token":"abc"}` {
				seen.Add(1)
			}
			return nil
		})
	s.runner.SetupFn = func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"token":"abc"}`), nil }
	var finished atomic.Bool
	s.cfg.Hooks.Finish = func(ctx context.Context, r *Result) bool {
		finished.Store(true)
		return false
	}
	res, err := Run(context.Background(), s.cfg)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: code %d, err %v", res.ExitCode, err)
	}
	if res.Complete != 6 || seen.Load() != 6 {
		t.Fatalf("complete=%d, iterations that saw setup data=%d, want 6 and 6", res.Complete, seen.Load())
	}
	if n, data := s.runner.TeardownCalls(); n != 1 || string(data) != `{"token":"abc"}` {
		t.Fatalf("teardown calls=%d data=%s", n, data)
	}
	if !finished.Load() || !s.rec.started.Load() || !s.rec.stopped.Load() {
		t.Fatal("finish hook not called or output not started/stopped")
	}
	if got := s.rec.sum("iterations"); got != 6 {
		t.Fatalf("output got %v iterations samples, want 6", got)
	}
	if s.rec.count("vus_max") == 0 || s.rec.count("vus") == 0 {
		t.Fatal("no vus / vus_max samples")
	}
}

func TestRunAbortRunsTeardownAndExits108(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"scenarios":{"a":{"executor":"constant-vus","vus":2,"duration":"10s"}}}`, nil)
	s.runner.Iter = func(ctx context.Context, v *executortest.VU) error {
		if v.Iterations() == 3 && v.ID() == 1 {
			s.ctl.Abort("stop now")
			return &lib.AbortError{Reason: "stop now"}
		}
		return executortest.Sleep(5*time.Millisecond)(ctx, v)
	}
	start := time.Now()
	res, err := Run(context.Background(), s.cfg)
	if res.ExitCode != lib.ExitScriptAborted {
		t.Fatalf("exit code %d (%v), want 108", res.ExitCode, err)
	}
	if n, _ := s.runner.TeardownCalls(); n != 1 {
		t.Fatalf("teardown calls = %d, want 1", n)
	}
	if time.Since(start) > 5*time.Second || !res.Aborted {
		t.Fatalf("run not aborted early: took %s, aborted=%v", time.Since(start), res.Aborted)
	}
}

func TestRunExternalAbortIs105WithTeardown(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"scenarios":{"a":{"executor":"constant-vus","vus":1,"duration":"10s"}}}`, executortest.Sleep(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	res, _ := Run(ctx, s.cfg)
	if res.ExitCode != lib.ExitExternalAbort {
		t.Fatalf("exit code %d (%v), want 105", res.ExitCode, res.Err)
	}
	if n, _ := s.runner.TeardownCalls(); n != 1 {
		t.Fatalf("teardown calls = %d, want 1", n)
	}
}

func TestRunFailIs110AfterCompletion(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"iterations":4,"vus":2}`, nil)
	s.runner.Iter = func(ctx context.Context, v *executortest.VU) error {
		s.ctl.Fail("bad result")
		return nil
	}
	res, _ := Run(context.Background(), s.cfg)
	if res.ExitCode != lib.ExitMarkedAsFailed || res.Complete != 4 || res.FailReason != "bad result" {
		t.Fatalf("code %d complete %d reason %q, want 110, 4, bad result", res.ExitCode, res.Complete, res.FailReason)
	}
}

func TestRunSetupTimeoutIs100(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"iterations":1,"setupTimeout":"100ms"}`, executortest.Sleep(0))
	// setup() that returns normally once its context ended (a sleep cut
	// short) still timed out.
	s.runner.SetupFn = func(ctx context.Context) (json.RawMessage, error) {
		<-ctx.Done()
		return nil, nil
	}
	res, _ := Run(context.Background(), s.cfg)
	if res.ExitCode != lib.ExitSetupTimeout || res.Complete != 0 {
		t.Fatalf("code %d complete %d, want 100 and 0", res.ExitCode, res.Complete)
	}
	if n, _ := s.runner.TeardownCalls(); n != 0 {
		t.Fatalf("teardown ran %d times after a failed setup", n)
	}
}

func TestRunSetupExceptionIs107(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{}`, executortest.Sleep(0))
	s.runner.SetupFn = func(ctx context.Context) (json.RawMessage, error) { return nil, errors.New("boom") }
	res, _ := Run(context.Background(), s.cfg)
	if res.ExitCode != lib.ExitScriptException {
		t.Fatalf("code %d, want 107", res.ExitCode)
	}
}

func TestRunThresholdHooks(t *testing.T) {
	t.Parallel()
	t.Run("abortOnFail stops the run with 99 and runs teardown", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, `{"duration":"10s"}`, executortest.Sleep(10*time.Millisecond))
		var calls atomic.Int64
		s.cfg.Hooks.OnThresholdCheck = func(elapsed time.Duration) (bool, string) {
			return calls.Add(1) >= 2, "thresholds on metrics 'iterations' were crossed"
		}
		res, _ := Run(context.Background(), s.cfg)
		if res.ExitCode != lib.ExitThresholdsFailed || calls.Load() < 2 {
			t.Fatalf("code %d after %d checks, want 99 after 2", res.ExitCode, calls.Load())
		}
		if n, _ := s.runner.TeardownCalls(); n != 1 {
			t.Fatalf("teardown calls = %d", n)
		}
	})
	t.Run("final failure is 99", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, `{"iterations":2}`, executortest.Sleep(0))
		s.cfg.Hooks.Finish = func(context.Context, *Result) bool { return true }
		res, _ := Run(context.Background(), s.cfg)
		if res.ExitCode != lib.ExitThresholdsFailed {
			t.Fatalf("code %d, want 99", res.ExitCode)
		}
	})
}

func TestRunMissingExecIs104(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"scenarios":{"a":{"executor":"per-vu-iterations","exec":"nope"}}}`, executortest.Sleep(0))
	res, err := Run(context.Background(), s.cfg)
	if res.ExitCode != lib.ExitInvalidConfig || err == nil {
		t.Fatalf("code %d, want 104", res.ExitCode)
	}
}

func TestRunDroppedIterationsReachOutputs(t *testing.T) {
	t.Parallel()
	s := newSetup(t, `{"scenarios":{"a":{"executor":"constant-arrival-rate","rate":20,"timeUnit":"1s","duration":"1s","preAllocatedVUs":1,"maxVUs":1}}}`,
		executortest.Sleep(200*time.Millisecond))
	var statuses []Status
	var mu sync.Mutex
	s.cfg.Hooks.OnStatus = func(st Status) { mu.Lock(); statuses = append(statuses, st); mu.Unlock() }
	res, _ := Run(context.Background(), s.cfg)
	if res.Dropped == 0 || float64(res.Dropped) != s.rec.sum("dropped_iterations") {
		t.Fatalf("dropped=%d, dropped_iterations samples=%v", res.Dropped, s.rec.sum("dropped_iterations"))
	}
	if res.Complete+res.Dropped+res.Interrupted != 20 {
		t.Fatalf("complete %d + dropped %d + interrupted %d != 20", res.Complete, res.Dropped, res.Interrupted)
	}
	mu.Lock()
	defer mu.Unlock()
	if statuses[len(statuses)-1] != StatusEnded {
		t.Fatalf("statuses %v do not end with ended", statuses)
	}
}
