package cdeload

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// termObserver keeps an echo stream's totals and stops the workspace after
// stopAfter RTTs (0: never).
type termObserver struct {
	mu             sync.Mutex
	rtts           int
	sent, received int64
	errs           []error
	stopAfter      int
	stop           func()
}

func (o *termObserver) OnRTT(time.Duration, uint64) {
	o.mu.Lock()
	o.rtts++
	fire := o.rtts == o.stopAfter
	o.mu.Unlock()
	if fire {
		go o.stop()
	}
}

func (o *termObserver) OnBytes(sent, received int) {
	o.mu.Lock()
	o.sent += int64(sent)
	o.received += int64(received)
	o.mu.Unlock()
}

func (o *termObserver) OnTickMissed(int) {}

func (o *termObserver) OnError(err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

// openSimTerminal creates a workspace on a Coder simulator and opens a web
// terminal running cat on it.
func openSimTerminal(t *testing.T) (*coder.Terminal, *codersim.MemBackend, workspace.Workspace) {
	t.Helper()
	be := codersim.NewMemBackend()
	sim, err := codersim.New(codersim.Config{Seed: 1, Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	p, err := coder.NewProvider(coder.Config{URL: sim.URL, Token: sim.AdminToken, Client: coder.ClientOptions{BypassRateLimit: true},
		PollInterval: 5 * time.Millisecond, BuildTimeout: 10 * time.Second, AgentTimeout: 10 * time.Second, DeleteTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	if ws, err = p.WaitReady(ctx, ws); err != nil {
		t.Fatal(err)
	}
	term, err := p.Client().OpenTerminal(ctx, ws.AgentID(), coder.TerminalConfig{Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return term, be, ws
}

func TestTerminalEchoAccounting(t *testing.T) {
	term, _, _ := openSimTerminal(t)
	ctx := context.Background()
	// A clean stream leaves nothing behind: the same terminal carries a
	// second one.
	for i, cfg := range []sshtraffic.EchoConfig{
		{BytesPerTick: 100, TickInterval: 5 * time.Millisecond, Duration: 100 * time.Millisecond},
		{BytesPerTick: 4096, TickInterval: 2 * time.Millisecond, TotalBytes: 10 * 4096},
	} {
		obs := &termObserver{}
		res, err := terminalEcho(ctx, term, cfg, obs)
		if err != nil {
			t.Fatalf("stream %d: %v (result %+v)", i, err, res)
		}
		size := int64(cfg.BytesPerTick)
		// The tty's echo and cat's copy, each with a CR added before LF.
		if res.FramesSent == 0 || res.FramesReceived != res.FramesSent || res.Duplicates != res.FramesSent ||
			res.BytesSent != res.FramesSent*size || res.BytesReceived != 2*(size+1)*res.FramesSent ||
			res.WarmupBytesSent != size || res.WarmupBytesReceived != 2*(size+1) || res.Warmup <= 0 || res.Errors != 0 {
			t.Errorf("stream %d: result %+v, want every frame back twice with one CR each and exact byte counts", i, res)
		}
		if cfg.TotalBytes > 0 && res.FramesSent != 10 {
			t.Errorf("stream %d: FramesSent %d, want 10", i, res.FramesSent)
		}
		if obs.rtts != int(res.FramesReceived) || obs.sent != res.BytesSent || obs.received != res.BytesReceived || len(obs.errs) != 0 {
			t.Errorf("stream %d: observer saw %d RTTs, %d/%d bytes, errors %v; result %+v", i, obs.rtts, obs.sent, obs.received, obs.errs, res)
		}
	}

	// A canonical-mode terminal truncates long lines: refused up front,
	// without closing the terminal.
	_, err := terminalEcho(ctx, term, sshtraffic.EchoConfig{BytesPerTick: 4097, TickInterval: time.Millisecond, Duration: time.Second}, &termObserver{})
	if err == nil || !strings.Contains(err.Error(), "canonical mode") {
		t.Fatalf("bytesPerTick 4097: got %v, want a canonical-mode error", err)
	}
	if _, err := terminalEcho(ctx, term, sshtraffic.EchoConfig{BytesPerTick: 64, TickInterval: time.Millisecond, TotalBytes: 64}, &termObserver{}); err != nil {
		t.Fatalf("echo after a refused configuration: %v", err)
	}
}

func TestTerminalEchoWorkspaceStops(t *testing.T) {
	term, be, ws := openSimTerminal(t)
	obs := &termObserver{stopAfter: 5, stop: func() {
		_ = be.StopWorkspace(context.Background(), codersim.WorkspaceSpec{WorkspaceID: ws.ID})
	}}
	start := time.Now()
	res, err := terminalEcho(context.Background(), term, sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 2 * time.Millisecond, Duration: 30 * time.Second}, obs)
	if !errors.Is(err, sshtraffic.ErrFarEndClosed) {
		t.Fatalf("got %v, want ErrFarEndClosed", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the stream took %v to notice the end of the session", d)
	}
	if res.Errors != 1 || len(obs.errs) != 1 || res.FramesReceived < 5 {
		t.Errorf("result %+v, observer errors %v; want 1 error and >= 5 frames", res, obs.errs)
	}
	// A failed stream closes the terminal.
	if _, err := term.Write([]byte("x")); err == nil {
		t.Error("Write on the terminal after a failed stream: got nil error, want the closed terminal's error")
	}
}

// TestWaitQuiet checks the wait for quietTerminalCommand's marker: found
// across reads, or an error quoting what the terminal printed instead.
func TestWaitQuiet(t *testing.T) {
	out := "\x1b[?2004l" + quietTerminalMarker[:5] + "|" + quietTerminalMarker[5:] + "\r\n"
	r := iotest.OneByteReader(strings.NewReader(strings.ReplaceAll(out, "|", "")))
	if err := waitQuiet(r); err != nil {
		t.Fatalf("marker split over reads: %v", err)
	}
	err := waitQuiet(strings.NewReader("sh: 1: stty: not found\r\n"))
	if err == nil || !strings.Contains(err.Error(), "stty: not found") || !strings.Contains(err.Error(), "stty -echo") {
		t.Fatalf("no marker: %v", err)
	}
}
