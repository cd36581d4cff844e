/*
 * Fuzz target for lexicon files (gw_feeling_model_parse): the project's format, VADER-style and
 * AFINN-style, as an operator hands them to goodwill-score --lexicon and goodwill-scorer. A
 * lexicon is configuration, but a wrong or corrupt file must give an error naming its line,
 * never a crash or a model that scores outside its ranges. The same bytes are then read as a
 * lexicon overlay (--lexicon-overlay, gw_feeling_model_parse_overlaid) over a small base, which
 * must hold to the same rules.
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: a refused file has
 * a message that names the source; an accepted one has a model version and scores a few
 * utterances (including the input's own first bytes) with a finite valence in [-1, 1] and
 * feeling intensities in [0, 1].
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/feeling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_score(const gw_feeling_model *m, const char *text, size_t len) {
  gw_utterance_score s;
  gw_feeling_score_utterance(m, text, len, &s);
  if (!isfinite(s.valence) || s.valence < -1 || s.valence > 1 || !(s.empathy >= 0) ||
      s.empathy > 1) {
    abort();
  }
  for (int i = 0; i < GW_FEELING_COUNT; i++) {
    if (!(s.feelings[i] >= 0) || s.feelings[i] > 1) {
      abort();
    }
  }
}

static const char *const texts[] = {
    "this is NOT good at all!!! third time calling :(",
    "thank you so much, that fixed it",
    "great, another week without internet",
};
/* Parses data as a lexicon, or as an overlay over a small valid base, and checks the result. */
static void check_parse(const uint8_t *data, size_t size, int as_overlay) {
  static const char base[] = "# goodwill-lexicon 1\ngood\t2\nbad\t-2\tanger:0.5\n"
                             "third time calling\t-3\tfrustration:1\n:-)\t2\n";
  const char *source = as_overlay ? "overlay.tsv" : "fuzz.tsv";
  gw_feeling_model *m = NULL;
  char err[512] = "";
  int rc = as_overlay
               ? gw_feeling_model_parse_overlaid(&m, "base.tsv", base, sizeof base - 1, source,
                                                 (const char *)data, size, err, sizeof err)
               : gw_feeling_model_parse(&m, source, (const char *)data, size, err, sizeof err);
  if (rc != 0) {
    if (m != NULL || strstr(err, source) == NULL) {
      abort();
    }
    return;
  }
  if (m == NULL || gw_feeling_model_version(m) == NULL ||
      (as_overlay && strstr(gw_feeling_model_version(m), "+overlay.") == NULL)) {
    abort();
  }
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    check_score(m, texts[i], strlen(texts[i]));
  }
  check_score(m, (const char *)data, size < 256 ? size : 256);
  gw_feeling_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_parse(data, size, 0);
  check_parse(data, size, 1);
  return 0;
}
