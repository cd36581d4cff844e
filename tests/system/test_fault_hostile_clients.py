"""Fault matrix, row "hostile HTTP clients" (2a): stalled bodies, bodies cut off, broken and
oversized heads, and requests refused on their head, many at once against ingest's API, the
aggregator's read API and the scorer's admin port, for ATTACK_S seconds.

Per server: ingest 200 of each kind (stall, disconnect, badhead) plus 20 wrong-token and 20
rate-limited heads (early401, early429); the read API 150 of each; the admin port 15 of each.
That stays within the connection limits (ingest --max-connections 1024, the read API 512, an
admin port 64) with room for the probes. Throughout, the health probes must answer 200 within
1 s, each daemon's RSS stay within its idle RSS + 64 MiB (judged in release builds), every
stalled request get 408 within its server's request timeout (ingest 5 s, read API 30 s, admin
10 s) + 3 s, every bad head its exact 4xx, every refused head its 401 or 429 within 1 s
without a body byte sent; afterwards a normal POST is accepted and counted. The pipelining
clients are test_fault_pipelining.py. See hostile.py for the attack and the checks.
GW_HOSTILE_ATTACK_S overrides ATTACK_S (45 s: the read API's stalls need its 30 s request
timeout).
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402
import hostile  # noqa: E402

ATTACK_S = float(os.environ.get("GW_HOSTILE_ATTACK_S", "45"))
PLAN = {
    "ingest": {"stall": 200, "disconnect": 200, "badhead": 200, "early401": 20, "early429": 20},
    "api": {"stall": 150, "disconnect": 150, "badhead": 150},
    "admin": {"stall": 15, "disconnect": 15, "badhead": 15},
}


def main():
    hostile.run("hostile_clients", PLAN, ATTACK_S)


if __name__ == "__main__":
    g.run(main)
