// Package tlsfront puts TLS in front of a plain-HTTP server on loopback, the
// way a load balancer fronts a production coderd: it terminates TLS with a
// self-signed certificate and splices each connection's bytes to the
// target over TCP, so HTTP upgrades (websockets, DERP) pass unchanged.
// Tests and benchmarks use it to reach an http:// peer through an https://
// URL.
package tlsfront

import (
	"bufio"
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

// Front is a running TLS front.
type Front struct {
	ln     net.Listener
	target string
	tlsCfg *tls.Config

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	lines  []string
	closed bool
	wg     sync.WaitGroup
}

// Start listens on addr (a loopback host:port; port 0 picks one) and
// forwards every connection to target (host:port) after the TLS
// handshake with cert.
func Start(addr, target string, cert tls.Certificate) (*Front, error) {
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
	f := &Front{
		ln:     ln,
		target: target,
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		conns:  map[net.Conn]struct{}{},
	}
	f.wg.Go(f.serve)
	return f, nil
}

// URL is the front's https:// base URL.
func (f *Front) URL() string { return "https://" + f.ln.Addr().String() }

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

// handle terminates TLS on raw, notes the request line and splices the
// rest to the target.
func (f *Front) handle(raw net.Conn) {
	raw.SetDeadline(time.Now().Add(15 * time.Second))
	tc := tls.Server(raw, f.tlsCfg)
	br := bufio.NewReaderSize(tc, 4096)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	raw.SetDeadline(time.Time{})
	f.mu.Lock()
	f.lines = append(f.lines, strings.TrimRight(string(line), "\r\n"))
	f.mu.Unlock()
	up, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	if _, err := up.Write(line); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(tc, up)
	tc.Close()
	<-done
}
