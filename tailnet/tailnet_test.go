package tailnet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/tailnet"
)

var lab *tailnetlab.Lab

func TestMain(m *testing.M) {
	os.Exit(egressguard.Run(func() int {
		var err error
		lab, err = tailnetlab.Start(context.Background(), tailnetlab.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer lab.Close()
		return m.Run()
	}))
}

func cfg(name string, tags ...string) tailnet.Config {
	return tailnet.Config{ControlURL: lab.ControlURL(), AuthKey: lab.AuthKey(), Hostname: name, AdvertiseTags: tags}
}

// upNode starts a node and closes it at test end.
func upNode(t *testing.T, c tailnet.Config) (*tailnet.Node, tailnet.UpInfo) {
	t.Helper()
	n, err := tailnet.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := n.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n, info
}

// echoOn serves an echo server on the node's tailnet port 22.
func echoOn(t *testing.T, n *tailnet.Node) {
	t.Helper()
	ln, err := n.Listen("tcp", ":22")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, []byte(msg)) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestUpDialByIPAndNameThenDirect(t *testing.T) {
	ws, wsInfo := upNode(t, cfg("ws-echo", tailnetlab.WorkspaceTag))
	echoOn(t, ws)
	cli, info := upNode(t, cfg("client-a"))
	if info.HomeDERP != 1 || len(info.IPs) == 0 || info.Duration <= 0 {
		t.Fatalf("UpInfo = %+v, want home DERP 1 and tailnet IPs", info)
	}
	t.Logf("node up: workspace %v, client %v", wsInfo.Duration, info.Duration)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, di, err := cli.Dial(ctx, "tcp", ws.Addr().String()+":22")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Logf("dial by IP: %v via %s", di.Duration, di.Path)
	if di.Peer != ws.Addr() {
		t.Fatalf("dialled %v, want %v", di.Peer, ws.Addr())
	}
	cc := tailnet.NewCountingConn(conn)
	roundTrip(t, cc, "hello over the tailnet")
	if cc.BytesSent() != 22 || cc.BytesReceived() != 22 {
		t.Fatalf("counted sent=%d received=%d, want 22/22", cc.BytesSent(), cc.BytesReceived())
	}

	for _, name := range []string{"ws-echo", "WS-ECHO", "ws-echo." + tailnetlab.Domain, "ws-echo." + tailnetlab.Domain + "."} {
		c2, di2, err := cli.Dial(ctx, "tcp", name+":22")
		if err != nil {
			t.Fatalf("dial by name %q: %v", name, err)
		}
		if di2.Peer != ws.Addr() {
			t.Fatalf("name %q resolved to %v, want %v", name, di2.Peer, ws.Addr())
		}
		roundTrip(t, c2, "by name")
		c2.Close()
	}

	// The path upgrades from DERP to direct UDP on loopback.
	deadline := time.Now().Add(10 * time.Second)
	var p tailnet.Path
	for time.Now().Before(deadline) {
		roundTrip(t, cc, "x")
		p, err = cli.Path(ctx, ws.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if p == tailnet.PathDirect {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p != tailnet.PathDirect {
		t.Fatalf("path = %s after 10s, want direct", p)
	}
	if p2, err := cli.Path(ctx, "ws-echo"); err != nil || p2 != tailnet.PathDirect {
		t.Fatalf("Path by name = %s, %v", p2, err)
	}
}

func TestDialNonPeerRefused(t *testing.T) {
	cli, _ := upNode(t, cfg("client-refuse"))
	for _, addr := range []string{"127.0.0.1:22", "10.1.2.3:22", "[::1]:22"} {
		start := time.Now()
		_, _, err := cli.Dial(context.Background(), "tcp", addr)
		if !errors.Is(err, tailnet.ErrNotPeer) || time.Since(start) > time.Second {
			t.Fatalf("Dial(%s) = %v after %v, want immediate ErrNotPeer", addr, err, time.Since(start))
		}
	}
	for _, addr := range []string{"100.100.100.100:22", "no-such-workspace:22", "example.com:443"} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, _, err := cli.Dial(ctx, "tcp", addr)
		cancel()
		if !errors.Is(err, tailnet.ErrNotPeer) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial(%s) = %v, want ErrNotPeer after the deadline", addr, err)
		}
	}
	if _, err := cli.Path(context.Background(), "no-such-workspace"); !errors.Is(err, tailnet.ErrNotPeer) {
		t.Fatalf("Path(no-such-workspace) = %v, want ErrNotPeer", err)
	}
}

func TestConfigRefusesPublicControl(t *testing.T) {
	for _, u := range []string{"", "https://controlplane.tailscale.com", "ftp://x"} {
		if _, err := tailnet.New(tailnet.Config{ControlURL: u}); err == nil {
			t.Fatalf("New with ControlURL %q succeeded", u)
		}
	}
}

func settleGoroutines(limit int, d time.Duration) int {
	deadline := time.Now().Add(d)
	n := runtime.NumGoroutine()
	for n > limit && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := settleGoroutines(0, 500*time.Millisecond)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	n, err := tailnet.New(cfg("client-leak"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Up(ctx); err != nil {
		t.Fatal(err)
	}
	during := runtime.NumGoroutine()
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	t.Logf("one node: %d goroutines, %.1f MB heap in use", during-base, float64(ms1.HeapInuse-ms0.HeapInuse)/1e6)
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %v", d)
	}
	// The lab's server side keeps a few goroutines per connection until it
	// notices the close; allow a small slack.
	if after := settleGoroutines(base+3, 5*time.Second); after > base+3 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutines: %d before, %d after Close\n%s", base, after, buf)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.Up(ctx); err == nil {
		t.Fatal("Up after Close succeeded")
	}
}

func TestCloseWhileStarting(t *testing.T) {
	n, err := tailnet.New(cfg("client-early-close"))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := n.Up(context.Background())
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			// Up may have won the race; the node is closed either way.
			t.Log("Up finished before Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Up did not return after Close")
	}
}

func TestPoolSharesOneNode(t *testing.T) {
	p := tailnet.NewPool()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leases := make(chan *tailnet.Lease, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			l, err := p.Acquire(ctx, cfg("shared-gen"))
			if err != nil {
				errs <- err
				return
			}
			leases <- l
		}()
	}
	var got []*tailnet.Lease
	for range 8 {
		select {
		case l := <-leases:
			got = append(got, l)
		case err := <-errs:
			t.Fatal(err)
		}
	}
	for _, l := range got[1:] {
		if l.Node() != got[0].Node() {
			t.Fatal("leases for one config got different nodes")
		}
	}
	if p.Len() != 1 || got[0].UpInfo().HomeDERP == 0 {
		t.Fatalf("pool has %d nodes, up info %+v", p.Len(), got[0].UpInfo())
	}
	for _, l := range got {
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if p.Len() != 0 {
		t.Fatalf("pool still has %d nodes after releasing all", p.Len())
	}
	if _, _, err := got[0].Node().Dial(ctx, "tcp", "ws:22"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Dial on released shared node = %v, want closed", err)
	}
}
