// Against a Coder API that serves no tailnet (the simulator without a lab
// behind it): ssh.connect to a workspace's address says why it fails.
import cde from 'k6/x/cdeload';

export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: 1, iterations: 1 } } };

const coder = new cde.Coder({ pollInterval: '20ms' });

export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes' });
  console.log(`WS sshSupported=${ws.sshSupported} address=${ws.address}`);
  try {
    await cde.ssh.connect({ host: ws.address, user: 'coder', insecureSkipHostKeyCheck: true, password: 'x' });
    console.log('SSH connected');
  } catch (e) {
    console.log(`SSH REJECTED ${e.message}`);
  }
  await ws.delete();
}

export async function teardown() {
  await coder.cleanup();
}
