package sshtraffic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Defaults for ClientConfig.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultMaxOutputBytes = 1 << 20
)

// ClientConfig configures Connect.
type ClientConfig struct {
	// User is the remote user name (required).
	User string
	// PrivateKeyPEM is an unencrypted private key in PEM or OpenSSH format.
	// At most one of PrivateKeyPEM and Signer may be set.
	PrivateKeyPEM []byte
	// Signer is a ready private key.
	Signer ssh.Signer
	// Password enables password authentication (tried after the key).
	Password string
	// NoClientAuth connects without any authentication method, for servers
	// that accept every client: a Coder agent's SSH server on its tailnet,
	// where the tailnet itself is the authentication. It excludes the
	// other authentication fields.
	NoClientAuth bool

	// Exactly one host key policy must be set.

	// KnownHostKey accepts only this host key.
	KnownHostKey ssh.PublicKey
	// KnownHostsFile is an OpenSSH known_hosts file looked up for HostKeyAlias.
	KnownHostsFile string
	// InsecureIgnoreHostKey accepts any host key (insecureSkipHostKeyCheck in
	// the JavaScript API). For labs and tests only.
	InsecureIgnoreHostKey bool

	// HostKeyAlias is the host (optionally "host:port") that host keys are
	// checked for, as in known_hosts. Empty means conn.RemoteAddr().
	HostKeyAlias string
	// Timeout bounds the handshake plus opening the first session, on top
	// of ctx. 0 means DefaultConnectTimeout.
	Timeout time.Duration
	// MaxOutputBytes caps what Run keeps of stdout and of stderr each; the
	// rest is read and discarded. 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int
}

// ConnectInfo describes a finished Connect.
type ConnectInfo struct {
	// Duration is SSH handshake plus authentication plus the first session
	// opened (the TCP or tailnet dial happened before Connect).
	Duration time.Duration
	// ServerVersion is the server's SSH identification string.
	ServerVersion string
	// HostKey is the key the server presented.
	HostKey ssh.PublicKey
}

// Client is an SSH connection ready to run commands and echo streams. Its
// methods are safe for concurrent use; each call uses its own session.
type Client struct {
	ssh       *ssh.Client
	conn      net.Conn
	info      ConnectInfo
	maxOutput int

	mu    sync.Mutex
	spare *ssh.Session // opened by Connect, used by the first call

	connDone chan struct{}
	connErr  error // set before connDone is closed
	closed   sync.Once

	abandonMu sync.Mutex
	abandoned error // why abandon closed the connection
}

func (cfg *ClientConfig) validate() error {
	if cfg.User == "" {
		return errors.New("ssh client config: user is required")
	}
	if len(cfg.PrivateKeyPEM) > 0 && cfg.Signer != nil {
		return errors.New("ssh client config: set privateKey or signer, not both")
	}
	if cfg.NoClientAuth && (len(cfg.PrivateKeyPEM) > 0 || cfg.Signer != nil || cfg.Password != "") {
		return errors.New("ssh client config: NoClientAuth excludes a private key, signer or password")
	}
	if !cfg.NoClientAuth && len(cfg.PrivateKeyPEM) == 0 && cfg.Signer == nil && cfg.Password == "" {
		return errors.New("ssh client config: no authentication: set a private key or a password")
	}
	policies := 0
	if cfg.KnownHostKey != nil {
		policies++
	}
	if cfg.KnownHostsFile != "" {
		policies++
	}
	if cfg.InsecureIgnoreHostKey {
		policies++
	}
	if policies == 0 {
		return ErrNoHostKeyPolicy
	}
	if policies > 1 {
		return errors.New("ssh client config: set exactly one host key policy (knownHostKey, knownHostsFile or insecureSkipHostKeyCheck)")
	}
	if cfg.Timeout < 0 {
		return fmt.Errorf("ssh client config: timeout %v must not be negative", cfg.Timeout)
	}
	if cfg.MaxOutputBytes < 0 {
		return fmt.Errorf("ssh client config: maxOutputBytes %d must not be negative", cfg.MaxOutputBytes)
	}
	return nil
}

