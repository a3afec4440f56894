package tailnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet"
)

// A listen-only node (a lab workspace) is a full peer that others dial and
// that counts its peers, but it refuses to dial itself.
func TestListenOnlyNodeServesButDoesNotDial(t *testing.T) {
	c := cfg("ws-listen-only", tailnetlab.WorkspaceTag)
	c.ListenOnly = true
	ws, _ := upNode(t, c)
	echoOn(t, ws)
	cli, _ := upNode(t, cfg("client-listen-only"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := cli.Dial(ctx, "tcp", "ws-listen-only:22")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roundTrip(t, conn, "to a listen-only node")

	// It counts the same peers as a workspace that keeps a peer index:
	// the tailnet's load generators (this client, and any other test's).
	indexed, _ := upNode(t, cfg("ws-indexed", tailnetlab.WorkspaceTag))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n := ws.NumPeers(); n >= 1 && n == indexed.NumPeers() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, want := ws.NumPeers(), indexed.NumPeers(); n < 1 || n != want {
		t.Fatalf("listen-only workspace counts %d peers, want %d (as a workspace with a peer index), at least the client", n, want)
	}
	start := time.Now()
	if _, _, err := ws.Dial(ctx, "tcp", cli.Addr().String()+":22"); !errors.Is(err, tailnet.ErrListenOnly) || time.Since(start) > time.Second {
		t.Fatalf("Dial from a listen-only node = %v after %v, want immediate ErrListenOnly", err, time.Since(start))
	}
	if _, err := ws.Path(ctx, cli.Addr().String()); !errors.Is(err, tailnet.ErrListenOnly) {
		t.Fatalf("Path from a listen-only node = %v, want ErrListenOnly", err)
	}
}
