"""Hostile HTTP clients for the fault matrix (test_fault_hostile_clients.py,
test_fault_pipelining.py): an attacker process, health probes, RSS sampling, and the checks.

The stack runs ingest on a tokens file (tenant "hostile", and tenant "greedy", put deep into
rate-limit debt before the attack), --rate-limit 10 --rate-burst 20 and --request-timeout 5s.
The read API keeps its fixed limits (512 connections, 30 s request timeout, read_api.c) and
the admin ports theirs (64 connections, 10 s, admin.c). The attacked servers are ingest's API
port ("ingest"), the aggregator's read API ("api") and the scorer's admin port ("admin"), so
each daemon has one server under attack and the others probed.

For the attack's length an attacker process (one epoll loop in a child process, its
configuration as JSON on stdin, so it never holds up the probes) keeps, per attacked server,
the plan's number of connections of each kind:

- stall: the head of a request with Content-Length and part of the body, then nothing. The
  server must answer 408 and close within its request timeout plus STALL_MARGIN_S; the slot
  then starts a new one at once;
- disconnect: the head and part of the body, then close (every other one with RST);
- badhead: one of an oversized header (431), too many headers (431), a header without colon,
  a broken request line, binary junk, a malformed Content-Length (400), a Content-Length over
  the body limit (413); each must get exactly that answer;
- early401, early429 (ingest only): POST /v1/events with a wrong token, or with the greedy
  tenant's token, announcing a 1 MB body and sending none: 401, and 429 with Retry-After,
  must arrive within EARLY_LIMIT_S although no body byte was sent;
- pipeline: a socket with a 4 KiB receive buffer and a 64 KiB send buffer sends pipelined
  GETs (/v1/health, /readyz, /metrics) without end and never reads. The server must stop
  reading it once 1 MiB of answers is queued and cut it off after a request timeout in which
  it read nothing: each must be closed by the server within 2 request timeouts plus
  PIPELINE_MARGIN_S of the moment its socket last took bytes (the server stopped reading and
  the small buffers between filled); the slot then starts a new one at once.

The short-lived kinds (disconnect, badhead, early*) open their next connection 0.5 to 1.5 s
after the previous one ended: hostile behaviour, not a flood of new connections.

Meanwhile every POLL_S the test probes GET /healthz on the three admin ports, GET /v1/health
on ingest and GET /readyz on the read API, each on a new connection: every answer must be 200
within PROBE_LIMIT_S. It samples each daemon's VmRSS (/proc/<pid>/status) every 0.1 s: the
peak must stay under the idle RSS (measured before the attack) plus PIPELINER_MIB per
pipelining client of the daemon's attacked server plus RSS_MARGIN_MIB; in an ASan build the
peaks are reported, not judged (ASan's allocator decides what stays resident). Afterwards no
daemon restarted, ingest's connection gauge falls back, and a normal POST is accepted (202)
and counted by the read API.

Every violation is collected and reported together; the RESULT line with the figures
(quoted in docs/RELIABILITY.md) is printed before the verdict, so a failing run still shows
its numbers.
"""

