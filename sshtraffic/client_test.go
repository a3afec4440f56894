package sshtraffic

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/sshserver"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestConnectKeyAuth(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	info := c.Info()
	if info.Duration <= 0 {
		t.Errorf("ConnectInfo.Duration = %v, want > 0", info.Duration)
	}
	if !strings.HasPrefix(info.ServerVersion, "SSH-2.0-") {
		t.Errorf("ServerVersion = %q, want SSH-2.0-*", info.ServerVersion)
	}
	if got, want := ssh.FingerprintSHA256(info.HostKey), ssh.FingerprintSHA256(s.hostKey.PublicKey()); got != want {
		t.Errorf("HostKey = %s, want %s", got, want)
	}
	// The Signer field works as well as PEM.
	cfg := s.config()
	cfg.PrivateKeyPEM, cfg.Signer = nil, s.userKey
	connect(t, s.addr, cfg)
}

func TestConnectPasswordAuth(t *testing.T) {
	s := startLab(t, func(c *sshserver.Config) { c.AuthorizedKeys, c.Password = nil, "hunter2" })
	cfg := ClientConfig{User: "u", Password: "hunter2", InsecureIgnoreHostKey: true}
	c := connect(t, s.addr, cfg)
	if r, err := c.Run(context.Background(), "echo ok"); err != nil || string(r.Stdout) != "ok\n" {
		t.Fatalf("Run over password login: %+v, %v", r, err)
	}

	cfg.Password = "wrong"
	_, err := Connect(context.Background(), dialTCP(t, s.addr), cfg)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password: got %v, want ErrAuthFailed", err)
	}
}

func TestConnectWrongKeyIsAuthError(t *testing.T) {
	s := startLab(t, nil)
	_, otherPEM := newKey(t)
	cfg := s.config()
	cfg.PrivateKeyPEM = otherPEM
	_, err := Connect(context.Background(), dialTCP(t, s.addr), cfg)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("unauthorized key: got %v, want ErrAuthFailed", err)
	}
}

func TestConnectHostKeyMismatch(t *testing.T) {
	s := startLab(t, nil)
	other, _ := newKey(t)
	cfg := s.config()
	cfg.KnownHostKey = other.PublicKey()
	_, err := Connect(context.Background(), dialTCP(t, s.addr), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("wrong known host key: got %v, want *HostKeyError", err)
	}
	if ssh.FingerprintSHA256(hke.Got) != ssh.FingerprintSHA256(s.hostKey.PublicKey()) || len(hke.Want) != 1 {
		t.Errorf("HostKeyError = %+v, want Got = server key and one wanted key", hke)
	}
	if !strings.Contains(err.Error(), "host key mismatch") {
		t.Errorf("error %q does not say host key mismatch", err)
	}
}

func TestConnectKnownHostsFile(t *testing.T) {
	s := startLab(t, nil)
	dir := t.TempDir()
	good := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, s.hostKey.PublicKey())
	// A second, unrelated entry first: lookups must pick the right host.
	other, _ := newKey(t)
	content := knownhosts.Line([]string{"[127.0.0.1]:1"}, other.PublicKey()) + "\n" + line + "\n"
	if err := os.WriteFile(good, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.config()
	cfg.KnownHostKey, cfg.KnownHostsFile = nil, good
	connect(t, s.addr, cfg)

	// Same host, wrong key → mismatch.
	bad := filepath.Join(dir, "known_hosts_bad")
	if err := os.WriteFile(bad, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, other.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.KnownHostsFile = bad
	_, err := Connect(context.Background(), dialTCP(t, s.addr), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || len(hke.Want) != 1 {
		t.Fatalf("known_hosts with wrong key: got %v, want *HostKeyError with one wanted key", err)
	}

	// Host absent → unknown host.
	cfg.KnownHostsFile = filepath.Join(dir, "known_hosts_other")
	os.WriteFile(cfg.KnownHostsFile, []byte(knownhosts.Line([]string{"[127.0.0.1]:1"}, other.PublicKey())+"\n"), 0o600)
	_, err = Connect(context.Background(), dialTCP(t, s.addr), cfg)
	if !errors.As(err, &hke) || len(hke.Want) != 0 || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("known_hosts without the host: got %v, want unknown-host *HostKeyError", err)
	}

	// HostKeyAlias: the entry is looked up under the alias, not the address.
	aliased := filepath.Join(dir, "known_hosts_alias")
	os.WriteFile(aliased, []byte(knownhosts.Line([]string{"workspace-1"}, s.hostKey.PublicKey())+"\n"), 0o600)
	cfg.KnownHostsFile, cfg.HostKeyAlias = aliased, "workspace-1"
	connect(t, s.addr, cfg)

	cfg.KnownHostsFile = filepath.Join(dir, "missing")
	if _, err := Connect(context.Background(), dialTCP(t, s.addr), cfg); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("missing known_hosts file: got %v", err)
	}
}

