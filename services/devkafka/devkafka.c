/* gw_devkafka: librdkafka's mock cluster with the goodwill topics. See devkafka.h. */
#include "devkafka.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "goodwill/buf.h"

/* What the mock's log says was appended to one partition (see devkafka_count_append). */
typedef struct appended {
  uint64_t bytes, records;
} appended;

struct gw_devkafka {
  rd_kafka_t *rk; /* the handle the mock cluster requires for its bookkeeping */
  rd_kafka_mock_cluster_t *mc;
  rd_kafka_t *watch; /* a client of the cluster for the watermarks, made by the first sample */
  int nbrokers;
  char *bootstrap;
  char **topics; /* the topics created at start, each with npartitions partitions */
  size_t ntopics;
  int npartitions;
  pthread_mutex_t lock; /* appended, written on the mock cluster's thread */
  appended *appended;   /* ntopics x npartitions */
};

/*
 * The mock cluster says, at debug level, what each append did: "Broker 1: Log append <topic>
 * [<partition>] <n> messages, <bytes> bytes at offset <o> (log now <start>..<end>, ...)"
 * (librdkafka 2.0.2's rdkafka_mock.c; it exposes no other account of a partition's size).
 * This counts them, for the size estimate of gw_devkafka_sample. If a later librdkafka words it
 * otherwise the estimate is missing (both counts 0) but nothing else changes: the dropped
 * records are seen by their watermarks.
 */
static void devkafka_count_append(gw_devkafka *d, const char *buf) {
  const char *p = strstr(buf, "Log append ");
  char topic[256];
  int partition;
  unsigned long long records, bytes;
  if (p == NULL || sscanf(p, "Log append %255s [%d] %llu messages, %llu bytes", topic, &partition,
                          &records, &bytes) != 4) {
    return;
  }
  for (size_t t = 0; t < d->ntopics; t++) {
    if (strcmp(d->topics[t], topic) == 0 && partition >= 0 && partition < d->npartitions) {
      pthread_mutex_lock(&d->lock);
      appended *a = &d->appended[t * (size_t)d->npartitions + (size_t)partition];
      a->bytes += bytes;
      a->records += records;
      pthread_mutex_unlock(&d->lock);
      return;
    }
  }
}

/* The mock cluster logs from its own threads, where gw_log may not be used: write one JSON
 * line per message with a single fputs (stdio locks the stream). Debug lines (the mock's
 * account of its work) are read, not written. */
static void devkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  gw_devkafka *d = rd_kafka_opaque(rk);
  if (level > 4) {
    if (d != NULL) {
      devkafka_count_append(d, buf);
    }
    return;
  }
  gw_buf line = GW_BUF_INIT;
  gw_buf_printf(&line,
                "{\"level\":\"%s\",\"component\":\"devkafka\",\"msg\":\"librdkafka\","
                "\"facility\":",
                level <= 3   ? "error"
                : level == 4 ? "warn"
                             : "info");
  gw_buf_json_string(&line, fac);
  gw_buf_puts(&line, ",\"text\":");
  gw_buf_json_string(&line, buf);
  gw_buf_puts(&line, "}\n");
  fputs(line.data, stderr);
  fflush(stderr);
  gw_buf_free(&line);
}

/*
 * Turns Nagle's algorithm off on the mock brokers' listening sockets; Linux copies the option
 * to every connection they accept. Real Kafka brokers set TCP_NODELAY on their connections,
 * the mock cluster of librdkafka 2.0.2 does not: there, a client with several requests in
 * flight on one connection (a batch spanning partitions) got the second and later answers
 * only after its delayed ACK of the first, about 40 ms later. The listeners are found among
 * the process's open descriptors by their port, since the mock cluster does not expose them.
 */
static void devkafka_disable_nagle(const char *bootstrap) {
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) {
    return; /* Not Linux /proc: answers are slower, never wrong. */
  }
  for (struct dirent *e; (e = readdir(dir)) != NULL;) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end != '\0' || end == e->d_name || fd == dirfd(dir)) {
      continue;
    }
    int listening = 0;
    socklen_t len = sizeof listening;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening ||
        getsockname((int)fd, (struct sockaddr *)&addr, &alen) != 0 || addr.sin_family != AF_INET) {
      continue;
    }
    char port[16];
    snprintf(port, sizeof port, ":%u", (unsigned)ntohs(addr.sin_port));
    for (const char *p = strstr(bootstrap, port); p != NULL; p = strstr(p + 1, port)) {
      char next = p[strlen(port)];
      if (next == '\0' || next == ',') {
        int one = 1;
        (void)setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        break;
      }
    }
  }
  closedir(dir);
}

