// A teardown that throws: the run exits 107 and names teardown() once.
export const options = { iterations: 1 };
export default function () {}
export function teardown() { throw new Error('teardown broke'); }
