/* The applied marks: noticing a Redis that lost applied records, and healing from Kafka. See
 * marks.h. */
#include "marks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/aggregates.h"
#include "goodwill/buf.h"
#include "goodwill/kafka.h"

typedef struct part_mark {
  int32_t partition;
  bool assigned;
  bool checked;   /* the first record since the assignment was compared with the mark */
  uint64_t epoch; /* bumped by every assignment and heal: stale replies are ignored */
  int64_t stored; /* the last offset stored for commit, -1: none */
  int64_t acked;  /* the mark Redis acknowledged to this process, -1: none */
  bool writing;   /* a mark write is in flight */
  bool reading;   /* a mark read is in flight */
} part_mark;

struct gw_agg_marks {
  gw_agg_marks_config cfg;
  gw_redis *redis;
  gw_redis_script *raise; /* SET the mark when higher; returns the mark */
  part_mark *parts;
  size_t nparts, cap;
  bool was_connected;
  bool verify_due; /* a reconnect happened: verify on the next tick */
  uint64_t verified_ms;
  gw_metric *m_heals;
};

typedef struct mark_op {
  gw_agg_marks *m;
  int32_t partition;
  uint64_t epoch;
  int64_t offset; /* the value written, or the offset the read compares with */
  bool first;     /* a read for the first record since the assignment */
} mark_op;

/* Raises a mark to ARGV[1], unless Redis no longer holds what this process last saw it hold
 * (ARGV[2], -1: nothing seen): then it writes nothing and answers {0, what it holds}, so that a
 * loss between two writes (a FLUSHALL, a restart) cannot be covered up by the next write.
 * Otherwise {1, the mark}. */
static const char raise_script[] =
    "-- goodwill applied mark (lib/service/aggregator/marks.c, docs/REDIS_SCHEMA.md)\n"
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')\n"
    "local seen = tonumber(ARGV[2])\n"
    "if cur < seen then return {0, cur} end\n"
    "local new = tonumber(ARGV[1])\n"
    "if new > cur then redis.call('SET', KEYS[1], ARGV[1]); cur = new end\n"
    "return {1, cur}\n";

static part_mark *part(gw_agg_marks *m, int32_t partition) {
  for (size_t i = 0; i < m->nparts; i++) {
    if (m->parts[i].partition == partition)
      return &m->parts[i];
  }
  if (m->nparts == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    part_mark *n = realloc(m->parts, cap * sizeof(*n));
    if (n == NULL)
      abort(); /* one entry per partition of a topic */
    m->parts = n;
    m->cap = cap;
  }
  part_mark *p = &m->parts[m->nparts++];
  memset(p, 0, sizeof(*p));
  p->partition = partition;
  p->stored = p->acked = -1;
  return p;
}

static void mark_key(const gw_agg_marks *m, int32_t partition, gw_buf *out) {
  gw_agg_key_applied(out, m->cfg.topic, partition);
}

static const gw_metric_spec marks_metrics[] = {
    GW_METRIC_SERIES(gw_agg_marks, m_heals, .name = "goodwill_aggregator_heals_total",
                     .help = "Partitions read again from Kafka because Redis had lost applied "
                             "records (a mark lower than acknowledged, or gone).",
                     .type = GW_METRIC_COUNTER),
};