func TestConnectConfigErrors(t *testing.T) {
	s := startLab(t, nil)
	base := s.config()
	tests := []struct {
		name string
		mod  func(*ClientConfig)
		want string
	}{
		{"no policy", func(c *ClientConfig) { c.KnownHostKey = nil }, "no host key policy: set knownHostKey, knownHostsFile or insecureSkipHostKeyCheck"},
		{"two policies", func(c *ClientConfig) { c.InsecureIgnoreHostKey = true }, "exactly one host key policy"},
		{"no user", func(c *ClientConfig) { c.User = "" }, "user is required"},
		{"no auth", func(c *ClientConfig) { c.PrivateKeyPEM = nil }, "no authentication"},
		{"bad key", func(c *ClientConfig) { c.PrivateKeyPEM = []byte("not a key") }, "parse private key"},
		{"no auth with a key", func(c *ClientConfig) { c.NoClientAuth = true }, "NoClientAuth excludes"},
	}
	for _, tt := range tests {
		cfg := base
		tt.mod(&cfg)
		conn := dialTCP(t, s.addr)
		_, err := Connect(context.Background(), conn, cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", tt.name, err, tt.want)
		}
		if tt.name == "no policy" && !errors.Is(err, ErrNoHostKeyPolicy) {
			t.Errorf("no policy: %v is not ErrNoHostKeyPolicy", err)
		}
		// Connect owns conn: it must be closed on error.
		if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: conn still open after failed Connect (write: %v)", tt.name, err)
		}
	}
}

// silentListener accepts TCP connections and never speaks.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

func TestConnectCancelMidHandshake(t *testing.T) {
	addr := silentListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Connect(ctx, dialTCP(t, addr), ClientConfig{User: "u", Password: "p", InsecureIgnoreHostKey: true})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the handshake start and block
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Connect did not return after ctx cancel")
	}
}

func TestConnectTimeout(t *testing.T) {
	addr := silentListener(t)
	_, err := Connect(context.Background(), dialTCP(t, addr), ClientConfig{User: "u", Password: "p", InsecureIgnoreHostKey: true, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v, want handshake timeout", err)
	}
}

func TestRun(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	ctx := context.Background()
	tests := []struct {
		cmd            string
		stdout, stderr string
		code           int
	}{
		{cmd: "echo hi", stdout: "hi\n"},
		{cmd: "exit 3", code: 3},
		{cmd: "sh -c 'exit 7'", code: 7},
		{cmd: "false", code: 1},
		{cmd: "nope", stderr: "nope: command not found\n", code: 127},
		{cmd: "cat", stdout: ""}, // empty stdin: cat exits at once
	}
	for _, tt := range tests {
		r, err := c.Run(ctx, tt.cmd)
		if err != nil {
			t.Errorf("Run(%q): %v", tt.cmd, err)
			continue
		}
		if string(r.Stdout) != tt.stdout || string(r.Stderr) != tt.stderr || r.ExitCode != tt.code || r.Truncated {
			t.Errorf("Run(%q) = stdout %q stderr %q code %d truncated %v; want %q %q %d false",
				tt.cmd, r.Stdout, r.Stderr, r.ExitCode, r.Truncated, tt.stdout, tt.stderr, tt.code)
		}
		var ee *ExitError
		if gotErr := r.Err(); (tt.code != 0) != errors.As(gotErr, &ee) || (ee != nil && ee.Code != tt.code) {
			t.Errorf("Run(%q).Err() = %v, want ExitError code %d", tt.cmd, gotErr, tt.code)
		}
	}
}

func TestRunTruncates(t *testing.T) {
	s := startLab(t, nil)
	cfg := s.config()
	cfg.MaxOutputBytes = 4
	c := connect(t, s.addr, cfg)
	r, err := c.Run(context.Background(), "echo 123456789")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "1234" || !r.Truncated || r.ExitCode != 0 {
		t.Fatalf("got stdout %q truncated %v code %d, want \"1234\" true 0", r.Stdout, r.Truncated, r.ExitCode)
	}
}

func TestRunCancel(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run returned %v after ctx ended", d)
	}
	// The client stays usable.
	if r, err := c.Run(context.Background(), "echo again"); err != nil || string(r.Stdout) != "again\n" {
		t.Fatalf("Run after cancel: %+v, %v", r, err)
	}
}

func TestRunConnectionLost(t *testing.T) {
	s := startLab(t, nil)
	c := connect(t, s.addr, s.config())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), "sleep 30")
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	s.srv.Close()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "connection") {
			t.Fatalf("got %v, want connection lost error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run hung after the server went away")
	}
}
