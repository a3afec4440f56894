package js

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

func checkResults(t *testing.T, s *sink) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, c := range s.samples("checks") {
		name, _ := c.Tags.Get("check")
		out[name] = append(out[name], c.Value)
	}
	return out
}

func allPassed(t *testing.T, s *sink, want int) {
	t.Helper()
	got := s.waitFor(t, "checks", want)
	if len(got) != want {
		t.Fatalf("got %d checks, want %d: %v", len(got), want, checkResults(t, s))
	}
	for name, vals := range checkResults(t, s) {
		for _, v := range vals {
			if v != 1 {
				t.Errorf("check %q failed", name)
			}
		}
	}
}

func TestGoExtensionModule(t *testing.T) {
	before := jstestNamed.instances.Load()
	e := load(t, "xmod.js")
	if n := jstestNamed.instances.Load() - before; n != 1 {
		t.Fatalf("VU 0 made %d instances of k6/x/jstest, want 1", n)
	}
	for id := uint64(1); id <= 2; id++ {
		a := e.activate(t, context.Background(), id, "")
		if err := a.RunOnce(); err != nil {
			t.Fatalf("RunOnce: %v\n%s", err, e.console)
		}
	}
	if n := jstestNamed.instances.Load() - before; n != 3 {
		t.Fatalf("got %d instances of k6/x/jstest, want 3 (VU 0 and two VUs)", n)
	}
	allPassed(t, e.sink, 12)
	if out := e.console.String(); out != "" {
		t.Fatalf("unexpected console output: %s", out)
	}
}

func TestAsyncAndTimers(t *testing.T) {
	e := load(t, "async.js")
	a := e.activate(t, context.Background(), 1, "")
	for i := 0; i < 3; i++ {
		if err := a.RunOnce(); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		// the late timer's check must be in before RunOnce returns
		if got := len(e.sink.waitFor(t, "checks", 2*(i+1))); got != 2*(i+1) {
			t.Fatalf("after iteration %d: %d checks", i, got)
		}
	}
	allPassed(t, e.sink, 6)
	if out := e.console.String(); out != "" {
		t.Fatalf("unexpected console output: %s", out)
	}
}

func runExec(t *testing.T, e *env, ctx context.Context, exec string) error {
	t.Helper()
	return e.activate(t, ctx, 1, exec).RunOnce()
}

func TestIterationErrors(t *testing.T) {
	cases := []struct {
		exec    string
		log     []string
		checks  map[string][]float64
		iterate bool
	}{
		{exec: "throws", log: []string{"level=error", "Error: boom in iteration", "errors.js:", "source=stacktrace", "scenario=sc"},
			checks: map[string][]float64{"before": {1}}, iterate: true},
		{exec: "asyncThrows", log: []string{"async boom"}, iterate: true},
		{exec: "unhandled", log: []string{"Uncaught (in promise)", "nobody handles me"}, iterate: true},
		{exec: "checkThrows", log: nil, iterate: true,
			checks: map[string][]float64{"first passes": {1}, "second throws": {0}, "rethrown": {1}}},
		{exec: "asyncCheck", log: []string{"async function"}, iterate: true, checks: map[string][]float64{}},
		{exec: "asyncGroup", log: []string{"async functions are not supported in group()"}, iterate: true},
		{exec: "fails", iterate: true, checks: map[string][]float64{"still runs after fail": {1}}},
	}
	for _, c := range cases {
		t.Run(c.exec, func(t *testing.T) {
			e := load(t, "errors.js")
			if err := runExec(t, e, context.Background(), c.exec); err != nil {
				t.Fatalf("RunOnce = %v, want nil (a complete iteration)", err)
			}
			out := e.console.String()
			t.Logf("console:\n%s", out)
			for _, want := range c.log {
				if !strings.Contains(out, want) {
					t.Errorf("console output lacks %q:\n%s", want, out)
				}
			}
			if c.log == nil && out != "" && c.exec != "fails" {
				t.Errorf("unexpected output: %s", out)
			}
			if got := len(e.sink.waitFor(t, "iterations", 1)); got != 1 {
				t.Errorf("iterations samples = %d, want 1", got)
			}
			if c.checks != nil {
				got := checkResults(t, e.sink)
				if len(got) != len(c.checks) {
					t.Errorf("checks = %v, want %v", got, c.checks)
				}
				for k, v := range c.checks {
					if len(got[k]) != len(v) || got[k][0] != v[0] {
						t.Errorf("check %q = %v, want %v", k, got[k], v)
					}
				}
			}
		})
	}
}

func TestAbortAndFail(t *testing.T) {
	e := load(t, "errors.js")
	err := runExec(t, e, context.Background(), "aborts")
	var ae *lib.AbortError
	if !errors.As(err, &ae) || ae.Reason != "enough" {
		t.Fatalf("RunOnce = %v, want *lib.AbortError{enough}", err)
	}
	if len(e.ctl.aborted) != 1 || e.ctl.aborted[0] != "enough" {
		t.Fatalf("Control.Abort calls = %v", e.ctl.aborted)
	}
	if n := len(e.sink.samples("checks")); n != 0 {
		t.Fatalf("code after abort ran: %d checks", n)
	}
	if err := runExec(t, e, context.Background(), "fails"); err != nil {
		t.Fatal(err)
	}
	if len(e.ctl.failed) != 1 || e.ctl.failed[0] != "marked" {
		t.Fatalf("Control.Fail calls = %v", e.ctl.failed)
	}
}

func TestInterruption(t *testing.T) {
	for _, exec := range []string{"spin", "waitForever", "sleeps"} {
		t.Run(exec, func(t *testing.T) {
			e := load(t, "errors.js")
			ctx, cancel := context.WithCancel(context.Background())
			a := e.activate(t, ctx, 1, exec)
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			err := a.RunOnce()
			if !errors.Is(err, lib.ErrInterrupted) {
				t.Fatalf("RunOnce = %v, want lib.ErrInterrupted", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("interruption took %s", d)
			}
			if n := len(e.sink.samples("iterations")); n != 0 {
				t.Fatalf("an interrupted iteration emitted %d iterations samples", n)
			}
			if err := a.RunOnce(); !errors.Is(err, lib.ErrInterrupted) {
				t.Fatalf("RunOnce after the end = %v", err)
			}
		})
	}
}

func TestConsole(t *testing.T) {
	e := load(t, "errors.js")
	if err := runExec(t, e, context.Background(), "consoleOut"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(e.console.String()), "\n")
	want := []string{
		`level=info msg="hello {\"a\":1} 3" source=console`,
		`level=warning msg="careful" source=console`,
		`level=error msg="Error: bad" source=console`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), e.console)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], `time="`) || !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %s, want suffix %s", i, lines[i], w)
		}
	}
}
