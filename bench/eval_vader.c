/*
 * eval_vader: how the feeling model's utterance valence agrees with human raters on the four
 * gold-standard sets of Hutto & Gilbert (ICWSM 2014): Pearson r against the mean human rating,
 * and 3-class (negative / neutral / positive) precision, recall and F1, classes by the
 * thresholds -0.05 / +0.05 on both the model's valence and the human mean divided by 4.
 * P/R/F1 are averaged over the classes weighted by their support. The paper's Table 4 rows
 * for VADER and Hu-Liu04 are printed alongside for comparison.
 *
 *   eval_vader DIR [--lexicon FILE]     (DIR holds *_GroundTruth.tsv, paper_table4_results.tsv)
 *
 * General-domain text (tweets, reviews, editorials): this measures valence only, and no entry
 * of the project's lexicon is tuned to these items.
 */
#include "goodwill/feeling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct corpus {
  const char *file, *key;
} corpus;

static int cls(double v) {
  return v <= -0.05 ? 0 : v >= 0.05 ? 2 : 1;
}

static void paper_rows(const char *dir, const char *key) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/paper_table4_results.tsv", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    if (line[0] == '#' || strncmp(line, key, strlen(key)) != 0)
      continue;
    char corp[64], method[64];
    double r, p, rc, f1;
    if (sscanf(line, "%63[^\t]\t%63[^\t]\t%lf\t%lf\t%lf\t%lf", corp, method, &r, &p, &rc, &f1) ==
            6 &&
        (strcmp(method, "VADER") == 0 || strcmp(method, "Hu-Liu04") == 0 ||
         strcmp(method, "Ind. Humans") == 0))
      printf("  %-14s %-12s r=%.3f  P=%.2f R=%.2f F1=%.2f  (paper, Table 4)\n", corp, method, r, p,
             rc, f1);
  }
  fclose(f);
}

static int eval(const gw_feeling_model *m, const char *dir, const corpus *c) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", dir, c->file);
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  size_t n = 0;
  size_t conf[3][3] = {{0}}; /* [human][model] */
  int first = 1;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (first) {
      first = 0;
      continue;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = 0;
    char *t1 = strchr(line, '\t');
    char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
      continue;
    double human = strtod(t1 + 1, NULL);
    gw_utterance_score s;
    gw_feeling_score_utterance(m, t2 + 1, strlen(t2 + 1), &s);
    double x = s.valence, y = human;
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
    n++;
    conf[cls(human / 4.0)][cls(x)]++;
  }
  free(line);
  fclose(f);
  double r = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
  double wp = 0, wr = 0, wf = 0;
  for (int k = 0; k < 3; k++) {
    size_t tp = conf[k][k], support = 0, predicted = 0;
    for (int j = 0; j < 3; j++) {
      support += conf[k][j];
      predicted += conf[j][k];
    }
    double p = predicted ? (double)tp / predicted : 0;
    double rc = support ? (double)tp / support : 0;
    double f1 = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
    wp += p * support / n;
    wr += rc * support / n;
    wf += f1 * support / n;
  }
  printf("%-14s n=%-6zu r=%.3f  P=%.2f R=%.2f F1=%.2f  (%s)\n", c->key, n, r, wp, wr, wf,
         gw_feeling_model_version(m));
  paper_rows(dir, c->key);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [--lexicon FILE]\n", argv[0]);
    return 2;
  }
  const char *lexicon = argc >= 4 && strcmp(argv[2], "--lexicon") == 0 ? argv[3] : NULL;
  gw_feeling_model *m;
  char err[256];
  if (gw_feeling_model_load(&m, lexicon, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  static const corpus corpora[] = {
      {"tweets_GroundTruth.tsv", "tweets_4200"},
      {"movieReviewSnippets_GroundTruth.tsv", "movie_10605"},
      {"amazonReviewSnippets_GroundTruth.tsv", "amazon_3708"},
      {"nytEditorialSnippets_GroundTruth.tsv", "nyt_5190"},
  };
  int rc = 0;
  for (size_t i = 0; i < sizeof(corpora) / sizeof(corpora[0]); i++)
    if (eval(m, argv[1], &corpora[i]) < 0)
      rc = 1;
  gw_feeling_model_free(m);
  return rc;
}
