/*
 * bench_dedupe_memory: what the aggregator's dedupe sets cost in Redis. Starts its own
 * redis-server (no persistence, in a temporary directory, on a free loopback port), adds
 * --ids record ids of the real format (32 hex digits of gw_ids over kind, tenant and event id,
 * as goodwill-scorer derives them) to the sets gw:{bench:<team>}:dedupe:<day> the apply script
 * writes: the ids spread evenly over --teams teams and --days arrival days, one SADD per set per
 * batch of up to --batch ids of a team (the script's one SADD per arrival day set per call;
 * goodwill-aggregator's --max-batch is 500). Prints Redis's used_memory before and after, the
 * bytes per id, the MB per million ids, and what that makes for the sets the default horizon
 * keeps at a million records a day (docs/REDIS_SCHEMA.md, "Dedupe"): a set lives its day + 1
 * day + 15 days, so up to 16 days of ids exist at once; next to it the 401 days the event-day
 * sets of format 1 were kept.
 *
 *   bench_dedupe_memory [--ids N] [--teams T] [--days D] [--batch B]
 *                       [--redis-server PATH]
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "goodwill/aggregates.h"
#include "goodwill/ids.h"
#include "gw_test_redis.h"

/* A field of INFO memory, or -1. */
static long long info_memory(redisContext *c, const char *field) {
  redisReply *r = redisCommand(c, "INFO memory");
  long long v = -1;
  if (r != NULL && (r->type == REDIS_REPLY_STRING)) {
    size_t flen = strlen(field);
    for (const char *p = r->str; p != NULL && *p != '\0';) {
      if (strncmp(p, field, flen) == 0 && p[flen] == ':') {
        v = strtoll(p + flen + 1, NULL, 10);
        break;
      }
      p = strchr(p, '\n');
      if (p != NULL)
        p++;
    }
  }
  if (r)
    freeReplyObject(r);
  return v;
}

static char *version(redisContext *c) {
  static char v[64] = "?";
  redisReply *r = redisCommand(c, "INFO server");
  if (r != NULL && (r->type == REDIS_REPLY_STRING)) {
    const char *p = strstr(r->str, "redis_version:");
    if (p != NULL)
      sscanf(p + 14, "%63[^\r\n]", v);
  }
  if (r)
    freeReplyObject(r);
  return v;
}

