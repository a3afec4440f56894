package tailnet_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet"
)

// TestNodeSocketsTakeLoopbackPacketsOnly checks the kernel sockets of a
// lab node (its control server is on loopback): tsnet binds them to the
// wildcard address, so each must carry the filter that drops packets from
// outside addresses, and tailnet traffic must still flow.
func TestNodeSocketsTakeLoopbackPacketsOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket filters are Linux-only")
	}
	ws, _ := upNode(t, cfg("ws-sockets", tailnetlab.WorkspaceTag))
	echoOn(t, ws)
	cli, _ := upNode(t, cfg("client-sockets"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []*tailnet.Node{ws, cli} {
		ms, peerAPI, err := tailnet.NodeSockets(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: magicsock %v, peer API %v", n.Hostname(), ms, peerAPI)
		if len(ms) == 0 {
			t.Fatalf("%s: no magicsock UDP socket found", n.Hostname())
		}
		for _, s := range ms {
			if s.Local.Addr().IsUnspecified() && s.FilterLen == 0 {
				t.Errorf("%s: %v listens on every address and takes packets from anywhere", n.Hostname(), s)
			}
			if !s.Local.Addr().IsUnspecified() && !s.Local.Addr().IsLoopback() {
				t.Errorf("%s: %v is bound to an outside address", n.Hostname(), s)
			}
		}
		// The peer API is served through the node's own TCP stack; no
		// kernel listener may take connections from other hosts.
		for _, s := range peerAPI {
			if !s.Local.Addr().IsLoopback() {
				t.Errorf("%s: peer API socket %v accepts connections from other hosts", n.Hostname(), s)
			}
		}
	}
	c, path, err := cli.Dial(ctx, "tcp", ws.Addr().String()+":22")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "through filtered sockets")
	t.Logf("path %v", path.Path)
}
