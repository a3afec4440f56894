// Package coderbackend runs the machines behind the Coder API simulator
// (lab/codersim) as simulated tailnet workspaces (lab/workspaces): every
// Coder workspace that starts becomes a tsnet node with a real SSH server on
// the lab's tailnet, and its agent's address is that node's tailnet IP.
//
// The web terminal works the way coderd serves it: coderd's own tailnet node
// (a load-generator node, so the lab's hub-and-spoke control lets it see every
// workspace) dials the workspace's SSH server over the tailnet with the lab's
// credentials and opens a session with a pseudo-terminal running the
// requested command (the user's shell, which lab/sshserver runs as cat).
//
// The simulator starts the machine once a start build's job has succeeded
// and marks its agent connected only after StartWorkspace has returned (and
// tells the backend, see codersim.AgentEvents); StartWorkspace returns only
// once the workspace's node is up with a home DERP and its SSH port is
// listening, so a connected agent is reachable. The agent-crash fault
// reaches the backend through AgentCrashed, at the moment the simulator
// disconnects the agent.
package coderbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/lab/workspaces"
	"github.com/cdeload/cdeload/tailnet"
	tailnetcoder "github.com/cdeload/cdeload/tailnet/coder"
)

// DefaultHostname is the host name of coderd's own tailnet node.
const DefaultHostname = "coderd"

// Defaults of Config.
const (
	defaultDialTimeout = 30 * time.Second
	terminalType       = "xterm-256color"
	defaultWidth       = 80
	defaultHeight      = 24
)

// Config configures a Backend.
type Config struct {
	// Workspaces runs the simulated workspaces (required). The backend
	// starts, stops and crashes workspaces through it but does not close it.
	Workspaces *workspaces.Manager
	// ControlURL and AuthKey let coderd's own node join the lab's tailnet
	// (required).
	ControlURL, AuthKey string
	// Hostname is the host name of coderd's node (default DefaultHostname).
	Hostname string
	// AssignAddress, if set, gives each workspace's node its agent's Coder
	// address on the lab's tailnet (tailnetlab.Lab.AssignAddress), and the
	// workspace serves SSH without client authentication on tailnet port 1
	// like a Coder agent, so that Coder clients coordinated by the simulator
	// reach it as they reach a real agent.
	AssignAddress func(hostname string, addr netip.Addr) (release func())
	// DialTimeout bounds dialling a workspace's SSH server for a terminal,
	// including coderd's node joining on first use (default 30s).
	DialTimeout time.Duration
	// Logf receives diagnostic logs; nil discards them.
	Logf func(format string, args ...any)
}

// Backend is a codersim.Backend whose machines are simulated tailnet
// workspaces. It is safe for concurrent use.
type Backend struct {
	cfg Config

	// nodeSem serialises creating coderd's node.
	nodeSem chan struct{}
	node    *tailnet.Node // guarded by nodeSem

	mu       sync.Mutex
	byID     map[string]*machine // by Coder workspace ID
	agents   map[string]*machine // by Coder agent ID
	starting map[string]*startOp // starts in flight, by Coder workspace ID
	closed   bool
}

// startOp is a StartWorkspace in flight.
type startOp struct {
	cancel  context.CancelFunc
	stopped bool // StopWorkspace or Close came first: tear the machine down
}

var (
	_ codersim.Backend     = (*Backend)(nil)
	_ codersim.AgentEvents = (*Backend)(nil)
)

