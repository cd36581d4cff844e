/*
 * gw_scorer: consume, validate, score, produce, store after delivery. See goodwill/scorer.h.
 *
 * Each consumed record becomes a job holding the output it must write (the ScoredRecord, or
 * the original record for the DLQ with its reason headers). A job ends only when Kafka
 * acknowledged that output; then its input offset is marked done in gw_offsets, and when the
 * partition's contiguous done prefix moves, the new commit point is stored in the consumer
 * (auto-commit writes stored offsets only). A failed delivery puts the job on the retry list,
 * which pauses the consumer until the list is empty again, so nothing is skipped and the
 * backlog does not grow while Kafka is unavailable.
 */
#include "goodwill/scorer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/admin.h"
#include "goodwill/buf.h"
#include "goodwill/build_info.h"
#include "goodwill/feeling.h"
#include "goodwill/kafka.h"
#include "goodwill/offsets.h"
#include "goodwill/open_interactions.h"
#include "goodwill/scoring.h"
#include "goodwill/v1/events.pb-c.h"

typedef enum job_kind { JOB_SCORED, JOB_DLQ } job_kind;

typedef enum dlq_class {
  DLQ_DECODE,
  DLQ_INVALID,
  DLQ_UNSUPPORTED,
  DLQ_EXPIRED,
  DLQ_UNDELIVERABLE,
  DLQ_TURN_AFTER_CLOSE,
  DLQ_NCLASSES
} dlq_class;

static const char *const dlq_class_names[DLQ_NCLASSES] = {
    "decode", "invalid", "unsupported", "expired", "undeliverable", "turn_after_close"};

/* What a DLQ record's value is (header goodwill-value-type). */
#define VALUE_TYPE_EVENT  "goodwill.v1.InteractionEvent"
#define VALUE_TYPE_SCORED "goodwill.v1.ScoredRecord"

/* Series of goodwill_scorer_interactions_expired_total: "idle" counts both clocks. */
static const char *const expiry_names[] = {"idle", "limit"};

typedef struct job {
  gw_scorer *s;
  int32_t partition;
  int64_t offset;
  job_kind kind;
  dlq_class dlq;
  int scored_kind;   /* 0 interaction, 1 survey (JOB_SCORED) */
  bool value_scored; /* JOB_DLQ: the value is the ScoredRecord that could not be delivered */
  gw_buf key, value;
  /* Offsets of the buffered turns this job's output stands for (a close scored with its live
   * turns, or released by its transcript): done together with the job's own offset. */
  int64_t *turn_offsets;
  size_t nturn_offsets;
  char reason[512]; /* room for two ids of up to 128 bytes and the words around them */
  char partition_text[16], offset_text[24];
  unsigned attempts;
  struct job *next_retry;
} job;

struct gw_scorer {
  uv_loop_t *loop;
  const gw_log *log;
  char *bootstrap, *group_id, *client_id, *input_topic, *scored_topic, *dlq_topic;
  size_t max_in_flight;
  uint64_t retry_backoff_ms, retry_backoff_max_ms, current_backoff_ms;
  uint64_t shutdown_grace_ms;
  unsigned scoring_flags; /* GW_SCORING_EXPLAIN when the records carry explanations */

  gw_feeling_model *model; /* replaced by gw_scorer_reload_lexicon between two records */
  char *lexicon_path;      /* NULL: the built-in lexicon */
  char *overlay_path;      /* NULL: no lexicon overlay */
  gw_offsets *offsets;
  gw_open_interactions *open; /* live turns waiting for their InteractionClosed */
  int64_t turn_idle_timeout_ms, turn_expiry_grace_ms;
  size_t max_open_turns, max_open_bytes, max_recent_closes;
  gw_kafka_producer *producer;
  gw_kafka_consumer *consumer;
  gw_admin *admin;
  gw_metrics *metrics;
  bool own_metrics;

  size_t jobs; /* jobs alive (in flight, including the retry list) */
  job *retry_head, *retry_tail;
  size_t nretry;
  uv_timer_t retry_timer, grace_timer;
  uv_timer_t expiry_timer; /* expires open interactions by processing time, every partition */
  int open_timers;

  bool backpressure; /* paused because in flight went over the bound */
  bool paused;       /* what the consumer was last told */
  bool stopping, grace_expired, consumer_closed, producer_closed, admin_closed;
  char fatal[512]; /* a Kafka client's fatal error, "" while none (kept for /readyz) */
  void (*on_fatal)(void *opaque, const char *reason);
  void *fatal_opaque;
  void (*done_cb)(void *opaque, int status);
  void *done_opaque;

  gw_scorer_stats stats;
  gw_metric *m_consumed, *m_scored[2], *m_dlq[DLQ_NCLASSES], *m_in_flight, *m_duration,
      *m_delivery_failures[2], *m_paused;
  gw_metric *m_open_interactions, *m_open_turns, *m_turns_buffered, *m_turns_released,
      *m_expired[2], *m_open_bytes, *m_open_oldest_age, *m_turns_after_close;
  gw_metric *m_reloads[2]; /* result ok, error */
  /* The labelled families, whose series above are looked up once at start. */
  gw_metric_family *f_scored, *f_dlq, *f_delivery_failures, *f_expired, *f_reloads;
};

static uint64_t wall_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *dup_or(const char *s, const char *fallback) {
  const char *v = (s != NULL && s[0] != '\0') ? s : fallback;
  char *d = strdup(v);
  if (d == NULL) {
    abort();
  }
  return d;
}

/* ------------------------------------------------------------------ flow control */

/* Pauses or resumes the consumer as backpressure, retries and stopping require. */
static void update_flow(gw_scorer *s) {
  if (s->jobs >= s->max_in_flight) {
    s->backpressure = true;
  } else if (s->jobs <= s->max_in_flight / 2) {
    s->backpressure = false;
  }
  bool want = s->backpressure || s->nretry > 0 || s->stopping;
  if (s->consumer != NULL && want != s->paused) {
    s->paused = want;
    if (want) {
      gw_kafka_consumer_pause(s->consumer);
    } else {
      gw_kafka_consumer_resume(s->consumer);
    }
    gw_metric_set(s->m_paused, want ? 1 : 0);
    GW_LOG(s->log, GW_LOG_DEBUG, want ? "consumer paused" : "consumer resumed",
           GW_LI("in_flight", s->jobs), GW_LI("retrying", s->nretry));
  }
  gw_metric_set(s->m_in_flight, (double)s->jobs);
}

static void maybe_finish_stop(gw_scorer *s);

static void job_free(job *j) {
  free(j->turn_offsets);
  gw_buf_free(&j->key);
  gw_buf_free(&j->value);
  free(j);
}

