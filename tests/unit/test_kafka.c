/*
 * gw_kafka against the in-process mock cluster (gw_devkafka): delivery reports, consumer
 * groups with stored and committed offsets, resumption by a second member, local queue
 * limits, delivery failure when the brokers are down, the protected properties, fatal errors
 * of producer and consumer (caused by the cluster, as librdkafka meets them), and records
 * skipped because the cluster dropped them before they were read.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "devkafka.h"
#include "goodwill/buf.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"
#include "gw_test.h"
#include "gw_test_loop.h"

#define TOPIC      "test.kafka.v1"
#define LOST_TOPIC "test.lost.v1" /* overflowed on purpose by the lost-records tests */
#define NPART      2
#define NBROKERS   3
#define FIRST_N    40
#define SECOND_N   10
#define MAX_VALUES (FIRST_N + SECOND_N)

typedef struct fixture {
  uv_loop_t loop;
  gw_log log;
  gw_devkafka *dk;
} fixture;

static fixture fx;

static bool run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms) {
  return gw_test_run_until(&fx.loop, cond, arg, timeout_ms);
}

static bool flag_is_set(void *arg) {
  return *(bool *)arg;
}

/* ------------------------------------------------------------- delivery bookkeeping */

typedef struct deliveries {
  int ok, failed, calls;
  int last_status;
  char last_err[256];
  int64_t next_offset[NPART]; /* highest delivered offset + 1 per partition */
} deliveries;

static void on_delivery(void *opaque, int status, const char *errstr, int32_t partition,
                        int64_t offset) {
  deliveries *d = opaque;
  d->calls++;
  d->last_status = status;
  if (status == 0) {
    d->ok++;
    if (partition >= 0 && partition < NPART && offset + 1 > d->next_offset[partition]) {
      d->next_offset[partition] = offset + 1;
    }
  } else {
    d->failed++;
    snprintf(d->last_err, sizeof d->last_err, "%s", errstr != NULL ? errstr : "(null)");
  }
}

static int produce_range(gw_kafka_producer *p, deliveries *d, int from, int to) {
  for (int i = from; i < to; i++) {
    char key[32], value[32];
    int klen = snprintf(key, sizeof key, "key-%d", i);
    int vlen = snprintf(value, sizeof value, "value-%d", i);
    gw_kafka_header h = {"goodwill-test", "yes", 3};
    int rc =
        gw_kafka_produce(p, TOPIC, key, (size_t)klen, value, (size_t)vlen, &h, 1, on_delivery, d);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static gw_kafka_producer *new_producer(uint64_t delivery_timeout_ms, size_t queue_max) {
  gw_kafka_producer_config pc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .client_id = "test-producer",
      .delivery_timeout_ms = delivery_timeout_ms,
      .queue_max_messages = queue_max,
      .linger_ms = 5,
      .log = &fx.log,
  };
  char err[256] = "";
  gw_kafka_producer *p = NULL;
  int rc = gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "producer: %s\n", err);
  }
  return p;
}

static void on_closed(void *opaque) {
  *(bool *)opaque = true;
}

static bool close_producer(gw_kafka_producer *p, uint64_t timeout_ms) {
  bool closed = false;
  gw_kafka_producer_close(p, timeout_ms, on_closed, &closed);
  return run_until(flag_is_set, &closed, timeout_ms + 10000);
}

/* ------------------------------------------------------------- consumer bookkeeping */

typedef struct consumed {
  gw_kafka_consumer *c;
  int count;
  int seen[MAX_VALUES]; /* times each value-<i> was read */
  int64_t min_offset[NPART];
  int store_failures;
  int assigns;
  int revokes;
  bool bad_header_or_key;
} consumed;

static void on_message(void *opaque, const gw_kafka_message *m) {
  consumed *s = opaque;
  s->count++;
  char value[64];
  size_t n = m->value_len < sizeof value - 1 ? m->value_len : sizeof value - 1;
  memcpy(value, m->value, n);
  value[n] = '\0';
  int i = -1;
  if (sscanf(value, "value-%d", &i) == 1 && i >= 0 && i < MAX_VALUES) {
    s->seen[i]++;
    char key[32];
    int klen = snprintf(key, sizeof key, "key-%d", i);
    if (m->key_len != (size_t)klen || memcmp(m->key, key, (size_t)klen) != 0) {
      s->bad_header_or_key = true;
    }
  }
  if (m->partition >= 0 && m->partition < NPART &&
      (s->min_offset[m->partition] < 0 || m->offset < s->min_offset[m->partition])) {
    s->min_offset[m->partition] = m->offset;
  }
  if (m->nheaders != 1 || strcmp(m->headers[0].name, "goodwill-test") != 0 ||
      m->headers[0].value_len != 3 || memcmp(m->headers[0].value, "yes", 3) != 0) {
    s->bad_header_or_key = true;
  }
  if (strcmp(m->topic, TOPIC) != 0 || m->timestamp_ms <= 0) {
    s->bad_header_or_key = true;
  }
  /* Everything read is "done" at once: store it for commit. */
  if (gw_kafka_consumer_store(s->c, m->topic, m->partition, m->offset + 1) != 0) {
    s->store_failures++;
  }
}

