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
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "kills"
TEAMS = 5
CLIENTS = 2
BATCH_MAX = 16  # events per request: 1..BATCH_MAX
REQUEST_PAUSE_S = 0.4  # per client between batches: about 2 * 2.4 * 8.5 = 40 events/s offered
KILL_GAP_S = (0.3, 2.5)  # random wait before each kill, after the previous victim is ready
BATCH_DEADLINE_S = 90  # a batch not acknowledged within this (retries included) fails the test
RETRY_PAUSE_S = 0.2
CLIENT_TIMEOUT_S = 30
VICTIMS = ("ingest", "scorer", "aggregator")


def asan_build():
    try:
        with open(os.path.join(g.BUILD_DIR, "CMakeCache.txt")) as f:
            return any(l.startswith("GW_SANITIZE:") and l.strip().endswith("=ON") for l in f)
    except OSError:
        return False


def kill_count():
    n = int(os.environ.get("GW_FAULT_KILLS", "24"))
    g.check(n >= 3, "GW_FAULT_KILLS must be at least 3 (one per daemon), got %d" % n)
    return n


class Load:
    """CLIENTS threads posting the batches in order (each takes the next one), each batch
    until it is answered 202. Stops taking new batches once stop is set."""

    def __init__(self, port, batches):
        self.port = port
        self.batches = batches
        self.next = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failed = threading.Event()
        self.acked = []  # indexes of acknowledged batches
        self.sent = set()  # indexes of batches sent at least once
        self.requests = 0
        self.retries = 0  # requests that repeated a batch already sent
        self.statuses = collections.Counter()
        self.cut = 0  # requests that got no answer (connection refused, reset, timeout)
        self.error = None
        self.in_flight = {}  # worker -> when its request (sent, answer not read yet) was sent
        self.flight = threading.Condition(self.lock)
        self.latencies = collections.deque(maxlen=50)  # seconds, of the last requests answered 202
        self.threads = [threading.Thread(target=self._worker, args=(w,), daemon=True) for w in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        g.check(not alive, "clients %s still had unacknowledged batches %.0f s after the load was stopped"
                % (alive, timeout_s))

    def catch_in_flight(self, rng, timeout_s):
        """Waits until a request is in flight and then until a random point of its expected
        course (a share of the median latency of the last answers): ingest has read it and may
        have written some of its events to Kafka, but not answered yet. Returns True at such a
        moment, with the request still unanswered; False when none was caught in timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.failed.is_set():
            with self.flight:
                if not self.flight.wait_for(lambda: self.in_flight or self.failed.is_set(),
                                            max(0.0, deadline - time.monotonic())):
                    return False
                if self.failed.is_set():
                    return False
                w, t_req = next(iter(self.in_flight.items()))
                lat = sorted(self.latencies)
                median = lat[len(lat) // 2] if lat else 0.003
            target = t_req + rng.uniform(0.3, 1.0) * median
            time.sleep(max(0.0, target - time.monotonic()))
            with self.flight:
                if self.in_flight.get(w) == t_req:
                    return True
        return False

    def acked_events(self):
        with self.lock:
            return sum(len(self.batches[i]) for i in self.acked)

    def _fail(self, message):
        with self.lock:
            if self.error is None:
                self.error = message
        self.failed.set()
        self.stop.set()

    def _take(self):
        with self.lock:
            if self.stop.is_set() or self.next >= len(self.batches):
                return None
            i = self.next
            self.next += 1
            return i

    def _worker(self, w):
        conn = None
        while not self.failed.is_set():
            i = self._take()
            if i is None:
                break
            body = b"".join(l + b"\n" for l in self.batches[i])
            t0 = time.monotonic()
            first = True
            while True:
                if self.failed.is_set():
                    return
                if time.monotonic() - t0 > BATCH_DEADLINE_S:
                    self._fail("batch %d (%d events) not acknowledged within %d s of retries"
                               % (i, len(self.batches[i]), BATCH_DEADLINE_S))
                    return
                with self.lock:
                    self.requests += 1
                    if not first:
                        self.retries += 1
                    self.sent.add(i)
                first = False
                status = None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_S)
                    t_req = time.monotonic()
                    conn.request("POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"})
                    with self.flight:
                        self.in_flight[w] = t_req
                        self.flight.notify_all()
                    try:
                        resp = conn.getresponse()
                        data = resp.read()
                    finally:
                        with self.flight:
                            del self.in_flight[w]
                    status = resp.status
                    if status == 202:
                        with self.lock:
                            self.latencies.append(time.monotonic() - t_req)
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                with self.lock:
                    if status is None:
                        self.cut += 1
                    else:
                        self.statuses[status] += 1
                if status == 202:
                    try:
                        doc = json.loads(data)
                    except ValueError:
                        doc = None
                    if not isinstance(doc, dict) or doc.get("accepted") != len(self.batches[i]):
                        self._fail("batch %d: 202 with %r, expected accepted=%d" % (i, data[:300],
                                                                                    len(self.batches[i])))
                        return
                    with self.lock:
                        self.acked.append(i)
                    break
                if status not in (None, 503):
                    self._fail("batch %d: ingest answered %d (only 202 or 503 are expected): %r"
                               % (i, status, data[:300]))
                    return
                self.failed.wait(RETRY_PAUSE_S)
            self.stop.wait(REQUEST_PAUSE_S)
        if conn is not None:
            conn.close()


class DuplicateCounter:
    """Samples the aggregator's goodwill_aggregator_records_duplicate_total every 0.3 s and
    keeps the largest value seen per aggregator pid (the counter restarts with the process):
    the sum is a lower bound of the duplicates caught over the run."""

    def __init__(self, st):
        self.st = st
        self.by_pid = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def sample(self):
        try:
            pid = self.st.pid("aggregator")
            with urllib.request.urlopen(self.st.admin("aggregator") + "/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except (OSError, ValueError):
            return
        v = g.metric_sum(text, "goodwill_aggregator_records_duplicate_total")
        if v is None:
            return
        with self.lock:
            self.by_pid[pid] = max(self.by_pid.get(pid, 0), int(v))

    def _run(self):
        while not self.stop.wait(0.3):
            self.sample()

    def total(self):
        with self.lock:
            return sum(self.by_pid.values())

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        self.sample()


def kill_now(st, name):
    """SIGKILL from this process (no shell in between, so the moment is the one chosen),
    then waits for devstack's wrapper to record the exit."""
    pid = st.pid(name)
    os.kill(pid, signal.SIGKILL)
    exit_file = os.path.join(st.dir, name + ".exit")
    g.wait_until(lambda: (os.path.exists(exit_file), "no %s yet" % exit_file), 30,
                 "%s (pid %d) to exit after SIGKILL" % (name, pid), interval_s=0.02)


def expected_of(batches, acked):
    lines = [l for i in acked for l in batches[i]]
    per_team, ids = g.expected_counts(lines)
    return per_team, ids


def differences(got, expected):
    lost = doubled = 0
    for team in set(got) | set(expected):
        gt = got.get(team, {"interactions": 0, "surveys": 0})
        ex = expected.get(team, {"interactions": 0, "surveys": 0})
        for k in ("interactions", "surveys"):
            lost += max(0, ex[k] - gt[k])
            doubled += max(0, gt[k] - ex[k])
    return lost, doubled


def committed_behind(bootstrap, group, topic):
    """Records of topic not yet committed by group (sum over partitions of high watermark
    minus committed offset); None when it cannot be read. Only fetches offsets: it does not
    join the group."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in sorted(md.topics[topic].partitions)]
        committed = c.committed(parts, timeout=10)
        behind = 0
        for tp in committed:
            _, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            behind += hi - max(tp.offset, 0)
        return behind
    except Exception as e:  # noqa: BLE001 (a busy cluster: the caller polls again)
        g.log("offsets of %s on %s not read: %s" % (group, topic, e))
        return None
    finally:
        c.close()


def event_ids(values):
    """(records of the tenant, distinct event ids) among InteractionEvents (event_id is field
    1, tenant_id field 2)."""
    n, ids = 0, set()
    for v in values:
        f = g.protobuf_string_fields(v, {1, 2})
        if f.get(2, b"").decode() == TENANT:
            n += 1
            ids.add(f.get(1, b"").decode())
    return n, len(ids)


def scored_fields(value):
    """The fields of a ScoredRecord's interaction (1) or survey (2), whichever it holds
    (record_id is field 1 of either, tenant_id field 3); {} when it holds neither."""
    rec = g.protobuf_fields(value)
    inner = rec.get(1, rec.get(2))
    return g.protobuf_fields(inner) if isinstance(inner, bytes) else {}


def record_ids(values):
    """(records of the tenant, distinct record ids) among ScoredRecords."""
    n, ids = 0, set()
    for v in values:
        f = scored_fields(v)
        if f.get(3, b"").decode() == TENANT:
            n += 1
            ids.add(f.get(1, b"").decode())
    return n, len(ids)


def dlq_of_tenant(value):
    """Whether a DLQ record (an InteractionEvent from the scorer, a ScoredRecord from the
    aggregator) is of the tenant; undecodable values are matched by their bytes."""
    try:
        return (g.protobuf_string_fields(value, {2}).get(2) == TENANT.encode() or
                scored_fields(value).get(3) == TENANT.encode())
    except ValueError:
        return TENANT.encode() in value


def main():
    # Threads hand over the interpreter every millisecond rather than every 5: the killer
    # acts on "a request is in flight" while it still is.
    sys.setswitchinterval(0.001)
    seed = int(os.environ.get("GW_FAULT_SEED", "20261"))
    kills = kill_count()
    asan = asan_build()
    rng = random.Random(seed)
    # About 13,000 events: over 5 minutes of load at the offered rate; the load stops when the
    # kills are done. (The embedded cluster keeps about 5 MiB per partition: this is 10 MiB
    # over 6 partitions.)
    interactions = 9000
    lines = g.generate(seed=seed, interactions=interactions, teams=TEAMS, tenant=TENANT, survey_rate=0.45,
                       span="6h")
    ids = [json.loads(l)["event_id"] for l in lines]
    g.check(len(set(ids)) == len(ids), "goodwill-gen must give every event a distinct event_id")
    batches = []
    pos = 0
    while pos < len(lines):
        k = rng.randint(1, BATCH_MAX)
        batches.append(lines[pos:pos + k])
        pos += k
    plan = [VICTIMS[i % 3] for i in range(kills)]
    rng.shuffle(plan)
    gaps = [rng.uniform(*KILL_GAP_S) for _ in plan]
    catch_rng = random.Random(seed + 1)  # draws depend on timing: kept apart from the plan's
    g.log("seed %d%s: %d events in %d batches available; %d kills planned (%s)"
          % (seed, " (ASan build)" if asan else "", len(lines), len(batches), kills,
             ", ".join("%s %d" % (v, plan.count(v)) for v in VICTIMS)))

    with g.Stack(session_timeout="6s") as st:
        port = int(st.ingest.rsplit(":", 1)[1])
        load = Load(port, batches)
        dups = DuplicateCounter(st)
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
            load.stop.set()
            load.join(BATCH_DEADLINE_S + CLIENT_TIMEOUT_S)
        g.check(load.error is None, "the load failed: %s" % load.error)
        sent_batches = sorted(load.sent)
        acked = sorted(load.acked)
        sent_events = sum(len(batches[i]) for i in sent_batches)
        acked_events = sum(len(batches[i]) for i in acked)
        g.log("load: %d requests for %d batches (%d retries: %d cut off, %d answered 503); statuses %s; "
              "%d events sent, %d acknowledged; kills took %.0f s"
              % (load.requests, len(sent_batches), load.retries, load.cut, load.statuses.get(503, 0),
                 dict(load.statuses), sent_events, acked_events, t_kills_done - t_load))
        g.check(sent_batches == acked, "%d batches were sent but never acknowledged: %s"
                % (len(set(sent_batches) - set(acked)), sorted(set(sent_batches) - set(acked))[:10]))
        g.check(dict(done) == {v: plan.count(v) for v in VICTIMS}, "kills done %s, planned %s" % (dict(done), plan))

        expected, _ = expected_of(batches, acked)
        want = g.totals(expected)
        t0 = time.monotonic()
        last = {"got": None}

        def counts_equal():
            got = g.api_counts_or_none(st.api, TENANT)
            if got is None:
                return False, "read API not answering"
            lost, doubled = differences(got, expected)
            if got != last["got"]:
                g.log("read API totals (interactions, surveys) = %s, acknowledged %s" % (g.totals(got), want))
                last["got"] = got
            g.check(doubled == 0, "the read API counts %d events more than were acknowledged (doubled); "
                    "per team: got %s, acknowledged %s" % (doubled, got, expected))
            return lost == 0, "lost %d so far: got %s" % (lost, got)

        g.wait_until(counts_equal, 240 if asan else 120, "the read API to count exactly the acknowledged events "
                     "of every team", interval_s=0.5)
        g.log("counts equal after %.1f s" % (time.monotonic() - t0))
        for group, topic in (("goodwill-scorer", g.TOPIC_INTERACTIONS), ("goodwill-aggregator", g.TOPIC_SCORED)):
            def caught_up(group=group, topic=topic):
                behind = committed_behind(st.kafka, group, topic)
                return behind == 0, "%s records of %s not committed by %s" % (behind, topic, group)
            g.wait_until(caught_up, 60, "consumer group %s to commit all of %s" % (group, topic), interval_s=1.0)
        got = g.api_counts(st.api, TENANT)
        lost, doubled = differences(got, expected)
        g.compare_counts("read API (after both groups committed everything)", got, expected)
        g.compare_counts("Redis (1d buckets)", g.redis_counts(st.redis_url, TENANT), expected)
        dups.finish()
        caught = dups.total()

        n_in, ids_in = event_ids(g.kafka_read_all(st.kafka, g.TOPIC_INTERACTIONS, timeout_s=120))
        n_sc, ids_sc = record_ids(g.kafka_read_all(st.kafka, g.TOPIC_SCORED, timeout_s=120))
        dlq = [v for v in g.kafka_read_all(st.kafka, g.TOPIC_DLQ, timeout_s=60) if dlq_of_tenant(v)]
        g.check(ids_in == acked_events, "%s holds %d distinct event ids of the tenant, %d were acknowledged"
                % (g.TOPIC_INTERACTIONS, ids_in, acked_events))
        g.check(ids_sc == acked_events, "%s holds %d distinct record ids of the tenant, %d events were acknowledged"
                % (g.TOPIC_SCORED, ids_sc, acked_events))
        g.check(not dlq, "%d records of the tenant went to %s" % (len(dlq), g.TOPIC_DLQ))
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
                 sent_events, acked_events, sum(g.totals(got)), lost, doubled, caught, n_in - ids_in, n_sc - ids_sc,
                 load.requests, load.retries), flush=True)


if __name__ == "__main__":
    g.run(main)
