#!/usr/bin/env python3
"""notigate's benchmark driver: bench/run.sh builds everything and runs this (Python standard library only). The HTTP
half is here; the WebSocket half (--parts ws) is bench/ws_bench.py, run after it.

The HTTP half seeds one Redis data set through notigate's own API, then, round after round, for every (tool, connections,
target) in a fixed interleaved order: starts the target's processes afresh on loopback (a private copy of the seeded
Redis each time, so every target reads the same data and no run inherits another's writes or memory), checks that the
target answers right (status, JSON shape, bodies of a sample of users compared with the reference), warms it up, waits
until it is idle again, runs the load tool while polling the RSS and CPU time of every process of that side, and stops
what it started. At the end it prints one table of medians and writes the details to OUT/results.json and the table to OUT/table.md.

Sides:  ours     redis-server (AOF, appendfsync always) + gateway + notifier + history-svc
        ceiling  bench/ceiling.c: the gateway's h2o front answering a constant body of the hybrid answer's size
        fastapi  redis-server + Node.js realtime service + FastAPI hybrid endpoint (uvicorn), N processes each
        node     redis-server + Node.js realtime service + Node.js hybrid endpoint (express), N processes each
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

NUSERS = 1000
NHIST = 20  # per user: published first, then all marked read
NRT = 5  # per user: published after, left unread (the realtime view)
PAGE = 20  # the gateway's default page: 5 realtime + 15 historical
WINDOW_S = 86400  # REALTIME_WINDOW for the notifier and the Node.js realtime service: the seeded realtime ones stay in
SAMPLE_USERS = 10  # bodies compared with the reference before each timed run
RESERVED_PORTS = {8080, 8090, 7101, 7102, 7201, 7202, 6390, 6399}  # used by others on this machine
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-fastapi, uvicorn, ... are Debian's


# ---- auth: notigate runs with it on, as users run it; every request carries the token a real client would send ----

JWT_SECRET = secrets.token_hex(32)  # this run's gateway secret
TOKEN_TTL_S = 6 * 3600


def make_token(sub, scope=None):
    """A JWT (HS256) for sub, made here with Python's hmac, as an identity provider would."""
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + TOKEN_TTL_S}
    if scope:
        claims["scope"] = scope
    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing + "." + b64(hmac.new(JWT_SECRET.encode(), signing.encode(), hashlib.sha256).digest())


_tokens = {}


def token_for(method, path):
    """The token a client sends for method and path: the user's own (the path's or user_id=), or a publisher's."""
    m = re.match(r"^/v1/users/([^/?]+)/", path) or re.search(r"[?&]user_id=([^&]+)", path)
    sub, scope = (m.group(1), None) if m else ("bench-publisher", "publish")
    if sub not in _tokens:
        _tokens[sub] = make_token(sub, scope)
    return _tokens[sub]


def write_tokens_file(path):
    """user i's token on line i (wrk.lua reads them), then the publisher's."""
    with open(path, "w") as f:
        for i in range(1, NUSERS + 1):
            f.write(token_for("GET", "/v1/users/%s/" % user_name(i)) + "\n")
        f.write(token_for("POST", "/v1/notifications") + "\n")


def user_name(i):
    return "user%04d" % i


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---- ports and processes -------------------------------------------------------------------------------------------

_ports_given = set()


def free_port():
    """A loopback TCP port nobody listens on now, not one of the reserved ones, not handed out before in this run."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RESERVED_PORTS and port not in _ports_given:
            _ports_given.add(port)
            return port
    raise BenchError("no free port")


class Proc:
    """One process we started, in a process group of its own (its workers join it), so that stopping it signals
    exactly what we started and nothing else."""

    def __init__(self, name, argv, logdir, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, name + ".log")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.logf = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
            start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=15.0):
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop in %.0f s: SIGKILL" % (self.name, self.pid, timeout))
        # whatever is left of its group (workers of a stopped primary), by the group id we created
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait()
        self.logf.close()

    def tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def group_members(pgids):
    """pid -> (pgid, comm) of every live process in one of the process groups pgids."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        rp = stat.rfind(")")
        fields = stat[rp + 2:].split()
        pgid = int(fields[2])
        if pgid in pgids:
            out[int(d)] = (pgid, stat[stat.find("(") + 1:rp])
    return out


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Polls VmRSS of every process of a side (the process groups of its Procs) and keeps the peak of their sum, and
    each process's own peak (VmHWM at the last look)."""

    def __init__(self, procs, interval=0.25):
        super().__init__(daemon=True)
        self.names = {p.pid: p.name for p in procs}
        self.interval = interval
        self.peak_sum_kb = 0
        self.per_proc = {}  # "name[pid]" -> peak kB
        self.cpu = {}  # "name[pid]" -> (ticks at first look, ticks at last look)
        self._stop_evt = threading.Event()

    def _look(self, members):
        total = 0
        for pid, (pgid, comm) in members.items():
            rss = status_kb(pid, "VmRSS")
            total += rss
            key = "%s/%s[%d]" % (self.names.get(pgid, "?"), comm, pid)
            self.per_proc[key] = max(self.per_proc.get(key, 0), rss, status_kb(pid, "VmHWM"))
            ticks = cpu_ticks(pid)
            if ticks is not None:
                first, _ = self.cpu.get(key, (ticks, ticks))
                self.cpu[key] = (first, ticks)
        self.peak_sum_kb = max(self.peak_sum_kb, total)

    def cpu_seconds(self):
        """CPU time (user + system) each process used while sampled."""
        hz = os.sysconf("SC_CLK_TCK")
        return {k: (last - first) / hz for k, (first, last) in self.cpu.items()}

    def run(self):
        members, refreshed = {}, 0.0
        while not self._stop_evt.is_set():
            now = time.monotonic()
            if now - refreshed > 2.0:
                members = group_members(set(self.names))
                refreshed = now
            self._look(members)
            self._stop_evt.wait(self.interval)

    def finish(self):
        self._stop_evt.set()
        self.join()
        self._look(group_members(set(self.names)))
        return self.peak_sum_kb, dict(self.per_proc)


