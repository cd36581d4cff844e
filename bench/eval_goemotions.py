#!/usr/bin/python3
"""How goodwill's nine feeling categories agree with the GoEmotions labels (Demszky et al.,
ACL 2020): per-category precision, recall, F1 and support, and the macro-F1 over the nine.

    bench/eval_goemotions.py SPLIT_TSV [--score PATH] [--lexicon FILE] [--labels FILE]
                             [--errors CATEGORY [N]]

SPLIT_TSV is a GoEmotions split as published (train.tsv, dev.tsv under
/work/shared/eval/goemotions): `text <TAB> comma-separated emotion ids <TAB> comment id`,
no header; ids index labels.txt, read from the split's directory unless --labels names it.
Every text goes through goodwill-score (default build/goodwill-score, else `--score`) as
{"id", "text"}; a category is predicted when goodwill-score lists it in "feelings", that is
when the model gives it an intensity above zero. What counts as enough evidence is the
model's decision, not this program's: it applies no threshold of its own.

GoEmotions labels map onto goodwill's categories as /work/shared/eval/README.md suggests:
anger -> anger; annoyance -> frustration; confusion -> confusion; nervousness, fear ->
anxiety; sadness, grief, disappointment -> sadness; gratitude -> gratitude; relief -> relief;
approval, admiration -> satisfaction; joy, excitement, amusement, love -> delight. The other
labels (and neutral) map to no category. An item may carry several categories; each category
is scored as its own binary decision over all items, and macro-F1 is the unweighted mean of
the nine F1s.

--errors CATEGORY [N] also prints N (default 20) false positives and N false negatives of one
category, to see what the rules miss or over-read: use it on the train split only, to find
mechanisms, not to fit lexicon entries to items.
"""
import json
import os
import subprocess
import sys

CATEGORIES = ["anger", "frustration", "anxiety", "confusion", "sadness", "gratitude", "relief",
              "satisfaction", "delight"]

MAPPING = {
    "anger": "anger",
    "annoyance": "frustration",
    "confusion": "confusion",
    "nervousness": "anxiety",
    "fear": "anxiety",
    "sadness": "sadness",
    "grief": "sadness",
    "disappointment": "sadness",
    "gratitude": "gratitude",
    "relief": "relief",
    "approval": "satisfaction",
    "admiration": "satisfaction",
    "joy": "delight",
    "excitement": "delight",
    "amusement": "delight",
    "love": "delight",
}


def usage():
    sys.exit(__doc__)


def parse_args(argv):
    opts = {"split": None, "score": None, "lexicon": None, "labels": None, "errors": None,
            "nerrors": 20}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--score", "--lexicon", "--labels") and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 2
        elif a == "--errors" and i + 1 < len(argv):
            opts["errors"] = argv[i + 1]
            i += 2
            if i < len(argv) and argv[i].isdigit():
                opts["nerrors"] = int(argv[i])
                i += 1
        elif a.startswith("-"):
            usage()
        elif opts["split"] is None:
            opts["split"] = a
            i += 1
        else:
            usage()
    if opts["split"] is None:
        usage()
    if opts["errors"] is not None and opts["errors"] not in CATEGORIES:
        sys.exit(f"--errors: unknown category {opts['errors']!r}")
    return opts


def find_score(opt):
    if opt:
        return opt
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "build", "goodwill-score")
    if not os.access(path, os.X_OK):
        sys.exit("goodwill-score not found: build first, or pass --score PATH")
    return path


def read_split(path, labels):
    """[(text, set of goodwill categories)] of a split file."""
    items = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                sys.exit(f"{path}:{n}: expected text<TAB>ids<TAB>id")
            gold = set()
            for x in fields[1].split(","):
                name = labels[int(x)]
                if name in MAPPING:
                    gold.add(MAPPING[name])
            items.append((fields[0], gold))
    return items


def score(score_path, lexicon, texts):
    """The categories goodwill-score lists for each text, with their intensities."""
    cmd = [score_path]
    if lexicon:
        cmd += ["--lexicon", lexicon]
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    out = subprocess.run(cmd, input=data.encode("utf-8"), capture_output=True, check=True)
    preds = []
    for line in out.stdout.decode("utf-8").splitlines():
        rec = json.loads(line)
        if "error" in rec:
            sys.exit(f"goodwill-score: {rec['error']}")
        preds.append({c: v for c, v in rec["feelings"].items() if v > 0})
    if len(preds) != len(texts):
        sys.exit(f"goodwill-score answered {len(preds)} lines for {len(texts)}")
    return preds


def main():
    opts = parse_args(sys.argv[1:])
    labels_path = opts["labels"] or os.path.join(os.path.dirname(os.path.abspath(opts["split"])),
                                                 "labels.txt")
    with open(labels_path, encoding="utf-8") as f:
        labels = [line.strip() for line in f if line.strip()]
    items = read_split(opts["split"], labels)
    preds = score(find_score(opts["score"]), opts["lexicon"], [t for t, _ in items])

    print(f"split {opts['split']}: {len(items)} items")
    print(f"{'category':<13} {'P':>6} {'R':>6} {'F1':>6} {'support':>8} {'predicted':>10}")
    f1s = []
    for c in CATEGORIES:
        tp = sum(1 for (_, g), p in zip(items, preds) if c in g and c in p)
        support = sum(1 for _, g in items if c in g)
        predicted = sum(1 for p in preds if c in p)
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        print(f"{c:<13} {prec:6.3f} {rec:6.3f} {f1:6.3f} {support:8d} {predicted:10d}")
    print(f"macro-F1 {sum(f1s) / len(f1s):.3f}")

    # Whether intensity means something: among the predictions, the share the raters also
    # labelled, by band of intensity (all categories pooled).
    print("\nprecision by intensity (all categories)")
    bands = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01)]
    for lo, hi in bands:
        hits = [c in g for (_, g), p in zip(items, preds) for c, v in p.items() if lo <= v < hi]
        share = f"{sum(hits) / len(hits):6.3f}" if hits else "     -"
        print(f"  {lo:.2f}..{min(hi, 1.0):.2f} {share} of {len(hits):6d}")

    c = opts["errors"]
    if c:
        n = opts["nerrors"]
        fp = [t for (t, g), p in zip(items, preds) if c in p and c not in g]
        fn = [t for (t, g), p in zip(items, preds) if c in g and c not in p]
        print(f"\nfalse positives of {c} ({len(fp)}), first {min(n, len(fp))}:")
        for t in fp[:n]:
            print("  " + t)
        print(f"\nfalse negatives of {c} ({len(fn)}), first {min(n, len(fn))}:")
        for t in fn[:n]:
            print("  " + t)


if __name__ == "__main__":
    main()
