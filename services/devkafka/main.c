/*
 * goodwill-devkafka: an embedded Kafka-protocol cluster (librdkafka's mock cluster) with the
 * goodwill topics, for local stacks and tests. Any Kafka client can connect over TCP.
 *
 * The bootstrap list goes to --bootstrap-file (written atomically, temp file + rename, once
 * the brokers listen, so scripts can wait for the file to appear) or, without it, to stdout
 * as one line. Runs (services/daemon.c) until SIGTERM or SIGINT, then stops the cluster and
 * exits 0.
 *
 * The mock cluster keeps at most 5 MiB or 100,000 record batches per partition and drops the
 * oldest beyond that, silently. So every --watch-interval this program asks each partition's
 * watermarks: when the low one moved up, the records below it were dropped, which it logs as an
 * error (topic, partition, offsets, count) and counts in
 * goodwill_devkafka_records_dropped_total{topic,partition}; a partition that comes near the limit
 * (80% of either, its bytes estimated from the mock's account of appends) is warned about once.
 * With --admin-port, /metrics shows those counts and the partitions' records and estimated
 * bytes, and POST /faults/request-errors?api=Produce&error=NAME&count=N makes the next N
 * requests of that API fail with that Kafka error (gw_devkafka_push_request_errors), for tests;
 * with &broker=B&delay_ms=D only requests to broker B, answered D ms late
 * (gw_devkafka_push_broker_request_error). POST /faults/broker?id=B&state=down|up takes a
 * broker down or up, POST /faults/leader?topic=T&partition=P&broker=B moves a partition's
 * leadership (the fault matrix of docs/RELIABILITY.md).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "devkafka.h"
#include "goodwill/admin.h"
#include "goodwill/buf.h"
#include "goodwill/config.h"
#include "goodwill/http.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"

/* A partition at this share of either limit is warned about (once, until it falls below
 * GW_DEVKAFKA_REARM_SHARE). */
#define GW_DEVKAFKA_WARN_SHARE  0.8
#define GW_DEVKAFKA_REARM_SHARE 0.5
/* How long one watermark query may take. */
#define GW_DEVKAFKA_QUERY_TIMEOUT_MS 2000

typedef struct devkafka_config {
  long long brokers;
  long long partitions;
  char *bootstrap_file;
  char *log_level;
  char *admin_host;
  long long admin_port;
  long long watch_interval_ms;
} devkafka_config;

/* One partition as last seen by the watch. */
typedef struct watched {
  int64_t low; /* the low watermark last seen (0 at start: the topics are created empty) */
  bool near_limit_warned;
  gw_metric *m_dropped, *m_records, *m_bytes;
} watched;

typedef struct devkafka_app {
  gw_devkafka *dk;
  gw_metrics *metrics;
  gw_admin *admin;
  uv_timer_t timer;
  bool timer_open;
  uv_work_t work;
  bool sampling; /* the work runs: its result goes to on_sampled */
  gw_devkafka_partition *sample;
  int sample_rc;
  watched *parts; /* gw_devkafka_npartitions of them */
  size_t nparts;
  bool estimate_missing_logged;
  gw_metric_family *m_dropped, *m_records, *m_bytes;
  gw_daemon *d;
} devkafka_app;

static const gw_config_key devkafka_keys[] = {
    {"brokers", GW_CONF_INT, "3", 1, 9, offsetof(devkafka_config, brokers),
     "number of brokers (ids 1..N), all on 127.0.0.1"},
    {"partitions", GW_CONF_INT, "6", 1, 1000, offsetof(devkafka_config, partitions),
     "partitions of each goodwill topic"},
    {"bootstrap-file", GW_CONF_STRING, "", 0, 0, offsetof(devkafka_config, bootstrap_file),
     "write the bootstrap list here (atomically); empty: print it on stdout"},
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(devkafka_config, log_level),
     "debug | info | warn | error"},
    {"admin-host", GW_CONF_STRING, "127.0.0.1", 1, 0, offsetof(devkafka_config, admin_host),
     "address of the admin port"},
    {"admin-port", GW_CONF_INT, "-1", -1, 65535, offsetof(devkafka_config, admin_port),
     "admin port: /metrics (records dropped, partition sizes), /healthz, /readyz and POST "
     "/faults/request-errors, /faults/broker, /faults/leader for tests (-1: none; 0: any free "
     "port, logged as admin_port)"},
    {"watch-interval", GW_CONF_DURATION, "1s", 50, 60000,
     offsetof(devkafka_config, watch_interval_ms),
     "how often every partition's watermarks are checked for dropped records"},
};

/* ------------------------------------------------------------------ the watch */

