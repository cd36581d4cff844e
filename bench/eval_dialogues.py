#!/usr/bin/python3
"""Interaction feeling against people's labels: the contact-center development set.

    bench/eval_dialogues.py [--build DIR] [--dialogues JSONL] [--errors] [LABELS [LABELS2]]

Runs DIR/goodwill-score (default build/goodwill-score) on the dialogues (default
data/dev/dialogues.jsonl, goodwill-score's `turns` input with `industry` and `channel`) and
compares its reading of every dialogue with a labels file (default data/dev/labels-author.tsv:
id<TAB>start<TAB>end<TAB>change, start and end negative/neutral/positive, change
improved/unchanged/worsened). It prints the accuracy of the start polarity, the end polarity
and the change direction, their confusion matrices (rows: label, columns: model), and the
three accuracies per labelled trajectory (start -> end) and per channel.

With a second labels file it also compares the model with that file, and prints the agreement
between the two labellings over the ids they share: per field, the percent agreement and
Cohen's kappa, (p_o - p_e) / (1 - p_e), with p_e from each labelling's own marginals.

The change direction is the model's `change_direction` member. A model without one
(gw-feeling-0.3) is read by the sign of its `change` with the polarity band: improved at
>= +0.05, worsened at <= -0.05, else unchanged.

--errors lists the dialogues the model reads differently from the (first) labels. Python 3
standard library only; exit 1 when goodwill-score fails or ids do not match.
"""
import collections
import json
import os
import subprocess
import sys

POLARITIES = ("negative", "neutral", "positive")
DIRECTIONS = ("improved", "unchanged", "worsened")
FIELDS = (("start", POLARITIES), ("end", POLARITIES), ("change", DIRECTIONS))


def usage(msg):
    sys.exit(f"eval_dialogues: {msg}\n\n{__doc__}")


def read_labels(path):
    labels = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 4 or cols[1] not in POLARITIES or cols[2] not in POLARITIES \
                    or cols[3] not in DIRECTIONS:
                sys.exit(f"{path}:{n}: want id<TAB>start<TAB>end<TAB>change, got {line!r}")
            if cols[0] in labels:
                sys.exit(f"{path}:{n}: id {cols[0]} labelled twice")
            labels[cols[0]] = {"start": cols[1], "end": cols[2], "change": cols[3]}
    return labels


def direction_of(row):
    if "change_direction" in row:
        return row["change_direction"]
    c = row["change"]
    return "improved" if c >= 0.05 else "worsened" if c <= -0.05 else "unchanged"


