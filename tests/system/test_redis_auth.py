#!/usr/bin/python3
"""Redis AUTH from a file: redis-server runs with --requirepass; goodwill-aggregator gets the
password through --redis-password-file (the chart mounts a Secret there), so it is neither on
its command line nor in its environment. The stack comes up ready, events are counted exactly,
and the password appears nowhere in the aggregator's command line, environment or log.
"""
import os
import secrets
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwstack as g  # noqa: E402

TENANT = "auth"


def main():
    password = "pw-" + secrets.token_hex(12)
    pw_dir = tempfile.mkdtemp(prefix="gw-redis-auth-")
    pw_file = os.path.join(pw_dir, "password")
    with open(pw_file, "w") as f:
        f.write(password + "\n")
    env = {"GW_DEVSTACK_REDIS_ARGS": "--requirepass " + password,
           "GW_DEVSTACK_AGGREGATOR_ARGS": "--redis-password-file " + pw_file}
    lines = g.generate(seed=23, interactions=60, teams=3, tenant=TENANT)
    expected, _ = g.expected_counts(lines)
    with g.Stack(session_timeout="6s", extra_env=env) as st:
        status, doc = g.post_events(st.ingest, lines)
        g.check(status == 202, "ingest answered %d: %s" % (status, doc))
        g.compare_counts("read API", g.wait_for_counts(st.api, TENANT, expected, timeout_s=60, settle_s=1.0),
                         expected)
        pid = st.pid("aggregator")
        cmdline = open("/proc/%d/cmdline" % pid, "rb").read().decode(errors="replace")
        # The daemon's configuration variables (the harness's own GW_DEVSTACK_* are inherited).
        environ = "\n".join(v for v in open("/proc/%d/environ" % pid, "rb").read().decode(errors="replace")
                            .split("\0") if v.startswith("GOODWILL_"))
        log_text = open(os.path.join(st.dir, "aggregator.log"), errors="replace").read()
        for where, text in (("command line", cmdline), ("environment", environ), ("log", log_text)):
            g.check(password not in text, "the Redis password is in the aggregator's %s" % where)
        g.log("aggregator authenticated from a file; %d events counted; password in no command line, "
              "environment or log" % len(lines))


if __name__ == "__main__":
    g.run(main)
