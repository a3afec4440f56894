package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/run"
)

// testRun is a real run of Go iterations with the API in front of it.
type testRun struct {
	ctl    *Control
	srv    *Server
	runner *executortest.Runner
	cfg    run.Config
	base   string
}

func newTestRun(t *testing.T, opts string, iter func(context.Context, *executortest.VU) error) *testRun {
	t.Helper()
	o, _, err := options.Parse([]byte(opts))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := options.Consolidate(options.Tier{Name: "script", Options: o})
	if err != nil {
		t.Fatal(err)
	}
	if iter == nil {
		iter = func(context.Context, *executortest.VU) error { return nil }
	}
	reg := metrics.NewRegistry()
	b := metrics.RegisterBuiltin(reg)
	tr := &testRun{runner: &executortest.Runner{Iter: iter, Builtin: b}, ctl: NewControl(options.IsSet(c.Paused))}
	tr.cfg = run.Config{Options: c, Registry: reg, Builtin: b, RunTags: metrics.NewTagSet(nil),
		NewRunner: func(lib.TestControl) (lib.Runner, error) { return tr.runner, nil }}
	tr.ctl.Install(&tr.cfg.Hooks)
	tr.srv, err = Listen("127.0.0.1:0", tr.ctl, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.srv.Close(context.Background()) })
	tr.base = "http://" + tr.srv.Addr().String()
	return tr
}

// start runs the test in the background; the channel gets the result.
func (tr *testRun) start() <-chan *run.Result {
	ch := make(chan *run.Result, 1)
	go func() {
		res, _ := run.Run(context.Background(), tr.cfg)
		ch <- res
	}()
	return ch
}

type doc struct {
	Data struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Attributes Status `json:"attributes"`
	} `json:"data"`
	Errors []apiError `json:"errors"`
}

func do(t *testing.T, method, url, body string) (int, doc, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var d doc
	if method != http.MethodHead && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", method, url, err, b)
		}
	}
	return resp.StatusCode, d, string(b)
}

func (tr *testRun) waitStatus(t *testing.T, want run.Status) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, d, _ := do(t, http.MethodGet, tr.base+"/v1/status", "")
		if d.Data.Attributes.Status == want {
			return d.Data.Attributes
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("status %s never reached", want)
	return Status{}
}

const resumeBody = `{"data":{"attributes":{"paused":false,"stopped":false},"id":"default","type":"status"}}`

func TestPausedRunWaitsForResume(t *testing.T) {
	t.Parallel()
	tr := newTestRun(t, `{"paused":true,"scenarios":{"a":{"executor":"shared-iterations","vus":2,"iterations":6}}}`, nil)
	done := tr.start()
	st := tr.waitStatus(t, run.StatusPausedBeforeRun)
	if !st.Paused || st.Running || st.VUsMax != 2 || st.VUs != 0 || st.Stopped {
		t.Fatalf("paused: %+v", st)
	}
	select {
	case <-done:
		t.Fatal("the run ended while paused")
	case <-time.After(100 * time.Millisecond):
	}
	code, d, body := do(t, http.MethodPatch, tr.base+"/v1/status", resumeBody)
	if code != 200 || d.Data.Type != "status" || d.Data.ID != "default" || d.Data.Attributes.Paused {
		t.Fatalf("resume: %d %s", code, body)
	}
	res := <-done
	if res.ExitCode != 0 || res.Complete != 6 {
		t.Fatalf("exit %d, %d iterations; want 0 and 6", res.ExitCode, res.Complete)
	}
	st = tr.ctl.Status()
	if st.Status != run.StatusEnded || st.Running || st.Stopped {
		t.Fatalf("after the end: %+v", st)
	}
	// The server keeps answering after the run.
	if code, _, _ := do(t, http.MethodGet, tr.base+"/v1/status", ""); code != 200 {
		t.Fatalf("GET after the run: %d", code)
	}
}

