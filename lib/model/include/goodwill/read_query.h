/*
 * gw_read_query: the query parameters of the read API (docs/API-read.md) checked and turned
 * into what a read needs: the time range, the answer's format, a leaderboard's ordering and
 * length, a time series' step and points. Parameters are outside input: every refusal names
 * the parameter and why ("limit: must be an integer from 1 to 10000"), the read API answers it
 * as a 400.
 *
 * Pure: no I/O; any thread. Ownership: the parameter strings are the caller's and are only
 * read during the call; the result holds no pointer into them. Errors: -EINVAL with the
 * message in err.
 */
#ifndef GOODWILL_READ_QUERY_H
#define GOODWILL_READ_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goodwill/window.h"

/* The read API's data routes. */
typedef enum gw_read_route {
  GW_READ_LIST,    /* GET /v1/teams: a leaderboard of the tenant's teams */
  GW_READ_SUMMARY, /* GET /v1/teams/{team}/summary: one team's row */
  GW_READ_SERIES,  /* GET /v1/teams/{team}/series: one row per bucket of a step */
  /* GET /v1/teams/{team}/feelings: the pairs of dominant feelings of one team's range, with
   * their margins; the parameters of a summary */
  GW_READ_FEELINGS,
} gw_read_route;

/*
 * The data route of a request path (without its query): GET /v1/teams (or /v1/teams/), and
 * /v1/teams/{team}/summary, /series, /feelings. 0 with *route, and for the team routes *team
 * and *team_len: the team segment as it is in path (borrowed; not checked here, it may be
 * empty of any length), or -ENOENT for any other path.
 */
int gw_read_route_parse(const char *path, gw_read_route *route, const char **team,
                        size_t *team_len);
/* The route's path pattern, for metrics labels and errors: "/v1/teams/{team}/feelings". */
const char *gw_read_route_pattern(gw_read_route route);
/* The data routes, as the 404 names them. */
#define GW_READ_ROUTES_TEXT                                                                        \
  "GET /v1/teams, /v1/teams/{team}/summary, /v1/teams/{team}/series or "                           \
  "/v1/teams/{team}/feelings"

/* Decoded parameter values; NULL (or "") when absent. */
typedef struct gw_read_params {
  const char *window, *from, *to; /* a rolling window, or an explicit range */
  const char *format;             /* json | csv */
  const char *sort, *order;       /* leaderboards: a numeric row field, asc | desc */
  const char *limit;              /* leaderboards: most rows, 1..max_teams */
  const char *step;               /* series: 1m | 1h | 1d */
} gw_read_params;

typedef struct gw_read_query {
  bool csv;
  int64_t from_s, to_s; /* the range read, unix seconds */
  char window[32];      /* the window as asked, or "custom" for an explicit range */
  int sort_field;       /* leaderboards: the ranking field (aggregates.h), -1: by team id */
  bool ascending;
  size_t limit;       /* leaderboards: most rows, 0: all */
  gw_resolution step; /* series */
  int64_t first_s;    /* series: start of the first point's bucket */
  size_t npoints;     /* series: points */
} gw_read_query;

/* Checks p for route at now_s (unix seconds) into *out; a leaderboard's limit is at most
 * max_teams. Parameters of another route (sort on a series, step on a leaderboard or on the
 * feelings) are refused rather than ignored. */
int gw_read_query_parse(gw_read_route route, const gw_read_params *p, int64_t now_s,
                        size_t max_teams, gw_read_query *out, char *err, size_t errlen);

#endif
