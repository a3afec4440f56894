// Package workspaces runs simulated workspaces: each is a tailnet node
// (host name = workspace name, advertising tailnetlab.WorkspaceTag so the
// lab's hub-and-spoke control hides workspaces from each other) with an SSH
// server on tailnet port 22 that accepts the lab's client key for any user
// (use "coder") and runs cat, echo, true, exit N, ... (lab/sshserver).
//
// [Start] starts one workspace; a [Manager] starts, stops and crashes many
// concurrently with bounded parallelism and unique names. This is what the
// Coder simulator and the lab's HTTP endpoint use to create workspaces.
package workspaces

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/cdeload/cdeload/lab/sshserver"
	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/tailnet"
	"golang.org/x/crypto/ssh"
)

// ConnHandler serves one connection accepted on a workspace's SSH port
// until it ends; *sshserver.Server implements it.
type ConnHandler interface {
	ServeConn(ctx context.Context, c net.Conn) error
}

// Config is what every workspace of a lab shares.
type Config struct {
	// ControlURL and AuthKey identify the lab's control server.
	ControlURL string
	AuthKey    string
	// Credentials are the SSH keys (required).
	Credentials *Credentials
	// Handler, if set, replaces the built-in SSH server.
	Handler ConnHandler
	// Logf receives diagnostic logs; nil discards them.
	Logf func(format string, args ...any)
}

// WorkspaceSpec describes one workspace.
type WorkspaceSpec struct {
	// Name is the workspace's name and tailnet host name: 1-63 characters
	// of a-z, 0-9 and '-', not starting or ending with '-'.
	Name string
	// Hostname, if set, is the tailnet host name instead of Name (same
	// rules).
	Hostname string
	// AgentSSH also serves SSH on tailnet port [AgentSSHPort] without
	// client authentication (the tailnet is the authentication), as a
	// Coder agent does. It is ignored with a custom Config.Handler.
	AgentSSH bool
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a workspace name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("workspaces: name %q: want 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'", name)
	}
	return nil
}

// Workspace is one running simulated workspace.
type Workspace struct {
	name   string
	node   *tailnet.Node
	info   tailnet.UpInfo
	ln     net.Listener
	ssh    *sshserver.Server // nil with a custom Handler
	agent  *agentSSH         // port AgentSSHPort, with WorkspaceSpec.AgentSSH
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	done   chan struct{}
	err    error
}

// crashGrace is how long Crash keeps the node up after dropping the
// connections, so that the TCP FINs are delivered.
const crashGrace = 250 * time.Millisecond

// SSHPort is the tailnet port workspaces serve SSH on.
const SSHPort = 22

// AgentSSHPort is the tailnet port of a Coder agent's SSH server.
const AgentSSHPort = 1

// agentSSH is the SSH server of a workspace's Coder agent.
type agentSSH struct {
	ln  net.Listener
	srv *sshserver.Server
}

// Start starts a workspace and returns once it is reachable: its node is up
// with a home DERP and its SSH port is listening. ctx bounds the start.
func Start(ctx context.Context, cfg Config, spec WorkspaceSpec) (*Workspace, error) {
	if err := ValidateName(spec.Name); err != nil {
		return nil, err
	}
	hostname := spec.Name
	if spec.Hostname != "" {
		if err := ValidateName(spec.Hostname); err != nil {
			return nil, fmt.Errorf("workspaces: %s: host name: %w", spec.Name, err)
		}
		hostname = spec.Hostname
	}
	if cfg.Credentials == nil {
		return nil, errors.New("workspaces: Config.Credentials is required")
	}
	handler := cfg.Handler
	var srv *sshserver.Server
	if handler == nil {
		var err error
		srv, err = sshserver.New(sshserver.Config{
			HostKey:        cfg.Credentials.HostSigner,
			AuthorizedKeys: []ssh.PublicKey{cfg.Credentials.Signer.PublicKey()},
			Logf:           cfg.Logf,
		})
		if err != nil {
			return nil, fmt.Errorf("workspaces: %s: SSH server: %w", spec.Name, err)
		}
		handler = srv
	}
	node, err := tailnet.New(tailnet.Config{
		ControlURL:    cfg.ControlURL,
		AuthKey:       cfg.AuthKey,
		Hostname:      hostname,
		AdvertiseTags: []string{tailnetlab.WorkspaceTag},
		Logf:          cfg.Logf,
		// A workspace only accepts connections: no peer index to keep.
		ListenOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("workspaces: %s: %w", spec.Name, err)
	}
	info, err := node.Up(ctx)
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("workspaces: start %s: %w", spec.Name, err)
	}
	ln, err := node.Listen("tcp", fmt.Sprintf(":%d", SSHPort))
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("workspaces: start %s: %w", spec.Name, err)
	}
	var agent *agentSSH
	if spec.AgentSSH && cfg.Handler == nil {
		if agent, err = startAgentSSH(node, cfg); err != nil {
			ln.Close()
			node.Close()
			return nil, fmt.Errorf("workspaces: start %s: %w", spec.Name, err)
		}
	}
	sctx, cancel := context.WithCancel(context.Background())
	w := &Workspace{name: spec.Name, node: node, info: info, ln: ln, ssh: srv, agent: agent, cancel: cancel,
		conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	w.wg.Go(func() { w.accept(sctx, w.ln, handler) })
	if agent != nil {
		w.wg.Go(func() { w.accept(sctx, agent.ln, agent.srv) })
	}
	return w, nil
}

