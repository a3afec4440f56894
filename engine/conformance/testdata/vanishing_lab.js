// One workspace on a standalone lab, with an SSH echo stream the test cuts
// by killing the lab (kill -9): the stream must end on its own within its
// drain timeout, or at once on SIGINT, with the error counted. The workspace
// is a bare lab workspace, reached over the lab's own tailnet, whose dead far
// end nothing reports (a Coder workspace's stream ends as soon as its
// coordination websocket drops).
import { sleep } from 'k6';
import cde from 'k6/x/cdeload';

export const options = {
  scenarios: { vanish: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: '5m' } },
};

const net = new cde.Tailnet();

export default async function () {
  const ws = await cde.lab.startWorkspace();
  const ssh = await cde.ssh.connect({ tailnet: net, host: ws.address, user: ws.user, privateKey: ws.privateKey, hostKey: ws.hostKey });
  console.log(`STREAMING ${ws.name}`);
  const r = await ssh.echo({ bytesPerTick: 128, tickInterval: '50ms', duration: __ENV.ECHO_DURATION || '8s', drainTimeout: __ENV.DRAIN_TIMEOUT || '2s' });
  console.log(`ECHO errors=${r.errors} sent=${r.framesSent} received=${r.framesReceived} error=${r.error}`);
  await ssh.close();
}

// With SLOW_TEARDOWN, teardown outlasts the first signal, so that a second
// one stops the process while its tailnet nodes are still open.
export function teardown() {
  if (__ENV.SLOW_TEARDOWN) {
    console.log('TEARDOWN sleeping');
    sleep(60);
  }
}
