/*
 * gw_http: HTTP/1.1 server on libuv and http-parser 2.9.4 (see goodwill/http.h for the contract).
 *
 * Shape of a connection. Every connection owns a FIFO of requests in the order they arrived.
 * A request enters the FIFO when its first byte is parsed (state PARSING), becomes PENDING when
 * it is complete and handed to the handler, and RESPONDED when the handler answered. Responses
 * are serialised and written only from the head of the FIFO, so pipelined responses always leave
 * in request order whatever order handlers answer in. Server-generated errors (400, 408, 413,
 * 431, 503) are ordinary responses of the request being parsed and wait their turn likewise.
 *
 * Input is kept in one buffer per connection and parsed one request at a time (the parser is
 * paused in on_message_complete), so the handler is never called from inside http-parser, and
 * parsing stops while GW_HTTP_MAX_PIPELINE requests wait for their answers; reading from the
 * socket stops too, which bounds the memory a pipelining client can make us hold.
 *
 * Closing: after a response that ends the connection (Connection: close, HTTP/1.0 without
 * keep-alive, an error, server shutdown) the write side is shut down and the rest of the
 * client's input is read and discarded for a short while ("lingering close"); closing a socket
 * with unread input would make the kernel send RST, and the client could lose the response
 * (typically a 413 for a body it is still uploading).
 *
 * Limits: http-parser's own header limit is process-wide (80 KiB by default), so the per-server
 * max_header_bytes is enforced here by counting the bytes of the request line and the headers
 * as the callbacks see them; the body limit is checked against Content-Length before the body
 * is read and against the running total of a chunked body.
 */
#include "goodwill/http.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "goodwill/buf.h"

#define GW_HTTP_READ_CHUNK_BYTES 65536
#define GW_HTTP_MAX_PIPELINE     32
/* Requests one connection may have handled before the loop turns to the others: a client that
 * pipelines thousands of cheap requests gets its share, not the whole loop (health probes on
 * other connections answer within the same turn). The rest waits in its input buffer, which
 * is not read further past GW_HTTP_READ_CHUNK_BYTES, and goes on in the next loop turn. */
#define GW_HTTP_REQUESTS_PER_TURN 16
/* What a queued answer costs besides its bytes (its write request and buffers), counted
 * against max_output_bytes so that many small answers are bounded like few large ones. */
#define GW_HTTP_WRITE_COST       512
#define GW_HTTP_LINGER_MS        2000
#define GW_HTTP_LINGER_MAX_BYTES (4u * 1024u * 1024u)

/* Defaults for zero-valued limits in gw_http_config. */
#define GW_HTTP_DEFAULT_MAX_BODY_BYTES   (1024u * 1024u)
#define GW_HTTP_DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define GW_HTTP_DEFAULT_MAX_CONNECTIONS  1024u
#define GW_HTTP_DEFAULT_TIMEOUT_MS       30000u
#define GW_HTTP_DEFAULT_MAX_OUTPUT_BYTES (1024u * 1024u)

/* Bytes of framing the callbacks do not see: "METHOD " and " HTTP/1.1\r\n" for the request
 * line, ": " and "\r\n" per header. Counted so max_header_bytes means the head's real size. */
#define GW_HTTP_REQUEST_LINE_OVERHEAD 20
#define GW_HTTP_HEADER_OVERHEAD       4

typedef enum req_state { REQ_PARSING, REQ_PENDING, REQ_RESPONDED } req_state;

typedef struct http_conn http_conn;

typedef struct query_value {
  struct query_value *next;
  char value[];
} query_value;

typedef struct http_req {
  gw_http_request pub; /* first member: gw_http_request * converts back to http_req * */
  http_conn *conn;     /* NULL once the connection closed under a pending request */
  struct http_req *next;
  req_state state;
  bool aborted;

  /* The head as parsed: url, then NUL-separated header names and values, then the decoded
   * path and the query. Offsets, not pointers, until the head is complete (the buffer grows). */
  gw_buf head;
  size_t head_bytes;       /* for max_header_bytes */
  size_t *hdr_off;         /* 2 per header: name offset, value offset (SIZE_MAX: none yet) */
  size_t nhdr, hdr_cap;    /* headers seen, offsets allocated (pairs) */
  bool in_field;           /* the last head callback was a header name */
  bool head_complete;      /* headers-complete ran: pointers into head are out; trailer
                            * fields of a chunked body are counted, never stored */
  gw_http_header *headers; /* built at headers-complete */
  size_t headers_cap;      /* entries allocated in headers */
  gw_buf body;
  bool complete;      /* fully received (counted in the connection's nqueued) */
  bool keep_alive;    /* http_should_keep_alive at message-complete */
  bool want_continue; /* Expect: 100-continue and a body is coming */
  bool continue_sent;
  bool is_head;              /* HEAD: the response carries no body */
  query_value *query_values; /* gw_http_request_query results, owned */

  /* The response, kept until the request reaches the head of the FIFO. */
  int status;
  gw_buf resp_head; /* status line, Server, Content-Type, the handler's extra headers and
                     * Content-Length; Date and Connection are added when it is written */
  gw_buf resp_body;
  bool resp_close; /* the server ends the connection after this response */
} http_req;

struct http_conn {
  gw_http_server *server;
  http_conn *prev, *next; /* in the server's list */
  uv_tcp_t tcp;
  uv_timer_t timer; /* request / idle timeout, then the lingering-close limit */
  uv_shutdown_t shutdown_req;
  int open_handles; /* freed when the last of tcp and timer closed */
  http_parser parser;

  http_req *head, *tail;  /* the FIFO */
  http_req *parsing;      /* the request being parsed (the FIFO's tail), NULL between requests */
  http_req *completed;    /* set by on_message_complete, dispatched by process_input */
  size_t nqueued;         /* complete requests in the FIFO (PENDING or RESPONDED) */
  int parse_error_status; /* status chosen by a callback that stopped the parser */
  const char *parse_error_msg;

  /* A finished request kept with its buffers for the next request of this connection, so that
   * a keep-alive client's requests reuse memory instead of allocating and freeing several
   * blocks each (malloc and free were a tenth of goodwill-ingest's CPU per request). */
  http_req *spare;
  /* The request / idle deadline on the loop's clock (uv_now), 0: none. The timer is started
   * only when it is not running: a deadline that moved later is found when the timer fires,
   * which spares a timer-heap removal and insertion per request. */
  uint64_t deadline_ms;
  uint64_t timer_due_ms; /* when the running timer fires */

