/*
 * Bucket arithmetic, window composition and time parsing (see window.h).
 */
#include "goodwill/window.h"

#include "goodwill/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const int64_t res_seconds[GW_RES_COUNT] = {60, 3600, 86400};
static const int64_t res_retention_s[GW_RES_COUNT] = {2 * 86400, 35 * 86400, GW_WINDOW_MAX_S};
static const char *const res_names[GW_RES_COUNT] = {"1m", "1h", "1d"};

int64_t gw_res_seconds(gw_resolution r) {
  return res_seconds[r];
}

int64_t gw_res_retention_s(gw_resolution r) {
  return res_retention_s[r];
}

const char *gw_res_name(gw_resolution r) {
  return res_names[r];
}

int64_t gw_window_floor(int64_t t_s, gw_resolution r) {
  int64_t size = res_seconds[r];
  int64_t q = t_s / size;
  /* C division truncates towards zero; times before 1970 must still floor downwards. */
  if (t_s % size != 0 && t_s < 0)
    q--;
  return q * size;
}

int64_t gw_window_ceil(int64_t t_s, gw_resolution r) {
  int64_t f = gw_window_floor(t_s, r);
  return f == t_s ? f : f + res_seconds[r];
}

bool gw_window_bucket_retained(gw_resolution r, int64_t bucket_start_s, int64_t now_s) {
  return now_s < bucket_start_s + res_retention_s[r];
}

static void push(gw_window_composition *out, gw_resolution r, int64_t start_s) {
  /* The clamps in gw_window_compose bound the count; this guard only protects memory. */
  if (out->nbuckets < GW_WINDOW_MAX_BUCKETS) {
    out->buckets[out->nbuckets].res = r;
    out->buckets[out->nbuckets].start_s = start_s;
    out->nbuckets++;
  }
}

/* Covers [lo, hi) (both minute-aligned) with whole buckets of resolution r where they fit,
 * and finer ones for the remainders at both edges, in time order. */
static void cover(gw_window_composition *out, int64_t lo, int64_t hi, gw_resolution r) {
  if (lo >= hi)
    return;
  if (r == GW_RES_1M) {
    for (int64_t x = lo; x < hi; x += 60)
      push(out, GW_RES_1M, x);
    return;
  }
  int64_t a = gw_window_ceil(lo, r), b = gw_window_floor(hi, r);
  if (a >= b) {
    cover(out, lo, hi, (gw_resolution)(r - 1));
    return;
  }
  cover(out, lo, a, (gw_resolution)(r - 1));
  for (int64_t x = a; x < b; x += res_seconds[r])
    push(out, r, x);
  cover(out, b, hi, (gw_resolution)(r - 1));
}

static int64_t max64(int64_t a, int64_t b) {
  return a > b ? a : b;
}

int gw_window_compose(int64_t from_s, int64_t to_s, int64_t now_s, gw_window_composition *out) {
  out->nbuckets = 0;
  out->flags = 0;
  if (to_s < from_s)
    return -EINVAL;
  int64_t f = gw_window_floor(from_s, GW_RES_1M);
  int64_t t = gw_window_ceil(to_s, GW_RES_1M);

  /* No bucket can start after the last minute a record may carry (now + the future
   * tolerance), and no day older than the day retention exists. */
  int64_t max_to = gw_window_floor(now_s + GW_WINDOW_FUTURE_S, GW_RES_1M) + 60;
  if (t > max_to) {
    t = max_to;
    out->flags |= GW_WINDOW_CLAMPED;
  }
  int64_t min_from = gw_window_ceil(now_s - res_retention_s[GW_RES_1D] + 1, GW_RES_1D);
  if (f < min_from) {
    f = min_from;
    out->flags |= GW_WINDOW_CLAMPED;
  }
  if (t <= f) {
    out->from_s = f;
    out->to_s = f > t ? f : t;
    return 0;
  }

  /* From edge: the oldest bucket of a finer resolution the composition uses there is the one
   * starting at f; if it has expired, start at the enclosing coarser bucket instead. */
  for (int r = GW_RES_1M; r < GW_RES_1D; r++) {
    gw_resolution res = (gw_resolution)r, up = (gw_resolution)(r + 1);
    if (gw_window_floor(f, up) != f && !gw_window_bucket_retained(res, f, now_s)) {
      f = gw_window_floor(f, up);
      out->flags |= GW_WINDOW_WIDENED;
    }
  }
  /* To edge: the finer buckets there start at the coarser boundary below t (or at f when the
   * range does not reach back that far); widen t to the coarser grid when that has expired. */
  for (int r = GW_RES_1M; r < GW_RES_1D; r++) {
    gw_resolution res = (gw_resolution)r, up = (gw_resolution)(r + 1);
    if (gw_window_floor(t, up) == t)
      continue;
    int64_t oldest = max64(gw_window_floor(t, up), f);
    if (!gw_window_bucket_retained(res, oldest, now_s)) {
      t = gw_window_ceil(t, up);
      out->flags |= GW_WINDOW_WIDENED;
    }
  }
  out->from_s = f;
  out->to_s = t;
  cover(out, f, t, GW_RES_1D);
  return 0;
}

