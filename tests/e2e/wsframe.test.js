// The gateway's own WebSocket layer (gateway/ws_conn.c, ws_frame.c) against a real system: what the `ws` client can
// send (fragmented messages, pings with payloads, closes with reasons), what only a raw socket can (unmasked frames,
// invalid UTF-8, an oversize header without its payload, frames sent with the handshake), the handshake's answers,
// the order of a close behind queued frames, and the memory an idle session costs.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { suite, sleep, HOST } = require('./harness');
const { NativeClient, sioConnect, sioConnected } = require('./clients');

const MAX_MESSAGE = 4096;
// The memory test opens 2,000 sessions from 127.0.0.1: no limit of connections per address. And no limit of sessions
// per user: its table (--limit-table-size keys, 1.5 MB by default) is a fixed array whose pages are touched as new
// users land on them, a one-off cost bounded by the table that 2,000 users would spread over the sessions measured.
const s = suite({
  gatewayArgs: ['--ws-max-message', String(MAX_MESSAGE), '--max-conns-per-addr', '0', '--max-sessions-per-user', '0'],
});

let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

function client(query = '') {
  const c = new NativeClient(`${s.sys.wsBase}/v1/ws${query ? '?' + query : ''}`);
  s.track(() => c.close());
  return c;
}

// ---- a raw WebSocket client: frames exactly as given -------------------------------------------------------------

// A client frame: fin, opcode, payload; masked unless told not to.
function frame(opcode, payload, { fin = true, masked = true } = {}) {
  payload = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = masked ? 0x80 : 0;
  if (payload.length < 126) head.push(m | payload.length);
  else if (payload.length < 65536) head.push(m | 126, payload.length >> 8, payload.length & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    for (let i = 3; i >= 0; --i) head.push((payload.length >>> (8 * i)) & 255);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
  return Buffer.concat([Buffer.from(head), mask, body]);
}

// Opens a TCP connection and sends a WebSocket handshake (headers overridable, extra bytes sent in the same write).
// Resolves with {sock, status, headers, body (what followed the response head, for a non-101), frames(), closed}.
function raw(path, { headers = {}, extra = Buffer.alloc(0) } = {}) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const h = {
      Host: `${HOST}:${s.sys.port}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
      ...headers,
    };
    const sock = net.connect(s.sys.port, HOST);
    s.track(() => sock.destroy());
    let buf = Buffer.alloc(0),
      head = null;
    const frames = [];
    const waiters = new Set();
    const wake = () => waiters.forEach((w) => w());
    let ended = false;
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 127,
          off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        assert.equal(buf[1] & 0x80, 0, 'server frames are not masked');
        frames.push({ fin: (buf[0] & 0x80) !== 0, opcode: buf[0] & 15, payload: buf.subarray(off, off + len) });
        buf = buf.subarray(off + len);
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const hs = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        head = { status, headers: hs, key };
        buf = buf.subarray(end + 4);
        if (status !== 101) {
          sock.on('end', () => resolve({ ...head, body: buf.toString() }));
          return;
        }
        resolve({
          ...head,
          sock,
          // waits until pred(frames) is true
          async until(pred, what, timeoutMs = 3000) {
            const deadline = Date.now() + timeoutMs;
            for (;;) {
              if (pred(frames)) return frames;
              if (Date.now() > deadline)
                throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames.map(show))}`);
              await new Promise((r) => {
                waiters.add(r);
                setTimeout(r, 50);
              });
            }
          },
          frames,
          ended: () => ended,
        });
      }
      parse();
      wake();
    });
    sock.on('end', () => ((ended = true), wake()));
    sock.on('close', () => ((ended = true), wake()));
    sock.on('error', reject);
    sock.write(
      `GET ${path} HTTP/1.1\r\n` +
        Object.entries(h)
          .filter(([, v]) => v !== null)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        '\r\n',
    );
    if (extra.length) sock.write(extra);
  });
}

const show = (f) => ({ opcode: f.opcode, fin: f.fin, text: f.payload.toString() });
const closeCode = (f) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null);
const isClose = (f) => f.opcode === 8;

// ---- what the ws client can send ----------------------------------------------------------------------------------

