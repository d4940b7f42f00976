// Boxoffice web page: plain JavaScript over the REST API (/api/v1), no build step.
// Views are hash routes: #/events, #/events/{id}, #/orders, #/admin, #/login, #/signup.
'use strict';

const API = '/api/v1';
const SESSION = 'boxoffice.session';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const main = document.getElementById('main');
/** Things a view started (streams, timers) and must stop when the view changes. */
let cleanups = [];

// ---------------------------------------------------------------- session and API

function session() {
  try { return JSON.parse(localStorage.getItem(SESSION)) || null; } catch { return null; }
}

function saveTokens(tokens, username) {
  const claims = JSON.parse(atob(tokens.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  const prev = session() || {};
  localStorage.setItem(SESSION, JSON.stringify({
    access: tokens.access_token, refresh: tokens.refresh_token,
    userId: claims.sub, role: claims.role, username: username || prev.username,
  }));
}

function clearSession() { localStorage.removeItem(SESSION); }

/** Calls the API; answers {status, body}. Refreshes an expired access token once. */
async function api(method, path, body, headers = {}) {
  const send = () => {
    const s = session();
    const h = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (s) h.authorization = `Bearer ${s.access}`;
    return fetch(API + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  };
  let res;
  try {
    res = await send();
    if (res.status === 401 && session() && path !== '/auth/refresh' && await refresh()) res = await send();
  } catch {
    return { status: 0, body: { error: { code: 'network', message: 'Boxoffice cannot be reached. Check your connection.' } } };
  }
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { error: { message: text } }; }
  return { status: res.status, body: parsed };
}

/** One refresh at a time: a refresh token is single-use, and the server revokes the whole
 * session when one is presented twice, so concurrent 401s must share the same refresh. */
let refreshing = null;

function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const s = session();
      const res = await fetch(`${API}/auth/refresh`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: s.refresh }),
      });
      if (!res.ok) { clearSession(); updateNav(); return false; }
      saveTokens(await res.json());
      return true;
    })().catch(() => false).finally(() => { refreshing = null; });
  }
  return refreshing;
}

function errorText(r) {
  return (r.body && r.body.error && r.body.error.message) || `Request failed (${r.status})`;
}

// ---------------------------------------------------------------- small helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function toast(message, kind = 'ok') {
  const el = h('div', { class: `toast ${kind === 'ok' ? '' : kind}`, 'data-kind': kind }, message);
  document.getElementById('toasts').append(el);
  if (kind !== 'ok') document.getElementById('alerts').textContent = message;
  setTimeout(() => el.remove(), 8000);
}

function money(cents, currency) {
  if (!cents) return 'Free';
  return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
}

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function field(label, input) { return h('label', {}, label, input); }

/** The route being shown. A view that was still loading when the address changed must not
 * draw over the newer one: each view draws through `screen()`, which checks it is still current. */
let shown = 0;

function screen() {
  const mine = shown;
  return (title, ...children) => {
    if (mine !== shown) return false;
    view(title, ...children);
    return true;
  };
}

function view(title, ...children) {
  main.replaceChildren(h('h1', {}, title), ...children);
  document.title = `${title} · Boxoffice`;
  main.focus();
}

/** Live counts of the given events through one SSE connection, shown in [data-counts] lists. */
function followAvailability(ids) {
  if (!ids.length) return;
  const source = new EventSource(`${API}/availability/stream?events=${ids.join(',')}`);
  source.addEventListener('availability', (msg) => showCounts(JSON.parse(msg.data)));
  cleanups.push(() => source.close());
}

function countsList(e) {
  return h('ul', { class: 'counts', 'data-counts': e.id, 'aria-label': 'Seat counts' },
    h('li', {}, 'Available ', h('strong', { 'data-k': 'available' }, String(e.available_slots))),
    h('li', {}, 'Held ', h('strong', { 'data-k': 'held' }, String(e.held_slots))),
    h('li', {}, 'Sold ', h('strong', { 'data-k': 'sold' }, String(e.sold_slots))),
    h('li', {}, 'Total ', h('strong', { 'data-k': 'total' }, String(e.total_slots))));
}

function showCounts(c) {
  for (const list of document.querySelectorAll(`[data-counts="${c.eventId}"]`)) {
    for (const k of ['available', 'held', 'sold', 'total']) list.querySelector(`[data-k="${k}"]`).textContent = c[k];
  }
  for (const el of document.querySelectorAll(`[data-soldout="${c.eventId}"]`)) el.hidden = c.available > 0;
}

