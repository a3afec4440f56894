package coder_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// TestMain doubles as a simulator process for the memory benchmark, so the
// simulator's memory is not counted as the client's.
func TestMain(m *testing.M) {
	if os.Getenv("CDELOAD_CODERSIM_CHILD") == "1" {
		sim, err := codersim.New(codersim.Config{Faults: codersim.Faults{BuildQueue: codersim.Latency{Fixed: time.Hour}}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s %s\n", sim.URL, sim.AdminToken)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
		_ = sim.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkCreateReady creates workspaces (user + workspace + build + agent
// wait) against the simulator with zero build latency, 16 at a time, and
// reports workspaces per second next to a baseline of plain API round trips
// (GET /api/v2/buildinfo) measured in the same process.
func BenchmarkCreateReady(b *testing.B) {
	sim := newSim(b, codersim.Config{})
	p, _ := newProvider(b, sim, func(c *coder.Config) { c.PollInterval = 2 * time.Millisecond })
	ctx := context.Background()
	c := p.Client()

	// Baseline: API round trips per second with the same concurrency.
	const conc = 16
	const baseN = 2000
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < baseN/conc; i++ {
				if _, err := c.BuildInfo(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rttPerSec := float64(baseN) / time.Since(t0).Seconds()
	req0 := c.Stats().Requests

	b.ResetTimer()
	start := time.Now()
	work := make(chan struct{})
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
				if err == nil {
					_, err = p.WaitReady(ctx, ws)
				}
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	wsPerSec := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(wsPerSec, "workspaces/s")
	b.ReportMetric(float64(c.Stats().Requests-req0)/float64(b.N), "requests/workspace")
	b.ReportMetric(rttPerSec, "baseline_api_calls/s")
	b.ReportMetric(wsPerSec/rttPerSec, "ratio_ws_to_api_call")
	if err := p.Cleanup(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemoryPerWorkspaceInFlight measures the client's heap and stack
// growth per workspace being waited on (build pending), with the simulator in
// a child process.
func BenchmarkMemoryPerWorkspaceInFlight(b *testing.B) {
	const k = 200
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CDELOAD_CODERSIM_CHILD=1")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		f := strings.Fields(line)
		p, err := coder.NewProvider(coder.Config{URL: f[0], Token: f[1], Client: coder.ClientOptions{BypassRateLimit: true},
			PollInterval: 200 * time.Millisecond, BuildTimeout: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := p.Client().Me(ctx); err != nil {
			b.Fatal(err)
		}
		m0 := memNow()
		var wg sync.WaitGroup
		for j := 0; j < k; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = p.WaitReady(ctx, ws) // pending until cancelled
			}()
		}
		time.Sleep(time.Second) // every wait has polled a few times
		m1 := memNow()
		cancel()
		wg.Wait()
		b.ReportMetric(float64(m1-m0)/k, "bytes/workspace")
		// No cleanup: every build in the child is queued for an hour; the
		// child (and its state) goes away with it.
		p.Close()
		_ = stdin.Close()
		_ = cmd.Wait()
	}
}

func memNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}
