// Socket.IO (v5 over Engine.IO v4, WebSocket transport) with the real socket.io-client 4.x from npm: the seed chat's
// flow as its clients use it, acknowledgements, notifications for the user given in auth or in the query, resume with
// auth.since, namespaces, the polling transport, disconnects and the heartbeat.
'use strict';

const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

const PING_INTERVAL_MS = 250;
const PING_TIMEOUT_MS = 250;

const s = suite({
  gatewayArgs: ['--ws-ping-interval-ms', String(PING_INTERVAL_MS), '--ws-ping-timeout-ms', String(PING_TIMEOUT_MS)],
});

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

function connect(opts) {
  const socket = sioConnect(s.sys.url, opts);
  s.track(() => socket.disconnect());
  return { socket, rec: new SioRecorder(socket) };
}

async function waitOnline(rec, names, what) {
  const want = JSON.stringify([...names].sort());
  await waitUntil(
    () => {
      const o = rec.of('online_users');
      return o.length !== 0 && JSON.stringify([...o.at(-1)].sort()) === want;
    },
    3000,
    () => `${what}: online_users ${want}; events: ${JSON.stringify(rec.events.slice(-8))}`,
  );
}

s.test(
  'the seed chat: join, user_joined, online_users, send_message -> new_message to all, disconnect -> user_left',
  async () => {
    // exactly what the seed's clients do: emit('join', username), emit('send_message', {message}), four listeners
    const names = ['alice', 'bob', 'carol'];
    const clients = names.map(() => connect());
    for (const c of clients) {
      for (const ev of ['user_joined', 'online_users', 'new_message', 'user_left']) c.socket.on(ev, () => {});
      await sioConnected(c.socket);
    }
    const [a, b, c] = clients;

    a.socket.emit('join', 'alice');
    await waitOnline(a.rec, ['alice'], 'alice alone');
    b.socket.emit('join', 'bob');
    assert.equal(await a.rec.waitFor('user_joined', (n) => n === 'bob'), 'bob');
    c.socket.emit('join', 'carol');
    await a.rec.waitFor('user_joined', (n) => n === 'carol');
    await b.rec.waitFor('user_joined', (n) => n === 'carol');
    for (const x of clients) await waitOnline(x.rec, names, 'three online');
    assert.deepEqual(b.rec.of('user_joined'), ['carol'], 'bob hears of carol only (not of himself)');
    assert.deepEqual(c.rec.of('user_joined'), [], 'carol hears of no one');

    const before = Date.now();
    b.socket.emit('send_message', { message: 'hi all' });
    for (const x of clients) {
      const m = await x.rec.waitFor('new_message', (m) => m.message === 'hi all');
      assert.equal(m.sender, 'bob');
      assert.equal(m.message, 'hi all');
      assert.match(m.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(Math.abs(Date.parse(m.timestamp) - before) < 5000);
    }

    // carol goes away: the others hear user_left and the new presence
    c.socket.disconnect();
    for (const x of [a, b]) {
      assert.equal(await x.rec.waitFor('user_left', (n) => n === 'carol'), 'carol');
      await waitOnline(x.rec, ['alice', 'bob'], 'after carol left');
    }
    a.socket.emit('send_message', { message: 'still here' });
    await b.rec.waitFor('new_message', (m) => m.message === 'still here' && m.sender === 'alice');
  },
);

s.test('acknowledgements: an event sent with a callback gets {ok:true,...} or {ok:false,error}', async () => {
  const { socket } = connect();
  await sioConnected(socket);
  const room = unique('acks');

  const joined = await socket.timeout(3000).emitWithAck('join', { username: 'dave', room });
  assert.deepEqual(joined, { ok: true, room, username: 'dave', online_users: ['dave'] });
  assert.deepEqual(await socket.timeout(3000).emitWithAck('send_message', { message: 'acked' }), { ok: true });
  assert.deepEqual(await socket.timeout(3000).emitWithAck('send_message', 'a plain string'), { ok: true });

  const bad = [
    [['send_message', { message: '' }], 'invalid_message'],
    [['send_message', { text: 'wrong field' }], 'invalid_message'],
    [['join', 42], 'invalid_username'],
    [['join', { username: 'x', room: 'bad room' }], 'invalid_room'],
    [['shout', 'x'], 'unknown_event'],
  ];
  for (const [args, code] of bad) {
    const r = await socket.timeout(3000).emitWithAck(...args);
    assert.equal(r.ok, false, JSON.stringify(args));
    assert.equal(r.error.code, code, JSON.stringify(args));
    assert.equal(typeof r.error.message, 'string');
  }
  // without a callback an error comes as an "error" event, and the socket stays connected
  const rec = new SioRecorder(socket);
  socket.emit('send_message', { message: '' });
  const e = await rec.waitFor('error');
  assert.equal(e.code, 'invalid_message');
  assert.ok(socket.connected);

  const left = await socket.timeout(3000).emitWithAck('leave');
  assert.deepEqual(left, { ok: true });
  const r = await socket.timeout(3000).emitWithAck('send_message', { message: 'after leaving' });
  assert.equal(r.error.code, 'not_joined');
});

for (const where of ['auth', 'query']) {
  s.test(`notifications for the user given in ${where} {user_id}`, async () => {
    const u = unique(`sio-${where}`),
      other = unique('other');
    const opts = where === 'auth' ? { auth: { user_id: u } } : { query: { user_id: u } };
    const c1 = connect(opts),
      c2 = connect(opts),
      o = connect(where === 'auth' ? { auth: { user_id: other } } : { query: { user_id: other } });
    await Promise.all([c1, c2, o].map((c) => sioConnected(c.socket)));
    await sleep(50);
    const ids = [];
    for (let i = 0; i < 3; ++i) {
      const p = await s.sys.publish(u, `for ${u} ${i}`, 'alert');
      ids.push(p.id);
      for (const c of [c1, c2]) {
        const n = await c.rec.waitFor('notification', (n) => n.id === p.id);
        assert.deepEqual(n, { id: p.id, user_id: u, message: `for ${u} ${i}`, kind: 'alert', ts: p.ts, read: false });
      }
    }
    await sleep(100);
    for (const c of [c1, c2])
      assert.deepEqual(
        c.rec.of('notification').map((n) => n.id),
        ids,
      );
    assert.deepEqual(o.rec.of('notification'), [], 'another user gets none');
  });
}

s.test('resume with auth {user_id, since}: the missed notifications in order, then live ones', async () => {
  const u = unique('sio-resume');
  const first = connect({ auth: { user_id: u } });
  await sioConnected(first.socket);
  await sleep(50);
  const p0 = await s.sys.publish(u, 'seen');
  await first.rec.waitFor('notification', (n) => n.id === p0.id);
  first.socket.disconnect();

  const missed = [];
  for (let i = 0; i < 12; ++i) missed.push((await s.sys.publish(u, `missed ${i}`)).id);
  const back = connect({ auth: { user_id: u, since: p0.id } });
  await sioConnected(back.socket);
  const live = (await s.sys.publish(u, 'live')).id;
  const want = [...missed, live];
  await waitUntil(
    () => back.rec.of('notification').length >= want.length,
    5000,
    () => `${want.length} notifications; got ${JSON.stringify(back.rec.of('notification').map((n) => n.id))}`,
  );
  await sleep(100);
  assert.deepEqual(
    back.rec.of('notification').map((n) => n.id),
    want,
  );

  // the same through the query, for clients that cannot set auth
  const q = connect({ query: { user_id: u, since: String(missed[5]) } });
  await sioConnected(q.socket);
  const wantQ = want.filter((id) => id > missed[5]);
  await waitUntil(() => q.rec.of('notification').length >= wantQ.length, 5000, 'the resume through the query');
  assert.deepEqual(
    q.rec.of('notification').map((n) => n.id),
    wantQ,
  );

  // a bad since or user_id in auth is a connect_error
  for (const auth of [
    { user_id: u, since: 'yesterday' },
    { user_id: u, since: -3 },
    { user_id: 'no spaces allowed' },
  ]) {
    const bad = connect({ auth });
    const err = await sioConnected(bad.socket).then(
      () => null,
      (e) => e,
    );
    assert.ok(err, `connect with auth ${JSON.stringify(auth)} must fail`);
    assert.match(err.message, /since|user_id/);
  }
});

s.test('an unknown namespace is a connect_error', async () => {
  const { socket } = connect({ nsp: '/admin' });
  const err = await sioConnected(socket).then(
    () => null,
    (e) => e,
  );
  assert.ok(err, 'connecting to /admin must fail');
  assert.equal(err.message, 'Invalid namespace');
  assert.equal(socket.connected, false);
});

s.test('the polling transport and other Engine.IO versions are 400 JSON', async () => {
  let r = await s.sys.get('/socket.io/?EIO=4&transport=polling');
  assert.equal(r.status, 400);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.equal(r.body.error.code, 'transport_unknown');
  r = await s.sys.get('/socket.io/?EIO=4&transport=polling&t=abc', { method: 'GET' });
  assert.equal(r.status, 400);
  r = await s.sys.get('/socket.io/?EIO=3&transport=websocket');
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'unsupported_protocol_version');
  r = await s.sys.get('/socket.io/?EIO=4&transport=websocket'); // no upgrade
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'websocket_required');
  // a client left on its default transports (polling first) cannot connect
  const { socket } = connect({ transports: ['polling'] });
  assert.ok(
    await sioConnected(socket).then(
      () => null,
      (e) => e,
    ),
    'polling must not connect',
  );
});

