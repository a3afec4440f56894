// Scale test of a Coder deployment: create workspaces, push echo traffic to
// each one while measuring the true round trip of every frame, delete them.
//
//   cdeload run examples/scale.js                      # the embedded lab, no setup
//   cdeload lab --listen 127.0.0.1:7070 --env-file lab.env &   # then, once lab.env exists:
//   . ./lab.env && cdeload run examples/scale.js
//   CODER_URL=https://coder.example.com CODER_SESSION_TOKEN=... cdeload run examples/scale.js
//
// Each VU creates one workspace from the kubernetes template (cpu, memory
// and home_disk_size parameters), waits until it is ready, then sends a
// 128-byte frame every 100 ms for 60 s and reads each one back:
//
// - by default over SSH to `cat` in the workspace: traffic_rtt{transport:ssh}.
//   Against a lab (the embedded one, or a standalone `cdeload lab` whose
//   exports are set) through the lab's tailnet; against a real Coder through
//   Coder's own tailnet (WireGuard via coderd's DERP relay, or direct), to the
//   agent's SSH server, as `coder ssh` does;
// - with -e TRANSPORT=terminal through Coder's web terminal (ws.terminal(),
//   coderd relays to the agent): traffic_rtt{transport:terminal}.
//
// Every workspace is deleted at the end of its iteration, and teardown()
// removes whatever is left (workspaces and scaletest users), also after a
// failure or Ctrl-C.
//
// With -e EXISTING=<name prefix> (or a Coder search query such as
// "owner:alice template:docker", recognised by its ':') the traffic runs on
// workspaces that already exist instead, one VU per workspace, like
// `coder exp scaletest workspace-traffic`: setup() lists them with
// coder.workspaces() (TEMPLATE, when set, narrows the list) and fails when
// fewer than WORKSPACES match; nothing is created, and cdeload never
// deletes a workspace it did not create.
//
// Knobs (-e NAME=value or the environment): WORKSPACES (VUs, one workspace
// each; default 5), TRAFFIC_DURATION (default 60s), TEMPLATE (default
// kubernetes), CPU, MEMORY, HOME_DISK_SIZE (defaults 2, 2, 1), TRANSPORT (ssh
// or terminal; default ssh), EXISTING (see above).
import { check } from 'k6';
import exec from 'k6/execution';
import cde from 'k6/x/cdeload';

const WORKSPACES = Number(__ENV.WORKSPACES || 5);
const TRAFFIC_DURATION = __ENV.TRAFFIC_DURATION || '60s';
const TEMPLATE = __ENV.TEMPLATE || 'kubernetes';
const PARAMETERS = {
  cpu: __ENV.CPU || '2',
  memory: __ENV.MEMORY || '2',
  home_disk_size: __ENV.HOME_DISK_SIZE || '1',
};
const TRANSPORT = __ENV.TRANSPORT || 'ssh';
if (TRANSPORT !== 'ssh' && TRANSPORT !== 'terminal') {
  throw new Error(`TRANSPORT=${TRANSPORT}: want ssh or terminal`);
}
const ECHO = { bytesPerTick: 128, tickInterval: '100ms', duration: TRAFFIC_DURATION };
const EXISTING = __ENV.EXISTING || '';

export const options = {
  scenarios: {
    scale: { executor: 'per-vu-iterations', vus: WORKSPACES, iterations: 1, maxDuration: '30m' },
  },
  thresholds: {
    workspace_ready_duration: ['p(95)<120000'],
    // Failed builds (and agents that never got ready) fail the gate.
    'workspace_failed{op:create}': ['rate<0.01'],
    // One of the two has samples, depending on TRANSPORT.
    'traffic_rtt{transport:ssh}': ['p(95)<100'],
    'traffic_rtt{transport:terminal}': ['p(95)<500'],
    checks: ['rate==1'],
  },
};

// CODER_URL / CODER_SESSION_TOKEN, else the embedded lab's Coder simulator.
// Kubernetes mode: with CDELOAD_K8S_NAMESPACE (`cdeload lab --kubernetes`
// exports it; set it and KUBECONFIG for a real Coder on Kubernetes), each
// workspace's pod phases are timed too (workspace_pod_schedule_duration,
// workspace_pod_start_duration, workspace_pods_pending), and a pod that never
// became ready names its reason.
const K8S_NAMESPACE = __ENV.CDELOAD_K8S_NAMESPACE;
const coder = new cde.Coder(K8S_NAMESPACE ? { kubernetes: { namespace: K8S_NAMESPACE } } : {});
// TS_CONTROL_URL / TS_AUTHKEY (or CDELOAD_LAB_URL), else the embedded lab.
const net = new cde.Tailnet();

// EXISTING mode: the workspaces the traffic runs on, as { owner, name }
// (setup data is plain JSON; each VU looks its own workspace up again).
export async function setup() {
  if (!EXISTING) {
    return {};
  }
  const filter = EXISTING.includes(':') ? { query: EXISTING } : { prefix: EXISTING };
  if (__ENV.TEMPLATE) {
    filter.template = TEMPLATE;
  }
  const found = await coder.workspaces({ ...filter, limit: WORKSPACES });
  if (found.length < WORKSPACES) {
    throw new Error(`EXISTING=${EXISTING}: ${found.length} workspaces match, WORKSPACES=${WORKSPACES} wanted`);
  }
  return { existing: found.map((w) => ({ owner: w.owner, name: w.name })) };
}

export default async function (data) {
  if (data.existing) {
    const { owner, name } = data.existing[exec.vu.idInTest - 1];
    const [ws] = await coder.workspaces({ owner, name });
    if (!ws || ws.address === '') {
      throw new Error(`workspace ${owner}/${name} ${ws ? `is ${ws.status}, without an agent` : 'is gone'}`);
    }
    await traffic(ws); // never deleted: this run did not create it
    return;
  }
  const ws = await coder.createWorkspace({ template: TEMPLATE, parameters: PARAMETERS });
  try {
    await traffic(ws);
  } finally {
    await ws.delete();
  }
}

async function traffic(ws) {
  check(ws, { 'workspace has an agent address': (w) => w.address !== '' && w.agentId !== '' });
  const r = TRANSPORT === 'ssh' ? await sshEcho(ws) : await terminalEcho(ws);
  check(r, {
    'every frame came back': (x) => x.framesSent > 0 && x.framesReceived === x.framesSent,
    'no stream errors': (x) => x.errors === 0,
  });
  if (r.errors > 0) {
    console.error(`echo to ${ws.name}: ${r.error}`);
  }
}

// SSH over the workspace's tailnet: a lab's (its user, key and host key
// apply), or the Coder deployment's own (the agent's SSH server needs no
// credentials: the tailnet is the authentication).
async function sshEcho(ws) {
  const session = await cde.ssh.connect({ tailnet: net, host: ws.address, user: 'coder' });
  try {
    return await session.echo(ECHO);
  } finally {
    await session.close();
  }
}

// Coder's web terminal (reconnecting PTY) running cat in a tty.
async function terminalEcho(ws) {
  const term = await ws.terminal();
  try {
    return await term.echo(ECHO);
  } finally {
    await term.close();
  }
}

export async function teardown() {
  await coder.cleanup();
}