/* The job's output is durable (or the job is abandoned at shutdown): account and release. */
static void job_finish(job *j, bool delivered) {
  gw_scorer *s = j->s;
  if (delivered) {
    /* The commit point only moves forward, so the last move is the one to store. */
    int64_t next = 0, moved_to = -1;
    if (gw_offsets_done(s->offsets, s->input_topic, j->partition, j->offset, &next)) {
      moved_to = next;
    }
    for (size_t i = 0; i < j->nturn_offsets; i++) {
      if (gw_offsets_done(s->offsets, s->input_topic, j->partition, j->turn_offsets[i], &next)) {
        moved_to = next;
      }
    }
    if (moved_to >= 0 && s->consumer != NULL) {
      next = moved_to;
      int rc = gw_kafka_consumer_store(s->consumer, s->input_topic, j->partition, next);
      if (rc != 0 && rc != -ESRCH) {
        GW_LOG(s->log, GW_LOG_WARN, "cannot store offset", GW_LI("partition", j->partition),
               GW_LI("offset", next), GW_LI("rc", rc));
      }
    }
  }
  s->jobs--;
  job_free(j);
  update_flow(s);
  maybe_finish_stop(s);
}

/* ------------------------------------------------------------------ producing */

static int job_produce(job *j);

static void retry_push(gw_scorer *s, job *j) {
  j->next_retry = NULL;
  if (s->retry_tail != NULL) {
    s->retry_tail->next_retry = j;
  } else {
    s->retry_head = j;
  }
  s->retry_tail = j;
  s->nretry++;
}

static void on_retry_timer(uv_timer_t *t);

static void schedule_retry(gw_scorer *s, job *j) {
  retry_push(s, j);
  uv_timer_stop(&s->retry_timer);
  uv_timer_start(&s->retry_timer, on_retry_timer, s->current_backoff_ms, 0);
  update_flow(s);
}

static void on_retry_timer(uv_timer_t *t) {
  gw_scorer *s = t->data;
  job *list = s->retry_head;
  s->retry_head = s->retry_tail = NULL;
  s->nretry = 0;
  /* Back off further for the next failure; a success resets it. */
  s->current_backoff_ms *= 2;
  if (s->current_backoff_ms > s->retry_backoff_max_ms) {
    s->current_backoff_ms = s->retry_backoff_max_ms;
  }
  while (list != NULL) {
    job *j = list;
    list = j->next_retry;
    if (job_produce(j) != 0) {
      retry_push(s, j);
    }
  }
  if (s->nretry > 0) {
    uv_timer_stop(&s->retry_timer);
    uv_timer_start(&s->retry_timer, on_retry_timer, s->current_backoff_ms, 0);
  }
  update_flow(s);
}

/* Errors that sending the same record again cannot cure. */
static bool undeliverable(int status) {
  return status == -EMSGSIZE || status == -EBADMSG;
}

static void job_start(gw_scorer *s, job *j);

/*
 * A scored record the brokers refuse for good (too large, invalid) would block its partition
 * if retried: it goes to the DLQ instead, as it is, with its reason and goodwill-value-type
 * goodwill.v1.ScoredRecord, and its input counts as done.
 */
static void scored_to_dlq(job *j, const char *errstr) {
  j->kind = JOB_DLQ;
  j->dlq = DLQ_UNDELIVERABLE;
  j->value_scored = true;
  snprintf(j->reason, sizeof j->reason, "%s: %s refused the scored record: %s",
           dlq_class_names[DLQ_UNDELIVERABLE], j->s->scored_topic, errstr ? errstr : "");
}

static void on_delivery(void *opaque, int status, const char *errstr, int32_t partition,
                        int64_t offset) {
  job *j = opaque;
  gw_scorer *s = j->s;
  int out = j->kind == JOB_SCORED ? 0 : 1;
  if (status == 0) {
    s->current_backoff_ms = s->retry_backoff_ms;
    if (j->kind == JOB_SCORED) {
      s->stats.scored++;
      gw_metric_add(s->m_scored[j->scored_kind], 1);
    } else {
      s->stats.dlq++;
      gw_metric_add(s->m_dlq[j->dlq], 1);
    }
    job_finish(j, true);
    return;
  }
  s->stats.delivery_failures++;
  gw_metric_add(s->m_delivery_failures[out], 1);
  if (j->kind == JOB_SCORED && undeliverable(status)) {
    scored_to_dlq(j, errstr);
    job_start(s, j);
    return;
  }
  GW_LOG(s->log, GW_LOG_WARN, "delivery failed, will retry",
         GW_LS("topic", j->kind == JOB_SCORED ? s->scored_topic : s->dlq_topic),
         GW_LI("source_partition", j->partition), GW_LI("source_offset", j->offset),
         GW_LI("attempt", j->attempts), GW_LS("reason", errstr != NULL ? errstr : ""));
  if (s->producer_closed || s->grace_expired) {
    /* Shutting down past the grace: the input stays uncommitted and is read again. */
    job_finish(j, false);
    return;
  }
  schedule_retry(s, j);
}

static int job_produce(job *j) {
  gw_scorer *s = j->s;
  if (s->producer == NULL) {
    return -ESHUTDOWN;
  }
  j->attempts++;
  int rc;
  if (j->kind == JOB_SCORED) {
    rc = gw_kafka_produce(s->producer, s->scored_topic, j->key.data, j->key.len, j->value.data,
                          j->value.len, NULL, 0, on_delivery, j);
  } else {
    const char *type = j->value_scored ? VALUE_TYPE_SCORED : VALUE_TYPE_EVENT;
    gw_kafka_header h[5] = {
        {"goodwill-reason", j->reason, strlen(j->reason)},
        {"goodwill-source-topic", s->input_topic, strlen(s->input_topic)},
        {"goodwill-source-partition", j->partition_text, strlen(j->partition_text)},
        {"goodwill-source-offset", j->offset_text, strlen(j->offset_text)},
        {"goodwill-value-type", type, strlen(type)},
    };
    rc = gw_kafka_produce(s->producer, s->dlq_topic, j->key.data, j->key.len, j->value.data,
                          j->value.len, h, 5, on_delivery, j);
  }
  if (rc != 0) {
    s->stats.delivery_failures++;
    gw_metric_add(s->m_delivery_failures[j->kind == JOB_SCORED ? 0 : 1], 1);
    GW_LOG(s->log, GW_LOG_WARN, "produce refused, will retry", GW_LI("rc", rc),
           GW_LI("source_partition", j->partition), GW_LI("source_offset", j->offset));
  }
  return rc;
}

/* ------------------------------------------------------------------ consuming */

/* Fills j for the DLQ: the original key and value, and the reason. */
static void job_to_dlq_raw(job *j, const void *key, size_t key_len, const void *value,
                           size_t value_len, dlq_class cls, const char *reason) {
  j->kind = JOB_DLQ;
  j->dlq = cls;
  gw_buf_reset(&j->key);
  gw_buf_reset(&j->value);
  if (key != NULL && key_len > 0) {
    gw_buf_append(&j->key, key, key_len);
  }
  if (value != NULL && value_len > 0) {
    gw_buf_append(&j->value, value, value_len);
  }
  snprintf(j->reason, sizeof j->reason, "%s: %s", dlq_class_names[cls], reason);
}

