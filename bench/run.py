#!/usr/bin/env python3
"""hookwarden side by side with its null receiver, adnanh/webhook, an Express receiver and nginx.

Run through bench/run.sh, which installs what is missing and builds the `dist` binaries.
Everything runs on loopback on this machine; each system is started fresh for each
measurement, systems take turns within a round, and a figure is the median over the
rounds with the spread (min-max) next to it.

Measured (BENCHMARKS.md says what each figure means):
  1. durable event-hook acks, 64 connections, HTTPS and plain HTTP, all five systems:
     throughput, p50/p99, non-2xx and socket errors, start-to-ready time, RSS after
     start, after a warm-up and idle, and at its peak (VmHWM) under load. The null
     receiver (examples/null_receiver.rs) is hookwarden's own listener, guard and
     envelope parse with a store that keeps nothing: the limit of the stack;
  1b. the same over HTTPS below the maximum, at half of this run's webhook maximum: each
     connection pauses between an answer and its next request, all five systems: p50/p99;
  1c. hookwarden's RSS at 1,000 concurrent connections, with the default connection cap
     and with server.max_connections = 256;
  2. hookwarden's throughput/latency as concurrency grows (1, 8, 64, 256 connections);
  3. hookwarden's acks with about a million events already stored vs an empty store;
  4. inline token hooks (rules, script): latency at a fixed 1,000 requests/s and the
     maximum throughput (oha);
  5. the same acks on the PostgreSQL store, one replica (a PostgreSQL started here);
  6. the README's first command from cold: `cargo build --release` of the binary in an
     empty target folder (the crates already downloaded), and the `dist` build.

Environment: QUICK=1 (short runs while developing), ROUNDS, DURATION (seconds per
measurement), RATE_DURATION (seconds of the fixed-rate inline runs, 30 by default), PHASES
(a comma-separated subset of acks,paced,conns,curve,store,inline,pg,build), SYSTEMS (a
subset of hookwarden,null,webhook,express,nginx), PACE_MS (a
fixed pause instead of half of webhook's maximum), PREFILL
(events in the full store), PREFILL_DIR (kept between runs so that
the million events are written once), OUT (folder for results.json and results.md).
"""

import datetime
import glob
import json
import os
import resource
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK") == "1"
ROUNDS = int(os.environ.get("ROUNDS", "1" if QUICK else "3"))
DURATION = int(os.environ.get("DURATION", "3" if QUICK else "10"))
# The fixed-rate inline runs are longer: oha opens its 64 connections at the start, and
# those TLS handshakes (about 100 ms in all) delay the first requests. In 10,000 requests
# they land near the 99th percentile and make it swing between rounds (1 to 11 ms in the
# same run); in 30,000 they stay in the 99.9th, and the p99 is the steady state's.
RATE_DURATION = int(os.environ.get("RATE_DURATION", "3" if QUICK else "30"))
WARMUP = 1 if QUICK else 2
IDLE = 1 if QUICK else 2
PREFILL = int(os.environ.get("PREFILL", "100000" if QUICK else "1000000"))
PREFILL_DIR = os.environ.get("PREFILL_DIR", f"/tmp/hookwarden-bench-store-{PREFILL}-v5")
OUT = os.environ.get("OUT", "/tmp/hookwarden-bench-results")
# Parts to run (all by default): acks, paced, curve, store, inline.
PHASES = os.environ.get("PHASES", "acks,paced,conns,curve,store,inline,pg,build").split(",")
# The paced runs: each of the 64 connections pauses between an answer and its next request
# (bench/okta-delivery-paced.lua) so that together they offer half of the most webhook
# answered in this run's acks phase (HTTPS): the ack latency under a load that every
# system keeps up with, rather than at the maximum, where 64 connections queue. PACE_MS
# sets a fixed pause instead (and is the pause when the acks phase did not run).
PACE_MS = int(os.environ["PACE_MS"]) if "PACE_MS" in os.environ else None
# The many-connections run: this many connections at once, each sending as fast as it can.
MANY = 1000
PG_PORT = int(os.environ.get("PGPORT", "55432"))
BOUNCER_PORT = int(os.environ.get("BOUNCER_PORT", "56432"))
CONNS = 64
CURVE = [1, 8, 64, 256]
AUTH = "Basic b2t0YTpjaGFuZ2UtbWUtYmVmb3JlLXByb2R1Y3Rpb24="  # config/hookwarden.toml's
INLINE_AUTH = "Basic b2t0YTpiZW5jaC1wYXNzd29yZC0wMTIz"  # bench/inline.toml's (okta:bench-password-0123)
HOOK_PATH = "/hooks/okta/events"
# HOOKWARDEN_BIN: another build of hookwarden to measure (an allocator tried both ways).
HW = os.environ.get("HOOKWARDEN_BIN", os.path.join(ROOT, "target/dist/hookwarden"))
NULL_BIN = os.path.join(ROOT, "target/dist/examples/null_receiver")
PREFILL_BIN = os.path.join(ROOT, "target/dist/examples/prefill")
# SYSTEMS=hookwarden,null (say) runs a subset; hookwarden is always first.
SYSTEMS = [s for s in ["hookwarden", "null", "webhook", "express", "nginx"]
           if s in os.environ.get("SYSTEMS", "hookwarden,null,webhook,express,nginx").split(",")
           or s == "hookwarden"]
OTHERS = SYSTEMS[1:]
PORTS = {"hookwarden": 47443, "webhook": 47444, "express": 47445, "nginx": 47446,
         "null": 47447}
ADMIN_PORT = 47090

WORK = tempfile.mkdtemp(prefix="hookwarden-bench.", dir="/tmp")
_tag = [0]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------


