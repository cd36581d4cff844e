"""Leaderboards and time series of the read API, against the real stack.

Posts six hours of generated interactions and surveys of 8 teams through ingest, waits until
the read API counts them all, then checks with plain HTTP what a BI tool would rely on:

- GET /v1/teams?sort=nps&limit=3 returns the 3 teams of highest NPS, in that order (teams
  without surveys last), the same rows as the unsorted list ranked by the client; order=asc
  reverses the ranking; CSV keeps the order; bad sort/order/limit values get a 400 naming
  the parameter.
- GET /v1/teams/{team}/series?window=1d&step=1h returns consecutive one-hour points whose
  interactions and surveys add up to the team's totals over the same day; step=1m works over a
  day, is refused over two days (too many points), and an unknown step is a 400.
"""

import csv
import io
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "views"


def get_json(st, path, want=200):
    status, doc = g.http_json("GET", st.api + path)
    g.check(status == want, "GET %s answered %d (expected %d): %s" % (path, status, want, doc))
    return doc


def ranked(rows, field, descending):
    """The client's own ranking: defined values by field, then undefined ones; ties by team."""
    defined = [r for r in rows if r[field] is not None]
    undefined = [r for r in rows if r[field] is None]
    defined.sort(key=lambda r: r["team"])
    defined.sort(key=lambda r: r[field], reverse=descending)
    undefined.sort(key=lambda r: r["team"])
    return defined + undefined


def check_leaderboards(st):
    rows = get_json(st, "/v1/teams?tenant=%s&window=1d" % TENANT)["teams"]
    g.check(len(rows) == 8, "expected 8 teams, the list has %d" % len(rows))
    for field, order in (("nps", "desc"), ("nps", "asc"), ("interactions", "desc"), ("change_mean", "asc")):
        path = "/v1/teams?tenant=%s&window=1d&sort=%s&order=%s&limit=3" % (TENANT, field, order)
        got = [r["team"] for r in get_json(st, path)["teams"]]
        want = [r["team"] for r in ranked(rows, field, order == "desc")[:3]]
        g.check(got == want, "%s: teams %s, expected %s (ranked from the unsorted list)" % (path, got, want))
    # The default order is descending.
    got = [r["team"] for r in get_json(st, "/v1/teams?tenant=%s&window=1d&sort=nps" % TENANT)["teams"]]
    g.check(got == [r["team"] for r in ranked(rows, "nps", True)], "sort=nps without order is not descending: %s" % got)
    # CSV keeps the ranking.
    status, _, body = g.http("GET", st.api + "/v1/teams?tenant=%s&window=1d&sort=nps&limit=3&format=csv" % TENANT)
    g.check(status == 200, "CSV leaderboard answered %d" % status)
    csv_teams = [r["team"] for r in csv.DictReader(io.StringIO(body.decode()))]
    g.check(csv_teams == [r["team"] for r in ranked(rows, "nps", True)[:3]], "CSV leaderboard order: %s" % csv_teams)
    for query, message in (("sort=team", "sort: must be a numeric row field"),
                           ("sort=nps&order=up", "order: must be asc or desc"),
                           ("order=asc", "order: needs sort"),
                           ("sort=nps&limit=0", "limit: must be an integer from 1 to 10000"),
                           ("sort=nps&limit=x", "limit: must be an integer from 1 to 10000")):
        doc = get_json(st, "/v1/teams?tenant=%s&window=1d&%s" % (TENANT, query), want=400)
        g.check(message in doc.get("error", ""), "%s: error %r does not say %r" % (query, doc, message))
    return rows


def check_series(st, rows):
    team = rows[0]
    path = "/v1/teams/%s/series?tenant=%s&window=1d&step=1h" % (team["team"], TENANT)
    doc = get_json(st, path)
    points = doc["points"]
    g.check(doc["step"] == "1h" and doc["team"] == team["team"], "%s: header %s" % (path, {k: doc[k] for k in ("team", "step")}))
    g.check(24 <= len(points) <= 25, "%s: %d points, expected 24 or 25 hours" % (path, len(points)))
    g.check(points[0]["from"] == doc["from"] and points[-1]["to"] == doc["to"], "%s: points do not span from..to" % path)
    for a, b in zip(points, points[1:]):
        g.check(a["to"] == b["from"], "%s: points not consecutive: %s then %s" % (path, a["to"], b["from"]))
    for key in ("interactions", "surveys"):
        total = sum(p[key] for p in points)
        g.check(total == team[key], "%s: %s over the points add up to %d, the day's total is %d"
                % (path, key, total, team[key]))
    g.check(sum(1 for p in points if p["interactions"] > 0) >= 3,
            "%s: six hours of traffic should fill several hourly points" % path)
    doc = get_json(st, "/v1/teams/%s/series?tenant=%s&window=1d&step=1m" % (team["team"], TENANT))
    g.check(sum(p["interactions"] for p in doc["points"]) == team["interactions"],
            "step=1m over a day does not add up to the day's interactions")
    for query, message in (("window=2d&step=1m", "step: 1m over this range gives"),
                           ("window=1d&step=2h", "step: \"2h\" is not one of 1m, 1h, 1d"),
                           ("window=1d&sort=nps", "sort: only for GET /v1/teams")):
        doc = get_json(st, "/v1/teams/%s/series?tenant=%s&%s" % (team["team"], TENANT, query), want=400)
        g.check(message in doc.get("error", ""), "%s: error %r does not say %r" % (query, doc, message))
    doc = get_json(st, "/v1/teams/%s/summary?tenant=%s&window=1d&step=1h" % (team["team"], TENANT), want=400)
    g.check("step: only for GET /v1/teams/{team}/series" in doc.get("error", ""), "summary with step: %r" % doc)


def main():
    lines = g.generate(seed=11, interactions=400, teams=8, tenant=TENANT, span="6h")
    expected, _ = g.expected_counts(lines)
    with g.Stack() as st:
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 202, "posting the events: ingest answered %d: %s" % (status, doc))
        got = g.wait_for_counts(st.api, TENANT, expected, 120)
        g.compare_counts("the read API", got, expected)
        rows = check_leaderboards(st)
        check_series(st, rows)
        g.log("leaderboards and series agree with the plain rows")


if __name__ == "__main__":
    g.run(main)
