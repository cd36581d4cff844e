/* gw_devkafka: librdkafka's mock cluster with the goodwill topics. See devkafka.h. */
#include "devkafka.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "goodwill/buf.h"

struct gw_devkafka {
  rd_kafka_t *rk; /* the handle the mock cluster requires for its bookkeeping */
  rd_kafka_mock_cluster_t *mc;
  int nbrokers;
  char *bootstrap;
};

/* The mock cluster logs from its own threads, where gw_log may not be used: write one JSON
 * line per message with a single fputs (stdio locks the stream). */
static void devkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
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
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* Warnings and errors only: the idle bookkeeping handle has nothing else to say. */
  char rderr[512];
  if (rd_kafka_conf_set(conf, "log_level", "4", rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "devkafka: %s", rderr);
    return -EINVAL;
  }
  rd_kafka_conf_set_log_cb(conf, devkafka_log_cb);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
  if (rk == NULL) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "devkafka: %s", rderr);
    return -EIO;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
  if (mc == NULL) {
    rd_kafka_destroy(rk);
    gw_errf(err, errlen, "devkafka: could not start the mock cluster");
    return -EIO;
  }
  int rf = nbrokers < 3 ? nbrokers : 3;
  for (size_t i = 0; i < ntopics; i++) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[i], npartitions, rf);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      gw_errf(err, errlen, "devkafka: creating topic %s: %s", topics[i], rd_kafka_err2str(e));
      rd_kafka_mock_cluster_destroy(mc);
      rd_kafka_destroy(rk);
      return -EIO;
    }
  }
  gw_devkafka *d = calloc(1, sizeof *d);
  if (d == NULL) {
    abort();
  }
  d->rk = rk;
  d->mc = mc;
  d->nbrokers = nbrokers;
  d->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(mc));
  if (d->bootstrap == NULL) {
    abort();
  }
  devkafka_disable_nagle(d->bootstrap);
  *out = d;
  return 0;
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

void gw_devkafka_stop(gw_devkafka *d) {
  if (d == NULL) {
    return;
  }
  rd_kafka_mock_cluster_destroy(d->mc);
  rd_kafka_destroy(d->rk);
  free(d->bootstrap);
  free(d);
}