static void job_to_dlq(job *j, const gw_kafka_message *m, dlq_class cls, const char *reason) {
  job_to_dlq_raw(j, m->key, m->key_len, m->value, m->value_len, cls, reason);
}

/* A job for the input record at (partition, offset), counted in flight. */
static job *job_new(gw_scorer *s, int32_t partition, int64_t offset) {
  job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    abort();
  }
  j->s = s;
  j->partition = partition;
  j->offset = offset;
  snprintf(j->partition_text, sizeof j->partition_text, "%" PRId32, partition);
  snprintf(j->offset_text, sizeof j->offset_text, "%" PRId64, offset);
  s->jobs++;
  return j;
}

/* Hands a job whose output is ready to the producer (or to the retry list). */
static void job_start(gw_scorer *s, job *j) {
  if (j->kind == JOB_DLQ) {
    GW_LOG(s->log, GW_LOG_INFO, "record sent to the DLQ", GW_LI("partition", j->partition),
           GW_LI("offset", j->offset), GW_LS("reason", j->reason));
  }
  int rc = job_produce(j);
  if (rc != 0 && j->kind == JOB_SCORED && undeliverable(rc)) {
    scored_to_dlq(j, "larger than the producer's message.max.bytes");
    rc = job_produce(j);
  }
  if (rc != 0) {
    schedule_retry(s, j);
    return;
  }
  update_flow(s);
}

/* The processing clock of the open interactions: the loop's monotonic time. */
static int64_t processing_ms(const gw_scorer *s) {
  return (int64_t)uv_now(s->loop);
}

static void update_open_gauges(gw_scorer *s) {
  gw_metric_set(s->m_open_interactions, (double)gw_open_interactions_count(s->open));
  gw_metric_set(s->m_open_turns, (double)gw_open_interactions_turns(s->open));
  gw_metric_set(s->m_open_bytes, (double)gw_open_interactions_bytes(s->open));
  gw_metric_set(s->m_open_oldest_age,
                (double)gw_open_interactions_oldest_age_ms(s->open, processing_ms(s)) / 1000.0);
}

/* "6h", "90min", "45s" or "1500ms": the timeout as an operator configured it. */
static void format_duration(int64_t ms, char *out, size_t len) {
  if (ms % 3600000 == 0) {
    snprintf(out, len, "%" PRId64 "h", ms / 3600000);
  } else if (ms % 60000 == 0) {
    snprintf(out, len, "%" PRId64 "min", ms / 60000);
  } else if (ms % 1000 == 0) {
    snprintf(out, len, "%" PRId64 "s", ms / 1000);
  } else {
    snprintf(out, len, "%" PRId64 "ms", ms);
  }
}

/* Why an expired interaction's turns go to the DLQ, in words. */
static void expiry_reason(const gw_scorer *s, const gw_open_batch *b, char *out, size_t len) {
  char timeout[32];
  format_duration(s->turn_idle_timeout_ms, timeout, sizeof timeout);
  if (b->reason == GW_OPEN_EXPIRED_IDLE) {
    snprintf(out, len,
             "no InteractionClosed within %s of the last turn (event time: its partition has "
             "events %" PRId64 " s after it)",
             timeout, b->idle_ms / 1000);
  } else if (b->reason == GW_OPEN_EXPIRED_QUIET) {
    snprintf(out, len,
             "no InteractionClosed within %s of the last turn (processing time: nothing of it "
             "read since)",
             timeout);
  } else if (b->bound == GW_OPEN_BOUND_BYTES) {
    snprintf(out, len,
             "open-turn byte limit reached (%zu bytes buffered over all partitions, limit %zu); "
             "tenant %s held %zu bytes (%zu%%), the most of any tenant; this was its least "
             "recently active interaction",
             b->total_bytes, s->max_open_bytes, b->tenant_id, b->tenant_bytes,
             b->total_bytes > 0 ? b->tenant_bytes * 100 / b->total_bytes : 0);
  } else {
    snprintf(out, len,
             "open-turn limit reached (%zu turns buffered over all partitions, limit %zu); "
             "tenant %s held %zu turns (%zu%%), the most of any tenant; this was its least "
             "recently active interaction",
             b->total_turns, s->max_open_turns, b->tenant_id, b->tenant_turns,
             b->total_turns > 0 ? b->tenant_turns * 100 / b->total_turns : 0);
  }
}

/*
 * Sends the turns of every open interaction that is due to expire (idle in this partition, or
 * in every partition with GW_OPEN_ALL_PARTITIONS, by event time; idle by processing time or
 * over a bound anywhere) to the DLQ, one record per turn with its original key and value; each
 * turn's offset is done once its DLQ record is acknowledged.
 */
static void expire_open(gw_scorer *s, int32_t partition) {
  gw_open_batch b;
  while (gw_open_interactions_expire_next(s->open, partition, processing_ms(s), &b)) {
    char reason[400];
    expiry_reason(s, &b, reason, sizeof reason);
    s->stats.interactions_expired++;
    gw_metric_add(s->m_expired[b.reason == GW_OPEN_EXPIRED_LIMIT ? 1 : 0], 1);
    GW_LOG(s->log, GW_LOG_WARN, "open interaction expired, its turns go to the DLQ",
           GW_LS("tenant", b.tenant_id), GW_LS("interaction", b.interaction_id),
           GW_LI("partition", b.partition), GW_LI("turns", b.nturns), GW_LS("reason", reason));
    for (size_t i = 0; i < b.nturns; i++) {
      const gw_open_turn *t = &b.turns[i];
      job *j = job_new(s, b.partition, t->input_offset);
      job_to_dlq_raw(j, t->key, t->key_len, t->value, t->value_len, DLQ_EXPIRED, reason);
      if (job_produce(j) != 0) {
        schedule_retry(s, j);
      }
    }
    gw_open_batch_free(&b);
  }
  update_flow(s);
}

/*
 * Keeps a valid live Turn until its interaction closes; its offset stays in progress (NULL).
 * A turn of an interaction whose close was read recently would open an interaction that no
 * close ends, holding its offset until it expired: it goes to the DLQ at once instead (a job).
 */
