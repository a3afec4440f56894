// Long iterations cut by gracefulStop / gracefulRampDown / maxDuration.
import { sleep } from 'k6';

const all = {
  stop: { executor: 'constant-vus', vus: 1, duration: '1s', gracefulStop: '500ms' },
  finish: { executor: 'constant-vus', vus: 1, duration: '1s', gracefulStop: '5s' },
  rampdown: { executor: 'ramping-vus', startVUs: 2, gracefulRampDown: '500ms', gracefulStop: '0s',
    stages: [{ duration: '500ms', target: 2 }, { duration: '0s', target: 1 }, { duration: '1500ms', target: 1 }] },
  maxduration: { executor: 'shared-iterations', vus: 1, iterations: 100, maxDuration: '1s', gracefulStop: '0s' },
};

export const options = { scenarios: { s: all[__ENV.CASE] } };

export default function () {
  console.log(`ITER vu=${__VU}`);
  if (__ENV.CASE === 'rampdown') {
    sleep(__VU === 2 ? 30 : 0.1);
  } else if (__ENV.CASE === 'maxduration') {
    sleep(0.3);
  } else if (__ENV.CASE === 'finish') {
    sleep(1.5);
  } else {
    sleep(30);
  }
}
