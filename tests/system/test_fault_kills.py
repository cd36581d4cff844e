"""Fault matrix, row "SIGKILL": daemons killed at random moments under load, exactly once.

Starts the whole stack (consumer session timeout 6 s) and posts seeded goodwill-gen events
(closed interactions and surveys with unique event ids, over a few teams) through ingest in
small batches from CLIENTS threads. A client retries a batch until it is answered 202: a
request answered 503, or cut off because ingest was killed under it, is sent again with the
same events (same event ids), so a retry must never count twice. Meanwhile a killer, driven
by the same seed, SIGKILLs a random daemon (ingest, scorer, aggregator; each at least a
third of KILLS times) at random moments and restarts it with `devstack start`, which waits
until it is ready, KILLS times in all (GW_FAULT_KILLS, 24 by default).

Checked once the load stopped:

- every event sent was acknowledged (the clients retry until 202), and no request got an
  answer other than 202 or 503;
- the read API's counts (interactions and surveys per team, window 7d) reach exactly the
  acknowledged counts of every team, within a bounded wait, and stay there: a count above
  them is a doubled event, one below a lost event; Redis itself (n and s over the 1d
  buckets) says the same, after both consumer groups have committed everything on their
  input topics (so no replay is still to come);
- replays really happened: the aggregator's goodwill_aggregator_records_duplicate_total,
  summed over its incarnations (each sampled until it was killed, so a lower bound), is
  above 0; the topics, read back with confluent_kafka, show how many events and scored
  records were written more than once;
- no record of the tenant is on the DLQ, and every daemon exits 0 on SIGTERM at the end.

The test sends SIGKILL itself (no shell in between, so the moment is the one chosen) and
waits for devstack's wrapper to record the exit. After its random wait, ingest is killed in
the middle of a request when it catches one within 5 s (at a random point between 30% and
100% of the median request latency, about 3 ms here, with the request still unanswered), so
that some kills cut requests whose events may already be on Kafka: the clients' retries
write those again (reported as interactions_topic_rewrites; not asserted, the window is
narrow). A restart takes 0.1 s for ingest, 5 or 10 s for scorer and aggregator (their
consumer group waits out the dead member's 6 s session), whatever the build: 24 kills take
about 160 s in the release build and in the ASan build alike.

Environment: GW_FAULT_SEED (default 20261) picks the events, batch sizes, victims and
moments; GW_FAULT_KILLS (default 24; at least 3) the number of kills. The last line before
PASS is a RESULT line with the figures docs/RELIABILITY.md quotes.
"""

import collections
import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultload as fl  # noqa: E402
import gwstack as g  # noqa: E402

TENANT = "kills"
TEAMS = 5
KILL_GAP_S = (0.3, 2.5)  # random wait before each kill, after the previous victim is ready
VICTIMS = ("ingest", "scorer", "aggregator")


def kill_count():
    n = int(os.environ.get("GW_FAULT_KILLS", "24"))
    g.check(n >= 3, "GW_FAULT_KILLS must be at least 3 (one per daemon), got %d" % n)
    return n




def kill_now(st, name):
    """SIGKILL from this process (no shell in between, so the moment is the one chosen),
    then waits for devstack's wrapper to record the exit."""
    pid = st.pid(name)
    os.kill(pid, signal.SIGKILL)
    exit_file = os.path.join(st.dir, name + ".exit")
    g.wait_until(lambda: (os.path.exists(exit_file), "no %s yet" % exit_file), 30,
                 "%s (pid %d) to exit after SIGKILL" % (name, pid), interval_s=0.02)




