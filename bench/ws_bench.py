"""The WebSocket half of notigate's benchmark: bench/bench.py runs it after the HTTP half (or alone: --parts ws).

Every unit starts its server afresh on loopback, drives it with bench/ws_load (the C load client, one epoll loop per
process, several processes bound to 127.0.0.2, 127.0.0.3, ... so that no source address runs out of ports), checks
that every session opened and got every message exactly once, and stops what it started. Units, in one interleaved
order per round:

  idle      N sessions opened and held (pings answered); the server's RSS (VmRSS) with them open and settled, minus
            its RSS before, over N. notigate native (each session a user of its own), notigate Socket.IO (the user in
            the CONNECT auth), the `ws` server (bench/peers/ws_server.js), the seed's Socket.IO chat (no user: it has
            none).
  fanout    N sessions in one chat room; one of them sends chat messages; for each message and each session, the time
            from the send to the arrival of new_message (the send time travels in the message). notigate native and
            Socket.IO (every session joins the room), the `ws` server (joins a Set), the seed chat (one room: everyone
            connected; only the sender joins).
  notify    N native or Socket.IO sessions of one user; POST /v1/notifications; the time from each POST to its arrival
            on every session.
  publish   one native session; POST /v1/notifications at a steady rate (open loop, keep-alive, several connections);
            the time from each POST to its arrival; lost and duplicated notifications.
"""

import math
import os
import queue
import shutil
import statistics
import subprocess
import threading
import time

TARGETS = {"ours-native": "notigate native WS", "ours-sio": "notigate Socket.IO", "ws": "`ws` server (Node.js)",
           "seed": "seed Socket.IO chat (Node.js)"}
PER_PROCESS = 5000  # sessions per ws_load process (one process may hold 20,000 open files here)


