"""What the buckets hold, in the read API: every new row field against a brute force.

Writes known ScoredRecords (protobuf, encoded here from the wire format) straight to
goodwill.scored.v1 of a real stack, so the real goodwill-aggregator applies them to a real
redis-server: three teams' interactions over the last three hours, with random polarities,
valences, empathy, transfers, resolved flags (present or not), feelings at the start and at the
end (ties of intensity, a category this build does not know, none at all), interactions without
customer words, surveys, and one record in ten delivered twice. Then, with plain HTTP, for each
team:

- GET /v1/teams/{team}/summary?window=1d (JSON, and CSV parsed by header): the 3x3 transitions
  and their shares, recovered and soured rates, change by start polarity, change sum, empathy
  and transfers means, resolved_known and the resolution rate, the survey response rate equal a
  recomputation from the records (exact for counts, within 1e-9 otherwise; null where the
  denominator is 0), and no row carries a column of the dominant feelings (dominant_n,
  start_<kind>, end_<kind>, <kind>_to_<kind>);
- GET /v1/teams/{team}/series?window=1d&step=1h: every point's fields against the records of
  its hour, and change_balance the running sum of change from the series' first point;
- GET /v1/teams?window=1d&sort=resolution_rate ranks as the client ranks the plain rows;
- GET /v1/teams/{team}/feelings?window=1d (JSON and CSV), and over one hour by from/to: exactly
  the rows of the pairs of dominant feelings that occurred, the start and end margins and the
  total, in the documented order, with their shares of the total;
- a team whose buckets were first written by the previous format (no pairs of dominant
  feelings, no change per start polarity: written here with redis-py) and then updated by the
  aggregator: the new counters start at 0 in those buckets, the feelings' total counts only the
  new records while with_feeling counts all, and the change by start polarity is null.
"""

import csv
import datetime
import io
import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "views2"
TEAMS = ("alpha", "bravo", "charlie")
KINDS = ("anger", "frustration", "confusion", "anxiety", "sadness", "gratitude", "relief",
         "satisfaction", "delight", "none")
POL = ("neg", "neu", "pos")


# ------------------------------------------------------------------------------ wire format

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def f_varint(num, n):
    return varint(num << 3) + varint(n)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((num << 3) | 2) + varint(len(b)) + b


def interaction_pb(r):
    m = f_bytes(1, r["id"]) + f_bytes(3, TENANT) + f_bytes(4, r["team"]) + f_varint(8, r["t_ms"])
    m += f_varint(10, zigzag(r["s"])) + f_varint(11, zigzag(r["e"])) + f_varint(12, zigzag(r["e"] - r["s"]))
    m += f_varint(13, r["ps"] + 1) + f_varint(14, r["pe"] + 1)
    m += f_varint(15, int(r["recovered"])) + f_varint(16, int(r["soured"]))
    m += f_varint(17, zigzag(r["emp"]))
    for num, feelings in ((20, r["sf"]), (21, r["ef"])):
        for cat, milli in feelings:
            m += f_bytes(num, f_bytes(1, cat) + f_varint(2, milli))
    m += f_varint(30, r["handle_ms"]) + f_varint(31, r["wait_ms"]) + f_varint(32, r["transfers"])
    if r["resolved"] is not None:
        m += f_varint(33, int(r["resolved"]))  # a oneof member is written even when false
    m += f_varint(40, r["recv_ms"])
    return f_bytes(1, m)


def survey_pb(r):
    m = f_bytes(1, r["id"]) + f_bytes(3, TENANT) + f_bytes(4, r["team"]) + f_varint(8, r["t_ms"])
    m += f_varint(10, r["ltr"]) + f_varint(40, r["recv_ms"])
    return f_bytes(2, m)


# ------------------------------------------------------------------------------ records

def dominant(feelings):
    """The test's own rule: highest intensity, ties to the earlier category, unknown ignored."""
    best, best_milli = 9, 0
    for cat, milli in feelings:
        if cat not in KINDS[:9] or milli == 0:
            continue
        k = KINDS.index(cat)
        if milli > best_milli or (milli == best_milli and k < best):
            best, best_milli = k, milli
    return best


