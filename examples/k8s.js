// Plain Kubernetes workspaces (no Coder): one Pod per workspace, created
// from an image or a Pod template, timed through each phase, reached over
// SSH, deleted.
//
//   eval "$(cdeload lab --kubernetes --pod-schedule-delay 300ms --pod-pull-delay 500ms | grep ^export)"
//   cdeload run examples/k8s.js
//
// The lab's kubelet runs each pod as a lab workspace (a tailnet node with an
// SSH server) whose tailnet address is the pod IP, so ssh.connect reaches it
// with the lab's credentials. Against a real cluster, set KUBECONFIG and
// CDELOAD_K8S_NAMESPACE, and POD_TEMPLATE to a Pod whose container runs an
// SSH server reachable from the load generator.
//
// With TAILNET=1 each pod runs tailscale beside its workspace container (a
// tailscale/tailscale sidecar with TS_AUTHKEY from the Secret
// tailscale-auth, as a real pod joins a tailnet; the lab joins it to its own
// tailnet) and is reached at its tailnet address over the script's Tailnet
// (TS_CONTROL_URL/TS_AUTHKEY, or the lab's), not at its pod IP.
//
// Knobs: WORKSPACES (VUs, one workspace each; default 5), TRAFFIC_DURATION
// (default 10s), READY_TIMEOUT (default 2m), POD_TEMPLATE (a file with a Pod
// as YAML or JSON; default the image below), TAILNET (1: the pods join a
// tailnet).
import { check } from 'k6';
import cde from 'k6/x/cdeload';

const WORKSPACES = Number(__ENV.WORKSPACES || 5);
const READY_TIMEOUT = __ENV.READY_TIMEOUT || '2m';
const ECHO = { bytesPerTick: 128, tickInterval: '100ms', duration: __ENV.TRAFFIC_DURATION || '10s' };

export const options = {
  scenarios: {
    k8s: { executor: 'per-vu-iterations', vus: WORKSPACES, iterations: 1, maxDuration: '15m' },
  },
  thresholds: {
    workspace_pod_schedule_duration: ['p(95)<60000'],
    workspace_ready_duration: ['p(95)<120000'],
    traffic_rtt: ['p(95)<100'],
  },
};

const IMAGE = 'codercom/enterprise-base:ubuntu';
const TAILNET = __ENV.TAILNET === '1' ? new cde.Tailnet() : undefined;

// A pod that joins the tailnet itself, under its pod name (tailscale's
// default host name).
const TAILNET_POD = {
  spec: {
    containers: [
      { name: 'dev', image: IMAGE },
      {
        name: 'tailscale',
        image: 'tailscale/tailscale:stable',
        env: [
          { name: 'TS_AUTHKEY', valueFrom: { secretKeyRef: { name: 'tailscale-auth', key: 'authkey' } } },
          { name: 'TS_USERSPACE', value: 'true' },
        ],
      },
    ],
  },
};

function podSpec() {
  const net = TAILNET ? { tailnet: TAILNET } : {};
  if (__ENV.POD_TEMPLATE) return { podTemplate: open(__ENV.POD_TEMPLATE), ...net };
  if (TAILNET) return { podTemplate: TAILNET_POD, ...net };
  return { image: IMAGE };
}

const k8s = new cde.Kubernetes({
  namespace: __ENV.CDELOAD_K8S_NAMESPACE || 'cdeload-lab',
  ...podSpec(),
});

export default async function () {
  let ws;
  try {
    ws = await k8s.createWorkspace({ timeout: READY_TIMEOUT });
  } catch (e) {
    console.error(e.message); // names the pod's reason: Unschedulable, ImagePullBackOff, ...
    return;
  }
  try {
    const session = await cde.ssh.connect({ host: ws.address, ...(TAILNET ? { tailnet: TAILNET } : {}) });
    try {
      const r = await session.echo(ECHO);
      check(r, { 'every frame came back': (x) => x.framesSent > 0 && x.framesReceived === x.framesSent });
    } finally {
      await session.close();
    }
  } finally {
    await ws.delete();
  }
}

// Removes the run's pods a failed iteration left (cdeload also does it when
// the run ends, after Ctrl-C too).
export async function teardown() {
  await k8s.cleanup();
}
