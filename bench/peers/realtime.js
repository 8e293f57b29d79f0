'use strict';
// The Node.js realtime service of the seed article's hybrid architecture, holding the same realtime view as notigate's
// notifier and built the same way: it loads the window from the Redis stream history-svc appends to (ng:stream) and
// follows it, keeping per user the unread notifications of the last REALTIME_WINDOW seconds (at most PER_USER_CAP).
//
//   GET /notifications/:user_id[?limit=N]  ->  [{"id","user_id","message","kind","ts","read":false}, ...] newest first
//
// Environment: PORT, REDIS_URL, REALTIME_WINDOW (seconds, default 300), PER_USER_CAP (default 100). It listens only once
// the window is loaded, as the notifier joins the gateway only then.
const express = require('express');
const Redis = require('ioredis');
const { env, USER_ID_RE } = require('./lib');

const port = Number(env('PORT'));
const windowMs = Number(env('REALTIME_WINDOW', '300')) * 1000;
const perUserCap = Number(env('PER_USER_CAP', '100'));
const BATCH = 1000;

const users = new Map(); // user id -> {entries: [{id, ts, message, kind}] ascending id, newest: highest id seen}

function add(userId, id, ts, message, kind, now) {
  if (ts < now - windowMs) return;
  let u = users.get(userId);
  if (u === undefined) users.set(userId, (u = { entries: [], newest: 0 }));
  if (id <= u.newest) return; // a replay
  u.newest = id;
  u.entries.push({ id, ts, message, kind });
  if (u.entries.length > perUserCap) u.entries.shift();
}

function markRead(userId, id) {
  const u = users.get(userId);
  if (u === undefined) return;
  const i = u.entries.findIndex((e) => e.id === id);
  if (i >= 0) u.entries.splice(i, 1);
}

function markAllRead(userId, upto) {
  const u = users.get(userId);
  if (u === undefined) return;
  u.entries = u.entries.filter((e) => e.id > upto);
}

// One stream entry [id, [field, value, ...]] (the event kinds history-svc writes: n, r, ra).
function apply(entry, now) {
  const f = {};
  const kv = entry[1];
  for (let i = 0; i + 1 < kv.length; i += 2) f[kv[i]] = kv[i + 1];
  if (f.u === undefined) return;
  if (f.t === 'n' && f.m !== undefined && f.k !== undefined && f.id) add(f.u, Number(f.id), Number(f.ts), f.m, f.k, now);
  else if (f.t === 'r' && f.id) markRead(f.u, Number(f.id));
  else if (f.t === 'ra') markAllRead(f.u, Number(f.upto || 0));
}

function expire() {
  const oldest = Date.now() - windowMs;
  for (const [userId, u] of users) {
    u.entries = u.entries.filter((e) => e.ts >= oldest);
    if (u.entries.length === 0) users.delete(userId); // as the notifier frees a user with nothing left
  }
}

async function load(redis) {
  let start = `${Date.now() - windowMs}-0`;
  let last = start;
  for (;;) {
    const batch = await redis.xrange('ng:stream', start, '+', 'COUNT', BATCH);
    const now = Date.now();
    for (const e of batch) apply(e, now);
    if (batch.length > 0) {
      last = batch[batch.length - 1][0];
      start = `(${last}`;
    }
    if (batch.length < BATCH) return last;
  }
}

async function follow(redis, last) {
  for (;;) {
    try {
      const r = await redis.xread('COUNT', BATCH, 'BLOCK', 2000, 'STREAMS', 'ng:stream', last);
      if (r === null) continue;
      const now = Date.now();
      for (const [, entries] of r) {
        for (const e of entries) apply(e, now);
        if (entries.length > 0) last = entries[entries.length - 1][0];
      }
    } catch (err) {
      console.error(`realtime: reading ng:stream failed: ${err.message}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
}

async function main() {
  const redis = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
  const last = await load(redis);
  follow(redis, last);
  setInterval(expire, 1000).unref();

  const app = express();
  app.set('etag', false);
  app.set('x-powered-by', false);
  app.get('/notifications/:user_id', (req, res) => {
    const userId = req.params.user_id;
    if (!USER_ID_RE.test(userId)) {
      res.status(400).json({ error: { code: 'invalid_user_id', message: 'invalid user id' } });
      return;
    }
    const limit = Math.min(Math.max(Number(req.query.limit) || 20, 1), 100);
    const u = users.get(userId);
    const out = [];
    if (u !== undefined) {
      const oldest = Date.now() - windowMs;
      for (let i = u.entries.length - 1; i >= 0 && out.length < limit; --i) {
        const e = u.entries[i];
        if (e.ts >= oldest) out.push({ id: e.id, user_id: userId, message: e.message, kind: e.kind, ts: e.ts, read: false });
      }
    }
    res.json(out);
  });
  app.get('/healthz', (req, res) => res.json({ status: 'ok' }));
  app.listen(port, '127.0.0.1');
}

main().catch((err) => {
  console.error(`realtime: ${err.stack || err}`);
  process.exit(1);
});