static job *buffer_turn(gw_scorer *s, const gw_kafka_message *m,
                        const Goodwill__V1__InteractionEvent *ev) {
  const Goodwill__V1__Turn *t = ev->turn;
  gw_open_turn ot = {
      .input_offset = m->offset,
      .seq = t->seq,
      .speaker = (int)t->speaker,
      .offset_ms = t->offset_ms,
      .occurred_at_ms = ev->occurred_at_ms,
      .text = t->text,
      .key = (void *)m->key,
      .key_len = m->key_len,
      .value = (void *)m->value,
      .value_len = m->value_len,
  };
  int rc = gw_open_interactions_add_turn(s->open, m->partition, ev->tenant_id, ev->interaction_id,
                                         &ot, processing_ms(s));
  if (rc == -EALREADY) {
    int64_t close_offset = -1;
    gw_open_interactions_closed_at(s->open, m->partition, ev->tenant_id, ev->interaction_id,
                                   &close_offset);
    char reason[400];
    snprintf(reason, sizeof reason,
             "interaction %s of tenant %s was closed at offset %" PRId64
             " of this partition; a turn after its close is not scored",
             ev->interaction_id, ev->tenant_id, close_offset);
    s->stats.turns_after_close++;
    gw_metric_add(s->m_turns_after_close, 1);
    job *j = job_new(s, m->partition, m->offset);
    job_to_dlq(j, m, DLQ_TURN_AFTER_CLOSE, reason);
    return j;
  }
  s->stats.turns_buffered++;
  gw_metric_add(s->m_turns_buffered, 1);
  return NULL;
}

/*
 * Scores an InteractionClosed: from its transcript when it has one (buffered turns of the
 * interaction are then released unscored), otherwise from the interaction's buffered turns in
 * seq order, a client retry (same seq, speaker and text) once. Either way the buffered turns'
 * offsets ride on the job.
 */
static int score_close(gw_scorer *s, job *j, const gw_kafka_message *m,
                       const Goodwill__V1__InteractionEvent *ev, char *record_id) {
  gw_open_batch b;
  bool buffered = gw_open_interactions_take(s->open, m->partition, ev->tenant_id,
                                            ev->interaction_id, m->offset, processing_ms(s), &b);
  int rc;
  if (!buffered || ev->closed->n_transcript > 0) {
    rc = gw_scoring_score_event(s->model, ev, s->scoring_flags, &j->value, &j->key, record_id);
    if (buffered) {
      s->stats.turns_released += b.nturns;
      gw_metric_add(s->m_turns_released, (double)b.nturns);
    }
  } else {
    Goodwill__V1__Turn *turns = calloc(b.nturns, sizeof *turns);
    const Goodwill__V1__Turn **ptrs = calloc(b.nturns, sizeof *ptrs);
    if (turns == NULL || ptrs == NULL) {
      abort();
    }
    size_t n = 0;
    for (size_t i = 0; i < b.nturns; i++) {
      const gw_open_turn *t = &b.turns[i];
      if (t->duplicate) {
        continue;
      }
      goodwill__v1__turn__init(&turns[n]);
      turns[n].seq = t->seq;
      turns[n].speaker = (Goodwill__V1__Speaker)t->speaker;
      turns[n].text = t->text;
      turns[n].offset_ms = t->offset_ms;
      ptrs[n] = &turns[n];
      n++;
    }
    rc = gw_scoring_score_closed_turns(s->model, ev, ptrs, n, s->scoring_flags, &j->value, &j->key,
                                       record_id);
    free(ptrs);
    free(turns);
  }
  if (buffered) {
    j->turn_offsets = malloc(b.nturns * sizeof *j->turn_offsets);
    if (j->turn_offsets == NULL) {
      abort();
    }
    for (size_t i = 0; i < b.nturns; i++) {
      j->turn_offsets[i] = b.turns[i].input_offset;
    }
    j->nturn_offsets = b.nturns;
  }
  gw_open_batch_free(&b);
  return rc;
}

/* Decodes, validates and scores one record into a job, or buffers a live Turn (NULL). */
static job *handle_message(gw_scorer *s, const gw_kafka_message *m) {
  Goodwill__V1__InteractionEvent *ev = goodwill__v1__interaction_event__unpack(
      NULL, m->value_len, (const uint8_t *)(m->value != NULL ? m->value : ""));
  job *j;
  if (ev == NULL) {
    j = job_new(s, m->partition, m->offset);
    job_to_dlq(j, m, DLQ_DECODE, "value is not a goodwill.v1.InteractionEvent protobuf");
    return j;
  }
  /* Time is judged once, against the time the event was received: ingest stamped it and
   * judged occurred_at then. An event a producer wrote to Kafka without it is stamped here, from
   * this clock, and judged now; the stamp travels in the scored record (the aggregator's dedupe
   * by arrival day). The limits are the hard bounds, not a configuration: everything any
   * ingest accepted (its limits may only tighten them) is accepted here. */
  if (ev->received_at_ms <= 0) {
    ev->received_at_ms = (int64_t)wall_clock_ms();
  }
  gw_event_limits hard;
  gw_event_limits_hard(&hard);
  gw_event_error verr;
  memset(&verr, 0, sizeof verr);
  if (gw_event_validate(ev, &hard, ev->received_at_ms, &verr) != 0) {
    char reason[300];
    snprintf(reason, sizeof reason, "%s: %s", verr.field[0] != '\0' ? verr.field : "event",
             verr.reason);
    j = job_new(s, m->partition, m->offset);
    job_to_dlq(j, m, DLQ_INVALID, reason);
    goodwill__v1__interaction_event__free_unpacked(ev, NULL);
    return j;
  }
  /* Every valid event moves the partition's stream time, the clock of the idle expiry. */
  gw_open_interactions_observe(s->open, m->partition, ev->occurred_at_ms);
  if (ev->body_case == GOODWILL__V1__INTERACTION_EVENT__BODY_TURN) {
    j = buffer_turn(s, m, ev);
    goodwill__v1__interaction_event__free_unpacked(ev, NULL);
    return j;
  }
  j = job_new(s, m->partition, m->offset);
  char record_id[GW_ID_HEX_LEN + 1];
  uint64_t t0 = uv_hrtime();
  int rc =
      ev->body_case == GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED
          ? score_close(s, j, m, ev, record_id)
          : gw_scoring_score_event(s->model, ev, s->scoring_flags, &j->value, &j->key, record_id);
  gw_metric_observe(s->m_duration, (double)(uv_hrtime() - t0) / 1e9);
  if (rc == 0) {
    j->kind = JOB_SCORED;
    j->scored_kind = ev->body_case == GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY ? 1 : 0;
  } else if (rc == -ENOTSUP) {
    job_to_dlq(j, m, DLQ_UNSUPPORTED, "body: not scored by this version");
  } else {
    job_to_dlq(j, m, DLQ_INVALID, rc == -EINVAL ? "body: missing" : "scoring failed");
  }
  goodwill__v1__interaction_event__free_unpacked(ev, NULL);
  return j;
}