def main():
    # Threads hand over the interpreter every millisecond rather than every 5: the killer
    # acts on "a request is in flight" while it still is.
    sys.setswitchinterval(0.001)
    seed = int(os.environ.get("GW_FAULT_SEED", "20261"))
    kills = kill_count()
    asan = g.asan_build()
    # About 13,000 events: over 5 minutes of load at the offered rate; the load stops when the
    # kills are done. (The embedded cluster keeps about 5 MiB per partition: this is 10 MiB
    # over 6 partitions.)
    rng, batches = fl.seeded_batches(seed, TENANT, TEAMS, 9000)
    plan = [VICTIMS[i % 3] for i in range(kills)]
    rng.shuffle(plan)
    gaps = [rng.uniform(*KILL_GAP_S) for _ in plan]
    catch_rng = random.Random(seed + 1)  # draws depend on timing: kept apart from the plan's
    g.log("seed %d%s: %d events in %d batches available; %d kills planned (%s)"
          % (seed, " (ASan build)" if asan else "", sum(map(len, batches)), len(batches), kills,
             ", ".join("%s %d" % (v, plan.count(v)) for v in VICTIMS)))

    with g.Stack(session_timeout="6s") as st:
        port = int(st.ingest.rsplit(":", 1)[1])
        load = fl.Load(port, batches, TENANT)  # 2 clients: about 2 * 2.4 * 8.5 = 40 events/s offered
        dups = fl.DuplicateCounter(st)
        dups.start()
        load.start()
        t_load = time.monotonic()
        done = collections.Counter()
        in_flight_kills = 0
        try:
            g.wait_until(lambda: (load.acked_events() > 0 or load.failed.is_set(), load.acked_events()), 60,
                         "the first batch to be acknowledged")
            for n, (victim, gap) in enumerate(zip(plan, gaps), 1):
                if load.failed.wait(gap):
                    break
                g.check(load.next < len(batches), "the load ran out of events after %d kills (%.0f s): raise the "
                        "number of interactions" % (n - 1, time.monotonic() - t_load))
                acked = load.acked_events()
                # Ingest dies with a request in flight when one comes within 5 s (its events may
                # be on Kafka already, unanswered: the client's retry writes them again).
                mid_request = victim == "ingest" and load.catch_in_flight(catch_rng, 5)
                if mid_request:
                    in_flight_kills += 1
                kill_now(st, victim)
                t_kill = time.monotonic()
                st.start(victim)
                done[victim] += 1
                g.log("kill %d/%d: %s%s (%d events acknowledged so far), ready again after %.1f s; "
                      "duplicates caught so far >= %d" % (n, kills, victim, " mid-request" if mid_request else "",
                                                          acked, time.monotonic() - t_kill, dups.total()))
            t_kills_done = time.monotonic()
            g.check(not load.failed.is_set(), "the load failed: %s" % load.error)
            g.check(load.next < len(batches), "the load ran out of events before the last kill: raise the "
                    "number of interactions")
        finally:
            load.halt()
        acked, sent_events, acked_events = load.results()
        g.log("load: %d requests for %d batches (%d retries: %d cut off, %d answered 503); statuses %s; "
              "%d events sent, %d acknowledged; kills took %.0f s"
              % (load.requests, len(acked), load.retries, load.cut, load.statuses.get(503, 0),
                 dict(load.statuses), sent_events, acked_events, t_kills_done - t_load))
        g.check(dict(done) == {v: plan.count(v) for v in VICTIMS}, "kills done %s, planned %s" % (dict(done), plan))

        r = fl.verify_exact(st, TENANT, batches, acked, asan)
        dups.finish()
        caught = dups.total()

        n_in, ids_in, n_sc, ids_sc = (r["interactions_records"], r["interactions_ids"], r["scored_records"],
                                      r["scored_ids"])
        g.log("replays: %s holds %d records for %d events (%d written again by client retries); %s holds %d "
              "records for %d record ids (%d written again by scorer replays); duplicates caught by the "
              "aggregator >= %d (per incarnation: %s)"
              % (g.TOPIC_INTERACTIONS, n_in, ids_in, n_in - ids_in, g.TOPIC_SCORED, n_sc, ids_sc, n_sc - ids_sc,
                 caught, sorted(dups.by_pid.values(), reverse=True)))
        g.check(caught > 0, "goodwill_aggregator_records_duplicate_total stayed 0 in every aggregator "
                "incarnation: no replay reached the aggregator's dedupe, so this run did not test it")
        print("RESULT kills=%d (%s; ingest mid-request %d) seed=%d events_sent=%d acknowledged=%d counted=%d "
              "lost=%d doubled=%d duplicates_caught>=%d interactions_topic_rewrites=%d scored_topic_rewrites=%d "
              "requests=%d retries=%d"
              % (sum(done.values()), " ".join("%s=%d" % (v, done[v]) for v in VICTIMS), in_flight_kills, seed,
                 sent_events, acked_events, r["counted"], r["lost"], r["doubled"], caught, n_in - ids_in, n_sc - ids_sc,
                 load.requests, load.retries), flush=True)


if __name__ == "__main__":
    g.run(main)
