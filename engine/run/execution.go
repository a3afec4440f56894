package run

import (
	"time"

	"github.com/cdeload/cdeload/engine/executor"
	"github.com/cdeload/cdeload/engine/lib"
)

// Execution is a live view of a running test, for progress lines and the
// REST API. Its methods are safe for concurrent use.
type Execution struct {
	r     *runState
	sched *executor.Scheduler
}

// ScenarioProgress is one scenario's progress.
type ScenarioProgress struct {
	Name     string
	Executor string
	// Fraction is 0..1; Status is a short text ("3/10 VUs  4.0s/10s").
	Fraction float64
	Status   string
}

// Counters are the run's live counters.
type Counters struct {
	Elapsed                        time.Duration
	Complete, Interrupted, Dropped uint64
	ActiveVUs, InitializedVUs      int64
}

// Plan returns the execution plan (max VUs, total duration).
func (e *Execution) Plan() executor.Plan { return e.sched.Plan() }

// Scenarios returns the progress of every scenario, in start order.
func (e *Execution) Scenarios() []ScenarioProgress {
	var out []ScenarioProgress
	for _, ex := range e.sched.Executors() {
		f, s := ex.Progress()
		out = append(out, ScenarioProgress{Name: ex.Scenario().Name, Executor: ex.Scenario().Executor, Fraction: f, Status: s})
	}
	return out
}

// Counters returns the current counters.
func (e *Execution) Counters() Counters {
	st := e.r.stats
	c := Counters{Elapsed: e.r.elapsed(), Complete: st.Complete.Load(), Interrupted: st.Interrupted.Load(),
		Dropped: st.Dropped.Load(), ActiveVUs: st.ActiveVUs.Load()}
	if e.r.pool != nil {
		c.InitializedVUs = e.r.pool.Initialized()
	}
	return c
}

// Stop stops the run with err (e.g. exit code 103 for a stop through the
// REST API); teardown still runs. An err without an exit code gets 103.
func (e *Execution) Stop(err error) {
	if lib.ExitCodeOf(err) == lib.ExitUnknown {
		err = lib.WithExitCode(lib.ExitStoppedByAPI, err)
	}
	e.r.fail(err)
}
