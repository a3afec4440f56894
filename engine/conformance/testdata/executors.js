// One scenario per executor, chosen with -e EXECUTOR=...; every iteration
// logs "ITER <scenario> vu=<__VU>".
import exec from 'k6/execution';
import { sleep } from 'k6';

const all = {
  shared: { executor: 'shared-iterations', vus: 3, iterations: 12 },
  pervu: { executor: 'per-vu-iterations', vus: 3, iterations: 4 },
  constant: { executor: 'constant-vus', vus: 2, duration: '1s' },
  ramping: { executor: 'ramping-vus', startVUs: 0, gracefulRampDown: '0s',
    stages: [{ duration: '500ms', target: 3 }, { duration: '500ms', target: 3 }, { duration: '500ms', target: 0 }] },
  car: { executor: 'constant-arrival-rate', rate: 10, timeUnit: '1s', duration: '1s', preAllocatedVUs: 2 },
  rar: { executor: 'ramping-arrival-rate', startRate: 0, timeUnit: '1s', preAllocatedVUs: 2,
    stages: [{ duration: '1s', target: 20 }] },
};

export const options = { scenarios: { [__ENV.EXECUTOR]: all[__ENV.EXECUTOR] } };

export default function () {
  console.log(`ITER ${exec.scenario.name} vu=${__VU}`);
  sleep(Number(__ENV.SLEEP || '0.05'));
}
