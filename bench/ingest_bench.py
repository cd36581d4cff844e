#!/usr/bin/python3
"""Ingest benchmarks of issue 4, with their baselines measured in the same run.

    /usr/bin/python3 bench/ingest_bench.py [--build DIR] [--runs 5] [--duration 5]
                                           [--out results.json] [--only NAME,...]
                                           [--ingest-arg ARG ...] [--kcat-events N]

Starts goodwill-devkafka (3 brokers, 6 partitions, as scripts/devstack does) and
goodwill-ingest (--log-level warn) on loopback, and nginx from a generated configuration in a
temporary directory (not a daemon, one worker, answering every request with a static 202 and
a small JSON body: the HTTP ceiling). Sample events come from goodwill-gen (the same events
for every scenario). Then it runs every scenario --runs times, interleaved (run 1 of each,
then run 2 of each, ...) so that a change in the load of the shared machine touches all
scenarios alike, and prints the medians as a Markdown table with the ratios that issue 4 sets
targets for. Each run: 1 s of warm-up, then --duration seconds counted.

Scenarios (bench_ingest is the C load generator of bench/bench_ingest.c):
  nginx-single      bench_ingest, 1 JSON event per request, closed loop, 256 connections
  ingest-single     the same against goodwill-ingest; CPU per event of the ingest process
  nginx-single-wrk  wrk -t1 -c256 with a Lua script posting the same bodies (a cross-check
  ingest-single-wrk that bench_ingest itself is not the bottleneck)
  ingest-ndjson100  NDJSON batches of 100 events, closed loop, 32 connections (--batch-connections)
  ingest-protobuf100 the same 100 events per request as one packed InteractionEventBatch
                    (application/x-protobuf); skipped, with a note, when ingest answers 415
  kcat-produce      kcat -P producing the same events (JSON lines, keyed tenant/interaction,
                    acks=all, idempotent), --kcat-events of them (default a million) fed on
                    stdin, to devkafka: the Kafka ceiling, events/s by wall time (kcat exits
                    once every record is acknowledged)
  nginx-rate5000    open loop at 5,000 requests/s, 64 connections: p99 latency
  ingest-rate5000

When goodwill-ingest authenticates with bearer tokens (it has --tokens-file), the script
writes a tokens file with one token for the events' tenant, and every request of every
scenario (nginx's too, so the bytes are the same) carries it.

The CPU figures come from /proc/<pid>/stat (utime + stime of all threads) over the counted
seconds only. The load generator runs on the same 2-core machine and takes CPU from the
server: compare ratios measured in the same run rather than absolute figures across runs.
"""

import argparse
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC = "goodwill.interactions.v1"
NGINX_BODY = '{"accepted":1,"rejected":0}'

WRK_LUA = r"""
-- Posts the bodies of BODIES (one per line, JSON events) in turn, one per request.
local bodies = {}
local i = 0
init = function(args)
  local headers = {["Content-Type"] = "application/json", ["Host"] = "127.0.0.1"}
  local auth = os.getenv("GW_WRK_AUTHORIZATION")
  if auth ~= nil and auth ~= "" then
    headers["Authorization"] = auth
  end
  for line in io.lines(os.getenv("GW_WRK_BODIES")) do
    bodies[#bodies + 1] = wrk.format("POST", "/v1/events", headers, line)
  end
end
request = function()
  i = i % #bodies + 1
  return bodies[i]
end
"""


def die(msg):
    print("ingest_bench: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(cond, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            die("timed out after %d s waiting for %s" % (timeout_s, what))
        time.sleep(0.1)


def http_status(url):
    import urllib.request
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Procs:
    """Processes started by the bench, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, args, env=None):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        self.procs.append((name, p))
        return p

    def check_alive(self):
        for name, p in self.procs:
            if p.poll() is not None:
                with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                    die("%s exited with status %s; its log ends:\n%s" % (name, p.returncode, f.read()[-2000:]))

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)


def nginx_conf(tmp, port):
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(tmp, "nginx", d), exist_ok=True)
    n = os.path.join(tmp, "nginx")
    conf = os.path.join(n, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off;
worker_processes 1;
pid %(n)s/nginx.pid;
error_log %(n)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(n)s/body;
  proxy_temp_path %(n)s/proxy;
  fastcgi_temp_path %(n)s/fastcgi;
  uwsgi_temp_path %(n)s/uwsgi;
  scgi_temp_path %(n)s/scgi;
  client_max_body_size 16m;
  client_body_buffer_size 1m;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      default_type application/json;
      return 202 '%(body)s';
    }
  }
}
""" % {"n": n, "port": port, "body": NGINX_BODY})
    return n, conf


