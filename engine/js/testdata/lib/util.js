import { PREFIX } from '../shared.js';
export const NAME = 'util';
export function double(x) { return x * 2; }
export const prefixed = PREFIX + NAME;
