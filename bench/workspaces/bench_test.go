// Package workspacesbench measures workspace creation against the full lab:
// the Coder API simulator whose workspaces are real tailnet nodes with SSH
// servers (lab/coderbackend). bench/workspaces.sh runs it against a
// `cdeload lab` in another process; without CODER_URL it starts a lab in
// this process.
package workspacesbench

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// concurrency is how many workspaces are created at once (like
// workspace/coder's BenchmarkCreateReady).
const concurrency = 16

// target returns the Coder URL and token to measure: CODER_URL /
// CODER_SESSION_TOKEN, else a lab started in this process.
func target(b *testing.B) (url, token string, external bool) {
	if u := os.Getenv("CODER_URL"); u != "" {
		return u, os.Getenv("CODER_SESSION_TOKEN"), true
	}
	l, err := lab.Start(context.Background(), lab.Config{Parallelism: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l.CoderURL(), l.CoderToken(), false
}

func provider(b *testing.B, url, token string, poll time.Duration) *coder.Provider {
	p, err := coder.NewProvider(coder.Config{URL: url, Token: token, PollInterval: poll,
		Client: coder.ClientOptions{BypassRateLimit: true}, BuildTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

// createReady creates n workspaces, concurrency at a time, waits until each
// is ready and returns workspaces per second.
func createReady(b *testing.B, p *coder.Provider, n int) float64 {
	ctx := context.Background()
	work := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for range work {
				ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
				if err == nil {
					_, err = p.WaitReady(ctx, ws)
				}
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	for range n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkLabCreateReady creates workspaces (scaletest user + workspace +
// build + agent connected and ready) against the lab with build latency 0,
// where every workspace is a tailnet node with an SSH server, and against
// the in-memory simulator (no tailnet) in this process as the baseline.
func BenchmarkLabCreateReady(b *testing.B) {
	url, token, _ := target(b)
	const poll = 2 * time.Millisecond

	mem, err := codersim.New(codersim.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer mem.Close()
	base := provider(b, mem.URL, mem.AdminToken, poll)
	baseRate := createReady(b, base, 200)
	if err := base.Cleanup(context.Background()); err != nil {
		b.Fatal(err)
	}

	p := provider(b, url, token, poll)
	b.ResetTimer()
	rate := createReady(b, p, b.N)
	b.StopTimer()
	b.ReportMetric(rate, "workspaces/s")
	b.ReportMetric(baseRate, "baseline_mem_workspaces/s")
	b.ReportMetric(rate/baseRate, "ratio_lab_to_mem")
	if err := p.Cleanup(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLabMemoryPerWorkspaceInFlight measures the client's heap and
// stack growth per workspace being waited on while the lab has started its
// tailnet workspace and keeps the build running. It needs a lab in another
// process (CODER_URL) started with a long build latency (bench/workspaces.sh
// uses --build-latency 1h), so the lab's memory is not counted.
// INFLIGHT sets how many workspaces are in flight (default 32). It leaves
// its workspaces to the lab: stop the lab afterwards.
func BenchmarkLabMemoryPerWorkspaceInFlight(b *testing.B) {
	url, token, external := target(b)
	if !external {
		b.Skip("needs CODER_URL of a lab in another process started with --build-latency 1h (see bench/workspaces.sh)")
	}
	k := 32
	if v := os.Getenv("INFLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("INFLIGHT=%q: want a positive integer", v)
		}
		k = n
	}
	for i := 0; i < b.N; i++ {
		p := provider(b, url, token, 200*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := p.Client().Me(ctx); err != nil {
			b.Fatal(err)
		}
		m0 := memNow()
		var wg sync.WaitGroup
		for range k {
			wg.Go(func() {
				ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = p.WaitReady(ctx, ws) // the build runs for an hour: until cancelled
			})
		}
		time.Sleep(3 * time.Second) // every build has started its workspace and polled
		m1 := memNow()
		cancel()
		wg.Wait()
		b.ReportMetric(float64(m1-m0)/float64(k), "bytes/workspace")
		// No cleanup: delete builds would also run for an hour. Stopping
		// the lab stops every workspace it started.
	}
}

func memNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}
