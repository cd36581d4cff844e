/*
 * Consuming and applying (apply.h): goodwill.scored.v1 -> per-team batches -> one Lua apply
 * per team batch -> offsets stored after Redis acknowledged; undecodable and unappliable
 * records to goodwill.dlq.v1. Loop thread only.
 */
#include "apply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/aggregates.h"
#include "goodwill/buf.h"
#include "goodwill/hash.h"
#include "goodwill/kafka.h"
#include "goodwill/offsets.h"
#include "goodwill/window.h"
#include "marks.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
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
  struct gw_agg_applier *ap;
  uint64_t hash; /* team_hash of tenant and team: its key in the team table */
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
  struct gw_agg_applier *ap;
  int32_t partition;
  int64_t offset;
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  const char *reason; /* static string */
  char error[200];
} dlq_item;

struct gw_agg_applier {
  /* Every failed Redis call is counted in redis_errors and explained in the log, at most a few
   * lines a second (the rest are counted in the next line's "suppressed"). */
  gw_log_limit error_lines;
  uv_loop_t *loop;
  const gw_log *log;
  gw_redis *redis;             /* borrowed; set by start */
  gw_metric *redis_errors;     /* borrowed */
  const char *kafka_bootstrap; /* the configuration's, borrowed */
  const char *const *kafka_properties;
  size_t nkafka_properties;
  const char *group;
  uint64_t session_timeout_ms;
  uint64_t flush_interval_ms;
  size_t max_batch;
  size_t max_pending;
  gw_agg_horizon horizon;   /* the dedupe horizon of every batch */
  gw_log_limit horizon_log; /* the configuration error of a record past the horizon */
  void (*drained)(void *opaque);
  void (*fatal)(void *opaque, const char *reason);
  gw_metrics
      *metrics; /* the daemon's registry (borrowed), for the consumer's lost-records series */
  void *drained_opaque; /* the owner's opaque, for drained and fatal */

  gw_redis_script *apply_script;
  gw_agg_marks *marks; /* the applied marks: Redis losing applied records is healed */
  gw_kafka_consumer *consumer;
  gw_kafka_producer *producer;
  gw_offsets *offsets;
  uv_timer_t tick;
  bool started;        /* the tick timer is initialised: halt closes it */
  gw_hash_table teams; /* team * by team_hash; walked by the tick and by drain */
  dlq_item *dlq_retry; /* DLQ writes that failed, resent on the next tick */
  size_t pending;      /* records consumed and not yet done */
  size_t dlq_in_flight;
  bool paused;
  bool draining;         /* drain was called: the daemon stops */
  bool closing;          /* halt was called: nothing is sent any more */
  bool consumer_closing; /* no more offset stores */
  int handles_open;      /* the tick timer, the producer and the consumer not yet closed */
  void (*closed)(void *opaque);
  void *closed_opaque;

  gw_metric *m_consumed, *m_applied, *m_duplicate, *m_late, *m_past_horizon, *m_flushes;
  gw_metric *m_flush_seconds, *m_pending;
  gw_metric_family *f_dlq; /* {reason} */
};

static const char *const topic_scored = GW_TOPIC_SCORED;

static uint64_t now_ms(const gw_agg_applier *ap) {
  return uv_now(ap->loop);
}

static int64_t wall_s(void) {
  return (int64_t)time(NULL);
}

/* ------------------------------------------------------------------ offsets */

static void settle(gw_agg_applier *ap, int32_t partition, int64_t offset) {
  int64_t next;
  if (gw_offsets_done(ap->offsets, topic_scored, partition, offset, &next) &&
      !ap->consumer_closing) {
    int rc = gw_kafka_consumer_store(ap->consumer, topic_scored, partition, next);
    if (rc == 0)
      gw_agg_marks_stored(ap->marks, partition, next);
    if (rc < 0 && rc != -ESRCH)
      GW_LOG(ap->log, GW_LOG_WARN, "offset store failed", GW_LI("partition", partition),
             GW_LI("offset", next), GW_LI("error", rc));
  }
  if (ap->pending > 0)
    ap->pending--;
  if (ap->paused && !ap->draining && !ap->closing && ap->pending <= ap->max_pending / 2) {
    ap->paused = false;
    gw_kafka_consumer_resume(ap->consumer);
    GW_LOG(ap->log, GW_LOG_INFO, "consumer resumed", GW_LI("pending", ap->pending));
  }
}

