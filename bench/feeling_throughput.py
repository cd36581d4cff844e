#!/usr/bin/python3
"""Throughput of the feeling model, library and goodwill-score, as medians of repeated runs,
next to same-run baselines over the same input (docs/BENCHMARKS.md, "Feeling model").

    bench/feeling_throughput.py BUILD_DIR [TWEETS_TSV] [--runs N]

- library: BUILD_DIR/bench_feeling over the tweets' texts (utterances per CPU-second).
- goodwill-score: the tweets as JSON lines {"id","text"}, repeated 10 times (42,000 lines),
  through BUILD_DIR/goodwill-score; lines per CPU-second (user + system of the child).
- baselines, the same file through `cat`, `wc -l` and, when installed, `jq -c .` (a JSON
  parser that also reads and writes every line): their lines per CPU-second and the ratio.

CPU time, not wall time: the machine is shared, and a run's CPU seconds are what it cost.
"""
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile


def child_cpu(cmd, stdin_path):
    """Runs cmd with stdin from stdin_path and stdout to /dev/null; returns its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdin_path, "rb") as fin, open(os.devnull, "wb") as fout:
        subprocess.run(cmd, stdin=fin, stdout=fout, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 5
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    if not args:
        sys.exit(__doc__)
    build = args[0]
    tweets = args[1] if len(args) > 1 else "/work/shared/eval/vader/tweets_GroundTruth.tsv"

    lib = []
    for _ in range(runs):
        out = subprocess.run([os.path.join(build, "bench_feeling"), tweets], check=True,
                             capture_output=True, text=True).stdout
        lib.append(float(re.search(r"utterances/CPU-s\s+(\S+)", out).group(1)))
        memory = re.search(r"lexicon memory\s+(.*)", out).group(1)
        model = re.search(r"model\s+(\S+)", out).group(1)
    print(f"model                      {model}")
    print(f"lexicon memory             {memory}")
    print(f"library utterances/CPU-s   median {statistics.median(lib):,.0f} of {runs} "
          f"(runs: {', '.join(f'{x:,.0f}' for x in lib)})")

    with open(tweets, encoding="utf-8") as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for line in f]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for _ in range(10):
            for r in rows:
                f.write(json.dumps({"id": r[0], "text": r[-1]}) + "\n")
        path = f.name
    nlines = 10 * len(rows)
    try:
        tools = [("goodwill-score", [os.path.join(build, "goodwill-score")]),
                 ("cat", ["cat"]), ("wc -l", ["wc", "-l"])]
        if subprocess.run(["sh", "-c", "command -v jq"], capture_output=True).returncode == 0:
            tools.append(("jq -c .", ["jq", "-c", "."]))
        medians = {}
        for name, cmd in tools:
            rates = []
            for _ in range(runs):
                cpu = child_cpu(cmd, path)
                rates.append(nlines / cpu if cpu > 0 else float("inf"))
            medians[name] = statistics.median(rates)
            print(f"{name:<26} median {medians[name]:,.0f} lines/CPU-s of {runs} "
                  f"({nlines} lines, {os.path.getsize(path)} bytes)")
        score = medians["goodwill-score"]
        for name in medians:
            if name != "goodwill-score":
                print(f"goodwill-score / {name:<9} {score / medians[name]:.3f}")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
