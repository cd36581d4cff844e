/*
 * gw_metrics: a Prometheus metrics registry (counters, gauges, histograms, with labels) and
 * its text exposition format 0.0.4, which `promtool check metrics` accepts.
 *
 * A family is registered once with its name, help and label names; a series (one set of
 * label values) is looked up or created with gw_metrics_series and may be kept and updated
 * directly, which is cheap (no lookup, no allocation). Loop thread only: nothing is locked.
 * The registry owns every family and series; pointers stay valid until gw_metrics_free.
 *
 * Collect hooks run at the start of gw_metrics_render, so values that are cheaper to read
 * than to track (queue depths, connection counts) are set just in time.
 *
 * Label values are escaped on output; a family may cap its series count (max_series): past
 * the cap gw_metrics_series returns the family's overflow series whose label values are all
 * "_other", so a flood of distinct teams cannot grow memory without bound.
 */
#ifndef GOODWILL_METRICS_H
#define GOODWILL_METRICS_H

#include <stddef.h>

#include "goodwill/buf.h"

typedef struct gw_metrics gw_metrics;
typedef struct gw_metric_family gw_metric_family;
typedef struct gw_metric gw_metric; /* one series */

typedef enum gw_metric_type {
  GW_METRIC_COUNTER,
  GW_METRIC_GAUGE,
  GW_METRIC_HISTOGRAM,
} gw_metric_type;

typedef struct gw_metric_family_def {
  const char *name; /* e.g. "goodwill_ingest_requests_total"; copied */
  const char *help; /* copied */
  gw_metric_type type;
  const char *const *label_names; /* nlabels names, copied; may be NULL when nlabels is 0 */
  size_t nlabels;
  const double *buckets; /* histogram upper bounds, ascending, +Inf implied; copied */
  size_t nbuckets;
  size_t max_series; /* 0: unbounded (only for labels of bounded cardinality) */
} gw_metric_family_def;

int gw_metrics_new(gw_metrics **out);
void gw_metrics_free(gw_metrics *m);

/* Registers a family; -EINVAL for an invalid name, label name or bucket list, -EEXIST when
 * the name is taken. */
int gw_metrics_register(gw_metrics *m, const gw_metric_family_def *def, gw_metric_family **out);

/*
 * The one way a daemon registers its metrics: a static table of specs, one per family, and one
 * call. Each spec says where in the daemon's own struct (owner) to keep what it needs: the
 * family (family_at, for labelled series looked up later) and, for a family without labels,
 * its one series (series_at). GW_METRIC_NOWHERE leaves one out. Registers in table order and
 * stops at the first error (-EINVAL, -EEXIST as gw_metrics_register; the spec's name is then
 * in *failed when failed is not NULL).
 */
#define GW_METRIC_NOWHERE ((size_t)-1)

typedef struct gw_metric_spec {
  gw_metric_family_def def;
  size_t family_at; /* offsetof the gw_metric_family * in owner, or GW_METRIC_NOWHERE */
  size_t series_at; /* offsetof the gw_metric * in owner (nlabels == 0 only), or NOWHERE */
} gw_metric_spec;

/* A spec for a family kept as a family (labelled), and one kept as its single series. */
#define GW_METRIC_FAMILY(owner_type, field, ...)                                                   \
  { .def = {__VA_ARGS__}, .family_at = offsetof(owner_type, field), .series_at = GW_METRIC_NOWHERE }
#define GW_METRIC_SERIES(owner_type, field, ...)                                                   \
  { .def = {__VA_ARGS__}, .family_at = GW_METRIC_NOWHERE, .series_at = offsetof(owner_type, field) }

int gw_metrics_register_all(gw_metrics *m, const gw_metric_spec *specs, size_t n, void *owner,
                            const char **failed);

/* The family registered under name, or NULL (for a family several objects of one daemon
 * share, registered by the first). */
gw_metric_family *gw_metrics_family(const gw_metrics *m, const char *name);

/* The series for these label values (nlabels of them, NULL when nlabels is 0). */
gw_metric *gw_metrics_series(gw_metric_family *f, const char *const *label_values);

/* Drops every series of the family (its overflow series too); the family renders its HELP and
 * TYPE lines only until a series is created again. Pointers to the dropped series become
 * invalid. For a family whose one series changes its labels, e.g. an info gauge whose
 * model_version changes on a reload: the old series must not linger. */
void gw_metrics_family_clear(gw_metric_family *f);

void gw_metric_add(gw_metric *s, double v);     /* counter (v >= 0) or gauge */
void gw_metric_set(gw_metric *s, double v);     /* gauge */
void gw_metric_observe(gw_metric *s, double v); /* histogram */
double gw_metric_value(const gw_metric *s);     /* counter or gauge value; histogram: count */

typedef void (*gw_metrics_collect_cb)(void *opaque);
int gw_metrics_on_collect(gw_metrics *m, gw_metrics_collect_cb cb, void *opaque);

/* Appends the exposition text of every family, in registration order. */
void gw_metrics_render(gw_metrics *m, gw_buf *out);

/* Shared bucket layouts. */
#define GW_METRICS_LATENCY_BUCKETS 14
extern const double gw_metrics_latency_buckets_s[GW_METRICS_LATENCY_BUCKETS]; /* 0.0005 s .. 10 s */
extern const size_t gw_metrics_latency_buckets_count;

#endif
