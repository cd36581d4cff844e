/*
 * gw_http tests. The server runs on a private loop on the test's main thread, port 0; a client
 * thread talks to it over raw TCP sockets (so the test controls pipelining, partial writes and
 * stalls), and once through /usr/bin/curl as an independent client. Every socket read has a
 * receive timeout, so a server that fails to answer fails the test instead of hanging it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/buf.h"
#include "goodwill/http.h"
#include "gw_test.h"

/* ------------------------------------------------------------------ server side */

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);

struct fixture {
  uv_loop_t loop;
  gw_http_server *srv;
  int port;
  uv_async_t client_done;
  pthread_t thread;
  client_fn client;
  bool client_finished;
  int pending_delays;          /* delayed answers not yet sent */
  int close_calls;             /* close_cb count */
  int aborted_seen;            /* delayed answers that found their request aborted */
  int handled;                 /* handler calls */
  int server_answers[600];     /* answers the server gave by itself, by status (loop thread) */
  char server_answer_path[64]; /* the path told with the last of them, "(none)" for NULL */
  int client_saw_503;          /* 503 answers the client read (client thread, read after) */
  bool close_requested;
  bool async_closed;
  /* The output-backpressure case: the loop thread samples the server's queued output. */
  uv_timer_t sampler;
  bool sampling;
  size_t max_output_bytes_seen;
  int conns_closed;     /* set (atomically) once the server holds no connection after one */
  int client_connected; /* set (atomically) by the client once it is connected */
};

typedef struct delayed {
  uv_timer_t timer;
  fixture *f;
  gw_http_request *req;
  long ms;
} delayed;

static void on_server_closed(void *opaque) {
  fixture *f = opaque;
  f->close_calls++;
}

static void maybe_stop(fixture *f) {
  if (f->client_finished && f->pending_delays == 0 && !f->async_closed) {
    f->async_closed = true;
    uv_close((uv_handle_t *)&f->client_done, NULL);
    if (!f->close_requested) {
      f->close_requested = true;
      gw_http_server_close(f->srv, on_server_closed, f);
    }
  }
}

static void on_delayed_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_delay(uv_timer_t *t) {
  delayed *d = t->data;
  fixture *f = d->f;
  if (gw_http_request_aborted(d->req)) {
    f->aborted_seen++;
  }
  char body[64];
  int n = snprintf(body, sizeof(body), "delay %ld", d->ms);
  gw_http_respond(d->req, 200, "text/plain", body, (size_t)n, NULL, 0);
  uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
  f->pending_delays--;
  maybe_stop(f);
}

static void respond_later(fixture *f, gw_http_request *req, long ms) {
  delayed *d = calloc(1, sizeof(*d));
  d->f = f;
  d->req = req;
  d->ms = ms;
  uv_timer_init(&f->loop, &d->timer);
  d->timer.data = d;
  uv_timer_start(&d->timer, on_delay, (uint64_t)ms, 0);
  f->pending_delays++;
}

