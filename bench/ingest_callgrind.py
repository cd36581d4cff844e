#!/usr/bin/python3
"""ingest_callgrind.py --build DIR [--build DIR ...] [--seconds 6] [--events-per-request 1]

Instructions goodwill-ingest executes per request, counted by callgrind (which counts
instructions, not time, so the figure does not move with the load of a shared machine): for
each build, goodwill-devkafka and goodwill-ingest (bearer token, the defaults otherwise) run on
loopback, ingest under `valgrind --tool=callgrind`; bench_ingest sends single events (or
batches) of `goodwill-gen --seed 4` on 16 keep-alive connections, 3 s of warm-up, then the
counters are zeroed (callgrind_control -z), `--seconds` are counted, and the dump's total Ir
(all threads) is divided by the 2xx answers of that period. Prints one line per build and
the ratio of each build to the first. Needs valgrind (Debian's package).
"""
import argparse
import hashlib
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    sys.exit("ingest_callgrind: timed out waiting for %s" % what)


def http_ok(url):
    import urllib.request
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except Exception:
        return False


def measure(build, seconds, per_request, tmp):
    events = os.path.join(tmp, "events.ndjson")
    if not os.path.exists(events):
        with open(events, "wb") as f:
            subprocess.run([os.path.join(build, "goodwill-gen"), "--seed", "4", "--interactions", "2000",
                            "--teams", "20", "--tenant", "bench"], stdout=f, check=True, timeout=60)
    token = "bench-" + secrets.token_hex(16)
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("%s\tbench\tcallgrind\n" % hashlib.sha256(token.encode()).hexdigest())
    procs = []
    try:
        bfile = os.path.join(tmp, "bootstrap")
        if os.path.exists(bfile):
            os.unlink(bfile)
        procs.append(subprocess.Popen([os.path.join(build, "goodwill-devkafka"), "--bootstrap-file", bfile],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: os.path.exists(bfile), 60, "devkafka")
        bootstrap = open(bfile).read().strip()
        port, admin = free_port(), free_port()
        out = os.path.join(tmp, "callgrind.out")
        for old in glob.glob(out + "*"):
            os.unlink(old)
        ingest = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                   os.path.join(build, "goodwill-ingest"), "--log-level", "warn",
                                   "--listen-host", "127.0.0.1", "--listen-port", str(port),
                                   "--admin-host", "127.0.0.1", "--admin-port", str(admin),
                                   "--kafka-bootstrap", bootstrap, "--tokens-file", tokens],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ingest)
        wait_for(lambda: http_ok("http://127.0.0.1:%d/readyz" % admin), 120, "goodwill-ingest under callgrind")
        load = [os.path.join(build, "bench_ingest"), "--port", str(port), "--events", events,
                "--events-per-request", str(per_request), "--connections", "16", "--warmup", "0",
                "--header", "Authorization: Bearer " + token]
        subprocess.run(load + ["--duration", "3"], stdout=subprocess.DEVNULL, check=True, timeout=120)
        subprocess.run(["callgrind_control", "-z", str(ingest.pid)], stdout=subprocess.DEVNULL, check=True)
        run = subprocess.run(load + ["--duration", str(seconds)], stdout=subprocess.PIPE, check=True, timeout=300)
        answers = json.loads(run.stdout.decode().strip().splitlines()[-1])["ok"]
        subprocess.run(["callgrind_control", "-d", str(ingest.pid)], stdout=subprocess.DEVNULL, check=True)
        ir = 0
        for path in glob.glob(out + "*"):
            with open(path) as f:
                for line in f:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        ir = max(ir, int(line.split()[1]))
                        break
            # The dump holds one file per thread when --separate-threads; without it, one.
        return ir, answers
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--events-per-request", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("ingest_callgrind: valgrind is not installed (apt-get install valgrind)")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for build in args.build:
            ir, answers = measure(os.path.abspath(build), args.seconds, args.events_per_request, tmp)
            per = ir / answers if answers else float("nan")
            first = per if first is None else first
            print("%s: %d instructions over %d answers: %.0f instructions per request (%.3f of the first)"
                  % (build, ir, answers, per, per / first), flush=True)


if __name__ == "__main__":
    main()
