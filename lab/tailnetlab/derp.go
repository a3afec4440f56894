package tailnetlab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// relay is a DERP server on a TLS httptest server plus a STUN responder,
// both on one loopback address.
type relay struct {
	derp  *derpserver.Server
	https *httptest.Server
	stun  *net.UDPConn
	wg    sync.WaitGroup
}

// startRelay starts DERP and STUN on host (a loopback IP).
func startRelay(host string, logf func(string, ...any)) (*relay, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("tailnetlab: listen for DERP on %s: %w", host, err)
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("tailnetlab: listen for STUN on %s: %w", host, err)
	}
	r := &relay{derp: derpserver.New(key.NewNode(), logf), stun: pc}
	r.https = httptest.NewUnstartedServer(derpserver.Handler(r.derp))
	r.https.Listener.Close()
	r.https.Listener = ln
	r.https.Config.ErrorLog = log.New(logWriter(logf), "derp-http: ", 0)
	// DERP is an HTTP/1.1 upgrade: no HTTP/2.
	r.https.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	r.https.StartTLS()
	r.wg.Go(r.serveSTUN)
	return r, nil
}

// serveSTUN answers STUN binding requests until the socket is closed.
func (r *relay) serveSTUN() {
	buf := make([]byte, 1500)
	for {
		n, src, err := r.stun.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt := buf[:n]
		if !stun.Is(pkt) {
			continue
		}
		txid, err := stun.ParseBindingRequest(pkt)
		if err != nil {
			continue
		}
		_, _ = r.stun.WriteToUDPAddrPort(stun.Response(txid, src), src)
	}
}

// derpMap returns a one-region map pointing at this relay only.
func (r *relay) derpMap(host string) *tailcfg.DERPMap {
	return &tailcfg.DERPMap{
		OmitDefaultRegions: true,
		Regions: map[int]*tailcfg.DERPRegion{
			1: {
				RegionID:   1,
				RegionCode: "lab",
				RegionName: "cdeload lab",
				Nodes: []*tailcfg.DERPNode{{
					Name:             "1a",
					RegionID:         1,
					HostName:         host,
					IPv4:             host,
					IPv6:             "none",
					STUNPort:         r.stun.LocalAddr().(*net.UDPAddr).Port,
					DERPPort:         r.https.Listener.Addr().(*net.TCPAddr).Port,
					InsecureForTests: true,
					STUNTestIP:       host,
				}},
			},
		},
	}
}

// close stops DERP and STUN.
func (r *relay) close(ctx context.Context) {
	r.https.CloseClientConnections()
	r.https.Close()
	r.derp.Close()
	r.stun.Close()
	r.wg.Wait()
}

// logWriter adapts a printf logger to an io.Writer.
type logWriter func(string, ...any)

func (f logWriter) Write(p []byte) (int, error) {
	f("%s", p)
	return len(p), nil
}