# ---- HTTP ----------------------------------------------------------------------------------------------------------


def http_req(port, method, path, body=None, headers=None, timeout=10.0):
    """One request on a new connection: (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = dict(headers or {})
    headers.setdefault("Authorization", "Bearer " + token_for(method, path))
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def wait_http(port, path, want=200, timeout=20.0, procs=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise BenchError("%s exited while starting:\n%s" % (p.name, p.tail()))
        try:
            status, _, body = http_req(port, "GET", path, timeout=2.0)
            if status == want:
                return
            last = "%d %s" % (status, body[:200])
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    raise BenchError("port %d %s not ready in %.0f s (last: %s)" % (port, path, timeout, last))


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args], check=True, capture_output=True,
                          text=True).stdout.strip()


# ---- the sides -----------------------------------------------------------------------------------------------------


class Side:
    """The processes of one target, started afresh for one timed run."""

    def __init__(self, kind, procs, port, workdir, redis_port=None):
        self.kind = kind
        self.procs = procs
        self.port = port
        self.workdir = workdir
        self.redis_port = redis_port

    def stop(self):
        """Front first (no new work), then the workers, then Redis."""
        rank = {"redis": 2, "notifier": 1, "history-svc": 1, "realtime": 1}
        for p in sorted(self.procs, key=lambda p: rank.get(p.name, 0)):
            p.stop()

    def check_alive(self, what):
        """Raises if a process of the side has exited, with the end of its log."""
        for p in self.procs:
            if not p.alive():
                raise BenchError("%s: %s (pid %d) exited:\n%s" % (what, p.name, p.pid, p.tail()))


def start_redis(ctx, workdir, logdir, template=None, fsync="always"):
    """redis-server as scripts/run-local.sh runs it (AOF, appendfsync always), on a free port, on a copy of the
    seeded data if template is given."""
    data = os.path.join(workdir, "redis")
    if template is not None:
        shutil.copytree(template, data)
    else:
        os.makedirs(data)
    port = free_port()
    p = Proc("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", data, "--appendonly", "yes",
                       "--appendfsync", fsync, "--save", "", "--protected-mode", "yes"], logdir)
    deadline = time.monotonic() + 20
    while True:
        if not p.alive():
            raise BenchError("redis-server exited:\n" + p.tail())
        try:
            if redis_cli(port, "ping") == "PONG":
                break
        except subprocess.CalledProcessError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("redis-server not ready")
        time.sleep(0.05)
    return p, port


def start_ours(ctx, workdir, template, fsync="always", gateway_args=()):
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    procs = []
    try:
        redis, rport = start_redis(ctx, workdir, logdir, template, fsync)
        procs.append(redis)
        port, nport, hport, oport = free_port(), free_port(), free_port(), free_port()
        b = ctx.bin_dir
        rurl = "redis://127.0.0.1:%d" % rport
        procs.append(Proc("gateway", [os.path.join(b, "gateway"), "--listen", "127.0.0.1:%d" % port,
                                      "--notifier-bind", "tcp://127.0.0.1:%d" % nport,
                                      "--history-bind", "tcp://127.0.0.1:%d" % hport,
                                      "--orders-bind", "tcp://127.0.0.1:%d" % oport,
                                      # every load client is 127.0.0.1, up to 1000 connections sending many requests
                                      # a second per token: no limits, so the benchmark measures serving, not refusing
                                      "--max-conns-per-addr", "0", "--rate-limit", "0"] + list(gateway_args), logdir,
                          # auth on, as users run it, unless the caller runs it without (--insecure-no-auth)
                          env={} if "--insecure-no-auth" in gateway_args else {"NOTIGATE_JWT_SECRET": JWT_SECRET}))
        procs.append(Proc("history-svc", [os.path.join(b, "history-svc"), "--gateway", "tcp://127.0.0.1:%d" % hport,
                                          "--redis-url", rurl, "--stream-retention", str(WINDOW_S)], logdir))
        procs.append(Proc("notifier", [os.path.join(b, "notifier"), "--gateway", "tcp://127.0.0.1:%d" % nport,
                                       "--redis-url", rurl, "--realtime-window", str(WINDOW_S)], logdir))
        wait_http(port, "/readyz", procs=procs)
        return Side("ours", procs, port, workdir, rport)
    except BaseException:
        for p in reversed(procs):
            p.stop()
        raise


def start_ceiling(ctx, workdir):
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    port = free_port()
    p = Proc("ceiling", [ctx.ceiling_bin, "--listen", "127.0.0.1:%d" % port, "--threads", str(os.cpu_count()),
                         "--body-file", ctx.ceiling_body], logdir)
    try:
        wait_http(port, "/", procs=[p])
    except BaseException:
        p.stop()
        raise
    return Side("ceiling", [p], port, workdir)


def start_peer(ctx, workdir, kind, nproc):
    """kind "fastapi" or "node": the Node.js realtime service (nproc processes) and the hybrid front (nproc)."""
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    procs = []
    peers = ctx.peers_dir
    try:
        redis, rport = start_redis(ctx, workdir, logdir, ctx.template)
        procs.append(redis)
        rurl = "redis://127.0.0.1:%d" % rport
        rt_port, port = free_port(), free_port()
        node_env = {"NODE_ENV": "production", "REDIS_URL": rurl, "REALTIME_WINDOW": str(WINDOW_S)}
        procs.append(Proc("realtime", ["node", os.path.join(peers, "cluster.js"), str(nproc), "realtime.js"], logdir,
                          env=dict(node_env, PORT=str(rt_port))))
        wait_http(rt_port, "/healthz", procs=procs)
        front_env = {"REDIS_URL": rurl, "REALTIME_URL": "http://127.0.0.1:%d" % rt_port}
        if kind == "fastapi":
            procs.append(Proc("fastapi", [DEBIAN_PYTHON, "-m", "uvicorn", "fastapi_hybrid:app", "--app-dir", peers,
                                          "--host", "127.0.0.1", "--port", str(port), "--workers", str(nproc),
                                          "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                                          "--log-level", "warning", "--backlog", "4096"], logdir, env=front_env))
        else:
            procs.append(Proc("hybrid", ["node", os.path.join(peers, "cluster.js"), str(nproc), "hybrid.js"], logdir,
                              env=dict(node_env, PORT=str(port), **front_env)))
        wait_http(port, "/healthz", procs=procs)
        if nproc > 1:  # every worker up: each answers /healthz only once listening, so wait for the group to fill
            deadline = time.monotonic() + 20
            while len(group_members({procs[-1].pid})) < nproc + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
        return Side("%s-%d" % (kind, nproc), procs, port, workdir, rport)
    except BaseException:
        for p in reversed(procs):
            p.stop()
        raise


# ---- a small asyncio HTTP/1.1 client (seeding and recording: thousands of requests, fast) ---------------------------


class AsyncConn:
    """One keep-alive HTTP/1.1 connection; requests one at a time. Answers must carry Content-Length or be chunked."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None
        self.content_type = ""

    async def request(self, method, path, body=b""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                "Content-Length: %d\r\n\r\n") % (method, path, token_for(method, path), len(body))
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length, chunked, self.content_type = 0, False, ""
        while True:
            line = (await self.reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "content-type":
                self.content_type = value
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = b""
        while True:
            n = int((await self.reader.readline()).split(b";")[0], 16)
            data += await self.reader.readexactly(n + 2)
            if n == 0:
                return status, data[:-2]
            data = data[:-2]

    def close(self):
        if self.writer is not None:
            self.writer.close()


def for_each_user(port, fn, nconns=64):
    """Runs `await fn(conn, i)` for every user i on nconns keep-alive connections; the first error stops it."""

    async def main():
        users = iter(range(1, NUSERS + 1))

        async def worker():
            conn = AsyncConn(port)
            try:
                for i in users:
                    await fn(conn, i)
            finally:
                conn.close()

        await asyncio.gather(*[worker() for _ in range(nconns)])

    asyncio.run(main())


# ---- seeding and the reference answers -------------------------------------------------------------------------------


def seed(ctx):
    """Publishes the data set through notigate's API into a template Redis: per user NHIST notifications, all marked
    read, then NRT more left unread. Ids grow in publish order, so for every user the historical ones are older and
    read, and the realtime ones newer, unread and inside REALTIME_WINDOW (the notifier holds exactly them). Records the
    reference answers of every user, checks them, and keeps the Redis data as the template every run copies."""
    workdir = os.path.join(ctx.out, "seed")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    t0 = time.monotonic()
    side = start_ours(ctx, workdir, None, fsync="no")  # the template's own durability is not under test
    try:
        port = side.port

        async def seed_user(conn, i):
            u = user_name(i)

            async def post(path, body=b"", want=201):
                status, data = await conn.request("POST", path, body)
                if status != want:
                    raise BenchError("seeding %s: POST %s answered %d %s" % (u, path, status, data[:200]))

            for k in range(1, NHIST + 1):
                await post("/v1/notifications", json.dumps({"user_id": u, "kind": "order", "message":
                           "Historical notification %02d for %s: your order has shipped" % (k, u)}).encode())
            await post("/v1/users/%s/notifications/read" % u, want=200)
            for k in range(1, NRT + 1):
                await post("/v1/notifications", json.dumps({"user_id": u, "kind": "message", "message":
                           "Realtime notification %02d for %s: you have a new message" % (k, u)}).encode())

        for_each_user(port, seed_user)
        log("seeded %d users x (%d historical + %d realtime) in %.1f s" % (NUSERS, NHIST, NRT, time.monotonic() - t0))

        # the notifier follows the stream: wait until it holds the last user's realtime ones
        deadline = time.monotonic() + 20
        while True:
            _, _, body = http_req(port, "GET", "/hybrid/notifications?user_id=" + user_name(NUSERS))
            if len(json.loads(body)["realtime"]) == NRT or time.monotonic() > deadline:
                break
            time.sleep(0.1)

        side.check_alive("seeding")
        ref_hybrid, ref_list = {}, {}

        async def record(conn, i):
            u = user_name(i)
            status, body = await conn.request("GET", "/hybrid/notifications?user_id=" + u)
            check_hybrid(u, status, {"content-type": conn.content_type}, body, None)
            ref_hybrid[u] = json.loads(body)
            status, body = await conn.request("GET", "/v1/users/%s/notifications" % u)
            check_list(u, status, {}, body, None)
            ref_list[u] = json.loads(body)

        for_each_user(port, record)
        side.check_alive("seeding")
        ctx.ref_hybrid, ctx.ref_list = ref_hybrid, ref_list
        st, _, body = http_req(port, "GET", "/hybrid/notifications?user_id=" + user_name(1))
        with open(ctx.ceiling_body, "wb") as f:
            f.write(body)
        ctx.body_size = len(body)

        # compact the AOF to one base file and close it cleanly: the template every run copies
        redis_cli(side.redis_port, "bgrewriteaof")
        deadline = time.monotonic() + 30
        while "aof_rewrite_in_progress:1" in redis_cli(side.redis_port, "info", "persistence") or \
                "aof_rewrite_scheduled:1" in redis_cli(side.redis_port, "info", "persistence"):
            if time.monotonic() > deadline:
                raise BenchError("AOF rewrite of the seed did not finish")
            time.sleep(0.1)
    finally:
        side.stop()
    ctx.template = os.path.join(workdir, "redis")
    log("reference answers recorded; hybrid body %d bytes; template %s" % (ctx.body_size, ctx.template))


def _fail(what, u, msg, body):
    raise BenchError("%s for %s: %s; body: %s" % (what, u, msg, body[:300]))


def _check_items(what, u, items, n, read, body):
    if not isinstance(items, list) or len(items) != n:
        _fail(what, u, "expected %d items, got %s" % (n, len(items) if isinstance(items, list) else type(items)), body)
    keys = {"id", "user_id", "message", "kind", "ts", "read"}
    prev = None
    for it in items:
        if not isinstance(it, dict) or set(it) != keys or it["user_id"] != u or it["read"] is not read or \
                not isinstance(it["id"], int) or not isinstance(it["ts"], int):
            _fail(what, u, "bad item %r" % (it,), body)
        if prev is not None and it["id"] >= prev:
            _fail(what, u, "items not newest first", body)
        prev = it["id"]


def check_hybrid(u, status, headers, body, ref):
    """The shape of GET /hybrid/notifications: 200, JSON {"realtime","historical","server"}, 5 unread realtime and 15
    read historical notifications of the user, newest first; and, given the reference, the same two lists."""
    what = "GET /hybrid/notifications"
    if status != 200:
        _fail(what, u, "status %d" % status, body)
    if "application/json" not in headers.get("content-type", ""):
        _fail(what, u, "content-type %r" % headers.get("content-type"), body)
    try:
        doc = json.loads(body)
    except ValueError as e:
        _fail(what, u, "not JSON (%s)" % e, body)
    if not isinstance(doc, dict) or set(doc) != {"realtime", "historical", "server"} or not isinstance(doc["server"], str):
        _fail(what, u, "keys %r" % (sorted(doc) if isinstance(doc, dict) else type(doc)), body)
    _check_items(what, u, doc["realtime"], NRT, False, body)
    _check_items(what, u, doc["historical"], PAGE - NRT, True, body)
    if ref is not None and (doc["realtime"] != ref["realtime"] or doc["historical"] != ref["historical"]):
        _fail(what, u, "lists differ from notigate's reference answer", body)


def check_list(u, status, headers, body, ref):
    what = "GET /v1/users/{id}/notifications"
    if status != 200:
        _fail(what, u, "status %d" % status, body)
    doc = json.loads(body)
    want = {"user_id", "realtime", "historical", "unread_count", "next_before", "partial", "errors"}
    if set(doc) != want or doc["partial"] is not False or doc["errors"] != [] or doc["unread_count"] != NRT:
        _fail(what, u, "unexpected fields", body)
    _check_items(what, u, doc["realtime"], NRT, False, body)
    _check_items(what, u, doc["historical"], PAGE - NRT, True, body)
    if ref is not None and doc != ref:
        _fail(what, u, "differs from the reference answer", body)


def check_target(ctx, target, side):
    """Before timing: the target answers right for a sample of users (bodies compared with the reference)."""
    users = [user_name(1), user_name(NUSERS)] + [user_name(random.randint(2, NUSERS - 1)) for _ in range(SAMPLE_USERS)]
    port = side.port
    if target == "ours-post":
        u = users[-1]
        st, _, body = http_req(port, "POST", "/v1/notifications", json.dumps(
            {"user_id": u, "message": "check", "kind": "bench"}), {"Content-Type": "application/json"})
        doc = json.loads(body) if st == 201 else None
        if doc is None or set(doc) != {"id", "user_id", "ts"} or doc["user_id"] != u:
            raise BenchError("POST /v1/notifications: %d %s" % (st, body[:300]))
        return
    if target == "ours-list":
        for u in users:
            st, hdr, body = http_req(port, "GET", "/v1/users/%s/notifications" % u)
            check_list(u, st, hdr, body, ctx.ref_list[u])
        return
    if target == "ceiling":
        st, hdr, body = http_req(port, "GET", "/hybrid/notifications?user_id=" + user_name(1))
        check_hybrid(user_name(1), st, hdr, body, ctx.ref_hybrid[user_name(1)])
        return
    for u in users:
        st, hdr, body = http_req(port, "GET", "/hybrid/notifications?user_id=" + u)
        check_hybrid(u, st, hdr, body, ctx.ref_hybrid[u])


# ---- the load tools ------------------------------------------------------------------------------------------------


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def mode_of(target):
    return {"ours-list": "list", "ours-post": "post"}.get(target, "hybrid")


def path_of(target, user):
    if target == "ours-list":
        return "/v1/users/%s/notifications" % user
    return "/hybrid/notifications?user_id=%s" % user


def wrk_env(ctx, target, **extra):
    return dict(os.environ, BENCH_MODE=mode_of(target), BENCH_USERS=str(NUSERS), BENCH_TOKENS=ctx.tokens_file, **extra)


def run_wrk(ctx, target, port, conns, duration, workdir):
    env = wrk_env(ctx, target)
    threads = min(2, conns)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--timeout", "10s", "-s", ctx.wrk_lua,
           "http://127.0.0.1:%d" % port]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    m = re.search(r"^BENCH_RESULT (\{.*\})$", out.stdout, re.M)
    if m is None:
        raise BenchError("wrk gave no result:\n%s\n%s" % (out.stdout, out.stderr))
    r = json.loads(m.group(1))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "requests": r["requests"], "p50_ms": r["p50_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "p999_ms": r["p999_us"] / 1e3, "errors": errors,
            "raw": r}