// ---------------------------------------------------------------- views

async function eventsView(query) {
  const show = screen();
  const q = new URLSearchParams(query).get('q') || '';
  const input = h('input', { type: 'search', name: 'q', value: q, placeholder: 'Concert, workshop, ...' });
  const form = h('form', { class: 'search', role: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/events?q=${encodeURIComponent(input.value.trim())}`;
  } }, h('label', { class: 'sr-only', for: 'q' }, 'Search events'), input, h('button', { type: 'submit' }, 'Search'));
  input.id = 'q';
  const r = await api('GET', `/events?limit=50${q ? `&q=${encodeURIComponent(q)}` : ''}`);
  if (r.status !== 200) return show('Events', form, h('p', { class: 'error' }, errorText(r)));
  const items = r.body.items;
  if (show('Events', form, items.length ? eventGrid(items) : h('p', {}, 'No events match.'))) {
    followAvailability(items.map((e) => e.id));
  }
}

function eventGrid(items) {
  return h('ul', { class: 'grid' }, items.map((e) => h('li', { class: 'card' },
    h('h2', {}, h('a', { href: `#/events/${e.id}` }, e.name)),
    h('p', { class: 'meta' }, `${when(e.starts_at)} · ${money(e.price_cents, e.currency)}`),
    countsList(e),
    h('p', { class: 'soldout', 'data-soldout': e.id, hidden: e.available_slots > 0 }, 'Sold out'))));
}

async function eventView(id) {
  const show = screen();
  const r = await api('GET', `/events/${id}`);
  if (r.status !== 200) return show('Event', h('p', { class: 'error' }, errorText(r)));
  const e = r.body;
  const free = e.price_cents === 0;
  const area = h('div', { id: 'booking' });
  const drawn = show(e.name,
    h('p', { class: 'meta' }, `${when(e.starts_at)} · ${money(e.price_cents, e.currency)}${free ? '' : ' per seat'}`),
    countsList(e),
    h('p', { class: 'soldout', 'data-soldout': e.id, hidden: e.available_slots > 0 }, 'Sold out'),
    area);
  if (!drawn) return;
  followAvailability([e.id]);
  if (!session()) {
    area.append(h('p', {}, h('a', { href: '#/login' }, 'Log in'), ' or ', h('a', { href: '#/signup' }, 'sign up'), ' to book.'));
    return;
  }
  const book = h('div', { id: 'book' });
  const list = h('div', { id: 'waitlist' });
  area.append(book, list);
  waitlistPanel(list, e);
  if (e.waiting_room) queuePanel(book, e);
  else bookingForm(book, e);
}

/** The order form (or, for a free event, the register button). */
function bookingForm(area, e) {
  if (e.price_cents === 0) {
    const btn = h('button', { type: 'button', onclick: async () => {
      btn.disabled = true;
      const res = await api('POST', '/registrations', { event_id: e.id }, { 'Idempotency-Key': crypto.randomUUID() });
      btn.disabled = false;
      if (res.status === 201) {
        toast(`You are registered for ${e.name}.`);
        area.replaceChildren(h('p', { class: 'status-confirmed' }, 'Registered. See ', h('a', { href: '#/orders' }, 'My orders'), '.'));
      } else bookingFailed(res, area);
    } }, 'Register (free)');
    area.append(btn);
    return;
  }
  const qty = h('input', { type: 'number', id: 'quantity', name: 'quantity', min: 1, max: e.max_per_order, value: 1, required: true });
  const form = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const n = Number(qty.value);
    submit.disabled = true;
    const res = await api('POST', '/orders', { event_id: e.id, quantity: n }, { 'Idempotency-Key': crypto.randomUUID() });
    submit.disabled = false;
    if (res.status === 201) holdPanel(area, e, res.body);
    else bookingFailed(res, area);
  } }, field(`Seats (at most ${e.max_per_order})`, qty));
  const submit = h('button', { type: 'submit' }, 'Book');
  form.append(submit);
  area.append(form);
}

/** The event's waiting room: join, then the live place, then (admitted) the booking form with
 * a countdown to the admission's end. */
