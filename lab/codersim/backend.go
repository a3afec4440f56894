package codersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
)

// WorkspaceSpec describes the workspace machine a start build asks the
// backend for.
type WorkspaceSpec struct {
	// Name is the workspace name (unique per owner).
	Name string
	// Owner is the owner's username.
	Owner string
	// WorkspaceID is the workspace's UUID.
	WorkspaceID string
	// AgentID is the UUID the agent is known by in the API; Coder derives an
	// agent's tailnet address from it (see Server.AgentAddress).
	AgentID string
	// AgentName is the agent's name in the template (for example "main").
	AgentName string
	// Parameters are the build's rich parameter values (defaults included).
	Parameters map[string]string
}

// PTYRequest asks an agent for a terminal session.
type PTYRequest struct {
	// Command is the command to run; "" means the user's shell.
	Command string
	// Width and Height are the terminal size.
	Width, Height uint16
}

// Agent is a running workspace agent as provided by a Backend.
type Agent interface {
	// Address is the agent's tailnet address, or the zero Addr if it has none.
	Address() netip.Addr
	// OpenPTY starts a terminal session: writes are keystrokes, reads are
	// the terminal's output (including its echo). Close ends the session.
	OpenPTY(ctx context.Context, req PTYRequest) (io.ReadWriteCloser, error)
}

// Backend runs the machines behind workspaces. As in Coder, where the
// build job (terraform apply) ends once the resources exist and the agent
// dials in when its machine has booted, the simulator calls StartWorkspace
// when a start build's job has succeeded, and reports the agent connected
// only after StartWorkspace has returned. It calls StopWorkspace during a
// stop or delete build (after any start still in flight has returned), and
// when the server closes. StartWorkspace's context is cancelled when a stop
// or delete build or the server's Close overtakes the start; the simulator
// then stops a machine that started anyway. Implementations must be safe
// for concurrent use.
type Backend interface {
	// StartWorkspace brings up the workspace machine and returns its agent.
	StartWorkspace(ctx context.Context, spec WorkspaceSpec) (Agent, error)
	// StopWorkspace tears the workspace machine down. Stopping a workspace
	// that is not running is not an error.
	StopWorkspace(ctx context.Context, spec WorkspaceSpec) error
}

// AgentEvents is an optional interface of a Backend: the simulator tells
// it when the agent of a started machine connects and when the
// AgentCrashAfter fault disconnects it. spec.AgentID names the agent.
type AgentEvents interface {
	// AgentConnected is called just before the agent is reported connected
	// (first_connected_at set).
	AgentConnected(spec WorkspaceSpec)
	// AgentCrashed is called when the agent-crash fault disconnects the
	// agent: the machine should die abruptly.
	AgentCrashed(spec WorkspaceSpec)
}

// MemBackend is an in-memory Backend: each workspace is a fake machine
// whose terminal behaves like a tty (see MemBackend.OpenPTY). It is safe for
// concurrent use.
type MemBackend struct {
	mu      sync.Mutex
	running map[string]*memAgent // by workspace ID
}

// NewMemBackend returns an empty MemBackend.
func NewMemBackend() *MemBackend { return &MemBackend{running: map[string]*memAgent{}} }

// Running returns the number of running workspace machines.
func (b *MemBackend) Running() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.running)
}

// StartWorkspace implements Backend.
func (b *MemBackend) StartWorkspace(ctx context.Context, spec WorkspaceSpec) (Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := &memAgent{agentID: spec.AgentID, sessions: map[*memPTY]struct{}{}}
	if old := b.running[spec.WorkspaceID]; old != nil {
		old.stop()
	}
	b.running[spec.WorkspaceID] = a
	return a, nil
}

// StopWorkspace implements Backend; open terminal sessions end with EOF.
func (b *MemBackend) StopWorkspace(_ context.Context, spec WorkspaceSpec) error {
	b.mu.Lock()
	a := b.running[spec.WorkspaceID]
	delete(b.running, spec.WorkspaceID)
	b.mu.Unlock()
	if a != nil {
		a.stop()
	}
	return nil
}

// AgentConnected implements AgentEvents; it does nothing.
func (b *MemBackend) AgentConnected(WorkspaceSpec) {}

// AgentCrashed implements AgentEvents: the machine running that agent
// stops at once (open terminal sessions end with EOF).
func (b *MemBackend) AgentCrashed(spec WorkspaceSpec) {
	b.mu.Lock()
	a := b.running[spec.WorkspaceID]
	if a == nil || a.agentID != spec.AgentID {
		b.mu.Unlock()
		return
	}
	delete(b.running, spec.WorkspaceID)
	b.mu.Unlock()
	a.stop()
}

