/*
 * goodwill-devkafka: an embedded Kafka-protocol cluster (librdkafka's mock cluster) with the
 * goodwill topics, for local stacks and tests. Any Kafka client can connect over TCP.
 *
 * The bootstrap list goes to --bootstrap-file (written atomically, temp file + rename, once
 * the brokers listen, so scripts can wait for the file to appear) or, without it, to stdout
 * as one line. Runs until SIGTERM or SIGINT, then stops the cluster and exits 0.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/config.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"

typedef struct devkafka_config {
  long long brokers;
  long long partitions;
  char *bootstrap_file;
  char *log_level;
} devkafka_config;

static const gw_config_key devkafka_keys[] = {
    {"brokers", GW_CONF_INT, "3", 1, 9, offsetof(devkafka_config, brokers),
     "number of brokers (ids 1..N), all on 127.0.0.1"},
    {"partitions", GW_CONF_INT, "6", 1, 1000, offsetof(devkafka_config, partitions),
     "partitions of each goodwill topic"},
    {"bootstrap-file", GW_CONF_STRING, "", 0, 0, offsetof(devkafka_config, bootstrap_file),
     "write the bootstrap list here (atomically); empty: print it on stdout"},
    {"log-level", GW_CONF_STRING, "info", 0, 0, offsetof(devkafka_config, log_level),
     "debug | info | warn | error"},
};

static int write_file_atomically(const char *path, const char *text) {
  size_t n = strlen(path) + 32;
  char *tmp = malloc(n);
  if (tmp == NULL) {
    return -ENOMEM;
  }
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (f == NULL) {
    int rc = -errno;
    free(tmp);
    return rc;
  }
  int rc = 0;
  if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    rc = -errno;
  }
  if (fclose(f) != 0 && rc == 0) {
    rc = -errno;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = -errno;
  }
  if (rc != 0) {
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

static void on_signal(uv_signal_t *h, int signum) {
  const gw_log *log = h->data;
  GW_LOG(log, GW_LOG_INFO, "stopping", GW_LI("signal", signum));
  uv_stop(h->loop);
}

int main(int argc, char **argv) {
  extern char **environ;
  devkafka_config cfg;
  memset(&cfg, 0, sizeof cfg);
  gw_config_values values = {0};
  char err[512];
  size_t nkeys = sizeof devkafka_keys / sizeof devkafka_keys[0];
  int rc =
      gw_config_load(devkafka_keys, nkeys, &cfg, &values, argc, argv, environ, err, sizeof err);
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-devkafka",
                    "An embedded Kafka-protocol cluster with the goodwill topics.", devkafka_keys,
                    nkeys, stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-devkafka: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  gw_log_level level;
  if (gw_log_level_parse(cfg.log_level, &level) != 0) {
    fprintf(stderr, "goodwill-devkafka: --log-level: unknown level \"%s\"\n", cfg.log_level);
    gw_config_free(&values);
    return 2;
  }
  gw_log log;
  gw_log_init(&log, "devkafka", level);

  static const char *const topics[] = {GW_TOPIC_INTERACTIONS, GW_TOPIC_SCORED, GW_TOPIC_DLQ};
  gw_devkafka *dk = NULL;
  rc = gw_devkafka_start(&dk, (int)cfg.brokers, (int)cfg.partitions, topics, 3, err, sizeof err);
  if (rc != 0) {
    GW_LOG(&log, GW_LOG_ERROR, "cannot start the cluster", GW_LS("reason", err));
    gw_config_free(&values);
    return 1;
  }
  const char *bootstrap = gw_devkafka_bootstrap(dk);
  if (cfg.bootstrap_file[0] != '\0') {
    rc = write_file_atomically(cfg.bootstrap_file, bootstrap);
    if (rc != 0) {
      GW_LOG(&log, GW_LOG_ERROR, "cannot write the bootstrap file",
             GW_LS("path", cfg.bootstrap_file), GW_LS("reason", strerror(-rc)));
      gw_devkafka_stop(dk);
      gw_config_free(&values);
      return 1;
    }
  } else {
    printf("%s\n", bootstrap);
    fflush(stdout);
  }
  GW_LOG(&log, GW_LOG_INFO, "listening", GW_LS("bootstrap", bootstrap),
         GW_LI("brokers", cfg.brokers), GW_LI("partitions", cfg.partitions));

  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_t sigterm, sigint;
  uv_signal_init(&loop, &sigterm);
  uv_signal_init(&loop, &sigint);
  sigterm.data = sigint.data = &log;
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);

  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  gw_devkafka_stop(dk);
  if (cfg.bootstrap_file[0] != '\0') {
    /* A stale file would point the next script at a cluster that is gone. */
    unlink(cfg.bootstrap_file);
  }
  GW_LOG(&log, GW_LOG_INFO, "stopped");
  gw_config_free(&values);
  return 0;
}