static void handler(void *opaque, gw_http_request *req) {
  fixture *f = opaque;
  __atomic_add_fetch(&f->handled, 1, __ATOMIC_SEQ_CST);
  if (strcmp(req->path, "/hello") == 0) {
    gw_http_respond(req, 200, "text/plain", "hello", 5, NULL, 0);
  } else if (strcmp(req->path, "/echo") == 0) {
    char len[32];
    snprintf(len, sizeof(len), "%zu", req->body_len);
    gw_http_header h[] = {{"X-Body-Len", len}, {"X-Method", req->method}};
    gw_http_respond(req, 200, "application/octet-stream", req->body, req->body_len, h, 2);
  } else if (strcmp(req->path, "/delay") == 0) {
    const char *ms = gw_http_request_query(req, "ms");
    respond_later(f, req, ms ? atol(ms) : 10);
  } else if (strcmp(req->path, "/close-during") == 0) {
    /* The answer comes after the server started closing: it must still be delivered. */
    respond_later(f, req, 200);
    gw_http_server_close(f->srv, on_server_closed, f);
    f->close_requested = true;
  } else if (strcmp(req->path, "/query") == 0) {
    gw_buf b = GW_BUF_INIT;
    const char *a = gw_http_request_query(req, "a");
    const char *missing = gw_http_request_query(req, "zzz");
    gw_buf_printf(&b, "a=[%s] missing=%s header=[%s] raw=[%s]", a ? a : "(null)",
                  missing ? "present" : "absent",
                  gw_http_request_header(req, "x-TEST") ? gw_http_request_header(req, "x-TEST")
                                                        : "(null)",
                  req->query);
    gw_http_respond(req, 200, "text/plain", b.data, b.len, NULL, 0);
    gw_buf_free(&b);
  } else if (strcmp(req->path, "/big") == 0) {
    static char big[64 * 1024];
    memset(big, 'b', sizeof big);
    gw_http_respond(req, 200, "text/plain", big, sizeof big, NULL, 0);
  } else if (strcmp(req->path, "/a b") == 0) {
    gw_http_respond(req, 200, "text/plain", "decoded", 7, NULL, 0);
  } else {
    gw_http_respond(req, 404, "text/plain", "no such path", 12, NULL, 0);
  }
}

static void on_client_done(uv_async_t *a) {
  fixture *f = a->data;
  f->client_finished = true;
  if (f->sampling) {
    f->sampling = false;
    uv_close((uv_handle_t *)&f->sampler, NULL);
  }
  maybe_stop(f);
}

static void on_sample(uv_timer_t *t) {
  fixture *f = t->data;
  if (f->close_requested) {
    return; /* the server may be gone already */
  }
  size_t out = gw_http_server_output_bytes(f->srv);
  if (out > f->max_output_bytes_seen) {
    f->max_output_bytes_seen = out;
  }
  if (__atomic_load_n(&f->client_connected, __ATOMIC_SEQ_CST) &&
      gw_http_server_connections(f->srv) == 0) {
    __atomic_store_n(&f->conns_closed, 1, __ATOMIC_SEQ_CST);
  }
}

/* The early-answer hook: /guarded needs "Authorization: yes", decided on the head alone. */
static int heads_seen;
static void on_head(void *opaque, gw_http_request *req, gw_http_early_answer *ans) {
  (void)opaque;
  heads_seen++;
  const char *auth = gw_http_request_header(req, "Authorization");
  if (strcmp(req->path, "/guarded") == 0 && (auth == NULL || strcmp(auth, "yes") != 0)) {
    static const gw_http_header challenge = {"WWW-Authenticate", "Bearer realm=\"t\""};
    ans->status = 401;
    ans->content_type = "text/plain";
    ans->body = req->body_len == 0 ? "no token" : "body was read";
    ans->body_len = strlen(ans->body);
    ans->extra = &challenge;
    ans->nextra = 1;
  }
}

static void on_server_answer(void *opaque, const char *path, int status) {
  fixture *f = opaque;
  if (status >= 0 && status < 600) {
    f->server_answers[status]++;
  }
  snprintf(f->server_answer_path, sizeof f->server_answer_path, "%s", path ? path : "(none)");
}

static void *client_thread(void *arg) {
  fixture *f = arg;
  f->client(f);
  uv_async_send(&f->client_done);
  return NULL;
}

static gw_http_config default_config(void) {
  gw_http_config cfg = {
      .host = "127.0.0.1",
      .port = 0,
      .max_body_bytes = 64 * 1024,
      .max_header_bytes = 8 * 1024,
      .max_connections = 16,
      .request_timeout_ms = 5000,
      .server_name = "gw-test",
      .log = NULL,
      .on_server_answer = on_server_answer,
  };
  return cfg;
}