int gw_window_parse_duration(const char *s, int64_t *out_s, char *err, size_t errlen) {
  if (s == NULL || *s == '\0') {
    gw_errf(err, errlen, "empty duration (use e.g. 15m, 24h, 30d)");
    return -EINVAL;
  }
  int64_t n = 0;
  const char *p = s;
  while (*p >= '0' && *p <= '9') {
    n = n * 10 + (*p - '0');
    if (n > GW_WINDOW_MAX_S) {
      gw_errf(err, errlen, "\"%s\" is longer than the 400 days kept", s);
      return -EINVAL;
    }
    p++;
  }
  int64_t unit = 0;
  if (p == s || p[0] == '\0' || p[1] != '\0') {
    gw_errf(err, errlen, "\"%s\" is not <n>m, <n>h or <n>d (e.g. 15m, 24h, 30d)", s);
    return -EINVAL;
  }
  switch (p[0]) {
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  default:
    gw_errf(err, errlen, "\"%s\" has an unknown unit (use m, h or d)", s);
    return -EINVAL;
  }
  if (n < 1) {
    gw_errf(err, errlen, "\"%s\" must be at least 1", s);
    return -EINVAL;
  }
  if (n * unit > GW_WINDOW_MAX_S) {
    gw_errf(err, errlen, "\"%s\" is longer than the 400 days kept", s);
    return -EINVAL;
  }
  *out_s = n * unit;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date: H. Hinnant's days_from_civil,
 * http://howardhinnant.github.io/date_algorithms.html (public domain algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse, civil_from_days, from the same source. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#define ISO_BAD "\"%s\" is not an ISO-8601 time (2026-11-23T10:00:00Z)"

static bool digits(const char *p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return false;
    v = v * 10 + (p[i] - '0');
  }
  *out = v;
  return true;
}

static bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int gw_window_parse_iso(const char *s, int64_t *out_s, char *err, size_t errlen) {
  int y, mo, d, h = 0, mi = 0, se = 0;
  if (s == NULL || strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, 2, &d)) {
    gw_errf(err, errlen, ISO_BAD, s ? s : "");
    return -EINVAL;
  }
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y))) {
    gw_errf(err, errlen, "\"%s\" is not a valid date (years from 1970)", s);
    return -EINVAL;
  }
  const char *p = s + 10;
  int64_t offset_s = 0;
  if (*p != '\0') {
    if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2, &h) || p[3] != ':' ||
        !digits(p + 4, 2, &mi)) {
      gw_errf(err, errlen, ISO_BAD, s);
      return -EINVAL;
    }
    p += 6;
    if (*p == ':') {
      if (!digits(p + 1, 2, &se)) {
        gw_errf(err, errlen, ISO_BAD, s);
        return -EINVAL;
      }
      p += 3;
      if (*p == '.' || *p == ',') {
        p++;
        if (*p < '0' || *p > '9') {
          gw_errf(err, errlen, ISO_BAD, s);
          return -EINVAL;
        }
        while (*p >= '0' && *p <= '9')
          p++;
      }
    }
    if (h > 23 || mi > 59 || se > 60) {
      gw_errf(err, errlen, "\"%s\" has an invalid time of day", s);
      return -EINVAL;
    }
    if (se == 60)
      se = 59; /* a leap second counts as the last second of its minute */
    if (*p == 'Z' || *p == 'z') {
      p++;
    } else if (*p == '+' || *p == '-') {
      int oh, om;
      if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59) {
        gw_errf(err, errlen, "\"%s\" has an invalid zone offset (use Z or +HH:MM)", s);
        return -EINVAL;
      }
      offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
      p += 6;
    } else {
      gw_errf(err, errlen, "\"%s\" needs a zone: Z or +HH:MM", s);
      return -EINVAL;
    }
    if (*p != '\0') {
      gw_errf(err, errlen, ISO_BAD, s);
      return -EINVAL;
    }
  }
  *out_s =
      days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - offset_s;
  return 0;
}

void gw_window_format_iso(int64_t t_s, char out[GW_ISO_LEN]) {
  int64_t days = t_s / 86400, rem = t_s % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999) {
    snprintf(out, GW_ISO_LEN, "%s", y < 0 ? "0000-01-01T00:00:00Z" : "9999-12-31T23:59:59Z");
    return;
  }
  /* The compiler cannot see that every field fits its width: format into a roomy buffer. */
  char tmp[64];
  snprintf(tmp, sizeof(tmp), "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)y, m, d, (int)(rem / 3600),
           (int)(rem % 3600 / 60), (int)(rem % 60));
  memcpy(out, tmp, GW_ISO_LEN - 1);
  out[GW_ISO_LEN - 1] = '\0';
}

static bool present(const char *s) {
  return s != NULL && *s != '\0';
}

int gw_window_resolve(const char *window, const char *from, const char *to, int64_t now_s,
                      int64_t *from_s, int64_t *to_s, char *err, size_t errlen) {
  char inner[160];
  int rc;
  if (present(window) && (present(from) || present(to))) {
    gw_errf(err, errlen, "window: give either window or from/to, not both");
    return -EINVAL;
  }
  if (present(window)) {
    int64_t dur;
    rc = gw_window_parse_duration(window, &dur, inner, sizeof(inner));
    if (rc < 0) {
      gw_errf(err, errlen, "%s: %s", "window", inner);
      return rc;
    }
    *to_s = gw_window_floor(now_s, GW_RES_1M) + 60;
    *from_s = *to_s - dur;
    return 0;
  }
  if (!present(from)) {
    gw_errf(err, errlen, "window: required (e.g. window=24h, or from=2026-11-23T00:00:00Z)");
    return -EINVAL;
  }
  rc = gw_window_parse_iso(from, from_s, inner, sizeof(inner));
  if (rc < 0) {
    gw_errf(err, errlen, "%s: %s", "from", inner);
    return rc;
  }
  if (present(to)) {
    rc = gw_window_parse_iso(to, to_s, inner, sizeof(inner));
    if (rc < 0) {
      gw_errf(err, errlen, "%s: %s", "to", inner);
      return rc;
    }
  } else {
    *to_s = now_s;
  }
  if (*to_s <= *from_s) {
    gw_errf(err, errlen, "to: must be later than from");
    return -EINVAL;
  }
  if (*to_s - *from_s > GW_WINDOW_MAX_S + 86400) {
    gw_errf(err, errlen, "from: the range is longer than the 400 days kept");
    return -EINVAL;
  }
  return 0;
}

int gw_res_parse(const char *s, gw_resolution *out, char *err, size_t errlen) {
  for (int r = 0; s != NULL && r < GW_RES_COUNT; r++) {
    if (strcmp(s, res_names[r]) == 0) {
      *out = (gw_resolution)r;
      return 0;
    }
  }
  gw_errf(err, errlen, "step: \"%s\" is not one of 1m, 1h, 1d", s ? s : "");
  return -EINVAL;
}

int gw_window_series(int64_t from_s, int64_t to_s, gw_resolution r, int64_t now_s, int64_t *first_s,
                     size_t *npoints, char *err, size_t errlen) {
  int64_t size = res_seconds[r];
  int64_t first = gw_window_floor(from_s, r);
  int64_t n = to_s > from_s ? (to_s - first + size - 1) / size : 0;
  *first_s = first;
  *npoints = 0;
  if (n > GW_SERIES_MAX_POINTS) {
    gw_errf(err, errlen,
            "step: %s over this range gives %lld points, at most %d: use a coarser step or a "
            "shorter range",
            res_names[r], (long long)n, GW_SERIES_MAX_POINTS);
    return -EINVAL;
  }
  if (n > 0 && !gw_window_bucket_retained(r, first, now_s)) {
    int coarser = (int)r + 1;
    while (coarser < GW_RES_COUNT &&
           !gw_window_bucket_retained((gw_resolution)coarser,
                                      gw_window_floor(from_s, (gw_resolution)coarser), now_s))
      coarser++;
    if (coarser < GW_RES_COUNT)
      gw_errf(err, errlen,
              "step: %s buckets are kept for %lld days and this range starts "
              "earlier: use step=%s",
              res_names[r], (long long)(res_retention_s[r] / 86400), res_names[coarser]);
    else
      gw_errf(err, errlen, "from: the range starts before the 400 days kept");
    return -EINVAL;
  }
  *npoints = (size_t)n;
  return 0;
}