def run_ab(ctx, target, port, conns, duration, workdir):
    """Apache Bench as the articles use it: one URL, a new connection per request (no -k), -c concurrent."""
    gfile = os.path.join(workdir, "ab.tsv")
    url = "http://127.0.0.1:%d%s" % (port, path_of(target, user_name(1)))
    # -t before -n: -t sets -n to 50000, a later -n raises it (ab preallocates -n records: keep it near reach)
    cmd = ["ab", "-q", "-r", "-t", str(duration), "-n", str(60000 * duration), "-c", str(conns), "-g", gfile,
           "-H", "Authorization: Bearer " + token_for("GET", path_of(target, user_name(1))), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    txt = out.stdout
    if out.returncode != 0 or not os.path.exists(gfile):
        raise BenchError("ab failed (exit %d): %s %s" % (out.returncode, out.stderr.strip()[-300:], txt.strip()[-300:]))

    def num(label, default=None):
        m = re.search(r"^%s:\s+([\d.]+)" % re.escape(label), txt, re.M)
        if m is None:
            if default is None:
                raise BenchError("ab output has no %r:\n%s\n%s" % (label, txt, out.stderr))
            return default
        return float(m.group(1))

    complete = int(num("Complete requests"))
    non2xx = int(num("Non-2xx responses", 0))
    # ab's "Failed requests" also counts answers whose length differs from the first one ("Length"): notigate's partial
    # answers are shorter, so those are counted as partial, not as errors
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", txt)
    connect, receive, length, exceptions = (int(g) for g in m.groups()) if m else (0, 0, 0, 0)
    failed = connect + receive + exceptions
    times = []
    with open(gfile) as f:
        next(f, None)
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 5:
                times.append(int(parts[4]))  # ttime, ms
    times.sort()
    return {"rps": num("Requests per second"), "requests": complete, "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
            "p999_ms": pct(times, 99.9), "errors": failed + non2xx,
            "raw": {"connect": connect, "receive": receive, "length": length, "exceptions": exceptions, "non2xx": non2xx}}


def run_h2load(ctx, target, port, conns, duration, workdir):
    """HTTP/2 over cleartext (prior knowledge), one stream at a time per connection, users in a shuffled order."""
    urls = os.path.join(workdir, "urls.txt")
    users = [user_name(i) for i in range(1, NUSERS + 1)]
    random.shuffle(users)
    with open(urls, "w") as f:
        for u in users:
            p = path_of(target, u)  # one header for all URLs: each user's token goes in its URL's query instead
            f.write("http://127.0.0.1:%d%s%stoken=%s\n" % (port, p, "&" if "?" in p else "?", token_for("GET", p)))
    lfile = os.path.join(workdir, "h2load.log")
    cmd = ["h2load", "-t", str(min(2, conns)), "-c", str(conns), "-m", "1", "-D", str(duration), "-i", urls,
           "--log-file", lfile]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    txt = out.stdout
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", txt)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", txt)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", txt)
    if m is None or r is None or s is None:
        raise BenchError("h2load output not understood:\n%s\n%s" % (txt, out.stderr))
    done, failed, errored, timeout = int(r.group(3)), int(r.group(5)), int(r.group(6)), int(r.group(7))
    ok2xx = int(s.group(1))
    times = []
    with open(lfile) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1].startswith("2"):
                times.append(int(parts[2]))  # microseconds
    times.sort()
    return {"rps": float(m.group(3)), "requests": done, "p50_ms": pct(times, 50) / 1e3, "p99_ms": pct(times, 99) / 1e3,
            "p999_ms": pct(times, 99.9) / 1e3, "errors": (done - ok2xx) + errored + timeout,
            "raw": {"done": done, "2xx": ok2xx, "failed": failed, "errored": errored, "timeout": timeout}}


