"""goodwill-ingest's intake API as a client sees it, with curl: bearer tokens, gzip and
protobuf bodies, and the tokens file's life cycle.

Starts goodwill-devkafka (1 broker) and goodwill-ingest --tokens-file directly. The protobuf
batch is encoded here by hand from the wire format (https://protobuf.dev/programming-guides/
encoding/), independently of the C code under test. Checks:

- the daemon refuses to start without --tokens-file or --dev-mode, and with a malformed tokens
  file (naming file and line); `--hash-token` prints what sha256sum prints;
- no token: 401 with WWW-Authenticate; an unknown token: 401 error="invalid_token";
- with a token: JSON, NDJSON, gzip NDJSON and protobuf (plain and gzip) bodies get 202 with the
  event ids; an event of another tenant in a batch: 403 naming tenant_id, the others accepted;
- a gzip bomb gets 413, a corrupt gzip stream 400, an unknown Content-Encoding 415;
- SIGHUP with a bad tokens file keeps the old tokens (and logs why); with a good one the new
  token works and the removed one gets 401;
- the accepted events are on goodwill.interactions.v1 (read with confluent_kafka); no token
  appears in the log or in /metrics.
"""

import gzip
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

TENANT = "apitest"
TOKEN_A = "api-token-alpha-5f0c"
TOKEN_B = "api-token-bravo-91d2"
TOKEN_OTHER = "api-token-other-77aa"


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def event(eid, tenant=TENANT):
    return {"event_id": eid, "tenant_id": tenant, "team_id": "team-1", "agent_id": "ag-1", "interaction_id": eid,
            "channel": "chat", "occurred_at": int(time.time() * 1000) - 60000,
            "closed": {"handle_ms": 1000, "resolved": True,
                       "transcript": [{"seq": 1, "speaker": "customer", "text": "still not working"},
                                      {"seq": 2, "speaker": "agent", "text": "sorry, fixed now"}]}}


# --- protobuf wire format, by hand ---

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def pb_survey_event(eid, score, tenant=TENANT):
    """An InteractionEvent with a SurveyResponse body (events.proto field numbers)."""
    survey = field_varint(1, score) + field_len(2, b"friendly and quick")
    return (field_len(1, eid.encode()) + field_len(2, tenant.encode()) + field_len(3, b"team-1") +
            field_len(4, b"ag-1") + field_len(5, eid.encode()) + field_varint(6, 3) +
            field_varint(7, int(time.time() * 1000) - 60000) + field_len(12, survey))


def pb_batch(events):
    return b"".join(field_len(1, e) for e in events)


# --- curl ---

def curl(url, body=None, headers=(), method=None):
    """(status, headers text, body text) as curl reports them."""
    with tempfile.NamedTemporaryFile(prefix="gw-api-body-", delete=False) as f:
        f.write(body or b"")
        path = f.name
    try:
        cmd = ["curl", "-sS", "-i", "--max-time", "30"]
        if method:
            cmd += ["-X", method]
        if body is not None:
            cmd += ["--data-binary", "@" + path]
        for h in headers:
            cmd += ["-H", h]
        cmd.append(url)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        g.check(proc.returncode == 0, "%s failed: %s" % (" ".join(cmd), proc.stderr.decode()))
        out = proc.stdout.decode("utf-8", "replace")
        head, _, text = out.partition("\r\n\r\n")
        while head.startswith("HTTP/1.1 100"):
            head, _, text = text.partition("\r\n\r\n")
        status = int(head.split(" ", 2)[1])
        return status, head, text
    finally:
        os.unlink(path)


def expect(answer, status, *needles):
    got_status, head, text = answer
    g.check(got_status == status, "expected %d, got %d: %s" % (status, got_status, text[:600]))
    for n in needles:
        g.check(n in head or n in text, "answer %d lacks %r:\n%s\n\n%s" % (got_status, n, head, text[:800]))
    return json.loads(text) if text.strip().startswith("{") else None


def read_log(path):
    with open(path, errors="replace") as f:
        return f.read()


