package tailnet

import (
	"context"
	"fmt"
	"net/netip"
)

// WaitPeer waits, bounded by ctx, until host (a peer's host name, full DNS
// name or first DNS label, or a tailnet IP) is a peer in the node's netmap,
// ready to dial, and returns its tailnet address (IPv4 when it has one).
// It never dials. When ctx ends first the error wraps [ErrNotPeer] (the
// peer never appeared) and ctx's error.
func (n *Node) WaitPeer(ctx context.Context, host string) (netip.Addr, error) {
	if err := n.checkUp("wait for a peer"); err != nil {
		return netip.Addr{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closeCtx, cancel)
	defer stop()
	p, err := n.peers.wait(ctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("tailnet: wait for peer %s: %w", host, err)
	}
	return pickAddr(p.addrs, "tcp4"), nil
}
