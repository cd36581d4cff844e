"""The lexicon overlay of goodwill-scorer and its reload on SIGHUP, against the real stack.

docs/FEELING_MODEL.md, "Customisation"; docs/OPERATIONS.md, goodwill-scorer. The stack's scorer
starts with --lexicon-overlay (GW_DEVSTACK_SCORER_ARGS), whose one entry makes an unknown
product name, "zorblax", strongly positive. Checked with independent clients (confluent_kafka
for goodwill.scored.v1, HTTP for /metrics, the scorer's JSON log):

1. a scored record carries the overlaid model version, the default lexicon's version followed
   by "+overlay." and the first 12 hex digits of the SHA-256 of the overlay's bytes (computed
   here with hashlib), and its valence follows the overlay; goodwill_build_info shows it;
2. the overlay file is rewritten ("zorblax" now strongly negative) and the scorer gets SIGHUP:
   goodwill_scorer_lexicon_reloads_total{result="ok"} counts it, the log says "lexicon
   reloaded" with the new version, goodwill_build_info shows only the new version, and the next
   record carries it and scores negative;
3. the overlay is broken (line 3) and the scorer gets SIGHUP again: {result="error"} counts it,
   an error line names the file, line 3 and the reason, the scorer keeps running with the
   previous model (the next record carries the second version);
4. a scorer started with a broken overlay exits 2 at once, naming the file and the line;
5. a SIGHUP during the drain after SIGTERM is logged and ignored, and the drain still ends with
   exit 0 (a scorer without a reachable Kafka, whose consumer takes about a second to close).

Waits are bounded polls; the stack is torn down whatever happens, and must exit 0 on SIGTERM.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "overlay"
OVERLAY_1 = b"# products of this contact center\nzorblax\t3.5\tdelight:1\n"
OVERLAY_2 = b"# products of this contact center\nzorblax\t-3.5\tanger:1\nthird time calling\t0\n"
OVERLAY_BROKEN = b"# products of this contact center\nzorblax\t-3.5\nwidget\tlots\n"


def default_version():
    p = subprocess.run([g.binary("score"), "--model-version"], capture_output=True, text=True, timeout=30)
    g.check(p.returncode == 0 and p.stdout.startswith("gw-feeling-"),
            "goodwill-score --model-version: exit %d, %r %r" % (p.returncode, p.stdout, p.stderr))
    return p.stdout.strip()


def overlaid(base, overlay_bytes):
    return "%s+overlay.%s" % (base, hashlib.sha256(overlay_bytes).hexdigest()[:12])


def write(path, data):
    # Written beside and renamed, as a ConfigMap update or an editor does: the scorer never
    # reads half a file.
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def closed(event_id):
    now_ms = int(time.time() * 1000)
    return json.dumps({
        "event_id": event_id, "tenant_id": TENANT, "team_id": "team-1", "agent_id": "agent-1",
        "interaction_id": event_id, "channel": "chat", "occurred_at": now_ms - 60000,
        "closed": {"handle_ms": 120000, "wait_ms": 5000, "transfers": 0, "resolved": True, "transcript": [
            {"seq": 1, "speaker": "customer", "text": "my zorblax", "offset_ms": 0}]}})


def scored_interactions(kafka):
    """{source_event_id: fields of the ScoredInteraction} of the tenant, from goodwill.scored.v1."""
    out = {}
    for value in g.kafka_read_all(kafka, g.TOPIC_SCORED):
        top = g.protobuf_fields(value)
        if not isinstance(top.get(1), bytes):
            continue
        rec = g.protobuf_fields(top[1])
        if rec.get(3) == TENANT.encode():
            out[rec.get(2, b"").decode()] = rec
    return out


def zigzag(n):
    return (n >> 1) ^ -(n & 1)


def score_one(st, event_id):
    """Posts one interaction and returns (model_version, start valence milli) of its record."""
    status, doc = g.post_events(st.ingest, [closed(event_id)])
    g.check(status == 202, "ingest answered %d to %s: %s" % (status, event_id, doc))

    def probe():
        recs = scored_interactions(st.kafka)
        return event_id in recs, sorted(recs)

    g.wait_until(probe, 60, "the ScoredRecord of %s on %s" % (event_id, g.TOPIC_SCORED), interval_s=0.5)
    rec = scored_interactions(st.kafka)[event_id]
    version = rec.get(9, b"").decode()
    valence = zigzag(rec.get(10, 0))
    g.log("%s scored with %s, start valence %d milli" % (event_id, version, valence))
    return version, valence


def metrics(st):
    status, _, body = g.http("GET", st.admin("scorer") + "/metrics", timeout_s=10)
    g.check(status == 200, "scorer /metrics answered %d" % status)
    return body.decode()


def sample(text, series):
    """The value of one exact series line ("name{labels}") of a /metrics text, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def build_info_models(text):
    return sorted(l.split('model_version="', 1)[1].split('"', 1)[0]
                  for l in text.splitlines() if l.startswith("goodwill_build_info{"))


def wait_reloads(st, result, want):
    series = 'goodwill_scorer_lexicon_reloads_total{result="%s"}' % result

    def probe():
        v = sample(metrics(st), series)
        return v == want, v

    g.wait_until(probe, 30, "%s to reach %d" % (series, want))