def make_records(rng, now_s):
    cats = list(KINDS[:9]) + ["disgust"]
    recs = []
    for i in range(900):
        team = TEAMS[i % 3] if i % 7 else TEAMS[0]
        t_s = now_s - 120 - rng.randrange(3 * 3600)
        base = {"id": "bv-%04d-%08x" % (i, rng.getrandbits(32)), "team": team,
                "t_ms": t_s * 1000 + rng.randrange(1000), "recv_ms": now_s * 1000}
        if rng.random() < 0.2:
            base.update(kind="survey", ltr=rng.randrange(11))
            recs.append(base)
            continue
        felt = rng.random() > 0.1
        ps = rng.randrange(3) if felt else -1
        pe = rng.randrange(3) if felt else -1
        s = rng.randrange(-1000, 1001) if felt else 0
        e = rng.randrange(-1000, 1001) if felt else 0
        sf = [(rng.choice(cats), rng.choice((0, 250, 500, 750))) for _ in range(rng.randrange(4))] if felt else []
        ef = [(rng.choice(cats), rng.choice((0, 250, 500, 750))) for _ in range(rng.randrange(4))] if felt else []
        base.update(kind="interaction", ps=ps, pe=pe, s=s, e=e, sf=sf, ef=ef,
                    recovered=felt and ps == 0 and pe > 0, soured=felt and ps > 0 and pe == 0,
                    emp=rng.randrange(1001), handle_ms=rng.randrange(1, 900000),
                    wait_ms=rng.randrange(120000), transfers=rng.randrange(4),
                    resolved=rng.choice((None, False, True)))
        recs.append(base)
    return recs


def brute(recs):
    """Every new row field, from the records alone."""
    inter = [r for r in recs if r["kind"] == "interaction"]
    felt = [r for r in inter if r["ps"] >= 0]
    surveys = sum(1 for r in recs if r["kind"] == "survey")
    n, nf = len(inter), len(felt)
    out = {}
    for a in range(3):
        for b in range(3):
            c = sum(1 for r in felt if r["ps"] == a and r["pe"] == b)
            out["%s_to_%s" % (POL[a], POL[b])] = c
            out["%s_to_%s_share" % (POL[a], POL[b])] = c / nf if nf else None
    out["recovered_rate"] = sum(r["recovered"] for r in felt) / nf if nf else None
    out["soured_rate"] = sum(r["soured"] for r in felt) / nf if nf else None
    for a in range(3):
        group = [r for r in felt if r["ps"] == a]
        out["change_mean_from_" + POL[a]] = (sum(r["e"] - r["s"] for r in group) / 1000 / len(group)
                                             if group else None)
    out["change_sum"] = sum(r["e"] - r["s"] for r in felt) / 1000
    out["empathy_mean"] = sum(r["emp"] for r in inter) / 1000 / n if n else None
    out["transfers_mean"] = sum(r["transfers"] for r in inter) / n if n else None
    known = [r for r in inter if r["resolved"] is not None]
    out["resolved_known"] = len(known)
    out["resolution_rate"] = sum(r["resolved"] for r in known) / len(known) if known else None
    out["survey_response_rate"] = surveys / n if n else None
    return out


# The columns of the dominant feelings, which rows must no longer carry.
FEELING_COLUMNS = (["dominant_n"] + ["start_" + k for k in KINDS] + ["end_" + k for k in KINDS]
                   + ["%s_to_%s" % (a, b) for a in KINDS for b in KINDS])
FEELINGS_HEADER = ["tenant", "team", "window", "from", "to", "start", "end", "interactions", "share"]


def check_no_feeling_columns(where, row):
    extra = [k for k in FEELING_COLUMNS if k in row]
    g.check(not extra, "%s: the row still carries %s" % (where, extra[:5]))


def brute_feelings(recs):
    """The rows of GET .../feelings, in their order: for each start kind its pairs that occurred
    then its margin (start, *), then the end margins (*, end), then the total (*, *), always;
    (start, end, interactions, share of the total)."""
    pairs = [[0] * 11 for _ in range(11)]  # index 10: "*"
    for r in recs:
        if r["kind"] == "interaction" and r["ps"] >= 0:
            a, b = dominant(r["sf"]), dominant(r["ef"])
            for i in (a, 10):
                for j in (b, 10):
                    pairs[i][j] += 1
    total = pairs[10][10]
    names = KINDS + ("*",)
    return [(names[a], names[b], pairs[a][b], pairs[a][b] / total if total else None)
            for a in range(11) for b in range(11) if pairs[a][b] or (a == 10 and b == 10)]


