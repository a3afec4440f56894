// SSH echo to a real Coder workspace whose agent stops mid-stream (the Go
// test stops the workspace when it sees STARTED): the stream must end with
// an error naming the workspace.
import cde from 'k6/x/cdeload';

export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: '2m' } } };

const coder = new cde.Coder({ pollInterval: '100ms' });

export default async function () {
  const ws = await coder.createWorkspace({ template: __ENV.TEMPLATE });
  const session = await cde.ssh.connect({ host: ws.address });
  console.log(`STARTED ${ws.id} ${ws.name} path=${session.path}`);
  const r = await session.echo({ bytesPerTick: 128, tickInterval: '100ms', duration: '60s' });
  console.log(`ECHO errors=${r.errors} frames=${r.framesReceived}/${r.framesSent} error=${r.error}`);
  await session.close();
}

export async function teardown() {
  await coder.cleanup();
}
