/*
 * goodwill-aggregator: Kafka -> per-team batches -> one Lua apply per team -> commit; and the
 * read API (see aggregator.h).
 */
#include "goodwill/aggregator.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/admin.h"
#include "goodwill/aggregates.h"
#include "goodwill/auth.h"
#include "goodwill/buf.h"
#include "goodwill/http.h"
#include "goodwill/kafka.h"
#include "goodwill/metrics.h"
#include "goodwill/offsets.h"
#include "goodwill/redis.h"
#include "goodwill/window.h"

#define TEAM_HASH_SIZE 4096
#define RETRY_MIN_MS   100
#define RETRY_MAX_MS   5000
/* Teams of one list request read concurrently (the Redis client caps commands in flight). */
#define LIST_CONCURRENCY 16
/* The most teams one list request reads. */
#define LIST_MAX_TEAMS 10000
/* The realm of the read API's WWW-Authenticate challenges (RFC 6750, section 3). */
#define READ_REALM "goodwill-read"
/* Team entries idle for this many flush ticks are freed, so a flood of one-off team ids does
 * not keep memory. */
#define TEAM_IDLE_TICKS 200

typedef struct rec_ref {
  int32_t partition;
  int64_t offset;
} rec_ref;

/* One script call's worth of records of a team, with the Kafka positions it settles. */
typedef struct batch_node {
  struct batch_node *next;
  gw_agg_batch *batch;
  rec_ref *refs; /* every record added, applied or not, in arrival order */
  size_t nrefs, cap;
  bool sealed; /* sent at least once: its content must not change any more */
} batch_node;

typedef struct team {
  struct team *hnext;
  struct gw_aggregator *agg;
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  batch_node *head, *tail; /* head is the next (or current) batch sent */
  bool in_flight;
  bool registered; /* SADDs of the team and tenant index sets acknowledged */
  int cmds_outstanding;
  bool cmds_failed;
  uint64_t sent_ns;
  uint64_t retry_at_ms;
  uint64_t backoff_ms;
  unsigned idle_ticks;
} team;

/* A record on its way to the DLQ; it owns copies of the original bytes. */
typedef struct dlq_item {
  struct dlq_item *next;
  struct gw_aggregator *agg;
  int32_t partition;
  int64_t offset;
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  const char *reason; /* static string */
  char error[200];
} dlq_item;

struct gw_aggregator {
  uv_loop_t *loop;
  gw_aggregator_config cfg;
  const gw_log *log;
  gw_metrics *metrics;
  gw_admin *admin;
  gw_http_server *api;
  gw_redis *redis;
  char *redis_storage;
  gw_redis_script *apply_script, *read_script;
  gw_kafka_consumer *consumer;
  gw_kafka_producer *producer;
  gw_offsets *offsets;
  uv_timer_t tick;
  uv_timer_t grace;
  team *teams[TEAM_HASH_SIZE];
  size_t nteams;
  dlq_item *dlq_retry; /* DLQ writes that failed, resent on the next tick */
  size_t pending;      /* records consumed and not yet done */
  size_t dlq_in_flight;
  size_t reads_in_flight;
  bool paused;
  bool stopping;
  bool closing;
  bool consumer_closing; /* no more offset stores */
  int stop_status;
  int handles_open;
  void (*done)(void *opaque, int status);
  void *done_opaque;

  gw_metric *m_consumed, *m_applied, *m_duplicate, *m_late, *m_flushes, *m_redis_errors;
  gw_metric *m_flush_seconds, *m_pending;
  gw_metric_family *f_dlq;
  gw_metric_family *f_api_requests, *f_api_duration; /* {route, status} */

  /* Read API auth (see aggregator.h). */
  bool dev_mode;
  char *tokens_file;
  gw_auth *auth; /* the tokens in use; NULL in dev mode */
  gw_metric *m_tokens;
  gw_metric_family *f_reloads; /* {result} */

  /* Per-team gauges (cfg.team_metrics_max > 0): the refresh timer and one refresh's state. */
  uv_timer_t tm_timer;
  bool tm_refreshing;
  uint64_t tm_started_ns;
  gw_window_composition tm_comp;
  char **tm_tenants; /* of the refresh running, sorted */
  size_t tm_ntenants;
  struct tm_team *tm_teams; /* of the refresh running, at most team_metrics_max */
  size_t tm_nteams;
  size_t tm_next;            /* the tenant listed, then the team read, next */
  struct tm_series *tm_prev; /* the series the last published refresh set */
  size_t tm_nprev;
  gw_metric_family *f_team[7]; /* TM_GAUGES */
  gw_metric *m_tm_seconds, *m_tm_teams, *m_tm_failures;
};

static const char *const topic_scored = GW_TOPIC_SCORED;

static uint64_t now_ms(const gw_aggregator *a) {
  return uv_now(a->loop);
}

static int64_t wall_s(void) {
  return (int64_t)time(NULL);
}

/* ------------------------------------------------------------------ offsets */

static void settle(gw_aggregator *a, int32_t partition, int64_t offset) {
  int64_t next;
  if (gw_offsets_done(a->offsets, topic_scored, partition, offset, &next) && !a->consumer_closing) {
    int rc = gw_kafka_consumer_store(a->consumer, topic_scored, partition, next);
    if (rc < 0 && rc != -ESRCH)
      GW_LOG(a->log, GW_LOG_WARN, "offset store failed", GW_LI("partition", partition),
             GW_LI("offset", next), GW_LI("error", rc));
  }
  if (a->pending > 0)
    a->pending--;
  if (a->paused && !a->stopping && a->pending <= a->cfg.max_pending / 2) {
    a->paused = false;
    gw_kafka_consumer_resume(a->consumer);
    GW_LOG(a->log, GW_LOG_INFO, "consumer resumed", GW_LI("pending", a->pending));
  }
}

/* ------------------------------------------------------------------ DLQ */

static void dlq_free(dlq_item *d) {
  free(d->key);
  free(d->value);
  free(d);
}

static void dlq_send(gw_aggregator *a, dlq_item *d);

static void dlq_delivered(void *opaque, int status, const char *errstr, int32_t partition,
                          int64_t offset) {
  dlq_item *d = opaque;
  gw_aggregator *a = d->agg;
  a->dlq_in_flight--;
  if (status == 0) {
    const char *labels[] = {d->reason};
    gw_metric_add(gw_metrics_series(a->f_dlq, labels), 1);
    settle(a, d->partition, d->offset);
    dlq_free(d);
    return;
  }
  GW_LOG(a->log, GW_LOG_WARN, "dlq write failed, will retry", GW_LS("reason", d->reason),
         GW_LS("error", errstr ? errstr : ""));
  d->next = a->dlq_retry;
  a->dlq_retry = d;
}

static void dlq_send(gw_aggregator *a, dlq_item *d) {
  char part[16], off[24];
  snprintf(part, sizeof(part), "%" PRId32, d->partition);
  snprintf(off, sizeof(off), "%" PRId64, d->offset);
  gw_kafka_header h[] = {
      {"goodwill-reason", d->reason, strlen(d->reason)},
      {"goodwill-error", d->error, strlen(d->error)},
      {"goodwill-source-topic", topic_scored, strlen(topic_scored)},
      {"goodwill-source-partition", part, strlen(part)},
      {"goodwill-source-offset", off, strlen(off)},
      {"goodwill-component", "aggregator", 10},
  };
  int rc = gw_kafka_produce(a->producer, GW_TOPIC_DLQ, d->key, d->key_len, d->value, d->value_len,
                            h, sizeof(h) / sizeof(h[0]), dlq_delivered, d);
  if (rc < 0) {
    d->next = a->dlq_retry;
    a->dlq_retry = d;
    return;
  }
  a->dlq_in_flight++;
}

static void to_dlq(gw_aggregator *a, const gw_kafka_message *m, const char *reason,
                   const char *error) {
  dlq_item *d = calloc(1, sizeof(*d));
  if (d == NULL)
    abort();
  d->agg = a;
  d->partition = m->partition;
  d->offset = m->offset;
  d->reason = reason;
  snprintf(d->error, sizeof(d->error), "%s", error);
  d->key = malloc(m->key_len + 1);
  d->value = malloc(m->value_len + 1);
  if (d->key == NULL || d->value == NULL)
    abort();
  if (m->key_len)
    memcpy(d->key, m->key, m->key_len);
  if (m->value_len)
    memcpy(d->value, m->value, m->value_len);
  d->key_len = m->key_len;
  d->value_len = m->value_len;
  GW_LOG(a->log, GW_LOG_WARN, "record to dlq", GW_LS("reason", reason), GW_LS("error", error),
         GW_LI("partition", m->partition), GW_LI("offset", m->offset));
  dlq_send(a, d);
}

/* ------------------------------------------------------------------ teams and batches */

