"""goodwill-scorer --explain end to end: scored records carry their explanation.

Starts the whole stack with the scorer run as `goodwill-scorer --explain`
(GW_DEVSTACK_SCORER_ARGS), posts a closed interaction (an angry opening, an apology, a thank-you
and a closing "ok bye") and a survey with a comment to ingest, and checks with independent
clients:
- goodwill.scored.v1, read with confluent_kafka and decoded from the wire format (no generated
  code): the interaction's record has field 41 (explain_json), a JSON object whose customer
  turns give the start and end valences (weighted means of the turns' valences) and name the
  words as the customer wrote them ("Third time calling", the CAPS rule); the survey's record
  has field 41 (comment_explain_json) naming the negation and its cue;
- the read API counts both events once: the aggregator decodes the records and ignores the
  field.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "explain"


def event(kind, body, event_id):
    return json.dumps({
        "event_id": event_id, "tenant_id": TENANT, "team_id": "team-x", "agent_id": "agent-1",
        "interaction_id": "call-1", "channel": "voice", "occurred_at": int(time.time() * 1000) - 60000,
        kind: body,
    })


def main():
    closed = event("closed", {"handle_ms": 90000, "wait_ms": 15000, "transcript": [
        {"seq": 1, "speaker": "customer", "text": "Third time calling and it is STILL broken, this is awful!"},
        {"seq": 2, "speaker": "agent", "text": "I am so sorry about that, let me fix it right now."},
        {"seq": 3, "speaker": "customer", "text": "That fixed it, thank you so much!"},
        {"seq": 4, "speaker": "customer", "text": "ok bye"},
    ]}, "explain-closed-1")
    survey = event("survey", {"likelihood_to_recommend": 4, "comment": "not good, very slow"},
                   "explain-survey-1")
    with g.Stack(extra_env={"GW_DEVSTACK_SCORER_ARGS": "--explain"}) as st:
        status, doc = g.post_events(st.ingest, [closed, survey])
        g.check(status == 202, "POST /v1/events answered %d: %s" % (status, doc))
        got = g.wait_for_counts(st.api, TENANT, {"team-x": {"interactions": 1, "surveys": 1}}, 90)
        g.compare_counts("read API", got, {"team-x": {"interactions": 1, "surveys": 1}})
        g.log("the aggregator counted both records")

        records = [g.protobuf_fields(v) for v in g.kafka_read_all(st.kafka, g.TOPIC_SCORED)]
        interactions = [g.protobuf_fields(r[1]) for r in records if 1 in r]
        surveys = [g.protobuf_fields(r[2]) for r in records if 2 in r]
        mine = [i for i in interactions if i.get(3) == TENANT.encode()]
        g.check(len(mine) == 1, "one scored interaction of tenant %s, got %d" % (TENANT, len(mine)))
        si = mine[0]
        g.check(41 in si, "the scored interaction has no explain_json (field 41): fields %s" % sorted(si))
        x = json.loads(si[41].decode("utf-8"))
        turns = x["customer_turns"]
        g.check([t["turn"] for t in turns] == [0, 2, 3], "customer turns 0, 2, 3 explained: %s" % turns)
        g.check(turns[2]["bare"] is True and "end_weight" not in turns[2],
                "the trailing \"ok bye\" is bare and has no weight at the end: %s" % turns[2])

        def zigzag(n):
            return (n >> 1) ^ -(n & 1)

        def mean(key):
            w = sum(t.get(key, 0) for t in turns)
            return sum(t.get(key, 0) * t["felt"] for t in turns) / w

        start_milli, end_milli = zigzag(si[10]), zigzag(si[11])
        g.check(abs(round(mean("start_weight") * 1000) - start_milli) <= 1,
                "the start weights give start_valence_milli %d: %s" % (start_milli, turns))
        g.check(abs(round(mean("end_weight") * 1000) - end_milli) <= 1,
                "the end weights give end_valence_milli %d: %s" % (end_milli, turns))
        # The change direction of the record (field 22) is the one explained, by the band.
        directions = {1: "worsened", 2: "unchanged", 3: "improved"}
        conv = x["conversation"]
        g.check(directions.get(si.get(22)) == conv["change_direction"],
                "change_direction (field 22) %s is the explained %s" % (si.get(22), conv))
        first = turns[0]["utterance"]
        hits = [h["text"] for h in first["hits"]]
        g.check("Third time calling" in hits, "the phrase is named as written: %s" % hits)
        rules = [r["rule"] for h in first["hits"] for r in h.get("rules", [])]
        g.check("caps" in rules, "the CAPS rule is listed: %s" % first)
        total = sum(h["contribution"] for h in first["hits"]) + \
            sum(p["delta"] for p in first.get("punctuation", []))
        g.check(abs(total - first["sum"]) < 1e-4, "the contributions add up to the sum: %s" % first)

        mine = [s for s in surveys if s.get(3) == TENANT.encode()]
        g.check(len(mine) == 1, "one scored survey of tenant %s, got %d" % (TENANT, len(mine)))
        g.check(41 in mine[0], "the scored survey has no comment_explain_json (field 41)")
        cx = json.loads(mine[0][41].decode("utf-8"))
        negations = [r for h in cx["hits"] for r in h.get("rules", []) if r["rule"] == "negation"]
        g.check(negations and negations[0]["cue"] == "not", "the comment's negation is named: %s" % cx)
        g.log("explain_json: %d bytes, comment_explain_json: %d bytes" % (len(si[41]), len(mine[0][41])))


if __name__ == "__main__":
    g.run(main)