// New returns a backend. It does not touch the network: coderd's node
// joins the tailnet on the first terminal.
func New(cfg Config) (*Backend, error) {
	if cfg.Workspaces == nil {
		return nil, errors.New("coderbackend: Config.Workspaces is required")
	}
	if cfg.ControlURL == "" || cfg.AuthKey == "" {
		return nil, errors.New("coderbackend: Config.ControlURL and Config.AuthKey are required")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = DefaultHostname
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Backend{cfg: cfg, nodeSem: make(chan struct{}, 1),
		byID: map[string]*machine{}, agents: map[string]*machine{}, starting: map[string]*startOp{}}, nil
}

// machine is one running workspace of the backend.
type machine struct {
	b       *Backend
	id      string // Coder workspace ID
	agentID string
	name    string // lab workspace (and tailnet host) name
	ws      *workspaces.Workspace
	release func() // forgets the agent's Coder address (no-op without one)
	// connected is set when the simulator reports the agent connected
	// (guarded by Backend.mu).
	connected bool

	mu      sync.Mutex
	client  *ssh.Client // coderd's SSH connection, made on the first terminal
	stopped bool
}

// StartWorkspace implements codersim.Backend: it starts a simulated
// workspace named after the Coder workspace (with a suffix from the
// workspace ID when another owner's workspace already has the name) and
// returns once it is reachable over the tailnet. If StopWorkspace for the
// same workspace or Close comes while it starts, the start is cancelled,
// any workspace it brought up is stopped, and it returns an error.
func (b *Backend) StartWorkspace(ctx context.Context, spec codersim.WorkspaceSpec) (codersim.Agent, error) {
	if spec.WorkspaceID == "" {
		return nil, errors.New("coderbackend: start: workspace spec without an ID")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op := &startOp{cancel: cancel}
	b.mu.Lock()
	closed, old, busy := b.closed, b.byID[spec.WorkspaceID], b.starting[spec.WorkspaceID] != nil
	if !closed && !busy {
		b.starting[spec.WorkspaceID] = op
	}
	b.mu.Unlock()
	switch {
	case closed:
		return nil, errors.New("coderbackend: start: backend closed")
	case busy:
		return nil, fmt.Errorf("coderbackend: start workspace %s/%s: a start of this workspace is already in flight", spec.Owner, spec.Name)
	}
	defer func() {
		b.mu.Lock()
		delete(b.starting, spec.WorkspaceID)
		b.mu.Unlock()
	}()
	if old != nil { // a start without a stop: replace the machine
		if err := b.stopMachine(ctx, old); err != nil {
			return nil, err
		}
	}
	base := Hostname(spec.Name)
	release := func() {}
	start := func(name string) (*workspaces.Workspace, error) {
		release()
		release = b.assign(name, spec.AgentID)
		return b.cfg.Workspaces.Start(ctx, workspaces.WorkspaceSpec{Name: name, AgentSSH: b.cfg.AssignAddress != nil})
	}
	ws, err := start(base)
	if errors.Is(err, workspaces.ErrExists) {
		ws, err = start(suffixed(base, spec.WorkspaceID))
	}
	if err != nil {
		release()
		b.mu.Lock()
		stopped := op.stopped
		b.mu.Unlock()
		if stopped {
			return nil, fmt.Errorf("coderbackend: start workspace %s/%s: stopped while starting: %w", spec.Owner, spec.Name, err)
		}
		return nil, fmt.Errorf("coderbackend: start workspace %s/%s: %w", spec.Owner, spec.Name, err)
	}
	m := &machine{b: b, id: spec.WorkspaceID, agentID: spec.AgentID, name: ws.Name(), ws: ws, release: release}
	b.mu.Lock()
	if b.closed || op.stopped {
		why := "backend closed"
		if !b.closed {
			why = "stopped while starting"
		}
		b.mu.Unlock()
		defer release()
		if err := b.cfg.Workspaces.Stop(context.Background(), m.name); err != nil && !errors.Is(err, workspaces.ErrNotFound) {
			b.cfg.Logf("coderbackend: stop workspace %s: %v", m.name, err)
		}
		return nil, fmt.Errorf("coderbackend: start workspace %s/%s: %s", spec.Owner, spec.Name, why)
	}
	b.byID[m.id] = m
	if m.agentID != "" {
		b.agents[m.agentID] = m
	}
	b.mu.Unlock()
	b.cfg.Logf("coderbackend: workspace %s/%s started as %s (%s)", spec.Owner, spec.Name, m.name, ws.Addr())
	return m, nil
}

// StopWorkspace implements codersim.Backend: it stops the workspace
// gracefully. A workspace that is not running (never started, stopped or
// crashed) is not an error; one still starting has its start cancelled
// (StartWorkspace then stops whatever it brought up and fails).
func (b *Backend) StopWorkspace(ctx context.Context, spec codersim.WorkspaceSpec) error {
	b.mu.Lock()
	if op := b.starting[spec.WorkspaceID]; op != nil {
		op.stopped = true
		op.cancel()
	}
	m := b.byID[spec.WorkspaceID]
	b.mu.Unlock()
	if m == nil {
		return nil
	}
	return b.stopMachine(ctx, m)
}

// AgentConnected implements codersim.AgentEvents: from now on
// AgentWorkspace serves the agent.
func (b *Backend) AgentConnected(spec codersim.WorkspaceSpec) {
	b.mu.Lock()
	if m := b.agents[spec.AgentID]; m != nil {
		m.connected = true
	}
	b.mu.Unlock()
}

// AgentCrashed implements codersim.AgentEvents: the workspace running the
// agent crashes (its node and SSH server die abruptly).
func (b *Backend) AgentCrashed(spec codersim.WorkspaceSpec) {
	b.mu.Lock()
	m := b.agents[spec.AgentID]
	b.mu.Unlock()
	if m != nil {
		b.crashMachine(m)
	}
}

// forget removes m from the indexes; it reports false if m was already gone.
func (b *Backend) forget(m *machine) bool {
	b.mu.Lock()
	if b.byID[m.id] != m {
		b.mu.Unlock()
		return false
	}
	delete(b.byID, m.id)
	if b.agents[m.agentID] == m {
		delete(b.agents, m.agentID)
	}
	b.mu.Unlock()
	m.release()
	return true
}

// assign gives the workspace named hostname the Coder address of agentID,
// when the backend assigns addresses; the result releases it.
func (b *Backend) assign(hostname, agentID string) (release func()) {
	if b.cfg.AssignAddress == nil || agentID == "" {
		return func() {}
	}
	addr, err := tailnetcoder.AgentAddr(agentID)
	if err != nil {
		b.cfg.Logf("coderbackend: workspace %s: %v", hostname, err)
		return func() {}
	}
	return b.cfg.AssignAddress(hostname, addr)
}

func (b *Backend) stopMachine(ctx context.Context, m *machine) error {
	if !b.forget(m) {
		return nil
	}
	m.closeClient()
	err := b.cfg.Workspaces.Stop(ctx, m.name)
	if err != nil && !errors.Is(err, workspaces.ErrNotFound) {
		return fmt.Errorf("coderbackend: stop workspace %s: %w", m.name, err)
	}
	return nil
}

// crashMachine kills m abruptly (the agent-crash fault).
func (b *Backend) crashMachine(m *machine) {
	if !b.forget(m) {
		return
	}
	b.cfg.Logf("coderbackend: crashing workspace %s (agent crash fault)", m.name)
	if err := b.cfg.Workspaces.Crash(m.name); err != nil && !errors.Is(err, workspaces.ErrNotFound) {
		b.cfg.Logf("coderbackend: crash workspace %s: %v", m.name, err)
	}
	m.closeClient()
}

// Running returns the number of running workspaces started by the backend.
func (b *Backend) Running() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byID)
}

