// The limits that real clients meet on the real-time side: sessions per user across the native protocol and
// Socket.IO (a 429 before the upgrade, socket.io-client's connect_error at CONNECT), the message rate of a session
// (an error event, the session stays), and a browser's cross-site WebSocket refused by its Origin.
'use strict';

const assert = require('node:assert/strict');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient, sioConnect, sioConnected } = require('./clients');

const MAX_SESSIONS = 2;
const MESSAGE_RATE = 5;
const MESSAGE_BURST = 5;

const s = suite({
  gatewayArgs: [
    '--max-sessions-per-user',
    String(MAX_SESSIONS),
    '--ws-message-rate',
    String(MESSAGE_RATE),
    '--ws-message-burst',
    String(MESSAGE_BURST),
  ],
});

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

function native(query, wsOptions) {
  const c = new NativeClient(`${s.sys.wsBase}/v1/ws${query ? '?' + query : ''}`, wsOptions);
  s.track(() => c.close());
  return c;
}

function sio(opts) {
  const socket = sioConnect(s.sys.url, opts);
  s.track(() => socket.disconnect());
  return socket;
}

async function metric(series) {
  const text = await (await fetch(`${s.sys.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.split(' ')[1]) : -1;
}

s.test('sessions per user: the native upgrade over the limit gets a JSON 429, a closed session makes room', async () => {
  const user = unique('sess');
  const a = native(`user_id=${user}`);
  const b = native(`user_id=${user}`);
  await a.ready();
  await b.ready();
  const c = native(`user_id=${user}`);
  const err = await c.opened.then(
    () => null,
    (e) => e,
  );
  assert.ok(err, 'the third session of the user was upgraded');
  assert.equal(err.status, 429);
  assert.equal(JSON.parse(err.body).error.code, 'too_many_sessions');
  // another user is not held back
  await native(`user_id=${unique('other')}`).ready();
  a.close();
  await a.closed;
  await waitUntil(
    async () => {
      const d = new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=${user}`);
      try {
        await d.ready();
        s.track(() => d.close());
        return true;
      } catch {
        return false;
      }
    },
    3000,
    () => 'no room for a session after one closed',
  );
});

s.test('sessions per user count Socket.IO and native alike; socket.io-client gets connect_error', async () => {
  const user = unique('sio');
  const n = native(`user_id=${user}`);
  await n.ready();
  const first = sio({ auth: { user_id: user } });
  await sioConnected(first);
  const second = sio({ auth: { user_id: user } });
  const err = await sioConnected(second).then(
    () => null,
    (e) => e,
  );
  assert.ok(err, 'a third session of the user connected');
  assert.match(err.message, /too many sessions/);
  // the user in the query is checked before the upgrade: the client sees its connection refused
  const third = sio({ query: { user_id: user } });
  await assert.rejects(sioConnected(third));
  // closing the native session makes room
  n.close();
  await n.closed;
  await waitUntil(
    async () => {
      const again = sioConnect(s.sys.url, { auth: { user_id: user } });
      s.track(() => again.disconnect());
      return sioConnected(again).then(
        () => true,
        () => false,
      );
    },
    3000,
    () => 'no Socket.IO session after the native one closed',
  );
  assert.ok((await metric('notigate_limit_rejections_total{kind="sessions"}')) >= 2);
});

s.test('message rate of a session: over the burst the messages are dropped with rate_limited, the session stays', async () => {
  const c = native('');
  await c.ready();
  for (let i = 0; i < 3 * MESSAGE_BURST; ++i) c.send({ type: 'ping' });
  await waitUntil(
    () => c.frames.filter((f) => f.type === 'pong' || f.type === 'error').length === 3 * MESSAGE_BURST,
    3000,
    () => `an answer to every ping: ${JSON.stringify(c.frames)}`,
  );
  const pongs = c.frames.filter((f) => f.type === 'pong').length;
  const limited = c.frames.filter((f) => f.type === 'error' && f.data.code === 'rate_limited').length;
  assert.ok(pongs >= MESSAGE_BURST && pongs < 2 * MESSAGE_BURST, `pongs: ${pongs}`);
  assert.equal(pongs + limited, 3 * MESSAGE_BURST);
  assert.equal(c.closeInfo, null, 'the session was closed');
  await sleep(1000 / MESSAGE_RATE + 50); // a token is back
  const from = c.frames.length;
  c.send({ type: 'ping' });
  await c.waitFor((f) => f.type === 'pong', { from, what: 'pong after the refill' });
  assert.ok((await metric('notigate_limit_rejections_total{kind="messages"}')) >= limited);
});

s.test('a WebSocket from a page of another site is refused by its Origin (403), the same origin is not', async () => {
  const evil = native(`user_id=${unique('o')}`, { origin: 'https://evil.example' });
  const err = await evil.opened.then(
    () => null,
    (e) => e,
  );
  assert.ok(err && err.status === 403, `foreign origin: ${err && err.status}`);
  assert.equal(JSON.parse(err.body).error.code, 'origin_forbidden');
  const same = native(`user_id=${unique('o')}`, { origin: s.sys.url });
  await same.ready();
  const sioEvil = sio({ extraHeaders: { Origin: 'https://evil.example' } });
  await assert.rejects(sioConnected(sioEvil));
});
