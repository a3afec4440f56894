// A threshold on a submetric that gets no sample (only SSH ran, nothing
// on the terminal transport) next to one that does.
import { Trend } from 'k6/metrics';

const rtt = new Trend('thr_rtt', true);

export const options = {
  iterations: 3,
  thresholds: {
    'thr_rtt{transport:ssh}': ['p(95)<1000'],
    'thr_rtt{transport:terminal}': ['p(95)<1000'],
  },
};

export default function () {
  rtt.add(5, { transport: 'ssh' });
}