  char *in; /* unparsed input: [in_off, in_len) */
  size_t in_off, in_len, in_cap;
  size_t lingered_bytes;
  size_t writes_pending;
  /* Bytes handed to uv_write so far; less what still waits in the write queue, that is what
   * the client has read. Its value when the timer last looked at a connection whose output was
   * waiting: no change over a whole period means the client stopped reading. */
  uint64_t bytes_handed;
  uint64_t bytes_sent_seen;
  bool answered_early; /* the head's hook answered: the parser stopped on purpose */
  /* On the server's resume list: input left over when the per-turn budget ran out. */
  http_conn *rprev, *rnext;
  bool resume_queued;

  bool rejected;         /* over the connection limit: 503 and close */
  bool reading;          /* uv_read_start active */
  bool read_eof;         /* the client finished sending */
  bool no_more_requests; /* parse nothing more; close once the FIFO is written */
  bool in_process;       /* process_input is on the stack */
  bool lingering;        /* write side shut down, discarding input until EOF or timeout */
  bool closing;          /* uv_close called */
};

struct gw_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  gw_http_config cfg; /* strings below are owned copies */
  char *host;
  char *server_name;
  gw_http_handler handler;
  void *opaque;
  int port;
  http_conn *conns;
  size_t nconns;  /* connection objects alive (including rejected and closing ones) */
  size_t nactive; /* connections counted against max_connections */
  bool closing;
  bool listener_closed;
  void (*close_cb)(void *opaque);
  void *close_opaque;
  /* Connections whose requests go on in the next loop turn (GW_HTTP_REQUESTS_PER_TURN), and
   * the idle handle that serves them. The listener and this handle are the server's own; it
   * is freed once both are closed and no connection is left. */
  http_conn *resume_head, *resume_tail;
  uv_idle_t resume;
  int own_handles;
  /* "Date: <IMF-fixdate>\r\n" of date_s, formatted once per second, not per response. */
  time_t date_s;
  char date_line[48];
  size_t date_line_len;
};

typedef struct write_ctx {
  uv_write_t w;
  http_conn *conn;
  gw_buf head; /* owned until on_write */
  gw_buf body; /* owned until on_write, may be empty */
} write_ctx;

static void conn_close(http_conn *c);
static void conn_flush(http_conn *c);
static void conn_maybe_finish(http_conn *c);
static void process_input(http_conn *c);
static void update_reading(http_conn *c);

/* Whether the bytes waiting to be sent on c exceed max_output_bytes: the server then reads no
 * more requests from c and writes no more answers to it until the client has read some, so a
 * client that sends without reading cannot grow the server's memory. */
static bool conn_output_full(const http_conn *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) +
             c->writes_pending * GW_HTTP_WRITE_COST >
         c->server->cfg.max_output_bytes;
}

static void on_resume(uv_idle_t *h);

/* Input is left over after the connection's share of this loop turn: serve it in the next. */
static void resume_enqueue(http_conn *c) {
  gw_http_server *s = c->server;
  if (c->resume_queued || c->closing) {
    return;
  }
  c->resume_queued = true;
  c->rnext = NULL;
  c->rprev = s->resume_tail;
  if (s->resume_tail != NULL) {
    s->resume_tail->rnext = c;
  } else {
    s->resume_head = c;
  }
  s->resume_tail = c;
  if (!uv_is_active((uv_handle_t *)&s->resume)) {
    uv_idle_start(&s->resume, on_resume);
  }
}

static void resume_dequeue(http_conn *c) {
  gw_http_server *s = c->server;
  if (!c->resume_queued) {
    return;
  }
  c->resume_queued = false;
  if (c->rprev != NULL) {
    c->rprev->rnext = c->rnext;
  } else {
    s->resume_head = c->rnext;
  }
  if (c->rnext != NULL) {
    c->rnext->rprev = c->rprev;
  } else {
    s->resume_tail = c->rprev;
  }
  c->rprev = c->rnext = NULL;
}

static uint64_t conn_bytes_sent(const http_conn *c) {
  return c->bytes_handed - uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

/* ------------------------------------------------------------------ small helpers */

static void log_msg(const gw_http_server *s, gw_log_level level, const char *msg, const char *what,
                    int code) {
  if (s->cfg.log == NULL) {
    return;
  }
  GW_LOG(s->cfg.log, level, msg, GW_LS("what", what), GW_LS("error", uv_strerror(code)));
}

static void req_free_query_values(http_req *r) {
  while (r->query_values != NULL) {
    query_value *q = r->query_values;
    r->query_values = q->next;
    free(q);
  }
}

static void req_free(http_req *r) {
  gw_buf_free(&r->head);
  gw_buf_free(&r->body);
  gw_buf_free(&r->resp_head);
  gw_buf_free(&r->resp_body);
  free(r->hdr_off);
  free(r->headers);
  req_free_query_values(r);
  free(r);
}

/* Buffers larger than this are not kept for the next request: one large upload must not pin
 * its memory for the rest of a connection's life. */
#define GW_HTTP_SPARE_MAX_BYTES (64u * 1024u)

/* Releases a request whose connection c may keep it for its next request (c NULL: the
 * connection is gone). Everything but the buffers' memory is reset. */
static void req_release(http_conn *c, http_req *r) {
  if (c == NULL || c->closing || c->spare != NULL || r->body.cap > GW_HTTP_SPARE_MAX_BYTES ||
      r->head.cap > GW_HTTP_SPARE_MAX_BYTES || r->resp_body.cap > GW_HTTP_SPARE_MAX_BYTES ||
      r->resp_head.cap > GW_HTTP_SPARE_MAX_BYTES) {
    req_free(r);
    return;
  }
  req_free_query_values(r);
  http_req keep = *r;
  memset(r, 0, sizeof(*r));
  r->head = keep.head;
  r->body = keep.body;
  r->resp_head = keep.resp_head;
  r->resp_body = keep.resp_body;
  r->hdr_off = keep.hdr_off;
  r->hdr_cap = keep.hdr_cap;
  r->headers = keep.headers;
  r->headers_cap = keep.headers_cap;
  gw_buf_reset(&r->head);
  gw_buf_reset(&r->body);
  gw_buf_reset(&r->resp_head);
  gw_buf_reset(&r->resp_body);
  c->spare = r;
}

static void fifo_remove(http_conn *c, http_req *r) {
  http_req **pp = &c->head;
  http_req *prev = NULL;
  while (*pp != NULL && *pp != r) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp == NULL) {
    return;
  }
  *pp = r->next;
  if (c->tail == r) {
    c->tail = prev;
  }
  r->next = NULL;
}