static uint32_t team_hash(const char *tenant, const char *teamid) {
  uint32_t h = 2166136261u; /* FNV-1a 32 */
  for (const char *p = tenant; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  h = (h ^ 0xff) * 16777619u;
  for (const char *p = teamid; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  return h % TEAM_HASH_SIZE;
}

static batch_node *node_new(team *t) {
  batch_node *n = calloc(1, sizeof(*n));
  if (n == NULL || gw_agg_batch_new(&n->batch, t->tenant, t->team) != 0)
    abort(); /* ids were validated before; only allocation can fail */
  return n;
}

static void node_free(batch_node *n) {
  gw_agg_batch_free(n->batch);
  free(n->refs);
  free(n);
}

static team *team_get(gw_aggregator *a, const char *tenant, const char *teamid) {
  uint32_t h = team_hash(tenant, teamid);
  for (team *t = a->teams[h]; t; t = t->hnext)
    if (strcmp(t->tenant, tenant) == 0 && strcmp(t->team, teamid) == 0)
      return t;
  team *t = calloc(1, sizeof(*t));
  if (t == NULL)
    abort();
  t->agg = a;
  snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
  snprintf(t->team, sizeof(t->team), "%s", teamid);
  t->hnext = a->teams[h];
  a->teams[h] = t;
  a->nteams++;
  return t;
}

static void team_send(team *t);

static void team_finish(team *t) {
  gw_aggregator *a = t->agg;
  batch_node *n = t->head;
  t->in_flight = false;
  if (t->cmds_failed) {
    gw_metric_add(a->m_redis_errors, 1);
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : RETRY_MIN_MS;
    if (t->backoff_ms > RETRY_MAX_MS)
      t->backoff_ms = RETRY_MAX_MS;
    t->retry_at_ms = now_ms(a) + t->backoff_ms;
    return;
  }
  t->backoff_ms = 0;
  t->registered = true;
  gw_metric_add(a->m_flushes, 1);
  gw_metric_observe(a->m_flush_seconds, (double)(uv_hrtime() - t->sent_ns) / 1e9);
  for (size_t i = 0; i < n->nrefs; i++)
    settle(a, n->refs[i].partition, n->refs[i].offset);
  t->head = n->next;
  if (t->tail == n)
    t->tail = NULL;
  node_free(n);
  /* A full batch waiting behind this one goes now rather than at the next tick. */
  if (t->head && t->head->nrefs >= a->cfg.max_batch && !a->closing)
    team_send(t);
}

static void sub_done(team *t) {
  if (--t->cmds_outstanding == 0)
    team_finish(t);
}

static void on_sadd(void *opaque, int status, const gw_redis_reply *reply) {
  team *t = opaque;
  if (status < 0 || reply == NULL || reply->type == GW_REDIS_ERROR) {
    t->cmds_failed = true;
    GW_LOG(t->agg->log, GW_LOG_WARN, "team index update failed", GW_LS("team", t->team),
           GW_LS("error", reply && reply->str ? reply->str : ""), GW_LI("status", status));
  }
  sub_done(t);
}

static void on_apply(void *opaque, int status, const gw_redis_reply *reply) {
  team *t = opaque;
  gw_aggregator *a = t->agg;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY || reply->nelements != 2 ||
      reply->elements[0].type != GW_REDIS_INTEGER || reply->elements[1].type != GW_REDIS_INTEGER) {
    t->cmds_failed = true;
    GW_LOG(a->log, GW_LOG_WARN, "apply failed, batch kept for retry", GW_LS("tenant", t->tenant),
           GW_LS("team", t->team), GW_LI("status", status),
           GW_LS("error", reply && reply->type == GW_REDIS_ERROR ? reply->str : ""));
  } else {
    gw_metric_add(a->m_applied, (double)reply->elements[0].integer);
    gw_metric_add(a->m_duplicate, (double)reply->elements[1].integer);
  }
  sub_done(t);
}

/* Sends the head batch of t (sealing it). Every command either fails synchronously or calls
 * back once; the batch settles when all of them answered. */
static void team_send(team *t) {
  gw_aggregator *a = t->agg;
  batch_node *n = t->head;
  if (n == NULL || t->in_flight)
    return;
  n->sealed = true;
  if (t->tail == n)
    t->tail = NULL; /* new records start a new batch */
  t->in_flight = true;
  t->cmds_failed = false;
  t->cmds_outstanding = 1; /* held by this function until every command is issued */
  t->sent_ns = uv_hrtime();
  t->idle_ticks = 0;
  if (!t->registered) {
    gw_buf key = GW_BUF_INIT;
    gw_agg_key_teams(&key, t->tenant);
    const char *argv1[] = {"SADD", key.data, t->team};
    const char *argv2[] = {"SADD", GW_AGG_KEY_TENANTS, t->tenant};
    t->cmds_outstanding++;
    if (gw_redis_command(a->redis, 3, argv1, NULL, on_sadd, t) < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
    }
    t->cmds_outstanding++;
    if (gw_redis_command(a->redis, 3, argv2, NULL, on_sadd, t) < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
    }
    gw_buf_free(&key);
  }
  if (gw_agg_batch_records(n->batch) > 0 && !t->cmds_failed) {
    gw_agg_call c;
    gw_agg_batch_call(n->batch, &c);
    t->cmds_outstanding++;
    int rc = gw_redis_eval(a->redis, a->apply_script, c.nkeys, c.keys, c.keylens, c.nargs, c.args,
                           c.arglens, on_apply, t);
    if (rc < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
    }
  }
  sub_done(t);
}

/* ------------------------------------------------------------------ consuming */

static void on_message(void *opaque, const gw_kafka_message *m) {
  gw_aggregator *a = opaque;
  gw_metric_add(a->m_consumed, 1);
  if (gw_offsets_begin(a->offsets, m->topic, m->partition, m->offset) < 0) {
    GW_LOG(a->log, GW_LOG_WARN, "offset out of order, ignored", GW_LI("partition", m->partition),
           GW_LI("offset", m->offset));
    return;
  }
  a->pending++;
  if (!a->paused && a->pending > a->cfg.max_pending) {
    a->paused = true;
    gw_kafka_consumer_pause(a->consumer);
    GW_LOG(a->log, GW_LOG_INFO, "consumer paused", GW_LI("pending", a->pending));
  }
  Goodwill__V1__ScoredRecord *rec =
      goodwill__v1__scored_record__unpack(NULL, m->value_len, (const uint8_t *)m->value);
  if (rec == NULL) {
    to_dlq(a, m, "undecodable", "not a goodwill.v1.ScoredRecord protobuf");
    return;
  }
  gw_agg_record r;
  char err[200];
  int rc = gw_agg_record_from_scored(rec, &r, err, sizeof(err));
  goodwill__v1__scored_record__free_unpacked(rec, NULL);
  if (rc < 0) {
    to_dlq(a, m, "invalid", err);
    return;
  }
  gw_agg_verdict v = gw_agg_classify(r.event_s, wall_s(), NULL);
  if (v != GW_AGG_APPLY) {
    char when[GW_ISO_LEN];
    gw_window_format_iso(r.event_s, when);
    snprintf(err, sizeof(err), "occurred_at %s is %s", when,
             v == GW_AGG_TOO_LATE ? "older than every retained bucket"
                                  : "more than 5 minutes in the future");
    if (v == GW_AGG_TOO_LATE)
      gw_metric_add(a->m_late, 1);
    to_dlq(a, m, gw_agg_verdict_name(v), err);
    return;
  }
  team *t = team_get(a, r.tenant, r.team);
  if (t->tail == NULL || t->tail->sealed || t->tail->nrefs >= a->cfg.max_batch) {
    batch_node *n = node_new(t);
    if (t->tail && !t->tail->sealed)
      t->tail->next = n;
    else {
      /* Append after the last node of the list, sealed or not. */
      batch_node **pp = &t->head;
      while (*pp)
        pp = &(*pp)->next;
      *pp = n;
    }
    t->tail = n;
  }
  batch_node *n = t->tail;
  rc = gw_agg_batch_add(n->batch, &r, wall_s());
  if (rc != GW_AGG_APPLY) {
    /* The verdict changed within this call (a bucket expired at this very second). */
    to_dlq(a, m, rc == GW_AGG_FUTURE ? "future" : "too_late", "expired while being added");
    return;
  }
  if (n->nrefs == n->cap) {
    n->cap = n->cap ? n->cap * 2 : 64;
    n->refs = realloc(n->refs, n->cap * sizeof(*n->refs));
    if (n->refs == NULL)
      abort();
  }
  n->refs[n->nrefs++] = (rec_ref){m->partition, m->offset};
  if (n->nrefs >= a->cfg.max_batch && !t->in_flight && t->head == n && t->retry_at_ms <= now_ms(a))
    team_send(t);
}

static void on_assign(void *opaque, const gw_kafka_partition *parts, size_t nparts) {
  gw_aggregator *a = opaque;
  GW_LOG(a->log, GW_LOG_INFO, "partitions assigned", GW_LI("count", nparts));
}

static void on_revoke(void *opaque, const gw_kafka_partition *parts, size_t nparts) {
  gw_aggregator *a = opaque;
  /* Records of these partitions still pending are applied anyway (harmless: the new owner's
   * replay is deduplicated), but their offsets are no longer ours to store. */
  for (size_t i = 0; i < nparts; i++)
    gw_offsets_forget(a->offsets, parts[i].topic, parts[i].partition);
  GW_LOG(a->log, GW_LOG_INFO, "partitions revoked", GW_LI("count", nparts));
}

/* ------------------------------------------------------------------ the flush tick */

static void close_all(gw_aggregator *a);

static bool drained(const gw_aggregator *a) {
  return a->pending == 0 && a->dlq_in_flight == 0 && a->dlq_retry == NULL;
}

static void on_tick(uv_timer_t *h) {
  gw_aggregator *a = h->data;
  uint64_t now = now_ms(a);
  dlq_item *retry = a->dlq_retry;
  a->dlq_retry = NULL;
  while (retry) {
    dlq_item *d = retry;
    retry = d->next;
    dlq_send(a, d);
  }
  for (size_t i = 0; i < TEAM_HASH_SIZE; i++) {
    team **pp = &a->teams[i];
    while (*pp) {
      team *t = *pp;
      if (!t->in_flight && t->head != NULL && t->retry_at_ms <= now)
        team_send(t);
      if (!t->in_flight && t->head == NULL && ++t->idle_ticks > TEAM_IDLE_TICKS) {
        *pp = t->hnext;
        a->nteams--;
        free(t);
        continue;
      }
      pp = &t->hnext;
    }
  }
  if (a->stopping && !a->closing && drained(a))
    close_all(a);
}

/* ------------------------------------------------------------------ read API */

typedef struct read_team {
  char team[GW_AGG_ID_MAX + 1];
  gw_agg_totals totals;
} read_team;

typedef struct read_req {
  gw_aggregator *agg;
  gw_http_request *req;
  char tenant[GW_AGG_ID_MAX + 1];
  char window[32];
  bool csv;
  bool list;
  int64_t from_s, to_s;
  gw_window_composition *comp;
  read_team *teams;
  size_t nteams, next, done, outstanding;
  /* Leaderboards (list): the row field teams are ranked by (-1: by team id), the order, and
   * the most rows answered (0: all). */
  int sort_field;
  bool ascending;
  size_t limit;
  /* Time series (one team): one point per bucket of `step`, from first_s; points[i] holds the
   * i-th bucket's totals. */
  bool series;
  gw_resolution step;
  int64_t first_s;
  size_t npoints;
  gw_agg_totals *points;
  int failed; /* 0, or the HTTP status to answer */
  char error[256];
} read_req;

/* The route label of a read API path: the three endpoints, or "other" (bounded, for metrics). */
static const char *api_route(const char *path) {
  if (path == NULL)
    return "other";
  if (strcmp(path, "/v1/teams") == 0 || strcmp(path, "/v1/teams/") == 0)
    return "/v1/teams";
  size_t n = strlen(path), pl = strlen("/v1/teams/");
  if (n > pl && strncmp(path, "/v1/teams/", pl) == 0) {
    if (n > pl + 8 && strcmp(path + n - 8, "/summary") == 0)
      return "/v1/teams/{team}/summary";
    if (n > pl + 7 && strcmp(path + n - 7, "/series") == 0)
      return "/v1/teams/{team}/series";
  }
  return "other";
}

static void count_api_answer(gw_aggregator *a, const char *path, int status, uint64_t received_ns) {
  char status_s[8];
  snprintf(status_s, sizeof(status_s), "%d", status);
  const char *route = api_route(path);
  const char *labels[2] = {route, status_s};
  gw_metric_add(gw_metrics_series(a->f_api_requests, labels), 1);
  if (received_ns != 0)
    gw_metric_observe(gw_metrics_series(a->f_api_duration, labels),
                      (double)(uv_hrtime() - received_ns) / 1e9);
}

/* Every answer of the read API goes through here (req->user is the aggregator), so each is
 * counted by route and status, with its duration. */
static void api_respond(gw_http_request *req, int status, const char *content_type,
                        const char *body, size_t len, const gw_http_header *headers,
                        size_t nheaders) {
  count_api_answer(req->user, req->path, status, req->received_ns);
  gw_http_respond(req, status, content_type, body, len, headers, nheaders);
}

/* Answers the HTTP layer gave by itself (400 malformed, 408, 413, 431, 503). */
static void on_api_server_answer(void *opaque, const char *path, int status) {
  count_api_answer(opaque, path, status, 0);
}

static void respond_error_with(gw_http_request *req, int status, const char *msg,
                               const gw_http_header *headers, size_t nheaders) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "{\"error\":");
  gw_buf_json_string(&b, msg);
  gw_buf_puts(&b, "}\n");
  api_respond(req, status, "application/json", b.data, b.len, headers, nheaders);
  gw_buf_free(&b);
}

