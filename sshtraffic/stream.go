package sshtraffic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// StreamConfig configures EchoStream. Exactly one of Duration and
// TotalBytes must be positive.
type StreamConfig struct {
	// BytesPerTick is the frame size, at least MinFrameSize.
	BytesPerTick int
	// TickInterval is the time between frames.
	TickInterval time.Duration
	// Duration ends the schedule: ticks are due at start + n·TickInterval
	// for every n with n·TickInterval < Duration.
	Duration time.Duration
	// TotalBytes ends the stream once ceil(TotalBytes/BytesPerTick) frames
	// have been sent (missed ticks do not count toward it).
	TotalBytes int64
	// DrainTimeout bounds the wait for the warm-up frame, for outstanding
	// frames after the last send, and during the schedule for any frame to
	// come back while some are outstanding (a far end that stopped
	// answering). 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// NoWarmup skips the warm-up frame (see EchoResult.Warmup).
	NoWarmup bool
	// Cooked says the stream passes through a terminal: '\r' bytes are
	// dropped (output translation adds them; frames never contain one) and
	// a repeated copy of a frame is counted in EchoResult.Duplicates
	// instead of failing the stream.
	Cooked bool
	// TTYEcho says the far end's terminal echoes input itself (its ECHO
	// mode is on) before the command copies it, so every frame comes back
	// twice. The first copy gives the RTT; the warm-up waits for the second
	// copy of its frame (only that one shows the command is running), and
	// the stream ends once the second copy of every frame is back too.
	// Requires Cooked.
	TTYEcho bool
	// Canonical says the far end's terminal is in canonical (line) mode,
	// which truncates lines beyond 4095 bytes: BytesPerTick must then be at
	// most 4096.
	Canonical bool
	// CloseWrite, if set, is called once every frame has been sent, to end
	// the input (over SSH it closes the command's stdin, so cat exits once
	// it has echoed everything). An error from it ends the stream.
	CloseWrite func() error
	// Close, if set, is called when the stream ends early (ctx ended or the
	// stream failed) to unblock a Read or Write in progress, typically by
	// closing the stream; EchoStream then waits for its goroutines, at most
	// AbortGrace. Without it EchoStream returns at once. A goroutine still
	// blocked in a Read or Write of the stream ends when that call returns,
	// without touching the result or the observer.
	Close func() error
}

