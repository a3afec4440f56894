// Package api is k6's REST API for one test run: GET and PATCH
// /v1/status (what the k6-operator's readiness probes, starter and
// stopper use) and GET /ping.
//
// A Control holds the live state of the run and steers it through the
// run's hooks; a Server serves it over HTTP. The server is meant to be
// started before VUs are initialised and to serve until the process
// exits.
package api

import (
	"context"
	"errors"
	"sync"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/run"
)

// ErrLiveVUs is the error for a PATCH that sets vus or vus-max.
var ErrLiveVUs = errors.New("live VU configuration updates are not supported")

// ErrPauseRunning is the error for pausing a test that has started.
var ErrPauseRunning = errors.New("pausing a running test is not supported; only a test started with --paused can wait")

// Status is the attributes of the /v1/status document.
type Status struct {
	// Status is the run's stage as k6's integer enum (run.Status).
	Status run.Status `json:"status"`
	// Paused is true from the start of a --paused run until it is
	// resumed.
	Paused bool `json:"paused"`
	// VUs is the number of active VUs, VUsMax the initialised ones.
	VUs    int64 `json:"vus"`
	VUsMax int64 `json:"vus-max"`
	// Stopped is true once a stop was requested through the API or the
	// run was interrupted.
	Stopped bool `json:"stopped"`
	// Running is true between the start (after any pause) and the end of
	// the run, teardown included.
	Running bool `json:"running"`
	// Tainted is true when a threshold failed at its latest evaluation.
	Tainted bool `json:"tainted"`
}

// Control is the run-side state of the API: it follows the run's status,
// latches a resume that may arrive before the run waits for it, and stops
// the run. Its methods are safe for concurrent use.
type Control struct {
	mu            sync.Mutex
	status        run.Status
	paused        bool
	resumed       chan struct{}
	stopRequested bool
	stopErr       error
	exec          *run.Execution
	tainted       func() bool
}

// NewControl returns the control of a run; paused is the run's paused
// option (--paused, K6_PAUSED, options.paused).
func NewControl(paused bool) *Control {
	return &Control{paused: paused, resumed: make(chan struct{})}
}

// Install sets the run hooks the control needs: OnStatus and OnExecution
// (chained after any already set) and WaitStart.
func (c *Control) Install(h *run.Hooks) {
	prevStatus, prevExec := h.OnStatus, h.OnExecution
	h.OnStatus = func(s run.Status) {
		c.mu.Lock()
		c.status = s
		c.mu.Unlock()
		if prevStatus != nil {
			prevStatus(s)
		}
	}
	h.OnExecution = func(e *run.Execution) {
		c.mu.Lock()
		c.exec = e
		stopErr := c.stopErr
		c.mu.Unlock()
		if prevExec != nil {
			prevExec(e)
		}
		if stopErr != nil {
			e.Stop(stopErr)
		}
	}
	h.WaitStart = c.WaitStart
}

// SetTainted sets the function that reports failing thresholds (the
// metrics engine's Tainted).
func (c *Control) SetTainted(f func() bool) {
	c.mu.Lock()
	c.tainted = f
	c.mu.Unlock()
}

// WaitStart blocks until the run is resumed (now or earlier) or ctx ends.
func (c *Control) WaitStart(ctx context.Context) error {
	select {
	case <-c.resumed:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// Resume starts a paused run, or latches the resume if the run is not
// waiting yet. Resuming a run that is not paused, or that was stopped,
// does nothing.
func (c *Control) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused && !c.stopRequested {
		c.paused = false
		close(c.resumed)
	}
}

// Pause is a PATCH with paused:true. A run started with --paused that has
// not been resumed stays paused; any other run cannot be paused.
func (c *Control) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return nil
	}
	return ErrPauseRunning
}

// Stop stops the run with exit code 103; teardown still runs if setup
// did. A stop that arrives before the run's executors exist is applied as
// soon as they do. Only the first stop counts.
func (c *Control) Stop() {
	c.mu.Lock()
	if c.stopRequested {
		c.mu.Unlock()
		return
	}
	c.stopRequested = true
	c.stopErr = lib.Errorf(lib.ExitStoppedByAPI, "test run stopped through the REST API (PATCH /v1/status stopped:true)")
	e := c.exec
	c.mu.Unlock()
	if e != nil {
		e.Stop(c.stopErr)
	}
}

// Status returns the current status attributes.
func (c *Control) Status() Status {
	c.mu.Lock()
	st := Status{Status: c.status, Paused: c.paused, Stopped: c.stopRequested || c.status == run.StatusInterrupted}
	e, tainted := c.exec, c.tainted
	c.mu.Unlock()
	st.Running = st.Status >= run.StatusStarted && st.Status < run.StatusEnded
	if e != nil {
		n := e.Counters()
		st.VUs, st.VUsMax = n.ActiveVUs, n.InitializedVUs
	}
	if tainted != nil {
		st.Tainted = tainted()
	}
	return st
}
