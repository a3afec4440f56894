package coder_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdeload/cdeload/workspace/coder"
)

// TestSIGINTDuringScale interrupts examples/scale.js while its echo traffic
// runs on three real workspaces: cdeload exits 105 (aborted by a signal)
// and the real API knows nothing named scaletest- afterwards.
func TestSIGINTDuringScale(t *testing.T) {
	p, bin := setup(t)
	c := ownerClient(t, p)
	if left := leftovers(t, c, "scaletest-"); len(left) > 0 {
		t.Fatalf("scaletest- resources before the run: %v", left)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "examples", "scale.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const n = 3
	cmd := command(ctx, t, p, bin, script, "-e", "WORKSPACES=3", "-e", "TRAFFIC_DURATION=60s")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Wait until every workspace's agent is connected, then give the echo
	// streams a moment to start.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		wss, err := c.Workspaces(ctx, "name:scaletest-", 0, 50)
		if err != nil {
			t.Fatalf("list workspaces: %v", err)
		}
		connected := 0
		for _, w := range wss.Workspaces {
			for _, a := range w.LatestBuild.Agents() {
				if a.Status == coder.AgentConnected && a.LifecycleState == coder.LifecycleReady {
					connected++
				}
			}
		}
		if connected == n {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("cdeload ended before the workspaces were ready: %v\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d agents connected after 2m\n%s", connected, n, out.String())
		}
	}
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("cdeload still running 4m after SIGINT\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 105 {
		t.Errorf("exit code %d after SIGINT, want 105\n%s", code, out.String())
	}
	if left := leftovers(t, c, "scaletest-"); len(left) > 0 {
		t.Errorf("left after SIGINT: %v\n%s", left, out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the two writers of a command.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