static void respond_error(gw_http_request *req, int status, const char *msg) {
  respond_error_with(req, status, msg, NULL, 0);
}

static void read_free(read_req *r) {
  r->agg->reads_in_flight--;
  free(r->points);
  free(r->comp);
  free(r->teams);
  free(r);
}

/* A team and its summary, with what its leaderboard ranks by (qsort has no context). */
typedef struct ranked {
  const read_team *team;
  gw_agg_summary s;
  int field;
  bool ascending;
} ranked;

static int compare_ranked(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  int c = gw_agg_rank_compare(&a->s, &b->s, a->field, a->ascending);
  return c != 0 ? c : strcmp(a->team->team, b->team->team);
}

static void read_render_series(read_req *r, gw_buf *b) {
  int64_t size = gw_res_seconds(r->step);
  gw_agg_row_meta meta = {r->tenant, r->teams[0].team, gw_res_name(r->step), 0, 0};
  gw_agg_summary s;
  if (r->csv) {
    gw_agg_csv_header(b);
  } else {
    char from[GW_ISO_LEN], to[GW_ISO_LEN];
    gw_window_format_iso(r->first_s, from);
    gw_window_format_iso(r->first_s + (int64_t)r->npoints * size, to);
    gw_buf_puts(b, "{\"tenant\":");
    gw_buf_json_string(b, r->tenant);
    gw_buf_puts(b, ",\"team\":");
    gw_buf_json_string(b, r->teams[0].team);
    gw_buf_printf(b, ",\"step\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"points\":[",
                  gw_res_name(r->step), from, to);
  }
  for (size_t i = 0; i < r->npoints; i++) {
    meta.from_s = r->first_s + (int64_t)i * size;
    meta.to_s = meta.from_s + size;
    gw_agg_summarize(&r->points[i], &s);
    if (r->csv) {
      gw_agg_row_csv(b, &meta, &s);
    } else {
      if (i > 0)
        gw_buf_putc(b, ',');
      gw_agg_row_json(b, &meta, &s);
    }
  }
  if (!r->csv)
    gw_buf_puts(b, "]}\n");
}

static void read_render(read_req *r) {
  gw_buf b = GW_BUF_INIT;
  if (r->series) {
    read_render_series(r, &b);
    api_respond(r->req, 200, r->csv ? "text/csv; charset=utf-8" : "application/json", b.data, b.len,
                NULL, 0);
    gw_buf_free(&b);
    return;
  }
  gw_agg_row_meta meta = {r->tenant, NULL, r->window, r->comp->from_s, r->comp->to_s};
  ranked *rows = calloc(r->nteams ? r->nteams : 1, sizeof(*rows));
  if (rows == NULL)
    abort();
  for (size_t i = 0; i < r->nteams; i++) {
    rows[i].team = &r->teams[i];
    gw_agg_summarize(&r->teams[i].totals, &rows[i].s);
    rows[i].field = r->sort_field;
    rows[i].ascending = r->ascending;
  }
  /* Teams arrive sorted by id; a leaderboard reorders them by its field. */
  if (r->sort_field >= 0)
    qsort(rows, r->nteams, sizeof(*rows), compare_ranked);
  size_t nrows = r->limit > 0 && r->limit < r->nteams ? r->limit : r->nteams;
  if (r->csv)
    gw_agg_csv_header(&b);
  if (r->list && !r->csv) {
    char from[GW_ISO_LEN], to[GW_ISO_LEN];
    gw_window_format_iso(meta.from_s, from);
    gw_window_format_iso(meta.to_s, to);
    gw_buf_puts(&b, "{\"tenant\":");
    gw_buf_json_string(&b, r->tenant);
    gw_buf_puts(&b, ",\"window\":");
    gw_buf_json_string(&b, r->window);
    gw_buf_printf(&b, ",\"from\":\"%s\",\"to\":\"%s\",\"teams\":[", from, to);
  }
  for (size_t i = 0; i < nrows; i++) {
    meta.team = rows[i].team->team;
    if (r->csv) {
      gw_agg_row_csv(&b, &meta, &rows[i].s);
    } else {
      if (i > 0)
        gw_buf_putc(&b, ',');
      gw_agg_row_json(&b, &meta, &rows[i].s);
    }
  }
  if (r->list && !r->csv)
    gw_buf_puts(&b, "]}");
  if (!r->csv)
    gw_buf_putc(&b, '\n');
  api_respond(r->req, 200, r->csv ? "text/csv; charset=utf-8" : "application/json", b.data, b.len,
              NULL, 0);
  gw_buf_free(&b);
  free(rows);
}

static void read_next(read_req *r);

static void read_finish_one(read_req *r) {
  r->outstanding--;
  r->done++;
  if (r->failed == 0 && r->next < r->nteams) {
    read_next(r);
    return;
  }
  if (r->outstanding > 0)
    return;
  if (r->failed)
    respond_error(r->req, r->failed, r->error);
  else
    read_render(r);
  read_free(r);
}

typedef struct read_cb_ctx {
  read_req *r;
  size_t index;
} read_cb_ctx;

/* Adds one element of the read script's reply (a bucket's HGETALL) to into; elements that
 * are not arrays (a missing bucket) add nothing. -EINVAL for a non-integer counter. Shared by
 * the read API and the per-team gauges, so both sum buckets the same way. */
