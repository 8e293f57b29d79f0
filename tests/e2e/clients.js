// Test clients: a native-protocol WebSocket client (ws) that records every frame, and a Socket.IO client factory.
'use strict';

const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { waitUntil } = require('./harness');

// A client of GET /v1/ws. Every text frame is parsed and kept in frames (with its arrival time in at);
// waitFor() finds frames, closed resolves with {code, reason} when the connection ends.
class NativeClient {
  constructor(url, wsOptions = {}) {
    this.url = url;
    this.frames = [];
    this.at = [];
    this.raw = [];
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...wsOptions });
    this._waiters = new Set();
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this._wake();
        resolve(this.closeInfo);
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          const err = new Error(`unexpected response ${res.statusCode}: ${body}`);
          err.status = res.statusCode;
          err.body = body;
          reject(err);
        });
      });
      this.ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {}); // surfaced through opened / closed
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      this.raw.push(text);
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = { type: '(not json)', text };
      }
      this.frames.push(frame);
      this.at.push(performance.now());
      this._wake();
    });
  }

  _wake() {
    for (const w of this._waiters) w();
  }

  // Resolves when the connection is open and the hello frame came; returns the hello frame.
  async ready(timeoutMs = 5000) {
    await this.opened;
    return this.waitFor((f) => f.type === 'hello', { timeoutMs, what: 'hello' });
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // The first frame at index >= from that matches pred; waits for it up to timeoutMs.
  waitFor(pred, { from = 0, timeoutMs = 3000, what = 'a frame' } = {}) {
    const find = () => {
      for (let i = from; i < this.frames.length; ++i) if (pred(this.frames[i], i)) return this.frames[i];
      return null;
    };
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = find();
        if (f) {
          done();
          resolve(f);
        } else if (this.closeInfo) {
          done();
          reject(
            new Error(
              `${this.url}: connection closed (${JSON.stringify(this.closeInfo)}) while waiting for ${what}; ` +
                `frames: ${this.describe()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.url}: no ${what} within ${timeoutMs} ms; frames: ${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this._waiters.delete(check);
      };
      this._waiters.add(check);
    });
  }

  // Waits until count frames match pred (from index from); returns them.
  async waitCount(pred, count, opts = {}) {
    const { from = 0, timeoutMs = 3000, what = `${count} frames` } = opts;
    await waitUntil(
      () => this.frames.slice(from).filter(pred).length >= count || this.closeInfo,
      timeoutMs,
      () => `${what}; got ${this.frames.slice(from).filter(pred).length}; frames: ${this.describe()}`,
    );
    const got = this.frames.slice(from).filter(pred);
    if (got.length < count)
      throw new Error(`closed (${JSON.stringify(this.closeInfo)}) before ${what}; frames: ${this.describe()}`);
    return got;
  }

  ofType(type, from = 0) {
    return this.frames.slice(from).filter((f) => f.type === type);
  }

  notificationIds(from = 0) {
    return this.ofType('notification', from).map((f) => f.data.id);
  }

  describe(max = 12) {
    const s = this.raw.slice(-max).map((t) => (t.length > 160 ? t.slice(0, 160) + '...' : t));
    return `${this.raw.length} frames, last: ${s.join(' | ')}`;
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    return this.closed;
  }
}

// A socket.io-client 4.x socket on the gateway, WebSocket transport only; reconnection off unless asked for.
function sioConnect(baseUrl, opts = {}) {
  const { nsp = '', ...rest } = opts;
  return io(baseUrl + nsp, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, ...rest });
}

// Records every event a socket gets (with onAny) so that tests can wait for them in order.
class SioRecorder {
  constructor(socket) {
    this.socket = socket;
    this.events = []; // [name, ...args]
    socket.onAny((name, ...args) => this.events.push([name, ...args]));
  }

  of(name) {
    return this.events.filter((e) => e[0] === name).map((e) => e[1]);
  }

  async waitFor(name, pred = () => true, timeoutMs = 3000) {
    return waitUntil(
      () => this.events.find((e) => e[0] === name && pred(e[1])),
      timeoutMs,
      () => `event ${name}; events: ${JSON.stringify(this.events.slice(-10))}`,
    ).then((e) => e[1]);
  }
}

function sioConnected(socket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve(socket);
    const t = setTimeout(() => reject(new Error('socket.io connect timed out')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve(socket);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

module.exports = { NativeClient, sioConnect, SioRecorder, sioConnected };
