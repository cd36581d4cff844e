/*
 * gw_ingest: the goodwill-ingest daemon as a library. It serves
 *   POST /v1/events  JSON (one object or an array) or NDJSON InteractionEvents; every valid
 *                    event is produced to Kafka topic goodwill.interactions.v1 (key
 *                    "tenant_id/interaction_id") and the answer leaves only after Kafka
 *                    acknowledged every produced event: 202 when all items were accepted,
 *                    400 naming each rejected item (the valid ones are still produced), 413,
 *                    415, 503 with Retry-After when Kafka did not take them. docs/API-ingest.md
 *                    lists every answer.
 *   GET  /v1/health  200 {"status":"ok"} for load balancers
 * and an admin port (gw_admin: /metrics, /healthz, /readyz = the producer reached a broker).
 *
 * Threading: loop thread only; every callback runs on the loop.
 *
 * Ownership: cfg and everything it points to are borrowed for the duration of the call (strings
 * and properties are copied where kept, except log and metrics, which must outlive the ingest).
 * When cfg->metrics is NULL the ingest keeps a registry of its own. A borrowed registry keeps a
 * collect hook pointing at the ingest: do not render it after gw_ingest_stop's done callback
 * (the daemon's only renderer, the admin port, is closed by then).
 *
 * Errors: gw_ingest_start returns 0, -EINVAL for an invalid configuration (the reason is logged),
 * a libuv code when a port cannot be bound (e.g. UV_EADDRINUSE), or the producer's error.
 * On failure nothing is left running and done callbacks are never called.
 */
#ifndef GOODWILL_INGEST_H
#define GOODWILL_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/event.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"

typedef struct gw_ingest gw_ingest;

typedef struct gw_ingest_config {
  const char *listen_host;     /* API address, e.g. "0.0.0.0" */
  int listen_port;             /* 0: any free port, see gw_ingest_port */
  const char *admin_host;      /* admin port address */
  int admin_port;              /* 0: any free port; -1: no admin port (tests) */
  size_t max_body_bytes;       /* per request; 413 past it (0: 8 MiB) */
  size_t max_header_bytes;     /* per request head; 431 past it (0: 16 KiB) */
  size_t max_connections;      /* API connections; 503 past it (0: 1024) */
  uint64_t request_timeout_ms; /* a request must arrive within this (0: 30 s) */
  gw_event_limits limits;      /* per-event limits (gw_event_limits_default) */
  /* Kafka: bootstrap and properties are used; delivery_timeout_ms is replaced by
   * produce_timeout_ms, client_id defaults to "goodwill-ingest", log to the ingest's log. */
  gw_kafka_producer_config producer;
  uint64_t produce_timeout_ms; /* an event not acknowledged in time fails its request: 503 */
  const gw_log *log;           /* required, borrowed */
  gw_metrics *metrics;         /* borrowed; NULL: the ingest keeps its own */
} gw_ingest_config;

int gw_ingest_start(uv_loop_t *loop, const gw_ingest_config *cfg, gw_ingest **out);

/* The bound ports (useful with port 0); the admin port is -1 when disabled. */
int gw_ingest_port(const gw_ingest *ing);
int gw_ingest_admin_port(const gw_ingest *ing);

/*
 * Drains and frees the ingest: stops accepting connections, finishes in-flight requests (each
 * answered once its events' delivery reports arrived), flushes the producer, closes the admin
 * port, then calls done (exactly once). /readyz answers 503 "draining" from the start.
 */
void gw_ingest_stop(gw_ingest *ing, void (*done)(void *opaque), void *opaque);

#endif
