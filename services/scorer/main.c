/*
 * goodwill-scorer: reads InteractionEvents from Kafka, scores them with the feeling model and
 * writes ScoredRecords (or DLQ records) back, committing input offsets only after the output
 * was acknowledged. Everything it does is gw_scorer (lib/service/scorer.c); this file describes the
 * configuration and how to start and stop the scorer, and services/daemon.c runs it. SIGTERM or
 * SIGINT drain (gw_scorer enforces --shutdown-grace itself) and exit 0; a fatal Kafka error
 * drains the same way and exits 1; a refused configuration (e.g. a protected --kafka-property),
 * or a lexicon or overlay that cannot be loaded, exits 2 at start. SIGHUP reloads the lexicon
 * and its overlay (the old model stays if they cannot be loaded).
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "daemon.h"
#include "goodwill/config.h"
#include "goodwill/log.h"
#include "goodwill/scorer.h"

typedef struct scorer_flags {
  char *log_level;
  char *admin_host;
  long long admin_port;
  char *kafka_bootstrap;
  gw_config_list kafka_property;
  char *group;
  char *lexicon;
  char *lexicon_overlay;
  long long max_in_flight;
  long long session_timeout_ms;
  long long shutdown_grace_ms;
  long long turn_idle_timeout_ms;
  long long turn_expiry_grace_ms;
  long long max_open_turns;
  long long max_open_bytes;
  long long max_recent_closes;
  bool explain;
} scorer_flags;

static const gw_config_key scorer_keys[] = {
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(scorer_flags, log_level),
     "debug | info | warn | error"},
    {"admin-host", GW_CONF_STRING, "0.0.0.0", 0, 0, offsetof(scorer_flags, admin_host),
     "listen address of the admin port (/metrics, /healthz, /readyz)"},
    {"admin-port", GW_CONF_INT, "9102", 0, 65535, offsetof(scorer_flags, admin_port),
     "admin port; 0 picks a free port (logged as admin_port)"},
    {"kafka-bootstrap", GW_CONF_STRING, "127.0.0.1:9092", 1, 0,
     offsetof(scorer_flags, kafka_bootstrap), "Kafka bootstrap servers, host:port,..."},
    {"kafka-property", GW_CONF_LIST, NULL, 0, 0, offsetof(scorer_flags, kafka_property),
     "librdkafka property name=value (repeatable), e.g. security.protocol=SASL_SSL"},
    {"group", GW_CONF_STRING, "goodwill-scorer", 1, 0, offsetof(scorer_flags, group),
     "Kafka consumer group"},
    {"lexicon", GW_CONF_STRING, "", 0, 0, offsetof(scorer_flags, lexicon),
     "lexicon file (goodwill, VADER-style or AFINN-style); empty: the built-in lexicon"},
    {"lexicon-overlay", GW_CONF_STRING, "", 0, 0, offsetof(scorer_flags, lexicon_overlay),
     "lexicon overlay (goodwill format) merged over the lexicon: its entries are added or replace "
     "the lexicon's; SIGHUP reloads both; empty: none"},
    {"max-in-flight", GW_CONF_INT, "10000", 1, 1000000, offsetof(scorer_flags, max_in_flight),
     "records consumed and not yet delivered before consumption pauses"},
    {"session-timeout", GW_CONF_DURATION, "10s", 1000, 3600000,
     offsetof(scorer_flags, session_timeout_ms), "Kafka consumer group session timeout"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(scorer_flags, shutdown_grace_ms),
     "on SIGTERM, how long to wait for outstanding deliveries before leaving"},
    {"turn-idle-timeout", GW_CONF_DURATION, "6h", 60000, 30LL * 24 * 3600 * 1000,
     offsetof(scorer_flags, turn_idle_timeout_ms),
     "time after an open interaction's last live turn before its turns go to the DLQ without a "
     "close: in event time (against the largest occurred_at of its partition) or in processing "
     "time (no turn of it read for that long)"},
    {"turn-expiry-grace", GW_CONF_DURATION, "1m", 1000, 30LL * 24 * 3600 * 1000,
     offsetof(scorer_flags, turn_expiry_grace_ms),
     "processing time after a live turn was read before its interaction may expire by event "
     "time, so a backfill of old turns is not expired on arrival (at most --turn-idle-timeout)"},
    {"max-open-turns", GW_CONF_INT, "200000", 1, 100000000, offsetof(scorer_flags, max_open_turns),
     "live turns buffered over all partitions; above it the least recently active open "
     "interaction of the tenant holding the most turns goes to the DLQ"},
    {"max-open-bytes", GW_CONF_SIZE, "256MiB", 1LL << 20, 1LL << 40,
     offsetof(scorer_flags, max_open_bytes),
     "bytes buffered for live turns over all partitions (texts, Kafka records, bookkeeping); "
     "above it the least recently active open interaction of the tenant holding the most bytes "
     "goes to the DLQ"},
    {"max-recent-closes", GW_CONF_INT, "100000", 1, 100000000,
     offsetof(scorer_flags, max_recent_closes),
     "closed interactions remembered (for --turn-idle-timeout) so that a turn read after its "
     "interaction's close goes to the DLQ at once; the oldest are forgotten first"},
    {"explain", GW_CONF_BOOL, "false", 0, 0, offsetof(scorer_flags, explain),
     "write in each scored record why its feeling scores are what they are (explain_json, "
     "comment_explain_json: the words, phrases and rules with their contributions)"},
};

typedef struct scorer_app {
  gw_scorer *scorer;
  uv_signal_t sighup;
  bool sighup_open;
  bool draining;
} scorer_app;

/* SIGHUP: the lexicon and its overlay again, from the same files (gw_scorer logs and counts the
 * result; on an error the old model stays). The handle stays open through the drain, which
 * ignores the signal: closed, it would give SIGHUP its default action back and end the process
 * in the middle of the drain. */
