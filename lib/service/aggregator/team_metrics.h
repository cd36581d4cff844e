/*
 * The aggregator's per-team gauges on the admin /metrics (goodwill_team_*{tenant,team}, over
 * the last hour; docs/API-read.md, "Per-team metrics"), private to lib/service/aggregator/.
 * Every interval_ms a refresh lists the tenants and their teams in id order up to `max` teams,
 * reads each team's window=1h buckets through the read path (read_path.h, one team at a time)
 * and publishes all values at once; one refresh at a time, none while Redis is not connected,
 * and a failed or skipped refresh keeps the previous values and is counted.
 *
 * Thread: the aggregator's loop thread only (the refresh timer and Redis callbacks run there).
 *
 * Ownership: the component owns its timer, the refresh in progress and the series it last set.
 * The registry, log and read path are borrowed from the aggregator (aggregator.c). The series
 * live in the registry (the aggregator frees it after this component).
 *
 * Lifecycle: _new registers the metrics (nothing on the loop yet; _free undoes it); _start
 * starts the timer (when max > 0); _stop ends refreshing (a refresh in progress still
 * publishes); _close closes the timer and calls closed once (at once when never started). A
 * refresh in flight still gets its Redis callbacks until the Redis client closed, so _free
 * comes only after that.
 */
#ifndef GOODWILL_AGGREGATOR_TEAM_METRICS_H
#define GOODWILL_AGGREGATOR_TEAM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "read_path.h"

typedef struct gw_agg_team_metrics gw_agg_team_metrics;

typedef struct gw_agg_team_metrics_config {
  uv_loop_t *loop;
  const gw_log *log;
  gw_metrics *metrics;  /* the daemon's registry: the families are registered in it */
  size_t max;           /* teams exported at most (--team-metrics-max); 0: gauges off */
  uint64_t interval_ms; /* between refreshes (--team-metrics-interval); must not be 0 */
} gw_agg_team_metrics_config;

/* -ENOMEM, or gw_metrics_register_all's error (families registered before it stay in the
 * registry, which the aggregator frees). */
int gw_agg_team_metrics_new(gw_agg_team_metrics **out, const gw_agg_team_metrics_config *cfg);
void gw_agg_team_metrics_start(gw_agg_team_metrics *tm, gw_agg_read_path *read_path);
void gw_agg_team_metrics_stop(gw_agg_team_metrics *tm);
void gw_agg_team_metrics_close(gw_agg_team_metrics *tm, void (*closed)(void *opaque), void *opaque);
void gw_agg_team_metrics_free(gw_agg_team_metrics *tm);

#endif
