// exec.test.abort() / exec.test.fail() / a long run for signals.
import exec from 'k6/execution';
import { sleep } from 'k6';

export const options = {
  scenarios: {
    s: __ENV.CASE === 'signal'
      ? { executor: 'constant-vus', vus: 2, duration: '30s' }
      : { executor: 'per-vu-iterations', vus: 1, iterations: 5 },
  },
};

export default function () {
  console.log(`ITER ${exec.vu.iterationInScenario}`);
  if (__ENV.CASE === 'abort' && exec.vu.iterationInScenario === 1) {
    exec.test.abort('enough');
  }
  if (__ENV.CASE === 'fail' && exec.vu.iterationInScenario === 1) {
    exec.test.fail('marked');
  }
  if (__ENV.CASE === 'signal') {
    if (exec.vu.iterationInScenario === 0 && __VU === 1) {
      console.log('RUNNING');
    }
    sleep(0.1);
  }
}

export function teardown() {
  if (__ENV.CASE === 'teardown-signal') {
    console.log('TEARDOWN-START');
    sleep(1.5);
  }
  console.log('TEARDOWN');
}
