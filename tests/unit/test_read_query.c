/* gw_read_query: the read API's parameters per route, every refusal naming its parameter. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "goodwill/aggregates.h"
#include "goodwill/read_query.h"
#include "gw_test.h"

#define NOW 1795428000LL /* 2026-11-23T10:00:00Z */

static int parse(gw_read_route route, gw_read_params p, gw_read_query *q, char *err) {
  return gw_read_query_parse(route, &p, NOW, 10000, q, err, 300);
}

static void test_accepted(void) {
  gw_read_query q;
  char err[300];
  CHECK_INT_EQ(
      parse(GW_READ_LIST,
            (gw_read_params){
                .window = "7d", .format = "csv", .sort = "nps", .order = "asc", .limit = "10"},
            &q, err),
      0);
  CHECK(q.csv);
  CHECK_STR_EQ(q.window, "7d");
  CHECK_INT_EQ(q.to_s - q.from_s, 7 * 86400);
  CHECK_INT_EQ(q.sort_field, gw_agg_sort_field("nps"));
  CHECK(q.ascending);
  CHECK_INT_EQ(q.limit, 10);
  CHECK_INT_EQ(parse(GW_READ_SERIES,
                     (gw_read_params){.from = "2026-11-20T00:00:00Z",
                                      .to = "2026-11-21T00:00:00Z",
                                      .step = "1h"},
                     &q, err),
               0);
  CHECK_STR_EQ(q.window, "custom");
  CHECK_INT_EQ(q.step, GW_RES_1H);
  CHECK_INT_EQ(q.npoints, 24);
  CHECK_INT_EQ(parse(GW_READ_SUMMARY, (gw_read_params){.window = "1h"}, &q, err), 0);
  CHECK(!q.csv);
  CHECK_INT_EQ(q.sort_field, -1);
  /* The rates and means of what the buckets hold rank teams too. */
  static const char *const ranked[] = {"recovered_rate",       "soured_rate",
                                       "empathy_mean",         "resolution_rate",
                                       "transfers_mean",       "survey_response_rate",
                                       "change_mean_from_neg", "change_mean_from_neu",
                                       "change_mean_from_pos", "change_sum"};
  for (size_t i = 0; i < sizeof ranked / sizeof ranked[0]; i++) {
    CHECK_INT_EQ(parse(GW_READ_LIST, (gw_read_params){.window = "1d", .sort = ranked[i]}, &q, err),
                 0);
    CHECK_INT_EQ(q.sort_field, gw_agg_sort_field(ranked[i]));
    CHECK(q.sort_field >= 0);
  }
}

/* The refusal of an unknown sort field lists every field, untruncated, in the read API's
 * error buffer (640 bytes). */
static void test_sort_refusal_lists_every_field(void) {
  gw_read_query q;
  char err[640];
  gw_read_params p = {.window = "1d", .sort = "x"};
  CHECK_INT_EQ(gw_read_query_parse(GW_READ_LIST, &p, NOW, 10000, &q, err, sizeof(err)), -22);
  CHECK_STR_CONTAINS(err, "wait_ms_mean, recovered_rate,");
  CHECK_STR_CONTAINS(err, "change_mean_from_pos, change_sum)");
}

