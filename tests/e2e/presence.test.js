// Chat presence in big rooms (--presence-full-max, here 5 so that a "big" room is cheap to make): a room of at most 5
// members behaves as the seed chat (user_joined, user_left, online_users with every name, nothing more), a bigger one
// announces no join or leave one by one and its lists of names hold the first 5 members in join order plus the count:
// online_users {"data":[5 names],"count":N} (native) or 42["online_users",[5 names],N] (Socket.IO), joined answers
// with online_count. native.test.js and socketio.test.js test the small rooms at the default threshold.
'use strict';

const assert = require('node:assert/strict');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

const FULL_MAX = 5;
// a small queue bound and no message rate limit: the last test fills a member's queue with chat messages
const QUEUE_MAX = 256 * 1024;
const s = suite({
  gatewayArgs: ['--presence-full-max', String(FULL_MAX), '--ws-queue-max', String(QUEUE_MAX), '--ws-message-rate', '0'],
});

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;
const PRESENCE = new Set(['user_joined', 'user_left', 'online_users']);

function client() {
  const c = new NativeClient(`${s.sys.wsBase}/v1/ws`);
  s.track(() => c.close());
  return c;
}

async function join(c, username, room) {
  const from = c.frames.length;
  c.send({ type: 'join', username, room });
  const f = await c.waitFor((f) => f.type === 'joined' || f.type === 'error', { from, what: `joined (${username})` });
  assert.equal(f.type, 'joined', `join as ${username}: ${JSON.stringify(f)}`);
  return f.data;
}

// Waits until the client's last online_users frame satisfies pred; returns that frame.
async function waitPresence(c, pred, what) {
  await waitUntil(
    () => {
      const o = c.ofType('online_users');
      return o.length !== 0 && pred(o.at(-1));
    },
    5000,
    () => `${what}; frames: ${c.describe()}`,
  );
  return c.ofType('online_users').at(-1);
}

s.test('a room of up to --presence-full-max members: every join and leave announced, full lists, no count', async () => {
  const room = unique('small');
  const names = Array.from({ length: FULL_MAX }, (_, i) => `s${i}`);
  const cs = names.map(() => client());
  await Promise.all(cs.map((c) => c.ready()));
  for (const [i, c] of cs.entries()) {
    const j = await join(c, names[i], room);
    assert.deepEqual(Object.keys(j).sort(), ['online_users', 'room', 'username'], 'no online_count in a small room');
    assert.deepEqual(j.online_users, names.slice(0, i + 1));
  }
  // the first hears of every other, by name, once
  await cs[0].waitCount((f) => f.type === 'user_joined', FULL_MAX - 1, { what: 'user_joined of the others' });
  assert.deepEqual(
    cs[0].ofType('user_joined').map((f) => f.data),
    names.slice(1),
  );
  const last = await waitPresence(cs[0], (f) => f.data.length === FULL_MAX, 'every name');
  assert.deepEqual(Object.keys(last).sort(), ['data', 'type'], 'online_users is as before: no count');
  assert.deepEqual([...last.data].sort(), [...names].sort());

  const from = cs[0].frames.length;
  cs[FULL_MAX - 1].close();
  await cs[0].waitFor((f) => f.type === 'user_left' && f.data === names[FULL_MAX - 1], { from, what: 'user_left' });
  await waitPresence(cs[0], (f) => f.data.length === FULL_MAX - 1 && f.count === undefined, 'one fewer, no count');
});