static int add_bucket_reply(gw_agg_totals *into, const gw_redis_reply *h) {
  if (h->type != GW_REDIS_ARRAY)
    return 0;
  const char *strs[256];
  size_t lens[256];
  size_t n = h->nelements < 256 ? h->nelements : 256;
  for (size_t j = 0; j < n; j++) {
    strs[j] = h->elements[j].str ? h->elements[j].str : "";
    lens[j] = h->elements[j].str ? h->elements[j].len : 0;
  }
  return gw_agg_totals_add_hash(into, strs, lens, n & ~(size_t)1);
}

/* Sends one EVAL of the read script for a team: the buckets of comp (a window), or when comp
 * is NULL one bucket of step per point from first_s (a series). The reply holds one element
 * per key, in key order. Returns gw_redis_eval's code. */
static int eval_team_buckets(gw_aggregator *a, const char *tenant, const char *teamid,
                             const gw_window_composition *comp, gw_resolution step, int64_t first_s,
                             size_t npoints, gw_redis_reply_cb cb, void *opaque) {
  size_t nkeys = comp != NULL ? comp->nbuckets : npoints;
  gw_buf *keys = calloc(nkeys ? nkeys : 1, sizeof(gw_buf));
  const char **kp = calloc(nkeys ? nkeys : 1, sizeof(char *));
  if (keys == NULL || kp == NULL)
    abort();
  for (size_t k = 0; k < nkeys; k++) {
    if (comp == NULL)
      gw_agg_key_bucket(&keys[k], tenant, teamid, step,
                        first_s + (int64_t)k * gw_res_seconds(step));
    else
      gw_agg_key_bucket(&keys[k], tenant, teamid, comp->buckets[k].res, comp->buckets[k].start_s);
    kp[k] = keys[k].data;
  }
  int rc = gw_redis_eval(a->redis, a->read_script, (int)nkeys, kp, NULL, 0, NULL, NULL, cb, opaque);
  for (size_t k = 0; k < nkeys; k++)
    gw_buf_free(&keys[k]);
  free(keys);
  free(kp);
  return rc;
}

static void on_read(void *opaque, int status, const gw_redis_reply *reply) {
  read_cb_ctx *c = opaque;
  read_req *r = c->r;
  read_team *rt = &r->teams[c->index];
  free(c);
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    gw_metric_add(r->agg->m_redis_errors, 1);
    if (!r->failed) {
      r->failed = 503;
      snprintf(r->error, sizeof(r->error), "aggregates store unavailable: %s",
               reply && reply->type == GW_REDIS_ERROR ? reply->str : "no reply");
    }
    read_finish_one(r);
    return;
  }
  for (size_t i = 0; i < reply->nelements && !r->failed; i++) {
    /* A series keeps each bucket apart (one key per point, in order); a window sums them. */
    gw_agg_totals *into = r->series && i < r->npoints ? &r->points[i] : &rt->totals;
    if (add_bucket_reply(into, &reply->elements[i]) < 0) {
      r->failed = 500;
      snprintf(r->error, sizeof(r->error), "a bucket of team %s holds a non-integer counter",
               rt->team);
    }
  }
  read_finish_one(r);
}

/* Starts reads up to the concurrency limit. */
static void read_next(read_req *r) {
  gw_aggregator *a = r->agg;
  while (r->next < r->nteams && r->outstanding < LIST_CONCURRENCY && !r->failed) {
    size_t i = r->next++;
    read_cb_ctx *c = malloc(sizeof(*c));
    if (c == NULL)
      abort();
    c->r = r;
    c->index = i;
    r->outstanding++;
    /* A window reads the buckets of its composition, a series one bucket per point. */
    int rc = eval_team_buckets(a, r->tenant, r->teams[i].team, r->series ? NULL : r->comp, r->step,
                               r->first_s, r->npoints, on_read, c);
    if (rc < 0) {
      free(c);
      r->outstanding--;
      r->failed = 503;
      snprintf(r->error, sizeof(r->error), "aggregates store unavailable (%s)",
               rc == -EAGAIN ? "busy" : "not connected");
    }
  }
  if (r->outstanding == 0) {
    if (r->failed)
      respond_error(r->req, r->failed, r->error);
    else
      read_render(r);
    read_free(r);
  }
}

static int compare_strp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The ids among the first `examined` members of an SMEMBERS reply (of the tenant or team index
 * sets), in id order; members that are no goodwill id were not written by goodwill and are
 * skipped. *out (the caller frees it) points into the reply: valid during its callback. */
static size_t member_ids(const gw_redis_reply *reply, size_t examined, const char ***out) {
  size_t n = reply->nelements < examined ? reply->nelements : examined, k = 0;
  const char **ids = calloc(n ? n : 1, sizeof(*ids));
  if (ids == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    const gw_redis_reply *e = &reply->elements[i];
    if (e->type == GW_REDIS_STRING && e->str != NULL && gw_agg_valid_id(e->str))
      ids[k++] = e->str;
  }
  qsort(ids, k, sizeof(*ids), compare_strp);
  *out = ids;
  return k;
}

static void on_members(void *opaque, int status, const gw_redis_reply *reply) {
  read_req *r = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    gw_metric_add(r->agg->m_redis_errors, 1);
    respond_error(r->req, 503, "aggregates store unavailable");
    read_free(r);
    return;
  }
  const char **ids;
  r->nteams = member_ids(reply, LIST_MAX_TEAMS, &ids);
  r->teams = calloc(r->nteams ? r->nteams : 1, sizeof(*r->teams));
  if (r->teams == NULL)
    abort();
  for (size_t i = 0; i < r->nteams; i++)
    snprintf(r->teams[i].team, sizeof(r->teams[i].team), "%s", ids[i]);
  free(ids);
  read_next(r);
}

/* The tenant a request reads: 0 with *tenant, or the answer (401, 403, 400) was sent. With
 * tokens it is the token's tenant, and tenant= may only repeat it; in dev mode tenant= is
 * required. The token itself is never logged or echoed; only whether it was missing or
 * unknown. */
static int read_tenant(gw_aggregator *a, gw_http_request *req, const char **tenant) {
  *tenant = NULL;
  const char *asked = gw_http_request_query(req, "tenant");
  if (asked != NULL && *asked == '\0')
    asked = NULL;
  const char *own = NULL;
  if (!a->dev_mode) {
    gw_auth_denial denial;
    if (gw_auth_authorize(a->auth, gw_http_request_header(req, "Authorization"), READ_REALM, &own,
                          &denial) != 0) {
      const gw_http_header h = {"WWW-Authenticate", denial.challenge};
      respond_error_with(req, 401, denial.error, &h, 1);
      return -EACCES;
    }
  } else if (asked == NULL) {
    respond_error(req, 400, "tenant: required");
    return -EINVAL;
  }
  if (asked != NULL && !gw_agg_valid_id(asked)) {
    respond_error(req, 400, "tenant: must be 1..128 of [A-Za-z0-9._@-]");
    return -EINVAL;
  }
  if (own != NULL && asked != NULL && strcmp(asked, own) != 0) {
    /* RFC 6750, section 3.1: a valid token without the right to this resource. */
    char challenge[192];
    gw_auth_challenge(READ_REALM, "insufficient_scope", challenge, sizeof(challenge));
    const gw_http_header h = {"WWW-Authenticate", challenge};
    gw_buf msg = GW_BUF_INIT;
    gw_buf_printf(&msg, "tenant: this token may not read tenant \"%s\" (it reads tenant \"%s\")",
                  asked, own);
    respond_error_with(req, 403, msg.data, &h, 1);
    gw_buf_free(&msg);
    return -EACCES;
  }
  *tenant = own != NULL ? own : asked;
  return 0;
}

/* What a read shows beyond its range: a leaderboard's order and length, or a series' step. */
typedef struct read_view {
  int sort_field;
  bool ascending;
  size_t limit;
  gw_resolution step;
  int64_t first_s;
  size_t npoints;
} read_view;

/* Parses sort, order and limit (GET /v1/teams only) and step (series only): 0, or the 400
 * naming the parameter was sent. */
