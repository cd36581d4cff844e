#!/usr/bin/python3
"""goodwill-score end to end: spawns the built binary and checks its JSON-lines contract.

One output line per input line, in order; input fields kept; scores added; unreadable lines
answered with {"line": N, "error": ...}; exit 0 whatever the lines hold; --lexicon,
--lexicon-overlay, --model-version and --help.
"""
import json
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

rc, out, err = run("", "--help")
check(rc == 0 and "--lexicon" in out and "--lexicon-overlay" in out
      and "GOODWILL_LEXICON_OVERLAY" in out, f"--help lists --lexicon and its overlay ({rc}, {out!r})")
rc, out, err = run("", "--no-such-flag")
check(rc == 2 and "no-such-flag" in err, f"unknown flag is a usage error ({rc}, {err!r})")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("goodwill-score: all checks passed")