// AgentWorkspace returns the lab workspace that runs the agent with this
// Coder agent ID (for its tailnet address and name), once the simulator has
// reported the agent connected and while its workspace runs.
func (b *Backend) AgentWorkspace(agentID string) (*workspaces.Workspace, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.agents[agentID]
	if m == nil || !m.connected {
		return nil, false
	}
	return m.ws, true
}

// Close stops every workspace the backend started and takes coderd's node
// off the tailnet. Starts in flight are cancelled (they stop what they
// brought up) and later starts fail. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	for _, op := range b.starting {
		op.stopped = true
		op.cancel()
	}
	ms := make([]*machine, 0, len(b.byID))
	for _, m := range b.byID {
		ms = append(ms, m)
	}
	b.mu.Unlock()
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range ms {
		wg.Go(func() {
			if err := b.stopMachine(ctx, m); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	b.nodeSem <- struct{}{}
	if b.node != nil {
		if err := b.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("coderbackend: close coderd's node: %w", err))
		}
		b.node = nil
	}
	<-b.nodeSem
	return errors.Join(errs...)
}

// coderdNode returns coderd's tailnet node, joining on first use.
func (b *Backend) coderdNode(ctx context.Context) (*tailnet.Node, error) {
	select {
	case b.nodeSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-b.nodeSem }()
	if b.node != nil {
		return b.node, nil
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, errors.New("coderbackend: backend closed")
	}
	n, err := tailnet.New(tailnet.Config{ControlURL: b.cfg.ControlURL, AuthKey: b.cfg.AuthKey, Hostname: b.cfg.Hostname})
	if err != nil {
		return nil, fmt.Errorf("coderbackend: coderd's tailnet node: %w", err)
	}
	if _, err := n.Up(ctx); err != nil {
		n.Close()
		return nil, fmt.Errorf("coderbackend: coderd's tailnet node: join: %w", err)
	}
	b.node = n
	return n, nil
}

// Address implements codersim.Agent: the workspace's tailnet IPv4 address.
func (m *machine) Address() netip.Addr { return m.ws.Addr() }

