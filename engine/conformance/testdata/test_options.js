// Prints exec.test.options once.
import exec from 'k6/execution';

export const options = { iterations: 2, vus: 1 };

export default function () {
  if (exec.vu.iterationInScenario === 0) {
    console.log(`OPTIONS ${JSON.stringify(exec.test.options)}`);
  }
}
