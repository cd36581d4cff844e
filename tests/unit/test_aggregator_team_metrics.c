/*
 * The aggregator's per-team gauges on the admin /metrics, in-process: goodwill-aggregator's
 * library object runs on a private loop against a real /usr/bin/redis-server (started here on
 * a free port) holding one minute bucket for each of three teams of two tenants, with an
 * unreachable Kafka (the gauges read Redis only). With team_metrics_max 2 a client thread
 * checks what a Grafana user would: the first two teams (tenant t1) show the values
 * GET /v1/teams?window=1h reports, NaN where the read API says null, the third team (tenant
 * t2) is absent; and with redis-server stopped, refreshes count as failed while the gauges
 * keep their values.
 */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

static char tmpdir[] = "/tmp/gw-test-teamgauges-XXXXXX";
static pid_t redis_pid = -1;
static int redis_port = -1;

/* ------------------------------------------------------------------ redis-server */

/* The counters of records two minutes ago (inside the last hour) per team, written to their
 * minute, hour and day buckets as the apply script does, so that whichever buckets compose
 * the last hour (a whole hour bucket when the hour is just over) they are counted once:
 * t1/team-a1 with feeling and surveys, t1/team-a2 with interactions only (feeling and NPS
 * undefined), t2/team-b1 with everything. Returns 0 when every write was acknowledged. */
static int seed(redisContext *c) {
  int64_t minute = ((int64_t)time(NULL) - 120) / 60 * 60;
  struct {
    const char *tenant, *team, *fields;
  } rows[] = {
      {"t1", "team-a1",
       "n 10 felt 8 start_sum -2400 end_sum 3200 change_sum 5600 improved 6 s 5 promoters 3 "
       "passives 1 detractors 1"},
      {"t1", "team-a2", "n 4"},
      {"t2", "team-b1",
       "n 7 felt 7 start_sum 700 end_sum 1400 change_sum 700 improved 2 s 2 "
       "promoters 2"},
  };
  bool ok = true;
  for (size_t i = 0; i < 3; i++) {
    gw_buf key = GW_BUF_INIT, teams = GW_BUF_INIT, cmd = GW_BUF_INIT;
    gw_agg_key_teams(&teams, rows[i].tenant);
    const char *cmds[5] = {NULL};
    char hset[3][600];
    for (int r = 0; r < 3; r++) {
      gw_buf_reset(&key);
      gw_agg_key_bucket(&key, rows[i].tenant, rows[i].team, (gw_resolution)r,
                        gw_window_floor(minute, (gw_resolution)r));
      snprintf(hset[r], sizeof hset[r], "HSET %s %s", key.data, rows[i].fields);
      cmds[r] = hset[r];
    }
    char c2[600], c3[300];
    snprintf(c2, sizeof(c2), "SADD %s %s", teams.data, rows[i].team);
    snprintf(c3, sizeof(c3), "SADD %s %s", GW_AGG_KEY_TENANTS, rows[i].tenant);
    cmds[3] = c2;
    cmds[4] = c3;
    for (size_t k = 0; k < 5; k++) {
      redisReply *r = redisCommand(c, cmds[k]);
      ok = ok && r != NULL && r->type == REDIS_REPLY_INTEGER;
      if (r)
        freeReplyObject(r);
    }
    gw_buf_free(&key);
    gw_buf_free(&teams);
    gw_buf_free(&cmd);
  }
  return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ client helpers */

typedef gw_test_answer answer;

/* The value of the series "name{labels}" in an exposition text; false when absent. */
static bool metric_value(const char *text, const char *series, double *out) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)) != NULL; p += n) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ') {
      *out = strtod(p + n + 1, NULL);
      return true;
    }
  }
  return false;
}

static double scrape(int admin_port, answer *a, const char *series) {
  double v = -1e300;
  if (gw_test_http_get(admin_port, "/metrics", NULL, a))
    metric_value(a->body, series, &v);
  return v;
}

