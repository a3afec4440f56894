export const options = { iterations: 1 };
throw new Error('broken init');
export default function () {}
