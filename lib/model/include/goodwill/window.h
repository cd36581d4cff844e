/*
 * gw_window: the time arithmetic of the aggregates. Buckets at three resolutions (1 minute
 * kept 2 days, 1 hour kept 35 days, 1 day kept 400 days; a bucket starts at the event time
 * floored to its resolution, UTC, unix seconds), rolling windows ("5m" .. "365d", any
 * "<n>m|h|d") and explicit ISO-8601 ranges, and the exact composition of a window from the
 * coarsest buckets that fit inside it plus finer buckets at its edges.
 *
 * Retention: a bucket of resolution r starting at b exists while now < b + retention(r) (its
 * Redis key carries EXPIREAT b + retention(r)). When a window's edge needs finer buckets that
 * no longer exist, gw_window_compose widens that edge outwards to the next coarser grid whose
 * bucket still exists (flag GW_WINDOW_WIDENED); a start older than every retained day is
 * moved forward to the oldest retained day, and an end later than now + GW_WINDOW_FUTURE_S
 * is moved back (flag GW_WINDOW_CLAMPED). The composition then covers its effective
 * [from_s, to_s) exactly once and uses only buckets that exist, and the caller reports the
 * effective range, never the requested one.
 *
 * Pure: no I/O, no clock (callers pass now_s); any thread. Errors are -EINVAL with a message
 * naming the value and the reason.
 */
#ifndef GOODWILL_WINDOW_H
#define GOODWILL_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_resolution {
  GW_RES_1M = 0,
  GW_RES_1H = 1,
  GW_RES_1D = 2,
} gw_resolution;

#define GW_RES_COUNT 3

/* How far after now a read window may end: an event may lie up to this after its receipt
 * (GW_EVENT_MAX_FUTURE_MS of goodwill/event.h, which aggregates.c checks is the same). */
#define GW_WINDOW_FUTURE_S 300
/* The longest rolling window accepted ("400d"): the day retention (the
 * GW_EVENT_DAY_BUCKET_RETENTION_MS ingest's lateness bound is derived from). */
#define GW_WINDOW_MAX_S (400LL * 86400)
/* Enough for any composition: < 60 minutes and < 24 hours on each edge, and at most 402
 * days once the range is clamped to the day retention. */
#define GW_WINDOW_MAX_BUCKETS 600
/* "2026-11-23T10:00:00Z" and its NUL. */
#define GW_ISO_LEN 21

/* Bucket size and retention of a resolution, in seconds, and its name "1m" | "1h" | "1d". */
int64_t gw_res_seconds(gw_resolution r);
int64_t gw_res_retention_s(gw_resolution r);
const char *gw_res_name(gw_resolution r);

/* t floored to the resolution (correct for negative t too). */
int64_t gw_window_floor(int64_t t_s, gw_resolution r);
int64_t gw_window_ceil(int64_t t_s, gw_resolution r);

/* True while the bucket starting at bucket_start_s (of resolution r) still exists at now_s. */
bool gw_window_bucket_retained(gw_resolution r, int64_t bucket_start_s, int64_t now_s);

typedef struct gw_window_bucket {
  gw_resolution res;
  int64_t start_s;
} gw_window_bucket;

enum {
  GW_WINDOW_WIDENED = 1, /* an edge was widened to a coarser grid (finer buckets expired) */
  GW_WINDOW_CLAMPED = 2, /* an edge was moved inside the retained / possible range */
};

typedef struct gw_window_composition {
  int64_t from_s; /* effective range covered, [from_s, to_s) */
  int64_t to_s;
  unsigned flags; /* GW_WINDOW_WIDENED | GW_WINDOW_CLAMPED */
  size_t nbuckets;
  gw_window_bucket buckets[GW_WINDOW_MAX_BUCKETS]; /* in time order */
} gw_window_composition;

/*
 * Composes [from_s, to_s) at now_s. The range is first made minute-aligned (from floored, to
 * ceiled), then adjusted for retention as described above. An empty range (to <= from after
 * the adjustments) gives zero buckets and is not an error. -EINVAL when to_s < from_s.
 */
int gw_window_compose(int64_t from_s, int64_t to_s, int64_t now_s, gw_window_composition *out);

/* Parses a duration "<n>m" | "<n>h" | "<n>d" (n >= 1, at most GW_WINDOW_MAX_S). */
int gw_window_parse_duration(const char *s, int64_t *out_s, char *err, size_t errlen);

/*
 * Parses an ISO-8601 time: "YYYY-MM-DD" (UTC midnight) or "YYYY-MM-DDTHH:MM[:SS[.fff]]"
 * followed by "Z" or "+HH:MM" / "-HH:MM" (a zone is required when a time is given, so no
 * reading depends on the server's zone). Fractions of a second are truncated.
 */
int gw_window_parse_iso(const char *s, int64_t *out_s, char *err, size_t errlen);

/* Writes "YYYY-MM-DDTHH:MM:SSZ". */
void gw_window_format_iso(int64_t t_s, char out[GW_ISO_LEN]);

/*
 * The range a read request asks for: either window (a rolling duration ending with the
 * current minute, i.e. to = floor_1m(now) + 60, from = to - duration) or from and to (both
 * ISO-8601; to defaults to now when only from is given). window and from are mutually
 * exclusive; one of them is required. Parameters that are NULL or "" count as absent. Error
 * messages name the parameter ("window", "from", "to").
 */
int gw_window_resolve(const char *window, const char *from, const char *to, int64_t now_s,
                      int64_t *from_s, int64_t *to_s, char *err, size_t errlen);

/* Most points of one time series (GW_RES_1M over a day is 1,440). */
#define GW_SERIES_MAX_POINTS 1500

/* Parses a series step "1m" | "1h" | "1d" (a resolution the buckets are kept at). */
int gw_res_parse(const char *s, gw_resolution *out, char *err, size_t errlen);

/*
 * The points of a time series over [from_s, to_s) at step r: one bucket of resolution r
 * each, from floor(from_s) up to the last bucket that starts before to_s (*npoints, possibly
 * 0), the first starting at *first_s. -EINVAL, with a message naming `step`, when there would
 * be more than GW_SERIES_MAX_POINTS, or when the first bucket is no longer kept at now_s
 * (the message says which coarser step still covers the range).
 */
int gw_window_series(int64_t from_s, int64_t to_s, gw_resolution r, int64_t now_s, int64_t *first_s,
                     size_t *npoints, char *err, size_t errlen);

#endif
