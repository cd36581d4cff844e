/*
 * bench_event_json: CPU microseconds per event of gw_event_parse_json alone (no HTTP, no
 * Kafka), on NDJSON bodies of N events cut from a goodwill-gen file, as goodwill-ingest parses
 * an application/x-ndjson request. Each round parses every body of the file once and packs
 * every accepted event (as ingest does before producing); a run is at least one CPU-second of
 * rounds; the program prints each run and the median of the runs.
 *
 *   goodwill-gen --seed 4 --interactions 2000 --teams 20 --tenant bench > events.ndjson
 *   bench_event_json events.ndjson [--per-body 100] [--runs 5]
 */
#include "goodwill/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct body {
  const char *start;
  size_t len;
} body;

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s EVENTS.ndjson [--per-body N] [--runs R]\n", argv[0]);
    return 2;
  }
  long per_body = 100, runs = 5;
  for (int a = 2; a + 1 < argc; a += 2) {
    if (strcmp(argv[a], "--per-body") == 0) {
      per_body = strtol(argv[a + 1], NULL, 10);
    } else if (strcmp(argv[a], "--runs") == 0) {
      runs = strtol(argv[a + 1], NULL, 10);
    } else {
      fprintf(stderr, "unknown option %s\n", argv[a]);
      return 2;
    }
  }
  if (per_body < 1 || runs < 1 || runs > 99) {
    fprintf(stderr, "--per-body must be >= 1 and --runs 1..99\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  size_t cap = 1 << 20, len = 0;
  char *data = malloc(cap);
  size_t n;
  while (data != NULL && (n = fread(data + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      cap *= 2;
      data = realloc(data, cap);
    }
  }
  fclose(f);
  if (data == NULL || len == 0) {
    fprintf(stderr, "%s: empty or unreadable\n", argv[1]);
    return 1;
  }

  /* Bodies of per_body lines each, pointing into the file. */
  size_t nbodies = 0, nevents = 0;
  body *bodies = calloc(len / 2 + 1, sizeof(*bodies));
  const char *p = data, *end = data + len;
  while (p < end) {
    const char *s = p;
    long lines = 0;
    while (p < end && lines < per_body) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      p = nl != NULL ? nl + 1 : end;
      lines++;
    }
    bodies[nbodies].start = s;
    bodies[nbodies].len = (size_t)(p - s);
    nbodies++;
    nevents += (size_t)lines;
  }

  /* "now" inside the file's time span, so that no event is too old or too new. */
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  lim.max_future_ms = INT64_MAX / 4;
  lim.max_past_ms = INT64_MAX / 4;
  const int64_t now_ms = (int64_t)time(NULL) * 1000;

  size_t accepted = 0;
  gw_buf packed = GW_BUF_INIT;
  double per_run[99];
  for (long r = 0; r < runs; r++) {
    double t0 = cpu_seconds(), t1;
    size_t rounds = 0;
    do {
      accepted = 0;
      for (size_t b = 0; b < nbodies; b++) {
        gw_event_batch batch;
        gw_event_parse_json(bodies[b].start, bodies[b].len, GW_EVENT_FORMAT_NDJSON, &lim, now_ms,
                            &batch);
        for (size_t i = 0; i < batch.nevents; i++) {
          packed.len = 0;
          gw_event_pack(batch.events[i], &packed);
        }
        accepted += batch.nevents;
        gw_event_batch_free(&batch);
      }
      rounds++;
      t1 = cpu_seconds();
    } while (t1 - t0 < 1.0);
    per_run[r] = (t1 - t0) * 1e6 / ((double)rounds * (double)nevents);
    printf("run %ld: %.3f us/event (%zu rounds)\n", r + 1, per_run[r], rounds);
  }
  qsort(per_run, (size_t)runs, sizeof(double), cmp_double);
  printf("events %zu (accepted %zu) in %zu bodies of up to %ld; median %.3f us/event\n", nevents,
         accepted, nbodies, per_body, per_run[runs / 2]);
  gw_buf_free(&packed);
  free(bodies);
  free(data);
  return accepted == nevents ? 0 : 1;
}
