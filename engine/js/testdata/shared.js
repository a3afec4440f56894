export const PREFIX = 'shared-';
