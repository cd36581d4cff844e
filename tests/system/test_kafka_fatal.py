"""A Kafka client that fails for good, and settings that may not be overridden, as a user sees
them.

1. Protected settings: goodwill-ingest with --kafka-property acks=1 and goodwill-scorer with
   --kafka-property enable.auto.commit=false (and the "topic." form of auto.offset.reset)
   refuse to start: exit status 2, and stderr names the property and why.
2. A fatal error: goodwill-devkafka (two brokers, admin port on) and goodwill-ingest run
   alone; one event is accepted (202). Then devkafka is told to answer the next Produce
   request to one broker 4 s late, and the next one to the other broker with
   OUT_OF_ORDER_SEQUENCE_NUMBER, which librdkafka's
   idempotent producer treats as fatal (it can no longer tell what the brokers hold). An event
   is posted and stays in flight; an event for another partition gets 503; /readyz answers 503
   naming the error while the ingest drains (it waits for the event in flight); the ingest
   answers that event, logs the fatal error and that it cannot go on, and exits 1 by itself.
3. A fatal consumer error: goodwill-scorer joins its group on the same cluster, then its
   heartbeats are answered FENCED_INSTANCE_ID (fatal to a static group member); the scorer
   logs the fatal error, drains and exits 1 by itself. Then goodwill-aggregator alike (with a
   redis-server of its own).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}


def refused_at_start(cmd, prop, why):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), timeout=60)
    err = proc.stderr.decode(errors="replace")
    g.check(proc.returncode == 2, "%s exited %d, expected 2 (a refused configuration); stderr:\n%s"
            % (" ".join(cmd), proc.returncode, err[-2000:]))
    want = "kafka property %s may not be set: %s" % (prop, why)
    g.check(want in err, "%s: stderr does not say %r:\n%s" % (os.path.basename(cmd[0]), want, err[-2000:]))
    g.log("%s --kafka-property %s... refused: exit 2, %r" % (os.path.basename(cmd[0]), prop, want))


def listening(proc, log_path, what):
    def probe():
        g.check(proc.poll() is None, "%s exited (%s) while starting:\n%s"
                % (what, proc.returncode, open(log_path, errors="replace").read()[-3000:]))
        docs = g.log_lines(log_path, "listening")
        return bool(docs), docs[0] if docs else "no listening line yet"
    return g.wait_until(probe, 30, "%s to log its ports" % what)


def exits_after_fence(proc, admin, log_path, what, dk_admin):
    """Waits until the daemon is ready (its consumer joined the group), has its heartbeats
    answered FENCED_INSTANCE_ID and checks that it logs the fatal error, drains and exits 1."""
    def ready():
        g.check(proc.poll() is None, "%s exited (%s) before it was ready:\n%s"
                % (what, proc.returncode, open(log_path, errors="replace").read()[-3000:]))
        code, _, body = g.http("GET", admin + "/readyz", timeout_s=5)
        return code == 200, (code, body[:200])
    g.wait_until(ready, 60, "%s to join its group and be ready" % what)
    fault(dk_admin, "api=Heartbeat&error=FENCED_INSTANCE_ID&count=1")
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        raise g.TestFailure("%s still runs 60 s after its consumer was fenced; log:\n%s"
                            % (what, open(log_path, errors="replace").read()[-3000:]))
    text = open(log_path, errors="replace").read()
    g.check(rc == 1, "%s exited %s after its fatal consumer error, expected 1; log:\n%s" % (what, rc, text[-3000:]))
    fatal = g.log_lines(log_path, "kafka fatal error: this client cannot go on")
    g.check(len(fatal) == 1 and fatal[0].get("error") == "FENCED_INSTANCE_ID",
            "%s: expected one 'kafka fatal error' line naming FENCED_INSTANCE_ID, got %s" % (what, fatal))
    g.check(g.log_lines(log_path, "cannot go on: draining, then exiting 1"),
            "%s did not log that it drains and exits 1" % what)
    g.log("%s, its consumer fenced: logged the fatal error, drained, exited 1" % what)


PARTITIONS = 2
SLOW_MS = 4000


def event(n):
    return json.dumps({"event_id": "fatal-%d" % n, "tenant_id": "fatal", "team_id": "team-f", "agent_id": "a-1",
                       "interaction_id": "call-%d" % n, "channel": "chat", "occurred_at": int(time.time() * 1000) - 60000,
                       "closed": {"handle_ms": 60000}})


def partition_of(n):
    """The partition librdkafka's default partitioner (consistent_random: CRC-32 of the key, the
    one zlib computes) gives event n, keyed tenant/interaction."""
    return zlib.crc32(("fatal/call-%d" % n).encode()) % PARTITIONS


def leaders(bootstrap):
    """{partition: leader broker id} of the interactions topic."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gw-systest-fatal-metadata"})
    try:
        md = c.list_topics(g.TOPIC_INTERACTIONS, timeout=10)
        return {p: m.leader for p, m in md.topics[g.TOPIC_INTERACTIONS].partitions.items()}
    finally:
        c.close()


