package codersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"storj.io/drpc"
	"storj.io/drpc/drpcserver"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet/coder/coderproto"
)

// This file serves Coder's tailnet endpoints: the connection info (the
// lab's DERP map, as coderd's embedded relay on the simulator's own URL)
// and the coordination websocket (yamux, one dRPC stream per call, service
// coder.tailnet.v2.Tailnet: Coordinate and StreamDERPMaps).
//
// The agents stay nodes of the lab's own tailnet (Config.Tailnet): each
// holds its Coder address (fd7a:115c:a1e0:: + the last 10 bytes of its
// agent ID) there. The coordinator bridges a client into it: it sends the
// client the agent's live node (key, disco key, home DERP, loopback
// endpoints, addresses) and makes the client's node (from update_self) a
// peer of that agent's node only, until the tunnel is removed, the client
// disconnects or the stream ends. Packets flow through the lab's one DERP
// relay, which the simulator also serves on /derp.

// tailnetAPIMajor is the tailnet API major version served (2.x).
const tailnetAPIMajor = 2

// handleConnectionInfo is GET /api/v2/workspaceagents/{id}/connection.
func (s *Server) handleConnectionInfo(w http.ResponseWriter, r *http.Request, caller *user) {
	tn := s.cfg.Tailnet
	if tn == nil {
		writeError(w, http.StatusNotFound, "Route not found.", "This simulator runs without a tailnet (codersim.Config.Tailnet).")
		return
	}
	if _, ok := s.accessibleAgent(w, r, caller); !ok {
		return
	}
	writeJSON(w, http.StatusOK, coderproto.ConnectionInfo{
		DERPMap:                  s.derpMapJSON(),
		DisableDirectConnections: s.cfg.DisableDirectConnections,
		HostnameSuffix:           "coder",
	})
}

// accessibleAgent returns the agent of the request's path, answering 404
// when it does not exist or the caller may not reach it.
func (s *Server) accessibleAgent(w http.ResponseWriter, r *http.Request, caller *user) (*agent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[r.PathValue("workspaceagent")]
	if a == nil || !s.canAccess(caller, s.workspaces[a.workspaceID]) {
		notFound(w)
		return nil, false
	}
	return a, true
}

// derpMapJSON renders the lab's DERP map as coderd does for a separate
// (not embedded) relay: the lab's relay on loopback over https, which
// Coder's clients dial directly. (The simulator also serves the relay on
// /derp over plain HTTP, as coderd's embedded relay is, but does not
// advertise it: a plain-HTTP relay costs cdeload's upstream DERP client a
// TLS proxy hop per packet.)
func (s *Server) derpMapJSON() coderproto.JSONDERPMap {
	out := coderproto.JSONDERPMap{Regions: map[int]*coderproto.JSONDERPRegion{}}
	for id, r := range s.cfg.Tailnet.DERPMap().Regions {
		jr := &coderproto.JSONDERPRegion{RegionID: id, RegionCode: r.RegionCode, RegionName: r.RegionName}
		for _, n := range r.Nodes {
			if n.STUNOnly {
				continue
			}
			jr.Nodes = append(jr.Nodes, &coderproto.JSONDERPNode{Name: n.Name, RegionID: id, HostName: n.HostName,
				IPv4: n.IPv4, DERPPort: n.DERPPort})
		}
		out.Regions[id] = jr
	}
	return out
}

