/*
 * gw_admin: /metrics, /healthz and /readyz on a small gw_http server (see goodwill/admin.h).
 *
 * The admin port serves probes and scrapes, not data, so its limits are fixed and small.
 * A known path asked with a method other than GET or HEAD is answered 405 with Allow (more
 * precise than 404 for a misconfigured probe); every other path is 404.
 */
#include "goodwill/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/buf.h"
#include "goodwill/http.h"

#define GW_ADMIN_MAX_BODY_BYTES   (64u * 1024u)
#define GW_ADMIN_MAX_HEADER_BYTES (16u * 1024u)
#define GW_ADMIN_MAX_CONNECTIONS  64u
#define GW_ADMIN_TIMEOUT_MS       10000u

struct gw_admin {
  gw_http_server *http;
  gw_metrics *metrics;
  const gw_log *log;
  gw_admin_ready_cb ready;
  void *ready_opaque;
  gw_http_handler other;
  void *other_opaque;
  void (*close_cb)(void *opaque);
  void *close_opaque;
};

static const char text_plain[] = "text/plain; charset=utf-8";

static void respond_text(gw_http_request *req, int status, const char *text) {
  gw_http_respond(req, status, text_plain, text, strlen(text), NULL, 0);
}

static void admin_handle(void *opaque, gw_http_request *req) {
  gw_admin *a = opaque;
  const char *path = req->path;
  bool known = strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
               strcmp(path, "/readyz") == 0;
  if (!known && a->other != NULL) {
    a->other(a->other_opaque, req);
    return;
  }
  if (!known) {
    respond_text(req, 404, "not found; try /metrics, /healthz or /readyz\n");
    return;
  }
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
    const gw_http_header allow = {"Allow", "GET, HEAD"};
    const char *msg = "method not allowed; use GET\n";
    gw_http_respond(req, 405, text_plain, msg, strlen(msg), &allow, 1);
    return;
  }
  if (strcmp(path, "/metrics") == 0) {
    gw_buf out = GW_BUF_INIT;
    if (a->metrics != NULL) {
      gw_metrics_render(a->metrics, &out);
    }
    gw_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                    out.len, NULL, 0);
    gw_buf_free(&out);
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    /* Answered from the loop: if the loop is stuck, the probe times out. */
    respond_text(req, 200, "ok\n");
    return;
  }
  char reason[256] = "";
  bool ready = a->ready == NULL || a->ready(a->ready_opaque, reason, sizeof(reason));
  if (ready) {
    respond_text(req, 200, "ready\n");
    return;
  }
  reason[sizeof(reason) - 1] = '\0';
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "not ready: %s\n", reason[0] ? reason : "no reason given");
  gw_http_respond(req, 503, text_plain, b.data, b.len, NULL, 0);
  gw_buf_free(&b);
}

int gw_admin_start(gw_admin **out, uv_loop_t *loop, const gw_admin_config *cfg) {
  *out = NULL;
  if (cfg == NULL || cfg->host == NULL) {
    return -EINVAL;
  }
  gw_admin *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return -ENOMEM;
  }
  a->metrics = cfg->metrics;
  a->log = cfg->log;
  a->ready = cfg->ready;
  a->ready_opaque = cfg->ready_opaque;
  gw_http_config hc = {
      .host = cfg->host,
      .port = cfg->port,
      .max_body_bytes = GW_ADMIN_MAX_BODY_BYTES,
      .max_header_bytes = GW_ADMIN_MAX_HEADER_BYTES,
      .max_connections = GW_ADMIN_MAX_CONNECTIONS,
      .request_timeout_ms = GW_ADMIN_TIMEOUT_MS,
      .server_name = "goodwill-admin",
      .log = cfg->log,
  };
  int rc = gw_http_server_start(&a->http, loop, &hc, admin_handle, a);
  if (rc < 0) {
    free(a);
    return rc;
  }
  *out = a;
  return 0;
}

int gw_admin_port(const gw_admin *a) {
  return gw_http_server_port(a->http);
}

void gw_admin_set_other(gw_admin *a, gw_http_handler handler, void *opaque) {
  a->other = handler;
  a->other_opaque = opaque;
}

static void admin_http_closed(void *opaque) {
  gw_admin *a = opaque;
  void (*cb)(void *) = a->close_cb;
  void *cb_opaque = a->close_opaque;
  free(a);
  if (cb != NULL) {
    cb(cb_opaque);
  }
}

void gw_admin_close(gw_admin *a, void (*close_cb)(void *opaque), void *opaque) {
  if (a == NULL) {
    return;
  }
  a->close_cb = close_cb;
  a->close_opaque = opaque;
  gw_http_server_close(a->http, admin_http_closed, a);
}
