package coder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/tailnet"
	"storj.io/drpc"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// ErrAgentGone is wrapped by the errors of dials and connections to an
// agent that left the tailnet (the coordinator reported it DISCONNECTED or
// LOST, or the coordination session ended).
var ErrAgentGone = errors.New("workspace agent left the tailnet")

// agent is the coordination with one workspace agent.
type agent struct {
	c      *Client
	id     string
	uuid   [16]byte
	addr   netip.Addr
	nodeID tailcfg.NodeID

	sess   *session
	stream drpc.Stream
	endRPC func()
	sendMu sync.Mutex
	loop   sync.WaitGroup

	mu         sync.Mutex
	node       *tailcfg.Node // the agent's node, once known
	ready      bool          // READY_FOR_HANDSHAKE received (or waited for)
	readyTimer *time.Timer
	published  bool
	inNetmap   chan struct{} // closed when the agent is in the netmap
	err        error         // why the agent is gone
	gone       chan struct{} // closed with err set
	conns      map[*agentConn]struct{}
}

// agentFor returns the coordination with agentID, starting it if needed.
func (c *Client) agentFor(ctx context.Context, agentID string) (*agent, error) {
	uuid, err := parseUUID(agentID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("coder tailnet: dial agent %s: %w", agentID, net.ErrClosed)
	}
	if a, ok := c.agents[agentID]; ok {
		c.mu.Unlock()
		return a, nil
	}
	addr, _ := AgentAddr(agentID)
	a := &agent{
		c: c, id: agentID, uuid: uuid, addr: addr, nodeID: agentNodeID(uuid, nodeIDOf(c.addr.Addr())),
		inNetmap: make(chan struct{}), gone: make(chan struct{}), conns: map[*agentConn]struct{}{},
	}
	c.agents[agentID] = a
	first := len(c.agents) == 1
	c.mu.Unlock()
	if err := a.start(ctx, first); err != nil {
		a.stop(err)
		return nil, err
	}
	return a, nil
}

// agentNodeID derives the agent's netmap node ID from its UUID.
func agentNodeID(u [16]byte, avoid int64) tailcfg.NodeID {
	var id int64
	for _, x := range u[8:] {
		id = id<<8 | int64(x)
	}
	id &= 1<<62 - 1
	if id == 0 || id == avoid {
		id ^= 1 << 61
	}
	return tailcfg.NodeID(id)
}

