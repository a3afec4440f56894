// The scale flow under a steady arrival of workspaces, for interrupting
// mid-run: VUs keep creating workspaces (some builds fail by the lab's fault
// knobs), push SSH echo traffic to each for a while and delete it.
// teardown() cleans up whatever the interrupt left behind.
import { check } from 'k6';
import cde from 'k6/x/cdeload';

export const options = {
  scenarios: { scale: { executor: 'constant-vus', vus: 4, duration: '2m' } },
};

const coder = new cde.Coder({ pollInterval: '50ms' });
const net = new cde.Tailnet();

export default async function () {
  const ws = await coder.createWorkspace({
    template: 'kubernetes',
    parameters: { cpu: '2', memory: '2', home_disk_size: '1' },
  });
  console.log(`READY ${ws.name} ${ws.address}`);
  try {
    const ssh = await cde.ssh.connect({ tailnet: net, host: ws.address, user: 'coder' });
    const r = await ssh.echo({ bytesPerTick: 128, tickInterval: '100ms', duration: '20s' });
    check(r, { 'no stream errors': (x) => x.errors === 0 });
    await ssh.close();
  } finally {
    await ws.delete();
  }
}

export async function teardown() {
  await coder.cleanup();
  console.log('TEARDOWN cleaned up');
}
