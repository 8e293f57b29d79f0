// The e2e harness: starts a real notigate system (redis-server, gateway, notifiers, history-svc, and orders replicas
// when asked: suite({ orders: 1 })) on free loopback ports in a temporary directory, and tears it down. Each test file
// runs one system for all of its tests:
//
//   const { suite } = require('./harness');
//   const s = suite({ gatewayArgs: ['--ws-ping-interval-ms', '300'] });   // registers before/after hooks
//   s.test('name', async (t) => { await s.sys.publish('alice', 'hi'); ... });
//
// Binaries come from NOTIGATE_BIN_DIR (default <repo>/build). The harness kills its children by pid when the test
// process exits or gets SIGINT/SIGTERM; if it is killed outright (SIGKILL, as by a ctest timeout, which does not kill
// grandchildren), a small watchdog shell it started kills them (by pid, checking each one's start time first, so that
// a reused pid is left alone). Each child's stdout and stderr go to a log file in the system's directory; a failing
// test (or a system that does not start) gets the tails of those logs appended to its error, and the directory
// (/tmp/notigate-e2e.*) is kept after a failure, or always with NOTIGATE_E2E_KEEP=1.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const nodeTest = require('node:test');

const REPO = path.resolve(__dirname, '..', '..');
const BIN_DIR = process.env.NOTIGATE_BIN_DIR || path.join(REPO, 'build');
const HOST = '127.0.0.1';
const START_ATTEMPTS = 3; // a free port can be taken by someone else between our probe and the child's bind
const READY_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;
const LOG_TAIL_LINES = 30;
const DEFAULT_TEST_TIMEOUT_MS = 20000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- children: every process we start, so that we can always kill them by pid -----------------------------------

const live = new Set();

// Start time of a process (field 22 of /proc/<pid>/stat, in clock ticks since boot), to tell it from a later process
// that got the same pid.
function startTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null;
  }
}

// The watchdog: waits for this process to be gone, then kills the children listed in the pid file ("pid starttime"
// lines) that are still the same processes. PR_SET_PDEATHSIG would be simpler, but it is not delivered on every
// kernel this runs on.
const WATCHDOG = `
parent=$1 file=$2
while stat=$(cat "/proc/$parent/stat" 2>/dev/null); do
  set -- \${stat##*) }
  [ "$1" = Z ] && break # dead, not yet reaped
  sleep 0.2
done
[ -f "$file" ] || exit 0
while read -r pid start; do
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
  set -- \${stat##*) }
  [ "\${20}" = "$start" ] && kill -9 "$pid" 2>/dev/null
done < "$file"
rm -f "$file"
`;
let watchdog = null;
const pidFile = path.join(os.tmpdir(), `notigate-e2e-children.${process.pid}`);

function writePidFile() {
  const lines = [...live].filter((c) => c.start).map((c) => `${c.pid} ${c.start}\n`);
  fs.writeFileSync(pidFile, lines.join(''));
  if (!watchdog) {
    watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'e2e-watchdog', String(process.pid), pidFile], {
      detached: true,
      stdio: 'ignore',
    });
    watchdog.unref();
  }
}

function killAllNow() {
  for (const child of live) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
  try {
    fs.rmSync(pidFile, { force: true });
    if (watchdog) process.kill(watchdog.pid, 'SIGKILL');
  } catch {}
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllNow();
    process.exit(128 + os.constants.signals[sig]);
  });
}

// A free TCP port on the loopback (free now; the caller binds it soon after).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

class Child {
  constructor(name, file, args, logPath, env = {}) {
    this.name = name;
    this.logPath = logPath;
    const fd = fs.openSync(logPath, 'a');
    const base = { ...process.env };
    delete base.NOTIGATE_JWT_SECRET;
    delete base.NOTIGATE_JWT_SECRET_FILE;
    this.proc = spawn(file, args, {
      stdio: ['ignore', fd, fd],
      env: { ...base, LOG_LEVEL: process.env.LOG_LEVEL || 'info', ...env },
    });
    fs.closeSync(fd);
    this.pid = this.proc.pid;
    this.exit = null; // {code, signal} once it ended
    this.exited = new Promise((resolve) => {
      const ended = (exit) => {
        this.exit = exit;
        live.delete(this);
        writePidFile();
        resolve(exit);
      };
      this.proc.on('exit', (code, signal) => ended({ code, signal }));
      this.proc.on('error', (err) => ended({ code: -1, signal: null, error: err }));
    });
    this.start = this.pid ? startTime(this.pid) : null;
    live.add(this);
    writePidFile();
  }

  alive() {
    return this.exit === null;
  }

