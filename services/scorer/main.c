/*
 * goodwill-scorer: reads InteractionEvents from Kafka, scores them with the feeling model and
 * writes ScoredRecords (or DLQ records) back, committing input offsets only after the output
 * was acknowledged. Everything it does is gw_scorer (lib/scorer.c); this file reads the
 * configuration, handles signals and runs the loop. SIGTERM or SIGINT drain and exit 0.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

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
  long long max_in_flight;
  long long session_timeout_ms;
  long long shutdown_grace_ms;
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
    {"max-in-flight", GW_CONF_INT, "10000", 1, 1000000, offsetof(scorer_flags, max_in_flight),
     "records consumed and not yet delivered before consumption pauses"},
    {"session-timeout", GW_CONF_DURATION, "10s", 1000, 3600000,
     offsetof(scorer_flags, session_timeout_ms), "Kafka consumer group session timeout"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(scorer_flags, shutdown_grace_ms),
     "on SIGTERM, how long to wait for outstanding deliveries before leaving"},
};

typedef struct app {
  uv_loop_t loop;
  gw_log log;
  gw_scorer *scorer;
  uv_signal_t sigterm, sigint;
  bool stopping;
} app;

static void on_stopped(void *opaque, int status) {
  app *a = opaque;
  a->scorer = NULL;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  if (a->stopping) {
    return;
  }
  a->stopping = true;
  GW_LOG(&a->log, GW_LOG_INFO, "signal received, draining", GW_LI("signal", signum));
  gw_scorer_stop(a->scorer, on_stopped, a);
}

int main(int argc, char **argv) {
  extern char **environ;
  scorer_flags f;
  memset(&f, 0, sizeof f);
  gw_config_values values = {0};
  char err[512];
  size_t nkeys = sizeof scorer_keys / sizeof scorer_keys[0];
  int rc = gw_config_load(scorer_keys, nkeys, &f, &values, argc, argv, environ, err, sizeof err);
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-scorer",
                    "Scores InteractionEvents from Kafka into ScoredRecords (feeling, NPS).",
                    scorer_keys, nkeys, stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-scorer: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  gw_log_level level;
  if (gw_log_level_parse(f.log_level, &level) != 0) {
    fprintf(stderr, "goodwill-scorer: --log-level: unknown level \"%s\"\n", f.log_level);
    gw_config_free(&values);
    return 2;
  }
  /* A write to a closed admin connection must be an error, not the end of the process. */
  signal(SIGPIPE, SIG_IGN);

  app a;
  memset(&a, 0, sizeof a);
  gw_log_init(&a.log, "scorer", level);
  uv_loop_init(&a.loop);

  gw_scorer_config cfg = {
      .kafka_bootstrap = f.kafka_bootstrap,
      .kafka_properties = (const char *const *)f.kafka_property.items,
      .nkafka_properties = f.kafka_property.count,
      .group_id = f.group,
      .lexicon_path = f.lexicon,
      .max_in_flight = (size_t)f.max_in_flight,
      .session_timeout_ms = (uint64_t)f.session_timeout_ms,
      .shutdown_grace_ms = (uint64_t)f.shutdown_grace_ms,
      .admin_host = f.admin_host,
      .admin_port = (int)f.admin_port,
      .log = &a.log,
  };
  rc = gw_scorer_start(&a.loop, &cfg, &a.scorer);
  if (rc != 0) {
    /* Let the partly started parts close before leaving. */
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    gw_config_free(&values);
    return 1;
  }
  GW_LOG(&a.log, GW_LOG_INFO, "listening", GW_LI("admin_port", gw_scorer_admin_port(a.scorer)),
         GW_LS("admin_host", f.admin_host));

  uv_signal_init(&a.loop, &a.sigterm);
  uv_signal_init(&a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);

  uv_run(&a.loop, UV_RUN_DEFAULT);
  uv_loop_close(&a.loop);
  GW_LOG(&a.log, GW_LOG_INFO, "exiting");
  gw_config_free(&values);
  return 0;
}