def tree(pid):
    """The pid and its descendants (nginx: master and workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid, field="VmRSS"):
    """Sum over the process tree, in MB (VmHWM summed: an upper bound for nginx's workers)."""
    return sum(status_kb(p, field) for p in tree(pid)) / 1024


def ensure_free(*ports):
    """A port already taken would have the probes talk to someone else's server."""
    for port in ports:
        if port_open(port)():
            raise RuntimeError(f"127.0.0.1:{port} is already in use: stop what listens there "
                               "(ss -ltnp) or change PORTS in bench/run.py")


class Proc:
    def __init__(self, name, argv, cwd, env=None, logfile=None):
        self.name = name
        self.log = logfile or os.path.join(WORK, f"{name}.log")
        out = open(self.log, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.p = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        out.close()

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout}s: SIGKILL")
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        # Children left behind in the group (none expected): end them.
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_ready(proc, probe, timeout=30.0):
    """Polls `probe` every millisecond; returns ms from spawn to the first success."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
        if probe():
            return (time.monotonic() - proc.started) * 1000
        time.sleep(0.001)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")


def port_open(port):
    def probe():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    return probe


def readyz(port):
    def probe():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=0.5) as r:
                return r.status == 200
        except OSError:
            return False
    return probe


# --- the systems -----------------------------------------------------------------------


def hookwarden_env(data_dir, tls, port=PORTS["hookwarden"], extra=None):
    env = {
        "HOOKWARDEN__SERVER__DATA_DIR": data_dir,
        "HOOKWARDEN__SERVER__LISTEN": f"127.0.0.1:{port}",
        "HOOKWARDEN__ADMIN__LISTEN": f"127.0.0.1:{ADMIN_PORT}",
        # ready_ms is logged at info by hookwarden::app; everything else at warn.
        "HOOKWARDEN__LOG__LEVEL": "warn,rustls=error,hookwarden::app=info",
        "HOOKWARDEN__LOG__FORMAT": "json",
    }
    if tls:
        env["HOOKWARDEN__SERVER__TLS__CERT"] = CERT
        env["HOOKWARDEN__SERVER__TLS__KEY"] = KEY
    else:
        env["HOOKWARDEN__SERVER__TLS__ENABLED"] = "false"
    env.update(extra or {})
    return env


def start_hookwarden(tls, data_dir=None, config=None, name="hookwarden", env=None):
    """config/hookwarden.toml (Basic auth, SQLite store, the JSONL sink `archive` draining)."""
    ensure_free(PORTS["hookwarden"], ADMIN_PORT)
    run_dir = data_dir or tempfile.mkdtemp(prefix="hw.", dir=WORK)
    if config is None:
        # A copy of the example in the run's folder: its relative paths are the file's
        # (../data/events.jsonl), so the JSONL sink lands in the run's data/ folder.
        os.makedirs(os.path.join(run_dir, "config"), exist_ok=True)
        os.makedirs(os.path.join(run_dir, "data"), exist_ok=True)
        shutil.copy(os.path.join(ROOT, "config/hookwarden.toml"), os.path.join(run_dir, "config"))
        config = os.path.join(run_dir, "config/hookwarden.toml")
    proc = Proc(
        name,
        [HW, "serve", "--config", config],
        cwd=run_dir,
        env=hookwarden_env(run_dir if data_dir is None else data_dir, tls, extra=env),
        logfile=os.path.join(WORK, f"{name}-{time.time_ns()}.log"),
    )
    proc.data_dir = None if data_dir else run_dir
    ready = wait_ready(proc, readyz(ADMIN_PORT))
    proc.ready_ms = ready
    proc.self_ready_ms = None
    for _ in range(200):  # the line is written just before serving; give it a moment
        m = re.search(r'"ready_ms":(\d+)', proc.tail(200))
        if m:
            proc.self_ready_ms = int(m.group(1))
            break
        time.sleep(0.005)
    return proc


def start_null(tls):
    """The null receiver: hookwarden's listener, guard and parse, storing nothing; the same
    configuration file and overrides as hookwarden's runs."""
    ensure_free(PORTS["null"])
    run_dir = tempfile.mkdtemp(prefix="null.", dir=WORK)
    proc = Proc("null", [NULL_BIN, os.path.join(ROOT, "config/hookwarden.toml")], cwd=run_dir,
                env=hookwarden_env(run_dir, tls, port=PORTS["null"]))
    proc.data_dir = run_dir
    proc.ready_ms = wait_ready(proc, port_open(PORTS["null"]))
    return proc


def start_webhook(tls):
    ensure_free(PORTS["webhook"])
    argv = ["webhook", "-hooks", os.path.join(ROOT, "bench/receivers/hooks.json"),
            "-ip", "127.0.0.1", "-port", str(PORTS["webhook"])]
    if tls:
        argv += ["-secure", "-cert", CERT, "-key", KEY]
    proc = Proc("webhook", argv, cwd=WORK)
    proc.ready_ms = wait_ready(proc, port_open(PORTS["webhook"]))
    return proc


def start_express(tls):
    ensure_free(PORTS["express"])
    env = {"PORT": str(PORTS["express"]), "NODE_ENV": "production"}
    if tls:
        env.update(TLS_CERT=CERT, TLS_KEY=KEY)
    proc = Proc("express", ["node", os.path.join(ROOT, "bench/receivers/express-receiver.js")],
                cwd=os.path.join(ROOT, "bench/receivers"), env=env)
    proc.ready_ms = wait_ready(proc, port_open(PORTS["express"]))
    return proc


def start_nginx(tls):
    ensure_free(PORTS["nginx"])
    prefix = tempfile.mkdtemp(prefix="nginx.", dir=WORK)
    with open(os.path.join(ROOT, "bench/receivers/nginx.conf")) as f:
        conf = f.read()
    tls_lines = (f"ssl_certificate {CERT}; ssl_certificate_key {KEY}; "
                 "ssl_protocols TLSv1.2 TLSv1.3;")
    conf = (conf.replace("@@PREFIX@@", prefix).replace("@@PORT@@", str(PORTS["nginx"]))
            .replace("@@SSL@@", "ssl" if tls else "").replace("@@TLS@@", tls_lines if tls else ""))
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    proc = Proc("nginx", ["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"),
                          "-e", "stderr"], cwd=prefix)
    proc.ready_ms = wait_ready(proc, port_open(PORTS["nginx"]))
    return proc


