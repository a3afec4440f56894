package sshtraffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for EchoConfig.
const (
	DefaultEchoCommand  = "cat"
	DefaultDrainTimeout = 10 * time.Second
	// maxCookedFrame is the longest frame a canonical-mode tty passes intact
	// (Linux drops input beyond 4095 bytes per line).
	maxCookedFrame = 4096
	maxEchoStderr  = 64 << 10
)

// ErrDrainTimeout is returned (wrapped) by Echo when frames were still
// missing when EchoConfig.DrainTimeout ran out after the last send.
var ErrDrainTimeout = errors.New("echo frames not returned within the drain timeout")

// RawTerminalModes are the terminal modes Echo requests with PTY when
// EchoConfig.TerminalModes is nil: no echo, no line editing, no signal keys,
// no CR/LF translation in either direction, 8-bit characters.
var RawTerminalModes = ssh.TerminalModes{
	ssh.ECHO: 0, ssh.ECHONL: 0, ssh.ICANON: 0, ssh.ISIG: 0, ssh.IEXTEN: 0,
	ssh.ICRNL: 0, ssh.INLCR: 0, ssh.IGNCR: 0, ssh.IXON: 0, ssh.IXOFF: 0, ssh.ISTRIP: 0,
	ssh.OPOST: 0, ssh.ONLCR: 0, ssh.CS8: 1,
	ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400,
}

// EchoConfig configures one echo stream. Exactly one of Duration and
// TotalBytes must be positive.
type EchoConfig struct {
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
	// PTY requests a pseudo-terminal for the command.
	PTY bool
	// TerminalModes are sent with the PTY request; nil means
	// RawTerminalModes. Ignored without PTY.
	TerminalModes ssh.TerminalModes
	// Command is the remote echo command; empty means "cat".
	Command string
	// DrainTimeout bounds the wait for the warm-up frame and, after the
	// last send, for outstanding frames. 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// NoWarmup skips the warm-up frame (see EchoResult.Warmup).
	NoWarmup bool
}

// Observer receives live events from an echo stream. Methods are called from
// the stream's goroutines, possibly concurrently, and must return quickly.
type Observer interface {
	// OnRTT reports the round trip of frame seq.
	OnRTT(d time.Duration, seq uint64)
	// OnBytes reports payload bytes written to or read from the session.
	OnBytes(sent, received int)
	// OnTickMissed reports n ticks that could not be sent on time.
	OnTickMissed(n int)
	// OnError reports the error that ended the stream (not ctx ending).
	OnError(err error)
}

// EchoResult summarises an echo stream; it is filled in even when Echo
// returns an error.
type EchoResult struct {
	FramesSent, FramesReceived int64
	// BytesSent and BytesReceived count stream bytes written and read,
	// including any copies and '\r' bytes a cooked terminal adds.
	BytesSent, BytesReceived int64
	TicksMissed              int64
	// Duplicates counts second copies of frames (a cooked tty's echo).
	Duplicates int64
	// Errors is the number of errors reported to Observer.OnError (0 or 1).
	Errors int
	// Warmup is the round trip of the warm-up frame: before the schedule
	// starts, one frame is sent and the stream waits for it to come back,
	// so the remote command's start-up (a shell exec'ing cat, say) is
	// measured here and kept out of RTT. Its bytes count in BytesSent and
	// BytesReceived; it is not counted in frames, ticks or RTT.
	Warmup time.Duration
	RTT    RTTSummary
	// Duration is from the first tick to the end of the stream.
	Duration time.Duration
}

func (cfg *EchoConfig) normalize() error {
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
	if cfg.Command == "" {
		cfg.Command = DefaultEchoCommand
	}
	if cfg.PTY && cfg.TerminalModes == nil {
		cfg.TerminalModes = RawTerminalModes
	}
	if cfg.PTY && cfg.BytesPerTick > maxCookedFrame {
		if v, ok := cfg.TerminalModes[ssh.ICANON]; !ok || v != 0 {
			return fmt.Errorf("echo config: bytesPerTick %d is above %d with a canonical-mode PTY (terminal modes leave ICANON on): the tty would truncate each frame", cfg.BytesPerTick, maxCookedFrame)
		}
	}
	return nil
}

