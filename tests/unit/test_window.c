#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "goodwill/window.h"
#include "gw_test.h"

/* 2026-11-23T10:00:00Z */
#define T0 1795428000LL

static gw_window_composition comp; /* large: keep it off the stack */

static void test_floor_and_ceil(void) {
  CHECK_INT_EQ(gw_window_floor(T0 + 59, GW_RES_1M), T0);
  CHECK_INT_EQ(gw_window_floor(T0 + 3599, GW_RES_1H), T0);
  CHECK_INT_EQ(gw_window_floor(T0 + 3600 * 13, GW_RES_1D), T0 - 10 * 3600);
  CHECK_INT_EQ(gw_window_floor(-1, GW_RES_1M), -60);
  CHECK_INT_EQ(gw_window_ceil(T0 + 1, GW_RES_1M), T0 + 60);
  CHECK_INT_EQ(gw_window_ceil(T0, GW_RES_1H), T0);
  CHECK_STR_EQ(gw_res_name(GW_RES_1H), "1h");
  CHECK_INT_EQ(gw_res_retention_s(GW_RES_1M), 2 * 86400);
  CHECK_INT_EQ(gw_res_retention_s(GW_RES_1H), 35 * 86400);
  CHECK_INT_EQ(gw_res_retention_s(GW_RES_1D), 400 * 86400);
  /* A 1m bucket lives exactly two days after its start. */
  CHECK(gw_window_bucket_retained(GW_RES_1M, T0, T0 + 2 * 86400 - 1));
  CHECK(!gw_window_bucket_retained(GW_RES_1M, T0, T0 + 2 * 86400));
}