s.test('native and Socket.IO clients share rooms', async () => {
  const room = unique('mixed');
  const sio = connect();
  await sioConnected(sio.socket);
  const nat = new NativeClient(`${s.sys.wsBase}/v1/ws`);
  s.track(() => nat.close());
  await nat.ready();
  nat.send({ type: 'join', username: 'native-nina', room });
  await nat.waitFor((f) => f.type === 'joined');
  const ack = await sio.socket.timeout(3000).emitWithAck('join', { username: 'sio-sam', room });
  assert.deepEqual([...ack.online_users].sort(), ['native-nina', 'sio-sam']);
  await nat.waitFor((f) => f.type === 'user_joined' && f.data === 'sio-sam');
  sio.socket.emit('send_message', { message: 'from sio' });
  await nat.waitFor((f) => f.type === 'new_message' && f.data.message === 'from sio' && f.data.sender === 'sio-sam');
  nat.send({ type: 'send_message', message: 'from native' });
  const m = await sio.rec.waitFor('new_message', (m) => m.message === 'from native');
  assert.equal(m.sender, 'native-nina');
  await nat.close();
  assert.equal(await sio.rec.waitFor('user_left'), 'native-nina');
});

s.test('the server pings keep a socket.io-client connected well past pingInterval + pingTimeout', async () => {
  const { socket } = connect();
  await sioConnected(socket);
  const id = socket.id;
  let pings = 0,
    disconnects = 0;
  socket.io.engine.on('ping', () => ++pings);
  socket.on('disconnect', () => ++disconnects);
  const window = PING_INTERVAL_MS + PING_TIMEOUT_MS;
  await sleep(4 * window);
  assert.ok(socket.connected, 'still connected');
  assert.equal(disconnects, 0);
  assert.equal(socket.id, id, 'the same socket (no reconnect)');
  assert.ok(pings >= 3, `${pings} pings in ${4 * window} ms (interval ${PING_INTERVAL_MS} ms)`);
  assert.deepEqual(await socket.timeout(2000).emitWithAck('join', 'pinged'), {
    ok: true,
    room: 'lobby',
    username: 'pinged',
    online_users: ['pinged'],
  });
});

