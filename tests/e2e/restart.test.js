// A restarted gateway loses no notification for clients that resume: native WebSocket clients (and a socket.io-client)
// follow a user while notifications are published; the gateway is stopped (SIGTERM, then in a second round SIGKILL)
// and started again on the same port; the clients reconnect with since=<the last id they got> and, in the end, each has
// every notification that was acknowledged with a 201, exactly once and in order. Publishes while the gateway is down
// fail on the publisher's side: only the 201s are owed (a publish whose answer was lost in the kill may have been
// stored all the same, and then arrives too, in its place).
'use strict';

const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { suite, waitUntil, sleep } = require('./harness');

const s = suite();
let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

// A native client that reconnects by itself, with since=<last id>, whenever its connection ends.
class ResumingClient {
  constructor(user) {
    this.user = user;
    this.ids = []; // every notification id received, across connections, in arrival order
    this.connections = 0;
    this.closes = [];
    this.stopped = false;
    this._connect();
  }

  _connect() {
    if (this.stopped) return;
    const last = this.ids.length ? this.ids[this.ids.length - 1] : null;
    const query = `user_id=${this.user}` + (last !== null ? `&since=${last}` : '');
    const ws = new WebSocket(`${s.sys.wsBase}/v1/ws?${query}`, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'hello') ++this.connections;
      if (f.type === 'notification') this.ids.push(f.data.id);
    });
    ws.on('error', () => {}); // refused while the gateway is down: the close below retries
    ws.on('close', (code) => {
      this.closes.push(code);
      if (!this.stopped) setTimeout(() => this._connect(), 250); // the gateway may be back and publishing by then
    });
  }

  stop() {
    this.stopped = true;
    this.ws.terminate();
  }
}

// Publishes for user one after another until stopped; keeps the ids that got a 201.
function publisher(user) {
  const p = { acked: [], failed: 0, stopped: false };
  p.done = (async () => {
    for (let i = 0; !p.stopped; ++i) {
      try {
        const r = await fetch(`${s.sys.url}/v1/notifications`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user_id: user, message: `restart ${i}` }),
          signal: AbortSignal.timeout(3000),
        });
        const body = await r.json();
        if (r.status === 201) p.acked.push(body.id);
        else ++p.failed;
      } catch {
        ++p.failed; // the gateway is down, or went down with the request
        await sleep(20);
      }
      await sleep(5);
    }
  })();
  return p;
}

function assertGotAll(name, got, acked) {
  for (let i = 1; i < got.length; ++i)
    assert.ok(got[i] > got[i - 1], `${name}: id ${got[i]} after ${got[i - 1]} (a duplicate or out of order): ${got}`);
  const have = new Set(got);
  const missing = acked.filter((id) => !have.has(id));
  assert.deepEqual(
    missing,
    [],
    `${name} missed acknowledged notifications (got ${got.length}, ${acked.length} acknowledged)`,
  );
}

async function restartRound(signal) {
  const u = unique(`restart-${signal.toLowerCase()}`);
  const natives = [0, 1, 2].map(() => new ResumingClient(u));
  s.track(() => natives.forEach((c) => c.stop()));
  const sioIds = [];
  let sioConnects = 0;
  const sock = io(s.sys.url, {
    transports: ['websocket'],
    forceNew: true,
    reconnectionDelay: 250,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    // asked again at every (re)connection: resume after the last id received
    auth: (cb) => cb(sioIds.length ? { user_id: u, since: sioIds[sioIds.length - 1] } : { user_id: u }),
  });
  s.track(() => sock.close());
  sock.on('connect', () => ++sioConnects);
  sock.on('notification', (n) => sioIds.push(n.id));
  await waitUntil(() => natives.every((c) => c.connections === 1) && sioConnects === 1, 5000, 'the clients to connect');

  const pub = publisher(u);
  await waitUntil(() => pub.acked.length >= 20, 5000, 'publishes before the restart');
  const exit = await s.sys.restartGateway({ signal });
  if (signal === 'SIGKILL') assert.equal(exit.signal, 'SIGKILL');
  const atRestart = pub.acked.length;
  await waitUntil(() => pub.acked.length >= atRestart + 20, 8000, 'publishes after the restart');
  pub.stopped = true;
  await pub.done;

  const last = pub.acked[pub.acked.length - 1];
  await waitUntil(
    () => natives.every((c) => c.ids.includes(last)) && sioIds.includes(last),
    10000,
    () =>
      `every client to get the last acknowledged id ${last}: native ${natives.map((c) => c.ids.length)}, ` +
      `socket.io ${sioIds.length} of ${pub.acked.length}`,
  );
  natives.forEach((c, i) => {
    assert.ok(c.connections >= 2, `native client ${i} did not reconnect (closes: ${c.closes})`);
    if (signal === 'SIGTERM')
      assert.equal(c.closes[0], 1001, `native client ${i}: a stopping gateway closes with 1001`);
    assertGotAll(`native client ${i}`, c.ids, pub.acked);
  });
  assert.ok(sioConnects >= 2, 'the socket.io client did not reconnect');
  assertGotAll('the socket.io client', sioIds, pub.acked);
  return { acked: pub.acked.length, failed: pub.failed, got: natives[0].ids.length };
}

s.test(
  'clients resuming with since miss nothing across a gateway stopped with SIGTERM and started again',
  { timeout: 40000 },
  async (t) => {
    const r = await restartRound('SIGTERM');
    t.diagnostic(`${r.acked} acknowledged, ${r.failed} failed while the gateway was away; a client got ${r.got}`);
  },
);

s.test('... and across a gateway killed with SIGKILL', { timeout: 40000 }, async (t) => {
  const r = await restartRound('SIGKILL');
  t.diagnostic(`${r.acked} acknowledged, ${r.failed} failed while the gateway was away; a client got ${r.got}`);
});
