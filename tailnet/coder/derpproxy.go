package coder

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// derpProxy is a loopback TLS endpoint that forwards each connection to one
// of coderd's DERP relays.
//
// Upstream tailscale.com's DERP client always speaks TLS to a region node
// (Coder's fork adds plain-HTTP nodes, ForceHTTP, for http:// access URLs),
// so the node gets a DERP map entry pointing at this proxy on 127.0.0.1
// (InsecureForTests: the proxy's certificate is self-signed) and the proxy
// relays the HTTP upgrade, with the relay's own Host, to the real relay
// over http or https, then splices bytes both ways. The relay's /derp and
// /derp/latency-check work unchanged through it.
type derpProxy struct {
	target *url.URL // scheme and host of the relay
	ln     net.Listener
	tlsCfg *tls.Config
	dialer net.Dialer

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startDERPProxy listens on 127.0.0.1 for target (http:// or https://).
func startDERPProxy(target *url.URL, cert tls.Certificate) (*derpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("coder tailnet: listen for the DERP proxy to %s: %w", target.Host, err)
	}
	p := &derpProxy{
		target: target,
		ln:     ln,
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		conns:  map[net.Conn]struct{}{},
	}
	p.wg.Go(p.serve)
	return p, nil
}

// port is the proxy's TCP port on 127.0.0.1.
func (p *derpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *derpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Go(func() {
			defer p.untrack(c)
			p.handle(c)
		})
	}
}

func (p *derpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *derpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *derpProxy) handle(raw net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tc := tls.Server(raw, p.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	raw.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(tc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	raw.SetReadDeadline(time.Time{})
	up, err := p.dialTarget(ctx)
	if err != nil {
		writeStatus(tc, http.StatusBadGateway)
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	req.Host = p.target.Host
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "", ""
	if err := req.Write(up); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br) // client -> relay (buffered bytes first)
		closeWrite(up)
	}()
	io.Copy(tc, up) // relay -> client
	tc.Close()
	up.Close()
	<-done
}

// dialTarget connects to the relay.
func (p *derpProxy) dialTarget(ctx context.Context) (net.Conn, error) {
	host := p.target.Host
	if p.target.Port() == "" {
		if p.target.Scheme == "https" {
			host = net.JoinHostPort(p.target.Hostname(), "443")
		} else {
			host = net.JoinHostPort(p.target.Hostname(), "80")
		}
	}
	c, err := p.dialer.DialContext(ctx, "tcp", host)
	if err != nil || p.target.Scheme != "https" {
		return c, err
	}
	tc := tls.Client(c, &tls.Config{ServerName: p.target.Hostname(), NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func writeStatus(w io.Writer, code int) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, http.StatusText(code))
}

// close stops the proxy and its connections and waits for them.
func (p *derpProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// selfSignedCert makes the proxies' certificate for 127.0.0.1.
func selfSignedCert() (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cdeload coder DERP proxy"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}
