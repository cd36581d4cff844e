#!/usr/bin/python3
"""A real Prometheus (Debian's package) scrapes a running local stack.

Starts the stack and a Prometheus on a free loopback port whose configuration scrapes the admin
ports of ingest, scorer, aggregator and goodwill-devkafka every second (labelled as the chart's
ServiceMonitor would: job per daemon, app_kubernetes_io_part_of="goodwill") and loads the
chart's alert rules (charts/goodwill/files/alerts.yaml). Posts generated events and checks,
through Prometheus's HTTP API, what an SRE's dashboard would read:
- every target is up;
- sum(goodwill_ingest_events_accepted_total) equals the events posted;
- the aggregator's applied and the scorer's scored counters account for every event;
- the consumers' lag (goodwill_kafka_consumer_lag) comes back to 0 once everything is read;
- goodwill_build_info is 1 on every daemon;
- the rule file loaded (every group healthy) and no alert fires on this healthy stack except
  the ones whose expression is about the absence of traffic.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "prom"


def ready(base):
    try:
        return g.http("GET", base + "/-/ready", timeout_s=2)[0] == 200, "not ready"
    except OSError as e:  # not listening yet
        return False, str(e)


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    code, _, body = g.http("GET", url, timeout_s=5)
    g.check(code == 200, "Prometheus answered %d to %s: %s" % (code, expr, body[:300]))
    doc = json.loads(body)
    g.check(doc.get("status") == "success", "Prometheus query %s failed: %s" % (expr, doc))
    return doc["data"]["result"]


def scalar(base, expr):
    result = query(base, expr)
    return None if not result else float(result[0]["value"][1])


def main():
    g.require_modules()
    lines = g.generate(seed=17, interactions=150, teams=5, tenant=TENANT)
    posted = len(lines)
    rules = os.path.join(g.SOURCE_DIR, "charts", "goodwill", "files", "alerts.yaml")
    g.check(os.path.exists(rules), "%s is missing" % rules)
    with g.Stack(session_timeout="6s") as st:
        work = tempfile.mkdtemp(prefix="gw-prom-", dir=st.dir)
        port = g.free_port()
        targets = {name: urllib.parse.urlparse(st.admin(name)).netloc
                   for name in ("ingest", "scorer", "aggregator", "devkafka")}
        scrape = []
        for name, addr in targets.items():
            scrape.append({
                "job_name": "goodwill-" + name,
                "scrape_interval": "1s",
                "static_configs": [{"targets": [addr], "labels": {
                    "app_kubernetes_io_part_of": "goodwill", "app_kubernetes_io_component": name}}],
            })
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [rules], "scrape_configs": scrape}
        cfg_path = os.path.join(work, "prometheus.yml")
        with open(cfg_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        check = subprocess.run(["promtool", "check", "config", cfg_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
        g.check(check.returncode == 0, "promtool check config: %s" % check.stdout.decode()[-2000:])
        prom = g.popen_logged(["prometheus", "--config.file", cfg_path, "--storage.tsdb.path",
                               os.path.join(work, "data"), "--web.listen-address", "127.0.0.1:%d" % port,
                               "--log.level", "warn"], os.path.join(work, "prometheus.log"))
        base = "http://127.0.0.1:%d" % port
        try:
            g.wait_until(lambda: ready(base), 60, "Prometheus to be ready")
            g.wait_until(lambda: (scalar(base, 'count(up{app_kubernetes_io_part_of="goodwill"} == 1)') == 4,
                                  query(base, "up")), 60, "Prometheus to scrape all four targets up")
            for i in range(0, posted, 200):
                status, doc = g.post_events(st.ingest, lines[i:i + 200])
                g.check(status == 202, "ingest answered %d: %s" % (status, doc))
            expected, _ = g.expected_counts(lines)
            g.wait_for_counts(st.api, TENANT, expected, timeout_s=90, settle_s=1.0)
            g.wait_until(lambda: (scalar(base, "sum(goodwill_ingest_events_accepted_total)") == posted,
                                  scalar(base, "sum(goodwill_ingest_events_accepted_total)")), 30,
                         "PromQL sum(goodwill_ingest_events_accepted_total) to equal the %d posted" % posted)
            scored = 'sum(goodwill_scorer_records_scored_total)'
            g.wait_until(lambda: ((scalar(base, scored) or 0) >= posted, scalar(base, scored)), 30,
                         "the scorer's scored records (PromQL) to account for the %d events" % posted)
            applied = 'sum(goodwill_aggregator_records_applied_total)'
            g.wait_until(lambda: (scalar(base, applied) == posted, scalar(base, applied)), 30,
                         "PromQL %s to equal the %d posted (each applied once)" % (applied, posted))
            lag = 'sum by (job) (goodwill_kafka_consumer_lag)'
            g.wait_until(lambda: (len(query(base, lag)) == 2 and all(float(r["value"][1]) == 0
                                                                   for r in query(base, lag)),
                                  query(base, lag)), 30,
                         "the scorer's and the aggregator's consumer lag to come back to 0")
            info = query(base, "goodwill_build_info")
            g.check(len(info) >= 3 and all(r["value"][1] == "1" for r in info),
                    "goodwill_build_info is not 1 on every daemon: %s" % info)
            code, _, body = g.http("GET", base + "/api/v1/rules", timeout_s=5)
            groups = json.loads(body)["data"]["groups"]
            g.check(groups and all(r.get("health") == "ok" for grp in groups for r in grp["rules"]),
                    "the alert rules did not load or evaluate cleanly: %s" % json.dumps(groups)[:2000])
            nrules = sum(len(grp["rules"]) for grp in groups)
            firing = [a for a in json.loads(g.http("GET", base + "/api/v1/alerts", timeout_s=5)[2])["data"]["alerts"]
                      if a["state"] == "firing"]
            g.check(not firing, "alerts fire on a healthy stack: %s" % firing)
            g.log("Prometheus: %d targets up, %d events accepted/applied by PromQL, lag 0, %d rules "
                  "healthy, none firing" % (len(targets), posted, nrules))
        finally:
            g.terminate(prom)


if __name__ == "__main__":
    g.run(main)