STARTERS = {"hookwarden": start_hookwarden, "null": start_null, "webhook": start_webhook,
            "express": start_express, "nginx": start_nginx}


def stop(proc):
    proc.stop()
    if getattr(proc, "data_dir", None):
        shutil.rmtree(proc.data_dir, ignore_errors=True)


# --- load generators -------------------------------------------------------------------


def to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        raise ValueError(f"unexpected wrk latency {v!r}")
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url, conns, seconds, pace_ms=None):
    _tag[0] += 1
    threads = 1 if conns < 2 else 2
    script = "bench/okta-delivery-paced.lua" if pace_ms else "bench/okta-delivery-quiet.lua"
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url]
    env = dict(os.environ, HOOKWARDEN_BENCH_AUTH=AUTH, HOOKWARDEN_BENCH_TAG=str(_tag[0] % 4096),
               HOOKWARDEN_BENCH_DELAY_MS=str(pace_ms or 0))
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=seconds + 60)
    text = out.stdout
    if out.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed ({out.returncode}): {text}\n{out.stderr}")
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
         "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
         "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
         "requests": int(re.search(r"(\d+) requests in", text).group(1))}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["errors"] = sum(int(x) for x in errs.groups()) if errs else 0
    return r


def oha(url, seconds, rate=None):
    argv = ["oha", "--no-tui", "--insecure", "--output-format", "json", "-m", "POST",
            "-H", f"Authorization: {INLINE_AUTH}", "-H", "Content-Type: application/json",
            "-D", os.path.join(ROOT, "tests/fixtures/okta/token-hook-request.json"),
            "-z", f"{seconds}s", "-c", str(CONNS)]
    if rate:
        argv += ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(argv + [url], cwd=ROOT, capture_output=True, text=True,
                         timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    j = json.loads(out.stdout)
    codes = j.get("statusCodeDistribution", {})
    pct = j["latencyPercentiles"]
    return {"rps": j["summary"]["requestsPerSec"], "p50": pct["p50"] * 1000,
            "p99": pct["p99"] * 1000, "p999": pct.get("p99.9", 0) * 1000,
            "non2xx": sum(n for c, n in codes.items() if not c.startswith("2")),
            # Requests still in flight when -z ends are counted as "aborted due to
            # deadline": the end of the run, not a failure of the server.
            "errors": sum(n for e, n in j.get("errorDistribution", {}).items()
                          if "deadline" not in e),
            "error_kinds": j.get("errorDistribution", {})}


def url(system, tls):
    return f"{'https' if tls else 'http'}://127.0.0.1:{PORTS[system]}{HOOK_PATH}"


class PeakRss(threading.Thread):
    """Samples the tree's RSS every 50 ms while the load runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def measure(proc, target, conns, pace_ms=None):
    """Warm-up, idle, then the measured load; memory read around it."""
    # Nothing written by an earlier step (a stopped system's data folder, the prefill's
    # gigabytes, the build) may still be on its way to the disk: hookwarden is the one
    # system here that syncs, so that write-back would land in its figures alone (seen:
    # a 3 GB write-back in the background took its p99 from 12 to 36 ms).
    os.sync()
    m = {"ready_ms": proc.ready_ms, "rss_start": rss_mb(proc.pid)}
    if getattr(proc, "self_ready_ms", None) is not None:
        m["self_ready_ms"] = proc.self_ready_ms
    wrk(target, conns, WARMUP)
    time.sleep(IDLE)
    m["rss_idle"] = rss_mb(proc.pid)
    sampler = PeakRss(proc.pid)
    sampler.start()
    m.update(wrk(target, conns, DURATION, pace_ms))
    m["rss_peak_sampled"] = sampler.stop()
    m["rss_hwm"] = rss_mb(proc.pid, "VmHWM")
    if not proc.alive():
        raise RuntimeError(f"{proc.name} died under load:\n{proc.tail()}")
    return m


# --- the rounds ------------------------------------------------------------------------

RESULTS = {}  # key -> list of per-round dicts


def record(key, value):
    RESULTS.setdefault(key, []).append(value)
    extra = f" non2xx={value.get('non2xx', 0)} errors={value.get('errors', 0)}"
    log(f"  {key}: {value.get('rps', 0):,.0f}/s p50={value.get('p50', 0):.2f}ms "
        f"p99={value.get('p99', 0):.2f}ms" + extra)


def event_acks(rnd):
    order = SYSTEMS[rnd % len(SYSTEMS):] + SYSTEMS[:rnd % len(SYSTEMS)]
    for tls in (True, False):
        for system in order:
            proc = STARTERS[system](tls)
            try:
                record(f"acks/{system}/{'https' if tls else 'http'}",
                       measure(proc, url(system, tls), CONNS))
            finally:
                stop(proc)


def pace():
    """(pause ms per connection, offered rate or None): half of webhook's median HTTPS
    maximum so far in this run. A connection sends one request per pause plus what each
    cycle costs besides (the answer's latency, wrk's timer); that cost is measured in a
    short calibration run against the null receiver (or nginx) at the first guess."""
    webhook_max = med("acks/webhook/https", "rps")
    if PACE_MS is not None or not webhook_max:
        return (PACE_MS if PACE_MS is not None else 10), None
    offered = webhook_max / 2
    cycle = CONNS * 1000 / offered  # ms between two requests of one connection
    guess = max(1, round(cycle - 1))
    probe = "null" if "null" in SYSTEMS else "nginx" if "nginx" in SYSTEMS else "hookwarden"
    proc = STARTERS[probe](True)
    try:
        got = wrk(url(probe, True), CONNS, 3, guess)["rps"]
    finally:
        stop(proc)
    overhead = max(0.0, CONNS * 1000 / got - guess)
    return max(0, round(cycle - overhead)), offered


def paced(rnd):
    order = SYSTEMS[rnd % len(SYSTEMS):] + SYSTEMS[:rnd % len(SYSTEMS)]
    pause, offered = pace()
    RESULTS.setdefault("paced/pace", []).append({"pause_ms": pause, "offered": offered or 0})
    log(f"  paced: {pause} ms pause per connection"
        + (f" (half of webhook's {2 * offered:,.0f}/s)" if offered else ""))
    for system in order:
        proc = STARTERS[system](True)
        try:
            record(f"paced/{system}", measure(proc, url(system, True), CONNS, pause))
        finally:
            stop(proc)


def many_connections(rnd):
    """RSS with MANY connections at once: the default cap (server.max_connections = 1024
    takes them all) and a cap of 256 (the rest wait in the kernel's accept queue)."""
    for cap in (None, 256):
        proc = start_hookwarden(True, env={"HOOKWARDEN__SERVER__MAX_CONNECTIONS": str(cap)}
                                if cap else None)
        try:
            record(f"conns/{cap or 'default'}", measure(proc, url("hookwarden", True), MANY))
        finally:
            stop(proc)


def curve(rnd):
    for conns in CURVE:
        if conns == CONNS:
            continue  # the event_acks run of the round
        proc = start_hookwarden(True)
        try:
            record(f"curve/hookwarden/{conns}", measure(proc, url("hookwarden", True), conns))
        finally:
            stop(proc)
    proc = start_nginx(True)
    try:
        record("curve/nginx/256", measure(proc, url("nginx", True), 256))
    finally:
        stop(proc)


def prefill():
    """Brings PREFILL_DIR to PREFILL stored events, all delivered (see examples/prefill.rs)."""
    db = os.path.join(PREFILL_DIR, "hookwarden.db")
    if os.path.exists(db):
        with sqlite3.connect(db) as c:
            held = c.execute("SELECT count(*) FROM events").fetchone()[0]
        if held > PREFILL * 1.3:  # earlier harness runs added their load to it: start over
            shutil.rmtree(PREFILL_DIR)
    started = time.monotonic()
    out = subprocess.run([PREFILL_BIN, PREFILL_DIR, str(PREFILL)], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"prefill failed: {out.stdout}{out.stderr}")
    secs = time.monotonic() - started
    log(f"  prefill: {out.stdout.strip()} ({secs:.1f} s in all)")
    return {"seconds": secs, "output": out.stdout.strip()}


def store_size(rnd):
    """Same load on an empty store and on PREFILL_DIR, back to back."""
    for full in (False, True):
        if full:
            RESULTS.setdefault("prefill", []).append(prefill())
            # The previous round's sink output: the empty store's run starts without one too.
            shutil.rmtree(os.path.join(PREFILL_DIR, "data"), ignore_errors=True)
            proc = start_hookwarden(True, data_dir=PREFILL_DIR, name="hookwarden-full")
        else:
            proc = start_hookwarden(True)
        try:
            record(f"store/{'full' if full else 'empty'}", measure(proc, url("hookwarden", True), CONNS))
        finally:
            stop(proc)


def inline(rnd):
    data = tempfile.mkdtemp(prefix="inline.", dir=WORK)
    os.sync()  # as in measure()
    proc = start_hookwarden(True, data_dir=data, config=os.path.join(ROOT, "bench/inline.toml"),
                            name="hookwarden-inline")
    try:
        base = f"https://127.0.0.1:{PORTS['hookwarden']}/hooks/okta"
        for handler in ("rules", "script"):
            oha(f"{base}/token-{handler}", WARMUP)
            record(f"inline/{handler}/1000",
                   oha(f"{base}/token-{handler}", RATE_DURATION, rate=1000))
            record(f"inline/{handler}/max", oha(f"{base}/token-{handler}", DURATION))
        RESULTS.setdefault("inline/rss_hwm", []).append({"rss_hwm": rss_mb(proc.pid, "VmHWM")})
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [
        int(x) if x.isdigit() else 0 for x in p.split("/")[-2].split(".")])
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian's postgresql package)")
    return found[-1]


def as_postgres(argv):
    """PostgreSQL refuses to run as root: its commands run as the postgres user when we are root."""
    return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv


def postgres(rnd):
    """The same acks on the PostgreSQL store, one replica, against a PostgreSQL started
    here (fsync on, default synchronous_commit, ssl on with a certificate made here) on the
    same cores: over plain TCP, over TLS (`tls = "require"`: the same encryption as
    verify-full, whose extra checks happen once per connection), and through PgBouncer
    (Debian's, pool_mode = transaction) with `transaction_pooling = true`."""
    ensure_free(PG_PORT, BOUNCER_PORT)
    bindir, data = pg_bin(), tempfile.mkdtemp(prefix="pg.", dir=WORK)
    if os.geteuid() == 0:
        os.chmod(WORK, 0o711)  # the postgres user must reach its folder inside
        shutil.chown(data, "postgres")
    subprocess.run(as_postgres([f"{bindir}/initdb", "-D", f"{data}/db", "-U", "postgres",
                                "--auth=trust"]), check=True, capture_output=True)
    subprocess.run(as_postgres(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                                "/CN=localhost", "-keyout", f"{data}/server.key", "-out",
                                f"{data}/server.crt"]), check=True, capture_output=True)
    subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", f"{data}/db", "-l", f"{data}/log", "-w",
                                "-o", f"-p {PG_PORT} -k {data} -c listen_addresses=127.0.0.1 "
                                f"-c ssl=on -c ssl_cert_file={data}/server.crt "
                                f"-c ssl_key_file={data}/server.key", "start"]),
                   check=True, capture_output=True)
    bouncer = None
    try:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-qc",
                        "CREATE DATABASE hookwarden"], check=True, capture_output=True)
        with open(f"{data}/pgbouncer.ini", "w") as f:
            f.write(f"[databases]\n* = host=127.0.0.1 port={PG_PORT}\n[pgbouncer]\n"
                    f"listen_addr = 127.0.0.1\nlisten_port = {BOUNCER_PORT}\nunix_socket_dir =\n"
                    f"auth_type = trust\nauth_file = {data}/users.txt\npool_mode = transaction\n"
                    f"max_client_conn = 200\ndefault_pool_size = 16\nlogfile = {data}/pgbouncer.log\n")
        with open(f"{data}/users.txt", "w") as f:
            f.write('"postgres" ""\n')
        if os.geteuid() == 0:
            for name in ("pgbouncer.ini", "users.txt"):
                shutil.chown(f"{data}/{name}", "postgres")
        bouncer = subprocess.Popen(as_postgres(["/usr/sbin/pgbouncer", f"{data}/pgbouncer.ini"]),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if port_open(BOUNCER_PORT)():
                break
            time.sleep(0.05)
        direct = f"postgres://postgres@127.0.0.1:{PG_PORT}/hookwarden"
        setups = (
            ("pg/hookwarden", {"HOOKWARDEN__STORE__POSTGRES__URL": direct}),
            ("pg-tls/hookwarden", {"HOOKWARDEN__STORE__POSTGRES__URL": direct,
                                   "HOOKWARDEN__STORE__POSTGRES__TLS": "require"}),
            ("pg-bouncer/hookwarden", {
                "HOOKWARDEN__STORE__POSTGRES__URL":
                    f"postgres://postgres@127.0.0.1:{BOUNCER_PORT}/hookwarden",
                "HOOKWARDEN__STORE__POSTGRES__TRANSACTION_POOLING": "true"}),
        )
        def commits():
            out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
                                  "-tAc", "SELECT xact_commit FROM pg_stat_database "
                                  "WHERE datname = 'hookwarden'"], capture_output=True, text=True)
            return int(out.stdout.strip() or 0)
        for key, env in setups:
            proc = start_hookwarden(True, name=key.split("/")[0],
                                    env=dict(env, HOOKWARDEN__STORE__BACKEND="postgres"))
            try:
                before = commits()
                m = measure(proc, url("hookwarden", True), CONNS)
                # Transactions per acknowledged delivery over warm-up and load (the worker's
                # included): what each ack costs the database in commits, each a WAL flush.
                m["commits_per_ack"] = (commits() - before) / max(1, m["requests"])
                record(key, m)
            finally:
                stop(proc)
    finally:
        if bouncer is not None:
            bouncer.terminate()
            bouncer.wait()
        subprocess.run(as_postgres([f"{bindir}/pg_ctl", "-D", f"{data}/db", "-m", "immediate",
                                    "stop"]), capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def build_times(rnd):
    """The README's first command from cold (`cargo run --release` builds the binary), and
    the dist build, each in an empty target folder; once per run, not per round. The crates
    are already downloaded (run.sh built the binaries): this is the compile, as on a
    machine whose cargo cache is warm and whose clone is fresh."""
    if rnd:
        return
    for profile, flags in (("release", ["--release"]), ("dist", ["--profile", "dist", "--features", "jemalloc"])):
        target = tempfile.mkdtemp(prefix=f"cold-{profile}.", dir=WORK)
        os.sync()
        started = time.monotonic()
        out = subprocess.run(["cargo", "build", "--locked", "--quiet", *flags, "--bin", "hookwarden"],
                             cwd=ROOT, env=dict(os.environ, CARGO_TARGET_DIR=target),
                             capture_output=True, text=True)
        secs = time.monotonic() - started
        shutil.rmtree(target, ignore_errors=True)
        if out.returncode != 0:
            raise RuntimeError(f"cargo build {' '.join(flags)} failed:\n{out.stderr}")
        RESULTS.setdefault(f"build/{profile}", []).append({"seconds": secs})
        log(f"  build/{profile}: {secs / 60:.1f} min from cold")


# --- report ----------------------------------------------------------------------------


def values(key, field):
    return [r[field] for r in RESULTS.get(key, []) if field in r]


def med(key, field):
    v = values(key, field)
    return statistics.median(v) if v else None


def cell(key, field, fmt="{:,.0f}"):
    v = values(key, field)
    if not v:
        return "n/a"
    m = statistics.median(v)
    if len(v) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def ratio(a, b, fmt="{:.2f}x"):
    return fmt.format(a / b) if a is not None and b else "n/a"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def machine():
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": sh("nproc"),
        "cpu": sh("lscpu | sed -n 's/^Model name:[[:space:]]*//p'"),
        "kernel": sh("uname -r"),
        "memory": sh("free -g | awk '/^Mem:/ {print $2 \" GiB\"}'"),
        "disk": sh(f"df -T {WORK} | awk 'NR==2 {{print $2 \" on \" $1}}'") + ", "
        + sh(f"lsblk -dno SIZE,ROTA $(df --output=source {WORK} | tail -1) "
             "| awk '{print $1 (($2 == 1) ? \" (rotational)\" : \" (non-rotational)\")}'"),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "versions": "; ".join([
            sh(f"{HW} --version"), sh("webhook -version"), "node " + sh("node --version"),
            "express " + sh(f"node -p \"require('{ROOT}/bench/receivers/node_modules/express/package.json').version\""),
            sh("nginx -v 2>&1"), sh("wrk --version 2>&1 | head -1 | cut -d' ' -f1-2"),
            sh("oha --version"),
        ]),
    }


