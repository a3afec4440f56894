package coder

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/cdeload/cdeload/internal/tlsfront"
)

// derpProxy is a loopback TLS endpoint that forwards each connection to one
// of coderd's plain-HTTP DERP relays.
//
// Upstream tailscale.com's DERP client always speaks TLS to a region node
// (Coder's fork adds plain-HTTP nodes, ForceHTTP, for http:// access URLs),
// so the node gets a DERP map entry pointing at this proxy on 127.0.0.1
// (InsecureForTests: the proxy's certificate is self-signed) and the proxy
// relays the HTTP upgrade, with the relay's own Host, to the real relay,
// then splices bytes both ways (relays on https:// are dialled directly). The relay's /derp and /derp/latency-check
// work unchanged through it.
type derpProxy struct {
	target *url.URL // scheme and host of the relay
	front  *tlsfront.Front
	dialer net.Dialer
}

// startDERPProxy listens on 127.0.0.1 for target, an http:// relay.
func startDERPProxy(target *url.URL, cert tls.Certificate) (*derpProxy, error) {
	p := &derpProxy{target: target}
	f, err := tlsfront.StartWith("127.0.0.1:0", cert, p.upstream)
	if err != nil {
		return nil, fmt.Errorf("coder tailnet: start the DERP proxy to %s: %w", target.Host, err)
	}
	p.front = f
	return p, nil
}

// port is the proxy's TCP port on 127.0.0.1.
func (p *derpProxy) port() int { return p.front.Port() }

// close stops the proxy and its connections and waits for them.
func (p *derpProxy) close() { p.front.Close() }

// upstream reads the client's HTTP request and sends it to the relay with
// the relay's own Host.
func (p *derpProxy) upstream(ctx context.Context, client net.Conn, br *bufio.Reader) (net.Conn, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	up, err := p.dialTarget(ctx)
	if err != nil {
		writeStatus(client, http.StatusBadGateway)
		return nil, err
	}
	req.Host = p.target.Host
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "", ""
	if err := req.Write(up); err != nil {
		up.Close()
		return nil, err
	}
	return up, nil
}

// dialTarget connects to the relay.
func (p *derpProxy) dialTarget(ctx context.Context) (net.Conn, error) {
	host := p.target.Host
	if p.target.Port() == "" {
		host = net.JoinHostPort(p.target.Hostname(), "80")
	}
	return p.dialer.DialContext(ctx, "tcp", host)
}

func writeStatus(w io.Writer, code int) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, http.StatusText(code))
}

// selfSignedCert makes the proxies' certificate for 127.0.0.1.
func selfSignedCert() (tls.Certificate, error) {
	certPEM, keyPEM, err := tlsfront.NewCert("127.0.0.1")
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
