/* The daemon skeleton shared by services/<name>/main.c (see daemon.h). */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/build_info.h"

static void on_grace_expired(uv_timer_t *t) {
  gw_daemon *d = t->data;
  GW_LOG(&d->log, GW_LOG_ERROR, "drain did not finish within the shutdown grace; exiting",
         GW_LI("grace_ms", d->grace_ms));
  exit(1);
}

/* The first SIGTERM / SIGINT, or gw_daemon_fail: start the service's drain. */
static void begin_drain(gw_daemon *d, int signum) {
  const gw_daemon_def *def = d->def;
  d->stopping = true;
  if (def->exit_on_grace) {
    if (signum != 0) {
      GW_LOG(&d->log, GW_LOG_INFO, def->stop_message, GW_LI("signal", signum),
             GW_LI("grace_ms", d->grace_ms));
    } else {
      GW_LOG(&d->log, GW_LOG_INFO, def->stop_message, GW_LI("grace_ms", d->grace_ms));
    }
    uv_timer_start(&d->grace, on_grace_expired, d->grace_ms, 0);
  } else if (signum != 0) {
    GW_LOG(&d->log, GW_LOG_INFO, def->stop_message, GW_LI("signal", signum));
  } else {
    GW_LOG(&d->log, GW_LOG_INFO, def->stop_message);
  }
  def->stop(d);
}

void gw_daemon_fail(void *daemon, const char *reason) {
  gw_daemon *d = daemon;
  d->failed = true;
  GW_LOG(&d->log, GW_LOG_ERROR, "cannot go on: draining, then exiting 1",
         GW_LS("reason", reason != NULL ? reason : ""), GW_LB("draining_already", d->stopping));
  if (!d->stopping && !d->stopped) {
    begin_drain(d, 0);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  gw_daemon *d = h->data;
  const gw_daemon_def *def = d->def;
  if (d->stopping) {
    /* Only a daemon that promises to leave within its grace treats the second signal as an
     * order to leave now; a service with its own grace keeps draining. */
    if (def->exit_on_grace) {
      GW_LOG(&d->log, GW_LOG_WARN, "second signal during drain; exiting now",
             GW_LI("signal", signum));
      exit(1);
    }
    return;
  }
  begin_drain(d, signum);
}

void gw_daemon_stopped(gw_daemon *d) {
  if (d->stopped) {
    return;
  }
  d->stopped = true;
  if (d->def->exit_on_grace) {
    uv_timer_stop(&d->grace);
    uv_close((uv_handle_t *)&d->grace, NULL);
  }
  /* With the signal handles closed nothing keeps the loop alive but the service's own
   * handles, which its drain has closed. */
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
}

/* Fills flags and the log level. Returns 0, GW_CONFIG_HELP after printing the usage,
 * GW_CONFIG_VERSION after printing the version, or -EINVAL after printing the reason on
 * stderr. */
static int load_config(const gw_daemon_def *def, void *flags, gw_config_values *values, int argc,
                       char **argv, gw_log_level *level) {
  extern char **environ;
  char err[512];
  int rc =
      gw_config_load(def->keys, def->nkeys, flags, values, argc, argv, environ, err, sizeof err);
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage(def->program, def->summary, def->keys, def->nkeys, stdout);
    return rc;
  }
  if (rc == GW_CONFIG_VERSION) {
    gw_build_info_print(stdout, def->program);
    return rc;
  }
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", def->program, err);
    return -EINVAL;
  }
  const char *name = *(char *const *)((const char *)flags + def->log_level_offset);
  if (gw_log_level_parse(name, level) != 0) {
    fprintf(stderr, "%s: --log-level: unknown level \"%s\" (debug|info|warn|error)\n", def->program,
            name);
    return -EINVAL;
  }
  return 0;
}

int gw_daemon_main(int argc, char **argv, const gw_daemon_def *def, void *flags, void *app) {
  gw_config_values values = {0};
  gw_log_level level;
  int rc = load_config(def, flags, &values, argc, argv, &level);
  if (rc != 0) {
    gw_config_free(&values);
    return rc == GW_CONFIG_HELP || rc == GW_CONFIG_VERSION ? 0 : 2;
  }

  gw_daemon d;
  memset(&d, 0, sizeof d);
  d.def = def;
  d.flags = flags;
  d.app = app;
  gw_log_init(&d.log, def->component, level);
  /* A write to a closed connection must be an error of that write, not the end of the
   * process. */
  signal(SIGPIPE, SIG_IGN);
  if (def->exit_on_grace) {
    d.grace_ms = (uint64_t) * (const long long *)((const char *)flags + def->shutdown_grace_offset);
  }
  rc = uv_loop_init(&d.loop);
  if (rc != 0) {
    GW_LOG(&d.log, GW_LOG_ERROR, "cannot create the event loop", GW_LS("reason", uv_strerror(rc)));
    gw_config_free(&values);
    return 1;
  }

  rc = def->start(&d);
  if (rc != 0) {
    uv_run(&d.loop, UV_RUN_DEFAULT); /* lets a partly started service close its handles */
    uv_loop_close(&d.loop);
    gw_config_free(&values);
    /* -EINVAL: the service refused its configuration, which is a usage error like a bad
     * flag; anything else (a port in use, ...) is a failure to run. */
    return rc == -EINVAL ? 2 : 1;
  }

  if (def->exit_on_grace) {
    uv_timer_init(&d.loop, &d.grace);
    d.grace.data = &d;
  }
  uv_signal_init(&d.loop, &d.sigterm);
  uv_signal_init(&d.loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_run(&d.loop, UV_RUN_DEFAULT);

  d.exit_code = d.stopped && !d.failed ? 0 : 1;
  if (uv_loop_close(&d.loop) != 0) {
    GW_LOG(&d.log, GW_LOG_WARN, "loop closed with handles still open");
  }
  if (def->finish != NULL) {
    def->finish(&d);
  }
  gw_config_free(&values);
  return d.exit_code;
}