def report(info, seconds):
    L = []
    L.append(f"Date {info['date']}; {info['nproc']} cores ({info['cpu']}), {info['memory']}, "
             f"kernel {info['kernel']}, {info['os']}; disk: {info['disk']}.")
    settings = " ".join(f"{k}={os.environ[k]}" for k in
                        ("QUICK", "ROUNDS", "DURATION", "RATE_DURATION", "PHASES", "SYSTEMS", "PREFILL")
                        if k in os.environ)
    L.append(f"Command: `{(settings + ' ') if settings else ''}bash bench/run.sh` "
             f"(hookwarden at {sh(f'git -C {ROOT} rev-parse --short HEAD')}"
             f"{', with uncommitted changes' if sh(f'git -C {ROOT} status --porcelain --untracked-files=no') else ''}).")
    L.append(f"Versions: {info['versions']}.")
    L.append(f"Load average before / after: {info['load_before']} / {info['load_after']}. "
             f"{ROUNDS} round(s), {DURATION} s per measurement, harness {seconds / 60:.1f} min.")
    L.append("Cells: median over the rounds (min–max). Ratios: hookwarden's median over the "
             "other system's (throughput: higher is better for hookwarden; latency and memory: "
             "lower is better for hookwarden).")
    L.append("")
    head_end = len(L)  # the goals go here, first; the tables follow them
    ratio_hdr = " | ".join(f"hw / {o}" for o in OTHERS)
    hdr = "| event-hook deliveries, 64 connections | " + " | ".join(SYSTEMS) + f" | {ratio_hdr} |"
    L.append(hdr)
    L.append("|---" * (len(SYSTEMS) + len(OTHERS) + 1) + "|")
    rows = [
        ("acks/s", "rps", "{:,.0f}"), ("p50 ms", "p50", "{:.2f}"), ("p99 ms", "p99", "{:.2f}"),
        ("non-2xx + socket errors", None, None),
        ("ready ms (start to first answer)", "ready_ms", "{:.0f}"),
        ("RSS after start MB", "rss_start", "{:.1f}"), ("RSS after warm-up, idle MB", "rss_idle", "{:.1f}"),
        ("peak RSS (VmHWM) MB", "rss_hwm", "{:.1f}"),
    ]
    for proto in ("https", "http"):
        for label, field, fmt in rows:
            if field in ("ready_ms", "rss_start", "rss_idle", "rss_hwm") and proto == "http":
                continue
            cells = []
            for s in SYSTEMS:
                k = f"acks/{s}/{proto}"
                if field is None:
                    cells.append(f"{sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))}")
                else:
                    cells.append(cell(k, field, fmt))
            ratios = []
            for other in OTHERS:
                if field is None:
                    ratios.append("")
                else:
                    ratios.append(ratio(med(f"acks/hookwarden/{proto}", field), med(f"acks/{other}/{proto}", field)))
            L.append(f"| {proto.upper()} {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    L.append("")
    if any(f"paced/{s}" in RESULTS for s in SYSTEMS):
        paces = RESULTS.get("paced/pace", [])
        pause = ", ".join(sorted({f"{p['pause_ms']} ms" for p in paces}))
        offered = [p["offered"] for p in paces if p["offered"]]
        what = (f"offered about {statistics.median(offered):,.0f}/s, half of webhook's maximum"
                if offered else "a fixed pause")
        L.append(f"| HTTPS, 64 connections, each pausing {pause} between requests ({what}) | "
                 + " | ".join(SYSTEMS) + f" | {ratio_hdr} |")
        L.append("|---" * (len(SYSTEMS) + len(OTHERS) + 1) + "|")
        for label, field, fmt in (("acks/s", "rps", "{:,.0f}"), ("p50 ms", "p50", "{:.2f}"),
                                  ("p99 ms", "p99", "{:.2f}")):
            cells = [cell(f"paced/{s}", field, fmt) for s in SYSTEMS]
            ratios = [ratio(med("paced/hookwarden", field), med(f"paced/{o}", field)) for o in OTHERS]
            L.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        L.append(f"| non-2xx + socket errors | " + " | ".join(
            f"{sum(values(f'paced/{s}', 'non2xx'))} + {sum(values(f'paced/{s}', 'errors'))}" for s in SYSTEMS)
            + " |" * (len(OTHERS) + 1))
        L.append("")
    if any(k.startswith("curve/") for k in RESULTS):
        L.append("| hookwarden, HTTPS, as concurrency grows | acks/s | p50 ms | p99 ms | peak RSS MB | non-2xx + errors |")
        L.append("|---|---|---|---|---|---|")
        for c in CURVE:
            k = "acks/hookwarden/https" if c == CONNS else f"curve/hookwarden/{c}"
            L.append(f"| {c} connection{'s' if c > 1 else ''} | {cell(k, 'rps')} | {cell(k, 'p50', '{:.2f}')} | "
                     f"{cell(k, 'p99', '{:.2f}')} | {cell(k, 'rss_hwm', '{:.1f}')} | "
                     f"{sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))} |")
        k = "curve/nginx/256"
        L.append(f"| (nginx, 256 connections) | {cell(k, 'rps')} | {cell(k, 'p50', '{:.2f}')} | "
                 f"{cell(k, 'p99', '{:.2f}')} | {cell(k, 'rss_hwm', '{:.1f}')} | "
                 f"{sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))} |")
        L.append("")
    if "conns/default" in RESULTS:
        L.append(f"| hookwarden, HTTPS, {MANY:,} connections at once | acks/s | p99 ms | RSS idle MB | peak RSS (VmHWM) MB | non-2xx + errors |")
        L.append("|---|---|---|---|---|---|")
        for k, label in (("conns/default", "server.max_connections = 1024 (default)"),
                         ("conns/256", "server.max_connections = 256")):
            L.append(f"| {label} | {cell(k, 'rps')} | {cell(k, 'p99', '{:.2f}')} | "
                     f"{cell(k, 'rss_idle', '{:.1f}')} | {cell(k, 'rss_hwm', '{:.1f}')} | "
                     f"{sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))} |")
        L.append("")
    if "pg/hookwarden" in RESULTS:
        L.append("| hookwarden, HTTPS, 64 connections | acks/s | p50 ms | p99 ms | non-2xx + errors |")
        L.append("|---|---|---|---|---|")
        for k, label in (("acks/hookwarden/https", "embedded store (SQLite)"),
                         ("pg/hookwarden", "PostgreSQL, one replica, plain TCP"),
                         ("pg-tls/hookwarden", "PostgreSQL, one replica, TLS"),
                         ("pg-bouncer/hookwarden", "PostgreSQL, one replica, through PgBouncer")):
            if k not in RESULTS:
                continue
            L.append(f"| {label} | {cell(k, 'rps')} | {cell(k, 'p50', '{:.2f}')} | "
                     f"{cell(k, 'p99', '{:.2f}')} | {sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))} |")
        L.append("")
        L.append(f"PostgreSQL commits per acknowledged delivery (ingest and the sink's drain, "
                 f"warm-up included): {cell('pg/hookwarden', 'commits_per_ack', '{:.2f}')} "
                 f"(TLS {cell('pg-tls/hookwarden', 'commits_per_ack', '{:.2f}')}, "
                 f"PgBouncer {cell('pg-bouncer/hookwarden', 'commits_per_ack', '{:.2f}')}).")
        L.append("")
    pf = RESULTS.get("prefill", [])
    if "store/empty" in RESULTS:
        store_table(L, pf)
    if any(k.startswith("inline/") for k in RESULTS):
        inline_table(L)
    G = []

    def target(name, measured, ok):
        G.append(f"| {name} | {measured} | {'met' if ok else 'NOT met'} |")

    def info(name, measured):
        G.append(f"| {name} | {measured} | - |")

    G.append("| goal | measured | verdict |")
    G.append("|---|---|---|")
    goals(target, info)
    return "\n".join(L[:head_end] + G + [""] + L[head_end:])


def store_table(L, pf):
    L.append(f"| hookwarden, HTTPS, 64 connections | acks/s | p50 ms | p99 ms | ready ms (poll / own ready_ms) | peak RSS MB |")
    L.append("|---|---|---|---|---|---|")
    for k, label in (("store/empty", "empty store"), ("store/full", f"{PREFILL:,} events stored")):
        L.append(f"| {label} | {cell(k, 'rps')} | {cell(k, 'p50', '{:.2f}')} | {cell(k, 'p99', '{:.2f}')} | "
                 f"{cell(k, 'ready_ms')} / {cell(k, 'self_ready_ms')} | {cell(k, 'rss_hwm', '{:.1f}')} |")
    L.append(f"| full / empty | {ratio(med('store/full', 'rps'), med('store/empty', 'rps'))} | "
             f"{ratio(med('store/full', 'p50'), med('store/empty', 'p50'))} | "
             f"{ratio(med('store/full', 'p99'), med('store/empty', 'p99'))} | | |")
    if pf:
        L.append("")
        L.append("examples/prefill.rs before each full-store run (creates what is missing, "
                 "then marks the previous run's pending jobs delivered): "
                 + ", ".join(f"{p['seconds']:.1f} s" for p in pf)
                 + f". First call: {pf[0]['output']}.")
    L.append("")


def inline_table(L):
    L.append("| inline token hook, HTTPS, 64 connections | answers/s | p50 ms | p99 ms | p99.9 ms | non-2xx + errors |")
    L.append("|---|---|---|---|---|---|")
    for h in ("rules", "script"):
        for mode, label in (("1000", f"fixed 1,000/s ({RATE_DURATION} s)"),
                            ("max", "as fast as possible")):
            k = f"inline/{h}/{mode}"
            L.append(f"| {h}, {label} | {cell(k, 'rps')} | {cell(k, 'p50', '{:.2f}')} | {cell(k, 'p99', '{:.2f}')} | "
                     f"{cell(k, 'p999', '{:.2f}')} | {sum(values(k, 'non2xx'))} + {sum(values(k, 'errors'))} |")
    L.append("")


def goals(target, info):
    """Every goal with its measured value and verdict (`target`), and the figures reported
    next to them without a goal (`info`)."""
    hw, hw_h = med("acks/hookwarden/https", "rps"), med("acks/hookwarden/http", "rps")
    nul, nul_h = med("acks/null/https", "rps"), med("acks/null/http", "rps")
    wh_h = med("acks/webhook/http", "rps")
    if hw and nul:
        target("durable acks >= 80% of the null receiver's (HTTPS)", f"{100 * hw / nul:.0f}%", hw / nul >= 0.8)
    if hw_h and nul_h:
        target("durable acks >= 80% of the null receiver's (HTTP)", f"{100 * hw_h / nul_h:.0f}%", hw_h / nul_h >= 0.8)
    if hw_h and wh_h:
        target("durable acks >= 1.5x webhook's (HTTP)", f"{hw_h / wh_h:.2f}x", hw_h / wh_h >= 1.5)
    p99p, rps_p, p99w = (med("paced/hookwarden", "p99"), med("paced/hookwarden", "rps"),
                         med("paced/webhook", "p99"))
    if p99p is not None:
        target(f"paced ack p99 <= 10 ms ({rps_p:,.0f}/s, half of webhook's maximum, HTTPS)",
               f"{p99p:.2f} ms", p99p <= 10)
    if p99p is not None and p99w is not None:
        target("paced ack p99 <= webhook's at the same pace", f"{p99p:.2f} ms vs {p99w:.2f} ms "
               f"({p99p / p99w:.2f}x)", p99p <= p99w)
    sat = [(s_, med(f"acks/{s_}/https", "p99")) for s_ in SYSTEMS]
    if all(v is not None for _, v in sat):
        info("p99 at saturation, 64 connections, HTTPS (no goal)",
             ", ".join(f"{s_} {v:.1f} ms" for s_, v in sat))
    for h in ("rules", "script"):
        v = med(f"inline/{h}/1000", "p99")
        if v is not None:
            target(f"inline {h} p99 <= 5 ms at 1,000/s", f"{v:.2f} ms", v <= 5)
    v = med("acks/hookwarden/https", "rss_idle")
    if v is not None:
        target("idle RSS <= 20 MB after the warm-up burst", f"{v:.1f} MB", v <= 20)
    many = [(k, med(f"conns/{k}", "rss_hwm")) for k in ("default", "256")]
    if all(v for _, v in many):
        info(f"RSS at {MANY:,} connections, bounded by server.max_connections", "peak "
             + ", ".join(f"{v:.0f} MB with cap {'1024' if k == 'default' else k}" for k, v in many))
    peaks = [(c, med("acks/hookwarden/https" if c == CONNS else f"curve/hookwarden/{c}", "rss_hwm")) for c in CURVE]
    if all(p for _, p in peaks):
        info("RSS under load as connections grow", "peak " +
             ", ".join(f"{p:.0f} MB at {c}" for c, p in peaks) + " connections")
    full, empty = med("store/full", "p99"), med("store/empty", "p99")
    if full and empty:
        target(f"ack p99 with {PREFILL:,} stored within 1.2x of empty", f"{full / empty:.2f}x", full / empty <= 1.2)
    r = med("acks/hookwarden/https", "ready_ms")
    if r is not None:
        own = med("acks/hookwarden/https", "self_ready_ms") or 0
        target("ready <= 200 ms after start (empty store)", f"{r:.0f} ms to /readyz 200 (own ready_ms {own:.0f})", r <= 200)
    r = med("store/full", "ready_ms")
    if r is not None:
        target(f"ready <= 200 ms after start ({PREFILL:,} events stored)", f"{r:.0f} ms", r <= 200)
    pg = med("pg/hookwarden", "rps")
    if pg and hw:
        target("PostgreSQL, one replica: acks >= 50% of the embedded store's", f"{100 * pg / hw:.0f}% "
               f"({pg:,.0f} vs {hw:,.0f}/s)", pg / hw >= 0.5)
    b = med("build/release", "seconds")
    if b is not None:
        target("`cargo run --release -- serve` from cold <= 4 min (compile, crates downloaded)",
               f"{b / 60:.1f} min", b <= 240)
    b = med("build/dist", "seconds")
    if b is not None:
        info("`cargo build --profile dist --features jemalloc` from cold (the container's and the benchmarks' build)",
             f"{b / 60:.1f} min")


def main():
    global CERT, KEY
    t0 = time.monotonic()
    # MANY connections need as many descriptors in wrk and in the receiver (children inherit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    info = machine()
    info["load_before"] = sh("cut -d' ' -f1-3 /proc/loadavg")
    log(f"work folder {WORK}; {ROUNDS} round(s) of {DURATION}s measurements; load {info['load_before']}")
    CERT, KEY = os.path.join(WORK, "cert.pem"), os.path.join(WORK, "key.pem")
    # One self-signed P-256 certificate for every system, so that TLS costs the same.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", KEY, "-out", CERT], check=True, capture_output=True)
    ok = False
    try:
        for rnd in range(ROUNDS):
            log(f"round {rnd + 1}/{ROUNDS}")
            for name, phase in (("acks", event_acks), ("paced", paced), ("conns", many_connections),
                                ("curve", curve), ("store", store_size), ("inline", inline),
                                ("pg", postgres), ("build", build_times)):
                if name in PHASES:
                    phase(rnd)
        ok = True
    finally:
        if not ok:
            log(f"stopped early; logs kept in {WORK}")
        info["load_after"] = sh("cut -d' ' -f1-3 /proc/loadavg")
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump({"machine": info, "rounds": ROUNDS, "duration": DURATION,
                       "results": RESULTS}, f, indent=1)
    table = report(info, time.monotonic() - t0)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    log(f"results in {OUT}/results.md and results.json; harness took {(time.monotonic() - t0) / 60:.1f} min")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