static void on_assign(void *opaque, const gw_kafka_partition *parts, size_t n) {
  consumed *s = opaque;
  s->assigns++;
}

static void on_revoke(void *opaque, const gw_kafka_partition *parts, size_t n) {
  consumed *s = opaque;
  s->revokes++;
}

static gw_kafka_consumer *new_consumer_with(consumed *s, const char *group,
                                            const char *const *properties, size_t nproperties) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < NPART; i++) {
    s->min_offset[i] = -1;
  }
  static const char *const topics[] = {TOPIC};
  gw_kafka_consumer_config cc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .group_id = group,
      .client_id = "test-consumer",
      .topics = topics,
      .ntopics = 1,
      .properties = properties,
      .nproperties = nproperties,
      .session_timeout_ms = 6000,
      .commit_interval_ms = 200,
      .log = &fx.log,
  };
  gw_kafka_consumer_handlers h = {
      .on_message = on_message, .on_assign = on_assign, .on_revoke = on_revoke};
  char err[256] = "";
  int rc = gw_kafka_consumer_new(&s->c, &fx.loop, &cc, &h, s, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "consumer: %s\n", err);
  }
  return s->c;
}

static gw_kafka_consumer *new_consumer(consumed *s, const char *group) {
  return new_consumer_with(s, group, NULL, 0);
}

/* ------------------------------------------------------------- fatal errors, lost records */

typedef struct fatal_seen {
  int calls;
  char reason[512];
} fatal_seen;

static void on_fatal(void *opaque, const char *reason) {
  fatal_seen *f = opaque;
  f->calls++;
  snprintf(f->reason, sizeof f->reason, "%s", reason);
}

static bool fatal_called(void *arg) {
  return ((fatal_seen *)arg)->calls > 0;
}

/* A consumer of the lost-records tests: counts what it reads of LOST_TOPIC, remembers the
 * last offset, stores everything (done at once), and reports fatal errors. */
typedef struct lost_reader {
  gw_kafka_consumer *c;
  int count;
  int assigns;
  int want; /* for lost_reader_read */
  int64_t first_offset, last_offset;
  int32_t partition;
  fatal_seen fatal;
} lost_reader;

static void lost_on_message(void *opaque, const gw_kafka_message *m) {
  lost_reader *r = opaque;
  if (r->count == 0) {
    r->first_offset = m->offset;
  }
  r->count++;
  r->last_offset = m->offset;
  r->partition = m->partition;
  gw_kafka_consumer_store(r->c, m->topic, m->partition, m->offset + 1);
}

static void lost_on_assign(void *opaque, const gw_kafka_partition *parts, size_t n) {
  ((lost_reader *)opaque)->assigns++;
}

static void lost_on_fatal(void *opaque, const char *reason) {
  on_fatal(&((lost_reader *)opaque)->fatal, reason);
}

static gw_kafka_consumer *new_lost_reader(lost_reader *r, const char *group, const char *topic,
                                          gw_metrics *metrics) {
  memset(r, 0, sizeof *r);
  r->first_offset = r->last_offset = -1;
  const char *const topics[] = {topic};
  gw_kafka_consumer_config cc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .group_id = group,
      .client_id = "test-lost-reader",
      .topics = topics,
      .ntopics = 1,
      .session_timeout_ms = 6000,
      .commit_interval_ms = 200,
      .log = &fx.log,
      .metrics = metrics,
      .metrics_prefix = "test",
  };
  gw_kafka_consumer_handlers h = {
      .on_message = lost_on_message, .on_assign = lost_on_assign, .on_fatal = lost_on_fatal};
  char err[256] = "";
  if (gw_kafka_consumer_new(&r->c, &fx.loop, &cc, &h, r, err, sizeof err) != 0) {
    fprintf(stderr, "consumer: %s\n", err);
  }
  return r->c;
}

static bool lost_reader_assigned(void *arg) {
  return ((lost_reader *)arg)->assigns > 0;
}

