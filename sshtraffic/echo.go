package sshtraffic

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	// probeTimeout bounds the wait for the server's answer to a keepalive
	// request when a stream's goroutines did not end after its session was
	// closed.
	probeTimeout = 2 * time.Second
)

// ErrDrainTimeout is returned (wrapped) by Echo and EchoStream when the
// warm-up frame or, after the last send, other frames were still missing
// when the drain timeout ran out.
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
	// OnBytes reports stream bytes of the measured frames (not of the
	// warm-up frame) written to or read from the stream.
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
	// BytesSent and BytesReceived count the stream bytes of the measured
	// frames written and read, including any copies and '\r' bytes a
	// cooked terminal adds, and not the warm-up frame: BytesSent is
	// FramesSent × BytesPerTick unless a write failed part-way.
	BytesSent, BytesReceived int64
	// WarmupBytesSent and WarmupBytesReceived count the warm-up frame's
	// bytes (and its copies) apart.
	WarmupBytesSent, WarmupBytesReceived int64
	TicksMissed                          int64
	// Duplicates counts second copies of frames (a cooked tty's echo).
	Duplicates int64
	// Errors is the number of errors reported to Observer.OnError (0 or 1).
	Errors int
	// Warmup is the round trip of the warm-up frame: before the schedule
	// starts, one frame is sent and the stream waits for it to come back,
	// so the remote command's start-up (a shell exec'ing cat, say) is
	// measured here and kept out of RTT. It is not counted in frames,
	// bytes, ticks or RTT.
	Warmup time.Duration
	RTT    RTTSummary
	// Duration is from the first tick to the end of the stream.
	Duration time.Duration
}

func (cfg *EchoConfig) normalize() error {
	if cfg.Command == "" {
		cfg.Command = DefaultEchoCommand
	}
	if cfg.PTY && cfg.TerminalModes == nil {
		cfg.TerminalModes = RawTerminalModes
	}
	if cfg.PTY && cfg.BytesPerTick > maxCookedFrame && cfg.BytesPerTick <= MaxFrameSize {
		if v, ok := cfg.TerminalModes[ssh.ICANON]; !ok || v != 0 {
			return fmt.Errorf("echo config: bytesPerTick %d is above %d with a canonical-mode PTY (terminal modes leave ICANON on): the tty would truncate each frame", cfg.BytesPerTick, maxCookedFrame)
		}
	}
	sc := cfg.StreamConfig()
	if err := sc.normalize(); err != nil {
		return err
	}
	cfg.DrainTimeout = sc.DrainTimeout
	return nil
}

// StreamConfig returns the stream half of cfg, as Echo runs it: the
// schedule, and with PTY a cooked stream, with TTYEcho when the terminal
// modes (nil meaning RawTerminalModes) leave ECHO on and Canonical when
// they leave ICANON on.
func (cfg EchoConfig) StreamConfig() StreamConfig {
	sc := StreamConfig{BytesPerTick: cfg.BytesPerTick, TickInterval: cfg.TickInterval, Duration: cfg.Duration,
		TotalBytes: cfg.TotalBytes, DrainTimeout: cfg.DrainTimeout, NoWarmup: cfg.NoWarmup}
	if cfg.PTY {
		modes := cfg.TerminalModes
		if modes == nil {
			modes = RawTerminalModes
		}
		on := func(op uint8) bool { v, ok := modes[op]; return !ok || v != 0 }
		sc.Cooked = true
		sc.TTYEcho = on(ssh.ECHO)
		sc.Canonical = on(ssh.ICANON)
	}
	return sc
}

type nopObserver struct{}

func (nopObserver) OnRTT(time.Duration, uint64) {}
func (nopObserver) OnBytes(int, int)            {}
func (nopObserver) OnTickMissed(int)            {}
func (nopObserver) OnError(error)               {}

// Echo runs an echo stream (see the package documentation for the schedule
// and the PTY handling) through the remote command and returns its
// summary. obs may be nil. The session provides the byte stream for the
// same engine as EchoStream, with cfg.StreamConfig().
//
// At the end of the schedule Echo stops sending, closes the command's stdin,
// waits up to DrainTimeout for the remaining frames (with a PTY whose modes
// leave ECHO on, for cat's copy of every frame as well), then (without PTY)
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
	e, err := newEngine(cfg.StreamConfig(), obs)
	if err != nil {
		return EchoResult{}, err
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
	se := &sshEcho{c: c, cfg: cfg, s: s, stderr: &cappedBuffer{max: maxEchoStderr}}
	stopClose := context.AfterFunc(ctx, func() { s.Close() })
	err = se.run(ctx, e)
	stopClose()
	c.endStream(s, e)
	res := e.stop()
	if err != nil && ctx.Err() == nil {
		res.Errors = 1
		obs.OnError(err)
	}
	return res, err
}