  // SIGTERM, then SIGKILL if it is still there after timeoutMs. Resolves with its exit.
  async stop(timeoutMs = STOP_TIMEOUT_MS) {
    if (!this.alive()) return this.exit;
    try {
      this.proc.kill('SIGTERM');
    } catch {}
    const t = setTimeout(() => {
      try {
        this.proc.kill('SIGKILL');
      } catch {}
    }, timeoutMs);
    const exit = await this.exited;
    clearTimeout(t);
    return exit;
  }

  tail(n = LOG_TAIL_LINES) {
    let text = '';
    try {
      text = fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
    return text
      .split('\n')
      .filter((l) => l !== '')
      .slice(-n)
      .join('\n');
  }
}

// ---- the system --------------------------------------------------------------------------------------------------

function redisPing(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

class System {
  // opts: gatewayArgs (extra gateway flags), notifiers (replicas, default 1), notifierArgs, historyArgs, orders (orders
  // replicas, default 0), ordersArgs, auth (default false: the gateway runs with --insecure-no-auth; true: with a random
  // JWT secret, and sys.token() makes tokens; publish() and order() then send a publisher's)
  constructor(opts = {}) {
    this.opts = {
      auth: false,
      gatewayArgs: [],
      notifiers: 1,
      notifierArgs: [],
      historyArgs: [],
      orders: 0,
      ordersArgs: [],
      ...opts,
    };
    this.children = [];
    this.retired = []; // gateways stopped by restartGateway()
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notigate-e2e.'));
    this.secret = this.opts.auth ? crypto.randomBytes(32).toString('hex') : null;
    this.attempt = 0;
  }

  get gateway() {
    return this.children.find((c) => c.name === 'gateway');
  }

  child(name) {
    return this.children.find((c) => c.name === name);
  }

  // Starts every process and waits for /readyz; retries with new ports if a port was taken meanwhile.
  async start() {
    for (const name of ['gateway', 'notifier', 'history-svc', ...(this.opts.orders > 0 ? ['orders'] : [])]) {
      if (!fs.existsSync(path.join(BIN_DIR, name)))
        throw new Error(`no ${name} in ${BIN_DIR}: build first (cmake --build build), or set NOTIGATE_BIN_DIR`);
    }
    let lastErr;
    for (this.attempt = 1; this.attempt <= START_ATTEMPTS; ++this.attempt) {
      try {
        await this._startOnce();
        return this;
      } catch (err) {
        lastErr = err;
        err.message += '\n' + this.logTails();
        await this._stopChildren();
      }
    }
    throw lastErr;
  }

  async _startOnce() {
    const tag = `.${this.attempt}`;
    // the orders port too, always: the gateway's default (7103) may be taken by another system on this machine
    const [redisPort, httpPort, notifierPort, historyPort, ordersPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    this.port = httpPort;
    this.redisPort = redisPort;
    this.url = `http://${HOST}:${httpPort}`;
    this.wsBase = `ws://${HOST}:${httpPort}`;
    const redisDir = path.join(this.dir, `redis${tag}`);
    fs.mkdirSync(redisDir, { recursive: true });
    const log = (name) => path.join(this.dir, `${name}${tag}.log`);

    this.children = [];
    const redis = new Child(
      'redis',
      'redis-server',
      [
        '--bind',
        HOST,
        '--port',
        String(redisPort),
        '--dir',
        redisDir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'yes',
      ],
      log('redis'),
    );
    this.children.push(redis);
    for (let i = 0; ; ++i) {
      if (await redisPing(redisPort)) break;
      if (!redis.alive() || i > 100) throw new Error(`redis-server did not start on port ${redisPort}`);
      await sleep(50);
    }

    const bin = (name) => path.join(BIN_DIR, name);
    const redisUrl = `redis://${HOST}:${redisPort}`;
    this._gatewayArgs = [
      '--listen',
      `${HOST}:${httpPort}`,
      '--notifier-bind',
      `tcp://${HOST}:${notifierPort}`,
      '--history-bind',
      `tcp://${HOST}:${historyPort}`,
      '--orders-bind',
      `tcp://${HOST}:${ordersPort}`,
      '--shutdown-timeout-ms',
      '2000',
      // every client here is 127.0.0.1 without a credential, many requests a second: no rate limit per address
      // unless a test sets one (gatewayArgs come after: a later flag wins)
      '--rate-limit',
      '0',
      ...(this.opts.auth ? [] : ['--insecure-no-auth']),
      ...this.opts.gatewayArgs,
    ];
    this._gatewayLog = log('gateway');
    this._gatewayEnv = this.opts.auth ? { NOTIGATE_JWT_SECRET: this.secret } : {};
    this.children.push(new Child('gateway', bin('gateway'), this._gatewayArgs, this._gatewayLog, this._gatewayEnv));
    this.children.push(
      new Child(
        'history-svc',
        bin('history-svc'),
        [
          '--gateway',
          `tcp://${HOST}:${historyPort}`,
          '--redis-url',
          redisUrl,
          '--drain-ms',
          '1000',
          ...this.opts.historyArgs,
        ],
        log('history-svc'),
      ),
    );
    for (let i = 0; i < this.opts.notifiers; ++i) {
      this.children.push(
        new Child(
          i === 0 ? 'notifier' : `notifier${i + 1}`,
          bin('notifier'),
          [
            '--gateway',
            `tcp://${HOST}:${notifierPort}`,
            '--redis-url',
            redisUrl,
            '--drain-ms',
            '1000',
            ...this.opts.notifierArgs,
          ],
          log(i === 0 ? 'notifier' : `notifier${i + 1}`),
        ),
      );
    }
    for (let i = 0; i < this.opts.orders; ++i) {
      const name = i === 0 ? 'orders' : `orders${i + 1}`;
      this.children.push(
        new Child(
          name,
          bin('orders'),
          [
            '--gateway',
            `tcp://${HOST}:${ordersPort}`,
            '--redis-url',
            redisUrl,
            '--drain-ms',
            '1000',
            ...this.opts.ordersArgs,
          ],
          log(name),
        ),
      );
    }
    await this.waitReady();
  }

  async waitReady(timeoutMs = READY_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      const dead = this.children.find((c) => !c.alive());
      if (dead) throw new Error(`${dead.name} exited (${JSON.stringify(dead.exit)}) before the system was ready`);
      try {
        const r = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        last = `${r.status} ${await r.text()}`;
        // ready, and the gateway's live feed follows the notifiers (else the first notifications wait for its retry);
        // /readyz does not count orders replicas: /metrics does
        if (r.status === 200 && /msg="live feed started"/.test(this.gatewayLog()) && (await this._ordersConnected()))
          return;
      } catch (err) {
        last = String(err.cause || err);
      }
      await sleep(50);
    }
    throw new Error(`the system was not ready within ${timeoutMs} ms: /readyz said ${last}`);
  }

  // Stops the gateway (SIGTERM: resolves once it exited 0, else throws; SIGKILL: at once) and starts a new one on the
  // same ports, then waits for /readyz. The old process stays listed in this.retired (its log is in logTails()).
  async restartGateway({ signal = 'SIGTERM' } = {}) {
    const old = this.gateway;
    let exit;
    if (signal === 'SIGKILL') {
      old.proc.kill('SIGKILL');
      exit = await old.exited;
    } else {
      exit = await old.stop();
      if (exit.code !== 0) throw new Error(`the gateway did not exit 0 on SIGTERM: ${JSON.stringify(exit)}`);
    }
    this.children = this.children.filter((c) => c !== old);
    this.retired.push(old);
    old.name = `gateway (stopped by ${signal})`;
    const logPath = this._gatewayLog.replace(/\.log$/, `.restart${this.retired.length}.log`);
    this.children.push(new Child('gateway', path.join(BIN_DIR, 'gateway'), this._gatewayArgs, logPath, this._gatewayEnv));
    await this.waitReady();
    return exit;
  }

  async _ordersConnected() {
    if (this.opts.orders === 0) return true;
    const r = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(1000) });
    const m = /^notigate_worker_replicas\{kind="orders"\} (\d+)$/m.exec(await r.text());
    return m !== null && Number(m[1]) === this.opts.orders;
  }

