/*
 * gw_aggregator: the goodwill-aggregator daemon as a library object. It consumes
 * goodwill.scored.v1 (consumer group cfg->group), groups the records per team, and applies
 * each team's batch with one Lua script call (aggregates.h: dedupe by record id, increments,
 * EXPIREAT) every flush_interval_ms or as soon as a team holds max_batch records. Only after
 * Redis acknowledged a batch are its records marked done (offsets.h) and the committable
 * offsets stored for the consumer's commits: a crash replays, and the replay is deduplicated.
 *
 * Event time is not judged against this clock (ingest or the scorer judged it against the
 * record's received_at): a record goes to every bucket still retained. Records that can never
 * be applied exactly once (undecodable, invalid, older than every retained bucket, received
 * longer ago than the dedupe horizon allows) go to goodwill.dlq.v1 with a goodwill-reason
 * header; their offsets are done once the DLQ write is acknowledged. Redis failures keep the batch
 * and retry it with exponential backoff; more than max_pending records not yet done pause the
 * consumer, which resumes below half of that.
 *
 * It also serves the read API on api_host:api_port (docs/API-read.md), on a Redis connection
 * of its own (applies and reads never share a connection, a command budget or a timeout):
 *   GET /v1/teams/{team}/summary[?tenant=T]&window=1h | &from=ISO&to=ISO [&format=csv]
 *   GET /v1/teams[?tenant=T]&window=1h [&format=csv]
 *   GET /readyz (no token): 200 while Redis is connected, whatever the Kafka assignment
 * and the admin port (metrics goodwill_aggregator_*, /readyz: Redis connected and, unless the
 * mode is read, the consumer assigned and no fatal Kafka error; no authentication there, for
 * Prometheus and the kubelet). The mode (gw_aggregator_mode) leaves out the consumer or the
 * read API. Records the consumer skipped without reading them (goodwill/kafka.h, "Lost
 * records") count in goodwill_aggregator_records_lost_total{topic,partition}.
 *
 * Read API auth: exactly one of tokens_file (bearer tokens bound to tenants, goodwill/auth.h;
 * the format of goodwill-ingest's file, so one file may serve both) and dev_mode (no
 * authentication, tenant= required; a loud warning is logged at start) must be set, else
 * gw_aggregator_start refuses with -EINVAL. With tokens every request needs
 * "Authorization: Bearer <token>" (401 otherwise) and reads only the token's tenant: tenant=
 * may be left out, and naming another tenant is 403. Tokens are never logged or exported.
 *
 * Loop thread only. The config's strings, log and property list are borrowed and must outlive
 * the aggregator. Errors of gw_aggregator_start are negative errno codes with the reason
 * logged; nothing is left running on failure.
 */
#ifndef GOODWILL_AGGREGATOR_H
#define GOODWILL_AGGREGATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/aggregates.h"
#include "goodwill/log.h"

typedef struct gw_aggregator gw_aggregator;

/* What one aggregator process does, so that the apply path and read-only replicas of the read
 * API can run as separate deployments. */
typedef enum gw_aggregator_mode {
  GW_AGGREGATOR_ALL = 0, /* consume and apply, and serve the read API (the default) */
  GW_AGGREGATOR_APPLY,   /* consume and apply only: no read API listener, no team gauges */
  GW_AGGREGATOR_READ,    /* the read API and team gauges only: no Kafka consumer */
} gw_aggregator_mode;

/* "all" | "apply" | "read": 0, or -EINVAL. */
int gw_aggregator_mode_parse(const char *s, gw_aggregator_mode *out);

