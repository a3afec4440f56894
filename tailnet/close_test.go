package tailnet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet"
)

// closeLimit bounds Node.Close in the tests below. Without the fix Close
// never returns once more than ~500 TCP endpoints are connected; with it,
// Close takes about a second (one TIME-WAIT) after heavy churn.
const closeLimit = 20 * time.Second

// closeWithin closes n and fails the test if Close does not return within
// closeLimit. It returns how long Close took.
func closeWithin(t *testing.T, n *tailnet.Node, after string) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close after %s: %v", after, err)
		}
		return time.Since(start)
	case <-time.After(closeLimit):
		t.Fatalf("Node.Close did not return within %v after %s: the node's TCP stack is stuck "+
			"sending a RST per connected endpoint into its full outbound queue (see tailnet/netstack.go)", closeLimit, after)
		return 0
	}
}

// churn dials addr n times from cli with a few workers, echoing one byte
// and closing each connection (the client closes first, so each ends in
// TIME-WAIT on cli).
func churn(t testing.TB, cli *tailnet.Node, addr string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var next atomic.Int64
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 1)
			for next.Add(1) <= int64(n) {
				c, _, err := cli.Dial(ctx, "tcp", addr)
				if err != nil {
					errc <- err
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Write(buf)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatalf("churn: %v", err)
	}
}

// openConns dials n connections from cli to addr and keeps them open.
func openConns(t *testing.T, cli *tailnet.Node, addr string, n int) []net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, _, err := cli.Dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, "x")
		conns = append(conns, c)
	}
	return conns
}

func TestCloseAfterManyShortConns(t *testing.T) {
	ws, _ := upNode(t, cfg("ws-churn", tailnetlab.WorkspaceTag))
	echoOn(t, ws)
	cli, _ := upNode(t, cfg("client-churn"))
	const n = 3000
	churn(t, cli, ws.Addr().String()+":22", n)
	busy := tailnet.TCPConnected(cli)
	if busy < 0 {
		t.Fatal("the node's TCP stack does not report its connected endpoints")
	}
	d := closeWithin(t, cli, "3000 short-lived connections")
	// With more than ~512 connected endpoints at Close, the unfixed stack
	// hangs; fewer (a slow machine) only exercises the TIME-WAIT tuning.
	t.Logf("%d connections; %d connected endpoints at Close; Close took %v", n, busy, d)
}

func TestCloseClosesOpenConns(t *testing.T) {
	ws, _ := upNode(t, cfg("ws-open", tailnetlab.WorkspaceTag))
	echoOn(t, ws)
	cli, _ := upNode(t, cfg("client-open"))
	const n = 600
	conns := openConns(t, cli, ws.Addr().String()+":22", n)
	if got := tailnet.OpenConns(cli); got != n {
		t.Fatalf("node tracks %d open connections, want %d", got, n)
	}
	conns[0].Close()
	if got := tailnet.OpenConns(cli); got != n-1 {
		t.Fatalf("after closing one, node tracks %d open connections, want %d", got, n-1)
	}
	d := closeWithin(t, cli, "600 open connections")
	t.Logf("Close with %d open connections took %v", n-1, d)
	for i, c := range conns[1:] {
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatalf("conn %d: Write after the node closed succeeded", i+1)
		}
	}
	if got := tailnet.OpenConns(cli); got != 0 {
		t.Fatalf("node tracks %d open connections after Close", got)
	}
	if _, _, err := cli.Dial(context.Background(), "tcp", ws.Addr().String()+":22"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close = %v, want net.ErrClosed", err)
	}
}

// TestCloseWithPeerGone is the case the graceful path cannot drain: the
// peer left, so the client's closed connections keep retransmitting their
// FIN (LAST-ACK) and stay connected. Close must still return.
func TestCloseWithPeerGone(t *testing.T) {
	ws, _ := upNode(t, cfg("ws-gone", tailnetlab.WorkspaceTag))
	echoOn(t, ws)
	cli, _ := upNode(t, cfg("client-gone"))
	if !tailnet.HasOutboundDrainer(cli) {
		t.Fatal("Close's fallback cannot find the netstack outbound queue in this tailscale version")
	}
	const n = 600
	conns := openConns(t, cli, ws.Addr().String()+":22", n)
	closeWithin(t, ws, "600 accepted connections")
	buf := make([]byte, 1)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != io.EOF {
			t.Fatalf("conn %d: Read after the workspace closed = %v, want EOF", i, err)
		}
		c.Close() // LAST-ACK towards a peer that is gone
	}
	busy := tailnet.TCPConnected(cli)
	if busy < tailnet.QuiesceConnected {
		t.Fatalf("only %d connected endpoints after the peer left; the test needs >= %d", busy, tailnet.QuiesceConnected)
	}
	tailnet.SetQuiesceTimeout(cli, 200*time.Millisecond)
	d := closeWithin(t, cli, "600 connections to a peer that is gone")
	t.Logf("%d connected endpoints at Close; Close took %v", busy, d)
}
