"""Shared helpers of the goodwill system tests.

The tests drive real processes: scripts/devstack starts redis-server, goodwill-devkafka and
the three daemons on free loopback ports; the tests then check the results with independent
clients (urllib for HTTP, python3-redis, python3-confluent-kafka, kcat, promtool).

Binaries come from GW_BUILD_DIR (set by ctest; default <repo>/build), scripts from
GW_SOURCE_DIR (default: this file's repository). Every wait is a bounded poll of a
condition that fails with a message saying what was awaited and what was last seen.
Run with /usr/bin/python3 (Debian's interpreter has the confluent_kafka and redis modules).
"""

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get(
    "GW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
BUILD_DIR = os.environ.get("GW_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
DEVSTACK = os.path.join(SOURCE_DIR, "scripts", "devstack")

TOPIC_INTERACTIONS = "goodwill.interactions.v1"
TOPIC_SCORED = "goodwill.scored.v1"
TOPIC_DLQ = "goodwill.dlq.v1"

DAEMONS = ("redis", "devkafka", "ingest", "scorer", "aggregator")


class TestFailure(AssertionError):
    pass


def check(cond, message):
    """Fails the test with message (a sentence a user can act on) unless cond holds."""
    if not cond:
        raise TestFailure(message)


def log(message):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message), flush=True)


def binary(name):
    path = os.path.join(BUILD_DIR, "goodwill-" + name)
    check(os.access(path, os.X_OK), "%s is missing: build it first (GW_BUILD_DIR=%s)" % (path, BUILD_DIR))
    return path


