import { sleep } from 'k6';
export const options = { iterations: 1, setupTimeout: '500ms' };
export function setup() { sleep(5); }
export default function () { console.log('ITER'); }
