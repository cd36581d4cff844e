"""Fault matrix, rows "Kafka": leader changes, request errors, a broker down and the whole
cluster down, under load, exactly once.

Starts the whole stack (3 brokers, consumer session timeout 6 s, ingest with
--produce-timeout 4s) and posts seeded goodwill-gen events (closed interactions and surveys
with unique event ids, over a few teams) through ingest in small batches from 2 clients, each
batch retried until it is answered 202 (tests/system/faultload.py). While the load flows, the
embedded cluster's admin port injects one fault after another:

1. leader change: every partition of every topic (interactions, scored, DLQ) moves to
   another broker, and 5 s later back;
2. request errors: retriable errors on the requests every daemon sends (Produce, Fetch,
   Metadata, FindCoordinator, Heartbeat, OffsetCommit, ListOffsets);
3. one broker down for BROKER_DOWN_S, then up (its partitions cannot be produced to or
   fetched from meanwhile);
4. the whole cluster down for CLUSTER_DOWN_S (longer than ingest's produce timeout), then up.

Checked:

- during the faults ingest answers only 202 or 503, every 503 with Retry-After (a 202 is
  only ever given for events Kafka acknowledged: checked at the end, every acknowledged event
  is on the topic and counted once); with the cluster down, requests get 503 (not a hang,
  not a 202);
- after each fault the pipeline resumes: within bounded waits ingest acknowledges
  RESUME_EVENTS more events, and the read API counts at least every event acknowledged by
  then (the scorer and the aggregator paused and went on by themselves);
- no daemon died or was restarted: the same processes run from start to end, and each exits
  0 on SIGTERM;
- once the load stopped, the read API and Redis count exactly the acknowledged events of
  every team (lost = 0, doubled = 0) after both consumer groups committed everything; every
  acknowledged event is on goodwill.interactions.v1 and its scored record on
  goodwill.scored.v1; nothing of the tenant is on the DLQ.

Environment: GW_FAULT_SEED (default 20262). The last line before PASS is a RESULT line with the
figures docs/RELIABILITY.md quotes.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultload as fl  # noqa: E402
import gwstack as g  # noqa: E402

TENANT = "kafkafaults"
TEAMS = 5
BROKERS = 3
PARTITIONS = 6  # devstack's default
PRODUCE_TIMEOUT_S = 4
LEADER_HOLD_S = 5
BROKER_DOWN_S = 10
CLUSTER_DOWN_S = 12  # > PRODUCE_TIMEOUT_S: requests in it must get 503
CALM_S = 3  # load without a fault before the next one
RESUME_TIMEOUT_S = 120  # bound of each wait after a fault (doubled in the ASan build for counting)
RESUME_EVENTS = 40  # acknowledged after a fault ended, before the pipeline must have counted them

# Retriable errors (librdkafka 2.0.2 retries them, refreshes metadata or finds the coordinator
# again), cluster-wide: whichever client sends the next such request gets it.
REQUEST_ERRORS = (
    ("Produce", "NOT_LEADER_FOR_PARTITION", 10),
    ("Produce", "REQUEST_TIMED_OUT", 5),
    ("Fetch", "NOT_LEADER_FOR_PARTITION", 10),
    ("Metadata", "LEADER_NOT_AVAILABLE", 5),
    ("FindCoordinator", "COORDINATOR_NOT_AVAILABLE", 5),
    ("Heartbeat", "NOT_COORDINATOR", 3),
    ("OffsetCommit", "COORDINATOR_NOT_AVAILABLE", 5),
    ("ListOffsets", "LEADER_NOT_AVAILABLE", 3),
)


def inject(st, path, **params):
    query = "&".join("%s=%s" % (k, v) for k, v in params.items())
    code, _, body = g.http("POST", st.admin("devkafka") + path + "?" + query, body=b"")
    g.check(code == 200, "devkafka %s?%s answered %d: %r" % (path, query, code, body))


def daemons_unchanged(st, pids):
    for name, pid in pids.items():
        g.check(not os.path.exists(os.path.join(st.dir, name + ".exit")),
                "%s exited during the Kafka faults; its log:\n%s" % (name, st.log_tail(name)))
        g.check(st.pid(name) == pid, "%s was restarted during the Kafka faults" % name)


def main():
    seed = int(os.environ.get("GW_FAULT_SEED", "20262"))
    asan = g.asan_build()
    _, batches = fl.seeded_batches(seed, TENANT, TEAMS, 6000)
    g.log("seed %d%s: %d events in %d batches available"
          % (seed, " (ASan build)" if asan else "", sum(map(len, batches)), len(batches)))
    env = {"GW_DEVSTACK_INGEST_ARGS": "--produce-timeout %ds" % PRODUCE_TIMEOUT_S,
           "GW_DEVKAFKA_BROKERS": str(BROKERS)}
    with g.Stack(session_timeout="6s", extra_env=env) as st:
        pids = {name: st.pid(name) for name in ("ingest", "scorer", "aggregator")}
        port = int(st.ingest.rsplit(":", 1)[1])
        load = fl.Load(port, batches, TENANT)
        load.start()
        resumed = {}
        t_load = time.monotonic()

        def calm(phase):
            load.phase = "calm before " + phase
            g.check(not load.failed.wait(CALM_S), "the load failed: %s" % load.error)

        def resume(phase, t_end):
            """After a fault: waits until ingest acknowledged RESUME_EVENTS more events, then until
            the read API counts every event acknowledged by then (the scorer and the aggregator
            went on by themselves), and checks that no daemon was restarted."""
            load.phase = "after " + phase
            target = load.acked_events() + RESUME_EVENTS

            def accepting():
                g.check(not load.failed.is_set(), "the load failed: %s" % load.error)
                n = load.acked_events()
                return n >= target, "%d acknowledged, waiting for %d" % (n, target)

            g.wait_until(accepting, RESUME_TIMEOUT_S, "ingest to acknowledge %d more events after %s"
                         % (RESUME_EVENTS, phase), interval_s=0.1)
            t_accepting = time.monotonic() - t_end
            acked = load.acked_events()

            def counted():
                got = g.api_counts_or_none(st.api, TENANT)
                n = sum(g.totals(got)) if got is not None else 0
                g.check(not load.failed.is_set(), "the load failed: %s" % load.error)
                return n >= acked, "%d counted of %d acknowledged" % (n, acked)

            g.wait_until(counted, RESUME_TIMEOUT_S * (2 if asan else 1),
                         "the pipeline to count, after %s, the %d events acknowledged by then" % (phase, acked),
                         interval_s=0.25)
            resumed[phase] = time.monotonic() - t_end
            g.log("%s: ingest acknowledged %d more events %.1f s after it, the %d acknowledged by then were "
                  "counted %.1f s after it; answers during the fault %s"
                  % (phase, RESUME_EVENTS, t_accepting, acked, resumed[phase], dict(load.by_phase[phase])))
            daemons_unchanged(st, pids)

        try:
            g.wait_until(lambda: (load.acked_events() > 0 or load.failed.is_set(), load.acked_events()), 60,
                         "the first batch to be acknowledged")

            calm("leader change")
            load.phase = "leader change"
            topics = (g.TOPIC_INTERACTIONS, g.TOPIC_SCORED, g.TOPIC_DLQ)
            for topic in topics:
                for p in range(PARTITIONS):
                    inject(st, "/faults/leader", topic=topic, partition=p, broker=(p + 1) % BROKERS + 1)
            time.sleep(LEADER_HOLD_S)  # the fault's duration, not a synchronisation
            for topic in topics:
                for p in range(PARTITIONS):
                    inject(st, "/faults/leader", topic=topic, partition=p, broker=p % BROKERS + 1)
            resume("leader change", time.monotonic())

            calm("request errors")
            load.phase = "request errors"
            for api, error, count in REQUEST_ERRORS:
                inject(st, "/faults/request-errors", api=api, error=error, count=count)
            time.sleep(LEADER_HOLD_S)
            resume("request errors", time.monotonic())

            calm("broker down")
            load.phase = "broker down"
            inject(st, "/faults/broker", id=2, state="down")
            time.sleep(BROKER_DOWN_S)
            inject(st, "/faults/broker", id=2, state="up")
            resume("broker down", time.monotonic())

            calm("cluster down")
            load.phase = "cluster down"
            for b in range(1, BROKERS + 1):
                inject(st, "/faults/broker", id=b, state="down")
            time.sleep(CLUSTER_DOWN_S)
            for b in range(1, BROKERS + 1):
                inject(st, "/faults/broker", id=b, state="up")
            t_up = time.monotonic()
            load.phase = "after cluster down"  # before the check below: answers from here on are not the fault's
            g.check(load.by_phase["cluster down"][503] > 0,
                    "no request was answered 503 while the whole cluster was down for %d s (ingest's produce "
                    "timeout %d s): answers %s" % (CLUSTER_DOWN_S, PRODUCE_TIMEOUT_S,
                                                   dict(load.by_phase["cluster down"])))
            resume("cluster down", t_up)
            calm("the end")
        finally:
            load.halt()
        acked, sent_events, acked_events = load.results()
        g.log("load: %d requests (%d retries: %d cut off, %d answered 503); %d events sent, %d acknowledged "
              "in %.0f s; answers by phase %s"
              % (load.requests, load.retries, load.cut, load.statuses.get(503, 0), sent_events, acked_events,
                 time.monotonic() - t_load, {k: dict(v) for k, v in load.by_phase.items()}))
        r = fl.verify_exact(st, TENANT, batches, acked, asan)
        daemons_unchanged(st, pids)
        print("RESULT seed=%d events_sent=%d acknowledged=%d counted=%d lost=%d doubled=%d answered_503=%d "
              "cluster_down_503=%d interactions_topic_rewrites=%d scored_topic_rewrites=%d resumed_after_s=%s"
              % (seed, sent_events, acked_events, r["counted"], r["lost"], r["doubled"],
                 load.statuses.get(503, 0), load.by_phase["cluster down"][503],
                 r["interactions_records"] - r["interactions_ids"], r["scored_records"] - r["scored_ids"],
                 ",".join("%s:%.1f" % (k.replace(" ", "_"), v) for k, v in resumed.items())), flush=True)


if __name__ == "__main__":
    g.run(main)