async function queuePanel(area, e) {
  const mine = await api('GET', `/events/${e.id}/queue/me`);
  const place = h('p', { class: 'queue-place', id: 'queue-place', 'aria-live': 'polite' });
  const showPlace = (p) => {
    if (p.status === 'admitted') {
      const left = h('span', { class: 'countdown', id: 'admission-countdown' });
      area.replaceChildren(h('p', { class: 'status-confirmed', id: 'admitted' }, 'You are in! Book within ', left, '.'));
      bookingForm(area, e);
      const ends = new Date(p.admitted_until).getTime();
      const tick = () => {
        const s = Math.ceil(Math.max(0, ends - Date.now()) / 1000);
        left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
        if (s === 0) { clearInterval(timer); queuePanel(area, e); }
      };
      const timer = setInterval(tick, 250);
      cleanups.push(() => clearInterval(timer));
      tick();
      return true;
    }
    if (p.status === 'waiting') {
      // People go through at the event's rate: the wait is about position / rate seconds.
      const wait = Math.ceil(p.position / Math.max(1, e.admit_per_second));
      const eta = `about ${Math.floor(wait / 60)}:${String(wait % 60).padStart(2, '0')} to go`;
      place.textContent = p.position === 1 ? `You are next in the queue (${eta}).` : `Your place in the queue: ${p.position} (${eta}).`;
      if (!place.isConnected) area.replaceChildren(h('p', {}, 'This event lets buyers in through a waiting room.'), place);
      return false;
    }
    return false;
  };
  const follow = () => {
    const source = new EventSource(`${API}/events/${e.id}/queue/me/stream?access_token=${encodeURIComponent(session().access)}`);
    source.addEventListener('queue', (msg) => { if (showPlace(JSON.parse(msg.data))) source.close(); });
    cleanups.push(() => source.close());
  };
  if (mine.status === 200 && mine.body.status !== 'expired') {
    if (!showPlace(mine.body)) follow();
    return;
  }
  const join = h('button', { type: 'button', id: 'join-queue', onclick: async () => {
    join.disabled = true;
    const res = await api('POST', `/events/${e.id}/queue`);
    if (res.status === 201 || res.status === 200) {
      if (!showPlace(res.body)) follow();
    } else { join.disabled = false; bookingFailed(res, area); }
  } }, 'Join the queue');
  area.replaceChildren(h('p', {}, mine.status === 200
    ? 'Your admission has ended. Join the queue again to book.'
    : 'This event lets buyers in through a waiting room, first come, first served.'), join);
}

/** The waiting list: offered on a sold-out event, with the caller's entry once on it. */
async function waitlistPanel(area, e) {
  const mine = await api('GET', `/events/${e.id}/waitlist/me`);
  const entry = (w) => {
    if (w.status === 'offered') {
      area.replaceChildren(h('p', { class: 'status-confirmed', id: 'waitlist-offered' },
        'Seats came back for you from the waiting list. See ', h('a', { href: '#/orders' }, 'My orders'), '.'));
      return;
    }
    const leave = h('button', { type: 'button', class: 'secondary', onclick: async () => {
      const res = await api('DELETE', `/events/${e.id}/waitlist/me`);
      if (res.status === 204) { toast('You left the waiting list.'); waitlistPanel(area, e); } else toast(errorText(res), 'bad');
    } }, 'Leave the waiting list');
    area.replaceChildren(h('p', { id: 'waitlist-place' },
      `You are number ${w.position} on the waiting list for ${w.quantity} seat(s).`), leave);
  };
  if (mine.status === 200) { entry(mine.body); return; }
  const free = e.price_cents === 0;
  const qty = h('input', { type: 'number', id: 'waitlist-quantity', name: 'quantity', min: 1, max: free ? 1 : e.max_per_order, value: 1 });
  const join = h('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const res = await api('POST', `/events/${e.id}/waitlist`, { quantity: Number(qty.value) });
    if (res.status === 201 || res.status === 200) { toast('You are on the waiting list.'); entry(res.body); } else bookingFailed(res, area);
  } }, free ? '' : field('Waiting-list seats', qty), h('button', { type: 'submit', id: 'join-waitlist' }, 'Join the waiting list'));
  const offer = h('div', { class: 'waitlist-offer', 'data-soldout': e.id, hidden: e.available_slots > 0 },
    h('p', {}, 'Sold out. Join the waiting list and get seats that come back.'), join);
  area.replaceChildren(offer);
}

function bookingFailed(res, area) {
  const code = res.body && res.body.error && res.body.error.code;
  const message = code === 'sold_out' ? `Sold out: ${errorText(res)}.` : errorText(res);
  toast(message, 'bad');
  area.querySelector('.error')?.remove();
  area.append(h('p', { class: 'error', 'data-error': code || 'error' }, message));
}

