/* Prometheus registry and text exposition format 0.0.4 (see metrics.h). */
#include "goodwill/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

const double gw_metrics_latency_buckets_s[GW_METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t gw_metrics_latency_buckets_count = GW_METRICS_LATENCY_BUCKETS;

struct gw_metric {
  gw_metric_family *family;
  const char **label_values; /* nlabels copies, stored in the same allocation */
  double value;              /* counter or gauge */
  double sum;                /* histogram: sum of observations */
  uint64_t count;            /* histogram: number of observations */
  uint64_t *bucket_counts;   /* histogram: per bucket (not cumulative), nbuckets + 1 for +Inf */
};

struct gw_metric_family {
  char *name;
  char *help;
  gw_metric_type type;
  char **label_names;
  size_t nlabels;
  double *buckets;
  size_t nbuckets;
  size_t max_series;
  gw_metric **series; /* in creation order, for rendering */
  size_t nseries, series_cap;
  gw_hash_table table; /* series by label values */
  gw_metric *overflow; /* the "_other" series, outside the cap and the table */
};

typedef struct collect_hook {
  gw_metrics_collect_cb cb;
  void *opaque;
} collect_hook;

struct gw_metrics {
  gw_metric_family **families;
  size_t nfamilies, families_cap;
  collect_hook *hooks;
  size_t nhooks, hooks_cap;
};

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  char *p = xcalloc(n + 1, 1);
  memcpy(p, s, n);
  return p;
}

/* Grows *arr (of element size `size`) so that it holds at least need elements. */
static void grow(void *arr, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) {
    return;
  }
  size_t c = *cap ? *cap * 2 : 8;
  while (c < need) {
    c *= 2;
  }
  void *p = realloc(*(void **)arr, c * size);
  if (p == NULL) {
    abort();
  }
  *(void **)arr = p;
  *cap = c;
}

int gw_metrics_new(gw_metrics **out) {
  *out = xcalloc(1, sizeof **out);
  return 0;
}

static void family_free(gw_metric_family *f) {
  for (size_t i = 0; i < f->nseries; i++) {
    free(f->series[i]);
  }
  free(f->overflow);
  free(f->series);
  gw_hash_table_free(&f->table);
  for (size_t i = 0; i < f->nlabels; i++) {
    free(f->label_names[i]);
  }
  free(f->label_names);
  free(f->buckets);
  free(f->name);
  free(f->help);
  free(f);
}

