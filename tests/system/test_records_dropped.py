"""Records goodwill-devkafka drops (its partitions keep at most 5 MiB) while the scorer is
stopped: devkafka says so, and so does the scorer, with the same offsets.

Starts the whole stack (6 partitions). Five small records go to partition 0 of
goodwill.interactions.v1 (written directly with confluent_kafka: undecodable, so the scorer
sends them to the DLQ) and the scorer reads and commits them; then it is stopped (SIGTERM,
exit 0). While it is away, 80 records of 100 KB go to the same partition, one batch each:
devkafka keeps about 52 and drops the oldest. Checked:
(a) devkafka logs the drop as an error naming topic, partition and offsets, the counts of its
    lines add up to the new log start (every record below it was dropped), and
    goodwill_devkafka_records_dropped_total{topic,partition="0"} on its admin port equals it;
(b) the restarted scorer logs "kafka records lost" for the same topic and partition, from its
    committed offset (5) to the log start - 1, and goodwill_scorer_records_lost_total for that
    partition equals the count; it then reads exactly the records that are left, and every
    daemon exits 0 at the end.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

PARTITION = 0
SMALL = 5
BIG = 80
BIG_BYTES = 100 * 1000


def produce(bootstrap, n, size):
    from confluent_kafka import Producer
    errors = []
    # One record per batch, so the drops are counted in records by any measure.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                  "enable.idempotence": True})
    value = b"\xff" * size  # not an InteractionEvent: the scorer sends it to the DLQ
    for i in range(n):
        p.produce(g.TOPIC_INTERACTIONS, value=value, key=b"dropped/%d" % i, partition=PARTITION,
                  on_delivery=lambda err, msg: err and errors.append(err))
        p.poll(0)
    g.check(p.flush(60) == 0, "confluent_kafka: records not delivered within 60 s")
    g.check(not errors, "confluent_kafka: delivery failed: %s" % errors[:3])


def watermarks(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "gw-systest-dropped-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(g.TOPIC_INTERACTIONS, PARTITION), timeout=10)
    finally:
        c.close()


def committed(bootstrap):
    """The scorer group's committed offset of the partition (-1001: none)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "goodwill-scorer"})
    try:
        return c.committed([TopicPartition(g.TOPIC_INTERACTIONS, PARTITION)], timeout=10)[0].offset
    finally:
        c.close()


def metric(admin, name, partition=PARTITION):
    code, _, body = g.http("GET", admin + "/metrics", timeout_s=5)
    g.check(code == 200, "GET %s/metrics answered %d" % (admin, code))
    series = '%s{topic="%s",partition="%d"} ' % (name, g.TOPIC_INTERACTIONS, partition)
    for line in body.decode().splitlines():
        if line.startswith(series):
            return float(line[len(series):])
    return None


def consumed(admin):
    """goodwill_scorer_records_consumed_total of the scorer at admin (0 while unanswered)."""
    try:
        code, _, body = g.http("GET", admin + "/metrics", timeout_s=5)
    except OSError:
        return 0
    return (g.metric_sum(body.decode(), "goodwill_scorer_records_consumed_total") or 0) if code == 200 else 0


def main():
    with g.Stack(session_timeout="6s") as st:
        scorer_admin, dk_admin = st.admin("scorer"), st.admin("devkafka")
        g.check(metric(dk_admin, "goodwill_devkafka_records_dropped_total") == 0,
                "devkafka should show goodwill_devkafka_records_dropped_total 0 for every partition at start")

        produce(st.kafka, SMALL, 10)
        g.wait_until(lambda: (consumed(scorer_admin) >= SMALL, consumed(scorer_admin)), 60,
                     "the scorer to read the %d small records" % SMALL)
        st.kill("scorer", "TERM")  # drains and commits what it did
        g.check(committed(st.kafka) == SMALL, "the scorer group should have committed offset %d of partition %d, has %s"
                % (SMALL, PARTITION, committed(st.kafka)))
        g.log("the scorer read and committed offsets 0..%d, then stopped" % (SMALL - 1))

        produce(st.kafka, BIG, BIG_BYTES)
        low, high = watermarks(st.kafka)
        g.check(high == SMALL + BIG, "high watermark %d, expected %d" % (high, SMALL + BIG))
        g.check(SMALL < low < high, "devkafka should have dropped records past offset %d (low watermark %d)"
                % (SMALL, low))
        g.log("partition %d now holds offsets %d..%d: %d records dropped" % (PARTITION, low, high - 1, low))

        # (a) devkafka: log lines adding up to the log start, and its counter.
        dk_log = os.path.join(st.dir, "devkafka.log")

        def dropped_lines():
            lines = [d for d in g.log_lines(dk_log) if d.get("msg", "").startswith("records dropped")
                     and d.get("topic") == g.TOPIC_INTERACTIONS and d.get("partition") == PARTITION]
            return sum(d["count"] for d in lines) >= low, lines
        lines = g.wait_until(dropped_lines, 15, "devkafka to log the records it dropped")
        g.check(lines[0]["first_offset"] == 0 and lines[-1]["last_offset"] == low - 1
                and sum(d["count"] for d in lines) == low
                and all(a["last_offset"] + 1 == b["first_offset"] for a, b in zip(lines, lines[1:])),
                "devkafka's drop lines should cover offsets 0..%d exactly once: %s" % (low - 1, lines))
        g.check(lines[0]["level"] == "error", "devkafka logs a drop at level %s, expected error" % lines[0]["level"])
        dropped = metric(dk_admin, "goodwill_devkafka_records_dropped_total")
        g.check(dropped == low, "goodwill_devkafka_records_dropped_total = %s, expected %d" % (dropped, low))
        g.log("devkafka logged and counted %d dropped records (offsets 0..%d)" % (low, low - 1))

        # (b) the scorer, restarted, reports what it never read.
        st.start("scorer")
        scorer_admin = st.admin("scorer")
        scorer_log = os.path.join(st.dir, "scorer.log")

        def lost_lines():
            lines = [d for d in g.log_lines(scorer_log, "kafka records lost: skipped without being read")
                     if d.get("topic") == g.TOPIC_INTERACTIONS and d.get("partition") == PARTITION]
            return bool(lines), lines
        lost = g.wait_until(lost_lines, 60, "the restarted scorer to report the records it lost")
        g.check(len(lost) == 1 and lost[0]["first_offset"] == SMALL and lost[0]["last_offset"] == low - 1
                and lost[0]["count"] == low - SMALL and lost[0]["level"] == "error",
                "expected one error line for offsets %d..%d (%d records), got %s" % (SMALL, low - 1, low - SMALL, lost))
        counted = metric(scorer_admin, "goodwill_scorer_records_lost_total")
        g.check(counted == low - SMALL, "goodwill_scorer_records_lost_total = %s, expected %d" % (counted, low - SMALL))
        g.log("the scorer logged and counted %d lost records (offsets %d..%d)" % (low - SMALL, SMALL, low - 1))

        n = g.wait_until(lambda: (consumed(scorer_admin) >= high - low, consumed(scorer_admin)), 60,
                         "the scorer to read the %d records left" % (high - low))
        g.check(n == high - low, "the restarted scorer read %d records, expected the %d left" % (n, high - low))
        g.log("the scorer read the %d records left" % (high - low))


if __name__ == "__main__":
    g.run(main)