def check_feelings(st, where, path, recs, tenant, team):
    """GET path (the feelings of team) as JSON and CSV against brute_feelings(recs)."""
    want = brute_feelings(recs)
    doc = get_json(st, path)
    g.check(sorted(doc) == ["feelings", "from", "team", "tenant", "to", "window"],
            "%s: the answer's keys are %s" % (where, sorted(doc)))
    g.check(doc["tenant"] == tenant and doc["team"] == team, "%s: tenant/team %s/%s" % (where, doc["tenant"], doc["team"]))
    rows = doc["feelings"]
    got = [(r["start"], r["end"], r["interactions"], r["share"]) for r in rows]
    g.check(len(got) == len(want), "%s: %d rows, expected %d:\n got %s\nwant %s" % (where, len(got), len(want), got, want))
    for gr, wr, raw in zip(got, want, rows):
        g.check(sorted(raw) == sorted(FEELINGS_HEADER), "%s: a row's columns are %s" % (where, sorted(raw)))
        g.check((raw["tenant"], raw["team"], raw["window"], raw["from"], raw["to"])
                == (tenant, team, doc["window"], doc["from"], doc["to"]), "%s: row meta %s" % (where, raw))
        g.check(gr[:3] == wr[:3], "%s: row %s, expected %s" % (where, gr, wr))
        if wr[3] is None:
            g.check(gr[3] is None, "%s: share of %s is %r, expected null" % (where, gr, gr[3]))
        else:
            g.check(gr[3] is not None and abs(gr[3] - wr[3]) <= 1e-9, "%s: share of %s, expected %r" % (where, gr, wr[3]))
    status, headers, body = get(st, path + "&format=csv")
    g.check(status == 200 and headers.get("Content-Type", "").startswith("text/csv"),
            "%s&format=csv answered %d %s" % (path, status, headers.get("Content-Type")))
    text = body.decode()
    g.check(text.startswith(",".join(FEELINGS_HEADER) + "\r\n"), "%s&format=csv: header %r" % (path, text[:100]))
    crows = list(csv.DictReader(io.StringIO(text)))
    cgot = [(r["start"], r["end"], int(r["interactions"]), float(r["share"]) if r["share"] else None) for r in crows]
    g.check(len(cgot) == len(want) and all(c[:3] == w[:3] and (c[3] is None) == (w[3] is None)
                                           and (w[3] is None or abs(c[3] - w[3]) <= 1e-9)
                                           for c, w in zip(cgot, want)),
            "%s&format=csv: rows %s, expected %s" % (path, cgot, want))
    g.check(all((r["tenant"], r["team"], r["from"], r["to"]) == (tenant, team, doc["from"], doc["to"]) for r in crows),
            "%s&format=csv: the rows' tenant, team, from, to differ from the JSON's" % path)
    return doc, want


def compare(where, got, want):
    for k, w in want.items():
        g.check(k in got, "%s: the row has no field %s" % (where, k))
        v = got[k]
        if w is None:
            g.check(v is None, "%s: %s is %r, expected null (zero denominator)" % (where, k, v))
        elif isinstance(w, int) and not isinstance(w, bool):
            g.check(v == w, "%s: %s is %r, expected %d" % (where, k, v, w))
        else:
            g.check(v is not None and abs(v - w) <= 1e-9, "%s: %s is %r, expected %.12g" % (where, k, v, w))


def csv_row(body):
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    g.check(len(rows) == 1, "CSV summary has %d rows" % len(rows))
    out = {}
    for k, v in rows[0].items():
        if v == "":
            out[k] = None
        else:
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def iso_s(text):
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())


def get(st, path):
    """GET, waiting out the tenant's read rate limit (429) rather than failing on it."""
    for _ in range(30):
        status, headers, body = g.http("GET", st.api + path)
        if status != 429:
            return status, headers, body
        time.sleep(float(headers.get("Retry-After", "1")))
    return status, headers, body


def get_json(st, path):
    status, _, body = get(st, path)
    doc = json.loads(body.decode()) if body else None
    g.check(status == 200, "GET %s answered %d: %s" % (path, status, doc))
    return doc


