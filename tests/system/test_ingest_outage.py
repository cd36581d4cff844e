"""Nothing goodwill-ingest acknowledged is ever lost, even when Kafka stops mid-load.

Starts goodwill-devkafka (3 brokers) and goodwill-ingest --produce-timeout 3s directly, then
posts small NDJSON requests (1 to 4 events, unique event ids) from several threads over
keep-alive connections, recording for every request its event ids, its status, its
Retry-After header and when it started and ended. Mid-load the whole Kafka cluster is frozen
with SIGSTOP for OUTAGE_S seconds (a killed mock cluster would lose its data, a frozen one
keeps it), then thawed with SIGCONT. Checks:

- every answer is 202 or 503; no request fails at the connection level, and none takes
  longer than the produce timeout plus a margin (a stopped Kafka must not hang clients);
- every 503 carries Retry-After; every request that started and ended inside the outage got
  503 (a 202 there would be an answer before Kafka could acknowledge anything);
- ingest recovers: after SIGCONT, requests get 202 again within a bounded time;
- read back with an independent client (confluent_kafka), the topic holds every event id
  that was answered 202 (events of 503'd requests may or may not be there: both are fine);
- goodwill_ingest_events_accepted_total counts at least the acknowledged events, and
  ingest still drains and exits 0 on SIGTERM.

When goodwill-ingest has --tokens-file (bearer tokens), the test writes a tokens file with one
token for its tenant and sends it with every request.
"""

import hashlib
import http.client
import json
import os
import shutil
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "outage"
PRODUCE_TIMEOUT_S = 3
# librdkafka scans for timed-out messages once a second, and the machine may be loaded: a
# request may take the produce timeout plus this long before it counts as hanging.
HANG_MARGIN_S = 6
OUTAGE_S = 10
WORKERS = 4
PRE_OUTAGE_ACKED = 100  # requests answered 202 before the outage starts
POST_OUTAGE_ACKED = 40  # requests answered 202 after it, to call ingest recovered
CLIENT_TIMEOUT_S = 30
# kill() returns once SIGSTOP is queued; the broker threads stop a moment later. Requests that
# started within this margin after it are not judged as "during the outage".
STOP_MARGIN_S = 0.05


def event(eid, n):
    """A small valid event: a survey or a closed interaction with a short transcript."""
    now_ms = int(time.time() * 1000)
    base = {"event_id": eid, "tenant_id": TENANT, "team_id": "team-%d" % (n % 5), "agent_id": "a-%d" % (n % 7),
            "interaction_id": "i-" + eid, "occurred_at": now_ms - 60000}
    if n % 2:
        base["channel"] = "email"
        base["survey"] = {"likelihood_to_recommend": n % 11, "comment": "fine"}
    else:
        base["channel"] = "chat"
        base["closed"] = {"handle_ms": 120000, "wait_ms": 5000, "transfers": 0, "resolved": True, "transcript": [
            {"seq": 1, "speaker": "customer", "text": "It is still not working.", "offset_ms": 0},
            {"seq": 2, "speaker": "agent", "text": "Sorry about that, fixed now.", "offset_ms": 4000},
            {"seq": 3, "speaker": "customer", "text": "Thanks, that fixed it!", "offset_ms": 9000}]}
    return json.dumps(base, separators=(",", ":"))