static int read_view_params(gw_http_request *req, bool list, bool series, int64_t from_s,
                            int64_t to_s, int64_t now_s, read_view *v) {
  memset(v, 0, sizeof(*v));
  v->sort_field = -1;
  v->step = GW_RES_1H;
  static const char *const list_only[] = {"sort", "order", "limit"};
  for (size_t k = 0; k < 3; k++) {
    const char *p = gw_http_request_query(req, list_only[k]);
    if (!list && p != NULL && *p != '\0') {
      char msg[96];
      snprintf(msg, sizeof(msg), "%s: only for GET /v1/teams (a leaderboard)", list_only[k]);
      respond_error(req, 400, msg);
      return -EINVAL;
    }
  }
  const char *step = gw_http_request_query(req, "step");
  if (!series && step != NULL && *step != '\0') {
    respond_error(req, 400, "step: only for GET /v1/teams/{team}/series");
    return -EINVAL;
  }
  char err[200];
  if (series) {
    if (step != NULL && *step != '\0' && gw_res_parse(step, &v->step, err, sizeof(err)) != 0) {
      respond_error(req, 400, err);
      return -EINVAL;
    }
    if (gw_window_series(from_s, to_s, v->step, now_s, &v->first_s, &v->npoints, err,
                         sizeof(err)) != 0) {
      respond_error(req, 400, err);
      return -EINVAL;
    }
    return 0;
  }
  if (!list)
    return 0;
  const char *sort = gw_http_request_query(req, "sort");
  if (sort != NULL && *sort != '\0') {
    v->sort_field = gw_agg_sort_field(sort);
    if (v->sort_field < 0) {
      respond_error(req, 400,
                    "sort: must be a numeric row field (interactions, with_feeling, start_mean, "
                    "end_mean, change_mean, improved_share, recovered, soured, surveys, "
                    "promoters, passives, detractors, nps, nps_moe, handle_ms_mean, "
                    "wait_ms_mean)");
      return -EINVAL;
    }
  }
  const char *order = gw_http_request_query(req, "order");
  if (order != NULL && *order != '\0') {
    if (strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
      respond_error(req, 400, "order: must be asc or desc");
      return -EINVAL;
    }
    if (v->sort_field < 0) {
      respond_error(req, 400, "order: needs sort (the field to rank teams by)");
      return -EINVAL;
    }
    v->ascending = strcmp(order, "asc") == 0;
  }
  const char *limit = gw_http_request_query(req, "limit");
  if (limit != NULL && *limit != '\0') {
    char *end;
    errno = 0;
    long long n = strtoll(limit, &end, 10);
    if (errno != 0 || *end != '\0' || end == limit || n < 1 || n > LIST_MAX_TEAMS) {
      respond_error(req, 400, "limit: must be an integer from 1 to 10000");
      return -EINVAL;
    }
    v->limit = (size_t)n;
  }
  return 0;
}

static void api_handler(void *opaque, gw_http_request *req) {
  gw_aggregator *a = opaque;
  req->user = a; /* for api_respond */
  const char *path = req->path;
  bool list = strcmp(path, "/v1/teams") == 0 || strcmp(path, "/v1/teams/") == 0;
  const char *team_in_path = NULL;
  size_t team_len = 0;
  bool series = false;
  if (!list) {
    const char *prefix = "/v1/teams/";
    size_t pl = strlen(prefix), len = strlen(path), sl = 0;
    static const char *const suffixes[] = {"/summary", "/series"};
    for (size_t k = 0; k < 2 && sl == 0; k++) {
      size_t n = strlen(suffixes[k]);
      if (len > pl + n && strncmp(path, prefix, pl) == 0 &&
          strcmp(path + len - n, suffixes[k]) == 0) {
        sl = n;
        series = k == 1;
      }
    }
    if (sl == 0) {
      respond_error(req, 404,
                    "unknown route (GET /v1/teams, /v1/teams/{team}/summary or "
                    "/v1/teams/{team}/series)");
      return;
    }
    team_in_path = path + pl;
    team_len = len - pl - sl;
  }
  if (strcmp(req->method, "GET") != 0) {
    gw_http_header allow = {"Allow", "GET"};
    api_respond(req, 405, "application/json", "{\"error\":\"method: only GET\"}\n", 28, &allow, 1);
    return;
  }
  /* Credentials before any parameter is looked at, as ingest does: a client without a valid
   * token learns nothing but 401. */
  const char *tenant;
  if (read_tenant(a, req, &tenant) != 0)
    return;
  char teamid[GW_AGG_ID_MAX + 1] = "";
  if (!list) {
    if (team_len > GW_AGG_ID_MAX) {
      respond_error(req, 400, "team: longer than 128 characters");
      return;
    }
    memcpy(teamid, team_in_path, team_len);
    teamid[team_len] = '\0';
    if (!gw_agg_valid_id(teamid)) {
      respond_error(req, 400, "team: must be 1..128 of [A-Za-z0-9._@-]");
      return;
    }
  }
  const char *format = gw_http_request_query(req, "format");
  bool csv = false;
  if (format != NULL && *format != '\0') {
    if (strcmp(format, "csv") == 0)
      csv = true;
    else if (strcmp(format, "json") != 0) {
      respond_error(req, 400, "format: must be json or csv");
      return;
    }
  }
  const char *window = gw_http_request_query(req, "window");
  int64_t now = wall_s(), from_s, to_s;
  char err[200];
  if (gw_window_resolve(window, gw_http_request_query(req, "from"),
                        gw_http_request_query(req, "to"), now, &from_s, &to_s, err,
                        sizeof(err)) < 0) {
    respond_error(req, 400, err);
    return;
  }
  read_view view;
  if (read_view_params(req, list, series, from_s, to_s, now, &view) != 0)
    return;
  if (!gw_redis_connected(a->redis)) {
    respond_error(req, 503, "aggregates store unavailable (not connected)");
    return;
  }
  read_req *r = calloc(1, sizeof(*r));
  if (r == NULL)
    abort();
  r->comp = malloc(sizeof(*r->comp));
  if (r->comp == NULL)
    abort();
  a->reads_in_flight++;
  r->agg = a;
  r->req = req;
  r->csv = csv;
  r->list = list;
  r->sort_field = view.sort_field;
  r->ascending = view.ascending;
  r->limit = view.limit;
  r->series = series;
  r->step = view.step;
  r->first_s = view.first_s;
  r->npoints = view.npoints;
  if (series) {
    r->points = calloc(view.npoints ? view.npoints : 1, sizeof(*r->points));
    if (r->points == NULL)
      abort();
  }
  snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
  snprintf(r->window, sizeof(r->window), "%s", window && *window ? window : "custom");
  gw_window_compose(from_s, to_s, now, r->comp);
  if (!list) {
    r->teams = calloc(1, sizeof(*r->teams));
    if (r->teams == NULL)
      abort();
    snprintf(r->teams[0].team, sizeof(r->teams[0].team), "%s", teamid);
    r->nteams = 1;
    read_next(r);
    return;
  }
  gw_buf key = GW_BUF_INIT;
  gw_agg_key_teams(&key, tenant);
  const char *argv[] = {"SMEMBERS", key.data};
  int rc = gw_redis_command(a->redis, 2, argv, NULL, on_members, r);
  gw_buf_free(&key);
  if (rc < 0) {
    respond_error(req, 503, "aggregates store unavailable");
    read_free(r);
  }
}

/* ------------------------------------------------------------------ per-team gauges */

/* The gauges of one team, in the order of tm_gauge_defs. */
enum {
  TM_INTERACTIONS,
  TM_SURVEYS,
  TM_NPS,
  TM_START_MEAN,
  TM_END_MEAN,
  TM_CHANGE_MEAN,
  TM_IMPROVED_SHARE,
  TM_GAUGES
};

static const struct {
  const char *name, *help;
} tm_gauge_defs[TM_GAUGES] = {
    {"goodwill_team_interactions", "Interactions of the team"},
    {"goodwill_team_surveys", "Survey answers of the team"},
    {"goodwill_team_nps", "Net Promoter Score of the team, -100..100 (NaN without surveys)"},
    {"goodwill_team_feeling_start_mean",
     "Mean customer feeling at the start, -1..1 (NaN without feeling)"},
    {"goodwill_team_feeling_end_mean",
     "Mean customer feeling at the end, -1..1 (NaN without feeling)"},
    {"goodwill_team_feeling_change_mean",
     "Mean change of customer feeling, end minus start (NaN without feeling)"},
    {"goodwill_team_improved_share",
     "Share of interactions whose feeling improved, 0..1 (NaN without feeling)"},
};

/* One team read by a refresh. */
typedef struct tm_team {
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  gw_agg_totals totals;
} tm_team;

/* The series a refresh set, so the next one can blank teams that left the export. */
typedef struct tm_series {
  gw_metric *g[TM_GAUGES];
} tm_series;

static void tm_reset(gw_aggregator *a) {
  for (size_t i = 0; i < a->tm_ntenants; i++)
    free(a->tm_tenants[i]);
  free(a->tm_tenants);
  a->tm_tenants = NULL;
  a->tm_ntenants = 0;
  free(a->tm_teams);
  a->tm_teams = NULL;
  a->tm_nteams = 0;
  a->tm_refreshing = false;
}

/* A refresh that cannot finish: the gauges keep the previous refresh's values. */
static void tm_fail(gw_aggregator *a, const char *what, int status, const gw_redis_reply *reply) {
  gw_metric_add(a->m_tm_failures, 1);
  if (!a->closing)
    GW_LOG(a->log, GW_LOG_WARN, "per-team metrics refresh failed, previous values kept",
           GW_LS("step", what), GW_LI("status", status),
           GW_LS("error", reply && reply->type == GW_REDIS_ERROR && reply->str ? reply->str : ""));
  tm_reset(a);
}

/* Publishes the teams read: every series of the previous refresh is blanked first (a team
 * that left the export shows NaN rather than a stale value), then the new values are set, all
 * within one callback, so a scrape never sees a half-done refresh. */
