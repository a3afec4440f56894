// Counters, rates, trends and checks for the Prometheus remote-write test:
// 20 iterations over 2 VUs, about 1 s.
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';

const bytes = new Counter('prom_bytes');
const rtt = new Trend('prom_rtt', true);
const good = new Rate('prom_good');

export const options = {
  scenarios: { load: { executor: 'shared-iterations', vus: 2, iterations: 20, maxDuration: '20s' } },
};

export default function () {
  const i = exec.scenario.iterationInTest; // 0..19
  bytes.add(10);
  rtt.add(100 + i); // 100..119 ms
  good.add(i % 4 !== 0); // 15 of 20
  check(i, {
    'always': () => true,
    'even only': (n) => n % 2 === 0,
  });
  sleep(0.1);
}
