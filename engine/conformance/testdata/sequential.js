// Three arrival-rate scenarios one after another: they share their VUs.
export const options = {
  scenarios: {
    a: { executor: 'constant-arrival-rate', rate: 5, timeUnit: '1s', duration: '1s', preAllocatedVUs: 2, maxVUs: 4, gracefulStop: '0s' },
    b: { executor: 'constant-arrival-rate', rate: 5, timeUnit: '1s', duration: '1s', preAllocatedVUs: 2, maxVUs: 4, startTime: '1s', gracefulStop: '0s' },
    c: { executor: 'constant-arrival-rate', rate: 5, timeUnit: '1s', duration: '1s', preAllocatedVUs: 2, maxVUs: 4, startTime: '2s', gracefulStop: '0s' },
  },
};
export default function () {}
