// The native WebSocket protocol (GET /v1/ws) against a real system: hello, chat rooms with presence, live
// notifications, resume with since, malformed frames, limits, heartbeat and the HTTP errors of the endpoint.
'use strict';

const assert = require('node:assert/strict');
const http2 = require('node:http2');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient } = require('./clients');

const PING_INTERVAL_MS = 300;
const PING_TIMEOUT_MS = 300;
const MAX_MESSAGE = 4096;

// two notifier replicas: the gateway's live feed may be answered by either
const s = suite({
  notifiers: 2,
  gatewayArgs: [
    '--ws-ping-interval-ms',
    String(PING_INTERVAL_MS),
    '--ws-ping-timeout-ms',
    String(PING_TIMEOUT_MS),
    '--ws-max-message',
    String(MAX_MESSAGE),
  ],
});

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

function client(query = '') {
  const c = new NativeClient(`${s.sys.wsBase}/v1/ws${query ? '?' + query : ''}`);
  s.track(() => c.close());
  return c;
}

// Joins and waits for the answer; returns the joined frame's data.
async function join(c, username, room) {
  const from = c.frames.length;
  c.send({ type: 'join', username, ...(room !== undefined ? { room } : {}) });
  const f = await c.waitFor((f) => f.type === 'joined' || f.type === 'error', { from, what: `joined (${username})` });
  assert.equal(f.type, 'joined', `join as ${username}: ${JSON.stringify(f)}`);
  return f.data;
}

// Waits until the last online_users frame the client got lists exactly names (in any order).
async function waitOnline(c, names, what) {
  const want = [...names].sort();
  await waitUntil(
    () => {
      const o = c.ofType('online_users');
      return o.length !== 0 && JSON.stringify([...o[o.length - 1].data].sort()) === JSON.stringify(want);
    },
    3000,
    () => `${what}: online_users ${JSON.stringify(want)}; frames: ${c.describe()}`,
  );
}

// Asserts that no frame matching pred arrives within ms (from index from).
async function assertNone(c, pred, ms, what, from = 0) {
  await sleep(ms);
  const bad = c.frames.slice(from).filter(pred);
  assert.deepEqual(bad, [], `${what}: got ${JSON.stringify(bad)}`);
}

s.test('hello is the first frame: session id, user and ping interval', async () => {
  const u = unique('hello');
  const a = client(`user_id=${u}`);
  const hello = await a.ready();
  assert.deepEqual(Object.keys(hello.data).sort(), ['ping_interval_ms', 'sid', 'user_id']);
  assert.match(hello.data.sid, /^[A-Za-z0-9_-]{20}$/);
  assert.equal(hello.data.user_id, u);
  assert.equal(hello.data.ping_interval_ms, PING_INTERVAL_MS);
  assert.equal(a.frames.indexOf(hello), 0, 'hello is the first frame');

  const anon = client();
  const h2 = await anon.ready();
  assert.equal(h2.data.user_id, null);
  assert.notEqual(h2.data.sid, hello.data.sid);

  // the client's own keepalive
  const from = anon.frames.length;
  anon.send({ type: 'ping' });
  await anon.waitFor((f) => f.type === 'pong', { from, what: 'pong' });
});

