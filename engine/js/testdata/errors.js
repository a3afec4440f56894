import exec from 'k6/execution';
import { check } from 'k6';

export function throws() {
  check(1, { before: () => true });
  throw new Error('boom in iteration');
}

export async function asyncThrows() {
  await null;
  throw new Error('async boom');
}

export function unhandled() {
  Promise.reject(new Error('nobody handles me'));
}

export function aborts() {
  exec.test.abort('enough');
  check(1, { 'not reached': () => true });
}

export function fails() {
  exec.test.fail('marked');
  check(1, { 'still runs after fail': () => true });
}

export function checkThrows() {
  try {
    check(1, { 'first passes': () => true, 'second throws': () => { throw new Error('in check'); }, 'third never runs': () => true });
  } catch (e) {
    check(e.message, { 'rethrown': (m) => m === 'in check' });
  }
}

export function asyncCheck() {
  check(1, { 'async check': async () => true });
}

export function asyncGroup() {
  group('g', async () => {});
}

export function spin() {
  for (;;) {}
}

export async function waitForever() {
  await new Promise(() => setTimeout(() => {}, 60000));
}

export function sleeps() {
  sleep(30);
}

export function consoleOut() {
  console.log('hello', { a: 1 }, 3);
  console.warn('careful');
  console.error(new Error('bad'));
  console.debug('hidden');
}

import { group, sleep } from 'k6';