TOOLS = {"wrk": run_wrk, "ab": run_ab, "h2load": run_h2load}


def gateway_counts(port):
    """From the gateway's /metrics: worker calls that failed or timed out, by worker kind (calls cancelled because the
    client went away, the load tool stopping mid-request, are not counted), and partial answers, by route (the same
    counter for every load tool, so no tool has to look into the answers: wrk's Lua response() hook would cost the
    client time that the ceiling's run does not pay)."""
    _, _, body = http_req(port, "GET", "/metrics")
    text = body.decode()
    calls, partial = {}, {}
    for m in re.finditer(r'^notigate_worker_replies_total\{kind="([^"]*)",outcome="([^"]*)"\} (\d+)', text, re.M):
        if m.group(2) not in ("ok", "cancelled"):
            calls[m.group(1)] = calls.get(m.group(1), 0) + int(m.group(3))
    for m in re.finditer(r'^notigate_http_partial_answers_total\{route="([^"]*)",missing="[^"]*"\} (\d+)', text, re.M):
        partial[m.group(1)] = partial.get(m.group(1), 0) + int(m.group(2))
    return calls, partial


# ---- one timed run -------------------------------------------------------------------------------------------------


def start_side(ctx, config, workdir):
    if config in ("ours-list", "ours-hybrid", "ours-post"):
        return start_ours(ctx, workdir, ctx.template)
    if config == "ceiling":
        return start_ceiling(ctx, workdir)
    kind, n = config.rsplit("-", 1)
    return start_peer(ctx, workdir, kind, int(n))


