"""Fault matrix, row "hostile HTTP clients" (2b): clients that pipeline requests and never
read the answers, many at once against ingest's API, the aggregator's read API and the
scorer's admin port, for ATTACK_S seconds.

Per server: ingest 200 clients pipelining GET /v1/health, the read API 200 pipelining GET
/readyz, the admin port 40 pipelining GET /metrics; each sends without end (4 KiB receive
buffer, 64 KiB send buffer) and reads nothing; a client cut off is replaced at once. The
server must stop reading such a client once 1 MiB of its answers waits, and cut it off after
a request timeout in which it read nothing: every client must be closed by the server within
3 request timeouts (ingest 5 s, read API 30 s, admin 10 s) + 15 s of the moment its socket
last took bytes (the server stopped reading; measured: 1.2 to 2.6 request timeouts). Throughout, the health probes must answer 200
within 1 s and each daemon's RSS stay within its idle RSS + 1.25 MiB per pipelining client of
its attacked server (the per-connection bound goodwill/http.h states) + 64 MiB (judged in
release builds; an ASan build reports it); afterwards a normal POST is accepted and counted.
See hostile.py. GW_HOSTILE_ATTACK_S overrides ATTACK_S (110 s: the read API's clients can need
up to three of its 30 s request timeouts to be cut off).
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402
import hostile  # noqa: E402

ATTACK_S = float(os.environ.get("GW_HOSTILE_ATTACK_S", "110"))
PLAN = {
    "ingest": {"pipeline": 200},
    "api": {"pipeline": 200},
    "admin": {"pipeline": 40},
}


def main():
    hostile.run("pipelining", PLAN, ATTACK_S)


if __name__ == "__main__":
    g.run(main)
