/*
 * The read API's bearer tokens, in-process: goodwill-aggregator's library object runs on a
 * private loop on the main thread against a real /usr/bin/redis-server (started here on a free
 * port, seeded with the team index sets of two tenants), with an unreachable Kafka (the read
 * API does not need it). A client thread asks over TCP what a BI tool would ask and checks
 * what it sees: 401 with the RFC 6750 challenge without or with a wrong token, the token's own
 * tenant without ?tenant=, 403 for another tenant, a reload that adds and revokes tokens (a bad
 * file keeps the old ones), the admin port without auth, and no token in the log or metrics.
 * Also: the start-up refusals (neither tokens nor dev mode, both, a bad file) and dev mode,
 * where tenant= stays required.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/aggregates.h"
#include "goodwill/aggregator.h"
#include "goodwill/buf.h"
#include "goodwill/log.h"
#include "gw_test.h"
#include "gw_test_aggregator.h"
#include "gw_test_http.h"
#include "gw_test_redis.h"

/* printf %s TOKEN | sha256sum */
#define TOKEN_A      "read-alpha-1"
#define TOKEN_B      "read-bravo-2"
#define TOKEN_C      "read-gamma-3"
#define TOKEN_A_HASH "22ccbc76c00c9df41339fa31870e22ec85ba4f45ac22343fe17bda7c1a184eba"
#define TOKEN_B_HASH "f541604cb1e5012448fe34fd2bf1d32b94727d67a1db07b4cd89e02a43b58afb"
#define TOKEN_C_HASH "fc0462e848527b57ba4566a5b10d5d53ffb730de0d1fb8d66919799920b6177e"

static char tmpdir[] = "/tmp/gw-test-readauth-XXXXXX";
static char tokens_path[96];
static pid_t redis_pid = -1;
static int redis_port = -1;

/* ------------------------------------------------------------------ redis-server */

/* Starts redis-server and seeds the team index sets: t1 has team-a1 and team-a2, t2 has
 * team-b1. Returns 0 once a PING was answered (bounded at 10 s). */
static int start_redis(void) {
  redisContext *rc = gw_test_redis_start(tmpdir, &redis_port, &redis_pid);
  if (rc == NULL)
    return -1;
  bool ok = true;
  const char *seed[][2] = {{"t1", "team-a1"}, {"t1", "team-a2"}, {"t2", "team-b1"}};
  for (size_t k = 0; k < 3; k++) {
    gw_buf key = GW_BUF_INIT;
    gw_agg_key_teams(&key, seed[k][0]);
    redisReply *r = redisCommand(rc, "SADD %s %s", key.data, seed[k][1]);
    ok = ok && r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (r)
      freeReplyObject(r);
    gw_buf_free(&key);
  }
  redisFree(rc);
  return ok ? 0 : -1;
}

static void stop_redis(void) {
  gw_test_redis_stop(&redis_pid);
}

/* ------------------------------------------------------------------ client helpers */

typedef gw_test_answer answer;

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  CHECK(fp != NULL);
  if (fp != NULL) {
    fputs(text, fp);
    fclose(fp);
  }
}

/* Redis where nothing listens unless a test says otherwise: the read API answers 503. */
static gw_aggregator_config base_config(const gw_log *log) {
  gw_aggregator_config cfg;
  gw_test_agg_config(&cfg, log, "redis://127.0.0.1:1", "test-readauth");
  return cfg;
}

/* Asks path with headers until the answer is not a 503 (the aggregator connecting to Redis),
 * at most 10 s. */
static bool get_when_connected(int port, const char *path, const char *headers, answer *a) {
  for (int i = 0; i < 200; i++) {
    if (!gw_test_http_get(port, path, headers, a))
      return false;
    if (a->status != 503)
      return true;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "the read API still answers 503 after 10 s: %s\n", a->body);
  return false;
}

/* ------------------------------------------------------------------ cases */

#define AUTH(token) "Authorization: Bearer " token "\r\n"