def require_modules():
    missing = []
    for mod in ("confluent_kafka", "redis"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    check(not missing, "python modules %s missing in %s: run the tests with /usr/bin/python3 "
          "(Debian packages python3-confluent-kafka, python3-redis)" % (missing, sys.executable))


def free_port():
    """A loopback port nothing listens on right now (bind to 0, read it back, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def asan_build():
    """Whether GW_BUILD_DIR holds an ASan build (GW_SANITIZE=ON in its CMakeCache.txt)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return any(l.startswith("GW_SANITIZE:") and l.strip().endswith("=ON") for l in f)
    except OSError:
        return False


def rss_kib(pid):
    """The process's resident set (VmRSS) in KiB; None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_until(probe, timeout_s, what, interval_s=0.25):
    """Polls probe() until it returns (True, detail); fails after timeout_s naming what was
    awaited and the last detail seen. Returns the last detail."""
    deadline = time.monotonic() + timeout_s
    detail = None
    while True:
        done, detail = probe()
        if done:
            return detail
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.0f s waiting for %s; last seen: %s" % (timeout_s, what, detail))
        time.sleep(interval_s)


# ---------------------------------------------------------------------------------------------
# HTTP


def http(method, url, body=None, content_type=None, timeout_s=30):
    """Returns (status, headers, body bytes); HTTP error statuses are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(method, url, body=None, content_type=None, timeout_s=30):
    status, _, data = http(method, url, body, content_type, timeout_s)
    try:
        doc = json.loads(data.decode("utf-8")) if data else None
    except ValueError:
        raise TestFailure("%s %s answered %d with a body that is not JSON: %r" % (method, url, status, data[:300]))
    return status, doc


def post_events(ingest_url, lines, content_type="application/x-ndjson"):
    """Posts NDJSON lines (bytes or str) to ingest; returns (status, parsed JSON answer)."""
    body = b"".join((l if isinstance(l, bytes) else l.encode()).rstrip(b"\n") + b"\n" for l in lines)
    return http_json("POST", ingest_url + "/v1/events", body, content_type)


# ---------------------------------------------------------------------------------------------
# Sample data


def generate(seed, interactions, teams, tenant, survey_rate=0.45, span="6h"):
    """Runs goodwill-gen; returns its NDJSON lines (bytes, without newlines)."""
    cmd = [binary("gen"), "--seed", str(seed), "--interactions", str(interactions), "--teams", str(teams),
           "--tenant", tenant, "--survey-rate", str(survey_rate), "--span", span]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(proc.returncode == 0, "%s exited %d: %s" % (" ".join(cmd), proc.returncode, proc.stderr.decode()[-2000:]))
    lines = [l for l in proc.stdout.split(b"\n") if l.strip()]
    check(lines, "goodwill-gen produced no events")
    return lines


def expected_counts(lines):
    """Per team {"interactions": closed events, "surveys": survey events}, plus the event ids,
    computed from the NDJSON that was posted."""
    counts = collections.defaultdict(lambda: {"interactions": 0, "surveys": 0})
    ids = []
    for raw in lines:
        ev = json.loads(raw)
        team = counts[ev["team_id"]]
        if "closed" in ev:
            team["interactions"] += 1
        elif "survey" in ev:
            team["surveys"] += 1
        ids.append(ev.get("event_id"))
    return dict(counts), ids


def totals(per_team):
    return (sum(t["interactions"] for t in per_team.values()), sum(t["surveys"] for t in per_team.values()))


# ---------------------------------------------------------------------------------------------
# Independent reads of the results


def api_counts(api_url, tenant, window="7d", unavailable=None):
    """Per team counts from the read API (GET /v1/teams). A 503 (Redis unreachable) returns
    `unavailable` when that is given, and fails the test otherwise."""
    status, doc = http_json("GET", "%s/v1/teams?tenant=%s&window=%s" % (api_url, tenant, window))
    if status == 503 and unavailable is not None:
        return unavailable
    check(status == 200, "GET /v1/teams?tenant=%s&window=%s answered %d: %s" % (tenant, window, status, doc))
    check(isinstance(doc, dict) and isinstance(doc.get("teams"), list),
          "GET /v1/teams: expected an object with a \"teams\" list, got %r" % (doc,))
    out = {}
    for row in doc["teams"]:
        out[row["team"]] = {"interactions": int(row["interactions"]), "surveys": int(row["surveys"])}
    return out


def api_counts_or_none(api_url, tenant, window="7d"):
    """api_counts, or None while the read API refuses connections (e.g. the aggregator is
    being restarted) or answers 503 (its Redis connection is being re-established)."""
    try:
        got = api_counts(api_url, tenant, window, unavailable="unavailable")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return None if got == "unavailable" else got


def redis_counts(redis_url, tenant):
    """Per team sums of fields n and s over the team's 1d buckets, read from Redis directly."""
    import redis

    r = redis.Redis.from_url(redis_url, socket_timeout=10)
    out = collections.defaultdict(lambda: {"interactions": 0, "surveys": 0})
    prefix = "gw:{%s:" % tenant
    for key in r.scan_iter(match=prefix + "*}:b:1d:*", count=1000):
        key = key.decode()
        team = key[len(prefix):key.index("}")]
        n, s = r.hmget(key, "n", "s")
        out[team]["interactions"] += int(n or 0)
        out[team]["surveys"] += int(s or 0)
    return {k: v for k, v in out.items() if v["interactions"] or v["surveys"]}


def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def protobuf_fields(buf):
    """Top-level fields of a protobuf message: {field number: value}, varints as int and
    length-delimited fields as bytes (the last occurrence wins). A few lines of wire format,
    so the tests depend on no generated code."""
    out = {}
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            out[num], pos = _varint(buf, pos)
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            out[num] = buf[pos:pos + ln]
            pos += ln
        else:
            raise ValueError("unsupported wire type %d" % wt)
    return out


def protobuf_string_fields(buf, wanted):
    """The length-delimited top-level fields of a protobuf message whose numbers are in
    wanted: {field number: bytes}."""
    return {n: v for n, v in protobuf_fields(buf).items() if n in wanted and isinstance(v, bytes)}


def kafka_read_all(bootstrap, topic, timeout_s=60):
    """Reads every record of topic (all partitions, from the beginning up to the high
    watermarks at the time of the call) with confluent_kafka; returns the list of values."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gw-systest-%d-%d" % (os.getpid(), time.time_ns()),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10)
        check(topic in md.topics and md.topics[topic].partitions, "topic %s not found on %s" % (topic, bootstrap))
        parts = sorted(md.topics[topic].partitions)
        high = {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                high[p] = hi
        values = []
        pos = {p: -1 for p in high}
        if not high:
            return values
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in high])
        deadline = time.monotonic() + timeout_s
        while any(pos[p] + 1 < high[p] for p in high):
            check(time.monotonic() < deadline, "reading %s: timed out at positions %s of high watermarks %s"
                  % (topic, pos, high))
            m = c.poll(0.5)
            if m is None:
                continue
            check(not m.error(), "reading %s: %s" % (topic, m.error()))
            if m.offset() < high[m.partition()]:
                values.append(m.value())
            pos[m.partition()] = max(pos[m.partition()], m.offset())
        return values
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Prometheus text


def metric_sum(text, name):
    """Sum of the samples of metric name (all label sets); None when it has no sample."""
    total = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            metric, value = line.split("{", 1)[0], line.rsplit("}", 1)[1].split()[0]
        else:
            metric, value = line.split()[:2]
        if metric == name:
            total = (total or 0.0) + float(value)
    return total


# ---------------------------------------------------------------------------------------------
# The stack


class Stack:
    """A devstack in a temporary directory. Use as a context manager: the stack is always
    torn down; the directory is removed when the test passed and kept (path printed) when it
    failed."""

    def __init__(self, session_timeout="6s", extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="gw-systest-")
        self.env = {}
        self.session_timeout = session_timeout
        self.extra_env = extra_env or {}
        self.down_rc = None

    def _run(self, *args, timeout_s=180):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
        env["GW_BUILD_DIR"] = BUILD_DIR
        # The machines running the tests may be busy (sanitizer builds, parallel jobs).
        env.setdefault("GW_DEVSTACK_READY_TIMEOUT", "90")
        if self.session_timeout:
            env["GW_DEVSTACK_SESSION_TIMEOUT"] = self.session_timeout
        env.update(self.extra_env)
        return subprocess.run([DEVSTACK] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=timeout_s)

    def up(self):
        for name in ("devkafka", "ingest", "scorer", "aggregator"):
            binary(name)
        t0 = time.monotonic()
        proc = self._run("up", self.dir)
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        check(proc.returncode == 0, "devstack up %s failed (status %d); see the messages above"
              % (self.dir, proc.returncode))
        for line in proc.stdout.decode().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v
        for k in ("GOODWILL_INGEST_URL", "GOODWILL_API_URL", "GOODWILL_KAFKA_BOOTSTRAP", "GOODWILL_REDIS_URL",
                  "GOODWILL_INGEST_ADMIN_URL", "GOODWILL_SCORER_ADMIN_URL", "GOODWILL_AGGREGATOR_ADMIN_URL",
                  "GOODWILL_DEVKAFKA_ADMIN_URL"):
            check(self.env.get(k), "devstack up printed no %s (stdout: %r)" % (k, proc.stdout))
        with open(os.path.join(self.dir, "env")) as f:
            check(dict(l.strip().split("=", 1) for l in f if "=" in l) == self.env,
                  "%s/env differs from what devstack up printed" % self.dir)
        log("stack up in %.1f s (%s)" % (time.monotonic() - t0, self.dir))
        return self

    @property
    def ingest(self):
        return self.env["GOODWILL_INGEST_URL"]

    @property
    def api(self):
        return self.env["GOODWILL_API_URL"]

    @property
    def kafka(self):
        return self.env["GOODWILL_KAFKA_BOOTSTRAP"]

    @property
    def redis_url(self):
        return self.env["GOODWILL_REDIS_URL"]

    def admin(self, name):
        return self.env["GOODWILL_%s_ADMIN_URL" % name.upper()]

    def kill(self, name, sig="KILL"):
        proc = self._run("kill", self.dir, name, sig, timeout_s=60)
        check(proc.returncode == 0, "devstack kill %s %s failed: %s" % (name, sig, proc.stderr.decode()))
        log("killed %s with SIG%s" % (name, sig))

    def start(self, name, wait=True):
        args = ["start", self.dir, name] + ([] if wait else ["--no-wait"])
        proc = self._run(*args)
        check(proc.returncode == 0, "devstack start %s failed: %s" % (name, proc.stderr.decode()))
        log("restarted %s%s" % (name, "" if wait else " (not waiting for readiness)"))

    def pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read().strip())

    def log_tail(self, name, lines=30):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def down(self):
        proc = self._run("down", self.dir, timeout_s=240)
        self.down_rc = proc.returncode
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr.decode(errors="replace"))
        return proc.returncode

    def __enter__(self):
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, exc_type, exc, tb):
        rc = self.down()
        if exc_type is not None:
            for name in ("ingest", "scorer", "aggregator", "devkafka"):
                sys.stderr.write("---- %s.log (last lines) ----\n%s\n" % (name, self.log_tail(name)))
            sys.stderr.write("stack directory kept: %s\n" % self.dir)
            return False
        if rc != 0:
            sys.stderr.write("stack directory kept: %s\n" % self.dir)
            raise TestFailure("devstack down reported a daemon that did not exit 0 on SIGTERM (see above)")
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def wait_for_counts(api_url, tenant, expected, timeout_s, settle_s=2.0):
    """Waits until the read API's totals reach the expected totals and then stay unchanged for
    settle_s (so late duplicates would show); returns the per-team counts."""
    want = totals(expected)
    t0 = time.monotonic()
    last = {"seen": None}

    def probe():
        got = api_counts_or_none(api_url, tenant)
        if got is None:
            return False, "read API not answering (aggregator restarting?)"
        tot = totals(got)
        if tot != last["seen"]:
            log("read API totals (interactions, surveys) = %s, expected %s" % (tot, want))
            last["seen"] = tot
        return tot[0] >= want[0] and tot[1] >= want[1], tot

    wait_until(probe, timeout_s, "read API totals of tenant %s to reach %s" % (tenant, want))
    log("totals reached after %.1f s" % (time.monotonic() - t0))
    stable_since = time.monotonic()
    got = api_counts(api_url, tenant)
    while time.monotonic() - stable_since < settle_s:
        time.sleep(0.25)
        now = api_counts_or_none(api_url, tenant)  # one slow answer on a busy machine is not a result
        if now is not None and now != got:
            got, stable_since = now, time.monotonic()
    return got


def compare_counts(source, got, expected):
    """Asserts per team equality, listing every team that differs."""
    diffs = []
    for team in sorted(set(got) | set(expected)):
        g = got.get(team, {"interactions": 0, "surveys": 0})
        e = expected.get(team, {"interactions": 0, "surveys": 0})
        if g != e:
            diffs.append("%s: %s has %s, posted %s" % (team, source, g, e))
    check(not diffs, "per-team counts differ (lost or double-counted records):\n  " + "\n  ".join(diffs))


def run(main):
    """Runs a test's main(); prints PASS or the failure, and exits 0 or 1."""
    name = os.path.basename(sys.argv[0])
    t0 = time.monotonic()

    def terminated(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    # ctest stops a test that runs over its timeout with SIGTERM: turn it into an exception
    # so the stack is still torn down by the context managers and finally blocks.
    signal.signal(signal.SIGTERM, terminated)
    try:
        require_modules()
        main()
    except KeyboardInterrupt as e:
        print("FAIL %s: interrupted (%s); the stack was torn down" % (name, e or "SIGINT"), flush=True)
        sys.exit(1)
    except TestFailure as e:
        print("FAIL %s: %s" % (name, e), flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print("FAIL %s: unexpected error (traceback above)" % name, flush=True)
        sys.exit(1)
    print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
    sys.exit(0)


def log_lines(path, msg=None):
    """The JSON log lines of a daemon's log file (other lines skipped), as dicts; only those
    whose "msg" is msg when it is given."""
    docs = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if msg is None or doc.get("msg") == msg:
                    docs.append(doc)
    except OSError:
        pass
    return docs


def popen_logged(args, log_path, **kw):
    """Starts a process with stdout and stderr in log_path."""
    f = open(log_path, "ab")
    try:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    finally:
        f.close()


def terminate(proc, timeout_s=20):
    """SIGTERM, bounded wait, SIGKILL; returns the exit status (negative: killed by signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode
