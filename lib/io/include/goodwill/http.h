/*
 * gw_http: an HTTP/1.1 server on a libuv loop (http-parser underneath), shared by the admin
 * port of every daemon, goodwill-ingest's API and the aggregator's read API.
 *
 * Keep-alive, pipelining (responses always leave in request order, even when handlers answer
 * out of order), chunked request bodies, Expect: 100-continue, a body size limit (413 before
 * the body is read when Content-Length says so, and as soon as a chunked body exceeds it),
 * a header size limit (431), a connection limit (new connections past it get 503 and are
 * closed), an idle / request timeout (408, then close), and graceful close.
 *
 * Output backpressure: when more than max_output_bytes of answers wait to be sent on a
 * connection, the server stops reading requests from it and holds further answers back until
 * the client reads; a client that reads nothing for a whole request timeout is disconnected.
 * A connection's memory is so bounded by about max_output_bytes plus one answer, the read
 * buffer and the requests already in the pipeline (at most 32), however the client behaves.
 *
 * The handler is called once per complete request, on the loop thread. It must answer exactly
 * once with gw_http_respond, now or later (e.g. after Kafka acknowledged); the request object
 * stays valid until then. If the client disconnects first, the request is marked aborted
 * (gw_http_request_aborted) and the later gw_http_respond only releases it.
 *
 * Ownership: the server owns requests; strings in a request are borrowed and live as long as
 * the request. gw_http_server_close stops accepting, lets in-flight requests finish (their
 * responses are sent) and calls close_cb once every connection is closed; the server is freed
 * after close_cb returns.
 */
#ifndef GOODWILL_HTTP_H
#define GOODWILL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/log.h"

typedef struct gw_http_server gw_http_server;
typedef struct gw_http_request gw_http_request;

typedef struct gw_http_header {
  const char *name;
  const char *value;
} gw_http_header;

struct gw_http_request {
  const char *method; /* "GET", "POST", ... */
  const char *path;   /* URL path without the query, percent-decoded, e.g. "/v1/events" */
  const char *query;  /* raw query string without '?', "" when none */
  const char *body;   /* the whole body (de-chunked), NUL-terminated; "" when none */
  size_t body_len;
  const gw_http_header *headers; /* as received; names keep their case */
  size_t nheaders;
  uint64_t received_ns; /* uv_hrtime() when the request was complete */
  void *user;           /* free for the handler */
};

typedef void (*gw_http_handler)(void *opaque, gw_http_request *req);

/* An answer given on the head alone (gw_http_config.on_head); status 0: read on. Strings are
 * borrowed for the call and copied. */
typedef struct gw_http_early_answer {
  int status;
  const char *content_type;
  const char *body;
  size_t body_len;
  const gw_http_header *extra;
  size_t nextra;
} gw_http_early_answer;

typedef struct gw_http_config {
  const char *host;            /* listen address, e.g. "0.0.0.0" or "127.0.0.1" */
  int port;                    /* 0: any free port, see gw_http_server_port */
  size_t max_body_bytes;       /* 413 past it */
  size_t max_header_bytes;     /* 431 past it (whole request head) */
  size_t max_connections;      /* 503 and close past it */
  size_t max_output_bytes;     /* answers queued per connection before reading stops (0: 1 MiB) */
  uint64_t request_timeout_ms; /* 408 when a request is not complete in time; also idle limit */
  const char *server_name;     /* Server: header value */
  const gw_log *log;           /* borrowed */
  /* Optional (NULL: none). Told of each answer the server gives by itself, which the handler
   * never sees: 400 (malformed request), 408, 413, 431, and 503 (over the connection limit, or
   * a request cut off by shutdown); called with the handler's opaque, for metrics. path is
   * the request's decoded path, or NULL when the head was not read that far. */
  void (*on_server_answer)(void *opaque, const char *path, int status);
  /* Optional (NULL: none). Called with the handler's opaque when a request's head is complete,
   * before any body byte is read and before any 100 Continue: method, path, query and headers
   * are set, the body is not. Filling ans with a status refuses the request: that answer goes
   * out in request order, the connection closes after it and the handler never sees the
   * request. Leaving ans->status 0 lets the request go on to the handler. */
  void (*on_head)(void *opaque, gw_http_request *req, gw_http_early_answer *ans);
} gw_http_config;

int gw_http_server_start(gw_http_server **out, uv_loop_t *loop, const gw_http_config *cfg,
                         gw_http_handler handler, void *opaque);
int gw_http_server_port(const gw_http_server *s); /* the bound port */
size_t gw_http_server_connections(const gw_http_server *s);
/* Bytes of answers queued for sending, over every connection (for metrics and tests). */
size_t gw_http_server_output_bytes(const gw_http_server *s);
void gw_http_server_close(gw_http_server *s, void (*close_cb)(void *opaque), void *opaque);

/* Case-insensitive header lookup; NULL when absent. */
const char *gw_http_request_header(const gw_http_request *req, const char *name);
/* The value of a query parameter, percent-decoded into a buffer owned by the request; NULL
 * when absent. */
const char *gw_http_request_query(gw_http_request *req, const char *name);
bool gw_http_request_aborted(const gw_http_request *req);

/*
 * Answers req (exactly once). body is copied; extra headers (may be NULL) are copied too.
 * Content-Length, Date, Server and Connection are added by the server.
 */
void gw_http_respond(gw_http_request *req, int status, const char *content_type, const char *body,
                     size_t body_len, const gw_http_header *extra, size_t nextra);

/* The reason phrase of a status code ("Accepted" for 202). */
const char *gw_http_status_text(int status);

#endif
