package js

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/internal/syncbuf"
)

// sink drains a sample channel into a slice.
type sink struct {
	ch   chan metrics.Samples
	mu   sync.Mutex
	all  []metrics.Sample
	done chan struct{}
}

func newSink(t testing.TB) *sink {
	s := &sink{ch: make(chan metrics.Samples, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for b := range s.ch {
			s.mu.Lock()
			s.all = append(s.all, b...)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(s.ch); <-s.done })
	return s
}

func (s *sink) samples(name string) []metrics.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metrics.Sample
	for _, x := range s.all {
		if x.Metric.Name == name {
			out = append(out, x)
		}
	}
	return out
}

// waitFor waits until at least n samples of name arrived.
func (s *sink) waitFor(t testing.TB, name string, n int) []metrics.Sample {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.samples(name)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// control records what scripts do through k6/execution.
type control struct {
	mu      sync.Mutex
	aborted []string
	failed  []string
	opts    json.RawMessage
}

func (c *control) Abort(r string) { c.mu.Lock(); c.aborted = append(c.aborted, r); c.mu.Unlock() }
func (c *control) Fail(r string)  { c.mu.Lock(); c.failed = append(c.failed, r); c.mu.Unlock() }
func (c *control) Instance() lib.InstanceStats {
	return lib.InstanceStats{IterationsCompleted: 7, VUsActive: 2, CurrentTestRunDuration: 1500 * time.Millisecond}
}
func (c *control) Options() json.RawMessage { return c.opts }

type env struct {
	script  *Script
	runner  *Runner
	console *syncbuf.Buffer
	ctl     *control
	sink    *sink
}

// load parses a script from testdata (or an absolute path).
func load(t testing.TB, file string, mods ...func(*Config)) *env {
	t.Helper()
	if !filepath.IsAbs(file) {
		file = filepath.Join("testdata", file)
	}
	e := &env{console: &syncbuf.Buffer{}, ctl: &control{opts: json.RawMessage(`{"vus":3}`)}}
	cfg := Config{
		Filename: file,
		Env:      map[string]string{"FOO": "bar"},
		Console:  e.console,
		RunTags:  metrics.NewTagSet(map[string]string{"run": "r1"}),
	}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := Parse(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Parse(%s): %v\nconsole:\n%s", file, err, e.console)
	}
	e.script = s
	e.runner, err = s.NewRunner(RunnerConfig{Control: e.ctl, SetupTimeout: 5 * time.Second, TeardownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.sink = newSink(t)
	return e
}

// writeScript writes files into a temp dir and returns the first's path.
func writeScript(t testing.TB, files map[string]string, main string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, main)
}

// activate makes VU id and activates it on a scenario.
func (e *env) activate(t testing.TB, ctx context.Context, id uint64, exec string) lib.ActiveVU {
	t.Helper()
	v, err := e.runner.NewVU(context.Background(), id, id+100, e.sink.ch)
	if err != nil {
		t.Fatalf("NewVU: %v", err)
	}
	var n uint64
	return v.Activate(&lib.ActivationParams{
		RunContext: ctx,
		Exec:       exec,
		Scenario:   &lib.ScenarioState{Name: "sc", Executor: "shared-iterations", StartTime: time.Unix(1000, 0)},
		Tags:       map[string]string{"scenario": "sc"},
		NextIteration: func() (uint64, uint64) {
			n++
			return n - 1, n + 9
		},
	})
}
