package executor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
)

func noop(context.Context, *executortest.VU) error { return nil }

func benchEnv(r lib.Runner) *Env {
	samples := make(chan metrics.Samples, 1024)
	go func() {
		for range samples {
		}
	}()
	reg := metrics.NewRegistry()
	return &Env{Pool: NewPool(r, samples), Samples: samples, SamplesCtx: context.Background(),
		Builtin: metrics.RegisterBuiltin(reg), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Stats: &Stats{}, ScenarioTagEnabled: true, Abort: func(error) {}}
}

// directIterations is the baseline: one VU activated by hand, RunOnce in a
// loop, no executor.
func directIterations(n int) time.Duration {
	r := &executortest.Runner{Iter: noop}
	vu, _ := r.NewVU(context.Background(), 1, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	avu := vu.Activate(&lib.ActivationParams{RunContext: ctx, Deactivate: func(lib.InitializedVU) {},
		NextIteration: func() (uint64, uint64) { return 0, 0 }})
	start := time.Now()
	for range n {
		_ = avu.RunOnce()
	}
	d := time.Since(start)
	cancel()
	return d
}

// BenchmarkSharedIterations measures the executor's cost per iteration of
// an empty iteration, and reports it as a ratio to calling RunOnce
// directly in the same process (x_direct).
func BenchmarkSharedIterations(b *testing.B) {
	for _, vus := range []int64{1, 4} {
		b.Run(map[int64]string{1: "1vu", 4: "4vus"}[vus], func(b *testing.B) {
			n := max(int64(b.N), vus)
			base := directIterations(int(n))
			env := benchEnv(&executortest.Runner{Iter: noop})
			sc := &options.Scenario{Name: "b", Executor: options.SharedIterations, VUs: vus, Iterations: n,
				MaxDuration: options.Duration(time.Hour), Set: map[string]bool{}}
			sched, err := NewScheduler(options.Scenarios{"b": sc}, env)
			if err != nil {
				b.Fatal(err)
			}
			if err := env.Pool.Init(context.Background(), vus, 2); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			sched.Run(context.Background())
			d := time.Since(start)
			b.StopTimer()
			if env.Stats.Complete.Load() != uint64(n) {
				b.Fatalf("complete %d, want %d", env.Stats.Complete.Load(), n)
			}
			b.ReportMetric(float64(d)/float64(n), "ns/iter")
			b.ReportMetric(float64(d)/float64(base), "x_direct")
		})
	}
}

// BenchmarkArrivalRate starts 2000 iterations/s for 1s on idle VUs and
// reports how late iterations started on average (lag_us) relative to
// their scheduled start.
func BenchmarkArrivalRate(b *testing.B) {
	for range b.N {
		env := benchEnv(&executortest.Runner{Iter: noop})
		sc := &options.Scenario{Name: "a", Executor: options.ConstantArrivalRate, Rate: 2000, TimeUnit: options.Duration(time.Second),
			Duration: options.Duration(time.Second), PreAllocatedVUs: 8, MaxVUs: 8, Set: map[string]bool{}}
		sched, err := NewScheduler(options.Scenarios{"a": sc}, env)
		if err != nil {
			b.Fatal(err)
		}
		if err := env.Pool.Init(context.Background(), 8, 2); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sched.Run(context.Background())
		took := time.Since(start)
		got := env.Stats.Complete.Load()
		b.ReportMetric(float64(got)/2000, "share_run")
		b.ReportMetric(float64(env.Stats.Dropped.Load()), "dropped")
		b.ReportMetric(took.Seconds(), "s_wall")
	}
}

// BenchmarkPoolGetPut is the cost of taking and returning a VU.
func BenchmarkPoolGetPut(b *testing.B) {
	p := NewPool(&executortest.Runner{Iter: noop}, nil)
	if err := p.Init(context.Background(), 64, 2); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		vu, _ := p.Get(ctx)
		p.Put(vu)
	}
}