  async _stopChildren() {
    // the gateway first (it closes its sessions with 1001), then the workers, Redis last
    const order = [
      'gateway',
      ...this.children.map((c) => c.name).filter((n) => n !== 'gateway' && n !== 'redis'),
      'redis',
    ];
    for (const name of order) {
      const c = this.child(name);
      if (c) await c.stop();
    }
  }

  // Stops everything and removes the directory (kept with NOTIGATE_E2E_KEEP=1, or when keep is true).
  // Resolves with the processes that did not exit 0 (a crash, a sanitizer report, a stop that needed SIGKILL): then
  // the directory is kept too.
  async stop({ keep = false } = {}) {
    await this._stopChildren();
    const bad = this.children.filter((c) => !c.exit || c.exit.code !== 0);
    if (!keep && bad.length === 0 && !process.env.NOTIGATE_E2E_KEEP)
      fs.rmSync(this.dir, { recursive: true, force: true });
    return bad;
  }

  logTails(n = LOG_TAIL_LINES) {
    const parts = [`---- logs of the system in ${this.dir} (last ${n} lines each) ----`];
    for (const c of [...this.retired, ...this.children]) {
      parts.push(`== ${c.name} (pid ${c.pid}${c.exit ? `, exited ${JSON.stringify(c.exit)}` : ''}) ${c.logPath}`);
      parts.push(c.tail(n) || '(empty)');
    }
    return parts.join('\n');
  }