void gw_metrics_free(gw_metrics *m) {
  if (m == NULL) {
    return;
  }
  for (size_t i = 0; i < m->nfamilies; i++) {
    family_free(m->families[i]);
  }
  free(m->families);
  free(m->hooks);
  free(m);
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. */
static bool valid_name(const char *s, bool colon_ok) {
  if (s == NULL || *s == '\0') {
    return false;
  }
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colon_ok && c == ':') || (p != s && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

/* The sample names a family's lines use, which must not clash with another family's. */
static size_t sample_names(const char *name, gw_metric_type type, char out[4][256]) {
  snprintf(out[0], 256, "%s", name);
  if (type != GW_METRIC_HISTOGRAM) {
    return 1;
  }
  snprintf(out[1], 256, "%s_bucket", name);
  snprintf(out[2], 256, "%s_sum", name);
  snprintf(out[3], 256, "%s_count", name);
  return 4;
}

static bool names_clash(const gw_metrics *m, const gw_metric_family_def *def) {
  char mine[4][256], theirs[4][256];
  size_t nm = sample_names(def->name, def->type, mine);
  for (size_t i = 0; i < m->nfamilies; i++) {
    const gw_metric_family *f = m->families[i];
    size_t nt = sample_names(f->name, f->type, theirs);
    for (size_t a = 0; a < nm; a++) {
      for (size_t b = 0; b < nt; b++) {
        if (strcmp(mine[a], theirs[b]) == 0) {
          return true;
        }
      }
    }
  }
  return false;
}

/* Label value i as stored: a missing value (or list) is the empty string. */
static const char *label_value(const char *const *values, size_t i) {
  return values != NULL && values[i] != NULL ? values[i] : "";
}

/* FNV-1a, which goodwill/hash.h has for label values; the separator after each value keeps
 * ("ab","c") apart from ("a","bc"). */
static uint64_t hash_labels(const char *const *values, size_t n) {
  uint64_t h = GW_FNV64_BASIS;
  for (size_t i = 0; i < n; i++) {
    h = gw_fnv64_update_field(h, label_value(values, i));
  }
  return h;
}

static gw_metric *series_alloc(gw_metric_family *f, const char *const *values) {
  size_t nb = f->type == GW_METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
  size_t size = sizeof(gw_metric) + nb * sizeof(uint64_t) + f->nlabels * sizeof(char *);
  for (size_t i = 0; i < f->nlabels; i++) {
    size += strlen(label_value(values, i)) + 1;
  }
  /* One allocation per series: the struct, bucket counts, label pointers, label text. The
   * struct comes first and everything after it is 8-byte sized, so alignment holds. */
  char *block = xcalloc(1, size);
  gw_metric *s = (gw_metric *)block;
  char *p = block + sizeof(gw_metric);
  s->family = f;
  s->bucket_counts = nb ? (uint64_t *)p : NULL;
  p += nb * sizeof(uint64_t);
  s->label_values = (const char **)p;
  p += f->nlabels * sizeof(char *);
  for (size_t i = 0; i < f->nlabels; i++) {
    const char *v = label_value(values, i);
    size_t n = strlen(v) + 1;
    memcpy(p, v, n);
    s->label_values[i] = p;
    p += n;
  }
  return s;
}

/* Whether series s has the label values key points to (a const char *const *). */
static bool labels_equal(const void *item, const void *key) {
  const gw_metric *s = item;
  const char *const *values = key;
  for (size_t i = 0; i < s->family->nlabels; i++) {
    if (strcmp(s->label_values[i], label_value(values, i)) != 0) {
      return false;
    }
  }
  return true;
}

gw_metric *gw_metrics_series(gw_metric_family *f, const char *const *label_values) {
  if (f == NULL) {
    return NULL;
  }
  uint64_t h = hash_labels(label_values, f->nlabels);
  gw_metric *s = gw_hash_table_find(&f->table, h, labels_equal, label_values);
  if (s != NULL) {
    return s;
  }
  if (f->max_series > 0 && f->nseries >= f->max_series && f->nlabels > 0) {
    if (f->overflow == NULL) {
      const char **other = xcalloc(f->nlabels, sizeof *other);
      for (size_t i = 0; i < f->nlabels; i++) {
        other[i] = "_other";
      }
      f->overflow = series_alloc(f, other);
      free(other);
    }
    return f->overflow;
  }
  s = series_alloc(f, label_values);
  grow(&f->series, &f->series_cap, f->nseries + 1, sizeof *f->series);
  f->series[f->nseries++] = s;
  if (gw_hash_table_insert(&f->table, h, s) != 0) {
    abort();
  }
  return s;
}

void gw_metrics_family_clear(gw_metric_family *f) {
  if (f == NULL) {
    return;
  }
  for (size_t i = 0; i < f->nseries; i++) {
    free(f->series[i]);
  }
  f->nseries = 0;
  free(f->overflow);
  f->overflow = NULL;
  gw_hash_table_clear(&f->table);
}

int gw_metrics_register(gw_metrics *m, const gw_metric_family_def *def, gw_metric_family **out) {
  if (out != NULL) {
    *out = NULL;
  }
  if (m == NULL || def == NULL || !valid_name(def->name, true) || strlen(def->name) > 200 ||
      (def->type != GW_METRIC_COUNTER && def->type != GW_METRIC_GAUGE &&
       def->type != GW_METRIC_HISTOGRAM) ||
      (def->nlabels > 0 && def->label_names == NULL)) {
    return -EINVAL;
  }
  for (size_t i = 0; i < def->nlabels; i++) {
    const char *ln = def->label_names[i];
    /* Names starting with "__" are reserved for Prometheus itself; "le" is the histogram's. */
    if (!valid_name(ln, false) || strncmp(ln, "__", 2) == 0 ||
        (def->type == GW_METRIC_HISTOGRAM && strcmp(ln, "le") == 0)) {
      return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(ln, def->label_names[j]) == 0) {
        return -EINVAL;
      }
    }
  }
  size_t nbuckets = 0;
  if (def->type == GW_METRIC_HISTOGRAM) {
    if (def->nbuckets > 0 && def->buckets == NULL) {
      return -EINVAL;
    }
    nbuckets = def->nbuckets;
    /* A trailing +Inf is implied; accept it when given rather than print it twice. */
    if (nbuckets > 0 && isinf(def->buckets[nbuckets - 1]) && def->buckets[nbuckets - 1] > 0) {
      nbuckets--;
    }
    for (size_t i = 0; i < nbuckets; i++) {
      if (!isfinite(def->buckets[i]) || (i > 0 && !(def->buckets[i] > def->buckets[i - 1]))) {
        return -EINVAL;
      }
    }
  }
  if (names_clash(m, def)) {
    return -EEXIST;
  }
  gw_metric_family *f = xcalloc(1, sizeof *f);
  f->name = xstrdup(def->name);
  f->help = xstrdup(def->help != NULL ? def->help : "");
  f->type = def->type;
  f->nlabels = def->nlabels;
  f->label_names = xcalloc(def->nlabels, sizeof *f->label_names);
  for (size_t i = 0; i < def->nlabels; i++) {
    f->label_names[i] = xstrdup(def->label_names[i]);
  }
  f->nbuckets = nbuckets;
  f->buckets = xcalloc(nbuckets, sizeof *f->buckets);
  if (nbuckets > 0) {
    memcpy(f->buckets, def->buckets, nbuckets * sizeof *f->buckets);
  }
  f->max_series = def->max_series;
  grow(&m->families, &m->families_cap, m->nfamilies + 1, sizeof *m->families);
  m->families[m->nfamilies++] = f;
  /* A family without labels has exactly one series; create it so it renders 0 from the
   * start, and a scrape never sees the metric appear late. */
  if (f->nlabels == 0) {
    gw_metrics_series(f, NULL);
  }
  if (out != NULL) {
    *out = f;
  }
  return 0;
}

void gw_metric_add(gw_metric *s, double v) {
  if (s == NULL || s->family->type == GW_METRIC_HISTOGRAM) {
    return;
  }
  /* A counter only goes up: a negative or NaN increment would look like a reset. */
  if (s->family->type == GW_METRIC_COUNTER && !(v >= 0)) {
    return;
  }
  s->value += v;
}

void gw_metric_set(gw_metric *s, double v) {
  /* Counters may be set too, from collect hooks that copy a total kept elsewhere. */
  if (s == NULL || s->family->type == GW_METRIC_HISTOGRAM) {
    return;
  }
  s->value = v;
}

void gw_metric_observe(gw_metric *s, double v) {
  if (s == NULL || s->family->type != GW_METRIC_HISTOGRAM || isnan(v)) {
    return;
  }
  const gw_metric_family *f = s->family;
  /* First bucket whose upper bound is >= v (bounds are inclusive), by binary search. */
  size_t lo = 0, hi = f->nbuckets;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v <= f->buckets[mid]) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  s->bucket_counts[lo]++;
  s->count++;
  s->sum += v;
}

