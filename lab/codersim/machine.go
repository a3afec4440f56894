package codersim

import (
	"context"
	"sync"
	"time"
)

// stopTimeout bounds stopping one workspace machine.
const stopTimeout = time.Minute

// machineRun is one workspace machine: started when its start build's job
// succeeded (the apply created the pod), up when Backend.StartWorkspace
// returned. Its agents connect only once it is up.
type machineRun struct {
	spec   WorkspaceSpec
	ctx    context.Context // cancelled when a stop, delete or Close overtakes it
	cancel context.CancelFunc
	// started is closed when StartWorkspace has returned and, if the start
	// was overtaken, the machine it brought up has been stopped again.
	started chan struct{}
	// impl is the machine's agent once it is up; written before started is
	// closed, read after.
	impl Agent
}

// agentPlan is what the fault knobs decided for one agent when its build's
// job completed.
type agentPlan struct {
	a              *agent
	neverConnects  bool
	connect, ready time.Duration
	crashAfter     time.Duration
}

// launchMachineLocked starts the workspace machine of a start build whose
// job has just succeeded; the agents connect once it is up. A machine
// still starting from an earlier start build is overtaken first.
func (s *Server) launchMachineLocked(ws *workspaceRec, spec WorkspaceSpec, agents []*agent) {
	f := s.faults
	plans := make([]agentPlan, len(agents))
	for i, a := range agents {
		plans[i] = agentPlan{a: a, crashAfter: f.AgentCrashAfter}
		if f.AgentNeverConnectsRate > 0 && s.float() < f.AgentNeverConnectsRate {
			plans[i].neverConnects = true
			continue
		}
		plans[i].connect, plans[i].ready = s.draw(f.AgentConnect), s.draw(f.AgentReady)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	m := &machineRun{spec: spec, ctx: ctx, cancel: cancel, started: make(chan struct{})}
	prev := ws.machine
	ws.machine = m
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		if prev != nil { // a start on top of a start: the backend replaces the machine
			prev.cancel()
			<-prev.started
		}
		if !s.startMachine(m) {
			return
		}
		var wg sync.WaitGroup
		for _, p := range plans {
			wg.Go(func() { s.runAgent(m, p) })
		}
		wg.Wait()
	}()
}

// startMachine runs Backend.StartWorkspace for m and reports whether the
// machine is up. A machine that starts after a stop, delete or Close
// overtook it is stopped at once; a failed start is logged, and its agents
// stay "connecting" until they time out.
func (s *Server) startMachine(m *machineRun) bool {
	defer close(m.started)
	impl, err := s.backend.StartWorkspace(m.ctx, m.spec)
	if m.ctx.Err() != nil {
		if err == nil {
			s.stopMachineNow(m.spec)
		}
		return false
	}
	if err != nil {
		s.cfg.Logf("codersim: workspace %s/%s: the workspace machine failed to start, its agent will not connect: %v",
			m.spec.Owner, m.spec.Name, err)
		return false
	}
	m.impl = impl
	return true
}

// stopMachineNow stops a workspace machine outside any build, logging a
// failure.
func (s *Server) stopMachineNow(spec WorkspaceSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := s.backend.StopWorkspace(ctx, spec); err != nil {
		s.cfg.Logf("codersim: workspace %s/%s: stop the workspace machine: %v", spec.Owner, spec.Name, err)
	}
}

// takeMachine is the first step of a stop or delete build: it takes the
// workspace's machine, overtakes its start if that is still in flight and
// waits for it to return, then stops the machine. The stop runs to its end
// even if the build is cancelled meanwhile, so no machine is left behind.
func (s *Server) takeMachine(ctx context.Context, ws *workspaceRec, spec WorkspaceSpec) error {
	s.mu.Lock()
	m := ws.machine
	ws.machine = nil
	s.mu.Unlock()
	if m != nil {
		m.cancel()
		<-m.started
		spec = m.spec
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return s.backend.StopWorkspace(sctx, spec)
}

// runAgent connects an agent of a machine that is up (unless it never
// does), makes it ready and, with AgentCrashAfter, disconnects it later.
func (s *Server) runAgent(m *machineRun, p agentPlan) {
	a := p.a
	if p.neverConnects || !sleepCtx(m.ctx, p.connect) {
		return
	}
	spec := m.spec
	spec.AgentID = a.id
	events, _ := s.backend.(AgentEvents)
	if events != nil {
		events.AgentConnected(spec)
	}
	s.mu.Lock()
	if a.lifecycle == "off" || m.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	now := time.Now().UTC()
	a.firstConnectedAt, a.lastConnectedAt, a.startedAt = &now, &now, &now
	a.lifecycle = "starting"
	a.impl = m.impl
	a.updatedAt = now
	s.mu.Unlock()
	if !sleepCtx(m.ctx, p.ready) {
		return
	}
	s.mu.Lock()
	if a.lifecycle == "off" {
		s.mu.Unlock()
		return
	}
	readyAt := time.Now().UTC() // a new variable: the timestamps are pointers
	a.lifecycle = "ready"
	a.readyAt = &readyAt
	a.updatedAt = readyAt
	s.mu.Unlock()
	if p.crashAfter <= 0 || !sleepCtx(m.ctx, p.crashAfter) {
		return
	}
	s.mu.Lock()
	if a.lifecycle == "off" || m.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	crashedAt := time.Now().UTC()
	a.disconnectedAt = &crashedAt
	a.impl = nil
	a.updatedAt = crashedAt
	s.mu.Unlock()
	if events != nil {
		events.AgentCrashed(spec)
	}
}