def run_unit(ctx, rnd, tool, conns, config):
    target = config if not config.startswith(("fastapi", "node")) else "peer-hybrid"
    workdir = os.path.join(ctx.out, "runs", "r%d-%s-c%d-%s" % (rnd, tool, conns, config))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    side = start_side(ctx, config, workdir)
    try:
        try:
            check_target(ctx, target, side)
        except BenchError:
            side.check_alive("checking %s" % config)  # a dead process explains a wrong answer best
            raise
        # warm up: the same load for a short while (JITs, pools, connection set-up), not timed
        subprocess.run(["wrk", "-t%d" % min(2, conns), "-c%d" % conns, "-d%ds" % ctx.warmup, "--timeout", "10s",
                        "-s", ctx.wrk_lua, "http://127.0.0.1:%d" % side.port], capture_output=True,
                       env=wrk_env(ctx, target), timeout=ctx.warmup + 60)
        wait_idle(side)  # what the warm-up left queued (servers that go on with requests of closed connections)
        before = gateway_counts(side.port) if side.kind == "ours" else ({}, {})
        sampler = RssSampler(side.procs)
        sampler.start()
        perf = start_perf(ctx, side, workdir) if ctx.perf else None
        try:
            res = TOOLS[tool](ctx, target, side.port, conns, ctx.duration, workdir)
        except (BenchError, subprocess.TimeoutExpired, OSError, ValueError, TypeError) as e:
            # a load tool that gave up (ab does, on socket timeouts) loses this run, not the benchmark
            log("%s on %s c=%d gave no figures: %s" % (tool, config, conns, str(e)[:500]))
            res = {"rps": None, "requests": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "errors": 0,
                   "failed": str(e)[:2000]}
        finally:
            if perf is not None:
                stop_perf(perf)
            peak_kb, per_proc = sampler.finish()
        if side.kind == "ours":
            calls, partial = gateway_counts(side.port)
            res["failed_calls"] = {k: v - before[0].get(k, 0) for k, v in calls.items()}
            if target in ("ours-list", "ours-hybrid"):
                route = "list" if target == "ours-list" else "hybrid"
                res["partial"] = partial.get(route, 0) - before[1].get(route, 0)
        res["rss_mb"] = peak_kb / 1024.0
        res["rss_per_process_mb"] = {k: round(v / 1024.0, 1) for k, v in per_proc.items()}
        if res.get("requests"):
            res["cpu_us_per_request"] = {k: round(v * 1e6 / res["requests"], 1)
                                         for k, v in sampler.cpu_seconds().items() if v > 0}
            if ctx.perf:
                log("CPU per request (us): " + ", ".join("%s %.0f" % (k, v) for k, v in
                                                         sorted(res["cpu_us_per_request"].items())))
        side.check_alive("after the %s run on %s" % (tool, config))
    finally:
        side.stop()
    if not ctx.keep:
        for name in ("redis", "ab.tsv", "h2load.log", "urls.txt"):
            path = os.path.join(workdir, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
    return res


def wait_idle(side, timeout=60.0, window=0.25):
    """Waits until the side's processes together use under ~10% of a core, or timeout."""
    pgids = {p.pid for p in side.procs}
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout

    def total():
        return sum(cpu_ticks(pid) or 0 for pid in group_members(pgids))

    prev = total()
    while time.monotonic() < deadline:
        time.sleep(window)
        cur = total()
        if (cur - prev) / hz < 0.1 * window:
            return
        prev = cur
    log("%s still busy %.0f s after the warm-up; timing anyway" % (side.kind, timeout))


# ---- perf ----------------------------------------------------------------------------------------------------------


def start_perf(ctx, side, workdir):
    """perf record -g on every process of the side (its process groups) for the timed run."""
    members = group_members({p.pid for p in side.procs})
    names = {p.pid: p.name for p in side.procs}
    recs = []
    for pid, (pgid, comm) in sorted(members.items()):
        data = os.path.join(workdir, "perf-%s-%d.data" % (names[pgid], pid))
        proc = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-p", str(pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        recs.append((proc, data))
    time.sleep(0.3)
    return recs


def stop_perf(recs):
    for proc, _ in recs:
        proc.send_signal(signal.SIGINT)
    for proc, data in recs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # self time by thread name and function; then inclusive time (callers' share) by function
        with open(data + ".txt", "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.7",
                            "--sort", "comm,dso,symbol", "-g", "none"], stdout=f, stderr=subprocess.DEVNULL)
        with open(data + ".children.txt", "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--percent-limit", "3",
                            "--sort", "symbol", "-g", "none"], stdout=f, stderr=subprocess.DEVNULL)


