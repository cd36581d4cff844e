"""Live turns end to end, across a scorer crash.

Starts the whole stack (6 partitions, consumer session timeout 6 s) and streams live
interactions the way contact-center platforms do: Turn events as they happen, then an
InteractionClosed without transcript. Each interaction has its own team, so the read API
shows it alone. The angry opening customer turn and the agent's apology (plus a client
retry of one turn, same seq) are posted first; then the scorer is killed with SIGKILL and
restarted while those turns are held open; then the happy closing turn and the close are
posted.

Checked with independent clients: the read API counts every interaction exactly once, and
its feeling reflects ALL its turns (start negative, end positive, change positive,
recovered); goodwill.scored.v1, read with confluent_kafka, holds for every interaction only
records of one record id, the first built from 2 customer turns and 1 agent turn (the
retried turn counted once); no record of the tenant is on the DLQ.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "live"
INTERACTIONS = 12
ANGRY = "This is the third time I am calling and it is STILL not working. I am furious!"
SORRY = "I am so sorry about that, I completely understand. Let me fix it right now."
HAPPY = "That fixed it, thank you so much, you are great!"


def event(n, kind, body, at_ms, event_id):
    return json.dumps({
        "event_id": event_id, "tenant_id": TENANT, "team_id": "team-%02d" % n, "agent_id": "agent-%d" % (n % 3),
        "interaction_id": "call-%02d" % n, "channel": "voice", "occurred_at": at_ms, kind: body,
    })


def turn(n, seq, speaker, text, at_ms, event_id=None):
    return event(n, "turn", {"seq": seq, "speaker": speaker, "text": text, "offset_ms": seq * 20000}, at_ms,
                 event_id or "call-%02d-t%d" % (n, seq))


def scorer_metric(st, name):
    status, _, body = g.http("GET", st.admin("scorer") + "/metrics")
    if status != 200:
        return None
    return g.metric_sum(body.decode(), name)


def wait_open_turns(st, want, what):
    def probe():
        try:
            v = scorer_metric(st, "goodwill_scorer_open_turns")
        except OSError as e:
            return False, "scorer admin not answering (%s)" % e
        return v is not None and v >= want, v
    g.wait_until(probe, 90, "goodwill_scorer_open_turns to reach %d (%s)" % (want, what))


def main():
    t0 = int(time.time() * 1000) - 20 * 60 * 1000
    opening, closing = [], []
    for n in range(INTERACTIONS):
        at = t0 + n * 1000
        opening.append(turn(n, 1, "customer", ANGRY, at))
        opening.append(turn(n, 2, "agent", SORRY, at + 20000))
        closing.append(turn(n, 3, "customer", HAPPY, at + 60000))
        closing.append(event(n, "closed", {"handle_ms": 90000, "wait_ms": 15000, "resolved": True}, at + 70000,
                             "call-%02d-closed" % n))
    # A client that did not hear back retries the agent turn of the first interactions (same
    # seq, a new event id): it must count once.
    retries = [turn(n, 2, "agent", SORRY, t0 + n * 1000 + 20000, "call-%02d-t2-retry" % n) for n in range(4)]

    with g.Stack(session_timeout="6s") as st:
        status, doc = g.post_events(st.ingest, opening + retries)
        g.check(status == 202 and doc.get("accepted") == len(opening) + len(retries),
                "posting the opening turns: ingest answered %d: %s (expected 202, all accepted)" % (status, doc))
        held = len(opening) + len(retries)
        wait_open_turns(st, held, "the opening turns held by the scorer before the kill")
        counted = g.api_counts(st.api, TENANT)
        g.check(g.totals(counted) == (0, 0),
                "no interaction may be counted before its close, the read API shows %s" % counted)

        st.kill("scorer", "KILL")
        st.start("scorer", wait=True)
        # The new scorer owns every partition again and re-read the turns it had not committed.
        wait_open_turns(st, held, "the restarted scorer to rebuild its open interactions from Kafka")

        status, doc = g.post_events(st.ingest, closing)
        g.check(status == 202 and doc.get("accepted") == len(closing),
                "posting the closing turns and closes: ingest answered %d: %s" % (status, doc))

        expected = {"team-%02d" % n: {"interactions": 1, "surveys": 0} for n in range(INTERACTIONS)}
        got = g.wait_for_counts(st.api, TENANT, expected, 120, settle_s=3.0)
        g.compare_counts("the read API", got, expected)

        status, doc = g.http_json("GET", "%s/v1/teams?tenant=%s&window=1d" % (st.api, TENANT))
        g.check(status == 200, "GET /v1/teams answered %d: %s" % (status, doc))
        bad = []
        for row in doc["teams"]:
            ok = (row["interactions"] == 1 and row["start_mean"] is not None and row["start_mean"] < 0
                  and row["end_mean"] > 0 and row["change_mean"] > 0 and row["recovered"] == 1)
            if not ok:
                bad.append("%s: interactions %s start %s end %s change %s recovered %s" % (
                    row["team"], row["interactions"], row["start_mean"], row["end_mean"], row["change_mean"],
                    row["recovered"]))
        g.check(not bad, "interactions whose feeling does not reflect the angry opening (sent before the "
                "scorer was killed) and the happy ending (sent after):\n  " + "\n  ".join(bad))

        # goodwill.scored.v1 with an independent client: one record id per interaction, and
        # every record built from all of its turns.
        ids, first_turns = {}, {}
        for value in g.kafka_read_all(st.kafka, g.TOPIC_SCORED):
            rec = g.protobuf_fields(value)
            if 1 not in rec:
                continue
            si = g.protobuf_fields(rec[1])
            if si.get(3, b"").decode() != TENANT:
                continue
            iid = si[6].decode()
            ids.setdefault(iid, set()).add(si[1].decode())
            # A team's records share a partition, so the first one read is the one the
            # aggregator applied; a replay may re-emit it (same id) and is then dropped.
            first_turns.setdefault(iid, (si.get(18, 0), si.get(19, 0)))
        want_ids = {"call-%02d" % n for n in range(INTERACTIONS)}
        g.check(set(ids) == want_ids, "scored interactions on %s: %s, expected %s"
                % (g.TOPIC_SCORED, sorted(ids), sorted(want_ids)))
        several = {k: v for k, v in ids.items() if len(v) != 1}
        g.check(not several, "interactions scored under several record ids (would count twice): %s" % several)
        partial = {k: v for k, v in first_turns.items() if v != (2, 1)}
        g.check(not partial, "first records not built from 2 customer turns and 1 agent turn "
                "(customer, agent): %s" % partial)

        def of_tenant(value):
            try:
                return g.protobuf_fields(value).get(2) == TENANT.encode()
            except (ValueError, IndexError):
                return False

        dlq = []
        try:
            dlq = [v for v in g.kafka_read_all(st.kafka, g.TOPIC_DLQ) if of_tenant(v)]
        except g.TestFailure as e:
            if "not found" not in str(e):  # no DLQ record at all: the topic may not exist
                raise
        g.check(not dlq, "%d records of tenant %s went to the DLQ" % (len(dlq), TENANT))
        g.log("%d live interactions counted once each, feeling from all their turns" % INTERACTIONS)


if __name__ == "__main__":
    g.run(main)
