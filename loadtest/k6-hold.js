// k6 version of the `hold` scenario: every virtual user posts orders for one hot event.
//
//   k6 run -e BASE=http://127.0.0.1:8080 -e ADMIN_PASSWORD="$(cat var/admin-password)" loadtest/k6-hold.js
//
// setup() creates a category, a hot event and one user per VU; the thresholds fail the run on
// any 5xx. The built-in `boxoffice loadtest` also checks the seat invariant afterwards.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE = (__ENV.BASE || 'http://127.0.0.1:8080') + '/api/v1';
const JSON_HEADERS = { 'Content-Type': 'application/json' };

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: __ENV.DURATION || '30s',
  thresholds: {
    'http_req_failed{expected_response:false}': ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

function post(path, body, token) {
  const headers = Object.assign({}, JSON_HEADERS, token ? { Authorization: `Bearer ${token}` } : {});
  return http.post(`${BASE}${path}`, JSON.stringify(body), { headers });
}

export function setup() {
  const admin = post('/auth/login', { login: __ENV.ADMIN_LOGIN || 'admin', password: __ENV.ADMIN_PASSWORD });
  if (admin.status !== 200) fail(`admin login failed: ${admin.status} ${admin.body}`);
  const adminToken = admin.json('access_token');
  const run = Math.random().toString(36).slice(2, 8);
  const cat = post('/categories', { name: `k6-${run}`, kind: 'paid' }, adminToken).json();
  const event = post('/events', {
    name: `k6 hot event ${run}`, category_id: cat.id, price_cents: 1000, currency: 'EUR',
    starts_at: '2030-01-01T20:00:00Z', total_slots: Number(__ENV.CAPACITY || 1000000), max_per_order: 10,
    max_per_person: 0, // each virtual user books many times over the run
  }, adminToken).json();
  const tokens = [];
  for (let i = 0; i < options.vus; i++) {
    const username = `k6${run}u${i}`;
    post('/auth/register', { email: `${username}@loadtest.invalid`, username, password: 'loadtest-password' });
    tokens.push(post('/auth/login', { login: username, password: 'loadtest-password' }).json('access_token'));
  }
  return { eventId: event.id, tokens };
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const res = post('/orders', { event_id: data.eventId, quantity: 1 }, token);
  check(res, { 'held or sold out': (r) => r.status === 201 || r.status === 409 });
}
