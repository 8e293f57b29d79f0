// Sessions under faults: clients that stop reading (the bounded send queue), a resume bigger than that bound,
// history-svc gone during a resume (close 1013), and the gateway stopping (close 1001). The tests run in this order:
// the last two take the system down.
'use strict';

const assert = require('node:assert/strict');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

// well above one feed batch of this test (16 x 4 KB): a client that reads must never reach it
const QUEUE_MAX = 256 * 1024;
const s = suite({ gatewayArgs: ['--ws-queue-max', String(QUEUE_MAX)] });

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

function client(query = '') {
  const c = new NativeClient(`${s.sys.wsBase}/v1/ws${query ? '?' + query : ''}`);
  s.track(() => c.close());
  return c;
}

async function healthzMs() {
  const t0 = performance.now();
  const r = await fetch(`${s.sys.url}/healthz`);
  await r.text();
  assert.equal(r.status, 200);
  return performance.now() - t0;
}

s.test(
  'slow readers are cut off at the queue bound; the gateway stays healthy and other sessions keep receiving',
  { timeout: 60000 },
  async (t) => {
    const u = unique('slow'),
      w = unique('well');
    const SLOW = 12;
    const slow = Array.from({ length: SLOW }, () => client(`user_id=${u}`));
    const sameUser = client(`user_id=${u}`); // reads: gets every one of u's notifications
    const other = client(`user_id=${w}`);
    const sids = (await Promise.all(slow.map((c) => c.ready()))).map((h) => h.data.sid);
    await Promise.all([sameUser.ready(), other.ready()]);
    await sleep(50);
    for (const c of slow) c.ws.pause(); // stop reading: the kernel buffers fill, then the gateway's queue

    const rss0 = s.sys.rssKiB();
    const big = 'x'.repeat(4000);
    const pubU = [],
      pubW = [],
      health = [];
    const cutLines = () =>
      s.sys
        .gatewayLog()
        .split('\n')
        .filter((l) => l.includes('send queue full'));
    const cutCount = () => {
      const lines = cutLines();
      return sids.filter((sid) => lines.some((l) => l.includes(`sid=${sid} `))).length;
    };
    // publish until every slow session was cut, then as much again: nothing of it may pile up in the gateway
    let rounds = 0,
      cutAt = 0,
      pubAtCut = 0;
    const deadline = Date.now() + 40000;
    while (Date.now() < deadline) {
      const batch = [];
      for (let i = 0; i < 16; ++i) batch.push(s.sys.publish(u, `${rounds}.${i} ${big}`).then((p) => pubU.push(p.id)));
      batch.push(s.sys.publish(w, `well ${rounds}`).then((p) => pubW.push(p.id)));
      await Promise.all(batch);
      if (rounds % 10 === 0) health.push(await healthzMs());
      ++rounds;
      if (!cutAt && cutCount() === SLOW) ((cutAt = rounds), (pubAtCut = pubU.length));
      if (cutAt && rounds >= 2 * cutAt) break;
      if (!cutAt && pubU.length >= 4000) break; // ~16 MB for each slow session: far beyond the kernel's buffers
    }
    assert.ok(
      cutAt,
      `every slow session is cut off (${cutCount()} of ${SLOW} were, after ${pubU.length} notifications)`,
    );
    const rss1 = s.sys.rssKiB();

    // the gateway logged each cut with how much was queued: at the bound, not beyond
    const lines = cutLines();
    for (const sid of sids) {
      const line = lines.find((l) => l.includes(`sid=${sid} `));
      assert.ok(line, `no cut-off logged for ${sid}`);
      const queued = Number(/queued=(\d+)/.exec(line)[1]);
      assert.ok(queued <= QUEUE_MAX && queued > QUEUE_MAX - 8192, `queued=${queued} at the cut (bound ${QUEUE_MAX})`);
    }

    // memory: had the gateway kept queueing for the slow sessions, it would hold what came for them after the kernel's
    // buffers filled (roughly: what came after the cut); it grew by far less
    const LIMIT_KiB = 16 * 1024;
    const afterCutKiB = ((pubU.length - pubAtCut) * SLOW * big.length) / 1024;
    const grewKiB = rss1 - rss0;
    t.diagnostic(
      `${pubU.length} notifications (cut after ${pubAtCut}); RSS ${rss0} -> ${rss1} KiB; ` +
        `${afterCutKiB.toFixed(0)} KiB for slow readers after the cut`,
    );
    // (AddressSanitizer holds freed memory in its quarantine: under it RSS says nothing about queueing)
    if (!process.env.ASAN_OPTIONS) {
      assert.ok(
        grewKiB < LIMIT_KiB,
        `gateway RSS grew by ${grewKiB} KiB (from ${rss0} KiB) while the slow readers were sent ` +
          `${afterCutKiB.toFixed(0)} KiB more after the cut`,
      );
    }
    assert.ok(
      afterCutKiB > 2 * LIMIT_KiB,
      `the test pushed enough (${afterCutKiB.toFixed(0)} KiB) to show unbounded queueing`,
    );

    // /healthz stayed fast during the flood, and is fast now
    health.push(await healthzMs());
    assert.ok(
      Math.max(...health) < 250,
      `/healthz took up to ${Math.max(...health).toFixed(0)} ms during the flood: ${health.map(Math.round)}`,
    );

    // the reading sessions got everything, in order
    pubU.sort((a, b) => a - b);
    pubW.sort((a, b) => a - b);
    await sameUser.waitCount((f) => f.type === 'notification', pubU.length, {
      timeoutMs: 10000,
      what: "all of u's notifications",
    });
    await other.waitCount((f) => f.type === 'notification', pubW.length, {
      timeoutMs: 5000,
      what: "all of w's notifications",
    });
    assert.deepEqual(sameUser.notificationIds(), pubU);
    assert.deepEqual(other.notificationIds(), pubW);
    assert.equal(sameUser.closeInfo, null);
    assert.equal(other.closeInfo, null);

    // a slow reader that reads again finds its connection cut (no close frame: it could not have been read)
    for (const c of slow) c.ws.resume();
    for (const c of slow) {
      const { code } = await c.closed;
      assert.equal(code, 1006);
      assert.ok(c.notificationIds().length < pubU.length, 'a cut session did not get everything');
    }

    // and new sessions work
    const fresh = client(`user_id=${u}`);
    await fresh.ready();
    await sleep(50);
    const p = await s.sys.publish(u, 'after the flood');
    await fresh.waitFor((f) => f.type === 'notification' && f.data.id === p.id);
  },
);

