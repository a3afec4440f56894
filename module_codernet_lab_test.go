package cdeload

import (
	"strings"
	"testing"
)

// A workspace of the embedded lab's Coder simulator is reached the way a
// real Coder's is: through the simulator's coordination endpoint, to the
// agent's SSH server (tailnet port 1), which takes no credentials; a key
// the lab's own SSH servers refuse still gets in there, while a bare lab
// workspace (reached over the lab's own tailnet) refuses it.
func TestLabCoderWorkspaceOverCoderTailnet(t *testing.T) {
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '20ms' });
const net = new cde.Tailnet();
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes' });
  const s = await ssh.connect({ tailnet: net, host: ws.address, privateKey: __ENV.OTHER_KEY });
  report(TEST, 'user', s.user);
  report(TEST, 'echo', await s.echo({ bytesPerTick: 128, tickInterval: '20ms', duration: 500 }));
  await s.close();
  const bare = await cde.lab.startWorkspace({ name: 'bare-coder-net' });
  report(TEST, 'bare', await msg(() => ssh.connect({ tailnet: net, host: bare.address, privateKey: __ENV.OTHER_KEY, timeout: '20s' })));
  await cde.lab.stopWorkspace(bare.name);
  await coder.cleanup();
}
`, map[string]string{"OTHER_KEY": newPrivateKeyPEM(t)})
	if got := r.reportString("user"); got != "coder" {
		t.Errorf("session user %q, want coder", got)
	}
	var echo struct {
		FramesSent, FramesReceived int64
		Errors                     int
	}
	r.report("echo", &echo)
	if echo.Errors != 0 || echo.FramesSent == 0 || echo.FramesReceived != echo.FramesSent {
		t.Errorf("echo over the Coder tailnet = %+v, want every frame back", echo)
	}
	if got := r.reportString("bare"); !strings.Contains(got, "unable to authenticate") {
		t.Errorf("bare lab workspace with a foreign key: %q, want an authentication failure (the lab's own path)", got)
	}
	dials := r.sink.samples(mTailnetDial)
	if len(dials) < 1 {
		t.Fatal("no tailnet_dial_duration sample")
	}
	if p, _ := dials[0].Tags.Get("path"); p != "derp" && p != "direct" {
		t.Errorf("tailnet_dial_duration path %q, want derp or direct", p)
	}
	if n := len(r.sink.samples(mTailnetUp)); n < 1 {
		t.Errorf("tailnet_up_duration: %d samples, want the Coder node's", n)
	}
}

// An echo stream to a lab Coder workspace that stops mid-stream ends at
// once with an error naming the workspace, as against a real Coder.
func TestLabCoderWorkspaceStoppedMidStream(t *testing.T) {
	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '20ms' });
const net = new cde.Tailnet();
export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes' });
  const s = await ssh.connect({ tailnet: net, host: ws.address });
  const started = Date.now();
  const echo = s.echo({ bytesPerTick: 128, tickInterval: '50ms', duration: '60s' });
  await new Promise((resolve) => setTimeout(resolve, 700));
  await ws.stop();
  const res = await echo;
  report(TEST, 'echo', { name: ws.name, errors: res.errors, error: res.error, received: res.framesReceived, ms: Date.now() - started });
  await s.close();
  await coder.cleanup();
}
`, nil)
	var echo struct {
		Name, Error      string
		Errors, Received int
		Ms               float64
	}
	r.report("echo", &echo)
	t.Logf("the stream ended after %v ms: %s", echo.Ms, echo.Error)
	if echo.Errors != 1 || !strings.Contains(echo.Error, "workspace "+echo.Name) || echo.Received == 0 {
		t.Errorf("echo to a workspace stopped mid-stream = %+v, want one error naming workspace %s after some frames", echo, echo.Name)
	}
	if echo.Ms > 30000 {
		t.Errorf("the stream ended %v ms after it started, want soon after the stop (at 0.7 s), not at its 60 s end", echo.Ms)
	}
}
