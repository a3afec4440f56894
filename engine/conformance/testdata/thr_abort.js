// A 30 s test that an abortOnFail threshold stops after the first periodic
// evaluation (every 2 s) past DELAY (delayAbortEval, unset by default).
import { sleep } from 'k6';

const threshold = { threshold: 'count<5', abortOnFail: true };
if (__ENV.DELAY) {
  threshold.delayAbortEval = __ENV.DELAY;
}

export const options = {
  scenarios: { long: { executor: 'constant-vus', vus: 1, duration: '30s' } },
  thresholds: { iterations: [threshold] },
};

export default function () {
  sleep(0.05);
}

export function teardown() {
  console.log('TEARDOWN');
}
