/*
 * Fuzz target for the read API's query parameters (gw_read_query_parse): the input is split at
 * 0x00 bytes into the route (first byte) and the values of window, from, to, format, sort,
 * order, limit and step, as a client may send them (after percent-decoding), at a fixed now.
 * The first value is also parsed as a request path (gw_read_route_parse).
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: a refusal has a
 * message that starts with a parameter name; an accepted query has a range of positive length
 * (the composition later clamps it to what is retained), a limit within its bound, and a
 * series with at least one and at most 1,500 points; a path's team, when it has one, lies
 * within the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/read_query.h"

/* 2026-11-23T10:00:00Z: fixed, so a crashing input reproduces whatever the date. */
#define GW_FUZZ_NOW_S 1795428000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  gw_read_route route = (gw_read_route)(data[0] % 4);
  char *copy = malloc(size);
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  const char *v[8] = {NULL};
  size_t n = 0;
  for (char *p = copy; n < 8 && p < copy + size - 1;) {
    v[n++] = p;
    p += strlen(p) + 1;
  }
  gw_read_route path_route;
  const char *team;
  size_t team_len;
  if (v[0] != NULL && gw_read_route_parse(v[0], &path_route, &team, &team_len) == 0) {
    size_t path_len = strlen(v[0]);
    if ((path_route == GW_READ_LIST) != (team == NULL) ||
        (team != NULL && (team < v[0] || team + team_len > v[0] + path_len || team_len == 0))) {
      abort();
    }
  }
  gw_read_params params = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
  gw_read_query q;
  char err[300] = "";
  int rc = gw_read_query_parse(route, &params, GW_FUZZ_NOW_S, 10000, &q, err, sizeof err);
  if (rc != 0) {
    static const char *const names[] = {"window", "from",  "to",   "format", "sort",
                                        "order",  "limit", "step", "range"};
    int named = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      named |= strncmp(err, names[i], strlen(names[i])) == 0;
    }
    if (!named) {
      abort();
    }
  } else {
    if (q.to_s <= q.from_s || q.limit > 10000) {
      abort();
    }
    if (route == GW_READ_SERIES && (q.npoints < 1 || q.npoints > 1500)) {
      abort();
    }
  }
  free(copy);
  return 0;
}
