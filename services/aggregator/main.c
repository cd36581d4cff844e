/*
 * goodwill-aggregator: consumes goodwill.scored.v1, keeps per-team aggregates in Redis and
 * serves them over HTTP (see lib/include/goodwill/aggregator.h). Flags and GOODWILL_*
 * variables are described here and run by services/daemon.c; everything else is the library.
 * SIGTERM or SIGINT: flush pending
 * batches, commit, exit 0 (also when the grace period ended with records pending: they are
 * not lost, the next consumer of their partitions replays them, and the replay is deduped).
 * SIGHUP reloads the read API's tokens file (--tokens-file; the format of goodwill-ingest's,
 * whose --hash-token prints a token's hash).
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon.h"
#include "goodwill/aggregates.h"
#include "goodwill/aggregator.h"
#include "goodwill/config.h"
#include "goodwill/event.h"
#include "goodwill/log.h"

typedef struct aggregator_flags {
  char *log_level;
  char *mode;
  char *admin_host;
  long long admin_port;
  char *api_host;
  long long api_port;
  char *kafka_bootstrap;
  gw_config_list kafka_property;
  char *group;
  char *redis_url;
  char *redis_password_file;
  long long flush_interval_ms;
  long long verify_interval_ms;
  long long max_batch;
  long long max_pending;
  long long session_timeout_ms;
  long long shutdown_grace_ms;
  char *tokens_file;
  bool dev_mode;
  long long team_metrics_interval_ms;
  long long team_metrics_max;
  long long read_timeout_ms;
  long long read_rate_limit;
  long long read_rate_burst;
  long long kafka_retention_ms;
  long long client_retry_window_ms;
} aggregator_flags;

static const gw_config_key keys[] = {
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(aggregator_flags, log_level),
     "debug | info | warn | error"},
    {"mode", GW_CONF_STRING, "all", 1, 0, offsetof(aggregator_flags, mode),
     "all: consume, apply and serve the read API | apply: no read API | read: read API only"},
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
    {"redis-password-file", GW_CONF_STRING, "", 0, 0,
     offsetof(aggregator_flags, redis_password_file),
     "file holding the Redis password (AUTH), one line; keeps it out of the URL and the "
     "environment"},
    {"flush-interval", GW_CONF_DURATION, "50ms", 1, 60000,
     offsetof(aggregator_flags, flush_interval_ms), "apply each team's pending records this often"},
    {"verify-interval", GW_CONF_DURATION, "10s", 100, 3600000,
     offsetof(aggregator_flags, verify_interval_ms),
     "compare the applied marks with Redis this often (and after a reconnect): a Redis that lost "
     "applied records is healed from Kafka"},
    {"max-batch", GW_CONF_INT, "500", 1, 5000, offsetof(aggregator_flags, max_batch),
     "records per team per Redis script call"},
    {"max-pending", GW_CONF_INT, "20000", 1, 10000000, offsetof(aggregator_flags, max_pending),
     "records not yet applied before consuming pauses (resumes below half)"},
    {"session-timeout", GW_CONF_DURATION, "10s", 1000, 3600000,
     offsetof(aggregator_flags, session_timeout_ms), "Kafka consumer session.timeout.ms"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(aggregator_flags, shutdown_grace_ms), "how long SIGTERM waits for pending batches"},
    {"tokens-file", GW_CONF_STRING, NULL, 0, 0, offsetof(aggregator_flags, tokens_file),
     "read API bearer tokens: lines <sha256-hex>TAB<tenant>[TAB<comment>]; reloaded on SIGHUP"},
    {"dev-mode", GW_CONF_BOOL, "false", 0, 0, offsetof(aggregator_flags, dev_mode),
     "read API without authentication, any tenant (demos only; needs this or --tokens-file)"},
    {"team-metrics-interval", GW_CONF_DURATION, "30s", 1000, 3600000,
     offsetof(aggregator_flags, team_metrics_interval_ms),
     "refresh the per-team gauges on /metrics (last hour) this often"},
    {"team-metrics-max", GW_CONF_INT, "0", 0, 100000, offsetof(aggregator_flags, team_metrics_max),
     "per-team gauges on the admin /metrics (tenant data on an unauthenticated port): most "
     "teams, tenants then teams in id order (0: off, the default)"},
    {"read-timeout", GW_CONF_DURATION, "5s", 100, 600000,
     offsetof(aggregator_flags, read_timeout_ms),
     "longest a read API Redis command may take (reads have their own connection)"},
    {"read-rate-limit", GW_CONF_INT, "20", 0, 1000000, offsetof(aggregator_flags, read_rate_limit),
     "read API requests per second per tenant (0: no limit); past it 429 with Retry-After"},
    {"read-rate-burst", GW_CONF_INT, "40", 0, 10000000, offsetof(aggregator_flags, read_rate_burst),
     "read API requests a tenant may make at once (0: two seconds of --read-rate-limit)"},
    /* The dedupe horizon (goodwill/aggregates.h, docs/REDIS_SCHEMA.md): dedupe sets are kept
     * their day + 1 day + 2 * retention + retry window. The maxima are those ingest's lateness
     * bound leaves room for (goodwill/event.h). */
    {"kafka-retention", GW_CONF_DURATION, "7d", GW_AGG_KAFKA_RETENTION_MIN_S * 1000,
     GW_KAFKA_RETENTION_MAX_MS, offsetof(aggregator_flags, kafka_retention_ms),
     "the longest a record stays in goodwill.interactions.v1 or goodwill.scored.v1 (retention.ms, "
     "plus segment.ms where segments roll by time); a record delivered later than twice this "
     "after its receipt can no longer be deduplicated and goes to the DLQ"},
    {"client-retry-window", GW_CONF_DURATION, "1d", 0, GW_CLIENT_RETRY_WINDOW_MAX_MS,
     offsetof(aggregator_flags, client_retry_window_ms),
     "the longest a client keeps retrying an event after its first attempt reached ingest; "
     "deliveries received this close together count once"},
};