/** A granted hold: countdown to its expiry and the payment form. */
function holdPanel(area, event, order) {
  const left = h('span', { class: 'countdown', id: 'countdown', 'aria-live': 'off' });
  const card = h('select', { id: 'card', name: 'card' },
    h('option', { value: 'tok_ok' }, 'Test card that succeeds (tok_ok)'),
    h('option', { value: 'tok_declined' }, 'Test card that is declined (tok_declined)'));
  const pay = h('button', { type: 'submit' }, `Pay ${money(order.amount_cents, order.currency || event.currency)}`);
  const note = h('div', { class: 'note' });
  const panel = h('form', { class: 'card hold stack', 'aria-labelledby': 'hold-title', onsubmit: async (ev) => {
    ev.preventDefault();
    pay.disabled = true;
    const res = await api('POST', '/payments', { order_id: order.id, amount_cents: order.amount_cents, card_token: card.value },
      { 'Idempotency-Key': crypto.randomUUID() });
    if (res.status === 201 && res.body.status === 'succeeded') {
      stop();
      const o = await api('GET', `/orders/${order.id}`);
      const codes = (o.body && o.body.tickets || []).map((t) => t.code);
      toast(`Payment succeeded. Your tickets: ${codes.join(', ')}`);
      panel.replaceChildren(h('h2', { id: 'hold-title' }, 'Booked!'),
        h('p', { class: 'status-confirmed' }, `${order.quantity} seat(s) confirmed.`),
        h('ul', { 'aria-label': 'Tickets' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
        h('p', {}, h('a', { href: '#/orders' }, 'My orders')));
    } else if (res.status === 201) {
      pay.disabled = false;
      const why = res.body.failure_reason || 'the card was declined';
      toast(`Payment declined: ${why}. Your seats are still held; try another card.`, 'bad');
      note.replaceChildren(h('p', { class: 'error', 'data-error': 'declined' }, `Payment declined: ${why}.`));
    } else if (res.body && res.body.error && res.body.error.code === 'hold_expired') {
      expired();
    } else {
      pay.disabled = false;
      toast(errorText(res), 'bad');
      note.replaceChildren(h('p', { class: 'error' }, errorText(res)));
    }
  } },
  h('h2', { id: 'hold-title' }, `${order.quantity} seat(s) held for you`),
  h('p', {}, 'Pay within ', left, ' or the seats go back on sale.'),
  field('Card', card), pay, note);
  area.replaceChildren(panel);
  card.focus();
  const ends = new Date(order.expires_at).getTime();
  const tick = () => {
    const ms = Math.max(0, ends - Date.now());
    const s = Math.ceil(ms / 1000);
    left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    if (ms === 0) expired();
  };
  const timer = setInterval(tick, 250);
  const stop = () => clearInterval(timer);
  cleanups.push(stop);
  function expired() {
    stop();
    pay.disabled = true;
    toast('Your hold expired and the seats were released. Book again if seats are left.', 'warn');
    note.replaceChildren(h('p', { class: 'error', 'data-error': 'hold_expired' }, 'Hold expired.'),
      h('button', { type: 'button', class: 'secondary', onclick: () => route() }, 'Book again'));
  }
  tick();
}

async function ordersView() {
  if (!session()) { location.hash = '#/login'; return; }
  const show = screen();
  const r = await api('GET', '/orders?limit=50');
  if (r.status !== 200) return show('My orders', h('p', { class: 'error' }, errorText(r)));
  const names = new Map();
  const events = await api('GET', '/events?limit=100');
  for (const e of (events.body && events.body.items) || []) names.set(e.id, e.name);
  const rows = await Promise.all(r.body.items.map(async (o) => {
    if (o.status !== 'confirmed') return o;
    const full = await api('GET', `/orders/${o.id}`);
    return full.status === 200 ? full.body : o;
  }));
  const list = h('ul', { class: 'grid' }, rows.map((o) => {
    const cancel = ['pending', 'confirmed'].includes(o.status) && h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!confirm(o.status === 'confirmed' ? 'Cancel this booking? You will be refunded.' : 'Release these seats?')) return;
      const res = await api('POST', `/orders/${o.id}/cancel`, {});
      if (res.status === 200) { toast('Order cancelled.'); ordersView(); } else toast(errorText(res), 'bad');
    } }, 'Cancel');
    return h('li', { class: 'card', 'data-order': o.id },
      h('h2', {}, h('a', { href: `#/events/${o.event_id}` }, names.get(o.event_id) || 'Event')),
      h('p', { class: `status-${o.status}` }, o.status),
      h('p', { class: 'meta' }, `${o.quantity} seat(s) · ${money(o.amount_cents, o.currency)} · ${when(o.created_at)}`),
      o.tickets && h('ul', { 'aria-label': 'Tickets' }, o.tickets.map((t) => h('li', {}, h('code', {}, t.code)))),
      cancel);
  }));
  show('My orders', rows.length ? list : h('p', {}, 'No orders yet. ', h('a', { href: '#/events' }, 'Find an event'), '.'));
}

