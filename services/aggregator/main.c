/*
 * goodwill-aggregator: consumes goodwill.scored.v1, keeps per-team aggregates in Redis and
 * serves them over HTTP (see lib/include/goodwill/aggregator.h). Flags and GOODWILL_*
 * variables are described here and run by services/daemon.c; everything else is the library.
 * SIGTERM or SIGINT: flush pending
 * batches, commit, exit 0 (also when the grace period ended with records pending: they are
 * not lost, the next consumer of their partitions replays them, and the replay is deduped).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon.h"
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

static int start_aggregator(gw_daemon *d) {
  const aggregator_flags *f = d->flags;
  gw_aggregator **agg = d->app;
  gw_aggregator_config cfg = {
      .admin_host = f->admin_host,
      .admin_port = (int)f->admin_port,
      .api_host = f->api_host,
      .api_port = (int)f->api_port,
      .kafka_bootstrap = f->kafka_bootstrap,
      .kafka_properties = (const char *const *)f->kafka_property.items,
      .nkafka_properties = f->kafka_property.count,
      .group = f->group,
      .redis_url = f->redis_url,
      .flush_interval_ms = (uint64_t)f->flush_interval_ms,
      .max_batch = (size_t)f->max_batch,
      .max_pending = (size_t)f->max_pending,
      .session_timeout_ms = (uint64_t)f->session_timeout_ms,
      .shutdown_grace_ms = (uint64_t)f->shutdown_grace_ms,
      .log = &d->log,
  };
  /* gw_aggregator_start logs the "listening" line with the ports it bound. */
  int rc = gw_aggregator_start(&d->loop, &cfg, agg);
  if (rc < 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot start", GW_LI("error", rc));
    return rc;
  }
  return 0;
}

static void on_stopped(void *opaque, int status) {
  gw_daemon *d = opaque;
  /* Records still pending at the end of the grace (status < 0) are not lost: the next consumer
   * of their partitions replays them and the replay is deduped, so the exit is still 0. */
  GW_LOG(&d->log, GW_LOG_INFO, "stopped", GW_LI("status", status));
  gw_daemon_stopped(d);
}

static void stop_aggregator(gw_daemon *d) {
  gw_aggregator **agg = d->app;
  gw_aggregator_stop(*agg, on_stopped, d);
}

static const gw_daemon_def aggregator_daemon = {
    .program = "goodwill-aggregator",
    .component = "aggregator",
    .summary = "Applies scored records to per-team aggregates in Redis and serves them.",
    .keys = keys,
    .nkeys = sizeof(keys) / sizeof(keys[0]),
    .log_level_offset = offsetof(aggregator_flags, log_level),
    .stop_message = "signal, stopping",
    .start = start_aggregator,
    .stop = stop_aggregator,
};

int main(int argc, char **argv) {
  aggregator_flags f;
  memset(&f, 0, sizeof(f));
  gw_aggregator *agg = NULL;
  return gw_daemon_main(argc, argv, &aggregator_daemon, &f, &agg);
}