/* Runs client on its own thread against a fresh server; returns when the loop is empty. */
static void run_case(const gw_http_config *cfg, client_fn client, fixture *f) {
  memset(f, 0, sizeof(*f));
  f->client = client;
  CHECK_INT_EQ(uv_loop_init(&f->loop), 0);
  int rc = gw_http_server_start(&f->srv, &f->loop, cfg, handler, f);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    uv_loop_close(&f->loop);
    return;
  }
  f->port = gw_http_server_port(f->srv);
  CHECK(f->port > 0);
  uv_async_init(&f->loop, &f->client_done, on_client_done);
  f->client_done.data = f;
  uv_timer_init(&f->loop, &f->sampler);
  f->sampler.data = f;
  uv_timer_start(&f->sampler, on_sample, 5, 5);
  f->sampling = true;
  pthread_create(&f->thread, NULL, client_thread, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  pthread_join(f->thread, NULL);
  CHECK_INT_EQ(f->close_calls, 1);
  CHECK_INT_EQ(uv_loop_close(&f->loop), 0);
}

/* ------------------------------------------------------------------ client side */

typedef struct client {
  int fd;
  bool head_request; /* the next response answers HEAD: it has no body */
  char buf[256 * 1024];
  size_t len;
} client;

typedef struct response {
  int status;
  char head[8192];
  char body[128 * 1024];
  size_t body_len;
} response;

static int client_connect(client *c, int port, int timeout_ms) {
  memset(c, 0, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
}

static void client_send(client *c, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) {
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static void client_puts(client *c, const char *s) {
  client_send(c, s, strlen(s));
}

/* Reads more input; false on EOF, error or timeout. */
static bool client_fill(client *c) {
  if (c->len == sizeof(c->buf)) {
    return false;
  }
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
  if (n <= 0) {
    return false;
  }
  c->len += (size_t)n;
  return true;
}

static void client_consume(client *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Reads one response (interim 1xx responses included). Returns false on EOF or timeout. */
static bool client_read_response(client *c, response *r) {
  memset(r, 0, sizeof(*r));
  char *end;
  for (;;) {
    c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
    end = c->len > 0 ? strstr(c->buf, "\r\n\r\n") : NULL;
    if (end != NULL) {
      break;
    }
    if (!client_fill(c)) {
      return false;
    }
  }
  size_t head_len = (size_t)(end - c->buf) + 4;
  if (head_len >= sizeof(r->head)) {
    return false;
  }
  memcpy(r->head, c->buf, head_len);
  r->head[head_len] = '\0';
  r->status = atoi(r->head + 9);
  size_t body_len = 0;
  char *cl = strcasestr(r->head, "\r\nContent-Length:");
  if (cl != NULL && r->status >= 200 && !c->head_request) {
    body_len = (size_t)atol(cl + 17);
  }
  client_consume(c, head_len);
  if (body_len >= sizeof(r->body)) {
    return false;
  }
  while (c->len < body_len) {
    if (!client_fill(c)) {
      return false;
    }
  }
  memcpy(r->body, c->buf, body_len);
  r->body[body_len] = '\0';
  r->body_len = body_len;
  client_consume(c, body_len);
  return true;
}

/* True when the server closed the connection (EOF) within the receive timeout. */
static bool client_sees_eof(client *c) {
  char tmp[512];
  for (;;) {
    ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
    if (n == 0) {
      return true;
    }
    if (n < 0) {
      return errno == ECONNRESET;
    }
  }
}

static void client_close(client *c) {
  close(c->fd);
}

/* ------------------------------------------------------------------ cases */

static void client_basic(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "hello");
  CHECK_STR_CONTAINS(r->head, "HTTP/1.1 200 OK\r\n");
  CHECK_STR_CONTAINS(r->head, "Content-Length: 5\r\n");
  CHECK_STR_CONTAINS(r->head, "Connection: keep-alive\r\n");
  CHECK_STR_CONTAINS(r->head, "Server: gw-test\r\n");
  CHECK_STR_CONTAINS(r->head, " GMT\r\n");
  CHECK_STR_CONTAINS(r->head, "Content-Type: text/plain\r\n");
  /* The same connection serves the next request (keep-alive). */
  client_puts(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 404);
  CHECK_STR_EQ(r->body, "no such path");
  /* HEAD: the length of the GET body, no body. */
  client_puts(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  c->head_request = true;
  CHECK(client_read_response(c, r));
  c->head_request = false;
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_CONTAINS(r->head, "Content-Length: 5\r\n");
  client_puts(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "hello"); /* no stray HEAD body before it */
  client_close(c);
  free(c);
  free(r);
}

static void test_basic(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_basic, &f);
  CHECK_INT_EQ(f.handled, 4);
}

static void client_pipelining(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  /* One write, three requests; the first is answered last by its handler. */
  client_puts(c, "GET /delay?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /delay?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "delay 150");
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "delay 20");
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "hello");
  client_close(c);
  free(c);
  free(r);
}

static void test_pipelining_order(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_pipelining, &f);
  CHECK_INT_EQ(f.handled, 3);
}

