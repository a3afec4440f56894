// A self-signed server without insecureSkipTLSVerify.
import http from 'k6/http';
import { check } from 'k6';
export const options = { iterations: 1 };
export default function () {
  const r = http.get(`${__ENV.TLS}/hello`);
  check(r, { 'unknown authority is 1310': (x) => x.status === 0 && x.error_code === 1310 });
}