def main():
    from confluent_kafka import Producer

    rng = random.Random(20261208)
    now_s = int(time.time())
    recs = make_records(rng, now_s)
    with g.Stack() as st:
        p = Producer({"bootstrap.servers": st.kafka, "enable.idempotence": True})
        sent = 0
        for r in recs:
            value = interaction_pb(r) if r["kind"] == "interaction" else survey_pb(r)
            copies = 2 if rng.random() < 0.1 else 1  # a redelivery: counted once
            for _ in range(copies):
                p.produce(g.TOPIC_SCORED, key=("%s/%s" % (TENANT, r["team"])).encode(), value=value)
                sent += 1
        g.check(p.flush(30) == 0, "records still unacknowledged by Kafka after 30 s")
        del p  # before the stack goes down, so it does not log reconnects
        g.log("%d scored records written (%d deliveries)" % (len(recs), sent))

        want_n = {t: (sum(1 for r in recs if r["team"] == t and r["kind"] == "interaction"),
                      sum(1 for r in recs if r["team"] == t and r["kind"] == "survey")) for t in TEAMS}

        def probe():
            got = {}
            for t in TEAMS:
                status, doc = g.http_json("GET", st.api + "/v1/teams/%s/summary?tenant=%s&window=1d" % (t, TENANT))
                got[t] = (doc["interactions"], doc["surveys"]) if status == 200 else None
            return got == want_n, got
        g.wait_until(probe, 120, "the read API to count every record once (want %s)" % want_n)
        time.sleep(2)
        g.check(probe()[0], "counts changed after they were reached: a redelivery counted twice?")

        for t in TEAMS:
            mine = [r for r in recs if r["team"] == t]
            want = brute(mine)
            path = "/v1/teams/%s/summary?tenant=%s&window=1d" % (t, TENANT)
            row = get_json(st, path)
            compare(path, row, want)
            check_no_feeling_columns(path, row)
            g.check(row["change_balance"] == row["change_sum"], "%s: a summary's balance is its change sum" % path)
            status, _, body = get(st, path + "&format=csv")
            g.check(status == 200, "%s&format=csv answered %d" % (path, status))
            crow = csv_row(body)
            compare(path + "&format=csv", crow, want)
            check_no_feeling_columns(path + "&format=csv", crow)
            g.check(sorted(crow) == sorted(row), "%s: the CSV columns are not the JSON fields" % path)

            fpath = "/v1/teams/%s/feelings?tenant=%s&window=1d" % (t, TENANT)
            fdoc, fwant = check_feelings(st, fpath, fpath, mine, TENANT, t)
            g.check((fdoc["window"], fdoc["from"], fdoc["to"]) == (row["window"], row["from"], row["to"]),
                    "%s: range %s..%s, the summary's %s..%s" % (fpath, fdoc["from"], fdoc["to"], row["from"], row["to"]))
            g.check(fwant[-1][2] == row["with_feeling"], "%s: the total is not with_feeling" % fpath)

            spath = "/v1/teams/%s/series?tenant=%s&window=1d&step=1h" % (t, TENANT)
            doc = get_json(st, spath)
            balance = 0
            for pt in doc["points"]:
                lo, hi = iso_s(pt["from"]), iso_s(pt["to"])
                inside = [r for r in mine if lo <= r["t_ms"] // 1000 < hi]
                pw = brute(inside)
                balance += pw["change_sum"]
                pw["change_balance"] = balance
                compare("%s point %s" % (spath, pt["from"]), pt, pw)
                check_no_feeling_columns("%s point %s" % (spath, pt["from"]), pt)
            g.check(sum(1 for pt in doc["points"] if pt["interactions"]) >= 3, "%s: three hours should fill 3 points" % spath)
            g.check(abs(balance - want["change_sum"]) <= 1e-9, "%s: the last balance %r is not the day's change %r"
                    % (spath, balance, want["change_sum"]))
            # One elapsed hour of the series, as an explicit range: the feelings of its records
            # only (a range ending in the future would end now).
            pt = max((p for p in doc["points"] if iso_s(p["to"]) <= time.time()), key=lambda p: p["interactions"])
            lo, hi = iso_s(pt["from"]), iso_s(pt["to"])
            hpath = "/v1/teams/%s/feelings?tenant=%s&from=%s&to=%s" % (t, TENANT, pt["from"], pt["to"])
            hdoc, _ = check_feelings(st, hpath, hpath, [r for r in mine if lo <= r["t_ms"] // 1000 < hi], TENANT, t)
            g.check((hdoc["window"], hdoc["from"], hdoc["to"]) == ("custom", pt["from"], pt["to"]),
                    "%s: window %s %s..%s" % (hpath, hdoc["window"], hdoc["from"], hdoc["to"]))
            g.log("%s: summary (JSON, CSV), %d series points and the feelings (%d rows) agree with the records"
                  % (t, len(doc["points"]), len(fdoc["feelings"])))

        rows = get_json(st, "/v1/teams?tenant=%s&window=1d" % TENANT)["teams"]
        ranked = sorted(rows, key=lambda r: (-r["resolution_rate"], r["team"]))
        got = [r["team"] for r in get_json(st, "/v1/teams?tenant=%s&window=1d&sort=resolution_rate" % TENANT)["teams"]]
        g.check(got == [r["team"] for r in ranked], "sort=resolution_rate: %s, expected %s" % (got, [r["team"] for r in ranked]))
        for r in rows:
            check_no_feeling_columns("/v1/teams row of %s" % r["team"], r)
        status, _, body = get(st, "/v1/teams?tenant=%s&window=1d&format=csv" % TENANT)
        header = next(csv.reader(io.StringIO(body.decode())))
        check_no_feeling_columns("/v1/teams CSV header", header)
        g.log("leaderboard row: %d bytes of JSON, CSV line %d bytes" % (
            len(json.dumps(rows[0], separators=(",", ":"))), len(body.decode().split("\r\n")[1]) + 2))
        # The feelings take a summary's parameters only; unknown team routes are 404.
        for bad, code, text in (("/v1/teams/alpha/feelings?tenant=%s&window=1d&step=1h" % TENANT, 400, "step: only for"),
                                ("/v1/teams/alpha/feelings?tenant=%s&window=1d&sort=nps" % TENANT, 400, "sort: only for"),
                                ("/v1/teams/alpha/feelings?tenant=%s" % TENANT, 400, "window"),
                                ("/v1/teams/alpha/feeling?tenant=%s&window=1d" % TENANT, 404, "/v1/teams/{team}/feelings")):
            status, _, body = get(st, bad)
            g.check(status == code and text in body.decode(), "%s answered %d %s, expected %d %s" % (bad, status, body, code, text))
        # A team without records: only the total, 0 with a null share.
        status, _, body = get(st, "/v1/teams/nobody/feelings?tenant=%s&window=1d" % TENANT)
        nob = json.loads(body.decode())["feelings"]
        g.check(status == 200 and [(r["start"], r["end"], r["interactions"], r["share"]) for r in nob] == [("*", "*", 0, None)],
                "/v1/teams/nobody/feelings: %d %s" % (status, nob))
        check_upgrade(st, rng, now_s)
        g.log("every new field agrees with the brute force")


def check_upgrade(st, rng, now_s):
    import redis
    from confluent_kafka import Producer

    team, minute = "delta", (now_s - 1800) // 60 * 60
    old = {"n": 4, "felt": 3, "start_sum": -1500, "end_sum": 600, "change_sum": 2100, "start_neg": 3,
           "end_neu": 3, "t_nu": 3, "recovered": 3, "improved": 3, "empathy_sum": 2000, "resolved": 1,
           "resolved_known": 2, "transfers_sum": 4}
    r = redis.Redis.from_url(st.redis_url)
    for res, size in (("1m", 60), ("1h", 3600), ("1d", 86400)):
        r.hset("gw:{%s:%s}:b:%s:%d" % (TENANT, team, res, minute // size * size), mapping=old)
    r.sadd("gw:{%s}:teams" % TENANT, team)
    new = make_records(rng, now_s)[:40]
    p = Producer({"bootstrap.servers": st.kafka, "enable.idempotence": True})
    for rec in new:
        rec["team"], rec["t_ms"] = team, minute * 1000 + rng.randrange(60000)
        p.produce(g.TOPIC_SCORED, key=("%s/%s" % (TENANT, team)).encode(),
                  value=interaction_pb(rec) if rec["kind"] == "interaction" else survey_pb(rec))
    g.check(p.flush(30) == 0, "records still unacknowledged by Kafka after 30 s")
    del p
    n_new = sum(1 for rec in new if rec["kind"] == "interaction")
    path = "/v1/teams/%s/summary?tenant=%s&window=1d" % (team, TENANT)
    row = g.wait_until(lambda: (lambda d: (d["interactions"] == old["n"] + n_new, d))(get_json(st, path)), 60,
                       "the aggregator to apply the new records onto the old buckets")
    want = brute(new)
    felt_new = sum(1 for rec in new if rec["kind"] == "interaction" and rec["ps"] >= 0)
    fpath = "/v1/teams/%s/feelings?tenant=%s&window=1d" % (team, TENANT)
    _, fwant = check_feelings(st, fpath, fpath, new, TENANT, team)
    g.check(row["with_feeling"] == old["felt"] + felt_new and fwant[-1][2] == felt_new,
            "%s: with_feeling %d, feelings total %d; expected %d and %d (the old buckets' interactions have no "
            "dominant feelings)" % (path, row["with_feeling"], fwant[-1][2], old["felt"] + felt_new, felt_new))
    for pol in POL:
        g.check(row["change_mean_from_" + pol] is None,
                "%s: change_mean_from_%s is %r over a range with buckets from before the per-polarity sums"
                % (path, pol, row["change_mean_from_" + pol]))
    g.check(row["neg_to_neu"] == want["neg_to_neu"] + old["t_nu"], "%s: neg_to_neu" % path)
    g.check(abs(row["change_sum"] - (want["change_sum"] + old["change_sum"] / 1000)) <= 1e-9, "%s: change_sum" % path)
    g.log("%s: buckets of the previous format read on, their new counters at 0" % team)


if __name__ == "__main__":
    g.run(main)
