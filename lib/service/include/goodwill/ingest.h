/*
 * gw_ingest: the goodwill-ingest daemon as a library. It serves
 *   POST /v1/events  JSON (one object or an array), NDJSON or protobuf (one
 *                    goodwill.v1.InteractionEventBatch) InteractionEvents, optionally gzipped
 *                    (Content-Encoding: gzip), with "Authorization: Bearer <token>" unless in
 *                    dev mode; every valid event of the token's tenant is produced to Kafka
 *                    topic goodwill.interactions.v1 (key "tenant_id/interaction_id") and the
 *                    answer leaves only after Kafka acknowledged every produced event: 202
 *                    when all items were accepted, 400 naming each rejected item (the valid
 *                    ones are still produced), 403 when items of another tenant were among
 *                    them, 401, 413, 415, 503 with Retry-After when Kafka did not take them.
 *                    docs/API-ingest.md lists every answer.
 *   GET  /v1/health  200 {"status":"ok"} for load balancers
 * and an admin port (gw_admin: /metrics, /healthz, /readyz = the producer reached a broker and
 * has no fatal error).
 *
 * Threading: loop thread only; every callback runs on the loop.
 *
 * Ownership: cfg and everything it points to are borrowed for the duration of the call (strings
 * and properties are copied where kept, except log and metrics, which must outlive the ingest).
 * When cfg->metrics is NULL the ingest keeps a registry of its own. A borrowed registry keeps a
 * collect hook pointing at the ingest: do not render it after gw_ingest_stop's done callback
 * (the daemon's only renderer, the admin port, is closed by then).
 *
 * Auth: exactly one of tokens_file (bearer tokens bound to tenants, see goodwill/auth.h) and
 * dev_mode (no authentication; a loud warning is logged at start) must be set, else
 * gw_ingest_start refuses with -EINVAL. Tokens are never logged or exported as metrics.
 *
 * Errors: gw_ingest_start returns 0, -EINVAL for an invalid configuration (the reason is logged),
 * a libuv code when a port cannot be bound (e.g. UV_EADDRINUSE), or the producer's error.
 * On failure nothing is left running and done callbacks are never called.
 */
#ifndef GOODWILL_INGEST_H
#define GOODWILL_INGEST_H

#include <stdbool.h>
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
  /* Per-event limits; max_events 0: gw_event_limits_default. Each may only tighten its hard
   * bound (gw_event_limits_check): looser limits make gw_ingest_start fail with -EINVAL. */
  gw_event_limits limits;
  /* Kafka: bootstrap and properties are used; delivery_timeout_ms is replaced by
   * produce_timeout_ms, client_id defaults to "goodwill-ingest", log to the ingest's log;
   * on_fatal and fatal_opaque are the ingest's own (see on_fatal below). */
  gw_kafka_producer_config producer;
  uint64_t produce_timeout_ms; /* an event not acknowledged in time fails its request: 503 */
  const gw_log *log;           /* required, borrowed */
  gw_metrics *metrics;         /* borrowed; NULL: the ingest keeps its own */
  const char *tokens_file;     /* bearer tokens file (copied path); NULL: dev_mode required */
  bool dev_mode;               /* no authentication, every tenant allowed: demos and tests */
  /* Events per second per tenant (per token's tenant; in dev mode one budget for all), as a
   * token bucket (rate_limit.h): a request of a tenant in debt gets 429 with Retry-After.
   * 0: no limit. rate_burst: the bucket's size in events (0: 2 s of rate_limit_per_s). */
  double rate_limit_per_s;
  double rate_burst;
  /* Optional: called once when the Kafka producer failed for good (a fatal error, see
   * goodwill/kafka.h: no event can be produced any more); /readyz answers 503 with the reason
   * from then on, also while draining. The owner should stop the ingest and exit non-zero
   * (goodwill-ingest: gw_daemon_fail). */
  void (*on_fatal)(void *opaque, const char *reason);
  void *fatal_opaque;
} gw_ingest_config;

int gw_ingest_start(uv_loop_t *loop, const gw_ingest_config *cfg, gw_ingest **out);

/* The bound ports (useful with port 0); the admin port is -1 when disabled. */
int gw_ingest_port(const gw_ingest *ing);
int gw_ingest_admin_port(const gw_ingest *ing);

/*
 * Reads the tokens file again (on SIGHUP, from main.c). Returns 0 when the new set is in use;
 * otherwise the old set stays in use, the reason (file and line) is logged, and the error is
 * returned (-EINVAL, -ENOENT, ...). -ENOTSUP in dev mode. Loop thread only.
 */
int gw_ingest_reload_tokens(gw_ingest *ing);

/*
 * How POST /v1/events reads a body, without the network (pure; used by the handler and by
 * the fuzz target). content_type and content_encoding are the header values (NULL: absent).
 * Content-Encoding gzip (or x-gzip) is inflated into *inflated (the caller's, released with
 * gw_buf_free) up to max_body_bytes; identity or absent leaves the body as is. Content-Type
 * application/json, application/x-ndjson (application/ndjson) or application/x-protobuf
 * (application/protobuf) selects the parser; absent means JSON/NDJSON detected by content.
 * Returns what gw_event_parse_json / gw_event_parse_protobuf return (0, -E2BIG, -EINVAL, with
 * the batch filled), or, with the batch empty and msg saying why: -ENOTSUP (answer 415: type
 * or encoding not supported), -EMSGSIZE (413: the inflated body exceeds max_body_bytes),
 * -EBADMSG (400: the gzip stream is corrupt or truncated). *protobuf says which parser ran.
 * The batch must be released with gw_event_batch_free in every case.
 */
int gw_ingest_decode_body(const char *content_type, const char *content_encoding, const char *body,
                          size_t len, size_t max_body_bytes, const gw_event_limits *lim,
                          int64_t now_ms, gw_event_batch *batch, gw_buf *inflated, bool *protobuf,
                          char *msg, size_t msg_len);

/*
 * Drains and frees the ingest: stops accepting connections, finishes in-flight requests (each
 * answered once its events' delivery reports arrived), flushes the producer, closes the admin
 * port, then calls done (exactly once). /readyz answers 503 "draining" from the start.
 */
void gw_ingest_stop(gw_ingest *ing, void (*done)(void *opaque), void *opaque);

#endif