s.test('a big room: no join or leave storm; online_users and joined hold the first names and the count', async () => {
  const room = unique('big');
  const n = 60;
  const ordered = FULL_MAX + 3; // joined one by one, so that the list's order is known; the others as a crowd
  const names = Array.from({ length: n }, (_, i) => `b${String(i).padStart(2, '0')}`);
  const cs = names.map(() => client());
  await Promise.all(cs.map((c) => c.ready()));

  const answers = [];
  for (let i = 0; i < ordered; ++i) answers.push(await join(cs[i], names[i], room));
  answers.push(...(await Promise.all(cs.slice(ordered).map((c, i) => join(c, names[ordered + i], room)))));
  for (const [i, j] of answers.entries()) {
    const members = i + 1;
    if (members <= FULL_MAX) {
      assert.deepEqual(j.online_users, names.slice(0, members), `joined of ${names[i]}`);
      assert.equal(j.online_count, undefined, `joined of ${names[i]}: no count while the room is small`);
    } else {
      assert.deepEqual(j.online_users, names.slice(0, FULL_MAX), `joined of ${names[i]}: the first ${FULL_MAX}`);
      if (i < ordered) assert.equal(j.online_count, members, `joined of ${names[i]}: the count`);
      else assert.ok(j.online_count > ordered && j.online_count <= n, `joined of ${names[i]}: ${j.online_count}`);
    }
  }

  // everyone converges on the first FULL_MAX names and the count
  for (const c of cs) {
    const f = await waitPresence(c, (f) => f.count === n, `count ${n}`);
    assert.deepEqual(f.data, names.slice(0, FULL_MAX));
  }
  await sleep(200); // any late update

  // the first member heard of the joins only while the room was small, and got few presence frames for n joins
  const first = cs[0];
  assert.deepEqual(
    first.ofType('user_joined').map((f) => f.data),
    names.slice(1, FULL_MAX),
    'user_joined only up to --presence-full-max members',
  );
  const presence = first.frames.filter((f) => PRESENCE.has(f.type)).length;
  assert.ok(presence < n / 4, `the first member got ${presence} presence frames for ${n} joins (want < ${n / 4})`);
  for (const [i, c] of cs.entries()) {
    assert.ok(
      c.frames.filter((f) => PRESENCE.has(f.type)).length < n / 4,
      `member ${i}: ${c.frames.filter((f) => PRESENCE.has(f.type)).length} presence frames`,
    );
    for (const f of c.ofType('online_users'))
      assert.ok(f.data.length <= FULL_MAX, `online_users capped at ${FULL_MAX}: ${JSON.stringify(f)}`);
  }

  // leaves are not announced while the room is big: the count follows; the list moves up in join order
  const marks = cs.map((c) => c.frames.length);
  for (let i = 0; i < 3; ++i) cs[i].send({ type: 'leave' });
  const f = await waitPresence(cs[n - 1], (f) => f.count === n - 3, `count ${n - 3}`);
  assert.deepEqual(f.data, names.slice(3, 3 + FULL_MAX));
  // a message still reaches the whole room (the ones that left excepted)
  cs[n - 1].send({ type: 'send_message', message: 'to the crowd' });
  for (const c of cs.slice(3)) await c.waitFor((f) => f.type === 'new_message' && f.data.message === 'to the crowd');
  for (const [i, c] of cs.entries())
    assert.deepEqual(c.ofType('user_left', marks[i]), [], `member ${i}: no user_left in a big room`);

  // back to FULL_MAX members: the seed's behaviour again (the leave that makes it FULL_MAX is still a big room's)
  for (let i = 3; i < n - FULL_MAX; ++i) cs[i].close();
  const rest = cs.slice(n - FULL_MAX);
  for (const c of rest) {
    const p = await waitPresence(c, (f) => f.data.length === FULL_MAX && f.count === undefined, 'small again');
    assert.deepEqual([...p.data].sort(), names.slice(n - FULL_MAX));
  }
  const from = rest[0].frames.length;
  rest[1].send({ type: 'leave' });
  await rest[0].waitFor((f) => f.type === 'user_left' && f.data === names[n - FULL_MAX + 1], { from, what: 'user_left' });
  const mark = rest[0].frames.length;
  const late = client();
  await late.ready();
  const j = await join(late, 'late', room);
  assert.equal(j.online_users.at(-1), 'late');
  assert.deepEqual([...j.online_users].sort(), [...names.slice(n - FULL_MAX).filter((_, i) => i !== 1), 'late'].sort());
  await rest[0].waitFor((f) => f.type === 'user_joined' && f.data === 'late', { from: mark, what: 'user_joined' });
});

