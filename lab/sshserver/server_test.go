package sshserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

type fixture struct {
	srv    *Server
	addr   string
	signer ssh.Signer
	cancel context.CancelFunc
	served chan error
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	hostKey, err := GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{HostKey: hostKey, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}, Logf: t.Logf}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{srv: srv, addr: l.Addr().String(), signer: signer, cancel: cancel, served: make(chan error, 1)}
	go func() { f.served <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-f.served
	})
	return f
}

func (f *fixture) dial(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", f.addr, &ssh.ClientConfig{
		User:            "tester",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(f.signer)},
		HostKeyCallback: ssh.FixedHostKey(f.srv.cfg.HostKey.PublicKey()),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *ssh.Client, cmd string, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	s.Stdin = strings.NewReader(stdin)
	err = s.Run(cmd)
	return o.String(), e.String(), err
}

// openSession opens a session on c that is closed when the test ends.
func openSession(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func exitCode(err error) int {
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestNewValidates(t *testing.T) {
	hk, err := GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{AuthorizedKeys: []ssh.PublicKey{hk.PublicKey()}}); err == nil {
		t.Error("New without HostKey: got nil error")
	}
	if _, err := New(Config{HostKey: hk}); err == nil || !strings.Contains(err.Error(), "no client authentication") {
		t.Errorf("New without auth: got %v, want no client authentication error", err)
	}
}

// bulk is stdin larger than cat's buffers, with no repeating period that
// would hide a reordered or lost chunk.
var bulk = func() string {
	var b strings.Builder
	for i := 0; b.Len() < 3*catLargeBuf+77; i++ {
		fmt.Fprintf(&b, "%d,", i)
	}
	return b.String()
}()

func TestCommands(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(t)
	tests := []struct {
		cmd, stdin, stdout, stderr string
		code                       int
	}{
		{cmd: "echo hello  world", stdout: "hello world\n"},
		{cmd: "echo -n 'a  b' \"c d\"", stdout: "a  b c d"},
		{cmd: "true"},
		{cmd: "false", code: 1},
		{cmd: "exit 3", code: 3},
		{cmd: "sh -c 'exit 42'", code: 42},
		{cmd: "cat", stdin: "some input\nmore", stdout: "some input\nmore"},
		// Past cat's small buffer: it switches to the large one mid-stream.
		{cmd: "cat", stdin: bulk, stdout: bulk},
		{cmd: "sleep 0.01"},
		{cmd: "nosuchcmd x", stderr: "nosuchcmd: command not found\n", code: 127},
		{cmd: "echo a | cat", stderr: "sh: unsupported shell syntax '|': only simple commands are supported\n", code: 2},
		{cmd: "tty", stdout: "not a tty\n", code: 1},
	}
	for _, tt := range tests {
		out, errOut, err := run(t, c, tt.cmd, tt.stdin)
		if got := exitCode(err); got != tt.code {
			t.Errorf("%q: exit code %d (err %v), want %d", tt.cmd, got, err, tt.code)
		}
		if out != tt.stdout || errOut != tt.stderr {
			t.Errorf("%q: stdout %q stderr %q, want %q %q", tt.cmd, out, errOut, tt.stdout, tt.stderr)
		}
	}
}

func TestEnv(t *testing.T) {
	s := openSession(t, newFixture(t, nil).dial(t))
	if err := s.Setenv("FOO", "bar"); err != nil {
		t.Fatalf("setenv: %v", err)
	}
	out, err := s.Output("printenv FOO")
	if err != nil || string(out) != "bar\n" {
		t.Fatalf("printenv FOO: %q, %v; want \"bar\\n\"", out, err)
	}
}

func TestPasswordAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Password = "s3cret" })
	cfg := &ssh.ClientConfig{
		User:            "u",
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         5 * time.Second,
	}
	cfg.Auth = []ssh.AuthMethod{ssh.Password("wrong")}
	if c, err := ssh.Dial("tcp", f.addr, cfg); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
	cfg.Auth = []ssh.AuthMethod{ssh.Password("s3cret")}
	c, err := ssh.Dial("tcp", f.addr, cfg)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Close()
}

