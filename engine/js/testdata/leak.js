import { delayed } from 'k6/x/jstest';
import { sleep } from 'k6';

export default async function () {
  setTimeout(() => {}, 1);
  const iv = setInterval(() => {}, 1);
  await delayed(2, 1);
  clearInterval(iv);
  await Promise.all([delayed(1, 1), new Promise((r) => setTimeout(r, 2))]);
}

export async function hang() {
  setTimeout(() => {}, 60000);
  setInterval(() => {}, 5);
  delayed(60000, 1);
  await delayed(60000, 1);
}

export async function throwsWithPending() {
  setTimeout(() => {}, 60000);
  delayed(60000, 1);
  throw new Error('leaving work behind');
}
