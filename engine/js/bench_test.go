package js

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/internal/syncbuf"
)

const trivialScript = `import { check } from 'k6';
export const options = { vus: 1 };
export default function () { check(1, { ok: true }); }
`

// benchEnv parses src and returns a runner plus a draining sample channel.
func benchEnv(b *testing.B, src string, envVars map[string]string) (*Runner, chan metrics.Samples) {
	b.Helper()
	p := writeScript(b, map[string]string{"main.js": src}, "main.js")
	s, err := Parse(context.Background(), Config{Filename: p, Env: envVars, Console: &syncbuf.Buffer{}})
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.NewRunner(RunnerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan metrics.Samples, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	b.Cleanup(func() { close(ch); <-done })
	return r, ch
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkVUMemory reports the heap held per initialised VU.
func BenchmarkVUMemory(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("vus=%d", n), func(b *testing.B) {
			r, ch := benchEnv(b, trivialScript, nil)
			var perVU float64
			for i := 0; i < b.N; i++ {
				before := heapInuse()
				vus := make([]lib.InitializedVU, n)
				for j := range vus {
					v, err := r.NewVU(context.Background(), uint64(j+1), uint64(j+1), ch)
					if err != nil {
						b.Fatal(err)
					}
					vus[j] = v
				}
				after := heapInuse()
				perVU = float64(after-before) / float64(n)
				runtime.KeepAlive(vus)
			}
			b.ReportMetric(perVU, "bytes/VU")
		})
	}
}

func activateBench(b *testing.B, r *Runner, ch chan metrics.Samples, id uint64) lib.ActiveVU {
	v, err := r.NewVU(context.Background(), id, id, ch)
	if err != nil {
		b.Fatal(err)
	}
	return v.Activate(&lib.ActivationParams{
		RunContext: context.Background(),
		Scenario:   &lib.ScenarioState{Name: "default", Executor: "constant-vus"},
		Tags:       map[string]string{"scenario": "default"},
	})
}

// baselineCall is the cost of calling an empty JS function from Go on a
// bare sobek runtime: the floor for one iteration.
func baselineCall() time.Duration {
	rt := sobek.New()
	v, _ := rt.RunString("(function () {})")
	fn, _ := sobek.AssertFunction(v)
	const n = 200000
	start := time.Now()
	for i := 0; i < n; i++ {
		_, _ = fn(sobek.Undefined())
	}
	return time.Since(start) / n
}

// BenchmarkEmptyIteration measures RunOnce of an empty default function,
// on 1 VU and on 2×GOMAXPROCS VUs in parallel; it reports iterations/s and
// the ratio of one iteration to a bare sobek function call.
func BenchmarkEmptyIteration(b *testing.B) {
	const src = "export default function () {}\n"
	b.Run("vus=1", func(b *testing.B) {
		r, ch := benchEnv(b, src, nil)
		a := activateBench(b, r, ch, 1)
		base := baselineCall()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := a.RunOnce(); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		b.ReportMetric(float64(b.N)/el.Seconds(), "iters/s")
		b.ReportMetric(float64(el)/float64(b.N)/float64(base), "x-bare-call")
	})
	b.Run("vus=2xGOMAXPROCS", func(b *testing.B) {
		r, ch := benchEnv(b, src, nil)
		n := 2 * runtime.GOMAXPROCS(0)
		vus := make([]lib.ActiveVU, n)
		for i := range vus {
			vus[i] = activateBench(b, r, ch, uint64(i+1))
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for i, a := range vus {
			iters := b.N / n
			if i < b.N%n {
				iters++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < iters; j++ {
					if err := a.RunOnce(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "iters/s")
	})
}

// BenchmarkResolvedPromise measures one promise settled from Go through the
// event loop (RegisterCallback + enqueue + resolve + await), against a
// plain `await Promise.resolve()` in the same process.
func BenchmarkResolvedPromise(b *testing.B) {
	const src = `import { resolved } from 'k6/x/jstest';
const n = Number(__ENV.N);
export default async function () { for (let i = 0; i < n; i++) await resolved(); }
export async function plain() { for (let i = 0; i < n; i++) await Promise.resolve(1); }
`
	run := func(b *testing.B, exec string) time.Duration {
		r, ch := benchEnv(b, src, map[string]string{"N": strconv.Itoa(b.N)})
		v, err := r.NewVU(context.Background(), 1, 1, ch)
		if err != nil {
			b.Fatal(err)
		}
		a := v.Activate(&lib.ActivationParams{RunContext: context.Background(), Exec: exec})
		b.ResetTimer()
		start := time.Now()
		if err := a.RunOnce(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var plain time.Duration
	b.Run("plain-await", func(b *testing.B) { plain = run(b, "plain") / time.Duration(b.N) })
	b.Run("event-loop", func(b *testing.B) {
		d := run(b, "default") / time.Duration(b.N)
		if plain > 0 {
			b.ReportMetric(float64(d)/float64(plain), "x-plain-await")
		}
	})
}
