/*
 * goodwill-ingest: POST /v1/events -> Kafka goodwill.interactions.v1, answered after Kafka
 * acknowledged (the work is in lib/service/ingest.c). This file describes the flags and GOODWILL_*
 * variables and how to start and drain the ingest; services/daemon.c runs it and turns SIGTERM /
 * SIGINT into a drain: exit 0 when the drain finished, exit 1 when it did not within
 * --shutdown-grace (or on a second signal). A fatal Kafka error starts the same drain and
 * exits 1; a refused configuration (e.g. a protected --kafka-property) exits 2 at start. SIGHUP
 * reloads the tokens file (--tokens-file); `goodwill-ingest --hash-token` prints the SHA-256 of a
 * token read from stdin, for that file.
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "daemon.h"
#include "goodwill/auth.h"
#include "goodwill/config.h"
#include "goodwill/event.h"
#include "goodwill/ingest.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "goodwill/sha256.h"

#define GW_STRINGIFY_(x) #x
#define GW_STRINGIFY(x)  GW_STRINGIFY_(x)

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
  long long rate_limit;
  long long rate_burst;
  long long max_header;
  char *tokens_file;
  bool dev_mode;
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
    /* These two may only tighten the hard bounds of goodwill/event.h, which the scorer
     * validates with: their maxima are those bounds. */
    {"max-turns", GW_CONF_INT, GW_STRINGIFY(GW_EVENT_MAX_TURNS), 1, GW_EVENT_MAX_TURNS,
     offsetof(ingest_flags, max_turns),
     "most turns in one transcript (at most the hard bound every stage accepts)"},
    {"max-text", GW_CONF_SIZE, GW_STRINGIFY(GW_EVENT_MAX_TEXT_BYTES), 16, GW_EVENT_MAX_TEXT_BYTES,
     offsetof(ingest_flags, max_text),
     "largest text of one turn or comment, in bytes (at most the hard bound every stage "
     "accepts)"},
    {"produce-timeout", GW_CONF_DURATION, "30s", 100, 3600000,
     offsetof(ingest_flags, produce_timeout_ms),
     "an event not acknowledged by Kafka in time fails its request with 503"},
    {"max-connections", GW_CONF_INT, "1024", 1, 1000000, offsetof(ingest_flags, max_connections),
     "open API connections (503 past it)"},
    {"request-timeout", GW_CONF_DURATION, "30s", 100, 3600000,
     offsetof(ingest_flags, request_timeout_ms),
     "a request must arrive within this (408), also the keep-alive idle limit"},
    {"max-header", GW_CONF_SIZE, "16KiB", 1024, 1LL << 20, offsetof(ingest_flags, max_header),
     "largest request head: request line and headers (431 past it)"},
    {"tokens-file", GW_CONF_STRING, NULL, 0, 0, offsetof(ingest_flags, tokens_file),
     "bearer tokens: lines <sha256-hex>TAB<tenant>[TAB<comment>]; reloaded on SIGHUP"},
    {"dev-mode", GW_CONF_BOOL, "false", 0, 0, offsetof(ingest_flags, dev_mode),
     "no authentication, any tenant (demos only; the daemon needs this or --tokens-file)"},
    {"rate-limit", GW_CONF_INT, "0", 0, 100000000, offsetof(ingest_flags, rate_limit),
     "events per second per tenant (token); a tenant over it gets 429 with Retry-After; "
     "0: no limit"},
    {"rate-burst", GW_CONF_INT, "0", 0, 1000000000, offsetof(ingest_flags, rate_burst),
     "a tenant's bucket, in events: what it may send at once before --rate-limit applies (0: two "
     "seconds of --rate-limit)"},
    {"shutdown-grace", GW_CONF_DURATION, "20s", 0, 3600000,
     offsetof(ingest_flags, shutdown_grace_ms),
     "after SIGTERM, exit 1 if draining takes longer than this"},
};

typedef struct ingest_app {
  gw_metrics *metrics;
  gw_ingest *ingest;
  uv_signal_t sighup;
  bool sighup_open;
} ingest_app;

static void on_sighup(uv_signal_t *h, int signum) {
  gw_daemon *d = h->data;
  ingest_app *app = d->app;
  GW_LOG(&d->log, GW_LOG_INFO, "reloading the tokens file", GW_LI("signal", signum));
  if (app->ingest != NULL) {
    (void)gw_ingest_reload_tokens(app->ingest); /* logs the outcome */
  }
}