static void client_tokens(gw_test_agg *f) {
  answer *a = malloc(sizeof(*a));

  /* No credentials: 401 with the bare challenge, before any parameter is looked at. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", NULL, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->text, "WWW-Authenticate: Bearer realm=\"goodwill-read\"\r\n");
  CHECK_STR_CONTAINS(a->body, "missing credentials: send the header Authorization: Bearer "
                              "<token>");
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/%20bad/summary?tenant=t1&window=2y", NULL, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/team-a1/feelings?window=1h", NULL, a));
  CHECK_INT_EQ(a->status, 401);
  /* An unknown token, and another scheme: invalid_token; the token is not echoed. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", AUTH("read-wrong-9"), a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->text, "WWW-Authenticate: Bearer realm=\"goodwill-read\", "
                              "error=\"invalid_token\"\r\n");
  CHECK_STR_CONTAINS(a->body, "the bearer token is not known");
  CHECK(strstr(a->text, "read-wrong-9") == NULL);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", "Authorization: Basic dTpw\r\n", a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->body, "must be \\\"Bearer <token>\\\"");

  /* Token A reads t1 without tenant=: only t1's teams. */
  CHECK(get_when_connected(f->api_port, "/v1/teams?window=1h", AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "{\"tenant\":\"t1\",\"window\":\"1h\"");
  CHECK_STR_CONTAINS(a->body, "\"team\":\"team-a1\"");
  CHECK_STR_CONTAINS(a->body, "\"team\":\"team-a2\"");
  CHECK(strstr(a->body, "team-b1") == NULL);
  /* tenant= naming its own tenant is fine; the scheme is case-insensitive. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?tenant=t1&window=1h&format=csv",
                         "Authorization: bearer " TOKEN_A "\r\n", a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "t1,team-a1,1h,");
  CHECK(strstr(a->body, "team-b1") == NULL);
  /* Another tenant: 403 naming it, with insufficient_scope; also for one team's summary. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?tenant=t2&window=1h", AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 403);
  CHECK_STR_CONTAINS(a->body, "{\"error\":\"tenant: this token may not read tenant \\\"t2\\\"");
  CHECK_STR_CONTAINS(a->text, "WWW-Authenticate: Bearer realm=\"goodwill-read\", "
                              "error=\"insufficient_scope\"\r\n");
  CHECK(strstr(a->body, "team-b1") == NULL);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/team-b1/summary?tenant=t2&window=1h",
                         AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 403);
  /* And for one team's dominant feelings. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/team-b1/feelings?tenant=t2&window=1h",
                         AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 403);
  CHECK(strstr(a->body, "team-b1") == NULL);
  /* A malformed tenant= is still a 400 naming the parameter. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?tenant=a%20b&window=1h", AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "tenant: must be");
  /* Token B reads t2. */
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/team-b1/summary?window=1h", AUTH(TOKEN_B), a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "\"tenant\":\"t2\",\"team\":\"team-b1\"");
  CHECK(gw_test_http_get(f->api_port, "/v1/teams/team-b1/feelings?window=1h", AUTH(TOKEN_B), a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "{\"tenant\":\"t2\",\"team\":\"team-b1\",\"window\":\"1h\"");

  /* A bad file: refused, the old tokens still work. */
  write_file(tokens_path, TOKEN_A_HASH "\n");
  CHECK_INT_EQ(gw_test_agg_reload_tokens(f), -EINVAL);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 200);

  /* A good file: A is revoked, C reads t1 from now on, B stays. */
  write_file(tokens_path, "# rotated\n" TOKEN_C_HASH "\tt1\tnew key\n" TOKEN_B_HASH "\tt2\n");
  CHECK_INT_EQ(gw_test_agg_reload_tokens(f), 0);
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", AUTH(TOKEN_A), a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->text, "error=\"invalid_token\"");
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", AUTH(TOKEN_C), a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "\"team\":\"team-a1\"");
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", AUTH(TOKEN_B), a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "\"team\":\"team-b1\"");

  /* The admin port needs no token. */
  CHECK(gw_test_http_get(f->admin_port, "/healthz", NULL, a));
  CHECK_INT_EQ(a->status, 200);
  CHECK(gw_test_http_get(f->admin_port, "/metrics", NULL, a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_auth_tokens 2\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_auth_reloads_total{result=\"failed\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_auth_reloads_total{result=\"ok\"} 1\n");
  /* Every answer is counted by route and status: the refusals above exactly. */
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams\","
                              "status=\"401\"} 4\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams/{team}/"
                              "summary\",status=\"401\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams\","
                              "status=\"403\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams/{team}/"
                              "summary\",status=\"403\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams\","
                              "status=\"400\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams/{team}/"
                              "feelings\",status=\"401\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams/{team}/"
                              "feelings\",status=\"403\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_requests_total{route=\"/v1/teams/{team}/"
                              "feelings\",status=\"200\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_api_request_duration_seconds_count{route=\"/"
                              "v1/teams\",status=\"401\"} 4\n");
  CHECK(strstr(a->body, "read-") == NULL);
  free(a);
}

static char *read_all(FILE *fp) {
  fflush(fp);
  long n = ftell(fp);
  char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
  if (s == NULL)
    abort();
  rewind(fp);
  if (n > 0 && fread(s, 1, (size_t)n, fp) != (size_t)n)
    s[0] = '\0';
  return s;
}