typedef struct aggregator_app {
  gw_aggregator *agg;
  uv_signal_t sighup;
  bool sighup_open;
} aggregator_app;

static void on_sighup(uv_signal_t *h, int signum) {
  gw_daemon *d = h->data;
  aggregator_app *app = d->app;
  GW_LOG(&d->log, GW_LOG_INFO, "reloading the tokens file", GW_LI("signal", signum));
  if (app->agg != NULL)
    (void)gw_aggregator_reload_tokens(app->agg); /* logs the outcome */
}

static int start_aggregator(gw_daemon *d) {
  const aggregator_flags *f = d->flags;
  aggregator_app *app = d->app;
  gw_aggregator_mode mode;
  if (gw_aggregator_mode_parse(f->mode, &mode) != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "invalid --mode (all, apply or read)", GW_LS("mode", f->mode));
    return -EINVAL;
  }
  gw_agg_horizon horizon = {
      .kafka_retention_s = f->kafka_retention_ms / 1000,
      .client_retry_window_s = f->client_retry_window_ms / 1000,
  };
  gw_aggregator_config cfg = {
      .mode = mode,
      .horizon = &horizon,
      .admin_host = f->admin_host,
      .admin_port = (int)f->admin_port,
      .api_host = f->api_host,
      .api_port = (int)f->api_port,
      .kafka_bootstrap = f->kafka_bootstrap,
      .kafka_properties = (const char *const *)f->kafka_property.items,
      .nkafka_properties = f->kafka_property.count,
      .group = f->group,
      .redis_url = f->redis_url,
      .redis_password_file = f->redis_password_file,
      .flush_interval_ms = (uint64_t)f->flush_interval_ms,
      .verify_interval_ms = (uint64_t)f->verify_interval_ms,
      .max_batch = (size_t)f->max_batch,
      .max_pending = (size_t)f->max_pending,
      .session_timeout_ms = (uint64_t)f->session_timeout_ms,
      .shutdown_grace_ms = (uint64_t)f->shutdown_grace_ms,
      .log = &d->log,
      .tokens_file = f->tokens_file,
      .dev_mode = f->dev_mode,
      .team_metrics_max = (size_t)f->team_metrics_max,
      .team_metrics_interval_ms = (uint64_t)f->team_metrics_interval_ms,
      .read_timeout_ms = (uint64_t)f->read_timeout_ms,
      .read_rate_limit_per_s = (double)f->read_rate_limit,
      .read_rate_burst = (double)f->read_rate_burst,
      .on_fatal = gw_daemon_fail, /* a fatal Kafka error: not ready, drain, exit 1 */
      .fatal_opaque = d,
  };
  /* gw_aggregator_start logs the "listening" line with the ports it bound. */
  int rc = gw_aggregator_start(&d->loop, &cfg, &app->agg);
  if (rc < 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot start", GW_LI("error", rc));
    return rc;
  }
  uv_signal_init(&d->loop, &app->sighup);
  app->sighup.data = d;
  uv_signal_start(&app->sighup, on_sighup, SIGHUP);
  app->sighup_open = true;
  return 0;
}

static void on_stopped(void *opaque, int status) {
  gw_daemon *d = opaque;
  aggregator_app *app = d->app;
  app->agg = NULL; /* freed by the aggregator before this call */
  /* Records still pending at the end of the grace (status < 0) are not lost: the next consumer
   * of their partitions replays them and the replay is deduped, so the exit is still 0. */
  GW_LOG(&d->log, GW_LOG_INFO, "stopped", GW_LI("status", status));
  gw_daemon_stopped(d);
}

static void stop_aggregator(gw_daemon *d) {
  aggregator_app *app = d->app;
  if (app->sighup_open) {
    app->sighup_open = false;
    uv_close((uv_handle_t *)&app->sighup, NULL);
  }
  gw_aggregator_stop(app->agg, on_stopped, d);
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
  aggregator_app app;
  memset(&app, 0, sizeof(app));
  return gw_daemon_main(argc, argv, &aggregator_daemon, &f, &app);
}
