package tailnetlab

import (
	"net/http"
	"net/netip"
	"slices"
	"sync"

	"tailscale.com/derp/derpserver"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// This file is the lab's side of a Coder-style coordinator (see
// lab/codersim): Coder has no Tailscale control server, so a Coder client
// is not a node of the lab's control. The coordinator instead reads the
// live state of the agent's node here (NodeWatch) and makes the client a
// peer of that one node (ExternalPeer); packets flow through the lab's own
// DERP relay, which it also serves on the Coder API's /derp (DERPHandler).

// externalIDBase is the first node ID of external peers, far above the
// IDs testcontrol assigns to registered nodes.
const externalIDBase tailcfg.NodeID = 1 << 40

// AssignAddress gives the node that registers with the host name hostname
// addr as an extra tailnet address (a Coder agent's address, derived from
// its agent ID), in its own netmap and in its peers'. Call it before the
// node joins; release forgets the assignment (the node keeps the address
// until it leaves).
func (l *Lab) AssignAddress(hostname string, addr netip.Addr) (release func()) {
	h := l.hub
	h.mu.Lock()
	h.extraAddrs[hostname] = addr
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		if h.extraAddrs[hostname] == addr {
			delete(h.extraAddrs, hostname)
		}
		h.mu.Unlock()
	}
}

// NodeInfo is the live state of a lab node, as a coordinator tells it to
// its peers.
type NodeInfo struct {
	Key       key.NodePublic
	Disco     key.DiscoPublic
	HomeDERP  int
	Endpoints []netip.AddrPort // loopback only
	Addresses []netip.Prefix
}

// NodeWatch follows the node that holds an extra address (see
// [Lab.AssignAddress]).
type NodeWatch struct {
	h    *hub
	addr netip.Addr
	ch   chan<- struct{}
	once sync.Once
}

// WatchAddress follows the node holding addr: whenever it joins, changes
// or leaves, notify gets a value if it has room (make it buffered; changes
// in a burst may be merged into one), and Node reads its state. Close the
// watch when done.
func (l *Lab) WatchAddress(addr netip.Addr, notify chan<- struct{}) *NodeWatch {
	w := &NodeWatch{h: l.hub, addr: addr, ch: notify}
	h := l.hub
	h.mu.Lock()
	if h.watchers[addr] == nil {
		h.watchers[addr] = map[*NodeWatch]struct{}{}
	}
	h.watchers[addr][w] = struct{}{}
	h.mu.Unlock()
	return w
}

// Node returns the watched node's state, and false when no node holding the
// address is online (never joined, or left).
func (w *NodeWatch) Node() (NodeInfo, bool) {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.holderLocked(w.addr)
	if n == nil {
		return NodeInfo{}, false
	}
	v := h.nodeViewLocked(n, false)
	return NodeInfo{Key: v.Key, Disco: v.DiscoKey, HomeDERP: v.HomeDERP, Endpoints: v.Endpoints, Addresses: v.Addresses}, true
}

// Close stops the watch.
func (w *NodeWatch) Close() {
	w.once.Do(func() {
		h := w.h
		h.mu.Lock()
		delete(h.watchers[w.addr], w)
		if len(h.watchers[w.addr]) == 0 {
			delete(h.watchers, w.addr)
		}
		h.mu.Unlock()
	})
}

// holderLocked returns the online node holding the extra address addr.
// h.mu must be held.
func (h *hub) holderLocked(addr netip.Addr) *hubNode {
	for _, n := range h.nodes {
		if n.extraAddr == addr && n.present() {
			return n
		}
	}
	return nil
}

// wakeWatchersLocked signals the watchers of addr. h.mu must be held.
func (h *hub) wakeWatchersLocked(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	for w := range h.watchers[addr] {
		signal(w.ch)
	}
}

// PeerNode is the state of a peer from outside the lab's control.
type PeerNode struct {
	Key       key.NodePublic
	Disco     key.DiscoPublic
	HomeDERP  int
	Addresses []netip.Prefix // also its allowed IPs
	Endpoints []netip.AddrPort
	Hostname  string
}