/* ------------------------------------------------------------------ DLQ */

static void dlq_free(dlq_item *d) {
  free(d->key);
  free(d->value);
  free(d);
}

static void dlq_send(gw_agg_applier *ap, dlq_item *d);

static void dlq_delivered(void *opaque, int status, const char *errstr, int32_t partition,
                          int64_t offset) {
  dlq_item *d = opaque;
  gw_agg_applier *ap = d->ap;
  ap->dlq_in_flight--;
  if (status == 0) {
    const char *labels[] = {d->reason};
    gw_metric_add(gw_metrics_series(ap->f_dlq, labels), 1);
    settle(ap, d->partition, d->offset);
    dlq_free(d);
    return;
  }
  GW_LOG(ap->log, GW_LOG_WARN, "dlq write failed, will retry", GW_LS("reason", d->reason),
         GW_LS("error", errstr ? errstr : ""));
  d->next = ap->dlq_retry;
  ap->dlq_retry = d;
}

static void dlq_send(gw_agg_applier *ap, dlq_item *d) {
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
  int rc = gw_kafka_produce(ap->producer, GW_TOPIC_DLQ, d->key, d->key_len, d->value, d->value_len,
                            h, sizeof(h) / sizeof(h[0]), dlq_delivered, d);
  if (rc < 0) {
    d->next = ap->dlq_retry;
    ap->dlq_retry = d;
    return;
  }
  ap->dlq_in_flight++;
}

static void to_dlq(gw_agg_applier *ap, const gw_kafka_message *m, const char *reason,
                   const char *error) {
  dlq_item *d = calloc(1, sizeof(*d));
  if (d == NULL)
    abort();
  d->ap = ap;
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
  GW_LOG(ap->log, GW_LOG_WARN, "record to dlq", GW_LS("reason", reason), GW_LS("error", error),
         GW_LI("partition", m->partition), GW_LI("offset", m->offset));
  dlq_send(ap, d);
}

/* ------------------------------------------------------------------ teams and batches */

/* FNV-1a 64 over tenant and team, each with its separator, so ("ab","c") and ("a","bc")
 * differ. Unkeyed is fine: the ids come from scored records, which goodwill wrote. */
static uint64_t team_hash(const char *tenant, const char *teamid) {
  return gw_fnv64_update_field(gw_fnv64_update_field(GW_FNV64_BASIS, tenant), teamid);
}

typedef struct team_key {
  const char *tenant, *team;
} team_key;

static bool team_eq(const void *item, const void *key) {
  const team *t = item;
  const team_key *k = key;
  return strcmp(t->tenant, k->tenant) == 0 && strcmp(t->team, k->team) == 0;
}

static batch_node *node_new(team *t) {
  batch_node *n = calloc(1, sizeof(*n));
  if (n == NULL || gw_agg_batch_new(&n->batch, t->tenant, t->team, &t->ap->horizon) != 0)
    abort(); /* ids and horizon were validated before; only allocation can fail */
  return n;
}

static void node_free(batch_node *n) {
  gw_agg_batch_free(n->batch);
  free(n->refs);
  free(n);
}

static team *team_get(gw_agg_applier *ap, const char *tenant, const char *teamid) {
  uint64_t h = team_hash(tenant, teamid);
  team_key k = {tenant, teamid};
  team *t = gw_hash_table_find(&ap->teams, h, team_eq, &k);
  if (t != NULL)
    return t;
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    abort();
  t->ap = ap;
  t->hash = h;
  snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
  snprintf(t->team, sizeof(t->team), "%s", teamid);
  if (gw_hash_table_insert(&ap->teams, h, t) != 0)
    abort(); /* like the entry itself: only allocation can fail */
  return t;
}

static void team_send(team *t);

