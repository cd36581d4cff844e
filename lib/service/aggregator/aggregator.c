/*
 * goodwill-aggregator (goodwill/aggregator.h): the wiring of its four components, each a file
 * of this folder with a private header saying what it holds:
 *   apply.c         Kafka consumer, batches per team, the Lua apply, offsets, DLQ
 *   read_api.c      the read API's listener, routes, tokens, answers, its own /readyz
 *   team_metrics.c  the per-team gauges on /metrics
 *   read_path.c     the reads over Redis that read_api.c and team_metrics.c share
 * This file owns what they share: the configuration, the metrics registry (and the
 * goodwill_aggregator_redis_errors_total counter the applier and the read API both count in),
 * the two Redis clients (one for the applier, one for the read path: a slow or heavy read can
 * never hold back an apply), the admin port with the daemon's /readyz, and start, stop
 * (drain, grace) and close. The mode leaves the applier (read) or the read API and the gauges
 * (apply) out: their pointers are then NULL. Loop thread only.
 */
#include "goodwill/aggregator.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "goodwill/admin.h"
#include "goodwill/aggregates.h"
#include "goodwill/build_info.h"
#include "goodwill/metrics.h"
#include "goodwill/redis.h"
#include "read_api.h"
#include "read_path.h"
#include "team_metrics.h"

struct gw_aggregator {
  uv_loop_t *loop;
  gw_aggregator_config cfg; /* normalised copy; its strings are the caller's */
  gw_agg_horizon horizon;   /* cfg.horizon's copy, or the defaults */
  const gw_log *log;
  gw_metrics *metrics;
  gw_metric *m_redis_errors; /* given to the applier and the read API */
  gw_redis *redis_apply;     /* NULL in read mode */
  gw_redis *redis_read;      /* NULL in apply mode */
  char *redis_storage;
  gw_admin *admin;
  uv_timer_t grace;
  bool grace_init;

  gw_agg_read_path *read_path;
  gw_agg_applier *applier;
  gw_agg_read_api *read_api;
  gw_agg_team_metrics *team_metrics;

  bool stopping;
  bool closing;
  int stop_status;
  int handles_open;
  void (*done)(void *opaque, int status);
  void *done_opaque;
};

static const gw_metric_spec aggregator_metrics[] = {
    GW_METRIC_SERIES(gw_aggregator, m_redis_errors,
                     .name = "goodwill_aggregator_redis_errors_total",
                     .help = "Failed Redis calls (timeouts, broken connections, error replies).",
                     .type = GW_METRIC_COUNTER),
};

/* ------------------------------------------------------------------ readiness */

/* The admin port's /readyz: the daemon's readiness (consuming needs both Kafka and Redis).
 * The read API answers its own /readyz (read_api.h). */
int gw_aggregator_mode_parse(const char *s, gw_aggregator_mode *out) {
  static const char *const names[] = {"all", "apply", "read"};
  for (int i = 0; i < 3; i++) {
    if (s != NULL && strcmp(s, names[i]) == 0) {
      *out = (gw_aggregator_mode)i;
      return 0;
    }
  }
  return -EINVAL;
}

