package sshtraffic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveOne accepts one connection on a 127.0.0.1 listener, runs handle on
// it in a goroutine and returns the client side. Both sides carry a
// deadline so that a broken test cannot hang.
func serveOne(t testing.TB, handle func(net.Conn)) *net.TCPConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		handle(c)
	}()
	c := dialTCP(t, l.Addr().String()).(*net.TCPConn)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() {
		c.Close()
		l.Close()
		wg.Wait()
	})
	return c
}

// plainEcho returns every byte as it is, like a TCP echo service.
func plainEcho(c net.Conn) { io.Copy(c, c) }

// cookedEcho behaves like a terminal in canonical mode with echo, running
// cat (as the Coder simulator's in-memory PTY does): every input byte is
// echoed at once ("\n" as "\r\n"), and each completed line is then written
// back again by "cat", also ending in "\r\n".
func cookedEcho(c net.Conn) {
	buf := make([]byte, 32<<10)
	var line, out []byte
	for {
		n, err := c.Read(buf)
		out = out[:0]
		for _, b := range buf[:n] {
			if b != '\n' {
				out = append(out, b)
				line = append(line, b)
				continue
			}
			out = append(out, '\r', '\n')
			out = append(out, line...)
			out = append(out, '\r', '\n')
			line = line[:0]
		}
		if len(out) > 0 {
			if _, werr := c.Write(out); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// checkStream asserts the invariants of a stream that ended cleanly
// (checkComplete), and the exact bytes received, with copies the number of
// times the far end returns each frame and cr the '\r' bytes it adds to
// each copy.
func checkStream(t *testing.T, res EchoResult, obs *recorder, size int, ticks, copies, cr int64) {
	t.Helper()
	checkComplete(t, res, obs, size, ticks)
	if want := res.FramesSent * copies * (int64(size) + cr); res.BytesReceived != want {
		t.Errorf("BytesReceived %d, want %d (%d copies of %d frames of %d bytes + %d CR)", res.BytesReceived, want, copies, res.FramesSent, size, cr)
	}
	if res.Duplicates != (copies-1)*res.FramesSent {
		t.Errorf("Duplicates %d, want %d", res.Duplicates, (copies-1)*res.FramesSent)
	}
	if want := copies * (int64(size) + cr); res.WarmupBytesReceived != want {
		t.Errorf("WarmupBytesReceived %d, want %d", res.WarmupBytesReceived, want)
	}
}

func TestEchoStreamTCP(t *testing.T) {
	c := serveOne(t, plainEcho)
	ctx := context.Background()

	// The stream stops reading at its last frame, so the connection can
	// carry a second stream.
	obs := &recorder{}
	res, err := EchoStream(ctx, c, StreamConfig{BytesPerTick: 300, TickInterval: time.Millisecond, TotalBytes: 20 * 300}, obs)
	if err != nil {
		t.Fatalf("EchoStream: %v (result %+v)", err, res)
	}
	checkStream(t, res, obs, 300, 20+res.TicksMissed, 1, 0)
	if res.FramesSent != 20 {
		t.Errorf("FramesSent = %d, want 20", res.FramesSent)
	}

	var closed atomic.Bool
	obs = &recorder{}
	cfg := StreamConfig{BytesPerTick: 1024, TickInterval: 2 * time.Millisecond, Duration: 100 * time.Millisecond,
		CloseWrite: func() error { closed.Store(true); return c.CloseWrite() }}
	res, err = EchoStream(ctx, c, cfg, obs)
	if err != nil {
		t.Fatalf("second EchoStream: %v (result %+v)", err, res)
	}
	checkStream(t, res, obs, 1024, 50, 1, 0)
	if !closed.Load() {
		t.Error("CloseWrite was not called")
	}
	// The far end saw EOF and closed: nothing is left on the connection.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the stream: Read = %d, %v; want 0, EOF", n, err)
	}
}

func TestEchoStreamCooked(t *testing.T) {
	c := serveOne(t, cookedEcho)
	cfg := StreamConfig{BytesPerTick: 200, TickInterval: 2 * time.Millisecond, Duration: 60 * time.Millisecond, Cooked: true, TTYEcho: true, Canonical: true}
	for i := range 2 { // the stream waits for every copy: a second one starts clean
		obs := &recorder{}
		res, err := EchoStream(context.Background(), c, cfg, obs)
		if err != nil {
			t.Fatalf("stream %d: %v (result %+v)", i, err, res)
		}
		// Two copies of every frame (the tty's echo and cat's), each
		// with a CR before its LF.
		checkStream(t, res, obs, 200, 30, 2, 1)
	}
}

func TestEchoStreamCookedRaggedReads(t *testing.T) {
	// The far end answers in 7-byte writes, so CRs and frame boundaries
	// (warm-up included) fall anywhere in a read.
	c := serveOne(t, func(c net.Conn) {
		pr, pw := net.Pipe()
		go func() { cookedEcho(pr); pr.Close() }()
		go func() { io.Copy(pw, c); pw.Close() }()
		buf := make([]byte, 7)
		for {
			n, err := pw.Read(buf)
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	obs := &recorder{}
	res, err := EchoStream(context.Background(), c, StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, TotalBytes: 1000, Cooked: true, TTYEcho: true}, obs)
	if err != nil {
		t.Fatalf("EchoStream: %v (result %+v)", err, res)
	}
	checkStream(t, res, obs, 100, 10+res.TicksMissed, 2, 1)
}

func TestEchoStreamFailures(t *testing.T) {
	frame, _ := NewFrame(100)
	tests := []struct {
		name   string
		handle func(net.Conn)
		cfg    StreamConfig
		want   error
		msg    string
	}{
		{
			name: "far end closes",
			handle: func(c net.Conn) {
				// Warm-up + 5 frames back, then EOF (input is still
				// drained, so no reset races the EOF).
				io.CopyN(c, c, 100*6)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			},
			cfg:  StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, Duration: 10 * time.Second},
			want: ErrFarEndClosed, msg: "after 5 of",
		},
		{
			name: "corrupt byte",
			handle: func(c net.Conn) {
				buf := make([]byte, 100)
				for i := 0; ; i++ {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if i == 3 {
						buf[70] = '!'
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			},
			cfg:  StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, Duration: 10 * time.Second},
			want: ErrBadFrame, msg: "frame 3 body differs at byte 70",
		},
		{
			name: "out of order",
			handle: func(c net.Conn) {
				buf := make([]byte, 100)
				io.ReadFull(c, buf)
				c.Write(buf) // warm-up
				PutFrameHeader(frame, 2, 0)
				c.Write(frame)
				io.Copy(io.Discard, c)
			},
			cfg:  StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, Duration: 10 * time.Second},
			want: ErrBadFrame, msg: "got frame 2, want frame 1",
		},
		{
			name: "tty echo without cat",
			handle: func(c net.Conn) {
				io.Copy(c, c) // one copy where TTYEcho expects two
			},
			cfg:  StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, Duration: time.Second, Cooked: true, TTYEcho: true, DrainTimeout: 200 * time.Millisecond},
			want: ErrDrainTimeout, msg: "warm-up frame not echoed back within 200ms",
		},
		{
			name: "frames never come back",
			handle: func(c net.Conn) {
				io.Copy(io.Discard, c)
			},
			cfg:  StreamConfig{BytesPerTick: 100, TickInterval: 10 * time.Millisecond, Duration: 50 * time.Millisecond, NoWarmup: true, DrainTimeout: 200 * time.Millisecond},
			want: ErrDrainTimeout, msg: "frames missing after 200ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serveOne(t, tt.handle)
			var closes atomic.Int32
			tt.cfg.Close = func() error { closes.Add(1); return c.Close() }
			obs := &recorder{}
			start := time.Now()
			res, err := EchoStream(context.Background(), c, tt.cfg, obs)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("EchoStream took %v to fail", d)
			}
			if res.Errors != 1 || len(obs.errs) != 1 || closes.Load() != 1 {
				t.Errorf("Errors %d, observer errors %v, Close called %d times; want 1, 1, 1", res.Errors, obs.errs, closes.Load())
			}
			if res.BytesSent != res.FramesSent*100 {
				t.Errorf("BytesSent %d, want FramesSent %d × 100", res.BytesSent, res.FramesSent)
			}
		})
	}
}

