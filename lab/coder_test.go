package lab_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/internal/syncbuf"
	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/tailnet"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// labProvider is a Coder provider on the lab's simulator that, like the
// JS module, takes agent addresses from the lab.
func labProvider(t *testing.T, l *lab.Lab, mod func(*coder.Config)) *coder.Provider {
	t.Helper()
	cfg := coder.Config{URL: l.CoderURL(), Token: l.CoderToken(), PollInterval: 20 * time.Millisecond,
		Client: coder.ClientOptions{BypassRateLimit: true}, AddressFunc: l.Coder().AgentAddress}
	if mod != nil {
		mod(&cfg)
	}
	p, err := coder.NewProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// loadGenerator joins the lab's tailnet as a load generator would.
func loadGenerator(t *testing.T, ctx context.Context, l *lab.Lab, name string) *tailnet.Node {
	t.Helper()
	n, err := tailnet.New(tailnet.Config{ControlURL: l.ControlURL(), AuthKey: l.AuthKey(), Hostname: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if _, err := n.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// sshTo dials addr:22 over the tailnet with the lab's credentials.
func sshTo(t *testing.T, ctx context.Context, n *tailnet.Node, l *lab.Lab, addr string) *ssh.Client {
	t.Helper()
	c := l.Credentials()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, _, err := n.Dial(dctx, "tcp", addr+":22")
	if err != nil {
		t.Fatalf("dial %s over the lab tailnet: %v", addr, err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: c.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Signer)}, HostKeyCallback: ssh.FixedHostKey(c.HostKey()),
	})
	if err != nil {
		t.Fatalf("SSH to %s with the lab's credentials: %v", addr, err)
	}
	cl := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// readUntil reads r until the output contains want or d passes.
func readUntil(t *testing.T, r io.Reader, want string, d time.Duration) string {
	t.Helper()
	type chunk struct {
		b   []byte
		err error
	}
	ch := make(chan chunk, 16)
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := r.Read(buf)
			ch <- chunk{buf[:n], err}
			if err != nil {
				return
			}
		}
	}()
	var got bytes.Buffer
	deadline := time.After(d)
	for !strings.Contains(got.String(), want) {
		select {
		case c := <-ch:
			got.Write(c.b)
			if c.err != nil && !strings.Contains(got.String(), want) {
				t.Fatalf("read %q then %v; want %q", got.String(), c.err, want)
			}
		case <-deadline:
			t.Fatalf("read %q in %v; want %q", got.String(), d, want)
		}
	}
	return got.String()
}

func TestCoderWorkspaceIsReachableOverTheLabTailnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.CoderURL() != l.URL() || l.CoderToken() == "" {
		t.Fatalf("CoderURL %q (lab %q), token %q", l.CoderURL(), l.URL(), l.CoderToken())
	}
	p := labProvider(t, l, nil)
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes",
		Parameters: map[string]string{"cpu": "2", "memory": "4", "home_disk_size": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, err = p.WaitReady(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netip.ParseAddr(ws.Address)
	if err != nil || !netip.MustParsePrefix("100.64.0.0/10").Contains(addr) {
		t.Fatalf("workspace address %q is not a lab tailnet IPv4 address", ws.Address)
	}
	labWS, ok := l.Workspaces.Get(ws.Name)
	if !ok || labWS.Addr() != addr {
		t.Fatalf("no lab workspace %q at %s (found %v)", ws.Name, addr, ok)
	}

	// The lab's HTTP API maps the agent to its workspace for other processes.
	var ag lab.CoderAgent
	do(t, "GET", l.URL()+"/lab/v1/coder/agents/"+ws.AgentID(), "", 200, &ag)
	if ag.Address != ws.Address || ag.Workspace != ws.Name {
		t.Fatalf("agent lookup = %+v, want %s at %s", ag, ws.Name, ws.Address)
	}
	var info lab.Info
	doAs(t, l.CoderToken(), "GET", l.URL()+"/lab/v1/info", "", 200, &info) // the Coder token is the lab's too
	if info.CoderURL != l.CoderURL() || info.CoderSessionToken != l.CoderToken() {
		t.Fatalf("info = %+v", info)
	}

	// SSH from a load generator, with the lab's credentials.
	gen := loadGenerator(t, ctx, l, "loadgen")
	cl := sshTo(t, ctx, gen, l, ws.Address)
	s, _ := cl.NewSession()
	out, err := s.Output("echo over the tailnet")
	if err != nil || string(out) != "over the tailnet\n" {
		t.Fatalf("echo over SSH: %q %v", out, err)
	}
	if n := labWS.NumPeers(); n != 1 {
		t.Fatalf("the workspace sees %d peers before any terminal, want 1 (the load generator)", n)
	}

	// The web terminal: coderd's own node dials the workspace. The output is
	// a cooked tty's: the echo of the line, then cat's copy.
	nodes := l.Tailnet.NumNodes()
	term, err := p.Client().OpenTerminal(ctx, ws.AgentID(), coder.TerminalConfig{Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := term.Write([]byte("hello terminal\r")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, term, "hello terminal\r\nhello terminal\r\n", 20*time.Second)
	if got := l.Tailnet.NumNodes(); got != nodes+1 {
		t.Fatalf("%d tailnet nodes after the first terminal, want %d (coderd's node joined)", got, nodes+1)
	}
	if n := labWS.NumPeers(); n != 2 {
		t.Fatalf("the workspace sees %d peers, want 2 (load generator and coderd)", n)
	}
	// A second terminal reuses coderd's node.
	term2, err := p.Client().OpenTerminal(ctx, ws.AgentID(), coder.TerminalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	term2.Write([]byte("shell is cat\r"))
	readUntil(t, term2, "shell is cat\r\nshell is cat\r\n", 20*time.Second)
	// The terminals stay open (Terminal.Close sends Ctrl-C, which races in
	// lab/sshserver under -race): the delete below must end them.
	if got := l.Tailnet.NumNodes(); got != nodes+1 {
		t.Fatalf("%d tailnet nodes after the second terminal, want %d", got, nodes+1)
	}

	// Deleting the workspace stops the machine: the terminal ends and the
	// lab workspace is gone.
	if err := p.Delete(ctx, ws); err != nil {
		t.Fatal(err)
	}
	readUntilEOF(t, term, 20*time.Second)
	readUntilEOF(t, term2, 20*time.Second)
	term.Close()
	term2.Close()
	if _, ok := l.Workspaces.Get(ws.Name); ok || l.CoderBackend().Running() != 0 {
		t.Fatalf("workspace %s still running after delete (backend running %d)", ws.Name, l.CoderBackend().Running())
	}
	do(t, "GET", l.URL()+"/lab/v1/coder/agents/"+ws.AgentID(), "", 404, nil)
}

// readUntilEOF drains r until it ends.
func readUntilEOF(t *testing.T, r io.Reader, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, r); done <- err }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("stream did not end within %v", d)
	}
}

func TestCoderWorkspaceNamesStayUniqueAcrossOwners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := coder.NewClient(l.CoderURL(), l.CoderToken(), coder.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	orgs, err := c.Organizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := c.TemplateByName(ctx, orgs[0].ID, "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	// Two owners, each with a workspace named "dev".
	var wss []coder.Workspace
	for _, owner := range []string{"alice", "bob"} {
		if _, err := c.CreateUser(ctx, coder.CreateUserRequest{Email: owner + "@example.com", Username: owner,
			Password: "correct-horse-battery", OrganizationIDs: []string{orgs[0].ID}}); err != nil {
			t.Fatal(err)
		}
		ws, err := c.CreateWorkspace(ctx, orgs[0].ID, owner, coder.CreateWorkspaceRequest{TemplateID: tpl.ID, Name: "dev"})
		if err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}
	addrs := map[string]bool{}
	for _, ws := range wss {
		for {
			w, err := c.Workspace(ctx, ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ags := w.LatestBuild.Agents(); len(ags) == 1 && ags[0].Status == coder.AgentConnected {
				addrs[l.Coder().AgentAddress(ags[0].ID)] = true
				break
			}
			if w.LatestBuild.Job.Status == coder.JobFailed || ctx.Err() != nil {
				t.Fatalf("build of %s/%s: %+v", w.OwnerName, w.Name, w.LatestBuild.Job)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(addrs) != 2 || l.Workspaces.Len() != 2 {
		t.Fatalf("two owners' workspaces named dev: addresses %v, %d lab workspaces", addrs, l.Workspaces.Len())
	}
	list := l.Workspaces.List()
	if list[0].Name() != "dev" || !strings.HasPrefix(list[1].Name(), "dev-") {
		t.Fatalf("lab workspace names %s and %s, want dev and dev-<id>", list[0].Name(), list[1].Name())
	}
	// Closing the lab stops every workspace the simulator started.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Workspaces.Len() != 0 || l.CoderBackend().Running() != 0 {
		t.Fatalf("after Close: %d lab workspaces, %d backend machines", l.Workspaces.Len(), l.CoderBackend().Running())
	}
}

func TestCoderAgentCrashFaultCrashesTheWorkspace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{Coder: lab.CoderConfig{Faults: codersim.Faults{AgentCrashAfter: 1500 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := labProvider(t, l, nil)
	ws, err := p.Create(ctx, workspace.CreateRequest{Template: "kubernetes"})
	if err == nil {
		ws, err = p.WaitReady(ctx, ws)
	}
	if err != nil {
		t.Fatal(err)
	}
	gen := loadGenerator(t, ctx, l, "loadgen")
	cl := sshTo(t, ctx, gen, l, ws.Address)
	s, _ := cl.NewSession()
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("alive\n"))
	readUntil(t, stdout, "alive\n", 10*time.Second)

	// The running cat dies with the workspace: no exit status, the
	// connection drops.
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case err := <-waited:
		var ee *ssh.ExitError
		if err == nil || errors.As(err, &ee) {
			t.Fatalf("session ended with %v; want the connection to drop without an exit status", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the workspace did not crash")
	}
	if _, ok := l.Workspaces.Get(ws.Name); ok {
		t.Fatalf("lab workspace %s still running after the crash", ws.Name)
	}
	// The API reports the agent disconnected.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w, err := p.Client().Workspace(ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ags := w.LatestBuild.Agents(); len(ags) == 1 && ags[0].Status == coder.AgentDisconnected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent status %+v, want disconnected", w.LatestBuild.Agents())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And a new terminal is refused.
	if _, err := p.Client().OpenTerminal(ctx, ws.AgentID(), coder.TerminalConfig{Command: "cat"}); err == nil {
		t.Fatal("terminal to a crashed workspace opened")
	}
	// Deleting the crashed workspace works and leaves nothing behind.
	if err := p.Delete(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if l.CoderBackend().Running() != 0 || l.Workspaces.Len() != 0 {
		t.Fatalf("backend %d, lab %d workspaces left", l.CoderBackend().Running(), l.Workspaces.Len())
	}
}

func TestServePrintsCoderExports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	var got *lab.Lab
	done := make(chan error, 1)
	go func() {
		done <- lab.Serve(ctx, lab.Config{}, lab.ServeOptions{Ready: func(l *lab.Lab) { got = l; cancel() }}, &out)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not stop")
	}
	s := out.String()
	for _, want := range []string{"export CODER_URL=" + got.URL() + "\n", "export CODER_SESSION_TOKEN=" + got.CoderToken() + "\n",
		"export CDELOAD_LAB_URL=" + got.URL() + "\n", "export TS_CONTROL_URL=", "export TS_AUTHKEY="} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestNoCoder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{NoCoder: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Coder() != nil || l.CoderURL() != "" || l.CoderToken() != "" {
		t.Fatal("the Coder simulator runs with NoCoder")
	}
	do(t, "GET", l.URL()+"/api/v2/buildinfo", "", 404, nil)
}

func TestStartRejectsBadFaults(t *testing.T) {
	_, err := lab.Start(context.Background(), lab.Config{Coder: lab.CoderConfig{Faults: codersim.Faults{BuildFailureRate: 2}}})
	if err == nil || !strings.Contains(err.Error(), "build failure rate") {
		t.Fatalf("Start with build failure rate 2: %v", err)
	}
}
