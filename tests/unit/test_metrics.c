#include "goodwill/metrics.h"
#include "gw_test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define PROMTOOL "/usr/bin/promtool"

/* Runs `promtool check metrics` on text; returns its exit status and copies what it said. */
static int promtool_check(const char *text, char *said, size_t said_len) {
  char path[] = "/tmp/gw_test_metrics_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    snprintf(said, said_len, "mkstemp failed");
    return -1;
  }
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  char cmd[256];
  snprintf(cmd, sizeof cmd, PROMTOOL " check metrics < %s 2>&1", path);
  FILE *p = popen(cmd, "r");
  size_t n = 0;
  if (p != NULL) {
    n = fread(said, 1, said_len - 1, p);
  }
  said[n] = '\0';
  int status = p != NULL ? pclose(p) : -1;
  unlink(path);
  if (status == -1 || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

static gw_metrics *new_registry(void) {
  gw_metrics *m = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m), 0);
  return m;
}

static gw_metric_family *reg(gw_metrics *m, const char *name, gw_metric_type type,
                             const char *const *labels, size_t nlabels, const double *buckets,
                             size_t nbuckets, size_t max_series) {
  gw_metric_family_def def = {name,    "help text", type,     labels,
                              nlabels, buckets,     nbuckets, max_series};
  gw_metric_family *f = NULL;
  int rc = gw_metrics_register(m, &def, &f);
  CHECK_INT_EQ(rc, 0);
  return f;
}

static char *render(gw_metrics *m) {
  gw_buf b = GW_BUF_INIT;
  gw_metrics_render(m, &b);
  gw_buf_putc(&b, '\0');
  return b.data;
}

static void test_counter_and_gauge_text(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"topic", "result"};
  gw_metric_family *c = reg(m, "goodwill_records_total", GW_METRIC_COUNTER, labels, 2, NULL, 0, 0);
  gw_metric_family *g = reg(m, "goodwill_lag_seconds", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0);
  gw_metric *ok = gw_metrics_series(c, (const char *const[]){"in", "ok"});
  gw_metric *ok2 = gw_metrics_series(c, (const char *const[]){"in", "ok"});
  CHECK(ok == ok2);
  gw_metric_add(ok, 1);
  gw_metric_add(ok, 2);
  gw_metric_add(ok, -5); /* ignored: counters never go down */
  CHECK(gw_metric_value(ok) == 3);
  gw_metric *lag = gw_metrics_series(g, NULL);
  gw_metric_set(lag, 0.1);
  gw_metric_add(lag, -1.5);
  char *text = render(m);
  CHECK_STR_CONTAINS(text, "# HELP goodwill_records_total help text\n"
                           "# TYPE goodwill_records_total counter\n"
                           "goodwill_records_total{topic=\"in\",result=\"ok\"} 3\n");
  CHECK_STR_CONTAINS(text, "# TYPE goodwill_lag_seconds gauge\ngoodwill_lag_seconds -1.4\n");
  free(text);
  gw_metrics_free(m);
}

static void test_number_formats(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"k"};
  gw_metric_family *g = reg(m, "g", GW_METRIC_GAUGE, labels, 1, NULL, 0, 0);
  struct {
    const char *k;
    double v;
    const char *want;
  } cases[] = {
      {"int", 3, "g{k=\"int\"} 3\n"},
      {"big", 1e15, "g{k=\"big\"} 1000000000000000\n"},
      {"huge", 1e300, "g{k=\"huge\"} 1e+300\n"},
      {"third", 1.0 / 3, "g{k=\"third\"} 0.33333333333333331\n"},
      {"tenth", 0.1, "g{k=\"tenth\"} 0.1\n"},
      {"neg", -7, "g{k=\"neg\"} -7\n"},
      {"negzero", -0.0, "g{k=\"negzero\"} 0\n"},
      {"pinf", INFINITY, "g{k=\"pinf\"} +Inf\n"},
      {"ninf", -INFINITY, "g{k=\"ninf\"} -Inf\n"},
      {"nan", NAN, "g{k=\"nan\"} NaN\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gw_metric_set(gw_metrics_series(g, (const char *const[]){cases[i].k}), cases[i].v);
  }
  char *text = render(m);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_STR_CONTAINS(text, cases[i].want);
  }
  free(text);
  gw_metrics_free(m);
}