static void on_watch_tick(uv_timer_t *t);

/* Thread pool: the watermark queries block. */
static void sample_work(uv_work_t *w) {
  devkafka_app *app = w->data;
  app->sample_rc = gw_devkafka_sample(app->dk, app->sample, GW_DEVKAFKA_QUERY_TIMEOUT_MS);
}

/* Compares one partition's sample with what was seen before: drops, size, nearness. */
static void check_partition(devkafka_app *app, watched *w, const gw_devkafka_partition *p) {
  gw_daemon *d = app->d;
  if (p->low < 0 || p->high < 0) {
    return; /* that query failed; the next one will tell */
  }
  if (p->low > w->low) {
    long long n = (long long)(p->low - w->low);
    GW_LOG(&d->log, GW_LOG_ERROR,
           "records dropped: the partition was full (the mock cluster keeps 5 MiB or 100000 "
           "batches per partition); a consumer that had not read them has lost them",
           GW_LS("topic", p->topic), GW_LI("partition", p->partition),
           GW_LI("first_offset", w->low), GW_LI("last_offset", p->low - 1), GW_LI("count", n));
    gw_metric_add(w->m_dropped, (double)n);
    w->low = p->low;
  }
  double records = (double)(p->high - p->low);
  double bytes = p->appended_records > 0
                     ? records * (double)p->appended_bytes / (double)p->appended_records
                     : 0.0;
  gw_metric_set(w->m_records, records);
  gw_metric_set(w->m_bytes, bytes);
  /* Batches hold one record or more, so the records are an upper bound of the batches. */
  double share = bytes / GW_DEVKAFKA_PARTITION_MAX_BYTES;
  if (records / GW_DEVKAFKA_PARTITION_MAX_BATCHES > share) {
    share = records / GW_DEVKAFKA_PARTITION_MAX_BATCHES;
  }
  if (share >= GW_DEVKAFKA_WARN_SHARE && !w->near_limit_warned) {
    w->near_limit_warned = true;
    GW_LOG(&d->log, GW_LOG_WARN,
           "partition nearly full: beyond 5 MiB or 100000 batches its oldest records are dropped",
           GW_LS("topic", p->topic), GW_LI("partition", p->partition),
           GW_LI("records", (long long)records), GW_LI("bytes_estimate", (long long)bytes),
           GW_LI("max_bytes", GW_DEVKAFKA_PARTITION_MAX_BYTES),
           GW_LI("max_batches", GW_DEVKAFKA_PARTITION_MAX_BATCHES));
  } else if (share < GW_DEVKAFKA_REARM_SHARE) {
    w->near_limit_warned = false;
  }
}

static void sample_done(uv_work_t *w, int status) {
  devkafka_app *app = w->data;
  app->sampling = false;
  if (status != 0 || app->sample_rc != 0 || !app->timer_open) {
    return; /* stopping, or the cluster did not answer: the next tick asks again */
  }
  bool appended = false, estimated = false;
  for (size_t i = 0; i < app->nparts; i++) {
    check_partition(app, &app->parts[i], &app->sample[i]);
    appended |= app->sample[i].high > 0;
    estimated |= app->sample[i].appended_records > 0;
  }
  if (appended && !estimated && !app->estimate_missing_logged) {
    app->estimate_missing_logged = true;
    GW_LOG(&app->d->log, GW_LOG_WARN,
           "cannot estimate partition sizes: the mock cluster's account of appends is missing "
           "(another librdkafka version?); dropped records are still reported");
  }
}

static void on_watch_tick(uv_timer_t *t) {
  devkafka_app *app = t->data;
  if (app->sampling) {
    return; /* the last one is still asking */
  }
  app->sampling = true;
  app->work.data = app;
  if (uv_queue_work(t->loop, &app->work, sample_work, sample_done) != 0) {
    app->sampling = false;
  }
}

