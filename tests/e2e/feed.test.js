// The live feed when the gateway falls behind the notifiers: with a tiny feed ring (--feed-events) a burst of
// publishes overflows it, the notifiers answer the gateway's WATCH with a gap, and every session resyncs from history.
// Sessions must still get every notification exactly once, in order.
'use strict';

const assert = require('node:assert/strict');
const { suite, waitUntil, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

const s = suite({ notifiers: 2, notifierArgs: ['--feed-events', '4'] });

s.test(
  "a burst that overflows the notifiers' feed: every session still gets each notification once, in order",
  { timeout: 30000 },
  async (t) => {
    const users = [`burst-a-${process.pid}`, `burst-b-${process.pid}`];
    const native = users.flatMap((u) => [0, 1].map(() => new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=${u}`)));
    for (const c of native) s.track(() => c.close());
    const sio = users.map((u) => {
      const socket = sioConnect(s.sys.url, { auth: { user_id: u } });
      s.track(() => socket.disconnect());
      return { u, socket, rec: new SioRecorder(socket) };
    });
    await Promise.all([...native.map((c) => c.ready()), ...sio.map((x) => sioConnected(x.socket))]);
    await sleep(100);
    const gapsBefore = (s.sys.gatewayLog().match(/live feed lost notifications/g) || []).length;

    const ids = Object.fromEntries(users.map((u) => [u, []]));
    let next = 0;
    const N = 300;
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        while (next < N) {
          const i = next++;
          const u = users[i % 2];
          ids[u].push((await s.sys.publish(u, `burst ${i}`)).id);
        }
      }),
    );
    for (const u of users) ids[u].sort((a, b) => a - b);

    for (const [k, c] of native.entries()) {
      const u = users[k >> 1];
      await c.waitCount((f) => f.type === 'notification', ids[u].length, {
        timeoutMs: 10000,
        what: `${u}'s ${ids[u].length} notifications`,
      });
    }
    for (const x of sio)
      await waitUntil(
        () => x.rec.of('notification').length >= ids[x.u].length,
        10000,
        `${x.u}'s notifications over Socket.IO`,
      );
    await sleep(200); // late duplicates would show here
    for (const [k, c] of native.entries())
      assert.deepEqual(c.notificationIds(), ids[users[k >> 1]], `native session ${k}`);
    for (const x of sio)
      assert.deepEqual(
        x.rec.of('notification').map((n) => n.id),
        ids[x.u],
        `Socket.IO session of ${x.u}`,
      );

    const gaps = (s.sys.gatewayLog().match(/live feed lost notifications/g) || []).length - gapsBefore;
    t.diagnostic(`the feed reported ${gaps} gap(s) during the burst`);
    assert.ok(gaps >= 1, "the burst overflowed the notifiers' feed (else this test tests nothing)");
  },
);
