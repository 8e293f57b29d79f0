// Authentication on the real-time side, with the gateway's auth on (a JWT secret) and tokens made by node's crypto:
// socket.io-client with a wrong, expired or another user's auth.token gets connect_error and never a notification of
// the user; the right token gets them; the native protocol refuses the upgrade (401/403) before any frame.
'use strict';

const assert = require('node:assert/strict');
const { suite, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

const s = suite({ auth: true, gatewayArgs: ['--ws-ping-interval-ms', '1000'] }); // expiry is checked at each heartbeat
const uid = (p) => `${p}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

// Connects with opts and resolves with the connect_error (rejects if the socket connects instead).
function connectError(socket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no connect_error')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(t);
      reject(new Error('connected with a bad token'));
    });
    socket.once('connect_error', (err) => {
      clearTimeout(t);
      resolve(err);
    });
  });
}

s.test("socket.io-client: a bad auth.token is a connect_error, and nothing of the user ever arrives", async () => {
  const sys = s.sys;
  const alice = uid('alice');
  const cases = [
    ['another user', sys.token(uid('mallory')), 'forbidden', { user_id: alice }],
    ['wrong secret', sys.token(alice, { secret: 'x'.repeat(40) }), 'invalid_token', { user_id: alice }],
    ['expired', sys.token(alice, { ttl: -5 }), 'token_expired', { user_id: alice }],
    ['not yet valid', sys.token(alice, { nbf: Math.floor(Date.now() / 1000) + 3600 }), 'token_not_yet_valid', { user_id: alice }],
    ['alg none', sys.token(alice, { alg: 'none' }), 'invalid_token', { user_id: alice }],
    ['garbage', 'not.a.token', 'invalid_token', { user_id: alice }],
    ['no token', undefined, 'unauthorized', { user_id: alice }],
  ];
  const recorders = [];
  for (const [what, token, code, auth] of cases) {
    const socket = s.track(sioConnect(sys.url, { auth: token ? { ...auth, token } : auth }));
    const rec = new SioRecorder(socket);
    recorders.push([what, rec]);
    const err = await connectError(socket);
    assert.equal(err.data?.code, code, `${what}: ${err.message} ${JSON.stringify(err.data)}`);
    assert.ok(err.message.length > 0);
    s.track(() => socket.close());
  }
  // the right token connects and gets alice's notification; none of the refused ones does
  const good = s.track(sioConnect(sys.url, { auth: { user_id: alice, token: sys.token(alice) } }));
  const goodRec = new SioRecorder(good);
  await sioConnected(good);
  s.track(() => good.close());
  const n = await sys.publish(alice, 'for alice only');
  const got = await goodRec.waitFor('notification', (x) => x.id === n.id, 5000);
  assert.equal(got.message, 'for alice only');
  await sleep(300);
  for (const [what, rec] of recorders) assert.deepEqual(rec.of('notification'), [], `${what}: got a notification`);
});

s.test('socket.io: a token given with the upgrade (query) works, and a bad one is refused before the upgrade', async () => {
  const sys = s.sys;
  const bob = uid('bob');
  const socket = s.track(sioConnect(sys.url, { query: { user_id: bob, token: sys.token(bob) } }));
  const rec = new SioRecorder(socket);
  await sioConnected(socket);
  s.track(() => socket.close());
  const n = await sys.publish(bob, 'hello bob');
  await rec.waitFor('notification', (x) => x.id === n.id, 5000);

  // a bad token in the upgrade's query: 403 before any Engine.IO frame (the ws client shows the HTTP answer)
  const refused = new NativeClient(`${sys.wsBase}/socket.io/?EIO=4&transport=websocket&user_id=${bob}&token=${sys.token('eve')}`);
  s.track(() => refused.close());
  await assert.rejects(refused.opened, (err) => err.status === 403 && /"forbidden"/.test(err.body));
  const expired = new NativeClient(`${sys.wsBase}/socket.io/?EIO=4&transport=websocket&token=${sys.token(bob, { ttl: -1 })}`);
  s.track(() => expired.close());
  await assert.rejects(expired.opened, (err) => err.status === 401 && /"token_expired"/.test(err.body));
});

s.test('native WebSocket: 401 without a token, 403 with another user\'s, the right one gets the user\'s notifications', async () => {
  const sys = s.sys;
  const carol = uid('carol');
  const none = s.track(new NativeClient(`${sys.wsBase}/v1/ws?user_id=${carol}`));
  s.track(() => none.close());
  await assert.rejects(none.opened, (err) => err.status === 401 && /"unauthorized"/.test(err.body));
  const other = new NativeClient(`${sys.wsBase}/v1/ws?user_id=${carol}&token=${sys.token(uid('dan'))}`);
  s.track(() => other.close());
  await assert.rejects(other.opened, (err) => err.status === 403 && /"forbidden"/.test(err.body));
  const viaHeader = new NativeClient(`${sys.wsBase}/v1/ws?user_id=${carol}`, {
    headers: { authorization: `Bearer ${sys.token(carol)}` },
  });
  s.track(() => viaHeader.close());
  const hello = await viaHeader.ready();
  assert.equal(hello.data.user_id, carol);
  const n = await sys.publish(carol, 'for carol');
  await viaHeader.waitFor((f) => f.type === 'notification' && f.data.id === n.id, { timeoutMs: 5000 });
  assert.equal(other.frames.length + none.frames.length, 0);
});

s.test('a session is closed when its token expires', { timeout: 30000 }, async () => {
  const sys = s.sys;
  const erin = uid('erin');
  const c = new NativeClient(`${sys.wsBase}/v1/ws?user_id=${erin}&token=${sys.token(erin, { ttl: 2 })}`);
  s.track(() => c.close());
  await c.ready();
  const closed = await c.closed;
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, 'token expired');
  assert.ok(c.frames.some((f) => f.type === 'error' && f.data.code === 'token_expired'));
});