static void client_many_pipelined(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  /* More requests than the server's pipeline depth, sent before reading anything: the server
   * must hold the rest back and go on once answers left, still in order. */
  gw_buf b = GW_BUF_INIT;
  for (int i = 0; i < 100; i++) {
    gw_buf_printf(&b, "GET /query?a=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
  }
  client_send(c, b.data, b.len);
  for (int i = 0; i < 100; i++) {
    char want[32];
    snprintf(want, sizeof(want), "a=[%d]", i);
    CHECK(client_read_response(c, r));
    CHECK_STR_CONTAINS(r->body, want);
  }
  gw_buf_free(&b);
  client_close(c);
  free(c);
  free(r);
}

static void test_pipelining_depth(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_many_pipelined, &f);
  CHECK_INT_EQ(f.handled, 100);
}

static void client_partial_writes(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  /* Byte by byte, paced so the server sees many small reads. */
  const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world";
  for (size_t i = 0; req[i] != '\0'; i++) {
    client_send(c, req + i, 1);
    usleep(500);
  }
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "hello world");
  CHECK_STR_CONTAINS(r->head, "X-Body-Len: 11\r\n");
  CHECK_STR_CONTAINS(r->head, "X-Method: POST\r\n");
  client_close(c);
  free(c);
  free(r);
}

static void test_partial_writes(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_partial_writes, &f);
}

static void client_chunked(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n1\r\n \r\n");
  usleep(2000);
  client_puts(c, "6\r\nchunks\r\n0\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "hello chunks");
  CHECK_STR_CONTAINS(r->head, "X-Body-Len: 12\r\n");
  client_close(c);

  /* Trailer fields after the last chunk are read and dropped: the request the handler sees
   * keeps its method and headers however much trailer follows (under ASan this caught the
   * head buffer moving under the handler's pointers). */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\nX-Trailer: ");
  static char filler[600];
  memset(filler, 't', sizeof(filler));
  client_send(c, filler, sizeof(filler));
  client_puts(c, "\r\nX-Method: TRAILER\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "hello");
  CHECK_STR_CONTAINS(r->head, "X-Method: POST\r\n");
  client_close(c);

  /* A chunked body past the limit is refused as soon as it is: 413, then close. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  static char chunk[20000];
  memset(chunk, 'x', sizeof(chunk));
  for (int i = 0; i < 4; i++) {
    client_puts(c, "4e20\r\n"); /* 20000 bytes */
    client_send(c, chunk, sizeof(chunk));
    client_puts(c, "\r\n");
  }
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 413);
  CHECK_STR_CONTAINS(r->body, "body size limit");
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);
  free(c);
  free(r);
}

static void test_chunked_upload(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_chunked, &f);
  CHECK_INT_EQ(f.handled, 2);
  CHECK_INT_EQ(f.server_answers[413], 1);
}

