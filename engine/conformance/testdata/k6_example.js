// A k6 script as k6 users write them: k6/http, check, group, SharedArray,
// a threshold on successful requests' duration and handleSummary with the
// jslib's textSummary (served by the test as a remote module).
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { SharedArray } from 'k6/data';
import { textSummary } from __JSLIB__;

const users = new SharedArray('users', function () {
  return JSON.parse(open('./k6_example_users.json')).users;
});

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    'http_req_duration{expected_response:true}': [__ENV.P95 || 'p(95)<2000'],
    checks: ['rate==1'],
  },
};

export default function () {
  const user = users[__ITER % users.length];
  group('login', function () {
    const res = http.post(`${__ENV.BASE}/login`, JSON.stringify({ name: user.name }), {
      headers: { 'Content-Type': 'application/json' },
    });
    check(res, {
      'logged in': (r) => r.status === 200,
      'greets the user': (r) => r.json('greeting') === `hello ${user.name}`,
    });
  });
  group('browse', function () {
    http.get(`${__ENV.BASE}/missing`, { tags: { name: 'missing' } });
  });
  sleep(0.01);
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: false }),
  };
}