/* Produces n records of value_len bytes with one key (so to one partition) and waits for
 * their reports; returns that partition, or -1. */
static int32_t produce_to_one_partition(gw_kafka_producer *p, const char *topic, int n,
                                        size_t value_len) {
  deliveries d;
  memset(&d, 0, sizeof d);
  char *value = malloc(value_len);
  if (value == NULL) {
    abort();
  }
  memset(value, 'x', value_len);
  int32_t partition = -1;
  for (int i = 0; i < n; i++) {
    if (gw_kafka_produce(p, topic, "one-key", 7, value, value_len, NULL, 0, on_delivery, &d) != 0) {
      free(value);
      return -1;
    }
  }
  free(value);
  gw_test_count w = {&d.calls, n};
  if (!run_until(gw_test_count_reached, &w, 30000) || d.ok != n) {
    fprintf(stderr, "  produced %d of %d records (%s)\n", d.ok, n, d.last_err);
    return -1;
  }
  for (int i = 0; i < NPART; i++) {
    if (d.next_offset[i] > 0) {
      partition = i;
    }
  }
  return partition;
}

/* The watermarks of one partition of the fixture's topics, as any client would see them. */
static bool watermarks(const char *topic, int32_t partition, int64_t *low, int64_t *high) {
  size_t n = gw_devkafka_npartitions(fx.dk);
  gw_devkafka_partition *parts = calloc(n, sizeof *parts);
  bool found = false;
  if (parts != NULL && gw_devkafka_sample(fx.dk, parts, 5000) == 0) {
    for (size_t i = 0; i < n; i++) {
      if (strcmp(parts[i].topic, topic) == 0 && parts[i].partition == partition &&
          parts[i].low >= 0) {
        *low = parts[i].low;
        *high = parts[i].high;
        found = true;
      }
    }
  }
  free(parts);
  return found;
}

/* The value of series name{topic=...,partition=...} in the registry's text, or -1. */
static double metric_value(gw_metrics *m, const char *name, const char *topic, int32_t partition) {
  gw_buf text = GW_BUF_INIT;
  gw_metrics_render(m, &text);
  char series[256];
  snprintf(series, sizeof series, "%s{topic=\"%s\",partition=\"%d\"} ", name, topic,
           (int)partition);
  const char *at = text.data != NULL ? strstr(text.data, series) : NULL;
  double v = at != NULL ? atof(at + strlen(series)) : -1;
  gw_buf_free(&text);
  return v;
}

static bool close_consumer(gw_kafka_consumer *c) {
  bool closed = false;
  gw_kafka_consumer_close(c, on_closed, &closed);
  return run_until(flag_is_set, &closed, 20000);
}

/* ------------------------------------------------------------------------ tests */

static void test_produce_consume_commit_resume(void) {
  deliveries d;
  memset(&d, 0, sizeof d);
  gw_kafka_producer *p = new_producer(10000, 1000);
  CHECK(p != NULL);
  if (p == NULL) {
    return;
  }
  CHECK_INT_EQ(produce_range(p, &d, 0, FIRST_N), 0);
  CHECK_INT_EQ(gw_kafka_producer_queue_len(p), FIRST_N);
  gw_test_count w = {&d.calls, FIRST_N};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  CHECK_INT_EQ(d.ok, FIRST_N);
  CHECK_INT_EQ(d.failed, 0);
  CHECK_INT_EQ(gw_kafka_producer_queue_len(p), 0);
  CHECK(gw_kafka_producer_connected(p));
  CHECK_INT_EQ(d.next_offset[0] + d.next_offset[1], FIRST_N);
  int64_t first_end[NPART] = {d.next_offset[0], d.next_offset[1]};

  /* First member: reads everything once, stores each offset, commits, leaves. */
  consumed s1;
  gw_kafka_consumer *c1 = new_consumer(&s1, "test-group");
  CHECK(c1 != NULL);
  if (c1 == NULL) {
    return;
  }
  gw_test_count w1 = {&s1.count, FIRST_N};
  CHECK(run_until(gw_test_count_reached, &w1, 25000));
  CHECK(gw_kafka_consumer_assigned(c1));
  CHECK(s1.assigns >= 1);
  CHECK_INT_EQ(s1.count, FIRST_N);
  for (int i = 0; i < FIRST_N; i++) {
    CHECK_INT_EQ(s1.seen[i], 1);
  }
  CHECK(!s1.bad_header_or_key);
  CHECK_INT_EQ(s1.store_failures, 0);
  CHECK_INT_EQ(gw_kafka_consumer_commit(c1), 0);
  CHECK(close_consumer(c1));

  /* More records while nobody consumes. */
  CHECK_INT_EQ(produce_range(p, &d, FIRST_N, FIRST_N + SECOND_N), 0);
  gw_test_count w2 = {&d.calls, FIRST_N + SECOND_N};
  CHECK(run_until(gw_test_count_reached, &w2, 15000));
  CHECK_INT_EQ(d.ok, FIRST_N + SECOND_N);

  /* Second member of the same group: starts exactly at the committed offsets. Re-read old
   * records would arrive before the new ones of their partition, so once all new ones are
   * in, any replay would show in the counts. */
  consumed s2;
  gw_kafka_consumer *c2 = new_consumer(&s2, "test-group");
  CHECK(c2 != NULL);
  if (c2 == NULL) {
    return;
  }
  gw_test_count w3 = {&s2.count, SECOND_N};
  CHECK(run_until(gw_test_count_reached, &w3, 25000));
  CHECK_INT_EQ(s2.count, SECOND_N);
  for (int i = 0; i < FIRST_N; i++) {
    CHECK_INT_EQ(s2.seen[i], 0);
  }
  for (int i = FIRST_N; i < FIRST_N + SECOND_N; i++) {
    CHECK_INT_EQ(s2.seen[i], 1);
  }
  for (int part = 0; part < NPART; part++) {
    if (s2.min_offset[part] >= 0) {
      CHECK_INT_EQ(s2.min_offset[part], first_end[part]);
    }
  }
  CHECK(close_consumer(c2));
  CHECK(close_producer(p, 5000));
}