type nopObserver struct{}

func (nopObserver) OnRTT(time.Duration, uint64) {}
func (nopObserver) OnBytes(int, int)            {}
func (nopObserver) OnTickMissed(int)            {}
func (nopObserver) OnError(error)               {}

// Echo runs an echo stream (see the package documentation for the schedule
// and the PTY handling) and returns its summary. obs may be nil.
//
// At the end of the schedule Echo stops sending, closes the command's stdin,
// waits up to DrainTimeout for the remaining frames, then (without PTY)
// briefly for the command's exit status, and closes the session.
//
// The error is nil when every frame came back intact and the command did not
// fail. Otherwise it wraps ErrFarEndClosed (the far end or the connection
// closed early), ErrBadFrame (echoed data corrupt or out of order),
// ErrDrainTimeout, ErrNoExitStatus, an *ExitError (the command failed, e.g.
// status 127 for an unknown command), a transport error, or ctx's error when
// ctx ended the stream (which is not reported to OnError).
func (c *Client) Echo(ctx context.Context, cfg EchoConfig, obs Observer) (EchoResult, error) {
	if err := cfg.normalize(); err != nil {
		return EchoResult{}, err
	}
	if obs == nil {
		obs = nopObserver{}
	}
	frame, err := NewFrame(cfg.BytesPerTick)
	if err != nil {
		return EchoResult{}, fmt.Errorf("echo config: %w", err)
	}
	s, err := c.newSession(ctx)
	if err != nil {
		err = fmt.Errorf("echo: %w", err)
		if ctx.Err() == nil {
			obs.OnError(err)
			return EchoResult{Errors: 1}, err
		}
		return EchoResult{}, err
	}
	e := &echoStream{c: c, cfg: cfg, obs: obs, s: s, frame: frame,
		progress: make(chan struct{}, 1), stderr: &cappedBuffer{max: maxEchoStderr},
		warmed: make(chan struct{})}
	if !cfg.NoWarmup {
		e.seqBase = 1
		e.warmCopies = 1
		if v, ok := cfg.TerminalModes[ssh.ECHO]; cfg.PTY && (!ok || v != 0) {
			e.warmCopies = 2
		}
	} else {
		close(e.warmed)
	}
	return e.run(ctx)
}

type echoStream struct {
	c     *Client
	cfg   EchoConfig
	obs   Observer
	s     *ssh.Session
	frame []byte

	stdin  io.WriteCloser
	stdout io.Reader
	stderr *cappedBuffer
	start  time.Time

	framesSent atomic.Int64
	framesRecv atomic.Int64
	bytesSent  atomic.Int64
	bytesRecv  atomic.Int64
	missed     atomic.Int64
	dups       atomic.Int64
	rtt        rttRecorder // owned by the reader until it finishes
	progress   chan struct{}

	// With warm-up, frame 0 is the warm-up frame and scheduled frames
	// start at seqBase 1; warmed is closed when it has come back.
	seqBase uint64
	// warmCopies is how many copies of the warm-up frame to wait for: 2
	// when a PTY's modes leave ECHO on (the tty's echo, then cat's copy:
	// the first alone would not show that cat is running), else 1.
	warmCopies int
	warmed     chan struct{}
	warmup     time.Duration // written by the reader before closing warmed
}