def run_json(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        die("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.decode()[-1000:]))
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port, bodies, conns, duration, cpu_pid):
    env = dict(os.environ, GW_WRK_BODIES=bodies["lines_file"], GW_WRK_AUTHORIZATION=bodies["authorization"])
    # wrk has no warm-up option: a 1 s run first, not counted.
    subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d1s", "-s", bodies["lua"], "http://127.0.0.1:%d" % port],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=60)
    cpu0 = proc_cpu_s(cpu_pid) if cpu_pid else None
    p = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--latency", "-s", bodies["lua"],
                        "http://127.0.0.1:%d" % port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=120)
    cpu1 = proc_cpu_s(cpu_pid) if cpu_pid else None
    out = p.stdout.decode()
    if p.returncode != 0:
        die("wrk exited %d: %s %s" % (p.returncode, out, p.stderr.decode()))
    rps = None
    non2xx = 0
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if line.startswith("Non-2xx or 3xx responses:"):
            non2xx = int(line.split()[-1])
    if rps is None:
        die("no Requests/sec in wrk's output:\n" + out)
    total = rps * duration
    res = {"requests_per_s": rps, "events_per_s": rps, "non2xx": non2xx}
    if cpu_pid:
        res["server_cpu_us_per_event"] = (cpu1 - cpu0) * 1e6 / total if total else None
    if non2xx:
        res["warning"] = "%d answers were not 2xx" % non2xx
    return res