static long arg_long(int argc, char **argv, const char *name, long def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return strtol(argv[i + 1], NULL, 10);
  return def;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return def;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc || (strcmp(argv[i], "--ids") != 0 && strcmp(argv[i], "--teams") != 0 &&
                          strcmp(argv[i], "--days") != 0 && strcmp(argv[i], "--batch") != 0 &&
                          strcmp(argv[i], "--redis-server") != 0)) {
      fprintf(stderr,
              "usage: %s [--ids N] [--teams T] [--days D] [--batch B] [--redis-server PATH]\n",
              argv[0]);
      return 2;
    }
  }
  long nids = arg_long(argc, argv, "--ids", 1000000);
  long teams = arg_long(argc, argv, "--teams", 100);
  long days = arg_long(argc, argv, "--days", 1);
  long batch = arg_long(argc, argv, "--batch", 500);
  const char *server = arg_str(argc, argv, "--redis-server", "/usr/bin/redis-server");
  if (nids < 1 || teams < 1 || days < 1 || batch < 1 || batch > GW_AGG_BATCH_MAX) {
    fprintf(stderr, "--ids, --teams, --days >= 1, --batch 1..%d\n", GW_AGG_BATCH_MAX);
    return 2;
  }
  char dir[] = "/tmp/gw-bench-dedupe-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  pid_t pid = -1;
  int port;
  redisContext *c = gw_test_redis_start_server(server, dir, &port, &pid);
  int rc = 1;
  const char **av = NULL;
  size_t *al = NULL;
  char(*ids)[GW_ID_HEX_LEN + 1] = NULL;
  if (c == NULL) {
    fprintf(stderr, "could not start %s\n", server);
    goto out;
  }
  const long long before = info_memory(c, "used_memory");

  /* The ids of (team, day) go to the same set; each team's ids are sent in batches of up to
   * --batch, one SADD per set per batch, pipelined. */
  const int64_t day0 = 1795392000; /* 2026-11-23T00:00:00Z */
  long per_set = (nids + teams * days - 1) / (teams * days);
  long added = 0, commands = 0;
  av = calloc((size_t)batch + 2, sizeof(*av));
  al = calloc((size_t)batch + 2, sizeof(*al));
  ids = calloc((size_t)batch, sizeof(*ids));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long d = 0; d < days && added < nids; d++) {
    for (long t = 0; t < teams && added < nids; t++) {
      char team[32];
      snprintf(team, sizeof(team), "team-%04ld", t);
      gw_buf key = GW_BUF_INIT;
      gw_agg_key_seen(&key, "bench", team, day0 + d * 86400);
      for (long done = 0; done < per_set && added < nids;) {
        long n = per_set - done < batch ? per_set - done : batch;
        if (n > nids - added)
          n = nids - added;
        av[0] = "SADD";
        al[0] = 4;
        av[1] = key.data;
        al[1] = key.len;
        for (long k = 0; k < n; k++) {
          char event_id[48];
          snprintf(event_id, sizeof(event_id), "bench-%ld", added + k);
          gw_id_hasher h;
          gw_id_init(&h);
          gw_id_update_field(&h, "interaction");
          gw_id_update_field(&h, "bench");
          gw_id_update_field(&h, event_id);
          gw_id_final_hex(&h, ids[k]);
          av[2 + k] = ids[k];
          al[2 + k] = GW_ID_HEX_LEN;
        }
        redisAppendCommandArgv(c, (int)n + 2, av, al);
        commands++;
        done += n;
        added += n;
        /* Keep the pipeline short, so the argument vectors can be reused. */
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL ||
            r->type != REDIS_REPLY_INTEGER || r->integer != n) {
          fprintf(stderr, "SADD failed: %s\n", r && r->type == REDIS_REPLY_ERROR ? r->str : "?");
          if (r)
            freeReplyObject(r);
          gw_buf_free(&key);
          goto out;
        }
        freeReplyObject(r);
      }
      gw_buf_free(&key);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const long long after = info_memory(c, "used_memory");
  redisReply *dbs = redisCommand(c, "DBSIZE");
  long long keys = dbs && dbs->type == REDIS_REPLY_INTEGER ? dbs->integer : -1;
  if (dbs)
    freeReplyObject(dbs);

  double per_id = (double)(after - before) / (double)added;
  double mb_per_million = per_id * 1e6 / 1e6;
  gw_agg_horizon hz;
  gw_agg_horizon_default(&hz);
  /* A set lives from its day to day + 1 day + R: R / 1 day + 1 day-sets exist at once, the
   * newest filling. */
  long horizon_days = (long)(gw_agg_replay_window_s(&hz) / 86400) + 1;
  printf("redis %s, %ld ids of %d hex digits in %lld sets (%ld teams x %ld days, %ld per set), "
         "%ld SADDs of up to %ld ids, %.1f s\n",
         version(c), added, GW_ID_HEX_LEN, keys, teams, days, per_set, commands, batch,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  printf("used_memory before %lld, after %lld, delta %lld bytes\n", before, after, after - before);
  printf("bytes per id: %.1f\n", per_id);
  printf("MB (1e6 bytes) per million ids: %.1f\n", mb_per_million);
  printf("default horizon (K 7 d, C 1 d: sets kept their day + 1 d + %" PRId64
         " d, %ld day-sets at once) at 1,000,000 records a day: %.2f GB\n",
         gw_agg_replay_window_s(&hz) / 86400, horizon_days, mb_per_million * horizon_days / 1000);
  printf("format 1 (event-day sets kept 401 days past their day, 401 day-sets) at the same "
         "rate: %.1f GB\n",
         mb_per_million * 401 / 1000);
  rc = 0;
out:
  free(av);
  free(al);
  free(ids);
  if (c)
    redisFree(c);
  gw_test_redis_stop(&pid);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