# ---- the plan and the table ----------------------------------------------------------------------------------------


def plan(args):
    """(tool, conns, [configs]) in the order every round runs them."""
    ours_get = ["ours-list", "ours-hybrid"]
    peers = [] if args.short else ["fastapi-1", "fastapi-2", "node-1", "node-2"]
    if args.peers_only:
        return [("wrk", c, ["ours-hybrid", "ceiling"] + peers) for c in args.conns]
    if args.perf:
        return [("wrk", c, ours_get) for c in args.conns]
    # --short (CI): ab and h2load at the lowest connection count only, to stay near a minute
    other_conns = args.conns[:1] if args.short else args.conns
    steps = []
    for c in args.conns:
        steps.append(("wrk", c, ours_get + ["ours-post", "ceiling"] + peers))
    for c in other_conns:
        steps.append(("ab", c, ours_get + ["ceiling"] + peers))
    for c in other_conns:
        steps.append(("h2load", c, ours_get + ["ceiling"]))  # the peers do not speak HTTP/2
    return steps


LABELS = {"ours-list": "notigate GET /v1/users/{id}/notifications", "ours-hybrid": "notigate GET /hybrid/notifications",
          "ours-post": "notigate POST /v1/notifications", "ceiling": "ceiling (h2o, constant body)",
          "fastapi": "FastAPI + Node.js realtime", "node": "Node.js hybrid + Node.js realtime"}


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarise(results):
    """results: {(tool, conns, config): [run, ...]} -> rows of medians, peers reduced to their best process count."""
    med = {}
    for key, runs in results.items():
        med[key] = {f: median([r.get(f) for r in runs])
                    for f in ("rps", "p50_ms", "p99_ms", "p999_ms", "errors", "partial", "rss_mb")}
        med[key]["rounds"] = len(runs)
    rows = []
    seen = []
    for (tool, conns, config) in results:
        if (tool, conns) not in seen:
            seen.append((tool, conns))
    for tool, conns in seen:
        group = {cfg: m for (t, c, cfg), m in med.items() if t == tool and c == conns}
        ceiling = group.get("ceiling", {}).get("rps")
        ours = group.get("ours-hybrid", {}).get("rps")
        for cfg in ("ours-list", "ours-hybrid", "ours-post", "ceiling"):
            if cfg in group:
                rows.append(dict(group[cfg], tool=tool, conns=conns, config=cfg, label=LABELS[cfg], ceiling=ceiling,
                                 ours=None))
        for kind in ("fastapi", "node"):
            cands = [(cfg, m) for cfg, m in group.items() if cfg.startswith(kind + "-")]
            if not cands:
                continue
            cfg, m = max(cands, key=lambda cm: cm[1]["rps"] or 0)
            others = ", ".join("%s process(es): %s req/s" % (c.rsplit("-", 1)[1], fmt(mm["rps"], 0))
                               for c, mm in sorted(cands) if c != cfg)
            rows.append(dict(m, tool=tool, conns=conns, config=cfg, ceiling=ceiling, ours=ours, others=others,
                             label="%s (best: %s proc%s)" % (LABELS[kind], cfg.rsplit("-", 1)[1],
                                                            "" if cfg.endswith("-1") else "s")))
    return rows


