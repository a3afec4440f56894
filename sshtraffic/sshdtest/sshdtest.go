// Package sshdtest starts Debian's OpenSSH server (/usr/sbin/sshd) on
// 127.0.0.1 with a generated configuration, host key and authorized key, for
// interop tests of the SSH client against a real sshd. scripts/sshd-install.sh
// installs it.
//
// Start is the testing helper: it skips the test when sshd is missing, unless
// the environment variable CI is "true", in which case a missing sshd fails
// the test. Launch is the same without the testing package.
package sshdtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Binary is the sshd that Launch runs. sshd must be started by absolute path.
const Binary = "/usr/sbin/sshd"

// ErrNoSSHD is returned by Launch when Binary does not exist.
var ErrNoSSHD = errors.New("sshdtest: " + Binary + " not found (install it with scripts/sshd-install.sh)")

// Server is a running sshd.
type Server struct {
	// Addr is the "127.0.0.1:port" sshd listens on.
	Addr string
	// User is the login name (the current user).
	User string
	// Signer and PrivateKeyPEM are the authorized client key.
	Signer        ssh.Signer
	PrivateKeyPEM []byte
	// HostKey is sshd's host key.
	HostKey ssh.PublicKey
	// KnownHostsFile holds one entry: HostKey for Addr.
	KnownHostsFile string
	// PID is sshd's process id.
	PID int

	cmd      *exec.Cmd
	waitErr  error
	exited   chan struct{}
	stopOnce sync.Once
	log      *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	if b.tee != nil {
		b.tee.Write(p)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Log returns what sshd has written to stderr so far (capped at 1 MiB).
func (s *Server) Log() string { return s.log.String() }

// Start launches sshd for t and stops it in t.Cleanup. When sshd is not
// installed it skips t, or fails t if the environment variable CI is "true".
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true requires it", ErrNoSSHD)
		}
		t.Skipf("%v", ErrNoSSHD)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Launch(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop sshd: %v", err)
		}
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	return s
}

// Launch writes keys and an sshd_config into dir (which must exist and be
// private to the caller) and starts sshd in the foreground on a free
// 127.0.0.1 port, waiting until it accepts connections. logw, if not nil,
// receives sshd's log as well. Call Stop to end it.
func Launch(ctx context.Context, dir string, logw io.Writer) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, ErrNoSSHD
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("sshdtest: current user: %w", err)
	}
	if os.Geteuid() == 0 {
		// sshd started as root refuses to run without its privilege
		// separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("sshdtest: create /run/sshd: %w", err)
		}
	}

	hostPub, hostPEM, err := newKeyPEM()
	if err != nil {
		return nil, err
	}
	userPub, userPEM, err := newKeyPEM()
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(userPEM)
	if err != nil {
		return nil, fmt.Errorf("sshdtest: parse client key: %w", err)
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	authPath := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(hostKeyPath, hostPEM, 0o600); err != nil {
		return nil, fmt.Errorf("sshdtest: write host key: %w", err)
	}
	if err := os.WriteFile(authPath, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, fmt.Errorf("sshdtest: write authorized_keys: %w", err)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launchOnce(ctx, dir, port, u.Username, hostKeyPath, authPath, logw)
		if err == nil {
			s.User = u.Username
			s.Signer = signer
			s.PrivateKeyPEM = userPEM
			s.HostKey = hostPub
			s.KnownHostsFile = filepath.Join(dir, "known_hosts")
			line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, hostPub) + "\n"
			if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
				s.Stop()
				return nil, fmt.Errorf("sshdtest: write known_hosts: %w", err)
			}
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func launchOnce(ctx context.Context, dir string, port int, userName, hostKeyPath, authPath string, logw io.Writer) (*Server, error) {
	cfgPath := filepath.Join(dir, "sshd_config")
	cfg := strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKeyPath,
		"AuthorizedKeysFile " + authPath,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AllowUsers " + userName,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"X11Forwarding no",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"PermitUserEnvironment no",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("sshdtest: write sshd_config: %w", err)
	}
	log := &syncBuffer{tee: logw}
	cmd := exec.Command(Binary, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sshdtest: start %s: %w", Binary, err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	// Wait for the listener; sshd writes "Server listening on" once bound.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("sshdtest: sshd exited early (%v): %s", s.waitErr, strings.TrimSpace(log.String()))
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("sshdtest: waiting for sshd on %s: %w; log: %s", s.Addr, ctx.Err(), strings.TrimSpace(log.String()))
		case <-tick.C:
		}
		if strings.Contains(log.String(), "Server listening on") {
			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err == nil {
				c.Close()
				return s, nil
			}
		}
	}
}

// Stop terminates the sshd this Server started (by its PID only) and waits
// for it. Sessions that sshd forked end when their connections close.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = fmt.Errorf("sshdtest: sshd pid %d ignored SIGTERM; killed", s.PID)
		}
	})
	return err
}

func newKeyPEM() (ssh.PublicKey, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("sshdtest: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, fmt.Errorf("sshdtest: marshal key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("sshdtest: public key: %w", err)
	}
	return sshPub, pem.EncodeToMemory(block), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("sshdtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