/* A handler's extra header that may be sent: no CR or LF anywhere (a value could otherwise
 * split the response) and none of the names the server sets itself. */
static bool extra_header_ok(const gw_http_header *h) {
  const char *n = h->name, *v = h->value;
  return n != NULL && v != NULL && n[0] != '\0' && strpbrk(n, "\r\n: ") == NULL &&
         strpbrk(v, "\r\n") == NULL && strcasecmp(n, "Content-Length") != 0 &&
         strcasecmp(n, "Connection") != 0 && strcasecmp(n, "Transfer-Encoding") != 0 &&
         strcasecmp(n, "Date") != 0 && strcasecmp(n, "Server") != 0;
}

/* Stores a response in r (body and headers copied) and marks it RESPONDED. The head is built
 * now up to Content-Length; Date and Connection are added when it is written. */
static void req_set_response(http_req *r, int status, const char *content_type, const char *body,
                             size_t body_len, const gw_http_header *extra, size_t nextra) {
  r->status = status;
  gw_buf *h = &r->resp_head;
  gw_buf_reset(h);
  gw_buf_reserve(h, 160);
  GW_BUF_PUT_LIT(h, "HTTP/1.1 ");
  gw_buf_put_uint(h, (uint64_t)status);
  gw_buf_putc(h, ' ');
  gw_buf_puts(h, gw_http_status_text(status));
  GW_BUF_PUT_LIT(h, "\r\nServer: ");
  gw_buf_puts(h, r->conn != NULL ? r->conn->server->server_name : "goodwill");
  GW_BUF_PUT_LIT(h, "\r\n");
  if (content_type != NULL && content_type[0] != '\0' && strpbrk(content_type, "\r\n") == NULL) {
    GW_BUF_PUT_LIT(h, "Content-Type: ");
    gw_buf_puts(h, content_type);
    GW_BUF_PUT_LIT(h, "\r\n");
  }
  for (size_t i = 0; i < nextra; i++) {
    if (!extra_header_ok(&extra[i])) {
      continue; /* dropped rather than sent */
    }
    gw_buf_puts(h, extra[i].name);
    GW_BUF_PUT_LIT(h, ": ");
    gw_buf_puts(h, extra[i].value);
    GW_BUF_PUT_LIT(h, "\r\n");
  }
  GW_BUF_PUT_LIT(h, "Content-Length: ");
  gw_buf_put_uint(h, body_len);
  GW_BUF_PUT_LIT(h, "\r\n");
  gw_buf_reset(&r->resp_body);
  if (body_len > 0 && !r->is_head) {
    /* Growth aborts on failure: the body is the handler's own output, already in memory. */
    gw_buf_append(&r->resp_body, body, body_len);
  }
  r->state = REQ_RESPONDED;
}

/* A JSON error answer generated by the server itself; it ends the connection. */
static void req_set_error(http_req *r, int status, const char *reason) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "{\"error\":");
  gw_buf_json_string(&b, reason);
  gw_buf_puts(&b, "}\n");
  const gw_http_header retry = {"Retry-After", "1"};
  req_set_response(r, status, "application/json", b.data, b.len, status == 503 ? &retry : NULL,
                   status == 503 ? 1 : 0);
  r->resp_close = true;
  gw_buf_free(&b);
  gw_http_server *s = r->conn != NULL ? r->conn->server : NULL;
  if (s != NULL && s->cfg.on_server_answer != NULL) {
    s->cfg.on_server_answer(s->opaque, r->pub.path, status);
  }
}

static void format_http_date(time_t now, char out[32]) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  gmtime_r(&now, &tm);
  /* IMF-fixdate (RFC 9110 5.6.7), spelled out so the C locale cannot change the names. */
  snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
           months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Appends "Date: ...\r\n", formatted at most once per second. */
static void put_date_line(gw_http_server *s, gw_buf *b) {
  time_t now = time(NULL);
  if (now != s->date_s || s->date_line_len == 0) {
    char date[32];
    format_http_date(now, date);
    s->date_line_len = (size_t)snprintf(s->date_line, sizeof(s->date_line), "Date: %s\r\n", date);
    s->date_s = now;
  }
  gw_buf_append(b, s->date_line, s->date_line_len);
}

const char *gw_http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* ------------------------------------------------------------------ timers */

static void arm_timer(http_conn *c, uint64_t ms);

static void on_timer(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->closing) {
    return;
  }
  if (c->lingering || c->rejected) {
    conn_close(c);
    return;
  }
  if (c->deadline_ms == 0) {
    return; /* the deadline was cleared while the timer ran: requests wait for handlers */
  }
  uint64_t now = uv_now(c->server->loop);
  if (now < c->deadline_ms) {
    /* The deadline moved since the timer was started (a later request or idle period). */
    c->timer_due_ms = c->deadline_ms;
    uv_timer_start(&c->timer, on_timer, c->deadline_ms - now, 0);
    return;
  }
  c->deadline_ms = 0;
  if (c->parsing != NULL) {
    /* A request started but did not complete in time (a slow or stalled client). */
    http_req *r = c->parsing;
    c->parsing = NULL;
    req_set_error(r, 408, "request not complete within the request timeout");
    c->no_more_requests = true;
    update_reading(c);
    conn_flush(c);
    conn_maybe_finish(c);
    return;
  }
  if (c->writes_pending > 0 && (c->head == NULL || conn_output_full(c))) {
    /* Answers are waiting for the client to read them. A slow reader gets another period as
     * long as it read something in this one; one that read nothing is cut off, so a client
     * that stops reading cannot pin a connection and its queued answers. */
    uint64_t sent = conn_bytes_sent(c);
    if (sent == c->bytes_sent_seen) {
      if (c->server->cfg.log != NULL) {
        GW_LOG(c->server->cfg.log, GW_LOG_WARN, "http connection closed",
               GW_LS("reason", "the client read none of its answers within the request timeout"),
               GW_LI("port", c->server->port));
      }
      conn_close(c);
      return;
    }
    c->bytes_sent_seen = sent;
    arm_timer(c, c->server->cfg.request_timeout_ms);
    return;
  }
  if (c->head != NULL) {
    /* Requests wait for their handlers: how long that may take is the handler's business. */
    return;
  }
  conn_close(c); /* idle keep-alive connection */
}

/* Sets the request / idle deadline to ms from now. A running timer is left alone when it fires
 * no later than the new deadline: on_timer then moves it on. */
static void arm_timer(http_conn *c, uint64_t ms) {
  if (c->closing) {
    return;
  }
  uint64_t now = uv_now(c->server->loop);
  uint64_t deadline = now + (ms > 0 ? ms : 1);
  c->deadline_ms = deadline;
  if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_due_ms > deadline) {
    c->timer_due_ms = deadline;
    uv_timer_start(&c->timer, on_timer, deadline - now, 0);
  }
}

/* No deadline (the request is complete and waits for its handler). The timer may run on and
 * finds nothing to do. */
static void clear_timer(http_conn *c) {
  c->deadline_ms = 0;
}

/* Stops the timer for good (closing, lingering). */
static void stop_timer(http_conn *c) {
  c->deadline_ms = 0;
  uv_timer_stop(&c->timer);
}

/* ------------------------------------------------------------------ http-parser callbacks */

static int head_grow(http_conn *c, http_req *r, size_t n) {
  r->head_bytes += n;
  if (r->head_bytes > c->server->cfg.max_header_bytes) {
    c->parse_error_status = 431;
    c->parse_error_msg = "request head exceeds the header size limit";
    return -1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  http_conn *c = p->data;
  http_req *r = c->spare;
  if (r != NULL) {
    c->spare = NULL;
  } else if ((r = calloc(1, sizeof(*r))) == NULL) {
    abort();
  }
  r->conn = c;
  r->state = REQ_PARSING;
  r->head_bytes = GW_HTTP_REQUEST_LINE_OVERHEAD;
  if (c->tail != NULL) {
    c->tail->next = r;
  } else {
    c->head = r;
  }
  c->tail = r;
  c->parsing = r;
  arm_timer(c, c->server->cfg.request_timeout_ms);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  if (head_grow(c, r, len) != 0) {
    return -1;
  }
  gw_buf_append(&r->head, at, len);
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  if (head_grow(c, r, len) != 0) {
    return -1;
  }
  if (r->head_complete) {
    return 0; /* a trailer (RFC 9112 7.1.2: may be discarded); appending would move the head */
  }
  if (!r->in_field) {
    /* A new header starts: end the previous segment (the url or a value). */
    if (head_grow(c, r, GW_HTTP_HEADER_OVERHEAD) != 0) {
      return -1;
    }
    gw_buf_putc(&r->head, '\0');
    if (r->nhdr == r->hdr_cap) {
      size_t cap = r->hdr_cap ? r->hdr_cap * 2 : 16;
      size_t *n = realloc(r->hdr_off, cap * 2 * sizeof(size_t));
      if (n == NULL) {
        abort(); /* bounded by max_header_bytes */
      }
      r->hdr_off = n;
      r->hdr_cap = cap;
    }
    r->hdr_off[2 * r->nhdr] = r->head.len;
    r->hdr_off[2 * r->nhdr + 1] = SIZE_MAX;
    r->nhdr++;
    r->in_field = true;
  }
  gw_buf_append(&r->head, at, len);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  if (head_grow(c, r, len) != 0) {
    return -1;
  }
  if (r->head_complete) {
    return 0; /* a trailer, see on_header_field */
  }
  if (r->in_field) {
    gw_buf_putc(&r->head, '\0');
    r->hdr_off[2 * (r->nhdr - 1) + 1] = r->head.len;
    r->in_field = false;
  }
  gw_buf_append(&r->head, at, len);
  return 0;
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') {
    return ch - '0';
  }
  if (ch >= 'a' && ch <= 'f') {
    return ch - 'a' + 10;
  }
  if (ch >= 'A' && ch <= 'F') {
    return ch - 'A' + 10;
  }
  return -1;
}

/* Percent-decodes s[0..len) into out (plus_is_space for query strings). Returns -1 for a
 * malformed escape or an encoded NUL, which no path or parameter may contain. */