int gw_devkafka_start(gw_devkafka **out, int nbrokers, int npartitions, const char *const *topics,
                      size_t ntopics, char *err, size_t errlen) {
  *out = NULL;
  if (nbrokers < 1 || nbrokers > 9) {
    gw_errf(err, errlen, "brokers must be within 1..9");
    return -EINVAL;
  }
  if (npartitions < 1 || npartitions > 1000) {
    gw_errf(err, errlen, "partitions must be within 1..1000");
    return -EINVAL;
  }
  gw_devkafka *d = calloc(1, sizeof *d);
  if (d == NULL) {
    abort();
  }
  pthread_mutex_init(&d->lock, NULL);
  d->nbrokers = nbrokers;
  d->npartitions = npartitions;
  d->ntopics = ntopics;
  d->topics = calloc(ntopics > 0 ? ntopics : 1, sizeof *d->topics);
  d->appended = calloc(ntopics > 0 ? ntopics * (size_t)npartitions : 1, sizeof *d->appended);
  if (d->topics == NULL || d->appended == NULL) {
    abort();
  }
  for (size_t i = 0; i < ntopics; i++) {
    d->topics[i] = strdup(topics[i]);
    if (d->topics[i] == NULL) {
      abort();
    }
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* Warnings and errors are written (the idle bookkeeping handle has nothing else to say); the
   * mock's debug lines are read for its account of appends (devkafka_count_append). */
  char rderr[512];
  if (rd_kafka_conf_set(conf, "log_level", "4", rderr, sizeof rderr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "debug", "mock", rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "devkafka: %s", rderr);
    gw_devkafka_stop(d);
    return -EINVAL;
  }
  rd_kafka_conf_set_log_cb(conf, devkafka_log_cb);
  rd_kafka_conf_set_opaque(conf, d);
  d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
  if (d->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "devkafka: %s", rderr);
    gw_devkafka_stop(d);
    return -EIO;
  }
  d->mc = rd_kafka_mock_cluster_new(d->rk, nbrokers);
  if (d->mc == NULL) {
    gw_errf(err, errlen, "devkafka: could not start the mock cluster");
    gw_devkafka_stop(d);
    return -EIO;
  }
  int rf = nbrokers < 3 ? nbrokers : 3;
  for (size_t i = 0; i < ntopics; i++) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(d->mc, topics[i], npartitions, rf);
    /* The mock picks leaders at random; Kafka spreads them, and tests that aim a fault at one
     * partition's broker need to know which: partition p is led by broker p % nbrokers + 1. */
    for (int p = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && p < npartitions; p++) {
      e = rd_kafka_mock_partition_set_leader(d->mc, topics[i], p, p % nbrokers + 1);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      gw_errf(err, errlen, "devkafka: creating topic %s: %s", topics[i], rd_kafka_err2str(e));
      gw_devkafka_stop(d);
      return -EIO;
    }
  }
  d->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(d->mc));
  if (d->bootstrap == NULL) {
    abort();
  }
  devkafka_disable_nagle(d->bootstrap);
  *out = d;
  return 0;
}

/* The watermark client, made on first use (so that a cluster never sampled has no client
 * talking to it): errors only, it is quiet unless the cluster is unreachable. */
static rd_kafka_t *devkafka_watch_client(gw_devkafka *d) {
  pthread_mutex_lock(&d->lock);
  if (d->watch == NULL) {
    char rderr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", d->bootstrap, rderr, sizeof rderr) ==
            RD_KAFKA_CONF_OK &&
        rd_kafka_conf_set(conf, "log_level", "3", rderr, sizeof rderr) == RD_KAFKA_CONF_OK &&
        rd_kafka_conf_set(conf, "client.id", "goodwill-devkafka-watch", rderr, sizeof rderr) ==
            RD_KAFKA_CONF_OK) {
      rd_kafka_conf_set_log_cb(conf, devkafka_log_cb);
      d->watch = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    }
    if (d->watch == NULL) {
      rd_kafka_conf_destroy(conf);
    }
  }
  rd_kafka_t *rk = d->watch;
  pthread_mutex_unlock(&d->lock);
  return rk;
}

