package executor

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
)

type harness struct {
	t       *testing.T
	runner  *executortest.Runner
	pool    *Pool
	env     *Env
	samples chan metrics.Samples
	dropped atomic.Int64
	aborted atomic.Value
	done    chan struct{}
}

func newHarness(t *testing.T, iter func(context.Context, *executortest.VU) error) *harness {
	t.Helper()
	h := &harness{t: t, runner: &executortest.Runner{Iter: iter}, samples: make(chan metrics.Samples, 100), done: make(chan struct{})}
	reg := metrics.NewRegistry()
	h.pool = NewPool(h.runner, h.samples)
	h.env = &Env{
		Pool: h.pool, Samples: h.samples, SamplesCtx: context.Background(), Builtin: metrics.RegisterBuiltin(reg),
		RunTags: metrics.NewTagSet(map[string]string{"testid": "x"}), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Stats: &Stats{}, ScenarioTagEnabled: true,
		Abort: func(err error) { h.aborted.CompareAndSwap(nil, err) },
	}
	go func() {
		defer close(h.done)
		for ss := range h.samples {
			for _, s := range ss {
				if s.Metric.Name == "dropped_iterations" {
					h.dropped.Add(int64(s.Value))
				}
			}
		}
	}()
	t.Cleanup(func() { close(h.samples); <-h.done })
	return h
}

// run initialises the planned VUs and runs the scenarios; it returns the
// wall time.
func (h *harness) run(ctx context.Context, scs ...*options.Scenario) time.Duration {
	h.t.Helper()
	all := options.Scenarios{}
	for _, s := range scs {
		if s.Set == nil {
			s.Set = map[string]bool{}
		}
		all[s.Name] = s
	}
	sched, err := NewScheduler(all, h.env)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.pool.Init(ctx, sched.Plan().MaxPlannedVUs, 4); err != nil {
		h.t.Fatal(err)
	}
	start := time.Now()
	sched.Run(ctx)
	return time.Since(start)
}

func ms(n int) options.Duration { return options.Duration(time.Duration(n) * time.Millisecond) }