static void test_histogram_text(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"route"};
  static const double buckets[] = {0.1, 1, 2.5};
  gw_metric_family *h =
      reg(m, "goodwill_request_seconds", GW_METRIC_HISTOGRAM, labels, 1, buckets, 3, 0);
  gw_metric *s = gw_metrics_series(h, (const char *const[]){"/v1/events"});
  gw_metric_observe(s, 0.05);
  gw_metric_observe(s, 0.1); /* bounds are inclusive: lands in le="0.1" */
  gw_metric_observe(s, 2);
  gw_metric_observe(s, 100);
  gw_metric_observe(s, NAN); /* ignored */
  CHECK(gw_metric_value(s) == 4);
  char *text = render(m);
  CHECK_STR_CONTAINS(text, "# TYPE goodwill_request_seconds histogram\n"
                           "goodwill_request_seconds_bucket{route=\"/v1/events\",le=\"0.1\"} 2\n"
                           "goodwill_request_seconds_bucket{route=\"/v1/events\",le=\"1\"} 2\n"
                           "goodwill_request_seconds_bucket{route=\"/v1/events\",le=\"2.5\"} 3\n"
                           "goodwill_request_seconds_bucket{route=\"/v1/events\",le=\"+Inf\"} 4\n"
                           "goodwill_request_seconds_sum{route=\"/v1/events\"} 102.15\n"
                           "goodwill_request_seconds_count{route=\"/v1/events\"} 4\n");
  free(text);
  gw_metrics_free(m);
}

static void test_label_value_escaping(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"team"};
  gw_metric_family *c = reg(m, "x_total", GW_METRIC_COUNTER, labels, 1, NULL, 0, 0);
  gw_metric_add(gw_metrics_series(c, (const char *const[]){"a\\b\"c\nd"}), 1);
  gw_metric_add(gw_metrics_series(c, (const char *const[]){"bad\xff utf8"}), 1);
  char *text = render(m);
  CHECK_STR_CONTAINS(text, "x_total{team=\"a\\\\b\\\"c\\nd\"} 1\n");
  CHECK_STR_CONTAINS(text, "x_total{team=\"bad\xef\xbf\xbd utf8\"} 1\n");
  free(text);
  gw_metrics_free(m);
}

