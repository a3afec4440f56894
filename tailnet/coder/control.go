package coder

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/opt"
)

// control is the node's in-process control plane: Coder has no Tailscale
// control server, so the node (an upstream tsnet node) registers with a
// loopback testcontrol server whose map stream this type writes. The
// netmap holds the node itself, with its Coder address, and one peer per
// agent, built from the agents' coordination updates; the node's own key,
// disco key and home DERP, read from its map requests, go back to Coder
// through onSelf.
type control struct {
	ctl    *testcontrol.Server
	http   *httptest.Server
	addr   netip.Prefix // the node's Coder tailnet address
	domain string
	onSelf func(selfState)

	mu      sync.Mutex
	derpMap *tailcfg.DERPMap
	self    selfState
	peers   map[tailcfg.NodeID]*tailcfg.Node
	streams map[chan struct{}]struct{}
}

// selfState is what Coder's coordinator needs to know about the node.
type selfState struct {
	Key       key.NodePublic
	Disco     key.DiscoPublic
	HomeDERP  int
	Endpoints []netip.AddrPort
}

// keepAliveEvery is how often an idle map stream gets a keep-alive.
const keepAliveEvery = 50 * time.Second

func startControl(addr netip.Prefix, domain string, dm *tailcfg.DERPMap, authKey string, logf func(string, ...any), onSelf func(selfState)) *control {
	c := &control{addr: addr, domain: domain, onSelf: onSelf, derpMap: dm,
		peers: map[tailcfg.NodeID]*tailcfg.Node{}, streams: map[chan struct{}]struct{}{}}
	c.ctl = &testcontrol.Server{
		Logf:             logf,
		DERPMap:          dm,
		RequireAuthKey:   authKey,
		AllNodesSameUser: true,
		AllOnline:        true,
		AltMapStream:     c.serve,
	}
	c.http = httptest.NewUnstartedServer(c.ctl)
	c.ctl.HTTPTestServer = c.http
	c.http.Start() // httptest listens on 127.0.0.1
	return c
}

func (c *control) url() string { return c.http.URL }

func (c *control) close() {
	c.http.CloseClientConnections()
	c.http.Close()
}

// setDERPMap replaces the DERP map sent to the node.
func (c *control) setDERPMap(dm *tailcfg.DERPMap) {
	c.mu.Lock()
	c.derpMap = dm
	c.mu.Unlock()
	c.wake()
}

// upsertPeer adds or replaces a peer.
func (c *control) upsertPeer(n *tailcfg.Node) {
	c.mu.Lock()
	c.peers[n.ID] = n
	c.mu.Unlock()
	c.wake()
}

// removePeer drops a peer.
func (c *control) removePeer(id tailcfg.NodeID) {
	c.mu.Lock()
	_, ok := c.peers[id]
	delete(c.peers, id)
	c.mu.Unlock()
	if ok {
		c.wake()
	}
}

func (c *control) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.streams {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// apply records the node's state from a map request.
func (c *control) apply(req *tailcfg.MapRequest) {
	c.mu.Lock()
	s := c.self
	s.Key = req.NodeKey
	if !req.DiscoKey.IsZero() {
		s.Disco = req.DiscoKey
	}
	if req.Hostinfo != nil && req.Hostinfo.NetInfo != nil && req.Hostinfo.NetInfo.PreferredDERP != 0 {
		s.HomeDERP = req.Hostinfo.NetInfo.PreferredDERP
	}
	if req.Endpoints != nil {
		s.Endpoints = slices.Clone(req.Endpoints)
	}
	changed := s.Key != c.self.Key || s.Disco != c.self.Disco || s.HomeDERP != c.self.HomeDERP ||
		!slices.Equal(s.Endpoints, c.self.Endpoints)
	c.self = s
	c.mu.Unlock()
	if changed {
		c.onSelf(s)
		c.wake()
	}
}

// serve is the testcontrol map-stream hook.
func (c *control) serve(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	if !req.ReadOnly && !(req.Stream && req.Version >= 68) && ctx.Err() == nil {
		c.apply(req)
	}
	if !req.Stream || req.ReadOnly {
		if !req.OmitPeers {
			if res := c.build(req.NodeKey); res != nil {
				_ = w.SendMapMessage(res)
			}
		}
		return
	}
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.streams[ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.streams, ch)
		c.mu.Unlock()
	}()
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		res := c.build(req.NodeKey)
		if res == nil {
			return
		}
		if err := w.SendMapMessage(res); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-keepAlive.C:
			if err := w.SendMapMessage(&tailcfg.MapResponse{KeepAlive: true}); err != nil {
				return
			}
		}
	}
}

// build renders the node's full netmap (it has one peer per agent, so a
// full map per change stays small).
func (c *control) build(nk key.NodePublic) *tailcfg.MapResponse {
	base := c.ctl.Node(nk)
	if base == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	self := base.Clone()
	self.Addresses = []netip.Prefix{c.addr}
	self.AllowedIPs = []netip.Prefix{c.addr}
	self.DiscoKey = c.self.Disco
	self.HomeDERP = c.self.HomeDERP
	self.MachineAuthorized = true
	self.Online = new(true)
	self.Name = "cdeload." + c.domain + "."
	self.Capabilities = nil
	// only-tcp-443: no UDP netcheck (the DERP map has no STUN, and
	// waiting for STUN answers would delay the home DERP by 3 s); DERP
	// latency is measured over the relay's HTTPS (through its proxy).
	self.CapMap = tailcfg.NodeCapMap{tailcfg.NodeAttrDisableUPnP: nil, tailcfg.NodeAttrOnlyTCP443: nil}
	t := time.Now()
	res := &tailcfg.MapResponse{
		Node:            self,
		DERPMap:         c.derpMap,
		Domain:          c.domain,
		PacketFilter:    tailcfg.FilterAllowAll,
		CollectServices: opt.False,
		ControlTime:     &t,
		Peers:           []*tailcfg.Node{},
		UserProfiles:    []tailcfg.UserProfile{{ID: self.User, LoginName: "cdeload@coder", DisplayName: "cdeload"}},
	}
	for _, p := range c.peers {
		q := p.Clone()
		q.User = self.User
		res.Peers = append(res.Peers, q)
	}
	slices.SortFunc(res.Peers, func(a, b *tailcfg.Node) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return res
}
