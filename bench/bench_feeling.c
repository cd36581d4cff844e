/*
 * bench_feeling: utterances scored per CPU-second by the feeling model alone (no I/O in the
 * timed part). Reads the texts of a TSV file whose last column is the text, such as
 * eval/vader/tweets_GroundTruth.tsv (id, mean, text), then scores them over and over for at
 * least two CPU-seconds, or exactly N times over with --rounds N (for instruction counts under
 * `valgrind --tool=callgrind`, which are repeatable where CPU time on a shared machine is not).
 *
 * With --explain every text is scored into an explanation sink (gw_feeling_explain, reused), to
 * measure what recording an explanation costs; without it, the scoring every caller runs.
 *
 *   bench_feeling PATH [--lexicon FILE] [--rounds N] [--explain]
 */
#include "goodwill/feeling.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TEXTS.tsv [--lexicon FILE] [--rounds N] [--explain]\n", argv[0]);
    return 2;
  }
  const char *lexicon = NULL;
  long fixed_rounds = 0;
  int explain = 0;
  for (int a = 2; a < argc; a++) {
    if (strcmp(argv[a], "--explain") == 0) {
      explain = 1;
    } else if (strcmp(argv[a], "--lexicon") == 0 && a + 1 < argc) {
      lexicon = argv[++a];
    } else if (strcmp(argv[a], "--rounds") == 0 && a + 1 < argc) {
      fixed_rounds = strtol(argv[++a], NULL, 10);
    } else {
      fprintf(stderr, "unknown option %s\n", argv[a]);
      return 2;
    }
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  char **texts = NULL;
  size_t *lens = NULL, n = 0, cap = 0, bytes = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  int first = 1;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    if (first) { /* header */
      first = 0;
      continue;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = 0;
    char *tab = strrchr(line, '\t');
    const char *t = tab ? tab + 1 : line;
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      texts = realloc(texts, cap * sizeof(*texts));
      lens = realloc(lens, cap * sizeof(*lens));
      if (!texts || !lens)
        return 1;
    }
    texts[n] = strdup(t);
    lens[n] = strlen(t);
    bytes += lens[n];
    n++;
  }
  free(line);
  fclose(f);
  if (n == 0) {
    fprintf(stderr, "%s: no texts\n", argv[1]);
    return 1;
  }

  char err[256];
  gw_feeling_model *m;
  /* The loaded model's heap bytes, as glibc's allocator counts them (mallinfo2). */
  size_t heap0 = mallinfo2().uordblks;
  double t0 = cpu_seconds();
  if (gw_feeling_model_load(&m, lexicon, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double load_s = cpu_seconds() - t0;
  size_t model_bytes = mallinfo2().uordblks - heap0;

  size_t scored = 0, rounds = 0;
  double sink = 0;
  gw_feeling_explain x;
  gw_feeling_explain_init(&x);
  t0 = cpu_seconds();
  double elapsed;
  do {
    for (size_t i = 0; i < n; i++) {
      gw_utterance_score s;
      if (explain)
        gw_feeling_score_utterance_explained(m, texts[i], lens[i], &s, &x);
      else
        gw_feeling_score_utterance(m, texts[i], lens[i], &s);
      sink += s.valence;
    }
    scored += n;
    rounds++;
    elapsed = cpu_seconds() - t0;
  } while (fixed_rounds > 0 ? (long)rounds < fixed_rounds : elapsed < 2.0);

  gw_feeling_explain_free(&x);
  printf("model            %s%s\n", gw_feeling_model_version(m), explain ? " (explained)" : "");
  printf("lexicon load     %.2f ms CPU\n", load_s * 1e3);
  printf("lexicon memory   %.0f KiB (heap of the loaded model)\n", (double)model_bytes / 1024.0);
  printf("texts            %zu (mean %.0f bytes)\n", n, (double)bytes / (double)n);
  printf("scored           %zu in %.2f CPU-s (%zu rounds)\n", scored, elapsed, rounds);
  printf("utterances/CPU-s %.0f\n", (double)scored / elapsed);
  printf("MB/CPU-s         %.1f\n", (double)bytes * (double)rounds / elapsed / 1e6);
  printf("(checksum %.3f)\n", sink);
  gw_feeling_model_free(m);
  for (size_t i = 0; i < n; i++)
    free(texts[i]);
  free(texts);
  free(lens);
  return 0;
}