double gw_metric_value(const gw_metric *s) {
  if (s == NULL) {
    return 0;
  }
  return s->family->type == GW_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

gw_metric_family *gw_metrics_family(const gw_metrics *m, const char *name) {
  for (size_t i = 0; i < m->nfamilies; i++) {
    if (strcmp(m->families[i]->name, name) == 0) {
      return m->families[i];
    }
  }
  return NULL;
}

int gw_metrics_register_all(gw_metrics *m, const gw_metric_spec *specs, size_t n, void *owner,
                            const char **failed) {
  for (size_t i = 0; i < n; i++) {
    const gw_metric_spec *sp = &specs[i];
    gw_metric_family *f = NULL;
    int rc = sp->series_at != GW_METRIC_NOWHERE && sp->def.nlabels != 0
                 ? -EINVAL
                 : gw_metrics_register(m, &sp->def, &f);
    if (rc != 0) {
      if (failed != NULL) {
        *failed = sp->def.name;
      }
      return rc;
    }
    if (sp->family_at != GW_METRIC_NOWHERE) {
      memcpy((char *)owner + sp->family_at, &f, sizeof f);
    }
    if (sp->series_at != GW_METRIC_NOWHERE) {
      gw_metric *series = gw_metrics_series(f, NULL);
      memcpy((char *)owner + sp->series_at, &series, sizeof series);
    }
  }
  return 0;
}

int gw_metrics_on_collect(gw_metrics *m, gw_metrics_collect_cb cb, void *opaque) {
  if (m == NULL || cb == NULL) {
    return -EINVAL;
  }
  grow(&m->hooks, &m->hooks_cap, m->nhooks + 1, sizeof *m->hooks);
  m->hooks[m->nhooks++] = (collect_hook){cb, opaque};
  return 0;
}

/* Integers print as integers ("3"), other values with enough digits to read back exactly,
 * and the non-finite ones as Prometheus spells them. */
static void put_number(gw_buf *b, double d) {
  if (isnan(d)) {
    gw_buf_puts(b, "NaN");
  } else if (isinf(d)) {
    gw_buf_puts(b, d > 0 ? "+Inf" : "-Inf");
  } else if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    gw_buf_printf(b, "%.0f", d == 0 ? 0.0 : d);
  } else {
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d) {
      snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    gw_buf_puts(b, tmp);
  }
}