static void client_continue(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
  /* The body is sent only after the interim answer, as a careful client does. */
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 100);
  CHECK_STR_EQ(r->head, "HTTP/1.1 100 Continue\r\n\r\n");
  client_puts(c, "abcde");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "abcde");
  client_close(c);

  /* Too big: 413 at once, no 100 Continue, and the connection ends. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
                 "Expect: 100-continue\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 413);
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);

  /* Big Content-Length without Expect, body partly sent: 413 before the body is read. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\nxxxxxxxx");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 413);
  CHECK_STR_CONTAINS(r->body, "\"error\":");
  CHECK_STR_CONTAINS(r->head, "Content-Type: application/json\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);
  free(c);
  free(r);
}

static void test_expect_continue_and_413(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_continue, &f);
  CHECK_INT_EQ(f.handled, 1);
  CHECK_INT_EQ(f.server_answers[413], 2);
  CHECK_STR_EQ(f.server_answer_path, "/echo");
}

static void client_big_headers(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 40; i++) {
    gw_buf_printf(&b, "X-Filler-%d: ", i);
    for (int j = 0; j < 300; j++) {
      gw_buf_putc(&b, 'v');
    }
    gw_buf_puts(&b, "\r\n");
  }
  gw_buf_puts(&b, "\r\n");
  client_send(c, b.data, b.len);
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 431);
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);

  /* A head just under the limit, with an empty header value, passes. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  gw_buf_reset(&b);
  gw_buf_puts(&b, "GET /query?a=%41+b&c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Test: yes\r\n");
  for (int i = 0; i < 20; i++) {
    gw_buf_printf(&b, "X-Filler-%d: ", i);
    for (int j = 0; j < 300; j++) {
      gw_buf_putc(&b, 'v');
    }
    gw_buf_puts(&b, "\r\n");
  }
  gw_buf_puts(&b, "\r\n");
  client_send(c, b.data, b.len);
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "a=[A b] missing=absent header=[yes] raw=[a=%41+b&c]");
  /* Percent-decoded path. */
  client_puts(c, "GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "decoded");
  /* Garbage: 400 and close. */
  client_puts(c, "THIS IS NOT HTTP\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 400);
  CHECK(client_sees_eof(c));
  client_close(c);
  gw_buf_free(&b);
  free(c);
  free(r);
}

static void test_header_limit_and_parsing(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_big_headers, &f);
  CHECK_INT_EQ(f.handled, 2);
  CHECK_INT_EQ(f.server_answers[431], 1);
  CHECK_INT_EQ(f.server_answers[400], 1);
  CHECK_STR_EQ(f.server_answer_path, "(none)");
}

static void client_stalled(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  uint64_t t0 = uv_hrtime();
  client_puts(c, "GET /hello HTTP/1.1\r\nHost: x\r\n"); /* never finished */
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 408);
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  uint64_t elapsed_ms = (uv_hrtime() - t0) / 1000000;
  CHECK(elapsed_ms >= 150); /* not before the timeout; how late depends on the machine */
  client_close(c);

  /* An idle keep-alive connection is closed silently after the timeout. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK(client_sees_eof(c));
  CHECK_INT_EQ(c->len, 0);
  client_close(c);
  free(c);
  free(r);
}

static void test_request_timeout(void) {
  gw_http_config cfg = default_config();
  cfg.request_timeout_ms = 200;
  fixture f;
  run_case(&cfg, client_stalled, &f);
  CHECK_INT_EQ(f.handled, 1);
  CHECK_INT_EQ(f.server_answers[408], 1);
}

static void client_conn_limit(fixture *f) {
  client *c = malloc(3 * sizeof(*c));
  response *r = malloc(sizeof(*r));
  for (int i = 0; i < 2; i++) {
    CHECK_INT_EQ(client_connect(&c[i], f->port, 5000), 0);
    /* A full exchange proves the server accepted (and counts) the connection. */
    client_puts(&c[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(client_read_response(&c[i], r));
    CHECK_INT_EQ(r->status, 200);
  }
  CHECK_INT_EQ(client_connect(&c[2], f->port, 5000), 0);
  client_puts(&c[2], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(&c[2], r));
  CHECK_INT_EQ(r->status, 503);
  f->client_saw_503++;
  CHECK_STR_CONTAINS(r->head, "Retry-After: 1\r\n");
  CHECK_STR_CONTAINS(r->body, "too many connections");
  CHECK(client_sees_eof(&c[2]));
  client_close(&c[2]);
  /* After one of the two leaves, a new connection is served again. */
  client_close(&c[0]);
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; attempt++) {
    CHECK_INT_EQ(client_connect(&c[0], f->port, 5000), 0);
    client_puts(&c[0], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    bool answered = client_read_response(&c[0], r);
    served = answered && r->status == 200;
    f->client_saw_503 += answered && r->status == 503;
    client_close(&c[0]);
    if (!served) {
      usleep(20000); /* the server may not have seen the first close yet */
    }
  }
  CHECK(served);
  client_close(&c[1]);
  free(c);
  free(r);
}

