import { check } from 'k6';
import jstest, { phase, delayed, Client, initSeen } from 'k6/x/jstest';
import * as ns from 'k6/x/jstestdefault';
import def from 'k6/x/jstestdefault';

const initPhase = phase();
const nsPhase = ns.phase();

export default async function () {
  const c = new Client('alice');
  const greeting = c.greet('bob');
  const v = await delayed(5, 'later');
  check(v, {
    'init phase seen in init': () => initPhase === 'init' && nsPhase === 'init' && initSeen === true,
    'vu phase seen in iteration': () => phase() === 'vu' && def.phase() === 'vu' && jstest.phase() === 'vu',
    'state vu id': () => jstest.vuId() === __VU,
    'async value': (x) => x === 'later',
    'constructor and methods mapped': () => greeting === 'alice greets bob' && c.hits === 1 && c.name === 'alice',
    'namespace import has default module api': () => typeof ns.delayed === 'function' && typeof ns.default.delayed === 'function',
  });
}
