package sshserver

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Per-session bounds on client-supplied state.
const (
	maxEnvVars    = 64
	maxEnvBytes   = 4096
	maxCommandLen = 64 << 10
)

// signalNumbers are the RFC 4254 signal names the server accepts.
var signalNumbers = map[string]int{
	"ABRT": 6, "ALRM": 14, "FPE": 8, "HUP": 1, "ILL": 4, "INT": 2, "KILL": 9,
	"PIPE": 13, "QUIT": 3, "SEGV": 11, "TERM": 15, "USR1": 10, "USR2": 12,
}

// session is one session channel: it collects env and pty settings, then
// runs one command.
type session struct {
	ctx context.Context
	srv *Server
	ch  ssh.Channel

	mu      sync.Mutex
	env     []string // "NAME=value", in arrival order
	pty     *ptyRequest
	started bool
	sig     chan string // buffered 1: first signal wins
	tty     *lineDiscipline
}

type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

func newSession(ctx context.Context, srv *Server, ch ssh.Channel) *session {
	return &session{ctx: ctx, srv: srv, ch: ch, sig: make(chan string, 1)}
}

// serve handles the channel's requests until the channel closes.
func (s *session) serve(reqs <-chan *ssh.Request) {
	var runWG sync.WaitGroup
	defer func() {
		// The client closed the channel (or the connection is gone): hang
		// up on a running command, as closing a tty's master does.
		s.deliver("HUP")
		s.ch.Close()
		runWG.Wait()
	}()
	stop := context.AfterFunc(s.ctx, func() { s.ch.Close() })
	defer stop()

	for req := range reqs {
		ok := false
		switch req.Type {
		case "env":
			ok = s.handleEnv(req.Payload)
		case "pty-req":
			ok = s.handlePty(req.Payload)
		case "window-change":
			ok = s.handleWindowChange(req.Payload)
		case "signal":
			ok = s.handleSignal(req.Payload)
		case "exec", "shell":
			var cmdline string
			if req.Type == "exec" {
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil || len(p.Command) > maxCommandLen {
					break
				}
				cmdline = p.Command
			} else {
				cmdline = "cat"
			}
			s.mu.Lock()
			if !s.started {
				s.started = true
				ok = true
			}
			s.mu.Unlock()
			if ok {
				if req.WantReply {
					req.Reply(true, nil)
				}
				runWG.Add(1)
				go func() {
					defer runWG.Done()
					s.run(cmdline)
				}()
				continue
			}
		}
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
}

func (s *session) handleEnv(payload []byte) bool {
	var p struct{ Name, Value string }
	if err := ssh.Unmarshal(payload, &p); err != nil {
		return false
	}
	if p.Name == "" || len(p.Name)+len(p.Value) > maxEnvBytes {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return false
	}
	for i, kv := range s.env {
		if len(kv) > len(p.Name) && kv[:len(p.Name)] == p.Name && kv[len(p.Name)] == '=' {
			s.env[i] = p.Name + "=" + p.Value
			return true
		}
	}
	if len(s.env) >= maxEnvVars {
		return false
	}
	s.env = append(s.env, p.Name+"="+p.Value)
	return true
}

func (s *session) handlePty(payload []byte) bool {
	var p ptyRequest
	if err := ssh.Unmarshal(payload, &p); err != nil {
		return false
	}
	modes, err := parseModes([]byte(p.Modes))
	if err != nil {
		s.srv.cfg.Logf("sshserver: pty-req: %v", err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.pty != nil {
		return false
	}
	s.pty = &p
	s.tty = newLineDiscipline(modes, p.Cols, p.Rows)
	return true
}

func (s *session) handleWindowChange(payload []byte) bool {
	var p struct{ Cols, Rows, Width, Height uint32 }
	if err := ssh.Unmarshal(payload, &p); err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty == nil {
		return false
	}
	s.tty.setSize(p.Cols, p.Rows)
	return true
}

func (s *session) handleSignal(payload []byte) bool {
	var p struct{ Signal string }
	if err := ssh.Unmarshal(payload, &p); err != nil {
		return false
	}
	if _, ok := signalNumbers[p.Signal]; !ok {
		return false
	}
	s.deliver(p.Signal)
	return true
}

// deliver records a signal for the running (or next) command; only the first
// signal counts.
func (s *session) deliver(sig string) {
	select {
	case s.sig <- sig:
	default:
	}
}

// run executes cmdline and reports its exit status on the channel.
func (s *session) run(cmdline string) {
	s.mu.Lock()
	env := append([]string(nil), s.env...)
	tty := s.tty
	s.mu.Unlock()

	pctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	p := &process{
		ctx:  pctx,
		env:  env,
		tty:  tty,
		rate: s.srv.cfg.CatBytesPerSecond,
	}
	var ttyDone chan struct{}
	if tty != nil {
		in := tty.start(s.ch, s.deliver)
		p.stdin = in
		p.stdout = tty.output(s.ch)
		p.stderr = p.stdout
		ttyDone = make(chan struct{})
		go func() {
			defer close(ttyDone)
			tty.pump(pctx, s.ch)
		}()
	} else {
		p.stdin = s.ch
		p.stdout = s.ch
		p.stderr = s.ch.Stderr()
	}

	done := make(chan int, 1)
	go func() { done <- p.runLine(cmdline) }()

	var code int
	var sig string
	select {
	case code = <-done:
	case sig = <-s.sig:
		// Built-in commands die on every signal, as a process without
		// handlers would (KILL, TERM, INT, HUP, ...).
		cancel()
		if tty != nil {
			tty.closeInput()
		}
	}
	shut := func() {
		if sig != "" {
			payload := ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{Signal: sig})
			s.ch.SendRequest("exit-signal", false, payload)
		} else {
			s.ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
		}
		s.ch.CloseWrite()
		s.ch.Close()
	}
	if tty != nil {
		// The tty's echo may still be writing to the channel.
		tty.shutOutput(shut)
	} else {
		shut()
	}
	if sig != "" {
		// Let a command blocked on the channel see it closed.
		<-done
	}
	if ttyDone != nil {
		<-ttyDone
	}
	s.srv.cfg.Logf("sshserver: command %q ended (status %d, signal %q)", truncate(cmdline, 80), code, sig)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
