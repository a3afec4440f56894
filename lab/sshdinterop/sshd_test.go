// Package sshdinterop tests the SSH client against Debian's real OpenSSH
// server reached over the lab's tailnet: a workspace node listens on its
// tailnet port 22 and forwards each connection to sshd on loopback, so the
// bytes cross WireGuard, the lab's DERP/direct path and a real sshd.
package sshdinterop

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/sshtraffic/sshdtest"
	"github.com/cdeload/cdeload/tailnet"
)

func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }

// forward accepts tailnet connections on l and pipes each to target. Its
// cleanup closes every connection it made, so no copy outlives the test
// even when a peer vanished without closing its side.
func forward(t *testing.T, l net.Listener, target string) {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
}

func startNode(t *testing.T, lab *tailnetlab.Lab, name string, tags ...string) *tailnet.Node {
	t.Helper()
	n, err := tailnet.New(tailnet.Config{ControlURL: lab.ControlURL(), AuthKey: lab.AuthKey(), Hostname: name, AdvertiseTags: tags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Up(ctx); err != nil {
		t.Fatalf("node %s up: %v", name, err)
	}
	return n
}

func TestOpenSSHOverTailnet(t *testing.T) {
	sshd := sshdtest.Start(t)
	lab, err := tailnetlab.Start(context.Background(), tailnetlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })

	ws := startNode(t, lab, "ws-openssh", tailnetlab.WorkspaceTag)
	l, err := ws.Listen("tcp", ":22")
	if err != nil {
		t.Fatal(err)
	}
	forward(t, l, sshd.Addr)
	client := startNode(t, lab, "loadgen")

	connect := func(t *testing.T) *sshtraffic.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, _, err := client.Dial(ctx, "tcp", "ws-openssh:22")
		if err != nil {
			t.Fatalf("dial over the tailnet: %v", err)
		}
		c, err := sshtraffic.Connect(ctx, conn, sshtraffic.ClientConfig{
			User: sshd.User, Signer: sshd.Signer, KnownHostKey: sshd.HostKey,
		})
		if err != nil {
			t.Fatalf("ssh handshake with sshd over the tailnet: %v\nsshd log:\n%s", err, sshd.Log())
		}
		t.Cleanup(func() { c.Close() })
		if !strings.Contains(c.Info().ServerVersion, "OpenSSH") {
			t.Fatalf("server version %q: not OpenSSH, the forward reached something else", c.Info().ServerVersion)
		}
		return c
	}

	t.Run("run", func(t *testing.T) {
		c := connect(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := c.Run(ctx, "echo over-tailnet; echo oops >&2; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Stdout) != "over-tailnet\n" || string(r.Stderr) != "oops\n" || r.ExitCode != 3 {
			t.Fatalf("got stdout %q stderr %q exit %d; want \"over-tailnet\\n\", \"oops\\n\", 3", r.Stdout, r.Stderr, r.ExitCode)
		}
	})

	for _, pty := range []bool{false, true} {
		t.Run(fmt.Sprintf("echo pty=%v", pty), func(t *testing.T) {
			c := connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const frames = 20
			res, err := c.Echo(ctx, sshtraffic.EchoConfig{
				BytesPerTick: 128, TickInterval: 20 * time.Millisecond,
				Duration: frames * 20 * time.Millisecond, PTY: pty,
			}, nil)
			if err != nil {
				t.Fatalf("echo: %v\nsshd log:\n%s", err, sshd.Log())
			}
			if res.FramesSent+res.TicksMissed != frames || res.FramesReceived != res.FramesSent || res.Errors != 0 {
				t.Fatalf("frames sent %d, missed %d, received %d, errors %d; want %d scheduled, all back, no errors",
					res.FramesSent, res.TicksMissed, res.FramesReceived, res.Errors, frames)
			}
			if res.RTT.Count != res.FramesReceived || res.RTT.P50 <= 0 {
				t.Fatalf("RTT summary %+v does not cover the %d frames received", res.RTT, res.FramesReceived)
			}
		})
	}
}