s.test('Socket.IO in a big room: online_users(names, count), the ack with online_count, no user_joined', async () => {
  const room = unique('sio-big');
  const n = 12;
  const socks = [];
  for (let i = 0; i < n; ++i) {
    const socket = sioConnect(s.sys.url);
    s.track(() => socket.disconnect());
    socks.push({ socket, rec: new SioRecorder(socket) });
  }
  await Promise.all(socks.map((x) => sioConnected(x.socket)));
  const names = socks.map((_, i) => `io${i}`);
  const acks = [];
  for (const [i, x] of socks.entries())
    acks.push(await x.socket.timeout(3000).emitWithAck('join', { username: names[i], room }));
  assert.deepEqual(acks[0], { ok: true, room, username: names[0], online_users: [names[0]] });
  assert.deepEqual(acks[n - 1], {
    ok: true,
    room,
    username: names[n - 1],
    online_users: names.slice(0, FULL_MAX),
    online_count: n,
  });
  // the seed's listener (names) => {} gets the capped array; the count is its second argument
  const first = socks[0].rec;
  await waitUntil(
    () => first.events.some((e) => e[0] === 'online_users' && e[2] === n),
    5000,
    () => `online_users with count ${n}: ${JSON.stringify(first.events.slice(-5))}`,
  );
  const e = first.events.filter((e) => e[0] === 'online_users').at(-1);
  assert.deepEqual(e, ['online_users', names.slice(0, FULL_MAX), n]);
  assert.deepEqual(first.of('user_joined'), names.slice(1, FULL_MAX));
});

s.test('members that stop reading are cut off at their queue bound; the rest of the room gets every message', async () => {
  // every session's queue holds references to the room's shared frames: the bound still counts their bytes
  const room = unique('slow');
  const SLOW = 3;
  const slow = Array.from({ length: SLOW }, () => client());
  const reader = client(),
    sender = client();
  const sids = (await Promise.all(slow.map((c) => c.ready()))).map((h) => h.data.sid);
  await Promise.all([reader.ready(), sender.ready()]);
  for (const [i, c] of [...slow, reader, sender].entries()) await join(c, `m${i}`, room);
  for (const c of slow) c.ws.pause(); // the kernel's buffers fill, then the gateway's queue

  const cut = () => {
    const lines = s.sys
      .gatewayLog()
      .split('\n')
      .filter((l) => l.includes('send queue full'));
    return sids.filter((sid) => lines.some((l) => l.includes(`sid=${sid} `))).length;
  };
  const big = 'y'.repeat(3900);
  let sent = 0;
  const got = () => reader.ofType('new_message').length;
  // until every member that stopped reading is cut off (16 MB each at most: far beyond the kernel's buffers)
  while (cut() < SLOW && sent < 4000) {
    // 16 x 4 KB at a time, well under the bound: a member that reads is never cut off
    for (let i = 0; i < 16; ++i) sender.send({ type: 'send_message', message: `${sent++} ${big}` });
    await waitUntil(() => got() >= sent || reader.closeInfo, 10000, () => `reader: ${got()} of ${sent}`);
    assert.equal(reader.closeInfo, null, 'the member that reads stays');
  }
  assert.equal(cut(), SLOW, `every member that stopped reading is cut off (${cut()} of ${SLOW}, after ${sent})`);
  await sender.waitCount((f) => f.type === 'new_message', sent, { timeoutMs: 10000, what: 'the sender has them all' });
  const seqs = reader.ofType('new_message').map((f) => Number(f.data.message.split(' ')[0]));
  assert.deepEqual(seqs, Array.from({ length: sent }, (_, i) => i), 'every message once, in order');
  for (const c of slow) c.ws.resume();
  const r = await fetch(`${s.sys.url}/healthz`);
  assert.equal(r.status, 200);
});
