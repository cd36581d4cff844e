/*
 * gw_daemon: the skeleton every goodwill daemon's main() shares, so that each
 * services/<name>/main.c only says what is its own: its key table, how it starts its service and
 * how it asks it to drain.
 *
 * gw_daemon_main does, in this order:
 *   1. reads flags and GOODWILL_* variables into the caller's flags struct (gw_config_load):
 *      --help prints the usage and returns 0; a bad flag or variable prints
 *      "<program>: <reason>" on stderr and returns 2;
 *   2. checks --log-level (the char * at def->log_level_offset): unknown -> stderr, return 2;
 *      then sets up d->log and ignores SIGPIPE (a write to a closed connection must be an
 *      error of that write, not the end of the process);
 *   3. initialises d->loop and calls def->start. A start that fails returns a negative code
 *      (having logged why): the loop then runs until the partial start closed its handles,
 *      and gw_daemon_main returns 2 for -EINVAL (a configuration the service refused, e.g. a
 *      protected --kafka-property: like a bad flag) and 1 otherwise;
 *   4. runs the loop with SIGTERM and SIGINT handlers. The first signal logs def->stop_message
 *      (fields: signal, and grace_ms when the daemon enforces the grace) and calls def->stop,
 *      which starts the service's drain and must lead to exactly one gw_daemon_stopped(d)
 *      call. With def->exit_on_grace, the daemon itself enforces the grace period (the
 *      long long milliseconds at def->shutdown_grace_offset): its expiry, or a second signal,
 *      logs why and exits 1 at once. Without it the service enforces its own grace and reports
 *      through gw_daemon_stopped, and a second signal is ignored;
 *   5. when the loop ended, closes it, calls def->finish (if any) and returns 0 when the drain
 *      finished (gw_daemon_stopped was called) and the service did not fail (gw_daemon_fail),
 *      1 otherwise.
 *
 * A service that fails for good while running (a fatal Kafka error) calls gw_daemon_fail: the
 * same drain as the first signal starts (or goes on), and the daemon exits 1 however it ends.
 *
 * Threads: everything runs on the thread that called gw_daemon_main, callbacks included.
 * Ownership: def, flags and app are borrowed and must outlive the call. Strings in flags belong
 * to the daemon's configuration arena, valid until gw_daemon_main returns (so also in finish).
 * Signal handling lives here, in the services layer, never in lib/.
 */
#ifndef GOODWILL_SERVICES_DAEMON_H
#define GOODWILL_SERVICES_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/config.h"
#include "goodwill/log.h"

typedef struct gw_daemon gw_daemon;

typedef struct gw_daemon_def {
  const char *program;   /* "goodwill-ingest": the usage title and the prefix of errors */
  const char *component; /* "ingest": the component of every log line */
  const char *summary;   /* one line for --help */
  const gw_config_key *keys;
  size_t nkeys;
  size_t log_level_offset;      /* offsetof(flags struct, the char * of --log-level) */
  const char *stop_message;     /* logged at info on the first SIGTERM / SIGINT */
  bool exit_on_grace;           /* the daemon, not the service, enforces the shutdown grace */
  size_t shutdown_grace_offset; /* with exit_on_grace: offsetof(flags, long long grace in ms) */
  /* Starts the service on d->loop; 0, or a negative code after logging the reason. */
  int (*start)(gw_daemon *d);
  /* Asks the service to drain; it must end in one gw_daemon_stopped(d) on the loop. */
  void (*stop)(gw_daemon *d);
  /* Optional: runs after the loop was closed, following a successful start (d->exit_code is
   * then the code gw_daemon_main returns). */
  void (*finish)(gw_daemon *d);
} gw_daemon_def;

struct gw_daemon {
  /* For the callbacks. */
  uv_loop_t loop; /* the daemon's one loop */
  gw_log log;     /* set up from --log-level before start */
  void *flags;    /* the caller's flags struct, filled from flags and environment */
  void *app;      /* the caller's own state, passed through untouched */
  int exit_code;  /* valid in finish */

  /* Private to daemon.c. */
  const gw_daemon_def *def;
  uv_signal_t sigterm, sigint;
  uv_timer_t grace;
  uint64_t grace_ms;
  bool stopping;
  bool stopped;
  bool failed; /* gw_daemon_fail was called */
};

/* Runs the daemon described by def (see the top of this file); returns main's exit code. */
int gw_daemon_main(int argc, char **argv, const gw_daemon_def *def, void *flags, void *app);

/* The service finished draining: closes the signal handles (and the grace timer) so the loop
 * can end; the daemon then exits 0 (1 after gw_daemon_fail). Call once, on the loop thread,
 * after def->stop. */
void gw_daemon_stopped(gw_daemon *d);

/*
 * The service cannot go on (e.g. a fatal Kafka error; reason says why, borrowed for the call):
 * logs it at error, starts the drain exactly as the first SIGTERM would (def->stop, and the
 * grace with def->exit_on_grace) unless a drain is already under way, and makes gw_daemon_main
 * return 1 even when the drain completes. daemon is the gw_daemon (void *, so that it fits the
 * services' on_fatal callbacks directly). Loop thread only; only after def->start returned 0.
 */
void gw_daemon_fail(void *daemon, const char *reason);

#endif