// handleCoordinate is the coordination websocket,
// GET /api/v2/workspaceagents/{id}/coordinate?version=2.x.
func (s *Server) handleCoordinate(w http.ResponseWriter, r *http.Request, caller *user) {
	if s.cfg.Tailnet == nil {
		writeError(w, http.StatusNotFound, "Route not found.", "This simulator runs without a tailnet (codersim.Config.Tailnet).")
		return
	}
	v := r.URL.Query().Get("version")
	major, _, _ := strings.Cut(v, ".")
	if v == "" || major != strconv.Itoa(tailnetAPIMajor) {
		writeError(w, http.StatusBadRequest, "Unknown or unsupported API version",
			fmt.Sprintf("Query param \"version\" %q: this server speaks tailnet API %d.x.", v, tailnetAPIMajor),
			validationError{Field: "version", Detail: "want 2.x"})
		return
	}
	a, ok := s.accessibleAgent(w, r, caller)
	if !ok {
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(4 << 20)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Server(nc, cfg)
	if err != nil {
		_ = ws.Close(websocket.StatusInternalError, "yamux")
		return
	}
	stop := context.AfterFunc(ctx, func() { mux.Close() })
	defer stop()
	h := &tailnetRPC{s: s, agentID: a.id}
	_ = drpcserver.New(h).Serve(ctx, mux)
	mux.Close()
	_ = ws.CloseNow()
}

// tailnetRPC serves the dRPC calls of one coordination websocket.
type tailnetRPC struct {
	s       *Server
	agentID string // the agent of the websocket's URL: the only tunnel allowed
}

// HandleRPC implements drpc.Handler.
func (h *tailnetRPC) HandleRPC(st drpc.Stream, rpc string) error {
	switch rpc {
	case coderproto.RPCCoordinate:
		return h.coordinate(st)
	case coderproto.RPCStreamDERPMaps:
		return h.streamDERPMaps(st)
	}
	return fmt.Errorf("codersim: unimplemented RPC %s", rpc)
}

// streamDERPMaps sends the DERP map once, then holds the stream open (the
// lab's map never changes).
func (h *tailnetRPC) streamDERPMaps(st drpc.Stream) error {
	var req coderproto.Raw
	if err := st.MsgRecv(&req, coderproto.Encoding{}); err != nil {
		return err
	}
	m := h.s.derpMapJSON().Proto()
	if err := st.MsgSend(&coderproto.Raw{B: m.Marshal()}, coderproto.Encoding{}); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

// coordination is one Coordinate stream.
type coordination struct {
	h       *tailnetRPC
	st      drpc.Stream
	self    *tailnetlab.PeerNode // the client's node, once sent
	tunnels map[[16]byte]*tunnel
	changed chan struct{} // a watched agent node changed, or took the client's node
}

// tunnel is the client's tunnel to one agent.
type tunnel struct {
	id    [16]byte
	addr  netip.Addr // the agent's Coder address
	watch *tailnetlab.NodeWatch
	peer  *tailnetlab.ExternalPeer // the client in the agent's netmap
	sent  *tailnetlab.NodeInfo     // the agent's node as last sent
	ready bool                     // READY_FOR_HANDSHAKE sent
}

// coordinateRecv is one request read from the stream.
type coordinateRecv struct {
	req coderproto.CoordinateRequest
	err error
}

func (h *tailnetRPC) coordinate(st drpc.Stream) error {
	c := &coordination{h: h, st: st, tunnels: map[[16]byte]*tunnel{}, changed: make(chan struct{}, 1)}
	defer c.closeAll()
	reqs := make(chan coordinateRecv)
	ctx := st.Context()
	go func() {
		for {
			var m coderproto.Raw
			var r coordinateRecv
			if r.err = st.MsgRecv(&m, coderproto.Encoding{}); r.err == nil {
				if err := r.req.Unmarshal(m.B); err != nil {
					r.err = fmt.Errorf("bad coordinate request: %w", err)
				}
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-reqs:
			if r.err != nil {
				if errors.Is(r.err, io.EOF) || ctx.Err() != nil {
					return nil
				}
				return r.err
			}
			done, err := c.handle(r.req)
			if err != nil {
				_ = c.send(&coderproto.CoordinateResponse{Error: err.Error()})
				return err
			}
			if done {
				return nil
			}
		case <-c.changed:
		}
		if err := c.sync(); err != nil {
			return err
		}
	}
}

// handle applies one request; done reports a Disconnect.
func (c *coordination) handle(r coderproto.CoordinateRequest) (done bool, err error) {
	if r.UpdateSelf != nil {
		n, err := peerNode(r.UpdateSelf)
		if err != nil {
			return false, fmt.Errorf("update_self: %w", err)
		}
		c.self = &n
		for _, t := range c.tunnels {
			c.program(t)
		}
	}
	if r.AddTunnel != nil {
		id, err := tunnelID(r.AddTunnel)
		if err != nil {
			return false, fmt.Errorf("add_tunnel: %w", err)
		}
		if formatUUID(id) != c.h.agentID {
			return false, fmt.Errorf("add_tunnel: agent %s: this coordination websocket only reaches agent %s", formatUUID(id), c.h.agentID)
		}
		if c.tunnels[id] == nil {
			addr := netip.MustParseAddr(coderAgentAddress(formatUUID(id)))
			t := &tunnel{id: id, addr: addr, watch: c.h.s.cfg.Tailnet.WatchAddress(addr, c.changed)}
			c.tunnels[id] = t
			c.program(t)
		}
	}
	if r.RemoveTunnel != nil {
		id, err := tunnelID(r.RemoveTunnel)
		if err != nil {
			return false, fmt.Errorf("remove_tunnel: %w", err)
		}
		if t := c.tunnels[id]; t != nil {
			t.close()
			delete(c.tunnels, id)
		}
	}
	return r.Disconnect, nil
}

// program puts the client's node into t's agent's netmap.
func (c *coordination) program(t *tunnel) {
	if c.self == nil {
		return
	}
	if t.peer == nil {
		t.peer = c.h.s.cfg.Tailnet.AddPeer(t.addr, *c.self, c.changed)
	} else {
		t.peer.Update(*c.self)
	}
}

// sync sends every tunnel's news: the agent's node when it changed,
// READY_FOR_HANDSHAKE once the agent has the client's node, DISCONNECTED or
// LOST when the agent left (the tunnel then ends).
func (c *coordination) sync() error {
	var res coderproto.CoordinateResponse
	for id, t := range c.tunnels {
		info, ok := t.watch.Node()
		switch {
		case ok && (t.sent == nil || !sameNode(*t.sent, info)):
			t.sent = &info
			res.PeerUpdates = append(res.PeerUpdates, coderproto.PeerUpdate{ID: id[:], Kind: coderproto.KindNode, Node: protoNode(t.id, t.addr, info)})
		case !ok && t.sent != nil:
			kind, reason := c.h.s.agentGone(formatUUID(id))
			res.PeerUpdates = append(res.PeerUpdates, coderproto.PeerUpdate{ID: id[:], Kind: kind, Reason: reason})
			t.close()
			delete(c.tunnels, id)
			continue
		}
		if ok && !t.ready && t.peer != nil && t.peer.Delivered() {
			t.ready = true
			res.PeerUpdates = append(res.PeerUpdates, coderproto.PeerUpdate{ID: id[:], Kind: coderproto.KindReadyForHandshake})
		}
	}
	if len(res.PeerUpdates) == 0 {
		return nil
	}
	return c.send(&res)
}

func (c *coordination) send(r *coderproto.CoordinateResponse) error {
	return c.st.MsgSend(&coderproto.Raw{B: r.Marshal()}, coderproto.Encoding{})
}

// closeAll removes the client from every agent's netmap.
func (c *coordination) closeAll() {
	for id, t := range c.tunnels {
		t.close()
		delete(c.tunnels, id)
	}
}

func (t *tunnel) close() {
	t.watch.Close()
	if t.peer != nil {
		t.peer.Remove()
	}
}

// agentGone says why an agent's node left: DISCONNECTED when its workspace
// is stopping or stopped (the agent shut down), LOST otherwise (it
// vanished, as with the agent-crash fault).
func (s *Server) agentGone(agentID string) (coderproto.Kind, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[agentID]
	if a == nil || a.lifecycle == "off" || s.workspaces[a.workspaceID] == nil || s.workspaces[a.workspaceID].machine == nil {
		return coderproto.KindDisconnected, "workspace agent disconnected: the workspace stopped"
	}
	return coderproto.KindLost, "workspace agent lost: it left the tailnet without disconnecting"
}

// peerNode converts the client's node from update_self.
func peerNode(n *coderproto.Node) (tailnetlab.PeerNode, error) {
	var out tailnetlab.PeerNode
	if err := out.Key.UnmarshalBinary(n.Key); err != nil {
		return out, fmt.Errorf("node key: %w", err)
	}
	if n.Disco != "" {
		if err := out.Disco.UnmarshalText([]byte(n.Disco)); err != nil {
			return out, fmt.Errorf("disco key %q: %w", n.Disco, err)
		}
	}
	out.HomeDERP = int(n.PreferredDERP)
	for _, s := range n.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("address %q: %w", s, err)
		}
		out.Addresses = append(out.Addresses, p)
	}
	for _, s := range n.Endpoints {
		ep, err := netip.ParseAddrPort(s)
		if err != nil {
			return out, fmt.Errorf("endpoint %q: %w", s, err)
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	out.Hostname = "coder-client"
	return out, nil
}

// protoNode renders an agent's lab node for the client, with the agent's
// Coder address addr as its only address, as a real agent's (the lab
// node's own addresses are the lab's business).
func protoNode(id [16]byte, addr netip.Addr, info tailnetlab.NodeInfo) *coderproto.Node {
	kb, _ := info.Key.MarshalBinary()
	db, _ := info.Disco.MarshalText()
	n := &coderproto.Node{AsOf: time.Now(), Key: kb, Disco: string(db), PreferredDERP: int32(info.HomeDERP)}
	for _, b := range id[8:] {
		n.ID = n.ID<<8 | int64(b)
	}
	n.ID &= 1<<62 - 1
	p := netip.PrefixFrom(addr, addr.BitLen()).String()
	n.Addresses = []string{p}
	n.AllowedIPs = []string{p}
	for _, ep := range info.Endpoints {
		n.Endpoints = append(n.Endpoints, ep.String())
	}
	if info.Disco.IsZero() {
		n.Disco = ""
	}
	return n
}

func sameNode(a, b tailnetlab.NodeInfo) bool {
	return a.Key == b.Key && a.Disco == b.Disco && a.HomeDERP == b.HomeDERP &&
		slicesEqual(a.Endpoints, b.Endpoints) && slicesEqual(a.Addresses, b.Addresses)
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func tunnelID(b []byte) ([16]byte, error) {
	var id [16]byte
	if len(b) != 16 {
		return id, fmt.Errorf("tunnel ID of %d bytes, want a 16-byte UUID", len(b))
	}
	copy(id[:], b)
	return id, nil
}