static void tm_publish(gw_aggregator *a) {
  for (size_t i = 0; i < a->tm_nprev; i++)
    for (size_t g = 0; g < TM_GAUGES; g++)
      gw_metric_set(a->tm_prev[i].g[g], NAN);
  tm_series *next = calloc(a->tm_nteams ? a->tm_nteams : 1, sizeof(*next));
  if (next == NULL)
    abort();
  for (size_t i = 0; i < a->tm_nteams; i++) {
    const tm_team *t = &a->tm_teams[i];
    gw_agg_summary s;
    gw_agg_summarize(&t->totals, &s);
    double v[TM_GAUGES] = {
        [TM_INTERACTIONS] = (double)s.interactions,
        [TM_SURVEYS] = (double)s.surveys,
        [TM_NPS] = s.has_surveys ? s.nps : NAN,
        [TM_START_MEAN] = s.has_feeling ? s.start_mean : NAN,
        [TM_END_MEAN] = s.has_feeling ? s.end_mean : NAN,
        [TM_CHANGE_MEAN] = s.has_feeling ? s.change_mean : NAN,
        [TM_IMPROVED_SHARE] = s.has_feeling ? s.improved_share : NAN,
    };
    const char *labels[2] = {t->tenant, t->team};
    for (size_t g = 0; g < TM_GAUGES; g++) {
      next[i].g[g] = gw_metrics_series(a->f_team[g], labels);
      gw_metric_set(next[i].g[g], v[g]);
    }
  }
  free(a->tm_prev);
  a->tm_prev = next;
  a->tm_nprev = a->tm_nteams;
  gw_metric_set(a->m_tm_teams, (double)a->tm_nteams);
  gw_metric_set(a->m_tm_seconds, (double)(uv_hrtime() - a->tm_started_ns) / 1e9);
  tm_reset(a);
}

static void tm_read_next(gw_aggregator *a);

static void tm_on_read(void *opaque, int status, const gw_redis_reply *reply) {
  gw_aggregator *a = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(a, "read", status, reply);
    return;
  }
  tm_team *t = &a->tm_teams[a->tm_next];
  for (size_t i = 0; i < reply->nelements; i++) {
    if (add_bucket_reply(&t->totals, &reply->elements[i]) < 0) {
      tm_fail(a, "a bucket holds a non-integer counter", 0, NULL);
      return;
    }
  }
  a->tm_next++;
  tm_read_next(a);
}

/* Reads the teams one at a time: the gauges are not urgent, and the apply path keeps the
 * Redis client's commands in flight to itself. */
static void tm_read_next(gw_aggregator *a) {
  if (a->closing) {
    tm_fail(a, "closing", -ECANCELED, NULL);
    return;
  }
  if (a->tm_next >= a->tm_nteams) {
    tm_publish(a);
    return;
  }
  const tm_team *t = &a->tm_teams[a->tm_next];
  int rc = eval_team_buckets(a, t->tenant, t->team, &a->tm_comp, GW_RES_1H, 0, 0, tm_on_read, a);
  if (rc < 0)
    tm_fail(a, "read", rc, NULL);
}

static void tm_teams_next(gw_aggregator *a);

static void tm_on_teams(void *opaque, int status, const gw_redis_reply *reply) {
  gw_aggregator *a = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(a, "team index", status, reply);
    return;
  }
  const char *tenant = a->tm_tenants[a->tm_next];
  /* Teams in id order within the tenant, then cut at the bound: the same teams every time. */
  const char **ids;
  size_t n = member_ids(reply, SIZE_MAX, &ids);
  tm_team *grown = realloc(a->tm_teams, (a->tm_nteams + n + 1) * sizeof(*grown));
  if (grown == NULL)
    abort();
  a->tm_teams = grown;
  for (size_t i = 0; i < n; i++) {
    tm_team *t = &a->tm_teams[a->tm_nteams++];
    memset(t, 0, sizeof(*t));
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    snprintf(t->team, sizeof(t->team), "%s", ids[i]);
  }
  free(ids);
  if (a->tm_nteams > a->cfg.team_metrics_max)
    a->tm_nteams = a->cfg.team_metrics_max;
  a->tm_next++;
  tm_teams_next(a);
}

/* Lists the teams of the tenants in id order until the bound is reached, then reads them. */
static void tm_teams_next(gw_aggregator *a) {
  if (a->closing) {
    tm_fail(a, "closing", -ECANCELED, NULL);
    return;
  }
  if (a->tm_next >= a->tm_ntenants || a->tm_nteams >= a->cfg.team_metrics_max) {
    a->tm_next = 0;
    tm_read_next(a);
    return;
  }
  gw_buf key = GW_BUF_INIT;
  gw_agg_key_teams(&key, a->tm_tenants[a->tm_next]);
  const char *argv[] = {"SMEMBERS", key.data};
  int rc = gw_redis_command(a->redis, 2, argv, NULL, tm_on_teams, a);
  gw_buf_free(&key);
  if (rc < 0)
    tm_fail(a, "team index", rc, NULL);
}

static void tm_on_tenants(void *opaque, int status, const gw_redis_reply *reply) {
  gw_aggregator *a = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(a, "tenant index", status, reply);
    return;
  }
  const char **ids;
  size_t n = member_ids(reply, SIZE_MAX, &ids);
  a->tm_tenants = calloc(n ? n : 1, sizeof(char *));
  if (a->tm_tenants == NULL)
    abort();
  for (; a->tm_ntenants < n; a->tm_ntenants++) {
    a->tm_tenants[a->tm_ntenants] = strdup(ids[a->tm_ntenants]);
    if (a->tm_tenants[a->tm_ntenants] == NULL)
      abort();
  }
  free(ids);
  a->tm_next = 0;
  tm_teams_next(a);
}

/* Every team_metrics_interval_ms: one refresh at a time, none while Redis is not connected
 * (counted as failed: the values shown are older than the interval says). */
static void on_tm_tick(uv_timer_t *h) {
  gw_aggregator *a = h->data;
  if (a->tm_refreshing || a->stopping || a->closing)
    return;
  if (!gw_redis_connected(a->redis)) {
    gw_metric_add(a->m_tm_failures, 1);
    GW_LOG(a->log, GW_LOG_DEBUG, "per-team metrics refresh skipped: redis not connected");
    return;
  }
  /* The window the read API's window=1h gives, composed the same way. */
  int64_t now = wall_s(), from_s, to_s;
  char err[200];
  if (gw_window_resolve("1h", NULL, NULL, now, &from_s, &to_s, err, sizeof(err)) < 0 ||
      gw_window_compose(from_s, to_s, now, &a->tm_comp) < 0) {
    gw_metric_add(a->m_tm_failures, 1);
    return;
  }
  a->tm_refreshing = true;
  a->tm_started_ns = uv_hrtime();
  const char *argv[] = {"SMEMBERS", GW_AGG_KEY_TENANTS};
  int rc = gw_redis_command(a->redis, 2, argv, NULL, tm_on_tenants, a);
  if (rc < 0)
    tm_fail(a, "tenant index", rc, NULL);
}