static void test_register_validation(void) {
  gw_metrics *m = new_registry();
  gw_metric_family *f = (gw_metric_family *)&f;
  static const char *const le[] = {"le"};
  static const char *const dup[] = {"a", "a"};
  static const char *const reserved[] = {"__name"};
  static const char *const badlabel[] = {"a:b"};
  static const double unsorted[] = {1, 0.5};
  static const double with_inf[] = {1, INFINITY};
  static const double with_nan[] = {NAN};
  struct {
    gw_metric_family_def def;
    int want;
  } cases[] = {
      {{"9starts_with_digit", "h", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0}, -EINVAL},
      {{"has-dash", "h", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0}, -EINVAL},
      {{"", "h", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0}, -EINVAL},
      {{"ns:sub_ok", "h", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0}, 0},
      {{"h1", "h", GW_METRIC_HISTOGRAM, le, 1, NULL, 0, 0}, -EINVAL},
      {{"g1", "h", GW_METRIC_GAUGE, le, 1, NULL, 0, 0}, 0},
      {{"g2", "h", GW_METRIC_GAUGE, dup, 2, NULL, 0, 0}, -EINVAL},
      {{"g3", "h", GW_METRIC_GAUGE, reserved, 1, NULL, 0, 0}, -EINVAL},
      {{"g4", "h", GW_METRIC_GAUGE, badlabel, 1, NULL, 0, 0}, -EINVAL},
      {{"h2", "h", GW_METRIC_HISTOGRAM, NULL, 0, unsorted, 2, 0}, -EINVAL},
      {{"h3", "h", GW_METRIC_HISTOGRAM, NULL, 0, with_nan, 1, 0}, -EINVAL},
      {{"h4", "h", GW_METRIC_HISTOGRAM, NULL, 0, with_inf, 2, 0}, 0},
      {{"g1", "h", GW_METRIC_COUNTER, NULL, 0, NULL, 0, 0}, -EEXIST},
      /* h4's lines include h4_count: a gauge of that name would clash with them. */
      {{"h4_count", "h", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0}, -EEXIST},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = gw_metrics_register(m, &cases[i].def, &f);
    CHECK_INT_EQ(rc, cases[i].want);
    if (rc != cases[i].want) {
      fprintf(stderr, "  case %zu (%s)\n", i, cases[i].def.name);
    }
  }
  char *text = render(m);
  /* The +Inf given explicitly is not printed twice. */
  CHECK_STR_CONTAINS(text, "h4_bucket{le=\"1\"} 0\nh4_bucket{le=\"+Inf\"} 0\nh4_sum 0\n");
  free(text);
  gw_metrics_free(m);
}

static void test_max_series_overflow(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"tenant", "team"};
  gw_metric_family *g = reg(m, "team_feeling", GW_METRIC_GAUGE, labels, 2, NULL, 0, 3);
  gw_metric *kept[3];
  for (int i = 0; i < 3; i++) {
    char team[16];
    snprintf(team, sizeof team, "t%d", i);
    kept[i] = gw_metrics_series(g, (const char *const[]){"acme", team});
    gw_metric_set(kept[i], i);
  }
  gw_metric *o1 = gw_metrics_series(g, (const char *const[]){"acme", "t3"});
  gw_metric *o2 = gw_metrics_series(g, (const char *const[]){"other", "t9"});
  CHECK(o1 == o2);
  CHECK(o1 != kept[0] && o1 != kept[1] && o1 != kept[2]);
  /* Series that exist before the cap was reached are still found. */
  CHECK(gw_metrics_series(g, (const char *const[]){"acme", "t1"}) == kept[1]);
  gw_metric_add(o1, 5);
  char *text = render(m);
  CHECK_STR_CONTAINS(text, "team_feeling{tenant=\"_other\",team=\"_other\"} 5\n");
  CHECK(strstr(text, "team=\"t3\"") == NULL);
  free(text);
  gw_metrics_free(m);
}

/* Clearing a family drops its series (the overflow one too); new ones render afresh, and a
 * registry whose info gauge changed labels many times holds only the last. */
static void test_family_clear(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"model_version"};
  gw_metric_family *g = reg(m, "x_info", GW_METRIC_GAUGE, labels, 1, NULL, 0, 2);
  gw_metric_set(gw_metrics_series(g, (const char *const[]){"a"}), 1);
  gw_metric_set(gw_metrics_series(g, (const char *const[]){"b"}), 1);
  gw_metric_set(gw_metrics_series(g, (const char *const[]){"c"}), 1); /* over the cap: _other */
  gw_metrics_family_clear(g);
  char *text = render(m);
  CHECK_STR_CONTAINS(text, "# TYPE x_info gauge\n");
  CHECK(strstr(text, "x_info{") == NULL);
  free(text);
  for (int i = 0; i < 1000; i++) {
    char v[16];
    snprintf(v, sizeof v, "v%d", i);
    gw_metrics_family_clear(g);
    gw_metric_set(gw_metrics_series(g, (const char *const[]){v}), 1);
  }
  text = render(m);
  CHECK_STR_CONTAINS(text, "x_info{model_version=\"v999\"} 1\n");
  CHECK(strstr(text, "v998") == NULL && strstr(text, "_other") == NULL);
  char said[512];
  CHECK_INT_EQ(promtool_check(text, said, sizeof said), 0);
  free(text);
  gw_metrics_free(m);
}

