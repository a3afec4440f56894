// Package sshtraffic is the SSH half of cdeload's data path: an SSH client
// over any net.Conn (a tailnet conn, a counting wrapper, plain TCP), command
// execution with bounded output capture, and echo streams that measure true
// round-trip latency.
//
// # Connecting
//
// Connect runs the SSH handshake on a connection the caller already dialled
// and opens one session, so ConnectInfo.Duration covers handshake plus
// "session ready". Exactly one host key policy must be set (KnownHostKey,
// KnownHostsFile or InsecureIgnoreHostKey); none is an error, never an
// insecure default. The handshake is bounded by ctx and ClientConfig.Timeout:
// cancelling ctx closes the connection and Connect returns ctx's error.
//
// # Echo streams
//
// Echo runs a command that copies stdin to stdout (cat by default) and
// writes one frame of EchoConfig.BytesPerTick bytes per tick. Each frame
// carries a sequence number and its send time (see the frame format on
// FrameHeaderSize); the reader parses frames as they come back and takes
// the RTT when the last byte of a frame has been read.
//
// The sender keeps an absolute schedule: tick n is due at start + n·interval.
// A frame is sent at its tick or, if the previous write returned late, as
// soon as the writer is free, provided the tick is at most one interval
// overdue. Ticks more than one interval overdue when the writer becomes free
// are counted as missed (EchoResult.TicksMissed, Observer.OnTickMissed) and
// are not sent later: the stream never bursts to catch up, and never drops a
// tick silently. The send time in a frame is the moment it is handed to the
// SSH channel, so time spent blocked by flow control counts toward that
// frame's RTT.
//
// With EchoConfig.PTY the session requests a pseudo-terminal. By default it
// asks for raw mode (no echo, no canonical line editing, no signal keys, no
// CR/LF translation), so every byte comes back exactly once, from cat. Frames
// are printable ASCII terminated by "\n" in every mode, so a server that
// ignores the requested modes (a cooked tty) still works for frames up to
// 4095 bytes: the reader drops "\r" bytes added by output translation and
// ignores the second copy of a frame that the tty's own echo produces
// (EchoResult.Duplicates). A PTY does not pass the client's EOF to the
// command, so at the end of a PTY stream the client waits for its frames and
// then closes the session instead of waiting for cat to exit.
package sshtraffic