// start opens the coordination session, sends the tunnel and the node's
// state, and starts reading updates. first also streams DERP map updates
// on this session.
func (a *agent) start(ctx context.Context, first bool) error {
	sess, err := dialSession(ctx, a.c.api, a.id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.sess = sess
	a.mu.Unlock()
	st, end, err := sess.stream(context.Background(), rpcCoordinate)
	if err != nil {
		return fmt.Errorf("coder tailnet: coordinate with agent %s: %w", a.id, err)
	}
	a.sendMu.Lock()
	a.stream = st
	a.sendMu.Unlock()
	a.mu.Lock()
	a.endRPC = end
	a.mu.Unlock()
	// Read the node's state only now that the stream is set: a change
	// from here on is sent by selfChanged, one before is read here.
	a.c.mu.Lock()
	self := a.c.self
	a.c.mu.Unlock()
	if !self.Key.IsZero() {
		if err := a.send(&coordinateRequest{UpdateSelf: a.c.selfNode(self)}); err != nil {
			return err
		}
	}
	if err := a.send(&coordinateRequest{AddTunnel: a.uuid[:]}); err != nil {
		return err
	}
	a.loop.Go(a.recvLoop)
	if first {
		a.loop.Go(a.streamDERPMaps)
	}
	return nil
}

func (a *agent) send(r *coordinateRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	if a.stream == nil {
		return nil
	}
	if err := a.stream.MsgSend(&rawMessage{B: r.Marshal()}, rawEncoding{}); err != nil {
		return fmt.Errorf("coder tailnet: coordinate with agent %s: send: %w", a.id, err)
	}
	return nil
}

// sendSelf sends the node's new state; a failure ends the coordination.
func (a *agent) sendSelf(s selfState) {
	if s.Key.IsZero() {
		return
	}
	if err := a.send(&coordinateRequest{UpdateSelf: a.c.selfNode(s)}); err != nil {
		a.stop(err)
	}
}

func (a *agent) recvLoop() {
	for {
		var m rawMessage
		if err := a.stream.MsgRecv(&m, rawEncoding{}); err != nil {
			a.stop(fmt.Errorf("%w: agent %s: coordination ended: %w", ErrAgentGone, a.id, err))
			return
		}
		var res coordinateResponse
		if err := res.Unmarshal(m.B); err != nil {
			a.stop(fmt.Errorf("coder tailnet: agent %s: bad coordinate response: %w", a.id, err))
			return
		}
		if res.Error != "" {
			a.stop(fmt.Errorf("coder tailnet: agent %s: coordinator error: %s", a.id, res.Error))
			return
		}
		for _, u := range res.PeerUpdates {
			if !bytes.Equal(u.ID, a.uuid[:]) {
				continue
			}
			switch u.Kind {
			case kindNode:
				if err := a.setNode(u.Node); err != nil {
					a.c.logf("coder tailnet: agent %s: %v", a.id, err)
				}
			case kindReadyForHandshake:
				a.setReady()
			case kindDisconnected, kindLost:
				reason := u.Reason
				if reason == "" {
					reason = "no reason given"
				}
				a.stop(fmt.Errorf("%w: agent %s: coordinator reported %s (%s)", ErrAgentGone, a.id, u.Kind, reason))
				return
			}
		}
	}
}

// streamDERPMaps applies DERP map updates from coderd.
func (a *agent) streamDERPMaps() {
	st, end, err := a.sess.stream(context.Background(), rpcStreamDERPMaps)
	if err != nil {
		return
	}
	defer end()
	if err := st.MsgSend(&rawMessage{B: nil}, rawEncoding{}); err != nil {
		return
	}
	for {
		var m rawMessage
		if err := st.MsgRecv(&m, rawEncoding{}); err != nil {
			return
		}
		var pm protoDERPMap
		if err := pm.Unmarshal(m.B); err != nil {
			a.c.logf("coder tailnet: bad DERP map update: %v", err)
			continue
		}
		dm, err := a.c.derpMap(pm.JSON())
		if err != nil {
			a.c.logf("coder tailnet: DERP map update: %v", err)
			continue
		}
		a.c.mu.Lock()
		ctl := a.c.ctl
		a.c.mu.Unlock()
		if ctl != nil {
			ctl.setDERPMap(dm)
		}
	}
}

// setNode records the agent's node and publishes it once ready.
func (a *agent) setNode(pn *protoNode) error {
	if pn == nil {
		return errors.New("NODE update without a node")
	}
	n, err := a.tailcfgNode(pn)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.node = n
	if !a.ready && a.readyTimer == nil {
		a.readyTimer = time.AfterFunc(readyForHandshakeWait, a.setReady)
	}
	a.mu.Unlock()
	a.publish()
	return nil
}

func (a *agent) setReady() {
	a.mu.Lock()
	a.ready = true
	if a.readyTimer != nil {
		a.readyTimer.Stop()
	}
	a.mu.Unlock()
	a.publish()
}

// publish puts the agent into the node's netmap once both its node and
// READY_FOR_HANDSHAKE are there (a handshake before the agent knows our
// node is dropped and costs a 5 s WireGuard retry).
func (a *agent) publish() {
	a.mu.Lock()
	n, ok := a.node, a.ready && a.node != nil && a.err == nil
	a.mu.Unlock()
	if !ok {
		return
	}
	a.c.mu.Lock()
	ctl := a.c.ctl
	a.c.mu.Unlock()
	ctl.upsertPeer(n)
	a.mu.Lock()
	if !a.published {
		a.published = true
		close(a.inNetmap)
	}
	a.mu.Unlock()
}

// tailcfgNode converts the agent's coordinator node to a netmap peer.
func (a *agent) tailcfgNode(pn *protoNode) (*tailcfg.Node, error) {
	var k key.NodePublic
	if err := k.UnmarshalBinary(pn.Key); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	var dk key.DiscoPublic
	if err := dk.UnmarshalText([]byte(pn.Disco)); err != nil {
		return nil, fmt.Errorf("disco key %q: %w", pn.Disco, err)
	}
	n := &tailcfg.Node{
		ID:                a.nodeID,
		StableID:          tailcfg.StableNodeID("coder-agent-" + a.id),
		Name:              a.id + "." + a.c.ctl.domain + ".",
		Key:               k,
		DiscoKey:          dk,
		HomeDERP:          int(pn.PreferredDERP),
		MachineAuthorized: true,
		Online:            new(true),
		Hostinfo:          (&tailcfg.Hostinfo{Hostname: "agent-" + a.id}).View(),
	}
	for _, s := range pn.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", s, err)
		}
		n.Addresses = append(n.Addresses, p)
	}
	for _, s := range pn.AllowedIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("allowed IP %q: %w", s, err)
		}
		n.AllowedIPs = append(n.AllowedIPs, p)
	}
	if a.c.direct {
		for _, s := range pn.Endpoints {
			if ep, err := netip.ParseAddrPort(s); err == nil {
				n.Endpoints = append(n.Endpoints, ep)
			}
		}
	}
	return n, nil
}