s.test(
  'chat: join, presence, new_message to the whole room (sender too), rooms are separate, leave and close',
  async () => {
    const room = unique('room'),
      other = unique('other');
    const names = ['ann', 'Zoë 🚀', 'carl'];
    const [a, b, c] = names.map(() => client());
    const d = client();
    await Promise.all([a, b, c, d].map((x) => x.ready()));

    // a joins alone
    let j = await join(a, names[0], room);
    assert.deepEqual(j, { room, username: names[0], online_users: [names[0]] });

    // b joins: a hears of it, b does not hear of itself
    const aFrom = a.frames.length;
    j = await join(b, names[1], room);
    assert.equal(j.room, room);
    assert.deepEqual([...j.online_users].sort(), [names[0], names[1]].sort());
    await a.waitFor((f) => f.type === 'user_joined' && f.data === names[1], { from: aFrom, what: 'user_joined of b' });

    // c joins: a and b hear of it; everyone ends with the three names
    const bFrom = b.frames.length;
    await join(c, names[2], room);
    await a.waitFor((f) => f.type === 'user_joined' && f.data === names[2], { what: 'user_joined of c at a' });
    await b.waitFor((f) => f.type === 'user_joined' && f.data === names[2], {
      from: bFrom,
      what: 'user_joined of c at b',
    });
    for (const x of [a, b, c]) await waitOnline(x, names, 'room of three');
    for (const x of [b, c])
      assert.equal(
        x.ofType('user_joined').filter((f) => f.data === names[[a, b, c].indexOf(x)]).length,
        0,
        'no user_joined about oneself',
      );

    // d is in another room: it sees nothing of the first, and the first nothing of it
    const marks = [a, b, c].map((x) => x.frames.length);
    j = await join(d, 'dora', other);
    assert.deepEqual(j.online_users, ['dora']);

    // b speaks: all three get new_message, sender included; d gets nothing
    const before = Date.now();
    b.send({ type: 'send_message', message: 'hello room ✓' });
    for (const x of [a, b, c]) {
      const m = await x.waitFor((f) => f.type === 'new_message', {
        from: marks[[a, b, c].indexOf(x)],
        what: 'new_message',
      });
      assert.equal(m.data.sender, names[1]);
      assert.equal(m.data.message, 'hello room ✓');
      assert.equal(m.data.room, room);
      assert.match(m.data.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const ts = Date.parse(m.data.timestamp);
      assert.ok(ts >= before - 2000 && ts <= Date.now() + 2000, `timestamp ${m.data.timestamp} is now`);
    }
    // d speaks in its own room: only d gets it
    d.send({ type: 'send_message', message: 'alone' });
    await d.waitFor((f) => f.type === 'new_message' && f.data.message === 'alone' && f.data.sender === 'dora', {
      what: 'own message',
    });
    for (const [i, x] of [a, b, c].entries())
      await assertNone(
        x,
        (f) =>
          (f.type === 'user_joined' && f.data === 'dora') || (f.type === 'new_message' && f.data.message === 'alone'),
        i === 0 ? 200 : 0,
        'frames of the other room',
        marks[i],
      );
    assert.deepEqual(d.ofType('user_joined'), []);
    assert.deepEqual(
      d.ofType('new_message').map((f) => f.data.message),
      ['alone'],
    );

    // c leaves: it gets left; a and b get user_left and the new presence; c no longer gets the room's messages
    const cFrom = c.frames.length,
      aFrom2 = a.frames.length,
      bFrom2 = b.frames.length;
    c.send({ type: 'leave' });
    const left = await c.waitFor((f) => f.type === 'left', { from: cFrom, what: 'left' });
    assert.deepEqual(left.data, { room });
    for (const [x, from] of [
      [a, aFrom2],
      [b, bFrom2],
    ]) {
      await x.waitFor((f) => f.type === 'user_left' && f.data === names[2], { from, what: 'user_left of c' });
      await waitOnline(x, names.slice(0, 2), 'after c left');
    }
    a.send({ type: 'send_message', message: 'after leave' });
    await b.waitFor((f) => f.type === 'new_message' && f.data.message === 'after leave', {
      what: 'message after leave',
    });
    await assertNone(
      c,
      (f) => f.type === 'new_message' && f.data.message === 'after leave',
      150,
      'message to one that left',
      cFrom,
    );

    // b closes its connection: a gets user_left and presence without b
    const aFrom3 = a.frames.length;
    await b.close();
    await a.waitFor((f) => f.type === 'user_left' && f.data === names[1], {
      from: aFrom3,
      what: 'user_left of b (closed)',
    });
    await waitOnline(a, [names[0]], 'after b closed');

    // leaving when not in a room is an error, the session stays
    const cFrom2 = c.frames.length;
    c.send({ type: 'leave' });
    const e = await c.waitFor((f) => f.type === 'error', { from: cFrom2, what: 'not_joined error' });
    assert.equal(e.data.code, 'not_joined');
  },
);

s.test('chat: joining another room leaves the first', async () => {
  const r1 = unique('first'),
    r2 = unique('second');
  const a = client(),
    b = client(),
    c = client();
  await Promise.all([a, b, c].map((x) => x.ready()));
  await join(a, 'stay', r1);
  await join(b, 'mover', r1);
  await join(c, 'other', r2);
  await waitOnline(a, ['stay', 'mover'], 'first room');
  const aFrom = a.frames.length,
    cFrom = c.frames.length;
  const j = await join(b, 'mover', r2);
  assert.deepEqual([...j.online_users].sort(), ['mover', 'other']);
  await a.waitFor((f) => f.type === 'user_left' && f.data === 'mover', {
    from: aFrom,
    what: 'user_left in the first room',
  });
  await waitOnline(a, ['stay'], 'first room after the move');
  await c.waitFor((f) => f.type === 'user_joined' && f.data === 'mover', {
    from: cFrom,
    what: 'user_joined in the second room',
  });
  b.send({ type: 'send_message', message: 'moved' });
  await c.waitFor((f) => f.type === 'new_message' && f.data.message === 'moved' && f.data.room === r2);
  await assertNone(a, (f) => f.type === 'new_message', 150, 'a message of the room left', aFrom);
});

s.test('presence is coalesced: a crowd joining at once does not send online_users once per join', async () => {
  const room = unique('crowd');
  const n = 8;
  const cs = Array.from({ length: n }, () => client());
  await Promise.all(cs.map((c) => c.ready()));
  const names = cs.map((_, i) => `p${i}`);
  cs.forEach((c, i) => c.send({ type: 'join', username: names[i], room }));
  for (const c of cs) await waitOnline(c, names, 'crowd presence');
  await sleep(150); // any late update
  for (const [i, c] of cs.entries()) {
    const updates = c.ofType('online_users').length;
    assert.ok(
      updates >= 1 && updates < n,
      `member ${i} got ${updates} online_users for ${n} joins (coalesced: fewer than ${n})`,
    );
    const last = c.ofType('online_users').at(-1).data;
    assert.equal(last.length, n, 'each member once');
  }
});

s.test('live push: a notification reaches every open session of its user within ~100 ms, and no one else', async () => {
  const u = unique('u'),
    v = unique('v');
  const u1 = client(`user_id=${u}`),
    u2 = client(`user_id=${u}`),
    v1 = client(`user_id=${v}`),
    anon = client();
  await Promise.all([u1, u2, v1, anon].map((c) => c.ready()));
  await sleep(50); // the sessions know where they start (the baseline read from history)

  const latencies = [];
  const published = [];
  for (let i = 0; i < 10; ++i) {
    const marks = [u1.frames.length, u2.frames.length];
    const sent = performance.now();
    const p = await s.sys.publish(u, `to u #${i}`, 'order');
    published.push(p);
    for (const [k, c] of [u1, u2].entries()) {
      const f = await c.waitFor((f) => f.type === 'notification' && f.data.id === p.id, {
        from: marks[k],
        timeoutMs: 2000,
        what: `notification ${p.id}`,
      });
      assert.deepEqual(f.data, { id: p.id, user_id: u, message: `to u #${i}`, kind: 'order', ts: p.ts, read: false });
      latencies.push(c.at[c.frames.indexOf(f)] - sent);
    }
  }
  latencies.sort((x, y) => x - y);
  const median = latencies[latencies.length >> 1],
    max = latencies.at(-1);
  assert.ok(
    median <= 100,
    `median delivery ${median.toFixed(1)} ms after the POST (want <= 100); all: ${latencies.map(Math.round)}`,
  );
  assert.ok(max <= 500, `slowest delivery ${max.toFixed(1)} ms after the POST (want <= 500)`);
  for (const c of [u1, u2])
    assert.deepEqual(
      c.notificationIds(),
      published.map((p) => p.id),
      'each once, in order',
    );

  // v's own notification reaches v only
  const pv = await s.sys.publish(v, 'to v');
  await v1.waitFor((f) => f.type === 'notification' && f.data.id === pv.id, { what: 'v notification' });
  await sleep(100);
  assert.deepEqual(v1.notificationIds(), [pv.id], "v got none of u's notifications");
  for (const c of [u1, u2]) assert.ok(!c.notificationIds().includes(pv.id), "u did not get v's notification");
  assert.deepEqual(anon.ofType('notification'), [], 'a session without a user gets no notifications');
});

s.test(
  'resume: reconnecting with since=<last id seen> gets every missed notification in order, then live ones; no gap, no duplicate',
  { timeout: 30000 },
  async () => {
    const u = unique('resume');
    const first = client(`user_id=${u}`);
    await first.ready();
    await sleep(50);
    const seen = [];
    for (let i = 0; i < 5; ++i) seen.push((await s.sys.publish(u, `seen ${i}`)).id);
    await first.waitCount((f) => f.type === 'notification', 5, { what: '5 notifications before the disconnect' });
    assert.deepEqual(first.notificationIds(), seen);
    const lastSeen = seen.at(-1);
    await first.close();

    // missed while away: more than a history page (100) and more than the gateway's resume buffer (64)
    const expected = [];
    const publishMany = async (n, label, concurrency) => {
      const ids = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) {
            const i = next++;
            ids.push((await s.sys.publish(u, `${label} ${i}`)).id);
          }
        }),
      );
      return ids;
    };
    expected.push(...(await publishMany(150, 'away', 8)));

    // more are published while it reconnects and reads what it missed
    const during = publishMany(80, 'during', 4);
    await sleep(5);
    const back = client(`user_id=${u}&since=${lastSeen}`);
    await back.ready();
    expected.push(...(await during));

    // then live ones
    for (let i = 0; i < 5; ++i) expected.push((await s.sys.publish(u, `live ${i}`)).id);
    expected.sort((x, y) => x - y);
    await back.waitCount((f) => f.type === 'notification', expected.length, {
      timeoutMs: 10000,
      what: `${expected.length} notifications after the resume`,
    });
    await sleep(200); // a late duplicate would show here
    const got = back.notificationIds();
    const dups = got.filter((id, i) => got.indexOf(id) !== i);
    assert.deepEqual(dups, [], 'no duplicates');
    const missing = expected.filter((id) => !got.includes(id));
    assert.deepEqual(missing, [], 'no gap');
    assert.deepEqual(got, expected, 'every missed one in id order, then the live ones');
    assert.ok(!got.includes(lastSeen), 'nothing at or before since');

    // since=0 reads the user's whole history
    const all = client(`user_id=${u}&since=0`);
    await all.ready();
    await all.waitCount((f) => f.type === 'notification', seen.length + expected.length, {
      timeoutMs: 10000,
      what: 'the whole history',
    });
    assert.deepEqual(all.notificationIds(), [...seen, ...expected]);
  },
);