static int percent_decode(const char *s, size_t len, bool plus_is_space, gw_buf *out) {
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '%') {
      if (i + 2 >= len) {
        return -1;
      }
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        return -1;
      }
      gw_buf_putc(out, (char)(hi * 16 + lo));
      i += 2;
    } else if (ch == '+' && plus_is_space) {
      gw_buf_putc(out, ' ');
    } else {
      gw_buf_putc(out, ch);
    }
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  const gw_http_server *s = c->server;
  r->head_complete = true;

  /* Split the request target into path and query. Origin-form ("/a?b") is the norm; the
   * absolute form ("http://host/a?b") is accepted as RFC 9112 3.2.2 requires, and "*" too. */
  gw_buf_putc(&r->head, '\0');
  size_t url_len = strlen(r->head.data);
  /* The decoded path and the query, each NUL-terminated, take at most url_len + 3 bytes: with
   * that room reserved first, the url (the head's first segment) stays where it is while they
   * are appended, and needs no copy of its own. */
  gw_buf_reserve(&r->head, url_len + 3);
  const char *url = r->head.data;
  const char *target = url;
  if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
    target = strstr(target, "://") + 3;
    target += strcspn(target, "/?#");
  }
  size_t path_len = strcspn(target, "?#");
  size_t query_off = 0, query_len = 0;
  if (target[path_len] == '?') {
    query_off = (size_t)(target - url) + path_len + 1;
    query_len = strcspn(url + query_off, "#");
  }
  if (path_len > 0 && target[0] != '/' && !(path_len == 1 && target[0] == '*')) {
    c->parse_error_status = 400;
    c->parse_error_msg = "request target must be a path starting with '/'";
    return -1;
  }
  size_t path_off = r->head.len;
  if (path_len == 0) {
    gw_buf_putc(&r->head, '/');
  } else if (percent_decode(target, path_len, false, &r->head) != 0) {
    c->parse_error_status = 400;
    c->parse_error_msg = "malformed percent-encoding in the request path";
    return -1;
  }
  gw_buf_putc(&r->head, '\0');
  size_t q_off = r->head.len;
  gw_buf_append(&r->head, url + query_off, query_len);
  gw_buf_putc(&r->head, '\0');

  /* The head no longer grows: offsets become pointers. */
  if (r->nhdr > r->headers_cap || r->headers == NULL) {
    size_t cap = r->nhdr > 16 ? r->nhdr : 16;
    free(r->headers);
    r->headers = malloc(cap * sizeof(gw_http_header));
    if (r->headers == NULL) {
      abort(); /* bounded by max_header_bytes */
    }
    r->headers_cap = cap;
  }
  for (size_t i = 0; i < r->nhdr; i++) {
    r->headers[i].name = r->head.data + r->hdr_off[2 * i];
    size_t v = r->hdr_off[2 * i + 1];
    r->headers[i].value = v == SIZE_MAX ? "" : r->head.data + v;
  }
  r->pub.headers = r->headers;
  r->pub.nheaders = r->nhdr;
  r->pub.method = http_method_str((enum http_method)p->method);
  r->pub.path = r->head.data + path_off;
  r->pub.query = r->head.data + q_off;
  r->is_head = p->method == HTTP_HEAD;

  if (s->cfg.on_head != NULL) {
    /* The owner decides on what the head alone tells (a token, a rate limit): a refusal goes
     * out before any body byte is read or any 100 Continue is sent, and ends the connection,
     * since the unread body cannot be told from a next request. */
    gw_http_early_answer ans = {0};
    s->cfg.on_head(s->opaque, &r->pub, &ans);
    if (ans.status != 0) {
      req_set_response(r, ans.status < 100 || ans.status > 999 ? 500 : ans.status, ans.content_type,
                       ans.body ? ans.body : "", ans.body ? ans.body_len : 0, ans.extra,
                       ans.nextra);
      r->resp_close = true;
      c->answered_early = true;
      return -1;
    }
  }
  bool chunked = (p->flags & F_CHUNKED) != 0;
  if (!chunked && p->content_length != ULLONG_MAX &&
      p->content_length > (uint64_t)s->cfg.max_body_bytes) {
    /* Refused before the body is read (and before any 100 Continue). */
    c->parse_error_status = 413;
    c->parse_error_msg = "request body exceeds the body size limit";
    return -1;
  }
  if (!chunked && p->content_length != ULLONG_MAX && p->content_length > 0 &&
      p->content_length <= GW_HTTP_SPARE_MAX_BYTES) {
    /* One allocation of the announced size (none with a kept buffer) instead of growth by
     * doubling. Larger bodies grow as their bytes arrive, so a Content-Length alone cannot
     * make the server commit memory. */
    gw_buf_reserve(&r->body, (size_t)p->content_length);
  }
  const char *expect = gw_http_request_header(&r->pub, "Expect");
  bool body_follows = chunked || (p->content_length != ULLONG_MAX && p->content_length > 0);
  if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && body_follows &&
      p->http_major == 1 && p->http_minor >= 1) {
    r->want_continue = true;
    conn_flush(c);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  if (len > c->server->cfg.max_body_bytes - r->body.len) {
    c->parse_error_status = 413;
    c->parse_error_msg = "request body exceeds the body size limit";
    return -1;
  }
  gw_buf_append(&r->body, at, len);
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_conn *c = p->data;
  http_req *r = c->parsing;
  r->keep_alive = http_should_keep_alive(p) != 0;
  r->pub.body = r->body.data ? r->body.data : "";
  r->pub.body_len = r->body.len;
  r->pub.received_ns = uv_hrtime();
  r->state = REQ_PENDING;
  r->complete = true;
  c->parsing = NULL;
  c->completed = r;
  c->nqueued++;
  clear_timer(c);
  /* One request per http_parser_execute: the handler runs after the parser returned. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------ writing */

static void on_write(uv_write_t *w, int status) {
  write_ctx *ctx = (write_ctx *)w;
  http_conn *c = ctx->conn;
  gw_buf_free(&ctx->head);
  gw_buf_free(&ctx->body);
  free(ctx);
  c->writes_pending--;
  if (c->closing) {
    return;
  }
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (!c->lingering && !conn_output_full(c)) {
    conn_flush(c); /* answers and input held back while the output was full go on */
  } else {
    conn_maybe_finish(c);
  }
}

/* Drops the first n bytes of bufs (the part the socket took). */
static void bufs_advance(uv_buf_t *bufs, unsigned *nbufs, size_t n) {
  unsigned i = 0;
  while (i < *nbufs && n >= bufs[i].len) {
    n -= bufs[i].len;
    i++;
  }
  if (i < *nbufs) {
    bufs[i].base += n;
    bufs[i].len -= (unsigned)n;
  }
  memmove(bufs, bufs + i, (*nbufs - i) * sizeof(*bufs));
  *nbufs -= i;
}

/*
 * Sends head and then body (body may be NULL); false when the socket refused. With nothing
 * queued before them, the bytes are first written at once (uv_try_write): the usual small
 * answer leaves in one writev and needs no write request, and the caller keeps its buffers
 * for the next answer. That also spares a system call: libuv 1.44 re-arms the socket in epoll
 * (EPOLL_CTL_MOD) after every completed uv_write, one epoll_ctl per response. What the socket
 * does not take goes through uv_write, in order: the buffers are then taken over (the caller's
 * are left empty) and freed when the write completed.
 */
static bool conn_write(http_conn *c, gw_buf *head, gw_buf *body) {
  uv_buf_t bufs[2];
  unsigned nbufs = 0;
  bufs[nbufs++] = uv_buf_init(head->data, (unsigned)head->len);
  if (body != NULL && body->len > 0) {
    bufs[nbufs++] = uv_buf_init(body->data, (unsigned)body->len);
  }
  if (c->writes_pending == 0) {
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
    if (n == UV_EAGAIN) {
      n = 0;
    } else if (n < 0) {
      conn_close(c);
      return false;
    }
    bufs_advance(bufs, &nbufs, (size_t)n);
    if (nbufs == 0) {
      return true;
    }
  }
  write_ctx *ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) {
    abort();
  }
  ctx->conn = c;
  /* bufs point into these; they live until on_write. */
  ctx->head = *head;
  *head = (gw_buf)GW_BUF_INIT;
  if (body != NULL) {
    ctx->body = *body;
    *body = (gw_buf)GW_BUF_INIT;
  }
  size_t bytes = 0;
  for (unsigned i = 0; i < nbufs; i++) {
    bytes += bufs[i].len;
  }
  int rc = uv_write(&ctx->w, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
  if (rc < 0) {
    gw_buf_free(&ctx->head);
    gw_buf_free(&ctx->body);
    free(ctx);
    conn_close(c);
    return false;
  }
  c->bytes_handed += bytes;
  c->writes_pending++;
  return true;
}

static void conn_write_response(http_conn *c, http_req *r, bool close_after) {
  gw_buf *h = &r->resp_head;
  put_date_line(c->server, h);
  if (close_after) {
    GW_BUF_PUT_LIT(h, "Connection: close\r\n\r\n");
  } else {
    GW_BUF_PUT_LIT(h, "Connection: keep-alive\r\n\r\n");
  }
  conn_write(c, h, &r->resp_body);
}

/* Writes every response at the head of the FIFO that is ready, in order. */
static void conn_flush(http_conn *c) {
  if (c->closing || c->lingering) {
    return;
  }
  while (c->head != NULL && !c->closing) {
    http_req *r = c->head;
    if (r->state == REQ_RESPONDED && conn_output_full(c)) {
      /* The client is not reading its answers: this one waits (on_write goes on), and the
       * timer cuts the connection off if the client reads nothing for a whole period. */
      arm_timer(c, c->server->cfg.request_timeout_ms);
      break;
    }
    if (r->state == REQ_RESPONDED) {
      bool close_after = r->resp_close || !r->keep_alive || (c->server->closing && !r->next);
      c->head = r->next;
      if (c->tail == r) {
        c->tail = NULL;
      }
      if (c->parsing == r) {
        c->parsing = NULL;
      }
      if (r->complete) {
        c->nqueued--;
      }
      conn_write_response(c, r, close_after);
      req_release(c, r);
      if (close_after) {
        c->no_more_requests = true;
        update_reading(c);
        /* Nothing after a closing response is answered: requests behind it can only be ones
         * the server had stopped reading, so they were never seen by a handler. */
        while (c->head != NULL) {
          http_req *rest = c->head;
          c->head = rest->next;
          if (rest->state == REQ_PENDING) {
            rest->conn = NULL;
            rest->aborted = true;
            rest->next = NULL;
          } else {
            req_free(rest);
          }
        }
        c->tail = NULL;
        c->parsing = NULL;
        c->nqueued = 0;
        break;
      }
      continue;
    }
    if (r->state == REQ_PARSING && r->want_continue && !r->continue_sent) {
      /* The interim answer goes out only when this request is next in line, so it cannot
       * overtake an earlier pipelined response. */
      r->continue_sent = true;
      gw_buf h = GW_BUF_INIT;
      gw_buf_puts(&h, "HTTP/1.1 100 Continue\r\n\r\n");
      conn_write(c, &h, NULL);
      gw_buf_free(&h);
    }
    break;
  }
  if (c->closing) {
    return;
  }
  if (c->head == NULL && !c->lingering) {
    arm_timer(c, c->server->cfg.request_timeout_ms); /* idle from now on */
  }
  if (!c->in_process && c->in_off < c->in_len) {
    process_input(c); /* requests held back by the pipeline limit can go on now */
  } else {
    update_reading(c);
    conn_maybe_finish(c);
  }
}

/* ------------------------------------------------------------------ reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  http_conn *c = h->data;
  (void)suggested;
  if (c->lingering || c->rejected) {
    /* Discarded input lands after the unparsed bytes and is never accounted. */
    c->in_len = c->in_off = 0;
  }
  if (c->in_cap - c->in_len < GW_HTTP_READ_CHUNK_BYTES) {
    size_t cap = c->in_len + GW_HTTP_READ_CHUNK_BYTES;
    char *n = realloc(c->in, cap);
    if (n == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->in = n;
    c->in_cap = cap;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  http_conn *c = st->data;
  (void)buf;
  if (c->closing) {
    return;
  }
  if (c->lingering || c->rejected) {
    if (nread < 0) {
      c->read_eof = true;
      conn_close(c);
    } else {
      c->lingered_bytes += (size_t)nread;
      if (c->lingered_bytes > GW_HTTP_LINGER_MAX_BYTES) {
        conn_close(c);
      }
    }
    return;
  }
  if (nread == 0) {
    return;
  }
  if (nread < 0) {
    if (nread != UV_EOF) {
      conn_close(c); /* reset or error: nothing more can be sent either */
      return;
    }
    c->read_eof = true;
    update_reading(c);
    process_input(c);
    return;
  }
  c->in_len += (size_t)nread;
  process_input(c);
}

static void update_reading(http_conn *c) {
  if (c->closing || c->lingering || c->rejected) {
    return;
  }
  bool want = !c->read_eof && !c->no_more_requests && !c->server->closing &&
              c->nqueued < GW_HTTP_MAX_PIPELINE && !conn_output_full(c) &&
              c->in_len - c->in_off < GW_HTTP_READ_CHUNK_BYTES;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
      c->reading = true;
    }
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void dispatch(http_conn *c, http_req *r) {
  if (!r->keep_alive || c->parser.upgrade) {
    /* Connection: close (or an upgrade we do not speak): this is the last request read. */
    c->no_more_requests = true;
  }
  c->server->handler(c->server->opaque, &r->pub);
}

static void parse_failed(http_conn *c, enum http_errno e) {
  if (c->answered_early) {
    /* Not an error: the head's hook answered (the response is in the request already). */
    c->answered_early = false;
    c->parsing = NULL;
    c->no_more_requests = true;
    c->in_off = c->in_len;
    update_reading(c);
    conn_flush(c);
    return;
  }
  int status = c->parse_error_status;
  const char *msg = c->parse_error_msg;
  if (status == 0) {
    status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    msg = e == HPE_HEADER_OVERFLOW ? "request head exceeds the header size limit"
                                   : http_errno_description(e);
  }
  http_req *r = c->parsing;
  if (r == NULL) {
    /* The error came before a request began (should not happen): answer with a fresh one. */
    on_message_begin(&c->parser);
    r = c->parsing;
  }
  c->parsing = NULL;
  req_set_error(r, status, msg);
  c->no_more_requests = true;
  c->in_off = c->in_len;
  update_reading(c);
  conn_flush(c);
}

static void process_input(http_conn *c) {
  if (c->in_process || c->closing || c->lingering) {
    return;
  }
  c->in_process = true;
  int handled = 0;
  while (!c->closing && !c->no_more_requests && c->in_off < c->in_len &&
         c->nqueued < GW_HTTP_MAX_PIPELINE && !conn_output_full(c)) {
    if (handled == GW_HTTP_REQUESTS_PER_TURN) {
      resume_enqueue(c); /* the others' turn: the rest goes on in the next loop turn */
      break;
    }
    size_t n =
        http_parser_execute(&c->parser, &parser_settings, c->in + c->in_off, c->in_len - c->in_off);
    c->in_off += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      http_parser_pause(&c->parser, 0);
      http_req *r = c->completed;
      c->completed = NULL;
      if (r != NULL) {
        handled++;
        dispatch(c, r);
      }
      continue;
    }
    if (e != HPE_OK) {
      parse_failed(c, e);
      break;
    }
  }
  if (!c->closing && !c->lingering) {
    if (c->in_off == c->in_len) {
      c->in_off = c->in_len = 0;
    } else if (c->in_off > 0) {
      memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0;
    }
  }
  c->in_process = false;
  if (!c->closing) {
    update_reading(c);
    conn_maybe_finish(c);
  }
}