// stop ends the coordination with err, closes the connections to the
// agent and removes it from the netmap and the client.
func (a *agent) stop(err error) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err = err
	close(a.gone)
	if a.readyTimer != nil {
		a.readyTimer.Stop()
	}
	conns := a.conns
	a.conns = map[*agentConn]struct{}{}
	sess, endRPC := a.sess, a.endRPC
	a.mu.Unlock()
	for c := range conns {
		c.fail(err)
	}
	a.c.mu.Lock()
	if a.c.agents[a.id] == a {
		delete(a.c.agents, a.id)
	}
	ctl := a.c.ctl
	a.c.mu.Unlock()
	if ctl != nil {
		ctl.removePeer(a.nodeID)
	}
	if !errors.Is(err, ErrAgentGone) {
		a.send(&coordinateRequest{Disconnect: true})
	}
	if endRPC != nil {
		endRPC()
	}
	if sess != nil {
		sess.close()
	}
}

// Dial connects to port on the agent agentID over the tailnet, joining
// first (see [Client.Up]) and starting the coordination with the agent if
// this is its first dial. The connection fails with an error wrapping
// [ErrAgentGone] when the agent leaves.
func (c *Client) Dial(ctx context.Context, agentID string, port int) (net.Conn, tailnet.DialInfo, error) {
	start := time.Now()
	if _, err := c.Up(ctx, agentID); err != nil {
		return nil, tailnet.DialInfo{}, err
	}
	a, err := c.agentFor(ctx, agentID)
	if err != nil {
		return nil, tailnet.DialInfo{}, err
	}
	select {
	case <-a.inNetmap:
	case <-a.gone:
		return nil, tailnet.DialInfo{}, a.goneErr()
	case <-ctx.Done():
		return nil, tailnet.DialInfo{}, fmt.Errorf("coder tailnet: dial agent %s: waiting for its node from the coordinator: %w", agentID, ctx.Err())
	}
	nc, info, err := c.Node().Dial(ctx, "tcp", net.JoinHostPort(a.addr.String(), strconv.Itoa(port)))
	if err != nil {
		select {
		case <-a.gone:
			return nil, tailnet.DialInfo{}, a.goneErr()
		default:
		}
		return nil, tailnet.DialInfo{}, fmt.Errorf("coder tailnet: dial agent %s port %d: %w", agentID, port, err)
	}
	ac := &agentConn{Conn: nc, a: a}
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		nc.Close()
		return nil, tailnet.DialInfo{}, a.goneErr()
	}
	a.conns[ac] = struct{}{}
	a.mu.Unlock()
	info.Duration = time.Since(start)
	return ac, info, nil
}

func (a *agent) goneErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Path reports how traffic to the agent flows (see [tailnet.Node.Path]).
func (c *Client) Path(ctx context.Context, agentID string) (tailnet.Path, error) {
	addr, err := AgentAddr(agentID)
	if err != nil {
		return tailnet.PathUnknown, err
	}
	n := c.Node()
	if n == nil {
		return tailnet.PathUnknown, errors.New("coder tailnet: path: not up")
	}
	return n.Path(ctx, addr.String())
}

// agentConn is a connection to an agent that fails with the agent's
// departure reason once it is gone.
type agentConn struct {
	net.Conn
	a      *agent
	failed atomic.Pointer[error]
}

func (c *agentConn) fail(err error) {
	c.failed.Store(&err)
	c.Conn.Close()
}

func (c *agentConn) wrap(err error) error {
	if p := c.failed.Load(); p != nil && err != nil {
		return *p
	}
	return err
}

func (c *agentConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	return n, c.wrap(err)
}

func (c *agentConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	return n, c.wrap(err)
}

func (c *agentConn) Close() error {
	c.a.mu.Lock()
	delete(c.a.conns, c)
	c.a.mu.Unlock()
	return c.Conn.Close()
}
