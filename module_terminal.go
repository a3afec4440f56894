package cdeload

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/cdeload/cdeload/sshtraffic"
)

// terminalEcho runs an echo stream over a web terminal running cat: the
// engine is sshtraffic.EchoStream, with the schedule of cfg (its SSH-only
// fields are not used). The terminal's tty is cooked: it echoes every frame
// itself before cat copies it (unless quietTerminalCommand turned that
// off: see terminalEchoMode), adds CR before LF, and truncates lines
// beyond 4095 bytes. So the stream drops CRs, takes the RTT at the first
// copy of a frame, counts cat's copy in Duplicates and waits for it before
// ending, and refuses frames above 4096 bytes. When the stream fails or ctx
// ends, the terminal is closed (its byte stream is then in an unknown
// state); after a clean stream it can carry another one.
func terminalEcho(ctx context.Context, rw io.ReadWriter, cfg sshtraffic.EchoConfig, obs sshtraffic.Observer) (sshtraffic.EchoResult, error) {
	return terminalEchoMode(ctx, rw, cfg, obs, true)
}

// terminalEchoMode is terminalEcho for a tty whose own echo is on
// (ttyEcho) or off (quietTerminalCommand): then only cat's copy comes back.
func terminalEchoMode(ctx context.Context, rw io.ReadWriter, cfg sshtraffic.EchoConfig, obs sshtraffic.Observer, ttyEcho bool) (sshtraffic.EchoResult, error) {
	sc := sshtraffic.StreamConfig{
		BytesPerTick: cfg.BytesPerTick, TickInterval: cfg.TickInterval,
		Duration: cfg.Duration, TotalBytes: cfg.TotalBytes,
		DrainTimeout: cfg.DrainTimeout, NoWarmup: cfg.NoWarmup,
		Cooked: true, TTYEcho: ttyEcho, Canonical: true,
	}
	if c, ok := rw.(io.Closer); ok {
		sc.Close = c.Close
	}
	return sshtraffic.EchoStream(ctx, rw, sc, obs)
}

// quietTerminalCommand is the web terminal's command on a real Coder agent:
// a real tty's own echo of a frame can land in the middle of cat's copy of
// the previous one when the pty's output buffer fills (seen under load: "frame
// 12 body differs at byte 82"), so the tty's echo is turned off first, and
// the marker line says when it is (input sent earlier would still be echoed).
const quietTerminalCommand = "stty -echo; echo " + quietTerminalMarker + "; exec cat"

// quietTerminalMarker is printed once the tty's echo is off.
const quietTerminalMarker = "cdeload-tty-echo-off"

// waitQuiet reads r until the marker line of quietTerminalCommand; the
// caller bounds it by closing r when ctx ends.
func waitQuiet(r io.Reader) error {
	var seen []byte
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, []byte(quietTerminalMarker+"\r\n")) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for the terminal to turn its echo off (%q): %w; output so far: %q",
				quietTerminalCommand, err, truncateBytes(seen, 200))
		}
		if len(seen) > 64<<10 {
			return fmt.Errorf("the terminal printed %d bytes without the marker of %q: %q", len(seen), quietTerminalCommand, truncateBytes(seen, 200))
		}
	}
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