static int register_team_metrics(gw_aggregator *a) {
  struct {
    const char *name, *help;
    gw_metric_type type;
    gw_metric **out;
  } defs[] = {
      {"goodwill_aggregator_team_metrics_refresh_seconds",
       "Duration of the last successful refresh of the per-team gauges.", GW_METRIC_GAUGE,
       &a->m_tm_seconds},
      {"goodwill_aggregator_team_metrics_teams",
       "Teams exported in the per-team gauges (at most --team-metrics-max).", GW_METRIC_GAUGE,
       &a->m_tm_teams},
      {"goodwill_aggregator_team_metrics_refresh_failures_total",
       "Refreshes of the per-team gauges that failed or were skipped (Redis errors or not "
       "connected); the previous values stay.",
       GW_METRIC_COUNTER, &a->m_tm_failures},
  };
  for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
    gw_metric_family_def d = {defs[i].name, defs[i].help, defs[i].type, NULL, 0, NULL, 0, 0};
    gw_metric_family *f;
    int rc = gw_metrics_register(a->metrics, &d, &f);
    if (rc < 0)
      return rc;
    *defs[i].out = gw_metrics_series(f, NULL);
  }
  if (a->cfg.team_metrics_max == 0)
    return 0;
  static const char *const labels[] = {"tenant", "team"};
  for (size_t g = 0; g < TM_GAUGES; g++) {
    char help[256];
    snprintf(help, sizeof(help), "%s over the last hour, refreshed every --team-metrics-interval.",
             tm_gauge_defs[g].help);
    /* Bounded by the flag: series past it (teams entering after others left; series are
     * never removed) show as the family's _other series. */
    gw_metric_family_def d = {tm_gauge_defs[g].name,  help, GW_METRIC_GAUGE, labels, 2, NULL, 0,
                              a->cfg.team_metrics_max};
    int rc = gw_metrics_register(a->metrics, &d, &a->f_team[g]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------ admin, metrics */

static bool ready_cb(void *opaque, char *reason, size_t reason_len) {
  gw_aggregator *a = opaque;
  const char *fatal = gw_kafka_consumer_fatal(a->consumer);
  if (fatal != NULL || (fatal = gw_kafka_producer_fatal(a->producer)) != NULL) {
    snprintf(reason, reason_len, "kafka fatal error: %s", fatal);
    return false;
  }
  if (!gw_redis_connected(a->redis)) {
    snprintf(reason, reason_len, "redis not connected");
    return false;
  }
  if (!gw_kafka_consumer_assigned(a->consumer)) {
    snprintf(reason, reason_len, "kafka consumer not assigned");
    return false;
  }
  if (a->stopping) {
    snprintf(reason, reason_len, "stopping");
    return false;
  }
  return true;
}

/* A Kafka client failed for good: the owner drains and exits non-zero (see aggregator.h). */
static void on_kafka_fatal(void *opaque, const char *reason) {
  gw_aggregator *a = opaque;
  if (a->cfg.on_fatal)
    a->cfg.on_fatal(a->cfg.fatal_opaque, reason);
}

static void collect(void *opaque) {
  gw_aggregator *a = opaque;
  gw_metric_set(a->m_pending, (double)a->pending);
}

static int register_metrics(gw_aggregator *a) {
  struct {
    const char *name, *help;
    gw_metric_type type;
    gw_metric **out;
  } defs[] = {
      {"goodwill_aggregator_records_consumed_total", "Records read from goodwill.scored.v1.",
       GW_METRIC_COUNTER, &a->m_consumed},
      {"goodwill_aggregator_records_applied_total",
       "Records whose increments Redis applied (first time seen).", GW_METRIC_COUNTER,
       &a->m_applied},
      {"goodwill_aggregator_records_duplicate_total",
       "Records Redis had already applied (replays), skipped by the dedupe set.", GW_METRIC_COUNTER,
       &a->m_duplicate},
      {"goodwill_aggregator_records_late_total",
       "Records older than every retained bucket (sent to the DLQ).", GW_METRIC_COUNTER,
       &a->m_late},
      {"goodwill_aggregator_flushes_total", "Team batches applied in Redis.", GW_METRIC_COUNTER,
       &a->m_flushes},
      {"goodwill_aggregator_redis_errors_total",
       "Failed Redis calls (timeouts, broken connections, error replies).", GW_METRIC_COUNTER,
       &a->m_redis_errors},
      {"goodwill_aggregator_pending_records", "Records consumed and not yet done.", GW_METRIC_GAUGE,
       &a->m_pending},
  };
  for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
    gw_metric_family_def d = {defs[i].name, defs[i].help, defs[i].type, NULL, 0, NULL, 0, 0};
    gw_metric_family *f;
    int rc = gw_metrics_register(a->metrics, &d, &f);
    if (rc < 0)
      return rc;
    *defs[i].out = gw_metrics_series(f, NULL);
  }
  gw_metric_family_def h = {"goodwill_aggregator_flush_duration_seconds",
                            "Time from sending a team batch to Redis's acknowledgement.",
                            GW_METRIC_HISTOGRAM,
                            NULL,
                            0,
                            gw_metrics_latency_buckets_s,
                            gw_metrics_latency_buckets_count,
                            0};
  gw_metric_family *f;
  int rc = gw_metrics_register(a->metrics, &h, &f);
  if (rc < 0)
    return rc;
  a->m_flush_seconds = gw_metrics_series(f, NULL);
  static const char *const api_labels[] = {"route", "status"};
  gw_metric_family_def ar = {"goodwill_aggregator_api_requests_total",
                             "Read API answers by route and HTTP status (the HTTP layer's own "
                             "answers included).",
                             GW_METRIC_COUNTER,
                             api_labels,
                             2,
                             NULL,
                             0,
                             64};
  if ((rc = gw_metrics_register(a->metrics, &ar, &a->f_api_requests)) < 0)
    return rc;
  gw_metric_family_def ad = {"goodwill_aggregator_api_request_duration_seconds",
                             "Time from a complete read API request to its answer (Redis reads "
                             "included), by route and status.",
                             GW_METRIC_HISTOGRAM,
                             api_labels,
                             2,
                             gw_metrics_latency_buckets_s,
                             gw_metrics_latency_buckets_count,
                             64};
  if ((rc = gw_metrics_register(a->metrics, &ad, &a->f_api_duration)) < 0)
    return rc;
  static const char *const reason_label[] = {"reason"};
  gw_metric_family_def dl = {"goodwill_aggregator_records_dlq_total",
                             "Records sent to goodwill.dlq.v1, by reason.",
                             GW_METRIC_COUNTER,
                             reason_label,
                             1,
                             NULL,
                             0,
                             0};
  rc = gw_metrics_register(a->metrics, &dl, &a->f_dlq);
  if (rc < 0)
    return rc;
  /* Show the known reasons at 0 from the start, so rate() works from the first scrape. */
  static const char *const reasons[] = {"undecodable", "invalid", "too_late", "future"};
  for (size_t i = 0; i < 4; i++)
    gw_metrics_series(a->f_dlq, &reasons[i]);
  gw_metric_family_def tk = {"goodwill_aggregator_auth_tokens",
                             "Read API bearer tokens in use (from the tokens file; 0 in dev mode).",
                             GW_METRIC_GAUGE,
                             NULL,
                             0,
                             NULL,
                             0,
                             0};
  rc = gw_metrics_register(a->metrics, &tk, &f);
  if (rc < 0)
    return rc;
  a->m_tokens = gw_metrics_series(f, NULL);
  static const char *const result_label[] = {"result"};
  gw_metric_family_def rl = {"goodwill_aggregator_auth_reloads_total",
                             "Reloads of the read API tokens file (SIGHUP) by result: ok, or "
                             "failed (the previous tokens stay in use).",
                             GW_METRIC_COUNTER,
                             result_label,
                             1,
                             NULL,
                             0,
                             0};
  rc = gw_metrics_register(a->metrics, &rl, &a->f_reloads);
  if (rc < 0)
    return rc;
  if ((rc = register_team_metrics(a)) < 0)
    return rc;
  return gw_metrics_on_collect(a->metrics, collect, a);
}

/* ------------------------------------------------------------------ start and stop */

static void finish(gw_aggregator *a) {
  for (size_t i = 0; i < TEAM_HASH_SIZE; i++) {
    while (a->teams[i]) {
      team *t = a->teams[i];
      a->teams[i] = t->hnext;
      while (t->head) {
        batch_node *n = t->head;
        t->head = n->next;
        node_free(n);
      }
      free(t);
    }
  }
  while (a->dlq_retry) {
    dlq_item *d = a->dlq_retry;
    a->dlq_retry = d->next;
    dlq_free(d);
  }
  tm_reset(a);
  free(a->tm_prev);
  gw_redis_script_free(a->apply_script);
  gw_redis_script_free(a->read_script);
  gw_offsets_free(a->offsets);
  gw_metrics_free(a->metrics);
  free(a->redis_storage);
  free(a->tokens_file);
  gw_auth_free(a->auth);
  void (*done)(void *, int) = a->done;
  void *opaque = a->done_opaque;
  int status = a->stop_status;
  free(a);
  if (done)
    done(opaque, status);
}

static void one_closed(void *opaque) {
  gw_aggregator *a = opaque;
  if (--a->handles_open == 0)
    finish(a);
}

static void timer_closed(uv_handle_t *h) {
  one_closed(h->data);
}

static void consumer_closed(void *opaque) {
  one_closed(opaque);
}

static void producer_closed(void *opaque) {
  gw_aggregator *a = opaque;
  /* The consumer goes last: its close commits the offsets stored up to here. */
  a->consumer_closing = true;
  if (a->consumer)
    gw_kafka_consumer_close(a->consumer, consumer_closed, a);
  else
    consumer_closed(a);
  one_closed(a);
}

static void redis_closed(void *opaque) {
  gw_aggregator *a = opaque;
  /* The producer's final delivery reports may still settle DLQ records and store offsets. */
  if (a->producer)
    gw_kafka_producer_close(a->producer, 5000, producer_closed, a);
  else
    producer_closed(a);
  one_closed(a);
}

/* Closes everything; each part calls one_closed once. Redis first (batches still in flight
 * fail and stay uncommitted, to be replayed), then the DLQ producer, then the consumer. */
static void close_all(gw_aggregator *a) {
  a->closing = true;
  if (!drained(a))
    a->stop_status = -ETIMEDOUT;
  GW_LOG(a->log, GW_LOG_INFO, "closing", GW_LI("pending", a->pending));
  a->handles_open = 1;  /* held until every close below is started */
  a->handles_open += 3; /* tick, grace and team metrics timers */
  uv_close((uv_handle_t *)&a->tick, timer_closed);
  uv_close((uv_handle_t *)&a->grace, timer_closed);
  uv_close((uv_handle_t *)&a->tm_timer, timer_closed);
  if (a->admin) {
    a->handles_open++;
    gw_admin_close(a->admin, one_closed, a);
  }
  if (a->api) {
    a->handles_open++;
    gw_http_server_close(a->api, one_closed, a);
  }
  a->handles_open += 3; /* the redis -> producer -> consumer chain */
  if (a->redis)
    gw_redis_close(a->redis, redis_closed, a);
  else
    redis_closed(a);
  one_closed(a);
}

static void on_grace(uv_timer_t *h) {
  gw_aggregator *a = h->data;
  if (!a->closing) {
    GW_LOG(a->log, GW_LOG_WARN, "shutdown grace over with records pending; they will be replayed",
           GW_LI("pending", a->pending));
    close_all(a);
  }
}

void gw_aggregator_stop(gw_aggregator *a, void (*done)(void *opaque, int status), void *opaque) {
  if (a->stopping)
    return;
  a->stopping = true;
  a->done = done;
  a->done_opaque = opaque;
  GW_LOG(a->log, GW_LOG_INFO, "stopping", GW_LI("pending", a->pending));
  if (a->consumer && !a->paused)
    gw_kafka_consumer_pause(a->consumer);
  a->paused = true;
  uv_timer_start(&a->grace, on_grace, a->cfg.shutdown_grace_ms, 0);
  /* Flush what is pending now rather than at the next tick. */
  for (size_t i = 0; i < TEAM_HASH_SIZE; i++)
    for (team *t = a->teams[i]; t; t = t->hnext)
      if (!t->in_flight && t->head)
        team_send(t);
  if (drained(a))
    close_all(a);
}

int gw_aggregator_api_port(const gw_aggregator *a) {
  return gw_http_server_port(a->api);
}

int gw_aggregator_admin_port(const gw_aggregator *a) {
  return gw_admin_port(a->admin);
}

/* Tears down a partially started aggregator synchronously where possible; used only when
 * start fails, before the loop ran any callback of ours. */
static void abort_start(gw_aggregator *a) {
  a->done = NULL;
  close_all(a);
}

int gw_aggregator_start(uv_loop_t *loop, const gw_aggregator_config *cfg, gw_aggregator **out) {
  *out = NULL;
  char auth_err[512] = "";
  if (gw_auth_mode_check(cfg->tokens_file, cfg->dev_mode, "docs/API-read.md", auth_err,
                         sizeof(auth_err)) != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid aggregator configuration", GW_LS("reason", auth_err));
    return -EINVAL;
  }
  gw_auth *auth = NULL;
  if (!cfg->dev_mode) {
    int arc = gw_auth_load_file(cfg->tokens_file, &auth, auth_err, sizeof(auth_err));
    if (arc != 0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "the tokens file cannot be used", GW_LS("reason", auth_err));
      return arc == -ENOMEM ? arc : -EINVAL;
    }
  }
  gw_aggregator *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    gw_auth_free(auth);
    return -ENOMEM;
  }
  a->auth = auth;
  a->dev_mode = cfg->dev_mode;
  if (!cfg->dev_mode) {
    a->tokens_file = strdup(cfg->tokens_file);
    if (a->tokens_file == NULL)
      abort(); /* a path */
  }
  a->loop = loop;
  a->cfg = *cfg;
  a->log = cfg->log;
  if (a->cfg.max_batch == 0 || a->cfg.max_batch > GW_AGG_BATCH_MAX)
    a->cfg.max_batch = GW_AGG_BATCH_MAX;
  if (a->cfg.max_pending == 0)
    a->cfg.max_pending = 1;
  if (a->cfg.flush_interval_ms == 0)
    a->cfg.flush_interval_ms = 1;
  char err[512];
  int rc;

  uv_timer_init(loop, &a->tick);
  uv_timer_init(loop, &a->grace);
  uv_timer_init(loop, &a->tm_timer);
  a->tick.data = a;
  a->grace.data = a;
  a->tm_timer.data = a;
  if (a->cfg.team_metrics_interval_ms == 0)
    a->cfg.team_metrics_interval_ms = 30000;
  if ((rc = gw_metrics_new(&a->metrics)) < 0 || (rc = register_metrics(a)) < 0 ||
      (rc = gw_offsets_new(&a->offsets)) < 0)
    goto fail;

  gw_buf src = GW_BUF_INIT;
  gw_agg_apply_script(&src);
  rc = gw_redis_script_new(&a->apply_script, src.data);
  gw_buf_reset(&src);
  gw_agg_read_script(&src);
  if (rc == 0)
    rc = gw_redis_script_new(&a->read_script, src.data);
  gw_buf_free(&src);
  if (rc < 0)
    goto fail;

  gw_redis_config rcfg = {0};
  rc = gw_redis_parse_url(cfg->redis_url, &rcfg, &a->redis_storage, err, sizeof(err));
  if (rc < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "invalid --redis-url", GW_LS("error", err));
    goto fail;
  }
  rcfg.connect_timeout_ms = 2000;
  rcfg.command_timeout_ms = 5000;
  rcfg.reconnect_min_ms = 100;
  rcfg.reconnect_max_ms = 5000;
  rcfg.max_in_flight = 1024;
  rcfg.log = cfg->log;
  if ((rc = gw_redis_new(&a->redis, loop, &rcfg)) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "redis client", GW_LI("error", rc));
    goto fail;
  }

  gw_kafka_producer_config pcfg = {
      .bootstrap = cfg->kafka_bootstrap,
      .client_id = "goodwill-aggregator-dlq",
      .properties = cfg->kafka_properties,
      .nproperties = cfg->nkafka_properties,
      .delivery_timeout_ms = 30000,
      .queue_max_messages = 100000,
      .linger_ms = 5,
      .log = cfg->log,
      .on_fatal = on_kafka_fatal,
      .fatal_opaque = a,
  };
  if ((rc = gw_kafka_producer_new(&a->producer, loop, &pcfg, err, sizeof(err))) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "kafka producer", GW_LS("error", err));
    goto fail;
  }
  const char *topics[] = {GW_TOPIC_SCORED};
  gw_kafka_consumer_config ccfg = {
      .bootstrap = cfg->kafka_bootstrap,
      .group_id = cfg->group,
      .client_id = "goodwill-aggregator",
      .topics = topics,
      .ntopics = 1,
      .properties = cfg->kafka_properties,
      .nproperties = cfg->nkafka_properties,
      .session_timeout_ms = cfg->session_timeout_ms,
      .commit_interval_ms = 1000,
      .log = cfg->log,
      .metrics = a->metrics,
      .metrics_prefix = "goodwill_aggregator",
  };
  gw_kafka_consumer_handlers handlers = {on_message, on_assign, on_revoke, on_kafka_fatal};
  if ((rc = gw_kafka_consumer_new(&a->consumer, loop, &ccfg, &handlers, a, err, sizeof(err))) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "kafka consumer", GW_LS("error", err));
    goto fail;
  }

  gw_http_config hcfg = {
      .host = cfg->api_host,
      .port = cfg->api_port,
      .max_body_bytes = 4096,
      .max_header_bytes = 16384,
      .max_connections = 512,
      .request_timeout_ms = 30000,
      .server_name = "goodwill-aggregator",
      .log = cfg->log,
      .on_server_answer = on_api_server_answer,
  };
  if ((rc = gw_http_server_start(&a->api, loop, &hcfg, api_handler, a)) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "read API listen failed", GW_LS("host", cfg->api_host),
           GW_LI("port", cfg->api_port), GW_LI("error", rc));
    goto fail;
  }
  gw_admin_config acfg = {cfg->admin_host, cfg->admin_port, a->metrics, cfg->log, ready_cb, a};
  if ((rc = gw_admin_start(&a->admin, loop, &acfg)) < 0) {
    GW_LOG(a->log, GW_LOG_ERROR, "admin listen failed", GW_LS("host", cfg->admin_host),
           GW_LI("port", cfg->admin_port), GW_LI("error", rc));
    goto fail;
  }
  uv_timer_start(&a->tick, on_tick, cfg->flush_interval_ms ? cfg->flush_interval_ms : 1,
                 cfg->flush_interval_ms ? cfg->flush_interval_ms : 1);
  if (a->cfg.team_metrics_max > 0)
    uv_timer_start(&a->tm_timer, on_tm_tick, a->cfg.team_metrics_interval_ms,
                   a->cfg.team_metrics_interval_ms);
  GW_LOG(a->log, GW_LOG_INFO, "listening", GW_LS("api_host", cfg->api_host),
         GW_LI("api_port", gw_http_server_port(a->api)), GW_LS("admin_host", cfg->admin_host),
         GW_LI("admin_port", gw_admin_port(a->admin)));
  gw_metric_set(a->m_tokens, (double)gw_auth_count(a->auth));
  if (a->dev_mode)
    GW_LOG(a->log, GW_LOG_WARN, GW_AUTH_DEV_MODE_WARNING("read the aggregates of"));
  else
    GW_LOG(a->log, GW_LOG_INFO, "read API bearer tokens loaded", GW_LS("file", a->tokens_file),
           GW_LI("tokens", (long long)gw_auth_count(a->auth)));
  *out = a;
  return 0;

