// A runner script for the k6-operator contract: shared iterations that
// the execution segments split, with setup and teardown.
import { sleep } from 'k6';
import exec from 'k6/execution';

if (__VU > 0 && __ENV.SLOW_INIT) {
  // Keep VU init busy so that a resume can arrive before it ends.
  const end = Date.now() + Number(__ENV.SLOW_INIT);
  while (Date.now() < end) { /* busy */ }
}

export const options = {
  scenarios: {
    shared: {
      executor: 'shared-iterations',
      vus: 2,
      iterations: Number(__ENV.ITERS || 10),
      maxDuration: '30s',
    },
  },
  // TAINT=1 adds a threshold that fails from the first iteration on.
  thresholds: __ENV.TAINT ? { iterations: ['count<1'] } : {},
};

export function setup() {
  console.log('SETUP');
}

export default function () {
  console.log(`ITER ${exec.scenario.iterationInTest}`);
  sleep(Number(__ENV.SLEEP || 0.01));
}

export function teardown() {
  console.log('TEARDOWN');
}
