// A straightforward Node.js mapper of the default TikTok table, the "hand-written script" that
// `switchyard map` is compared with (benchmarks/peers/run): JSON.parse, crypto sha256,
// JSON.stringify. Same rows and fields as mappings/tiktok.yaml for the benchmark's events:
// event names, hashed email/phone/external_id, ttclid, ttp, ip, user agent, page, contents,
// content type, currency, value, order id, query. One output line per input line.
'use strict';
const crypto = require('crypto');
const readline = require('readline');

const ROWS = {
  '$page_load': [['PageView', 'both', []]],
  'Viewed Product': [['ViewContent', 'both', ['product']]],
  'Viewed Collection': [['ViewContent', 'both', ['items']]],
  'Added To Cart': [['AddToCart', 'both', ['product']]],
  'Started Checkout': [['InitiateCheckout', 'both', ['items', 'value']]],
  'Added Payment Info': [['AddPaymentInfo', 'both', ['items', 'value']]],
  'Placed Order': [['Purchase', 'server', ['items', 'value', 'order_id']],
    ['NewCustomerPurchase', 'server', ['items', 'value', 'order_id'], 'new']],
  'Started Subscription': [['Subscribe', 'server', ['items', 'value', 'order_id']]],
  'Placed Recurring Subscription Order':
    [['RecurringSubscriptionPaymentSucceeded', 'server', ['items', 'value', 'order_id']]],
  'Searched': [['Search', 'both', ['query']]],
  'Subscribed To Newsletter': [['CompleteRegistration', 'both', []]],
};

const CAMEL = [['eventName', 'event_name'], ['eventID', 'event_id'], ['eventId', 'event_id'],
  ['profileProperties', 'profile_properties']];

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const isDigest = (s) => /^[0-9a-f]{64}$/.test(s);
const hash = (s) => (isDigest(s) ? s : sha256(s));
const num = (v) => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : undefined);

function identities(ev, key, alias, norm) {
  const found = [];
  for (const v of [ev.profile_properties[key], ev.properties[key]]) {
    if (v !== undefined && v !== null && v !== '') found.push(hash(norm(String(v))));
  }
  if (found.length === 0) {
    for (const a of ev.aliases) {
      if (a.startsWith(alias)) found.push(hash(norm(a.slice(alias.length))));
    }
  }
  const unique = [...new Set(found)];
  return unique.length === 0 ? undefined : unique.length === 1 ? unique[0] : unique;
}

const e164 = (s) => '+' + s.replace(/[^0-9]/g, '');

function user(ev) {
  const p = ev.properties, pp = ev.profile_properties, u = {};
  const set = (k, v) => { if (v !== undefined && v !== null && v !== '') u[k] = v; };
  set('email', identities(ev, '$email', 'urn:email:', (s) => s.trim().toLowerCase()));
  set('phone', identities(ev, '$phone_number', 'urn:phone:', e164));
  set('external_id', identities(ev, '$external_id', 'urn:user_id:', (s) => s.trim()));
  let ttclid;
  if (typeof p.$url === 'string' && p.$url.includes('ttclid=')) {
    ttclid = new URL(p.$url).searchParams.get('ttclid') || undefined;
  }
  set('ttclid', ttclid ?? pp.$ttclid ?? p.$ttclid ?? pp.ttclid);
  set('ttp', pp.$ttp ?? pp._ttp ?? p.$ttp ?? p._ttp);
  set('ip', pp.$ip ?? p.$ip);
  set('user_agent', pp.$user_agent ?? p.$user_agent);
  return Object.keys(u).length ? u : undefined;
}

function content(item) {
  const c = {};
  const id = item.variant_id ?? item.product_id ?? item.sku;
  if (id !== undefined) c.content_id = String(id);
  c.content_type = 'product';
  if (item.name !== undefined) c.content_name = item.name;
  if (item.quantity !== undefined) c.quantity = Math.trunc(num(item.quantity));
  if (item.price !== undefined) c.price = num(item.price);
  if (item.vendor !== undefined) c.brand = item.vendor;
  return c;
}