static int start_watch(gw_daemon *d, const char *const *topics) {
  const devkafka_config *cfg = d->flags;
  devkafka_app *app = d->app;
  static const char *const labels[] = {"topic", "partition"};
  gw_metric_family_def defs[3] = {
      {.name = "goodwill_devkafka_records_dropped_total",
       .help = "Records the embedded cluster dropped because their partition was full (5 MiB or "
               "100000 batches): lost for any consumer that had not read them.",
       .type = GW_METRIC_COUNTER,
       .label_names = labels,
       .nlabels = 2},
      {.name = "goodwill_devkafka_partition_records",
       .help = "Records a partition holds (high minus low watermark).",
       .type = GW_METRIC_GAUGE,
       .label_names = labels,
       .nlabels = 2},
      {.name = "goodwill_devkafka_partition_bytes",
       .help = "Bytes a partition holds, estimated from its records and the average size of "
               "what was appended (the limit is 5 MiB).",
       .type = GW_METRIC_GAUGE,
       .label_names = labels,
       .nlabels = 2},
  };
  gw_metric_family **fams[3] = {&app->m_dropped, &app->m_records, &app->m_bytes};
  int rc = gw_metrics_new(&app->metrics);
  for (size_t i = 0; rc == 0 && i < 3; i++) {
    rc = gw_metrics_register(app->metrics, &defs[i], fams[i]);
  }
  if (rc != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot register the metrics", GW_LI("error", rc));
    return rc;
  }
  app->nparts = gw_devkafka_npartitions(app->dk);
  app->parts = calloc(app->nparts > 0 ? app->nparts : 1, sizeof *app->parts);
  app->sample = calloc(app->nparts > 0 ? app->nparts : 1, sizeof *app->sample);
  if (app->parts == NULL || app->sample == NULL) {
    abort();
  }
  /* The series exist from the start, at 0, so a scrape shows every partition; in the order of
   * gw_devkafka_sample (topics x partitions). */
  for (size_t i = 0; i < app->nparts; i++) {
    char part[16];
    snprintf(part, sizeof part, "%d", (int)(i % (size_t)cfg->partitions));
    const char *values[2] = {topics[i / (size_t)cfg->partitions], part};
    app->parts[i].m_dropped = gw_metrics_series(app->m_dropped, values);
    app->parts[i].m_records = gw_metrics_series(app->m_records, values);
    app->parts[i].m_bytes = gw_metrics_series(app->m_bytes, values);
  }
  uv_timer_init(&d->loop, &app->timer);
  app->timer.data = app;
  app->timer_open = true;
  uv_timer_start(&app->timer, on_watch_tick, (uint64_t)cfg->watch_interval_ms,
                 (uint64_t)cfg->watch_interval_ms);
  return 0;
}

/* ------------------------------------------------------------------ admin: fault injection */

static void respond_text(gw_http_request *req, int status, const char *text) {
  gw_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL, 0);
}

/* A query parameter as a non-negative number; def when absent, -1 when not a number. */
static long query_number(gw_http_request *req, const char *name, long def) {
  const char *text = gw_http_request_query(req, name);
  if (text == NULL) {
    return def;
  }
  char *end;
  long v = strtol(text, &end, 10);
  return *end == '\0' && end != text && v >= 0 ? v : -1;
}

/* A 400 with err, for a fault request that cannot be carried out. */
static void respond_refused(gw_http_request *req, const char *err) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "%s\n", err);
  respond_text(req, 400, b.data);
  gw_buf_free(&b);
}

/*
 * POST /faults/request-errors?api=Produce&error=OUT_OF_ORDER_SEQUENCE_NUMBER[&count=N]
 *   the next N requests of that API to the cluster fail with that error;
 * with &broker=B[&delay_ms=D], the next N to broker B are answered with it after D ms (error
 * may then be NO_ERROR: late answers), before any cluster-wide ones.
 */
static void fault_request_errors(devkafka_app *app, gw_http_request *req) {
  const char *api = gw_http_request_query(req, "api");
  const char *error = gw_http_request_query(req, "error");
  long count = query_number(req, "count", 1);
  long broker = query_number(req, "broker", 0);
  long delay_ms = query_number(req, "delay_ms", 0);
  char err[256] = "";
  int rc = -EINVAL;
  if (api == NULL || error == NULL) {
    snprintf(err, sizeof err,
             "api= and error= are required, e.g. "
             "?api=Produce&error=OUT_OF_ORDER_SEQUENCE_NUMBER&count=1");
  } else if (count < 1 || count > 10000 || broker < 0 || delay_ms < 0 || delay_ms > 600000) {
    snprintf(err, sizeof err,
             "count (1..10000), broker (a broker id) and delay_ms (0..600000) are numbers");
  } else if (broker == 0) {
    rc = gw_devkafka_push_request_errors(app->dk, api, error, (size_t)count, err, sizeof err);
  } else {
    rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
      rc = gw_devkafka_push_broker_request_error(app->dk, (int)broker, api, error, (int)delay_ms,
                                                 err, sizeof err);
    }
  }
  if (rc != 0) {
    respond_refused(req, err);
    return;
  }
  GW_LOG(&app->d->log, GW_LOG_WARN, "fault injected: the next requests are answered so",
         GW_LS("api", api), GW_LS("error", error), GW_LI("count", count), GW_LI("broker", broker),
         GW_LI("delay_ms", delay_ms));
  gw_buf b = GW_BUF_INIT;
  if (broker == 0) {
    gw_buf_printf(&b, "the next %ld %s request(s) fail with %s\n", count, api, error);
  } else {
    gw_buf_printf(&b, "the next %ld %s request(s) to broker %ld are answered %s after %ld ms\n",
                  count, api, broker, error, delay_ms);
  }
  respond_text(req, 200, b.data);
  gw_buf_free(&b);
}

