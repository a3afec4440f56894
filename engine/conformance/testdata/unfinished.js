// Its only iteration never finishes: k6 warns that none fully finished.
import { sleep } from 'k6';
export const options = { scenarios: { s: { executor: 'constant-vus', vus: 1, duration: '1s', gracefulStop: '0s' } } };
export default function () { sleep(3); }
