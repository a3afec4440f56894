package cdeload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/js"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
	"github.com/cdeload/cdeload/internal/syncbuf"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
)

// TestMain runs every test against the module registered by init, whose
// embedded lab (one per test binary) starts on the first network call and
// is closed here, the way the host closes modules after a run. An egress
// guard catches any HTTP request headed off the machine.
func TestMain(m *testing.M) {
	os.Exit(egressguard.Run(func() int {
		code := m.Run()
		mod, _ := modules.Lookup(ImportPath)
		if err := mod.(io.Closer).Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the module:", err)
			code = 1
		}
		return code
	}))
}

// reports receives values from scripts through k6/x/cdeloadtest's
// report(name, value), as JSON.
var reports = &reportStore{vals: map[string][]string{}}

type reportStore struct {
	mu   sync.Mutex
	vals map[string][]string // key: test id + name
}

func init() { modules.Register("k6/x/cdeloadtest", testModule{}) }

type testModule struct{}

func (testModule) NewModuleInstance(vu modules.VU) modules.Instance { return testInstance{vu} }

type testInstance struct{ vu modules.VU }

func (i testInstance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		// report(test, name, value) stores JSON.stringify(value).
		"report": func(test, name string, v sobek.Value) {
			b, err := json.Marshal(v.Export())
			if err != nil {
				panic(i.vu.Runtime().NewGoError(err))
			}
			reports.mu.Lock()
			reports.vals[test+"/"+name] = append(reports.vals[test+"/"+name], string(b))
			reports.mu.Unlock()
		},
	}}
}

// sink drains a sample channel.
type sink struct {
	ch   chan metrics.Samples
	mu   sync.Mutex
	all  []metrics.Sample
	done chan struct{}
}

func newSink() *sink {
	s := &sink{ch: make(chan metrics.Samples, 16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for b := range s.ch {
			s.mu.Lock()
			s.all = append(s.all, b...)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sink) close() { close(s.ch); <-s.done }

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

func (s *sink) sum(name string) float64 {
	var v float64
	for _, x := range s.samples(name) {
		v += x.Value
	}
	return v
}

type control struct{}

func (control) Abort(string)                {}
func (control) Fail(string)                 {}
func (control) Instance() lib.InstanceStats { return lib.InstanceStats{} }
func (control) Options() json.RawMessage    { return json.RawMessage(`{}`) }

// run is one script run: its samples and console.
type run struct {
	t       *testing.T
	id      string
	sink    *sink
	console *syncbuf.Buffer
}

// parse writes src to a temp dir and parses it (VU 0 runs the init code).
func parse(t *testing.T, src string, env map[string]string) (*js.Script, *syncbuf.Buffer, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "test.js")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	console := &syncbuf.Buffer{}
	s, err := js.Parse(context.Background(), js.Config{
		Filename: file, Env: env, Console: console,
		RunTags: metrics.NewTagSet(map[string]string{"testid": "cdeload"}),
	})
	return s, console, err
}

// runScript runs src's default function once on VU 1 and waits for it.
// The script reaches the test through report(TEST, name, value), where
// TEST is a global set to the test's name.
func runScript(t *testing.T, src string, env map[string]string) *run {
	t.Helper()
	reports.mu.Lock()
	for k := range reports.vals {
		if strings.HasPrefix(k, t.Name()+"/") {
			delete(reports.vals, k)
		}
	}
	reports.mu.Unlock()
	src = fmt.Sprintf("const TEST = %q;\n", t.Name()) + src
	s, console, err := parse(t, src, env)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, console)
	}
	r, err := s.NewRunner(js.RunnerConfig{Control: control{}})
	if err != nil {
		t.Fatal(err)
	}
	sk := newSink()
	vu, err := r.NewVU(context.Background(), 1, 1, sk.ch)
	if err != nil {
		t.Fatalf("NewVU: %v\n%s", err, console)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	active := vu.Activate(&lib.ActivationParams{
		RunContext:    ctx,
		Scenario:      &lib.ScenarioState{Name: "sc", Executor: "per-vu-iterations", StartTime: time.Now()},
		Tags:          map[string]string{"scenario": "sc"},
		Deactivate:    func(lib.InitializedVU) {},
		NextIteration: func() (uint64, uint64) { return 0, 0 },
	})
	err = active.RunOnce()
	cancel()
	sk.close()
	if err != nil {
		t.Fatalf("RunOnce: %v\n%s", err, console)
	}
	if strings.Contains(console.String(), "level=error") {
		t.Fatalf("the script failed:\n%s", console)
	}
	return &run{t: t, id: t.Name(), sink: sk, console: console}
}

// report decodes the single value the script reported under name.
func (r *run) report(name string, out any) {
	r.t.Helper()
	reports.mu.Lock()
	vals := reports.vals[r.id+"/"+name]
	reports.mu.Unlock()
	if len(vals) != 1 {
		r.t.Fatalf("report %q: got %d values, want 1\nconsole:\n%s", name, len(vals), r.console)
	}
	if err := json.Unmarshal([]byte(vals[0]), out); err != nil {
		r.t.Fatalf("report %q = %s: %v", name, vals[0], err)
	}
}

// reportString returns the string the script reported under name.
func (r *run) reportString(name string) string {
	r.t.Helper()
	var s string
	r.report(name, &s)
	return s
}
