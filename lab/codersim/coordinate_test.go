package codersim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
	"tailscale.com/types/key"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/tailnet"
	"github.com/cdeload/cdeload/tailnet/coder/coderproto"
)

// TestMain fails the package if a test's tailnet nodes reach for the
// network beyond loopback.
func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }

// coordClient is a bare client of the coordination websocket: it speaks
// the protocol message by message, so the test sees exactly what the
// simulator sends.
type coordClient struct {
	t   *testing.T
	ws  *websocket.Conn
	mux *yamux.Session
	st  drpc.Stream
	rcv chan coderproto.CoordinateResponse
	end chan error
}

func dialCoordinate(t *testing.T, s *Server, token, agentID, version string) (*coordClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := strings.Replace(s.URL, "http", "ws", 1) + "/api/v2/workspaceagents/" + agentID + "/coordinate?version=" + version
	ws, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Coder-Session-Token": {token}}})
	if err != nil {
		return nil, res, err
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &coordClient{t: t, ws: ws, mux: mux, rcv: make(chan coderproto.CoordinateResponse, 16), end: make(chan error, 1)}
	t.Cleanup(c.close)
	c.st = c.stream(coderproto.RPCCoordinate)
	go func() {
		for {
			var m coderproto.Raw
			if err := c.st.MsgRecv(&m, coderproto.Encoding{}); err != nil {
				c.end <- err
				return
			}
			var r coderproto.CoordinateResponse
			if err := r.Unmarshal(m.B); err != nil {
				c.end <- err
				return
			}
			c.rcv <- r
		}
	}()
	return c, res, nil
}

func (c *coordClient) stream(rpc string) drpc.Stream {
	c.t.Helper()
	ys, err := c.mux.OpenStream()
	if err != nil {
		c.t.Fatal(err)
	}
	st, err := drpcconn.New(ys).NewStream(context.Background(), rpc, coderproto.Encoding{})
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

func (c *coordClient) send(r coderproto.CoordinateRequest) {
	c.t.Helper()
	if err := c.st.MsgSend(&coderproto.Raw{B: r.Marshal()}, coderproto.Encoding{}); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next peer update (or the stream's error response).
func (c *coordClient) next() (coderproto.PeerUpdate, string) {
	c.t.Helper()
	for {
		var r coderproto.CoordinateResponse
		select {
		case r = <-c.rcv:
		case err := <-c.end:
			// The reader queues a response before it reports the end: a
			// response sent just before the server ended the stream is
			// still to be read.
			select {
			case r = <-c.rcv:
				c.end <- err
			default:
				c.t.Fatalf("coordination ended: %v", err)
			}
		case <-time.After(15 * time.Second):
			c.t.Fatal("no peer update within 15 s")
		}
		if r.Error != "" {
			return coderproto.PeerUpdate{}, r.Error
		}
		if len(r.PeerUpdates) > 0 {
			u := r.PeerUpdates[0]
			if len(r.PeerUpdates) > 1 {
				go func() { c.rcv <- coderproto.CoordinateResponse{PeerUpdates: r.PeerUpdates[1:]} }()
			}
			return u, ""
		}
	}
}

// expect reads updates until one of kind arrives (NODE updates may repeat
// as the agent's node changes).
func (c *coordClient) expect(kind coderproto.Kind) coderproto.PeerUpdate {
	c.t.Helper()
	for {
		u, e := c.next()
		if e != "" {
			c.t.Fatalf("coordinator error %q while waiting for %s", e, kind)
		}
		if u.Kind == kind {
			return u
		}
		if u.Kind != coderproto.KindNode && u.Kind != coderproto.KindReadyForHandshake {
			c.t.Fatalf("got %s (%s) while waiting for %s", u.Kind, u.Reason, kind)
		}
	}
}

func (c *coordClient) close() {
	c.mux.Close()
	c.ws.CloseNow()
}

// coordLab is a simulator on a real lab tailnet with one workspace whose
// agent is a lab node holding the agent's Coder address.
type coordLab struct {
	tl      *tailnetlab.Lab
	s       *Server
	c       rawClient
	wsID    string
	agentID string
	addr    netip.Addr
}

func startCoordLab(t *testing.T) *coordLab {
	t.Helper()
	tl, err := tailnetlab.Start(context.Background(), tailnetlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	s, c := start(t, Config{Tailnet: tl})
	wsID := createWorkspace(t, c, "coord")
	b := pollBuild(t, c, wsID, "agent connected", func(b map[string]any) bool {
		a := firstAgent(b)
		return a != nil && a["status"] == "connected"
	})
	agentID := firstAgent(b)["id"].(string)
	return &coordLab{tl: tl, s: s, c: c, wsID: wsID, agentID: agentID, addr: netip.MustParseAddr(coderAgentAddress(agentID))}
}

// joinAgent starts the agent's node on the lab tailnet.
func (l *coordLab) joinAgent(t *testing.T, hostname string) *tailnet.Node {
	t.Helper()
	t.Cleanup(l.tl.AssignAddress(hostname, l.addr))
	n, err := tailnet.New(tailnet.Config{ControlURL: l.tl.ControlURL(), AuthKey: l.tl.AuthKey(), Hostname: hostname,
		AdvertiseTags: []string{tailnetlab.WorkspaceTag}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func clientNode(t *testing.T) (*coderproto.Node, key.NodePublic) {
	k := key.NewNode().Public()
	kb, _ := k.MarshalBinary()
	db, _ := key.NewDisco().Public().MarshalText()
	return &coderproto.Node{ID: 42, Key: kb, Disco: string(db), PreferredDERP: 1,
		Addresses: []string{"fd7a:115c:a1e0:ffff::1/128"}, AllowedIPs: []string{"fd7a:115c:a1e0:ffff::1/128"}}, k
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not true after 10 s: %s", what)
		}
	}
}

func TestConnectionInfo(t *testing.T) {
	l := startCoordLab(t)
	st, _, body, _ := l.c.do("GET", "/api/v2/workspaceagents/"+l.agentID+"/connection", nil)
	if st != 200 {
		t.Fatalf("connection info: %d %v", st, body)
	}
	raw, _ := json.Marshal(body)
	var ci coderproto.ConnectionInfo
	if err := json.Unmarshal(raw, &ci); err != nil {
		t.Fatal(err)
	}
	relay := l.tl.DERPMap().Regions[1].Nodes[0]
	r := ci.DERPMap.Regions[1]
	if r == nil || r.EmbeddedRelay || len(r.Nodes) != 1 || r.Nodes[0].ForceHTTP || r.Nodes[0].HostName != "127.0.0.1" || r.Nodes[0].DERPPort != relay.DERPPort ||
		ci.DisableDirectConnections || ci.HostnameSuffix != "coder" {
		t.Fatalf("connection info %s: want region 1, the lab's relay on 127.0.0.1:%d over https, direct connections allowed", raw, relay.DERPPort)
	}
	if st, _, _, _ := l.c.do("GET", "/api/v2/workspaceagents/"+newUUID()+"/connection", nil); st != 404 {
		t.Errorf("connection info of an unknown agent: %d, want 404", st)
	}
	// A deployment that blocks direct connections says so.
	s3, c3 := start(t, Config{Tailnet: l.tl, DisableDirectConnections: true})
	wsID := createWorkspace(t, c3, "blocked")
	b := pollBuild(t, c3, wsID, "agent connected", func(b map[string]any) bool { return firstAgent(b) != nil })
	_, _, body3, _ := c3.do("GET", "/api/v2/workspaceagents/"+firstAgent(b)["id"].(string)+"/connection", nil)
	if body3["disable_direct_connections"] != true {
		t.Errorf("connection info of %s with DisableDirectConnections: %v", s3.URL, body3)
	}
	// Without a tailnet there is no such endpoint.
	_, c2 := start(t, Config{})
	if st, _, _, _ := c2.do("GET", "/api/v2/workspaceagents/"+l.agentID+"/connection", nil); st != 404 {
		t.Errorf("connection info without a tailnet: %d, want 404", st)
	}
}

func TestCoordinateRejectsBadRequests(t *testing.T) {
	l := startCoordLab(t)
	if _, res, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "1.0"); err == nil || res == nil || res.StatusCode != 400 {
		t.Errorf("version 1.0: %v, want 400", err)
	}
	if _, res, err := dialCoordinate(t, l.s, "bad-token", l.agentID, "2.0"); err == nil || res == nil || res.StatusCode != 401 {
		t.Errorf("bad token: %v, want 401", err)
	}
	c, _, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := parseUUID(newUUID())
	c.send(coderproto.CoordinateRequest{AddTunnel: other[:]})
	if _, e := c.next(); !strings.Contains(e, "only reaches agent "+l.agentID) {
		t.Errorf("tunnel to another agent: error %q, want one naming the websocket's agent", e)
	}
}

func TestCoordinateTunnelLifecycle(t *testing.T) {
	l := startCoordLab(t)
	agent := l.joinAgent(t, "agent-a")
	c, _, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := clientNode(t)
	id, _ := parseUUID(l.agentID)
	c.send(coderproto.CoordinateRequest{UpdateSelf: self})
	c.send(coderproto.CoordinateRequest{AddTunnel: id[:]})

	// The agent's node: its Coder address only, a key, a home DERP.
	u := c.expect(coderproto.KindNode)
	if !slices.Equal(u.ID, id[:]) || u.Node == nil || len(u.Node.Key) == 0 || u.Node.PreferredDERP != 1 ||
		!slices.Equal(u.Node.Addresses, []string{l.addr.String() + "/128"}) {
		t.Fatalf("NODE update %+v: want the agent's node at %s with home DERP 1", u, l.addr)
	}
	c.expect(coderproto.KindReadyForHandshake)
	// The client is a peer of the agent's node (which sees no generator).
	eventuallyTrue(t, "the agent sees the client", func() bool { return agent.NumPeers() == 1 })

	c.send(coderproto.CoordinateRequest{RemoveTunnel: id[:]})
	eventuallyTrue(t, "remove_tunnel takes the client out of the agent's netmap", func() bool { return agent.NumPeers() == 0 })

	c.send(coderproto.CoordinateRequest{AddTunnel: id[:]})
	c.expect(coderproto.KindNode)
	eventuallyTrue(t, "the tunnel is back", func() bool { return agent.NumPeers() == 1 })

	// The agent vanishes while the API has it running: LOST.
	agent.Close()
	if u := c.expect(coderproto.KindLost); !slices.Equal(u.ID, id[:]) || u.Reason == "" {
		t.Errorf("LOST update %+v: want the agent's ID and a reason", u)
	}

	// A new agent node comes back; the workspace then stops: DISCONNECTED.
	agent2 := l.joinAgent(t, "agent-b")
	c.send(coderproto.CoordinateRequest{AddTunnel: id[:]})
	c.expect(coderproto.KindNode)
	eventuallyTrue(t, "the new agent node sees the client", func() bool { return agent2.NumPeers() == 1 })
	st, _, _, _ := l.c.do("POST", "/api/v2/workspaces/"+l.wsID+"/builds", map[string]any{"transition": "stop"})
	if st != 201 {
		t.Fatalf("stop build: %d", st)
	}
	pollBuild(t, l.c, l.wsID, "stopped", func(b map[string]any) bool { return b["status"] == "stopped" })
	agent2.Close()
	if u := c.expect(coderproto.KindDisconnected); !slices.Equal(u.ID, id[:]) {
		t.Errorf("DISCONNECTED update %+v: want the agent's ID", u)
	}
}

func TestCoordinateDisconnectRemovesTheClient(t *testing.T) {
	l := startCoordLab(t)
	agent := l.joinAgent(t, "agent-d")
	c, _, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := clientNode(t)
	id, _ := parseUUID(l.agentID)
	c.send(coderproto.CoordinateRequest{UpdateSelf: self, AddTunnel: id[:]})
	c.expect(coderproto.KindReadyForHandshake)
	eventuallyTrue(t, "the agent sees the client", func() bool { return agent.NumPeers() == 1 })
	c.send(coderproto.CoordinateRequest{Disconnect: true})
	select {
	case <-c.end:
	case <-time.After(10 * time.Second):
		t.Fatal("the coordinate stream did not end after Disconnect")
	}
	eventuallyTrue(t, "the client is out of the agent's netmap", func() bool { return agent.NumPeers() == 0 })

	// A websocket that just drops has the same effect.
	c2, _, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	c2.send(coderproto.CoordinateRequest{UpdateSelf: self, AddTunnel: id[:]})
	c2.expect(coderproto.KindReadyForHandshake)
	eventuallyTrue(t, "the agent sees the second client", func() bool { return agent.NumPeers() == 1 })
	c2.close()
	eventuallyTrue(t, "the dropped client is out of the agent's netmap", func() bool { return agent.NumPeers() == 0 })
}

func TestStreamDERPMaps(t *testing.T) {
	l := startCoordLab(t)
	c, _, err := dialCoordinate(t, l.s, l.s.AdminToken, l.agentID, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	st := c.stream(coderproto.RPCStreamDERPMaps)
	if err := st.MsgSend(&coderproto.Raw{}, coderproto.Encoding{}); err != nil {
		t.Fatal(err)
	}
	var m coderproto.Raw
	if err := st.MsgRecv(&m, coderproto.Encoding{}); err != nil {
		t.Fatal(err)
	}
	var dm coderproto.DERPMap
	if err := dm.Unmarshal(m.B); err != nil {
		t.Fatal(err)
	}
	relay := l.tl.DERPMap().Regions[1].Nodes[0]
	if r, ok := dm.Regions[1]; !ok || r.EmbeddedRelay || len(r.Nodes) != 1 || r.Nodes[0].ForceHTTP || int(r.Nodes[0].DERPPort) != relay.DERPPort {
		t.Fatalf("streamed DERP map %+v: want region 1 with the lab's relay over https on port %d", dm, relay.DERPPort)
	}
}