/* The next share of every connection whose input was left over in the last loop turn; the
 * ones that still have more queue themselves again, for the turn after. */
static void on_resume(uv_idle_t *h) {
  gw_http_server *s = h->data;
  http_conn *c = s->resume_head;
  s->resume_head = s->resume_tail = NULL;
  while (c != NULL) {
    http_conn *next = c->rnext;
    c->resume_queued = false;
    c->rprev = c->rnext = NULL;
    if (!c->closing && !c->lingering) {
      process_input(c);
    }
    c = next;
  }
  if (s->resume_head == NULL) {
    uv_idle_stop(h);
  }
}

/* ------------------------------------------------------------------ closing */

static void on_conn_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  if (--c->open_handles > 0) {
    return;
  }
  gw_http_server *s = c->server;
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    s->conns = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
  s->nconns--;
  if (!c->rejected) {
    s->nactive--;
  }
  free(c->in);
  free(c);
  if (s->closing && s->listener_closed && s->nconns == 0) {
    void (*cb)(void *) = s->close_cb;
    void *opaque = s->close_opaque;
    free(s->host);
    free(s->server_name);
    free(s);
    if (cb != NULL) {
      cb(opaque);
    }
  }
}

static void conn_close(http_conn *c) {
  if (c->closing) {
    return;
  }
  resume_dequeue(c);
  c->closing = true;
  /* Requests a handler still holds stay valid until answered; they are marked aborted and
   * their later gw_http_respond only frees them. */
  while (c->head != NULL) {
    http_req *r = c->head;
    c->head = r->next;
    if (r->state == REQ_PENDING && r != c->completed) {
      r->conn = NULL;
      r->aborted = true;
      r->next = NULL;
    } else {
      req_free(r);
    }
  }
  c->tail = c->parsing = c->completed = NULL;
  c->nqueued = 0;
  stop_timer(c);
  if (c->spare != NULL) {
    req_free(c->spare);
    c->spare = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  http_conn *c = req->data;
  if (c->closing) {
    return;
  }
  if (status < 0 || c->read_eof) {
    conn_close(c);
    return;
  }
  /* Read and drop what the client still sends until it closes too, for a bounded time. */
  if (!c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
      conn_close(c);
      return;
    }
    c->reading = true;
  }
  uint64_t linger = c->server->cfg.request_timeout_ms < GW_HTTP_LINGER_MS
                        ? c->server->cfg.request_timeout_ms
                        : GW_HTTP_LINGER_MS;
  arm_timer(c, linger);
}

