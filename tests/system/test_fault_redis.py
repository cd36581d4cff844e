"""Fault matrix, rows "Redis unreachable for 30 s" and "Redis slow", under load, exactly once.

Starts the whole stack and posts seeded goodwill-gen events through ingest in small batches
from 2 clients, each batch retried until it is answered 202 (tests/system/faultload.py).
While the load flows:

1. unreachable: redis-server is frozen with SIGSTOP for exactly UNREACHABLE_S (30 s): its
   connections stay open and nothing is answered, the hardest kind of outage for the
   aggregator, which cannot tell whether a script it sent ran; then SIGCONT;
2. slow: for SLOW_S (30 s), a Lua script that runs SLOW_SCRIPT_MS (2.5 s) is sent every
   SLOW_EVERY_S (3 s) from another connection; Redis runs one script at a time, so every
   command of the aggregator waits behind it (its scripts take seconds).

Checked:

- ingest, which does not use Redis, goes on answering 202 (every answer is 202 or 503, a 503
  with Retry-After);
- the aggregator stays alive and responsive: GET /healthz on its admin port, on a new
  connection every 0.5 s, answers 200 within 1 s throughout; its RSS (VmRSS every 0.2 s)
  stays within idle + RSS_BOUND_MIB (release builds; an ASan build reports it) while Redis
  is away or slow;
- after each fault, within a bounded wait, the read API counts every event acknowledged by
  then (the aggregator resumed by itself), and no daemon was restarted;
- once the load stopped, the read API and Redis count exactly the acknowledged events of
  every team (lost = 0, doubled = 0) after both consumer groups committed everything, every
  acknowledged event is on the topics once by id, nothing of the tenant is on the DLQ.

Environment: GW_FAULT_SEED (default 20263). The last line before PASS is a RESULT line with the
figures docs/RELIABILITY.md quotes.
"""

import os
import signal
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultload as fl  # noqa: E402
import gwstack as g  # noqa: E402

TENANT = "redisfaults"
TEAMS = 5
UNREACHABLE_S = 30
SLOW_S = 30
SLOW_SCRIPT_MS = 2500
SLOW_EVERY_S = 3.0
CALM_S = 3
RESUME_TIMEOUT_S = 120
PROBE_EVERY_S = 0.5
PROBE_LIMIT_S = 1.0
RSS_BOUND_MIB = 64

# Spins until the given number of milliseconds went by on Redis's clock: a slow script.
BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000 + math.floor(t[2] / 1000)
local now = start
while now - start < tonumber(ARGV[1]) do
  t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
