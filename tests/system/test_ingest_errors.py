"""What a client sees when it sends bad events, and that the good ones still count.

- A JSON body with a syntax error on line 3: 400, the error names line 3, nothing accepted.
- NDJSON whose line 2 is not JSON: 400 naming line 2; the other lines are accepted.
- NDJSON whose line 3 has an unknown channel: 400 with line 3 and field "channel"; the other
  lines are accepted.
- A survey with likelihood_to_recommend 11: 400 with field survey.likelihood_to_recommend.
- An interaction with an 8-day handle time: 400 with field closed.handle_ms naming the 7-day
  bound (the aggregator's), where it used to be accepted and then dead-lettered downstream.
The valid events of these requests must arrive in the read API (exactly those).
Before the stack starts: goodwill-ingest refuses --max-text above the hard bound every stage
accepts, and goodwill-aggregator a --kafka-retention above the one ingest's lateness bound
leaves room for (exit 2, naming the flag and its range).
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "errs"


def closed(n, team, channel="chat"):
    now_ms = int(time.time() * 1000)
    return json.dumps({
        "event_id": "errs-%d" % n, "tenant_id": TENANT, "team_id": team, "agent_id": "a-%d" % (n % 3),
        "interaction_id": "i-%d" % n, "channel": channel, "occurred_at": now_ms - 600000 + n * 1000,
        "closed": {"handle_ms": 300000, "wait_ms": 20000, "transfers": 0, "resolved": True, "transcript": [
            {"seq": 1, "speaker": "customer", "text": "My router is still not working, third time calling.",
             "offset_ms": 0},
            {"seq": 2, "speaker": "agent", "text": "I am so sorry, let me sort this out for you now.",
             "offset_ms": 5000},
            {"seq": 3, "speaker": "customer", "text": "Thank you so much, that fixed it!", "offset_ms": 60000}]}})


def survey(n, team, likelihood):
    now_ms = int(time.time() * 1000)
    return json.dumps({
        "event_id": "errs-%d" % n, "tenant_id": TENANT, "team_id": team, "agent_id": "a-1",
        "interaction_id": "i-%d" % n, "channel": "email", "occurred_at": now_ms - 60000,
        "survey": {"likelihood_to_recommend": likelihood, "comment": "quick and kind"}})


def errors_of(doc):
    g.check(isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"],
            "a 400 answer must carry a non-empty \"errors\" list, got %r" % (doc,))
    for e in doc["errors"]:
        for k in ("index", "line", "field", "reason"):
            g.check(k in e, "error %r lacks %r" % (e, k))
        g.check(isinstance(e["reason"], str) and e["reason"], "error %r has no reason text" % (e,))
    return doc["errors"]


PORTS = {"ingest": ["--listen-port", "0", "--admin-port", "0"],
         "aggregator": ["--api-port", "0", "--admin-port", "0"]}


def refused_at_start(name, args, needle):
    """The daemon must exit 2 at once naming the flag; one that starts is killed after 15 s."""
    try:
        p = subprocess.run([g.binary(name)] + args + PORTS[name], capture_output=True, text=True,
                           timeout=15)
    except subprocess.TimeoutExpired:
        g.check(False, "goodwill-%s %s: started instead of refusing the flag" % (name, " ".join(args)))
    g.check(p.returncode == 2 and needle in p.stderr,
            "goodwill-%s %s: expected exit 2 with %r, got %d: %s" % (name, " ".join(args), needle,
                                                                      p.returncode, p.stderr))
    g.log("goodwill-%s %s -> exit 2: %s" % (name, " ".join(args), p.stderr.strip().splitlines()[-1]))


def main():
    refused_at_start("ingest", ["--dev-mode", "--max-text", "32KiB"], "--max-text: 32KiB is out of range 16..16KiB")
    refused_at_start("ingest", ["--dev-mode", "--max-turns", "2001"], "--max-turns: 2001 is out of range 1..2000")
    refused_at_start("aggregator", ["--dev-mode", "--kafka-retention", "15d"],
                     "--kafka-retention: 15d is out of range 1h..14d")
    expected = {}

    def count(team, kind):
        expected.setdefault(team, {"interactions": 0, "surveys": 0})[kind] += 1

    with g.Stack(session_timeout="6s") as st:
        # 1. One JSON object with a syntax error on line 3.
        body = b'{\n  "tenant_id": "errs",\n  "team_id": oops,\n  "channel": "chat"\n}\n'
        status, doc = g.http_json("POST", st.ingest + "/v1/events", body, "application/json")
        g.check(status == 400, "bad JSON: expected 400, got %d: %s" % (status, doc))
        errs = errors_of(doc)
        g.check(errs[0]["line"] == 3, "bad JSON: the error should name line 3, got %r" % (errs[0],))
        g.check(doc.get("accepted", 0) == 0, "bad JSON: nothing may be accepted, got %r" % (doc,))
        g.log("bad JSON -> 400 %s" % errs[0])

        # 2. NDJSON whose line 2 is not JSON at all.
        lines = [closed(1, "team-a"), '{"tenant_id": "errs", "team_id": ', closed(2, "team-a")]
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 400, "NDJSON with a broken line 2: expected 400, got %d: %s" % (status, doc))
        errs = errors_of(doc)
        g.check(len(errs) == 1 and errs[0]["line"] == 2 and errs[0]["index"] == 1,
                "NDJSON with a broken line 2: expected one error at line 2 (index 1), got %r" % (errs,))
        g.check(doc.get("accepted") == 2, "NDJSON with a broken line 2: the 2 valid lines must be accepted: %r" % doc)
        count("team-a", "interactions")
        count("team-a", "interactions")
        g.log("NDJSON broken line 2 -> 400 %s, accepted %s" % (errs[0], doc.get("accepted")))

        # 3. NDJSON, 5 lines, line 3 with an unknown channel.
        lines = [closed(10, "team-b"), closed(11, "team-b"), closed(12, "team-b", channel="fax"),
                 closed(13, "team-c"), survey(14, "team-c", 9)]
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 400, "NDJSON with a bad line 3: expected 400, got %d: %s" % (status, doc))
        errs = errors_of(doc)
        g.check(len(errs) == 1 and errs[0]["line"] == 3 and errs[0]["index"] == 2 and errs[0]["field"] == "channel",
                "NDJSON with a bad line 3: expected one error at line 3, field \"channel\", got %r" % (errs,))
        g.check(doc.get("accepted") == 4 and doc.get("rejected") == 1,
                "NDJSON with a bad line 3: expected 4 accepted, 1 rejected, got %r" % (doc,))
        for team, kind in (("team-b", "interactions"), ("team-b", "interactions"), ("team-c", "interactions"),
                           ("team-c", "surveys")):
            count(team, kind)
        g.log("NDJSON bad line 3 -> 400 %s" % errs[0])

        # 4. A survey score of 11 among valid events.
        lines = [closed(20, "team-c"), survey(21, "team-c", 11), survey(22, "team-c", 0)]
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 400, "survey score 11: expected 400, got %d: %s" % (status, doc))
        errs = errors_of(doc)
        g.check(len(errs) == 1 and errs[0]["field"] == "survey.likelihood_to_recommend" and errs[0]["line"] == 2,
                "survey score 11: expected one error at line 2, field survey.likelihood_to_recommend, got %r"
                % (errs,))
        g.check(doc.get("accepted") == 2, "survey score 11: the 2 valid lines must be accepted: %r" % (doc,))
        count("team-c", "interactions")
        count("team-c", "surveys")
        g.log("survey score 11 -> 400 %s" % errs[0])

        # 5. An 8-day handle time: refused here with the aggregator's 7-day bound, not accepted
        #    and dead-lettered downstream.
        eight_days = json.loads(closed(30, "team-d"))
        eight_days["closed"]["handle_ms"] = 8 * 86400 * 1000
        lines = [json.dumps(eight_days), closed(31, "team-d")]
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 400, "8-day handle time: expected 400, got %d: %s" % (status, doc))
        errs = errors_of(doc)
        g.check(len(errs) == 1 and errs[0]["field"] == "closed.handle_ms" and "0..604800000" in errs[0]["reason"],
                "8-day handle time: expected one error on closed.handle_ms naming 0..604800000, got %r" % (errs,))
        g.check(doc.get("accepted") == 1, "8-day handle time: the other line must be accepted: %r" % (doc,))
        count("team-d", "interactions")
        g.log("8-day handle time -> 400 %s" % errs[0])

        # The valid events of the rejected requests are counted downstream, and only they.
        got = g.wait_for_counts(st.api, TENANT, expected, timeout_s=60, settle_s=2.0)
        g.compare_counts("read API", got, expected)
        g.log("downstream counts equal the accepted events: %s" % got)


if __name__ == "__main__":
    g.run(main)