static void team_finish(team *t) {
  gw_agg_applier *ap = t->ap;
  batch_node *n = t->head;
  t->in_flight = false;
  if (t->cmds_failed) {
    gw_metric_add(ap->redis_errors, 1);
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : RETRY_MIN_MS;
    if (t->backoff_ms > RETRY_MAX_MS)
      t->backoff_ms = RETRY_MAX_MS;
    t->retry_at_ms = now_ms(ap) + t->backoff_ms;
    return;
  }
  t->backoff_ms = 0;
  t->registered = true;
  gw_metric_add(ap->m_flushes, 1);
  gw_metric_observe(ap->m_flush_seconds, (double)(uv_hrtime() - t->sent_ns) / 1e9);
  for (size_t i = 0; i < n->nrefs; i++)
    settle(ap, n->refs[i].partition, n->refs[i].offset);
  t->head = n->next;
  if (t->tail == n)
    t->tail = NULL;
  node_free(n);
  /* A full batch waiting behind this one goes now rather than at the next tick. */
  if (t->head && t->head->nrefs >= ap->max_batch && !ap->closing)
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
    GW_LOG_LIMITED(t->ap->log, &t->ap->error_lines, now_ms(t->ap), GW_LOG_WARN,
                   "team index update failed", GW_LS("tenant", t->tenant), GW_LS("team", t->team),
                   GW_LS("error", gw_redis_failure_reason(status, reply)), GW_LI("status", status));
  }
  sub_done(t);
}

static void on_apply(void *opaque, int status, const gw_redis_reply *reply) {
  team *t = opaque;
  gw_agg_applier *ap = t->ap;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY || reply->nelements != 2 ||
      reply->elements[0].type != GW_REDIS_INTEGER || reply->elements[1].type != GW_REDIS_INTEGER) {
    t->cmds_failed = true;
    GW_LOG_LIMITED(ap->log, &ap->error_lines, now_ms(ap), GW_LOG_WARN,
                   "apply failed, batch kept for retry", GW_LS("tenant", t->tenant),
                   GW_LS("team", t->team), GW_LI("status", status),
                   GW_LS("error", reply && reply->type == GW_REDIS_ERROR ? reply->str
                                  : status == -ETIMEDOUT                 ? "timed out"
                                  : status < 0 ? "no reply (connection lost?)"
                                               : "unexpected reply"));
  } else {
    gw_metric_add(ap->m_applied, (double)reply->elements[0].integer);
    gw_metric_add(ap->m_duplicate, (double)reply->elements[1].integer);
  }
  sub_done(t);
}

/* Sends the head batch of t (sealing it). Every command either fails synchronously or calls
 * back once; the batch settles when all of them answered. */
static void team_send(team *t) {
  gw_agg_applier *ap = t->ap;
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
    int rc1 = gw_redis_command(ap->redis, 3, argv1, NULL, on_sadd, t);
    if (rc1 < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
    }
    t->cmds_outstanding++;
    int rc2 = gw_redis_command(ap->redis, 3, argv2, NULL, on_sadd, t);
    if (rc2 < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
    }
    if (rc1 < 0 || rc2 < 0)
      GW_LOG_LIMITED(ap->log, &ap->error_lines, now_ms(ap), GW_LOG_WARN,
                     "team index update not sent, batch kept for retry", GW_LS("tenant", t->tenant),
                     GW_LS("team", t->team), GW_LI("status", rc1 < 0 ? rc1 : rc2),
                     GW_LS("error", gw_redis_failure_reason(rc1 < 0 ? rc1 : rc2, NULL)));
    gw_buf_free(&key);
  }
  if (gw_agg_batch_records(n->batch) > 0 && !t->cmds_failed) {
    gw_agg_call c;
    gw_agg_batch_call(n->batch, &c);
    t->cmds_outstanding++;
    int rc = gw_redis_eval(ap->redis, ap->apply_script, c.nkeys, c.keys, c.keylens, c.nargs, c.args,
                           c.arglens, on_apply, t);
    if (rc < 0) {
      t->cmds_outstanding--;
      t->cmds_failed = true;
      GW_LOG_LIMITED(ap->log, &ap->error_lines, now_ms(ap), GW_LOG_WARN,
                     "apply not sent, batch kept for retry", GW_LS("tenant", t->tenant),
                     GW_LS("team", t->team), GW_LI("status", rc),
                     GW_LS("error", gw_redis_failure_reason(rc, NULL)));
    }
  }
  sub_done(t);
}

