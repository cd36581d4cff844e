"""Live turns end to end, across a scorer crash, a scale-out and a scale-in.

Starts the whole stack (6 partitions, consumer session timeout 6 s) and streams live
interactions the way contact-center platforms do: Turn events as they happen, then an
InteractionClosed without transcript. Each interaction has its own team, so the read API
shows it alone. Three waves of interactions; in each, the angry opening customer turn and the
agent's apology (plus a client retry of some agent turns, same seq) are posted first, then the
scorers change while those turns are held open, then the happy closing turn and the close are
posted:
1. crash: the scorer is killed with SIGKILL and restarted;
2. scale-out: a second scorer joins the consumer group and takes over some partitions, with
   their open turns;
3. scale-in: the second scorer is stopped with SIGTERM (it exits 0) and the first one takes
   its partitions back, with the turns the second one held.

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
PER_WAVE = 12
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


def open_turns(admin_url):
    """goodwill_scorer_open_turns of one scorer, or None while it does not answer."""
    try:
        status, _, body = g.http("GET", admin_url + "/metrics", timeout_s=5)
    except OSError:
        return None
    return g.metric_sum(body.decode(), "goodwill_scorer_open_turns") if status == 200 else None


def wait_open_turns(admins, want, what, each_nonzero=False):
    """Waits until the scorers at admins together hold exactly want open turns (and, with
    each_nonzero, every one of them holds some)."""
    def probe():
        held = [open_turns(a) for a in admins]
        done = None not in held and sum(held) == want and (not each_nonzero or min(held) > 0)
        return done, "open turns per scorer %s" % held
    g.wait_until(probe, 90, "the scorers to hold %d open turns (%s)" % (want, what))


class SecondScorer:
    """A second goodwill-scorer in the stack's consumer group, with its own admin port."""

    def __init__(self, st):
        self.log_path = os.path.join(st.dir, "scorer2.log")
        self.proc = g.popen_logged([g.binary("scorer"), "--admin-host", "127.0.0.1", "--admin-port", "0",
                                    "--kafka-bootstrap", st.kafka, "--session-timeout", "6s"], self.log_path)
        port = g.wait_until(self._port, 60, "the second scorer to log its admin port")
        self.admin = "http://127.0.0.1:%d" % port
        g.log("second scorer started (pid %d)" % self.proc.pid)

    def _log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _port(self):
        g.check(self.proc.poll() is None, "the second scorer exited (%s):\n%s" % (self.proc.returncode, self._log()))
        for line in self._log().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("msg") == "listening":
                return True, doc["admin_port"]
        return False, "no listening line yet"

    def stop(self):
        rc = g.terminate(self.proc, timeout_s=60)
        g.check(rc == 0, "the second scorer exited with %s on SIGTERM (expected 0, drained):\n%s"
                % (rc, self._log()[-3000:]))
        g.log("second scorer stopped with SIGTERM, exit 0")


def run_wave(st, wave, first, admins_before, change):
    """Posts the opening turns of PER_WAVE interactions numbered from first, waits until the
    scorers at admins_before hold them, calls change() (which returns the admin URLs of the
    scorers after the change), waits until those hold the same turns again, then posts the
    closing turns and the closes."""
    t0 = int(time.time() * 1000) - 20 * 60 * 1000
    opening, closing = [], []
    for n in range(first, first + PER_WAVE):
        at = t0 + n * 1000
        opening.append(turn(n, 1, "customer", ANGRY, at))
        opening.append(turn(n, 2, "agent", SORRY, at + 20000))
        closing.append(turn(n, 3, "customer", HAPPY, at + 60000))
        closing.append(event(n, "closed", {"handle_ms": 90000, "wait_ms": 15000, "resolved": True}, at + 70000,
                             "call-%02d-closed" % n))
    # A client that did not hear back retries the agent turn of some interactions (same seq,
    # a new event id): it must count once.
    retries = [turn(n, 2, "agent", SORRY, t0 + n * 1000 + 20000, "call-%02d-t2-retry" % n)
               for n in range(first, first + 4)]

    status, doc = g.post_events(st.ingest, opening + retries)
    g.check(status == 202 and doc.get("accepted") == len(opening) + len(retries),
            "%s: posting the opening turns: ingest answered %d: %s (expected 202, all accepted)" % (wave, status, doc))
    held = len(opening) + len(retries)
    wait_open_turns(admins_before, held, "%s: the opening turns, before the change" % wave,
                    each_nonzero=len(admins_before) > 1)
    counted = g.api_counts(st.api, TENANT)
    early = {t: c for t, c in counted.items() if t >= "team-%02d" % first and c.get("interactions")}
    g.check(not early, "%s: no interaction may be counted before its close, the read API shows %s" % (wave, early))

    admins_after = change()
    # The scorers that own the partitions now re-read the turns nobody committed.
    wait_open_turns(admins_after, held, "%s: the open interactions rebuilt from Kafka after the change" % wave,
                    each_nonzero=len(admins_after) > 1)

    status, doc = g.post_events(st.ingest, closing)
    g.check(status == 202 and doc.get("accepted") == len(closing),
            "%s: posting the closing turns and closes: ingest answered %d: %s" % (wave, status, doc))


def check_results(st, total):
    expected = {"team-%02d" % n: {"interactions": 1, "surveys": 0} for n in range(total)}
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
            "scorers changed) and the happy ending (sent after):\n  " + "\n  ".join(bad))

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
    want_ids = {"call-%02d" % n for n in range(total)}
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


def main():
    with g.Stack(session_timeout="6s") as st:
        first = st.admin("scorer")
        second = []

        def crash():
            st.kill("scorer", "KILL")
            st.start("scorer", wait=True)
            return [first]

        def scale_out():
            second.append(SecondScorer(st))
            return [first, second[0].admin]

        def scale_in():
            second[0].stop()
            return [first]

        try:
            run_wave(st, "crash", 0, [first], crash)
            run_wave(st, "scale-out", PER_WAVE, [first], scale_out)
            run_wave(st, "scale-in", 2 * PER_WAVE, [first, second[0].admin], scale_in)
            check_results(st, 3 * PER_WAVE)
        finally:
            if second:
                g.terminate(second[0].proc)
        g.log("%d live interactions counted once each, feeling from all their turns, across a crash, "
              "a scale-out and a scale-in" % (3 * PER_WAVE))


if __name__ == "__main__":
    g.run(main)
