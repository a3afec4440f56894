package tailnetlab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/opt"
)

// WorkspaceTag is the ACL tag a node advertises to be treated as a
// workspace: in hub-and-spoke mode workspaces see only non-workspace nodes
// (load generators), while load generators see everybody.
const WorkspaceTag = "tag:cdeload-workspace"

// keepAliveEvery is how often an idle map stream gets a keep-alive (the
// client gives up on a stream after 120 s of silence).
const keepAliveEvery = 50 * time.Second

// hub is the lab's map-stream implementation, plugged into testcontrol as
// its AltMapStream. testcontrol still registers nodes (keys, addresses,
// auth key check); the hub tracks each node's live state (endpoints, disco
// key, home DERP) and streams netmaps filtered by visibility, sending only
// deltas after the first map so the cost per change is O(peers) small
// structs rather than the full map for every node.
type hub struct {
	ctl      *testcontrol.Server
	derpMap  *tailcfg.DERPMap
	domain   string
	fullMesh bool

	mu    sync.Mutex
	seq   uint64
	nodes map[key.NodePublic]*hubNode
	// Coder bridge (coder.go): extra addresses by host name, watchers of
	// nodes by extra address, and peers from outside the lab's control.
	extraAddrs map[string]netip.Addr
	watchers   map[netip.Addr]map[*NodeWatch]struct{}
	external   map[tailcfg.NodeID]*ExternalPeer
	nextExt    tailcfg.NodeID
}

// hubNode is the hub's view of one registered node.
type hubNode struct {
	base      *tailcfg.Node // as registered with testcontrol
	version   uint64        // hub.seq at the last change
	endpoints []netip.AddrPort
	disco     key.DiscoPublic
	hostinfo  *tailcfg.Hostinfo
	homeDERP  int
	workspace bool
	streams   map[*hubStream]struct{}
	extraAddr netip.Addr // a Coder agent's address (AssignAddress), if any
}

// hubStream is one open streaming map poll.
type hubStream struct{ wake chan struct{} }

func (n *hubNode) present() bool { return len(n.streams) > 0 }

func newHub(ctl *testcontrol.Server, dm *tailcfg.DERPMap, domain string, fullMesh bool) *hub {
	return &hub{ctl: ctl, derpMap: dm, domain: domain, fullMesh: fullMesh, nodes: map[key.NodePublic]*hubNode{},
		extraAddrs: map[string]netip.Addr{}, watchers: map[netip.Addr]map[*NodeWatch]struct{}{},
		external: map[tailcfg.NodeID]*ExternalPeer{}, nextExt: externalIDBase}
}

// canSee reports whether viewer's netmap includes peer.
func (h *hub) canSee(viewer, peer *hubNode) bool {
	return viewer != peer && (h.fullMesh || !(viewer.workspace && peer.workspace))
}

func hasWorkspaceTag(hi *tailcfg.Hostinfo) bool {
	return hi != nil && slices.Contains(hi.RequestTags, WorkspaceTag)
}

// nodeLocked returns the hub's record for k, creating it from testcontrol's
// registration. h.mu must be held.
func (h *hub) nodeLocked(k key.NodePublic) *hubNode {
	if n, ok := h.nodes[k]; ok {
		return n
	}
	base := h.ctl.Node(k)
	if base == nil {
		return nil
	}
	n := &hubNode{base: base, streams: map[*hubStream]struct{}{}}
	if base.Hostinfo.Valid() {
		n.hostinfo = base.Hostinfo.AsStruct()
		n.workspace = hasWorkspaceTag(n.hostinfo)
		n.extraAddr = h.extraAddrs[n.hostinfo.Hostname]
	}
	h.nodes[k] = n
	return n
}

