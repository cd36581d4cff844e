/*
 * The read API's own readiness, in-process: goodwill-aggregator's library object runs on a
 * private loop against a real /usr/bin/redis-server (started here on a free port), with bearer
 * tokens and a Kafka bootstrap where nothing listens, so the consumer is never assigned. A
 * client thread checks what a kubelet or a load balancer would see: GET /readyz on the read
 * API's port answers 200 without a token while the admin port's /readyz (the daemon's: Kafka
 * assigned and Redis connected) answers 503 "kafka consumer not assigned"; with redis-server
 * stopped the read API's /readyz answers 503 "redis not connected". Its answers are counted
 * under route "/readyz".
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/aggregator.h"
#include "goodwill/log.h"
#include "gw_test.h"
#include "gw_test_http.h"
#include "gw_test_redis.h"

/* printf %s read-alpha-1 | sha256sum */
#define TOKEN_A      "read-alpha-1"
#define TOKEN_A_HASH "22ccbc76c00c9df41339fa31870e22ec85ba4f45ac22343fe17bda7c1a184eba"

static char tmpdir[] = "/tmp/gw-test-readiness-XXXXXX";
static pid_t redis_pid = -1;
static int redis_port = -1;

typedef gw_test_answer answer;

static void pause_50ms(void) {
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* GETs path until it answers want (bounded: 10 s); false when it never did. */
static bool wait_status(int port, const char *path, int want, answer *a) {
  for (int i = 0; i < 200; i++) {
    if (gw_test_http_get(port, path, NULL, a) && a->status == want)
      return true;
    pause_50ms();
  }
  fprintf(stderr, "GET %s on port %d never answered %d (last: %d %s)\n", path, port, want,
          a->status, a->body);
  return false;
}

/* ------------------------------------------------------------------ fixture */

typedef struct fixture {
  uv_loop_t loop;
  gw_aggregator *agg;
  int api_port, admin_port;
  uv_async_t done;
  int stopped;
} fixture;

static void on_stopped(void *opaque, int status) {
  fixture *f = opaque;
  (void)status;
  f->stopped++;
}

static void on_client_done(uv_async_t *h) {
  fixture *f = h->data;
  uv_close((uv_handle_t *)&f->done, NULL);
  gw_aggregator_stop(f->agg, on_stopped, f);
}

static void *client(void *arg) {
  fixture *f = arg;
  answer *a = malloc(sizeof(*a));

  /* Redis connected, Kafka unreachable: the read API is ready, the daemon is not. */
  CHECK(wait_status(f->api_port, "/readyz", 200, a));
  CHECK_STR_EQ(a->body, "{\"status\":\"ready\"}\n");
  CHECK_STR_CONTAINS(a->text, "Content-Type: application/json");
  CHECK(gw_test_http_get(f->admin_port, "/readyz", NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->body, "kafka consumer not assigned");
  /* The token is needed for the data, not for the probe. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", NULL, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h",
                         "Authorization: Bearer " TOKEN_A "\r\n", a));
  CHECK_INT_EQ(a->status, 200);
  /* GET only, like the rest of the read API. */
  const char post[] = "POST /readyz HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
  CHECK(gw_test_http_raw(f->api_port, post, sizeof(post) - 1, a));
  CHECK_INT_EQ(a->status, 405);

  /* Redis goes away: the read API is not ready any more, and says why. */
  gw_test_redis_stop(&redis_pid);
  CHECK(wait_status(f->api_port, "/readyz", 503, a));
  CHECK_STR_EQ(a->body, "{\"error\":\"not ready: redis not connected\"}\n");
  CHECK(gw_test_http_get(f->admin_port, "/readyz", NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->body, "redis not connected");

  /* Counted under their own route, so probes do not hide among the 404s of "other". */
  CHECK(gw_test_http_get(f->admin_port, "/metrics", NULL, a));
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_aggregator_api_requests_total{route=\"/readyz\",status=\"200\"} ");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_aggregator_api_requests_total{route=\"/readyz\",status=\"503\"} ");
  CHECK_STR_CONTAINS(
      a->body, "goodwill_aggregator_api_requests_total{route=\"/readyz\",status=\"405\"} 1\n");
  free(a);
  uv_async_send(&f->done);
  return NULL;
}

static void test_read_api_readiness(void) {
  CHECK(mkdtemp(tmpdir) != NULL);
  redisContext *rc = gw_test_redis_start(tmpdir, &redis_port, &redis_pid);
  CHECK(rc != NULL);
  if (rc == NULL)
    return;
  redisFree(rc);
  char tokens_path[96];
  snprintf(tokens_path, sizeof(tokens_path), "%s/tokens.tsv", tmpdir);
  FILE *fp = fopen(tokens_path, "w");
  CHECK(fp != NULL);
  if (fp == NULL)
    return;
  fputs(TOKEN_A_HASH "\tt1\treadiness test\n", fp);
  fclose(fp);

  gw_log log;
  gw_log_init(&log, "aggregator-test", GW_LOG_ERROR);
  char url[64];
  snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
  gw_aggregator_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.admin_host = "127.0.0.1";
  cfg.api_host = "127.0.0.1";
  cfg.kafka_bootstrap = "127.0.0.1:1"; /* nothing listens: never assigned */
  cfg.group = "test-readiness";
  cfg.redis_url = url;
  cfg.flush_interval_ms = 50;
  cfg.max_batch = 100;
  cfg.max_pending = 1000;
  cfg.session_timeout_ms = 6000;
  cfg.shutdown_grace_ms = 2000;
  cfg.log = &log;
  cfg.tokens_file = tokens_path;

  fixture f;
  memset(&f, 0, sizeof(f));
  CHECK_INT_EQ(uv_loop_init(&f.loop), 0);
  int r = gw_aggregator_start(&f.loop, &cfg, &f.agg);
  CHECK_INT_EQ(r, 0);
  if (r == 0) {
    f.api_port = gw_aggregator_api_port(f.agg);
    f.admin_port = gw_aggregator_admin_port(f.agg);
    uv_async_init(&f.loop, &f.done, on_client_done);
    f.done.data = &f;
    pthread_t t;
    pthread_create(&t, NULL, client, &f);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    CHECK_INT_EQ(f.stopped, 1);
  }
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&f.loop), 0);
  gw_test_redis_stop(&redis_pid);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  CHECK_INT_EQ(system(cmd), 0);
}

int main(void) {
  GW_RUN(test_read_api_readiness);
  return gw_test_finish();
}