/* Many series: pointers stay put while the table grows, and each lookup finds its own. */
static void test_many_series_stable_pointers(void) {
  gw_metrics *m = new_registry();
  static const char *const labels[] = {"team"};
  gw_metric_family *c = reg(m, "events_total", GW_METRIC_COUNTER, labels, 1, NULL, 0, 0);
  enum { N = 5000 };
  gw_metric **ptrs = calloc(N, sizeof *ptrs);
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "team-%d", i);
    ptrs[i] = gw_metrics_series(c, (const char *const[]){name});
    gw_metric_add(ptrs[i], i);
  }
  int wrong = 0;
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "team-%d", i);
    gw_metric *s = gw_metrics_series(c, (const char *const[]){name});
    wrong += s != ptrs[i] || gw_metric_value(s) != i;
  }
  CHECK_INT_EQ(wrong, 0);
  free(ptrs);
  gw_metrics_free(m);
}

typedef struct hook_state {
  gw_metric *queue_depth;
  int calls;
} hook_state;

static void on_collect(void *opaque) {
  hook_state *st = opaque;
  st->calls++;
  gw_metric_set(st->queue_depth, 40 + st->calls);
}

static void test_collect_hook_runs_before_render(void) {
  gw_metrics *m = new_registry();
  gw_metric_family *g = reg(m, "queue_depth", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0);
  hook_state st = {gw_metrics_series(g, NULL), 0};
  CHECK_INT_EQ(gw_metrics_on_collect(m, on_collect, &st), 0);
  char *text = render(m);
  CHECK_INT_EQ(st.calls, 1);
  CHECK_STR_CONTAINS(text, "queue_depth 41\n");
  free(text);
  text = render(m);
  CHECK_STR_CONTAINS(text, "queue_depth 42\n");
  free(text);
  gw_metrics_free(m);
}

/* The whole exposition, with nasty label values, passes Prometheus' own checker. */
static void test_promtool_accepts_output(void) {
  if (access(PROMTOOL, X_OK) != 0) {
    fprintf(stderr, "  %s is missing (Debian package prometheus): cannot check\n", PROMTOOL);
    CHECK(access(PROMTOOL, X_OK) == 0);
    return;
  }
  gw_metrics *m = new_registry();
  static const char *const l2[] = {"tenant", "team"};
  static const char *const l1[] = {"route"};
  gw_metric_family *c =
      reg(m, "goodwill_ingest_requests_total", GW_METRIC_COUNTER, l2, 2, NULL, 0, 2);
  gw_metric_family *g = reg(m, "goodwill_team_feeling_change", GW_METRIC_GAUGE, l2, 2, NULL, 0, 0);
  gw_metric_family *h = reg(m, "goodwill_http_request_duration_seconds", GW_METRIC_HISTOGRAM, l1, 1,
                            gw_metrics_latency_buckets_s, gw_metrics_latency_buckets_count, 0);
  gw_metric_family *plain = reg(m, "goodwill_up", GW_METRIC_GAUGE, NULL, 0, NULL, 0, 0);
  gw_metric_family_def multiline = {"goodwill_empty_total",
                                    "help with \\ backslash\nand newline",
                                    GW_METRIC_COUNTER,
                                    l1,
                                    1,
                                    NULL,
                                    0,
                                    0};
  CHECK_INT_EQ(gw_metrics_register(m, &multiline, NULL), 0);
  const char *nasty[] = {"quote\"d", "back\\slash", "new\nline", "", "caf\xc3\xa9 \xf0\x9f\x98\x80",
                         "bad\xc3",  "{}=,"};
  for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
    gw_metric_add(gw_metrics_series(c, (const char *const[]){"acme", nasty[i]}), (double)i + 1);
    gw_metric_set(gw_metrics_series(g, (const char *const[]){nasty[i], "t"}), -0.25 * (double)i);
    gw_metric_observe(gw_metrics_series(h, (const char *const[]){nasty[i]}), 0.003 * (double)i);
  }
  gw_metric_set(gw_metrics_series(g, (const char *const[]){"inf", "t"}), INFINITY);
  gw_metric_set(gw_metrics_series(g, (const char *const[]){"nan", "t"}), NAN);
  gw_metric_set(gw_metrics_series(plain, NULL), 1);
  char *text = render(m);
  char said[4096];
  int rc = promtool_check(text, said, sizeof said);
  CHECK_INT_EQ(rc, 0);
  CHECK_STR_EQ(said, "");
  if (rc != 0 || said[0] != '\0') {
    fprintf(stderr, "  promtool said: %s\n  on:\n%s\n", said, text);
  }
  free(text);
  gw_metrics_free(m);
}