return now - start
"""


class Watch:
    """Probes the aggregator's /healthz every PROBE_EVERY_S on a new connection (the worst
    latency and every slow or failed probe kept) and samples its VmRSS every 0.2 s (the peak
    per phase kept)."""

    def __init__(self, st, pid):
        self.url = st.admin("aggregator") + "/healthz"
        self.pid = pid
        self.phase = "load"
        self.worst = 0.0
        self.probes = 0
        self.bad = []
        self.peak_kib = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._probe, daemon=True),
                        threading.Thread(target=self._rss, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _probe(self):
        while not self.stop.wait(PROBE_EVERY_S):
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    status = resp.status
                    resp.read()
            except OSError as e:
                status = str(e)
            dt = time.monotonic() - t0
            self.probes += 1
            self.worst = max(self.worst, dt)
            if status != 200 or dt > PROBE_LIMIT_S:
                self.bad.append((self.phase, status, round(dt, 3)))

    def _rss(self):
        while not self.stop.wait(0.2):
            kib = g.rss_kib(self.pid)
            if kib is not None:
                self.peak_kib[self.phase] = max(self.peak_kib.get(self.phase, 0), kib)


def main():
    seed = int(os.environ.get("GW_FAULT_SEED", "20263"))
    asan = g.asan_build()
    _, batches = fl.seeded_batches(seed, TENANT, TEAMS, 6000)
    g.log("seed %d%s: %d events in %d batches available"
          % (seed, " (ASan build)" if asan else "", sum(map(len, batches)), len(batches)))
    import redis

    with g.Stack(session_timeout="6s") as st:
        pids = {name: st.pid(name) for name in ("ingest", "scorer", "aggregator")}
        redis_pid = st.pid("redis")
        port = int(st.ingest.rsplit(":", 1)[1])
        load = fl.Load(port, batches, TENANT)
        watch = Watch(st, pids["aggregator"])
        resumed = {}
        idle_kib = g.rss_kib(pids["aggregator"])
        load.start()
        watch.start()
        t_load = time.monotonic()

        def set_phase(name):
            load.phase = watch.phase = name

        def calm(phase):
            set_phase("calm before " + phase)
            g.check(not load.failed.wait(CALM_S), "the load failed: %s" % load.error)

        def resume(phase, t_end):
            set_phase("after " + phase)
            acked = load.acked_events()

            def counted():
                g.check(not load.failed.is_set(), "the load failed: %s" % load.error)
                got = g.api_counts_or_none(st.api, TENANT)
                n = sum(g.totals(got)) if got is not None else 0
                return n >= acked, "%d counted of %d acknowledged" % (n, acked)

            g.wait_until(counted, RESUME_TIMEOUT_S * (2 if asan else 1),
                         "the pipeline to count, after %s, the %d events acknowledged by its end" % (phase, acked),
                         interval_s=0.25)
            resumed[phase] = time.monotonic() - t_end
            g.log("%s: the %d events acknowledged by its end counted %.1f s after it; aggregator peak RSS %d MiB "
                  "(idle %d MiB); answers during it %s"
                  % (phase, acked, resumed[phase], watch.peak_kib.get(phase, 0) // 1024, idle_kib // 1024,
                     dict(load.by_phase[phase])))
            for name, pid in pids.items():
                g.check(not os.path.exists(os.path.join(st.dir, name + ".exit")) and st.pid(name) == pid,
                        "%s died or was restarted during %s; its log:\n%s" % (name, phase, st.log_tail(name)))

        try:
            g.wait_until(lambda: (load.acked_events() > 0 or load.failed.is_set(), load.acked_events()), 60,
                         "the first batch to be acknowledged")
            calm("unreachable")
            idle_kib = max(idle_kib, watch.peak_kib.get("calm before unreachable", 0))
            set_phase("unreachable")
            os.kill(redis_pid, signal.SIGSTOP)
            try:
                g.check(not load.failed.wait(UNREACHABLE_S), "the load failed: %s" % load.error)
            finally:
                os.kill(redis_pid, signal.SIGCONT)
            resume("unreachable", time.monotonic())

            calm("slow")
            set_phase("slow")
            r = redis.Redis.from_url(st.redis_url, socket_timeout=SLOW_SCRIPT_MS / 1000 + 30)
            busy = r.register_script(BUSY_SCRIPT)
            t_end = time.monotonic() + SLOW_S
            scripts = 0
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                busy(args=[SLOW_SCRIPT_MS])
                scripts += 1
                g.check(not load.failed.wait(max(0.0, SLOW_EVERY_S - (time.monotonic() - t0))),
                        "the load failed: %s" % load.error)
            g.log("slow: %d scripts of %d ms each ran in %d s" % (scripts, SLOW_SCRIPT_MS, SLOW_S))
            resume("slow", time.monotonic())
            calm("the end")
        finally:
            load.halt()
            watch.finish()
        acked, _, acked_events = load.results()
        g.check(set(load.statuses) <= {202}, "ingest, which does not use Redis, answered %s"
                % dict(load.statuses))
        g.log("load: %d requests, %d events acknowledged in %.0f s; aggregator /healthz: %d probes, worst %.3f s; "
              "peak RSS by phase (MiB): %s"
              % (load.requests, acked_events, time.monotonic() - t_load, watch.probes, watch.worst,
                 {k: v // 1024 for k, v in watch.peak_kib.items()}))
        g.check(not watch.bad, "the aggregator's /healthz was slower than %.1f s or failed: %s"
                % (PROBE_LIMIT_S, watch.bad[:10]))
        peak = max(watch.peak_kib.get(p, 0) for p in ("unreachable", "after unreachable", "slow", "after slow"))
        if asan:
            g.log("ASan build: peak RSS %d MiB reported, not judged (ASan's allocator decides what stays resident)"
                  % (peak // 1024))
        else:
            g.check(peak <= idle_kib + RSS_BOUND_MIB * 1024,
                    "the aggregator's RSS rose to %d MiB during the Redis faults (idle %d MiB, bound +%d MiB)"
                    % (peak // 1024, idle_kib // 1024, RSS_BOUND_MIB))
        res = fl.verify_exact(st, TENANT, batches, acked, asan)
        errors = g.metric_sum(urllib.request.urlopen(st.admin("aggregator") + "/metrics", timeout=10).read().decode(),
                              "goodwill_aggregator_redis_errors_total")
        print("RESULT seed=%d acknowledged=%d counted=%d lost=%d doubled=%d redis_errors=%d healthz_worst_s=%.3f "
              "aggregator_rss_idle_mib=%d aggregator_rss_peak_mib=%d resumed_after_s=%s"
              % (seed, acked_events, res["counted"], res["lost"], res["doubled"], int(errors or 0), watch.worst,
                 idle_kib // 1024, peak // 1024,
                 ",".join("%s:%.1f" % (k, v) for k, v in resumed.items())), flush=True)


if __name__ == "__main__":
    g.run(main)