s.test('a message sent in fragments (fin: false), with a ping between them, is read as one', async () => {
  const c = client();
  await c.ready();
  const msg = JSON.stringify({ type: 'ping', note: 'split in three: \u20ac\u{1F600}' });
  const bytes = Buffer.from(msg);
  // cut inside the 4-byte emoji: the UTF-8 check runs across the fragments
  const cut1 = 10,
    cut2 = bytes.indexOf(Buffer.from('\u{1F600}')) + 2;
  let pongPayload = null;
  c.ws.on('pong', (d) => (pongPayload = d.toString()));
  const from = c.frames.length;
  c.ws.send(bytes.subarray(0, cut1), { fin: false, binary: false });
  c.ws.ping('between');
  c.ws.send(bytes.subarray(cut1, cut2), { fin: false, binary: false });
  c.ws.send(bytes.subarray(cut2), { fin: true, binary: false });
  await c.waitFor((f) => f.type === 'pong', { from, what: 'the answer to the fragmented ping' });
  assert.equal(c.frames.length - from, 1, 'one message, one answer');
  assert.equal(pongPayload, 'between', 'the ping between fragments was answered with its payload');
  assert.equal(c.closeInfo, null);
});

s.test('a ping with a payload gets a pong with the same payload', async () => {
  const c = client();
  await c.ready();
  const payloads = ['', 'x', 'hello \u00e9', 'p'.repeat(125)];
  const got = [];
  c.ws.on('pong', (d) => got.push(d.toString()));
  for (const p of payloads) c.ws.ping(p);
  const deadline = Date.now() + 3000;
  while (got.length < payloads.length && Date.now() < deadline) await sleep(10);
  assert.deepEqual(got, payloads);
});

s.test('a close with a code and reason is echoed, and the session leaves its room', async () => {
  const room = unique('closing');
  const a = client(),
    b = client();
  await Promise.all([a.ready(), b.ready()]);
  for (const [c, name] of [
    [a, 'ann'],
    [b, 'bob'],
  ]) {
    const from = c.frames.length;
    c.send({ type: 'join', username: name, room });
    await c.waitFor((f) => f.type === 'joined', { from });
  }
  const from = a.frames.length;
  b.ws.close(4001, 'done for today');
  const info = await b.closed;
  assert.equal(info.code, 4001, 'the gateway echoes the code');
  await a.waitFor((f) => f.type === 'user_left' && f.data === 'bob', { from, what: 'user_left' });
});

s.test('frames queued before a close go out before it (binary after a ping: pong, then 1003)', async () => {
  const c = client();
  await c.ready();
  const from = c.frames.length;
  c.send({ type: 'ping' });
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  const { code } = await c.closed;
  assert.equal(code, 1003);
  assert.deepEqual(
    c.frames.slice(from).map((f) => f.type),
    ['pong'],
  );
});

// ---- what only a raw socket can send ------------------------------------------------------------------------------

s.test('handshake: the accept key, and frames sent along with the request are read', async () => {
  const r = await raw('/v1/ws', { extra: frame(1, JSON.stringify({ type: 'ping' })) });
  assert.equal(r.status, 101);
  const want = crypto
    .createHash('sha1')
    .update(r.key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
  assert.equal(r.headers['sec-websocket-accept'], want);
  assert.match(r.headers.upgrade, /^websocket$/i);
  await r.until((fs) => fs.some((f) => f.opcode === 1 && JSON.parse(f.payload).type === 'pong'), 'pong');
  assert.equal(JSON.parse(r.frames[0].payload).type, 'hello');
});

s.test('an unmasked frame is closed with 1002, and the socket is closed after', async () => {
  const r = await raw('/v1/ws');
  r.sock.write(frame(1, '{"type":"ping"}', { masked: false }));
  await r.until((fs) => fs.some(isClose), 'a close frame');
  const close = r.frames.find(isClose);
  assert.equal(closeCode(close), 1002);
  assert.match(close.payload.subarray(2).toString(), /masked/);
  assert.ok(!r.frames.some((f) => f.opcode === 1 && f.payload.toString().includes('pong')), 'the frame was not read');
  r.sock.write(frame(8, Buffer.from([0x03, 0xea]))); // answer the close
  await r.until(() => r.ended(), 'the gateway closing the socket');
});

s.test('invalid UTF-8 in a text message (split over fragments) is closed with 1007', async () => {
  const r = await raw('/v1/ws');
  await r.until((fs) => fs.length >= 1, 'hello');
  r.sock.write(Buffer.concat([frame(1, Buffer.from([0x7b, 0xe2, 0x82]), { fin: false }), frame(0, Buffer.from([0x41]))]));
  await r.until((fs) => fs.some(isClose), 'a close frame');
  assert.equal(closeCode(r.frames.find(isClose)), 1007);
});

s.test('RSV bits, unknown opcodes, long or fragmented control frames and bad close codes are closed with 1002', async () => {
  const cases = [
    ['RSV1', Buffer.from([0xc1, 0x80, 0, 0, 0, 0])],
    ['opcode 3', frame(3, 'x')],
    ['ping of 126 bytes', frame(9, 'p'.repeat(126))],
    ['fragmented ping', frame(9, 'x', { fin: false })],
    ['close code 1005', frame(8, Buffer.from([0x03, 0xed]))],
    ['stray continuation', frame(0, 'x')],
  ];
  for (const [what, bytes] of cases) {
    const r = await raw('/v1/ws');
    r.sock.write(bytes);
    await r.until((fs) => fs.some(isClose), `a close frame (${what})`);
    assert.equal(closeCode(r.frames.find(isClose)), 1002, what);
  }
});

s.test('a header announcing a message over --ws-max-message is refused with 1009 before its payload comes', async () => {
  const r = await raw('/v1/ws');
  // only the header (and 10 bytes) of a 10 MB message
  const header = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0xa0, 0, 0]);
  r.sock.write(Buffer.concat([header, crypto.randomBytes(4), Buffer.alloc(10, 0x20)]));
  await r.until((fs) => fs.some(isClose), 'a close frame');
  assert.equal(closeCode(r.frames.find(isClose)), 1009);
});

