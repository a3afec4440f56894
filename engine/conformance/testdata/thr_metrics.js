// Custom metrics of every type, checks, setup and teardown samples, and
// thresholds on metrics and submetrics. LIMIT lowers one limit so that it
// fails; BADCHECK adds a check that fails half of the time.
import { check } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const hits = new Counter('thr_hits');
const latency = new Trend('thr_latency', true);
const ok = new Rate('thr_ok');
const level = new Gauge('thr_level');

export const options = {
  scenarios: { main: { executor: 'per-vu-iterations', vus: 2, iterations: 5 } },
  thresholds: {
    // 10 iterations + setup + teardown: the final evaluation sees every sample.
    thr_hits: ['count==12'],
    // Submetrics: the whole metric's max is 50, so these pass only if the
    // tag filter works.
    'thr_latency{kind:fast}': ['max<1'],
    'thr_latency{kind:slow}': [`p(95)<${__ENV.LIMIT || '100'}`, 'min>=50'],
    thr_ok: ['rate>0.7'],
    thr_level: ['value==7'],
    iterations: ['count==10'],
    checks: ['rate==1'],
  },
};

export function setup() {
  hits.add(1);
}

export default function () {
  hits.add(1);
  latency.add(0.5, { kind: 'fast' });
  latency.add(50, { kind: 'slow' });
  ok.add(__ITER !== 0); // 4 of 5 per VU
  level.add(7);
  const checks = { 'always true': (v) => v === 1 };
  if (__ENV.BADCHECK) {
    checks['even iterations only'] = () => __ITER % 2 === 0;
  }
  check(1, checks);
}

export function teardown() {
  hits.add(1);
  console.log('TEARDOWN');
}