def fmt(v, nd=1):
    if v is None:
        return "-"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "%.*f" % (nd, v)


def table(rows):
    head = ["tool", "conns", "target", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "partial", "peak RSS MB",
            "req/s / ceiling", "notigate hybrid / this"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        vs_ceiling = "%.2f" % (r["rps"] / r["ceiling"]) if r.get("ceiling") and r["rps"] else "-"
        vs_peer = "%.1fx" % (r["ours"] / r["rps"]) if r.get("ours") and r["rps"] else "-"
        lat_nd = 0 if r["tool"] == "ab" else 2
        lines.append("| " + " | ".join([
            r["tool"], str(r["conns"]), r["label"], fmt(r["rps"], 0), fmt(r["p50_ms"], lat_nd), fmt(r["p99_ms"], lat_nd),
            fmt(r["p999_ms"], lat_nd), fmt(r["errors"], 0),
            fmt(r.get("partial"), 0),
            fmt(r["rss_mb"], 1), vs_ceiling, vs_peer]) + " |")
    return "\n".join(lines)


class Ctx:
    pass


def machine():
    """The machine in a few words: CPU model and count, memory, kernel, the load tools' versions."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = re.sub(r"\s+", " ", line.split(":", 1)[1].strip())
                break
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    return "%d cores (%s), %.0f GiB, Linux %s; load tools on the same cores" % (
        os.cpu_count(), model, mem_gib, os.uname().release)


def ws_bench_messages(short):
    return 4 if short else 6


def run_http(ctx, args, rounds):
    """The HTTP half: seeds, runs every (tool, conns, target) round after round; returns (table, notes, results)."""
    seed(ctx)
    steps = plan(args)
    nunits = sum(len(cfgs) for _, _, cfgs in steps) * rounds
    log("%d round(s), %d timed runs of %d s (+%d s warm-up) each" % (rounds, nunits, ctx.duration, ctx.warmup))
    results = {}
    done = 0
    for rnd in range(1, rounds + 1):
        for tool, conns, configs in steps:
            for config in configs:
                done += 1
                r = run_unit(ctx, rnd, tool, conns, config)
                results.setdefault((tool, conns, config), []).append(r)
                log("[%d/%d] round %d %-6s c=%-4d %-11s %9s req/s  p50 %8s  p99 %8s  p99.9 %8s ms  errors %s  "
                    "partial %s  RSS %s MB" % (done, nunits, rnd, tool, conns, config, fmt(r["rps"], 0),
                                               fmt(r["p50_ms"], 2), fmt(r["p99_ms"], 2), fmt(r["p999_ms"], 2),
                                               fmt(r["errors"], 0), fmt(r.get("partial"), 0), fmt(r["rss_mb"], 1)))

    rows = summarise(results)
    out_table = table(rows)
    notes = [
        "Medians of %d round(s) of %d s per run (after %d s of untimed warm-up), targets interleaved in every round; "
        "every run on freshly started processes and a fresh copy of the same seeded Redis (%d users x %d historical + "
        "%d realtime notifications); GET users picked at random (ab: one URL, user0001, a new connection per request). "
        "Hybrid answer and ceiling body: %d bytes." % (rounds, ctx.duration, ctx.warmup, NUSERS, NHIST, NRT,
                                                        ctx.body_size),
        "errors: non-2xx answers + socket errors + timeouts (wrk's 10 s). partial: notigate's 200 answers that lack a "
        "source because a worker call failed or passed --worker-timeout-ms (250 ms), from the gateway's "
        "notigate_http_partial_answers_total (every tool alike). peak RSS: peak of the summed VmRSS of every process of the side, polled every "
        "0.25 s (notigate: gateway + notifier + history-svc + redis-server; peers: their processes + their "
        "redis-server; ceiling: itself). ab latencies have ab's 1 ms resolution."]
    for (tool, conns, config), runs in results.items():
        failed = [r for r in runs if r.get("failed")]
        if failed:
            notes.append("%s c=%d %s: %d of %d runs gave no figures (%s)." % (tool, conns, config, len(failed), len(runs),
                                                                          failed[0]["failed"].splitlines()[0][:150]))
    for r in rows:
        if r.get("others"):
            notes.append("%s c=%d %s: also measured %s." % (r["tool"], r["conns"], r["label"].split(" (")[0], r["others"]))
    doc = {"rounds": rounds, "duration_s": ctx.duration, "warmup_s": ctx.warmup, "body_size": ctx.body_size,
           "runs": [{"tool": t, "conns": c, "config": cfg, "runs": runs} for (t, c, cfg), runs in results.items()],
           "rows": rows}
    return out_table, notes, doc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="the repository")
    ap.add_argument("--bin-dir", required=True, help="where gateway, notifier and history-svc are")
    ap.add_argument("--ceiling", required=True, help="the ceiling binary")
    ap.add_argument("--out", required=True, help="work and result directory (emptied)")
    ap.add_argument("--short", action="store_true", help="CI smoke run: no peers, 1 round, short runs")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--duration", type=int, default=None, help="seconds per timed run")
    ap.add_argument("--warmup", type=int, default=None, help="seconds of untimed load before each run")
    ap.add_argument("--conns", default="100,1000", help="comma-separated connection counts")
    ap.add_argument("--perf", action="store_true", help="perf record -g notigate's processes during wrk runs")
    ap.add_argument("--peers-only", action="store_true", help="only wrk: notigate hybrid, ceiling and the peers")
    ap.add_argument("--keep", action="store_true", help="keep each run's Redis copy and tool logs")
    ap.add_argument("--parts", default="http,ws", help="which halves to run: http, ws or both (default http,ws)")
    ap.add_argument("--ws-units", default=None,
                    help="only these WebSocket units, comma-separated KIND-TARGET-N (e.g. fanout-ws-10000)")
    args = ap.parse_args()
    args.conns = [int(c) for c in args.conns.split(",")]
    parts = set(args.parts.split(","))
    if not parts or parts - {"http", "ws"}:
        ap.error("--parts takes http, ws or http,ws")
    if args.perf or args.peers_only:
        parts = {"http"}

    ctx = Ctx()
    ctx.root = args.root
    ctx.bin_dir = args.bin_dir
    ctx.ceiling_bin = args.ceiling
    ctx.out = args.out
    ctx.peers_dir = os.path.join(args.root, "bench", "peers")
    ctx.wrk_lua = os.path.join(args.root, "bench", "wrk.lua")
    ctx.ceiling_body = os.path.join(args.out, "ceiling-body.json")
    ctx.tokens_file = os.path.join(args.out, "tokens.txt")
    ctx.bench_build = os.path.dirname(os.path.abspath(args.ceiling))  # ws_load is built beside the ceiling
    ctx.perf = args.perf
    ctx.keep = args.keep
    rounds = args.rounds or (1 if args.short or args.perf else 3)
    ctx.duration = args.duration or (2 if args.short else 10)
    ctx.warmup = args.warmup if args.warmup is not None else (1 if args.short else 2)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    shutil.rmtree(os.path.join(ctx.out, "runs"), ignore_errors=True)
    os.makedirs(ctx.out, exist_ok=True)
    write_tokens_file(ctx.tokens_file)

    t0 = time.monotonic()
    out_table, notes, doc = "", [], {"rounds": rounds}
    if "http" in parts:
        out_table, notes, doc = run_http(ctx, args, rounds)
    if "ws" in parts:
        import ws_bench  # bench/ws_bench.py, beside this file

        ws_table, ws_notes, ws_runs = ws_bench.run(ctx, sys.modules[__name__], args.short, rounds,
                                                     set(args.ws_units.split(",")) if args.ws_units else None)
        out_table = (out_table + "\n\n" if out_table else "") + ws_table
        notes += ["WebSocket: medians of %d round(s), units interleaved in every round, each on freshly started "
                  "processes; load from bench/ws_load (C, epoll; at most 5,000 sessions per process, each process on "
                  "its own 127.0.0.x source address) on the same cores as the servers. Idle: the server process's VmRSS "
                  "with the sessions open and settled minus before, over the sessions (kernel socket memory is not "
                  "RSS). Fan-out: per message, the time from the send to its arrival on every session of the room, "
                  "p50/p99/max over the sessions, median over %d messages (the first, a warm-up, not counted); every "
                  "session got every message exactly once." % (rounds, ws_bench_messages(args.short) - 1)] + ws_notes
        doc["ws"] = ws_runs
    notes.insert(0, "%s; notigate %s; %s." % (time.strftime("%Y-%m-%d"), os.environ.get("BENCH_NOTIGATE_REV", "?"),
                                               machine()))
    print(out_table)
    print()
    for n in notes:
        print("- " + n)
    with open(os.path.join(ctx.out, "table.md"), "w") as f:
        f.write(out_table + "\n\n" + "".join("- " + n + "\n" for n in notes))
    with open(os.path.join(ctx.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, default=str)
    log("done in %.0f s; results in %s" % (time.monotonic() - t0, ctx.out))


def _on_signal(signum, frame):
    raise KeyboardInterrupt  # unwinds through every finally: what was started is stopped


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _on_signal)  # also when started in the background, where SIGINT comes ignored
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        main()
    except BenchError as e:
        log("FAILED: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
