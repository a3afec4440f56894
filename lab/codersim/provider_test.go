package codersim_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// brokenBackend cannot start machines.
type brokenBackend struct{}

func (brokenBackend) StartWorkspace(context.Context, codersim.WorkspaceSpec) (codersim.Agent, error) {
	return nil, errors.New("no node has room for the pod")
}

func (brokenBackend) StopWorkspace(context.Context, codersim.WorkspaceSpec) error { return nil }

func TestMachineThatFailsToStartTimesTheAgentOut(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	s, err := codersim.New(codersim.Config{Backend: brokenBackend{}, AgentConnectionTimeout: 200 * time.Millisecond,
		Logf: func(format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := coder.NewProvider(coder.Config{URL: s.URL, Token: s.AdminToken, PollInterval: 20 * time.Millisecond,
		AgentTimeout: time.Second, Client: coder.ClientOptions{BypassRateLimit: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes", Name: "no-room"})
	if err == nil {
		ws, err = p.WaitReady(ctx, ws)
	}
	if err == nil || !strings.Contains(err.Error(), "workspace no-room") || !strings.Contains(err.Error(), "not connected") ||
		!strings.Contains(err.Error(), "status timeout") {
		t.Fatalf("waiting for a workspace whose machine cannot start: %v", err)
	}
	if ws.Timings.Build <= 0 {
		t.Errorf("the build itself succeeded, yet no build duration: %+v", ws.Timings)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) != 1 || !strings.Contains(logs[0], "no-room") || !strings.Contains(logs[0], "no node has room for the pod") {
		t.Fatalf("logs %q: want the failed machine start of no-room", logs)
	}
}
