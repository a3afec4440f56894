package tailnetlab_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"tailscale.com/types/key"
)

// A node given an extra (Coder agent) address is reachable at it, a
// watch follows it, and an external peer appears in its netmap only.
func TestCoderBridge(t *testing.T) {
	l := start(t, tailnetlab.Config{})
	extra := netip.MustParseAddr("fd7a:115c:a1e0:4a2b::1234")
	release := l.AssignAddress("agent", extra)
	defer release()
	changed := make(chan struct{}, 1)
	w := l.WatchAddress(extra, changed)
	defer w.Close()
	if _, ok := w.Node(); ok {
		t.Fatal("watch reports a node before it joined")
	}
	agent := join(t, l, "agent", tailnetlab.WorkspaceTag)
	other := join(t, l, "other", tailnetlab.WorkspaceTag)
	gen := join(t, l, "gen")

	info, ok := w.Node()
	if !ok || info.Key.IsZero() || !slices.Contains(info.Addresses, netip.PrefixFrom(extra, 128)) {
		t.Fatalf("watch: got %+v, %v; want the agent's node with address %s", info, ok, extra)
	}

	ln, err := agent.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := gen.Dial(ctx, "tcp", net.JoinHostPort(extra.String(), "80"))
	if err != nil {
		t.Fatalf("dial the agent at its extra address: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo over the extra address: %q, %v", buf, err)
	}
	c.Close()

	base := agent.NumPeers()
	p := l.AddPeer(extra, tailnetlab.PeerNode{Key: key.NewNode().Public(), Disco: key.NewDisco().Public(), HomeDERP: 1,
		Addresses: []netip.Prefix{netip.MustParsePrefix("fd7a:115c:a1e0:ffff::1/128")}}, nil)
	eventually(t, "the agent sees the external peer", func() bool { return agent.NumPeers() == base+1 })
	if !p.Delivered() {
		t.Error("the agent has the external peer but Delivered is false")
	}
	if n := other.NumPeers(); n != 1 {
		t.Errorf("another workspace has %d peers, want 1 (the generator only)", n)
	}
	p.Remove()
	eventually(t, "the external peer is gone", func() bool { return agent.NumPeers() == base })

	for len(changed) > 0 {
		<-changed
	}
	agent.Close()
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("no change signalled when the agent left")
	}
	eventually(t, "the watch reports the agent gone", func() bool { _, ok := w.Node(); return !ok })
}
