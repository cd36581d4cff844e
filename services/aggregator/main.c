/*
 * goodwill-aggregator: consumes goodwill.scored.v1, keeps per-team aggregates in Redis and
 * serves them over HTTP (see lib/include/goodwill/aggregator.h). Flags and GOODWILL_*
 * variables are parsed here; everything else is the library. SIGTERM or SIGINT: flush pending
 * batches, commit, exit 0 (also when the grace period ended with records pending: they are
 * not lost, the next consumer of their partitions replays them, and the replay is deduped).
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "goodwill/aggregator.h"
#include "goodwill/config.h"
#include "goodwill/log.h"

typedef struct aggregator_flags {
  char *log_level;
  char *admin_host;
  long long admin_port;
  char *api_host;
  long long api_port;
  char *kafka_bootstrap;
  gw_config_list kafka_property;
  char *group;
  char *redis_url;
  long long flush_interval_ms;
  long long max_batch;
  long long max_pending;
  long long session_timeout_ms;
  long long shutdown_grace_ms;
} aggregator_flags;

static const gw_config_key keys[] = {
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(aggregator_flags, log_level),
     "debug | info | warn | error"},
    {"admin-host", GW_CONF_STRING, "0.0.0.0", 1, 0, offsetof(aggregator_flags, admin_host),
     "listen address of /metrics, /healthz, /readyz"},
    {"admin-port", GW_CONF_INT, "9103", 0, 65535, offsetof(aggregator_flags, admin_port),
     "admin port (0: any free port, logged)"},
    {"api-host", GW_CONF_STRING, "0.0.0.0", 1, 0, offsetof(aggregator_flags, api_host),
     "listen address of the read API"},
    {"api-port", GW_CONF_INT, "8081", 0, 65535, offsetof(aggregator_flags, api_port),
     "read API port (0: any free port, logged)"},
    {"kafka-bootstrap", GW_CONF_STRING, "127.0.0.1:9092", 1, 0,
     offsetof(aggregator_flags, kafka_bootstrap), "Kafka bootstrap servers host:port,..."},
    {"kafka-property", GW_CONF_LIST, NULL, 0, 0, offsetof(aggregator_flags, kafka_property),
     "librdkafka property name=value (repeatable; e.g. security.protocol=SASL_SSL)"},
    {"group", GW_CONF_STRING, "goodwill-aggregator", 1, 0, offsetof(aggregator_flags, group),
     "Kafka consumer group"},
    {"redis-url", GW_CONF_STRING, "redis://127.0.0.1:6379", 1, 0,
     offsetof(aggregator_flags, redis_url), "redis://[:password@]host[:port][/db]"},
    {"flush-interval", GW_CONF_DURATION, "50ms", 1, 60000,
     offsetof(aggregator_flags, flush_interval_ms), "apply each team's pending records this often"},
    {"max-batch", GW_CONF_INT, "500", 1, 5000, offsetof(aggregator_flags, max_batch),
     "records per team per Redis script call"},
    {"max-pending", GW_CONF_INT, "20000", 1, 10000000, offsetof(aggregator_flags, max_pending),
     "records not yet applied before consuming pauses (resumes below half)"},
    {"session-timeout", GW_CONF_DURATION, "10s", 1000, 3600000,
     offsetof(aggregator_flags, session_timeout_ms), "Kafka consumer session.timeout.ms"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(aggregator_flags, shutdown_grace_ms), "how long SIGTERM waits for pending batches"},
};

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  gw_aggregator *agg;
  gw_log log;
  bool stopping;
  int status;
} app;

static void on_stopped(void *opaque, int status) {
  app *ap = opaque;
  ap->status = status;
  GW_LOG(&ap->log, GW_LOG_INFO, "stopped", GW_LI("status", status));
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
  uv_close((uv_handle_t *)&ap->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  app *ap = h->data;
  if (ap->stopping)
    return;
  ap->stopping = true;
  GW_LOG(&ap->log, GW_LOG_INFO, "signal, stopping", GW_LI("signal", signum));
  gw_aggregator_stop(ap->agg, on_stopped, ap);
}

int main(int argc, char **argv) {
  extern char **environ;
  aggregator_flags f;
  memset(&f, 0, sizeof(f));
  gw_config_values values = {0};
  char err[512];
  size_t nkeys = sizeof(keys) / sizeof(keys[0]);
  int rc = gw_config_load(keys, nkeys, &f, &values, argc, argv, environ, err, sizeof(err));
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-aggregator",
                    "Applies scored records to per-team aggregates in Redis and serves them.", keys,
                    nkeys, stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-aggregator: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  static app ap; /* large enough to keep off the stack; main's only instance */
  gw_log_level level;
  if (gw_log_level_parse(f.log_level, &level) != 0) {
    fprintf(stderr, "goodwill-aggregator: --log-level: unknown level \"%s\"\n", f.log_level);
    gw_config_free(&values);
    return 2;
  }
  gw_log_init(&ap.log, "aggregator", level);

  gw_aggregator_config cfg = {
      .admin_host = f.admin_host,
      .admin_port = (int)f.admin_port,
      .api_host = f.api_host,
      .api_port = (int)f.api_port,
      .kafka_bootstrap = f.kafka_bootstrap,
      .kafka_properties = (const char *const *)f.kafka_property.items,
      .nkafka_properties = f.kafka_property.count,
      .group = f.group,
      .redis_url = f.redis_url,
      .flush_interval_ms = (uint64_t)f.flush_interval_ms,
      .max_batch = (size_t)f.max_batch,
      .max_pending = (size_t)f.max_pending,
      .session_timeout_ms = (uint64_t)f.session_timeout_ms,
      .shutdown_grace_ms = (uint64_t)f.shutdown_grace_ms,
      .log = &ap.log,
  };
  uv_loop_init(&ap.loop);
  rc = gw_aggregator_start(&ap.loop, &cfg, &ap.agg);
  if (rc < 0) {
    GW_LOG(&ap.log, GW_LOG_ERROR, "cannot start", GW_LI("error", rc));
    uv_run(&ap.loop, UV_RUN_DEFAULT); /* lets the partial start close its handles */
    uv_loop_close(&ap.loop);
    gw_config_free(&values);
    return 1;
  }
  uv_signal_init(&ap.loop, &ap.sigterm);
  uv_signal_init(&ap.loop, &ap.sigint);
  ap.sigterm.data = ap.sigint.data = &ap;
  uv_signal_start(&ap.sigterm, on_signal, SIGTERM);
  uv_signal_start(&ap.sigint, on_signal, SIGINT);
  uv_run(&ap.loop, UV_RUN_DEFAULT);
  uv_loop_close(&ap.loop);
  gw_config_free(&values);
  return 0;
}