s.test(
  'resume under load: sessions that resume while notifications keep coming get each one once, in order',
  { timeout: 30000 },
  async () => {
    const u = unique('resume-load');
    const ids = [];
    const publish = async (label) => ids.push((await s.sys.publish(u, label)).id);
    for (let i = 0; i < 250; i += 10)
      await Promise.all(Array.from({ length: 10 }, (_, k) => publish(`history ${i + k}`)));

    // live notifications keep coming while sessions resume from the start of the user's history (3 pages each)
    let stop = false;
    const publishers = Array.from({ length: 3 }, async () => {
      for (let i = 0; !stop; ++i) await publish(`live ${i}`);
    });
    const clients = [];
    for (let i = 0; i < 12; ++i) {
      clients.push(client(`user_id=${u}&since=0`));
      await sleep(15);
    }
    await Promise.all(clients.map((c) => c.ready()));
    await sleep(150);
    stop = true;
    await Promise.all(publishers);
    ids.sort((a, b) => a - b);
    // each gets all (a missing one shows in the comparison after a short wait)
    await waitUntil(
      () => clients.every((c) => c.notificationIds().length >= ids.length),
      5000,
      'every client to catch up',
    ).catch(() => {});
    await sleep(150);
    for (const [k, c] of clients.entries()) {
      const got = c.notificationIds();
      assert.deepEqual(
        got,
        ids,
        `client ${k}: missing ${JSON.stringify(ids.filter((id) => !got.includes(id)))}, ` +
          `duplicated ${JSON.stringify(got.filter((id, i) => got.indexOf(id) !== i))}`,
      );
    }
  },
);