static bool has_assignment(void *arg) {
  return ((consumed *)arg)->assigns > 0;
}

static bool was_revoked(void *arg) {
  return ((consumed *)arg)->revokes > 0;
}

/*
 * librdkafka evicts a member that has not polled for max.poll.interval.ms. A consumer on a
 * quiet topic gets no queue events to wake the loop, so the module must poll on its own:
 * with a 6 s interval, an idle member keeps its assignment well past 6 s.
 */
static void test_idle_consumer_keeps_its_assignment(void) {
  static const char *const props[] = {"max.poll.interval.ms=6000"};
  consumed s;
  gw_kafka_consumer *c = new_consumer_with(&s, "test-idle-group", props, 1);
  CHECK(c != NULL);
  if (c == NULL) {
    return;
  }
  CHECK(run_until(has_assignment, &s, 25000));
  /* The condition should never hold: the wait ends at its bound, 9 s of idleness. */
  CHECK(!run_until(was_revoked, &s, 9000));
  CHECK_INT_EQ(s.revokes, 0);
  CHECK_INT_EQ(s.assigns, 1);
  CHECK(gw_kafka_consumer_assigned(c));
  CHECK(close_consumer(c));
}

static void test_queue_full_is_enobufs(void) {
  deliveries d;
  memset(&d, 0, sizeof d);
  gw_kafka_producer *p = new_producer(10000, 5);
  CHECK(p != NULL);
  if (p == NULL) {
    return;
  }
  /* The loop does not turn in between, so no delivery report frees a slot. */
  int accepted = 0, rc = 0;
  for (int i = 0; i < 10 && rc == 0; i++) {
    rc = gw_kafka_produce(p, TOPIC, "k", 1, "v", 1, NULL, 0, on_delivery, &d);
    if (rc == 0) {
      accepted++;
    }
  }
  CHECK_INT_EQ(rc, -ENOBUFS);
  CHECK_INT_EQ(accepted, 5);
  CHECK_INT_EQ(d.calls, 0); /* a synchronous failure never calls back */
  /* Close flushes: each accepted record is reported exactly once, all delivered. */
  CHECK(close_producer(p, 10000));
  CHECK_INT_EQ(d.calls, 5);
  CHECK_INT_EQ(d.ok, 5);
}

static void test_produce_after_close_is_eshutdown(void) {
  deliveries d;
  memset(&d, 0, sizeof d);
  gw_kafka_producer *p = new_producer(10000, 100);
  CHECK(p != NULL);
  if (p == NULL) {
    return;
  }
  bool closed = false;
  gw_kafka_producer_close(p, 1000, on_closed, &closed);
  CHECK_INT_EQ(gw_kafka_produce(p, TOPIC, "k", 1, "v", 1, NULL, 0, on_delivery, &d), -ESHUTDOWN);
  CHECK(run_until(flag_is_set, &closed, 10000));
  CHECK_INT_EQ(d.calls, 0);
}

