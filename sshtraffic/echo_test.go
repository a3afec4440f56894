package sshtraffic

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/sshserver"
	"golang.org/x/crypto/ssh"
)

// checkComplete asserts the invariants of a stream that ended cleanly.
func checkComplete(t *testing.T, res EchoResult, obs *recorder, size int, ticks int64) {
	t.Helper()
	if res.FramesSent == 0 || res.FramesSent+res.TicksMissed != ticks {
		t.Errorf("FramesSent %d + TicksMissed %d, want %d ticks in all (and some frames)", res.FramesSent, res.TicksMissed, ticks)
	}
	if res.FramesReceived != res.FramesSent || res.RTT.Count != res.FramesSent {
		t.Errorf("FramesReceived %d, RTT count %d, want both = FramesSent %d", res.FramesReceived, res.RTT.Count, res.FramesSent)
	}
	if res.BytesSent != res.FramesSent*int64(size) {
		t.Errorf("BytesSent %d, want %d frames × %d (the warm-up frame is counted apart)", res.BytesSent, res.FramesSent, size)
	}
	if res.Warmup <= 0 || res.WarmupBytesSent != int64(size) || res.WarmupBytesReceived < int64(size) {
		t.Errorf("Warmup = %v, warm-up bytes %d sent / %d received, want > 0, %d, >= %d", res.Warmup, res.WarmupBytesSent, res.WarmupBytesReceived, size, size)
	}
	if res.Errors != 0 {
		t.Errorf("Errors = %d, want 0", res.Errors)
	}
	if res.RTT.Min <= 0 || res.RTT.Min > res.RTT.P50 || res.RTT.P50 > res.RTT.P95 || res.RTT.P95 > res.RTT.Max {
		t.Errorf("RTT summary not ordered: %+v", res.RTT)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if int64(len(obs.rtts)) != res.FramesReceived || obs.sent != res.BytesSent || obs.received != res.BytesReceived || obs.missed != res.TicksMissed || len(obs.errs) != 0 {
		t.Errorf("observer saw %d RTTs, %d/%d bytes, %d missed, errors %v; result %+v", len(obs.rtts), obs.sent, obs.received, obs.missed, obs.errs, res)
	}
	for i, seq := range obs.rtts {
		if seq != uint64(i) {
			t.Errorf("RTT #%d for seq %d, want in-order sequence numbers", i, seq)
			break
		}
	}
}

func TestEchoNoPTY(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 512, TickInterval: 5 * time.Millisecond, Duration: 200 * time.Millisecond}, obs)
	if err != nil {
		t.Fatalf("Echo: %v (result %+v)", err, res)
	}
	checkComplete(t, res, obs, 512, 40)
	if res.BytesReceived != res.BytesSent || res.Duplicates != 0 {
		t.Errorf("BytesReceived %d, Duplicates %d; want %d, 0", res.BytesReceived, res.Duplicates, res.BytesSent)
	}
}

func TestEchoTotalBytes(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 1000, TickInterval: time.Millisecond, TotalBytes: 9500}, obs)
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	checkComplete(t, res, obs, 1000, 10+res.TicksMissed)
	if res.FramesSent != 10 || res.BytesSent != 10000 || res.BytesReceived != 10000 || res.WarmupBytesReceived != 1000 {
		t.Errorf("FramesSent %d BytesSent %d BytesReceived %d WarmupBytesReceived %d, want 10 frames, 10000 bytes each way (9500 rounded up to whole frames) and 1000 warm-up bytes",
			res.FramesSent, res.BytesSent, res.BytesReceived, res.WarmupBytesReceived)
	}
}

func TestEchoPTYRaw(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	// 8 KiB frames: only possible because raw mode turns canonical input off.
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 8192, TickInterval: 5 * time.Millisecond, Duration: 100 * time.Millisecond, PTY: true}, obs)
	if err != nil {
		t.Fatalf("Echo: %v (result %+v)", err, res)
	}
	checkComplete(t, res, obs, 8192, 20)
	if res.BytesReceived != res.BytesSent || res.Duplicates != 0 {
		t.Errorf("BytesReceived %d, Duplicates %d; want %d, 0", res.BytesReceived, res.Duplicates, res.BytesSent)
	}
}

func TestEchoPTYCooked(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	// Empty modes leave the server's cooked defaults: the tty echoes every
	// frame (a second copy) and turns "\n" into "\r\n".
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 256, TickInterval: 5 * time.Millisecond, Duration: 100 * time.Millisecond, PTY: true, TerminalModes: ssh.TerminalModes{}}, obs)
	if err != nil {
		t.Fatalf("Echo: %v (result %+v)", err, res)
	}
	checkComplete(t, res, obs, 256, 20)
	if res.Duplicates < 1 || res.Duplicates > res.FramesSent {
		t.Errorf("Duplicates = %d, want 1..%d", res.Duplicates, res.FramesSent)
	}
	if min := (res.FramesReceived + res.Duplicates) * 257; res.BytesReceived < min {
		t.Errorf("BytesReceived = %d, want >= %d (each copy is 256 bytes + one CR)", res.BytesReceived, min)
	}
}