func TestEchoStreamCancel(t *testing.T) {
	c := serveOne(t, plainEcho)
	obs := &triggerObserver{n: 5, fire: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-obs.fire
		cancel()
	}()
	var closes atomic.Int32
	res, err := EchoStream(ctx, c, StreamConfig{BytesPerTick: 64, TickInterval: 2 * time.Millisecond, Duration: 30 * time.Second,
		Close: func() error { closes.Add(1); return c.Close() }}, obs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if res.Errors != 0 || len(obs.errs) != 0 || res.FramesReceived < 5 || closes.Load() != 1 {
		t.Errorf("result %+v, observer errors %v, Close called %d times; want no errors, >= 5 frames, 1 Close", res, obs.errs, closes.Load())
	}
}

func TestEchoStreamConfigErrors(t *testing.T) {
	var wrote bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(""), &wrote}
	tests := []struct {
		cfg  StreamConfig
		want string
	}{
		{StreamConfig{BytesPerTick: 45, TickInterval: time.Millisecond, Duration: time.Second}, "below the minimum frame size 46"},
		{StreamConfig{BytesPerTick: MaxFrameSize + 1, TickInterval: time.Millisecond, Duration: time.Second}, "above the maximum frame size"},
		{StreamConfig{BytesPerTick: 100, TickInterval: -1, Duration: time.Second}, "tickInterval"},
		{StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond}, "exactly one of duration and totalBytes"},
		{StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, TotalBytes: -5}, "must not be negative"},
		{StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, TotalBytes: 5, DrainTimeout: -1}, "drainTimeout"},
		{StreamConfig{BytesPerTick: 100, TickInterval: time.Millisecond, TotalBytes: 5, TTYEcho: true}, "ttyEcho requires cooked"},
		{StreamConfig{BytesPerTick: 4097, TickInterval: time.Millisecond, TotalBytes: 5, Cooked: true, Canonical: true}, "canonical mode truncates"},
	}
	for _, tt := range tests {
		obs := &recorder{}
		_, err := EchoStream(context.Background(), rw, tt.cfg, obs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("EchoStream(%+v): got %v, want error containing %q", tt.cfg, err, tt.want)
		}
		if len(obs.errs) != 0 {
			t.Errorf("EchoStream(%+v): a configuration error was reported to OnError", tt.cfg)
		}
	}
	if wrote.Len() != 0 {
		t.Errorf("configuration errors wrote %d bytes", wrote.Len())
	}
}