/* POST /faults/broker?id=B&state=down|up: broker B goes down (closes its connections, refuses
 * new ones; its partitions are unavailable) or comes back up. */
static void fault_broker(devkafka_app *app, gw_http_request *req) {
  long id = query_number(req, "id", -1);
  const char *state = gw_http_request_query(req, "state");
  bool down = state != NULL && strcmp(state, "down") == 0;
  if (id < 1 || (!down && (state == NULL || strcmp(state, "up") != 0))) {
    respond_refused(req, "id= (a broker id) and state=down or state=up are required");
    return;
  }
  if (gw_devkafka_broker_set_up(app->dk, (int)id, !down) != 0) {
    respond_refused(req, "no such broker");
    return;
  }
  GW_LOG(&app->d->log, GW_LOG_WARN, "fault injected: broker state", GW_LI("broker", id),
         GW_LS("state", state));
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "broker %ld is %s\n", id, state);
  respond_text(req, 200, b.data);
  gw_buf_free(&b);
}

/* POST /faults/leader?topic=T&partition=P&broker=B: broker B becomes the leader of T's
 * partition P. */
static void fault_leader(devkafka_app *app, gw_http_request *req) {
  const char *topic = gw_http_request_query(req, "topic");
  long partition = query_number(req, "partition", -1);
  long broker = query_number(req, "broker", -1);
  char err[256] = "topic=, partition= and broker= are required";
  if (topic == NULL || partition < 0 || partition > 100000 || broker < 1 || broker > 100 ||
      gw_devkafka_set_leader(app->dk, topic, (int)partition, (int)broker, err, sizeof err) != 0) {
    respond_refused(req, err);
    return;
  }
  GW_LOG(&app->d->log, GW_LOG_WARN, "fault injected: partition leader moved", GW_LS("topic", topic),
         GW_LI("partition", partition), GW_LI("broker", broker));
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "broker %ld leads %s [%ld]\n", broker, topic, partition);
  respond_text(req, 200, b.data);
  gw_buf_free(&b);
}

static void admin_other(void *opaque, gw_http_request *req) {
  static const struct {
    const char *path;
    void (*handle)(devkafka_app *, gw_http_request *);
  } faults[] = {{"/faults/request-errors", fault_request_errors},
                {"/faults/broker", fault_broker},
                {"/faults/leader", fault_leader}};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
    if (strcmp(req->path, faults[i].path) != 0) {
      continue;
    }
    if (strcmp(req->method, "POST") != 0) {
      const gw_http_header allow = {"Allow", "POST"};
      const char *msg = "method not allowed; use POST\n";
      gw_http_respond(req, 405, "text/plain; charset=utf-8", msg, strlen(msg), &allow, 1);
      return;
    }
    faults[i].handle(opaque, req);
    return;
  }
  respond_text(req, 404,
               "not found; try /metrics, /healthz, /readyz or POST /faults/request-errors, "
               "/faults/broker or /faults/leader\n");
}

