package cdeload

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/sshtraffic"
)

// plainCollector is the observer of bench/echo/baseline: it keeps every RTT
// under a mutex and nothing else.
type plainCollector struct {
	mu   sync.Mutex
	rtts []time.Duration
}

func (c *plainCollector) OnRTT(d time.Duration, _ uint64) {
	c.mu.Lock()
	c.rtts = append(c.rtts, d)
	c.mu.Unlock()
}
func (c *plainCollector) OnBytes(int, int) {}
func (c *plainCollector) OnTickMissed(int) {}
func (c *plainCollector) OnError(error)    {}

// observerFrames drives streams observers the way sshtraffic's echo
// engine does at 10 frames/s each (OnBytes for the write, then OnRTT and
// OnBytes for the read) for rounds ticks, and returns the process CPU time
// and heap allocations per frame. Being in wall-clock time, it includes
// whatever the observers cost per stream and second (goroutines, timers),
// not only per call.
func observerFrames(b *testing.B, streams, rounds int, newObs func() (sshtraffic.Observer, func())) (cpuNs, allocs float64) {
	b.Helper()
	obs := make([]sshtraffic.Observer, streams)
	ends := make([]func(), streams)
	for i := range obs {
		obs[i], ends[i] = newObs()
	}
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	var wg sync.WaitGroup
	for i := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the streams over one interval, as bench/echo does.
			time.Sleep(time.Duration(i) * 100 * time.Millisecond / time.Duration(streams))
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for k := range rounds {
				obs[i].OnBytes(128, 0)
				obs[i].OnRTT(time.Millisecond, uint64(k))
				obs[i].OnBytes(0, 128)
				<-t.C
			}
		}()
	}
	wg.Wait()
	for _, end := range ends {
		end()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	frames := float64(streams * rounds)
	cpu := func(ru syscall.Rusage) float64 {
		return float64(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return (cpu(ru1) - cpu(ru0)) / frames, float64(ms1.Mallocs-ms0.Mallocs) / frames
}

// BenchmarkEchoFrameObserver measures, in one run, the CPU time and
// allocations per echo frame of the observer the cdeload module gives an
// echo stream (it batches samples into the VU's channel) against the plain
// Go baseline's (bench/echo/baseline), for 100 streams at 10 frames/s, and
// reports their ratio. The same recorder serves ssh.echo and the web
// terminal's echo.
func BenchmarkEchoFrameObserver(b *testing.B) {
	const streams, rounds = 100, 10
	var plainCPU, plainAllocs, recCPU, recAllocs float64
	for range b.N {
		c, a := observerFrames(b, streams, rounds, func() (sshtraffic.Observer, func()) {
			return &plainCollector{}, func() {}
		})
		plainCPU, plainAllocs = plainCPU+c, plainAllocs+a
		e, stop := drainedEmitter(b)
		c, a = observerFrames(b, streams, rounds, func() (sshtraffic.Observer, func()) {
			r := e.startStream("ssh", nil)
			return r, r.finish
		})
		stop()
		recCPU, recAllocs = recCPU+c, recAllocs+a
	}
	n := float64(b.N)
	b.ReportMetric(plainCPU/n, "baseline-cpu-ns/frame")
	b.ReportMetric(recCPU/n, "cdeload-cpu-ns/frame")
	b.ReportMetric(recCPU/plainCPU, "cpu-ratio")
	b.ReportMetric(plainAllocs/n, "baseline-allocs/frame")
	b.ReportMetric(recAllocs/n, "cdeload-allocs/frame")
}

// drainedEmitter is benchEmitter without its per-op report.
func drainedEmitter(b *testing.B) (*emitter, func()) {
	reg := metrics.NewRegistry()
	ms, err := registerMetrics(reg, metrics.RegisterBuiltin(reg))
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan metrics.Samples, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	e := &emitter{ctx: context.Background(), ch: ch, tags: metrics.NewTagSet(map[string]string{"scenario": "s"}),
		meta: map[string]string{"workspace": "ws"}, ms: ms}
	return e, func() {
		close(ch)
		<-done
	}
}
