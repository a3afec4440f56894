package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/options"
)

func TestSharedIterationsRunsExactlyTheIterations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(5*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "s", Executor: options.SharedIterations, VUs: 3, Iterations: 20,
		MaxDuration: ms(5000), GracefulStop: ms(1000)})
	if got := h.env.Stats.Complete.Load(); got != 20 {
		t.Fatalf("complete iterations = %d, want 20", got)
	}
	if got := h.runner.MaxActive(); got != 3 {
		t.Fatalf("max active VUs = %d, want 3", got)
	}
	if h.env.Stats.Dropped.Load() != 0 || h.env.Stats.Interrupted.Load() != 0 {
		t.Fatalf("dropped=%d interrupted=%d, want 0", h.env.Stats.Dropped.Load(), h.env.Stats.Interrupted.Load())
	}
	if h.pool.Free() != 3 {
		t.Fatalf("pool has %d free VUs after the run, want 3", h.pool.Free())
	}
}

func TestSharedIterationsMaxDurationDropsTheRest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(40*time.Millisecond))
	took := h.run(context.Background(), &options.Scenario{Name: "s", Executor: options.SharedIterations, VUs: 2, Iterations: 1000,
		MaxDuration: ms(300), GracefulStop: ms(0)})
	st := h.env.Stats
	c, i, d := st.Complete.Load(), st.Interrupted.Load(), st.Dropped.Load()
	if c+i+d != 1000 {
		t.Fatalf("complete %d + interrupted %d + dropped %d != 1000", c, i, d)
	}
	if c < 6 || c > 16 {
		t.Fatalf("complete = %d, want about 2 VUs × 300ms/40ms = 14", c)
	}
	if int64(d) != h.waitDropped(int64(d)) {
		t.Fatalf("dropped_iterations samples sum to %d, want %d", h.dropped.Load(), d)
	}
	if took > 2*time.Second {
		t.Fatalf("run took %s, want about 300ms", took)
	}
}

func (h *harness) waitDropped(want int64) int64 {
	deadline := time.Now().Add(2 * time.Second)
	for h.dropped.Load() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return h.dropped.Load()
}

func TestPerVUIterations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(2*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "p", Executor: options.PerVUIterations, VUs: 3, Iterations: 4,
		MaxDuration: ms(5000), GracefulStop: ms(1000)})
	if got := h.env.Stats.Complete.Load(); got != 12 {
		t.Fatalf("complete iterations = %d, want 12", got)
	}
}

func TestConstantVUsGracefulStopInterruptsLongIteration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(5*time.Second))
	took := h.run(context.Background(), &options.Scenario{Name: "c", Executor: options.ConstantVUs, VUs: 2,
		Duration: ms(200), GracefulStop: ms(200)})
	if c, i := h.env.Stats.Complete.Load(), h.env.Stats.Interrupted.Load(); c != 0 || i != 2 {
		t.Fatalf("complete=%d interrupted=%d, want 0 and 2", c, i)
	}
	if took < 380*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("run took %s, want duration+gracefulStop = 400ms", took)
	}
}

func TestConstantVUsGracefulStopLetsIterationFinish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(150*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "c", Executor: options.ConstantVUs, VUs: 1,
		Duration: ms(200), GracefulStop: ms(1000)})
	if c, i := h.env.Stats.Complete.Load(), h.env.Stats.Interrupted.Load(); c != 2 || i != 0 {
		t.Fatalf("complete=%d interrupted=%d, want 2 and 0", c, i)
	}
}

func TestRampingVUsFollowsStagesAndStopsHighestFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(10*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "r", Executor: options.RampingVUs, StartVUs: 0,
		Stages:       []options.Stage{{Duration: ms(300), Target: 4}, {Duration: ms(200), Target: 4}, {Duration: ms(400), Target: 0}},
		GracefulStop: ms(500), GracefulRampDown: ms(0)})
	if got := h.runner.MaxActive(); got != 4 {
		t.Fatalf("max active VUs = %d, want 4", got)
	}
	if h.env.Stats.Complete.Load() < 20 {
		t.Fatalf("complete = %d, want at least 20", h.env.Stats.Complete.Load())
	}
	if got := strings.Join(h.runner.Log(), ","); got != "stop 4,stop 3,stop 2,stop 1" {
		t.Fatalf("deactivation order = %s, want the highest VU first", got)
	}
}

func TestRampingVUsGracefulRampDown(t *testing.T) {
	t.Parallel()
	// 2 VUs, ramp to 1 immediately after 100ms; the ramped-down VU is in a
	// 5s iteration and gracefulRampDown is 100ms: it is interrupted.
	h := newHarness(t, func(ctx context.Context, v *executortest.VU) error {
		d := 20 * time.Millisecond
		if v.ID() == 2 {
			d = 5 * time.Second
		}
		return executortest.Sleep(d)(ctx, v)
	})
	took := h.run(context.Background(), &options.Scenario{Name: "r", Executor: options.RampingVUs, StartVUs: 2,
		Stages:       []options.Stage{{Duration: ms(100), Target: 2}, {Duration: ms(0), Target: 1}, {Duration: ms(400), Target: 1}},
		GracefulStop: ms(100), GracefulRampDown: ms(100)})
	if i := h.env.Stats.Interrupted.Load(); i != 1 {
		t.Fatalf("interrupted = %d, want 1 (the ramped-down VU)", i)
	}
	if took > 2*time.Second {
		t.Fatalf("run took %s", took)
	}
}

func TestConstantArrivalRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(5*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "a", Executor: options.ConstantArrivalRate, Rate: 40,
		TimeUnit: ms(1000), Duration: ms(500), PreAllocatedVUs: 2, MaxVUs: 2, GracefulStop: ms(1000)})
	if c, d := h.env.Stats.Complete.Load(), h.env.Stats.Dropped.Load(); c != 20 || d != 0 {
		t.Fatalf("complete=%d dropped=%d, want 20 and 0", c, d)
	}
}

func TestArrivalRateDropsWithoutIdleVU(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(120*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "a", Executor: options.ConstantArrivalRate, Rate: 20,
		TimeUnit: ms(1000), Duration: ms(500), PreAllocatedVUs: 1, MaxVUs: 1, GracefulStop: ms(1000)})
	c, d := h.env.Stats.Complete.Load(), h.env.Stats.Dropped.Load()
	if c+d != 10 {
		t.Fatalf("complete %d + dropped %d != 10 planned iterations", c, d)
	}
	if d < 4 {
		t.Fatalf("dropped = %d, want most of the 10 (one VU busy 120ms, a start every 50ms)", d)
	}
	if h.waitDropped(int64(d)) != int64(d) {
		t.Fatalf("dropped_iterations samples = %d, want %d", h.dropped.Load(), d)
	}
}

func TestArrivalRateInitialisesUnplannedVUs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(100*time.Millisecond))
	h.run(context.Background(), &options.Scenario{Name: "a", Executor: options.ConstantArrivalRate, Rate: 50,
		TimeUnit: ms(1000), Duration: ms(600), PreAllocatedVUs: 1, MaxVUs: 10, GracefulStop: ms(1000)})
	if n := h.pool.Initialized(); n <= 1 || n > 10 {
		t.Fatalf("initialised VUs = %d, want more than the 1 preallocated and at most maxVUs 10", n)
	}
	if int64(h.pool.Free()) != h.pool.Initialized() {
		t.Fatalf("free %d != initialised %d after the run", h.pool.Free(), h.pool.Initialized())
	}
}

func TestRampingArrivalRateStarts(t *testing.T) {
	t.Parallel()
	sc := &options.Scenario{Executor: options.RampingArrivalRate, StartRate: 0, TimeUnit: ms(1000),
		Stages: []options.Stage{{Duration: ms(1000), Target: 10}, {Duration: ms(1000), Target: 10}, {Duration: ms(0), Target: 0}}}
	next := rampingStarts(sc)()
	var got []time.Duration
	for {
		off, ok := next()
		if !ok {
			break
		}
		got = append(got, off)
	}
	// Ramp 0→10/s over 1s: 5 iterations (t = sqrt(k/5) s), then 10 at 10/s.
	if len(got) != 15 {
		t.Fatalf("got %d start times, want 15: %v", len(got), got)
	}
	if d := got[1] - time.Duration(0.4472*float64(time.Second)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("second start at %s, want sqrt(1/5)s ≈ 447ms", got[1])
	}
	if got[5] != time.Second || got[14] != 1900*time.Millisecond {
		t.Fatalf("constant stage starts at %s … %s, want 1s … 1.9s", got[5], got[14])
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("start times not increasing: %v", got)
		}
	}
}

func TestAbortStopsTheRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(ctx context.Context, v *executortest.VU) error {
		if v.Iterations() == 3 {
			return &lib.AbortError{Reason: "enough"}
		}
		return nil
	})
	h.run(context.Background(), &options.Scenario{Name: "s", Executor: options.PerVUIterations, VUs: 1, Iterations: 10,
		MaxDuration: ms(5000), GracefulStop: ms(0)})
	err, _ := h.aborted.Load().(error)
	if lib.ExitCodeOf(err) != lib.ExitScriptAborted {
		t.Fatalf("abort error = %v (code %d), want exit code 108", err, lib.ExitCodeOf(err))
	}
	var ab *lib.AbortError
	if !errors.As(err, &ab) || ab.Reason != "enough" {
		t.Fatalf("abort error %v does not carry the reason", err)
	}
}

func TestStartTimeAndSequentialScenariosShareVUs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, executortest.Sleep(5*time.Millisecond))
	took := h.run(context.Background(),
		&options.Scenario{Name: "first", Executor: options.PerVUIterations, VUs: 3, Iterations: 2, MaxDuration: ms(200), GracefulStop: ms(0)},
		&options.Scenario{Name: "second", Executor: options.ConstantVUs, VUs: 2, Duration: ms(200), GracefulStop: ms(0), StartTime: ms(300)},
	)
	if n := h.pool.Initialized(); n != 3 {
		t.Fatalf("initialised VUs = %d, want 3 (the scenarios do not overlap)", n)
	}
	if took < 480*time.Millisecond {
		t.Fatalf("run took %s, want at least startTime+duration = 500ms", took)
	}
}