// hostKeyCheck builds the host key callback and the host key algorithms to
// offer (restricted to the known key types, so a server holding several
// keys presents the one the policy knows). rejected receives the typed
// error when the callback refuses a key.
func hostKeyCheck(cfg *ClientConfig, rejected *error) (ssh.HostKeyCallback, []string, error) {
	switch {
	case cfg.InsecureIgnoreHostKey:
		return ssh.InsecureIgnoreHostKey(), nil, nil
	case cfg.KnownHostKey != nil:
		want := cfg.KnownHostKey
		wantBytes := want.Marshal()
		cb := func(host string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), wantBytes) {
				return nil
			}
			err := &HostKeyError{Host: host, Got: key, Want: []ssh.PublicKey{want}}
			*rejected = err
			return err
		}
		return cb, algorithmsFor([]ssh.PublicKey{want}), nil
	default:
		kh, err := knownhosts.New(cfg.KnownHostsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read known_hosts file %s: %w", cfg.KnownHostsFile, err)
		}
		cb := func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := kh(host, remote, key)
			if err == nil {
				return nil
			}
			var ke *knownhosts.KeyError
			var re *knownhosts.RevokedError
			var typed error
			switch {
			case errors.As(err, &ke):
				want := make([]ssh.PublicKey, len(ke.Want))
				for i, k := range ke.Want {
					want[i] = k.Key
				}
				typed = &HostKeyError{Host: host, Got: key, Want: want}
			case errors.As(err, &re):
				typed = &HostKeyError{Host: host, Got: key, Revoked: true}
			default:
				typed = fmt.Errorf("check host key for %s: %w", host, err)
			}
			*rejected = typed
			return typed
		}
		return cb, nil, nil
	}
}

// knownAlgorithms asks a known_hosts callback which keys it holds for host,
// by checking a throwaway key against it.
func knownAlgorithms(cb ssh.HostKeyCallback, host string, remote net.Addr) []string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(host, remote, probe); errors.As(err, &ke) && len(ke.Want) > 0 {
		keys := make([]ssh.PublicKey, len(ke.Want))
		for i, k := range ke.Want {
			keys[i] = k.Key
		}
		return algorithmsFor(keys)
	}
	return nil
}

// algorithmsFor lists the host key signature algorithms usable with keys.
func algorithmsFor(keys []ssh.PublicKey) []string {
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range keys {
		if k.Type() == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(k.Type())
	}
	return algos
}

// Connect runs the SSH handshake over conn, authenticates and opens a first
// session. Connect owns conn: it is closed on error and by Client.Close.
//
// Errors: ErrNoHostKeyPolicy or another config error; *HostKeyError when
// the host key is rejected; ErrAuthFailed (wrapped) when authentication
// fails; ctx's error when ctx ends first; otherwise a wrapped transport or
// timeout error.
func Connect(ctx context.Context, conn net.Conn, cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		conn.Close()
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultConnectTimeout
	}
	if cfg.MaxOutputBytes == 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	host := cfg.HostKeyAlias
	if host == "" {
		host = conn.RemoteAddr().String()
	}

	var auth []ssh.AuthMethod
	signer := cfg.Signer
	if len(cfg.PrivateKeyPEM) > 0 {
		s, err := ssh.ParsePrivateKey(cfg.PrivateKeyPEM)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("ssh client config: parse private key: %w", err)
		}
		signer = s
	}
	if signer != nil {
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		pw := cfg.Password
		auth = append(auth, ssh.Password(pw),
			// Servers configured for PAM offer keyboard-interactive only.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}

	var rejected error
	hostCB, algos, err := hostKeyCheck(&cfg, &rejected)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh connect to %s: %w", host, err)
	}
	if cfg.KnownHostsFile != "" {
		algos = knownAlgorithms(hostCB, normalizeHost(host), conn.RemoteAddr())
		rejected = nil
	}
	var hostKey ssh.PublicKey
	sshCfg := &ssh.ClientConfig{
		User: cfg.User,
		Auth: auth,
		HostKeyCallback: func(h string, remote net.Addr, key ssh.PublicKey) error {
			hostKey = key
			return hostCB(h, remote, key)
		},
		HostKeyAlgorithms: algos,
	}

	start := time.Now()
	if err := conn.SetDeadline(start.Add(cfg.Timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh connect to %s: set deadline: %w", host, err)
	}
	// ctx ending mid-handshake closes the conn so every blocked read or
	// write returns at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(stage string, err error) (*Client, error) {
		stop()
		conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("ssh connect to %s: %s: %w", host, stage, ctxErr)
		}
		if rejected != nil {
			return nil, fmt.Errorf("ssh connect to %s: %w", host, rejected)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("ssh connect to %s: %s timed out after %v: %w", host, stage, cfg.Timeout, err)
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("ssh connect to %s as %q: %w: %w", host, cfg.User, ErrAuthFailed, err)
		}
		return nil, fmt.Errorf("ssh connect to %s: %s: %w", host, stage, err)
	}

	sconn, chans, reqs, err := ssh.NewClientConn(conn, normalizeHost(host), sshCfg)
	if err != nil {
		return fail("handshake", err)
	}
	sc := ssh.NewClient(sconn, chans, reqs)
	sess, err := sc.NewSession()
	if err != nil {
		sc.Close()
		return fail("open session", err)
	}
	if !stop() {
		sess.Close()
		sc.Close()
		return nil, fmt.Errorf("ssh connect to %s: %w", host, ctx.Err())
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		sess.Close()
		sc.Close()
		return nil, fmt.Errorf("ssh connect to %s: clear deadline: %w", host, err)
	}
	c := &Client{
		ssh:  sc,
		conn: conn,
		info: ConnectInfo{
			Duration:      time.Since(start),
			ServerVersion: string(sconn.ServerVersion()),
			HostKey:       hostKey,
		},
		maxOutput: cfg.MaxOutputBytes,
		spare:     sess,
		connDone:  make(chan struct{}),
	}
	go func() {
		err := sc.Wait()
		c.connErr = err
		close(c.connDone)
	}()
	return c, nil
}