def run_kcat(bootstrap, keyed_lines, events):
    """Feeds events keyed lines (cycling through keyed_lines) to kcat -P on stdin from memory,
    so that a run of a million events needs no file of a gigabyte."""
    block = b"".join(keyed_lines)
    full, rest = divmod(events, len(keyed_lines))
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(["kcat", "-P", "-b", bootstrap, "-t", TOPIC, "-K", "\t", "-z", "none",
                          "-X", "acks=all", "-X", "enable.idempotence=true"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(full):
            p.stdin.write(block)
        p.stdin.write(b"".join(keyed_lines[:rest]))
        p.stdin.close()
    except BrokenPipeError:
        pass
    err = p.stderr.read()
    p.wait(300)
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        die("kcat exited %d: %s" % (p.returncode, err.decode()[-1000:]))
    # Runs are sequential, so the children's usage that grew meanwhile is kcat's.
    cpu = (ru.ru_utime + ru.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"events_per_s": events / wall, "seconds": wall, "kcat_cpu_us_per_event": cpu * 1e6 / events}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("GW_BUILD_DIR", os.path.join(REPO, "build")))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--out", default="")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--interactions", type=int, default=2000, help="goodwill-gen interactions (events ~1.45x)")
    ap.add_argument("--ingest-arg", action="append", default=[],
                    help="extra goodwill-ingest argument, repeatable (e.g. --ingest-arg=--kafka-property "
                         "--ingest-arg=linger.ms=1)")
    ap.add_argument("--single-connections", type=int, default=256,
                    help="connections of the single-event scenarios, nginx's and ingest's alike")
    ap.add_argument("--batch-connections", type=int, default=32, help="connections of the batch scenarios")
    ap.add_argument("--kcat-events", type=int, default=1000000)
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    for b in ("goodwill-devkafka", "goodwill-ingest", "goodwill-gen", "bench_ingest"):
        if not os.access(os.path.join(build, b), os.X_OK):
            die("%s/%s is missing: build it (cmake --build %s --target %s)" % (build, b, build, b))
    for tool in ("nginx", "wrk", "kcat"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            die("%s is not installed (scripts/bootstrap installs it)" % tool)
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"

    tmp = tempfile.mkdtemp(prefix="gw-ingest-bench-")
    procs = Procs(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    try:
        # Sample events: the same bytes for every scenario.
        events_file = os.path.join(tmp, "events.ndjson")
        with open(events_file, "wb") as f:
            subprocess.run([os.path.join(build, "goodwill-gen"), "--seed", "4", "--interactions",
                            str(args.interactions), "--teams", "20", "--tenant", "bench"], stdout=f, check=True,
                           timeout=60)
        with open(events_file, "rb") as f:
            lines = [l for l in f.read().split(b"\n") if l.strip()]
        avg_bytes = sum(len(l) for l in lines) / len(lines)
        # kcat's input: the same events, keyed like ingest keys them (tenant_id/interaction_id).
        keyed = []
        for l in lines:
            ev = json.loads(l)
            keyed.append(("%s/%s\t" % (ev["tenant_id"], ev["interaction_id"])).encode() + l + b"\n")
        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        # Bearer tokens, when this ingest has them: one token for the events' tenant.
        auth_args, authorization = [], ""
        ingest_help = subprocess.run([os.path.join(build, "goodwill-ingest"), "--help"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, timeout=30).stdout
        if b"--tokens-file" in ingest_help:
            token = "bench-" + secrets.token_hex(16)
            tokens = os.path.join(tmp, "tokens")
            with open(tokens, "w") as f:
                f.write("%s\tbench\tingest_bench\n" % hashlib.sha256(token.encode()).hexdigest())
            auth_args = ["--tokens-file", tokens]
            authorization = "Bearer " + token
        bodies = {"lines_file": events_file, "lua": lua, "authorization": authorization}

        dk_port_file = os.path.join(tmp, "bootstrap")
        procs.start("devkafka", [os.path.join(build, "goodwill-devkafka"), "--brokers", "3", "--partitions", "6",
                                 "--bootstrap-file", dk_port_file], env=env)
        wait_for(lambda: procs.check_alive() or os.path.exists(dk_port_file), 60, "devkafka's bootstrap file")
        bootstrap = open(dk_port_file).read().strip()

        ing_port, admin_port, nginx_port = free_ports(3)
        ing = procs.start("ingest", [os.path.join(build, "goodwill-ingest"), "--log-level", "warn", "--listen-host",
                                     "127.0.0.1", "--listen-port", str(ing_port), "--admin-host", "127.0.0.1",
                                     "--admin-port", str(admin_port), "--kafka-bootstrap", bootstrap]
                          + auth_args + args.ingest_arg, env=env)
        wait_for(lambda: procs.check_alive() or http_status("http://127.0.0.1:%d/readyz" % admin_port) == 200, 90,
                 "goodwill-ingest /readyz")

        ndir, conf = nginx_conf(tmp, nginx_port)
        ngx = procs.start("nginx", [nginx_bin, "-p", ndir, "-c", conf, "-e", os.path.join(ndir, "error.log")],
                          env=env)

        def nginx_up():
            procs.check_alive()
            try:
                socket.create_connection(("127.0.0.1", nginx_port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(nginx_up, 30, "nginx to listen on %d" % nginx_port)
        print("# devkafka %s, ingest :%d (pid %d), nginx :%d (pid %d); %d events, %.0f bytes each on average"
              % (bootstrap, ing_port, ing.pid, nginx_port, ngx.pid, len(lines), avg_bytes), flush=True)
        rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode().strip()
        print("# source %s, %d CPUs, load average %.2f at start; bearer token: %s"
              % (rev or "?", os.cpu_count(), os.getloadavg()[0], "yes" if authorization else "no (ingest has none)"),
              flush=True)

        gen = os.path.join(build, "bench_ingest")

        auth_header = ["--header", "Authorization: " + authorization] if authorization else []

        def bench(label, port, pid, per, conns, rate=0, extra=()):
            cmd = [gen, "--port", str(port), "--events", events_file, "--events-per-request", str(per),
                   "--connections", str(conns), "--duration", str(args.duration), "--warmup", "1",
                   "--rate", str(rate), "--label", label] + auth_header + list(extra)
            if pid:
                cmd += ["--cpu-pid", str(pid)]
            return lambda: run_json(cmd)

        # Protobuf bodies come with a later ingest: probe before measuring them.
        probe = run_json([gen, "--port", str(ing_port), "--events", events_file, "--events-per-request", "100",
                          "--protobuf", "--connections", "1", "--duration", "2", "--warmup", "0"] + auth_header)
        protobuf_ok = probe["ok"] > 0 and set(probe["status"]) == {"202"}
        if not protobuf_ok:
            print("# protobuf batches: ingest answered %s to application/x-protobuf; ingest-protobuf100 skipped"
                  % probe["status"], flush=True)

        scenarios = [
            ("nginx-single", bench("nginx-single", nginx_port, None, 1, args.single_connections)),
            ("ingest-single", bench("ingest-single", ing_port, ing.pid, 1, args.single_connections)),
            ("nginx-single-wrk", lambda: run_wrk(nginx_port, bodies, args.single_connections, args.duration, None)),
            ("ingest-single-wrk", lambda: run_wrk(ing_port, bodies, args.single_connections, args.duration,
                                                  ing.pid)),
            ("ingest-ndjson100", bench("ingest-ndjson100", ing_port, ing.pid, 100, args.batch_connections)),
        ] + ([("ingest-protobuf100", bench("ingest-protobuf100", ing_port, ing.pid, 100, args.batch_connections,
                                                  extra=["--protobuf"]))]
             if protobuf_ok else []) + [
            ("kcat-produce", lambda: run_kcat(bootstrap, keyed, args.kcat_events)),
            ("nginx-rate5000", bench("nginx-rate5000", nginx_port, None, 1, 64, 5000)),
            ("ingest-rate5000", bench("ingest-rate5000", ing_port, ing.pid, 1, 64, 5000)),
        ]
        if args.only:
            wanted = set(args.only.split(","))
            scenarios = [s for s in scenarios if s[0] in wanted]
        results = {name: [] for name, _ in scenarios}
        for r in range(args.runs):
            for name, fn in scenarios:
                procs.check_alive()
                res = fn()
                results[name].append(res)
                print("run %d %-18s %s" % (r + 1, name, json.dumps(res, separators=(",", ":"))), flush=True)
                bad = {k: res[k] for k in ("errors", "dropped", "connect_failures", "non2xx") if res.get(k)}
                if bad or any(st[0] != "2" for st in res.get("status", {})):
                    print("WARNING: %s run %d had failures %s, statuses %s: its figures are not comparable"
                          % (name, r + 1, bad, res.get("status")), flush=True)

        def med(name, key):
            vals = [x[key] for x in results.get(name, []) if x.get(key) is not None]
            return statistics.median(vals) if vals else None

        print("\n| scenario | requests/s | events/s | p50 ms | p99 ms | ingest CPU µs/event |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, _ in scenarios:
            def fmt(key, f="%.0f"):
                v = med(name, key)
                return f % v if v is not None else ""
            cpu = med(name, "server_cpu_us_per_event") if name.startswith("ingest") else None
            print("| %s | %s | %s | %s | %s | %s |" % (name, fmt("requests_per_s"), fmt("events_per_s"),
                                                        fmt("p50_ms", "%.2f"), fmt("p99_ms", "%.2f"),
                                                        "%.1f" % cpu if cpu is not None else ""))

        def ratio(a, b, key):
            x, y = med(a, key), med(b, key)
            return "%.2f" % (x / y) if x and y else "n/a"

        print("\nmedians of %d runs of %d s" % (args.runs, args.duration))
        print("ingest-single / nginx-single (requests/s, target >= 0.50): %s"
              % ratio("ingest-single", "nginx-single", "requests_per_s"))
        print("ingest-single-wrk / nginx-single-wrk (requests/s): %s"
              % ratio("ingest-single-wrk", "nginx-single-wrk", "requests_per_s"))
        print("ingest-ndjson100 / kcat-produce (events/s, target >= 0.50): %s"
              % ratio("ingest-ndjson100", "kcat-produce", "events_per_s"))
        print("ingest-protobuf100 / kcat-produce (events/s, target >= 0.50): %s"
              % ratio("ingest-protobuf100", "kcat-produce", "events_per_s"))
        p99 = med("ingest-rate5000", "p99_ms")
        print("ingest-rate5000 p99: %s ms (target < 25)" % ("%.2f" % p99 if p99 is not None else "n/a"))
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"runs": args.runs, "duration_s": args.duration, "events": len(lines),
                           "avg_event_bytes": avg_bytes, "results": results}, f, indent=1)
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