fail:
  a->stopping = true;
  abort_start(a);
  return rc < 0 ? rc : -EINVAL;
}

int gw_aggregator_reload_tokens(gw_aggregator *a) {
  if (a->dev_mode || a->tokens_file == NULL) {
    GW_LOG(a->log, GW_LOG_WARN, "no tokens file to reload (dev mode)");
    return -ENOTSUP;
  }
  gw_auth *fresh = NULL;
  char err[512] = "";
  int rc = gw_auth_load_file(a->tokens_file, &fresh, err, sizeof(err));
  if (rc != 0) {
    const char *labels[1] = {"failed"};
    gw_metric_add(gw_metrics_series(a->f_reloads, labels), 1);
    GW_LOG(a->log, GW_LOG_ERROR, "tokens file not reloaded; the previous tokens stay in use",
           GW_LS("reason", err), GW_LI("tokens", (long long)gw_auth_count(a->auth)));
    return rc;
  }
  /* Reads in flight copied their tenant when they started, so the old set can go at once. */
  gw_auth_free(a->auth);
  a->auth = fresh;
  const char *labels[1] = {"ok"};
  gw_metric_add(gw_metrics_series(a->f_reloads, labels), 1);
  gw_metric_set(a->m_tokens, (double)gw_auth_count(fresh));
  GW_LOG(a->log, GW_LOG_INFO, "tokens file reloaded", GW_LS("file", a->tokens_file),
         GW_LI("tokens", (long long)gw_auth_count(fresh)));
  return 0;
}
