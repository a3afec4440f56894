package cdeload

import (
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab"
)

// With the tailnet option, a workspace pod that joins the tailnet itself
// (a tailscale sidecar, as a real pod does) is reached at its tailnet
// address, learnt from the tailnet's peers under the pod's name, not at
// its pod IP; SSH echo goes over that tailnet. A pod that joins under
// another name fails once the timeout runs out, naming the workspace and
// saying it did not join.
func TestKubernetesProviderTailnetAddress(t *testing.T) {
	env := kubetest.New(t)
	vars := startKubeLab(t, env, lab.KubernetesConfig{ScheduleDelay: 50 * time.Millisecond})
	r := runScript(t, header+`
import { Kubernetes } from 'k6/x/cdeload';
const net = new Tailnet({ hostname: 'kube-runner' });
function sidecar(extra) {
  return { spec: { containers: [
    { name: 'dev', image: 'codercom/enterprise-base:ubuntu' },
    { name: 'tailscale', image: 'tailscale/tailscale:stable', env: [
      { name: 'TS_AUTHKEY', valueFrom: { secretKeyRef: { name: 'tailscale-auth', key: 'authkey' } } },
      { name: 'TS_USERSPACE', value: 'true' },
    ].concat(extra) },
  ] } };
}
const opts = { namespace: __ENV.NS, kubeconfig: __ENV.KCFG, tailnet: net };
const k8s = new Kubernetes(Object.assign({ podTemplate: sidecar([]) }, opts));
const elsewhere = new Kubernetes(Object.assign({ podTemplate: sidecar([{ name: 'TS_HOSTNAME', value: 'elsewhere' }]) }, opts));
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  const ws = await k8s.createWorkspace();
  report(TEST, 'ws', { name: ws.name, address: ws.address, podIP: ws.podIP });
  const s = await ssh.connect({ tailnet: net, host: ws.address });
  report(TEST, 'echo', await s.echo({ bytesPerTick: 64, tickInterval: '20ms', duration: 300 }));
  await s.close();
  await ws.delete();
  report(TEST, 'neverJoins', await msg(() => elsewhere.createWorkspace({ timeout: '10s' })));
  await k8s.cleanup();
}
`, vars)
	var ws struct{ Name, Address, PodIP string }
	r.report("ws", &ws)
	addr, err := netip.ParseAddr(ws.Address)
	if err != nil || !netip.MustParsePrefix("100.64.0.0/10").Contains(addr) {
		t.Errorf("ws.address %q: want a tailnet (100.64.0.0/10) address", ws.Address)
	}
	if ws.PodIP == "" || ws.PodIP == ws.Address {
		t.Errorf("ws.podIP %q, ws.address %q: want the pod IP, and an address that is not it", ws.PodIP, ws.Address)
	}
	var echo struct{ FramesSent, FramesReceived int64 }
	r.report("echo", &echo)
	if echo.FramesSent == 0 || echo.FramesReceived != echo.FramesSent {
		t.Errorf("echo over the tailnet to the pod: %+v", echo)
	}
	got := r.reportString("neverJoins")
	if !regexp.MustCompile(`workspace scaletest-\S+: pod scaletest-\S+: ready, but did not join the tailnet \(as host scaletest-\S+\) within the timeout`).MatchString(got) {
		t.Errorf("a pod joining under another name: %q, want the workspace and pod named and 'did not join the tailnet within the timeout'", got)
	}
	assertNamespaceEmpty(t, env)
}