// bumpLocked records a change to n and wakes every stream whose netmap
// includes n (and n's own streams). If everyone is set, every stream wakes.
func (h *hub) bumpLocked(n *hubNode, everyone bool) {
	h.seq++
	n.version = h.seq
	h.wakeWatchersLocked(n.extraAddr)
	for _, v := range h.nodes {
		if !v.present() || !(v == n || everyone || h.canSee(v, n)) {
			continue
		}
		for s := range v.streams {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// apply records the state a client reports in a map request.
func (h *hub) apply(req *tailcfg.MapRequest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodeLocked(req.NodeKey)
	if n == nil {
		return
	}
	// Keep loopback endpoints only: the lab is local and must never make
	// a node send to another address.
	n.endpoints = n.endpoints[:0]
	for _, ep := range req.Endpoints {
		if ep.Addr().IsLoopback() {
			n.endpoints = append(n.endpoints, ep)
		}
	}
	n.disco = req.DiscoKey
	wasWorkspace := n.workspace
	if req.Hostinfo != nil {
		n.hostinfo = req.Hostinfo.Clone()
		n.workspace = hasWorkspaceTag(n.hostinfo)
		if ni := req.Hostinfo.NetInfo; ni != nil && ni.PreferredDERP != 0 {
			n.homeDERP = ni.PreferredDERP
		}
		if !n.extraAddr.IsValid() {
			n.extraAddr = h.extraAddrs[n.hostinfo.Hostname]
		}
	}
	h.bumpLocked(n, wasWorkspace != n.workspace)
}

// serve is the testcontrol AltMapStream hook.
func (h *hub) serve(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	// Like testcontrol: a streaming poll from a modern client is read-only;
	// state updates come in separate non-streaming ("lite") requests.
	if !req.ReadOnly && !(req.Stream && req.Version >= 68) && ctx.Err() == nil {
		h.apply(req)
	}
	if !req.Stream || req.ReadOnly {
		if req.OmitPeers {
			return // the client discards the body of a lite update
		}
		h.mu.Lock()
		n := h.nodeLocked(req.NodeKey)
		var res *tailcfg.MapResponse
		if n != nil {
			res = h.buildLocked(n, map[tailcfg.NodeID]uint64{}, new(uint64), true)
		}
		h.mu.Unlock()
		if res != nil {
			_ = w.SendMapMessage(res)
		}
		return
	}

	st := &hubStream{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	n := h.nodeLocked(req.NodeKey)
	if n == nil {
		h.mu.Unlock()
		return
	}
	wasPresent := n.present()
	n.streams[st] = struct{}{}
	if !wasPresent {
		h.bumpLocked(n, false)
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(n.streams, st)
		if !n.present() {
			h.bumpLocked(n, false) // peers drop it from their netmaps
		}
		h.mu.Unlock()
	}()

	sent := map[tailcfg.NodeID]uint64{}
	var selfSent uint64
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for first := true; ; first = false {
		h.mu.Lock()
		res := h.buildLocked(n, sent, &selfSent, first)
		h.mu.Unlock()
		if res != nil {
			if err := w.SendMapMessage(res); err != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-st.wake:
		case <-keepAlive.C:
			if err := w.SendMapMessage(&tailcfg.MapResponse{KeepAlive: true}); err != nil {
				return
			}
		}
	}
}

// buildLocked builds the next map message for viewer: the full map when
// first, else only what changed since sent/selfSent (nil if nothing did).
// It updates sent and selfSent. h.mu must be held.
func (h *hub) buildLocked(viewer *hubNode, sent map[tailcfg.NodeID]uint64, selfSent *uint64, first bool) *tailcfg.MapResponse {
	res := &tailcfg.MapResponse{}
	users := map[tailcfg.UserID]bool{}
	if first || viewer.version != *selfSent {
		res.Node = h.nodeViewLocked(viewer, true)
		*selfSent = viewer.version
		users[viewer.base.User] = true
	}
	visible := map[tailcfg.NodeID]bool{}
	for _, p := range h.nodes {
		if !p.present() || !h.canSee(viewer, p) {
			continue
		}
		id := p.base.ID
		visible[id] = true
		if sent[id] == p.version {
			continue
		}
		sent[id] = p.version
		users[p.base.User] = true
		if first {
			res.Peers = append(res.Peers, h.nodeViewLocked(p, false))
		} else {
			res.PeersChanged = append(res.PeersChanged, h.nodeViewLocked(p, false))
		}
	}
	h.externalPeersLocked(viewer, first, res, sent, visible, users)
	for id := range sent {
		if !visible[id] {
			delete(sent, id)
			res.PeersRemoved = append(res.PeersRemoved, id)
		}
	}
	if !first && res.Node == nil && len(res.PeersChanged) == 0 && len(res.PeersRemoved) == 0 {
		return nil
	}
	slices.SortFunc(res.Peers, func(a, b *tailcfg.Node) int { return int(a.ID - b.ID) })
	slices.SortFunc(res.PeersChanged, func(a, b *tailcfg.Node) int { return int(a.ID - b.ID) })
	for uid := range users {
		res.UserProfiles = append(res.UserProfiles, tailcfg.UserProfile{
			ID: uid, LoginName: "lab@cdeload", DisplayName: "cdeload lab",
		})
	}
	if first {
		t := time.Now()
		res.DERPMap = h.derpMap
		res.Domain = h.domain
		res.PacketFilter = tailcfg.FilterAllowAll
		res.CollectServices = opt.False
		res.ControlTime = &t
		if res.Peers == nil {
			res.Peers = []*tailcfg.Node{}
		}
	}
	return res
}

// nodeViewLocked renders n as sent to clients. h.mu must be held.
func (h *hub) nodeViewLocked(n *hubNode, self bool) *tailcfg.Node {
	out := n.base.Clone()
	out.Endpoints = slices.Clone(n.endpoints)
	out.DiscoKey = n.disco
	out.HomeDERP = n.homeDERP
	if n.hostinfo != nil {
		out.Hostinfo = n.hostinfo.View()
	}
	out.MachineAuthorized = true
	out.Online = new(true)
	out.Name = dnsLabel(out.Hostinfo.Hostname()) + "." + h.domain + "."
	if n.extraAddr.IsValid() {
		p := netip.PrefixFrom(n.extraAddr, n.extraAddr.BitLen())
		out.Addresses = append(slices.Clone(out.Addresses), p)
		out.AllowedIPs = append(slices.Clone(out.AllowedIPs), p)
	}
	out.Capabilities = nil
	out.CapMap = nil
	if self {
		out.CapMap = tailcfg.NodeCapMap{tailcfg.NodeAttrDisableUPnP: nil}
	}
	return out
}

// dnsLabel turns a host name into a DNS label.
func dnsLabel(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	return b.String()
}