static void test_invalid_property_names_it(void) {
  const char *props[] = {"no-equals-sign"};
  gw_kafka_producer_config pc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .properties = props,
      .nproperties = 1,
      .log = &fx.log,
  };
  char err[256] = "";
  gw_kafka_producer *p = NULL;
  CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), -EINVAL);
  CHECK(p == NULL);
  CHECK_STR_CONTAINS(err, "no-equals-sign");

  const char *props2[] = {"not.a.real.property=1"};
  pc.properties = props2;
  CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "not.a.real.property");
}

/* --kafka-property may not turn off what goodwill's guarantees rest on: each protected name,
 * also in librdkafka's "topic." form, fails creation with the property named. */
static void test_protected_properties_are_refused(void) {
  static const char *const producer_refused[] = {"acks=1",
                                                 "acks=all",
                                                 "request.required.acks=0",
                                                 "enable.idempotence=false",
                                                 "topic.acks=1",
                                                 "topic.request.required.acks=1"};
  for (size_t i = 0; i < sizeof producer_refused / sizeof producer_refused[0]; i++) {
    const char *props[] = {"linger.ms=1", producer_refused[i]};
    gw_kafka_producer_config pc = {
        .bootstrap = gw_devkafka_bootstrap(fx.dk),
        .properties = props,
        .nproperties = 2,
        .log = &fx.log,
    };
    char err[512] = "", want[128];
    gw_kafka_producer *p = NULL;
    CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), -EINVAL);
    CHECK(p == NULL);
    size_t nlen = (size_t)(strchr(producer_refused[i], '=') - producer_refused[i]);
    snprintf(want, sizeof want, "kafka property %.*s may not be set: goodwill requires", (int)nlen,
             producer_refused[i]);
    CHECK_STR_CONTAINS(err, want);
  }
  static const char *const consumer_refused[] = {
      "enable.auto.offset.store=true", "enable.auto.commit=false", "auto.commit.enable=false",
      "auto.offset.reset=latest", "topic.auto.offset.reset=error"};
  static const char *const topics[] = {TOPIC};
  for (size_t i = 0; i < sizeof consumer_refused / sizeof consumer_refused[0]; i++) {
    const char *props[] = {consumer_refused[i]};
    gw_kafka_consumer_config cc = {
        .bootstrap = gw_devkafka_bootstrap(fx.dk),
        .group_id = "test-refused",
        .topics = topics,
        .ntopics = 1,
        .properties = props,
        .nproperties = 1,
        .log = &fx.log,
    };
    gw_kafka_consumer_handlers h = {.on_message = on_message};
    char err[512] = "", want[128];
    gw_kafka_consumer *c = NULL;
    CHECK_INT_EQ(gw_kafka_consumer_new(&c, &fx.loop, &cc, &h, NULL, err, sizeof err), -EINVAL);
    CHECK(c == NULL);
    size_t nlen = (size_t)(strchr(consumer_refused[i], '=') - consumer_refused[i]);
    snprintf(want, sizeof want, "kafka property %.*s may not be set: goodwill ", (int)nlen,
             consumer_refused[i]);
    CHECK_STR_CONTAINS(err, want);
  }
  /* The same names are no business of the other kind of client (librdkafka ignores them). */
  const char *props[] = {"auto.offset.reset=latest"};
  gw_kafka_producer_config pc = {.bootstrap = gw_devkafka_bootstrap(fx.dk),
                                 .properties = props,
                                 .nproperties = 1,
                                 .log = &fx.log};
  char err[512] = "";
  gw_kafka_producer *p = NULL;
  CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), 0);
  if (p != NULL) {
    CHECK(close_producer(p, 1000));
  }
}

/*
 * A Produce request answered OUT_OF_ORDER_SEQUENCE_NUMBER for the first batch in flight is
 * fatal to the idempotent producer (librdkafka cannot tell what the brokers hold): the owner is
 * told once with the reason, produce fails from then on, readiness is gone, close completes.
 */
