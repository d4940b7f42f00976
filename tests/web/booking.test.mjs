// End-to-end tests of the web page at `/` in Debian's headless Chromium, driven by Playwright.
// A real Boxoffice (the binary in BOXOFFICE_BIN, embedded mode on a fresh SQLite file) is started
// on a free loopback port. Run by scripts/web-test.sh, which builds the binary and installs
// Chromium and playwright-core when missing. SCREENSHOT_DIR=docs keeps screenshots of the main
// screens there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ADMIN_PASSWORD = 'web-test-secret-passphrase';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR;
let server, base, dir, browser, adminToken, events = {};

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function call(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function token(login, password) {
  const r = await call('POST', '/api/v1/auth/login', null, { login, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.access_token;
}

async function apiUser(name) {
  const password = 'a-good-password';
  const r = await call('POST', '/api/v1/auth/register', null, { email: `${name}@example.com`, username: name, password });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return token(name, password);
}

async function createEvent(name, { price = 2500, total = 10, hold = 600, max = 5, room = false, rate = 10 } = {}) {
  const kind = price ? 'paid' : 'free';
  let cats = (await call('GET', '/api/v1/categories')).body;
  let cat = cats.find((c) => c.kind === kind);
  if (!cat) cat = (await call('POST', '/api/v1/categories', adminToken, { name: `Web ${kind}`, kind })).body;
  const r = await call('POST', '/api/v1/events', adminToken, {
    name, category_id: cat.id, price_cents: price, currency: 'EUR', starts_at: '2031-06-01T19:30:00Z',
    total_slots: total, max_per_order: max, hold_seconds: hold, waiting_room: room, admit_per_second: rate,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function counts(id) {
  const e = (await call('GET', `/api/v1/events/${id}`)).body;
  return { available: e.available_slots, held: e.held_slots, sold: e.sold_slots };
}

async function page() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const p = await context.newPage();
  p.on('pageerror', (e) => { throw e; });
  return p;
}

async function shot(p, name) {
  if (SHOTS) await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Signs up through the page (which logs in too). */
async function signUp(p, name) {
  await p.goto(`${base}/#/signup`);
  await p.getByLabel('E-mail').fill(`${name}@example.com`);
  await p.getByLabel('User name').fill(name);
  await p.getByLabel('Password').fill('correct horse battery');
  await p.getByRole('button', { name: 'Create account' }).click();
  await p.getByText(`Signed in as ${name}`).waitFor();
}

async function logIn(p, login, password) {
  await p.goto(`${base}/#/login`);
  await p.getByLabel('User name or e-mail').fill(login);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByText(`Signed in as ${login}`).waitFor();
}

async function book(p, event, quantity) {
  await p.goto(`${base}/#/events/${event.id}`);
  await p.getByRole('heading', { name: event.name }).waitFor();
  await p.getByLabel(/Seats/).fill(String(quantity));
  await p.getByRole('button', { name: 'Book' }).click();
}

function toast(p, text) {
  return p.locator('.toast', { hasText: text }).waitFor();
}

async function available(p, id) {
  return Number(await p.locator(`[data-counts="${id}"] [data-k="available"]`).first().textContent());
}

before(async () => {
  assert.ok(process.env.BOXOFFICE_BIN, 'BOXOFFICE_BIN names the boxoffice binary (scripts/web-test.sh sets it)');
  dir = mkdtempSync(join(tmpdir(), 'boxoffice-web-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(process.env.BOXOFFICE_BIN, ['serve'], {
    env: {
      ...process.env,
      BOXOFFICE_HTTP__ADDR: `127.0.0.1:${port}`,
      BOXOFFICE_GRPC__ADDR: '127.0.0.1:0',
      BOXOFFICE_DATABASE__URL: `sqlite://${dir}/boxoffice.db?mode=rwc`,
      BOXOFFICE_MAIL__DIR: `${dir}/mail`,
      BOXOFFICE_SEED__DEMO_DATA: 'false',
      BOXOFFICE_ADMIN__PASSWORD: ADMIN_PASSWORD,
      BOXOFFICE_AUTH__JWT_SECRET: 'web-test-secret-that-is-long-enough-0123456789',
      BOXOFFICE_AUTH__ARGON2_MEMORY_KIB: '1024',
      BOXOFFICE_AUTH__ARGON2_ITERATIONS: '1',
      BOXOFFICE_LOG__FILTER: 'warn',
      BOXOFFICE_KAFKA__BROKERS: '',
      BOXOFFICE_MONGODB__URL: '',
      BOXOFFICE_MAIL__TRANSPORT: 'file',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* not yet */ }
    assert.ok(i < 300, 'boxoffice became ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  adminToken = await token('admin', ADMIN_PASSWORD);
  events.concert = await createEvent('Harbour Lights Concert', { total: 10 });
  events.tiny = await createEvent('Tiny Room Recital', { total: 1 });
  events.workshop = await createEvent('Rust Workshop', { price: 0, total: 30 });
  events.flash = await createEvent('Flash Sale Gig', { total: 5, hold: 3 });
  events.live = await createEvent('Live Counts Festival', { total: 20 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the whole booking path: sign up, search, book, count down, pay, tickets, cancel', async () => {
  const p = await page();
  await signUp(p, 'ann');
  await p.getByRole('searchbox', { name: 'Search events' }).fill('harbour');
  await p.getByRole('button', { name: 'Search' }).click();
  // The list is redrawn from the search's answer: wait for that, not for the link, which the
  // unfiltered list already had.
  await p.waitForFunction(() => location.hash === '#/events?q=harbour' && document.querySelectorAll('.grid > li').length === 1);
  assert.equal(await p.locator('.grid > li').getByRole('link').textContent(), 'Harbour Lights Concert');
  await shot(p, 'events');

  await p.getByRole('link', { name: 'Harbour Lights Concert' }).click();
  await p.getByLabel(/Seats/).fill('2');
  await p.getByRole('button', { name: 'Book' }).click();
  await p.getByRole('heading', { name: '2 seat(s) held for you' }).waitFor();
  const first = await p.locator('#countdown').textContent();
  assert.match(first, /^(9|10):\d\d$/, `a ten-minute countdown, got ${first}`);
  await p.waitForFunction((t) => document.querySelector('#countdown').textContent !== t, first, { timeout: 5000 });
  await p.waitForFunction(() => document.querySelector('[data-k="held"]').textContent === '2');
  assert.deepEqual(await counts(events.concert.id), { available: 8, held: 2, sold: 0 });
  await shot(p, 'hold');

  await p.getByLabel('Card').selectOption('tok_ok');
  await p.getByRole('button', { name: /^Pay/ }).click();
  await toast(p, 'Payment succeeded');
  await p.getByRole('heading', { name: 'Booked!' }).waitFor();
  assert.equal(await p.getByRole('list', { name: 'Tickets' }).locator('li').count(), 2);
  assert.deepEqual(await counts(events.concert.id), { available: 8, held: 0, sold: 2 });
  await shot(p, 'booked');

  await p.getByRole('link', { name: 'My orders' }).first().click();
  const order = p.locator('[data-order]').filter({ hasText: 'Harbour Lights Concert' });
  await order.getByText('confirmed').waitFor();
  assert.equal(await order.getByRole('list', { name: 'Tickets' }).locator('li').count(), 2);
  await shot(p, 'orders');
  p.once('dialog', (d) => d.accept());
  await order.getByRole('button', { name: 'Cancel' }).click();
  await toast(p, 'Order cancelled');
  await p.locator('[data-order]').filter({ hasText: 'cancelled' }).waitFor();
  assert.deepEqual(await counts(events.concert.id), { available: 10, held: 0, sold: 0 });
  await p.context().close();
});

test('a free event registers with one click', async () => {
  const p = await page();
  await signUp(p, 'ben');
  await p.goto(`${base}/#/events/${events.workshop.id}`);
  await p.getByRole('button', { name: 'Register (free)' }).click();
  await toast(p, 'You are registered for Rust Workshop');
  assert.deepEqual(await counts(events.workshop.id), { available: 29, held: 0, sold: 1 });
  await p.context().close();
});

test('booking more seats than are left says sold out', async () => {
  const p = await page();
  await signUp(p, 'cat');
  await book(p, events.tiny, 2);
  await toast(p, 'Sold out');
  await p.locator('[data-error="sold_out"]').waitFor();
  assert.deepEqual(await counts(events.tiny.id), { available: 1, held: 0, sold: 0 }, 'nothing was held');
  await p.context().close();
});

test('a declined card says so and keeps the seats held', async () => {
  const p = await page();
  await signUp(p, 'dan');
  await book(p, events.concert, 1);
  await p.getByLabel('Card').selectOption('tok_declined');
  await p.getByRole('button', { name: /^Pay/ }).click();
  await toast(p, 'Payment declined');
  await p.locator('[data-error="declined"]').waitFor();
  assert.equal(await p.getByRole('button', { name: /^Pay/ }).isEnabled(), true, 'another card may be tried');
  assert.deepEqual(await counts(events.concert.id), { available: 9, held: 1, sold: 0 });
  await p.context().close();
});

test('a hold that runs out says it expired and the seats come back', async () => {
  const p = await page();
  await signUp(p, 'eve');
  await book(p, events.flash, 2);
  await p.getByRole('heading', { name: '2 seat(s) held for you' }).waitFor();
  await p.locator('[data-error="hold_expired"]').waitFor({ timeout: 10000 });
  await toast(p, 'Your hold expired');
  assert.equal(await p.getByRole('button', { name: /^Pay/ }).isDisabled(), true);
  await p.waitForFunction((id) => document.querySelector(`[data-counts="${id}"] [data-k="available"]`).textContent === '5',
    events.flash.id, { timeout: 10000 });
  await p.context().close();
});

test('a second browser sees availability drop live, without reloading', async () => {
  const watcher = await page();
  await watcher.goto(`${base}/#/events`);
  await watcher.getByRole('link', { name: 'Live Counts Festival' }).waitFor();
  assert.equal(await available(watcher, events.live.id), 20);
  await watcher.evaluate(() => { window.notReloaded = true; });

  const buyer = await page();
  await signUp(buyer, 'fay');
  await book(buyer, events.live, 3);
  await buyer.getByRole('heading', { name: '3 seat(s) held for you' }).waitFor();

  await watcher.waitForFunction((id) => document.querySelector(`[data-counts="${id}"] [data-k="available"]`).textContent === '17',
    events.live.id, { timeout: 10000 });
  assert.equal(await watcher.evaluate(() => window.notReloaded), true, 'the same page, updated in place');
  assert.equal(await watcher.locator(`[data-counts="${events.live.id}"] [data-k="held"]`).textContent(), '3');
  await buyer.context().close();
  await watcher.context().close();
});

test('an admin creates an event, watches it, reads the audit log and the live stream', async () => {
  const p = await page();
  await logIn(p, 'admin', ADMIN_PASSWORD);
  await p.getByRole('link', { name: 'Admin' }).click();
  await p.getByLabel('Name').fill('Night Market Tour');
  await p.getByLabel(/^Category/).selectOption({ label: 'Web paid (paid)' });
  await p.getByLabel('Price').fill('12.50');
  await p.getByLabel('Starts at').fill('2031-09-01T18:00');
  await p.getByLabel('Seats').fill('40');
  await p.getByLabel('Max per person').fill('6');
  await p.getByRole('button', { name: 'Create event' }).click();
  await toast(p, 'Event "Night Market Tour" created');
  const card = p.locator('.card', { hasText: 'Night Market Tour' });
  await card.waitFor();
  assert.equal(await card.locator('[data-k="available"]').textContent(), '40');
  await p.locator('tbody tr', { hasText: 'event.created' }).first().waitFor();

  await p.getByRole('button', { name: 'Start live stream' }).click();
  await p.getByRole('button', { name: 'Stop live stream' }).waitFor();
  const created = (await call('GET', '/api/v1/events?q=Night%20Market')).body.items[0];
  assert.equal(created.max_per_person, 6, 'the per-person limit set in the form');
  const buyer = await apiUser('gus');
  const r = await call('POST', '/api/v1/orders', buyer, { event_id: created.id, quantity: 4 });
  assert.equal(r.status, 201);
  await p.locator('#live-log li', { hasText: 'order.placed' }).filter({ hasText: r.body.id }).waitFor();
  await p.waitForFunction(() => [...document.querySelectorAll('.card')].some((c) =>
    c.textContent.includes('Night Market Tour') && c.querySelector('[data-k="available"]').textContent === '36'));
  await shot(p, 'admin');
  await p.context().close();
});

test('a waiting room shows the place in the queue live, then lets the admitted buyer book before the countdown ends', async () => {
  const event = await createEvent('Stadium On-Sale', { total: 50, room: true, rate: 1 });
  // Two people queued first: the browser's buyer waits behind them, one admission a second.
  for (const name of ['queuer1', 'queuer2']) {
    const t = await apiUser(name);
    assert.equal((await call('POST', `/api/v1/events/${event.id}/queue`, t)).status, 201);
  }
  const p = await page();
  await signUp(p, 'quinn');
  await p.goto(`${base}/#/events/${event.id}`);
  await p.getByRole('button', { name: 'Join the queue' }).click();
  const place = p.locator('#queue-place');
  await place.waitFor();
  assert.match(await place.textContent(), /queue.*about [0-9]+:[0-9]{2} to go/);
  await shot(p, 'queue');
  await p.locator('#admitted').waitFor({ timeout: 15000 });
  assert.match(await p.locator('#admission-countdown').textContent(), /^[0-9]+:[0-9]{2}$/);
  await p.getByLabel(/Seats/).fill('2');
  await p.getByRole('button', { name: 'Book' }).click();
  await p.getByRole('heading', { name: '2 seat(s) held for you' }).waitFor();
  assert.deepEqual(await counts(event.id), { available: 48, held: 2, sold: 0 });
  await p.context().close();
});

test('a sold-out event offers its waiting list, and a seat that comes back is held for the first in line', async () => {
  const event = await createEvent('Last Seat Jazz', { total: 1 });
  const holder = await apiUser('holder');
  const held = await call('POST', '/api/v1/orders', holder, { event_id: event.id, quantity: 1 });
  assert.equal(held.status, 201);
  const p = await page();
  await signUp(p, 'wren');
  await p.goto(`${base}/#/events/${event.id}`);
  await p.getByText('Sold out. Join the waiting list').waitFor();
  await p.getByLabel('Waiting-list seats').fill('1');
  await p.getByRole('button', { name: 'Join the waiting list' }).click();
  await p.getByText('You are number 1 on the waiting list for 1 seat(s).').waitFor();
  await shot(p, 'waitlist');
  const cancelled = await call('POST', `/api/v1/orders/${held.body.id}/cancel`, holder, {});
  assert.equal(cancelled.status, 200);
  await p.reload();
  await p.locator('#waitlist-offered').waitFor();
  await p.getByRole('link', { name: 'My orders' }).first().click();
  await p.getByText('Last Seat Jazz').first().waitFor();
  assert.deepEqual(await counts(event.id), { available: 0, held: 1, sold: 0 }, 'the seat is held for wren');
  await p.context().close();
});

test('the API docs render from the binary alone, with every request elsewhere blocked and no CSP violation', async () => {
  const p = await page();
  const blocked = [];
  const violations = [];
  p.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await p.route('**/*', (route) => {
    if (route.request().url().startsWith(base)) return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  await p.goto(`${base}/docs`);
  await p.getByText('Ticket booking: events, holds, orders, payments.').waitFor();
  await p.locator('.opblock-tag', { hasText: 'queues' }).first().waitFor();
  assert.deepEqual(violations, [], 'no Content-Security-Policy violation');
  assert.deepEqual(blocked, [], 'the docs asked for nothing outside this server');
  await shot(p, 'docs');
  await p.context().close();
});

test('the page opens without a focus frame around the whole main area, and keyboard focus stays visible', async () => {
  const p = await page();
  await p.goto(`${base}/`);
  await p.locator('main h1').waitFor();
  // The main area takes focus on every view (so screen readers announce it), but it is not a
  // control: no frame around it.
  const main = await p.evaluate(() => {
    const m = document.getElementById('main');
    return { focused: document.activeElement === m, outline: getComputedStyle(m).outlineStyle };
  });
  assert.ok(main.focused, 'the main area has focus after load');
  assert.equal(main.outline, 'none', 'no focus frame around the main area');
  // A control reached with the keyboard still shows where focus is.
  await p.keyboard.press('Tab');
  const control = await p.evaluate(() => {
    const el = document.activeElement;
    return { tag: el.tagName, outline: getComputedStyle(el).outlineStyle };
  });
  assert.notEqual(control.outline, 'none', `keyboard focus on ${control.tag} is visible`);
  await p.context().close();
});

test('the page is usable on a phone-sized screen with the keyboard', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
  const p = await context.newPage();
  await p.goto(`${base}/#/login`);
  await p.getByLabel('User name or e-mail').waitFor();
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `no horizontal scrolling on a phone (page is ${width}px wide)`);
  // Every form control has an accessible label.
  const unlabelled = await p.evaluate(() => [...document.querySelectorAll('input, select')]
    .filter((el) => !el.labels || el.labels.length === 0).map((el) => el.name));
  assert.deepEqual(unlabelled, []);
  await p.keyboard.type('admin');
  await p.keyboard.press('Tab');
  await p.keyboard.type(ADMIN_PASSWORD);
  await p.keyboard.press('Enter');
  await p.getByText('Signed in as admin').waitFor();
  await shot(p, 'phone');
  await context.close();
});
