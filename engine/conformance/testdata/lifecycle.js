// Two scenarios with exec, startTime and setup data; teardown logs.
import { sleep } from 'k6';

export const options = {
  scenarios: {
    first: { executor: 'per-vu-iterations', vus: 2, iterations: 2, exec: 'first' },
    later: { executor: 'shared-iterations', vus: 1, iterations: 2, exec: 'later', startTime: '1s',
      env: { WHO: 'later' }, tags: { kind: 'delayed' } },
  },
};

export function setup() {
  return { token: 'tok-42', t0: Date.now() };
}

export function first(data) {
  console.log(`ITER first vu=${__VU} token=${data.token} at=${Date.now() - data.t0}`);
  sleep(0.05);
}

export function later(data) {
  console.log(`ITER later vu=${__VU} token=${data.token} at=${Date.now() - data.t0} who=${__ENV.WHO}`);
}

export default function () {
  console.log('ITER default');
}

export function teardown(data) {
  console.log(`TEARDOWN token=${data.token}`);
}
