'use strict';
// The seed article's hybrid endpoint in Node.js alone: express, the realtime list from the realtime service over
// keep-alive HTTP, the history page from Redis (ioredis, one Lua script, auto-pipelined), both at once, merged as
// notigate merges them.
//
//   GET /hybrid/notifications?user_id=U  ->  {"realtime":[..],"historical":[..],"server":".."}
//
// Environment: PORT, REDIS_URL, REALTIME_URL (the realtime service, http://127.0.0.1:PORT).
const express = require('express');
const http = require('http');
const Redis = require('ioredis');
const { env, PAGE_LUA, PAGE_LIMIT, USER_ID_RE, parsePage, merge } = require('./lib');

const port = Number(env('PORT'));
const realtimeUrl = new URL(env('REALTIME_URL'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const redis = new Redis(env('REDIS_URL'), { enableAutoPipelining: true });
redis.defineCommand('page', { numberOfKeys: 2, lua: PAGE_LUA });

function getRealtime(userId) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        agent,
        host: realtimeUrl.hostname,
        port: realtimeUrl.port,
        path: `/notifications/${encodeURIComponent(userId)}?limit=${PAGE_LIMIT}`,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`realtime service answered ${res.statusCode}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

const app = express();
app.set('etag', false);
app.set('x-powered-by', false);
app.get('/hybrid/notifications', async (req, res) => {
  const userId = req.query.user_id;
  if (typeof userId !== 'string' || !USER_ID_RE.test(userId)) {
    res.status(400).json({ error: { code: 'invalid_user_id', message: 'query parameter user_id is required' } });
    return;
  }
  try {
    const [realtime, reply] = await Promise.all([
      getRealtime(userId),
      redis.page(`ng:u:${userId}`, `ng:u:${userId}:unread`, userId, '0', String(PAGE_LIMIT)),
    ]);
    const m = merge(realtime, parsePage(userId, reply));
    res.json({ realtime: m.realtime, historical: m.historical, server: 'Node.js hybrid (express + ioredis)' });
  } catch (err) {
    res.status(503).json({ error: { code: 'unavailable', message: String(err.message || err) } });
  }
});
app.get('/healthz', (req, res) => res.json({ status: 'ok' }));
app.listen(port, '127.0.0.1');
