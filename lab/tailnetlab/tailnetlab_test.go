package tailnetlab_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/tailnet"
)

func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }

func start(t *testing.T, cfg tailnetlab.Config) *tailnetlab.Lab {
	t.Helper()
	l, err := tailnetlab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func join(t *testing.T, l *tailnetlab.Lab, name string, tags ...string) *tailnet.Node {
	t.Helper()
	n, err := tailnet.New(tailnet.Config{ControlURL: l.ControlURL(), AuthKey: l.AuthKey(), Hostname: name, AdvertiseTags: tags})
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

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not true after 5s: %s", what)
}

func TestHubAndSpokeVisibility(t *testing.T) {
	l := start(t, tailnetlab.Config{})
	w1 := join(t, l, "w1", tailnetlab.WorkspaceTag)
	w2 := join(t, l, "w2", tailnetlab.WorkspaceTag)
	g1 := join(t, l, "g1")
	g2 := join(t, l, "g2")
	eventually(t, "generators see 3 peers", func() bool { return g1.NumPeers() == 3 && g2.NumPeers() == 3 })
	eventually(t, "workspaces see only the 2 generators", func() bool { return w1.NumPeers() == 2 && w2.NumPeers() == 2 })
	if l.NumOnline() != 4 {
		t.Fatalf("online = %d, want 4", l.NumOnline())
	}
	// A workspace cannot reach another workspace: it is not a peer.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := w1.Dial(ctx, "tcp", "w2:22"); !errors.Is(err, tailnet.ErrNotPeer) {
		t.Fatalf("workspace-to-workspace dial: %v, want ErrNotPeer", err)
	}
	// A node that leaves disappears from its peers' netmaps.
	w2.Close()
	eventually(t, "w2 gone from the generators", func() bool { return g1.NumPeers() == 2 && g2.NumPeers() == 2 })
	eventually(t, "lab counts 3 online", func() bool { return l.NumOnline() == 3 })
}

func TestFullMesh(t *testing.T) {
	l := start(t, tailnetlab.Config{FullMesh: true})
	w1 := join(t, l, "w1", tailnetlab.WorkspaceTag)
	w2 := join(t, l, "w2", tailnetlab.WorkspaceTag)
	eventually(t, "workspaces see each other", func() bool { return w1.NumPeers() == 1 && w2.NumPeers() == 1 })
}

func TestWrongAuthKeyRefused(t *testing.T) {
	l := start(t, tailnetlab.Config{})
	n, err := tailnet.New(tailnet.Config{ControlURL: l.ControlURL(), AuthKey: "tskey-auth-wrong", Hostname: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := n.Up(ctx); err == nil {
		t.Fatal("node with a wrong auth key joined")
	} else {
		t.Logf("refused: %v", err)
	}
	if l.NumOnline() != 0 {
		t.Fatalf("online = %d", l.NumOnline())
	}
}

func TestConfigRefusesNonLoopback(t *testing.T) {
	for _, h := range []string{"0.0.0.0", "192.168.1.1", "::1", "localhost"} {
		_, err := tailnetlab.Start(context.Background(), tailnetlab.Config{Host: h})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("Host %q: %v", h, err)
		}
	}
}