  // The gateway's log, for assertions on what it logged.
  gatewayLog() {
    try {
      return fs.readFileSync(this.gateway.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  // Resident set size of a child, in KiB, from /proc.
  rssKiB(name = 'gateway') {
    const status = fs.readFileSync(`/proc/${this.child(name).pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) : NaN;
  }

  // A JWT (HS256) for sub signed with the system's secret, made here with node's crypto (independently of the
  // gateway's code): claims {sub, exp: now + ttl, scope?, nbf?} and any extra claims; alg overrides the header's.
  token(sub, { scope, ttl = 600, nbf, claims = {}, alg = 'HS256', secret = this.secret } = {}) {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const payload = { sub, exp: now + ttl, ...(scope ? { scope } : {}), ...(nbf !== undefined ? { nbf } : {}), ...claims };
    const signing = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`;
    if (alg === 'none') return `${signing}.`;
    return `${signing}.${crypto.createHmac('sha256', secret).update(signing).digest('base64url')}`;
  }

  // The headers a publisher sends (none without auth).
  publisherHeaders() {
    return this.secret ? { authorization: `Bearer ${this.token('e2e-publisher', { scope: 'publish' })}` } : {};
  }

  // POST /v1/notifications; resolves with the 201 body {id, user_id, ts} (throws on any other status).
  async publish(userId, message, kind) {
    const body = { user_id: userId, message };
    if (kind) body.kind = kind;
    const r = await fetch(`${this.url}/v1/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.publisherHeaders() },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (r.status !== 201) throw new Error(`publish for ${userId}: ${r.status} ${text}`);
    return JSON.parse(text);
  }

  // POST /v1/orders (the orders replicas must run: suite({ orders: 1 })); resolves with {status, body, text}.
  async order(order, { idempotencyKey } = {}) {
    const headers = { 'content-type': 'application/json', ...this.publisherHeaders() };
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    const r = await fetch(`${this.url}/v1/orders`, { method: 'POST', headers, body: JSON.stringify(order) });
    const text = await r.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: r.status, body, text };
  }

  // GET path; resolves with {status, headers, body (parsed JSON when it is JSON), text}.
  async get(p, init = {}) {
    const r = await fetch(`${this.url}${p}`, init);
    const text = await r.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: r.status, headers: r.headers, body, text };
  }
}

// ---- test helpers ------------------------------------------------------------------------------------------------

// Waits until pred() is true (polled every 10 ms) or throws after timeoutMs with what() in the message.
async function waitUntil(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(10);
  }
}

// Registers before/after hooks that start and stop one system for the file; s.test() runs a test with its own
// timeout, closes what the test registered with s.track(), and appends the logs' tails to a failure.
function suite(opts = {}) {
  const s = {
    sys: null,
    _tracked: [],
    _failed: false,
    track(closer) {
      s._tracked.push(closer);
      return closer;
    },
    test(name, options, fn) {
      if (typeof options === 'function') [fn, options] = [options, {}];
      const timeoutMs = options.timeout || DEFAULT_TEST_TIMEOUT_MS;
      nodeTest.test(name, { skip: options.skip, timeout: timeoutMs + 5000 }, async (t) => {
        let timer;
        const timeout = new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`test timed out after ${timeoutMs} ms`)), timeoutMs);
        });
        try {
          await Promise.race([fn(t), timeout]);
        } catch (err) {
          if (s.sys) {
            const tails = s.sys.logTails();
            if (err && typeof err === 'object') {
              try {
                err.message = `${err.message}\n${tails}`;
              } catch {}
            }
            process.stderr.write(`\n[${name}] failed: ${tails}\n`);
          }
          s._failed = true;
          throw err;
        } finally {
          clearTimeout(timer);
          const closers = s._tracked.splice(0);
          for (const c of closers.reverse()) {
            try {
              await c();
            } catch {}
          }
        }
      });
    },
  };
  nodeTest.before(async () => {
    s.sys = new System(opts);
    await s.sys.start();
  });
  nodeTest.after(async () => {
    if (!s.sys) return;
    const bad = await s.sys.stop({ keep: s._failed }); // a failure's logs and Redis data stay for a look
    if (s._failed || bad.length) process.stderr.write(`e2e: the system's files are kept in ${s.sys.dir}\n`);
    // every process must have lived through the tests and stopped cleanly (exit 0 on SIGTERM)
    if (bad.length) {
      const what = bad.map((c) => `${c.name} ${JSON.stringify(c.exit)}`).join(', ');
      throw new Error(`processes did not exit cleanly: ${what}\n${s.sys.logTails()}`);
    }
  });
  return s;
}

module.exports = { System, suite, waitUntil, sleep, freePort, BIN_DIR, REPO, HOST };
