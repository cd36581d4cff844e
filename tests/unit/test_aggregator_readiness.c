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
#include <errno.h>
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
#include "gw_test_aggregator.h"
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

static void client(gw_test_agg *f) {
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
}

/* Starts redis-server and a tokens file for tenant t1 in tmpdir; false when it could not. */
static bool start_redis_and_tokens(char *tokens_path, size_t len) {
  CHECK(mkdtemp(tmpdir) != NULL);
  redisContext *rc = gw_test_redis_start(tmpdir, &redis_port, &redis_pid);
  CHECK(rc != NULL);
  if (rc == NULL)
    return false;
  redisFree(rc);
  snprintf(tokens_path, len, "%s/tokens.tsv", tmpdir);
  FILE *fp = fopen(tokens_path, "w");
  CHECK(fp != NULL);
  if (fp == NULL)
    return false;
  fputs(TOKEN_A_HASH "\tt1\treadiness test\n", fp);
  fclose(fp);
  return true;
}

static void stop_redis_and_tokens(void) {
  gw_test_redis_stop(&redis_pid);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  CHECK_INT_EQ(system(cmd), 0);
  strcpy(tmpdir, "/tmp/gw-test-readiness-XXXXXX");
}

static gw_aggregator_config base_config(gw_log *log, char *url, size_t url_len,
                                        const char *tokens_path) {
  gw_log_init(log, "aggregator-test", GW_LOG_ERROR);
  snprintf(url, url_len, "redis://127.0.0.1:%d", redis_port);
  gw_aggregator_config cfg;
  gw_test_agg_config(&cfg, log, url, "test-readiness");
  cfg.tokens_file = tokens_path;
  return cfg;
}

static void test_read_api_readiness(void) {
  char tokens_path[96], url[64];
  if (!start_redis_and_tokens(tokens_path, sizeof tokens_path))
    return;
  gw_log log;
  gw_aggregator_config cfg = base_config(&log, url, sizeof url, tokens_path);
  gw_test_agg_run(&cfg, client, NULL);
  stop_redis_and_tokens();
}

/* --mode read: no consumer, so the daemon is ready on Redis alone; the read API's per-tenant
 * rate limit answers 429 with Retry-After past its burst. */
static void client_read_mode(gw_test_agg *f) {
  answer *a = malloc(sizeof(*a));
  CHECK(wait_status(f->admin_port, "/readyz", 200, a));
  const char *auth = "Authorization: Bearer " TOKEN_A "\r\n";
  int ok = 0, limited = 0;
  for (int i = 0; i < 5; i++) {
    CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", auth, a));
    ok += a->status == 200;
    if (a->status == 429) {
      limited++;
      CHECK_STR_CONTAINS(a->text, "Retry-After: ");
      CHECK_STR_CONTAINS(a->body, "rate limit: this tenant may read 0.1 requests per second");
    }
  }
  /* A burst of 2 at 0.1/s: the test's own seconds refill nothing more. */
  CHECK_INT_EQ(ok, 2);
  CHECK_INT_EQ(limited, 3);
  /* Probes are not rate limited. */
  CHECK(gw_test_http_get(f->api_port, "/readyz", NULL, a));
  CHECK_INT_EQ(a->status, 200);
  free(a);
}

/* --mode apply: no read API port; the daemon's readiness still needs the consumer. */
static void client_apply_mode(gw_test_agg *f) {
  answer *a = malloc(sizeof(*a));
  CHECK_INT_EQ(f->api_port, -1);
  CHECK(gw_test_http_get(f->admin_port, "/readyz", NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->body, "kafka consumer not assigned");
  free(a);
}

static void test_modes(void) {
  char tokens_path[96], url[64];
  if (!start_redis_and_tokens(tokens_path, sizeof tokens_path))
    return;
  gw_log log;
  gw_aggregator_config cfg = base_config(&log, url, sizeof url, tokens_path);
  cfg.mode = GW_AGGREGATOR_READ;
  cfg.read_rate_limit_per_s = 0.1;
  cfg.read_rate_burst = 2;
  gw_test_agg_run(&cfg, client_read_mode, NULL);
  cfg.mode = GW_AGGREGATOR_APPLY;
  gw_test_agg_run(&cfg, client_apply_mode, NULL);
  gw_aggregator_mode m;
  CHECK_INT_EQ(gw_aggregator_mode_parse("read", &m), 0);
  CHECK_INT_EQ(m, GW_AGGREGATOR_READ);
  CHECK_INT_EQ(gw_aggregator_mode_parse("both", &m), -EINVAL);
  stop_redis_and_tokens();
}

int main(void) {
  GW_RUN(test_read_api_readiness);
  GW_RUN(test_modes);
  return gw_test_finish();
}