def auth_setup(tmp):
    """(extra ingest flags, request headers): a tokens file with one fresh token for TENANT
    when this goodwill-ingest authenticates with bearer tokens, else nothing."""
    proc = subprocess.run([g.binary("ingest"), "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=30)
    if b"--tokens-file" not in proc.stdout:
        return [], {}
    token = "outage-" + secrets.token_hex(16)
    path = os.path.join(tmp, "tokens")
    with open(path, "w") as f:
        f.write("%s\t%s\ttest_ingest_outage\n" % (hashlib.sha256(token.encode()).hexdigest(), TENANT))
    return ["--tokens-file", path], {"Authorization": "Bearer " + token}


class Load:
    """WORKERS threads posting until stop is set; results is a list of dicts (appended under
    the GIL, one per request)."""

    def __init__(self, port, headers):
        self.port = port
        self.headers = dict(headers, **{"Content-Type": "application/x-ndjson"})
        self.stop = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._worker, args=(w,), daemon=True) for w in range(WORKERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        g.check(not alive, "load threads %s did not finish within %.0f s of being told to stop" % (alive, timeout_s))

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def _worker(self, w):
        conn = None
        seq = 0
        while not self.stop.is_set():
            seq += 1
            k = 1 + seq % 4
            ids = ["out-%d-%d-%d" % (w, seq, i) for i in range(k)]
            body = ("\n".join(event(eid, seq + i) for i, eid in enumerate(ids)) + "\n").encode()
            rec = {"worker": w, "ids": ids, "status": None, "retry_after": None, "error": None,
                   "start": time.monotonic()}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_S)
                conn.request("POST", "/v1/events", body, self.headers)
                resp = conn.getresponse()
                data = resp.read()
                rec["status"] = resp.status
                rec["retry_after"] = resp.getheader("Retry-After")
                if resp.status not in (202, 503):
                    rec["error"] = "unexpected answer %d: %r" % (resp.status, data[:300])
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                rec["error"] = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            rec["end"] = time.monotonic()
            with self.lock:
                self.results.append(rec)
            if rec["error"]:
                # One connection-level failure is enough to fail the test; do not spin.
                self.stop.wait(0.5)
        if conn is not None:
            conn.close()


def count_acked(load, since):
    return sum(1 for r in load.snapshot() if r["status"] == 202 and r["start"] >= since)


def main():
    tmp = tempfile.mkdtemp(prefix="gw-systest-outage-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    bootstrap_file = os.path.join(tmp, "bootstrap")
    dk_log, ing_log = os.path.join(tmp, "devkafka.log"), os.path.join(tmp, "ingest.log")
    dk = ing = None
    frozen = False
    passed = False

    def tail(path):
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-25:])
        except OSError:
            return "(no log)"

    try:
        dk = g.popen_logged([g.binary("devkafka"), "--brokers", "3", "--partitions", "6", "--bootstrap-file",
                             bootstrap_file], dk_log, env=env)

        def dk_started():
            g.check(dk.poll() is None, "goodwill-devkafka exited (%s) while starting:\n%s" % (dk.returncode,
                                                                                            tail(dk_log)))
            return os.path.exists(bootstrap_file), "no bootstrap file yet"

        g.wait_until(dk_started, 60, "goodwill-devkafka to write %s" % bootstrap_file)
        with open(bootstrap_file) as f:
            bootstrap = f.read().strip()

        auth_args, headers = auth_setup(tmp)
        ing = g.popen_logged([g.binary("ingest"), "--listen-host", "127.0.0.1", "--listen-port", "0",
                              "--admin-host", "127.0.0.1", "--admin-port", "0", "--kafka-bootstrap", bootstrap,
                              "--produce-timeout", "%ds" % PRODUCE_TIMEOUT_S, "--shutdown-grace", "30s"] + auth_args,
                             ing_log, env=env)

        def ports():
            g.check(ing.poll() is None, "goodwill-ingest exited (%s) while starting:\n%s" % (ing.returncode,
                                                                                           tail(ing_log)))
            with open(ing_log, errors="replace") as f:
                for line in f:
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        continue
                    if doc.get("msg") == "listening" and "port" in doc:
                        return True, (doc["port"], doc["admin_port"])
            return False, "no \"listening\" line in %s yet" % ing_log

        port, admin_port = g.wait_until(ports, 60, "goodwill-ingest to log its ports")
        admin = "http://127.0.0.1:%d" % admin_port

        def ready():
            try:
                status, _, body = g.http("GET", admin + "/readyz", timeout_s=5)
            except OSError as e:
                return False, str(e)
            return status == 200, "%d %r" % (status, body[:100])

        g.wait_until(ready, 90, "goodwill-ingest /readyz to answer 200")
        g.log("devkafka %s (pid %d), ingest port %d (pid %d)%s" % (bootstrap, dk.pid, port, ing.pid,
                                                                  ", bearer token" if headers else ""))

        load = Load(port, headers)
        t_begin = time.monotonic()
        load.start()
        try:
            g.wait_until(lambda: (count_acked(load, t_begin) >= PRE_OUTAGE_ACKED, count_acked(load, t_begin)), 60,
                         "%d requests answered 202 before the outage" % PRE_OUTAGE_ACKED, interval_s=0.1)

            os.kill(dk.pid, signal.SIGSTOP)
            frozen = True
            t_stop = time.monotonic()
            g.log("Kafka frozen (SIGSTOP) after %d requests" % len(load.snapshot()))
            load.stop.wait(OUTAGE_S)
            t_cont = time.monotonic()
            os.kill(dk.pid, signal.SIGCONT)
            frozen = False
            g.log("Kafka thawed (SIGCONT) after %.1f s" % (t_cont - t_stop))

            g.wait_until(lambda: (count_acked(load, t_cont) >= POST_OUTAGE_ACKED, count_acked(load, t_cont)), 90,
                         "%d requests answered 202 after Kafka came back (ingest recovering)" % POST_OUTAGE_ACKED,
                         interval_s=0.2)
            t_recovered = time.monotonic()
        finally:
            load.stop.set()
            load.join(CLIENT_TIMEOUT_S + 10)
        results = load.snapshot()

        errors = [r for r in results if r["error"]]
        g.check(not errors, "%d requests failed (first: worker %d: %s)" % (len(errors), errors[0]["worker"],
                                                                          errors[0]["error"]) if errors else "")
        slowest = max(results, key=lambda r: r["end"] - r["start"])
        g.check(slowest["end"] - slowest["start"] <= PRODUCE_TIMEOUT_S + HANG_MARGIN_S,
                "a request took %.1f s (status %s), more than the produce timeout %d s + %d s: clients hang while "
                "Kafka is down" % (slowest["end"] - slowest["start"], slowest["status"], PRODUCE_TIMEOUT_S,
                                   HANG_MARGIN_S))
        no_retry = [r for r in results if r["status"] == 503 and not r["retry_after"]]
        g.check(not no_retry, "%d answers 503 lack Retry-After" % len(no_retry))
        inside = [r for r in results if r["start"] > t_stop + STOP_MARGIN_S and r["end"] < t_cont]
        g.check(inside, "no request both started and ended within the %d s outage: the produce timeout did not "
                "answer in time" % OUTAGE_S)
        # A 202 here would mean an answer before Kafka could have acknowledged anything.
        wrong = [r for r in inside if r["status"] != 503]
        g.check(not wrong, "%d requests made and answered while Kafka was frozen got %s instead of 503"
                % (len(wrong), sorted({r["status"] for r in wrong})))
        n503 = sum(1 for r in results if r["status"] == 503)
        acked = {eid for r in results if r["status"] == 202 for eid in r["ids"]}
        refused = {eid for r in results if r["status"] == 503 for eid in r["ids"]}
        g.log("%d requests: %d answered 202 (%d events), %d answered 503 (%d events), %d inside the outage; "
              "recovered %.1f s after SIGCONT" % (len(results), len(results) - n503, len(acked), n503, len(refused),
                                                 len(inside), t_recovered - t_cont))

        values = g.kafka_read_all(bootstrap, g.TOPIC_INTERACTIONS, timeout_s=90)
        on_topic = []
        for v in values:
            f = g.protobuf_string_fields(v, {1, 2})
            if f.get(2, b"").decode() == TENANT:
                on_topic.append(f.get(1, b"").decode())
        topic_ids = set(on_topic)
        lost = sorted(acked - topic_ids)
        g.check(not lost, "%d of %d acknowledged events are missing from %s (first: %s)"
                % (len(lost), len(acked), g.TOPIC_INTERACTIONS, lost[:5]))
        g.log("topic %s: %d records of tenant %s, every one of the %d acknowledged events present; %d of the %d "
              "events answered 503 arrived anyway; %d duplicate records"
              % (g.TOPIC_INTERACTIONS, len(on_topic), TENANT, len(acked), len(refused & topic_ids), len(refused),
                 len(on_topic) - len(topic_ids)))

        status, _, metrics = g.http("GET", admin + "/metrics", timeout_s=10)
        g.check(status == 200, "GET /metrics on the admin port answered %d" % status)
        accepted = g.metric_sum(metrics.decode(), "goodwill_ingest_events_accepted_total")
        g.check(accepted is not None and accepted >= len(acked),
                "goodwill_ingest_events_accepted_total is %s, but %d events were answered 202" % (accepted, len(acked)))

        rc = g.terminate(ing, timeout_s=40)
        g.check(rc == 0, "goodwill-ingest exited %s on SIGTERM after the outage, expected 0; log:\n%s"
                % (rc, tail(ing_log)))
        passed = True
    finally:
        if dk is not None and frozen:
            os.kill(dk.pid, signal.SIGCONT)
        for proc in (ing, dk):
            if proc is not None:
                g.terminate(proc)
        if passed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            g.log("logs kept in %s" % tmp)


if __name__ == "__main__":
    g.run(main)