static void conn_start_linger(http_conn *c) {
  if (c->closing || c->lingering) {
    return;
  }
  c->lingering = true;
  stop_timer(c);
  c->shutdown_req.data = c;
  /* uv_shutdown waits for queued writes, so the last response leaves first. */
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
  }
}

/* Ends the connection once nothing is left to answer. */
static void conn_maybe_finish(http_conn *c) {
  if (c->closing || c->lingering || c->in_process) {
    return;
  }
  bool input_done = c->read_eof && c->in_off == c->in_len;
  if (input_done && c->parsing != NULL) {
    /* The client half-closed in the middle of a request: it can never complete. */
    http_req *r = c->parsing;
    fifo_remove(c, r);
    c->parsing = NULL;
    req_free(r);
    c->no_more_requests = true;
  }
  if (c->head != NULL) {
    return; /* something is still to be answered */
  }
  if (input_done) {
    /* The client sent everything and has every answer (or is about to: the shutdown waits
     * for queued writes, and then closes because the input is finished). */
    if (c->writes_pending == 0) {
      conn_close(c);
    } else {
      conn_start_linger(c);
    }
    return;
  }
  if (c->no_more_requests || c->server->closing) {
    conn_start_linger(c);
  }
}

/* ------------------------------------------------------------------ accepting */