function authForm(title, fields, submitText, onsubmit) {
  const error = h('p', { class: 'error', hidden: true });
  const form = h('form', { class: 'stack', onsubmit: async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const values = Object.fromEntries(new FormData(form));
    const message = await onsubmit(values);
    if (message) { error.textContent = message; error.hidden = false; }
  } }, fields.map(([name, label, type, extra]) => field(label, h('input', { name, type, id: name, required: !extra?.optional, autocomplete: extra?.autocomplete }))),
  h('button', { type: 'submit' }, submitText), error);
  view(title, form);
  form.querySelector('input').focus();
}

async function login(values) {
  const r = await api('POST', '/auth/login', { login: values.login, password: values.password });
  if (r.status !== 200) return r.status === 401 ? 'Wrong user name or password.' : errorText(r);
  saveTokens(r.body, values.login);
  updateNav();
  toast(`Welcome, ${values.login}.`);
  location.hash = '#/events';
  return null;
}

function loginView() {
  authForm('Log in', [['login', 'User name or e-mail', 'text', { autocomplete: 'username' }],
    ['password', 'Password', 'password', { autocomplete: 'current-password' }]], 'Log in', login);
}

function signupView() {
  authForm('Sign up', [['email', 'E-mail', 'email', { autocomplete: 'email' }], ['username', 'User name', 'text', { autocomplete: 'username' }],
    ['password', 'Password (at least 10 characters, not a common one)', 'password', { autocomplete: 'new-password', minlength: 10 }]], 'Create account', async (v) => {
    const r = await api('POST', '/auth/register', { email: v.email, username: v.username, password: v.password });
    if (r.status !== 201) return errorText(r);
    return login({ login: v.username, password: v.password });
  });
}