static int write_file_atomically(const char *path, const char *text) {
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (tmp == NULL) {
    return -ENOMEM;
  }
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (f == NULL) {
    int rc = -errno;
    free(tmp);
    return rc;
  }
  int rc = 0;
  if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    rc = -errno;
  }
  if (fclose(f) != 0 && rc == 0) {
    rc = -errno;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = -errno;
  }
  if (rc != 0) {
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

/* Undoes a start that failed after the cluster was up (the loop has not run yet). */
static void abort_start(gw_daemon *d) {
  devkafka_app *app = d->app;
  if (app->timer_open) {
    app->timer_open = false;
    uv_close((uv_handle_t *)&app->timer, NULL);
  }
}

static int start_devkafka(gw_daemon *d) {
  const devkafka_config *cfg = d->flags;
  devkafka_app *app = d->app;
  app->d = d;
  static const char *const topics[] = {GW_TOPIC_INTERACTIONS, GW_TOPIC_SCORED, GW_TOPIC_DLQ};
  char err[512];
  /* The cluster runs on librdkafka's threads: the loop waits for a signal and watches. */
  int rc = gw_devkafka_start(&app->dk, (int)cfg->brokers, (int)cfg->partitions, topics, 3, err,
                             sizeof err);
  if (rc != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot start the cluster", GW_LS("reason", err));
    return rc;
  }
  rc = start_watch(d, topics);
  if (rc == 0 && cfg->admin_port >= 0) {
    gw_admin_config ac = {.host = cfg->admin_host,
                          .port = (int)cfg->admin_port,
                          .metrics = app->metrics,
                          .log = &d->log};
    rc = gw_admin_start(&app->admin, &d->loop, &ac);
    if (rc != 0) {
      GW_LOG(&d->log, GW_LOG_ERROR, "cannot open the admin port", GW_LS("host", cfg->admin_host),
             GW_LI("port", cfg->admin_port), GW_LS("reason", uv_strerror(rc)));
      app->admin = NULL;
    } else {
      gw_admin_set_other(app->admin, admin_other, app);
    }
  }
  const char *bootstrap = gw_devkafka_bootstrap(app->dk);
  if (rc == 0 && cfg->bootstrap_file[0] != '\0') {
    rc = write_file_atomically(cfg->bootstrap_file, bootstrap);
    if (rc != 0) {
      GW_LOG(&d->log, GW_LOG_ERROR, "cannot write the bootstrap file",
             GW_LS("path", cfg->bootstrap_file), GW_LS("reason", strerror(-rc)));
    }
  } else if (rc == 0) {
    printf("%s\n", bootstrap);
    fflush(stdout);
  }
  if (rc != 0) {
    abort_start(d);
    if (app->admin != NULL) {
      gw_admin_close(app->admin, NULL, NULL);
      app->admin = NULL;
    }
    return rc; /* the cluster stops in main, after the loop closed the handles */
  }
  GW_LOG(&d->log, GW_LOG_INFO, "listening", GW_LS("bootstrap", bootstrap),
         GW_LI("brokers", cfg->brokers), GW_LI("partitions", cfg->partitions),
         GW_LI("admin_port", app->admin != NULL ? gw_admin_port(app->admin) : -1));
  GW_LOG(&d->log, GW_LOG_WARN,
         "in-memory cluster for development and tests: each partition keeps at most 5 MiB or "
         "100000 record batches and drops its oldest records beyond that; consumers that have "
         "not read them lose them (each drop is logged and counted in "
         "goodwill_devkafka_records_dropped_total)",
         GW_LI("max_bytes", GW_DEVKAFKA_PARTITION_MAX_BYTES),
         GW_LI("max_batches", GW_DEVKAFKA_PARTITION_MAX_BATCHES));
  return 0;
}

static void on_admin_closed(void *opaque) {
  gw_daemon *d = opaque;
  gw_daemon_stopped(d);
}

/* Stops the watch (a sample under way finishes on its own: the loop waits for it) and the admin
 * port; the cluster stops in finish, once the loop has ended. */
static void stop_devkafka(gw_daemon *d) {
  devkafka_app *app = d->app;
  abort_start(d);
  if (app->admin != NULL) {
    gw_admin *a = app->admin;
    app->admin = NULL;
    gw_admin_close(a, on_admin_closed, d);
    return;
  }
  gw_daemon_stopped(d);
}

static void finish_devkafka(gw_daemon *d) {
  const devkafka_config *cfg = d->flags;
  devkafka_app *app = d->app;
  gw_devkafka_stop(app->dk);
  app->dk = NULL;
  if (cfg->bootstrap_file[0] != '\0') {
    /* A stale file would point the next script at a cluster that is gone. */
    unlink(cfg->bootstrap_file);
  }
  GW_LOG(&d->log, GW_LOG_INFO, "stopped");
}

static const gw_daemon_def devkafka_daemon = {
    .program = "goodwill-devkafka",
    .component = "devkafka",
    .summary = "An embedded Kafka-protocol cluster with the goodwill topics.",
    .keys = devkafka_keys,
    .nkeys = sizeof devkafka_keys / sizeof devkafka_keys[0],
    .log_level_offset = offsetof(devkafka_config, log_level),
    .stop_message = "stopping",
    .start = start_devkafka,
    .stop = stop_devkafka,
    .finish = finish_devkafka,
};

int main(int argc, char **argv) {
  devkafka_config cfg;
  memset(&cfg, 0, sizeof cfg);
  devkafka_app app;
  memset(&app, 0, sizeof app);
  int rc = gw_daemon_main(argc, argv, &devkafka_daemon, &cfg, &app);
  /* After a failed start finish does not run: the cluster is still up. */
  gw_devkafka_stop(app.dk);
  gw_metrics_free(app.metrics);
  free(app.parts);
  free(app.sample);
  return rc;
}