/* ------------------------------------------------------------------ consuming */

/* A record that can no longer be applied exactly once: to the DLQ (reason too_late), counted
 * and logged with why. Within the bounds of goodwill/event.h neither case happens, so both say
 * that a record was delivered later than the configured Kafka retention allows. */
static void too_late(gw_agg_applier *ap, const gw_kafka_message *m, const gw_agg_record *r,
                     gw_agg_verdict v, int64_t now) {
  char when[GW_ISO_LEN], recv[GW_ISO_LEN], err[200];
  gw_window_format_iso(r->event_s, when);
  gw_window_format_iso(r->received_s, recv);
  if (v == GW_AGG_PAST_HORIZON) {
    gw_metric_add(ap->m_past_horizon, 1);
    snprintf(err, sizeof(err),
             "received %s, %" PRId64 " s ago: past its dedupe horizon (dedupe sets are kept "
             "their day + 1 day + %" PRId64 " s), it could count twice",
             recv, now - r->received_s, gw_agg_replay_window_s(&ap->horizon));
    GW_LOG_LIMITED(ap->log, &ap->horizon_log, now_ms(ap), GW_LOG_ERROR,
                   "configuration error: a record was delivered after the dedupe horizon; Kafka "
                   "keeps records longer than --kafka-retention says (set it to the topics' "
                   "retention.ms + segment.ms)",
                   GW_LS("received_at", recv),
                   GW_LI("kafka_retention_s", ap->horizon.kafka_retention_s),
                   GW_LI("partition", m->partition), GW_LI("offset", m->offset));
  } else {
    gw_metric_add(ap->m_late, 1);
    snprintf(err, sizeof(err), "occurred_at %s (received %s) is older than every retained bucket",
             when, recv);
  }
  to_dlq(ap, m, gw_agg_verdict_name(v), err);
}

