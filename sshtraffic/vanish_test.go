package sshtraffic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// vanishingStream echoes what is written to it until vanish is called; from
// then on, like a peer that disappeared without closing, a Read never
// returns, a Write blocks (blockWrites) or is swallowed, and Close changes
// nothing. Everything is released at the end of the test.
type vanishingStream struct {
	blockWrites bool

	mu      sync.Mutex
	buf     bytes.Buffer
	gone    bool
	data    chan struct{} // signalled when buf gains bytes
	release chan struct{}
}

func newVanishingStream(t *testing.T, blockWrites bool) *vanishingStream {
	v := &vanishingStream{blockWrites: blockWrites, data: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(v.release) })
	return v
}

func (v *vanishingStream) vanish() {
	v.mu.Lock()
	v.gone = true
	v.mu.Unlock()
}

func (v *vanishingStream) Write(p []byte) (int, error) {
	v.mu.Lock()
	if v.gone {
		v.mu.Unlock()
		if !v.blockWrites {
			return len(p), nil
		}
		<-v.release
		return 0, io.ErrClosedPipe
	}
	v.buf.Write(p)
	v.mu.Unlock()
	select {
	case v.data <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (v *vanishingStream) Read(p []byte) (int, error) {
	for {
		v.mu.Lock()
		if !v.gone && v.buf.Len() > 0 {
			n, _ := v.buf.Read(p)
			v.mu.Unlock()
			return n, nil
		}
		v.mu.Unlock()
		select {
		case <-v.data:
		case <-v.release:
			return 0, io.ErrClosedPipe
		}
	}
}

func TestEchoStreamEndsWhenTheFarEndStopsAnswering(t *testing.T) {
	for _, blockWrites := range []bool{false, true} {
		v := newVanishingStream(t, blockWrites)
		obs := &triggerObserver{n: 5, fire: make(chan struct{})}
		go func() {
			<-obs.fire
			v.vanish()
		}()
		const drain = 300 * time.Millisecond
		cfg := StreamConfig{BytesPerTick: 100, TickInterval: 2 * time.Millisecond, Duration: time.Hour, DrainTimeout: drain,
			Close: func() error { return nil }} // a close that unblocks nothing
		start := time.Now()
		res, err := EchoStream(context.Background(), v, cfg, obs)
		took := time.Since(start)
		if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "stopped answering") {
			t.Fatalf("blockWrites=%v: got %v, want ErrDrainTimeout saying the far end stopped answering", blockWrites, err)
		}
		// DrainTimeout and a quarter after the last frame came back, plus
		// AbortGrace waiting for the goroutines the close did not unblock.
		if limit := drain*5/4 + AbortGrace + time.Second; took > limit {
			t.Errorf("blockWrites=%v: EchoStream took %v, want at most %v", blockWrites, took, limit)
		}
		if res.Errors != 1 || len(obs.errs) != 1 || res.FramesReceived < 5 || res.FramesReceived >= res.FramesSent {
			t.Errorf("blockWrites=%v: result %+v, observer errors %v; want 1 error and some frames missing", blockWrites, res, obs.errs)
		}
	}
}

func TestEchoStreamCancelledAfterTheFarEndVanished(t *testing.T) {
	v := newVanishingStream(t, true)
	obs := &triggerObserver{n: 5, fire: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-obs.fire
		v.vanish()
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	cfg := StreamConfig{BytesPerTick: 100, TickInterval: 2 * time.Millisecond, Duration: time.Hour, DrainTimeout: time.Hour,
		Close: func() error { return nil }}
	start := time.Now()
	res, err := EchoStream(ctx, v, cfg, obs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > AbortGrace+2*time.Second {
		t.Errorf("EchoStream took %v after its context was cancelled, want at most AbortGrace", took)
	}
	if res.Errors != 0 || len(obs.errs) != 0 {
		t.Errorf("result %+v, observer errors %v; a cancelled stream reports no error", res, obs.errs)
	}
}

// freezingProxy forwards TCP connections to target until freeze is called;
// from then on it forwards nothing and closes nothing, like a host that
// vanished (kill -9 of a peer behind a tunnel, a cable pulled).
type freezingProxy struct {
	addr   string
	frozen chan struct{}
	once   sync.Once
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{addr: l.Addr().String(), frozen: make(chan struct{})}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-p.frozen:
				return // stop forwarding, close nothing
			default:
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Add(2)
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *freezingProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

func TestEchoEndsWhenTheServerVanishes(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		s := startLab(t, nil)
		p := startFreezingProxy(t, s.addr)
		c := connect(t, p.addr, s.config())
		if !c.answers(probeTimeout) {
			t.Fatal("a live server does not answer the keepalive probe: Echo would give up healthy connections")
		}
		obs := &triggerObserver{n: 5, fire: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-obs.fire
			p.freeze()
			if cancelled {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}
		}()
		cfg := EchoConfig{BytesPerTick: 128, TickInterval: 2 * time.Millisecond, Duration: time.Hour, DrainTimeout: 300 * time.Millisecond}
		if cancelled {
			cfg.DrainTimeout = time.Hour // only the cancel can end it
		}
		start := time.Now()
		res, err := c.Echo(ctx, cfg, obs)
		took := time.Since(start)
		if cancelled && !errors.Is(err, context.Canceled) || !cancelled && !errors.Is(err, ErrDrainTimeout) {
			t.Fatalf("cancelled=%v: got %v", cancelled, err)
		}
		// The session's close is never confirmed: AbortGrace, then the
		// keepalive probe times out and the connection is closed.
		if limit := 2*AbortGrace + probeTimeout + 2*time.Second; took > limit {
			t.Errorf("cancelled=%v: Echo took %v, want at most %v", cancelled, took, limit)
		}
		if wantErrs := map[bool]int{false: 1, true: 0}[cancelled]; res.Errors != wantErrs || len(obs.errs) != wantErrs {
			t.Errorf("cancelled=%v: result %+v, observer errors %v; want %d", cancelled, res, obs.errs, wantErrs)
		}
		// The connection was given up, and later calls say why.
		_, err = c.Run(context.Background(), "true")
		if err == nil || !strings.Contains(err.Error(), "did not answer") {
			t.Errorf("cancelled=%v: Run after the server vanished: %v, want the connection lost", cancelled, err)
		}
	}
}
