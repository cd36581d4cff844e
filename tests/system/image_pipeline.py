"""The goodwill image, run as Kubernetes would run it: the daemons from the image, as its
numeric non-root user, under its entrypoint (tini), on a read-only root filesystem with a
writable /tmp, configured by GOODWILL_* variables only, against the local redis-server and
goodwill-devkafka. Events posted through ingest (with a bearer token) must all be counted by
the read API; then SIGTERM must drain every daemon, through tini, to exit 0.

    /usr/bin/python3 tests/system/image_pipeline.py [IMAGE]       (as root; make image-test)

IMAGE defaults to the reference scripts/image wrote to build/image/image.ref. Not a ctest
(tests/CMakeLists.txt runs every tests/system/test_*): it needs the image, buildah and root,
and `make image-test` builds the image once and runs it.

How a container runs here (docs/KUBERNETES.md): `podman run` cannot start containers on this
machine, so each daemon gets its own container (`buildah from IMAGE`) and runs through
`buildah run --isolation chroot`, on the host's network, as the image's USER. Its root
filesystem is made read-only for real: the container's mounted root is bind-mounted over
itself read-only before the daemon starts, and a host folder is mounted on /tmp (the
emptyDir of the chart). Once every daemon is ready that bind mount is detached lazily: the
daemons keep their read-only root until they exit, while buildah can clean up after them.
After the run, the container's overlay upper layer must hold nothing but what this test put
there: the daemons wrote nothing outside /tmp.

With an aggregator that has --mode (apply | read), the test runs two aggregator containers,
--mode apply and --mode read, as the chart does; without it one aggregator in its default
mode does both (the log says which).
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "img"
IMAGE_UID = 10001
TEST_TIMEOUT_S = 240
SHUTDOWN_GRACE = "15s"


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


def run(cmd, timeout_s=120, check_rc=True):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
    if check_rc:
        g.check(proc.returncode == 0, "%s exited %d: %s" % (" ".join(cmd), proc.returncode,
                                                          (proc.stderr or proc.stdout).decode()[-2000:]))
    return proc.stdout.decode()


def http(method, url, body=None, token=None, content_type=None, timeout_s=10):
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_code(url):
    try:
        return http("GET", url, timeout_s=2)[0]
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
        return None


def metric_value(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


class Container:
    """One daemon in its own container from the image, started through the image's entrypoint."""

    def __init__(self, image, name, work, env, argv, entrypoint):
        self.name = name
        self.image = image
        self.tmp = os.path.join(work, name + "-tmp")  # the container's /tmp (the chart's emptyDir)
        os.makedirs(self.tmp)
        os.chmod(self.tmp, 0o1777)
        self.log_path = os.path.join(work, name + ".log")
        self.env = env
        self.argv = argv
        self.entrypoint = entrypoint
        self.ctr = None
        self.root = None
        self.ro_bound = False
        self.proc = None
        self.pid = None

    def create(self):
        self.ctr = run(["buildah", "from", "--pull-never", "--name",
                        "gw-image-test-%d-%s" % (os.getpid(), self.name), self.image]).strip()
        self.root = run(["buildah", "mount", self.ctr]).strip()
        # buildah bind-mounts its own /run/.containerenv into the container: the file must
        # exist before the root becomes read-only. Nothing else is created.
        open(os.path.join(self.root, "run", ".containerenv"), "a").close()
        run(["mount", "--bind", self.root, self.root])
        self.ro_bound = True
        run(["mount", "-o", "remount,ro,bind", self.root])

    def start(self):
        cmd = ["buildah", "run", "--isolation", "chroot", "--network", "host", "-v", self.tmp + ":/tmp"]
        for k, v in sorted(self.env.items()):
            cmd += ["-e", "%s=%s" % (k, v)]
        # tini is PID 1 in a pod; here it is not, so it registers as a subreaper instead.
        cmd += ["-e", "TINI_SUBREAPER=1", self.ctr, "--"] + self.entrypoint + self.argv
        g.log("%s: %s" % (self.name, " ".join(self.entrypoint + self.argv)))
        self.proc = g.popen_logged(cmd, self.log_path)

    def detach_read_only_root(self):
        """The daemon keeps its read-only root (its chroot holds the mount); the lazy unmount
        only lets buildah unmount the container when the daemon has exited."""
        if self.ro_bound:
            subprocess.run(["umount", "-l", self.root], stderr=subprocess.DEVNULL)
            self.ro_bound = False

    def find_pids(self, marker):
        """(tini pid, daemon pid) on the host, found by an environment variable only this
        container has (buildah's chroot isolation shares the host's PID namespace)."""
        tini = daemon = None
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read().split(b"\0")
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if marker.encode() not in env:
                continue
            if argv0.endswith("tini"):
                tini = int(d)
            elif os.path.basename(argv0).startswith("goodwill-"):
                daemon = int(d)
        return tini, daemon

    def uid_of(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(x) for x in line.split()[1:]]
        return None

    def mount_options(self, pid):
        """{mount point: per-mount options} as the process sees its file systems."""
        out = {}
        with open("/proc/%d/mountinfo" % pid) as f:
            for line in f:
                fields = line.split()
                out[fields[4]] = fields[5].split(",")
        return out

    def upper_layer_files(self):
        """Paths the container wrote into its root filesystem (its overlay upper layer)."""
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[1] == self.root and fields[2] == "overlay":
                    m = re.search(r"upperdir=([^,]+)", fields[3])
                    if m:
                        upper = m.group(1)
                        out = []
                        for dirpath, _, files in os.walk(upper):
                            for fn in files:
                                out.append(os.path.relpath(os.path.join(dirpath, fn), upper))
                        return out
        return None

    def stop(self, timeout_s):
        """SIGTERM to tini (it forwards it to the daemon); returns (exit status, seconds)."""
        t0 = time.monotonic()
        if self.proc is None:
            return None, 0
        if self.proc.poll() is None and self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            g.log("%s: still running %d s after SIGTERM: killing it" % (self.name, timeout_s))
            self.proc.kill()
            self.proc.wait(10)
            if self.pid is not None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return self.proc.returncode, time.monotonic() - t0

    def log_tail(self, n=25):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def remove(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.detach_read_only_root()
        if self.ctr:
            subprocess.run(["buildah", "umount", self.ctr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["buildah", "rm", self.ctr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def image_ref():
    if len(sys.argv) > 1:
        return sys.argv[1]
    path = os.path.join(g.BUILD_DIR, "image", "image.ref")
    g.check(os.path.exists(path), "%s missing: build the image first (make image) or name it" % path)
    with open(path) as f:
        return f.read().strip()


def main():
    g.check(os.geteuid() == 0, "run as root: buildah run and the read-only bind mounts need it")
    g.check(shutil.which("buildah"), "buildah not found: scripts/bootstrap-image")
    image = image_ref()
    inspect = json.loads(run(["buildah", "inspect", "--type", "image", image]))
    config = inspect["OCIv1"]["config"]
    entrypoint = config.get("Entrypoint") or []
    g.log("image %s: User %s, Entrypoint %s" % (image, config.get("User"), entrypoint))
    g.check(config.get("User", "").split(":")[0] == str(IMAGE_UID),
            "the image's USER is %r, expected the numeric %d" % (config.get("User"), IMAGE_UID))
    g.check(entrypoint[:1] == ["/usr/bin/tini"], "the image's entrypoint is %r, expected tini" % (entrypoint,))

    work = tempfile.mkdtemp(prefix="gw-image-test-")
    keep = False
    procs = []
    containers = []
    t_start = time.monotonic()
    try:
        # The infrastructure, from the host: redis-server and the embedded Kafka cluster.
        p_redis, p_ingest, p_ingest_admin, p_scorer_admin, p_agg_admin, p_api, p_read_admin = free_ports(7)
        os.makedirs(os.path.join(work, "redis"))
        procs.append(g.popen_logged(["redis-server", "--port", str(p_redis), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", os.path.join(work, "redis")],
                                    os.path.join(work, "redis.log")))
        bootstrap_file = os.path.join(work, "kafka.bootstrap")
        procs.append(g.popen_logged([g.binary("devkafka"), "--brokers", "1", "--partitions", "3",
                                     "--bootstrap-file", bootstrap_file], os.path.join(work, "devkafka.log")))
        g.wait_until(lambda: (os.path.exists(bootstrap_file) and os.path.getsize(bootstrap_file) > 0, None), 30,
                     "goodwill-devkafka's bootstrap file")
        with open(bootstrap_file) as f:
            bootstrap = f.readline().strip()
        redis_url = "redis://127.0.0.1:%d" % p_redis

        # The tokens file, as the chart's Secret would hold it (hashes only), on the /tmp of
        # ingest and of the read API (a read-only root has no other place to mount it here).
        token = secrets.token_urlsafe(24)
        tokens_line = "%s\t%s\timage test\n" % (hashlib.sha256(token.encode()).hexdigest(), TENANT)

        help_text = run(["buildah", "run", "--isolation", "chroot", run(["buildah", "from", "--pull-never", "--name",
                                                                           "gw-image-test-%d-help" % os.getpid(),
                                                                           image]).strip(), "--",
                         "goodwill-aggregator", "--help"])
        subprocess.run(["buildah", "rm", "gw-image-test-%d-help" % os.getpid()], stdout=subprocess.DEVNULL)
        has_mode = re.search(r"^\s*--mode[= ]", help_text, re.M) is not None
        g.log("goodwill-aggregator %s --mode: %s" % ("has" if has_mode else "has no",
                                                    "apply and read containers" if has_mode
                                                    else "one aggregator in its default mode (consume, apply and serve)"))

        common = {"GOODWILL_KAFKA_BOOTSTRAP": bootstrap, "GOODWILL_LOG_LEVEL": "info",
                  "GOODWILL_SHUTDOWN_GRACE": SHUTDOWN_GRACE}
        # A list setting in the environment is comma-separated (lib/base/config.c).
        consumer_props = "client.id=goodwill-image-test,fetch.wait.max.ms=10"
        specs = [
            ("ingest", dict(common, GOODWILL_LISTEN_HOST="127.0.0.1", GOODWILL_LISTEN_PORT=str(p_ingest),
                            GOODWILL_ADMIN_HOST="127.0.0.1", GOODWILL_ADMIN_PORT=str(p_ingest_admin),
                            GOODWILL_KAFKA_PROPERTY="client.id=goodwill-image-test",
                            GOODWILL_TOKENS_FILE="/tmp/tokens.tsv"),
             ["goodwill-ingest"], "http://127.0.0.1:%d/readyz" % p_ingest_admin),
            ("scorer", dict(common, GOODWILL_ADMIN_HOST="127.0.0.1", GOODWILL_ADMIN_PORT=str(p_scorer_admin),
                            GOODWILL_SESSION_TIMEOUT="6s", GOODWILL_KAFKA_PROPERTY=consumer_props),
             ["goodwill-scorer"], "http://127.0.0.1:%d/readyz" % p_scorer_admin),
        ]
        agg_env = dict(common, GOODWILL_ADMIN_HOST="127.0.0.1", GOODWILL_ADMIN_PORT=str(p_agg_admin),
                       GOODWILL_API_HOST="127.0.0.1", GOODWILL_API_PORT=str(p_api), GOODWILL_REDIS_URL=redis_url,
                       GOODWILL_SESSION_TIMEOUT="6s", GOODWILL_KAFKA_PROPERTY=consumer_props,
                       GOODWILL_TOKENS_FILE="/tmp/tokens.tsv", GOODWILL_TEAM_METRICS_INTERVAL="1s")
        if has_mode:
            api_port_apply = free_ports(1)[0]
            specs.append(("aggregator", dict(agg_env, GOODWILL_MODE="apply", GOODWILL_API_PORT=str(api_port_apply)),
                          ["goodwill-aggregator"], "http://127.0.0.1:%d/readyz" % p_agg_admin))
            specs.append(("read-api", dict(agg_env, GOODWILL_MODE="read", GOODWILL_ADMIN_PORT=str(p_read_admin)),
                          ["goodwill-aggregator"], "http://127.0.0.1:%d/readyz" % p_api))
        else:
            specs.append(("aggregator", agg_env, ["goodwill-aggregator"], "http://127.0.0.1:%d/readyz" % p_agg_admin))

        readiness = {}
        for name, env, argv, ready_url in specs:
            env = dict(env, GW_IMAGE_TEST_MARKER="%d-%s" % (os.getpid(), name))
            c = Container(image, name, work, env, argv, entrypoint)
            containers.append(c)
            c.create()
            if "GOODWILL_TOKENS_FILE" in env:
                path = os.path.join(c.tmp, "tokens.tsv")
                with open(path, "w") as f:
                    f.write(tokens_line)
                os.chmod(path, 0o644)
            readiness[name] = ready_url
        for c in containers:  # the consumer groups form faster when all join at once
            c.start()

        t_ready = time.monotonic()
        for c in containers:
            def ready(c=c):
                if c.proc.poll() is not None:
                    raise g.TestFailure("%s exited with status %s while starting:\n%s"
                                        % (c.name, c.proc.returncode, c.log_tail()))
                code = http_code(readiness[c.name])
                return code == 200, "GET %s = %s" % (readiness[c.name], code)
            g.wait_until(ready, 90, "%s to be ready" % c.name)
        g.log("all daemons ready %.1f s after their start" % (time.monotonic() - t_ready))

        # Who runs, as whom, on what root.
        for c in containers:
            tini, daemon = c.find_pids("GW_IMAGE_TEST_MARKER=%s" % c.env["GW_IMAGE_TEST_MARKER"])
            g.check(tini is not None and daemon is not None,
                    "%s: could not find its tini and daemon processes on the host" % c.name)
            c.pid = tini
            with open("/proc/%d/status" % daemon) as f:
                ppid = int(next(l for l in f if l.startswith("PPid:")).split()[1])
            g.check(ppid == tini, "%s: the daemon's parent is %d, not tini (%d)" % (c.name, ppid, tini))
            for pid, what in ((tini, "tini"), (daemon, "the daemon")):
                uids = c.uid_of(pid)
                g.check(uids and all(u == IMAGE_UID for u in uids),
                        "%s: %s runs with uids %s, expected %d" % (c.name, what, uids, IMAGE_UID))
            mounts = c.mount_options(daemon)
            g.check("ro" in mounts.get("/", []), "%s: the daemon's root filesystem is not read-only: %s"
                    % (c.name, mounts.get("/")))
            g.check("rw" in mounts.get("/tmp", []), "%s: the daemon's /tmp is not writable: %s"
                    % (c.name, mounts.get("/tmp")))
            g.log("%s: tini pid %d -> daemon pid %d, uid %d, read-only root" % (c.name, tini, daemon, IMAGE_UID))
        for c in containers:
            c.detach_read_only_root()

        # Traffic: generated events through ingest with the token; every one must be counted.
        lines = g.generate(seed=11, interactions=300, teams=4, tenant=TENANT, survey_rate=0.5, span="2h")
        expected, _ = g.expected_counts(lines)
        base = "http://127.0.0.1:%d" % p_ingest
        status, body = http("POST", base + "/v1/events", b"{}", token=None, content_type="application/json")
        g.check(status == 401, "ingest without a token answered %d (expected 401): %s" % (status, body[:200]))
        posted = 0
        for i in range(0, len(lines), 100):
            chunk = b"\n".join(lines[i:i + 100]) + b"\n"
            status, body = http("POST", base + "/v1/events", chunk, token=token,
                                content_type="application/x-ndjson", timeout_s=60)
            g.check(status == 202, "POST /v1/events answered %d: %s" % (status, body[:300]))
            posted += json.loads(body)["accepted"]
        g.check(posted == len(lines), "ingest accepted %d of %d events" % (posted, len(lines)))
        g.log("posted %d events (%s interactions, surveys)" % (posted, g.totals(expected)))

        api = "http://127.0.0.1:%d" % p_api

        def counted():
            try:
                status, body = http("GET", api + "/v1/teams?window=7d", token=token)
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
                return False, "read API: %s" % e
            if status != 200:
                return False, "read API answered %d: %s" % (status, body[:200])
            got = {r["team"]: {"interactions": int(r["interactions"]), "surveys": int(r["surveys"])}
                   for r in json.loads(body)["teams"]}
            return got == expected, got

        got = g.wait_until(counted, 90, "every posted event to be counted by the read API")
        g.compare_counts("the read API", got, expected)
        g.log("the read API counts every event: %s" % (g.totals(got),))

        # The admin ports: the daemons' own counts, and exposition promtool accepts.
        admins = {"ingest": p_ingest_admin, "scorer": p_scorer_admin, "aggregator": p_agg_admin}
        texts = {}
        for name, port in admins.items():
            status, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
            g.check(status == 200, "%s /metrics answered %d" % (name, status))
            texts[name] = body.decode()
            if shutil.which("promtool"):
                p = subprocess.run(["promtool", "check", "metrics"], input=body, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
                # promtool also prints lint advice (exit 3); only parse errors (exit 1) fail.
                g.check(p.returncode in (0, 3), "%s /metrics: promtool check metrics: %s" % (name, p.stdout.decode()))
        accepted = metric_value(texts["ingest"], "goodwill_ingest_events_accepted_total")
        g.check(accepted == len(lines), "goodwill_ingest_events_accepted_total = %s, posted %d" % (accepted, len(lines)))
        consumed = metric_value(texts["scorer"], "goodwill_scorer_records_consumed_total")
        g.check(consumed is not None and consumed >= len(lines),
                "goodwill_scorer_records_consumed_total = %s, posted %d" % (consumed, len(lines)))
        for name, port in admins.items():
            g.check(http_code("http://127.0.0.1:%d/healthz" % port) == 200, "%s /healthz is not 200" % name)

        # SIGTERM through tini: every daemon drains and exits 0 within its grace.
        grace_s = int(SHUTDOWN_GRACE.rstrip("s"))
        order = [c for n in ("ingest", "scorer", "aggregator", "read-api") for c in containers if c.name == n]
        for c in order:
            rc, took = c.stop(grace_s + 15)
            g.check(rc == 0, "%s exited with status %s on SIGTERM (expected 0):\n%s" % (c.name, rc, c.log_tail()))
            g.log("%s: exit 0 %.1f s after SIGTERM" % (c.name, took))

        # JSON log lines on stderr, and nothing written outside /tmp.
        for c in containers:
            with open(c.log_path, errors="replace") as f:
                log_lines = [l for l in f.read().splitlines() if l.strip()]
            bad = []
            for l in log_lines:
                try:
                    json.loads(l)
                except ValueError:
                    bad.append(l)
            g.check(log_lines and not bad, "%s: log lines that are not JSON: %r" % (c.name, bad[:5]))
            written = c.upper_layer_files()
            g.check(written is not None, "%s: could not find the container's overlay upper layer" % c.name)
            written = [p for p in written if p != "run/.containerenv"]
            g.check(not written, "%s wrote into its root filesystem: %s" % (c.name, written[:20]))
        g.log("every daemon logged JSON only and wrote nothing outside /tmp (%.1f s in all)"
              % (time.monotonic() - t_start))
    except BaseException:
        keep = True
        for c in containers:
            sys.stderr.write("--- %s (%s)\n%s" % (c.name, c.log_path, c.log_tail()))
        sys.stderr.write("work directory kept: %s\n" % work)
        raise
    finally:
        for c in containers:
            c.remove()
        for p in procs:
            g.terminate(p)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    def bounded(signum, frame):
        raise g.TestFailure("the image test ran over its %d s limit" % TEST_TIMEOUT_S)

    signal.signal(signal.SIGALRM, bounded)
    signal.alarm(TEST_TIMEOUT_S)
    g.run(main)