s.test('handshake errors: version 8 is 426 with Sec-WebSocket-Version: 13; a bad key is 400', async () => {
  const v = await raw('/v1/ws', { headers: { 'Sec-WebSocket-Version': '8' } });
  assert.equal(v.status, 426);
  assert.equal(v.headers['sec-websocket-version'], '13');
  assert.equal(JSON.parse(v.body).error.code, 'unsupported_websocket_version');
  const k = await raw('/socket.io/?EIO=4&transport=websocket', { headers: { 'Sec-WebSocket-Key': 'c2hvcnQ=' } });
  assert.equal(k.status, 400);
  assert.equal(JSON.parse(k.body).error.code, 'invalid_websocket_key');
  const n = await raw('/v1/ws', { headers: { 'Sec-WebSocket-Key': null } });
  assert.equal(n.status, 400);
  assert.equal(JSON.parse(n.body).error.code, 'invalid_websocket_key');
});

// ---- memory ---------------------------------------------------------------------------------------------------------

// Idle sessions, native and Socket.IO, each with a user: the gateway's RSS grows by under 2 KiB a session (issue 5's
// target; about 0.9 KiB measured here). Memory, not time: fair on a busy machine. Under AddressSanitizer RSS means
// nothing (shadow memory, quarantine), so there only the sessions are opened.
s.test('an idle session costs under 2 KiB of gateway RSS (native and Socket.IO)', { timeout: 90000 }, async (t) => {
  const N = 1000,
    BATCH = 200;
  const sanitizer = !!process.env.ASAN_OPTIONS;
  // warm up the allocator and h2o's per-thread caches with sessions of both kinds, closed again
  for (let i = 0; i < 40; ++i) {
    const c = client(`user_id=warm${i}`);
    await c.ready();
    c.ws.close();
    const so = sioConnect(s.sys.url, { query: { user_id: `swarm${i}` } });
    await sioConnected(so);
    so.disconnect();
  }
  await sleep(500);
  const open = async (make) => {
    const all = [];
    for (let i = 0; i < N; i += BATCH) {
      const batch = [];
      for (let j = i; j < i + BATCH; ++j) batch.push(make(j));
      all.push(...(await Promise.all(batch)));
    }
    await sleep(1000);
    return all;
  };
  const rss0 = s.sys.rssKiB();
  const natives = await open(async (j) => {
    const c = new NativeClient(`${s.sys.wsBase}/v1/ws?user_id=idle${j}`);
    s.track(() => c.ws.terminate());
    await c.ready(15000);
    return c;
  });
  const rss1 = s.sys.rssKiB();
  const socks = await open(async (j) => {
    const so = sioConnect(s.sys.url, { query: { user_id: `sidle${j}` }, timeout: 15000 });
    s.track(() => so.disconnect());
    return sioConnected(so, 15000);
  });
  const rss2 = s.sys.rssKiB();
  const native = ((rss1 - rss0) * 1024) / N,
    sio = ((rss2 - rss1) * 1024) / N;
  t.diagnostic(`RSS ${rss0} -> ${rss1} -> ${rss2} KiB: ${native.toFixed(0)} B a native session, ${sio.toFixed(0)} B a Socket.IO one`);
  // every session is alive
  assert.ok(natives.every((c) => c.closeInfo === null) && socks.every((so) => so.connected));
  if (!sanitizer) {
    assert.ok(native < 2048, `${native.toFixed(0)} bytes of RSS a native session`);
    assert.ok(sio < 2048, `${sio.toFixed(0)} bytes of RSS a Socket.IO session`);
  }
});
