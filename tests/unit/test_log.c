#include "goodwill/log.h"
#include "gw_test.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

/* Captures what a logger writes into memory, through a real FILE. */
typedef struct capture {
  char *text;
  size_t len;
  FILE *f;
} capture;

static void capture_open(capture *c) {
  c->text = NULL;
  c->len = 0;
  c->f = open_memstream(&c->text, &c->len);
}

static void capture_close(capture *c) {
  fclose(c->f);
  free(c->text);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) {
    n += *s == '\n';
  }
  return n;
}

static void test_line_is_json_with_fields(void) {
  capture c;
  capture_open(&c);
  gw_log log;
  gw_log_init(&log, "ingest", GW_LOG_DEBUG);
  CHECK(log.out == stderr);
  log.out = c.f;
  GW_LOG(&log, GW_LOG_WARN, "partition \"revoked\"\n", GW_LS("topic", "goodwill.interactions.v1"),
         GW_LI("partition", -3), GW_LD("lag_s", 0.1), GW_LB("retry", 1), GW_LS("none", NULL),
         GW_LD("nan", NAN), GW_LI("big", 9007199254740993LL));
  CHECK(c.len > 0);
  CHECK_INT_EQ(count_lines(c.text), 1);
  CHECK_INT_EQ(c.text[c.len - 1], '\n');
  json_error_t err;
  json_t *v = json_loads(c.text, 0, &err);
  CHECK(v != NULL);
  if (v == NULL) {
    fprintf(stderr, "  not JSON: %s (%s)\n", c.text, err.text);
    capture_close(&c);
    return;
  }
  CHECK_STR_EQ(json_string_value(json_object_get(v, "level")), "warn");
  CHECK_STR_EQ(json_string_value(json_object_get(v, "component")), "ingest");
  CHECK_STR_EQ(json_string_value(json_object_get(v, "msg")), "partition \"revoked\"\n");
  CHECK_STR_EQ(json_string_value(json_object_get(v, "topic")), "goodwill.interactions.v1");
  CHECK_INT_EQ(json_integer_value(json_object_get(v, "partition")), -3);
  CHECK(json_real_value(json_object_get(v, "lag_s")) == 0.1);
  CHECK(json_is_true(json_object_get(v, "retry")));
  CHECK(json_is_null(json_object_get(v, "none")));
  CHECK(json_is_null(json_object_get(v, "nan")));
  CHECK_INT_EQ(json_integer_value(json_object_get(v, "big")), 9007199254740993LL);
  /* The field order is fixed: ts first, so lines sort and grep well. */
  CHECK(strncmp(c.text, "{\"ts\":\"", 7) == 0);
  json_decref(v);
  capture_close(&c);
}

static void test_timestamp_format(void) {
  capture c;
  capture_open(&c);
  gw_log log;
  gw_log_init(&log, "t", GW_LOG_INFO);
  log.out = c.f;
  GW_LOG(&log, GW_LOG_INFO, "x");
  json_t *v = json_loads(c.text, 0, NULL);
  CHECK(v != NULL);
  const char *ts = json_string_value(json_object_get(v, "ts"));
  CHECK(ts != NULL);
  if (ts != NULL) {
    /* 2026-11-23T10:00:00.123Z */
    CHECK_INT_EQ(strlen(ts), 24);
    int y, mo, d, h, mi, s, ms;
    char z;
    CHECK_INT_EQ(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8);
    CHECK(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60 &&
          ms <= 999);
    CHECK_INT_EQ(z, 'Z');
  }
  json_decref(v);
  capture_close(&c);
}

static void test_level_filter(void) {
  capture c;
  capture_open(&c);
  gw_log log;
  gw_log_init(&log, "t", GW_LOG_WARN);
  log.out = c.f;
  GW_LOG(&log, GW_LOG_DEBUG, "hidden");
  GW_LOG(&log, GW_LOG_INFO, "hidden");
  GW_LOG(&log, GW_LOG_WARN, "shown");
  GW_LOG(&log, GW_LOG_ERROR, "shown too", GW_LI("n", 1));
  CHECK_INT_EQ(count_lines(c.text), 2);
  CHECK(strstr(c.text, "hidden") == NULL);
  CHECK_STR_CONTAINS(c.text, "\"level\":\"error\"");
  capture_close(&c);
  /* A NULL logger is a no-op, so modules can run without one in tests. */
  gw_log_write(NULL, GW_LOG_ERROR, "nothing", NULL, 0);
}

static void test_level_parse(void) {
  gw_log_level l = GW_LOG_INFO;
  CHECK_INT_EQ(gw_log_level_parse("debug", &l), 0);
  CHECK_INT_EQ(l, GW_LOG_DEBUG);
  CHECK_INT_EQ(gw_log_level_parse("error", &l), 0);
  CHECK_INT_EQ(l, GW_LOG_ERROR);
  CHECK_INT_EQ(gw_log_level_parse("warn", &l), 0);
  CHECK_INT_EQ(l, GW_LOG_WARN);
  CHECK_INT_EQ(gw_log_level_parse("info", &l), 0);
  CHECK_INT_EQ(l, GW_LOG_INFO);
  CHECK_INT_EQ(gw_log_level_parse("verbose", &l), -EINVAL);
  CHECK_INT_EQ(gw_log_level_parse("", &l), -EINVAL);
  CHECK_INT_EQ(l, GW_LOG_INFO);
}

/* Three lines at once, then one per second; the held-back ones are told on the next line. */
static void test_log_limit(void) {
  gw_log_limit l = GW_LOG_LIMIT_INIT(1000, 3);
  uint64_t sup = 99;
  uint64_t t = 5000;
  CHECK(gw_log_limit_allow(&l, t, &sup));
  CHECK_INT_EQ(sup, 0);
  CHECK(gw_log_limit_allow(&l, t, &sup));
  CHECK(gw_log_limit_allow(&l, t + 10, &sup));
  for (int i = 0; i < 50; i++) {
    CHECK(!gw_log_limit_allow(&l, t + 20 + (uint64_t)i, &sup));
  }
  CHECK(!gw_log_limit_allow(&l, t + 999, &sup));
  CHECK(gw_log_limit_allow(&l, t + 1000, &sup));
  CHECK_INT_EQ(sup, 51);
  CHECK(!gw_log_limit_allow(&l, t + 1001, &sup));
  /* A long quiet spell refills the burst, never more. */
  CHECK(gw_log_limit_allow(&l, t + 100000, &sup));
  CHECK_INT_EQ(sup, 1);
  CHECK(gw_log_limit_allow(&l, t + 100000, &sup));
  CHECK(gw_log_limit_allow(&l, t + 100000, &sup));
  CHECK(!gw_log_limit_allow(&l, t + 100000, &sup));
}

int main(void) {
  GW_RUN(test_log_limit);
  GW_RUN(test_line_is_json_with_fields);
  GW_RUN(test_timestamp_format);
  GW_RUN(test_level_filter);
  GW_RUN(test_level_parse);
  return gw_test_finish();
}