static void on_message(void *opaque, const gw_kafka_message *m) {
  gw_scorer *s = opaque;
  if (s->stopping) {
    /* Not begun, so never stored: whoever owns the partition next reads it again. */
    return;
  }
  if (strcmp(m->topic, s->input_topic) != 0) {
    GW_LOG(s->log, GW_LOG_WARN, "record from an unexpected topic ignored",
           GW_LS("topic", m->topic));
    return;
  }
  s->stats.consumed++;
  gw_metric_add(s->m_consumed, 1);
  if (gw_offsets_begin(s->offsets, s->input_topic, m->partition, m->offset) != 0) {
    /* Out of order for gw_offsets (a replay after a seek): treat the record as new, and
     * rebuild the partition's open interactions from the replay as after a rebalance. */
    gw_offsets_forget(s->offsets, s->input_topic, m->partition);
    gw_open_interactions_drop_partition(s->open, m->partition);
    gw_offsets_begin(s->offsets, s->input_topic, m->partition, m->offset);
  }
  job *j = handle_message(s, m);
  if (j != NULL) {
    job_start(s, j);
  }
  expire_open(s, m->partition);
  update_open_gauges(s);
}

static void on_assign(void *opaque, const gw_kafka_partition *parts, size_t n) {
  gw_scorer *s = opaque;
  GW_LOG(s->log, GW_LOG_INFO, "partitions assigned", GW_LI("count", n));
}

static void on_expiry_timer(uv_timer_t *t) {
  gw_scorer *s = t->data;
  if (s->stopping) {
    return;
  }
  expire_open(s, GW_OPEN_ALL_PARTITIONS);
  update_open_gauges(s);
}

static void on_revoke(void *opaque, const gw_kafka_partition *parts, size_t n) {
  gw_scorer *s = opaque;
  /* Records of these partitions still in flight finish (their outputs are written), but
   * their offsets are no longer ours to store. */
  size_t dropped = 0;
  for (size_t i = 0; i < n; i++) {
    gw_offsets_forget(s->offsets, parts[i].topic, parts[i].partition);
    /* Their buffered turns were never committed: the next owner reads them again and
     * rebuilds the open interactions from the topic. */
    if (strcmp(parts[i].topic, s->input_topic) == 0) {
      dropped += gw_open_interactions_drop_partition(s->open, parts[i].partition);
    }
  }
  update_open_gauges(s);
  GW_LOG(s->log, GW_LOG_INFO, "partitions revoked", GW_LI("count", n),
         GW_LI("open_turns_dropped", dropped));
}

/* ------------------------------------------------------------------ metrics, admin */

static bool ready_cb(void *opaque, char *reason, size_t reason_len) {
  return gw_scorer_ready(opaque, reason, reason_len);
}

static void collect_cb(void *opaque) {
  gw_scorer *s = opaque;
  gw_metric_set(s->m_in_flight, (double)s->jobs);
  update_open_gauges(s);
}

static const char *const kind_label[] = {"kind"};
static const char *const reason_label[] = {"reason"};
static const char *const output_label[] = {"output"};
static const char *const result_label[] = {"result"};