s.test(
  'a resume of more than the queue bound (120 x 4 KB, bound 256 KiB) is paced: a reading client gets it all',
  async () => {
    const u = unique('bigresume');
    const big = 'y'.repeat(4000);
    const ids = [];
    for (let i = 0; i < 120; i += 15) {
      const batch = await Promise.all(Array.from({ length: 15 }, (_, k) => s.sys.publish(u, `${i + k} ${big}`)));
      ids.push(...batch.map((p) => p.id));
    }
    ids.sort((a, b) => a - b);
    const c = client(`user_id=${u}&since=0`);
    await c.ready();
    await waitUntil(() => c.notificationIds().length >= ids.length || c.closeInfo, 10000, 'the whole history').catch(
      () => {},
    );
    assert.equal(
      c.closeInfo,
      null,
      `the session was closed after ${c.notificationIds().length} of ${ids.length} notifications`,
    );
    assert.deepEqual(c.notificationIds(), ids);
  },
);

s.test('resume while history-svc is gone: error resume_failed, then close 1013', async () => {
  const u = unique('nohistory');
  const p = await s.sys.publish(u, 'one');
  const live = client(`user_id=${u}`);
  await live.ready();
  await s.sys.child('history-svc').stop();
  await waitUntil(async () => (await s.sys.get('/readyz')).status === 503, 5000, '/readyz to see history-svc gone');

  const c = client(`user_id=${u}&since=${p.id - 1}`);
  await c.opened;
  const { code, reason } = await c.closed;
  assert.equal(code, 1013, `close code (reason ${reason})`);
  assert.deepEqual(
    c.frames.map((f) => f.type),
    ['hello', 'error'],
    `hello, then the error before the close; frames: ${c.describe()}`,
  );
  assert.equal(c.frames[1].data.code, 'resume_failed');
  assert.equal(typeof c.frames[1].data.message, 'string');

  // Socket.IO: the same, with auth.since
  const sock = sioConnect(s.sys.url, { auth: { user_id: u, since: 0 } });
  s.track(() => sock.disconnect());
  const rec = new SioRecorder(sock);
  const reasons = [];
  sock.on('disconnect', (r) => reasons.push(r));
  await sioConnected(sock);
  assert.equal((await rec.waitFor('error')).code, 'resume_failed');
  await waitUntil(() => reasons.length !== 0, 3000, 'the socket.io disconnect');

  // a session that was live before stays open
  assert.equal(live.closeInfo, null);
});

s.test('the gateway stopping closes every session with 1001', async () => {
  const a = client('user_id=bye'),
    b = client();
  await Promise.all([a.ready(), b.ready()]);
  const sock = sioConnect(s.sys.url);
  s.track(() => sock.disconnect());
  await sioConnected(sock);
  const sioGone = new Promise((resolve) => sock.on('disconnect', resolve));
  await s.sys.child('gateway').stop();
  for (const c of [a, b]) {
    const { code } = await c.closed;
    assert.equal(code, 1001);
  }
  assert.equal(await sioGone, 'transport close');
  assert.deepEqual(s.sys.gateway.exit, { code: 0, signal: null }, 'the gateway exits 0');
});
