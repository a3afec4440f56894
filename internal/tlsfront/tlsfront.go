// Package tlsfront terminates TLS on a loopback listener and splices each
// connection's bytes to a server behind it, so HTTP upgrades (websockets,
// DERP) pass unchanged. [Start] fronts a plain-HTTP server the way a load
// balancer fronts a production coderd (tests and benchmarks reach an
// http:// peer through an https:// URL); [StartWith] lets the caller
// connect each client to its upstream itself.
package tlsfront

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// NewCert returns a self-signed certificate and its key, PEM-encoded, for
// the given IP addresses and DNS names, valid for a day. Put the
// certificate in SSL_CERT_FILE for clients to trust it.
func NewCert(hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsfront: generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "cdeload tlsfront"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsfront: create certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsfront: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// Upstream connects a client of the front to the server behind it. br
// holds the client's decrypted bytes, none consumed yet: what Upstream
// reads from br it must forward itself, the rest is copied as is. client
// is the TLS connection, for an error answer. ctx bounds the set-up.
type Upstream func(ctx context.Context, client net.Conn, br *bufio.Reader) (net.Conn, error)

// Front is a running TLS front.
type Front struct {
	ln       net.Listener
	tlsCfg   *tls.Config
	upstream Upstream

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	lines  []string
	closed bool
	wg     sync.WaitGroup
}

// Start listens on addr (a loopback host:port; port 0 picks one) and
// forwards every connection to target (host:port) over TCP after the TLS
// handshake with cert, noting each connection's first line.
func Start(addr, target string, cert tls.Certificate) (*Front, error) {
	f, err := listen(addr, cert)
	if err != nil {
		return nil, err
	}
	f.upstream = f.plainTCP(target)
	f.wg.Go(f.serve)
	return f, nil
}

// StartWith listens on addr (a loopback host:port; port 0 picks one) and,
// after the TLS handshake with cert, connects each client with up.
func StartWith(addr string, cert tls.Certificate, up Upstream) (*Front, error) {
	f, err := listen(addr, cert)
	if err != nil {
		return nil, err
	}
	f.upstream = up
	f.wg.Go(f.serve)
	return f, nil
}

func listen(addr string, cert tls.Certificate) (*Front, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tlsfront: listen address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("tlsfront: listen address %q: want a loopback IP address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tlsfront: %w", err)
	}
	return &Front{
		ln:     ln,
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		conns:  map[net.Conn]struct{}{},
	}, nil
}

// plainTCP is Start's Upstream: it notes the client's first line and sends
// it on to target over TCP.
func (f *Front) plainTCP(target string) Upstream {
	return func(ctx context.Context, _ net.Conn, br *bufio.Reader) (net.Conn, error) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.lines = append(f.lines, strings.TrimRight(string(line), "\r\n"))
		f.mu.Unlock()
		var d net.Dialer
		up, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, err
		}
		if _, err := up.Write(line); err != nil {
			up.Close()
			return nil, err
		}
		return up, nil
	}
}

// URL is the front's https:// base URL.
func (f *Front) URL() string { return "https://" + f.ln.Addr().String() }

// Port is the front's TCP port.
func (f *Front) Port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// RequestLines returns the first line of every connection so far (e.g.
// "GET /derp HTTP/1.1"), in arrival order.
func (f *Front) RequestLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// Close stops listening, ends every connection and waits for them.
func (f *Front) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	return err
}

func (f *Front) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Go(func() {
			defer f.untrack(c)
			f.handle(c)
		})
	}
}

func (f *Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

// handle terminates TLS on raw, connects the client upstream and splices
// the two until either side ends.
func (f *Front) handle(raw net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	raw.SetDeadline(time.Now().Add(15 * time.Second))
	tc := tls.Server(raw, f.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	br := bufio.NewReaderSize(tc, 4096)
	up, err := f.upstream(ctx, tc, br)
	if err != nil {
		return
	}
	raw.SetDeadline(time.Time{})
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br) // client -> upstream (buffered bytes first)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(tc, up) // upstream -> client
	tc.Close()
	up.Close()
	<-done
}
