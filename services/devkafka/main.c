/*
 * goodwill-devkafka: an embedded Kafka-protocol cluster (librdkafka's mock cluster) with the
 * goodwill topics, for local stacks and tests. Any Kafka client can connect over TCP.
 *
 * The bootstrap list goes to --bootstrap-file (written atomically, temp file + rename, once
 * the brokers listen, so scripts can wait for the file to appear) or, without it, to stdout
 * as one line. Runs (services/daemon.c) until SIGTERM or SIGINT, then stops the cluster and
 * exits 0.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "goodwill/config.h"
#include "devkafka.h"
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

static int start_devkafka(gw_daemon *d) {
  const devkafka_config *cfg = d->flags;
  gw_devkafka **dk = d->app;
  static const char *const topics[] = {GW_TOPIC_INTERACTIONS, GW_TOPIC_SCORED, GW_TOPIC_DLQ};
  char err[512];
  /* The cluster runs on librdkafka's threads: the loop only waits for a signal. */
  int rc =
      gw_devkafka_start(dk, (int)cfg->brokers, (int)cfg->partitions, topics, 3, err, sizeof err);
  if (rc != 0) {
    GW_LOG(&d->log, GW_LOG_ERROR, "cannot start the cluster", GW_LS("reason", err));
    return rc;
  }
  const char *bootstrap = gw_devkafka_bootstrap(*dk);
  if (cfg->bootstrap_file[0] != '\0') {
    rc = write_file_atomically(cfg->bootstrap_file, bootstrap);
    if (rc != 0) {
      GW_LOG(&d->log, GW_LOG_ERROR, "cannot write the bootstrap file",
             GW_LS("path", cfg->bootstrap_file), GW_LS("reason", strerror(-rc)));
      gw_devkafka_stop(*dk);
      *dk = NULL;
      return rc;
    }
  } else {
    printf("%s\n", bootstrap);
    fflush(stdout);
  }
  GW_LOG(&d->log, GW_LOG_INFO, "listening", GW_LS("bootstrap", bootstrap),
         GW_LI("brokers", cfg->brokers), GW_LI("partitions", cfg->partitions));
  return 0;
}

/* Nothing to drain: the cluster stops in finish, once the loop has ended. */
static void stop_devkafka(gw_daemon *d) {
  gw_daemon_stopped(d);
}

static void finish_devkafka(gw_daemon *d) {
  const devkafka_config *cfg = d->flags;
  gw_devkafka **dk = d->app;
  gw_devkafka_stop(*dk);
  *dk = NULL;
  if (cfg->bootstrap_file[0] != '\0') {
    /* A stale file would point the next script at a cluster that is gone. */
    unlink(cfg->bootstrap_file);
  }
  GW_LOG(&d->log, GW_LOG_INFO, "stopped");
}

static const gw_daemon_def devkafka_daemon = {
    .program = "goodwill-devkafka",
    .component = "devkafka",
    .summary = "An embedded Kafka-protocol cluster with the goodwill topics.",
    .keys = devkafka_keys,
    .nkeys = sizeof devkafka_keys / sizeof devkafka_keys[0],
    .log_level_offset = offsetof(devkafka_config, log_level),
    .stop_message = "stopping",
    .start = start_devkafka,
    .stop = stop_devkafka,
    .finish = finish_devkafka,
};

int main(int argc, char **argv) {
  devkafka_config cfg;
  memset(&cfg, 0, sizeof cfg);
  gw_devkafka *dk = NULL;
  return gw_daemon_main(argc, argv, &devkafka_daemon, &cfg, &dk);
}