/* The check above can fail: promtool does reject a broken exposition. */
static void test_promtool_rejects_broken_text(void) {
  if (access(PROMTOOL, X_OK) != 0) {
    return;
  }
  char said[4096];
  int rc =
      promtool_check("# TYPE x_total counter\nx_total{a=\"unterminated} 1\n", said, sizeof said);
  CHECK(rc != 0);
}

/* One table registers a daemon's families and stores each family or series in its struct. */
typedef struct owner {
  gw_metric_family *by_route;
  gw_metric *events;
} owner;

static const char *const route_label[] = {"route"};
static const gw_metric_spec owner_metrics[] = {
    GW_METRIC_FAMILY(owner, by_route, .name = "x_requests_total", .help = "r.",
                     .type = GW_METRIC_COUNTER, .label_names = route_label, .nlabels = 1),
    GW_METRIC_SERIES(owner, events, .name = "x_events_total", .help = "e.",
                     .type = GW_METRIC_COUNTER),
};

static void test_register_all(void) {
  gw_metrics *m = new_registry();
  owner o = {NULL, NULL};
  CHECK_INT_EQ(gw_metrics_register_all(m, owner_metrics, 2, &o, NULL), 0);
  CHECK(o.by_route != NULL && o.events != NULL);
  gw_metric_add(o.events, 3);
  const char *v[] = {"/v1"};
  gw_metric_add(gw_metrics_series(o.by_route, v), 1);
  gw_buf out = GW_BUF_INIT;
  gw_metrics_render(m, &out);
  CHECK_STR_CONTAINS(out.data, "x_events_total 3\n");
  CHECK_STR_CONTAINS(out.data, "x_requests_total{route=\"/v1\"} 1\n");
  gw_buf_free(&out);
  /* A second registration of the same names fails and names the family at fault. */
  const char *failed = NULL;
  owner o2 = {NULL, NULL};
  CHECK_INT_EQ(gw_metrics_register_all(m, owner_metrics, 2, &o2, &failed), -EEXIST);
  CHECK_STR_EQ(failed, "x_requests_total");
  gw_metrics_free(m);
}

int main(void) {
  GW_RUN(test_counter_and_gauge_text);
  GW_RUN(test_register_all);
  GW_RUN(test_number_formats);
  GW_RUN(test_histogram_text);
  GW_RUN(test_label_value_escaping);
  GW_RUN(test_register_validation);
  GW_RUN(test_max_series_overflow);
  GW_RUN(test_family_clear);
  GW_RUN(test_many_series_stable_pointers);
  GW_RUN(test_collect_hook_runs_before_render);
  GW_RUN(test_promtool_accepts_output);
  GW_RUN(test_promtool_rejects_broken_text);
  return gw_test_finish();
}
