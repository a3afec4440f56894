package tailnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"tailscale.com/ipn/ipnstate"
)

// Path is how packets to a peer travel.
type Path string

// Paths reported by [Node.Path].
const (
	PathDirect  Path = "direct"  // direct UDP between the two nodes
	PathDERP    Path = "derp"    // relayed through a DERP server
	PathUnknown Path = "unknown" // no traffic yet, or not determinable
)

// DialInfo describes a successful dial.
type DialInfo struct {
	// Duration is the time from the start of Dial until the connection was
	// established, including the wait for the peer to enter the netmap.
	Duration time.Duration
	// Path is the path to the peer right after the connection was made.
	Path Path
	// Peer is the peer's tailnet IP that was dialled.
	Peer netip.Addr
}

// ErrNotPeer is wrapped by errors from [Node.Dial] and [Node.Path] when the
// address is not (or did not become, before the context ended) a peer in
// the node's netmap.
var ErrNotPeer = errNotPeer

// Dial connects to addr ("host:port") over the tailnet. host is a tailnet IP
// or a peer's name (host name, full DNS name, or its first label). Dial
// waits, bounded by ctx, until the peer is in the netmap with a home DERP;
// it never resolves names through DNS nor dials the real network: an
// address that is not a tailnet peer fails with an error wrapping
// [ErrNotPeer] once ctx ends. Use a short deadline to refuse quickly.
// A TCP connection still open when the node closes is closed by
// [Node.Close].
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, DialInfo, error) {
	start := time.Now()
	if err := n.checkUp("dial"); err != nil {
		return nil, DialInfo{}, err
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s %s: network must be tcp or udp", network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !isTailnetIP(ip) {
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s: %s is not a tailnet address: %w", addr, ip, ErrNotPeer)
	}
	if n.cfg.ListenOnly {
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s: %w", addr, ErrListenOnly)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closeCtx, cancel)
	defer stop()
	p, err := n.peers.wait(ctx, host)
	if err != nil {
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s: %w", addr, err)
	}
	ip := pickAddr(p.addrs, network)
	conn, err := n.srv.Dial(ctx, network, net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s (%s): %w", addr, ip, err)
	}
	if strings.HasPrefix(network, "tcp") {
		if conn, err = n.conns.add(conn); err != nil {
			return nil, DialInfo{}, fmt.Errorf("tailnet: dial %s (%s): %w", addr, ip, err)
		}
	}
	info := DialInfo{Duration: time.Since(start), Peer: ip, Path: n.pathOf(p)}
	return conn, info, nil
}

// isTailnetIP reports whether ip is in the tailnet ranges (CGNAT
// 100.64.0.0/10 or fd7a:115c:a1e0::/48).
func isTailnetIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return netip.MustParsePrefix("100.64.0.0/10").Contains(ip) ||
		netip.MustParsePrefix("fd7a:115c:a1e0::/48").Contains(ip)
}

// pickAddr returns the peer address matching the network's family.
func pickAddr(addrs []netip.Addr, network string) netip.Addr {
	want6 := strings.HasSuffix(network, "6")
	for _, a := range addrs {
		if a.Is6() == want6 {
			return a
		}
	}
	return addrs[0]
}

// Path reports how traffic to peer (a tailnet IP or name) currently flows:
// direct when magicsock has a current UDP address for it, derp when it only
// has a DERP relay, unknown otherwise (no traffic sent yet). A peer not in
// the netmap is an error wrapping [ErrNotPeer].
func (n *Node) Path(ctx context.Context, peerAddr string) (Path, error) {
	if err := n.checkUp("path"); err != nil {
		return PathUnknown, err
	}
	if err := ctx.Err(); err != nil {
		return PathUnknown, err
	}
	if n.cfg.ListenOnly {
		return PathUnknown, fmt.Errorf("tailnet: path to %q: %w", peerAddr, ErrListenOnly)
	}
	p, ok := n.peers.lookup(peerAddr)
	if !ok {
		return PathUnknown, fmt.Errorf("tailnet: path to %q: %w", peerAddr, ErrNotPeer)
	}
	return n.pathOf(p), nil
}

// pathOf reads the peer's current path from magicsock without going
// through the LocalAPI.
func (n *Node) pathOf(p peer) Path {
	ms, ok := n.srv.Sys().MagicSock.GetOK()
	if !ok {
		return PathUnknown
	}
	sb := &ipnstate.StatusBuilder{WantPeers: true}
	ms.UpdateStatus(sb)
	ps, ok := sb.Status().Peer[p.key]
	if !ok || ps == nil {
		return PathUnknown
	}
	switch {
	case ps.CurAddr != "":
		return PathDirect
	case ps.Relay != "" && ps.PeerRelay == "" && !ps.LastWrite.IsZero():
		return PathDERP
	default:
		return PathUnknown
	}
}