static int start_ingest(gw_daemon *d) {
  const ingest_flags *fl = d->flags;
  ingest_app *app = d->app;
  int rc = gw_metrics_new(&app->metrics);
  if (rc != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot create the metrics registry", GW_LI("error", rc));
    return rc;
  }
  gw_ingest_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.listen_host = fl->listen_host;
  cfg.listen_port = (int)fl->listen_port;
  cfg.admin_host = fl->admin_host;
  cfg.admin_port = (int)fl->admin_port;
  cfg.max_body_bytes = (size_t)fl->max_body;
  cfg.max_connections = (size_t)fl->max_connections;
  cfg.max_header_bytes = (size_t)fl->max_header;
  cfg.tokens_file = fl->tokens_file;
  cfg.dev_mode = fl->dev_mode;
  cfg.rate_limit_per_s = (double)fl->rate_limit;
  cfg.rate_burst = (double)fl->rate_burst;
  cfg.request_timeout_ms = (uint64_t)fl->request_timeout_ms;
  gw_event_limits_default(&cfg.limits);
  cfg.limits.max_events = (size_t)fl->max_events;
  cfg.limits.max_turns = (size_t)fl->max_turns;
  cfg.limits.max_text_bytes = (size_t)fl->max_text;
  cfg.producer.bootstrap = fl->kafka_bootstrap;
  cfg.producer.properties = (const char *const *)fl->kafka_property.items;
  cfg.producer.nproperties = fl->kafka_property.count;
  /* Every answer waits for its events' acknowledgement, so the time records linger in the
   * producer is time every client waits: 2 ms instead of librdkafka's 5 gave ~15% more
   * single-event requests/s on 256 keep-alive connections at ~7% more CPU per event, with
   * NDJSON batches unchanged (docs/BENCHMARKS.md). --kafka-property linger.ms=N overrides. */
  cfg.producer.linger_ms = 2;
  cfg.producer.log = &d->log;
  cfg.produce_timeout_ms = (uint64_t)fl->produce_timeout_ms;
  cfg.log = &d->log;
  cfg.metrics = app->metrics;
  /* A fatal Kafka error: not ready, drain, exit 1. */
  cfg.on_fatal = gw_daemon_fail;
  cfg.fatal_opaque = d;

  rc = gw_ingest_start(&d->loop, &cfg, &app->ingest);
  if (rc != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "ingest could not start", GW_LS("reason", uv_strerror(rc)));
    return rc;
  }
  GW_LOG(&d->log, GW_LOG_INFO, "listening", GW_LI("port", gw_ingest_port(app->ingest)),
         GW_LI("admin_port", gw_ingest_admin_port(app->ingest)), GW_LS("host", fl->listen_host),
         GW_LS("kafka_bootstrap", fl->kafka_bootstrap));
  uv_signal_init(&d->loop, &app->sighup);
  app->sighup.data = d;
  uv_signal_start(&app->sighup, on_sighup, SIGHUP);
  app->sighup_open = true;
  return 0;
}

static void on_drained(void *opaque) {
  gw_daemon *d = opaque;
  ingest_app *app = d->app;
  app->ingest = NULL;
  gw_daemon_stopped(d);
}

static void stop_ingest(gw_daemon *d) {
  ingest_app *app = d->app;
  if (app->sighup_open) {
    app->sighup_open = false;
    uv_close((uv_handle_t *)&app->sighup, NULL);
  }
  gw_ingest_stop(app->ingest, on_drained, d);
}

static void finish_ingest(gw_daemon *d) {
  GW_LOG(&d->log, GW_LOG_INFO, "stopped", GW_LI("exit_code", d->exit_code));
}

static const gw_daemon_def ingest_daemon = {
    .program = "goodwill-ingest",
    .component = "ingest",
    .summary = "Accepts interaction events over HTTP and writes them to Kafka.\n"
               "`goodwill-ingest --hash-token < token.txt` prints the SHA-256 of a token (one "
               "trailing newline is ignored) for --tokens-file.",
    .keys = ingest_keys,
    .nkeys = sizeof(ingest_keys) / sizeof(ingest_keys[0]),
    .log_level_offset = offsetof(ingest_flags, log_level),
    .stop_message = "draining",
    .exit_on_grace = true,
    .shutdown_grace_offset = offsetof(ingest_flags, shutdown_grace_ms),
    .start = start_ingest,
    .stop = stop_ingest,
    .finish = finish_ingest,
};

/* --hash-token: the token on stdin (one trailing newline dropped, so `echo` works too) to its
 * SHA-256 in hex, as the tokens file wants it. The token is not echoed anywhere. */
static int hash_token(void) {
  char token[GW_AUTH_MAX_TOKEN_BYTES + 2];
  size_t n = fread(token, 1, sizeof(token), stdin);
  if (n > 0 && token[n - 1] == '\n') {
    n--;
    if (n > 0 && token[n - 1] == '\r') {
      n--;
    }
  }
  if (n == 0 || n > GW_AUTH_MAX_TOKEN_BYTES) {
    fprintf(stderr, "goodwill-ingest --hash-token: the token on stdin must have 1..%u bytes\n",
            GW_AUTH_MAX_TOKEN_BYTES);
    return 2;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] == 0x7f) {
      fprintf(stderr, "goodwill-ingest --hash-token: the token may not hold spaces or control "
                      "characters (it travels in an Authorization header)\n");
      return 2;
    }
  }
  char hex[GW_SHA256_HEX_LEN + 1];
  gw_sha256_hex(token, n, hex);
  memset(token, 0, sizeof(token));
  printf("%s\n", hex);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--hash-token") == 0) {
    return hash_token();
  }
  ingest_flags fl;
  memset(&fl, 0, sizeof(fl));
  ingest_app app;
  memset(&app, 0, sizeof(app));
  int exit_code = gw_daemon_main(argc, argv, &ingest_daemon, &fl, &app);
  /* After the loop closed: nothing renders the ingest's metrics any more. */
  gw_metrics_free(app.metrics);
  return exit_code;
}
