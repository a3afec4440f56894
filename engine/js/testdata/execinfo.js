import exec from 'k6/execution';
import { check, group } from 'k6';
import { Counter } from 'k6/metrics';

const c = new Counter('tagged');
let initErr = '';
try { exec.vu.idInTest; } catch (e) { initErr = String(e); }

export default function () {
  check(exec, {
    'init access threw': () => initErr.includes('init context'),
    'scenario name': (x) => x.scenario.name === 'sc' && x.scenario.executor === 'shared-iterations',
    'scenario start': (x) => x.scenario.startTime === 1000000,
    'iteration in test': (x) => x.scenario.iterationInTest === 10 + __ITER && x.scenario.iterationInInstance === __ITER,
    'vu ids': (x) => x.vu.idInInstance === __VU && x.vu.idInTest === __VU + 100,
    'vu iteration': (x) => x.vu.iterationInInstance === __ITER && x.vu.iterationInScenario === __ITER,
    'instance': (x) => x.instance.iterationsCompleted === 7 && x.instance.vusActive === 2 && x.instance.currentTestRunDuration === 1500,
    'options': (x) => x.test.options.vus === 3,
    'env': () => __ENV.FOO === 'bar' && __ENV.SCEN === 'yes',
    'tags visible': (x) => x.vu.tags.scenario === 'sc' && x.vu.metrics.tags.run === 'r1',
  });
  c.add(1);
  exec.vu.tags.mine = 'a';
  exec.vu.metrics.metadata.trace = 'abc';
  group('g1', () => { c.add(2, { extra: 'e' }); });
  delete exec.vu.metrics.metadata.trace;
  c.add(3);
}