/* Label values: backslash, double quote and newline are escaped (exposition format 0.0.4).
 * Bytes that are not UTF-8 become U+FFFD, since the format is UTF-8 text. */
static void put_label_value(gw_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    if (c == '\\') {
      gw_buf_puts(b, "\\\\");
      p++;
    } else if (c == '"') {
      gw_buf_puts(b, "\\\"");
      p++;
    } else if (c == '\n') {
      gw_buf_puts(b, "\\n");
      p++;
    } else if (c < 0x80) {
      gw_buf_putc(b, (char)c);
      p++;
    } else {
      size_t n = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
      bool ok = n > 0;
      for (size_t i = 1; ok && i < n; i++) {
        ok = (p[i] & 0xc0) == 0x80;
      }
      /* Overlong 3/4-byte forms, surrogates and values above U+10FFFF. */
      if (ok && n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) {
        ok = false;
      }
      if (ok && n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) {
        ok = false;
      }
      if (ok) {
        gw_buf_append(b, p, n);
        p += n;
      } else {
        gw_buf_puts(b, "\xef\xbf\xbd");
        p++;
      }
    }
  }
}

static void put_help(gw_buf *b, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\') {
      gw_buf_puts(b, "\\\\");
    } else if (*p == '\n') {
      gw_buf_puts(b, "\\n");
    } else {
      gw_buf_putc(b, *p);
    }
  }
}

/* {a="x",b="y"} plus an optional le="..." last; nothing when there are no labels at all. */
static void put_labels(gw_buf *b, const gw_metric *s, const double *le) {
  const gw_metric_family *f = s->family;
  if (f->nlabels == 0 && le == NULL) {
    return;
  }
  gw_buf_putc(b, '{');
  for (size_t i = 0; i < f->nlabels; i++) {
    if (i > 0) {
      gw_buf_putc(b, ',');
    }
    gw_buf_puts(b, f->label_names[i]);
    gw_buf_puts(b, "=\"");
    put_label_value(b, s->label_values[i]);
    gw_buf_putc(b, '"');
  }
  if (le != NULL) {
    gw_buf_puts(b, f->nlabels > 0 ? ",le=\"" : "le=\"");
    put_number(b, *le);
    gw_buf_putc(b, '"');
  }
  gw_buf_putc(b, '}');
}

static void render_series(gw_buf *b, const gw_metric *s) {
  const gw_metric_family *f = s->family;
  if (f->type != GW_METRIC_HISTOGRAM) {
    gw_buf_puts(b, f->name);
    put_labels(b, s, NULL);
    gw_buf_putc(b, ' ');
    put_number(b, s->value);
    gw_buf_putc(b, '\n');
    return;
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= f->nbuckets; i++) {
    double le = i < f->nbuckets ? f->buckets[i] : INFINITY;
    cumulative += s->bucket_counts[i];
    gw_buf_puts(b, f->name);
    gw_buf_puts(b, "_bucket");
    put_labels(b, s, &le);
    gw_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
  }
  gw_buf_puts(b, f->name);
  gw_buf_puts(b, "_sum");
  put_labels(b, s, NULL);
  gw_buf_putc(b, ' ');
  put_number(b, s->sum);
  gw_buf_putc(b, '\n');
  gw_buf_puts(b, f->name);
  gw_buf_puts(b, "_count");
  put_labels(b, s, NULL);
  gw_buf_printf(b, " %llu\n", (unsigned long long)s->count);
}

void gw_metrics_render(gw_metrics *m, gw_buf *out) {
  static const char *const type_names[] = {"counter", "gauge", "histogram"};
  for (size_t i = 0; i < m->nhooks; i++) {
    m->hooks[i].cb(m->hooks[i].opaque);
  }
  for (size_t i = 0; i < m->nfamilies; i++) {
    const gw_metric_family *f = m->families[i];
    gw_buf_puts(out, "# HELP ");
    gw_buf_puts(out, f->name);
    gw_buf_putc(out, ' ');
    put_help(out, f->help);
    gw_buf_puts(out, "\n# TYPE ");
    gw_buf_puts(out, f->name);
    gw_buf_putc(out, ' ');
    gw_buf_puts(out, type_names[f->type]);
    gw_buf_putc(out, '\n');
    for (size_t j = 0; j < f->nseries; j++) {
      render_series(out, f->series[j]);
    }
    if (f->overflow != NULL) {
      render_series(out, f->overflow);
    }
  }
}
