export const options = {
  scenarios: { s: { executor: 'constant-arrival-rate', rate: 5, duration: '1s', preAllocatedVUs: 4, maxVUs: 2 } },
};
export default function () {}
