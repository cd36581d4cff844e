/*
 * Fuzz target for whole HTTP requests as the network delivers them to every goodwill HTTP
 * port (gw_http: ingest, the read API, the admin ports). One server lives for the whole run on
 * a private loop; each input goes to it over a fresh loopback connection, in two writes split
 * where the first byte says, then the client half-closes and reads every answer until the
 * server closes. The handler echoes what it was given (method, path, query parameters,
 * headers, body length), and an on_head hook refuses /refused, so both the early-answer and
 * the handler paths see hostile requests, pipelined, chunked and malformed.
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: whatever comes
 * back is a sequence of HTTP/1.1 answers (each starts with a status line of a 3-digit status),
 * and when the exchange is over the server holds no connection and no queued output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "goodwill/buf.h"
#include "goodwill/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct exchange {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t writes[2];
  uv_shutdown_t shutdown;
  gw_buf received;
  bool closed;
} exchange;

static uv_loop_t loop;
static gw_http_server *server;
static int port;

static void handler(void *opaque, gw_http_request *req) {
  (void)opaque;
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "%s %s ?%s len=%zu", req->method, req->path, req->query, req->body_len);
  const char *names[] = {"a", "tenant", "window", "from", "to", ""};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = gw_http_request_query(req, names[i]);
    gw_buf_printf(&b, " %s=%s", names[i], v != NULL ? v : "-");
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    gw_buf_printf(&b, "\n%s: %s", req->headers[i].name, req->headers[i].value);
  }
  /* A handler's extra header with hostile content is dropped, never sent. */
  const char *h = gw_http_request_header(req, "X-Echo");
  gw_http_header extra = {"X-Echo", h != NULL ? h : "none"};
  gw_http_respond(req, 200, "text/plain", b.data, b.len, &extra, 1);
  gw_buf_free(&b);
}

static void on_head(void *opaque, gw_http_request *req, gw_http_early_answer *ans) {
  (void)opaque;
  if (strcmp(req->path, "/refused") == 0) {
    ans->status = 401;
    ans->body = "no";
    ans->body_len = 2;
  }
}

static void start_server(void) {
  if (uv_loop_init(&loop) != 0) {
    abort();
  }
  gw_http_config cfg = {
      .host = "127.0.0.1",
      .port = 0,
      .max_body_bytes = 4096,
      .max_header_bytes = 2048,
      .max_connections = 8,
      .max_output_bytes = 16384,
      .request_timeout_ms = 2000,
      .server_name = "fuzz",
      .on_head = on_head,
  };
  if (gw_http_server_start(&server, &loop, &cfg, handler, NULL) != 0) {
    abort();
  }
  port = gw_http_server_port(server);
}

static void on_closed(uv_handle_t *h) {
  ((exchange *)h->data)->closed = true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  exchange *x = h->data;
  gw_buf_reserve(&x->received, suggested);
  *buf = uv_buf_init(x->received.data + x->received.len, (unsigned)suggested);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exchange *x = s->data;
  (void)buf;
  if (n > 0) {
    x->received.len += (size_t)n;
    x->received.data[x->received.len] = '\0';
  } else if (n < 0) {
    uv_close((uv_handle_t *)&x->tcp, on_closed);
  }
}

static void on_write(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}

static void on_shutdown(uv_shutdown_t *r, int status) {
  (void)r;
  (void)status;
}

static const uint8_t *in_data;
static size_t in_size, in_split;

static void on_connect(uv_connect_t *c, int status) {
  exchange *x = c->data;
  if (status != 0) {
    uv_close((uv_handle_t *)&x->tcp, on_closed);
    return;
  }
  uv_buf_t a = uv_buf_init((char *)in_data, (unsigned)in_split);
  uv_buf_t b = uv_buf_init((char *)in_data + in_split, (unsigned)(in_size - in_split));
  uv_write(&x->writes[0], (uv_stream_t *)&x->tcp, &a, 1, on_write);
  uv_write(&x->writes[1], (uv_stream_t *)&x->tcp, &b, 1, on_write);
  uv_shutdown(&x->shutdown, (uv_stream_t *)&x->tcp, on_shutdown);
  uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read);
}

/* Every answer in the stream starts "HTTP/1.1 NNN "; bodies are skipped by Content-Length. */
static void check_answers(const char *s, size_t len) {
  size_t p = 0;
  while (p < len) {
    if (len - p < 13 || memcmp(s + p, "HTTP/1.1 ", 9) != 0 || s[p + 9] < '1' || s[p + 9] > '5' ||
        s[p + 10] < '0' || s[p + 10] > '9' || s[p + 11] < '0' || s[p + 11] > '9' ||
        s[p + 12] != ' ') {
      abort();
    }
    const char *end = strstr(s + p, "\r\n\r\n");
    if (end == NULL) {
      abort();
    }
    size_t head_end = (size_t)(end - s) + 4;
    /* The server's own Content-Length line, not the text of another header's value. */
    const char *cl = strstr(s + p, "\r\nContent-Length: ");
    size_t body = 0;
    if (cl != NULL && cl < end) {
      body = strtoul(cl + 18, NULL, 10);
    }
    p = head_end + body;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (server == NULL) {
    start_server();
  }
  if (size < 1) {
    return 0;
  }
  in_data = data + 1;
  in_size = size - 1;
  in_split = in_size == 0 ? 0 : data[0] % (in_size + 1);
  exchange *x = calloc(1, sizeof *x);
  uv_tcp_init(&loop, &x->tcp);
  x->tcp.data = x;
  x->connect.data = x;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  if (uv_tcp_connect(&x->connect, &x->tcp, (const struct sockaddr *)&sa, on_connect) != 0) {
    abort();
  }
  /* The exchange ends when the server closed and so did the client; bounded by the server's
   * own timeouts (a request timeout, then the lingering close). */
  for (int turns = 0; turns < 1000000 && !(x->closed && gw_http_server_connections(server) == 0);
       turns++) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  if (!x->closed || gw_http_server_connections(server) != 0 ||
      gw_http_server_output_bytes(server) != 0) {
    abort();
  }
  check_answers(x->received.data != NULL ? x->received.data : "", x->received.len);
  gw_buf_free(&x->received);
  free(x);
  return 0;
}