static void test_producer_fatal_error(void) {
  fatal_seen f;
  memset(&f, 0, sizeof f);
  gw_kafka_producer_config pc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .client_id = "test-fatal-producer",
      .delivery_timeout_ms = 10000,
      .linger_ms = 1,
      .log = &fx.log,
      .on_fatal = on_fatal,
      .fatal_opaque = &f,
  };
  char err[256] = "";
  gw_kafka_producer *p = NULL;
  CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), 0);
  if (p == NULL) {
    return;
  }
  deliveries d;
  memset(&d, 0, sizeof d);
  CHECK_INT_EQ(produce_range(p, &d, 0, 1), 0);
  gw_test_count w = {&d.calls, 1};
  CHECK(run_until(gw_test_count_reached, &w, 10000));
  CHECK_INT_EQ(d.ok, 1);
  CHECK(gw_kafka_producer_fatal(p) == NULL);

  CHECK_INT_EQ(gw_devkafka_push_request_errors(fx.dk, "Produce", "OUT_OF_ORDER_SEQUENCE_NUMBER", 1,
                                               err, sizeof err),
               0);
  CHECK_INT_EQ(produce_range(p, &d, 1, 2), 0);
  CHECK(run_until(fatal_called, &f, 10000));
  CHECK_INT_EQ(f.calls, 1);
  CHECK_STR_CONTAINS(f.reason, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  CHECK(gw_kafka_producer_fatal(p) != NULL);
  if (gw_kafka_producer_fatal(p) != NULL) {
    CHECK_STR_EQ(gw_kafka_producer_fatal(p), f.reason);
  }
  CHECK(!gw_kafka_producer_connected(p));
  gw_test_count w2 = {&d.calls, 2};
  CHECK(run_until(gw_test_count_reached, &w2, 10000));
  CHECK_INT_EQ(d.failed, 1);
  CHECK_INT_EQ(gw_kafka_produce(p, TOPIC, "k", 1, "v", 1, NULL, 0, on_delivery, &d), -EIO);
  CHECK(close_producer(p, 2000));
  CHECK_INT_EQ(f.calls, 1);
}

/*
 * A Heartbeat answered FENCED_INSTANCE_ID is fatal to a group consumer (librdkafka reports it
 * as a consumer error, not through error_cb). The owner is told once; close completes (a plain
 * close never would: librdkafka refuses it after a fatal error and its plain destroy spins).
 */
static void test_consumer_fatal_error(void) {
  lost_reader r;
  gw_kafka_consumer *c = new_lost_reader(&r, "test-fatal-group", TOPIC, NULL);
  CHECK(c != NULL);
  if (c == NULL) {
    return;
  }
  CHECK(run_until(lost_reader_assigned, &r, 25000));
  char err[256] = "";
  CHECK_INT_EQ(
      gw_devkafka_push_request_errors(fx.dk, "Heartbeat", "FENCED_INSTANCE_ID", 1, err, sizeof err),
      0);
  CHECK(run_until(fatal_called, &r.fatal, 15000));
  CHECK_INT_EQ(r.fatal.calls, 1);
  CHECK_STR_CONTAINS(r.fatal.reason, "FENCED_INSTANCE_ID");
  CHECK(gw_kafka_consumer_fatal(c) != NULL);
  CHECK_INT_EQ(gw_kafka_consumer_store(c, TOPIC, 0, 1), -ESRCH);
  CHECK(close_consumer(c));
  CHECK_INT_EQ(r.fatal.calls, 1);
}

static bool lost_reader_read(void *arg) {
  const lost_reader *r = arg;
  return r->count >= r->want;
}

/*
 * Records dropped by the cluster before the group read them (here: the embedded cluster's
 * 5 MiB per partition, overflowed with 100 KB records) are reported when the consumer finds the
 * jump: after a restart, against the group's committed offset; while running, against the
 * last record it delivered. A new group starts wherever the log starts, which is not a loss.
 */
