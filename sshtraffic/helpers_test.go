package sshtraffic

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/sshserver"
	"golang.org/x/crypto/ssh"
)

// labServer is a lab sshserver on a 127.0.0.1 listener.
type labServer struct {
	srv     *sshserver.Server
	addr    string
	hostKey ssh.Signer
	userKey ssh.Signer
	userPEM []byte
}

func newKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startLab(t testing.TB, mod func(*sshserver.Config)) *labServer {
	t.Helper()
	hostKey, err := sshserver.GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	userKey, userPEM := newKey(t)
	cfg := sshserver.Config{HostKey: hostKey, AuthorizedKeys: []ssh.PublicKey{userKey.PublicKey()}}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := sshserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		wg.Wait()
	})
	return &labServer{srv: srv, addr: l.Addr().String(), hostKey: hostKey, userKey: userKey, userPEM: userPEM}
}

func (s *labServer) config() ClientConfig {
	return ClientConfig{User: "coder", PrivateKeyPEM: s.userPEM, KnownHostKey: s.hostKey.PublicKey(), Timeout: 10 * time.Second}
}

func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connect(t testing.TB, addr string, cfg ClientConfig) *Client {
	t.Helper()
	c, err := Connect(context.Background(), dialTCP(t, addr), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder is an Observer that keeps totals.
type recorder struct {
	mu       sync.Mutex
	rtts     []uint64
	sent     int64
	received int64
	missed   int64
	errs     []error
}

func (r *recorder) OnRTT(_ time.Duration, seq uint64) {
	r.mu.Lock()
	r.rtts = append(r.rtts, seq)
	r.mu.Unlock()
}

func (r *recorder) OnBytes(sent, received int) {
	r.mu.Lock()
	r.sent += int64(sent)
	r.received += int64(received)
	r.mu.Unlock()
}

func (r *recorder) OnTickMissed(n int) {
	r.mu.Lock()
	r.missed += int64(n)
	r.mu.Unlock()
}

func (r *recorder) OnError(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}