import collections
import errno
import hashlib
import json
import os
import random
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "hostile"
GREEDY = "greedy"
TOKEN = "hostile-token-0123456789abcdef"
GREEDY_TOKEN = "greedy-token-0123456789abcdef"
INGEST_TIMEOUT_S = 5  # --request-timeout given to ingest
API_TIMEOUT_S = 30  # the read API's request timeout (fixed in read_api.c)
ADMIN_TIMEOUT_S = 10  # the admin port's (fixed in admin.c)
POLL_S = 0.15
PROBE_LIMIT_S = 1.0
EARLY_LIMIT_S = 1.0
STALL_MARGIN_S = 3.0
PIPELINE_MARGIN_S = 15.0
# A pipelining client is cut off within PIPELINE_PERIODS request timeouts + PIPELINE_MARGIN_S
# of the moment its socket last took bytes. Measured (docs/RELIABILITY.md, row 2b): from about
# 1.2 to 2.6 request timeouts (read API: 37 to 77 s with its 30 s timeout), so 3.
PIPELINE_PERIODS = 3
# goodwill/http.h: "A connection's memory is so bounded by about max_output_bytes plus one
# answer, the read buffer and the requests already in the pipeline (at most 32)": 1 MiB +
# 64 KiB + a few KiB, rounded up to PIPELINER_MIB per pipelining client. RSS_MARGIN_MIB covers
# everything else (stalled bodies, connections being closed, allocator slack); measured
# without pipelining clients the attack adds less than 10 MiB to any daemon.
PIPELINER_MIB = 1.25
RSS_MARGIN_MIB = 64
# The RSS bounds are judged in release builds only. In an ASan build, ASan's allocator decides
# what stays resident (a quarantine of freed blocks, 256 MiB by default, redzones, per-thread
# caches), so its RSS says little about the daemons' own bounds: it is reported, not judged.
DAEMONS = ("ingest", "scorer", "aggregator")
ASAN = None  # set by run()
ATTACKED = {"ingest": "ingest", "scorer": "admin", "aggregator": "api"}  # daemon -> its attacked server
CHURNING = ("disconnect", "badhead", "early401", "early429")


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The attacker (a child process: python3 hostile.py --attack, its configuration on stdin)