s.test(
  'Engine.IO by hand: open packet, CONNECT, and a client that does not answer pings is closed (1008)',
  async () => {
    const ws = new WebSocket(`${s.sys.wsBase}/socket.io/?EIO=4&transport=websocket`);
    s.track(() => ws.terminate());
    const packets = [];
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve({ code, at: performance.now() })));
    ws.on('message', (d) => packets.push(d.toString()));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    const opened = performance.now();
    await waitUntil(() => packets.length >= 1, 2000, 'the open packet');
    assert.equal(packets[0][0], '0');
    const open = JSON.parse(packets[0].slice(1));
    assert.deepEqual(open.upgrades, []);
    assert.equal(open.pingInterval, PING_INTERVAL_MS);
    assert.equal(open.pingTimeout, PING_TIMEOUT_MS);
    assert.equal(typeof open.maxPayload, 'number');
    assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
    ws.send('40');
    await waitUntil(() => packets.some((p) => p.startsWith('40{')), 2000, 'CONNECT answer');
    const nsSid = JSON.parse(packets.find((p) => p.startsWith('40{')).slice(2)).sid;
    assert.notEqual(nsSid, open.sid);
    // never answer "2" with "3"
    const { code, at } = await closed;
    assert.equal(code, 1008);
    assert.ok(packets.includes('2'), 'the server pinged');
    const after = at - opened;
    assert.ok(
      after >= PING_INTERVAL_MS + PING_TIMEOUT_MS - 50 && after < 3 * PING_INTERVAL_MS + PING_TIMEOUT_MS + 500,
      `closed after ${after.toFixed(0)} ms`,
    );
  },
);
