#include "goodwill/config.h"
#include "gw_test.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct test_cfg {
  char *bootstrap;
  char *group;
  long long port;
  bool dev_mode;
  long long flush_ms;
  long long max_body_bytes;
  gw_config_list props;
} test_cfg;

static const gw_config_key keys[] = {
    {"kafka-bootstrap", GW_CONF_STRING, NULL, 1, 0, offsetof(test_cfg, bootstrap),
     "Kafka bootstrap servers, host:port[,host:port]"},
    {"group", GW_CONF_STRING, "goodwill-scorer", 0, 0, offsetof(test_cfg, group),
     "Consumer group id"},
    {"redis-port", GW_CONF_INT, "6379", 1, 65535, offsetof(test_cfg, port), "Redis TCP port"},
    {"dev-mode", GW_CONF_BOOL, NULL, 0, 0, offsetof(test_cfg, dev_mode), "Relax checks for dev"},
    {"flush-interval", GW_CONF_DURATION, "250ms", 1, 3600000, offsetof(test_cfg, flush_ms),
     "How often to flush"},
    {"max-body", GW_CONF_SIZE, "1MiB", 1, 1LL << 30, offsetof(test_cfg, max_body_bytes),
     "Largest accepted request body"},
    {"kafka-property", GW_CONF_LIST, NULL, 0, 0, offsetof(test_cfg, props),
     "librdkafka property name=value"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Loads argv (NULL-terminated, without the program name) and env (NULL-terminated). */
static int load(test_cfg *c, gw_config_values *v, char *err, const char *const *args,
                const char *const *env) {
  char *argv[32] = {"prog"};
  int argc = 1;
  for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
    argv[argc++] = (char *)args[i];
  }
  argv[argc] = NULL;
  memset(c, 0xa5, sizeof *c); /* Garbage: load must set every field. */
  return gw_config_load(keys, NKEYS, c, v, argc, argv, (char *const *)env, err, 256);
}

static void test_defaults(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *args[] = {"--kafka-bootstrap=k:9092", NULL};
  int rc = load(&c, &v, err, args, NULL);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  CHECK_STR_EQ(c.bootstrap, "k:9092");
  CHECK_STR_EQ(c.group, "goodwill-scorer");
  CHECK_INT_EQ(c.port, 6379);
  CHECK(!c.dev_mode);
  CHECK_INT_EQ(c.flush_ms, 250);
  CHECK_INT_EQ(c.max_body_bytes, 1 << 20);
  CHECK_INT_EQ(c.props.count, 0);
  gw_config_free(&v);
}

static void test_flag_forms_and_precedence(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *env[] = {"PATH=/bin",
                       "GOODWILL_REDIS_PORT=7000",
                       "GOODWILL_GROUP=from-env",
                       "GOODWILL_KAFKA_BOOTSTRAP=env:1",
                       "GOODWILL_KAFKA_PROPERTY=a=1,b=2",
                       NULL};
  const char *args[] = {"--redis-port", "7001", "--dev-mode", "--flush-interval=1.5s",
                        "--max-body",   "64k",  NULL};
  int rc = load(&c, &v, err, args, env);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  CHECK_INT_EQ(c.port, 7001);         /* flag over env */
  CHECK_STR_EQ(c.group, "from-env");  /* env over default */
  CHECK_STR_EQ(c.bootstrap, "env:1"); /* required, satisfied by env */
  CHECK(c.dev_mode);                  /* bare boolean flag */
  CHECK_INT_EQ(c.flush_ms, 1500);
  CHECK_INT_EQ(c.max_body_bytes, 65536);
  CHECK_INT_EQ(c.props.count, 2); /* env list split on ',' */
  if (c.props.count == 2) {
    CHECK_STR_EQ(c.props.items[0], "a=1");
    CHECK_STR_EQ(c.props.items[1], "b=2");
  }
  gw_config_free(&v);
  CHECK(v.priv == NULL);
}

static void test_list_repeatable_and_flag_replaces_env(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *env[] = {"GOODWILL_KAFKA_PROPERTY=from.env=1", NULL};
  const char *args[] = {"--kafka-bootstrap=x", "--kafka-property=sasl.mechanism=PLAIN",
                        "--kafka-property", "ssl.cipher.suites=A,B", NULL};
  int rc = load(&c, &v, err, args, env);
  CHECK_INT_EQ(rc, 0);
  CHECK_INT_EQ(c.props.count, 2);
  if (c.props.count == 2) {
    CHECK_STR_EQ(c.props.items[0], "sasl.mechanism=PLAIN");
    /* A flag value is one item, commas included. */
    CHECK_STR_EQ(c.props.items[1], "ssl.cipher.suites=A,B");
  }
  gw_config_free(&v);
}

static void test_booleans(void) {
  const char *cases[][2] = {{"--dev-mode=true", "1"}, {"--dev-mode=off", "0"},
                            {"--dev-mode=YES", "1"},  {"--dev-mode=0", "0"},
                            {"--no-dev-mode", "0"},   {"--dev-mode", "1"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    test_cfg c;
    gw_config_values v;
    char err[256];
    const char *env[] = {"GOODWILL_DEV_MODE=on", NULL};
    const char *args[] = {"--kafka-bootstrap=x", cases[i][0], NULL};
    CHECK_INT_EQ(load(&c, &v, err, args, env), 0);
    CHECK_INT_EQ(c.dev_mode, cases[i][1][0] == '1');
    gw_config_free(&v);
  }
}

static void test_durations_and_sizes(void) {
  struct {
    const char *flag;
    long long ms_or_bytes;
  } ok[] = {
      {"--flush-interval=250", 250},   {"--flush-interval=5s", 5000},
      {"--flush-interval=1m", 60000},  {"--flush-interval=1m30s", 90000},
      {"--flush-interval=0.25s", 250}, {"--max-body=512", 512},
      {"--max-body=8MiB", 8 << 20},    {"--max-body=8m", 8 << 20},
      {"--max-body=1g", 1LL << 30},    {"--max-body=1.5KiB", 1536},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    test_cfg c;
    gw_config_values v;
    char err[256];
    const char *args[] = {"--kafka-bootstrap=x", ok[i].flag, NULL};
    int rc = load(&c, &v, err, args, NULL);
    CHECK_INT_EQ(rc, 0);
    if (rc != 0) {
      fprintf(stderr, "  %s: %s\n", ok[i].flag, err);
    } else if (ok[i].flag[2] == 'f') {
      CHECK_INT_EQ(c.flush_ms, ok[i].ms_or_bytes);
    } else {
      CHECK_INT_EQ(c.max_body_bytes, ok[i].ms_or_bytes);
    }
    gw_config_free(&v);
  }
}

/* Each bad input fails with -EINVAL and a message naming the source, the value and why. */
static void test_errors_name_source_value_reason(void) {
  struct {
    const char *flag;
    const char *env;
    const char *want[3];
  } bad[] = {
      {"--redis-port=70000", NULL, {"--redis-port", "70000", "out of range 1..65535"}},
      {"--redis-port=12ab", NULL, {"--redis-port", "12ab", "not an integer"}},
      {NULL, "GOODWILL_REDIS_PORT=0", {"GOODWILL_REDIS_PORT", "0", "out of range"}},
      {"--flush-interval=2h", NULL, {"--flush-interval", "2h", "out of range 1ms..1h"}},
      {"--flush-interval=5x", NULL, {"--flush-interval", "5x", "unknown unit"}},
      {"--flush-interval=-5s", NULL, {"--flush-interval", "-5s", "negative"}},
      {"--flush-interval=0.5ms", NULL, {"--flush-interval", "0.5ms", "whole number"}},
      {"--flush-interval=1h5", NULL, {"--flush-interval", "1h5", "without a unit"}},
      {"--max-body=2GiB", NULL, {"--max-body", "2GiB", "out of range 1..1GiB"}},
      {"--max-body=", NULL, {"--max-body", "empty", "size"}},
      {"--dev-mode=maybe", NULL, {"--dev-mode", "maybe", "not a boolean"}},
      {"--redis-prot=1", NULL, {"--redis-prot", "unknown flag", "did you mean --redis-port"}},
      {"--zzz", NULL, {"--zzz", "unknown flag", "--help"}},
      {"positional", NULL, {"positional", "unexpected argument", "--name=value"}},
      {NULL, "GOODWILL_REDIS_PROT=1", {"GOODWILL_REDIS_PROT", "unknown variable", ""}},
      {"--kafka-bootstrap=", NULL, {"--kafka-bootstrap", "required", ""}},
      {"--group", NULL, {"--group", "missing value", ""}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    test_cfg c;
    gw_config_values v;
    char err[256] = "untouched";
    const char *args[] = {"--kafka-bootstrap=x", bad[i].flag, NULL};
    const char *env[] = {bad[i].env, NULL};
    int rc = load(&c, &v, err, args, env);
    CHECK_INT_EQ(rc, -EINVAL);
    for (int j = 0; j < 3; j++) {
      CHECK_STR_CONTAINS(err, bad[i].want[j]);
    }
    gw_config_free(&v);
  }
}

static void test_required_string_missing(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *args[] = {"--redis-port=1", NULL};
  CHECK_INT_EQ(load(&c, &v, err, args, NULL), -EINVAL);
  CHECK_STR_CONTAINS(err, "--kafka-bootstrap");
  CHECK_STR_CONTAINS(err, "GOODWILL_KAFKA_BOOTSTRAP");
  CHECK_STR_CONTAINS(err, "required");
  gw_config_free(&v);
}

static void test_missing_value_does_not_swallow_next_flag(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *args[] = {"--kafka-bootstrap", "--dev-mode", NULL};
  CHECK_INT_EQ(load(&c, &v, err, args, NULL), -EINVAL);
  CHECK_STR_CONTAINS(err, "--kafka-bootstrap: missing value");
  gw_config_free(&v);
}

static void test_help(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *a1[] = {"--redis-port=1", "--help", NULL};
  CHECK_INT_EQ(load(&c, &v, err, a1, NULL), GW_CONFIG_HELP);
  gw_config_free(&v);
  const char *a2[] = {"-h", NULL};
  CHECK_INT_EQ(load(&c, &v, err, a2, NULL), GW_CONFIG_HELP);
  gw_config_free(&v);
}

static void test_usage_lists_every_key(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gw_config_usage("goodwill-scorer", "Scores interactions.", keys, NKEYS, f);
  fclose(f);
  CHECK_STR_CONTAINS(text, "Usage: goodwill-scorer");
  CHECK_STR_CONTAINS(text, "Scores interactions.");
  CHECK_STR_CONTAINS(text, "ENVIRONMENT");
  for (size_t i = 0; i < NKEYS; i++) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", keys[i].name);
    CHECK_STR_CONTAINS(text, flag);
    CHECK_STR_CONTAINS(text, keys[i].help);
  }
  CHECK_STR_CONTAINS(text, "GOODWILL_FLUSH_INTERVAL");
  CHECK_STR_CONTAINS(text, "250ms");
  CHECK_STR_CONTAINS(text, "[1..65535]");
  CHECK_STR_CONTAINS(text, "(required)");
  /* Table: the environment column starts at the same place on each key's line. */
  const char *l1 = strstr(text, "--group");
  const char *l2 = strstr(text, "--redis-port");
  if (l1 != NULL && l2 != NULL) {
    CHECK_INT_EQ(strstr(l1, "GOODWILL_GROUP") - l1, strstr(l2, "GOODWILL_REDIS_PORT") - l2);
  }
  free(text);
}

static void test_bad_key_table(void) {
  static const gw_config_key dup[] = {
      {"a", GW_CONF_INT, NULL, 0, 0, 0, "x"},
      {"a", GW_CONF_INT, NULL, 0, 0, 0, "y"},
  };
  long long cfg[1];
  gw_config_values v;
  char err[128];
  char *argv[] = {"prog", NULL};
  CHECK_INT_EQ(gw_config_load(dup, 2, cfg, &v, 1, argv, NULL, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "defined twice");
  gw_config_free(&v);
  static const gw_config_key bad_default[] = {
      {"n", GW_CONF_INT, "ten", 0, 0, 0, "x"},
  };
  CHECK_INT_EQ(gw_config_load(bad_default, 1, cfg, &v, 1, argv, NULL, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "default of n");
  gw_config_free(&v);
}

/* Variables Kubernetes injects for Services named goodwill-* are not settings: skipped. A
 * real setting of a similar shape is still parsed, and a typo is still refused. */
static void test_kubernetes_service_links_ignored(void) {
  test_cfg c;
  gw_config_values v;
  char err[256];
  const char *env[] = {"GOODWILL_AGGREGATOR_SERVICE_HOST=10.0.0.7",
                       "GOODWILL_AGGREGATOR_SERVICE_PORT=8080",
                       "GOODWILL_AGGREGATOR_SERVICE_PORT_HTTP=8080",
                       "GOODWILL_AGGREGATOR_PORT=tcp://10.0.0.7:8080",
                       "GOODWILL_AGGREGATOR_PORT_8080_TCP=tcp://10.0.0.7:8080",
                       "GOODWILL_AGGREGATOR_PORT_8080_TCP_PROTO=tcp",
                       "GOODWILL_AGGREGATOR_PORT_8080_TCP_PORT=8080",
                       "GOODWILL_AGGREGATOR_PORT_8080_TCP_ADDR=10.0.0.7",
                       "GOODWILL_REDIS_PORT=6380",
                       "GOODWILL_KAFKA_BOOTSTRAP=k:1",
                       NULL};
  int rc = load(&c, &v, err, NULL, env);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
  }
  CHECK_INT_EQ(c.port, 6380);
  gw_config_free(&v);
  const char *typo[] = {"GOODWILL_KAFKA_BOOTSTRAP=k:1", "GOODWILL_METRICS_PORT=9100", NULL};
  CHECK_INT_EQ(load(&c, &v, err, NULL, typo), -EINVAL);
  CHECK_STR_CONTAINS(err, "GOODWILL_METRICS_PORT: unknown variable");
  gw_config_free(&v);
}

int main(void) {
  GW_RUN(test_defaults);
  GW_RUN(test_flag_forms_and_precedence);
  GW_RUN(test_list_repeatable_and_flag_replaces_env);
  GW_RUN(test_booleans);
  GW_RUN(test_durations_and_sizes);
  GW_RUN(test_errors_name_source_value_reason);
  GW_RUN(test_required_string_missing);
  GW_RUN(test_missing_value_does_not_swallow_next_flag);
  GW_RUN(test_help);
  GW_RUN(test_usage_lists_every_key);
  GW_RUN(test_bad_key_table);
  GW_RUN(test_kubernetes_service_links_ignored);
  return gw_test_finish();
}
