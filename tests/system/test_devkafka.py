"""goodwill-devkafka, the embedded Kafka-protocol cluster, seen by independent clients.

Starts goodwill-devkafka --brokers 3 --partitions 4 alone; kcat -L must list the three
goodwill topics with 4 partitions each and 3 brokers; a record produced with
confluent_kafka must be consumed back (through a consumer group, as the daemons do);
SIGTERM must stop it with status 0.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

BROKERS = 3
PARTITIONS = 4


def main():
    from confluent_kafka import Consumer, Producer

    tmp = tempfile.mkdtemp(prefix="gw-systest-devkafka-")
    bootstrap_file = os.path.join(tmp, "bootstrap")
    log_path = os.path.join(tmp, "devkafka.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    proc = g.popen_logged([g.binary("devkafka"), "--brokers", str(BROKERS), "--partitions", str(PARTITIONS),
                           "--bootstrap-file", bootstrap_file], log_path, env=env)
    ok = False
    try:
        def started():
            g.check(proc.poll() is None, "goodwill-devkafka exited with status %s while starting; log:\n%s"
                    % (proc.returncode, open(log_path, errors="replace").read()[-3000:]))
            return os.path.exists(bootstrap_file) and os.path.getsize(bootstrap_file) > 0, "no bootstrap file yet"

        g.wait_until(started, 20, "goodwill-devkafka to write %s" % bootstrap_file)
        with open(bootstrap_file) as f:
            bootstrap = f.read().strip()
        g.check(bootstrap and "\n" not in bootstrap, "the bootstrap file should hold one line, got %r" % bootstrap)
        g.log("bootstrap %s" % bootstrap)

        # Metadata with kcat (librdkafka-based, but an independent program).
        md = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap, "-m", "10"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        g.check(md.returncode == 0, "kcat -L failed (%d): %s" % (md.returncode, md.stderr.decode()))
        meta = json.loads(md.stdout)
        g.check(len(meta.get("brokers", [])) == BROKERS,
                "kcat -L lists %d brokers, expected %d" % (len(meta.get("brokers", [])), BROKERS))
        topics = {t["topic"]: t for t in meta.get("topics", [])}
        for topic in (g.TOPIC_INTERACTIONS, g.TOPIC_SCORED, g.TOPIC_DLQ):
            g.check(topic in topics, "kcat -L does not list topic %s (topics: %s)" % (topic, sorted(topics)))
            n = len(topics[topic].get("partitions", []))
            g.check(n == PARTITIONS, "topic %s has %d partitions, expected %d" % (topic, n, PARTITIONS))
        g.log("kcat -L: %d brokers; %s" % (BROKERS, ", ".join("%s/%d" % (t, PARTITIONS) for t in sorted(topics))))

        # Produce one record and consume it back through a consumer group.
        key, value = b"systest/key-1", b"hello from test_devkafka %d" % time.time_ns()
        errors = []
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
        p.produce(g.TOPIC_DLQ, value=value, key=key, on_delivery=lambda err, msg: err and errors.append(err))
        g.check(p.flush(20) == 0, "confluent_kafka: the record was not delivered within 20 s")
        g.check(not errors, "confluent_kafka: delivery failed: %s" % errors)
        del p  # closes the producer now, not after the cluster is gone (no reconnect noise)

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gw-systest-devkafka",
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        try:
            c.subscribe([g.TOPIC_DLQ])

            def consumed():
                m = c.poll(0.5)
                if m is None:
                    return False, "nothing consumed yet"
                g.check(not m.error(), "consumer error: %s" % m.error())
                return (m.key(), m.value()) == (key, value), "consumed %r" % ((m.key(), m.value()),)

            g.wait_until(consumed, 30, "the produced record to be consumed back", interval_s=0)
        finally:
            c.close()
        g.log("produced and consumed back one record on %s" % g.TOPIC_DLQ)

        rc = g.terminate(proc, timeout_s=20)
        g.check(rc == 0, "goodwill-devkafka exited with status %s on SIGTERM, expected 0; log:\n%s"
                % (rc, open(log_path, errors="replace").read()[-3000:]))
        g.log("SIGTERM -> exit 0")
        ok = True
    finally:
        if proc.poll() is None:
            g.terminate(proc)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            sys.stderr.write("devkafka directory kept: %s\n" % tmp)


if __name__ == "__main__":
    g.run(main)
