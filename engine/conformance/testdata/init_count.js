// Logs from its init code: k6 runs it for VU 0, each VU, and once more
// for the end-of-test summary.
console.log('INIT');

export const options = { vus: 2, iterations: 2 };

export default function () {}