static void test_refused_with_the_parameter_named(void) {
  gw_read_query q;
  char err[300];
  static const struct {
    gw_read_route route;
    gw_read_params p;
    const char *want;
  } cases[] = {
      {GW_READ_LIST, {.window = "7d", .format = "xml"}, "format: must be json or csv"},
      {GW_READ_LIST, {.format = "csv"}, "window"},
      {GW_READ_LIST, {.window = "2y"}, "window:"},
      {GW_READ_LIST, {.window = "7d", .sort = "bogus"}, "sort: must be a numeric row field"},
      {GW_READ_LIST, {.window = "7d", .order = "asc"}, "order: needs sort"},
      {GW_READ_LIST, {.window = "7d", .sort = "nps", .order = "up"}, "order: must be asc or desc"},
      {GW_READ_LIST, {.window = "7d", .limit = "0"}, "limit: must be an integer from 1 to 10000"},
      {GW_READ_LIST, {.window = "7d", .limit = "12x"}, "limit:"},
      {GW_READ_LIST, {.window = "7d", .step = "1h"}, "step: only for"},
      {GW_READ_SUMMARY, {.window = "7d", .sort = "nps"}, "sort: only for GET /v1/teams"},
      {GW_READ_SERIES, {.window = "7d", .step = "2h"}, "step:"},
      {GW_READ_SERIES, {.window = "3d", .step = "1m"}, "step:"},
      /* The feelings take a summary's parameters only. */
      {GW_READ_FEELINGS, {.window = "7d", .step = "1h"}, "step: only for"},
      {GW_READ_FEELINGS, {.window = "7d", .sort = "nps"}, "sort: only for GET /v1/teams"},
      {GW_READ_FEELINGS, {.window = "7d", .limit = "5"}, "limit: only for GET /v1/teams"},
      {GW_READ_FEELINGS, {.window = "7d", .format = "xml"}, "format: must be json or csv"},
      {GW_READ_FEELINGS, {.format = "csv"}, "window"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memset(err, 0, sizeof err);
    CHECK_INT_EQ(parse(cases[i].route, cases[i].p, &q, err), -22);
    CHECK_STR_CONTAINS(err, cases[i].want);
    CHECK(strncmp(err, cases[i].want, strcspn(cases[i].want, ":")) == 0);
  }
}

/* Paths to routes and teams; the team segment is returned as it is, checked by the caller. */
static void test_routes(void) {
  static const struct {
    const char *path;
    int rc;
    gw_read_route route;
    const char *team;
    const char *pattern;
  } cases[] = {
      {"/v1/teams", 0, GW_READ_LIST, NULL, "/v1/teams"},
      {"/v1/teams/", 0, GW_READ_LIST, NULL, "/v1/teams"},
      {"/v1/teams/emea/summary", 0, GW_READ_SUMMARY, "emea", "/v1/teams/{team}/summary"},
      {"/v1/teams/emea/series", 0, GW_READ_SERIES, "emea", "/v1/teams/{team}/series"},
      {"/v1/teams/emea/feelings", 0, GW_READ_FEELINGS, "emea", "/v1/teams/{team}/feelings"},
      {"/v1/teams/a.b@c-d/feelings", 0, GW_READ_FEELINGS, "a.b@c-d", NULL},
      /* A team named like a route is a team. */
      {"/v1/teams/feelings/summary", 0, GW_READ_SUMMARY, "feelings", NULL},
      {"/v1/teams/summary/feelings", 0, GW_READ_FEELINGS, "summary", NULL},
      /* Not for this parser to judge: the read API refuses the id with a 400. */
      {"/v1/teams/a/b/feelings", 0, GW_READ_FEELINGS, "a/b", NULL},
      {"/v1/teams//feelings", -ENOENT, 0, NULL, NULL},
      {"/v1/teams/feelings", -ENOENT, 0, NULL, NULL},
      {"/v1/teams/emea/feeling", -ENOENT, 0, NULL, NULL},
      {"/v1/teams/emea/feelings/", -ENOENT, 0, NULL, NULL},
      {"/v1/teams/emea", -ENOENT, 0, NULL, NULL},
      {"/v1/teamsx/emea/feelings", -ENOENT, 0, NULL, NULL},
      {"/v2/teams/emea/feelings", -ENOENT, 0, NULL, NULL},
      {"/readyz", -ENOENT, 0, NULL, NULL},
      {"", -ENOENT, 0, NULL, NULL},
      {NULL, -ENOENT, 0, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gw_read_route route = (gw_read_route)-1;
    const char *team = "x";
    size_t team_len = 99;
    int rc = gw_read_route_parse(cases[i].path, &route, &team, &team_len);
    if (rc != cases[i].rc)
      fprintf(stderr, "path %s: rc %d, want %d\n", cases[i].path ? cases[i].path : "(null)", rc,
              cases[i].rc);
    CHECK_INT_EQ(rc, cases[i].rc);
    if (rc != 0) {
      CHECK(team == NULL && team_len == 0);
      continue;
    }
    CHECK_INT_EQ(route, cases[i].route);
    if (cases[i].team == NULL) {
      CHECK(team == NULL && team_len == 0);
    } else {
      CHECK(team != NULL && team_len == strlen(cases[i].team) &&
            strncmp(team, cases[i].team, team_len) == 0);
    }
    if (cases[i].pattern != NULL)
      CHECK_STR_EQ(gw_read_route_pattern(route), cases[i].pattern);
  }
  /* The 404 names every data route. */
  CHECK_STR_CONTAINS(GW_READ_ROUTES_TEXT, "/v1/teams/{team}/feelings");
}

/* The feelings read a range like a summary: a window or from/to, and a format. */
static void test_feelings_accepted(void) {
  gw_read_query q;
  char err[300];
  CHECK_INT_EQ(parse(GW_READ_FEELINGS, (gw_read_params){.window = "30d", .format = "csv"}, &q, err),
               0);
  CHECK(q.csv);
  CHECK_STR_EQ(q.window, "30d");
  CHECK_INT_EQ(q.to_s - q.from_s, 30 * 86400);
  CHECK_INT_EQ(q.sort_field, -1);
  CHECK_INT_EQ(q.npoints, 0);
  CHECK_INT_EQ(parse(GW_READ_FEELINGS,
                     (gw_read_params){.from = "2026-11-20", .to = "2026-11-21T00:00:00Z"}, &q, err),
               0);
  CHECK(!q.csv);
  CHECK_STR_EQ(q.window, "custom");
  CHECK_INT_EQ(q.to_s - q.from_s, 86400);
}

int main(void) {
  GW_RUN(test_routes);
  GW_RUN(test_feelings_accepted);
  GW_RUN(test_accepted);
  GW_RUN(test_refused_with_the_parameter_named);
  GW_RUN(test_sort_refusal_lists_every_field);
  return gw_test_finish();
}
