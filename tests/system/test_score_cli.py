#!/usr/bin/python3
"""goodwill-score end to end: spawns the built binary and checks its JSON-lines contract.

One output line per input line, in order; input fields kept; scores added; unreadable lines
answered with {"line": N, "error": ...}; exit 0 whatever the lines hold; --lexicon,
--lexicon-overlay, --model-version and --help.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

BUILD = os.environ.get("GW_BUILD_DIR")
if not BUILD:
    sys.exit("GW_BUILD_DIR is not set (run through ctest)")
BIN = os.path.join(BUILD, "goodwill-score")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(stdin, *args, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    p = subprocess.run([BIN, *args], input=stdin.encode(), capture_output=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


lines = [
    json.dumps({"id": "a", "text": "This is the third time calling and it's STILL not working!!",
                "team": "t1"}),
    json.dumps({"id": "b", "text": "That fixed it, thank you so much :)"}),
    json.dumps({"id": "c", "turns": [
        {"speaker": "customer", "text": "I've been on hold for an hour, this is ridiculous"},
        {"speaker": "agent", "text": "I'm so sorry about that, let me fix it right now."},
        {"speaker": "customer", "text": "ok that worked, thanks a lot!"},
        {"speaker": "customer", "text": "bye"}]}),
    "this is not json",
    "[1, 2, 3]",
    "",
    json.dumps({"id": "d"}),
    json.dumps({"id": "e", "turns": [{"speaker": "robot", "text": "hi"}]}),
    json.dumps({"id": "f", "text": 42}),
    json.dumps({"id": "g", "text": "caf\u00e9 was great \U0001F44D"}, ensure_ascii=False),
]
rc, out, err = run("\n".join(lines) + "\n")
check(rc == 0, f"exit status 0 (got {rc}, stderr {err!r})")
outs = out.splitlines()
check(len(outs) == len(lines), f"one output line per input line ({len(outs)} != {len(lines)})")
rows = [json.loads(o) for o in outs]

a, b, c = rows[0], rows[1], rows[2]
check(a["id"] == "a" and a["team"] == "t1" and a["text"].startswith("This"),
      "input fields are kept")
check(a["valence"] < -0.5 and a["polarity"] == "negative", f"angry text is negative: {a}")
check(a["feelings"].get("frustration", 0) > 0.3, "frustration is reported")
check(all(v > 0 for v in a["feelings"].values()), "feelings lists only non-zero categories")
check(-1 <= a["valence"] <= 1 and -1 <= b["valence"] <= 1, "valence is within -1..1")
check(b["valence"] > 0.5 and b["polarity"] == "positive", f"thanks is positive: {b}")
check(b["feelings"].get("gratitude", 0) > 0.3, "gratitude is reported")
for k in ("start", "end", "change", "start_polarity", "end_polarity", "change_direction",
          "recovered", "soured", "empathy", "customer_turns", "agent_turns", "start_feelings",
          "end_feelings"):
    check(k in c, f"interaction output has {k}")
check(c["start_polarity"] == "negative" and c["end_polarity"] == "positive",
      f"the call recovered: {c}")
check(c["recovered"] is True and c["soured"] is False, "recovered flag")
check(c["change_direction"] == "improved", f"the call improved: {c}")
check(abs(c["change"] - (c["end"] - c["start"])) < 0.0015, "change = end - start")
check(c["customer_turns"] == 3 and c["agent_turns"] == 1, "turn counts")
check(c["empathy"] > 0.2, "the agent's apology and ownership count as empathy")
check(rows[3] == {"line": 4, "error": rows[3].get("error")} and "JSON" in rows[3]["error"],
      f"a non-JSON line gets line and error: {rows[3]}")
check(rows[4]["line"] == 5 and "object" in rows[4]["error"], "an array is not an object")
check(rows[5]["line"] == 6 and "error" in rows[5], "an empty line is answered")
check(rows[6]["id"] == "d" and "text" in rows[6]["error"], "no text or turns: error kept with id")
check(rows[7]["id"] == "e" and "turns[0].speaker" in rows[7]["error"], "bad speaker named")
check(rows[8]["id"] == "f" and "string" in rows[8]["error"], "non-string text")
check(rows[9]["valence"] > 0.3 and rows[9]["text"] == "caf\u00e9 was great \U0001F44D",
      "UTF-8 text kept and scored")

# Order and streaming: many lines, same answers as one by one.
many = [json.dumps({"id": i, "text": t}) for i, t in
        enumerate(["good", "bad", "not bad", "no problem", "meh"] * 200)]
rc, out, _ = run("\n".join(many))  # no trailing newline on the last line
outs = [json.loads(o) for o in out.splitlines()]
check(rc == 0 and len(outs) == 1000, "1000 lines in, 1000 out (last line without newline)")
check([o["id"] for o in outs] == list(range(1000)), "output keeps input order")
check(len({(o["text"], o["valence"]) for o in outs}) == 5, "same text, same score")

# Courtesy is no feeling: a polite customer who asks and thanks stays neutral, unchanged.
rc, out, _ = run(json.dumps({"id": "polite", "turns": [
    {"speaker": "customer", "text": "Hi, could you tell me when my contract ends please?"},
    {"speaker": "agent", "text": "It ends on 3 May."},
    {"speaker": "customer", "text": "ok great, thanks, have a nice day"}]}) + "\n")
p = json.loads(out)
check(rc == 0 and p["start_polarity"] == "neutral" and p["end_polarity"] == "neutral"
      and p["change_direction"] == "unchanged", f"politeness alone is neutral: {p}")

# Invalid UTF-8 is an error line, not a crash.
p = subprocess.run([BIN], input=b'{"id":1,"text":"\xff\xfe"}\n{"id":2,"text":"ok"}\n',
                   capture_output=True, timeout=20)
outs = p.stdout.decode().splitlines()
check(p.returncode == 0 and len(outs) == 2 and "error" in json.loads(outs[0]),
      f"invalid UTF-8 gives an error line: {outs}")

# --lexicon with an AFINN-style file, and a broken lexicon is a usage error with the line.
with tempfile.TemporaryDirectory() as d:
    lex = os.path.join(d, "afinn.txt")
    with open(lex, "w") as f:
        f.write("zorp\t5\nblarg\t-5\n")
    rc, out, err = run(json.dumps({"text": "zorp"}) + "\n" + json.dumps({"text": "good"}) + "\n",
                       "--lexicon", lex)
    rows = [json.loads(o) for o in out.splitlines()]
    check(rc == 0 and rows[0]["valence"] > 0.5 and rows[1]["valence"] == 0,
          f"--lexicon replaces the default lexicon: {rows} {err}")
    bad = os.path.join(d, "bad.tsv")
    with open(bad, "w") as f:
        f.write("# goodwill-lexicon 1\ngood\t1\nbad\tnope\n")
    rc, out, err = run("", f"--lexicon={bad}")
    check(rc == 2 and ":3:" in err, f"broken lexicon: exit 2 naming line 3 ({rc}, {err!r})")

# --lexicon-overlay (docs/FEELING_MODEL.md, "Customisation"): its entries are added to the
# lexicon or replace the lexicon's; valence 0 neutralises; the model version names the overlay
# by the SHA-256 of its bytes; a broken overlay is a usage error naming the file and line.
import hashlib
with tempfile.TemporaryDirectory() as d:
    overlay = os.path.join(d, "overlay.tsv")
    overlay_bytes = (b"# our products\nzorblax\t3\tdelight:1\nspeedy router 9\t-2.5\n"
                     b"refund\t0\nnightmare\t-1\tsadness:0.5\n")
    with open(overlay, "wb") as f:
        f.write(overlay_bytes)
    texts = ["zorblax", "my speedy router 9 again", "refund", "nightmare", "awful"]
    stdin = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    rc, out, err = run(stdin)
    base = [json.loads(o) for o in out.splitlines()]
    rc, out, err = run(stdin, "--lexicon-overlay", overlay)
    over = [json.loads(o) for o in out.splitlines()]
    check(rc == 0 and len(over) == len(texts), f"--lexicon-overlay scores ({rc}, {err!r})")
    if len(over) == len(texts) and len(base) == len(texts):
        check(base[0]["valence"] == 0 and over[0]["valence"] > 0.5
              and over[0]["feelings"].get("delight", 0) > 0.3,
              f"an overlay word is added: {base[0]} {over[0]}")
        check(base[1]["valence"] > 0 and over[1]["valence"] < -0.3,
              f"an overlay phrase is added and beats its words: {base[1]} {over[1]}")
        check(base[2]["valence"] > 0 and over[2]["valence"] == 0,
              f"valence 0 neutralises a base word: {base[2]} {over[2]}")
        check(over[3]["valence"] > base[3]["valence"] and "frustration" in base[3]["feelings"]
              and "frustration" not in over[3]["feelings"] and "sadness" in over[3]["feelings"],
              f"an overlay entry replaces the base's, categories too: {base[3]} {over[3]}")
        check(over[4] == base[4], f"other words score as before: {base[4]} {over[4]}")
    # The same through the environment, over --lexicon.
    lex = os.path.join(d, "base.tsv")
    with open(lex, "w") as f:
        f.write("# goodwill-lexicon 1\ngood\t2\nzorblax\t-3\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODWILL_")}
    env["GOODWILL_LEXICON_OVERLAY"] = overlay
    p = subprocess.run([BIN, "--lexicon", lex], input=b'{"text":"zorblax"}\n{"text":"good"}\n',
                       capture_output=True, timeout=20, env=env)
    rows = [json.loads(o) for o in p.stdout.decode().splitlines()]
    check(p.returncode == 0 and len(rows) == 2 and rows[0]["valence"] > 0.5
          and rows[1]["valence"] > 0.3,
          f"GOODWILL_LEXICON_OVERLAY over --lexicon replaces its entry: {rows} {p.stderr!r}")
    # The version: the base's, then +overlay. and 12 hex digits of the overlay's SHA-256.
    rc, plain_version, err = run("", "--model-version")
    rc2, version, err2 = run("", "--lexicon-overlay", overlay, "--model-version")
    want = plain_version.strip() + "+overlay." + hashlib.sha256(overlay_bytes).hexdigest()[:12]
    check(rc == 0 and rc2 == 0 and plain_version.startswith("gw-feeling-0.4+lex.")
          and version.strip() == want,
          f"--model-version names the overlay: {plain_version!r} {version!r} != {want!r}")
    with open(overlay, "ab") as f:
        f.write(b"zorblax2\t1\n")
    rc, version2, err = run("", "--lexicon-overlay", overlay, "--model-version")
    check(rc == 0 and version2.strip() != version.strip() and version2.startswith(plain_version.strip()),
          f"another overlay, another version: {version!r} {version2!r}")
    # Broken overlays: exit 2, the file, the line and why; nothing on stdout.
    for content, line, why in [
            (b"zorblax\t2\nwidget\tlots\n", 2, "valence must be a number"),
            (b"# c\nzorblax\t2\nZorblax\t1\n", 3, "duplicate entry"),
            (b"zorblax\t2\tfury:1\n", 1, "unknown category"),
            (b"zorblax\t1.5\t0.5\t[1, 2]\n", 1, "expected token<TAB>valence")]:
        with open(overlay, "wb") as f:
            f.write(content)
        rc, out, err = run(json.dumps({"text": "good"}) + "\n", "--lexicon-overlay", overlay)
        check(rc == 2 and f"{overlay}:{line}:" in err and why in err and out == "",
              f"broken overlay: exit 2 naming {overlay}:{line} and {why!r} ({rc}, {err!r})")
    rc, out, err = run("", "--lexicon-overlay", os.path.join(d, "missing.tsv"))
    check(rc == 2 and "missing.tsv" in err and "cannot open" in err,
          f"missing overlay: exit 2 naming it ({rc}, {err!r})")

# A line over 1 MiB is answered with its number and the reason; the next line is scored.
big = json.dumps({"id": "big", "text": "a" * (1024 * 1024 + 10)})
rc, out, _ = run(big + "\n" + json.dumps({"id": "after", "text": "great"}) + "\n")
rows = [json.loads(o) for o in out.splitlines()]
check(rc == 0 and len(rows) == 2 and rows[0].get("line") == 1 and "longer" in rows[0]["error"]
      and rows[1]["id"] == "after" and rows[1]["valence"] > 0,
      f"an over-long line is an error line and the next is scored: {[r.get('error') for r in rows]}")

# Talking through pipes line by line: each answer arrives before stdin is closed.
import select
p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
answers = []
for i, t in enumerate(["good", "awful"]):
    p.stdin.write((json.dumps({"id": i, "text": t}) + "\n").encode())
    p.stdin.flush()
    ready, _, _ = select.select([p.stdout], [], [], 10)
    answers.append(json.loads(p.stdout.readline()) if ready else None)
p.stdin.close()
p.wait(timeout=10)
check(answers[0] is not None and answers[0]["valence"] > 0 and answers[1] is not None
      and answers[1]["valence"] < 0, f"answers come line by line within 10 s: {answers}")

# --explain: every scored object gains "explain" (last), and nothing else changes; its numbers
# add up to the scores (docs/FEELING_MODEL.md, "Explanations"). --help lists it.
rc, out, err = run("", "--help")
check(rc == 0 and "--explain" in out, f"--help lists --explain ({rc}, {out!r})")
rc, plain_out, _ = run("\n".join(lines) + "\n")
rc2, out, err = run("\n".join(lines) + "\n", "--explain")
plain_rows = [json.loads(o) for o in plain_out.splitlines()]
rows = [json.loads(o) for o in out.splitlines()]
check(rc2 == 0 and len(rows) == len(lines), f"--explain: one line out per line in ({rc2}, {err!r})")
check(all("explain" not in r for r in plain_rows), "without --explain there is no \"explain\"")
for p_row, x_row in zip(plain_rows, rows):
    if "error" in p_row:
        check(x_row == p_row, f"--explain leaves error lines alone: {x_row}")
        continue
    check(list(x_row)[-1] == "explain" and list(x_row)[:-1] == list(p_row),
          f"--explain appends \"explain\" and keeps the members in order: {list(x_row)}")
    check({k: v for k, v in x_row.items() if k != "explain"} == p_row,
          f"--explain changes no score: {x_row}")


def check_adds_up(u, valence, what):
    """An utterance explanation: contributions + punctuation = sum; normalised = valence."""
    for h in u["hits"]:
        steps = sum(r["delta"] for r in h.get("rules", []))
        check(abs(h["valence"] + steps - h["contribution"]) < 1e-4,
              f"{what}: {h['text']!r}: valence + rule deltas = contribution: {h}")
    total = sum(h["contribution"] for h in u["hits"]) + sum(p["delta"] for p in u.get("punctuation", []))
    check(abs(total - u["sum"]) < 1e-4 * (1 + len(u["hits"])), f"{what}: contributions add up to sum: {u}")
    v = u["sum"] / (u["sum"] ** 2 + u["alpha"]) ** 0.5
    check(abs(v - u["valence"]) < 1e-5 and abs(round(u["valence"], 3) - valence) < 0.0015,
          f"{what}: the normalised sum is the valence {valence}: {u}")


a, b, c = rows[0], rows[1], rows[2]
check_adds_up(a["explain"], a["valence"], "line a")
check_adds_up(b["explain"], b["valence"], "line b")
check_adds_up(rows[9]["explain"], rows[9]["valence"], "line g")
hits = {h["text"]: h for h in a["explain"]["hits"]}
check("third time calling" in hits and "STILL not working" in hits,
      f"phrases are named as written: {list(hits)}")
check(hits["STILL not working"]["entry"] == "still not working"
      and [r["rule"] for r in hits["STILL not working"].get("rules", [])] == ["caps"],
      f"the entry it matched, and the caps rule: {hits.get('STILL not working')}")
check(a["explain"]["punctuation"] == [{"rule": "exclamation", "count": 2, "delta": -0.5}],
      f"two '!' add 0.5 toward the sign: {a['explain'].get('punctuation')}")
check(a["explain"]["feelings_raw"].get("frustration", 0) > 0, "frustration evidence is listed")
turns = c["explain"]["customer_turns"]
check([t["turn"] for t in turns] == [0, 2, 3] and turns[2]["bare"] is True,
      f"customer turns listed with the trailing \"bye\" bare: {turns}")
for key, score in (("start_weight", c["start"]), ("end_weight", c["end"])):
    w = sum(t.get(key, 0) for t in turns)
    mean = sum(t.get(key, 0) * t["felt"] for t in turns) / w
    check(abs(mean - score) < 0.0015, f"{key}s and the turns' felt valences give {score}: {turns}")


def check_felt_adds_up(u, felt, what):
    """A customer turn's felt valence: the hits' felt parts + felt rules = sum; normalised."""
    f = u["felt"]
    s = sum(h["felt"] for h in u["hits"]) + sum(r["delta"] for r in f.get("rules", []))
    check(abs(s - f["sum"]) < 1e-4, f"{what}: felt parts and rules give the felt sum: {u}")
    v = max(-1.0, min(1.0, f["sum"] / math.sqrt(f["sum"] ** 2 + u["alpha"])))
    check(abs(v - f["valence"]) < 1e-5 and abs(f["valence"] - felt) < 1e-5,
          f"{what}: the normalised felt sum is the turn's felt valence {felt}: {u}")


for t in turns:
    if t.get("start_weight") or t.get("end_weight"):
        check_adds_up(t["utterance"], t["valence"], f"line c turn {t['turn']}")
        check_felt_adds_up(t["utterance"], t["felt"], f"line c turn {t['turn']}")
    else:
        check("utterance" not in t, f"a turn without weight is not explained: {t}")
conv = c["explain"]["conversation"]
band = conv["band"]


def polarity(v):
    return "negative" if v <= -band else "positive" if v >= band else "neutral"


check(conv["start_polarity"] == c["start_polarity"] == polarity(conv["start"])
      and conv["end_polarity"] == c["end_polarity"] == polarity(conv["end"])
      and conv["change_direction"] == c["change_direction"]
      and conv["direction_by"] == ("polarity" if c["start_polarity"] != c["end_polarity"]
                                   else "change" if abs(conv["change"]) >= conv["change_min"]
                                   else "none"),
      f"the band gives the polarities and the direction: {conv} {c}")
agents = c["explain"]["agent_empathy"]
check(agents and all(p["turn"] == 1 for p in agents)
      and abs(sum(p["weight"] * p["strength"] for p in agents) - c["empathy"]) < 0.0015,
      f"the agent's phrases give the empathy {c['empathy']}: {agents}")
rc, out, _ = run(json.dumps({"text": "I'm so sorry, I understand"}) + "\n", "--explain")
e = json.loads(out)["explain"].get("empathy", [])
check([p["kind"] for p in e] == ["apology", "acknowledging"], f"empathy phrases are listed: {e}")

rc, out, err = run("", "--help")
check(rc == 0 and "--lexicon" in out and "--lexicon-overlay" in out
      and "GOODWILL_LEXICON_OVERLAY" in out, f"--help lists --lexicon and its overlay ({rc}, {out!r})")
rc, out, err = run("", "--no-such-flag")
check(rc == 2 and "no-such-flag" in err, f"unknown flag is a usage error ({rc}, {err!r})")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("goodwill-score: all checks passed")