static void test_records_dropped_before_read_are_reported(void) {
  gw_kafka_producer *p = new_producer(20000, 1000);
  CHECK(p != NULL);
  if (p == NULL) {
    return;
  }
  gw_metrics *m = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m), 0);

  /* 1. Five small records, read and committed by the group. */
  int32_t part = produce_to_one_partition(p, LOST_TOPIC, 5, 10);
  CHECK(part >= 0);
  lost_reader r;
  CHECK(new_lost_reader(&r, "test-lost-group", LOST_TOPIC, NULL) != NULL);
  r.want = 5;
  CHECK(run_until(lost_reader_read, &r, 25000));
  CHECK_INT_EQ(r.count, 5);
  CHECK_INT_EQ(r.last_offset, 4);
  CHECK_INT_EQ(gw_kafka_consumer_records_lost(r.c), 0);
  CHECK_INT_EQ(gw_kafka_consumer_commit(r.c), 0);
  CHECK(close_consumer(r.c));

  /* 2. While nobody reads: 60 records of 100 KB, of which the partition keeps about 52. */
  CHECK_INT_EQ(produce_to_one_partition(p, LOST_TOPIC, 60, 100 * 1000), part);
  int64_t low = -1, high = -1;
  CHECK(watermarks(LOST_TOPIC, part, &low, &high));
  CHECK_INT_EQ(high, 65);
  CHECK(low > 5);

  /* 3. The group again: it starts where the log starts, and says what it never read. */
  CHECK(new_lost_reader(&r, "test-lost-group", LOST_TOPIC, m) != NULL);
  r.want = (int)(high - low);
  CHECK(run_until(lost_reader_read, &r, 25000));
  CHECK_INT_EQ(r.first_offset, low);
  CHECK_INT_EQ(gw_kafka_consumer_records_lost(r.c), (uint64_t)(low - 5));
  CHECK(metric_value(m, "test_records_lost_total", LOST_TOPIC, part) == (double)(low - 5));

  /* 4. Paused while the partition overflows again: on resuming it reads on from the new log
   * start, and the jump over what it had not read is reported. */
  gw_kafka_consumer_pause(r.c);
  int64_t last_read = r.last_offset;
  CHECK_INT_EQ(last_read, high - 1);
  CHECK_INT_EQ(produce_to_one_partition(p, LOST_TOPIC, 60, 100 * 1000), part);
  int64_t low2 = -1, high2 = -1;
  CHECK(watermarks(LOST_TOPIC, part, &low2, &high2));
  CHECK(low2 > last_read + 1);
  r.want = r.count + (int)(high2 - low2);
  gw_kafka_consumer_resume(r.c);
  CHECK(run_until(lost_reader_read, &r, 25000));
  uint64_t expected = (uint64_t)(low - 5) + (uint64_t)(low2 - (last_read + 1));
  CHECK_INT_EQ(gw_kafka_consumer_records_lost(r.c), expected);
  CHECK(metric_value(m, "test_records_lost_total", LOST_TOPIC, part) == (double)expected);
  CHECK(close_consumer(r.c));

  /* 5. A new group: it starts at the log start, nothing was lost for it. */
  gw_metrics *m2 = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m2), 0);
  CHECK(new_lost_reader(&r, "test-lost-new-group", LOST_TOPIC, m2) != NULL);
  r.want = (int)(high2 - low2);
  CHECK(run_until(lost_reader_read, &r, 25000));
  CHECK_INT_EQ(r.first_offset, low2);
  CHECK_INT_EQ(gw_kafka_consumer_records_lost(r.c), 0);
  CHECK(close_consumer(r.c));
  CHECK(close_producer(p, 5000));
  gw_metrics_free(m);
  gw_metrics_free(m2);
}

static void test_delivery_fails_when_brokers_down(void) {
  for (int b = 1; b <= NBROKERS; b++) {
    CHECK_INT_EQ(gw_devkafka_broker_set_up(fx.dk, b, false), 0);
  }
  CHECK_INT_EQ(gw_devkafka_broker_set_up(fx.dk, NBROKERS + 1, false), -EINVAL);
  deliveries d;
  memset(&d, 0, sizeof d);
  gw_kafka_producer *p = new_producer(1500, 100);
  CHECK(p != NULL);
  if (p != NULL) {
    CHECK_INT_EQ(produce_range(p, &d, 0, 3), 0);
    gw_test_count w = {&d.calls, 3};
    CHECK(run_until(gw_test_count_reached, &w, 10000));
    CHECK_INT_EQ(d.failed, 3);
    CHECK_INT_EQ(d.last_status, -ETIMEDOUT);
    CHECK(d.last_err[0] != '\0');
    CHECK(!gw_kafka_producer_connected(p));
    CHECK(close_producer(p, 500));
    CHECK_INT_EQ(d.calls, 3);
  }
  for (int b = 1; b <= NBROKERS; b++) {
    CHECK_INT_EQ(gw_devkafka_broker_set_up(fx.dk, b, true), 0);
  }
}

static bool producer_is_connected(void *arg) {
  return gw_kafka_producer_connected(arg);
}

static bool producer_is_disconnected(void *arg) {
  return !gw_kafka_producer_connected(arg);
}