static void test_connection_limit(void) {
  gw_http_config cfg = default_config();
  cfg.max_connections = 2;
  fixture f;
  run_case(&cfg, client_conn_limit, &f);
  /* Every 503 the client read was told to the hook: the first, and any a reconnect got before
   * the server had seen an earlier connection close. */
  CHECK(f.client_saw_503 >= 1);
  CHECK_INT_EQ(f.server_answers[503], f.client_saw_503);
}

static void client_keepalive_rules(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);

  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /hello HTTP/1.0\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);

  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_STR_CONTAINS(r->head, "Connection: keep-alive\r\n");
  client_puts(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "hello");

  /* A client that half-closes after its request still gets the answer. */
  client_close(c);
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /delay?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n");
  shutdown(c->fd, SHUT_WR);
  CHECK(client_read_response(c, r));
  CHECK_STR_EQ(r->body, "delay 50");
  CHECK(client_sees_eof(c));
  client_close(c);
  free(c);
  free(r);
}

static void test_keepalive_rules(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_keepalive_rules, &f);
  CHECK_INT_EQ(f.handled, 5);
}

static void client_aborted(fixture *f) {
  client *c = malloc(sizeof(*c));
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "GET /delay?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n");
  /* Wait until the handler has the request (bounded), then vanish. */
  for (int i = 0; i < 500 && __atomic_load_n(&f->handled, __ATOMIC_SEQ_CST) < 1; i++) {
    usleep(1000);
  }
  CHECK_INT_EQ(__atomic_load_n(&f->handled, __ATOMIC_SEQ_CST), 1);
  struct linger lg = {1, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); /* RST: a hard disconnect */
  client_close(c);
  free(c);
}

static void test_aborted_request(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_aborted, &f);
  CHECK_INT_EQ(f.handled, 1);
  CHECK_INT_EQ(f.aborted_seen, 1);
}

static void client_graceful(fixture *f) {
  client *c = malloc(2 * sizeof(*c));
  response *r = malloc(sizeof(*r));
  /* An idle keep-alive connection, and one whose request is in flight at close. */
  CHECK_INT_EQ(client_connect(&c[1], f->port, 5000), 0);
  client_puts(&c[1], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(&c[1], r));
  CHECK_INT_EQ(client_connect(&c[0], f->port, 5000), 0);
  client_puts(&c[0], "GET /close-during HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client_read_response(&c[0], r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "delay 200");
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(&c[0]));
  CHECK(client_sees_eof(&c[1]));
  client_close(&c[0]);
  client_close(&c[1]);
  /* No longer listening. */
  client c2;
  CHECK(client_connect(&c2, f->port, 1000) != 0);
  close(c2.fd);
  free(c);
  free(r);
}

