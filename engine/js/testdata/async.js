import { check } from 'k6';
import { setTimeout as st } from 'k6/timers';

export default async function () {
  const order = [];
  await new Promise((r) => st(r, 5));
  order.push('timer');
  const id = setTimeout(() => order.push('cleared'), 1);
  clearTimeout(id);
  let n = 0;
  await new Promise((resolve) => {
    const iv = setInterval(() => {
      n++;
      if (n === 3) { clearInterval(iv); resolve(); }
    }, 1);
  });
  order.push('interval');
  setTimeout(() => { order.push('late'); check(order, { 'late timer ran before iteration end': (o) => o.join() === 'timer,interval,late' }); }, 10);
  await Promise.resolve();
  check(n, { 'interval ran 3 times': (x) => x === 3 });
}
