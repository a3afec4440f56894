package executor

import (
	"context"
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/options"
)

// Scheduler runs every scenario of a run, each from its startTime on.
type Scheduler struct {
	execs []Executor
	plan  Plan
}

// NewScheduler makes the executors of the scenarios (sorted by startTime,
// then name).
func NewScheduler(sc options.Scenarios, env *Env) (*Scheduler, error) {
	s := &Scheduler{plan: NewPlan(sc)}
	for _, c := range sc.Sorted() {
		ex, err := New(c, env)
		if err != nil {
			return nil, err
		}
		s.execs = append(s.execs, ex)
	}
	return s, nil
}

// CheckExec returns an error (exit code 104) naming the first scenario
// whose exec is not an exported function of the script.
func CheckExec(sc options.Scenarios, isExecutable func(string) bool) error {
	for _, c := range sc.Sorted() {
		if !isExecutable(c.ExecName()) {
			return lib.Errorf(lib.ExitInvalidConfig, "scenario %q: exec %q is not an exported function of the script", c.Name, c.ExecName())
		}
	}
	return nil
}

// Plan returns the merged execution plan.
func (s *Scheduler) Plan() Plan { return s.plan }

// Executors returns the executors, in start order.
func (s *Scheduler) Executors() []Executor { return s.execs }

// Run starts every scenario at its startTime after now and returns when
// all have ended. Cancelling ctx stops every scenario at once.
func (s *Scheduler) Run(ctx context.Context) {
	start := time.Now()
	var wg sync.WaitGroup
	for _, ex := range s.execs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(ctx, start.Add(ex.Scenario().StartTime.D())) {
				return
			}
			_ = ex.Run(ctx)
		}()
	}
	wg.Wait()
}
