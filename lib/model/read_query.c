/* gw_read_query: the read API's parameters (see goodwill/read_query.h). */
#include "goodwill/read_query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/aggregates.h"
#include "goodwill/buf.h"

static bool given(const char *s) {
  return s != NULL && *s != '\0';
}

static int refuse(char *err, size_t errlen, const char *msg) {
  gw_errf(err, errlen, "%s", msg);
  return -EINVAL;
}

static const char *const route_patterns[] = {
    [GW_READ_LIST] = "/v1/teams",
    [GW_READ_SUMMARY] = "/v1/teams/{team}/summary",
    [GW_READ_SERIES] = "/v1/teams/{team}/series",
    [GW_READ_FEELINGS] = "/v1/teams/{team}/feelings",
};

const char *gw_read_route_pattern(gw_read_route route) {
  return (unsigned)route < sizeof(route_patterns) / sizeof(route_patterns[0])
             ? route_patterns[route]
             : "other";
}

int gw_read_route_parse(const char *path, gw_read_route *route, const char **team,
                        size_t *team_len) {
  *team = NULL;
  *team_len = 0;
  if (path == NULL)
    return -ENOENT;
  if (strcmp(path, "/v1/teams") == 0 || strcmp(path, "/v1/teams/") == 0) {
    *route = GW_READ_LIST;
    return 0;
  }
  static const char prefix[] = "/v1/teams/";
  static const struct {
    const char *suffix;
    gw_read_route route;
  } team_routes[] = {
      {"/summary", GW_READ_SUMMARY},
      {"/series", GW_READ_SERIES},
      {"/feelings", GW_READ_FEELINGS},
  };
  size_t pl = sizeof(prefix) - 1, len = strlen(path);
  if (len <= pl || strncmp(path, prefix, pl) != 0)
    return -ENOENT;
  for (size_t k = 0; k < sizeof(team_routes) / sizeof(team_routes[0]); k++) {
    size_t n = strlen(team_routes[k].suffix);
    if (len > pl + n && strcmp(path + len - n, team_routes[k].suffix) == 0) {
      *route = team_routes[k].route;
      *team = path + pl;
      *team_len = len - pl - n;
      return 0;
    }
  }
  return -ENOENT;
}

int gw_read_query_parse(gw_read_route route, const gw_read_params *p, int64_t now_s,
                        size_t max_teams, gw_read_query *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->sort_field = -1;
  out->step = GW_RES_1H;
  bool list = route == GW_READ_LIST, series = route == GW_READ_SERIES;
  if (given(p->format)) {
    if (strcmp(p->format, "csv") == 0)
      out->csv = true;
    else if (strcmp(p->format, "json") != 0)
      return refuse(err, errlen, "format: must be json or csv");
  }
  if (gw_window_resolve(p->window, p->from, p->to, now_s, &out->from_s, &out->to_s, err, errlen) <
      0)
    return -EINVAL;
  snprintf(out->window, sizeof(out->window), "%s", given(p->window) ? p->window : "custom");
  const char *list_only[3] = {p->sort, p->order, p->limit};
  static const char *const list_names[3] = {"sort", "order", "limit"};
  for (size_t k = 0; k < 3; k++) {
    if (!list && given(list_only[k])) {
      gw_errf(err, errlen, "%s: only for GET /v1/teams (a leaderboard)", list_names[k]);
      return -EINVAL;
    }
  }
  if (!series && given(p->step))
    return refuse(err, errlen, "step: only for GET /v1/teams/{team}/series");
  /* The feelings take a summary's parameters: a range and a format. */
  if (series) {
    if (given(p->step) && gw_res_parse(p->step, &out->step, err, errlen) != 0)
      return -EINVAL;
    return gw_window_series(out->from_s, out->to_s, out->step, now_s, &out->first_s, &out->npoints,
                            err, errlen) != 0
               ? -EINVAL
               : 0;
  }
  if (!list)
    return 0;
  if (given(p->sort)) {
    out->sort_field = gw_agg_sort_field(p->sort);
    if (out->sort_field < 0)
      return refuse(err, errlen, "sort: must be a numeric row field (" GW_AGG_SORT_FIELDS_TEXT ")");
  }
  if (given(p->order)) {
    if (strcmp(p->order, "asc") != 0 && strcmp(p->order, "desc") != 0)
      return refuse(err, errlen, "order: must be asc or desc");
    if (out->sort_field < 0)
      return refuse(err, errlen, "order: needs sort (the field to rank teams by)");
    out->ascending = strcmp(p->order, "asc") == 0;
  }
  if (given(p->limit)) {
    char *end;
    errno = 0;
    long long n = strtoll(p->limit, &end, 10);
    if (errno != 0 || *end != '\0' || end == p->limit || n < 1 ||
        (unsigned long long)n > max_teams) {
      gw_errf(err, errlen, "limit: must be an integer from 1 to %zu", max_teams);
      return -EINVAL;
    }
    out->limit = (size_t)n;
  }
  return 0;
}