static void on_message(void *opaque, const gw_kafka_message *m) {
  gw_agg_applier *ap = opaque;
  gw_metric_add(ap->m_consumed, 1);
  if (gw_offsets_begin(ap->offsets, m->topic, m->partition, m->offset) < 0) {
    GW_LOG(ap->log, GW_LOG_WARN, "offset out of order, ignored", GW_LI("partition", m->partition),
           GW_LI("offset", m->offset));
    return;
  }
  ap->pending++;
  if (!ap->paused && ap->pending > ap->max_pending) {
    ap->paused = true;
    gw_kafka_consumer_pause(ap->consumer);
    GW_LOG(ap->log, GW_LOG_INFO, "consumer paused", GW_LI("pending", ap->pending));
  }
  Goodwill__V1__ScoredRecord *rec =
      goodwill__v1__scored_record__unpack(NULL, m->value_len, (const uint8_t *)m->value);
  if (rec == NULL) {
    to_dlq(ap, m, "undecodable", "not a goodwill.v1.ScoredRecord protobuf");
    return;
  }
  gw_agg_record r;
  char err[200];
  int rc = gw_agg_record_from_scored(rec, &r, err, sizeof(err));
  goodwill__v1__scored_record__free_unpacked(rec, NULL);
  if (rc < 0) {
    to_dlq(ap, m, "invalid", err);
    return;
  }
  int64_t now = wall_s();
  if (r.received_s <= 0) {
    /* A record of a scorer before received_at_ms: its Kafka timestamp (when the scorer wrote
     * it) is the same on every replay of this Kafka record, which this clock is not. */
    r.received_s = m->timestamp_ms > 0 ? m->timestamp_ms / 1000 : now;
  }
  /* Event time is not judged here (ingest or the scorer judged it against received_at): the
   * record goes to every bucket still retained. It is refused only when it cannot be applied
   * exactly once any more, which the bounds of goodwill/event.h rule out for a record that was
   * not kept in Kafka longer than --kafka-retention. */
  gw_agg_verdict v = gw_agg_classify(&r, &ap->horizon, now, NULL);
  if (v != GW_AGG_APPLY) {
    too_late(ap, m, &r, v, now);
    return;
  }
  team *t = team_get(ap, r.tenant, r.team);
  if (t->tail == NULL || t->tail->sealed || t->tail->nrefs >= ap->max_batch) {
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
  rc = gw_agg_batch_add(n->batch, &r, now);
  if (rc != GW_AGG_APPLY) {
    /* Not reached: the same record at the same now was just classified APPLY. */
    too_late(ap, m, &r, rc == GW_AGG_PAST_HORIZON ? GW_AGG_PAST_HORIZON : GW_AGG_TOO_LATE, now);
    return;
  }
  if (n->nrefs == n->cap) {
    n->cap = n->cap ? n->cap * 2 : 64;
    n->refs = realloc(n->refs, n->cap * sizeof(*n->refs));
    if (n->refs == NULL)
      abort();
  }
  n->refs[n->nrefs++] = (rec_ref){m->partition, m->offset};
  if (n->nrefs >= ap->max_batch && !t->in_flight && t->head == n && t->retry_at_ms <= now_ms(ap))
    team_send(t);
}

static void on_assign(void *opaque, const gw_kafka_partition *parts, size_t nparts) {
  gw_agg_applier *ap = opaque;
  for (size_t i = 0; i < nparts; i++)
    if (strcmp(parts[i].topic, topic_scored) == 0)
      gw_agg_marks_assigned(ap->marks, parts[i].partition);
  GW_LOG(ap->log, GW_LOG_INFO, "partitions assigned", GW_LI("count", nparts));
}

static int committed_offset(void *opaque, int32_t partition, int64_t *out) {
  gw_agg_applier *ap = opaque;
  return ap->consumer != NULL
             ? gw_kafka_consumer_committed(ap->consumer, topic_scored, partition, out)
             : -EAGAIN;
}

/* Redis lost applied records of partition (marks.h): read it again from `from`. Offsets of
 * the partition are tracked anew, as after a revocation and a new assignment; the batches in
 * flight still apply (deduplicated), and every team's index entries are written again, since
 * the index sets may have been lost with the rest. */
static void heal(void *opaque, int32_t partition, int64_t from) {
  gw_agg_applier *ap = opaque;
  gw_offsets_forget(ap->offsets, topic_scored, partition);
  int rc = gw_kafka_consumer_seek(ap->consumer, topic_scored, partition, from);
  if (rc < 0)
    GW_LOG(ap->log, GW_LOG_ERROR, "cannot read the partition again", GW_LI("partition", partition),
           GW_LI("from", from), GW_LI("error", rc));
  gw_hash_iter it;
  gw_hash_iter_init(&ap->teams, &it);
  for (team *t; (t = gw_hash_table_next(&ap->teams, &it)) != NULL;)
    t->registered = false;
}

static void on_revoke(void *opaque, const gw_kafka_partition *parts, size_t nparts) {
  gw_agg_applier *ap = opaque;
  /* Records of these partitions still pending are applied anyway (harmless: the new owner's
   * replay is deduplicated), but their offsets are no longer ours to store. */
  for (size_t i = 0; i < nparts; i++) {
    gw_offsets_forget(ap->offsets, parts[i].topic, parts[i].partition);
    if (strcmp(parts[i].topic, topic_scored) == 0)
      gw_agg_marks_revoked(ap->marks, parts[i].partition);
  }
  GW_LOG(ap->log, GW_LOG_INFO, "partitions revoked", GW_LI("count", nparts));
}

/* ------------------------------------------------------------------ the flush tick */

static bool drained(const gw_agg_applier *ap) {
  return ap->pending == 0 && ap->dlq_in_flight == 0 && ap->dlq_retry == NULL;
}

static void on_tick(uv_timer_t *h) {
  gw_agg_applier *ap = h->data;
  uint64_t now = now_ms(ap);
  if (!ap->closing)
    gw_agg_marks_tick(ap->marks, now);
  /* Error lines held back by the rate limit are told as soon as the limit allows one more,
   * even when no new error comes to carry their count. */
  if (ap->error_lines.suppressed > 0)
    GW_LOG_LIMITED(ap->log, &ap->error_lines, now, GW_LOG_WARN,
                   "redis errors: similar lines were held back (see suppressed)",
                   GW_LS("part", "apply"));
  dlq_item *retry = ap->dlq_retry;
  ap->dlq_retry = NULL;
  while (retry) {
    dlq_item *d = retry;
    retry = d->next;
    dlq_send(ap, d);
  }
  /* team_send never calls back before it returns (a Redis command fails synchronously or
   * answers later), so nothing adds a team while the table is walked. */
  gw_hash_iter it;
  gw_hash_iter_init(&ap->teams, &it);
  team *t;
  while ((t = gw_hash_table_next(&ap->teams, &it)) != NULL) {
    if (!t->in_flight && t->head != NULL && t->retry_at_ms <= now)
      team_send(t);
    if (!t->in_flight && t->head == NULL && ++t->idle_ticks > TEAM_IDLE_TICKS) {
      gw_hash_table_remove_current(&ap->teams, &it);
      free(t);
    }
  }
  if (ap->draining && !ap->closing && drained(ap))
    ap->drained(ap->drained_opaque);
}

/* ------------------------------------------------------------------ metrics */

static const char *const reason_labels[] = {"reason"};

static const gw_metric_spec applier_metrics[] = {
    GW_METRIC_SERIES(gw_agg_applier, m_consumed,
                     .name = "goodwill_aggregator_records_consumed_total",
                     .help = "Records read from goodwill.scored.v1.", .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_applied, .name = "goodwill_aggregator_records_applied_total",
                     .help = "Records whose increments Redis applied (first time seen).",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_duplicate,
                     .name = "goodwill_aggregator_records_duplicate_total",
                     .help = "Records Redis had already applied (replays), skipped by the dedupe "
                             "set.",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_late, .name = "goodwill_aggregator_records_late_total",
                     .help = "Records older than every retained bucket (sent to the DLQ as "
                             "too_late).",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_past_horizon,
                     .name = "goodwill_aggregator_records_past_horizon_total",
                     .help = "Records delivered after their dedupe horizon (received longer ago "
                             "than --kafka-retention allows; sent to the DLQ as too_late).",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_flushes, .name = "goodwill_aggregator_flushes_total",
                     .help = "Team batches applied in Redis.", .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_agg_applier, m_pending, .name = "goodwill_aggregator_pending_records",
                     .help = "Records consumed and not yet done.", .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_agg_applier, m_flush_seconds,
                     .name = "goodwill_aggregator_flush_duration_seconds",
                     .help = "Time from sending a team batch to Redis's acknowledgement.",
                     .type = GW_METRIC_HISTOGRAM, .buckets = gw_metrics_latency_buckets_s,
                     .nbuckets = GW_METRICS_LATENCY_BUCKETS),
    GW_METRIC_FAMILY(gw_agg_applier, f_dlq, .name = "goodwill_aggregator_records_dlq_total",
                     .help = "Records sent to goodwill.dlq.v1, by reason.",
                     .type = GW_METRIC_COUNTER, .label_names = reason_labels, .nlabels = 1),
};

static void collect(void *opaque) {
  gw_agg_applier *ap = opaque;
  gw_metric_set(ap->m_pending, (double)ap->pending);
}

/* ------------------------------------------------------------------ lifecycle */

/* A Kafka client failed for good: the owner drains and exits non-zero (see aggregator.h). */
static void on_kafka_fatal(void *opaque, const char *reason) {
  gw_agg_applier *ap = opaque;
  if (ap->fatal != NULL)
    ap->fatal(ap->drained_opaque, reason);
}

const char *gw_agg_applier_fatal(const gw_agg_applier *ap) {
  const char *fatal = ap->consumer != NULL ? gw_kafka_consumer_fatal(ap->consumer) : NULL;
  if (fatal == NULL && ap->producer != NULL)
    fatal = gw_kafka_producer_fatal(ap->producer);
  return fatal;
}

int gw_agg_applier_new(gw_agg_applier **out, const gw_agg_applier_config *cfg) {
  *out = NULL;
  gw_agg_applier *ap = calloc(1, sizeof(*ap));
  if (ap == NULL)
    return -ENOMEM;
  ap->loop = cfg->loop;
  ap->log = cfg->log;
  ap->redis_errors = cfg->redis_errors;
  ap->error_lines = (gw_log_limit)GW_LOG_LIMIT_INIT(1000, 5);
  ap->kafka_bootstrap = cfg->kafka_bootstrap;
  ap->kafka_properties = cfg->kafka_properties;
  ap->nkafka_properties = cfg->nkafka_properties;
  ap->group = cfg->group;
  ap->session_timeout_ms = cfg->session_timeout_ms;
  ap->flush_interval_ms = cfg->flush_interval_ms;
  ap->max_batch = cfg->max_batch;
  ap->max_pending = cfg->max_pending;
  ap->horizon = cfg->horizon;
  ap->horizon_log = (gw_log_limit)GW_LOG_LIMIT_INIT(60000, 5);
  ap->drained = cfg->drained;
  ap->fatal = cfg->fatal;
  ap->metrics = cfg->metrics;
  ap->drained_opaque = cfg->opaque;
  int rc = gw_metrics_register_all(cfg->metrics, applier_metrics,
                                   sizeof(applier_metrics) / sizeof(applier_metrics[0]), ap, NULL);
  if (rc == 0) {
    /* Show the known reasons at 0 from the start, so rate() works from the first scrape. */
    static const char *const reasons[] = {"undecodable", "invalid", "too_late"};
    for (size_t i = 0; i < 3; i++)
      gw_metrics_series(ap->f_dlq, &reasons[i]);
    rc = gw_metrics_on_collect(cfg->metrics, collect, ap);
  }
  if (rc == 0) {
    gw_agg_marks_config mcfg = {
        .topic = topic_scored,
        .log = cfg->log,
        .metrics = cfg->metrics,
        .verify_interval_ms = cfg->verify_interval_ms,
        .heal = heal,
        .committed = committed_offset,
        .opaque = ap,
    };
    rc = gw_agg_marks_new(&ap->marks, &mcfg);
  }
  if (rc == 0)
    rc = gw_offsets_new(&ap->offsets);
  if (rc == 0) {
    gw_buf src = GW_BUF_INIT;
    gw_agg_apply_script(&src);
    rc = gw_redis_script_new(&ap->apply_script, src.data);
    gw_buf_free(&src);
  }
  if (rc < 0) {
    gw_agg_applier_free(ap);
    return rc;
  }
  *out = ap;
  return 0;
}

int gw_agg_applier_start(gw_agg_applier *ap, gw_redis *redis) {
  ap->redis = redis;
  gw_agg_marks_start(ap->marks, redis);
  uv_timer_init(ap->loop, &ap->tick);
  ap->tick.data = ap;
  ap->started = true;
  char err[512];
  int rc;
  gw_kafka_producer_config pcfg = {
      .bootstrap = ap->kafka_bootstrap,
      .client_id = "goodwill-aggregator-dlq",
      .properties = ap->kafka_properties,
      .nproperties = ap->nkafka_properties,
      .delivery_timeout_ms = 30000,
      .queue_max_messages = 100000,
      .linger_ms = 5,
      .log = ap->log,
      .on_fatal = on_kafka_fatal,
      .fatal_opaque = ap,
  };
  if ((rc = gw_kafka_producer_new(&ap->producer, ap->loop, &pcfg, err, sizeof(err))) < 0) {
    GW_LOG(ap->log, GW_LOG_ERROR, "kafka producer", GW_LS("error", err));
    return rc;
  }
  const char *topics[] = {GW_TOPIC_SCORED};
  gw_kafka_consumer_config ccfg = {
      .bootstrap = ap->kafka_bootstrap,
      .group_id = ap->group,
      .client_id = "goodwill-aggregator",
      .topics = topics,
      .ntopics = 1,
      .properties = ap->kafka_properties,
      .nproperties = ap->nkafka_properties,
      .session_timeout_ms = ap->session_timeout_ms,
      .commit_interval_ms = 1000,
      .log = ap->log,
      .metrics = ap->metrics,
      .metrics_prefix = "goodwill_aggregator",
  };
  gw_kafka_consumer_handlers handlers = {on_message, on_assign, on_revoke, on_kafka_fatal};
  if ((rc = gw_kafka_consumer_new(&ap->consumer, ap->loop, &ccfg, &handlers, ap, err,
                                  sizeof(err))) < 0) {
    GW_LOG(ap->log, GW_LOG_ERROR, "kafka consumer", GW_LS("error", err));
    return rc;
  }
  uv_timer_start(&ap->tick, on_tick, ap->flush_interval_ms, ap->flush_interval_ms);
  return 0;
}

void gw_agg_applier_drain(gw_agg_applier *ap) {
  ap->draining = true;
  if (ap->consumer && !ap->paused)
    gw_kafka_consumer_pause(ap->consumer);
  ap->paused = true;
  /* Flush what is pending now rather than at the next tick (team_send never calls back before
   * it returns, so the table does not change while it is walked). */
  gw_hash_iter it;
  gw_hash_iter_init(&ap->teams, &it);
  team *t;
  while ((t = gw_hash_table_next(&ap->teams, &it)) != NULL)
    if (!t->in_flight && t->head)
      team_send(t);
}

bool gw_agg_applier_drained(const gw_agg_applier *ap) {
  return drained(ap);
}

size_t gw_agg_applier_pending(const gw_agg_applier *ap) {
  return ap->pending;
}

bool gw_agg_applier_assigned(const gw_agg_applier *ap) {
  return ap->consumer != NULL && gw_kafka_consumer_assigned(ap->consumer);
}

static void one_closed(gw_agg_applier *ap) {
  if (--ap->handles_open == 0 && ap->closed != NULL)
    ap->closed(ap->closed_opaque);
}

static void tick_closed(uv_handle_t *h) {
  one_closed(h->data);
}

void gw_agg_applier_halt(gw_agg_applier *ap) {
  ap->closing = true;
  if (ap->started) {
    ap->handles_open++;
    uv_close((uv_handle_t *)&ap->tick, tick_closed);
  }
}

static void consumer_closed(void *opaque) {
  one_closed(opaque);
}

static void producer_closed(void *opaque) {
  gw_agg_applier *ap = opaque;
  /* The consumer goes last: its close commits the offsets stored up to here. */
  ap->consumer_closing = true;
  if (ap->consumer)
    gw_kafka_consumer_close(ap->consumer, consumer_closed, ap);
  else
    consumer_closed(ap);
  one_closed(ap);
}

void gw_agg_applier_close(gw_agg_applier *ap, void (*closed)(void *opaque), void *opaque) {
  ap->closed = closed;
  ap->closed_opaque = opaque;
  ap->handles_open += 3; /* held until the closes below are started; the producer; the consumer */
  /* The producer's final delivery reports may still settle DLQ records and store offsets. */
  if (ap->producer)
    gw_kafka_producer_close(ap->producer, 5000, producer_closed, ap);
  else
    producer_closed(ap);
  one_closed(ap);
}

void gw_agg_applier_free(gw_agg_applier *ap) {
  if (ap == NULL)
    return;
  gw_agg_marks_free(ap->marks);
  gw_hash_iter it;
  gw_hash_iter_init(&ap->teams, &it);
  team *t;
  while ((t = gw_hash_table_next(&ap->teams, &it)) != NULL) {
    while (t->head) {
      batch_node *n = t->head;
      t->head = n->next;
      node_free(n);
    }
    free(t);
  }
  gw_hash_table_free(&ap->teams);
  while (ap->dlq_retry) {
    dlq_item *d = ap->dlq_retry;
    ap->dlq_retry = d->next;
    dlq_free(d);
  }
  gw_redis_script_free(ap->apply_script);
  gw_offsets_free(ap->offsets);
  free(ap);
}