def bad_heads(path, target):
    """(name, request bytes, expected status) of malformed or oversized heads."""
    big = "x" * (20 * 1024)
    many = "".join("X-H%d: v\r\n" % i for i in range(2000))
    over = {"ingest": 9 * 1024 * 1024, "api": 8192, "admin": 128 * 1024}[target]  # over each body limit
    return [
        ("oversized header", ("GET %s HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n" % (path, big)).encode(), 431),
        ("too many headers", ("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, many)).encode(), 431),
        ("header without colon", ("GET %s HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n" % path).encode(), 400),
        ("broken request line", b"GET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ("binary junk", bytes(range(256)) * 4, 400),
        ("body over the limit", ("POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                                 % (path, over)).encode(), 413),
        ("bad Content-Length", ("POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n" % path).encode(), 400),
    ]


class AConn:
    __slots__ = ("sock", "slot", "kind", "t0", "out", "rx", "sent_all", "variant", "expect", "t_sent")

    def __init__(self, sock, slot, kind):
        self.sock = sock
        self.slot = slot
        self.kind = kind
        self.t0 = time.monotonic()
        self.out = b""
        self.rx = b""
        self.sent_all = False
        self.variant = None
        self.expect = None
        self.t_sent = None


def attack(cfg):
    """Runs the attack for cfg["seconds"]; returns the results as a dict."""
    rng = random.Random(cfg["seed"])
    ep = select.epoll()
    conns = {}
    results = collections.defaultdict(lambda: collections.defaultdict(int))
    worst = collections.defaultdict(float)  # (target, measure) -> seconds
    problems = []
    open_pipes = {}  # fd -> AConn of pipeliners not yet cut off
    slots = []  # [target, kind, next start, connection]
    for target, kinds in cfg["plan"].items():
        for kind, n in kinds.items():
            for _ in range(n):
                slots.append([target, kind, 0.0, None])
    rng.shuffle(slots)
    t_end = time.monotonic() + cfg["seconds"]
    pipeline_chunk = {}
    for target, t in cfg["targets"].items():
        req = ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % t["pipeline_path"]).encode()
        pipeline_chunk[target] = req * 2000  # sent again and again: the client never stops

    def problem(msg):
        results["all"]["problems"] += 1
        if len(problems) < 40:
            problems.append(msg)

    def close(c, how="close"):
        fd = c.sock.fileno()
        try:
            ep.unregister(fd)
        except (OSError, ValueError):
            pass
        conns.pop(fd, None)
        open_pipes.pop(fd, None)
        if how == "rst":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.sock.close()
        slot = c.slot
        slot[3] = None
        slot[2] = time.monotonic() + (rng.uniform(0.5, 1.5) if c.kind in CHURNING else 0.01)

    def start(slot):
        target, kind = slot[0], slot[1]
        t = cfg["targets"][target]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if kind == "pipeline":
            # A small receive window makes the server's answers queue in the server; a small
            # send buffer makes "the socket took bytes" mean "the server is reading".
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        c = AConn(s, slot, kind)
        if kind == "stall":
            c.out = t["stall_head"] + b"{" * t["stall_part"]
        elif kind == "disconnect":
            c.out = t["stall_head"] + b"[" * t["stall_part"]
        elif kind == "pipeline":
            c.out = memoryview(pipeline_chunk[target])
        elif kind == "badhead":
            name, req, status = rng.choice(cfg["bad_heads"][target])
            c.out, c.variant, c.expect = req.encode("latin-1"), name, status
        elif kind in ("early401", "early429"):
            token = "wrong-token" if kind == "early401" else cfg["greedy_token"]
            c.out = ("POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n\r\n" % token).encode()
            c.expect = 401 if kind == "early401" else 429
        rc = s.connect_ex(("127.0.0.1", t["port"]))
        if rc not in (0, errno.EINPROGRESS):
            results[target]["connect_errors"] += 1
            problem("%s %s: connect failed: %s" % (target, kind, os.strerror(rc)))
            s.close()
            slot[2] = time.monotonic() + 0.5
            return
        fd = s.fileno()
        conns[fd] = c
        slot[3] = c
        results[target][kind + "_connections"] += 1
        if kind == "pipeline":
            open_pipes[fd] = c
            ep.register(fd, select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP)
        else:
            ep.register(fd, select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)

    def status_of(rx):
        if not rx.startswith(b"HTTP/1.1 "):
            return None
        try:
            return int(rx[9:12])
        except ValueError:
            return None

    def judge(c, now, eof):
        """c got data or EOF: judges its answer once complete (or the connection ended)."""
        target, kind = c.slot[0], c.slot[1]
        st = status_of(c.rx)
        if kind == "stall":
            if st is None and not eof:
                return
            waited = now - (c.t_sent or c.t0)
            results[target]["stall_status_%s" % st] += 1
            worst[(target, "stall_answer_s")] = max(worst[(target, "stall_answer_s")], waited)
            if st != 408:
                problem("%s stall: answered %s, expected 408: %r" % (target, st, c.rx[:120]))
            limit = cfg["targets"][target]["timeout_s"] + cfg["stall_margin_s"]
            if waited > limit:
                problem("%s stall: answered after %.1f s, more than the request timeout + margin (%.1f s)"
                        % (target, waited, limit))
            close(c)
        elif kind in ("badhead", "early401", "early429"):
            if b"\r\n\r\n" not in c.rx and not eof:
                return
            results[target]["%s_status_%s" % (kind, st)] += 1
            took = now - (c.t_sent or c.t0)
            worst[(target, kind + "_s")] = max(worst[(target, kind + "_s")], took)
            if st != c.expect:
                problem("%s %s%s: answered %s, expected %s: %r" % (target, kind, " (%s)" % c.variant if c.variant
                                                                   else "", st, c.expect, c.rx[:120]))
            if kind == "early429" and st == 429 and b"\r\nRetry-After: " not in c.rx:
                problem("%s early429: no Retry-After in %r" % (target, c.rx[:300]))
            if kind.startswith("early") and took > cfg["early_limit_s"]:
                problem("%s %s: the answer on the head took %.2f s (limit %.1f s)" % (target, kind, took,
                                                                                     cfg["early_limit_s"]))
            close(c)
        elif kind == "disconnect":
            close(c)

    def on_pipeline(c, fd, ev, now):
        target = c.slot[0]
        if ev & (select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP):
            # Measured from the last byte the socket took: the server stopped reading
            # then, or (everything sent) has not yet read the last requests.
            took = now - (c.t_sent or c.t0)
            results[target]["pipeline_cut"] += 1
            worst[(target, "pipeline_cut_s")] = max(worst[(target, "pipeline_cut_s")], took)
            limit = cfg["pipeline_periods"] * cfg["targets"][target]["timeout_s"] + cfg["pipeline_margin_s"]
            if took > limit:
                problem("%s pipeline: cut off %.1f s after its socket last took bytes, more than %d request "
                        "timeouts + margin (%.1f s)" % (target, took, cfg["pipeline_periods"], limit))
            close(c)
            return
        if ev & select.EPOLLOUT:
            try:
                n = c.sock.send(c.out[:262144])
            except BlockingIOError:
                return
            except OSError:
                # Reset by the server while sending: judged like any other cut.
                on_pipeline(c, fd, select.EPOLLERR, now)
                return
            results[target]["pipeline_bytes_sent"] += n
            c.out = c.out[n:]
            if n > 0:
                c.t_sent = now
            if not c.out:
                c.out = memoryview(pipeline_chunk[target])

    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        # At most 40 new connections per round, so the listen queues never overflow.
        started = 0
        for slot in slots:
            if slot[3] is None and slot[2] <= now and started < 40:
                start(slot)
                started += 1
        for fd, ev in ep.poll(0.05):
            c = conns.get(fd)
            if c is None:
                continue
            now = time.monotonic()
            target, kind = c.slot[0], c.slot[1]
            if kind == "pipeline":
                on_pipeline(c, fd, ev, now)
                continue
            if ev & select.EPOLLOUT and not c.sent_all:
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    n = 0
                except OSError as e:
                    if kind == "badhead":
                        # The server answered a head before all of it was sent, and closed.
                        n = len(c.out)
                    else:
                        if kind != "disconnect":
                            problem("%s %s: send failed: %s" % (target, kind, e))
                        close(c)
                        continue
                c.out = c.out[n:]
                if not c.out:
                    c.sent_all = True
                    c.t_sent = time.monotonic()
                    if kind == "disconnect":
                        close(c, "rst" if rng.random() < 0.5 else "close")
                        continue
                    ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            if ev & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP):
                eof = False
                try:
                    data = c.sock.recv(65536)
                    if not data:
                        eof = True
                    c.rx += data
                except BlockingIOError:
                    pass
                except OSError:
                    eof = True
                judge(c, now, eof)
                if eof and fd in conns:
                    close(c)
    # A pipeliner still open at the end, whose socket took its last byte longer ago than its
    # bound, was never cut off.
    now = time.monotonic()
    for c in list(open_pipes.values()):
        target = c.slot[0]
        results[target]["pipeline_open_at_end"] += 1
        limit = cfg["pipeline_periods"] * cfg["targets"][target]["timeout_s"] + cfg["pipeline_margin_s"]
        if now - (c.t_sent or c.t0) > limit:
            problem("%s pipeline: still open %.1f s after its socket took its last byte (bound %.1f s)"
                    % (target, now - (c.t_sent or c.t0), limit))
    for c in list(conns.values()):
        c.sock.close()
    return {"results": {t: dict(r) for t, r in results.items()},
            "worst": {"%s %s" % k: round(v, 3) for k, v in worst.items()}, "problems": problems}


def attacker_main():
    cfg = json.loads(sys.stdin.read())
    for t in cfg["targets"].values():
        t["stall_head"] = t["stall_head"].encode("latin-1")
    sys.stdout.write(json.dumps(attack(cfg)) + "\n")


# ---------------------------------------------------------------------------------------------
# Probes and RSS


def probe_once(url):
    """(seconds, status or error text) of one GET on a new connection."""
    t0 = time.monotonic()
    try:
        status, _, _ = g.http("GET", url, timeout_s=10)
    except OSError as e:
        return time.monotonic() - t0, "%s: %s" % (type(e).__name__, e)
    return time.monotonic() - t0, status


class Watch:
    """One thread per probed URL (a GET every POLL_S) and one sampling RSS every 0.1 s; keeps
    the worst latency, the failures, and the peak RSS per daemon."""

    def __init__(self, urls, pids):
        self.urls = urls
        self.pids = pids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.worst = {name: 0.0 for name in urls}
        self.count = collections.Counter()
        self.slow = collections.Counter()
        self.bad = []
        self.peak = {name: 0 for name in pids}
        self.threads = [threading.Thread(target=self._probe, args=(n,), daemon=True) for n in urls]
        self.threads.append(threading.Thread(target=self._rss, daemon=True))
        self.t0 = None

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def _probe(self, name):
        url = self.urls[name]
        while not self.stop.is_set():
            took, status = probe_once(url)
            with self.lock:
                self.count[name] += 1
                self.worst[name] = max(self.worst[name], took)
                if status != 200 or took > PROBE_LIMIT_S:
                    self.slow[name] += 1
                    if len(self.bad) < 15:
                        self.bad.append("%s: %s after %.2f s, %.1f s into the attack"
                                        % (name, status, took, time.monotonic() - took - self.t0))
            self.stop.wait(max(0.0, POLL_S - took))

    def _rss(self):
        while not self.stop.wait(0.1):
            for name, pid in self.pids.items():
                kib = g.rss_kib(pid)
                if kib is not None:
                    with self.lock:
                        self.peak[name] = max(self.peak[name], kib)


# ---------------------------------------------------------------------------------------------
# The run


def gauge(url, name):
    try:
        status, _, body = g.http("GET", url + "/metrics", timeout_s=5)
    except OSError:
        return None
    return g.metric_sum(body.decode(), name) if status == 200 else None


def post(st, token, lines):
    body = b"".join(l.encode() + b"\n" for l in lines)
    req = urllib.request.Request(st.ingest + "/v1/events", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]


def event(tenant, n, team="team-1"):
    return json.dumps({"event_id": "%s-%d" % (tenant, n), "tenant_id": tenant, "team_id": team, "agent_id": "a-1",
                       "interaction_id": "%s-i-%d" % (tenant, n), "channel": "chat",
                       "occurred_at": int(time.time() * 1000) - 60000,
                       "survey": {"likelihood_to_recommend": n % 11, "comment": "ok"}})


def rss_bound_mib(plan, daemon):
    """How far the daemon's RSS may grow over idle during the attack."""
    return plan.get(ATTACKED[daemon], {}).get("pipeline", 0) * PIPELINER_MIB + RSS_MARGIN_MIB


def port_of(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])


def run(name, plan, seconds):
    """Starts the stack, attacks it with plan ({server: {kind: connections}}) for seconds,
    checks."""
    global ASAN
    ASAN = g.asan_build()
    stack = g.Stack(session_timeout="6s")
    tokens = os.path.join(stack.dir, "tokens")
    with open(tokens, "w") as f:
        f.write("%s\t%s\thostile clients\n%s\t%s\tgreedy tenant\n" % (sha256_hex(TOKEN), TENANT,
                                                                       sha256_hex(GREEDY_TOKEN), GREEDY))
    stack.extra_env = {"GW_DEVSTACK_INGEST_ARGS": "--tokens-file %s --rate-limit 10 --rate-burst 20 "
                                                  "--request-timeout %ds" % (tokens, INGEST_TIMEOUT_S)}
    with stack as st:
        pids = {n: st.pid(n) for n in DAEMONS}
        urls = {"ingest /healthz": st.admin("ingest") + "/healthz",
                "scorer /healthz": st.admin("scorer") + "/healthz",
                "aggregator /healthz": st.admin("aggregator") + "/healthz",
                "ingest /v1/health": st.ingest + "/v1/health",
                "read API /readyz": st.api + "/readyz"}
        for probe, url in urls.items():
            _, status = probe_once(url)
            g.check(status == 200, "%s answered %s before the attack" % (probe, status))

        # The greedy tenant goes into debt: 4,000 events against a burst of 20 at 10/s leave it
        # refused on the head for about 400 s (a refused head costs nothing).
        status, doc = post(st, GREEDY_TOKEN, [event(GREEDY, i) for i in range(4000)])
        g.check(status == 202, "the greedy tenant's first batch was answered %s: %s" % (status, doc))
        status, doc = post(st, GREEDY_TOKEN, [event(GREEDY, 10000)])
        g.check(status == 429, "the greedy tenant in debt was answered %s, expected 429: %s" % (status, doc))

        idle = {}
        for daemon, pid in pids.items():
            samples = []
            for _ in range(5):
                samples.append(g.rss_kib(pid))
                time.sleep(0.1)
            idle[daemon] = max(samples)
        g.log("idle RSS (KiB): %s%s" % (idle, "; ASan build: RSS is reported, not judged" if ASAN else ""))

        targets = {
            "ingest": {"port": port_of(st.ingest), "timeout_s": INGEST_TIMEOUT_S, "pipeline_path": "/v1/health",
                       "stall_head": "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                                     "Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n" % TOKEN,
                       "stall_part": 1000},
            "api": {"port": port_of(st.api), "timeout_s": API_TIMEOUT_S, "pipeline_path": "/readyz",
                    "stall_head": "POST /v1/teams HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n",
                    "stall_part": 1000},
            "admin": {"port": port_of(st.admin("scorer")), "timeout_s": ADMIN_TIMEOUT_S, "pipeline_path": "/metrics",
                      "stall_head": "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n",
                      "stall_part": 1000},
        }
        bad = {t: [(n, r.decode("latin-1"), s) for n, r, s in bad_heads(path, t)]
               for t, path in (("ingest", "/v1/health"), ("api", "/readyz"), ("admin", "/healthz"))}
        cfg = {"seed": 7, "seconds": seconds, "plan": plan, "targets": targets, "bad_heads": bad,
               "greedy_token": GREEDY_TOKEN, "stall_margin_s": STALL_MARGIN_S,
               "pipeline_margin_s": PIPELINE_MARGIN_S, "pipeline_periods": PIPELINE_PERIODS,
               "early_limit_s": EARLY_LIMIT_S}

        watch = Watch(urls, pids)
        watch.start()
        g.log("attack for %.0f s: %s" % (seconds, json.dumps(plan)))
        t0 = time.monotonic()
        proc = None
        try:
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--attack"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = proc.communicate(json.dumps(cfg).encode(), timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise g.TestFailure("the attacker did not finish within %.0f s: %s" % (seconds + 120, err[-2000:]))
        finally:
            watch.finish()
        g.check(proc.returncode == 0, "the attacker exited %s: %s" % (proc.returncode, err.decode()[-3000:]))
        report = json.loads(out.decode().strip().splitlines()[-1])
        g.log("attack done after %.0f s" % (time.monotonic() - t0))
        for target in plan:
            g.log("%s: %s" % (target, json.dumps(report["results"].get(target, {}), sort_keys=True)))
        g.log("worst times (s): %s" % json.dumps(report["worst"], sort_keys=True))
        g.log("probes: %s answered, %s failed or slower than %.1f s; worst latency (s): %s"
              % (dict(watch.count), dict(watch.slow), PROBE_LIMIT_S, {k: round(v, 3) for k, v in watch.worst.items()}))
        g.log("peak RSS (KiB): %s (idle %s)" % (watch.peak, idle))

        violations = []
        for daemon, pid in pids.items():
            if st.pid(daemon) != pid or g.rss_kib(pid) is None:
                violations.append("%s (pid %d) is gone after the attack; log:\n%s" % (daemon, pid, st.log_tail(daemon)))
        g.check(not violations, "\n".join(violations))
        if report["problems"]:
            violations.append("the servers misbehaved %d times under attack, e.g.:\n    %s"
                              % (report["results"]["all"]["problems"], "\n    ".join(report["problems"][:12])))
        if watch.bad:
            violations.append("%d health probes failed or took longer than %.1f s (worst %s), e.g.:\n    %s"
                              % (sum(watch.slow.values()), PROBE_LIMIT_S,
                                 {k: round(v, 2) for k, v in watch.worst.items() if v > PROBE_LIMIT_S},
                                 "\n    ".join(watch.bad[:8])))
        for daemon in pids:
            bound = rss_bound_mib(plan, daemon)
            grew = (watch.peak[daemon] - idle[daemon]) / 1024
            if grew > bound and not ASAN:
                violations.append("%s's RSS grew by %.0f MiB, over its bound of %.0f MiB (%.2f MiB for each of %d "
                                  "pipelining clients + %d MiB)"
                                  % (daemon, grew, bound, PIPELINER_MIB,
                                     plan.get(ATTACKED[daemon], {}).get("pipeline", 0), RSS_MARGIN_MIB))
        # Every kind of attack reached its server and had the expected effect at least once.
        for target, kinds in plan.items():
            r = report["results"].get(target, {})
            for kind, n in kinds.items():
                if r.get(kind + "_connections", 0) < n:
                    violations.append("%s: only %d %s connections were made, %d planned"
                                      % (target, r.get(kind + "_connections", 0), kind, n))
            if kinds.get("stall") and not r.get("stall_status_408"):
                violations.append("%s: no stalled request was answered 408" % target)
            if kinds.get("pipeline") and not r.get("pipeline_cut"):
                violations.append("%s: no pipelining client was cut off" % target)
            for kind, status in (("early401", 401), ("early429", 429)):
                if kinds.get(kind) and not r.get("%s_status_%d" % (kind, status)):
                    violations.append("%s: no %d on the head was seen" % (target, status))

        # Connections fall back once the attackers are gone (lingering closes take 2 s).
        def connections_closed():
            n = gauge(st.admin("ingest"), "goodwill_ingest_http_connections")
            return n is not None and n <= 1, n
        g.wait_until(connections_closed, 60, "goodwill_ingest_http_connections to fall back to 0 after the attack")

        # They still work: a normal POST is accepted and counted.
        status, doc = post(st, TOKEN, [event(TENANT, i, "team-after") for i in range(10)])
        g.check(status == 202 and doc.get("accepted") == 10, "a normal POST after the attack got %s: %s"
                % (status, doc))
        expected = {"team-after": {"interactions": 0, "surveys": 10}}
        got = g.wait_for_counts(st.api, TENANT, expected, timeout_s=60)
        g.compare_counts("read API", got, expected)
        g.log("after the attack: a normal POST of 10 events was accepted and counted")

        def r(target, key):
            return report["results"].get(target, {}).get(key, 0)

        def w(target, key):
            return report["worst"].get("%s %s" % (target, key), "-")

        slowest = max(watch.worst, key=watch.worst.get)
        parts = ["attack_s=%.0f" % seconds,
                 "worst_probe_s=%.3f(%s)" % (watch.worst[slowest], slowest.replace(" ", "")),
                 "slow_or_failed_probes=%d/%d" % (sum(watch.slow.values()), sum(watch.count.values())),
                 "peak_rss_mib=" + ",".join("%s:%.0f" % (d, watch.peak[d] / 1024) for d in DAEMONS),
                 "idle_rss_mib=" + ",".join("%s:%.0f" % (d, idle[d] / 1024) for d in DAEMONS),
                 "rss_bound_mib=" + ("not judged (ASan)" if ASAN else
                                     ",".join("%s:+%.0f" % (d, rss_bound_mib(plan, d)) for d in DAEMONS))]
        for target in plan:
            kinds = plan[target]
            p = ["%s:" % target]
            if "stall" in kinds:
                p.append("stall408=%d/%d(worst %ss)" % (r(target, "stall_status_408"), r(target, "stall_connections"),
                                                         w(target, "stall_answer_s")))
            if "badhead" in kinds:
                p.append("badhead=%d" % sum(v for k, v in report["results"].get(target, {}).items()
                                            if k.startswith("badhead_status")))
            if "disconnect" in kinds:
                p.append("disconnect=%d" % r(target, "disconnect_connections"))
            if "pipeline" in kinds:
                p.append("pipeline_cut=%d/%d(worst %ss)" % (r(target, "pipeline_cut"),
                                                             r(target, "pipeline_connections"),
                                                             w(target, "pipeline_cut_s")))
            for kind in ("early401", "early429"):
                if kind in kinds:
                    p.append("%s=%d(worst %ss)" % (kind, r(target, "%s_status_%s" % (kind, kind[5:])),
                                                    w(target, kind + "_s")))
            parts.append(" ".join(p))
        parts.append("problems=%d" % r("all", "problems"))
        print("RESULT %s %s" % (name, " | ".join(parts)), flush=True)
        g.check(not violations, "%d kinds of violation:\n  %s" % (len(violations), "\n  ".join(violations)))


if __name__ == "__main__":
    if sys.argv[1:] == ["--attack"]:
        attacker_main()