static void test_iso_parse_and_format(void) {
  int64_t t = 0;
  char err[160], out[GW_ISO_LEN];
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T10:00:00Z", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0);
  gw_window_format_iso(t, out);
  CHECK_STR_EQ(out, "2026-11-23T10:00:00Z");
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T11:30:00+01:30", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0);
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T10:00:00.999Z", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0);
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T10:00Z", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0);
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0 - 10 * 3600);
  CHECK_INT_EQ(gw_window_parse_iso("1970-01-01T00:00:00Z", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, 0);
  CHECK_INT_EQ(gw_window_parse_iso("2024-02-29T00:00:00Z", &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, 1709164800LL);
  gw_window_format_iso(1709164800LL + 86399, out);
  CHECK_STR_EQ(out, "2024-02-29T23:59:59Z");

  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T10:00:00", &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "needs a zone");
  CHECK_INT_EQ(gw_window_parse_iso("2025-02-29", &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "not a valid date");
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T24:00:00Z", &t, err, sizeof(err)), -EINVAL);
  CHECK_INT_EQ(gw_window_parse_iso("yesterday", &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "\"yesterday\" is not an ISO-8601 time");
  CHECK_INT_EQ(gw_window_parse_iso("2026-11-23T10:00:00Zjunk", &t, err, sizeof(err)), -EINVAL);

  /* Round trip over many days, including leap years and century boundaries. */
  for (int64_t d = 0; d < 200000; d += 7) {
    int64_t back = -1;
    gw_window_format_iso(d * 86400 + 3723, out);
    CHECK_INT_EQ(gw_window_parse_iso(out, &back, err, sizeof(err)), 0);
    if (back != d * 86400 + 3723) {
      CHECK_INT_EQ(back, d * 86400 + 3723);
      break;
    }
  }
}

static void test_durations(void) {
  int64_t s = 0;
  char err[160];
  const char *ok[] = {"5m", "15m", "1h", "24h", "7d", "30d", "90d", "365d", "400d", "90m"};
  const int64_t want[] = {300,        900,        3600,        86400,       7 * 86400,
                          30 * 86400, 90 * 86400, 365 * 86400, 400 * 86400, 5400};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    CHECK_INT_EQ(gw_window_parse_duration(ok[i], &s, err, sizeof(err)), 0);
    CHECK_INT_EQ(s, want[i]);
  }
  const char *bad[] = {"", "0m", "5", "m", "5w", "5mm", "-5m", "401d", "99999999999999999999d"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    CHECK_INT_EQ(gw_window_parse_duration(bad[i], &s, err, sizeof(err)), -EINVAL);
    CHECK(err[0] != '\0');
  }
}

static void test_resolve(void) {
  int64_t f, t;
  char err[200];
  CHECK_INT_EQ(gw_window_resolve("1h", NULL, NULL, T0 + 25, &f, &t, err, sizeof(err)), 0);
  CHECK_INT_EQ(t, T0 + 60); /* the current minute is included */
  CHECK_INT_EQ(f, T0 + 60 - 3600);
  CHECK_INT_EQ(gw_window_resolve(NULL, "2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z", T0, &f, &t,
                                 err, sizeof(err)),
               0);
  CHECK_INT_EQ(f, T0 - 3600);
  CHECK_INT_EQ(t, T0);
  CHECK_INT_EQ(gw_window_resolve("", "2026-11-23T09:00:00Z", "", T0 + 5, &f, &t, err, sizeof(err)),
               0);
  CHECK_INT_EQ(t, T0 + 5);

  CHECK_INT_EQ(gw_window_resolve(NULL, NULL, NULL, T0, &f, &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "window");
  CHECK_INT_EQ(gw_window_resolve("2x", NULL, NULL, T0, &f, &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "window: \"2x\"");
  CHECK_INT_EQ(gw_window_resolve("1h", "2026-11-23", NULL, T0, &f, &t, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "not both");
  CHECK_INT_EQ(gw_window_resolve(NULL, "2026-11-23", "soon", T0, &f, &t, err, sizeof(err)),
               -EINVAL);
  CHECK_STR_CONTAINS(err, "to: \"soon\"");
  CHECK_INT_EQ(gw_window_resolve(NULL, "2026-11-23T10:00:00Z", "2026-11-23T09:00:00Z", T0, &f, &t,
                                 err, sizeof(err)),
               -EINVAL);
  CHECK_STR_CONTAINS(err, "to: must be later than from");
}

static size_t count_res(const gw_window_composition *c, gw_resolution r) {
  size_t n = 0;
  for (size_t i = 0; i < c->nbuckets; i++)
    n += c->buckets[i].res == r;
  return n;
}

static void test_compose_examples(void) {
  /* 24h ending with the minute 10:00 at an hour boundary: 23 hours and 60 minutes would be
   * wrong; the window [10:01 yesterday, 10:01 today) is 59 minutes, 23 hours, 1 minute. */
  int64_t now = T0 + 30;
  CHECK_INT_EQ(gw_window_compose(T0 + 60 - 86400, T0 + 60, now, &comp), 0);
  CHECK_INT_EQ(comp.flags, 0);
  CHECK_INT_EQ(comp.from_s, T0 + 60 - 86400);
  CHECK_INT_EQ(comp.to_s, T0 + 60);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1M), 60);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1H), 23);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1D), 0);

  /* A whole UTC day is one day bucket. */
  int64_t day = gw_window_floor(T0, GW_RES_1D);
  CHECK_INT_EQ(gw_window_compose(day - 86400, day, now, &comp), 0);
  CHECK_INT_EQ(comp.nbuckets, 1);
  CHECK_INT_EQ(comp.buckets[0].res, GW_RES_1D);
  CHECK_INT_EQ(comp.buckets[0].start_s, day - 86400);

  /* 365d: its first minutes and hours have expired, so the start widens to the day that
   * holds it: 365 days, then 10 hours and 1 minute of today. */
  CHECK_INT_EQ(gw_window_compose(T0 + 60 - 365 * 86400, T0 + 60, now, &comp), 0);
  CHECK_INT_EQ(comp.flags, GW_WINDOW_WIDENED);
  CHECK_INT_EQ(comp.from_s, day - 365 * 86400);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1D), 365);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1H), 10);
  CHECK_INT_EQ(count_res(&comp, GW_RES_1M), 1);

  /* Ten days ago, 10:17 to 10:43: the minutes have expired, so the range widens to the hour
   * that holds it. */
  CHECK_INT_EQ(gw_window_compose(T0 - 10 * 86400 + 17 * 60, T0 - 10 * 86400 + 43 * 60, now, &comp),
               0);
  CHECK(comp.flags & GW_WINDOW_WIDENED);
  CHECK_INT_EQ(comp.nbuckets, 1);
  CHECK_INT_EQ(comp.buckets[0].res, GW_RES_1H);
  CHECK_INT_EQ(comp.from_s, T0 - 10 * 86400);
  CHECK_INT_EQ(comp.to_s, T0 - 10 * 86400 + 3600);

  /* Two years ago: nothing is kept; the result is empty and says it was clamped. */
  CHECK_INT_EQ(gw_window_compose(T0 - 730 * 86400, T0 - 729 * 86400, now, &comp), 0);
  CHECK_INT_EQ(comp.nbuckets, 0);
  CHECK(comp.flags & GW_WINDOW_CLAMPED);

  CHECK_INT_EQ(gw_window_compose(T0, T0 - 60, now, &comp), -EINVAL);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {
  /* xorshift64*: deterministic, so a failure reproduces. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

/* Property: for random ranges and clocks, the buckets are aligned, exist at now, are in time
 * order and tile [from_s, to_s) with no gap and no overlap (so every minute of the effective
 * range is counted exactly once), each bucket is the coarsest that fits, and the effective
 * range differs from the request only when the flags say so, and only outwards when widened. */
static void test_compose_property(void) {
  int failures = 0;
  for (int iter = 0; iter < 20000 && failures < 5; iter++) {
    int64_t now = T0 + (int64_t)(rng() % (86400 * 30));
    int64_t span_max = (iter % 4 == 0) ? 460LL * 86400 : (iter % 4 == 1) ? 3 * 86400 : 7200;
    int64_t to = now + 600 - (int64_t)(rng() % (uint64_t)(span_max + 600));
    int64_t from = to - (int64_t)(rng() % (uint64_t)span_max);
    if (gw_window_compose(from, to, now, &comp) != 0) {
      CHECK(!"compose failed");
      failures++;
      continue;
    }
    int ok = 1;
    int64_t at = comp.from_s;
    for (size_t i = 0; i < comp.nbuckets && ok; i++) {
      const gw_window_bucket *b = &comp.buckets[i];
      int64_t size = gw_res_seconds(b->res);
      ok = ok && b->start_s == at && gw_window_floor(b->start_s, b->res) == b->start_s;
      ok = ok && gw_window_bucket_retained(b->res, b->start_s, now);
      if (b->res != GW_RES_1D) {
        /* Coarsest: the enclosing coarser bucket must not fit inside the range. */
        gw_resolution up = (gw_resolution)(b->res + 1);
        int64_t ub = gw_window_floor(b->start_s, up);
        int64_t uend = ub + gw_res_seconds(up);
        ok = ok &&
             !(ub >= comp.from_s && uend <= comp.to_s && gw_window_bucket_retained(up, ub, now));
      }
      at += size;
    }
    ok = ok && (comp.nbuckets == 0 ? comp.to_s <= comp.from_s || comp.to_s == comp.from_s
                                   : at == comp.to_s);
    if (!(comp.flags & GW_WINDOW_CLAMPED)) {
      ok = ok && comp.from_s <= gw_window_floor(from, GW_RES_1M);
      ok = ok && (comp.nbuckets == 0 || comp.to_s >= gw_window_ceil(to, GW_RES_1M));
    }
    if (comp.flags == 0) {
      ok = ok && comp.from_s == gw_window_floor(from, GW_RES_1M);
      ok = ok && (comp.nbuckets == 0 || comp.to_s == gw_window_ceil(to, GW_RES_1M));
    }
    if (!ok) {
      fprintf(stderr,
              "property failed: from=%lld to=%lld now=%lld eff=[%lld,%lld) flags=%u n=%zu\n",
              (long long)from, (long long)to, (long long)now, (long long)comp.from_s,
              (long long)comp.to_s, comp.flags, comp.nbuckets);
      CHECK(ok);
      failures++;
    }
  }
}

/* Rolling windows within the minute retention are exact to the minute; longer ones start
 * at the hour (within the hour retention) or the day that holds their first minute. */
static void test_recent_windows_are_exact(void) {
  const char *wins[] = {"5m", "15m", "1h", "24h", "47h", "7d", "30d", "90d", "365d"};
  for (size_t i = 0; i < sizeof(wins) / sizeof(wins[0]); i++) {
    int64_t f, t;
    char err[160];
    int64_t now = T0 + 1234567;
    CHECK_INT_EQ(gw_window_resolve(wins[i], NULL, NULL, now, &f, &t, err, sizeof(err)), 0);
    CHECK_INT_EQ(gw_window_compose(f, t, now, &comp), 0);
    int64_t want_from = f;
    if (t - f > 2 * 86400)
      want_from = gw_window_floor(f, t - f > 35 * 86400 ? GW_RES_1D : GW_RES_1H);
    if (comp.from_s != want_from)
      fprintf(stderr, "window %s: flags %u\n", wins[i], comp.flags);
    CHECK_INT_EQ(comp.from_s, want_from);
    CHECK_INT_EQ(comp.to_s, t);
    CHECK_INT_EQ(comp.flags, want_from == f ? 0u : (unsigned)GW_WINDOW_WIDENED);
  }
}

static void test_series(void) {
  char err[200];
  gw_resolution r;
  CHECK_INT_EQ(gw_res_parse("1h", &r, err, sizeof(err)), 0);
  CHECK_INT_EQ(r, GW_RES_1H);
  CHECK_INT_EQ(gw_res_parse("2h", &r, err, sizeof(err)), -EINVAL);
  CHECK_STR_EQ(err, "step: \"2h\" is not one of 1m, 1h, 1d");

  const int64_t now = 1795435200 + 20 * 60; /* 2026-11-23T12:20:00Z */
  int64_t first;
  size_t n;
  /* 24 hours at 1h, from a time inside an hour: the first point is that hour. */
  CHECK_INT_EQ(gw_window_series(now - 86400, now, GW_RES_1H, now, &first, &n, err, sizeof(err)), 0);
  CHECK_INT_EQ(first, gw_window_floor(now - 86400, GW_RES_1H));
  CHECK_INT_EQ(n, 25); /* 08:00 yesterday .. 08:00 today, the current hour partly */
  /* An empty range has no points and is no error. */
  CHECK_INT_EQ(gw_window_series(now, now, GW_RES_1D, now, &first, &n, err, sizeof(err)), 0);
  CHECK_INT_EQ(n, 0);
  /* Too many points. */
  CHECK_INT_EQ(gw_window_series(now - 2 * 86400, now, GW_RES_1M, now, &first, &n, err, sizeof(err)),
               -EINVAL);
  CHECK_STR_CONTAINS(err, "step: 1m over this range gives 2880 points, at most 1500");
  /* Minutes are kept 2 days: a range starting 3 days ago needs a coarser step. */
  CHECK_INT_EQ(gw_window_series(now - 3 * 86400, now - 3 * 86400 + 3600, GW_RES_1M, now, &first, &n,
                                err, sizeof(err)),
               -EINVAL);
  CHECK_STR_EQ(err, "step: 1m buckets are kept for 2 days and this range starts earlier: use "
                    "step=1h");
}

int main(void) {
  GW_RUN(test_floor_and_ceil);
  GW_RUN(test_iso_parse_and_format);
  GW_RUN(test_durations);
  GW_RUN(test_resolve);
  GW_RUN(test_compose_examples);
  GW_RUN(test_series);
  GW_RUN(test_compose_property);
  GW_RUN(test_recent_windows_are_exact);
  return gw_test_finish();
}
