package coderbackend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/workspaces"
)

// newTestBackend runs a tailnet lab, a workspace manager and a backend on
// loopback.
func newTestBackend(t *testing.T, ctx context.Context) (*Backend, *workspaces.Manager) {
	t.Helper()
	tl, err := tailnetlab.Start(ctx, tailnetlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	creds, err := workspaces.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := workspaces.NewManager(workspaces.Config{ControlURL: tl.ControlURL(), AuthKey: tl.AuthKey(), Credentials: creds}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	b, err := New(Config{Workspaces: mgr, ControlURL: tl.ControlURL(), AuthKey: tl.AuthKey(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, mgr
}

func (b *Backend) startsInFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.starting)
}

func TestStopWhileStartingLeavesNoWorkspace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, mgr := newTestBackend(t, ctx)
	spec := codersim.WorkspaceSpec{Name: "early-stop", Owner: "admin", WorkspaceID: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0",
		AgentID: "1f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0", AgentName: "main"}
	type result struct {
		a   codersim.Agent
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := b.StartWorkspace(ctx, spec)
		done <- result{a, err}
	}()
	for b.startsInFlight() == 0 {
		select {
		case r := <-done:
			t.Fatalf("start returned (%v, %v) before the test could stop it", r.a, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	if err := b.StopWorkspace(ctx, spec); err != nil {
		t.Fatalf("stop of a workspace still starting: %v", err)
	}
	r := <-done
	if r.err == nil || !strings.Contains(r.err.Error(), "early-stop") || !strings.Contains(r.err.Error(), "stopped while starting") {
		t.Fatalf("start overtaken by a stop returned (%v, %v)", r.a, r.err)
	}
	if b.Running() != 0 || mgr.Len() != 0 {
		t.Fatalf("after a stop during the start: %d backend machines, %d lab workspaces", b.Running(), mgr.Len())
	}
}

func TestAgentServedOnlyOnceConnectedAndCrashKillsTheWorkspace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, mgr := newTestBackend(t, ctx)
	spec := codersim.WorkspaceSpec{Name: "crashy", Owner: "admin", WorkspaceID: "2f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0",
		AgentID: "3f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0", AgentName: "main"}
	a, err := b.StartWorkspace(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.AgentWorkspace(spec.AgentID); ok {
		t.Fatal("agent served before the simulator reported it connected")
	}
	b.AgentConnected(spec)
	ws, ok := b.AgentWorkspace(spec.AgentID)
	if !ok || ws.Addr() != a.Address() {
		t.Fatalf("connected agent: workspace %v, %v; agent address %v", ws, ok, a.Address())
	}
	b.AgentCrashed(spec)
	if _, ok := b.AgentWorkspace(spec.AgentID); ok || b.Running() != 0 || mgr.Len() != 0 {
		t.Fatalf("after the crash: agent served %v, %d backend machines, %d lab workspaces", ok, b.Running(), mgr.Len())
	}
	if _, err := a.OpenPTY(ctx, codersim.PTYRequest{}); err == nil {
		t.Fatal("terminal opened on a crashed workspace")
	}
}
