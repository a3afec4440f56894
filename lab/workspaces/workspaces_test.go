package workspaces_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/tailnetlab/egressguard"
	"github.com/cdeload/cdeload/lab/workspaces"
	"github.com/cdeload/cdeload/tailnet"
)

func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }

type env struct {
	lab   *tailnetlab.Lab
	creds *workspaces.Credentials
	mgr   *workspaces.Manager
	cli   *tailnet.Node
}

func newEnv(t *testing.T) *env {
	t.Helper()
	lab, err := tailnetlab.Start(context.Background(), tailnetlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	creds, err := workspaces.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := workspaces.NewManager(workspaces.Config{ControlURL: lab.ControlURL(), AuthKey: lab.AuthKey(), Credentials: creds}, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	cli, err := tailnet.New(tailnet.Config{ControlURL: lab.ControlURL(), AuthKey: lab.AuthKey(), Hostname: "loadgen"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{lab: lab, creds: creds, mgr: mgr, cli: cli}
}

// sshTo opens an SSH client to a workspace over the tailnet.
func (e *env) sshTo(ctx context.Context, t *testing.T, addr string) *ssh.Client {
	t.Helper()
	conn, _, err := e.cli.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The client key must parse from the exported PEM, as a user would.
	signer, err := ssh.ParsePrivateKey(e.creds.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            e.creds.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(e.creds.HostKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		conn.Close()
		t.Fatalf("ssh handshake with %s: %v", addr, err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSSHEchoAndCat(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, err := e.mgr.Start(ctx, workspaces.WorkspaceSpec{Name: "ws-one"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Start(ctx, workspaces.WorkspaceSpec{Name: "ws-one"}); !errors.Is(err, workspaces.ErrExists) {
		t.Fatalf("second start with the same name: %v, want ErrExists", err)
	}
	if _, err := e.mgr.Start(ctx, workspaces.WorkspaceSpec{Name: "Bad_Name"}); err == nil {
		t.Fatal("invalid name accepted")
	}
	for _, addr := range []string{ws.SSHAddr(), "ws-one:22"} {
		c := e.sshTo(ctx, t, addr)
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Output("echo hello lab")
		if err != nil || string(out) != "hello lab\n" {
			t.Fatalf("echo over %s: %q, %v", addr, out, err)
		}
	}
	c := e.sshTo(ctx, t, ws.SSHAddr())
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
	if _, err := in.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(out, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("cat echoed %d bytes, err %v", len(got), err)
	}
	in.Close()
	if err := s.Wait(); err != nil {
		t.Fatalf("cat exit: %v", err)
	}
	if ws.NumPeers() != 1 {
		t.Fatalf("workspace sees %d peers, want 1 (the load generator)", ws.NumPeers())
	}
}

func TestCrashFailsOpenStream(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, err := e.mgr.Start(ctx, workspaces.WorkspaceSpec{Name: "ws-crash"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.sshTo(ctx, t, ws.SSHAddr())
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	in.Write([]byte("alive"))
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.mgr.Crash("ws-crash"); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := out.Read(buf)
		readErr <- err
	}()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("read after crash returned data")
		}
		t.Logf("read failed %v after Crash: %v", time.Since(start), err)
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked 5s after Crash")
	}
	waitErr := s.Wait()
	var exitErr *ssh.ExitError
	if waitErr == nil || errors.As(waitErr, &exitErr) {
		t.Fatalf("session after crash: %v, want a missing-exit-status error", waitErr)
	}
	if _, ok := e.mgr.Get("ws-crash"); ok {
		t.Fatal("crashed workspace still listed")
	}
	// The crashed node leaves the load generator's netmap.
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	for dctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(dctx, 100*time.Millisecond)
		_, _, err := e.cli.Dial(pctx, "tcp", "ws-crash:22")
		pcancel()
		if errors.Is(err, tailnet.ErrNotPeer) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("crashed workspace still in the netmap after 3s")
}

func TestTwentyWorkspacesHubAndSpoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 tailnet nodes")
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var specs []workspaces.WorkspaceSpec
	for i := range 20 {
		specs = append(specs, workspaces.WorkspaceSpec{Name: fmt.Sprintf("ws-%02d", i)})
	}
	start := time.Now()
	wss, err := e.mgr.StartMany(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	upAll := time.Since(start)
	if len(wss) != 20 || e.mgr.Len() != 20 {
		t.Fatalf("started %d workspaces, manager has %d", len(wss), e.mgr.Len())
	}
	var mu sync.Mutex
	var dials []time.Duration
	var wg sync.WaitGroup
	for _, ws := range wss {
		wg.Go(func() {
			conn, info, err := e.cli.Dial(ctx, "tcp", ws.SSHAddr())
			if err != nil {
				t.Errorf("dial %s: %v", ws.Name(), err)
				return
			}
			defer conn.Close()
			// Read the SSH server's version banner: proves the far end.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := make([]byte, 4)
			if _, err := io.ReadFull(conn, b); err != nil || string(b) != "SSH-" {
				t.Errorf("%s: banner %q, %v", ws.Name(), b, err)
			}
			mu.Lock()
			dials = append(dials, info.Duration)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(dials)
	if len(dials) == 20 {
		t.Logf("20 workspaces up in %v; dial p50 %v max %v; all dialled within %v", upAll, dials[10], dials[19], time.Since(start))
	}
	for _, ws := range wss {
		if n := ws.NumPeers(); n != 1 {
			t.Errorf("%s sees %d peers, want 1 (hub-and-spoke)", ws.Name(), n)
		}
	}
	if n := e.cli.NumPeers(); n != 20 {
		t.Errorf("load generator sees %d peers, want 20", n)
	}
	stopStart := time.Now()
	if err := e.mgr.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped 20 workspaces in %v", time.Since(stopStart))
}
