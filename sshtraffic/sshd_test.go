package sshtraffic

import (
	"context"
	"testing"
	"time"

	"github.com/cdeload/cdeload/sshtraffic/sshdtest"
	"golang.org/x/crypto/ssh"
)

// TestOpenSSHInterop runs the client against Debian's real sshd.
func TestOpenSSHInterop(t *testing.T) {
	d := sshdtest.Start(t)
	ctx := context.Background()

	cfg := ClientConfig{User: d.User, PrivateKeyPEM: d.PrivateKeyPEM, KnownHostsFile: d.KnownHostsFile, Timeout: 10 * time.Second}
	c := connect(t, d.Addr, cfg)
	if v := c.Info().ServerVersion; len(v) < 12 || v[:12] != "SSH-2.0-Open" {
		t.Errorf("ServerVersion = %q, want OpenSSH", v)
	}

	r, err := c.Run(ctx, "echo hi")
	if err != nil || string(r.Stdout) != "hi\n" || r.ExitCode != 0 {
		t.Fatalf("Run(echo hi) = %+v, %v; want stdout \"hi\\n\", code 0", r, err)
	}
	r, err = c.Run(ctx, "sh -c 'echo oops >&2; exit 3'")
	if err != nil || r.ExitCode != 3 || string(r.Stderr) != "oops\n" {
		t.Fatalf("Run(exit 3) = %+v, %v; want code 3 and stderr \"oops\\n\"", r, err)
	}

	for _, tc := range []struct {
		name  string
		cfg   EchoConfig
		dupes bool
	}{
		{name: "no pty", cfg: EchoConfig{BytesPerTick: 1024, TickInterval: 5 * time.Millisecond, Duration: 200 * time.Millisecond}},
		{name: "raw pty", cfg: EchoConfig{BytesPerTick: 1024, TickInterval: 5 * time.Millisecond, Duration: 200 * time.Millisecond, PTY: true}},
		// A cooked tty echoes each frame itself besides cat's copy; when its
		// output backs up (a loaded CI machine), that echo can land inside
		// cat's copy of the previous frame, a real tty's behaviour (seen on
		// Coder agents too, where cdeload turns the echo off). 20 ms ticks
		// keep the output from backing up; 5 ms broke a frame once in CI.
		{name: "cooked pty", cfg: EchoConfig{BytesPerTick: 256, TickInterval: 20 * time.Millisecond, Duration: 100 * time.Millisecond, PTY: true, TerminalModes: ssh.TerminalModes{}}, dupes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recorder{}
			res, err := c.Echo(ctx, tc.cfg, obs)
			if err != nil {
				t.Fatalf("Echo: %v (result %+v)", err, res)
			}
			checkComplete(t, res, obs, tc.cfg.BytesPerTick, int64(tc.cfg.Duration/tc.cfg.TickInterval))
			if tc.dupes {
				if res.Duplicates < 1 {
					t.Errorf("cooked pty: Duplicates = %d, want the tty's echo copies", res.Duplicates)
				}
			} else if res.BytesReceived != res.BytesSent || res.Duplicates != 0 {
				t.Errorf("BytesReceived %d Duplicates %d, want %d and 0", res.BytesReceived, res.Duplicates, res.BytesSent)
			}
			t.Logf("%s: %d frames, RTT p50 %v p95 %v max %v", tc.name, res.FramesReceived, res.RTT.P50, res.RTT.P95, res.RTT.Max)
		})
	}
}