// startAgentSSH listens on AgentSSHPort with an SSH server that accepts
// every client.
func startAgentSSH(node *tailnet.Node, cfg Config) (*agentSSH, error) {
	srv, err := sshserver.New(sshserver.Config{HostKey: cfg.Credentials.HostSigner, NoClientAuth: true, Logf: cfg.Logf})
	if err != nil {
		return nil, fmt.Errorf("agent SSH server: %w", err)
	}
	ln, err := node.Listen("tcp", fmt.Sprintf(":%d", AgentSSHPort))
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &agentSSH{ln: ln, srv: srv}, nil
}

// accept serves connections on ln until it closes.
func (w *Workspace) accept(ctx context.Context, ln net.Listener, h ConnHandler) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			c.Close()
			return
		}
		w.conns[c] = struct{}{}
		w.mu.Unlock()
		w.wg.Go(func() {
			_ = h.ServeConn(ctx, c)
			c.Close()
			w.mu.Lock()
			delete(w.conns, c)
			w.mu.Unlock()
		})
	}
}

// Name is the workspace name (also its tailnet host name).
func (w *Workspace) Name() string { return w.name }

// Addr is the workspace's tailnet IPv4 address.
func (w *Workspace) Addr() netip.Addr { return w.node.Addr() }

// SSHAddr is "ip:22" on the tailnet.
func (w *Workspace) SSHAddr() string {
	return netip.AddrPortFrom(w.Addr(), SSHPort).String()
}

// UpInfo is how the workspace's node joined.
func (w *Workspace) UpInfo() tailnet.UpInfo { return w.info }

// Done is closed once the workspace has stopped or crashed.
func (w *Workspace) Done() <-chan struct{} { return w.done }

// Stop shuts the workspace down gracefully: the SSH server closes its
// sessions, then the node leaves the tailnet. Stop is idempotent.
func (w *Workspace) Stop() error { return w.shutdown(false) }

// Crash kills the workspace abruptly, like its agent process dying: open
// connections are dropped without any SSH-level goodbye (the client reads
// EOF or an error, never an exit status), then, after crashGrace to let the
// TCP close reach the client (as a dying process's kernel would send it),
// the node disappears from the tailnet.
func (w *Workspace) Crash() error { return w.shutdown(true) }

func (w *Workspace) shutdown(crash bool) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.err
	}
	w.closed = true
	conns := make([]net.Conn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()

	var errs []error
	w.ln.Close()
	if w.agent != nil {
		w.agent.ln.Close()
	}
	if crash {
		for _, c := range conns {
			c.Close()
		}
		if len(conns) > 0 {
			time.Sleep(crashGrace)
		}
	} else {
		if w.ssh != nil {
			if err := w.ssh.Close(); err != nil {
				errs = append(errs, fmt.Errorf("workspaces: %s: close SSH server: %w", w.name, err))
			}
		}
		if w.agent != nil {
			if err := w.agent.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("workspaces: %s: close the agent's SSH server: %w", w.name, err))
			}
		}
	}
	w.cancel()
	if err := w.node.Close(); err != nil {
		errs = append(errs, fmt.Errorf("workspaces: %s: %w", w.name, err))
	}
	for _, c := range conns {
		c.Close()
	}
	w.wg.Wait()
	w.err = errors.Join(errs...)
	close(w.done)
	return w.err
}

// NumConns is the number of connections the workspace's SSH servers are
// serving.
func (w *Workspace) NumConns() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// NumPeers is the number of peers in the workspace node's netmap (with
// hub-and-spoke visibility: the load generators only).
func (w *Workspace) NumPeers() int { return w.node.NumPeers() }