// OpenPTY implements codersim.Agent: coderd's node dials the workspace's SSH
// server over the tailnet (one connection per workspace, reused) and opens
// a session with a pseudo-terminal (Linux's default cooked modes, so the
// terminal echoes input) running req.Command, or the user's shell.
func (m *machine) OpenPTY(ctx context.Context, req codersim.PTYRequest) (io.ReadWriteCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, m.b.cfg.DialTimeout)
	defer cancel()
	var sess *ssh.Session
	for attempt := 0; ; attempt++ {
		c, err := m.sshClient(ctx)
		if err != nil {
			return nil, err
		}
		sess, err = c.NewSession()
		if err == nil {
			break
		}
		m.dropClient(c)
		if attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("coderbackend: workspace %s: open SSH session: %w", m.name, err)
		}
	}
	w, h := int(req.Width), int(req.Height)
	if w == 0 {
		w = defaultWidth
	}
	if h == 0 {
		h = defaultHeight
	}
	fail := func(what string, err error) (io.ReadWriteCloser, error) {
		sess.Close()
		return nil, fmt.Errorf("coderbackend: workspace %s: %s: %w", m.name, what, err)
	}
	if err := sess.RequestPty(terminalType, h, w, nil); err != nil {
		return fail("request a pty", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail("stdin", err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail("stdout", err)
	}
	if req.Command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(req.Command)
	}
	if err != nil {
		return fail(fmt.Sprintf("start %q", req.Command), err)
	}
	return &terminal{sess: sess, in: stdin, out: stdout}, nil
}

// sshClient returns coderd's SSH connection to the workspace, dialling it
// over the tailnet if needed.
func (m *machine) sshClient(ctx context.Context) (*ssh.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return nil, fmt.Errorf("coderbackend: workspace %s is not running", m.name)
	}
	if m.client != nil {
		return m.client, nil
	}
	node, err := m.b.coderdNode(ctx)
	if err != nil {
		return nil, err
	}
	conn, _, err := node.Dial(ctx, "tcp", m.ws.SSHAddr())
	if err != nil {
		return nil, fmt.Errorf("coderbackend: coderd dial workspace %s (%s): %w", m.name, m.ws.SSHAddr(), err)
	}
	creds := m.b.cfg.Workspaces.Credentials()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, m.ws.SSHAddr(), &ssh.ClientConfig{
		User:            creds.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(creds.Signer)},
		HostKeyCallback: ssh.FixedHostKey(creds.HostKey()),
	})
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("coderbackend: SSH handshake with workspace %s: %w", m.name, err)
	}
	_ = conn.SetDeadline(time.Time{})
	m.client = ssh.NewClient(cc, chans, reqs)
	return m.client, nil
}

// dropClient forgets c (a broken connection) so the next terminal redials.
func (m *machine) dropClient(c *ssh.Client) {
	m.mu.Lock()
	if m.client == c {
		m.client = nil
	}
	m.mu.Unlock()
	c.Close()
}

// closeClient closes coderd's connection and refuses new terminals.
func (m *machine) closeClient() {
	m.mu.Lock()
	c := m.client
	m.client, m.stopped = nil, true
	m.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// terminal is one PTY session: writes are keystrokes, reads the terminal's
// output.
type terminal struct {
	sess *ssh.Session
	in   io.WriteCloser
	out  io.Reader
	once sync.Once
}

func (t *terminal) Read(p []byte) (int, error)  { return t.out.Read(p) }
func (t *terminal) Write(p []byte) (int, error) { return t.in.Write(p) }

// Close ends the session (the workspace's tty hangs up on the command).
func (t *terminal) Close() error {
	t.once.Do(func() { t.sess.Close() })
	return nil
}

// Hostname turns a Coder workspace name into a valid lab workspace (tailnet
// host) name: lower case, characters other than a-z, 0-9 and '-' replaced
// by '-', at most 54 characters (room for a suffix), "ws" if nothing is
// left.
func Hostname(name string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('-')
		}
	}
	s := sb.String()
	if len(s) > 54 {
		s = s[:54]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		s = "ws"
	}
	return s
}

// suffixed appends the first 8 hex digits of the workspace ID to base.
func suffixed(base, workspaceID string) string {
	id := strings.ReplaceAll(strings.ToLower(workspaceID), "-", "")
	if len(id) > 8 {
		id = id[:8]
	}
	return base + "-" + id
}