// slowWriter delays its nth Write (0 = the warm-up frame) by delay.
type slowWriter struct {
	net.Conn
	n     int
	delay time.Duration
	calls int
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.calls == w.n {
		time.Sleep(w.delay)
	}
	w.calls++
	return w.Conn.Write(p)
}

func TestEchoStreamMissedTicksAfterSlowWarmup(t *testing.T) {
	// The warm-up takes 200ms (the far end holds its echo back), so the
	// schedule starts 200ms after the stream. Ticks are due every 20ms from
	// there; the write of frame 2 (due at 40ms) blocks 50ms, so at ~90ms
	// tick 3 (due 60ms) is more than one interval overdue and missed, and
	// tick 4 (due 80ms) is sent at once. Counting from the stream's start
	// instead of the schedule's would miss every remaining tick.
	c := serveOne(t, func(c net.Conn) {
		buf := make([]byte, 100)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
		c.Write(buf)
		io.Copy(c, c)
	})
	obs := &recorder{}
	res, err := EchoStream(context.Background(), &slowWriter{Conn: c, n: 3, delay: 50 * time.Millisecond},
		StreamConfig{BytesPerTick: 100, TickInterval: 20 * time.Millisecond, Duration: 200 * time.Millisecond}, obs)
	if err != nil {
		t.Fatalf("EchoStream: %v (result %+v)", err, res)
	}
	checkStream(t, res, obs, 100, 10, 1, 0)
	// 2 when the blocked write returns more than 10ms late (a loaded host).
	if res.TicksMissed < 1 || res.TicksMissed > 2 {
		t.Errorf("TicksMissed = %d, want 1 (or 2 on a loaded host)", res.TicksMissed)
	}
	if res.Warmup < 200*time.Millisecond {
		t.Errorf("Warmup = %v, want >= 200ms", res.Warmup)
	}
}

// stallingConn stalls after writing one chosen frame, so that the ticks
// after it are missed while that frame is already back.
type stallingConn struct {
	net.Conn
	writes, stallAt int
	stall           time.Duration
}

func (c *stallingConn) Write(b []byte) (int, error) {
	c.writes++
	n, err := c.Conn.Write(b)
	if c.writes == c.stallAt {
		time.Sleep(c.stall)
	}
	return n, err
}

// TestEchoStreamReusableAfterTrailingMissedTicks: when the last ticks of a
// stream are missed after every frame is back, the reader waits for a frame
// that never comes; on a net.Conn EchoStream must end that read so the next
// stream on the same connection gets its own echoes.
func TestEchoStreamReusableAfterTrailingMissedTicks(t *testing.T) {
	c := serveOne(t, plainEcho)
	// Writes: 1 warm-up, then frames 1..10; the writer stalls after the
	// 9th frame past the 10th tick, which is then missed.
	sc := &stallingConn{Conn: c, stallAt: 1 + 9, stall: 120 * time.Millisecond}
	cfg := StreamConfig{BytesPerTick: 100, TickInterval: 20 * time.Millisecond, Duration: 200 * time.Millisecond, DrainTimeout: 2 * time.Second}
	res, err := EchoStream(context.Background(), sc, cfg, nil)
	if err != nil {
		t.Fatalf("first stream: %v (result %+v)", err, res)
	}
	if res.TicksMissed == 0 || res.FramesReceived != res.FramesSent {
		t.Fatalf("first stream %+v: want trailing missed ticks and every sent frame back", res)
	}
	res, err = EchoStream(context.Background(), c, cfg, nil)
	if err != nil {
		t.Fatalf("second stream on the same connection: %v (result %+v)", err, res)
	}
	if res.FramesSent == 0 || res.FramesReceived != res.FramesSent {
		t.Fatalf("second stream %+v: want every frame back", res)
	}
}