func (cfg *StreamConfig) normalize() error {
	if cfg.BytesPerTick < MinFrameSize {
		return fmt.Errorf("echo config: bytesPerTick %d is below the minimum frame size %d (a %d-byte header plus a newline)", cfg.BytesPerTick, MinFrameSize, FrameHeaderSize)
	}
	if cfg.BytesPerTick > MaxFrameSize {
		return fmt.Errorf("echo config: bytesPerTick %d is above the maximum frame size %d", cfg.BytesPerTick, MaxFrameSize)
	}
	if cfg.TickInterval <= 0 {
		return fmt.Errorf("echo config: tickInterval %v must be positive", cfg.TickInterval)
	}
	if cfg.Duration < 0 || cfg.TotalBytes < 0 {
		return fmt.Errorf("echo config: duration %v and totalBytes %d must not be negative", cfg.Duration, cfg.TotalBytes)
	}
	if (cfg.Duration > 0) == (cfg.TotalBytes > 0) {
		return errors.New("echo config: set exactly one of duration and totalBytes")
	}
	if cfg.DrainTimeout < 0 {
		return fmt.Errorf("echo config: drainTimeout %v must not be negative", cfg.DrainTimeout)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.TTYEcho && !cfg.Cooked {
		return errors.New("echo config: ttyEcho requires cooked (a terminal's echo comes with its output translation)")
	}
	if cfg.Canonical && cfg.BytesPerTick > maxCookedFrame {
		return fmt.Errorf("echo config: bytesPerTick %d is above %d: a terminal in canonical mode truncates longer lines", cfg.BytesPerTick, maxCookedFrame)
	}
	return nil
}

// EchoStream runs an echo stream over rw, whose far end must return every
// byte written to it (a TCP echo service, cat behind a pipe, a terminal
// running cat), and returns its summary. obs may be nil. The schedule,
// frames and RTT are those of Client.Echo (see the package documentation);
// rw's Read and Write are called concurrently from different goroutines.
//
// At the end of the schedule EchoStream stops sending, calls
// cfg.CloseWrite if set, and waits up to DrainTimeout for the remaining
// frames. It does not close rw. Once the last expected frame (with TTYEcho,
// the last second copy) has been read it stops reading, so rw can carry
// another stream. When a Duration stream's last ticks were missed while its
// frames were already back, a Read is left waiting: EchoStream ends it
// through a read deadline, cleared afterwards, when rw has SetReadDeadline
// (a net.Conn does);
// otherwise it stays pending until rw delivers data or is closed.
//
// The error is nil when every frame came back intact. Otherwise it wraps
// ErrFarEndClosed (rw's Read or Write failed or reached EOF first, the
// cause is wrapped as well), ErrBadFrame (echoed data corrupt or out of
// order), ErrDrainTimeout (also when no frame came back for DrainTimeout
// during the schedule: the far end stopped answering), or ctx's error when
// ctx ended the stream (which is not reported to OnError). A configuration
// error is returned before anything is written.
//
// EchoStream returns within DrainTimeout (plus AbortGrace when cfg.Close
// is set) after the end of the schedule or after the far end stopped
// answering, and within AbortGrace after ctx ended, whatever rw does: a
// Read or Write that cfg.Close does not unblock is left behind.
func EchoStream(ctx context.Context, rw io.ReadWriter, cfg StreamConfig, obs Observer) (EchoResult, error) {
	if obs == nil {
		obs = nopObserver{}
	}
	e, err := newEngine(cfg, obs)
	if err != nil {
		return EchoResult{}, err
	}
	var abort func()
	if cfg.Close != nil {
		abort = func() { _ = cfg.Close() }
	}
	err = e.run(ctx, rw, hooks{closeWrite: cfg.CloseWrite, abort: abort})
	switch {
	case err != nil && abort != nil:
		e.waitGoroutines(AbortGrace)
	case err == nil:
		select {
		case <-e.readerExit:
			e.wg.Wait() // the writer has returned too
		default:
			e.unblockReader(rw)
		}
	}
	res := e.stop()
	if err != nil && ctx.Err() == nil {
		res.Errors = 1
		obs.OnError(err)
	}
	return res, err
}

// AbortGrace is how long a stream that ended early waits for its reader and
// writer to return once its transport was told to close (StreamConfig.Close,
// or the SSH session closed). A transport whose far end vanished may never
// unblock them: the stream then returns without them.
const AbortGrace = time.Second

// waitGoroutines waits up to d for the reader and writer to return and
// reports whether they did.
func (e *engine) waitGoroutines(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// unblockReader ends a Read left waiting for a frame the schedule never
// sent (its last ticks were missed after every frame was back), when rw
// supports read deadlines, so that rw can carry another stream.
func (e *engine) unblockReader(rw io.ReadWriter) {
	d, ok := rw.(interface{ SetReadDeadline(time.Time) error })
	if !ok || d.SetReadDeadline(time.Now()) != nil {
		return
	}
	<-e.readerExit
	e.wg.Wait()
	_ = d.SetReadDeadline(time.Time{})
}

// hooks adapt the engine to a transport.
type hooks struct {
	// closeWrite ends the input once every frame has been sent.
	closeWrite func() error
	// abort unblocks the goroutines when the stream ends early.
	abort func()
	// farEnd explains a failed read or write; nil means the generic
	// ErrFarEndClosed / ErrBadFrame wrapping.
	farEnd func(cause error, recv, sent int64) error
}

// engine is the echo machinery shared by Client.Echo and EchoStream: the
// tick schedule (writer), frame parsing and RTT (reader), warm-up, drain
// and accounting.
type engine struct {
	cfg   StreamConfig
	obs   Observer
	frame []byte
	h     hooks
	start time.Time

	// mu is held for reading around every counter update and observer
	// call; stop takes it for writing, after which nothing is counted or
	// reported.
	mu      sync.RWMutex
	stopped bool

	framesSent, framesRecv atomic.Int64
	bytesSent, bytesRecv   atomic.Int64
	warmSent, warmRecv     atomic.Int64
	missed, dups           atomic.Int64
	// total is the number of frames the schedule sends, -1 until known:
	// the writer sets it before writing the last frame, so the reader can
	// stop right after that frame.
	total atomic.Int64

	rttMu sync.Mutex
	rtt   rttRecorder

	progress chan struct{}

	// With warm-up, frame 0 is the warm-up frame and scheduled frames
	// start at seqBase 1; warmed is closed when it has come back.
	seqBase uint64
	// warmCopies is how many copies of the warm-up frame to wait for: 2
	// with TTYEcho (the tty's echo, then the command's copy: the first
	// alone would not show that the command is running), else 1.
	warmCopies int
	warmed     chan struct{}
	warmup     time.Duration // written by the reader before closing warmed

	wg         sync.WaitGroup
	readerExit chan struct{} // closed when the reader goroutine returns
	// drainEnd is when the drain timeout runs out; set by run once the
	// schedule has ended.
	drainEnd time.Time
}

func newEngine(cfg StreamConfig, obs Observer) (*engine, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	frame, err := NewFrame(cfg.BytesPerTick)
	if err != nil {
		return nil, fmt.Errorf("echo config: %w", err)
	}
	e := &engine{cfg: cfg, obs: obs, frame: frame, progress: make(chan struct{}, 1),
		warmed: make(chan struct{}), readerExit: make(chan struct{})}
	e.total.Store(-1)
	if cfg.NoWarmup {
		close(e.warmed)
	} else {
		e.seqBase = 1
		e.warmCopies = 1
		if cfg.TTYEcho {
			e.warmCopies = 2
		}
	}
	return e, nil
}

// run starts the reader and writer on rw and returns when every frame is
// back or the stream failed; on failure it calls h.abort. The goroutines
// may still be running when it returns (see e.wg).
func (e *engine) run(ctx context.Context, rw io.ReadWriter, h hooks) error {
	e.h = h
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	e.start = time.Now()
	er := &echoReader{r: rw, e: e, stripCR: e.cfg.Cooked, warmLeft: int64(e.warmCopies) * int64(e.cfg.BytesPerTick)}
	fr, err := NewFrameReader(er, e.cfg.BytesPerTick, false)
	if err != nil {
		return fmt.Errorf("echo config: %w", err)
	}
	readerDone := make(chan error, 1)
	writerDone := make(chan error, 1)
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		defer close(e.readerExit)
		readerDone <- e.read(fr)
	}()
	go func() {
		defer e.wg.Done()
		writerDone <- e.write(sctx, rw)
	}()

	err = e.wait(ctx, readerDone, writerDone)
	if err != nil && h.abort != nil {
		h.abort()
	}
	return err
}

// stallWatch follows the frames coming back during the schedule, to notice
// a far end that stopped answering.
type stallWatch struct {
	back  int64     // frames (and second copies) back at the last check
	since time.Time // when the current wait for a frame was first seen; zero if none outstanding
}

// stalled reports an error when frames have been outstanding and none has
// come back for at least DrainTimeout. It is called periodically, so the
// stream fails at most one period after that.
func (e *engine) stalled(w *stallWatch, now time.Time) error {
	back := e.framesRecv.Load() + e.dups.Load()
	switch {
	case e.complete():
		w.since = time.Time{}
	case w.since.IsZero() || back != w.back:
		w.since = now
	case now.Sub(w.since) >= e.cfg.DrainTimeout:
		sent, recv := e.framesSent.Load(), e.framesRecv.Load()
		return fmt.Errorf("echo: no frame came back for %v with %d of %d frames outstanding (the far end stopped answering): %w",
			e.cfg.DrainTimeout, sent-recv, sent, ErrDrainTimeout)
	}
	w.back = back
	return nil
}

// wait follows the stream until every frame is back or it fails.
func (e *engine) wait(ctx context.Context, readerDone, writerDone <-chan error) error {
	writing := true
	var drain *time.Timer
	var drainC <-chan time.Time
	warmTimer := time.NewTimer(e.cfg.DrainTimeout)
	warmC, warmed := warmTimer.C, e.warmed
	// During the schedule, a far end that stops answering is noticed
	// within DrainTimeout and a quarter (after the schedule, the drain
	// timer bounds the wait).
	stallCheck := time.NewTicker(max(e.cfg.DrainTimeout/4, time.Millisecond))
	stallC := stallCheck.C
	var stall stallWatch
	var closeWriteDone chan error
	defer func() {
		stallCheck.Stop()
		warmTimer.Stop()
		if drain != nil {
			drain.Stop()
		}
	}()
	for writing || !e.complete() || closeWriteDone != nil {
		select {
		case <-warmed:
			warmTimer.Stop()
			warmC, warmed = nil, nil
		case <-warmC:
			return fmt.Errorf("echo: warm-up frame not echoed back within %v: %w", e.cfg.DrainTimeout, ErrDrainTimeout)
		case werr := <-writerDone:
			if werr != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("echo: %w", ctx.Err())
				}
				return e.farEnd(werr)
			}
			writing = false
			stallCheck.Stop()
			stallC = nil
			e.drainEnd = time.Now().Add(e.cfg.DrainTimeout)
			drain = time.NewTimer(e.cfg.DrainTimeout)
			drainC = drain.C
			if e.h.closeWrite != nil {
				// Asynchronously: the transport may block it (a far end
				// that stopped answering), and the drain timer bounds
				// the wait.
				ch := make(chan error, 1)
				closeWriteDone = ch
				go func() { ch <- e.h.closeWrite() }()
			}
		case err := <-closeWriteDone:
			closeWriteDone = nil
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("echo: %w", ctx.Err())
				}
				return e.farEnd(fmt.Errorf("end input: %w", err))
			}
		case rerr := <-readerDone:
			readerDone = nil
			if ctx.Err() != nil {
				return fmt.Errorf("echo: %w", ctx.Err())
			}
			if rerr == nil {
				continue // the reader saw the last expected frame
			}
			if errors.Is(rerr, io.EOF) && !writing && e.complete() {
				continue // every frame is back and the far end ended the stream
			}
			return e.farEnd(rerr)
		case <-e.progress:
		case now := <-stallC:
			if err := e.stalled(&stall, now); err != nil {
				return err
			}
		case <-drainC:
			sent, recv := e.framesSent.Load(), e.framesRecv.Load()
			if e.complete() {
				return e.farEnd(fmt.Errorf("end input: not done after %v: %w", e.cfg.DrainTimeout, ErrDrainTimeout))
			}
			if recv < sent {
				return fmt.Errorf("echo: %d of %d frames missing after %v: %w", sent-recv, sent, e.cfg.DrainTimeout, ErrDrainTimeout)
			}
			return fmt.Errorf("echo: second copy (the command's echo) of %d of %d frames missing after %v: %w",
				sent-e.dups.Load(), sent, e.cfg.DrainTimeout, ErrDrainTimeout)
		case <-ctx.Done():
			return fmt.Errorf("echo: %w", ctx.Err())
		}
	}
	return nil
}

