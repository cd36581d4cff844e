/*
 * The aggregator's read API (docs/API-read.md), private to lib/service/aggregator/: the HTTP
 * listener on api_host:api_port, its routes
 *   GET /v1/teams, /v1/teams/{team}/summary, /v1/teams/{team}/series   (bearer token)
 *   GET /readyz                                                        (no token)
 * the bearer tokens (goodwill/auth.h) or dev mode, query parsing, and the JSON and CSV answers,
 * each counted by route and status. Reads go through the read path (read_path.h).
 *
 * Readiness of its own: /readyz on this port answers 200 while Redis is connected, whatever
 * the Kafka consumer's assignment (read-only replicas and consumer-group rebalances keep it in
 * service), and 503 with the reason when Redis is not connected or the daemon is stopping.
 * The admin port's /readyz (aggregator.c) stays the daemon's: Kafka assigned and Redis too.
 *
 * Thread: the aggregator's loop thread only.
 *
 * Ownership: the read API owns its listener, its tokens and its copy of the tokens file's path,
 * and every read in progress. The registry, log, redis_errors counter and read path are
 * borrowed from the aggregator (aggregator.c). Tokens are never logged or exported.
 *
 * Lifecycle, driven by aggregator.c:
 *   _new     checks the authentication mode (exactly one of tokens_file and dev_mode), loads
 *            the tokens file and registers the metrics; nothing on the loop yet, so _free
 *            undoes it at once. -EINVAL (reason logged) for a bad mode or file, -ENOMEM.
 *   _start   listens; a negative code (reason logged) on failure, after which _close and
 *            _free it all the same. Then logs the authentication mode.
 *   _stop    the daemon stops: /readyz answers 503 "stopping" (requests are still served).
 *   _close   closes the listener (answers in progress are still sent) and calls closed once
 *            (at once when it never listened). Reads in flight get their Redis callbacks until
 *            the Redis client closed, so _free comes only after that.
 */
#ifndef GOODWILL_AGGREGATOR_READ_API_H
#define GOODWILL_AGGREGATOR_READ_API_H

#include <stdbool.h>
#include <uv.h>

#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "read_path.h"

typedef struct gw_agg_read_api gw_agg_read_api;

typedef struct gw_agg_read_api_config {
  uv_loop_t *loop;
  const gw_log *log;
  gw_metrics *metrics;     /* the daemon's registry: the families are registered in it */
  gw_metric *redis_errors; /* failed Redis reads are counted here (shared with the applier) */
  const char *host;        /* borrowed */
  int port;                /* 0: any free port */
  const char *tokens_file; /* path copied; NULL: dev_mode required */
  bool dev_mode;
  double rate_limit_per_s; /* requests per second per tenant; 0: no limit */
  double rate_burst;       /* requests at once (0: twice the rate, at least 1) */
} gw_agg_read_api_config;

int gw_agg_read_api_new(gw_agg_read_api **out, const gw_agg_read_api_config *cfg);
int gw_agg_read_api_start(gw_agg_read_api *api, gw_agg_read_path *read_path);
void gw_agg_read_api_stop(gw_agg_read_api *api);
void gw_agg_read_api_close(gw_agg_read_api *api, void (*closed)(void *opaque), void *opaque);
void gw_agg_read_api_free(gw_agg_read_api *api);

/* The bound port. */
int gw_agg_read_api_port(const gw_agg_read_api *api);

/* As gw_aggregator_reload_tokens (goodwill/aggregator.h). */
int gw_agg_read_api_reload_tokens(gw_agg_read_api *api);

#endif