static void on_connection(uv_stream_t *listener, int status) {
  gw_http_server *s = listener->data;
  if (status < 0) {
    log_msg(s, GW_LOG_WARN, "http accept failed", "listen", status);
    return;
  }
  if (s->closing) {
    return;
  }
  http_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    abort();
  }
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  uv_timer_init(s->loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns != NULL) {
    s->conns->prev = c;
  }
  s->conns = c;
  s->nconns++;
  int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc < 0) {
    c->rejected = true;
    log_msg(s, GW_LOG_WARN, "http accept failed", "accept", rc);
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (s->nactive >= s->cfg.max_connections) {
    c->rejected = true;
    c->no_more_requests = true;
    gw_buf h = GW_BUF_INIT;
    const char *body = "{\"error\":\"too many connections\"}\n";
    gw_buf_printf(&h, "HTTP/1.1 503 Service Unavailable\r\nServer: %s\r\n", s->server_name);
    put_date_line(s, &h);
    gw_buf_printf(&h,
                  "Content-Type: application/json\r\nRetry-After: 1\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  strlen(body), body);
    bool written = conn_write(c, &h, NULL);
    gw_buf_free(&h);
    if (written) {
      conn_start_linger(c);
    }
    if (s->cfg.on_server_answer != NULL) {
      s->cfg.on_server_answer(s->opaque, NULL, 503);
    }
    return;
  }
  s->nactive++;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  arm_timer(c, s->cfg.request_timeout_ms);
  update_reading(c);
}

/* ------------------------------------------------------------------ public API */

static void on_listener_closed_free(uv_handle_t *h) {
  gw_http_server *s = h->data;
  free(s->host);
  free(s->server_name);
  free(s);
}

int gw_http_server_start(gw_http_server **out, uv_loop_t *loop, const gw_http_config *cfg,
                         gw_http_handler handler, void *opaque) {
  *out = NULL;
  if (loop == NULL || cfg == NULL || handler == NULL || cfg->host == NULL || cfg->port < 0 ||
      cfg->port > 65535) {
    return -EINVAL;
  }
  struct sockaddr_storage addr;
  int rc = strchr(cfg->host, ':') != NULL
               ? uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr)
               : uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
  if (rc < 0) {
    return rc;
  }
  gw_http_server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return -ENOMEM;
  }
  s->loop = loop;
  s->cfg = *cfg;
  s->host = strdup(cfg->host);
  s->server_name = strdup(cfg->server_name && cfg->server_name[0] ? cfg->server_name : "goodwill");
  if (s->host == NULL || s->server_name == NULL) {
    abort();
  }
  if (s->cfg.max_body_bytes == 0) {
    s->cfg.max_body_bytes = GW_HTTP_DEFAULT_MAX_BODY_BYTES;
  }
  if (s->cfg.max_header_bytes == 0) {
    s->cfg.max_header_bytes = GW_HTTP_DEFAULT_MAX_HEADER_BYTES;
  }
  if (s->cfg.max_connections == 0) {
    s->cfg.max_connections = GW_HTTP_DEFAULT_MAX_CONNECTIONS;
  }
  if (s->cfg.max_output_bytes == 0) {
    s->cfg.max_output_bytes = GW_HTTP_DEFAULT_MAX_OUTPUT_BYTES;
  }
  if (s->cfg.request_timeout_ms == 0) {
    s->cfg.request_timeout_ms = GW_HTTP_DEFAULT_TIMEOUT_MS;
  }
  s->cfg.host = s->host;
  s->cfg.server_name = s->server_name;
  s->handler = handler;
  s->opaque = opaque;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) {
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  }
  if (rc == 0) {
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    if (rc == 0) {
      s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
  }
  if (rc < 0) {
    /* The handle is freed by its close callback on the next loop turn. */
    uv_close((uv_handle_t *)&s->listener, on_listener_closed_free);
    return rc;
  }
  uv_idle_init(loop, &s->resume);
  s->resume.data = s;
  s->own_handles = 2; /* the listener and the resume handle */
  *out = s;
  return 0;
}

int gw_http_server_port(const gw_http_server *s) {
  return s->port;
}

size_t gw_http_server_output_bytes(const gw_http_server *s) {
  size_t n = 0;
  for (const http_conn *c = s->conns; c != NULL; c = c->next) {
    if (!c->closing) {
      n += uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
    }
  }
  return n;
}

size_t gw_http_server_connections(const gw_http_server *s) {
  return s->nactive;
}

/* The listener or the resume handle closed; the server's own handles are done when both are. */
static void on_listener_closed(uv_handle_t *h) {
  gw_http_server *s = h->data;
  if (--s->own_handles > 0) {
    return;
  }
  s->listener_closed = true;
  if (s->nconns == 0) {
    void (*cb)(void *) = s->close_cb;
    void *opaque = s->close_opaque;
    free(s->host);
    free(s->server_name);
    free(s);
    if (cb != NULL) {
      cb(opaque);
    }
  }
}

void gw_http_server_close(gw_http_server *s, void (*close_cb)(void *opaque), void *opaque) {
  if (s == NULL || s->closing) {
    return;
  }
  s->closing = true;
  s->close_cb = close_cb;
  s->close_opaque = opaque;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  uv_close((uv_handle_t *)&s->resume, on_listener_closed);
  http_conn *next;
  for (http_conn *c = s->conns; c != NULL; c = next) {
    next = c->next;
    if (c->closing || c->lingering || c->rejected) {
      continue;
    }
    if (c->parsing != NULL) {
      /* A request still arriving will not be served: tell the client to retry elsewhere. */
      http_req *r = c->parsing;
      c->parsing = NULL;
      req_set_error(r, 503, "server is shutting down");
    }
    c->no_more_requests = true;
    update_reading(c);
    if (c->head == NULL && c->writes_pending == 0) {
      conn_close(c); /* idle: nothing to finish */
      continue;
    }
    conn_flush(c);
    conn_maybe_finish(c);
  }
}

const char *gw_http_request_header(const gw_http_request *req, const char *name) {
  for (size_t i = 0; i < req->nheaders; i++) {
    if (strcasecmp(req->headers[i].name, name) == 0) {
      return req->headers[i].value;
    }
  }
  return NULL;
}

const char *gw_http_request_query(gw_http_request *req, const char *name) {
  http_req *r = (http_req *)req;
  const char *q = req->query;
  gw_buf key = GW_BUF_INIT;
  const char *found = NULL;
  while (q != NULL && *q != '\0' && found == NULL) {
    size_t pair_len = strcspn(q, "&");
    const char *eq = memchr(q, '=', pair_len);
    size_t key_len = eq ? (size_t)(eq - q) : pair_len;
    gw_buf_reset(&key);
    if (percent_decode(q, key_len, true, &key) == 0 && key.len > 0 && strcmp(key.data, name) == 0) {
      gw_buf val = GW_BUF_INIT;
      const char *v = eq ? eq + 1 : q + pair_len;
      size_t v_len = eq ? pair_len - key_len - 1 : 0;
      if (percent_decode(v, v_len, true, &val) == 0) {
        query_value *qv = malloc(sizeof(*qv) + val.len + 1);
        if (qv == NULL) {
          abort();
        }
        memcpy(qv->value, val.data ? val.data : "", val.len);
        qv->value[val.len] = '\0';
        qv->next = r->query_values;
        r->query_values = qv;
        found = qv->value;
      }
      gw_buf_free(&val);
    }
    q += pair_len;
    if (*q == '&') {
      q++;
    }
  }
  gw_buf_free(&key);
  return found;
}

bool gw_http_request_aborted(const gw_http_request *req) {
  return ((const http_req *)req)->aborted;
}

void gw_http_respond(gw_http_request *req, int status, const char *content_type, const char *body,
                     size_t body_len, const gw_http_header *extra, size_t nextra) {
  http_req *r = (http_req *)req;
  if (r->state != REQ_PENDING) {
    return; /* answered twice: the first answer stands */
  }
  if (r->conn == NULL) {
    req_free(r); /* the client is gone */
    return;
  }
  if (status < 100 || status > 999) {
    status = 500;
  }
  req_set_response(r, status, content_type, body ? body : "", body ? body_len : 0, extra, nextra);
  conn_flush(r->conn);
}
