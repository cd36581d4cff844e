/*
 * The applied marks of the aggregator, private to lib/service/aggregator/: Kafka is the source
 * of truth and Redis a store derived from it, so a Redis that loses acknowledged writes (killed
 * without AOF, restarted from an older snapshot, failed over to a replica that lagged, flushed)
 * must be noticed and healed from Kafka, without an operator.
 *
 * Per partition of goodwill.scored.v1, a mark in Redis (`gw:applied:<topic>:<partition>`, see
 * docs/REDIS_SCHEMA.md) says up to which offset Redis holds the effect of every record: the
 * applier writes it (only ever raising it) after it stored that offset for commit, so it never
 * runs ahead of what Redis acknowledged. Redis applies commands in order, and a snapshot, an
 * AOF or a replica holds a prefix of them, so a Redis that still has a mark still has every
 * apply before it. The marks are checked:
 *   - once a partition is assigned and the group's committed offset for it is known: a mark
 *     missing or lower than the committed offset means records the group committed are not
 *     in Redis (a new group, with nothing committed, has nothing to check);
 *   - after the Redis connection came back, and every verify_interval_ms: a mark lower than the
 *     one Redis acknowledged to this process, or gone, means Redis lost writes.
 * Either way the heal callback reads the partition again from the mark (or from its earliest
 * record when the mark is gone); the apply script's dedupe makes the replay count each record
 * once. A false alarm (a mark write lost in a crash) costs a replay, never a double count.
 *
 * Thread: the aggregator's loop. Ownership: redis, log, metrics and topic are borrowed; the
 * marks must be freed only after redis closed (its last callbacks reach them), as the applier
 * that owns them is.
 */
#ifndef GOODWILL_AGGREGATOR_MARKS_H
#define GOODWILL_AGGREGATOR_MARKS_H

#include <stdbool.h>
#include <stdint.h>

#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "goodwill/redis.h"

typedef struct gw_agg_marks gw_agg_marks;

/* Read partition again from `from` (GW_KAFKA_OFFSET_BEGINNING: its earliest record). */
typedef void (*gw_agg_heal_cb)(void *opaque, int32_t partition, int64_t from);

/* The group's committed offset of partition: 0 with *out, -EAGAIN while not known yet,
 * -ENOENT when nothing was committed (gw_kafka_consumer_committed). */
typedef int (*gw_agg_committed_cb)(void *opaque, int32_t partition, int64_t *out);

typedef struct gw_agg_marks_config {
  const char *topic; /* goodwill.scored.v1 */
  const gw_log *log;
  gw_metrics *metrics; /* goodwill_aggregator_heals_total is registered in it */
  uint64_t verify_interval_ms;
  gw_agg_heal_cb heal;
  gw_agg_committed_cb committed;
  void *opaque;
} gw_agg_marks_config;

int gw_agg_marks_new(gw_agg_marks **out, const gw_agg_marks_config *cfg);
/* Starts using redis (borrowed, the applier's connection). */
int gw_agg_marks_start(gw_agg_marks *m, gw_redis *redis);
void gw_agg_marks_free(gw_agg_marks *m);

void gw_agg_marks_assigned(gw_agg_marks *m, int32_t partition);
void gw_agg_marks_revoked(gw_agg_marks *m, int32_t partition);
/* Offsets up to next (excluded) of partition were stored for commit: its mark follows. */
void gw_agg_marks_stored(gw_agg_marks *m, int32_t partition, int64_t next);
/* On every flush tick: checks newly assigned partitions once their committed offset is known
 * (a mark is written only after that check, so a new mark cannot hide a loss), writes the
 * marks that moved, and verifies after a reconnect and every verify_interval_ms. now_ms is the
 * loop's clock. */
void gw_agg_marks_tick(gw_agg_marks *m, uint64_t now_ms);

#endif
