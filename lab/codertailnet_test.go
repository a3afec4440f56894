package lab_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/internal/leakcheck"
	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/tailnet"
	tailnetcoder "github.com/cdeload/cdeload/tailnet/coder"
	"github.com/cdeload/cdeload/workspace"
)

// The lab's Coder simulator serves Coder's tailnet endpoints: cdeload's
// Coder tailnet client (the code that joins a real Coder's tailnet)
// reaches the lab's agents through them, over the lab's real tailnet.
func TestCoderTailnetClientReachesLabAgents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := labProvider(t, l, nil)
	var wss []workspace.Workspace
	for range 2 {
		ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
		if err == nil {
			ws, err = p.WaitReady(ctx, ws)
		}
		if err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}

	c, err := tailnetcoder.New(tailnetcoder.Config{URL: l.CoderURL(), Token: l.CoderToken(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hostKey := l.Credentials().HostKey()

	t.Run("echo", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, ws := range wss {
			wg.Go(func() {
				res, path := labEcho(ctx, t, c, ws, hostKey, 2*time.Second)
				if res.Errors != 0 || res.FramesSent == 0 || res.FramesReceived != res.FramesSent {
					t.Errorf("workspace %s: echo result %+v: want every frame back and no error", ws.Name, res)
				}
				if path != tailnet.PathDERP && path != tailnet.PathDirect {
					t.Errorf("workspace %s: path %q, want derp or direct", ws.Name, path)
				}
			})
		}
		wg.Wait()
		if got := l.Tailnet.NumNodes(); got != 2 {
			t.Errorf("the lab's control has %d nodes, want 2 (the workspaces): the Coder client is not a node of the lab's control", got)
		}
	})

	t.Run("agent stopped mid-stream", func(t *testing.T) {
		ws := wss[1]
		conn, _, err := c.Dial(ctx, ws.AgentID(), tailnetcoder.SSHPort)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{User: "coder", NoClientAuth: true, KnownHostKey: hostKey})
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		type result struct {
			res sshtraffic.EchoResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := sc.Echo(ctx, sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 100 * time.Millisecond, Duration: 60 * time.Second}, nil)
			done <- result{res, err}
		}()
		time.Sleep(700 * time.Millisecond)
		if err := p.Delete(ctx, ws); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.err == nil {
				t.Fatalf("workspace %s: the echo stream ended without an error after its agent stopped", ws.Name)
			}
			t.Logf("stream ended: %v (frames %d/%d)", r.err, r.res.FramesReceived, r.res.FramesSent)
			if !errors.Is(r.err, tailnetcoder.ErrAgentGone) && !strings.Contains(r.err.Error(), "DISCONNECTED") {
				t.Logf("the stream ended before the coordinator's word (the SSH server closed first): %v", r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("workspace %s: the echo stream did not end within 30 s of its agent stopping", ws.Name)
		}
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
		defer dcancel()
		_, _, err = c.Dial(dctx, ws.AgentID(), tailnetcoder.SSHPort)
		if err == nil || !strings.Contains(err.Error(), ws.AgentID()) {
			t.Fatalf("dial to the stopped agent: %v, want an error naming agent %s", err, ws.AgentID())
		}
	})

	t.Run("agent crash", func(t *testing.T) {
		ws := wss[0]
		conn, _, err := c.Dial(ctx, ws.AgentID(), tailnetcoder.SSHPort)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Crash the machine behind the API's back: the coordinator sees the
		// agent's node vanish while the API still has the agent running.
		if err := l.Workspaces.Crash(ws.Name); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 1)
		if _, err := conn.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read from the crashed agent: %v, want the connection to end", err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
		defer dcancel()
		if _, _, err := c.Dial(dctx, ws.AgentID(), tailnetcoder.SSHPort); err == nil || !strings.Contains(err.Error(), ws.AgentID()) {
			t.Fatalf("dial to the crashed agent: %v, want an error naming agent %s", err, ws.AgentID())
		}
	})
}

// The Coder client releases everything it started when it closes, and the
// simulator's coordinator releases its side when the client goes.
func TestCoderTailnetClientLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := labProvider(t, l, nil)
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err == nil {
		ws, err = p.WaitReady(ctx, ws)
	}
	if err != nil {
		t.Fatal(err)
	}
	labWS, _ := l.Workspaces.Get(ws.Name)
	base := leakcheck.Settled(0)
	c, err := tailnetcoder.New(tailnetcoder.Config{URL: l.CoderURL(), Token: l.CoderToken(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := labEcho(ctx, t, c, ws, l.Credentials().HostKey(), 500*time.Millisecond)
	if res.Errors != 0 || res.FramesReceived == 0 {
		t.Fatalf("echo: %+v", res)
	}
	if n := labWS.NumPeers(); n != 1 {
		t.Errorf("the workspace has %d peers while the client is connected, want 1 (the client)", n)
	}
	during := runtime.NumGoroutine()
	// The session is closed: wait until the workspace's SSH server has seen
	// it go (its goroutines are the lab's, not the client's).
	for deadline := time.Now().Add(5 * time.Second); labWS.NumConns() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the workspace still serves %d connections after the session closed", labWS.NumConns())
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The coordinator takes the client out of the agent's netmap (and the
	// agent's WireGuard peer with its goroutines goes).
	deadline := time.Now().Add(5 * time.Second)
	for labWS.NumPeers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the workspace still has %d peers after the client left", labWS.NumPeers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	leakcheck.NoneLeft(t, base, during)
}

// labEcho runs one SSH echo stream to ws's agent (tailnet port 1, no
// client authentication, the lab's host key) over c.
func labEcho(ctx context.Context, t *testing.T, c *tailnetcoder.Client, ws workspace.Workspace, hostKey ssh.PublicKey, d time.Duration) (sshtraffic.EchoResult, tailnet.Path) {
	conn, _, err := c.Dial(ctx, ws.AgentID(), tailnetcoder.SSHPort)
	if err != nil {
		t.Errorf("workspace %s: %v", ws.Name, err)
		return sshtraffic.EchoResult{Errors: 1}, ""
	}
	sc, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{User: "coder", NoClientAuth: true, KnownHostKey: hostKey})
	if err != nil {
		t.Errorf("workspace %s: ssh: %v", ws.Name, err)
		return sshtraffic.EchoResult{Errors: 1}, ""
	}
	defer sc.Close()
	res, err := sc.Echo(ctx, sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 100 * time.Millisecond, Duration: d}, nil)
	if err != nil {
		t.Errorf("workspace %s: echo: %v", ws.Name, err)
	}
	path, err := c.Path(ctx, ws.AgentID())
	if err != nil {
		t.Errorf("workspace %s: path: %v", ws.Name, err)
	}
	t.Logf("workspace %s: frames %d/%d, RTT p50 %v p95 %v, path %s", ws.Name, res.FramesReceived, res.FramesSent, res.RTT.P50, res.RTT.P95, path)
	return res, path
}