int gw_agg_marks_new(gw_agg_marks **out, const gw_agg_marks_config *cfg) {
  *out = NULL;
  gw_agg_marks *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return -ENOMEM;
  m->cfg = *cfg;
  if (m->cfg.verify_interval_ms == 0)
    m->cfg.verify_interval_ms = 10000;
  int rc = gw_redis_script_new(&m->raise, raise_script);
  if (rc == 0)
    rc = gw_metrics_register_all(cfg->metrics, marks_metrics, 1, m, NULL);
  if (rc != 0) {
    gw_agg_marks_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

int gw_agg_marks_start(gw_agg_marks *m, gw_redis *redis) {
  m->redis = redis;
  return 0;
}

void gw_agg_marks_free(gw_agg_marks *m) {
  if (m == NULL)
    return;
  gw_redis_script_free(m->raise);
  free(m->parts);
  free(m);
}

static void ignore_reply(void *opaque, int status, const gw_redis_reply *reply) {
  (void)opaque;
  (void)status;
  (void)reply;
}

/* Redis lost what the mark vouched for: read the partition again from the mark it still has
 * (or from the start). */
static void heal(gw_agg_marks *m, part_mark *p, long long have, int64_t expected, const char *why) {
  int64_t from = have >= 0 ? (int64_t)have : GW_KAFKA_OFFSET_BEGINNING;
  GW_LOG(m->cfg.log, GW_LOG_ERROR,
         "redis lost applied records: reading the partition again from Kafka (the dedupe "
         "counts each record once; records Kafka no longer holds cannot be recovered)",
         GW_LS("topic", m->cfg.topic), GW_LI("partition", p->partition), GW_LI("mark", have),
         GW_LI("expected", expected), GW_LS("why", why), GW_LI("from", from));
  gw_metric_add(m->m_heals, 1);
  /* A raise sent before this answer may still land: set the mark back to what Redis held, so
   * that it never vouches for records the replay has not applied again yet. */
  if (m->redis != NULL) {
    gw_buf key = GW_BUF_INIT;
    char value[24];
    mark_key(m, p->partition, &key);
    snprintf(value, sizeof value, "%lld", have);
    const char *set[] = {"SET", key.data, value};
    const char *del[] = {"DEL", key.data};
    (void)gw_redis_command(m->redis, have >= 0 ? 3 : 2, have >= 0 ? set : del, NULL, ignore_reply,
                           NULL);
    gw_buf_free(&key);
  }
  p->epoch++;
  p->stored = -1;
  p->acked = have >= 0 ? (int64_t)have : -1;
  p->checked = true;
  m->cfg.heal(m->cfg.opaque, p->partition, from);
}

static void on_read(void *opaque, int status, const gw_redis_reply *reply) {
  mark_op *op = opaque;
  gw_agg_marks *m = op->m;
  part_mark *p = part(m, op->partition);
  p->reading = false;
  if (op->epoch != p->epoch || !p->assigned) {
    free(op);
    return;
  }
  long long have = -1;
  bool ok = status == 0 && reply != NULL;
  if (ok && reply->type == GW_REDIS_STRING) {
    char *end;
    have = strtoll(reply->str, &end, 10);
    ok = *end == '\0' && have >= 0;
  } else if (ok && reply->type != GW_REDIS_NIL) {
    ok = false;
  }
  if (!ok) {
    /* Not known now: the first-record check is tried again with the next record, the
     * periodic one at the next interval. */
    free(op);
    return;
  }
  if (op->first) {
    p->checked = true;
    if (have < op->offset)
      heal(m, p, have, op->offset,
           have < 0 ? "no mark, but the group had committed records"
                    : "the mark is below the group's committed offset");
  } else if (have < p->acked) {
    heal(m, p, have, p->acked,
         have < 0 ? "the mark Redis had acknowledged is gone"
                  : "the mark is below what Redis had acknowledged");
  }
  free(op);
}

static void read_mark(gw_agg_marks *m, part_mark *p, int64_t offset, bool first) {
  if (m->redis == NULL || p->reading || !gw_redis_connected(m->redis))
    return;
  gw_buf key = GW_BUF_INIT;
  mark_key(m, p->partition, &key);
  mark_op *op = calloc(1, sizeof(*op));
  if (op == NULL)
    abort();
  *op = (mark_op){m, p->partition, p->epoch, offset, first};
  const char *argv[] = {"GET", key.data};
  if (gw_redis_command(m->redis, 2, argv, NULL, on_read, op) == 0)
    p->reading = true;
  else
    free(op);
  gw_buf_free(&key);
}

static void on_written(void *opaque, int status, const gw_redis_reply *reply) {
  mark_op *op = opaque;
  gw_agg_marks *m = op->m;
  part_mark *p = part(m, op->partition);
  p->writing = false;
  bool ok = status == 0 && reply != NULL && reply->type == GW_REDIS_ARRAY &&
            reply->nelements == 2 && reply->elements[0].type == GW_REDIS_INTEGER &&
            reply->elements[1].type == GW_REDIS_INTEGER;
  if (ok && op->epoch == p->epoch && p->assigned) {
    long long held = reply->elements[1].integer;
    if (reply->elements[0].integer == 0)
      heal(m, p, held, p->acked,
           held < 0 ? "the mark Redis had acknowledged is gone"
                    : "the mark is below what Redis had acknowledged");
    else if (held >= op->offset && held > p->acked)
      p->acked = held; /* the mark as it is now, at least what was written */
  }
  free(op);
}

static void write_mark(gw_agg_marks *m, part_mark *p) {
  gw_buf key = GW_BUF_INIT;
  mark_key(m, p->partition, &key);
  char value[24], seen[24];
  snprintf(value, sizeof value, "%" PRId64, p->stored);
  snprintf(seen, sizeof seen, "%" PRId64, p->acked);
  mark_op *op = calloc(1, sizeof(*op));
  if (op == NULL)
    abort();
  *op = (mark_op){m, p->partition, p->epoch, p->stored, false};
  const char *keys[] = {key.data};
  const char *args[] = {value, seen};
  if (gw_redis_eval(m->redis, m->raise, 1, keys, NULL, 2, args, NULL, on_written, op) == 0)
    p->writing = true;
  else
    free(op);
  gw_buf_free(&key);
}

void gw_agg_marks_assigned(gw_agg_marks *m, int32_t partition) {
  part_mark *p = part(m, partition);
  p->assigned = true;
  p->checked = false;
  p->stored = -1;
  p->epoch++;
}

void gw_agg_marks_revoked(gw_agg_marks *m, int32_t partition) {
  part_mark *p = part(m, partition);
  p->assigned = false;
  p->epoch++;
}

void gw_agg_marks_stored(gw_agg_marks *m, int32_t partition, int64_t next) {
  part_mark *p = part(m, partition);
  if (next > p->stored)
    p->stored = next;
}

void gw_agg_marks_tick(gw_agg_marks *m, uint64_t now_ms) {
  if (m->redis == NULL)
    return;
  bool connected = gw_redis_connected(m->redis);
  if (connected && !m->was_connected && m->verified_ms != 0)
    m->verify_due = true; /* the connection came back: Redis may have restarted meanwhile */
  m->was_connected = connected;
  if (!connected)
    return;
  bool verify = m->verify_due || now_ms >= m->verified_ms + m->cfg.verify_interval_ms;
  if (verify) {
    m->verify_due = false;
    m->verified_ms = now_ms;
  }
  for (size_t i = 0; i < m->nparts; i++) {
    part_mark *p = &m->parts[i];
    if (!p->assigned)
      continue;
    if (!p->checked && !p->reading) {
      int64_t committed;
      int rc = m->cfg.committed(m->cfg.opaque, p->partition, &committed);
      if (rc == 0)
        read_mark(m, p, committed, true);
      else if (rc == -ENOENT)
        p->checked = true; /* nothing committed: a new group, nothing Redis should hold */
      continue;
    }
    if (verify && p->acked >= 0 && p->checked)
      read_mark(m, p, p->acked, false);
    if (p->stored > p->acked && !p->writing && p->checked)
      write_mark(m, p);
  }
}