type memAgent struct {
	agentID  string
	mu       sync.Mutex
	stopped  bool
	sessions map[*memPTY]struct{}
}

func (a *memAgent) Address() netip.Addr { return netip.Addr{} }

// OpenPTY implements Agent. The session behaves like a tty in canonical
// mode with echo: every input byte is echoed (CR and LF echo as CR LF).
// With command "" or "cat", each completed line is also written back, as cat
// would; with any other command (such as "dd of=/dev/null") input is only
// echoed. A command list such as "stty -echo; echo MARK; exec cat" (what a
// client runs on a real agent to turn the tty's echo off) is understood as
// a shell would run it: see memShell. Ctrl-C (0x03) echoes "^C" and ends the
// session.
func (a *memAgent) OpenPTY(ctx context.Context, req PTYRequest) (io.ReadWriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return nil, errors.New("workspace machine is stopped")
	}
	pr, pw := io.Pipe()
	cat, echo, printed := memShell(req.Command)
	p := &memPTY{agent: a, out: pr, outW: pw, cat: cat, noEcho: !echo}
	a.sessions[p] = struct{}{}
	if len(printed) > 0 {
		p.wmu.Lock() // held until the reader took the output, so it comes first
		go func() {
			defer p.wmu.Unlock()
			_, _ = p.outW.Write(printed)
		}()
	}
	return p, nil
}

// memShell interprets a terminal command the way the agent's shell would,
// for the few forms the simulator knows: "" and "[exec] cat" (cat copies each
// line), and lists joined by ";" of "stty -echo" (the tty stops echoing),
// "echo WORDS" (printed, CR LF terminated) and "[exec] cat". Any other
// command makes a session that only echoes its input.
func memShell(cmd string) (cat, echo bool, printed []byte) {
	echo = true
	for _, part := range strings.Split(cmd, ";") {
		switch f := strings.Fields(part); {
		case len(f) == 0 && strings.TrimSpace(cmd) == "":
			cat = true
		case len(f) == 1 && f[0] == "cat", len(f) == 2 && f[0] == "exec" && f[1] == "cat":
			cat = true
		case len(f) == 2 && f[0] == "stty" && f[1] == "-echo":
			echo = false
		case len(f) >= 1 && f[0] == "echo":
			printed = append(printed, strings.Join(f[1:], " ")+"\r\n"...)
		default:
			return false, true, nil
		}
	}
	return cat, echo, printed
}

func (a *memAgent) stop() {
	a.mu.Lock()
	a.stopped = true
	sessions := a.sessions
	a.sessions = map[*memPTY]struct{}{}
	a.mu.Unlock()
	for p := range sessions {
		_ = p.Close()
	}
}

type memPTY struct {
	agent  *memAgent
	out    *io.PipeReader
	outW   *io.PipeWriter
	cat    bool
	noEcho bool // "stty -echo" ran: only cat's copy comes back

	wmu  sync.Mutex
	line []byte
	once sync.Once
}

func (p *memPTY) Read(b []byte) (int, error) { return p.out.Read(b) }

func (p *memPTY) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	out := make([]byte, 0, 2*len(b)+2)
	for i, c := range b {
		switch c {
		case 0x03:
			out = append(out, '^', 'C', '\r', '\n')
			if _, err := p.outW.Write(out); err != nil {
				return i, fmt.Errorf("pty closed: %w", err)
			}
			_ = p.outW.Close()
			return len(b), nil
		case '\r', '\n':
			if !p.noEcho {
				out = append(out, '\r', '\n')
			}
			if p.cat {
				out = append(out, p.line...)
				out = append(out, '\r', '\n')
			}
			p.line = p.line[:0]
		default:
			if !p.noEcho {
				out = append(out, c)
			}
			if p.cat {
				p.line = append(p.line, c)
			}
		}
	}
	if _, err := p.outW.Write(out); err != nil {
		return 0, fmt.Errorf("pty closed: %w", err)
	}
	return len(b), nil
}

func (p *memPTY) Close() error {
	p.once.Do(func() {
		_ = p.outW.Close()
		_ = p.out.Close()
		p.agent.mu.Lock()
		delete(p.agent.sessions, p)
		p.agent.mu.Unlock()
	})
	return nil
}