static bool ready_cb(void *opaque, char *reason, size_t reason_len) {
  gw_aggregator *a = opaque;
  if ((a->redis_apply != NULL && !gw_redis_connected(a->redis_apply)) ||
      (a->redis_read != NULL && !gw_redis_connected(a->redis_read))) {
    snprintf(reason, reason_len, "redis not connected");
    return false;
  }
  const char *fatal = a->applier != NULL ? gw_agg_applier_fatal(a->applier) : NULL;
  if (fatal != NULL) {
    snprintf(reason, reason_len, "kafka fatal error: %s", fatal);
    return false;
  }
  if (a->applier != NULL && !gw_agg_applier_assigned(a->applier)) {
    snprintf(reason, reason_len, "kafka consumer not assigned");
    return false;
  }
  if (a->stopping) {
    snprintf(reason, reason_len, "stopping");
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------ stop and close */

/* What start made before anything was on the loop, or everything once all is closed. */
static void aggregator_free(gw_aggregator *a) {
  gw_agg_applier_free(a->applier);
  gw_agg_read_api_free(a->read_api);
  gw_agg_team_metrics_free(a->team_metrics);
  gw_agg_read_path_free(a->read_path);
  gw_metrics_free(a->metrics);
  free(a->redis_storage);
  free(a);
}

static void finish(gw_aggregator *a) {
  void (*done)(void *, int) = a->done;
  void *opaque = a->done_opaque;
  int status = a->stop_status;
  aggregator_free(a);
  if (done)
    done(opaque, status);
}

static void one_closed(void *opaque) {
  gw_aggregator *a = opaque;
  if (--a->handles_open == 0)
    finish(a);
}

static void grace_closed(uv_handle_t *h) {
  one_closed(h->data);
}

static void apply_redis_closed(void *opaque) {
  gw_aggregator *a = opaque;
  /* Then the DLQ producer and the consumer, whose close commits the offsets stored. */
  if (a->applier != NULL)
    gw_agg_applier_close(a->applier, one_closed, a);
  else
    one_closed(a);
}

/* Closes everything; each part calls one_closed once. The applier stops sending and Redis
 * closes first (batches still in flight fail and stay uncommitted, to be replayed), then the
 * applier's DLQ producer and consumer. Every component is freed only at the end, since Redis's
 * last callbacks may still reach the read API and the per-team gauges. */
static size_t pending(const gw_aggregator *a) {
  return a->applier != NULL ? gw_agg_applier_pending(a->applier) : 0;
}

static void close_all(gw_aggregator *a) {
  a->closing = true;
  if (a->applier != NULL && !gw_agg_applier_drained(a->applier))
    a->stop_status = -ETIMEDOUT;
  GW_LOG(a->log, GW_LOG_INFO, "closing", GW_LI("pending", pending(a)));
  a->handles_open = 1; /* held until every close below is started */
  if (a->grace_init) {
    a->handles_open++;
    uv_close((uv_handle_t *)&a->grace, grace_closed);
  }
  if (a->team_metrics != NULL) {
    a->handles_open++;
    gw_agg_team_metrics_close(a->team_metrics, one_closed, a);
  }
  if (a->admin) {
    a->handles_open++;
    gw_admin_close(a->admin, one_closed, a);
  }
  if (a->read_api != NULL) {
    a->handles_open++;
    gw_agg_read_api_close(a->read_api, one_closed, a);
  }
  if (a->applier != NULL)
    gw_agg_applier_halt(a->applier);
  a->handles_open++; /* the apply redis -> applier chain */
  if (a->redis_apply)
    gw_redis_close(a->redis_apply, apply_redis_closed, a);
  else
    apply_redis_closed(a);
  if (a->redis_read) {
    a->handles_open++;
    gw_redis_close(a->redis_read, one_closed, a);
  }
  one_closed(a);
}

/* A Kafka client failed for good: the owner drains and exits non-zero (see aggregator.h). */
static void on_applier_fatal(void *opaque, const char *reason) {
  gw_aggregator *a = opaque;
  if (a->cfg.on_fatal)
    a->cfg.on_fatal(a->cfg.fatal_opaque, reason);
}

static void on_drained(void *opaque) {
  gw_aggregator *a = opaque;
  if (!a->closing)
    close_all(a);
}

static void on_grace(uv_timer_t *h) {
  gw_aggregator *a = h->data;
  if (!a->closing) {
    GW_LOG(a->log, GW_LOG_WARN, "shutdown grace over with records pending; they will be replayed",
           GW_LI("pending", pending(a)));
    close_all(a);
  }
}

void gw_aggregator_stop(gw_aggregator *a, void (*done)(void *opaque, int status), void *opaque) {
  if (a->stopping)
    return;
  a->stopping = true;
  a->done = done;
  a->done_opaque = opaque;
  GW_LOG(a->log, GW_LOG_INFO, "stopping", GW_LI("pending", pending(a)));
  if (a->read_api != NULL)
    gw_agg_read_api_stop(a->read_api);
  if (a->team_metrics != NULL)
    gw_agg_team_metrics_stop(a->team_metrics);
  uv_timer_start(&a->grace, on_grace, a->cfg.shutdown_grace_ms, 0);
  if (a->applier != NULL)
    gw_agg_applier_drain(a->applier);
  if (a->applier == NULL || gw_agg_applier_drained(a->applier))
    close_all(a);
}

/* ------------------------------------------------------------------ start */

int gw_aggregator_api_port(const gw_aggregator *a) {
  return a->read_api != NULL ? gw_agg_read_api_port(a->read_api) : -1;
}

int gw_aggregator_admin_port(const gw_aggregator *a) {
  return gw_admin_port(a->admin);
}

int gw_aggregator_reload_tokens(gw_aggregator *a) {
  return a->read_api != NULL ? gw_agg_read_api_reload_tokens(a->read_api) : -ENOTSUP;
}

/* The components as objects, before anything is on the loop: a failure here (a refused
 * authentication mode or tokens file above all) leaves nothing to close. */
static int create_components(gw_aggregator *a) {
  const gw_aggregator_config *cfg = &a->cfg;
  int rc = gw_metrics_new(&a->metrics);
  if (rc < 0)
    return rc;
  rc = gw_metrics_register_all(a->metrics, aggregator_metrics,
                               sizeof(aggregator_metrics) / sizeof(aggregator_metrics[0]), a, NULL);
  if (rc == 0)
    rc = gw_build_info_register(a->metrics, NULL);
  if (rc < 0)
    return rc;
  bool reads = cfg->mode != GW_AGGREGATOR_APPLY, applies = cfg->mode != GW_AGGREGATOR_READ;
  gw_agg_applier_config acfg = {
      .loop = a->loop,
      .log = a->log,
      .metrics = a->metrics,
      .redis_errors = a->m_redis_errors,
      .kafka_bootstrap = cfg->kafka_bootstrap,
      .kafka_properties = cfg->kafka_properties,
      .nkafka_properties = cfg->nkafka_properties,
      .group = cfg->group,
      .session_timeout_ms = cfg->session_timeout_ms,
      .flush_interval_ms = cfg->flush_interval_ms,
      .verify_interval_ms = cfg->verify_interval_ms,
      .max_batch = cfg->max_batch,
      .max_pending = cfg->max_pending,
      .horizon = a->horizon,
      .drained = on_drained,
      .fatal = on_applier_fatal,
      .opaque = a,
  };
  if (applies && (rc = gw_agg_applier_new(&a->applier, &acfg)) < 0)
    return rc;
  gw_agg_read_api_config rcfg = {
      .loop = a->loop,
      .log = a->log,
      .metrics = a->metrics,
      .redis_errors = a->m_redis_errors,
      .host = cfg->api_host,
      .port = cfg->api_port,
      .tokens_file = cfg->tokens_file,
      .dev_mode = cfg->dev_mode,
      .rate_limit_per_s = cfg->read_rate_limit_per_s,
      .rate_burst = cfg->read_rate_burst,
  };
  if (!reads)
    return 0;
  if ((rc = gw_agg_read_api_new(&a->read_api, &rcfg)) < 0)
    return rc;
  gw_agg_team_metrics_config tcfg = {
      .loop = a->loop,
      .log = a->log,
      .metrics = a->metrics,
      .max = cfg->team_metrics_max,
      .interval_ms = cfg->team_metrics_interval_ms,
  };
  return gw_agg_team_metrics_new(&a->team_metrics, &tcfg);
}

/* The first line of path (without its line end) into out; the secret is never logged. */
static int read_password(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -EINVAL;
  }
  size_t n = fread(out, 1, outlen - 1, f);
  bool more = fgetc(f) != EOF;
  fclose(f);
  out[n] = '\0';
  out[strcspn(out, "\r\n")] = '\0';
  if (more && n == outlen - 1) {
    snprintf(err, errlen, "%s: longer than %zu bytes", path, outlen - 1);
    return -EINVAL;
  }
  if (out[0] == '\0') {
    snprintf(err, errlen, "%s: empty", path);
    return -EINVAL;
  }
  return 0;
}

/* One Redis client of the aggregator, with its own command budget and timeout. */
static int open_redis(gw_aggregator *a, const char *role, size_t max_in_flight, uint64_t timeout_ms,
                      gw_redis **out) {
  char err[512];
  gw_redis_config rcfg = {0};
  free(a->redis_storage);
  a->redis_storage = NULL;
  int rc = gw_redis_parse_url(a->cfg.redis_url, &rcfg, &a->redis_storage, err, sizeof(err));
  if (rc < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "invalid --redis-url", GW_LS("error", err));
    return rc;
  }
  char password[4096];
  if (a->cfg.redis_password_file != NULL && a->cfg.redis_password_file[0] != '\0') {
    if ((rc = read_password(a->cfg.redis_password_file, password, sizeof password, err,
                            sizeof err)) < 0) {
      GW_LOG(a->log, GW_LOG_ERROR, "invalid --redis-password-file", GW_LS("error", err));
      return rc;
    }
    rcfg.password = password;
  }
  rcfg.connect_timeout_ms = 2000;
  rcfg.command_timeout_ms = timeout_ms;
  rcfg.reconnect_min_ms = 100;
  rcfg.reconnect_max_ms = 5000;
  rcfg.max_in_flight = max_in_flight;
  rcfg.log = a->log;
  if ((rc = gw_redis_new(out, a->loop, &rcfg)) < 0)
    GW_LOG(a->log, GW_LOG_ERROR, "redis client", GW_LS("role", role), GW_LI("error", rc));
  return rc;
}

