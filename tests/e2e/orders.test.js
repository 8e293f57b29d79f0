// Orders and the realtime side: a completed order publishes its customer's notification through the same path as
// POST /v1/notifications, so it arrives live, {kind: "order"}, on every open session of the customer (native protocol
// and Socket.IO), once, and a session that resumes with `since` gets it from history. A refused order sends nothing.
'use strict';

const assert = require('node:assert/strict');
const { suite, sleep } = require('./harness');
const { NativeClient, sioConnect, SioRecorder, sioConnected } = require('./clients');

const s = suite({ orders: 1 });

async function setStock(product, quantity) {
  const r = await fetch(`${s.sys.url}/v1/inventory/${product}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ quantity }),
  });
  assert.equal(r.status, 200, await r.text());
}

const isOrder = (f) => f.type === 'notification' && f.data.kind === 'order';

s.test('an order\'s notification arrives live, kind "order", on each session of its customer', async () => {
  const customer = `buyer-${process.pid}`;
  const product = `gadget-${process.pid}`;
  await setStock(product, 3);

  const sessions = [0, 1].map(() => new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=${customer}`));
  const bystander = new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=bystander-${process.pid}`);
  for (const c of [...sessions, bystander]) s.track(() => c.close());
  const socket = sioConnect(s.sys.url, { auth: { user_id: customer } });
  s.track(() => socket.disconnect());
  const sio = new SioRecorder(socket);
  await Promise.all([...sessions.map((c) => c.ready()), bystander.ready(), sioConnected(socket)]);

  const placed = await s.sys.order({
    customer_id: customer,
    items: [{ product_id: product, quantity: 2 }],
    total_amount: 19.9,
  });
  assert.equal(placed.status, 201, placed.text);
  assert.equal(placed.body.status, 'success');
  const orderId = placed.body.order.order_id;

  for (const c of sessions) {
    const n = await c.waitFor(isOrder, { timeoutMs: 3000, what: `the notification of order ${orderId}` });
    assert.equal(n.data.user_id, customer);
    assert.equal(n.data.message, `Order ${orderId} completed`);
    assert.equal(n.data.read, false);
    assert.ok(Number.isInteger(n.data.id) && n.data.id > 0 && Number.isInteger(n.data.ts), JSON.stringify(n));
  }
  const viaSio = await sio.waitFor('notification', (n) => n.kind === 'order', 3000);
  assert.equal(viaSio.message, `Order ${orderId} completed`);
  assert.equal(viaSio.id, sessions[0].ofType('notification')[0].data.id);

  // the same notification is in the customer's merged list
  const list = await s.sys.get(`/v1/users/${customer}/notifications`);
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.realtime.map((n) => [n.id, n.kind]),
    [[viaSio.id, 'order']],
  );

  // a refused order (not enough stock left) publishes nothing; the next completed one arrives once more
  const refused = await s.sys.order({
    customer_id: customer,
    items: [{ product_id: product, quantity: 5 }],
    total_amount: 50,
  });
  assert.equal(refused.status, 409, refused.text);
  assert.deepEqual(refused.body, { status: 'failed', error: 'insufficient stock' });
  const second = await s.sys.order({
    customer_id: customer,
    items: [{ product_id: product, quantity: 1 }],
    total_amount: 9.95,
  });
  assert.equal(second.status, 201, second.text);
  for (const c of sessions) await c.waitCount(isOrder, 2, { timeoutMs: 3000, what: 'the second order notification' });
  await sleep(200); // a duplicate, or one for the refused order, would show by now
  for (const c of sessions) {
    assert.deepEqual(
      c.ofType('notification').map((f) => f.data.message),
      [`Order ${orderId} completed`, `Order ${second.body.order.order_id} completed`],
    );
  }
  assert.equal(sio.of('notification').length, 2);
  assert.equal(bystander.ofType('notification').length, 0, 'another user got the customer\'s notification');
});

s.test('an order retried with its Idempotency-Key notifies once; a session resuming with since gets it', async () => {
  const customer = `retrier-${process.pid}`;
  const product = `widget-${process.pid}`;
  await setStock(product, 10);
  const live = new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=${customer}`);
  s.track(() => live.close());
  await live.ready();

  const order = { customer_id: customer, items: [{ product_id: product, quantity: 1 }], total_amount: 5 };
  const key = `e2e-${process.pid}-${Date.now()}`;
  const first = await s.sys.order(order, { idempotencyKey: key });
  const again = await s.sys.order(order, { idempotencyKey: key });
  assert.equal(first.status, 201, first.text);
  assert.equal(again.text, first.text);
  const n = await live.waitFor(isOrder, { timeoutMs: 3000, what: 'the order notification' });
  await sleep(200);
  assert.equal(live.ofType('notification').length, 1, 'one order, one notification');

  // a client that reconnects from before the order gets it from history, in order, once
  const resumed = new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=${customer}&since=0`);
  s.track(() => resumed.close());
  await resumed.ready();
  const replayed = await resumed.waitFor(isOrder, { timeoutMs: 3000, what: 'the order notification, resumed' });
  assert.equal(replayed.data.id, n.data.id);
  assert.equal(replayed.data.message, `Order ${first.body.order.order_id} completed`);
});
