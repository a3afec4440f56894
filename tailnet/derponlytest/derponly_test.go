package derponlytest_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/tailnet"
)

func TestMain(m *testing.M) {
	tailnet.ForceDERPOnly()
	os.Exit(egressguard.Run(m.Run))
}

func TestPathStaysDERP(t *testing.T) {
	lab, err := tailnetlab.Start(context.Background(), tailnetlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mk := func(name string, tags ...string) *tailnet.Node {
		n, err := tailnet.New(tailnet.Config{ControlURL: lab.ControlURL(), AuthKey: lab.AuthKey(), Hostname: name, AdvertiseTags: tags})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if _, err := n.Up(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ws := mk("ws", tailnetlab.WorkspaceTag)
	ln, err := ws.Listen("tcp", ":22")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	cli := mk("client")
	conn, info, err := cli.Dial(ctx, "tcp", "ws:22")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Logf("dial %v via %s", info.Duration, info.Path)
	// Keep traffic flowing for a while: a direct path would normally be
	// found well within this time (see the tailnet package tests).
	buf := make([]byte, 4)
	for i := range 30 {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatal(err)
		}
		p, err := cli.Path(ctx, "ws")
		if err != nil {
			t.Fatal(err)
		}
		if p != tailnet.PathDERP {
			t.Fatalf("round %d: path = %s, want derp", i, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