int gw_aggregator_start(uv_loop_t *loop, const gw_aggregator_config *cfg, gw_aggregator **out) {
  *out = NULL;
  gw_agg_horizon horizon;
  if (cfg->horizon != NULL)
    horizon = *cfg->horizon;
  else
    gw_agg_horizon_default(&horizon);
  char herr[256];
  if (gw_agg_horizon_check(&horizon, herr, sizeof(herr)) != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid dedupe horizon", GW_LS("reason", herr));
    return -EINVAL;
  }
  gw_aggregator *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return -ENOMEM;
  a->loop = loop;
  a->cfg = *cfg;
  a->horizon = horizon;
  a->cfg.horizon = &a->horizon;
  a->log = cfg->log;
  if (a->cfg.max_batch == 0 || a->cfg.max_batch > GW_AGG_BATCH_MAX)
    a->cfg.max_batch = GW_AGG_BATCH_MAX;
  if (a->cfg.max_pending == 0)
    a->cfg.max_pending = 1;
  if (a->cfg.flush_interval_ms == 0)
    a->cfg.flush_interval_ms = 1;
  if (a->cfg.team_metrics_interval_ms == 0)
    a->cfg.team_metrics_interval_ms = 30000;
  if (a->cfg.apply_max_in_flight == 0)
    a->cfg.apply_max_in_flight = 1024;
  if (a->cfg.read_max_in_flight == 0)
    a->cfg.read_max_in_flight = 256;
  if (a->cfg.apply_timeout_ms == 0)
    a->cfg.apply_timeout_ms = 5000;
  if (a->cfg.read_timeout_ms == 0)
    a->cfg.read_timeout_ms = 5000;
  if (a->cfg.mode > GW_AGGREGATOR_READ)
    return -EINVAL;
  int rc = create_components(a);
  if (rc < 0) {
    aggregator_free(a);
    return rc;
  }

  /* From here on parts are on the loop: a failure closes them (close_all). */
  uv_timer_init(loop, &a->grace);
  a->grace.data = a;
  a->grace_init = true;
  if ((a->applier != NULL && (rc = open_redis(a, "apply", a->cfg.apply_max_in_flight,
                                              a->cfg.apply_timeout_ms, &a->redis_apply)) < 0) ||
      (a->read_api != NULL && (rc = open_redis(a, "read", a->cfg.read_max_in_flight,
                                               a->cfg.read_timeout_ms, &a->redis_read)) < 0))
    goto fail;
  if (a->applier != NULL && (rc = gw_agg_applier_start(a->applier, a->redis_apply)) < 0)
    goto fail;
  if (a->read_api != NULL) {
    if ((rc = gw_agg_read_path_new(&a->read_path, a->redis_read)) < 0 ||
        (rc = gw_agg_read_api_start(a->read_api, a->read_path)) < 0)
      goto fail;
    gw_agg_team_metrics_start(a->team_metrics, a->read_path);
  }
  gw_admin_config admin_cfg = {cfg->admin_host, cfg->admin_port, a->metrics, cfg->log, ready_cb, a};
  if ((rc = gw_admin_start(&a->admin, loop, &admin_cfg)) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "admin listen failed", GW_LS("host", cfg->admin_host),
           GW_LI("port", cfg->admin_port), GW_LI("error", rc));
    goto fail;
  }
  static const char *const mode_names[] = {"all", "apply", "read"};
  GW_LOG(a->log, GW_LOG_INFO, "listening", GW_LS("mode", mode_names[cfg->mode]),
         GW_LS("api_host", cfg->api_host), GW_LI("api_port", gw_aggregator_api_port(a)),
         GW_LS("admin_host", cfg->admin_host), GW_LI("admin_port", gw_admin_port(a->admin)));
  *out = a;
  return 0;

fail:
  /* Torn down on the loop; nobody is told (the caller has the error). */
  a->stopping = true;
  a->done = NULL;
  close_all(a);
  return rc < 0 ? rc : -EINVAL;
}