def score(build, dialogues_path):
    binary = os.path.join(build, "goodwill-score")
    with open(dialogues_path, "rb") as f:
        data = f.read()
    p = subprocess.run([binary], input=data, capture_output=True, check=False)
    if p.returncode != 0:
        sys.exit(f"{binary} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    inputs = [json.loads(l) for l in data.decode("utf-8").splitlines() if l.strip()]
    outputs = [json.loads(l) for l in p.stdout.decode("utf-8").splitlines()]
    if len(inputs) != len(outputs):
        sys.exit(f"{binary}: {len(outputs)} lines out for {len(inputs)} in")
    model = {}
    for i, o in zip(inputs, outputs):
        if "error" in o:
            sys.exit(f"{binary}: {i.get('id')}: {o['error']}")
        model[i["id"]] = {
            "start": o["start_polarity"], "end": o["end_polarity"], "change": direction_of(o),
            "channel": i.get("channel", "?"), "industry": i.get("industry", "?"),
            "values": (o["start"], o["end"], o["change"]),
            "version": o.get("model"),
        }
    return model


def accuracy(pairs):
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")


def kappa(pairs, classes):
    n = len(pairs)
    if n == 0:
        return float("nan")
    po = sum(a == b for a, b in pairs) / n
    ca = collections.Counter(a for a, _ in pairs)
    cb = collections.Counter(b for _, b in pairs)
    pe = sum(ca[c] * cb[c] for c in classes) / (n * n)
    return (po - pe) / (1 - pe) if pe < 1 else 1.0


def confusion(pairs, classes, title, left="label", top="model"):
    counts = collections.Counter(pairs)
    w = max(len(c) for c in classes) + 2
    print(f"\n{title} (rows: {left}, columns: {top})")
    print(" " * w + "".join(f"{c:>{w}}" for c in classes) + f"{'total':>{w}}")
    for a in classes:
        row = [counts[(a, b)] for b in classes]
        print(f"{a:<{w}}" + "".join(f"{x:>{w}}" for x in row) + f"{sum(row):>{w}}")


def report(model, labels, name):
    ids = sorted(labels)
    missing = [i for i in ids if i not in model]
    if missing:
        sys.exit(f"{name}: {len(missing)} labelled ids have no dialogue, e.g. {missing[:3]}")
    print(f"== model against {name} ({len(ids)} dialogues)")
    for field, _ in FIELDS:
        acc = accuracy([(labels[i][field], model[i][field]) for i in ids])
        print(f"{field + ' accuracy':<20} {acc:.3f}")
    for field, classes in FIELDS:
        confusion([(labels[i][field], model[i][field]) for i in ids], classes, field)

    def table(key_of, title):
        groups = collections.defaultdict(list)
        for i in ids:
            groups[key_of(i)].append(i)
        print(f"\n{title:<28}{'n':>5}{'start':>8}{'end':>8}{'change':>8}")
        for g in sorted(groups):
            members = groups[g]
            accs = [accuracy([(labels[i][f], model[i][f]) for i in members]) for f, _ in FIELDS]
            print(f"{g:<28}{len(members):>5}" + "".join(f"{a:>8.3f}" for a in accs))

    table(lambda i: f"{labels[i]['start']} -> {labels[i]['end']}", "trajectory (label)")
    table(lambda i: model[i]["channel"], "channel")
    table(lambda i: model[i]["industry"], "industry")


def agreement(a, b, name_a, name_b):
    ids = sorted(set(a) & set(b))
    print(f"\n== agreement of {name_a} and {name_b} ({len(ids)} dialogues in both; "
          f"{len(set(a) - set(b))} only in the first, {len(set(b) - set(a))} only in the second)")
    print(f"{'field':<10}{'agreement':>11}{'kappa':>8}")
    for field, classes in FIELDS:
        pairs = [(a[i][field], b[i][field]) for i in ids]
        print(f"{field:<10}{accuracy(pairs):>11.3f}{kappa(pairs, classes):>8.3f}")
    for field, classes in FIELDS:
        confusion([(a[i][field], b[i][field]) for i in ids], classes, field, name_a, name_b)


def errors(model, labels):
    print("\n== dialogues read differently from the labels (label / model)")
    for i in sorted(labels):
        m, l = model[i], labels[i]
        wrong = [f for f, _ in FIELDS if m[f] != l[f]]
        if wrong:
            s, e, c = m["values"]
            print(f"{i} {m['channel']:<9} " + " ".join(f"{f}={l[f]}/{m[f]}" for f in wrong) +
                  f"  (start {s:+.3f} end {e:+.3f} change {c:+.3f})")


def main():
    argv = sys.argv[1:]
    build, dialogues, show_errors, files = "build", "data/dev/dialogues.jsonl", False, []
    while argv:
        a = argv.pop(0)
        if a == "--build" and argv:
            build = argv.pop(0)
        elif a == "--dialogues" and argv:
            dialogues = argv.pop(0)
        elif a == "--errors":
            show_errors = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return
        elif a.startswith("-"):
            usage(f"unknown option {a}")
        else:
            files.append(a)
    if len(files) > 2:
        usage("at most two labels files")
    if not files:
        files = ["data/dev/labels-author.tsv"]
    labelled = [read_labels(f) for f in files]
    model = score(build, dialogues)
    version = subprocess.run([os.path.join(build, "goodwill-score"), "--version"],
                             capture_output=True, text=True, check=False).stdout.strip()
    print(f"{version}: {len(model)} dialogues from {dialogues}")
    for f, labels in zip(files, labelled):
        report(model, labels, f)
    if len(files) == 2:
        agreement(labelled[0], labelled[1], files[0], files[1])
    if show_errors:
        errors(model, labelled[0])


if __name__ == "__main__":
    main()
