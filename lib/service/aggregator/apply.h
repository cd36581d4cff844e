/*
 * The aggregator's consuming and applying, private to lib/service/aggregator/: the Kafka
 * consumer of goodwill.scored.v1, the records batched per team, one Lua apply per team batch
 * (aggregates.h: dedupe by record id and increments in one script), offsets stored only after
 * Redis acknowledged (offsets.h), and the DLQ producer for records that can never be applied
 * (undecodable, invalid, too late: no bucket retained, or past the dedupe horizon). Redis failures
 * keep a batch and retry it with exponential backoff; more than max_pending records not yet done
 * pause the consumer, which resumes below half of that.
 *
 * Thread: the aggregator's loop thread only (Kafka and Redis callbacks and the flush timer run
 * there).
 *
 * Ownership: the applier owns its consumer, producer, offsets, apply script, flush timer,
 * teams and batches, and the records on their way to the DLQ. The Redis client, registry, log,
 * the redis_errors counter and the configuration's strings are borrowed from the aggregator
 * (aggregator.c) and must outlive the applier.
 *
 * Lifecycle, driven by aggregator.c:
 *   _new     registers the metrics, creates the offsets and the script; nothing on the loop
 *            yet, so _free undoes it at once. -ENOMEM or the registry's error.
 *   _start   creates the producer and the consumer and starts the flush timer. On failure (a
 *            negative code, reason logged) the applier is partly started: _halt, _close and
 *            _free it as after success.
 *   _drain   the daemon stops: the consumer pauses, every pending batch is sent now; from
 *            then on each flush tick that finds nothing pending or in flight calls
 *            cfg.drained (until _halt).
 *   _halt    nothing is sent any more and the flush timer closes; called before the Redis
 *            client closes, so batches still in flight fail and stay uncommitted (replayed).
 *   _close   after the Redis client closed: closes the DLQ producer (its last delivery
 *            reports may still settle records and store offsets), then the consumer (its
 *            close commits the stored offsets); calls closed once everything is closed.
 *   _free    frees what is left (pending batches: their records are replayed by the next
 *            owner of their partitions).
 */
#ifndef GOODWILL_AGGREGATOR_APPLY_H
#define GOODWILL_AGGREGATOR_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/aggregates.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "goodwill/redis.h"

typedef struct gw_agg_applier gw_agg_applier;

typedef struct gw_agg_applier_config {
  uv_loop_t *loop;
  const gw_log *log;
  gw_metrics *metrics;     /* the daemon's registry: the families are registered in it */
  gw_metric *redis_errors; /* failed apply calls are counted here (shared with the read API) */
  const char *kafka_bootstrap;
  const char *const *kafka_properties; /* "name=value" pass-through, may be NULL */
  size_t nkafka_properties;
  const char *group;
  uint64_t session_timeout_ms;
  uint64_t flush_interval_ms; /* > 0 */
  size_t max_batch;           /* 1..GW_AGG_BATCH_MAX */
  size_t max_pending;         /* > 0 */
  /* How often Redis is checked for lost applied records (marks.h); 0: 10 s. */
  uint64_t verify_interval_ms;
  gw_agg_horizon horizon; /* the dedupe horizon (gw_agg_horizon_check passed) */
  /* Called on a flush tick after _drain when nothing is pending any more. */
  void (*drained)(void *opaque);
  /* Called once when a Kafka client of the applier failed for good (goodwill/kafka.h). */
  void (*fatal)(void *opaque, const char *reason);
  void *opaque;
} gw_agg_applier_config;

int gw_agg_applier_new(gw_agg_applier **out, const gw_agg_applier_config *cfg);
int gw_agg_applier_start(gw_agg_applier *ap, gw_redis *redis);
void gw_agg_applier_drain(gw_agg_applier *ap);
void gw_agg_applier_halt(gw_agg_applier *ap);
void gw_agg_applier_close(gw_agg_applier *ap, void (*closed)(void *opaque), void *opaque);
void gw_agg_applier_free(gw_agg_applier *ap);

/* Whether every record consumed is done: applied, or in the DLQ (none in flight or to retry). */
bool gw_agg_applier_drained(const gw_agg_applier *ap);
/* Records consumed and not yet done. */
size_t gw_agg_applier_pending(const gw_agg_applier *ap);
/* Whether the consumer holds an assignment (the daemon's readiness). */
bool gw_agg_applier_assigned(const gw_agg_applier *ap);
/* The fatal error of the consumer or the DLQ producer, or NULL (the daemon's readiness). */
const char *gw_agg_applier_fatal(const gw_agg_applier *ap);

#endif
