// The cdeload side of the echo benchmark (bench/echo.sh); the plain-Go side
// is bench/echo/baseline. Both run the same streams against the same
// standalone lab (CDELOAD_LAB_URL): one SSH connection per stream, stream i
// to workspace i mod W, a frame of BYTES bytes every INTERVAL for DURATION.
//
// Schedule (the same as the baseline): every VU joins the shared tailnet
// node, then connects at once; stream i starts at T0 + i/N * INTERVAL, so
// the N streams are spread over one tick interval, with T0 = SETTLE after
// the node is up (the baseline's T0 is SETTLE after its node is up too:
// counting SETTLE from the scenario's start instead left the join's
// seconds out of B's connection storm, which then ran into its echo phase).
//
//   CDELOAD_LAB_URL=http://127.0.0.1:7070 cdeload run -q \
//     -e STREAMS=100 -e HOSTS_FILE=/tmp/hosts.json -e OUT=/tmp/cdeload.json bench/echo/script.js
//
// HOSTS_FILE is a JSON array of workspace tailnet addresses, sorted by
// workspace name. handleSummary writes OUT: the figures the benchmark table
// reads (traffic_rtt percentiles over every frame, traffic_ticks_missed,
// traffic_errors), as computed by cdeload's own metrics engine.
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import cde from 'k6/x/cdeload';

const STREAMS = parseInt(__ENV.STREAMS || '10', 10);
const BYTES = parseInt(__ENV.BYTES || '128', 10);
const INTERVAL_MS = parseInt(__ENV.INTERVAL_MS || '100', 10);
const DURATION_S = parseFloat(__ENV.DURATION_S || '20');
const SETTLE_S = parseFloat(__ENV.SETTLE_S || '10');
// One copy for all VUs (the baseline holds one list too), not one per VU.
const hosts = new SharedArray('hosts', () => JSON.parse(open(__ENV.HOSTS_FILE)));

export const options = {
  scenarios: {
    echo: {
      executor: 'per-vu-iterations',
      vus: STREAMS,
      iterations: 1,
      maxDuration: `${Math.ceil(SETTLE_S + DURATION_S + 120)}s`,
    },
  },
  summaryTrendStats: ['count', 'min', 'avg', 'med', 'p(95)', 'p(99)', 'max'],
};

// One shared tailnet node for every VU of the process (the default).
const net = new cde.Tailnet({ hostname: 'echo-cdeload' });

const connectErrors = new Counter('echo_connect_errors');
const lateStarts = new Counter('echo_late_starts');

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default async function () {
  const i = exec.vu.idInTest - 1;
  let ssh;
  let up;
  try {
    // Every VU shares one node: durationMs is the same join for all, which
    // the first VU started as the scenario began.
    up = await net.up();
    ssh = await cde.ssh.connect({ tailnet: net, host: hosts[i % hosts.length] });
  } catch (e) {
    connectErrors.add(1);
    console.error(`stream ${i}: ${e.message}`);
    return;
  }
  const t0 = exec.scenario.startTime + up.durationMs + SETTLE_S * 1000;
  const slot = t0 + Math.floor((INTERVAL_MS * i) / STREAMS);
  const delay = slot - Date.now();
  if (delay > 0) {
    await wait(delay);
  } else {
    lateStarts.add(1);
  }
  const r = await ssh.echo({ bytesPerTick: BYTES, tickInterval: INTERVAL_MS, duration: `${DURATION_S}s` });
  if (r.errors > 0) {
    console.error(`stream ${i}: ${r.error}`);
  }
  await ssh.close();
}

function value(data, name, stat) {
  const m = data.metrics[name];
  return m && m.values && m.values[stat] !== undefined ? m.values[stat] : 0;
}

export function handleSummary(data) {
  const out = {
    program: 'cdeload',
    streams: STREAMS,
    framesReceived: value(data, 'traffic_rtt', 'count'),
    ticksMissed: value(data, 'traffic_ticks_missed', 'count'),
    streamErrors: value(data, 'traffic_errors', 'count'),
    connectErrors: value(data, 'echo_connect_errors', 'count'),
    errors: value(data, 'traffic_errors', 'count') + value(data, 'echo_connect_errors', 'count'),
    iterations: value(data, 'iterations', 'count'),
    lateStarts: value(data, 'echo_late_starts', 'count'),
    rtt: {
      count: value(data, 'traffic_rtt', 'count'),
      min: value(data, 'traffic_rtt', 'min'),
      mean: value(data, 'traffic_rtt', 'avg'),
      p50: value(data, 'traffic_rtt', 'med'),
      p95: value(data, 'traffic_rtt', 'p(95)'),
      p99: value(data, 'traffic_rtt', 'p(99)'),
      max: value(data, 'traffic_rtt', 'max'),
    },
    connectMaxMs: value(data, 'ssh_connect_duration', 'max'),
    tailnetUpMs: value(data, 'tailnet_up_duration', 'max'),
  };
  return { [__ENV.OUT || 'stdout']: JSON.stringify(out, null, 2) + '\n' };
}