s.test('malformed frames get an error frame {code, message} and the session stays open', async () => {
  const c = client();
  await c.ready();
  const cases = [
    ['not json', 'invalid_json'],
    ['[1,2,3]', 'invalid_json'],
    ['"join"', 'invalid_json'],
    ['{"type":"join","username":"x"', 'invalid_json'],
    ['{"username":"x"}', 'invalid_type'],
    ['{"type":42}', 'invalid_type'],
    ['{"type":"dance"}', 'unknown_type'],
    ['{"type":"join"}', 'invalid_username'],
    ['{"type":"join","username":7}', 'invalid_username'],
    ['{"type":"join","username":""}', 'invalid_username'],
    ['{"type":"join","username":"x","room":"no spaces"}', 'invalid_room'],
    ['{"type":"join","username":"x","room":5}', 'invalid_username'],
    ['{"type":"send_message"}', 'invalid_message'],
    ['{"type":"send_message","message":"before joining"}', 'not_joined'],
    ['{"type":"leave"}', 'not_joined'],
  ];
  for (const [frame, code] of cases) {
    const from = c.frames.length;
    c.send(frame);
    const f = await c.waitFor(() => true, { from, what: `the answer to ${frame}` });
    assert.equal(f.type, 'error', `answer to ${frame}: ${JSON.stringify(f)}`);
    assert.equal(f.data.code, code, `code for ${frame}`);
    assert.equal(typeof f.data.message, 'string');
    assert.ok(f.data.message.length > 0);
  }
  // still open and working
  await join(c, 'survivor', unique('after-errors'));
  const from = c.frames.length;
  c.send({ type: 'send_message', message: '' });
  assert.equal((await c.waitFor(() => true, { from })).data.code, 'invalid_message', 'empty message');
  c.send({ type: 'send_message', message: 'ok' });
  await c.waitFor((f) => f.type === 'new_message' && f.data.message === 'ok', { what: 'a message after the errors' });
  assert.equal(c.closeInfo, null);
});