static void test_graceful_close(void) {
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_graceful, &f);
  CHECK_INT_EQ(f.handled, 2);
}

/* Runs a shell command, returns its stdout (NUL-terminated, truncated to out_len). */
static int run_capture(const char *cmd, char *out, size_t out_len) {
  FILE *p = popen(cmd, "r");
  if (p == NULL) {
    return -1;
  }
  size_t n = fread(out, 1, out_len - 1, p);
  out[n] = '\0';
  return pclose(p);
}

static void client_curl(fixture *f) {
  char cmd[512];
  static char out[8192];
  snprintf(cmd, sizeof(cmd), "/usr/bin/curl -sS -i --max-time 10 http://127.0.0.1:%d/hello",
           f->port);
  CHECK_INT_EQ(run_capture(cmd, out, sizeof(out)), 0);
  CHECK_STR_CONTAINS(out, "HTTP/1.1 200 OK");
  CHECK_STR_CONTAINS(out, "\r\n\r\nhello");

  /* curl with Expect: 100-continue and a body. */
  snprintf(cmd, sizeof(cmd),
           "printf 'from curl' | /usr/bin/curl -sS --max-time 10 -H 'Expect: 100-continue' "
           "--data-binary @- http://127.0.0.1:%d/echo",
           f->port);
  CHECK_INT_EQ(run_capture(cmd, out, sizeof(out)), 0);
  CHECK_STR_EQ(out, "from curl");

  /* Chunked upload from curl. */
  snprintf(cmd, sizeof(cmd),
           "printf 'chunky' | /usr/bin/curl -sS --max-time 10 -H 'Transfer-Encoding: chunked' "
           "--data-binary @- http://127.0.0.1:%d/echo",
           f->port);
  CHECK_INT_EQ(run_capture(cmd, out, sizeof(out)), 0);
  CHECK_STR_EQ(out, "chunky");

  /* A body over the limit: curl reports 413 (not a reset). */
  snprintf(cmd, sizeof(cmd),
           "head -c 200000 /dev/zero | /usr/bin/curl -s -o /dev/null -w '%%{http_code}' "
           "--max-time 10 --data-binary @- http://127.0.0.1:%d/echo",
           f->port);
  run_capture(cmd, out, sizeof(out));
  CHECK_STR_EQ(out, "413");
}

static void test_curl(void) {
  if (access("/usr/bin/curl", X_OK) != 0) {
    fprintf(stderr, "skip test_curl: /usr/bin/curl is missing\n");
    return;
  }
  gw_http_config cfg = default_config();
  fixture f;
  run_case(&cfg, client_curl, &f);
  CHECK_INT_EQ(f.handled, 3);
}

/* A client pipelines requests for 64 KiB answers and never reads: the server stops reading
 * from it once max_output_bytes are queued, and disconnects it when it read nothing for a
 * request timeout. */
static void client_never_reads(fixture *f) {
  client *c = malloc(sizeof(*c));
  int small = 4096;
  memset(c, 0, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct timeval tv = {0, 300 * 1000}; /* a send that blocks this long: the server stopped */
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)f->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_INT_EQ(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
  __atomic_store_n(&f->client_connected, 1, __ATOMIC_SEQ_CST);
  const char *req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t sent = 0;
  for (int i = 0; i < 200000; i++) {
    ssize_t w = send(c->fd, req, strlen(req), MSG_NOSIGNAL);
    if (w != (ssize_t)strlen(req)) {
      break;
    }
    sent++;
  }
  fprintf(stderr, "  backpressure: the client sent %zu requests before the send blocked\n", sent);
  /* The server cuts the connection off within a few request timeouts (0.3 s each). */
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
    if (__atomic_load_n(&f->conns_closed, __ATOMIC_SEQ_CST)) {
      break;
    }
    usleep(10000);
  }
  CHECK(__atomic_load_n(&f->conns_closed, __ATOMIC_SEQ_CST));
  client_close(c);
  free(c);
}

