export const options = { iterations: Number(__ENV.N || '5') };
export default function () {
  console.log(`ITER foo=${__ENV.FOO} vu=${__VU}`);
}
