/*
 * gw_admin tests: the admin port on a private loop (main thread), probed over TCP from a client
 * thread the way Prometheus and Kubernetes probes would: /metrics, /healthz, /readyz (ready
 * and not ready with its reason), unknown paths and wrong methods.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/admin.h"
#include "goodwill/metrics.h"
#include "gw_test.h"

typedef struct fixture {
  uv_loop_t loop;
  gw_admin *admin;
  int port;
  uv_async_t done;
  gw_metrics *metrics;
  gw_metric *gauge;
  int ready;    /* read by the ready callback, set by the client thread */
  int collects; /* collect hook calls */
  int closed;   /* close_cb calls */
} fixture;

static bool ready_cb(void *opaque, char *reason, size_t reason_len) {
  fixture *f = opaque;
  if (__atomic_load_n(&f->ready, __ATOMIC_SEQ_CST)) {
    return true;
  }
  snprintf(reason, reason_len, "kafka producer not connected");
  return false;
}

static void collect(void *opaque) {
  fixture *f = opaque;
  f->collects++;
  gw_metric_set(f->gauge, 42);
}

/* One request with HTTP/1.0 (the server closes after answering); the whole answer in out. */
static int fetch(int port, const char *request, char *out, size_t out_len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  send(fd, request, strlen(request), MSG_NOSIGNAL);
  size_t len = 0;
  ssize_t n;
  while (len < out_len - 1 && (n = recv(fd, out + len, out_len - 1 - len, 0)) > 0) {
    len += (size_t)n;
  }
  out[len] = '\0';
  close(fd);
  return len > 12 ? atoi(out + 9) : -1;
}

static void *client(void *arg) {
  fixture *f = arg;
  static char out[65536];

  CHECK_INT_EQ(fetch(f->port, "GET /healthz HTTP/1.0\r\n\r\n", out, sizeof(out)), 200);
  CHECK_STR_CONTAINS(out, "\r\n\r\nok\n");

  CHECK_INT_EQ(fetch(f->port, "GET /readyz HTTP/1.0\r\n\r\n", out, sizeof(out)), 503);
  CHECK_STR_CONTAINS(out, "not ready: kafka producer not connected");
  __atomic_store_n(&f->ready, 1, __ATOMIC_SEQ_CST);
  CHECK_INT_EQ(fetch(f->port, "GET /readyz HTTP/1.0\r\n\r\n", out, sizeof(out)), 200);
  CHECK_STR_CONTAINS(out, "\r\n\r\nready\n");

  CHECK_INT_EQ(fetch(f->port, "GET /metrics HTTP/1.0\r\n\r\n", out, sizeof(out)), 200);
  CHECK_STR_CONTAINS(out, "Content-Type: text/plain; version=0.0.4");
  CHECK_STR_CONTAINS(out, "# TYPE goodwill_test_requests_total counter");
  CHECK_STR_CONTAINS(out, "goodwill_test_requests_total 3");
  CHECK_STR_CONTAINS(out, "goodwill_test_queue_records 42"); /* set by the collect hook */

  CHECK_INT_EQ(fetch(f->port, "GET /nope HTTP/1.0\r\n\r\n", out, sizeof(out)), 404);
  CHECK_INT_EQ(
      fetch(f->port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", out, sizeof(out)), 405);
  CHECK_STR_CONTAINS(out, "Allow: GET, HEAD\r\n");
  /* Keep-alive works for scrapers that reuse connections. */
  CHECK_INT_EQ(fetch(f->port,
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     out, sizeof(out)),
               200);
  const char *second = strstr(out + 1, "HTTP/1.1 200 OK");
  CHECK(second != NULL);
  uv_async_send(&f->done);
  return NULL;
}

static void on_closed(void *opaque) {
  fixture *f = opaque;
  f->closed++;
}

static void on_done(uv_async_t *a) {
  fixture *f = a->data;
  gw_admin_close(f->admin, on_closed, f);
  uv_close((uv_handle_t *)a, NULL);
}

static void test_admin_endpoints(void) {
  fixture f;
  memset(&f, 0, sizeof(f));
  CHECK_INT_EQ(uv_loop_init(&f.loop), 0);
  CHECK_INT_EQ(gw_metrics_new(&f.metrics), 0);
  gw_metric_family *fam = NULL, *gfam = NULL;
  gw_metric_family_def def = {.name = "goodwill_test_requests_total",
                              .help = "Requests seen by the test.",
                              .type = GW_METRIC_COUNTER};
  CHECK_INT_EQ(gw_metrics_register(f.metrics, &def, &fam), 0);
  gw_metric_add(gw_metrics_series(fam, NULL), 3);
  gw_metric_family_def gdef = {.name = "goodwill_test_queue_records",
                               .help = "Records queued, set at scrape time.",
                               .type = GW_METRIC_GAUGE};
  CHECK_INT_EQ(gw_metrics_register(f.metrics, &gdef, &gfam), 0);
  f.gauge = gw_metrics_series(gfam, NULL);
  CHECK_INT_EQ(gw_metrics_on_collect(f.metrics, collect, &f), 0);

  gw_admin_config cfg = {.host = "127.0.0.1",
                         .port = 0,
                         .metrics = f.metrics,
                         .log = NULL,
                         .ready = ready_cb,
                         .ready_opaque = &f};
  CHECK_INT_EQ(gw_admin_start(&f.admin, &f.loop, &cfg), 0);
  f.port = gw_admin_port(f.admin);
  CHECK(f.port > 0);
  uv_async_init(&f.loop, &f.done, on_done);
  f.done.data = &f;
  pthread_t t;
  pthread_create(&t, NULL, client, &f);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
  CHECK_INT_EQ(f.closed, 1);
  CHECK_INT_EQ(f.collects, 1);
  CHECK_INT_EQ(uv_loop_close(&f.loop), 0);
  gw_metrics_free(f.metrics);
}

static void test_admin_bad_config(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_admin *a = NULL;
  gw_admin_config cfg = {.host = "no-such-address", .port = 0};
  CHECK(gw_admin_start(&a, &loop, &cfg) < 0);
  CHECK(a == NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  GW_RUN(test_admin_endpoints);
  GW_RUN(test_admin_bad_config);
  return gw_test_finish();
}
