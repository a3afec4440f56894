// exec.test.abort() in the init code of VU 2 (not VU 0 or 1).
import exec from 'k6/execution';

export const options = { vus: 3, iterations: 3 };

if (__VU === 2) {
  exec.test.abort('init of vu 2');
}

export default function () {}

export function handleSummary() {
  console.log('HANDLESUMMARY');
  return {};
}
