#!/usr/bin/python3
"""A Redis that forgets, healed from Kafka without an operator.

Kafka is the source of truth; Redis is a store derived from it. Three ways Redis loses
acknowledged writes, each after a first batch of events was counted exactly:

1. killed (SIGKILL) without AOF or snapshots, restarted empty, while the aggregator runs:
   the aggregator notices on its reconnect that its applied marks are gone, reads its
   partitions again from Kafka, and the counts come back exact (first batch included);
2. FLUSHALL while the aggregator stays connected: the periodic check (--verify-interval 1s)
   notices the marks are gone and heals the same way;
3. killed with AOF (appendfsync always) and restarted from it: nothing was lost, so nothing is
   read again (no heal), and the counts stay exact.

After each, a second batch is posted and every team's interactions and surveys must equal
exactly what was acknowledged over both batches: lost = 0, doubled = 0, in the read API and in
the 1d buckets read with redis-py. goodwill_aggregator_heals_total and the aggregator's log
must say what happened.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "heal"


def heals(st):
    code, _, body = g.http("GET", st.admin("aggregator") + "/metrics", timeout_s=5)
    g.check(code == 200, "aggregator /metrics answered %d" % code)
    value = g.metric_sum(body.decode(), "goodwill_aggregator_heals_total")
    g.check(value is not None, "the aggregator's /metrics has no goodwill_aggregator_heals_total")
    return value


def post_all(st, lines):
    for i in range(0, len(lines), 200):
        batch = lines[i:i + 200]
        status, doc = g.post_events(st.ingest, batch)
        g.check(status == 202 and doc.get("accepted") == len(batch),
                "ingest answered %d to a batch of %d: %s" % (status, len(batch), doc))


def merged(a, b):
    out = {}
    for src in (a, b):
        for team, c in src.items():
            have = out.setdefault(team, {"interactions": 0, "surveys": 0})
            have["interactions"] += c["interactions"]
            have["surveys"] += c["surveys"]
    return out


def scenario(name, redis_args, lose, expect_heal, seed):
    first = g.generate(seed=seed, interactions=120, teams=4, tenant=TENANT)
    second = g.generate(seed=seed + 100, interactions=80, teams=4, tenant=TENANT)
    exp_first, _ = g.expected_counts(first)
    exp_both = merged(exp_first, g.expected_counts(second)[0])
    env = {"GW_DEVSTACK_AGGREGATOR_ARGS": "--verify-interval 1s --flush-interval 20ms"}
    if redis_args:
        env["GW_DEVSTACK_REDIS_ARGS"] = redis_args
    with g.Stack(session_timeout="6s", extra_env=env) as st:
        post_all(st, first)
        g.compare_counts("%s: read API before the loss" % name,
                         g.wait_for_counts(st.api, TENANT, exp_first, timeout_s=90, settle_s=2.0), exp_first)
        before = heals(st)
        lose(st)
        post_all(st, second)
        got = g.wait_for_counts(st.api, TENANT, exp_both, timeout_s=150, settle_s=3.0)
        g.compare_counts("%s: read API after the loss" % name, got, exp_both)
        g.compare_counts("%s: Redis 1d buckets after the loss" % name, g.redis_counts(st.redis_url, TENANT),
                         exp_both)
        after = heals(st)
        log_text = open(os.path.join(st.dir, "aggregator.log"), errors="replace").read()
        if expect_heal:
            g.check(after > before, "%s: goodwill_aggregator_heals_total stayed at %s" % (name, after))
            g.check("redis lost applied records" in log_text,
                    "%s: the aggregator's log does not say Redis lost applied records" % name)
        else:
            g.check(after == before, "%s: %s heals although nothing was lost" % (name, after - before))
        g.log("%s: %d + %d events counted exactly; heals %g -> %g"
              % (name, len(first), len(second), before, after))


def kill_and_restart(st):
    st.kill("redis", "KILL")
    st.start("redis")


def flushall(st):
    import redis
    redis.Redis.from_url(st.redis_url).flushall()


def main():
    g.require_modules()
    scenario("killed without AOF, restarted empty", None, kill_and_restart, True, seed=41)
    scenario("FLUSHALL while connected", None, flushall, True, seed=42)
    scenario("killed with AOF (appendfsync always)", "--appendonly yes --appendfsync always",
             kill_and_restart, False, seed=43)


if __name__ == "__main__":
    g.run(main)
