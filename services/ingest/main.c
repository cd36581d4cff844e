/*
 * goodwill-ingest: POST /v1/events -> Kafka goodwill.interactions.v1, answered after Kafka
 * acknowledged (the work is in lib/ingest.c). This file reads flags and GOODWILL_* variables,
 * starts the ingest on its own loop, and turns SIGTERM / SIGINT into a drain: exit 0 when the
 * drain finished, exit 1 when it did not within --shutdown-grace (or on a second signal).
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "goodwill/config.h"
#include "goodwill/event.h"
#include "goodwill/ingest.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"

typedef struct ingest_flags {
  char *log_level;
  char *listen_host;
  long long listen_port;
  char *admin_host;
  long long admin_port;
  char *kafka_bootstrap;
  gw_config_list kafka_property;
  long long max_body;
  long long max_events;
  long long max_turns;
  long long max_text;
  long long produce_timeout_ms;
  long long max_connections;
  long long request_timeout_ms;
  long long shutdown_grace_ms;
} ingest_flags;

static const gw_config_key ingest_keys[] = {
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(ingest_flags, log_level),
     "debug | info | warn | error"},
    {"listen-host", GW_CONF_STRING, "0.0.0.0", 1, 0, offsetof(ingest_flags, listen_host),
     "address of the API port"},
    {"listen-port", GW_CONF_INT, "8080", 0, 65535, offsetof(ingest_flags, listen_port),
     "API port (0: any free port, logged at start)"},
    {"admin-host", GW_CONF_STRING, "0.0.0.0", 1, 0, offsetof(ingest_flags, admin_host),
     "address of the admin port (/metrics, /healthz, /readyz)"},
    {"admin-port", GW_CONF_INT, "9101", 0, 65535, offsetof(ingest_flags, admin_port),
     "admin port (0: any free port, logged at start)"},
    {"kafka-bootstrap", GW_CONF_STRING, "127.0.0.1:9092", 1, 0,
     offsetof(ingest_flags, kafka_bootstrap), "Kafka bootstrap servers, host:port,..."},
    {"kafka-property", GW_CONF_LIST, NULL, 0, 0, offsetof(ingest_flags, kafka_property),
     "librdkafka property name=value, repeatable (security.protocol, sasl.*, ssl.*, ...)"},
    {"max-body", GW_CONF_SIZE, "8MiB", 1024, 1LL << 30, offsetof(ingest_flags, max_body),
     "largest request body (413 past it)"},
    {"max-events", GW_CONF_INT, "10000", 1, 1000000, offsetof(ingest_flags, max_events),
     "most events in one request (413 past it)"},
    {"max-turns", GW_CONF_INT, "2000", 1, 100000, offsetof(ingest_flags, max_turns),
     "most turns in one transcript"},
    {"max-text", GW_CONF_SIZE, "16KiB", 16, 1LL << 20, offsetof(ingest_flags, max_text),
     "largest text of one turn or comment"},
    {"produce-timeout", GW_CONF_DURATION, "30s", 100, 3600000,
     offsetof(ingest_flags, produce_timeout_ms),
     "an event not acknowledged by Kafka in time fails its request with 503"},
    {"max-connections", GW_CONF_INT, "1024", 1, 1000000, offsetof(ingest_flags, max_connections),
     "open API connections (503 past it)"},
    {"request-timeout", GW_CONF_DURATION, "30s", 100, 3600000,
     offsetof(ingest_flags, request_timeout_ms),
     "a request must arrive within this (408), also the keep-alive idle limit"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(ingest_flags, shutdown_grace_ms),
     "after SIGTERM, exit 1 if draining takes longer than this"},
};

typedef struct daemon_state {
  uv_loop_t *loop;
  gw_log *log;
  gw_ingest *ingest;
  uv_signal_t sigterm, sigint;
  uv_timer_t grace;
  uint64_t grace_ms;
  bool stopping;
  bool drained;
} daemon_state;

static void on_drained(void *opaque) {
  daemon_state *d = opaque;
  d->drained = true;
  d->ingest = NULL;
  uv_timer_stop(&d->grace);
  uv_close((uv_handle_t *)&d->grace, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_grace_expired(uv_timer_t *t) {
  daemon_state *d = t->data;
  GW_LOG(d->log, GW_LOG_ERROR, "drain did not finish within the shutdown grace; exiting",
         GW_LI("grace_ms", d->grace_ms));
  exit(1);
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_state *d = h->data;
  if (d->stopping) {
    GW_LOG(d->log, GW_LOG_WARN, "second signal during drain; exiting now", GW_LI("signal", signum));
    exit(1);
  }
  d->stopping = true;
  GW_LOG(d->log, GW_LOG_INFO, "draining", GW_LI("signal", signum), GW_LI("grace_ms", d->grace_ms));
  uv_timer_start(&d->grace, on_grace_expired, d->grace_ms, 0);
  gw_ingest_stop(d->ingest, on_drained, d);
}

int main(int argc, char **argv) {
  extern char **environ;
  ingest_flags fl;
  memset(&fl, 0, sizeof(fl));
  gw_config_values values = {0};
  char err[512];
  size_t nkeys = sizeof(ingest_keys) / sizeof(ingest_keys[0]);
  int rc = gw_config_load(ingest_keys, nkeys, &fl, &values, argc, argv, environ, err, sizeof(err));
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-ingest",
                    "Accepts interaction events over HTTP and writes them to Kafka.", ingest_keys,
                    nkeys, stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-ingest: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  gw_log_level level;
  if (gw_log_level_parse(fl.log_level, &level) != 0) {
    fprintf(stderr, "goodwill-ingest: --log-level: unknown level \"%s\" (debug|info|warn|error)\n",
            fl.log_level);
    gw_config_free(&values);
    return 2;
  }
  gw_log log;
  gw_log_init(&log, "ingest", level);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_metrics *metrics = NULL;
  if (gw_metrics_new(&metrics) != 0) {
    return 1;
  }

  gw_ingest_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.listen_host = fl.listen_host;
  cfg.listen_port = (int)fl.listen_port;
  cfg.admin_host = fl.admin_host;
  cfg.admin_port = (int)fl.admin_port;
  cfg.max_body_bytes = (size_t)fl.max_body;
  cfg.max_connections = (size_t)fl.max_connections;
  cfg.request_timeout_ms = (uint64_t)fl.request_timeout_ms;
  gw_event_limits_default(&cfg.limits);
  cfg.limits.max_events = (size_t)fl.max_events;
  cfg.limits.max_turns = (size_t)fl.max_turns;
  cfg.limits.max_text_bytes = (size_t)fl.max_text;
  cfg.producer.bootstrap = fl.kafka_bootstrap;
  cfg.producer.properties = (const char *const *)fl.kafka_property.items;
  cfg.producer.nproperties = fl.kafka_property.count;
  cfg.producer.linger_ms = 5;
  cfg.producer.log = &log;
  cfg.produce_timeout_ms = (uint64_t)fl.produce_timeout_ms;
  cfg.log = &log;
  cfg.metrics = metrics;

  daemon_state d;
  memset(&d, 0, sizeof(d));
  d.loop = &loop;
  d.log = &log;
  d.grace_ms = (uint64_t)fl.shutdown_grace_ms;
  rc = gw_ingest_start(&loop, &cfg, &d.ingest);
  if (rc != 0) {
    GW_LOG(&log, GW_LOG_ERROR, "ingest could not start", GW_LS("reason", uv_strerror(rc)));
    uv_run(&loop, UV_RUN_DEFAULT); /* lets a partly started ingest close its handles */
    uv_loop_close(&loop);
    gw_metrics_free(metrics);
    gw_config_free(&values);
    return 1;
  }
  GW_LOG(&log, GW_LOG_INFO, "listening", GW_LI("port", gw_ingest_port(d.ingest)),
         GW_LI("admin_port", gw_ingest_admin_port(d.ingest)), GW_LS("host", fl.listen_host),
         GW_LS("kafka_bootstrap", fl.kafka_bootstrap));

  uv_timer_init(&loop, &d.grace);
  d.grace.data = &d;
  uv_signal_init(&loop, &d.sigterm);
  uv_signal_init(&loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);

  int exit_code = d.drained ? 0 : 1;
  if (uv_loop_close(&loop) != 0) {
    GW_LOG(&log, GW_LOG_WARN, "loop closed with handles still open");
  }
  gw_metrics_free(metrics);
  gw_config_free(&values);
  GW_LOG(&log, GW_LOG_INFO, "stopped", GW_LI("exit_code", exit_code));
  return exit_code;
}