func TestResumeBeforeWaitIsLatched(t *testing.T) {
	t.Parallel()
	tr := newTestRun(t, `{"paused":true,"scenarios":{"a":{"executor":"per-vu-iterations","vus":2,"iterations":1}}}`, nil)
	tr.runner.InitDelay = 300 * time.Millisecond
	done := tr.start()
	tr.waitStatus(t, run.StatusInitVUs)
	if code, _, body := do(t, http.MethodPatch, tr.base+"/v1/status", resumeBody); code != 200 {
		t.Fatalf("resume during VU init: %d %s", code, body)
	}
	select {
	case res := <-done:
		if res.ExitCode != 0 || res.Complete != 2 {
			t.Fatalf("exit %d, %d iterations; want 0 and 2", res.ExitCode, res.Complete)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a resume sent during VU init was lost")
	}
}

func TestStopRunsTeardownAndExits103(t *testing.T) {
	t.Parallel()
	var iters atomic.Int64
	tr := newTestRun(t, `{"scenarios":{"a":{"executor":"constant-vus","vus":2,"duration":"30s"}}}`,
		func(ctx context.Context, _ *executortest.VU) error {
			iters.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			return nil
		})
	done := tr.start()
	st := tr.waitStatus(t, run.StatusRunning)
	if !st.Running || st.Paused {
		t.Fatalf("running: %+v", st)
	}
	for iters.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	code, d, body := do(t, http.MethodPatch, tr.base+"/v1/status",
		`{"data":{"type":"status","id":"default","attributes":{"stopped":true}}}`)
	if code != 200 || !d.Data.Attributes.Stopped {
		t.Fatalf("stop: %d %s", code, body)
	}
	res := <-done
	if res.ExitCode != lib.ExitStoppedByAPI || !res.Aborted {
		t.Fatalf("exit %d (aborted=%v), want 103", res.ExitCode, res.Aborted)
	}
	if n, _ := tr.runner.TeardownCalls(); n != 1 {
		t.Fatalf("teardown ran %d times, want 1", n)
	}
}

func TestStopBeforeTheRunStartsIsApplied(t *testing.T) {
	t.Parallel()
	tr := newTestRun(t, `{"paused":true,"scenarios":{"a":{"executor":"per-vu-iterations","vus":1,"iterations":1}}}`, nil)
	tr.ctl.Stop()
	tr.ctl.Resume() // a stopped run is not resumed
	res := <-tr.start()
	if res.ExitCode != lib.ExitStoppedByAPI || res.Complete != 0 {
		t.Fatalf("exit %d, %d iterations; want 103 and none", res.ExitCode, res.Complete)
	}
	if st := tr.ctl.Status(); !st.Stopped || st.Status != run.StatusInterrupted {
		t.Fatalf("after a stop: %+v", st)
	}
}

func TestTaintedFollowsThresholds(t *testing.T) {
	t.Parallel()
	c := NewControl(false)
	var failing atomic.Bool
	c.SetTainted(failing.Load)
	if c.Status().Tainted {
		t.Fatal("tainted before any failure")
	}
	failing.Store(true)
	if !c.Status().Tainted {
		t.Fatal("not tainted with a failing threshold")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := NewControl(false)
	srv, err := Listen("127.0.0.1:0", c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	base := "http://" + srv.Addr().String()
	cases := []struct {
		method, path, body string
		code               int
		detail             string
	}{
		{"PATCH", "/v1/status", `{"data":{"type":"status","id":"default","attributes":{"vus":3}}}`, 500, "live VU configuration updates are not supported"},
		{"PATCH", "/v1/status", `{"data":{"type":"status","id":"default","attributes":{"vus-max":3}}}`, 500, "live VU configuration updates are not supported"},
		{"PATCH", "/v1/status", `{"data":{"type":"status","id":"default","attributes":{"paused":true}}}`, 500, "pausing a running test is not supported"},
		{"PATCH", "/v1/status", `{"data":{"type":"groups","attributes":{}}}`, 400, `data.type is "groups"`},
		{"PATCH", "/v1/status", `{}`, 400, `no "data" object`},
		{"PATCH", "/v1/status", `not json`, 400, "not a JSON:API status document"},
		{"DELETE", "/v1/status", ``, 405, "DELETE is not allowed"},
		{"GET", "/v1/nothing", ``, 404, "/v1/nothing is not served"},
	}
	for _, tc := range cases {
		code, d, body := do(t, tc.method, base+tc.path, tc.body)
		if code != tc.code || len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Detail, tc.detail) || d.Errors[0].Status != strconv.Itoa(tc.code) {
			t.Errorf("%s %s %s: got %d %s; want %d with detail %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.detail)
		}
	}
	if code, _, body := do(t, "GET", base+"/ping", ""); code != 200 || body != "ok" {
		t.Fatalf("/ping: %d %q", code, body)
	}
}

func TestListenOnABusyAddressExits106(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(ln.Addr().String(), NewControl(false), nil)
	if err == nil || lib.ExitCodeOf(err) != lib.ExitCannotStartAPI || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("want an error with exit code 106 naming the address, got %v (code %d)", err, lib.ExitCodeOf(err))
	}
}

func TestWaitStartEndsWithItsContext(t *testing.T) {
	t.Parallel()
	c := NewControl(true)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("interrupted")
	cancel(cause)
	if err := c.WaitStart(ctx); !errors.Is(err, cause) {
		t.Fatalf("WaitStart = %v, want the context's cause", err)
	}
}
