// A setup that throws: the run exits 107 and names setup() once.
export const options = { iterations: 1 };
export function setup() { throw new Error('setup broke'); }
export default function () {}