static const gw_metric_spec scorer_metrics[] = {
    GW_METRIC_SERIES(gw_scorer, m_consumed, .name = "goodwill_scorer_records_consumed_total",
                     .help = "Records read from the input topic (replays after a rebalance or "
                             "crash included).",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_FAMILY(gw_scorer, f_scored, .name = "goodwill_scorer_records_scored_total",
                     .help = "ScoredRecords written to the scored topic and acknowledged, by kind.",
                     .type = GW_METRIC_COUNTER, .label_names = kind_label, .nlabels = 1),
    GW_METRIC_FAMILY(gw_scorer, f_dlq, .name = "goodwill_scorer_records_dlq_total",
                     .help = "Input records written to the DLQ and acknowledged, by reason class.",
                     .type = GW_METRIC_COUNTER, .label_names = reason_label, .nlabels = 1),
    GW_METRIC_FAMILY(gw_scorer, f_delivery_failures,
                     .name = "goodwill_scorer_delivery_failures_total",
                     .help = "Failed or refused produce attempts (each is retried), by output.",
                     .type = GW_METRIC_COUNTER, .label_names = output_label, .nlabels = 1),
    GW_METRIC_SERIES(gw_scorer, m_in_flight, .name = "goodwill_scorer_in_flight_records",
                     .help = "Records consumed whose output is not yet acknowledged.",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_paused, .name = "goodwill_scorer_consumer_paused",
                     .help = "1 while consumption is paused (backpressure, delivery retries or "
                             "shutdown).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_duration, .name = "goodwill_scorer_scoring_duration_seconds",
                     .help = "Time to score one validated event.", .type = GW_METRIC_HISTOGRAM,
                     .buckets = gw_metrics_latency_buckets_s,
                     .nbuckets = GW_METRICS_LATENCY_BUCKETS),
    GW_METRIC_SERIES(gw_scorer, m_open_interactions, .name = "goodwill_scorer_open_interactions",
                     .help = "Live interactions with buffered turns and no InteractionClosed yet.",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_open_turns, .name = "goodwill_scorer_open_turns",
                     .help = "Live turns buffered until their InteractionClosed (offsets held "
                             "uncommitted).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_turns_buffered, .name = "goodwill_scorer_turns_buffered_total",
                     .help = "Valid live turns buffered (replays after a rebalance or crash "
                             "included).",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_scorer, m_turns_released, .name = "goodwill_scorer_turns_released_total",
                     .help = "Buffered live turns not scored because their InteractionClosed had "
                             "a transcript.",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_FAMILY(gw_scorer, f_expired, .name = "goodwill_scorer_interactions_expired_total",
                     .help = "Open interactions whose turns went to the DLQ without a close, by "
                             "reason (idle: no InteractionClosed within --turn-idle-timeout, in "
                             "event or in processing time; limit: --max-open-bytes or "
                             "--max-open-turns reached).",
                     .type = GW_METRIC_COUNTER, .label_names = reason_label, .nlabels = 1),
    GW_METRIC_SERIES(gw_scorer, m_open_bytes, .name = "goodwill_scorer_open_bytes",
                     .help = "Bytes held for buffered live turns and their interactions (bounded "
                             "by --max-open-bytes).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_open_oldest_age,
                     .name = "goodwill_scorer_open_oldest_age_seconds",
                     .help = "Processing time since the first turn of the longest open "
                             "interaction was read (0 when none is open): how long its offset has "
                             "held the commit point back.",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_scorer, m_turns_after_close,
                     .name = "goodwill_scorer_turns_after_close_total",
                     .help = "Live turns read after their interaction's InteractionClosed, sent to "
                             "the DLQ at once.",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_FAMILY(gw_scorer, f_reloads, .name = "goodwill_scorer_lexicon_reloads_total",
                     .help = "Reloads of the lexicon and its overlay (SIGHUP), by result: ok (the "
                             "new model scores every record from then on; goodwill_build_info "
                             "shows its version) or error (the old model stays).",
                     .type = GW_METRIC_COUNTER, .label_names = result_label, .nlabels = 1),
};

static int register_metrics(gw_scorer *s) {
  int rc = gw_metrics_register_all(s->metrics, scorer_metrics,
                                   sizeof scorer_metrics / sizeof scorer_metrics[0], s, NULL);
  if (rc == 0) {
    rc = gw_build_info_register(s->metrics, gw_feeling_model_version(s->model));
  }
  if (rc != 0) {
    return rc;
  }
  /* Every label value is known: create each series now, so all render from the start. */
  s->m_scored[0] = gw_metrics_series(s->f_scored, (const char *const[]){"interaction"});
  s->m_scored[1] = gw_metrics_series(s->f_scored, (const char *const[]){"survey"});
  for (int i = 0; i < DLQ_NCLASSES; i++) {
    s->m_dlq[i] = gw_metrics_series(s->f_dlq, (const char *const[]){dlq_class_names[i]});
  }
  s->m_delivery_failures[0] =
      gw_metrics_series(s->f_delivery_failures, (const char *const[]){"scored"});
  s->m_delivery_failures[1] =
      gw_metrics_series(s->f_delivery_failures, (const char *const[]){"dlq"});
  for (int i = 0; i < 2; i++) {
    s->m_expired[i] = gw_metrics_series(s->f_expired, (const char *const[]){expiry_names[i]});
  }
  s->m_reloads[0] = gw_metrics_series(s->f_reloads, (const char *const[]){"ok"});
  s->m_reloads[1] = gw_metrics_series(s->f_reloads, (const char *const[]){"error"});
  return gw_metrics_on_collect(s->metrics, collect_cb, s);
}

/* ------------------------------------------------------------------ the model */

/* Which file a load error is about and its line (0: none), from the loader's message
 * "<file>:<line>: <reason>" or "<file>: <reason>", matched against the files the scorer loads
 * (a path may itself hold ':'). */
static long long load_error_location(const gw_scorer *s, const char *err, char *file,
                                     size_t file_len) {
  const char *candidates[] = {s->overlay_path, s->lexicon_path, "default lexicon"};
  snprintf(file, file_len, "%s", "");
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    const char *c = candidates[i];
    size_t n = c != NULL ? strlen(c) : 0;
    if (n == 0 || strncmp(err, c, n) != 0 || err[n] != ':') {
      continue;
    }
    snprintf(file, file_len, "%s", c);
    long long line = 0;
    const char *p = err + n + 1;
    while (*p >= '0' && *p <= '9' && line < 1000000000) {
      line = line * 10 + (*p++ - '0');
    }
    return *p == ':' ? line : 0;
  }
  return 0;
}

/* ------------------------------------------------------------------ lifecycle */

static void scorer_free(gw_scorer *s) {
  if (s->offsets != NULL) {
    gw_offsets_free(s->offsets);
  }
  gw_open_interactions_free(s->open);
  if (s->model != NULL) {
    gw_feeling_model_free(s->model);
  }
  if (s->own_metrics && s->metrics != NULL) {
    gw_metrics_free(s->metrics);
  }
  free(s->lexicon_path);
  free(s->overlay_path);
  free(s->bootstrap);
  free(s->group_id);
  free(s->client_id);
  free(s->input_topic);
  free(s->scored_topic);
  free(s->dlq_topic);
  free(s);
}

static void on_timer_closed(uv_handle_t *h) {
  gw_scorer *s = h->data;
  if (--s->open_timers > 0) {
    return;
  }
  void (*cb)(void *, int) = s->done_cb;
  void *opaque = s->done_opaque;
  int status = s->grace_expired ? -ETIMEDOUT : 0;
  GW_LOG(s->log, GW_LOG_INFO, "scorer stopped", GW_LB("drained", !s->grace_expired));
  scorer_free(s);
  if (cb != NULL) {
    cb(opaque, status);
  }
}

static void close_timers(gw_scorer *s) {
  uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
  uv_close((uv_handle_t *)&s->grace_timer, on_timer_closed);
  uv_close((uv_handle_t *)&s->expiry_timer, on_timer_closed);
}

static void on_admin_closed(void *opaque) {
  gw_scorer *s = opaque;
  s->admin = NULL;
  s->admin_closed = true;
  close_timers(s);
}

static void on_producer_closed(void *opaque) {
  gw_scorer *s = opaque;
  s->producer = NULL;
  /* Jobs whose reports the producer failed at close were released in on_delivery; the retry
   * list is abandoned (inputs uncommitted, read again by the next owner). */
  while (s->retry_head != NULL) {
    job *j = s->retry_head;
    s->retry_head = j->next_retry;
    s->nretry--;
    s->jobs--;
    job_free(j);
  }
  s->retry_tail = NULL;
  if (s->admin != NULL) {
    gw_admin_close(s->admin, on_admin_closed, s);
  } else {
    on_admin_closed(s);
  }
}

static void on_consumer_closed(void *opaque) {
  gw_scorer *s = opaque;
  s->consumer = NULL;
  s->consumer_closed = true;
  s->producer_closed = true;
  uv_timer_stop(&s->retry_timer);
  /* Nothing is outstanding unless the grace expired; then give the producer a moment only. */
  gw_kafka_producer_close(s->producer, s->jobs > 0 ? 1000 : 100, on_producer_closed, s);
}

/* Once nothing is in flight (or the grace expired), commit and close the consumer. */
static void maybe_finish_stop(gw_scorer *s) {
  if (!s->stopping || s->consumer == NULL || s->consumer_closed) {
    return;
  }
  /* A failed producer will deliver nothing more: waiting for the grace would not help. What
   * is outstanding is abandoned as at the grace's end (uncommitted, read again). */
  if (s->jobs > 0 && s->producer != NULL && gw_kafka_producer_fatal(s->producer) != NULL) {
    s->grace_expired = true;
  }
  if (s->jobs > 0 && !s->grace_expired) {
    return;
  }
  uv_timer_stop(&s->grace_timer);
  gw_kafka_consumer *c = s->consumer;
  s->consumer_closed = true; /* closing: no second close from a later job_finish */
  gw_kafka_consumer_commit(c);
  gw_kafka_consumer_close(c, on_consumer_closed, s);
}

static void on_grace_timer(uv_timer_t *t) {
  gw_scorer *s = t->data;
  GW_LOG(s->log, GW_LOG_WARN, "shutdown grace expired with records in flight",
         GW_LI("in_flight", s->jobs), GW_LI("retrying", s->nretry));
  s->grace_expired = true;
  maybe_finish_stop(s);
}

void gw_scorer_stop(gw_scorer *s, void (*done_cb)(void *opaque, int status), void *opaque) {
  if (s->stopping) {
    return;
  }
  s->stopping = true;
  s->done_cb = done_cb;
  s->done_opaque = opaque;
  GW_LOG(s->log, GW_LOG_INFO, "scorer stopping", GW_LI("in_flight", s->jobs));
  update_flow(s);
  uv_timer_start(&s->grace_timer, on_grace_timer, s->shutdown_grace_ms, 0);
  maybe_finish_stop(s);
}

/* A Kafka client failed for good (kafka.h): not ready from now on; the owner drains. */
static void on_kafka_fatal(void *opaque, const char *reason) {
  gw_scorer *s = opaque;
  if (s->fatal[0] == '\0') {
    snprintf(s->fatal, sizeof s->fatal, "%s", reason);
  }
  if (s->on_fatal != NULL) {
    s->on_fatal(s->fatal_opaque, reason);
  }
  maybe_finish_stop(s);
}

int gw_scorer_start(uv_loop_t *loop, const gw_scorer_config *cfg, gw_scorer **out) {
  *out = NULL;
  const gw_log *log = cfg->log;
  if (cfg->kafka_bootstrap == NULL || cfg->kafka_bootstrap[0] == '\0') {
    GW_LOG(log, GW_LOG_ERROR, "kafka-bootstrap is required");
    return -EINVAL;
  }
  gw_scorer *s = calloc(1, sizeof *s);
  if (s == NULL) {
    abort();
  }
  s->loop = loop;
  s->log = log;
  s->on_fatal = cfg->on_fatal;
  s->fatal_opaque = cfg->fatal_opaque;
  s->bootstrap = dup_or(cfg->kafka_bootstrap, "");
  s->group_id = dup_or(cfg->group_id, "goodwill-scorer");
  s->client_id = dup_or(cfg->client_id, "goodwill-scorer");
  s->input_topic = dup_or(cfg->input_topic, GW_TOPIC_INTERACTIONS);
  s->scored_topic = dup_or(cfg->scored_topic, GW_TOPIC_SCORED);
  s->dlq_topic = dup_or(cfg->dlq_topic, GW_TOPIC_DLQ);
  s->max_in_flight = cfg->max_in_flight > 0 ? cfg->max_in_flight : 10000;
  s->retry_backoff_ms = cfg->retry_backoff_ms > 0 ? cfg->retry_backoff_ms : 200;
  s->retry_backoff_max_ms = cfg->retry_backoff_max_ms > 0 ? cfg->retry_backoff_max_ms : 10000;
  if (s->retry_backoff_max_ms < s->retry_backoff_ms) {
    s->retry_backoff_max_ms = s->retry_backoff_ms;
  }
  s->current_backoff_ms = s->retry_backoff_ms;
  s->shutdown_grace_ms = cfg->shutdown_grace_ms > 0 ? cfg->shutdown_grace_ms : 20000;
  s->scoring_flags = cfg->explain ? GW_SCORING_EXPLAIN : 0;

  char err[512] = "";
  if (cfg->lexicon_path != NULL && cfg->lexicon_path[0] != '\0') {
    s->lexicon_path = dup_or(cfg->lexicon_path, "");
  }
  if (cfg->lexicon_overlay_path != NULL && cfg->lexicon_overlay_path[0] != '\0') {
    s->overlay_path = dup_or(cfg->lexicon_overlay_path, "");
  }
  int rc =
      gw_feeling_model_load_overlaid(&s->model, s->lexicon_path, s->overlay_path, err, sizeof err);
  if (rc != 0) {
    char file[256];
    long long line = load_error_location(s, err, file, sizeof file);
    GW_LOG(log, GW_LOG_ERROR, "cannot load the lexicon",
           GW_LS("path", s->lexicon_path ? s->lexicon_path : ""),
           GW_LS("overlay", s->overlay_path ? s->overlay_path : ""), GW_LS("file", file),
           GW_LI("line", line), GW_LS("reason", err));
    scorer_free(s);
    return -EINVAL;
  }
  if ((rc = gw_offsets_new(&s->offsets)) != 0) {
    scorer_free(s);
    return rc;
  }
  s->turn_idle_timeout_ms =
      cfg->turn_idle_timeout_ms > 0 ? cfg->turn_idle_timeout_ms : GW_SCORER_DEFAULT_TURN_IDLE_MS;
  s->turn_expiry_grace_ms = cfg->turn_expiry_grace_ms > 0 ? cfg->turn_expiry_grace_ms
                                                          : GW_SCORER_DEFAULT_TURN_EXPIRY_GRACE_MS;
  if (s->turn_expiry_grace_ms > s->turn_idle_timeout_ms) {
    s->turn_expiry_grace_ms = s->turn_idle_timeout_ms;
  }
  s->max_open_turns =
      cfg->max_open_turns > 0 ? cfg->max_open_turns : GW_SCORER_DEFAULT_MAX_OPEN_TURNS;
  s->max_open_bytes =
      cfg->max_open_bytes > 0 ? cfg->max_open_bytes : GW_SCORER_DEFAULT_MAX_OPEN_BYTES;
  s->max_recent_closes =
      cfg->max_recent_closes > 0 ? cfg->max_recent_closes : GW_SCORER_DEFAULT_MAX_RECENT_CLOSES;
  gw_open_interactions_config oc = {.idle_timeout_ms = s->turn_idle_timeout_ms,
                                    .grace_ms = s->turn_expiry_grace_ms,
                                    .max_turns = s->max_open_turns,
                                    .max_bytes = s->max_open_bytes,
                                    .max_closed = s->max_recent_closes};
  if ((rc = gw_open_interactions_new(&oc, &s->open)) != 0) {
    scorer_free(s);
    return rc;
  }
  if (cfg->metrics != NULL) {
    s->metrics = cfg->metrics;
  } else {
    if ((rc = gw_metrics_new(&s->metrics)) != 0) {
      scorer_free(s);
      return rc;
    }
    s->own_metrics = true;
  }
  if ((rc = register_metrics(s)) != 0) {
    GW_LOG(log, GW_LOG_ERROR, "cannot register the scorer metrics", GW_LI("rc", rc));
    scorer_free(s);
    return rc;
  }

  gw_kafka_producer_config pc = {
      .bootstrap = s->bootstrap,
      .client_id = s->client_id,
      .properties = cfg->kafka_properties,
      .nproperties = cfg->nkafka_properties,
      .delivery_timeout_ms = cfg->delivery_timeout_ms > 0 ? cfg->delivery_timeout_ms : 30000,
      /* Room for every record in flight, so the bound is ours and ENOBUFS is exceptional. */
      .queue_max_messages = s->max_in_flight * 2 + 1000,
      .linger_ms = 5,
      .log = log,
      .on_fatal = on_kafka_fatal,
      .fatal_opaque = s,
  };
  rc = gw_kafka_producer_new(&s->producer, loop, &pc, err, sizeof err);
  if (rc != 0) {
    GW_LOG(log, GW_LOG_ERROR, "cannot create the kafka producer", GW_LS("reason", err));
    scorer_free(s);
    return rc;
  }

  uv_timer_init(loop, &s->retry_timer);
  uv_timer_init(loop, &s->grace_timer);
  uv_timer_init(loop, &s->expiry_timer);
  s->retry_timer.data = s->grace_timer.data = s->expiry_timer.data = s;
  s->open_timers = 3;
  /* A partition that stops receiving records never moves its stream time, and the grace of a
   * backfilled interaction runs out between records: the processing-time rules are checked on
   * a timer too, often enough for the grace (at most every second). */
  uint64_t every_ms = (uint64_t)s->turn_expiry_grace_ms / 2;
  every_ms = every_ms < 10 ? 10 : every_ms > 1000 ? 1000 : every_ms;
  uv_timer_start(&s->expiry_timer, on_expiry_timer, every_ms, every_ms);

  const char *topics[] = {s->input_topic};
  gw_kafka_consumer_config cc = {
      .bootstrap = s->bootstrap,
      .group_id = s->group_id,
      .client_id = s->client_id,
      .topics = topics,
      .ntopics = 1,
      .properties = cfg->kafka_properties,
      .nproperties = cfg->nkafka_properties,
      .session_timeout_ms = cfg->session_timeout_ms > 0 ? cfg->session_timeout_ms : 10000,
      .commit_interval_ms = cfg->commit_interval_ms > 0 ? cfg->commit_interval_ms : 1000,
      .log = log,
      .metrics = s->metrics, /* goodwill_scorer_records_lost_total{topic,partition} */
      .metrics_prefix = "goodwill_scorer",
  };
  gw_kafka_consumer_handlers h = {.on_message = on_message,
                                  .on_assign = on_assign,
                                  .on_revoke = on_revoke,
                                  .on_fatal = on_kafka_fatal};
  rc = gw_kafka_consumer_new(&s->consumer, loop, &cc, &h, s, err, sizeof err);
  if (rc != 0) {
    GW_LOG(log, GW_LOG_ERROR, "cannot create the kafka consumer", GW_LS("reason", err));
    /* Unwind through the normal close path, without a consumer. */
    s->stopping = s->consumer_closed = true;
    gw_kafka_producer_close(s->producer, 0, on_producer_closed, s);
    return rc;
  }

  if (cfg->admin_port >= 0) {
    gw_admin_config ac = {
        .host = cfg->admin_host != NULL && cfg->admin_host[0] != '\0' ? cfg->admin_host : "0.0.0.0",
        .port = cfg->admin_port,
        .metrics = s->metrics,
        .log = log,
        .ready = ready_cb,
        .ready_opaque = s,
    };
    rc = gw_admin_start(&s->admin, loop, &ac);
    if (rc != 0) {
      GW_LOG(log, GW_LOG_ERROR, "cannot start the admin server", GW_LS("host", ac.host),
             GW_LI("port", ac.port), GW_LS("reason", uv_strerror(rc)));
      s->admin = NULL;
      gw_scorer_stop(s, NULL, NULL);
      return rc;
    }
  }
  GW_LOG(log, GW_LOG_INFO, "scorer started", GW_LS("group", s->group_id),
         GW_LS("input", s->input_topic), GW_LS("model", gw_feeling_model_version(s->model)),
         GW_LI("max_in_flight", s->max_in_flight),
         GW_LI("turn_idle_timeout_ms", s->turn_idle_timeout_ms),
         GW_LI("turn_expiry_grace_ms", s->turn_expiry_grace_ms),
         GW_LI("max_open_turns", s->max_open_turns), GW_LI("max_open_bytes", s->max_open_bytes),
         GW_LI("max_recent_closes", s->max_recent_closes));
  if (cfg->explain) {
    GW_LOG(log, GW_LOG_INFO, "scored records carry explanations (explain_json)",
           GW_LI("max_bytes", GW_SCORING_EXPLAIN_MAX_BYTES));
  }
  *out = s;
  return 0;
}

int gw_scorer_reload_lexicon(gw_scorer *s) {
  char err[512] = "";
  gw_feeling_model *m = NULL;
  /* Loading runs on the loop: no record is scored meanwhile, and none with a half-built
   * model. The default lexicon takes a few tens of milliseconds (load_ms in the log). */
  uint64_t t0 = uv_hrtime();
  int rc = gw_feeling_model_load_overlaid(&m, s->lexicon_path, s->overlay_path, err, sizeof err);
  int64_t load_ms = (int64_t)((uv_hrtime() - t0) / 1000000u);
  if (rc != 0) {
    char file[256];
    long long line = load_error_location(s, err, file, sizeof file);
    gw_metric_add(s->m_reloads[1], 1);
    GW_LOG(s->log, GW_LOG_ERROR, "cannot reload the lexicon; the old model stays",
           GW_LS("file", file), GW_LI("line", line), GW_LS("reason", err),
           GW_LS("path", s->lexicon_path ? s->lexicon_path : ""),
           GW_LS("overlay", s->overlay_path ? s->overlay_path : ""),
           GW_LS("model", gw_feeling_model_version(s->model)));
    return rc;
  }
  char previous[GW_FEELING_VERSION_MAX];
  snprintf(previous, sizeof previous, "%s", gw_feeling_model_version(s->model));
  gw_feeling_model_free(s->model);
  s->model = m;
  gw_build_info_set_model(s->metrics, gw_feeling_model_version(m));
  gw_metric_add(s->m_reloads[0], 1);
  GW_LOG(s->log, GW_LOG_INFO, "lexicon reloaded", GW_LS("model", gw_feeling_model_version(m)),
         GW_LS("previous_model", previous), GW_LI("load_ms", load_ms),
         GW_LS("path", s->lexicon_path ? s->lexicon_path : ""),
         GW_LS("overlay", s->overlay_path ? s->overlay_path : ""));
  return 0;
}

const char *gw_scorer_model_version(const gw_scorer *s) {
  return gw_feeling_model_version(s->model);
}

int gw_scorer_admin_port(const gw_scorer *s) {
  return s->admin != NULL ? gw_admin_port(s->admin) : -1;
}

bool gw_scorer_ready(const gw_scorer *s, char *reason, size_t reason_len) {
  const char *why = NULL;
  char fatal[600];
  if (s->fatal[0] != '\0') {
    snprintf(fatal, sizeof fatal, "kafka fatal error: %s", s->fatal);
    why = fatal;
  } else if (s->stopping) {
    why = "stopping";
  } else if (s->consumer == NULL || !gw_kafka_consumer_assigned(s->consumer)) {
    why = "kafka consumer has not joined its group yet";
  } else if (s->producer == NULL || !gw_kafka_producer_connected(s->producer)) {
    why = "kafka producer is not connected";
  }
  if (why != NULL && reason != NULL && reason_len > 0) {
    snprintf(reason, reason_len, "%s", why);
  }
  return why == NULL;
}

void gw_scorer_get_stats(const gw_scorer *s, gw_scorer_stats *out) {
  *out = s->stats;
  out->in_flight = s->jobs;
  out->paused = s->paused;
  out->open_interactions = gw_open_interactions_count(s->open);
  out->open_turns = gw_open_interactions_turns(s->open);
  out->open_bytes = gw_open_interactions_bytes(s->open);
}