func (e *echoStream) run(ctx context.Context) (res EchoResult, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopClose := context.AfterFunc(sctx, func() { e.s.Close() })
	defer stopClose()

	var wg sync.WaitGroup
	defer func() {
		cancel()
		e.s.Close()
		wg.Wait()
		res = e.result()
		if err != nil && ctx.Err() == nil {
			res.Errors = 1
			e.obs.OnError(err)
		}
	}()

	if err := e.setup(); err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("echo: %w", ctx.Err())
		}
		return res, fmt.Errorf("echo: %w", e.c.lostOr(err))
	}

	e.start = time.Now()
	readerDone := make(chan error, 1)
	writerDone := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		readerDone <- e.read()
	}()
	go func() {
		defer wg.Done()
		writerDone <- e.write(sctx)
	}()

	writing := true
	var drain *time.Timer
	var drainC <-chan time.Time
	warmTimer := time.NewTimer(e.cfg.DrainTimeout)
	warmC, warmed := warmTimer.C, e.warmed
	defer func() {
		warmTimer.Stop()
		if drain != nil {
			drain.Stop()
		}
	}()
	for writing || e.framesRecv.Load() < e.framesSent.Load() {
		select {
		case <-warmed:
			warmTimer.Stop()
			warmC, warmed = nil, nil
		case <-warmC:
			return res, fmt.Errorf("echo: warm-up frame not echoed back within %v: %w", e.cfg.DrainTimeout, ErrDrainTimeout)
		case werr := <-writerDone:
			if werr != nil {
				if ctx.Err() != nil {
					return res, fmt.Errorf("echo: %w", ctx.Err())
				}
				return res, e.farEndError(werr)
			}
			writing = false
			// EOF on stdin: cat exits once it has echoed everything.
			e.stdin.Close()
			drain = time.NewTimer(e.cfg.DrainTimeout)
			drainC = drain.C
		case rerr := <-readerDone:
			if ctx.Err() != nil {
				return res, fmt.Errorf("echo: %w", ctx.Err())
			}
			if errors.Is(rerr, io.EOF) && !writing && e.framesRecv.Load() >= e.framesSent.Load() {
				continue // every frame is back and cat exited: the loop ends
			}
			return res, e.farEndError(rerr)
		case <-e.progress:
		case <-drainC:
			return res, fmt.Errorf("echo: %d of %d frames missing after %v: %w",
				e.framesSent.Load()-e.framesRecv.Load(), e.framesSent.Load(), e.cfg.DrainTimeout, ErrDrainTimeout)
		case <-ctx.Done():
			return res, fmt.Errorf("echo: %w", ctx.Err())
		}
	}

	if e.cfg.PTY {
		// A pty does not pass EOF on to the command: nothing more to wait
		// for once every frame is back.
		return res, nil
	}
	return res, e.waitExit(ctx, drain)
}

// setup requests the pty, wires the pipes and starts the command.
func (e *echoStream) setup() error {
	if e.cfg.PTY {
		if err := e.s.RequestPty("xterm", 24, 80, e.cfg.TerminalModes); err != nil {
			return fmt.Errorf("request pty: %w", err)
		}
	}
	var err error
	if e.stdin, err = e.s.StdinPipe(); err != nil {
		return fmt.Errorf("stdin pipe: %w", err)
	}
	out, err := e.s.StdoutPipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	e.stdout = &countingReader{r: out, n: &e.bytesRecv, obs: e.obs}
	e.s.Stderr = e.stderr
	if err := e.s.Start(e.cfg.Command); err != nil {
		return fmt.Errorf("start %q: %w", e.cfg.Command, err)
	}
	return nil
}

// waitExit waits (within what is left of the drain timeout) for the
// command's exit status after all frames came back.
func (e *echoStream) waitExit(ctx context.Context, drain *time.Timer) error {
	waitErr := make(chan error, 1)
	go func() { waitErr <- e.s.Wait() }()
	select {
	case werr := <-waitErr:
		if werr == nil {
			return nil
		}
		stderr, _ := e.stderr.bytes()
		ee, ok, err := exitErrorFrom(werr, stderr)
		if ok {
			return fmt.Errorf("echo: %w", ee)
		}
		if errors.Is(err, ErrNoExitStatus) {
			return fmt.Errorf("echo: %q: %w", e.cfg.Command, err)
		}
		return fmt.Errorf("echo: wait for %q: %w", e.cfg.Command, e.c.lostOr(err))
	case <-drain.C:
		// Every frame came back; a command that ignores EOF is closed.
		return nil
	case <-ctx.Done():
		return fmt.Errorf("echo: %w", ctx.Err())
	}
}