typedef struct gw_aggregator_config {
  gw_aggregator_mode mode;
  const char *admin_host;
  int admin_port; /* 0: any free port */
  const char *api_host;
  int api_port; /* 0: any free port */
  const char *kafka_bootstrap;
  const char *const *kafka_properties; /* "name=value" pass-through, may be NULL */
  size_t nkafka_properties;
  const char *group; /* "goodwill-aggregator" */
  const char *redis_url;
  /* A file holding the Redis password (AUTH), read at start, one line; NULL or "": the URL's
   * password, if any. Keeps the secret off the command line and out of the environment. */
  const char *redis_password_file;
  /* The apply path and the reads have a Redis connection each, with their own bounds, so that
   * reads can never starve applies: commands in flight (0: 1024 for applies, 256 for reads)
   * and the time a command may take (0: 5 s). */
  size_t apply_max_in_flight;
  size_t read_max_in_flight;
  uint64_t apply_timeout_ms;
  uint64_t read_timeout_ms;
  /* Read API requests per second per tenant (the tenant a token reads, or tenant= in dev mode)
   * and their burst; 0: no limit. Past it: 429 with Retry-After. */
  double read_rate_limit_per_s;
  double read_rate_burst;
  uint64_t flush_interval_ms;
  /* How often the applied marks are compared with what Redis acknowledged, to notice a Redis
   * that lost applied records and heal it from Kafka (docs/RELIABILITY.md); 0: 10 s. */
  uint64_t verify_interval_ms;
  size_t max_batch;   /* records per team per script call (at most GW_AGG_BATCH_MAX) */
  size_t max_pending; /* records consumed and not yet done before the consumer pauses */
  uint64_t session_timeout_ms;
  uint64_t shutdown_grace_ms; /* how long stop waits for pending batches */
  /* The dedupe horizon (aggregates.h: Kafka retention and client retry window; borrowed, NULL:
   * 7 days and 1 day). Out of its ranges, gw_aggregator_start refuses with -EINVAL. */
  const gw_agg_horizon *horizon;
  const gw_log *log;
  const char *tokens_file; /* read API bearer tokens (path copied); NULL: dev_mode required */
  bool dev_mode;           /* read API without authentication (demos and local stacks only) */
  /* Per-team gauges on the admin /metrics (goodwill_team_*{tenant,team}, over the last hour):
   * at most team_metrics_max teams, tenants then teams in id order; 0 turns them off (the
   * default of a zeroed config). Refreshed every team_metrics_interval_ms (0: 30 s), one
   * refresh at a time, skipped while Redis is not connected; a failed refresh keeps the
   * previous values and counts in goodwill_aggregator_team_metrics_refresh_failures_total. */
  size_t team_metrics_max;
  uint64_t team_metrics_interval_ms;
  /* Optional: called once when a Kafka client failed for good (a fatal error, see
   * goodwill/kafka.h); /readyz answers 503 with the reason from then on. The owner should stop
   * the aggregator and exit non-zero (goodwill-aggregator: gw_daemon_fail). */
  void (*on_fatal)(void *opaque, const char *reason);
  void *fatal_opaque;
} gw_aggregator_config;

int gw_aggregator_start(uv_loop_t *loop, const gw_aggregator_config *cfg, gw_aggregator **out);

/*
 * Reads the tokens file again (SIGHUP in goodwill-aggregator). 0 when the new set is in use;
 * on a bad file the previous tokens stay in use, the reason is logged and its negative code
 * returned; -ENOTSUP in dev mode. Counted in goodwill_aggregator_auth_reloads_total{result}.
 */
int gw_aggregator_reload_tokens(gw_aggregator *a);

/* The bound ports (useful when 0 was asked). */
int gw_aggregator_api_port(const gw_aggregator *a);
int gw_aggregator_admin_port(const gw_aggregator *a);

/*
 * Stops consuming, flushes every pending batch (waiting at most shutdown_grace_ms), stores and
 * commits the offsets of what Redis acknowledged, closes every connection and handle, frees the
 * aggregator and calls done exactly once with 0, or -ETIMEDOUT when records were still pending
 * at the end of the grace period (they will be replayed by the next consumer).
 */
void gw_aggregator_stop(gw_aggregator *a, void (*done)(void *opaque, int status), void *opaque);

#endif
