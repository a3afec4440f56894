package cdeload

import (
	"context"
	"io"

	"github.com/cdeload/cdeload/sshtraffic"
)

// terminalEcho runs an echo stream over a web terminal running cat: the
// engine is sshtraffic.EchoStream, with the schedule of cfg (its SSH-only
// fields are not used). The terminal's tty is cooked: it echoes every frame
// itself before cat copies it, adds CR before LF, and truncates lines
// beyond 4095 bytes. So the stream drops CRs, takes the RTT at the first
// copy of a frame, counts cat's copy in Duplicates and waits for it before
// ending, and refuses frames above 4096 bytes. When the stream fails or ctx
// ends, the terminal is closed (its byte stream is then in an unknown
// state); after a clean stream it can carry another one.
func terminalEcho(ctx context.Context, rw io.ReadWriter, cfg sshtraffic.EchoConfig, obs sshtraffic.Observer) (sshtraffic.EchoResult, error) {
	sc := sshtraffic.StreamConfig{
		BytesPerTick: cfg.BytesPerTick, TickInterval: cfg.TickInterval,
		Duration: cfg.Duration, TotalBytes: cfg.TotalBytes,
		DrainTimeout: cfg.DrainTimeout, NoWarmup: cfg.NoWarmup,
		Cooked: true, TTYEcho: true, Canonical: true,
	}
	if c, ok := rw.(io.Closer); ok {
		sc.Close = c.Close
	}
	return sshtraffic.EchoStream(ctx, rw, sc, obs)
}