const char *gw_devkafka_bootstrap(const gw_devkafka *d) {
  return d->bootstrap;
}

int gw_devkafka_broker_set_up(gw_devkafka *d, int broker_id, bool up) {
  if (broker_id < 1 || broker_id > d->nbrokers) {
    return -EINVAL;
  }
  rd_kafka_resp_err_t e = up ? rd_kafka_mock_broker_set_up(d->mc, broker_id)
                             : rd_kafka_mock_broker_set_down(d->mc, broker_id);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO;
}

int gw_devkafka_set_leader(gw_devkafka *d, const char *topic, int partition, int broker_id,
                           char *err, size_t errlen) {
  bool known = false;
  for (size_t t = 0; t < d->ntopics && !known; t++) {
    known = strcmp(d->topics[t], topic) == 0;
  }
  if (!known) {
    gw_errf(err, errlen, "unknown topic \"%s\" (one of the topics created at start)", topic);
    return -EINVAL;
  }
  if (partition < 0 || partition >= d->npartitions) {
    gw_errf(err, errlen, "partition must be within 0..%d", d->npartitions - 1);
    return -EINVAL;
  }
  if (broker_id < 1 || broker_id > d->nbrokers) {
    gw_errf(err, errlen, "broker must be within 1..%d", d->nbrokers);
    return -EINVAL;
  }
  rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(d->mc, topic, partition, broker_id);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    gw_errf(err, errlen, "%s", rd_kafka_err2str(e));
    return -EIO;
  }
  return 0;
}

