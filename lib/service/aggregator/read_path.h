/*
 * The aggregator's read path over Redis, private to lib/service/aggregator/: what the read API
 * (read_api.c) and the per-team gauges (team_metrics.c) both use to read the aggregates, so
 * that a gauge and a read API row over the same window are the same buckets summed the same
 * way. It sends the read script (aggregates.h, one EVAL per team: one HGETALL per bucket key)
 * and the SMEMBERS of the index sets, and sums the replies; it keeps no state per read.
 *
 * Thread: the aggregator's loop thread only; callbacks run on it (goodwill/redis.h: a command
 * fails synchronously, or its callback runs exactly once, never before the call returns).
 *
 * Ownership: the read path owns its copy of the read script; the Redis client is borrowed from
 * the aggregator (aggregator.c), which closes it and frees the read path last. Replies are
 * borrowed for their callback, as in goodwill/redis.h.
 */
#ifndef GOODWILL_AGGREGATOR_READ_PATH_H
#define GOODWILL_AGGREGATOR_READ_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goodwill/aggregates.h"
#include "goodwill/redis.h"
#include "goodwill/window.h"

typedef struct gw_agg_read_path gw_agg_read_path;

/* redis is borrowed and must outlive the read path. -ENOMEM, or the script's error. */
int gw_agg_read_path_new(gw_agg_read_path **out, gw_redis *redis);
void gw_agg_read_path_free(gw_agg_read_path *rp);

/* Whether the Redis client is connected now (reads would be sent). */
bool gw_agg_read_path_connected(const gw_agg_read_path *rp);

/*
 * One EVAL of the read script for a team, its reply holding one element per key in key order
 * (an array of field, value, ...; not an array when the bucket does not exist):
 * - _window: the buckets of comp (a window), summed by gw_agg_read_path_sum;
 * - _series: npoints buckets of step from first_s (one per point of a time series), kept apart
 *   by gw_agg_read_path_points.
 * Returns gw_redis_eval's code (-ENOTCONN, -EAGAIN, ...: then cb is never called).
 */
int gw_agg_read_path_window(gw_agg_read_path *rp, const char *tenant, const char *team,
                            const gw_window_composition *comp, gw_redis_reply_cb cb, void *opaque);
int gw_agg_read_path_series(gw_agg_read_path *rp, const char *tenant, const char *team,
                            gw_resolution step, int64_t first_s, size_t npoints,
                            gw_redis_reply_cb cb, void *opaque);

/* Adds every bucket of a read script's reply (an array) into *into. -EINVAL when a bucket
 * holds a non-integer counter; the buckets before it were added. */
int gw_agg_read_path_sum(gw_agg_totals *into, const gw_redis_reply *reply);

/* Adds the i-th bucket of a read script's reply into points[i], for i < npoints. -EINVAL as
 * gw_agg_read_path_sum. */
int gw_agg_read_path_points(gw_agg_totals *points, size_t npoints, const gw_redis_reply *reply);

/* SMEMBERS of an index set: the team ids of tenant, or with tenant NULL the tenant ids.
 * Returns gw_redis_command's code. */
int gw_agg_read_path_members(gw_agg_read_path *rp, const char *tenant, gw_redis_reply_cb cb,
                             void *opaque);

/*
 * The ids among the first `examined` members of an SMEMBERS reply (an array), in id order;
 * members that are no goodwill id were not written by goodwill and are skipped. *out (the
 * caller frees the array) points into the reply: valid during its callback only.
 */
size_t gw_agg_read_path_ids(const gw_redis_reply *reply, size_t examined, const char ***out);

#endif