// normalizeHost makes "host" usable as the address for known_hosts lookups,
// which expect "host:port".
func normalizeHost(h string) string {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	return net.JoinHostPort(h, "22")
}

func isAuthError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") || strings.Contains(s, "Too many authentication failures")
}

// Info returns what Connect measured.
func (c *Client) Info() ConnectInfo { return c.info }

// SSH returns the underlying x/crypto/ssh client, for requests this package
// does not wrap.
func (c *Client) SSH() *ssh.Client { return c.ssh }

// Close closes the SSH connection and the underlying net.Conn. It is safe
// to call more than once.
func (c *Client) Close() error {
	var err error
	c.closed.Do(func() {
		c.mu.Lock()
		if c.spare != nil {
			c.spare.Close()
			c.spare = nil
		}
		c.mu.Unlock()
		err = c.ssh.Close()
		c.conn.Close()
		<-c.connDone
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// answers reports whether the server answers a keepalive request within d
// (a refusal is an answer).
func (c *Client) answers(d time.Duration) bool {
	res := make(chan error, 1)
	go func() {
		_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
		res <- err // ends at the latest when the connection closes
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-res:
		return err == nil
	case <-t.C:
		return false
	}
}

// abandon closes the underlying connection of a server that stopped
// answering, which ends every call blocked on it; why explains the loss in
// later errors.
func (c *Client) abandon(why error) {
	c.abandonMu.Lock()
	if c.abandoned == nil {
		c.abandoned = why
	}
	c.abandonMu.Unlock()
	c.conn.Close()
}

// connLost returns a non-nil error if the SSH connection has ended.
func (c *Client) connLost() error {
	c.abandonMu.Lock()
	abandoned := c.abandoned
	c.abandonMu.Unlock()
	if abandoned != nil {
		return fmt.Errorf("ssh connection lost: %w", abandoned)
	}
	select {
	case <-c.connDone:
		if c.connErr != nil {
			return fmt.Errorf("ssh connection lost: %w", c.connErr)
		}
		return errors.New("ssh connection closed")
	default:
		return nil
	}
}

// newSession returns the session Connect opened, or opens a new one; ctx
// bounds the wait for the server's answer.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	c.mu.Lock()
	s := c.spare
	c.spare = nil
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.ssh.NewSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			if lost := c.connLost(); lost != nil {
				return nil, fmt.Errorf("open session: %w", lost)
			}
			return nil, fmt.Errorf("open session: %w", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, fmt.Errorf("open session: %w", ctx.Err())
	}
}