static void on_sighup(uv_signal_t *h, int signum) {
  gw_daemon *d = h->data;
  scorer_app *app = d->app;
  if (app->draining) {
    GW_LOG(&d->log, GW_LOG_WARN, "lexicon reload ignored while draining", GW_LI("signal", signum));
    return;
  }
  GW_LOG(&d->log, GW_LOG_INFO, "reloading the lexicon", GW_LI("signal", signum));
  if (app->scorer != NULL) {
    (void)gw_scorer_reload_lexicon(app->scorer); /* logs the outcome */
  }
}

static int start_scorer(gw_daemon *d) {
  const scorer_flags *f = d->flags;
  scorer_app *app = d->app;
  gw_scorer **scorer = &app->scorer;
  gw_scorer_config cfg = {
      .kafka_bootstrap = f->kafka_bootstrap,
      .kafka_properties = (const char *const *)f->kafka_property.items,
      .nkafka_properties = f->kafka_property.count,
      .group_id = f->group,
      .lexicon_path = f->lexicon,
      .lexicon_overlay_path = f->lexicon_overlay,
      .max_in_flight = (size_t)f->max_in_flight,
      .session_timeout_ms = (uint64_t)f->session_timeout_ms,
      .shutdown_grace_ms = (uint64_t)f->shutdown_grace_ms,
      .turn_idle_timeout_ms = (int64_t)f->turn_idle_timeout_ms,
      .turn_expiry_grace_ms = (int64_t)f->turn_expiry_grace_ms,
      .max_open_turns = (size_t)f->max_open_turns,
      .max_open_bytes = (size_t)f->max_open_bytes,
      .max_recent_closes = (size_t)f->max_recent_closes,
      .explain = f->explain,
      .admin_host = f->admin_host,
      .admin_port = (int)f->admin_port,
      .log = &d->log,
      .on_fatal = gw_daemon_fail, /* a fatal Kafka error: not ready, drain, exit 1 */
      .fatal_opaque = d,
  };
  int rc = gw_scorer_start(&d->loop, &cfg, scorer);
  if (rc != 0) {
    return rc; /* gw_scorer_start logged why */
  }
  GW_LOG(&d->log, GW_LOG_INFO, "listening", GW_LI("admin_port", gw_scorer_admin_port(*scorer)),
         GW_LS("admin_host", f->admin_host));
  uv_signal_init(&d->loop, &app->sighup);
  app->sighup.data = d;
  uv_signal_start(&app->sighup, on_sighup, SIGHUP);
  app->sighup_open = true;
  return 0;
}

static void on_stopped(void *opaque, int status) {
  gw_daemon *d = opaque;
  scorer_app *app = d->app;
  app->scorer = NULL;
  if (app->sighup_open) {
    app->sighup_open = false;
    uv_close((uv_handle_t *)&app->sighup, NULL);
  }
  gw_daemon_stopped(d);
}

static void stop_scorer(gw_daemon *d) {
  scorer_app *app = d->app;
  app->draining = true;
  gw_scorer_stop(app->scorer, on_stopped, d);
}

static void finish_scorer(gw_daemon *d) {
  GW_LOG(&d->log, GW_LOG_INFO, "exiting");
}

static const gw_daemon_def scorer_daemon = {
    .program = "goodwill-scorer",
    .component = "scorer",
    .summary = "Scores InteractionEvents from Kafka into ScoredRecords (feeling, NPS).",
    .keys = scorer_keys,
    .nkeys = sizeof scorer_keys / sizeof scorer_keys[0],
    .log_level_offset = offsetof(scorer_flags, log_level),
    .stop_message = "signal received, draining",
    .start = start_scorer,
    .stop = stop_scorer,
    .finish = finish_scorer,
};

int main(int argc, char **argv) {
  scorer_flags f;
  memset(&f, 0, sizeof f);
  scorer_app app;
  memset(&app, 0, sizeof app);
  return gw_daemon_main(argc, argv, &scorer_daemon, &f, &app);
}
