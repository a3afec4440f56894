package sshtraffic

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// RunResult is the outcome of a command that ran to completion.
type RunResult struct {
	// Stdout and Stderr hold the command's output, each capped at
	// ClientConfig.MaxOutputBytes.
	Stdout, Stderr []byte
	// Truncated is set when either stream exceeded the cap.
	Truncated bool
	// ExitCode is the exit status; 128 + signal number when killed.
	ExitCode int
	// Signal is the name of the signal that ended the command, or empty.
	Signal string
	// Duration is from the exec request to the exit status.
	Duration time.Duration
}

// Err returns an *ExitError when the command failed, else nil.
func (r RunResult) Err() error {
	if r.ExitCode == 0 && r.Signal == "" {
		return nil
	}
	return &ExitError{Code: r.ExitCode, Signal: r.Signal, Stderr: r.Stderr}
}

// cappedBuffer keeps the first max bytes written and counts the rest.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
	} else {
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		b.truncated = true
	}
	return len(p), nil
}

func (b *cappedBuffer) bytes() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...), b.truncated
}

// Run executes command in a new session with empty stdin and waits for it.
// A non-zero exit is reported in RunResult.ExitCode, not as an error (use
// RunResult.Err for an *ExitError). The error is non-nil only when the
// command could not be started, the connection failed, the command ended
// without an exit status (ErrNoExitStatus) or ctx ended (the command is then
// sent SIGKILL and its session closed).
func (c *Client) Run(ctx context.Context, command string) (RunResult, error) {
	s, err := c.newSession(ctx)
	if err != nil {
		return RunResult{}, fmt.Errorf("run %q: %w", command, err)
	}
	defer s.Close()
	stdout := &cappedBuffer{max: c.maxOutput}
	stderr := &cappedBuffer{max: c.maxOutput}
	s.Stdout, s.Stderr = stdout, stderr

	stop := context.AfterFunc(ctx, func() {
		s.Signal(ssh.SIGKILL)
		s.Close()
	})
	defer stop()
	start := time.Now()
	if err := s.Start(command); err != nil {
		if ctx.Err() != nil {
			return RunResult{}, fmt.Errorf("run %q: %w", command, ctx.Err())
		}
		return RunResult{}, fmt.Errorf("run %q: start: %w", command, c.lostOr(err))
	}
	werr := s.Wait()
	res := RunResult{Duration: time.Since(start)}
	var t1, t2 bool
	res.Stdout, t1 = stdout.bytes()
	res.Stderr, t2 = stderr.bytes()
	res.Truncated = t1 || t2
	if werr == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("run %q: %w", command, ctx.Err())
	}
	ee, ok, err := exitErrorFrom(werr, nil)
	if ok {
		res.ExitCode, res.Signal = ee.Code, ee.Signal
		return res, nil
	}
	return res, fmt.Errorf("run %q: %w", command, c.lostOr(err))
}

// lostOr prefers the connection's own failure over a channel-level symptom.
// The connection's end is noticed a moment after its channels fail, so wait
// briefly for it.
func (c *Client) lostOr(err error) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.connDone:
	case <-t.C:
	}
	if lost := c.connLost(); lost != nil {
		return fmt.Errorf("%w (%v)", lost, err)
	}
	return err
}
