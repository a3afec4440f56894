// Package sshserver is a small in-process SSH server for the cdeload lab and
// tests. It runs a fixed set of built-in commands without any shell or
// subprocess (cat, echo, true, false, exit N, sleep N, env, printenv, sh -c),
// supports pty-req with a tty-like line discipline, env, window-change and
// signal requests, and reports exit-status or exit-signal when a command ends.
//
// # Commands
//
// An exec request's command line is split like a POSIX shell would for simple
// words (single and double quotes, backslash escapes); pipes, redirections and
// variables are not supported. "sh -c STRING" and "bash -c STRING" run STRING
// as one such simple command. An unknown command writes
// "NAME: command not found" to stderr and exits 127. A shell request (no
// command) runs cat.
//
// # PTY
//
// After a pty-req the session behaves like a Linux pseudo-terminal whose
// settings come from the request's terminal modes, starting from Linux's
// defaults (ECHO, ICANON, ISIG, ICRNL, OPOST and ONLCR on). In that cooked
// default, input is echoed by the tty and delivered to the command a line at
// a time (lines are capped at 4095 bytes, the rest is dropped as Linux does),
// output "\n" becomes "\r\n", and ^C/^\ end the command with exit-signal INT
// or QUIT. So "cat" under a cooked PTY returns every line twice: once from
// the tty's echo and once from cat. Clients that want each byte back exactly
// once request raw mode (ECHO, ICANON, ISIG, IEXTEN, ICRNL, IXON and OPOST
// off). As with OpenSSH's sshd, the client's EOF is not passed to a command
// running on a PTY: end such a command with ^D (cooked mode), a signal, or by
// closing the channel.
package sshserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for the resource bounds in Config.
const (
	DefaultMaxConnections     = 1024
	DefaultMaxSessionsPerConn = 10
	DefaultHandshakeTimeout   = 30 * time.Second
)

// ErrServerClosed is returned by Serve after Close was called.
var ErrServerClosed = errors.New("sshserver: server closed")

// Config configures a Server. HostKey is required, and at least one client
// authentication method (AuthorizedKeys, Password or NoClientAuth) must be set.
type Config struct {
	// HostKey is the server's host key.
	HostKey ssh.Signer
	// AuthorizedKeys are the public keys accepted for any user name.
	AuthorizedKeys []ssh.PublicKey
	// Password, when not empty, is accepted for any user name.
	Password string
	// NoClientAuth accepts every client without authentication, like a
	// Coder agent does on its tailnet SSH port.
	NoClientAuth bool
	// Logf receives diagnostic messages; nil discards them.
	Logf func(format string, args ...any)

	// MaxConnections bounds concurrent connections per Server; extra
	// connections are closed right after accept. 0 means DefaultMaxConnections.
	MaxConnections int
	// MaxSessionsPerConn bounds concurrent session channels per connection;
	// extra channel requests are rejected. 0 means DefaultMaxSessionsPerConn.
	MaxSessionsPerConn int
	// HandshakeTimeout bounds the SSH handshake including authentication.
	// 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// CatBytesPerSecond, when positive, throttles the built-in cat to that
	// many bytes per second, to simulate a slow far end.
	CatBytesPerSecond int
}

// Server is an SSH server running built-in commands. It is safe for
// concurrent use.
type Server struct {
	cfg    Config
	sshCfg *ssh.ServerConfig

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	done      chan struct{}
	wg        sync.WaitGroup
}

// GenerateHostKey returns a fresh ed25519 host key.
func GenerateHostKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 host key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	return s, nil
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("sshserver: config HostKey is required")
	}
	if len(cfg.AuthorizedKeys) == 0 && cfg.Password == "" && !cfg.NoClientAuth {
		return nil, errors.New("sshserver: no client authentication configured: set AuthorizedKeys, Password or NoClientAuth")
	}
	if cfg.MaxConnections < 0 || cfg.MaxSessionsPerConn < 0 || cfg.HandshakeTimeout < 0 || cfg.CatBytesPerSecond < 0 {
		return nil, errors.New("sshserver: config limits must not be negative")
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxSessionsPerConn == 0 {
		cfg.MaxSessionsPerConn = DefaultMaxSessionsPerConn
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	sc := &ssh.ServerConfig{
		NoClientAuth: cfg.NoClientAuth,
		MaxAuthTries: 6,
	}
	if len(cfg.AuthorizedKeys) > 0 {
		authorized := make([][]byte, len(cfg.AuthorizedKeys))
		for i, k := range cfg.AuthorizedKeys {
			if k == nil {
				return nil, fmt.Errorf("sshserver: config AuthorizedKeys[%d] is nil", i)
			}
			authorized[i] = k.Marshal()
		}
		sc.PublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			m := key.Marshal()
			for _, a := range authorized {
				if subtle.ConstantTimeCompare(a, m) == 1 {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("public key not authorized")
		}
	}
	if cfg.Password != "" {
		want := []byte(cfg.Password)
		sc.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if subtle.ConstantTimeCompare(want, pw) == 1 {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	sc.AddHostKey(cfg.HostKey)
	return &Server{
		cfg:       cfg,
		sshCfg:    sc,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
	}, nil
}

// Serve accepts connections on l and serves each in its own goroutine until
// ctx is cancelled (it returns ctx.Err()), Close is called (ErrServerClosed)
// or Accept fails permanently. It closes l before returning and waits for
// nothing else: connections end on ctx cancel or Close.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("sshserver: accept on %s: %w", l.Addr(), err)
			}
			// Transient accept failures (e.g. too many open files): back off.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			s.cfg.Logf("sshserver: accept on %s: %v; retrying in %v", l.Addr(), err, backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-s.done:
				return ErrServerClosed
			}
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.ServeConn(ctx, c); err != nil {
				s.cfg.Logf("sshserver: connection from %s: %v", c.RemoteAddr(), err)
			}
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ServeConn runs the SSH protocol on one connection and blocks until the
// connection ends, ctx is cancelled or the server is closed. It always closes
// c. It returns an error when the handshake fails or the connection limit is
// reached; a client disconnect is not an error.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return ErrServerClosed
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		s.mu.Unlock()
		c.Close()
		return fmt.Errorf("sshserver: connection limit %d reached", s.cfg.MaxConnections)
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	if err := c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		return fmt.Errorf("sshserver: set handshake deadline: %w", err)
	}
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.sshCfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sshserver: handshake with %s: %w", c.RemoteAddr(), err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		sconn.Close()
		return fmt.Errorf("sshserver: clear handshake deadline: %w", err)
	}
	s.cfg.Logf("sshserver: %s logged in as %q", c.RemoteAddr(), sconn.User())
	go ssh.DiscardRequests(reqs)

	sessions := make(chan struct{}, s.cfg.MaxSessionsPerConn)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		select {
		case sessions <- struct{}{}:
		default:
			nc.Reject(ssh.ResourceShortage, fmt.Sprintf("too many sessions (limit %d)", s.cfg.MaxSessionsPerConn))
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			<-sessions
			s.cfg.Logf("sshserver: accept session channel: %v", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sessions }()
			sess := newSession(ctx, s, ch)
			sess.serve(chReqs)
		}()
	}
	// chans is closed: the connection is gone. Sessions see their channels
	// closed and end; wait so no goroutine outlives ServeConn.
	cancel()
	wg.Wait()
	return nil
}

// Close stops all listeners and connections and waits for the connection
// goroutines started by Serve. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