int gw_devkafka_fail_produce(gw_devkafka *d, size_t count) {
  /* ApiKey 0 is Produce in the Kafka protocol. */
  for (size_t i = 0; i < count; i++) {
    rd_kafka_mock_push_request_errors(d->mc, 0, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  }
  return 0;
}

int gw_devkafka_refuse_produce_too_large(gw_devkafka *d, size_t count) {
  for (size_t i = 0; i < count; i++) {
    rd_kafka_mock_push_request_errors(d->mc, 0, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  }
  return 0;
}

/* The Kafka protocol's API keys by name, for gw_devkafka_push_request_errors. */
static const struct {
  const char *name;
  int16_t key;
} api_keys[] = {
    {"Produce", 0},      {"Fetch", 1},        {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9},  {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13},  {"SyncGroup", 14},       {"DescribeGroups", 15},
    {"ListGroups", 16},  {"ApiVersions", 18}, {"InitProducerId", 22},  {"EndTxn", 26},
};

/* A non-negative decimal number filling s, or -1. */
static long parse_number(const char *s) {
  char *end;
  if (s[0] < '0' || s[0] > '9') {
    return -1;
  }
  long v = strtol(s, &end, 10);
  return *end == '\0' ? v : -1;
}

/* api and error by name or number (see devkafka.h); NO_ERROR only when allow_none. */
static int resolve_fault(const char *api, const char *error, bool allow_none, int16_t *key_out,
                         rd_kafka_resp_err_t *code_out, char *err, size_t errlen) {
  long key = parse_number(api);
  for (size_t i = 0; key < 0 && i < sizeof api_keys / sizeof api_keys[0]; i++) {
    if (strcmp(api, api_keys[i].name) == 0) {
      key = api_keys[i].key;
    }
  }
  if (key < 0 || key > 100) {
    gw_errf(err, errlen, "unknown Kafka API \"%s\" (a name such as Produce or Heartbeat, or a key)",
            api);
    return -EINVAL;
  }
  /* By name first; a number (librdkafka's own codes are negative) otherwise. */
  const struct rd_kafka_err_desc *descs;
  size_t ndescs;
  rd_kafka_get_err_descs(&descs, &ndescs);
  bool found = false;
  long code = 0;
  for (size_t i = 0; i < ndescs && !found; i++) {
    if (descs[i].name != NULL && strcmp(rd_kafka_err2name(descs[i].code), error) == 0) {
      code = descs[i].code;
      found = true;
    }
  }
  if (!found) {
    long n = parse_number(error[0] == '-' ? error + 1 : error);
    found = n >= 0;
    code = error[0] == '-' ? -n : n;
  }
  if (!found || (code == 0 && !allow_none)) {
    gw_errf(err, errlen,
            "unknown Kafka error \"%s\" (a name such as OUT_OF_ORDER_SEQUENCE_NUMBER, or a code%s)",
            error, allow_none ? "; NO_ERROR" : "");
    return -EINVAL;
  }
  *key_out = (int16_t)key;
  *code_out = (rd_kafka_resp_err_t)code;
  return 0;
}

int gw_devkafka_push_request_errors(gw_devkafka *d, const char *api, const char *error,
                                    size_t count, char *err, size_t errlen) {
  int16_t key;
  rd_kafka_resp_err_t code;
  int rc = resolve_fault(api, error, false, &key, &code, err, errlen);
  if (rc != 0) {
    return rc;
  }
  if (count == 0 || count > 10000) {
    gw_errf(err, errlen, "count must be within 1..10000");
    return -EINVAL;
  }
  for (size_t i = 0; i < count; i++) {
    rd_kafka_mock_push_request_errors(d->mc, key, 1, code);
  }
  return 0;
}

int gw_devkafka_push_broker_request_error(gw_devkafka *d, int broker_id, const char *api,
                                          const char *error, int delay_ms, char *err,
                                          size_t errlen) {
  int16_t key;
  rd_kafka_resp_err_t code;
  int rc = resolve_fault(api, error, true, &key, &code, err, errlen);
  if (rc != 0) {
    return rc;
  }
  if (broker_id < 1 || broker_id > d->nbrokers) {
    gw_errf(err, errlen, "broker must be within 1..%d", d->nbrokers);
    return -EINVAL;
  }
  if (delay_ms < 0 || delay_ms > 600000) {
    gw_errf(err, errlen, "delay_ms must be within 0..600000");
    return -EINVAL;
  }
  rd_kafka_resp_err_t e =
      rd_kafka_mock_broker_push_request_error_rtts(d->mc, broker_id, key, 1, code, delay_ms);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    gw_errf(err, errlen, "%s", rd_kafka_err2str(e));
    return -EIO;
  }
  return 0;
}

size_t gw_devkafka_npartitions(const gw_devkafka *d) {
  return d->ntopics * (size_t)d->npartitions;
}

int gw_devkafka_sample(gw_devkafka *d, gw_devkafka_partition *out, int timeout_ms) {
  size_t ok = 0;
  rd_kafka_t *watch = devkafka_watch_client(d);
  for (size_t t = 0; t < d->ntopics; t++) {
    for (int p = 0; p < d->npartitions; p++) {
      size_t i = t * (size_t)d->npartitions + (size_t)p;
      gw_devkafka_partition *o = &out[i];
      o->topic = d->topics[t];
      o->partition = p;
      int64_t low = -1, high = -1;
      if (watch != NULL &&
          rd_kafka_query_watermark_offsets(watch, d->topics[t], p, &low, &high, timeout_ms) ==
              RD_KAFKA_RESP_ERR_NO_ERROR) {
        ok++;
      } else {
        low = high = -1;
      }
      o->low = low;
      o->high = high;
      pthread_mutex_lock(&d->lock);
      o->appended_bytes = d->appended[i].bytes;
      o->appended_records = d->appended[i].records;
      pthread_mutex_unlock(&d->lock);
    }
  }
  return ok > 0 || gw_devkafka_npartitions(d) == 0 ? 0 : -EIO;
}

void gw_devkafka_stop(gw_devkafka *d) {
  if (d == NULL) {
    return;
  }
  /* The client first, so it does not see the cluster go away. */
  if (d->watch != NULL) {
    rd_kafka_destroy(d->watch);
  }
  if (d->mc != NULL) {
    rd_kafka_mock_cluster_destroy(d->mc);
  }
  if (d->rk != NULL) {
    rd_kafka_destroy(d->rk);
  }
  for (size_t i = 0; i < d->ntopics; i++) {
    free(d->topics[i]);
  }
  free(d->topics);
  free(d->appended);
  pthread_mutex_destroy(&d->lock);
  free(d->bootstrap);
  free(d);
}