static void pause_50ms(void) {
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* The read API's value of field for team in the rows of tenant t1 (NAN for null). */
static double api_value(json_t *teams, const char *team, const char *field) {
  size_t i;
  json_t *row;
  json_array_foreach(teams, i, row) {
    if (strcmp(json_string_value(json_object_get(row, "team")), team) == 0) {
      json_t *v = json_object_get(row, field);
      if (v == NULL) {
        fprintf(stderr, "the read API's rows have no field %s\n", field);
        return -1e300;
      }
      return json_is_null(v) ? NAN : json_number_value(v);
    }
  }
  fprintf(stderr, "team %s not in the read API's answer\n", team);
  return -1e300;
}

static const struct {
  const char *metric, *field;
} pairs[] = {
    {"goodwill_team_interactions", "interactions"},
    {"goodwill_team_surveys", "surveys"},
    {"goodwill_team_nps", "nps"},
    {"goodwill_team_feeling_start_mean", "start_mean"},
    {"goodwill_team_feeling_end_mean", "end_mean"},
    {"goodwill_team_feeling_change_mean", "change_mean"},
    {"goodwill_team_improved_share", "improved_share"},
};

static bool same(double x, double y) {
  if (isnan(x) || isnan(y))
    return isnan(x) && isnan(y);
  /* The read API prints 10 significant digits. */
  return fabs(x - y) <= 1e-8 * (fabs(x) > 1 ? fabs(x) : 1);
}

static void client(gw_test_agg *f) {
  answer *a = malloc(sizeof(*a));
  /* Bounded wait (10 s) for the first refresh to publish both teams. */
  bool published = false;
  for (int i = 0; i < 200 && !published; i++) {
    published = scrape(f->admin_port, a, "goodwill_aggregator_team_metrics_teams") == 2;
    if (!published)
      pause_50ms();
  }
  CHECK(published);
  double values[2][7];
  if (published) {
    char metrics_text[sizeof(a->text)];
    snprintf(metrics_text, sizeof(metrics_text), "%s", a->body);
    CHECK(gw_test_http_get(f->api_port, "/v1/teams?tenant=t1&window=1h", NULL, a));
    CHECK_INT_EQ(a->status, 200);
    json_error_t err;
    json_t *root = json_loads(a->body, 0, &err);
    CHECK(root != NULL);
    json_t *teams = json_object_get(root, "teams");
    const char *names[2] = {"team-a1", "team-a2"};
    for (size_t t = 0; t < 2; t++) {
      for (size_t k = 0; k < 7; k++) {
        char series[256];
        snprintf(series, sizeof(series), "%s{tenant=\"t1\",team=\"%s\"}", pairs[k].metric,
                 names[t]);
        double got = -1e300;
        bool found = metric_value(metrics_text, series, &got);
        if (!found)
          fprintf(stderr, "series %s missing from /metrics\n", series);
        CHECK(found);
        double want = api_value(teams, names[t], pairs[k].field);
        if (!same(got, want))
          fprintf(stderr, "%s: /metrics %.17g, read API %.17g\n", series, got, want);
        CHECK(same(got, want));
        values[t][k] = got;
      }
    }
    json_decref(root);
    /* Hand-computed for team-a1: NPS 100 (3 - 1) / 5 = 40, start mean -2400 / 8 / 1000. */
    CHECK(same(values[0][2], 40.0));
    CHECK(same(values[0][3], -0.3));
    CHECK(same(values[0][0], 10.0));
    /* team-a2 has no surveys and no feeling: NaN, not 0. */
    CHECK(isnan(values[1][2]));
    CHECK(isnan(values[1][3]));
    CHECK(isnan(values[1][6]));
    CHECK(same(values[1][0], 4.0));
    CHECK_STR_CONTAINS(metrics_text, "goodwill_team_nps{tenant=\"t1\",team=\"team-a2\"} NaN\n");
    /* The bound: the third team (tenant t2, after t1) is not exported. */
    CHECK(strstr(metrics_text, "team-b1") == NULL);
    CHECK(strstr(metrics_text, "tenant=\"t2\"") == NULL);
    CHECK_STR_CONTAINS(metrics_text, "# HELP goodwill_team_nps");
    CHECK_STR_CONTAINS(metrics_text, "over the last hour, refreshed every --team-metrics-interval");
    CHECK_STR_CONTAINS(metrics_text, "# TYPE goodwill_team_nps gauge");
  }

  /* Redis goes away: refreshes fail (bounded wait, 10 s, for two more failures) and the gauges
   * keep the last values. */
  double failed0 =
      scrape(f->admin_port, a, "goodwill_aggregator_team_metrics_refresh_failures_total");
  CHECK(failed0 >= 0);
  gw_test_redis_stop(&redis_pid);
  bool counted = false;
  for (int i = 0; i < 200 && !counted; i++) {
    counted = scrape(f->admin_port, a, "goodwill_aggregator_team_metrics_refresh_failures_total") >=
              failed0 + 2;
    if (!counted)
      pause_50ms();
  }
  CHECK(counted);
  if (published) {
    CHECK(same(scrape(f->admin_port, a, "goodwill_team_nps{tenant=\"t1\",team=\"team-a1\"}"),
               values[0][2]));
    CHECK(
        same(scrape(f->admin_port, a, "goodwill_team_interactions{tenant=\"t1\",team=\"team-a2\"}"),
             values[1][0]));
    CHECK(same(scrape(f->admin_port, a, "goodwill_aggregator_team_metrics_teams"), 2));
  }
  free(a);
}

static void test_team_gauges(void) {
  CHECK(mkdtemp(tmpdir) != NULL);
  redisContext *rc = gw_test_redis_start(tmpdir, &redis_port, &redis_pid);
  CHECK(rc != NULL);
  if (rc == NULL)
    return;
  CHECK_INT_EQ(seed(rc), 0);
  redisFree(rc);

  gw_log log;
  gw_log_init(&log, "aggregator-test", GW_LOG_ERROR);
  char url[64];
  snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
  gw_aggregator_config cfg;
  gw_test_agg_config(&cfg, &log, url, "test-teamgauges");
  cfg.dev_mode = true;
  cfg.team_metrics_max = 2;
  cfg.team_metrics_interval_ms = 100;
  gw_test_agg_run(&cfg, client, NULL);
  gw_test_redis_stop(&redis_pid);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  CHECK_INT_EQ(system(cmd), 0);
}

int main(void) {
  GW_RUN(test_team_gauges);
  return gw_test_finish();
}
