// Checks at the top level and in nested groups, a custom time trend and
// setup data, for the text summary modes and --summary-export.
import { check, group } from 'k6';
import { Trend } from 'k6/metrics';

const wait = new Trend('sum_wait', true);

export const options = {
  scenarios: { main: { executor: 'shared-iterations', vus: 1, iterations: 4 } },
  // STATS and UNIT set summaryTrendStats and summaryTimeUnit from the script.
  summaryTrendStats: __ENV.STATS ? __ENV.STATS.split(',') : undefined,
  summaryTimeUnit: __ENV.UNIT || undefined,
  thresholds: {
    checks: ['rate>0.5'],
    sum_wait: ['p(95)<1000', 'max<10'],
  },
};

export function setup() {
  return { token: 'abc' };
}

export default function () {
  wait.add(20 + 10 * __ITER); // 20, 30, 40, 50 ms
  check(1, { 'top ok': (v) => v === 1 });
  group('outer', () => {
    check(1, { 'outer ok': (v) => v === 1, 'outer bad': () => false });
    group('inner', () => {
      check(1, { 'inner ok': () => true });
    });
  });
}
