"""Load and checks shared by the fault matrix's tests (test_fault_kills, test_fault_kafka):
clients that post seeded events in batches and retry each batch until it is answered 202,
the aggregator's duplicate counter summed over its incarnations, and the exactly-once checks
once the load stopped (read API, Redis, the topics and the DLQ)."""

import collections
import http.client
import json
import random
import threading
import time
import urllib.request

import gwstack as g

BATCH_DEADLINE_S = 90  # a batch not acknowledged within this (retries included) fails the test
RETRY_PAUSE_S = 0.2
CLIENT_TIMEOUT_S = 30


def seeded_batches(seed, tenant, teams, interactions, batch_max=16):
    """goodwill-gen's events for the seed (closed interactions and surveys, 6 h of event
    time, every event id distinct), cut into batches of 1 to batch_max events (sizes drawn
    from rng, which the caller goes on using). Returns (rng, batches)."""
    rng = random.Random(seed)
    lines = g.generate(seed=seed, interactions=interactions, teams=teams, tenant=tenant, survey_rate=0.45,
                       span="6h")
    ids = [json.loads(l)["event_id"] for l in lines]
    g.check(len(set(ids)) == len(ids), "goodwill-gen must give every event a distinct event_id")
    batches = []
    pos = 0
    while pos < len(lines):
        k = rng.randint(1, batch_max)
        batches.append(lines[pos:pos + k])
        pos += k
    return rng, batches



class Load:
    """`clients` threads posting the batches in order (each takes the next one), each batch
    until it is answered 202, pausing request_pause_s after each. Stops taking new batches
    once stop is set. Fails (failed set, error said) on an answer other than 202 or 503, a
    503 without Retry-After, a 202 that does not accept the whole batch, or a batch not
    acknowledged within BATCH_DEADLINE_S. Answers are also counted per `phase`, a label the
    test sets while it injects a fault."""

    def __init__(self, port, batches, tenant, clients=2, request_pause_s=0.4):
        self.port = port
        self.batches = batches
        self.tenant = tenant
        self.request_pause_s = request_pause_s
        self.phase = "load"
        self.by_phase = collections.defaultdict(collections.Counter)
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
        self.threads = [threading.Thread(target=self._worker, args=(w,), daemon=True) for w in range(clients)]

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

    def halt(self):
        """Stops the load (no new batch is taken) and waits for the batches in flight; for a
        finally clause, so it raises only when a client hangs."""
        self.stop.set()
        self.join(BATCH_DEADLINE_S + CLIENT_TIMEOUT_S)

    def results(self):
        """After halt: checks that the load did not fail and that every batch sent was
        acknowledged; returns (the acknowledged batches' indexes, events sent, events
        acknowledged)."""
        g.check(self.error is None, "the load failed: %s" % self.error)
        sent, acked = sorted(self.sent), sorted(self.acked)
        missing = sorted(set(sent) - set(acked))
        g.check(not missing, "%d batches were sent but never acknowledged: %s" % (len(missing), missing[:10]))
        return acked, sum(len(self.batches[i]) for i in sent), sum(len(self.batches[i]) for i in acked)

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
                status = retry_after = None
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
                    retry_after = resp.getheader("Retry-After")
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
                    self.by_phase[self.phase][status or "cut"] += 1
                if status == 503 and not retry_after:
                    self._fail("batch %d: 503 without Retry-After: %r" % (i, data[:300]))
                    return
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
            self.stop.wait(self.request_pause_s)
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


def event_ids(values, tenant):
    """(records of the tenant, distinct event ids) among InteractionEvents (event_id is field
    1, tenant_id field 2)."""
    n, ids = 0, set()
    for v in values:
        f = g.protobuf_string_fields(v, {1, 2})
        if f.get(2, b"").decode() == tenant:
            n += 1
            ids.add(f.get(1, b"").decode())
    return n, len(ids)


def scored_fields(value):
    """The fields of a ScoredRecord's interaction (1) or survey (2), whichever it holds
    (record_id is field 1 of either, tenant_id field 3); {} when it holds neither."""
    rec = g.protobuf_fields(value)
    inner = rec.get(1, rec.get(2))
    return g.protobuf_fields(inner) if isinstance(inner, bytes) else {}


def record_ids(values, tenant):
    """(records of the tenant, distinct record ids) among ScoredRecords."""
    n, ids = 0, set()
    for v in values:
        f = scored_fields(v)
        if f.get(3, b"").decode() == tenant:
            n += 1
            ids.add(f.get(1, b"").decode())
    return n, len(ids)


def dlq_of_tenant(value, tenant):
    """Whether a DLQ record (an InteractionEvent from the scorer, a ScoredRecord from the
    aggregator) is of the tenant; undecodable values are matched by their bytes."""
    try:
        return (g.protobuf_string_fields(value, {2}).get(2) == tenant.encode() or
                scored_fields(value).get(3) == tenant.encode())
    except ValueError:
        return tenant.encode() in value


def verify_exact(st, tenant, batches, acked, asan):
    """Once the load stopped: waits (bounded) until the read API counts exactly the
    acknowledged events of every team (failing at once on a count above them), then until both
    consumer groups committed all of their input (no replay is still to come), and checks the
    read API and Redis's 1d buckets once more, the topics (every acknowledged event once by id)
    and the DLQ (nothing of the tenant). Returns the figures for the RESULT line."""
    expected, _ = expected_of(batches, acked)
    acked_events = sum(len(batches[i]) for i in acked)
    want = g.totals(expected)
    t0 = time.monotonic()
    last = {"got": None}

    def counts_equal():
        got = g.api_counts_or_none(st.api, tenant)
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
    got = g.api_counts(st.api, tenant)
    lost, doubled = differences(got, expected)
    g.compare_counts("read API (after both groups committed everything)", got, expected)
    g.compare_counts("Redis (1d buckets)", g.redis_counts(st.redis_url, tenant), expected)

    n_in, ids_in = event_ids(g.kafka_read_all(st.kafka, g.TOPIC_INTERACTIONS, timeout_s=120), tenant)
    n_sc, ids_sc = record_ids(g.kafka_read_all(st.kafka, g.TOPIC_SCORED, timeout_s=120), tenant)
    dlq = [v for v in g.kafka_read_all(st.kafka, g.TOPIC_DLQ, timeout_s=60) if dlq_of_tenant(v, tenant)]
    g.check(ids_in == acked_events, "%s holds %d distinct event ids of the tenant, %d were acknowledged"
            % (g.TOPIC_INTERACTIONS, ids_in, acked_events))
    g.check(ids_sc == acked_events, "%s holds %d distinct record ids of the tenant, %d events were acknowledged"
            % (g.TOPIC_SCORED, ids_sc, acked_events))
    g.check(not dlq, "%d records of the tenant went to %s" % (len(dlq), g.TOPIC_DLQ))
    return {"counted": sum(g.totals(got)), "lost": lost, "doubled": doubled,
            "interactions_records": n_in, "interactions_ids": ids_in,
            "scored_records": n_sc, "scored_ids": ids_sc}