function value(p) {
  if (p.total_price !== undefined) return num(p.total_price);
  if (Array.isArray(p.items)) return p.items.reduce((s, i) => s + num(i.price) * (num(i.quantity) ?? 1), 0);
  if (p.price !== undefined) return num(p.price) * (num(p.quantity) ?? 1);
  return undefined;
}

function payload(target, parts, ev) {
  const p = ev.properties;
  const out = { event: target, event_id: ev.event_id, event_time: ev.timestamp };
  const u = user(ev);
  if (u) out.user = u;
  const page = {};
  if (p.$url) page.url = p.$url;
  if (p.referrer) page.referrer = p.referrer;
  if (Object.keys(page).length) out.page = page;
  const props = {};
  for (const part of parts) {
    if (part === 'product') {
      props.contents = [content(p)];
      props.content_type = 'product';
      if (p.currency) props.currency = p.currency;
      props.value = value(p);
    } else if (part === 'items') {
      props.contents = (p.items || []).map(content);
      props.content_type = 'product';
      if (p.currency) props.currency = p.currency;
    } else if (part === 'value') {
      props.value = value(p);
    } else if (part === 'order_id' && p.id !== undefined) {
      props.order_id = String(p.id);
    } else if (part === 'query' && p.query !== undefined) {
      props.query = p.query;
    }
  }
  if (Object.keys(props).length) out.properties = props;
  return out;
}

function timestamp(t, now) {
  if (t === undefined || t === null) return now;
  if (typeof t === 'number') return t;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new Error('bad timestamp');
  return Math.floor(ms / 1000);
}

function mapLine(text, no, now) {
  let ev;
  try {
    ev = JSON.parse(text);
    for (const [camel, snake] of CAMEL) {
      if (ev[camel] !== undefined) { ev[snake] = ev[camel]; delete ev[camel]; }
    }
    if (typeof ev.properties !== 'object' || typeof ev.profile_properties !== 'object' || !Array.isArray(ev.aliases)) throw new Error('envelope');
    if (typeof ev.event_name !== 'string' || typeof ev.event_id !== 'string') throw new Error('envelope');
    ev.timestamp = timestamp(ev.timestamp, now);
  } catch (e) {
    return { line: no, destinations: { tiktok: { status: 'invalid', reason: String(e.message) } } };
  }
  const head = { line: no, event_id: ev.event_id, event_name: ev.event_name };
  const consent = ev.profile_properties.$consent;
  if (consent && consent.marketing === 'denied') {
    return { ...head, destinations: { tiktok: { status: 'skipped', reason: 'consent' } } };
  }
  const tags = ev.properties.tags;
  if (ev.event_name === 'Placed Order' && (typeof tags === 'string' || Array.isArray(tags)) && tags.includes('test')) {
    return { ...head, destinations: { tiktok: { status: 'filtered', reason: 'drop test orders' } } };
  }
  const rows = (ROWS[ev.event_name] || []).filter((r) => r[3] !== 'new' || ev.properties.$is_new_customer === true);
  if (rows.length === 0) {
    return { ...head, destinations: { tiktok: { status: 'skipped', reason: 'no row' } } };
  }
  const outcome = { status: 'sent', data: rows.map(([t, , parts]) => payload(t, parts, ev)) };
  const client = rows.filter((r) => r[1] === 'both').map((r) => r[0]);
  if (client.length) outcome.client = client;
  return { ...head, destinations: { tiktok: outcome } };
}

const now = Math.floor(Date.now() / 1000);
const out = [];
let no = 0;
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (text) => {
  no += 1;
  if (text.trim() === '') return;
  out.push(JSON.stringify(mapLine(text, no, now)));
  if (out.length >= 1024) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
});
rl.on('close', () => { if (out.length) process.stdout.write(out.join('\n') + '\n'); });