class LoadProc:
    """One ws_load process: stdin for go/stop, stdout lines collected by a thread."""

    def __init__(self, B, name, argv, logdir, secret=None):
        self.name = name
        self.lines = queue.Queue()
        self.errf = open(os.path.join(logdir, name + ".log"), "ab")
        # the gateway's secret, in the environment (ps shows arguments): ws_load makes each session's token with it
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIGATE_JWT_SECRET", "NOTIGATE_JWT_SECRET_FILE")}
        if secret is not None:
            env["NOTIGATE_JWT_SECRET"] = secret
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errf, text=True,
                                      start_new_session=True, env=env)
        self.pid = self.popen.pid
        self.result = None
        self.seen = []
        self.B = B
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix, deadline):
        """The first line starting with prefix (lines before it are kept in seen), or a BenchError at the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.B.BenchError("%s: no %r line in time" % (self.name, prefix))
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise self.B.BenchError("%s exited (status %s) before %r:\n%s" % (
                    self.name, self.popen.wait(), prefix, self.tail()))
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def send(self, line):
        try:
            self.popen.stdin.write(line + "\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def finish(self, timeout=30.0):
        """Asks it to stop and returns its result (a dict)."""
        self.send("stop")
        line = self.wait_for("result ", time.monotonic() + timeout)
        self.result = self.B.json.loads(line[len("result "):])
        self.popen.wait(timeout)
        return self.result

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, 9)
            except ProcessLookupError:
                pass
            self.popen.wait()
        self.errf.close()

    def tail(self, n=10):
        self.errf.flush()
        try:
            with open(self.errf.name, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


# ---- servers -------------------------------------------------------------------------------------------------------


def start_target(ctx, B, target, workdir):
    """(side, pid of the process whose RSS is the server's)."""
    if target.startswith("ours"):
        side = B.start_ours(ctx, workdir, None, gateway_args=ctx.ws_gateway_args)
        return side, next(p.pid for p in side.procs if p.name == "gateway")
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    port = B.free_port()
    env = {"PORT": str(port), "NODE_ENV": "production"}
    script = "ws_server.js" if target == "ws" else "seed_chat.js"
    if target == "ws" and ctx.ws_ping_ms is not None:
        env["PING_INTERVAL_MS"] = str(ctx.ws_ping_ms)
    p = B.Proc(target, ["node", os.path.join(ctx.peers_dir, script)], logdir, env=env)
    try:
        B.wait_http(port, "/healthz", procs=[p])
    except BaseException:
        p.stop()
        raise
    return B.Side(target, [p], port, workdir), p.pid


def secret_for(B, target):
    """The secret ws_load makes its tokens with: notigate's (it runs with auth on, as users run it); the peers check
    no credential, and get none."""
    return B.JWT_SECRET if target.startswith("ours") else None


def proto_of(target):
    return "sio" if target in ("ours-sio", "seed") else "native"


def spread(n, per=PER_PROCESS):
    """Session counts of ceil(n / per) processes, as even as can be."""
    k = max(1, math.ceil(n / per))
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def load_argv(ctx, side, target, sessions, index, first):
    argv = [ctx.ws_load, "--port", str(side.port), "--proto", proto_of(target), "--sessions", str(sessions),
            "--source", "127.0.0.%d" % (2 + index), "--first-index", str(first)]
    return argv


def check_results(what, results, expect_sessions, expect_msgs=0, pings=False):
    """Every session opened, none closed, every message exactly once (and, with pings, the pings were answered)."""
    opened = sum(r["opened"] for r in results)
    bad = []
    if opened != expect_sessions:
        bad.append("%d of %d sessions opened" % (opened, expect_sessions))
    for k in ("failed", "closed", "duplicates", "unexpected", "missing", "error_frames"):
        v = sum(r[k] for r in results)
        if v:
            bad.append("%s=%d" % (k, v))
    if expect_msgs and sum(r["received"] for r in results) != expect_sessions * expect_msgs:
        bad.append("received %d, not %d" % (sum(r["received"] for r in results), expect_sessions * expect_msgs))
    if pings and sum(r["ws_pings"] + r["eio_pings"] for r in results) < expect_sessions:
        bad.append("pings answered %d < sessions %d" % (sum(r["ws_pings"] + r["eio_pings"] for r in results),
                                                       expect_sessions))
    if bad:
        raise ctx_error(what + ": " + ", ".join(bad))


class _Err:
    B = None


def ctx_error(msg):
    return _Err.B.BenchError(msg)


def read_latencies(paths):
    """seq -> [latency ms] from ws_load's --latencies files."""
    by_seq = {}
    for p in paths:
        with open(p) as f:
            for line in f:
                seq, us = line.split()
                by_seq.setdefault(int(seq), []).append(float(us) / 1000.0)
    return by_seq


# ---- units ---------------------------------------------------------------------------------------------------------


def run_idle(ctx, B, rnd, target, n):
    workdir = os.path.join(ctx.out, "runs", "ws-r%d-idle-%d-%s" % (rnd, n, target))
    os.makedirs(workdir)
    side, pid = start_target(ctx, B, target, workdir)
    loads = []
    try:
        B.wait_idle(side)
        time.sleep(0.5)
        rss0 = B.status_kb(pid, "VmRSS")
        first = 0
        for i, k in enumerate(spread(n)):
            argv = load_argv(ctx, side, target, k, i, first) + ["--quiet-ms", "1000"]
            if target == "ours-native" or target == "ws":
                argv += ["--user-prefix", "idle%d_" % rnd]
            elif target == "ours-sio":
                argv += ["--user-prefix", "idle%d_" % rnd, "--auth"]
            loads.append(LoadProc(B, "ws_load-%d" % i, argv, os.path.join(workdir, "logs"), secret_for(B, target)))
            first += k
        t0 = time.monotonic()
        for lp in loads:
            lp.wait_for("ready ", t0 + ctx.ws_setup_timeout)
        open_s = time.monotonic() - t0
        # settled: the server's RSS moved less than 0.5% over the last 2 s (at most 20 s)
        hist = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            hist.append(B.status_kb(pid, "VmRSS"))
            if len(hist) > 4 and abs(hist[-1] - hist[-5]) <= 0.005 * hist[-1]:
                break
            time.sleep(0.5)
        rss1 = hist[-1]
        side_rss = sum(B.status_kb(p, "VmRSS") for p in B.group_members({p.pid for p in side.procs}))
        if ctx.ws_hold_s:
            time.sleep(ctx.ws_hold_s)  # past a few ping intervals (short mode): sessions must still be open
        side.check_alive("idle sessions")
        results = [lp.finish() for lp in loads]
        check_results("idle %s n=%d" % (target, n), results, n, pings=ctx.ws_hold_s > 0)
        return {"kind": "idle", "target": target, "n": n, "rss_before_kb": rss0, "rss_after_kb": rss1,
                "per_session_kib": (rss1 - rss0) / n, "side_rss_kb": side_rss, "open_s": open_s,
                "pings": sum(r["ws_pings"] + r["eio_pings"] for r in results), "results": results}
    finally:
        side.stop()  # first: a server left to see thousands of disconnects may spend minutes on them (the seed chat)
        for lp in loads:
            lp.kill()


def latency_figures(by_seq, n, skip_first=True):
    """Per message: p50, p99, max over the sessions; then the median of each over the messages."""
    seqs = sorted(by_seq)
    if skip_first and len(seqs) > 2:
        seqs = seqs[1:]  # the first message warms up (JITs, first-touch allocations)
    per = []
    for s in seqs:
        v = sorted(by_seq[s])
        per.append({"seq": s, "n": len(v), "p50_ms": B_pct(v, 50), "p99_ms": B_pct(v, 99), "max_ms": v[-1]})
    med = {k: statistics.median([m[k] for m in per]) for k in ("p50_ms", "p99_ms", "max_ms")}
    return med, per


def B_pct(v, p):
    return _Err.B.pct(v, p)


def run_fanout(ctx, B, rnd, target, n):
    workdir = os.path.join(ctx.out, "runs", "ws-r%d-fanout-%d-%s" % (rnd, n, target))
    os.makedirs(workdir)
    side, pid = start_target(ctx, B, target, workdir)
    loads = []
    m = ctx.ws_messages
    interval = 300 if n <= 2000 else 1000
    try:
        B.wait_idle(side)
        first = 0
        lat_files = []
        for i, k in enumerate(spread(n, 5000)):
            lat = os.path.join(workdir, "lat-%d.txt" % i)
            lat_files.append(lat)
            # quiet: notigate's presence list (online_users) goes out at most every 50 ms + 1 ms per 5 members (2 s at
            # 10,000)
            argv = load_argv(ctx, side, target, k, i, first) + [
                "--expect", str(m), "--latencies", lat, "--quiet-ms", "2500" if target.startswith("ours") else "1000",
                "--name-prefix", "m%d_" % rnd, "--connect-inflight", "50"]
            if target == "seed":
                if i == 0:
                    argv += ["--join", "lobby", "--join-count", "1"]  # the seed chat has one room: everyone connected
            else:
                argv += ["--join", "lobby"] + (["--join-ack"] if target == "ours-sio" else [])
            if i == 0:
                argv += ["--send-messages", str(m), "--send-interval-ms", str(interval)]
            loads.append(LoadProc(B, "ws_load-%d" % i, argv, os.path.join(workdir, "logs"), secret_for(B, target)))
            first += k
        t0 = time.monotonic()
        for lp in loads:
            lp.wait_for("ready ", t0 + ctx.ws_fanout_setup_timeout)
        setup_s = time.monotonic() - t0
        B.wait_idle(side)
        for lp in loads:
            lp.send("go")  # process 0 sends; the others only report "complete" once they have everything
        deadline = time.monotonic() + m * interval / 1000.0 + 30
        for lp in loads:
            lp.wait_for("complete", deadline)
        side.check_alive("fan-out")
        results = [lp.finish() for lp in loads]
        check_results("fanout %s n=%d" % (target, n), results, n, m)
        med, per = latency_figures(read_latencies(lat_files), n)
        return dict(med, kind="fanout", target=target, n=n, setup_s=setup_s, messages=per, results=results)
    finally:
        side.stop()  # first: a server left to see thousands of disconnects may spend minutes on them (the seed chat)
        for lp in loads:
            lp.kill()


def run_notify(ctx, B, rnd, target, n):
    """n sessions of one user; m notifications, 2 per second."""
    workdir = os.path.join(ctx.out, "runs", "ws-r%d-notify-%d-%s" % (rnd, n, target))
    os.makedirs(workdir)
    side, pid = start_target(ctx, B, target, workdir)
    m = ctx.ws_messages
    lp = None
    try:
        B.wait_idle(side)
        lat = os.path.join(workdir, "lat.txt")
        user = "fan%d" % rnd
        argv = load_argv(ctx, side, target, n, 0, 0) + [
            "--user", user, "--expect", str(m), "--latencies", lat, "--quiet-ms", "500", "--publish-count", str(m),
            "--publish-rate", "2", "--publish-conns", "1"] + (["--auth"] if target == "ours-sio" else [])
        lp = LoadProc(B, "ws_load-0", argv, os.path.join(workdir, "logs"), secret_for(B, target))
        lp.wait_for("ready ", time.monotonic() + ctx.ws_setup_timeout)
        B.wait_idle(side)
        lp.send("go")
        lp.wait_for("complete", time.monotonic() + m / 2.0 + 30)
        side.check_alive("notification fan-out")
        r = lp.finish()
        check_results("notify %s n=%d" % (target, n), [r], n, m)
        if r["post_ok"] != m:
            raise B.BenchError("notify: %d of %d POSTs answered 201" % (r["post_ok"], m))
        med, per = latency_figures(read_latencies([lat]), n)
        return dict(med, kind="notify", target=target, n=n, messages=per, results=[r])
    finally:
        side.stop()
        if lp is not None:
            lp.kill()


def run_publish(ctx, B, rnd, target, rate, seconds):
    workdir = os.path.join(ctx.out, "runs", "ws-r%d-publish-%d-%s" % (rnd, rate, target))
    os.makedirs(workdir)
    side, pid = start_target(ctx, B, target, workdir)
    count = int(rate * seconds)
    lp = None
    try:
        B.wait_idle(side)
        lat = os.path.join(workdir, "lat.txt")
        argv = load_argv(ctx, side, target, 1, 0, 0) + [
            "--user", "pub%d" % rnd, "--expect", str(count), "--latencies", lat, "--quiet-ms", "300",
            "--publish-count", str(count), "--publish-rate", str(rate), "--publish-conns", "64"]
        lp = LoadProc(B, "ws_load-0", argv, os.path.join(workdir, "logs"), secret_for(B, target))
        lp.wait_for("ready ", time.monotonic() + 60)
        lp.send("go")
        try:
            lp.wait_for("complete", time.monotonic() + seconds + 20)
        except B.BenchError:
            pass  # the result says what is missing
        side.check_alive("publish")
        r = lp.finish()
        v = sorted(x for xs in read_latencies([lat]).values() for x in xs)
        res = {"kind": "publish", "target": target, "n": 1, "rate": rate, "count": count, "received": r["received"],
               "lost": r["missing"], "duplicates": r["duplicates"], "post_ok": r["post_ok"],
               "post_failed": r["post_bad"] + r["post_errors"], "post_p99_ms": r["post_p99_ms"],
               "lag_max_ms": r["publish_lag_max_ms"], "p50_ms": B.pct(v, 50), "p99_ms": B.pct(v, 99),
               "p999_ms": B.pct(v, 99.9), "max_ms": v[-1] if v else None, "results": [r]}
        if r["missing"] or r["duplicates"] or r["unexpected"] or res["post_failed"] or r["closed"]:
            raise B.BenchError("publish: lost %d, duplicated %d, failed POSTs %d, closed %d" % (
                r["missing"], r["duplicates"], res["post_failed"], r["closed"]))
        return res
    finally:
        side.stop()
        if lp is not None:
            lp.kill()


# ---- the plan, the rounds and the tables ---------------------------------------------------------------------------


def plan(short, only=None):
    """[(kind, target, n)] in the order of every round; only: a set of "kind-target-n" names to keep."""
    if short:
        return ([("idle", t, 500) for t in ("ours-native", "ours-sio")] +
                [("fanout", t, 100) for t in ("ours-native", "ours-sio")] +
                [("notify", "ours-native", 100), ("publish", "ours-native", 200)])
    steps = []
    for n in (10000, 19000):
        steps += [("idle", t, n) for t in ("ours-native", "ours-sio", "ws", "seed")]
    for n in (1000, 10000):
        steps += [("fanout", t, n) for t in ("ours-native", "ours-sio", "ws", "seed")]
    for n in (1000, 10000):
        steps += [("notify", t, n) for t in ("ours-native", "ours-sio")]
    steps += [("publish", "ours-native", 1000)]
    return [st for st in steps if only is None or "%s-%s-%d" % st in only]


def run(ctx, B, short, rounds, only=None):
    """Runs the WebSocket units; returns (tables markdown, notes, json-able results)."""
    _Err.B = B
    ctx.ws_load = os.path.join(ctx.bench_build, "ws_load")
    ctx.ws_messages = 4 if short else 6
    ctx.ws_setup_timeout = 120 if short else 300
    # a room's set-up: notigate announces joins one by one only up to --presence-full-max members (then O(N)); the
    # peers announce every join to every member (the seed chat) or nothing (the `ws` server)
    ctx.ws_fanout_setup_timeout = 120 if short else 150
    # short (CI): pings every 500 ms, held 2 s, so that a client that does not answer pings fails the run
    ctx.ws_ping_ms = 500 if short else None
    # 1,000 and 10,000 sessions of one user (notification fan-out) are far over the default --max-sessions-per-user (16).
    # Auth is on (start_ours gives the gateway bench.JWT_SECRET): every session carries a token of its own, which
    # ws_load makes with the same secret (secret_for), and the publisher a publisher's.
    ctx.ws_gateway_args = ["--max-sessions-per-user", "0"]
    if short:
        ctx.ws_gateway_args += ["--ws-ping-interval-ms", "500", "--ws-ping-timeout-ms", "5000"]
    ctx.ws_hold_s = 2.0 if short else 0
    publish_s = 2 if short else 10
    steps = plan(short, only)
    results = {}
    skipped = set()
    total = len(steps) * rounds
    done = 0
    for rnd in range(1, rounds + 1):
        for kind, target, n in steps:
            done += 1
            key = (kind, target, n)
            if key in skipped:
                continue
            t0 = time.monotonic()
            try:
                if kind == "idle":
                    r = run_idle(ctx, B, rnd, target, n)
                    fig = "RSS/session %.2f KiB (%.0f -> %.0f MB), opened in %.1f s" % (
                        r["per_session_kib"], r["rss_before_kb"] / 1024, r["rss_after_kb"] / 1024, r["open_s"])
                elif kind == "fanout":
                    r = run_fanout(ctx, B, rnd, target, n)
                    fig = "p50 %.2f  p99 %.2f  max %.2f ms (set-up %.1f s)" % (r["p50_ms"], r["p99_ms"], r["max_ms"],
                                                                           r["setup_s"])
                elif kind == "notify":
                    r = run_notify(ctx, B, rnd, target, n)
                    fig = "p50 %.2f  p99 %.2f  max %.2f ms" % (r["p50_ms"], r["p99_ms"], r["max_ms"])
                else:
                    r = run_publish(ctx, B, rnd, target, n, publish_s)
                    fig = "p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms, lost %d, dup %d" % (
                        r["p50_ms"], r["p99_ms"], r["p999_ms"], r["max_ms"], r["lost"], r["duplicates"])
            except B.BenchError as e:
                r = {"kind": kind, "target": target, "n": n, "failed": str(e)[:2000]}
                fig = "FAILED: %s" % str(e).splitlines()[0][:300]
                if kind == "fanout" and "no 'ready ' line in time" in str(e):
                    skipped.add(key)  # its set-up did not finish: later rounds would spend the same time for nothing
                    fig += " (not repeated in later rounds)"
            r["round"] = rnd
            r["wall_s"] = time.monotonic() - t0
            results.setdefault(key, []).append(r)
            B.log("[ws %d/%d] round %d %-7s %-12s n=%-6d %s (%.0f s)" % (done, total, rnd, kind, target, n, fig,
                                                                         r["wall_s"]))
    return summarise(results, short)


def med(runs, k):
    vals = [r[k] for r in runs if r.get(k) is not None and not r.get("failed")]
    return statistics.median(vals) if vals else None


def summarise(results, short):
    f = _Err.B.fmt
    lines = []
    notes = []
    # idle
    lines += ["| sessions | server | RSS before MB | RSS with the sessions MB | RSS per session KiB | opened in s |",
              "|---:|---|---:|---:|---:|---:|"]
    for (kind, target, n), runs in results.items():
        if kind != "idle":
            continue
        lines.append("| {:,} | {} | {} | {} | {} | {} |".format(
            n, TARGETS[target], f(_kb_mb(med(runs, "rss_before_kb"))), f(_kb_mb(med(runs, "rss_after_kb"))),
            f(med(runs, "per_session_kib"), 2), f(med(runs, "open_s"), 1)))
    lines += ["", "| test | sessions | server | p50 ms | p99 ms | max ms (all had it) | max / `ws` max |",
              "|---|---:|---|---:|---:|---:|---:|"]
    for (kind, target, n), runs in results.items():
        if kind not in ("fanout", "notify"):
            continue
        ws = results.get((kind, "ws", n))
        ratio = "-"
        if ws is not None and target != "ws" and med(ws, "max_ms") and med(runs, "max_ms") is not None:
            ratio = "%.2f" % (med(runs, "max_ms") / med(ws, "max_ms"))
        label = "chat message to a room" if kind == "fanout" else "notification to one user's sessions"
        lines.append("| {} | {:,} | {} | {} | {} | {} | {} |".format(
            label, n, TARGETS[target], f(med(runs, "p50_ms"), 2), f(med(runs, "p99_ms"), 2), f(med(runs, "max_ms"), 2),
            ratio))
    lines += ["", "| test | server | p50 ms | p99 ms | p99.9 ms | max ms | lost | duplicated | POST p99 ms |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (kind, target, n), runs in results.items():
        if kind != "publish":
            continue
        lines.append("| publish to delivery, {:,}/s | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            n, TARGETS[target], f(med(runs, "p50_ms"), 2), f(med(runs, "p99_ms"), 2), f(med(runs, "p999_ms"), 2),
            f(med(runs, "max_ms"), 2), f(med(runs, "lost"), 0), f(med(runs, "duplicates"), 0),
            f(med(runs, "post_p99_ms"), 2)))
    for (kind, target, n), runs in results.items():
        failed = [r for r in runs if r.get("failed")]
        if failed:
            notes.append("%s %s n=%d: %d of %d runs gave no figures (%s)." % (
                kind, target, n, len(failed), len(runs), failed[0]["failed"].splitlines()[0][:200]))
    for (kind, target, n), runs in results.items():
        if kind == "fanout" and med(runs, "setup_s") is not None:
            notes.append("fan-out %s n=%d: opening and joining the room took %.1f s (median)." % (
                target, n, med(runs, "setup_s")))
    return "\n".join(lines), notes, [{"kind": k, "target": t, "n": n, "runs": runs}
                                     for (k, t, n), runs in results.items()]


def _kb_mb(v):
    return None if v is None else v / 1024.0