// complete reports whether every frame sent so far is back (with TTYEcho,
// both copies of it).
func (e *engine) complete() bool {
	sent := e.framesSent.Load()
	return e.framesRecv.Load() >= sent && (!e.cfg.TTYEcho || e.dups.Load() >= sent)
}

// farEnd explains a stream that ended early.
func (e *engine) farEnd(cause error) error {
	sent, recv := e.framesSent.Load(), e.framesRecv.Load()
	if e.h.farEnd != nil {
		return e.h.farEnd(cause, recv, sent)
	}
	if errors.Is(cause, ErrBadFrame) {
		return fmt.Errorf("echo: after %d of %d frames: %w", recv, sent, cause)
	}
	return fmt.Errorf("echo: %w after %d of %d frames: %w", ErrFarEndClosed, recv, sent, cause)
}

// write runs the tick schedule until it ends or ctx is done.
func (e *engine) write(ctx context.Context, w io.Writer) error {
	interval := e.cfg.TickInterval
	var totalTicks int64 = -1 // Duration mode: ticks n with n·interval < Duration
	var totalFrames int64 = -1
	if e.cfg.Duration > 0 {
		totalTicks = int64((e.cfg.Duration + interval - 1) / interval)
	} else {
		totalFrames = (e.cfg.TotalBytes + int64(e.cfg.BytesPerTick) - 1) / int64(e.cfg.BytesPerTick)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C

	if e.seqBase == 1 {
		PutFrameHeader(e.frame, 0, int64(time.Since(e.start)))
		nw, err := w.Write(e.frame)
		if nw > 0 {
			e.warmSent.Add(int64(nw))
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write warm-up frame: %w", err)
		}
		select {
		case <-e.warmed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	schedStart := time.Since(e.start)
	// A schedule that ends in missed ticks has not marked its last frame.
	defer func() { e.total.CompareAndSwap(-1, e.framesSent.Load()) }()

	for n := int64(0); ; {
		if totalTicks >= 0 && n >= totalTicks {
			return nil
		}
		if totalFrames >= 0 && e.framesSent.Load() >= totalFrames {
			return nil
		}
		due := schedStart + time.Duration(n)*interval
		if wait := due - time.Since(e.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		now := time.Since(e.start)
		if now-due > interval {
			// The writer was blocked: every tick more than one interval
			// overdue is missed. Resume at the first tick k with
			// now - due(k) <= interval, due(k) = schedStart + k·interval.
			overdue := now - schedStart - interval
			k := int64((overdue + interval - 1) / interval) // ceil(overdue / interval)
			if totalTicks >= 0 && k > totalTicks {
				k = totalTicks
			}
			e.tickMissed(k - n)
			n = k
			if totalTicks >= 0 && n >= totalTicks {
				return nil
			}
			// Send tick k now, without re-checking: it was at most one
			// interval overdue at this decision (re-checking could skip
			// forever when an interval is shorter than one loop turn).
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seq := e.framesSent.Add(1) - 1
		if totalTicks >= 0 && n+1 >= totalTicks || totalFrames >= 0 && seq+1 >= totalFrames {
			e.total.Store(seq + 1) // before the write: the echo may be back at once
		}
		PutFrameHeader(e.frame, e.seqBase+uint64(seq), int64(time.Since(e.start)))
		nw, err := w.Write(e.frame)
		if nw > 0 {
			e.sent(nw)
		}
		if err != nil {
			if nw < len(e.frame) {
				e.framesSent.Add(-1)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write frame %d: %w", seq, err)
		}
		n++
	}
}

// read parses echoed frames until the last expected one is back, the
// stream fails, or it ends.
func (e *engine) read(fr *FrameReader) error {
	var next uint64
	warmCopies := 0
	for {
		h, err := fr.Next()
		if err != nil {
			return err
		}
		rtt := time.Since(e.start) - time.Duration(h.SendNanos)
		if h.Seq == 0 && e.seqBase == 1 {
			next = 1
			warmCopies++
			switch {
			case warmCopies == e.warmCopies:
				e.warmup = rtt
				close(e.warmed)
			case warmCopies > e.warmCopies && !e.cfg.Cooked:
				return fmt.Errorf("%w: warm-up frame echoed twice", ErrBadFrame)
			}
			continue
		}
		switch {
		case h.Seq < next && e.cfg.Cooked:
			e.dups.Add(1)
		case h.Seq != next:
			return fmt.Errorf("%w: got frame %d, want frame %d", ErrBadFrame, h.Seq, next)
		case int64(h.Seq-e.seqBase) >= e.framesSent.Load():
			return fmt.Errorf("%w: frame %d echoed before it was sent", ErrBadFrame, h.Seq)
		default:
			next++
			e.gotFrame(rtt, h.Seq-e.seqBase, int64(next-e.seqBase))
		}
		select {
		case e.progress <- struct{}{}:
		default:
		}
		if t := e.total.Load(); t >= 0 && e.framesRecv.Load() >= t && (!e.cfg.TTYEcho || e.dups.Load() >= t) {
			return nil // the last expected frame: read no further
		}
	}
}

// sent counts n payload bytes written.
func (e *engine) sent(n int) {
	e.mu.RLock()
	if !e.stopped {
		e.bytesSent.Add(int64(n))
		e.obs.OnBytes(n, 0)
	}
	e.mu.RUnlock()
}

// received counts n payload bytes read.
func (e *engine) received(n int) {
	e.mu.RLock()
	if !e.stopped {
		e.bytesRecv.Add(int64(n))
		e.obs.OnBytes(0, n)
	}
	e.mu.RUnlock()
}

func (e *engine) tickMissed(n int64) {
	e.mu.RLock()
	if !e.stopped {
		e.missed.Add(n)
		e.obs.OnTickMissed(int(n))
	}
	e.mu.RUnlock()
}

// gotFrame records the RTT of frame seq; recv frames are now back.
func (e *engine) gotFrame(rtt time.Duration, seq uint64, recv int64) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		return
	}
	e.rttMu.Lock()
	e.rtt.add(rtt)
	e.rttMu.Unlock()
	e.obs.OnRTT(rtt, seq)
	e.framesRecv.Store(recv)
}

// stop ends all counting and observer calls and returns the summary.
func (e *engine) stop() EchoResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	e.rttMu.Lock()
	rtt := e.rtt.summary()
	e.rttMu.Unlock()
	r := EchoResult{
		FramesSent:          e.framesSent.Load(),
		FramesReceived:      e.framesRecv.Load(),
		BytesSent:           e.bytesSent.Load(),
		BytesReceived:       e.bytesRecv.Load(),
		WarmupBytesSent:     e.warmSent.Load(),
		WarmupBytesReceived: e.warmRecv.Load(),
		TicksMissed:         e.missed.Load(),
		Duplicates:          e.dups.Load(),
		RTT:                 rtt,
	}
	if e.seqBase == 1 {
		select {
		case <-e.warmed:
			r.Warmup = e.warmup
		default:
		}
	}
	if !e.start.IsZero() {
		r.Duration = time.Since(e.start)
	}
	return r
}

// echoReader sits between the stream and the FrameReader: it drops '\r'
// bytes (cooked), and counts the bytes read, the warm-up copies apart from
// the measured frames.
type echoReader struct {
	r       io.Reader
	e       *engine
	stripCR bool
	// warmLeft is how many bytes (not counting '\r') still belong to the
	// warm-up copies, which come back before any scheduled frame is sent.
	warmLeft int64
}

func (c *echoReader) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		if n <= 0 {
			return 0, err
		}
		j, i := 0, 0
		for ; i < n && c.warmLeft > 0; i++ {
			b := p[i]
			if b == '\r' && c.stripCR {
				continue
			}
			p[j] = b
			j++
			c.warmLeft--
		}
		if i > 0 {
			c.e.warmRecv.Add(int64(i))
		}
		rest := p[i:n]
		if len(rest) > 0 {
			c.e.received(len(rest))
			if c.stripCR {
				rest = rest[:dropCR(rest)]
			}
			j += copy(p[j:], rest)
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// dropCR removes '\r' bytes from b in place and returns the new length.
func dropCR(b []byte) int {
	i := bytes.IndexByte(b, '\r')
	if i < 0 {
		return len(b)
	}
	j := i
	for _, c := range b[i+1:] {
		if c != '\r' {
			b[j] = c
			j++
		}
	}
	return j
}
