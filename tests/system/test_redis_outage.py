"""Redis stalls mid-stream: the aggregator retries, pauses, resumes, and counts exactly once.

Starts the whole stack with a small aggregator backlog limit (--max-pending 300), posts a
third of about 1,200 generated events and waits until the pipeline counts some of them, then
freezes redis-server with SIGSTOP (connections stay open, nothing is answered: the hardest
kind of outage, because the aggregator cannot tell whether a script it sent ran) and posts
the rest. While Redis is frozen the aggregator must report failed Redis calls (its 5 s command
timeout) and pause consuming once its backlog passes the limit. After SIGCONT, Redis also
executes the scripts whose answers the aggregator gave up on, and the aggregator sends those
batches again: the per-team dedupe of record ids must make the totals come out exactly equal
to the posted counts, in the read API and in Redis itself, with the consumer resumed.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "stall"
BATCH_LINES = 100


def aggregator_metric(st, name):
    """The metric's value, or None while /metrics cannot be read (a busy machine): the waits
    below poll again rather than fail on one slow answer."""
    try:
        code, _, body = g.http("GET", st.admin("aggregator") + "/metrics", timeout_s=15)
    except OSError as e:
        g.log("aggregator /metrics not read: %s" % e)
        return None
    if code != 200:
        g.log("aggregator /metrics answered %d" % code)
        return None
    return g.metric_sum(body.decode(), name)


def errors_above(st, floor):
    now = aggregator_metric(st, "goodwill_aggregator_redis_errors_total")
    return now is not None and now > floor, now


def aggregator_log(st):
    with open(os.path.join(st.dir, "aggregator.log"), errors="replace") as f:
        return f.read()


def main():
    lines = g.generate(seed=11, interactions=800, teams=6, tenant=TENANT, survey_rate=0.5, span="3h")
    expected, ids = g.expected_counts(lines)
    g.log("generated %d events: (interactions, surveys) = %s over %d teams"
          % (len(lines), g.totals(expected), len(expected)))
    batches = [lines[i:i + BATCH_LINES] for i in range(0, len(lines), BATCH_LINES)]
    first = len(batches) // 3

    extra = {"GW_DEVSTACK_AGGREGATOR_ARGS": "--max-pending 300"}
    with g.Stack(extra_env=extra) as st:
        def post(batch_list):
            for batch in batch_list:
                status, doc = g.post_events(st.ingest, batch)
                g.check(status == 202 and doc.get("accepted") == len(batch),
                        "ingest answered %d to a batch of %d: %s" % (status, len(batch), doc))

        def counted():
            got = g.api_counts_or_none(st.api, TENANT)
            return 0 if got is None else sum(g.totals(got))

        post(batches[:first])
        g.wait_until(lambda: (counted() > 0, counted()), 60, "the pipeline to count the first events")
        errors_before = aggregator_metric(st, "goodwill_aggregator_redis_errors_total")
        g.check(errors_before is not None, "the aggregator's /metrics could not be read")

        st.kill("redis", "STOP")
        try:
            post(batches[first:])
            g.log("posted the remaining %d batches while Redis is frozen" % (len(batches) - first))
            g.wait_until(lambda: ("consumer paused" in aggregator_log(st), aggregator_log(st)[-400:]), 90,
                         "the aggregator to pause consuming with a backlog over --max-pending 300")
            g.wait_until(lambda: errors_above(st, errors_before), 60,
                         "goodwill_aggregator_redis_errors_total to count the timed-out Redis calls")
        finally:
            st.kill("redis", "CONT")

        got = g.wait_for_counts(st.api, TENANT, expected, timeout_s=120, settle_s=3.0)
        g.compare_counts("read API", got, expected)
        g.compare_counts("Redis (1d buckets)", g.redis_counts(st.redis_url, TENANT), expected)
        g.wait_until(lambda: ("consumer resumed" in aggregator_log(st), aggregator_log(st)[-400:]), 30,
                     "the aggregator to resume consuming after Redis came back")
        g.log("after the stall: every team's counts equal the posted counts; duplicates caught: %s"
              % aggregator_metric(st, "goodwill_aggregator_records_duplicate_total"))
        # Every Redis error counted is explained in the log, rate limited: the lines name the
        # tenant and team and why, and the ones held back are counted as "suppressed".
        errors = aggregator_metric(st, "goodwill_aggregator_redis_errors_total") - errors_before

        def explained_lines():
            return [json.loads(l) for l in aggregator_log(st).splitlines()
                    if l.startswith("{") and ("apply failed" in l or "apply not sent" in l
                                              or "redis read failed" in l or "team index update" in l
                                              or "similar lines were held back" in l)]

        def explained_count():
            lines = explained_lines()
            return sum(int("held back" not in l["msg"]) + int(l.get("suppressed", 0)) for l in lines)

        # Lines held back by the rate limit are told within about a second.
        g.wait_until(lambda: (explained_count() >= errors, explained_count()), 15,
                     "the log to explain all %d Redis errors counted (lines + suppressed)" % errors)
        lines = [l for l in explained_lines() if "held back" not in l["msg"]]
        g.check(lines and all(l.get("tenant") == TENANT and l.get("error") for l in lines),
                "the Redis errors are not explained in the aggregator's log: %s" % lines[:3])
        explained = explained_count()
        g.log("%d Redis errors counted, explained by %d log lines (%d suppressed)"
              % (errors, len(lines), explained - len(lines)))


if __name__ == "__main__":
    g.run(main)