// ExternalPeer is a node from outside the lab's control (a Coder client)
// that one lab node sees as a peer.
type ExternalPeer struct {
	h         *hub
	id        tailcfg.NodeID
	target    netip.Addr
	notify    chan<- struct{}
	node      PeerNode
	version   uint64
	delivered uint64 // the version last put into the target's map stream
}

// AddPeer makes n a peer of the node holding the extra address target
// (see [Lab.AssignAddress]), now or once it joins, until the peer is
// removed. Only loopback endpoints of n are passed on. notify (if not nil)
// gets a value, if it has room, whenever the target's map stream has taken
// the peer's latest state (see [ExternalPeer.Delivered]).
func (l *Lab) AddPeer(target netip.Addr, n PeerNode, notify chan<- struct{}) *ExternalPeer {
	h := l.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextExt++
	p := &ExternalPeer{h: h, id: h.nextExt, target: target, notify: notify}
	h.external[p.id] = p
	p.setLocked(n)
	return p
}

// Update replaces the peer's state.
func (p *ExternalPeer) Update(n PeerNode) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.h.external[p.id] == p {
		p.setLocked(n)
	}
}

// Delivered reports whether the target's map stream has taken the peer's
// latest state (the target node then learns it within milliseconds).
func (p *ExternalPeer) Delivered() bool {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.version != 0 && p.delivered == p.version
}

// Remove takes the peer out of its target's netmap. It is idempotent.
func (p *ExternalPeer) Remove() {
	h := p.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.external[p.id] != p {
		return
	}
	delete(h.external, p.id)
	h.wakeTargetLocked(p.target)
}

func (p *ExternalPeer) setLocked(n PeerNode) {
	n.Endpoints = slices.DeleteFunc(slices.Clone(n.Endpoints), func(ep netip.AddrPort) bool { return !ep.Addr().IsLoopback() })
	n.Addresses = slices.Clone(n.Addresses)
	p.node = n
	p.h.seq++
	p.version = p.h.seq
	p.h.wakeTargetLocked(p.target)
}

// wakeTargetLocked wakes the streams of the nodes holding addr.
func (h *hub) wakeTargetLocked(addr netip.Addr) {
	for _, n := range h.nodes {
		if n.extraAddr != addr {
			continue
		}
		for s := range n.streams {
			signal(s.wake)
		}
	}
}

// signal sends on ch if it has room.
func signal(ch chan<- struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// externalPeersLocked adds viewer's external peers to res (as for
// buildLocked). h.mu must be held.
func (h *hub) externalPeersLocked(viewer *hubNode, first bool, res *tailcfg.MapResponse, sent map[tailcfg.NodeID]uint64, visible map[tailcfg.NodeID]bool, users map[tailcfg.UserID]bool) {
	if !viewer.extraAddr.IsValid() {
		return
	}
	for id, p := range h.external {
		if p.target != viewer.extraAddr {
			continue
		}
		visible[id] = true
		if sent[id] == p.version {
			continue
		}
		sent[id] = p.version
		p.delivered = p.version
		signal(p.notify)
		users[viewer.base.User] = true
		name := p.node.Hostname
		if name == "" {
			name = "coder-client"
		}
		v := &tailcfg.Node{
			ID:                id,
			StableID:          tailcfg.StableNodeID("external-" + p.node.Key.ShortString()),
			Name:              dnsLabel(name) + "." + h.domain + ".",
			User:              viewer.base.User,
			Key:               p.node.Key,
			DiscoKey:          p.node.Disco,
			HomeDERP:          p.node.HomeDERP,
			Addresses:         slices.Clone(p.node.Addresses),
			AllowedIPs:        slices.Clone(p.node.Addresses),
			Endpoints:         slices.Clone(p.node.Endpoints),
			MachineAuthorized: true,
			Online:            new(true),
			Hostinfo:          (&tailcfg.Hostinfo{Hostname: name}).View(),
		}
		if first {
			res.Peers = append(res.Peers, v)
		} else {
			res.PeersChanged = append(res.PeersChanged, v)
		}
	}
}

// DERPHandler serves the lab's DERP relay over plain HTTP (its /derp
// upgrade and /derp/latency-check), as coderd serves its embedded relay
// on its access URL: clients of the Coder simulator use it, and reach the
// lab's nodes on the same relay.
func (l *Lab) DERPHandler() http.Handler { return derpserver.Handler(l.relay.derp) }
