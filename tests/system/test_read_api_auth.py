"""The read API's bearer tokens, as a BI client sees them, on a whole stack.

Starts the stack with scripts/devstack, ingest and aggregator both given one tokens file
(GW_DEVSTACK_INGEST_ARGS / GW_DEVSTACK_AGGREGATOR_ARGS = --tokens-file), so the same token
writes and reads one tenant. Posts goodwill-gen events of two tenants (acme, globex: the same
team ids in both) through ingest, each with its tenant's token, and checks with urllib:

- no token: 401 with WWW-Authenticate: Bearer realm="goodwill-read"; an unknown token: 401
  with error="invalid_token";
- acme's token without ?tenant= reads acme, and exactly acme's counts per team (not the sum
  of both tenants); ?tenant=globex with it is 403 naming globex;
- globex's token reads globex's own counts;
- after rewriting the file and SIGHUP to the aggregator, a new token reads acme and the
  removed one gets 401;
- /healthz, /readyz and /metrics on the admin port need no token; no token text appears in the
  aggregator's log or /metrics.
"""

import hashlib
import json
import os
import signal
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TOKEN_ACME = "read-acme-4b1e0c"
TOKEN_GLOBEX = "read-globex-93fd2a"
TOKEN_ACME_NEW = "read-acme-rotated-7c55"
TOKEN_UNKNOWN = "read-unknown-0000"
ALL_TOKENS = (TOKEN_ACME, TOKEN_GLOBEX, TOKEN_ACME_NEW, TOKEN_UNKNOWN)


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def write_tokens(path, entries):
    with open(path + ".tmp", "w") as f:
        f.write("# goodwill tokens: ingest and the read API\n")
        for token, tenant in entries:
            f.write("%s\t%s\tsystem test\n" % (sha(token), tenant))
    os.replace(path + ".tmp", path)


def get(url, token=None, timeout_s=30):
    """(status, headers, parsed JSON body or None) of a GET, with a bearer token if given."""
    req = urllib.request.Request(url, method="GET")
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status, headers, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, data = e.code, e.headers, e.read()
    try:
        doc = json.loads(data.decode()) if data.strip().startswith(b"{") else None
    except ValueError:
        raise g.TestFailure("GET %s answered %d with a body that is not JSON: %r" % (url, status, data[:300]))
    return status, headers, doc


def post(ingest_url, token, lines):
    body = b"".join(l.rstrip(b"\n") + b"\n" for l in lines)
    req = urllib.request.Request(ingest_url + "/v1/events", data=body, method="POST")
    req.add_header("Content-Type", "application/x-ndjson")
    req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def counts_of(doc):
    return {row["team"]: {"interactions": int(row["interactions"]), "surveys": int(row["surveys"])}
            for row in doc["teams"]}


def read_counts(api, token):
    """Per team counts the token reads (no ?tenant=), or None while the API is not there yet."""
    try:
        status, _, doc = get(api + "/v1/teams?window=7d", token)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None
    if status == 503:
        return None, None
    g.check(status == 200, "GET /v1/teams with a valid token answered %d: %s" % (status, doc))
    return doc["tenant"], counts_of(doc)


def wait_counts(api, token, expected, what):
    want = g.totals(expected)

    def probe():
        tenant, got = read_counts(api, token)
        if got is None:
            return False, "read API not answering"
        return g.totals(got) == want, (tenant, g.totals(got))

    g.wait_until(probe, 120, "%s's totals to reach %s" % (what, want))
    return read_counts(api, token)


