export const options = {
  scenarios: { s: { executor: 'constant-vus', vus: 1, duration: '1s', iterationz: 3 } },
};
export default function () {}