static void test_tokens(void) {
  if (mkdtemp(tmpdir) == NULL || start_redis() != 0) {
    CHECK(!"redis-server started");
    stop_redis();
    return;
  }
  snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", tmpdir);
  write_file(tokens_path,
             "# read API tokens\n" TOKEN_A_HASH "\tt1\talpha\n\n" TOKEN_B_HASH "\tt2\r\n");
  FILE *log_out = tmpfile();
  CHECK(log_out != NULL);
  if (log_out == NULL) {
    stop_redis();
    return;
  }
  gw_log log;
  gw_log_init(&log, "aggregator-test", GW_LOG_DEBUG);
  log.out = log_out;
  char redis_url[64];
  snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d", redis_port);
  gw_aggregator_config cfg = base_config(&log);
  cfg.redis_url = redis_url;
  cfg.tokens_file = tokens_path;
  gw_test_agg_run(&cfg, client_tokens, NULL);
  stop_redis();

  char *text = read_all(log_out);
  fclose(log_out);
  CHECK_STR_CONTAINS(text, "\"msg\":\"read API bearer tokens loaded\"");
  CHECK_STR_CONTAINS(text, "\"msg\":\"tokens file not reloaded; the previous tokens stay in use\"");
  CHECK_STR_CONTAINS(text, "\"msg\":\"tokens file reloaded\"");
  CHECK(strstr(text, "DEV MODE") == NULL);
  CHECK(strstr(text, "read-") == NULL); /* no token, presented or known, in the log */
  free(text);

  char cmd[160];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Dev mode: no token needed, tenant= required as before; a loud warning at start. Redis is
 * not reachable, so a well-formed request gets as far as the 503. */
static void client_dev_mode(gw_test_agg *f) {
  answer *a = malloc(sizeof(*a));
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?window=1h", NULL, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "tenant: required");
  CHECK(gw_test_http_get(f->api_port, "/v1/teams?tenant=t2&window=1h", NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK(gw_test_http_get(f->admin_port, "/metrics", NULL, a));
  CHECK_STR_CONTAINS(a->body, "goodwill_aggregator_auth_tokens 0\n");
  free(a);
}

static void test_dev_mode(void) {
  FILE *log_out = tmpfile();
  CHECK(log_out != NULL);
  if (log_out == NULL)
    return;
  gw_log log;
  gw_log_init(&log, "aggregator-test", GW_LOG_WARN);
  log.out = log_out;
  gw_aggregator_config cfg = base_config(&log);
  cfg.dev_mode = true;
  gw_test_agg_run(&cfg, client_dev_mode, NULL);
  char *text = read_all(log_out);
  fclose(log_out);
  CHECK_STR_CONTAINS(text, "DEV MODE: AUTHENTICATION IS OFF. Any client can read the aggregates "
                           "of any tenant.");
  free(text);
}

/* Neither tokens nor dev mode, both, or a bad tokens file: the aggregator refuses to start,
 * saying why, and leaves nothing behind on the loop. */
static void test_config(void) {
  uv_loop_t loop;
  CHECK_INT_EQ(uv_loop_init(&loop), 0);
  FILE *log_out = tmpfile();
  CHECK(log_out != NULL);
  if (log_out == NULL)
    return;
  gw_log log;
  gw_log_init(&log, "aggregator-test", GW_LOG_ERROR);
  log.out = log_out;
  gw_aggregator_config cfg = base_config(&log);
  gw_aggregator *agg = NULL;
  CHECK_INT_EQ(gw_aggregator_start(&loop, &cfg, &agg), -EINVAL);
  cfg.dev_mode = true;
  cfg.tokens_file = "/nonexistent/tokens";
  CHECK_INT_EQ(gw_aggregator_start(&loop, &cfg, &agg), -EINVAL);
  cfg.dev_mode = false;
  CHECK_INT_EQ(gw_aggregator_start(&loop, &cfg, &agg), -EINVAL);
  CHECK(agg == NULL);
  CHECK_INT_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
  CHECK_INT_EQ(uv_loop_close(&loop), 0);
  char *text = read_all(log_out);
  fclose(log_out);
  CHECK_STR_CONTAINS(text, "no --tokens-file given: clients must authenticate with bearer tokens "
                           "(see docs/API-read.md); for a local demo without authentication pass "
                           "--dev-mode");
  CHECK_STR_CONTAINS(text, "--tokens-file and --dev-mode exclude each other");
  CHECK_STR_CONTAINS(text, "/nonexistent/tokens: cannot open");
  free(text);
}

int main(void) {
  GW_RUN(test_config);
  GW_RUN(test_dev_mode);
  GW_RUN(test_tokens);
  return gw_test_finish();
}
