"""goodwill-gen's truth file and non-response model, as a user of the estimates relies on them.

- --truth-file writes one line per interaction with the customer's answer, surveyed or not;
  every survey in the events carries exactly the answer the truth file gives its interaction,
  and the surveyed flags match the surveys sent;
- with --response-bias none the events are the same bytes with and without --truth-file (the
  answers of customers not surveyed come from a stream of their own);
- with --response-bias extremes the delighted (9-10) and the angry (0-4) answer more often
  than the passives (7-8): their response rates differ by the model's weights (1.4 and 1.6
  against 0.5), far beyond chance at 20,000 interactions;
- a bad --response-bias or an unwritable truth file is refused with exit status 2 and a
  message naming the flag.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

END = "1790000000000"  # a fixed end: the same bytes on every run


def gen(*args):
    proc = subprocess.run([g.binary("gen"), "--end", END] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def read_truth(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def main():
    tmp = tempfile.mkdtemp(prefix="gw-gen-truth-")
    try:
        truth_path = os.path.join(tmp, "truth.ndjson")
        rc, plain, err = gen("--seed", "31", "--interactions", "3000")
        g.check(rc == 0, "goodwill-gen failed: %s" % err)
        rc, with_truth, err = gen("--seed", "31", "--interactions", "3000", "--truth-file", truth_path)
        g.check(rc == 0, "goodwill-gen --truth-file failed: %s" % err)
        g.check(plain == with_truth, "--truth-file changed the events (--response-bias none)")
        truth = read_truth(truth_path)
        g.check(len(truth) == 3000, "the truth file has %d lines for 3000 interactions" % len(truth))
        by_id = {t["interaction_id"]: t for t in truth}
        g.check(len(by_id) == 3000, "interaction ids repeat in the truth file")
        surveys = [json.loads(l) for l in plain.decode().splitlines() if '"survey"' in l]
        for s in surveys:
            t = by_id.get(s["interaction_id"])
            g.check(t is not None and t["surveyed"] and t["team_id"] == s["team_id"] and
                    t["likelihood_to_recommend"] == s["survey"]["likelihood_to_recommend"],
                    "survey %s does not match its truth line %s" % (s, t))
        g.check(sum(t["surveyed"] for t in truth) == len(surveys),
                "%d truth lines are surveyed, %d surveys were written"
                % (sum(t["surveyed"] for t in truth), len(surveys)))
        g.log("bias none: %d interactions, %d surveyed, each survey's answer is its truth line's" %
              (len(truth), len(surveys)))

        rc, _, err = gen("--seed", "32", "--interactions", "20000", "--survey-rate", "0.2", "--response-bias",
                         "extremes", "--truth-file", truth_path)
        g.check(rc == 0, "goodwill-gen --response-bias extremes failed: %s" % err)
        truth = read_truth(truth_path)
        asked = collections.Counter()
        answered = collections.Counter()
        for t in truth:
            x = t["likelihood_to_recommend"]
            group = "angry" if x <= 4 else "unhappy" if x <= 6 else "passive" if x <= 8 else "delighted"
            asked[group] += 1
            answered[group] += t["surveyed"]
        rate = {k: answered[k] / asked[k] for k in asked if asked[k]}
        g.log("bias extremes: response rates by answer %s (of %s)" % ({k: round(v, 3) for k, v in rate.items()},
                                                                     dict(asked)))
        for k, want in (("angry", 0.2 * 1.6), ("unhappy", 0.2 * 0.8), ("passive", 0.2 * 0.5), ("delighted", 0.2 * 1.4)):
            g.check(asked[k] >= 500, "too few %s customers (%d) to judge" % (k, asked[k]))
            g.check(abs(rate[k] - want) < 0.05, "%s customers answered at %.3f, the model says %.3f"
                    % (k, rate[k], want))

        rc, _, err = gen("--response-bias", "sometimes")
        g.check(rc == 2 and "--response-bias" in err, "a bad --response-bias: exit %d, %r" % (rc, err))
        rc, _, err = gen("--truth-file", os.path.join(tmp, "no", "such", "dir", "t"))
        g.check(rc == 2 and "--truth-file" in err, "an unwritable truth file: exit %d, %r" % (rc, err))
        g.log("bad flags refused with exit 2, naming the flag")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    g.run(main)