/* Readiness follows the brokers: down when all are down, up again without any traffic. */
static void test_connected_recovers_after_outage(void) {
  const char *props[] = {"reconnect.backoff.ms=100", "reconnect.backoff.max.ms=500"};
  gw_kafka_producer_config pc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .properties = props,
      .nproperties = 2,
      .delivery_timeout_ms = 1000,
      .log = &fx.log,
  };
  char err[256] = "";
  gw_kafka_producer *p = NULL;
  CHECK_INT_EQ(gw_kafka_producer_new(&p, &fx.loop, &pc, err, sizeof err), 0);
  if (p == NULL) {
    return;
  }
  CHECK(run_until(producer_is_connected, p, 10000));
  for (int b = 1; b <= NBROKERS; b++) {
    gw_devkafka_broker_set_up(fx.dk, b, false);
  }
  bool down = false;
  deliveries d; /* reported at the latest by close_producer below */
  memset(&d, 0, sizeof d);
  int produced = 0;
  for (int i = 0; i < 2 && !down; i++) {
    /* A connection is noticed as gone when it is used: a record makes sure it is. */
    if (gw_kafka_produce(p, TOPIC, "k", 1, "v", 1, NULL, 0, on_delivery, &d) == 0) {
      produced++;
    }
    down = run_until(producer_is_disconnected, p, 8000);
  }
  CHECK(down);
  /* Every record has failed before the brokers return, so only the probe can see them. */
  gw_test_count w = {&d.calls, produced};
  CHECK(run_until(gw_test_count_reached, &w, 10000));
  CHECK_INT_EQ(gw_kafka_producer_queue_len(p), 0);
  for (int b = 1; b <= NBROKERS; b++) {
    gw_devkafka_broker_set_up(fx.dk, b, true);
  }
  CHECK(run_until(producer_is_connected, p, 15000));
  CHECK(close_producer(p, 5000));
}

/* ------------------------------------------------------------- embedded cluster sockets */

typedef struct accepted_probe {
  unsigned port; /* a broker's port */
  int nodelay;   /* -1 until the broker's side of a connection was found */
} accepted_probe;

/* The broker's side of a connection lives in this process (the mock cluster runs in its
 * threads): an open, non-listening socket whose local port is the broker's. */
static bool broker_side_found(void *arg) {
  accepted_probe *pr = arg;
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) {
    return false;
  }
  for (struct dirent *e; pr->nodelay < 0 && (e = readdir(dir)) != NULL;) {
    int fd = atoi(e->d_name);
    int listening = 1;
    socklen_t len = sizeof listening;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    if (fd <= 2 || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0 || addr.sin_family != AF_INET ||
        ntohs(addr.sin_port) != pr->port) {
      continue;
    }
    len = sizeof pr->nodelay;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &pr->nodelay, &len);
  }
  closedir(dir);
  return pr->nodelay >= 0;
}

/* Kafka brokers answer without Nagle's delay; so must the embedded ones, or a client with
 * several requests in flight waits ~40 ms (its delayed ACK) for every answer after the first. */
static void test_brokers_accept_with_nodelay(void) {
  const char *bootstrap = gw_devkafka_bootstrap(fx.dk);
  const char *colon = strchr(bootstrap, ':');
  CHECK(colon != NULL);
  accepted_probe pr = {(unsigned)atoi(colon + 1), -1};
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pr.port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  CHECK_INT_EQ(connect(c, (struct sockaddr *)&to, sizeof to), 0);
  if (!run_until(broker_side_found, &pr, 5000)) {
    fprintf(stderr, "  the broker's side of a connection to port %u never appeared\n", pr.port);
  }
  CHECK_INT_EQ(pr.nodelay, 1);
  close(c);
}

int main(void) {
  uv_loop_init(&fx.loop);
  gw_log_init(&fx.log, "test_kafka", GW_LOG_WARN);
  static const char *const topics[] = {TOPIC, LOST_TOPIC};
  char err[256] = "";
  if (gw_devkafka_start(&fx.dk, NBROKERS, NPART, topics, 2, err, sizeof err) != 0) {
    fprintf(stderr, "devkafka: %s\n", err);
    return 1;
  }
  GW_RUN(test_brokers_accept_with_nodelay);
  GW_RUN(test_invalid_property_names_it);
  GW_RUN(test_protected_properties_are_refused);
  GW_RUN(test_produce_consume_commit_resume);
  GW_RUN(test_idle_consumer_keeps_its_assignment);
  GW_RUN(test_queue_full_is_enobufs);
  GW_RUN(test_produce_after_close_is_eshutdown);
  GW_RUN(test_delivery_fails_when_brokers_down);
  GW_RUN(test_connected_recovers_after_outage);
  GW_RUN(test_producer_fatal_error);
  GW_RUN(test_consumer_fatal_error);
  GW_RUN(test_records_dropped_before_read_are_reported);
  gw_devkafka_stop(fx.dk);
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  int rc = gw_test_finish();
  /* Every handle of every client must be closed by now. */
  if (uv_loop_close(&fx.loop) != 0) {
    fprintf(stderr, "FAIL: handles left open on the loop\n");
    rc = 1;
  }
  return rc;
}
