// Package tailnetlab runs a complete tailnet control side on loopback in
// the current process: tailscale's test control server
// (tstest/integration/testcontrol) with a pre-shared auth key, a DERP relay
// on TLS and a STUN responder, and a DERP map that names only that relay.
//
// Visibility is hub-and-spoke by default: nodes that advertise
// [WorkspaceTag] (simulated workspaces) see only the other nodes (load
// generators), while load generators see every node. The per-join work is
// therefore O(generators) for each workspace rather than O(N), which is what
// lets a few hundred workspaces share one process. Config.FullMesh makes
// every node see every node.
//
// The lab's map stream filters peer endpoints down to loopback addresses,
// so no node is ever told to send packets anywhere else. Nodes joining the
// lab must still be configured to stay local (see package tailnet's
// KeepLocal).
package tailnetlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"net/http/httptest"
	"net/netip"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
)

// Domain is the DNS suffix of node names in the lab's netmaps.
const Domain = "lab.cdeload.internal"

// Config configures a lab.
type Config struct {
	// Host is the loopback IP every server binds to. Empty means 127.0.0.1.
	// Non-loopback addresses are refused.
	Host string
	// FullMesh makes every node see every other node (default:
	// hub-and-spoke, see the package documentation).
	FullMesh bool
	// Logf receives the servers' logs. Nil discards them.
	Logf func(format string, args ...any)
}

// Lab is a running control server, DERP relay and STUN server.
type Lab struct {
	ctl     *testcontrol.Server
	ctlHTTP *httptest.Server
	relay   *relay
	derpMap *tailcfg.DERPMap
	authKey string
	hub     *hub
}

// Start starts the lab's servers. ctx bounds only the start-up.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || ip.Is6() {
		return nil, fmt.Errorf("tailnetlab: Config.Host %q: must be an IPv4 loopback address such as 127.0.0.1", cfg.Host)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rly, err := startRelay(host, logf)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		rly.close(ctx)
		return nil, fmt.Errorf("tailnetlab: listen for control on %s: %w", host, err)
	}
	var kb [16]byte
	rand.Read(kb[:])
	l := &Lab{relay: rly, derpMap: rly.derpMap(host), authKey: "tskey-auth-lab-" + hex.EncodeToString(kb[:])}
	l.ctl = &testcontrol.Server{
		Logf:             logf,
		DERPMap:          l.derpMap,
		RequireAuthKey:   l.authKey,
		AllNodesSameUser: true,
		AllOnline:        true,
	}
	l.hub = newHub(l.ctl, l.derpMap, Domain, cfg.FullMesh)
	l.ctl.AltMapStream = l.hub.serve
	l.ctlHTTP = httptest.NewUnstartedServer(l.ctl)
	l.ctlHTTP.Listener.Close()
	l.ctlHTTP.Listener = ln
	l.ctlHTTP.Config.ErrorLog = log.New(logWriter(logf), "control-http: ", 0)
	l.ctl.HTTPTestServer = l.ctlHTTP
	l.ctlHTTP.Start()
	return l, nil
}

// ControlURL is the control server's base URL (for TS_CONTROL_URL).
func (l *Lab) ControlURL() string { return l.ctlHTTP.URL }

// AuthKey is the auth key every node must present (for TS_AUTHKEY).
func (l *Lab) AuthKey() string { return l.authKey }

// DERPMap returns a copy of the lab's DERP map.
func (l *Lab) DERPMap() *tailcfg.DERPMap { return l.derpMap.Clone() }

// NumNodes is the number of nodes that ever registered.
func (l *Lab) NumNodes() int { return l.ctl.NumNodes() }

// NumOnline is the number of nodes with an open map stream.
func (l *Lab) NumOnline() int {
	l.hub.mu.Lock()
	defer l.hub.mu.Unlock()
	n := 0
	for _, hn := range l.hub.nodes {
		if hn.present() {
			n++
		}
	}
	return n
}

// Close stops the servers. Nodes still joined lose their control and
// relay connections.
func (l *Lab) Close() error {
	l.ctlHTTP.CloseClientConnections()
	l.ctlHTTP.Close()
	l.relay.close(context.Background())
	return nil
}