s.test('a binary frame closes the session with 1003', async () => {
  const c = client();
  await c.ready();
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  const { code } = await c.closed;
  assert.equal(code, 1003);
});

s.test('a message over --ws-max-message closes the session with 1009; one at the limit is fine', async () => {
  const ok = client();
  await ok.ready();
  // exactly MAX_MESSAGE bytes: a valid frame (an error answer, since the message field is too long for chat)
  const pad = MAX_MESSAGE - JSON.stringify({ type: 'ping', pad: '' }).length;
  const atLimit = JSON.stringify({ type: 'ping', pad: 'x'.repeat(pad) });
  assert.equal(Buffer.byteLength(atLimit), MAX_MESSAGE);
  ok.send(atLimit);
  await ok.waitFor((f) => f.type === 'pong', { what: 'pong to a frame at the limit' });

  const big = client();
  await big.ready();
  big.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_MESSAGE) }));
  const { code } = await big.closed;
  assert.equal(code, 1009);
  assert.equal(ok.closeInfo, null, 'the other session stays');
});

s.test(
  'heartbeat: a client that does not answer pings is closed (1008) after interval + timeout; one that answers stays',
  async () => {
    const window = PING_INTERVAL_MS + PING_TIMEOUT_MS;
    const mute = new NativeClient(`${s.sys.wsBase}/v1/ws`, { autoPong: false });
    s.track(() => mute.close());
    const alive = client();
    const started = performance.now();
    await Promise.all([mute.ready(), alive.ready()]);
    let pings = 0;
    mute.ws.on('ping', () => ++pings);
    const { code, reason } = await mute.closed;
    const after = performance.now() - started;
    assert.equal(code, 1008, `close code (reason ${reason})`);
    assert.ok(pings >= 1, 'the gateway pinged');
    assert.ok(
      after >= window - 50 && after <= window + 2 * PING_INTERVAL_MS + 500,
      `closed after ${after.toFixed(0)} ms; interval + timeout = ${window} ms`,
    );
    // the client that answers pings (ws does it by itself) outlives several windows
    await sleep(Math.max(0, 3 * window - (performance.now() - started)));
    assert.equal(alive.closeInfo, null, 'a client that answers pings stays connected');
    const from = alive.frames.length;
    alive.send({ type: 'ping' });
    await alive.waitFor((f) => f.type === 'pong', { from });
  },
);

s.test('GET /v1/ws without an upgrade, or over HTTP/2, is 400 websocket_required (JSON)', async () => {
  const r = await s.sys.get('/v1/ws?user_id=alice');
  assert.equal(r.status, 400);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.equal(r.body.error.code, 'websocket_required');
  assert.equal(typeof r.body.error.message, 'string');

  // HTTP/2 (cleartext, prior knowledge)
  const session = http2.connect(s.sys.url);
  s.track(() => new Promise((resolve) => session.close(resolve)));
  const { status, body, type } = await new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': '/v1/ws?user_id=alice' });
    let status,
      type,
      body = '';
    req.on('response', (h) => ((status = h[':status']), (type = h['content-type'])));
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve({ status, type, body }));
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 400);
  assert.match(type, /application\/json/);
  assert.equal(JSON.parse(body).error.code, 'websocket_required');
});

s.test('bad user_id or since in the query is 400 (before any upgrade)', async () => {
  const cases = [
    ['user_id=has%20space', 'invalid_user_id'],
    ['user_id=', 'invalid_user_id'],
    [`user_id=${'a'.repeat(65)}`, 'invalid_user_id'],
    ['user_id=alice&since=abc', 'invalid_cursor'],
    ['user_id=alice&since=-1', 'invalid_cursor'],
    ['user_id=alice&since=99999999999999999999999', 'invalid_cursor'],
    ['since=5', 'invalid_user_id'],
  ];
  for (const [query, code] of cases) {
    // a WebSocket handshake
    const c = new NativeClient(`${s.sys.wsBase}/v1/ws?${query}`);
    const err = await c.opened.then(
      () => null,
      (e) => e,
    );
    c.close();
    assert.ok(err && err.status === 400, `handshake with ${query}: ${err}`);
    assert.equal(JSON.parse(err.body).error.code, code, `handshake with ${query}`);
    // and a plain GET
    const r = await s.sys.get(`/v1/ws?${query}`);
    assert.equal(r.status, 400, query);
    assert.equal(r.body.error.code, code, query);
  }
});
