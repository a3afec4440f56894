package coder_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/workspace/coder"
)

// TestWorkspaceLifecycle creates two workspaces (a scaletest user each),
// waits for their real agents, runs the web terminal's echo stream over
// one, stops and starts it (Coder gives the agent a new ID on every start),
// echoes again, deletes it, and leaves the other to cleanup(). Afterwards
// the real API knows neither workspace nor user.
func TestWorkspaceLifecycle(t *testing.T) {
	p, bin := setup(t)
	r := runJS(t, p, bin, `
import cde from 'k6/x/cdeload';
const coder = new cde.Coder();
const PARAMS = { cpu: '2', memory: '4', home_disk_size: '1' };
const ECHO = { bytesPerTick: 128, tickInterval: '100ms', duration: '3s' };
async function echo(ws) {
  const term = await ws.terminal();
  try { return await term.echo(ECHO); } finally { await term.close(); }
}
function agent(ws) { return { agentId: ws.agentId, address: ws.address, readyMs: ws.timings.readyMs, agentConnectMs: ws.timings.agentConnectMs }; }
export default async function () {
  const a = await coder.createWorkspace({ template: __ENV.TEMPLATE, parameters: PARAMS });
  const b = await coder.createWorkspace({ template: __ENV.TEMPLATE });
  const out = { names: [a.name, b.name], owners: [a.owner, b.owner], ids: [a.id, b.id], first: agent(a), other: agent(b) };
  out.echo1 = await echo(a);
  await a.stop();
  out.stopped = agent(a);
  await a.start();
  out.started = agent(a);
  out.echo2 = await echo(a);
  await a.delete();
  await coder.cleanup();
  console.log('RESULT ' + JSON.stringify(out));
}
`)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	type agentState struct {
		AgentID, Address        string
		ReadyMs, AgentConnectMs float64
	}
	type echoResult struct {
		FramesSent, FramesReceived, Errors, Duplicates int
		RTT                                            struct {
			Count    int
			P50, Max float64
		}
	}
	var out struct {
		Names, Owners, IDs             []string
		First, Other, Stopped, Started agentState
		Echo1, Echo2                   echoResult
	}
	r.decode(t, &out)
	for i, n := range out.Names {
		if !strings.HasPrefix(n, "scaletest-") || out.Owners[i] != n || out.IDs[i] == "" {
			t.Errorf("workspace %d: name %q owner %q id %q, want a scaletest- workspace owned by its own scaletest user", i, n, out.Owners[i], out.IDs[i])
		}
	}
	for name, a := range map[string]agentState{"first": out.First, "other": out.Other, "started": out.Started} {
		if a.AgentID == "" || coder.AgentAddress(a.AgentID) != a.Address || a.ReadyMs <= 0 || a.AgentConnectMs <= 0 {
			t.Errorf("%s build: %+v, want a connected agent with its tailnet address and timings", name, a)
		}
	}
	if out.Stopped.AgentID != "" || out.Stopped.Address != "" {
		t.Errorf("after stop(): %+v, want no agent", out.Stopped)
	}
	if out.Started.AgentID == out.First.AgentID {
		t.Errorf("after start(): agentId %s is still the first build's; coderd gives a new agent per start", out.Started.AgentID)
	}
	for name, e := range map[string]echoResult{"before stop": out.Echo1, "after start": out.Echo2} {
		// The tty's own echo is off on a real agent: each frame comes back once, from cat.
		if e.Errors != 0 || e.FramesSent < 20 || e.FramesReceived != e.FramesSent || e.Duplicates != 0 || e.RTT.Count != e.FramesReceived || e.RTT.P50 <= 0 {
			t.Errorf("terminal echo %s: %+v, want every frame back once with an RTT sample and 0 errors", name, e)
		}
	}
	c := ownerClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, id := range out.IDs {
		if _, err := c.Workspace(ctx, id); !coder.IsNotFound(err) {
			t.Errorf("workspace %s after the run: %v, want 404/410", out.Names[i], err)
		}
	}
	if left := leftovers(t, c, "scaletest-"); len(left) > 0 {
		t.Errorf("left after delete() and cleanup(): %v", left)
	}
}

// TestClearErrors checks the errors a user meets first: bad rich
// parameters, an unknown template, a wrong and an expired session token.
// Each names the field or the cause.
func TestClearErrors(t *testing.T) {
	p, bin := setup(t)
	c := ownerClient(t, p)
	// A token of the owner that expires in one second.
	var tok struct {
		Key string `json:"key"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Do(ctx, http.MethodPost, "/api/v2/users/me/keys/tokens",
		map[string]any{"lifetime": int64(time.Second), "token_name": "interop-expired"}, &tok, http.StatusCreated); err != nil {
		t.Fatalf("create a short-lived token: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	r := runJS(t, p, bin, `
import cde from 'k6/x/cdeload';
const coder = new cde.Coder();
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
function other(token) { return new cde.Coder({ url: __ENV.CODER_URL, token }); }
export default async function () {
  const T = __ENV.TEMPLATE;
  console.log('RESULT ' + JSON.stringify({
    unknownParam: await msg(() => coder.createWorkspace({ template: T, parameters: { gpu: '1' } })),
    outsideOptions: await msg(() => coder.createWorkspace({ template: T, parameters: { memory: '3' } })),
    belowMin: await msg(() => coder.createWorkspace({ template: T, parameters: { home_disk_size: '0' } })),
    unknownTemplate: await msg(() => coder.createWorkspace({ template: 'no-such-template' })),
    wrongToken: await msg(() => other('wrong').createWorkspace({ template: T })),
    expiredToken: await msg(() => other(__ENV.EXPIRED).createWorkspace({ template: T })),
  }));
  await coder.cleanup();
}
`, "-e", "EXPIRED="+tok.Key)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var got map[string]string
	r.decode(t, &got)
	want := map[string][]string{
		"unknownParam":    {`unknown parameter "gpu"`, "cpu, memory, home_disk_size"},
		"outsideOptions":  {`parameter "memory"`, `value "3"`, "not one of the options: 2, 4, 6, 8"},
		"belowMin":        {`parameter "home_disk_size"`, `value "0"`, "below the minimum 1"},
		"unknownTemplate": {`template "no-such-template"`, "404"},
		"wrongToken":      {"401", "session has expired", "Invalid API key format"},
		"expiredToken":    {"401", "API key expired"},
	}
	for k, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[k], s) {
				t.Errorf("%s: %q does not say %q", k, got[k], s)
			}
		}
	}
	if strings.Contains(r.stderr, p.Token) || strings.Contains(r.stderr, tok.Key) {
		t.Error("a session token appears in cdeload's output")
	}
	if left := leftovers(t, c, "scaletest-"); len(left) > 0 {
		t.Errorf("failed creates left: %v", left)
	}
}