// endStream closes the echo session and waits for the stream's reader and
// writer. When the far end vanished, closing the session does not unblock
// them (the channel ends only when the server confirms the close): after
// AbortGrace the connection is probed, and closed if the server does not
// answer within probeTimeout, which ends them. Echo thus returns in bounded
// time whatever the connection does.
func (c *Client) endStream(s *ssh.Session, e *engine) {
	go s.Close() // the close message may wait behind a blocked write
	if e.waitGoroutines(AbortGrace) || c.answers(probeTimeout) {
		return
	}
	c.abandon(fmt.Errorf("the server did not answer within %v", probeTimeout))
	e.waitGoroutines(AbortGrace)
}

// sshEcho is the SSH side of Echo: the session, its command and its exit.
type sshEcho struct {
	c      *Client
	cfg    EchoConfig
	s      *ssh.Session
	stderr *cappedBuffer
}

// sessionStream is the command's stdin and stdout as one stream.
type sessionStream struct {
	io.Reader
	io.Writer
}

func (se *sshEcho) run(ctx context.Context, e *engine) error {
	stdin, stdout, err := se.setup()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("echo: %w", ctx.Err())
		}
		return fmt.Errorf("echo: %w", se.c.lostOr(err))
	}
	err = e.run(ctx, sessionStream{stdout, stdin}, hooks{
		// EOF on stdin: cat exits once it has echoed everything.
		closeWrite: stdin.Close,
		// The close message may wait behind a write blocked by a far end
		// that stopped answering: endStream bounds that wait.
		abort:  func() { go se.s.Close() },
		farEnd: se.farEndError,
	})
	if err != nil || se.cfg.PTY {
		// A pty does not pass EOF on to the command: nothing more to wait
		// for once every frame is back.
		return err
	}
	return se.waitExit(ctx, e.drainEnd)
}

// setup requests the pty, wires the pipes and starts the command.
func (se *sshEcho) setup() (io.WriteCloser, io.Reader, error) {
	if se.cfg.PTY {
		if err := se.s.RequestPty("xterm", 24, 80, se.cfg.TerminalModes); err != nil {
			return nil, nil, fmt.Errorf("request pty: %w", err)
		}
	}
	stdin, err := se.s.StdinPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stdin pipe: %w", err)
	}
	stdout, err := se.s.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stdout pipe: %w", err)
	}
	se.s.Stderr = se.stderr
	if err := se.s.Start(se.cfg.Command); err != nil {
		return nil, nil, fmt.Errorf("start %q: %w", se.cfg.Command, err)
	}
	return stdin, stdout, nil
}

// waitExit waits (until drainEnd, the end of the drain timeout) for the
// command's exit status after all frames came back.
func (se *sshEcho) waitExit(ctx context.Context, drainEnd time.Time) error {
	waitErr := make(chan error, 1)
	go func() { waitErr <- se.s.Wait() }()
	drain := time.NewTimer(time.Until(drainEnd))
	defer drain.Stop()
	select {
	case werr := <-waitErr:
		if werr == nil {
			return nil
		}
		stderr, _ := se.stderr.bytes()
		ee, ok, err := exitErrorFrom(werr, stderr)
		if ok {
			return fmt.Errorf("echo: %w", ee)
		}
		if errors.Is(err, ErrNoExitStatus) {
			return fmt.Errorf("echo: %q: %w", se.cfg.Command, err)
		}
		return fmt.Errorf("echo: wait for %q: %w", se.cfg.Command, se.c.lostOr(err))
	case <-drain.C:
		// Every frame came back; a command that ignores EOF is closed.
		return nil
	case <-ctx.Done():
		return fmt.Errorf("echo: %w", ctx.Err())
	}
}

// farEndError explains a stream that ended early: the command's exit status
// if it failed, else the connection's fate, else ErrFarEndClosed.
func (se *sshEcho) farEndError(cause error, recv, sent int64) error {
	if errors.Is(cause, ErrBadFrame) {
		return fmt.Errorf("echo: after %d of %d frames: %w", recv, sent, cause)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- se.s.Wait() }()
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case werr := <-waitErr:
		stderr, _ := se.stderr.bytes()
		if ee, ok, _ := exitErrorFrom(werr, stderr); ok {
			return fmt.Errorf("echo: %q ended after %d of %d frames: %w", se.cfg.Command, recv, sent, ee)
		}
	case <-t.C:
	}
	detail := cause
	if lost := se.c.connLost(); lost != nil {
		detail = lost
	}
	return fmt.Errorf("echo: %w after %d of %d frames: %v", ErrFarEndClosed, recv, sent, detail)
}
