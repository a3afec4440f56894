// SSH echo traffic against the embedded lab (no setup needed):
//
//   cdeload run examples/ssh-echo.js
//
// setup() starts one lab workspace per VU and hands their addresses and SSH
// credentials to the VUs; each VU opens an SSH session over the tailnet and
// pushes 128-byte frames every 100 ms for 10 s, measuring the true round trip
// of every frame (traffic_rtt{transport:ssh}). teardown() stops the
// workspaces. Point it at a standalone lab with CDELOAD_LAB_URL, or at your
// own tailnet with TS_CONTROL_URL / TS_AUTHKEY.
import { check } from 'k6';
import exec from 'k6/execution';
import cde from 'k6/x/cdeload';

const VUS = Number(__ENV.VUS || 4);
const DURATION = __ENV.DURATION || '10s';

export const options = {
  scenarios: {
    echo: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '2m' },
  },
  thresholds: {
    'traffic_rtt{transport:ssh}': ['p(95)<100'],
    traffic_errors: ['count==0'],
    checks: ['rate==1'],
  },
};

// One shared tailnet node per process (the default), joined on first use.
const net = new cde.Tailnet();

export async function setup() {
  const workspaces = [];
  for (let i = 0; i < VUS; i++) {
    workspaces.push(await cde.lab.startWorkspace());
  }
  return { workspaces };
}

export default async function (data) {
  const ws = data.workspaces[(exec.vu.idInTest - 1) % data.workspaces.length];
  const session = await cde.ssh.connect({
    tailnet: net,
    host: ws.address,
    user: ws.user,
    privateKey: ws.privateKey,
    hostKey: ws.hostKey,
  });
  const r = await session.echo({ bytesPerTick: 128, tickInterval: '100ms', duration: DURATION });
  check(r, {
    'every frame came back': (x) => x.framesReceived === x.framesSent && x.framesSent > 0,
    'no stream errors': (x) => x.errors === 0,
    'no missed ticks': (x) => x.ticksMissed === 0,
  });
  await session.close();
}

export async function teardown(data) {
  for (const ws of data.workspaces) {
    await cde.lab.stopWorkspace(ws.name);
  }
}
