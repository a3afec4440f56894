// An entry script with a local module and an open()ed file, for
// `archive` and running from the archive alone.
import { greet } from './op_lib.js';

const word = open('./op_data.txt').trim();

export const options = {
  scenarios: { main: { executor: 'shared-iterations', vus: 2, iterations: 4 } },
};

export default function () {
  console.log(`ITER ${greet(word)} env=${__ENV.GREETING}`);
}

export function teardown() {
  console.log('TEARDOWN');
}