func TestEchoConfigErrors(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	tests := []struct {
		cfg  EchoConfig
		want string
	}{
		{EchoConfig{BytesPerTick: 45, TickInterval: time.Millisecond, Duration: time.Second}, "below the minimum frame size 46"},
		{EchoConfig{BytesPerTick: 100, TickInterval: 0, Duration: time.Second}, "tickInterval"},
		{EchoConfig{BytesPerTick: 100, TickInterval: time.Millisecond}, "exactly one of duration and totalBytes"},
		{EchoConfig{BytesPerTick: 100, TickInterval: time.Millisecond, Duration: time.Second, TotalBytes: 10}, "exactly one of duration and totalBytes"},
		{EchoConfig{BytesPerTick: 8192, TickInterval: time.Millisecond, Duration: time.Second, PTY: true, TerminalModes: ssh.TerminalModes{}}, "canonical-mode PTY"},
	}
	for _, tt := range tests {
		_, err := c.Echo(context.Background(), tt.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Echo(%+v): got %v, want error containing %q", tt.cfg, err, tt.want)
		}
	}
}

func TestEchoMissedTicksWhenFarEndIsSlow(t *testing.T) {
	// cat throttled to 4 MB/s while the stream offers 32 MB/s: once the
	// 2 MiB SSH window is full, writes block and ticks are missed.
	s := startLab(t, func(c *sshserver.Config) { c.CatBytesPerSecond = 4 << 20 })
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 32 << 10, TickInterval: time.Millisecond, Duration: 300 * time.Millisecond}, obs)
	if err != nil {
		t.Fatalf("Echo: %v (result %+v)", err, res)
	}
	checkComplete(t, res, obs, 32<<10, 300)
	if res.TicksMissed == 0 {
		t.Errorf("TicksMissed = 0 with a far end 8x slower than the offered rate; result %+v", res)
	}
}

// triggerObserver closes fire after n RTTs.
type triggerObserver struct {
	recorder
	n    int
	once sync.Once
	fire chan struct{}
}

func (o *triggerObserver) OnRTT(d time.Duration, seq uint64) {
	o.recorder.OnRTT(d, seq)
	if int(seq)+1 >= o.n {
		o.once.Do(func() { close(o.fire) })
	}
}

func TestEchoFarEndDies(t *testing.T) {
	for _, pty := range []bool{false, true} {
		s := startLab(t, nil)
		c := connect(t, s.addr, s.config())
		obs := &triggerObserver{n: 5, fire: make(chan struct{})}
		go func() {
			<-obs.fire
			s.srv.Close() // drops the server side of every connection
		}()
		start := time.Now()
		res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 128, TickInterval: 2 * time.Millisecond, Duration: 30 * time.Second, PTY: pty}, obs)
		if !errors.Is(err, ErrFarEndClosed) {
			t.Fatalf("pty=%v: got %v, want ErrFarEndClosed", pty, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("pty=%v: Echo took %v to notice the far end died", pty, d)
		}
		if res.Errors != 1 || len(obs.errs) != 1 || res.FramesReceived < 5 {
			t.Errorf("pty=%v: result %+v, observer errors %v; want 1 error and >= 5 frames", pty, res, obs.errs)
		}
	}
}

func TestEchoCancel(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &triggerObserver{n: 5, fire: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-obs.fire
		cancel()
	}()
	res, err := c.Echo(ctx, EchoConfig{BytesPerTick: 128, TickInterval: 2 * time.Millisecond, Duration: 30 * time.Second}, obs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if res.Errors != 0 || len(obs.errs) != 0 || res.FramesReceived < 5 {
		t.Errorf("result %+v, observer errors %v; want no errors and >= 5 frames", res, obs.errs)
	}
	// The connection survives a cancelled stream.
	if r, err := c.Run(context.Background(), "echo still"); err != nil || string(r.Stdout) != "still\n" {
		t.Fatalf("Run after cancelled echo: %+v, %v", r, err)
	}
}

func TestEchoUnknownCommand(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	obs := &recorder{}
	res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 64, TickInterval: 10 * time.Millisecond, Duration: time.Second, Command: "nosuch"}, obs)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(string(ee.Stderr), "command not found") {
		t.Fatalf("got %v, want *ExitError 127 with stderr", err)
	}
	if res.Errors != 1 || len(obs.errs) != 1 {
		t.Errorf("Errors = %d, observer errors %v; want 1", res.Errors, obs.errs)
	}
}

func TestEchoDrainTimeout(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	// sleep never echoes: without warm-up every frame is missing after the
	// drain timeout; with warm-up the warm-up frame times out first.
	for _, noWarmup := range []bool{true, false} {
		res, err := c.Echo(context.Background(), EchoConfig{BytesPerTick: 64, TickInterval: 10 * time.Millisecond, Duration: 50 * time.Millisecond, Command: "sleep 10", DrainTimeout: 200 * time.Millisecond, NoWarmup: noWarmup}, nil)
		if !errors.Is(err, ErrDrainTimeout) {
			t.Fatalf("noWarmup=%v: got %v, want ErrDrainTimeout", noWarmup, err)
		}
		wantSent := noWarmup // frames are only sent once warm-up is done
		if res.FramesReceived != 0 || (res.FramesSent > 0) != wantSent || res.Errors != 1 {
			t.Errorf("noWarmup=%v: result %+v, want frames sent %v, none received, 1 error", noWarmup, res, wantSent)
		}
	}
}

func TestEchoTinyIntervalDoesNotLivelock(t *testing.T) {
	// An interval far shorter than one writer loop turn: every tick after a
	// write is overdue. The writer must still send (and count missed ticks)
	// rather than skip forever.
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.Echo(ctx, EchoConfig{BytesPerTick: 4096, TickInterval: time.Nanosecond, TotalBytes: 200 * 4096}, nil)
	if err != nil {
		t.Fatalf("Echo: %v (result %+v)", err, res)
	}
	if res.FramesReceived != 200 || res.TicksMissed == 0 {
		t.Errorf("FramesReceived %d TicksMissed %d, want 200 and > 0", res.FramesReceived, res.TicksMissed)
	}
}
