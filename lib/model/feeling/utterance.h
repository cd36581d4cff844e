/*
 * Utterance scoring as interaction scoring needs it, private to lib/model/feeling/: the score
 * of one utterance with the details the interaction rules read (the strongest phrase of each
 * empathy kind, the word count, whether it is a low-information closing).
 */
#ifndef GOODWILL_FEELING_UTTERANCE_H
#define GOODWILL_FEELING_UTTERANCE_H

#include "lexicon.h"

#include <stddef.h>

typedef struct gw_utt_detail {
  gw_utterance_score score;
  double empathy_kind[E_COUNT]; /* strongest phrase of each empathy kind */
  size_t words;                 /* tokens with letters, emoji or symbols */
  int low_information;          /* every token is a closing word and there are few */
  /* The turn as a conversation reads it (docs/FEELING_MODEL.md, "Reading a conversation"):
   * formulas left out, descriptions of the problem damped, sarcasm read as such. */
  double felt;          /* -1..1, like score.valence */
  unsigned felt_items;  /* items that count in felt */
  size_t content_words; /* words that are not closing words ("yes", "ok", "thanks") */
} gw_utt_detail;

/* Scores text (len bytes of UTF-8) into *d, felt valence included; with a sink x (may be
 * NULL), appends the utterance's explanation to it, felt valence included. utterance.c. */
void gw_feeling_score_detail(const gw_feeling_model *m, const char *text, size_t len,
                             gw_utt_detail *d, gw_feeling_explain *x);

/* The 0..1 empathy signal of the strongest phrase of each kind. utterance.c. */
double gw_feeling_empathy_of(const double kinds[E_COUNT]);

/* The sink's storage (explain.c). The push functions append one zeroed element and return it,
 * or NULL (x->failed set) when memory is short or an earlier allocation failed; elements move
 * when their array grows, so callers keep indices, not pointers, across pushes.
 * gw_explain_text copies n bytes (NUL-terminated) into the arena and returns their offset. */
void gw_explain_reset(gw_feeling_explain *x, bool interaction);
gw_explain_utterance *gw_explain_push_utterance(gw_feeling_explain *x);
gw_explain_hit *gw_explain_push_hit(gw_feeling_explain *x);
gw_explain_step *gw_explain_push_step(gw_feeling_explain *x);
gw_explain_empathy *gw_explain_push_empathy(gw_feeling_explain *x);
gw_explain_turn *gw_explain_push_turn(gw_feeling_explain *x);
size_t gw_explain_text(gw_feeling_explain *x, const char *s, size_t n);

#endif
