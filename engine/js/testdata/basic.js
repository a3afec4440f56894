import { check, group, sleep } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { double, NAME } from './lib/util.js';

export const options = {
  vus: 2,
  iterations: 4,
  thresholds: { checks: ['rate==1'] },
};

const myTrend = new Trend('my_trend', true);
const myCounter = new Counter('my_counter');
const data = open('./data.txt');

export function setup() {
  check(1, { 'setup ran': (v) => v === 1 });
  return { greeting: 'hi', n: double(21) };
}

export default function (d) {
  const ok = check(d, {
    'setup data arrived': (x) => x.greeting === 'hi' && x.n === 42,
    'own copy of setup data': (x) => x.mutated === undefined || x.mutated === __VU,
    'lib name': () => NAME === 'util',
    'file read': () => data.trim() === 'hello file',
  });
  group('outer', () => {
    group('inner', () => {
      myTrend.add(12.5, { kind: 'x' });
    });
  });
  myCounter.add(1);
  exec.vu.tags.custom = 'yes';
  myCounter.add(2);
  d.mutated = __VU; // each VU has its own copy
  return ok;
}

export function teardown(d) {
  check(d, { 'teardown got data': (x) => x.n === 42 });
}
