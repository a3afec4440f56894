// k6/http against the loopback servers of TestHTTPModule.
import http from 'k6/http';
import { check, group } from 'k6';

export const options = {
  iterations: 1,
  insecureSkipTLSVerify: true,
};

const H1 = __ENV.H1;
const TLS = __ENV.TLS;
const HANG = __ENV.HANG;
const REFUSED = __ENV.REFUSED;

export default async function () {
  const r = http.get(`${H1}/redirect/3`);
  check(r, {
    'redirects followed': (x) => x.status === 200 && x.url === `${H1}/final`,
    'request of the last hop': (x) => x.request.method === 'GET' && x.request.url === `${H1}/final`,
    'remote address': (x) => x.remote_ip === '127.0.0.1' && x.remote_port > 0,
    'proto h1': (x) => x.proto === 'HTTP/1.1' && x.tls_version === '',
    'timings add up': (x) => Math.abs(x.timings.duration - (x.timings.sending + x.timings.waiting + x.timings.receiving)) < 0.001,
  });
  const lim = http.get(`${H1}/redirect/3`, { redirects: 1 });
  check(lim, { 'redirect limit returns the redirection': (x) => x.status === 302 });

  const t = http.get(`${HANG}/`, { timeout: '300ms' });
  check(t, { 'hanging server times out with 1050': (x) => x.status === 0 && x.error_code === 1050 && x.error === 'request timeout' });

  const c = http.get(REFUSED);
  check(c, { 'connection refused is 1202': (x) => x.status === 0 && x.error_code === 1202 && x.error.includes('connection refused') });

  const nf = http.get(`${H1}/status/404`);
  check(nf, { '404 has error_code 1404': (x) => x.status === 404 && x.error_code === 1404 && x.error === '' });
  http.get(`${H1}/status/404`, { responseCallback: http.expectedStatuses(404), tags: { name: 'expected404' } });

  http.get(`${H1}/set-cookie`);
  const ck = http.get(`${H1}/echo-cookie`, { cookies: { extra: 'e1' } });
  check(ck, {
    'server cookie sent back': (x) => x.body.includes('session=s1'),
    'request cookie sent': (x) => x.body.includes('extra=e1'),
  });
  const jar = http.cookieJar();
  jar.set(H1, 'mine', 'm1');
  check(jar.cookiesForURL(`${H1}/`), { 'jar has both cookies': (x) => x.session[0] === 's1' && x.mine[0] === 'm1' });
  const own = new http.CookieJar();
  const isolated = http.get(`${H1}/echo-cookie`, { jar: own });
  check(isolated, { 'own jar starts empty': (x) => x.body === '' });

  const big = http.get(`${H1}/big`);
  check(big, { '10 MB body as text': (x) => x.body.length === 10 << 20 });
  const bin = http.get(`${H1}/big`, { responseType: 'binary' });
  check(bin, { '10 MB body as binary': (x) => x.body.byteLength === 10 << 20 });
  const none = http.get(`${H1}/big`, { responseType: 'none' });
  check(none, { 'none discards the body': (x) => x.body === null && x.status === 200 });

  const s = http.get(`${TLS}/hello`);
  check(s, { 'TLS with HTTP/2': (x) => x.status === 200 && x.proto === 'HTTP/2.0' && x.tls_version === 'tls1.3' && x.timings.tls_handshaking > 0 });

  const p = http.post(`${H1}/echo`, JSON.stringify({ a: 1, list: [{ b: 'two' }] }), { headers: { 'Content-Type': 'application/json' } });
  check(p, { 'json selector': (x) => x.json('a') === 1 && x.json('list.0.b') === 'two' && x.json().list.length === 1 });
  const form = http.post(`${H1}/echo`, { k: 'v w' });
  check(form, { 'form body': (x) => x.body === 'k=v+w' && x.headers['Content-Type'].startsWith('application/x-www-form-urlencoded') });
  const mp = http.post(`${H1}/echo`, { f: http.file('filedata', 'a.txt', 'text/plain') });
  check(mp, { 'multipart body': (x) => x.body.includes('filename="a.txt"') && x.body.includes('filedata') });
  const gz = http.post(`${H1}/echo`, 'compress me', { compression: 'gzip' });
  check(gz, { 'gzip request body decoded by the server': (x) => x.body === 'compress me' });

  const b = http.batch([['GET', `${H1}/status/200`], { method: 'GET', url: `${H1}/status/201` }, `${TLS}/hello`]);
  check(b, { 'batch array': (x) => x[0].status === 200 && x[1].status === 201 && x[2].status === 200 });
  const bo = http.batch({ one: `${H1}/status/202`, two: ['GET', `${H1}/status/203`] });
  check(bo, { 'batch object': (x) => x.one.status === 202 && x.two.status === 203 });

  const id = 7;
  const named = http.get(http.url`${H1}/items/${id}`);
  check(named, { 'url template': (x) => x.status === 200 && x.url === `${H1}/items/7` });

  const ar = await http.asyncRequest('GET', `${H1}/status/200`);
  check(ar, { 'asyncRequest resolves': (x) => x.status === 200 });

  group('grouped', () => { http.get(`${H1}/status/200`); });
}
