package cdeload

import (
	"strings"
	"testing"
)

// TestCoderWorkspaceAndTerminal creates workspaces on the embedded Coder
// simulator, runs an echo stream through the web terminal, deletes one
// workspace and cleans the other up, and checks the workspace_* and
// traffic samples.
func TestCoderWorkspaceAndTerminal(t *testing.T) {
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '20ms' });
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes', parameters: { cpu: '2', memory: 4, home_disk_size: 1 } });
  report(TEST, 'ws', { name: ws.name, id: ws.id, owner: ws.owner, agentId: ws.agentId, timings: ws.timings });
  const term = await ws.terminal();
  report(TEST, 'echo', await term.echo({ bytesPerTick: 100, tickInterval: '10ms', duration: '500ms' }));
  await term.close();
  await ws.delete();
  const ws2 = await coder.createWorkspace({ template: 'kubernetes' });
  report(TEST, 'ws2', ws2.name);
  await coder.cleanup();
  await coder.cleanup();
  report(TEST, 'badTemplate', await msg(() => coder.createWorkspace({ template: 'no-such-template' })));
  report(TEST, 'badParam', await msg(() => coder.createWorkspace({ template: 'kubernetes', parameters: { cpu: '3' } })));
  report(TEST, 'unknownKey', await msg(() => coder.createWorkspace({ template: 'kubernetes', size: 1 })));
}
`, nil)
	var ws struct {
		Name, ID, Owner, AgentID string
		Timings                  struct{ BuildMs, AgentConnectMs, ReadyMs float64 }
	}
	r.report("ws", &ws)
	if !strings.HasPrefix(ws.Name, "scaletest-") || ws.ID == "" || ws.AgentID == "" || ws.Timings.ReadyMs <= 0 ||
		ws.Timings.ReadyMs < ws.Timings.BuildMs {
		t.Errorf("workspace = %+v", ws)
	}
	var echo struct {
		FramesSent, FramesReceived, Duplicates int64
		Errors                                 int
		Error                                  string
	}
	r.report("echo", &echo)
	if echo.Errors != 0 || echo.FramesSent == 0 || echo.FramesReceived != echo.FramesSent || echo.Duplicates != echo.FramesSent {
		t.Errorf("terminal echo = %+v, want every frame back once plus the tty's copy", echo)
	}
	rtt := r.sink.samples(mTrafficRTT)
	if int64(len(rtt)) != echo.FramesReceived {
		t.Errorf("traffic_rtt: %d samples, want %d", len(rtt), echo.FramesReceived)
	}
	for _, s := range rtt {
		if tr, _ := s.Tags.Get("transport"); tr != "terminal" || s.Metadata["workspace"] != ws.Name {
			t.Fatalf("traffic_rtt tags %v metadata %v, want transport=terminal and workspace %s in metadata", s.Tags.Map(), s.Metadata, ws.Name)
		}
	}
	for _, name := range []string{mWorkspaceBuild, mWorkspaceAgentConnect, mWorkspaceReady} {
		got := r.sink.samples(name)
		if len(got) != 2 {
			t.Errorf("%s: %d samples, want 2 (two workspaces)", name, len(got))
			continue
		}
		if got[0].Metadata["workspace"] != ws.Name {
			t.Errorf("%s metadata = %v, want workspace %s", name, got[0].Metadata, ws.Name)
		}
		if _, ok := got[0].Tags.Get("workspace"); ok {
			t.Errorf("%s: workspace must not be a tag: %v", name, got[0].Tags.Map())
		}
	}
	// The provider reports the delete phase of delete(), not of cleanup().
	if n := len(r.sink.samples(mWorkspaceDelete)); n != 1 {
		t.Errorf("workspace_delete_duration: %d samples, want 1", n)
	}
	var fails, total float64
	for _, s := range r.sink.samples(mWorkspaceFailed) {
		fails += s.Value
		total++
	}
	// 2 creates and 1 delete succeeded; the bad template and parameter failed.
	if fails != 2 || total != 5 {
		t.Errorf("workspace_failed: %v failures of %v, want 2 of 5", fails, total)
	}
	for name, want := range map[string]string{
		"badTemplate": `coder.createWorkspace(template "no-such-template"): `,
		"badParam":    `coder.createWorkspace(template "kubernetes"): `,
		"unknownKey":  `coder.createWorkspace: unknown option "size" (allowed: name, parameters, template, timeout)`,
	} {
		if got := r.reportString(name); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want it to contain %q", name, got, want)
		}
	}
}

// TestCoderWorkspaceObjectAfterStopStart checks that a workspace object
// follows its builds: Coder gives the agent a new ID (and address) on every
// start, and a stopped workspace has no agent, so terminal() says so.
func TestCoderWorkspaceObjectAfterStopStart(t *testing.T) {
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '20ms' });
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes' });
  const first = { agentId: ws.agentId, address: ws.address };
  await ws.stop();
  const stopped = { agentId: ws.agentId, address: ws.address, terminal: await msg(() => ws.terminal()) };
  await ws.start();
  const started = { agentId: ws.agentId, address: ws.address, readyMs: ws.timings.readyMs };
  const term = await ws.terminal();
  const echo = await term.echo({ bytesPerTick: 64, tickInterval: '10ms', duration: '200ms' });
  await term.close();
  report(TEST, 'states', { first, stopped, started, echoErrors: echo.errors, framesReceived: echo.framesReceived });
  await coder.cleanup();
}
`, nil)
	var st struct {
		First, Stopped, Started struct {
			AgentID, Address, Terminal string
			ReadyMs                    float64
		}
		EchoErrors, FramesReceived int
	}
	r.report("states", &st)
	if st.First.AgentID == "" || st.First.Address == "" {
		t.Fatalf("created workspace has no agent: %+v", st.First)
	}
	if st.Stopped.AgentID != "" || st.Stopped.Address != "" || !strings.Contains(st.Stopped.Terminal, "has no agent (a stopped workspace") {
		t.Errorf("after stop() = %+v, want no agent and a terminal() error saying it is stopped", st.Stopped)
	}
	if st.Started.AgentID == "" || st.Started.AgentID == st.First.AgentID || st.Started.Address == st.First.Address || st.Started.ReadyMs <= 0 {
		t.Errorf("after start() = %+v, want the new build's agent (first build's: %+v)", st.Started, st.First)
	}
	if st.EchoErrors != 0 || st.FramesReceived == 0 {
		t.Errorf("terminal echo after start: %d errors, %d frames back", st.EchoErrors, st.FramesReceived)
	}
}
