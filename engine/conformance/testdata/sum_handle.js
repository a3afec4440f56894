// handleSummary writing stdout and a file (the path in OUT); THROW makes it
// fail.
import { check } from 'k6';

export const options = {
  iterations: 3,
  thresholds: { checks: ['rate==1'] },
};

export default function () {
  check(1, { 'is one': (v) => v === 1 });
}

export function handleSummary(data) {
  if (__ENV.THROW) {
    throw new Error('summary boom');
  }
  const out = {
    stdout: `CUSTOM SUMMARY iterations=${data.metrics.iterations.values.count} ` +
      `checks_ok=${data.metrics.checks.thresholds['rate==1'].ok}\n`,
  };
  out[__ENV.OUT] = JSON.stringify(data);
  return out;
}
