import { sleep } from 'k6';

export const options = {
  scenarios: {
    busy: { executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s', duration: '1s',
      preAllocatedVUs: 1, maxVUs: 1, gracefulStop: '2s' },
  },
};

export default function () {
  sleep(0.4);
}