static void test_output_backpressure(void) {
  gw_http_config cfg = default_config();
  cfg.max_output_bytes = 256 * 1024;
  cfg.request_timeout_ms = 300;
  fixture f;
  run_case(&cfg, client_never_reads, &f);
  /* Queued output never went past the cap by more than one answer (64 KiB and its head). */
  CHECK(f.max_output_bytes_seen > 0);
  CHECK(f.max_output_bytes_seen <= 256 * 1024 + 64 * 1024 + 512);
  /* Only a bounded number of requests reached the handler (the pipeline, the cap). */
  CHECK(f.handled < 100);
  fprintf(stderr, "  backpressure: %d requests handled, at most %zu bytes queued\n", f.handled,
          f.max_output_bytes_seen);
}

static void client_early_answer(fixture *f) {
  client *c = malloc(sizeof(*c));
  response *r = malloc(sizeof(*r));
  /* No token, a body over the size limit and Expect: 100-continue: the 401 comes first, with
   * no 100 Continue before it, and the connection ends after it. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /guarded HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                 "Expect: 100-continue\r\n\r\n");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 401);
  CHECK_STR_EQ(r->body, "no token");
  CHECK_STR_CONTAINS(r->head, "WWW-Authenticate: Bearer realm=\"t\"\r\n");
  CHECK_STR_CONTAINS(r->head, "Connection: close\r\n");
  CHECK(client_sees_eof(c));
  client_close(c);
  /* The body sent at once with the head is never read either. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /guarded HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 401);
  CHECK_STR_EQ(r->body, "no token");
  client_close(c);
  /* With the token the request goes on to the handler, body and all. */
  CHECK_INT_EQ(client_connect(c, f->port, 5000), 0);
  client_puts(c, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\nContent-Length: 5\r\n"
                 "\r\nhello");
  CHECK(client_read_response(c, r));
  CHECK_INT_EQ(r->status, 200);
  CHECK_STR_EQ(r->body, "hello");
  client_close(c);
  free(c);
  free(r);
}

static void test_early_answer(void) {
  gw_http_config cfg = default_config();
  cfg.on_head = on_head;
  fixture f;
  heads_seen = 0;
  run_case(&cfg, client_early_answer, &f);
  CHECK_INT_EQ(heads_seen, 3);
  CHECK_INT_EQ(f.handled, 1); /* only the authorised request reached the handler */
  CHECK_INT_EQ(f.server_answers[413], 0);
}

static void test_status_text_and_bad_config(void) {
  CHECK_STR_EQ(gw_http_status_text(202), "Accepted");
  CHECK_STR_EQ(gw_http_status_text(431), "Request Header Fields Too Large");
  CHECK_STR_EQ(gw_http_status_text(799), "Unknown");
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_http_server *s = NULL;
  gw_http_config cfg = default_config();
  cfg.host = "not-an-address";
  CHECK(gw_http_server_start(&s, &loop, &cfg, handler, NULL) < 0);
  CHECK(s == NULL);
  cfg = default_config();
  cfg.port = 70000;
  CHECK_INT_EQ(gw_http_server_start(&s, &loop, &cfg, handler, NULL), -EINVAL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  GW_RUN(test_status_text_and_bad_config);
  GW_RUN(test_basic);
  GW_RUN(test_pipelining_order);
  GW_RUN(test_pipelining_depth);
  GW_RUN(test_partial_writes);
  GW_RUN(test_chunked_upload);
  GW_RUN(test_expect_continue_and_413);
  GW_RUN(test_header_limit_and_parsing);
  GW_RUN(test_request_timeout);
  GW_RUN(test_connection_limit);
  GW_RUN(test_keepalive_rules);
  GW_RUN(test_aborted_request);
  GW_RUN(test_graceful_close);
  GW_RUN(test_curl);
  GW_RUN(test_output_backpressure);
  GW_RUN(test_early_answer);
  return gw_test_finish();
}