def main():
    tmp = tempfile.mkdtemp(prefix="gw-ingest-api-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    dk = ing = None
    passed = False
    try:
        ingest = g.binary("ingest")
        # --hash-token: the same digest as sha256sum; a trailing newline is ignored.
        out = subprocess.run([ingest, "--hash-token"], input=(TOKEN_A + "\n").encode(), stdout=subprocess.PIPE,
                             timeout=30).stdout.decode().strip()
        g.check(out == sha(TOKEN_A), "--hash-token printed %r, expected %s" % (out, sha(TOKEN_A)))

        # Refusals at start: no auth at all, and a malformed tokens file (file and line named).
        proc = subprocess.run([ingest, "--kafka-bootstrap", "127.0.0.1:1", "--listen-port", "0", "--admin-port",
                               "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, env=env)
        g.check(proc.returncode != 0 and b"pass --dev-mode" in proc.stdout,
                "without --tokens-file or --dev-mode ingest should refuse to start; exit %d: %s"
                % (proc.returncode, proc.stdout.decode()[-600:]))
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("# api test\n%s\t%s\n%s %s\n" % (sha(TOKEN_A), TENANT, sha(TOKEN_OTHER), "other"))
        proc = subprocess.run([ingest, "--kafka-bootstrap", "127.0.0.1:1", "--listen-port", "0", "--admin-port",
                               "0", "--tokens-file", tokens], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30, env=env)
        g.check(proc.returncode != 0 and (tokens + ":3: expected").encode() in proc.stdout,
                "a malformed tokens file should stop the start naming line 3; exit %d: %s"
                % (proc.returncode, proc.stdout.decode()[-600:]))

        with open(tokens, "w") as f:
            f.write("# api test\n%s\t%s\tteam alpha\n%s\tother\n" % (sha(TOKEN_A), TENANT, sha(TOKEN_OTHER)))

        bootstrap_file = os.path.join(tmp, "bootstrap")
        dk_log, ing_log = os.path.join(tmp, "devkafka.log"), os.path.join(tmp, "ingest.log")
        dk = g.popen_logged([g.binary("devkafka"), "--brokers", "1", "--partitions", "2", "--bootstrap-file",
                             bootstrap_file], dk_log, env=env)
        g.wait_until(lambda: (os.path.exists(bootstrap_file) and os.path.getsize(bootstrap_file) > 0,
                              "devkafka alive: %s" % (dk.poll() is None)), 60, "devkafka's bootstrap file")
        with open(bootstrap_file) as f:
            bootstrap = f.read().strip()
        ing = g.popen_logged([ingest, "--listen-host", "127.0.0.1", "--listen-port", "0", "--admin-host",
                              "127.0.0.1", "--admin-port", "0", "--kafka-bootstrap", bootstrap, "--tokens-file",
                              tokens, "--max-body", "64KiB"], ing_log, env=env)

        def ports():
            g.check(ing.poll() is None, "goodwill-ingest exited (%s):\n%s" % (ing.returncode, read_log(ing_log)))
            for line in read_log(ing_log).splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if doc.get("msg") == "listening":
                    return True, (doc["port"], doc["admin_port"])
            return False, "no listening line yet"

        port, admin_port = g.wait_until(ports, 60, "goodwill-ingest to log its ports")
        url = "http://127.0.0.1:%d/v1/events" % port
        admin = "http://127.0.0.1:%d" % admin_port
        g.wait_until(lambda: (g.http("GET", admin + "/readyz", timeout_s=5)[0] == 200, "not ready"), 90,
                     "goodwill-ingest /readyz")

        ndjson = "application/x-ndjson"
        auth_a = "Authorization: Bearer " + TOKEN_A
        body = (json.dumps(event("api-1")) + "\n").encode()
        expect(curl(url, body, ["Content-Type: " + ndjson]), 401,
               'WWW-Authenticate: Bearer realm="goodwill-ingest"', "missing credentials")
        expect(curl(url, body, ["Content-Type: " + ndjson, "Authorization: Bearer nope"]), 401,
               'error="invalid_token"', "the bearer token is not known")

        accepted = []
        doc = expect(curl(url, body, ["Content-Type: " + ndjson, auth_a]), 202)
        accepted += [e["event_id"] for e in doc["events"]]
        doc = expect(curl(url, json.dumps([event("api-2"), event("api-3")]).encode(),
                          ["Content-Type: application/json", auth_a]), 202, '"accepted":2')
        accepted += [e["event_id"] for e in doc["events"]]
        # gzip NDJSON (curl sends the bytes as they are; the header says how to read them).
        gz = gzip.compress(("\n".join(json.dumps(event("api-gz-%d" % i)) for i in range(3)) + "\n").encode())
        doc = expect(curl(url, gz, ["Content-Type: " + ndjson, "Content-Encoding: gzip", auth_a]), 202,
                     '"accepted":3')
        accepted += [e["event_id"] for e in doc["events"]]
        # protobuf, plain and gzipped; a survey score of 11 is rejected by index and field.
        pb = pb_batch([pb_survey_event("api-pb-0", 9), pb_survey_event("api-pb-1", 11),
                       pb_survey_event("api-pb-2", 0)])
        doc = expect(curl(url, pb, ["Content-Type: application/x-protobuf", auth_a]), 400,
                     '"accepted":2,"rejected":1', '{"index":1,"line":0,"field":"survey.likelihood_to_recommend"')
        accepted += [e["event_id"] for e in doc["events"]]
        doc = expect(curl(url, gzip.compress(pb_batch([pb_survey_event("api-pbgz-0", 10)])),
                          ["Content-Type: application/x-protobuf", "Content-Encoding: gzip", auth_a]), 202)
        accepted += [e["event_id"] for e in doc["events"]]
        # Another tenant's event in the batch: 403 for it, the rest accepted.
        mixed = (json.dumps(event("api-4")) + "\n" + json.dumps(event("api-5", tenant="other")) + "\n").encode()
        doc = expect(curl(url, mixed, ["Content-Type: " + ndjson, auth_a]), 403,
                     '{"index":1,"line":2,"field":"tenant_id","reason":"forbidden: this token may only send '
                     'events of tenant %s"}' % TENANT)
        accepted += [e["event_id"] for e in doc["events"]]
        g.check(accepted[-1] == "api-4", "the same-tenant event of the 403 batch was not accepted: %s" % doc)

        # Bodies refused whole.
        bomb = gzip.compress(b" " * (1024 * 1024))
        expect(curl(url, bomb, ["Content-Type: " + ndjson, "Content-Encoding: gzip", auth_a]), 413,
               "the gzip body inflates to more than the body size limit (65536 bytes)")
        expect(curl(url, gz[:len(gz) // 2] + b"garbage-garbage-garbage",
                    ["Content-Type: " + ndjson, "Content-Encoding: gzip", auth_a]), 400, "the gzip body is")
        expect(curl(url, body, ["Content-Type: " + ndjson, "Content-Encoding: compress", auth_a]), 415,
               "Content-Encoding compress is not supported")
        # Refused by the HTTP layer before ingest sees them (and still counted, see below): a
        # Content-Length over --max-body, and a request head over --max-header.
        expect(curl(url, b"x" * (100 * 1024), ["Content-Type: " + ndjson, "Expect: 100-continue", auth_a]), 413,
               "body size limit")
        expect(curl(url, body, ["Content-Type: " + ndjson, auth_a, "X-Filler: " + "v" * (20 * 1024)]), 431)

        # SIGHUP with a bad file: the old token keeps working, the log says why.
        with open(tokens, "w") as f:
            f.write("%s\t%s\n%s\n" % (sha(TOKEN_B), TENANT, sha(TOKEN_A)))
        ing.send_signal(signal.SIGHUP)
        g.wait_until(lambda: ("tokens file not reloaded" in read_log(ing_log), "no reload line yet"), 30,
                     "the failed reload to be logged")
        g.check("%s:2: expected" % tokens in read_log(ing_log), "the failed reload does not name line 2")
        expect(curl(url, (json.dumps(event("api-6")) + "\n").encode(), ["Content-Type: " + ndjson, auth_a]), 202)
        accepted.append("api-6")
        # A good file: TOKEN_B replaces TOKEN_A.
        with open(tokens, "w") as f:
            f.write("%s\t%s\trotated\n" % (sha(TOKEN_B), TENANT))
        ing.send_signal(signal.SIGHUP)
        g.wait_until(lambda: ("tokens file reloaded" in read_log(ing_log), "no reload line yet"), 30,
                     "the reload to be logged")
        expect(curl(url, body, ["Content-Type: " + ndjson, auth_a]), 401, "not known")
        expect(curl(url, (json.dumps(event("api-7")) + "\n").encode(),
                    ["Content-Type: " + ndjson, "Authorization: Bearer " + TOKEN_B]), 202)
        accepted.append("api-7")

        # Everything accepted is on the topic.
        values = g.kafka_read_all(bootstrap, g.TOPIC_INTERACTIONS, timeout_s=60)
        on_topic = {g.protobuf_string_fields(v, {1}).get(1, b"").decode() for v in values}
        missing = sorted(set(accepted) - on_topic)
        g.check(not missing, "accepted events missing from the topic: %s" % missing)
        g.check("api-5" not in on_topic and "api-pb-1" not in on_topic, "a rejected event reached the topic")

        status, _, metrics = g.http("GET", admin + "/metrics", timeout_s=10)
        text = metrics.decode()
        g.check('goodwill_ingest_requests_total{route="/v1/events",status="401"} 3' in text,
                "401s are not counted in goodwill_ingest_requests_total")
        g.check('goodwill_ingest_auth_reloads_total{result="failed"} 1' in text, "failed reload not counted")
        g.check('goodwill_ingest_requests_total{route="/v1/events",status="413"} 2' in text,
                "the two 413s (gzip bomb by ingest, Content-Length by the HTTP layer) are not both counted")
        g.check('goodwill_ingest_requests_total{route="other",status="431"} 1' in text,
                "the HTTP layer's 431 is not counted under route other")
        logs = read_log(ing_log)
        for secret in (TOKEN_A, TOKEN_B, "nope"):
            g.check(secret not in text, "a token appears in /metrics")
            g.check(secret not in logs, "a token appears in the ingest log")
        g.log("%d events accepted over JSON, NDJSON, gzip and protobuf, all on the topic" % len(accepted))

        rc = g.terminate(ing, timeout_s=30)
        ing = None
        g.check(rc == 0, "goodwill-ingest exited %s on SIGTERM" % rc)
        passed = True
    finally:
        for proc in (ing, dk):
            if proc is not None:
                g.terminate(proc)
        if passed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in %s" % tmp, flush=True)


if __name__ == "__main__":
    g.run(main)