def main():
    st = g.Stack()
    tokens = os.path.join(st.dir, "tokens.tsv")
    write_tokens(tokens, [(TOKEN_ACME, "acme"), (TOKEN_GLOBEX, "globex")])
    st.extra_env = {"GW_DEVSTACK_INGEST_ARGS": "--tokens-file " + tokens,
                    "GW_DEVSTACK_AGGREGATOR_ARGS": "--tokens-file " + tokens}
    with st:
        acme = g.generate(seed=11, interactions=40, teams=3, tenant="acme")
        globex = g.generate(seed=12, interactions=25, teams=3, tenant="globex")
        want_acme, _ = g.expected_counts(acme)
        want_globex, _ = g.expected_counts(globex)
        g.check(set(want_acme) & set(want_globex), "the generator gave the two tenants no common team id, "
                "so the test could not tell a tenant's counts from both tenants' counts")
        for token, lines in ((TOKEN_ACME, acme), (TOKEN_GLOBEX, globex)):
            status, body = post(st.ingest, token, lines)
            g.check(status == 202, "ingest answered %d to a token's own events: %s" % (status, body[:400]))

        api = st.api
        # No token, and an unknown token: 401 with the challenge.
        status, headers, doc = get(api + "/v1/teams?window=7d")
        g.check(status == 401, "a read without a token answered %d: %s" % (status, doc))
        g.check(headers.get("WWW-Authenticate") == 'Bearer realm="goodwill-read"',
                "401 without a token: WWW-Authenticate is %r" % headers.get("WWW-Authenticate"))
        status, headers, doc = get(api + "/v1/teams?tenant=acme&window=7d", TOKEN_UNKNOWN)
        g.check(status == 401, "a read with an unknown token answered %d: %s" % (status, doc))
        g.check(headers.get("WWW-Authenticate") == 'Bearer realm="goodwill-read", error="invalid_token"',
                "401 for an unknown token: WWW-Authenticate is %r" % headers.get("WWW-Authenticate"))

        # Each token reads its own tenant, and exactly its counts.
        tenant, got = wait_counts(api, TOKEN_ACME, want_acme, "acme")
        g.check(tenant == "acme", "acme's token read tenant %r" % tenant)
        g.compare_counts("the read API (acme's token)", got, want_acme)
        tenant, got = wait_counts(api, TOKEN_GLOBEX, want_globex, "globex")
        g.check(tenant == "globex", "globex's token read tenant %r" % tenant)
        g.compare_counts("the read API (globex's token)", got, want_globex)
        team = sorted(want_acme)[0]
        status, _, doc = get(api + "/v1/teams/%s/summary?window=7d" % team, TOKEN_ACME)
        g.check(status == 200 and doc["tenant"] == "acme" and doc["interactions"] == want_acme[team]["interactions"],
                "acme's summary of %s: %d %s, expected %d interactions" % (team, status, doc,
                                                                          want_acme[team]["interactions"]))

        # Another tenant: 403, nothing of it in the answer.
        for path in ("/v1/teams?tenant=globex&window=7d", "/v1/teams/%s/summary?tenant=globex&window=7d" % team):
            status, _, doc = get(api + path, TOKEN_ACME)
            g.check(status == 403, "acme's token asking for globex (%s) answered %d: %s" % (path, status, doc))
            g.check('may not read tenant "globex"' in doc.get("error", ""), "the 403 does not say why: %s" % doc)

        # Rotation: the new file drops acme's token and adds another; SIGHUP the aggregator.
        write_tokens(tokens, [(TOKEN_ACME_NEW, "acme"), (TOKEN_GLOBEX, "globex")])
        log_path = os.path.join(st.dir, "aggregator.log")
        os.kill(st.pid("aggregator"), signal.SIGHUP)
        g.wait_until(lambda: ("tokens file reloaded" in open(log_path, errors="replace").read(), "no reload line"),
                     30, "the aggregator to log the reload")
        status, _, doc = get(api + "/v1/teams?window=7d", TOKEN_ACME)
        g.check(status == 401, "the removed token still reads after the reload: %d %s" % (status, doc))
        tenant, got = read_counts(api, TOKEN_ACME_NEW)
        g.check(tenant == "acme", "the new token read tenant %r" % tenant)
        g.compare_counts("the read API (acme's new token)", got, want_acme)

        # The admin port stays open to Prometheus and the kubelet; no token leaks.
        admin = st.admin("aggregator")
        for path in ("/healthz", "/readyz", "/metrics"):
            status, _, _ = g.http("GET", admin + path, timeout_s=10)
            g.check(status == 200, "GET %s on the admin port without a token answered %d" % (path, status))
        _, _, metrics = g.http("GET", admin + "/metrics", timeout_s=10)
        metrics = metrics.decode()
        g.check("goodwill_aggregator_auth_tokens 2" in metrics, "goodwill_aggregator_auth_tokens is not 2")
        g.check('goodwill_aggregator_auth_reloads_total{result="ok"} 1' in metrics, "the reload is not counted")
        logs = open(log_path, errors="replace").read()
        for token in ALL_TOKENS:
            g.check(token not in metrics, "a token appears in the aggregator's /metrics")
            g.check(token not in logs, "a token appears in the aggregator's log")
        g.log("two tenants read apart; 401, 403 and the reload as documented")


if __name__ == "__main__":
    g.run(main)
