#!/usr/bin/python3
"""sizing.py [--interactions N] [--teams T]: what one record costs in Kafka and in Redis.

Starts a local stack (scripts/devstack), posts `goodwill-gen --seed 9` events through ingest,
waits until every one is counted, then measures with independent clients:
- Kafka: the average value bytes of the records on goodwill.interactions.v1 and
  goodwill.scored.v1 (python3-confluent-kafka), i.e. what a record costs before the brokers'
  per-batch overhead and replication;
- Redis: MEMORY USAGE of every goodwill key, grouped by kind (1m, 1h, 1d buckets, dedupe sets,
  indexes, applied marks), per key and per record counted, and INFO's used_memory.
Prints the figures docs/OPERATIONS.md's sizing section is computed from.
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
import gwstack as g  # noqa: E402


def topic_bytes(bootstrap, topic):
    records = g.kafka_read_all(bootstrap, topic)
    n = len(records)
    size = sum(len(v or b"") for v in records)
    return n, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interactions", type=int, default=3000)
    ap.add_argument("--teams", type=int, default=24)
    args = ap.parse_args()
    g.require_modules()
    import redis
    lines = g.generate(seed=9, interactions=args.interactions, teams=args.teams, tenant="size")
    expected, _ = g.expected_counts(lines)
    with g.Stack(session_timeout="6s") as st:
        for i in range(0, len(lines), 500):
            status, doc = g.post_events(st.ingest, lines[i:i + 500])
            g.check(status == 202, "ingest answered %d: %s" % (status, doc))
        g.wait_for_counts(st.api, "size", expected, timeout_s=120, settle_s=2.0)
        for topic in (g.TOPIC_INTERACTIONS, g.TOPIC_SCORED):
            n, size = topic_bytes(st.kafka, topic)
            print("kafka %-26s %7d records %10d bytes  %6.0f value bytes/record"
                  % (topic, n, size, size / n if n else 0))
        r = redis.Redis.from_url(st.redis_url)
        kinds = collections.defaultdict(lambda: [0, 0])
        for key in r.scan_iter(count=1000):
            k = key.decode()
            if ":b:1m:" in k:
                kind = "bucket 1m"
            elif ":b:1h:" in k:
                kind = "bucket 1h"
            elif ":b:1d:" in k:
                kind = "bucket 1d"
            elif ":dedupe:" in k or ":seen:" in k:
                kind = "dedupe set"
            elif k.startswith("gw:applied:"):
                kind = "applied mark"
            else:
                kind = "index set"
            kinds[kind][0] += 1
            kinds[kind][1] += r.memory_usage(key) or 0
        records = sum(t["interactions"] + t["surveys"] for t in expected.values())
        for kind, (n, size) in sorted(kinds.items()):
            print("redis %-13s %6d keys %10d bytes  %6.0f bytes/key  %7.1f bytes/record"
                  % (kind, n, size, size / n, size / records))
        print("redis used_memory %d bytes for %d records of %d teams" % (r.info("memory")["used_memory"],
                                                                       records, len(expected)))


if __name__ == "__main__":
    g.run(main)