def high_watermark(bootstrap, partition):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gw-systest-fatal-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(g.TOPIC_INTERACTIONS, partition), timeout=10)[1]
    finally:
        c.close()


def fault(dk_admin, query):
    code, _, body = g.http("POST", dk_admin + "/faults/request-errors?" + query, body=b"")
    g.check(code == 200, "devkafka fault injection %s answered %d: %r" % (query, code, body))
    g.log("devkafka: %s" % body.decode().strip())


def main():
    # 1. Settings that may not be overridden: refused before anything connects.
    refused_at_start([g.binary("ingest"), "--dev-mode", "--listen-port", "0", "--admin-port", "0",
                      "--kafka-bootstrap", "127.0.0.1:1", "--kafka-property", "acks=1"],
                     "acks", "goodwill requires acks=all")
    refused_at_start([g.binary("scorer"), "--admin-port", "0", "--kafka-bootstrap", "127.0.0.1:1",
                      "--kafka-property", "enable.auto.commit=false"],
                     "enable.auto.commit", "goodwill commits the offsets it has stored")
    refused_at_start([g.binary("scorer"), "--admin-port", "0", "--kafka-bootstrap", "127.0.0.1:1",
                      "--kafka-property", "topic.auto.offset.reset=latest"],
                     "topic.auto.offset.reset", "goodwill starts a new consumer group at the earliest offset")

    # 2. A fatal producer error.
    tmp = tempfile.mkdtemp(prefix="gw-systest-fatal-")
    dk_log, ing_log = os.path.join(tmp, "devkafka.log"), os.path.join(tmp, "ingest.log")
    sc_log, ag_log, rs_log = (os.path.join(tmp, n + ".log") for n in ("scorer", "aggregator", "redis"))
    bootstrap_file = os.path.join(tmp, "bootstrap")
    dk = g.popen_logged([g.binary("devkafka"), "--brokers", str(PARTITIONS), "--partitions", str(PARTITIONS),
                         "--bootstrap-file",
                         bootstrap_file, "--admin-port", "0"], dk_log, env=clean_env())
    ing = sc = ag = rs = None
    ok = False
    try:
        dk_admin = "http://127.0.0.1:%d" % listening(dk, dk_log, "goodwill-devkafka")["admin_port"]
        with open(bootstrap_file) as f:
            bootstrap = f.read().strip()
        ing = g.popen_logged([g.binary("ingest"), "--dev-mode", "--listen-host", "127.0.0.1", "--listen-port", "0",
                              "--admin-host", "127.0.0.1", "--admin-port", "0", "--kafka-bootstrap", bootstrap,
                              "--produce-timeout", "10s"], ing_log, env=clean_env())
        ports = listening(ing, ing_log, "goodwill-ingest")
        api, admin = "http://127.0.0.1:%d" % ports["port"], "http://127.0.0.1:%d" % ports["admin_port"]

        def ready():
            code, _, body = g.http("GET", admin + "/readyz", timeout_s=5)
            return code == 200, (code, body)
        g.wait_until(ready, 30, "goodwill-ingest to be ready")
        status, doc = g.post_events(api, [event(1)])
        g.check(status == 202, "the first event: ingest answered %d, expected 202: %s" % (status, doc))
        g.log("ingest ready; the first event accepted (202)")

        # Two partitions led by two brokers. The next Produce request to the first one is
        # answered late (its record stays in flight, so the drain must wait for it); the next
        # one to the other fails with OUT_OF_ORDER_SEQUENCE_NUMBER while it is the first batch
        # in flight of its partition. (Kafka answers a connection's requests in order, hence two
        # brokers: one late answer must not hold the other back.)
        lead = leaders(bootstrap)
        g.check(len(set(lead.values())) == PARTITIONS, "expected each partition led by its own broker: %s" % lead)
        slow_n, fatal_n = 2, next(n for n in range(3, 100) if partition_of(n) != partition_of(2))
        slow_part = partition_of(slow_n)
        fault(dk_admin, "api=Produce&error=NO_ERROR&broker=%d&delay_ms=%d" % (lead[slow_part], SLOW_MS))
        fault(dk_admin, "api=Produce&error=OUT_OF_ORDER_SEQUENCE_NUMBER&broker=%d"
              % lead[partition_of(fatal_n)])
        before = high_watermark(bootstrap, slow_part)
        slow = {}
        slow_thread = threading.Thread(target=lambda: slow.update(answer=g.post_events(api, [event(slow_n)])),
                                       daemon=True)
        slow_thread.start()
        # The broker appends before it answers: the record is in its log, the answer is late.
        g.wait_until(lambda: (high_watermark(bootstrap, slow_part) > before, "not yet"), 10,
                     "the slow event to reach partition %d" % slow_part)
        status, doc = g.post_events(api, [event(fatal_n)])
        g.check(status == 503, "the event hitting the fault: ingest answered %d, expected 503: %s" % (status, doc))
        g.log("the event hitting the fault: 503; the slow one is still in flight")

        want = "kafka producer failed for good: OUT_OF_ORDER_SEQUENCE_NUMBER"

        def not_ready():
            code, _, body = g.http("GET", admin + "/readyz", timeout_s=5)
            return code == 503 and want in body.decode(), (code, body[:200])
        seen = g.wait_until(not_ready, SLOW_MS / 2000, "/readyz to answer 503 naming the fatal error",
                            interval_s=0.05)
        g.log("/readyz answered 503 %r" % seen[1].decode().strip()[:100])
        g.check(ing.poll() is None, "goodwill-ingest exited before its in-flight record was answered")

        try:
            rc = ing.wait(60)
        except subprocess.TimeoutExpired:
            raise g.TestFailure("goodwill-ingest still runs 60 s after its fatal error; log:\n%s"
                                % open(ing_log, errors="replace").read()[-3000:])
        slow_thread.join(10)
        text = open(ing_log, errors="replace").read()
        g.check(rc == 1, "goodwill-ingest exited %s after its fatal error, expected 1; log:\n%s" % (rc, text[-3000:]))
        g.check("answer" in slow, "the request in flight during the drain was never answered")
        g.log("goodwill-ingest exited 1 by itself, after answering the request in flight (%d)" % slow["answer"][0])
        fatal = g.log_lines(ing_log, "kafka fatal error: this client cannot go on")
        g.check(len(fatal) == 1 and fatal[0].get("error") == "OUT_OF_ORDER_SEQUENCE_NUMBER",
                "expected one 'kafka fatal error' line naming OUT_OF_ORDER_SEQUENCE_NUMBER, got %s" % fatal)
        failing = g.log_lines(ing_log, "cannot go on: draining, then exiting 1")
        g.check(len(failing) == 1 and "OUT_OF_ORDER_SEQUENCE_NUMBER" in failing[0].get("reason", ""),
                "expected the daemon's 'cannot go on' line with the reason, got %s" % failing)
        stopped = g.log_lines(ing_log, "stopped")
        g.check(stopped and stopped[-1].get("exit_code") == 1, "expected a 'stopped' line with exit_code 1, got %s"
                % stopped)
        g.check(g.log_lines(ing_log, "ingest stopped"), "the ingest did not log that its drain finished")
        g.log("logged: the fatal error, the decision to drain, the end of the drain")

        # 3. A fatal consumer error: the scorer's group member is fenced (FENCED_INSTANCE_ID on
        # its heartbeat, fatal to a static member, which goodwill's consumers are).
        sc = g.popen_logged([g.binary("scorer"), "--admin-host", "127.0.0.1", "--admin-port", "0",
                             "--kafka-bootstrap", bootstrap, "--session-timeout", "6s"], sc_log, env=clean_env())
        sc_admin = "http://127.0.0.1:%d" % listening(sc, sc_log, "goodwill-scorer")["admin_port"]
        exits_after_fence(sc, sc_admin, sc_log, "goodwill-scorer", dk_admin)

        # The aggregator's consumer alike, with a redis-server of its own.
        port = g.free_port()
        rs = g.popen_logged(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], rs_log, env=clean_env())
        ag = g.popen_logged([g.binary("aggregator"), "--admin-host", "127.0.0.1", "--admin-port", "0",
                             "--api-host", "127.0.0.1", "--api-port", "0", "--dev-mode",
                             "--redis-url", "redis://127.0.0.1:%d" % port, "--kafka-bootstrap", bootstrap,
                             "--session-timeout", "6s"], ag_log, env=clean_env())
        ag_admin = "http://127.0.0.1:%d" % listening(ag, ag_log, "goodwill-aggregator")["admin_port"]
        exits_after_fence(ag, ag_admin, ag_log, "goodwill-aggregator", dk_admin)

        rc = g.terminate(dk, timeout_s=20)
        g.check(rc == 0, "goodwill-devkafka exited %s on SIGTERM" % rc)
        ok = True
    finally:
        for p in (ing, sc, ag, rs, dk):
            if p is not None and p.poll() is None:
                g.terminate(p)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            sys.stderr.write("test directory kept: %s\n" % tmp)


if __name__ == "__main__":
    g.run(main)