func ptySession(t *testing.T, c *ssh.Client, modes ssh.TerminalModes) (*ssh.Session, io.WriteCloser, io.Reader) {
	t.Helper()
	s := openSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, modes); err != nil {
		t.Fatalf("pty-req: %v", err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return s, in, out
}

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(r, buf)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read %d bytes: %v (got %q)", n, err, buf)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out reading %d bytes (got %q)", n, buf)
	}
	return string(buf)
}

// ptyCat starts cat on a pty with the given modes on a new server.
func ptyCat(t *testing.T, modes ssh.TerminalModes) (*ssh.Session, io.WriteCloser, io.Reader) {
	t.Helper()
	s, in, out := ptySession(t, newFixture(t, nil).dial(t), modes)
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	return s, in, out
}

// wantExitSignal waits for s and fails unless it ended by signal sig.
func wantExitSignal(t *testing.T, s *ssh.Session, sig, after string) {
	t.Helper()
	err := s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != sig {
		t.Fatalf("after %s: got %v, want exit-signal %s", after, err, sig)
	}
}

func TestPTYCookedCatEchoesTwice(t *testing.T) {
	s, in, out := ptyCat(t, nil)
	io.WriteString(in, "abc\n")
	// tty echo (with ONLCR) then cat's copy.
	if got, want := readN(t, out, 10), "abc\r\nabc\r\n"; got != want {
		t.Fatalf("cooked cat: got %q, want %q", got, want)
	}
	// Erase and ^D: "xy<DEL>\n" delivers "x\n"; ^D on an empty line ends cat.
	io.WriteString(in, "xy\x7f\n\x04")
	if got, want := readN(t, out, 10), "xy\b \b\r\nx\r\n"; got != want {
		t.Fatalf("cooked erase: got %q, want %q", got, want)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("cat after ^D: %v, want exit 0", err)
	}
}

func TestPTYRawCatEchoesOnce(t *testing.T) {
	s, in, out := ptyCat(t, ssh.TerminalModes{ssh.ECHO: 0, ssh.ICANON: 0, ssh.ISIG: 0, ssh.ICRNL: 0, ssh.OPOST: 0, ssh.IEXTEN: 0})
	io.WriteString(in, "a\r\nb\x03")
	if got, want := readN(t, out, 5), "a\r\nb\x03"; got != want {
		t.Fatalf("raw cat: got %q, want %q", got, want)
	}
	// EOF is not passed through a pty; a signal ends the command.
	in.Close()
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wantExitSignal(t, s, "TERM", "SIGTERM")
}

func TestPTYInterrupt(t *testing.T) {
	s, in, out := ptyCat(t, nil)
	io.WriteString(in, "\x03")
	if got := readN(t, out, 2); got != "^C" {
		t.Fatalf("echo of ^C: got %q", got)
	}
	wantExitSignal(t, s, "INT", "^C")
}

func TestWindowChange(t *testing.T) {
	s := openSession(t, newFixture(t, nil).dial(t))
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("stty size")
	if err != nil || string(out) != "50 132\r\n" {
		t.Fatalf("stty size: %q, %v; want \"50 132\\r\\n\"", out, err)
	}
}

func TestSessionLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSessionsPerConn = 2 })
	c := f.dial(t)
	for i := 0; i < 2; i++ {
		if _, err := c.NewSession(); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	var oce *ssh.OpenChannelError
	if _, err := c.NewSession(); !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage {
		t.Fatalf("third session: got %v, want resource shortage", err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	f := newFixture(t, nil)
	s := openSession(t, f.dial(t))
	if err := s.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	f.cancel()
	select {
	case err := <-f.served:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
		f.served <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- s.Wait() }()
	select {
	case err := <-waitErr:
		if err == nil {
			t.Error("session ended cleanly, want connection-lost error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session still running after server cancel")
	}
}
