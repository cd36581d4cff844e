"""Every daemon's admin port, as Prometheus and Kubernetes see it.

Starts the stack, sends a few generated events through it and waits until they are counted,
so the daemons' counters have moved. Then, for ingest, scorer and aggregator: /healthz and
/readyz answer 200, /metrics passes `promtool check metrics` (exposition format and naming
lint) and holds the daemon's main counters with values that account for the posted events.
goodwill-devkafka's admin port passes the same check and shows nothing dropped.
"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "metrics"

# The main counters of each daemon; each must have counted at least the posted events
# (the scorer and aggregator may count replays more than once, never less).
MAIN_COUNTERS = {
    "ingest": ["goodwill_ingest_events_accepted_total", "goodwill_ingest_requests_total"],
    "scorer": ["goodwill_scorer_records_consumed_total", "goodwill_scorer_records_scored_total"],
    "aggregator": ["goodwill_aggregator_records_consumed_total", "goodwill_aggregator_records_applied_total"],
}


def promtool_check(name, text):
    proc = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)
    g.check(proc.returncode == 0, "%s /metrics fails `promtool check metrics` (status %d):\n%s"
            % (name, proc.returncode, proc.stdout.decode(errors="replace")[-3000:]))


def main():
    lines = g.generate(seed=11, interactions=60, teams=3, tenant=TENANT)
    expected, _ = g.expected_counts(lines)
    posted = len(lines)
    with g.Stack(session_timeout="6s") as st:
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 202, "ingest answered %d (expected 202): %s" % (status, doc))
        g.compare_counts("read API", g.wait_for_counts(st.api, TENANT, expected, timeout_s=60, settle_s=0.5),
                         expected)

        for name, counters in MAIN_COUNTERS.items():
            admin = st.admin(name)
            for path in ("/healthz", "/readyz"):
                code, _, body = g.http("GET", admin + path, timeout_s=5)
                g.check(code == 200, "%s GET %s answered %d: %r" % (name, path, code, body[:200]))
            code, headers, body = g.http("GET", admin + "/metrics", timeout_s=5)
            g.check(code == 200, "%s GET /metrics answered %d" % (name, code))
            ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
            g.check(ctype.startswith("text/plain"), "%s /metrics Content-Type is %r, expected text/plain" % (name, ctype))
            text = body.decode("utf-8")
            promtool_check(name, text)
            # Every daemon says what it is, as its --version does.
            version = subprocess.run([g.binary(name), "--version"], stdout=subprocess.PIPE,
                                     check=True).stdout.decode().split()
            g.check(len(version) >= 2 and version[0] == "goodwill-" + name,
                    "%s --version printed %r" % (name, version))
            info = 'goodwill_build_info{version="%s",model_version="' % version[1]
            g.check(info in text and g.metric_sum(text, "goodwill_build_info") == 1,
                    "%s /metrics has no %s...} 1" % (name, info))
            for counter in counters:
                value = g.metric_sum(text, counter)
                g.check(value is not None, "%s /metrics has no sample of %s" % (name, counter))
                g.check(value >= posted if "requests" not in counter else value >= 1,
                        "%s: %s = %s after %d events went through" % (name, counter, value, posted))
                g.log("%s: %s = %g" % (name, counter, value))
            code, _, _ = g.http("GET", admin + "/no-such-path", timeout_s=5)
            g.check(code == 404, "%s admin GET /no-such-path answered %d, expected 404" % (name, code))

        # goodwill-devkafka's admin port: its metrics pass promtool and show every partition.
        admin = st.admin("devkafka")
        for path in ("/healthz", "/readyz"):
            code, _, body = g.http("GET", admin + path, timeout_s=5)
            g.check(code == 200, "devkafka GET %s answered %d: %r" % (path, code, body[:200]))
        code, _, body = g.http("GET", admin + "/metrics", timeout_s=5)
        g.check(code == 200, "devkafka GET /metrics answered %d" % code)
        text = body.decode("utf-8")
        promtool_check("devkafka", text)
        for topic in (g.TOPIC_INTERACTIONS, g.TOPIC_SCORED, g.TOPIC_DLQ):
            series = 'goodwill_devkafka_records_dropped_total{topic="%s",partition="0"} 0' % topic
            g.check(series in text, "devkafka /metrics lacks %r" % series)
        g.log("devkafka: /metrics passes promtool, nothing dropped")


if __name__ == "__main__":
    g.run(main)
