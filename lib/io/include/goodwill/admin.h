/*
 * gw_admin: the admin HTTP port every daemon has:
 *   GET /metrics  Prometheus text of the daemon's registry (collect hooks run first)
 *   GET /healthz  200 "ok" while the loop turns (answered from the loop, so a stuck loop
 *                 times the probe out)
 *   GET /readyz   200 when the daemon's ready callback says so (connected, assigned),
 *                 503 with the reason otherwise
 * Anything else is 404, or goes to the handler given to gw_admin_set_other (a tool's own
 * endpoints, e.g. goodwill-devkafka's fault injection). Loop thread only. The registry and log
 * are borrowed.
 */
#ifndef GOODWILL_ADMIN_H
#define GOODWILL_ADMIN_H

#include <stdbool.h>
#include <uv.h>

#include "goodwill/http.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"

typedef struct gw_admin gw_admin;

/* Returns true when ready; otherwise writes a short reason (shown in the 503 body). */
typedef bool (*gw_admin_ready_cb)(void *opaque, char *reason, size_t reason_len);

typedef struct gw_admin_config {
  const char *host;
  int port; /* 0: any free port */
  gw_metrics *metrics;
  const gw_log *log;
  gw_admin_ready_cb ready;
  void *ready_opaque;
} gw_admin_config;

int gw_admin_start(gw_admin **out, uv_loop_t *loop, const gw_admin_config *cfg);
int gw_admin_port(const gw_admin *a);
/* From now on every path but the three above goes to handler (which must answer each request
 * once, as goodwill/http.h says), instead of 404. */
void gw_admin_set_other(gw_admin *a, gw_http_handler handler, void *opaque);
void gw_admin_close(gw_admin *a, void (*close_cb)(void *opaque), void *opaque);

#endif