def refused_at_start(overlay):
    """A scorer whose overlay is broken must exit 2 before it touches Kafka, naming file:line."""
    try:
        p = subprocess.run([g.binary("scorer"), "--admin-port", "0", "--kafka-bootstrap", "127.0.0.1:1",
                            "--lexicon-overlay", overlay], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        g.check(False, "goodwill-scorer with a broken overlay started instead of exiting 2")
    out = p.stdout + p.stderr
    docs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    errs = [d for d in docs if d.get("msg") == "cannot load the lexicon"]
    g.check(p.returncode == 2 and errs and errs[0].get("file") == overlay and errs[0].get("line") == 3
            and "%s:3: valence must be a number" % overlay in errs[0].get("reason", ""),
            "goodwill-scorer with a broken overlay: expected exit 2 and a log line naming %s line 3, "
            "got %d: %s" % (overlay, p.returncode, out[-2000:]))
    g.log("a broken overlay at start: exit 2, %s" % errs[0]["reason"])


def sighup_while_draining(work, overlay):
    log_path = os.path.join(work, "draining.log")
    proc = g.popen_logged([g.binary("scorer"), "--admin-port", "0", "--kafka-bootstrap", "127.0.0.1:1",
                           "--lexicon-overlay", overlay], log_path)
    try:
        g.wait_until(lambda: (bool(g.log_lines(log_path, "listening")), proc.poll()), 30,
                     "the scorer without Kafka to start")
        proc.send_signal(signal.SIGTERM)
        g.wait_until(lambda: (bool(g.log_lines(log_path, "signal received, draining")), proc.poll()), 10,
                     "the scorer to log its drain", interval_s=0.01)
        g.check(proc.poll() is None, "the drain ended before SIGHUP could be sent (exit %s)" % proc.poll())
        proc.send_signal(signal.SIGHUP)
        rc = proc.wait(30)
        ignored = g.log_lines(log_path, "lexicon reload ignored while draining")
        g.check(rc == 0 and ignored and not g.log_lines(log_path, "lexicon reloaded"),
                "a SIGHUP during the drain is ignored and the scorer exits 0: exit %s, %s" % (rc, ignored))
        g.log("SIGHUP during the drain: ignored, exit 0")
    finally:
        g.terminate(proc)


def main():
    work = tempfile.mkdtemp(prefix="gw-overlay-")
    try:
        overlay = os.path.join(work, "overlay.tsv")
        write(overlay, OVERLAY_BROKEN)
        refused_at_start(overlay)

        write(overlay, OVERLAY_1)
        sighup_while_draining(work, overlay)
        base = default_version()
        v1, v2 = overlaid(base, OVERLAY_1), overlaid(base, OVERLAY_2)
        with g.Stack(extra_env={"GW_DEVSTACK_SCORER_ARGS": "--lexicon-overlay " + overlay}) as st:
            log_path = os.path.join(st.dir, "scorer.log")
            started = g.log_lines(log_path, "scorer started")
            g.check(started and started[-1].get("model") == v1,
                    "the scorer's start line names model %s: %s" % (v1, started))
            g.check(build_info_models(metrics(st)) == [v1],
                    "goodwill_build_info shows %s alone: %s" % (v1, build_info_models(metrics(st))))
            version, valence = score_one(st, "ov-1")
            g.check(version == v1, "the first record carries %s, got %s" % (v1, version))
            g.check(valence > 300, "with the first overlay zorblax is positive, got %d milli" % valence)

            write(overlay, OVERLAY_2)
            st.kill("scorer", "HUP")
            wait_reloads(st, "ok", 1)
            reloaded = g.log_lines(log_path, "lexicon reloaded")
            g.check(reloaded and reloaded[-1].get("model") == v2 and reloaded[-1].get("previous_model") == v1,
                    "the reload is logged with %s (previous %s): %s" % (v2, v1, reloaded))
            g.check(build_info_models(metrics(st)) == [v2],
                    "after the reload goodwill_build_info shows %s alone: %s" % (v2, build_info_models(metrics(st))))
            version, valence = score_one(st, "ov-2")
            g.check(version == v2, "a record scored after the reload carries %s, got %s" % (v2, version))
            g.check(valence < -300, "with the second overlay zorblax is negative, got %d milli" % valence)

            write(overlay, OVERLAY_BROKEN)
            pid = st.pid("scorer")
            st.kill("scorer", "HUP")
            wait_reloads(st, "error", 1)
            text = metrics(st)
            g.check(sample(text, 'goodwill_scorer_lexicon_reloads_total{result="ok"}') == 1,
                    "a failed reload is not counted as ok")
            errs = g.log_lines(log_path, "cannot reload the lexicon; the old model stays")
            g.check(errs and errs[-1].get("file") == overlay and errs[-1].get("line") == 3
                    and "valence must be a number" in errs[-1].get("reason", "")
                    and errs[-1].get("model") == v2 and errs[-1].get("level") == "error",
                    "the failed reload is logged naming %s, line 3 and the reason: %s" % (overlay, errs))
            g.check(build_info_models(text) == [v2],
                    "after a failed reload goodwill_build_info still shows %s: %s" % (v2, build_info_models(text)))
            version, valence = score_one(st, "ov-3")
            g.check(st.pid("scorer") == pid, "the scorer kept running through the failed reload")
            g.check(version == v2 and valence < -300,
                    "after a failed reload records are scored by the previous model %s: %s, %d milli"
                    % (v2, version, valence))
            g.log("reload ok, then a broken overlay kept %s" % v2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    g.run(main)
