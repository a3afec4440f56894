// An invalid threshold, chosen by CASE; the run must not start.
import { Counter, Trend } from 'k6/metrics';

const hits = new Counter('thr_bad_hits');
const latency = new Trend('thr_bad_latency');

const cases = {
  expr: { thr_bad_hits: ['count >> 3'] },
  method: { thr_bad_latency: ['rate<1'] },
  unknown: { no_such_metric: ['count>1'] },
  unknownsub: { 'no_such_metric{kind:a}': ['count>1'] },
  percentile: { thr_bad_latency: ['p(101)<5'] },
  object: { thr_bad_hits: [{ threshold: 'count>1', abortOnFial: true }] },
};

export const options = {
  iterations: 1,
  thresholds: cases[__ENV.CASE],
};

export default function () {
  hits.add(1);
  latency.add(1);
  console.log('ITER');
}
