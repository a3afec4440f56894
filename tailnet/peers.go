package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// peer is what a node knows about one peer from its netmap.
type peer struct {
	id       tailcfg.NodeID
	key      key.NodePublic
	hostname string // Hostinfo hostname, lower case
	dnsName  string // Node.Name without the trailing dot, lower case
	addrs    []netip.Addr
	homeDERP int
}

// ready reports whether the peer can be dialled without losing the first
// packets: it has an address and a home DERP.
func (p *peer) ready() bool { return len(p.addrs) > 0 && p.homeDERP != 0 }

// peerIndex mirrors the peers in a node's netmap, fed from the IPN bus.
type peerIndex struct {
	mu      sync.Mutex
	peers   map[tailcfg.NodeID]*peer
	changed chan struct{} // closed and replaced on every change
	err     error         // set when the watcher stopped for good
	primed  chan struct{} // closed when the first full netmap arrived
	once    sync.Once
}

func newPeerIndex() *peerIndex {
	return &peerIndex{peers: map[tailcfg.NodeID]*peer{}, changed: make(chan struct{}), primed: make(chan struct{})}
}

func peerFromNode(n *tailcfg.Node) *peer {
	p := &peer{id: n.ID, key: n.Key, homeDERP: n.HomeDERP}
	if n.Hostinfo.Valid() {
		p.hostname = strings.ToLower(n.Hostinfo.Hostname())
	}
	p.dnsName = strings.ToLower(strings.TrimSuffix(n.Name, "."))
	for _, pfx := range n.Addresses {
		if pfx.IsSingleIP() {
			p.addrs = append(p.addrs, pfx.Addr())
		}
	}
	return p
}

// notifyLocked wakes every waiter. pi.mu must be held.
func (pi *peerIndex) notifyLocked() {
	close(pi.changed)
	pi.changed = make(chan struct{})
}

// reset replaces all peers with those of a full netmap.
func (pi *peerIndex) reset(peers []tailcfg.NodeView) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	clear(pi.peers)
	for _, nv := range peers {
		n := nv.AsStruct()
		pi.peers[n.ID] = peerFromNode(n)
	}
	pi.notifyLocked()
	pi.once.Do(func() { close(pi.primed) })
}

// apply applies peer deltas.
func (pi *peerIndex) apply(changed []*tailcfg.Node, removed []tailcfg.NodeID) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	for _, n := range changed {
		pi.peers[n.ID] = peerFromNode(n)
	}
	for _, id := range removed {
		delete(pi.peers, id)
	}
	pi.notifyLocked()
}

// stop records that no more updates will come.
func (pi *peerIndex) stop(err error) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	pi.err = err
	pi.notifyLocked()
}

// findLocked looks a peer up by tailnet IP, host name, full DNS name or
// first DNS label. pi.mu must be held.
func (pi *peerIndex) findLocked(host string) *peer {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		for _, p := range pi.peers {
			for _, a := range p.addrs {
				if a == ip {
					return p
				}
			}
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range pi.peers {
		if p.hostname == name || p.dnsName == name {
			return p
		}
	}
	for _, p := range pi.peers {
		if first, _, _ := strings.Cut(p.dnsName, "."); first == name {
			return p
		}
	}
	return nil
}

// lookup returns the peer named host without waiting.
func (pi *peerIndex) lookup(host string) (peer, bool) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	if p := pi.findLocked(host); p != nil {
		return *p, true
	}
	return peer{}, false
}

// errNotPeer is returned (wrapped) when an address is not a tailnet peer.
var errNotPeer = errors.New("not a peer in the tailnet netmap")

// wait blocks until host is a ready peer, or ctx ends. When ctx ends first
// the error wraps errNotPeer (if the peer never appeared) and ctx.Err().
func (pi *peerIndex) wait(ctx context.Context, host string) (peer, error) {
	for {
		pi.mu.Lock()
		p := pi.findLocked(host)
		if p != nil && p.ready() {
			cp := *p
			pi.mu.Unlock()
			return cp, nil
		}
		ch, stopErr := pi.changed, pi.err
		pi.mu.Unlock()
		if stopErr != nil {
			return peer{}, fmt.Errorf("netmap watcher stopped: %w", stopErr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if p == nil {
				return peer{}, fmt.Errorf("%q: %w (waited: %w)", host, errNotPeer, ctx.Err())
			}
			return peer{}, fmt.Errorf("%q: peer has no home DERP yet: %w", host, ctx.Err())
		}
	}
}

// count returns the number of peers.
func (pi *peerIndex) count() int {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	return len(pi.peers)
}

// watch keeps pi in sync with the node's netmap until ctx ends. It
// re-subscribes (with a fresh full netmap) if the bus session drops.
func (pi *peerIndex) watch(ctx context.Context, lc *local.Client, logf func(string, ...any)) {
	const mask = ipn.NotifyInitialNetMap | ipn.NotifyPeerChanges
	for ctx.Err() == nil {
		err := pi.watchOnce(ctx, lc, mask)
		if ctx.Err() != nil {
			break
		}
		logf("tailnet: netmap watch ended, resubscribing: %v", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	pi.stop(ctx.Err())
}

func (pi *peerIndex) watchOnce(ctx context.Context, lc *local.Client, mask ipn.NotifyWatchOpt) error {
	w, err := lc.WatchIPNBus(ctx, mask)
	if err != nil {
		return fmt.Errorf("watch IPN bus: %w", err)
	}
	defer w.Close()
	for {
		n, err := w.Next()
		if err != nil {
			return fmt.Errorf("read IPN bus: %w", err)
		}
		if n.ErrMessage != nil {
			return fmt.Errorf("IPN bus: %s", *n.ErrMessage)
		}
		if n.NetMap != nil {
			pi.reset(n.NetMap.Peers)
		}
		if len(n.PeersChanged) > 0 || len(n.PeersRemoved) > 0 {
			pi.apply(n.PeersChanged, n.PeersRemoved)
		}
	}
}