// farEndError explains a stream that ended early: the command's exit status
// if it failed, else the connection's fate, else ErrFarEndClosed.
func (e *echoStream) farEndError(cause error) error {
	sent, recv := e.framesSent.Load(), e.framesRecv.Load()
	if errors.Is(cause, ErrBadFrame) {
		return fmt.Errorf("echo: after %d of %d frames: %w", recv, sent, cause)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- e.s.Wait() }()
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case werr := <-waitErr:
		stderr, _ := e.stderr.bytes()
		if ee, ok, _ := exitErrorFrom(werr, stderr); ok {
			return fmt.Errorf("echo: %q ended after %d of %d frames: %w", e.cfg.Command, recv, sent, ee)
		}
	case <-t.C:
	}
	detail := cause
	if lost := e.c.connLost(); lost != nil {
		detail = lost
	}
	return fmt.Errorf("echo: %w after %d of %d frames: %v", ErrFarEndClosed, recv, sent, detail)
}

// write runs the tick schedule until it ends or ctx is done.
func (e *echoStream) write(ctx context.Context) error {
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
		nw, err := e.stdin.Write(e.frame)
		if nw > 0 {
			e.bytesSent.Add(int64(nw))
			e.obs.OnBytes(nw, 0)
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
			// now - k·interval <= interval.
			overdue := now - interval
			k := int64((overdue + interval - 1) / interval) // ceil(overdue / interval)
			if totalTicks >= 0 && k > totalTicks {
				k = totalTicks
			}
			e.missed.Add(k - n)
			e.obs.OnTickMissed(int(k - n))
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
		PutFrameHeader(e.frame, e.seqBase+uint64(seq), int64(time.Since(e.start)))
		nw, err := e.stdin.Write(e.frame)
		if nw > 0 {
			e.bytesSent.Add(int64(nw))
			e.obs.OnBytes(nw, 0)
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

// read parses echoed frames until the stream fails or ends.
func (e *echoStream) read() error {
	fr, err := NewFrameReader(e.stdout, e.cfg.BytesPerTick, e.cfg.PTY)
	if err != nil {
		return err
	}
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
			case warmCopies > e.warmCopies && !e.cfg.PTY:
				return fmt.Errorf("%w: warm-up frame echoed twice", ErrBadFrame)
			}
			continue
		}
		switch {
		case h.Seq < next && e.cfg.PTY:
			e.dups.Add(1)
			continue
		case h.Seq != next:
			return fmt.Errorf("%w: got frame %d, want frame %d", ErrBadFrame, h.Seq, next)
		case int64(h.Seq-e.seqBase) >= e.framesSent.Load():
			return fmt.Errorf("%w: frame %d echoed before it was sent", ErrBadFrame, h.Seq)
		}
		next++
		e.rtt.add(rtt)
		e.obs.OnRTT(rtt, h.Seq-e.seqBase)
		e.framesRecv.Store(int64(next - e.seqBase))
		select {
		case e.progress <- struct{}{}:
		default:
		}
	}
}

func (e *echoStream) result() EchoResult {
	r := EchoResult{
		FramesSent:     e.framesSent.Load(),
		FramesReceived: e.framesRecv.Load(),
		BytesSent:      e.bytesSent.Load(),
		BytesReceived:  e.bytesRecv.Load(),
		TicksMissed:    e.missed.Load(),
		Duplicates:     e.dups.Load(),
		RTT:            e.rtt.summary(),
	}
	select {
	case <-e.warmed:
		r.Warmup = e.warmup
	default:
	}
	if !e.start.IsZero() {
		r.Duration = time.Since(e.start)
	}
	return r
}

// countingReader counts bytes read and reports them to the observer.
type countingReader struct {
	r   io.Reader
	n   *atomic.Int64
	obs Observer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n.Add(int64(n))
		c.obs.OnBytes(0, n)
	}
	return n, err
}