async function adminView() {
  const show = screen();
  const s = session();
  if (!s || s.role !== 'admin') return view('Admin', h('p', { class: 'error' }, 'Administrators only. ', h('a', { href: '#/login' }, 'Log in'), ' as one.'));
  const cats = await api('GET', '/categories');
  const category = h('select', { name: 'category_id', id: 'category_id', required: true },
    (Array.isArray(cats.body) ? cats.body : []).map((c) => h('option', { value: c.id }, `${c.name} (${c.kind})`)));
  const input = (name, type, attrs = {}) => h('input', { name, id: name, type, required: true, ...attrs });
  const create = h('form', { class: 'stack', 'aria-labelledby': 'create-title', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = Object.fromEntries(new FormData(create));
    const r = await api('POST', '/events', {
      name: v.name, category_id: v.category_id, price_cents: Math.round(Number(v.price) * 100), currency: v.currency,
      starts_at: new Date(v.starts_at).toISOString(), total_slots: Number(v.total_slots),
      max_per_order: Number(v.max_per_order), hold_seconds: Number(v.hold_seconds),
      max_per_person: Number(v.max_per_person),
      waiting_room: v.waiting_room === 'on', admit_per_second: Number(v.admit_per_second),
    });
    if (r.status === 201) { toast(`Event "${r.body.name}" created.`); adminView(); } else toast(errorText(r), 'bad');
  } },
  field('Name', input('name', 'text')), field('Category', category),
  h('div', { class: 'row' }, field('Price', input('price', 'number', { min: 0, step: '0.01', value: '0' })),
    field('Currency', input('currency', 'text', { value: 'EUR', maxlength: 3, size: 4 }))),
  field('Starts at', input('starts_at', 'datetime-local')),
  h('div', { class: 'row' }, field('Seats', input('total_slots', 'number', { min: 1, value: 100 })),
    field('Max per order', input('max_per_order', 'number', { min: 1, value: 10 })),
    field('Max per person (0 = no limit)', input('max_per_person', 'number', { min: 0, value: 20 })),
    field('Hold (seconds)', input('hold_seconds', 'number', { min: 1, value: 600 }))),
  h('div', { class: 'row' },
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'waiting_room', id: 'waiting_room' }), 'Waiting room'),
    field('Admitted per second', input('admit_per_second', 'number', { min: 1, max: 10000, value: 10 }))),
  h('button', { type: 'submit' }, 'Create event'));

  const events = await api('GET', '/events?limit=50');
  const items = (events.body && events.body.items) || [];

  const type = h('select', { id: 'audit-type', name: 'event_type' }, h('option', { value: '' }, 'All types'),
    ['user.created', 'category.created', 'event.created', 'event.updated', 'order.placed', 'order.confirmed',
      'order.cancelled', 'order.expired', 'payment.started', 'payment.succeeded', 'payment.failed', 'payment.refunded',
      'registration.created', 'queue.joined', 'queue.admitted', 'waitlist.joined', 'waitlist.offered',
      'waitlist.left', 'user.login', 'user.login_failed'].map((t) => h('option', { value: t }, t)));
  const auditBody = h('tbody');
  const loadAudit = async () => {
    const r = await api('GET', `/audit-logs?limit=50${type.value ? `&event_type=${type.value}` : ''}`);
    const rows = (r.body && r.body.items) || [];
    auditBody.replaceChildren(...rows.map((a) => h('tr', {},
      h('td', {}, when(a.occurred_at || a.occurredAt)), h('td', {}, a.event_type || a.eventType),
      h('td', {}, h('code', {}, JSON.stringify(a.data))))));
  };
  type.addEventListener('change', loadAudit);

  const log = h('ol', { class: 'log', id: 'live-log', 'aria-label': 'Live domain events', reversed: true });
  let socket = null;
  const toggle = h('button', { type: 'button', class: 'secondary', onclick: () => {
    if (socket) { socket.close(); return; }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/ws/logs?access_token=${encodeURIComponent(session().access)}`);
    socket.onopen = () => { toggle.textContent = 'Stop live stream'; };
    socket.onclose = () => { socket = null; toggle.textContent = 'Start live stream'; };
    socket.onmessage = (m) => {
      const e = JSON.parse(m.data);
      log.prepend(h('li', {}, `${e.type} ${e.aggregateId || ''} ${JSON.stringify(e.data || e)}`));
      while (log.children.length > 200) log.lastChild.remove();
    };
  } }, 'Start live stream');
  cleanups.push(() => socket && socket.close());

  const drawn = show('Admin',
    h('section', {}, h('h2', { id: 'create-title' }, 'Create an event'), create),
    h('section', {}, h('h2', {}, 'Availability'), items.length ? eventGrid(items) : h('p', {}, 'No events yet.')),
    h('section', {}, h('h2', {}, 'Audit log'), field('Type', type),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Type'), h('th', {}, 'Data'))), auditBody)),
    h('section', {}, h('h2', {}, 'Live event stream'), toggle, log));
  if (!drawn) return;
  followAvailability(items.map((e) => e.id));
  loadAudit();
}

// ---------------------------------------------------------------- routing

function updateNav() {
  const s = session();
  for (const el of document.querySelectorAll('[data-when]')) {
    const w = el.dataset.when;
    el.hidden = w === 'guest' ? !!s : w === 'user' ? !s : !(s && s.role === 'admin');
  }
  document.getElementById('who').textContent = s ? `Signed in as ${s.username || 'you'}` : '';
}

async function route() {
  shown += 1;
  for (const c of cleanups) c();
  cleanups = [];
  const [path, query = ''] = (location.hash.slice(1) || '/events').split('?');
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === parts[0]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  updateNav();
  if (parts[0] === 'events' && parts[1]) {
    // Only an id goes into an API path (a crafted link must not steer requests elsewhere).
    if (!UUID.test(parts[1])) return view('Event', h('p', { class: 'error' }, 'No such event.'));
    return eventView(parts[1]);
  }
  if (parts[0] === 'orders') return ordersView();
  if (parts[0] === 'admin') return adminView();
  if (parts[0] === 'login') return loginView();
  if (parts[0] === 'signup') return signupView();
  return eventsView(query);
}

document.getElementById('logout').addEventListener('click', async () => {
  const s = session();
  if (s) await api('POST', '/auth/logout', { refresh_token: s.refresh });
  clearSession();
  toast('Logged out.');
  location.hash = '#/events';
  route();
});
window.addEventListener('hashchange', route);
route();
