/*
 * The explanation sink's storage (goodwill/feeling.h, gw_feeling_explain): growable arrays of
 * utterances, hits, rule steps, empathy phrases and turns, and an arena of the texts they
 * name. Only the explaining copy of the scorer calls these (utterance.c, interaction.c): a
 * scoring call without a sink never reaches them. A failed allocation sets `failed` and drops
 * the record: the explanation is incomplete, the scores are not affected.
 */
#include "utterance.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void gw_feeling_explain_init(gw_feeling_explain *x) {
  memset(x, 0, sizeof(*x));
}

void gw_feeling_explain_free(gw_feeling_explain *x) {
  free(x->utterances);
  free(x->hits);
  free(x->steps);
  free(x->empathy);
  free(x->turns);
  free(x->arena);
  memset(x, 0, sizeof(*x));
}

void gw_explain_reset(gw_feeling_explain *x, bool interaction) {
  x->interaction = interaction;
  x->failed = false;
  x->nutterances = x->nhits = x->nsteps = x->nempathy = x->nturns = x->arena_len = 0;
  memset(x->agent_empathy, 0, sizeof(x->agent_empathy));
  memset(x->agent_empathy_turn, 0, sizeof(x->agent_empathy_turn));
  x->band = x->change_min = x->start = x->end = x->change = 0;
  x->start_polarity = x->end_polarity = GW_POLARITY_NEUTRAL;
  x->change_direction = GW_CHANGE_UNCHANGED;
  x->direction_rule = 0;
  x->all_bare = false;
}

/* Room for one more element of size `size` in *v (n used of *cap); NULL when memory is short. */
static void *gw_explain_grow(gw_feeling_explain *x, void **v, size_t *n, size_t *cap, size_t size) {
  if (x->failed)
    return NULL;
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, ncap * size);
    if (!nv) {
      x->failed = true;
      return NULL;
    }
    *v = nv;
    *cap = ncap;
  }
  void *slot = (char *)*v + (*n)++ * size;
  memset(slot, 0, size);
  return slot;
}

#define GW_EXPLAIN_PUSH(x, arr, n, cap)                                                            \
  gw_explain_grow((x), (void **)&(x)->arr, &(x)->n, &(x)->cap, sizeof(*(x)->arr))

gw_explain_utterance *gw_explain_push_utterance(gw_feeling_explain *x) {
  return GW_EXPLAIN_PUSH(x, utterances, nutterances, utterances_cap);
}

gw_explain_hit *gw_explain_push_hit(gw_feeling_explain *x) {
  return GW_EXPLAIN_PUSH(x, hits, nhits, hits_cap);
}

gw_explain_step *gw_explain_push_step(gw_feeling_explain *x) {
  return GW_EXPLAIN_PUSH(x, steps, nsteps, steps_cap);
}

gw_explain_empathy *gw_explain_push_empathy(gw_feeling_explain *x) {
  return GW_EXPLAIN_PUSH(x, empathy, nempathy, empathy_cap);
}

gw_explain_turn *gw_explain_push_turn(gw_feeling_explain *x) {
  return GW_EXPLAIN_PUSH(x, turns, nturns, turns_cap);
}

size_t gw_explain_text(gw_feeling_explain *x, const char *s, size_t n) {
  if (x->failed)
    return 0;
  if (x->arena_cap - x->arena_len < n + 1) {
    size_t ncap = x->arena_cap ? x->arena_cap : 256;
    while (ncap - x->arena_len < n + 1)
      ncap *= 2;
    char *na = realloc(x->arena, ncap);
    if (!na) {
      x->failed = true;
      return 0;
    }
    x->arena = na;
    x->arena_cap = ncap;
  }
  size_t off = x->arena_len;
  memcpy(x->arena + off, s, n);
  x->arena[off + n] = '\0';
  x->arena_len += n + 1;
  return off;
}

const char *gw_explain_rule_name(gw_explain_rule r) {
  static const char *const names[GW_EXPLAIN_RULE_COUNT] = {
      "caps",     "elongation",  "modifier",       "negation", "sarcasm", "question",
      "contrast", "exclamation", "question_marks", "shout",    "hedge",   "resignation"};
  return (unsigned)r < GW_EXPLAIN_RULE_COUNT ? names[r] : "unknown";
}

const char *gw_explain_felt_rule_name(unsigned bit) {
  switch (bit) {
  case GW_EXPLAIN_FELT_FORMULA:
    return "formula";
  case GW_EXPLAIN_FELT_COURTESY:
    return "courtesy";
  case GW_EXPLAIN_FELT_ASKS:
    return "asks";
  case GW_EXPLAIN_FELT_DESCRIPTION:
    return "description";
  case GW_EXPLAIN_FELT_NO_CATEGORY:
    return "no_category";
  case GW_EXPLAIN_FELT_NO_PROBLEM:
    return "no_problem";
  case GW_EXPLAIN_FELT_PAST:
    return "past";
  case GW_EXPLAIN_FELT_LONE:
    return "lone_comment";
  case GW_EXPLAIN_FELT_LONE_ACK:
    return "lone_approval";
  case GW_EXPLAIN_FELT_SARCASM:
    return "sarcasm";
  default:
    return "unknown";
  }
}

const char *gw_explain_role_name(unsigned role) {
  static const char *const names[GW_EXPLAIN_ROLE_COUNT] = {"feeling", "formula", "acknowledgement",
                                                           "description", "sarcasm"};
  return role < GW_EXPLAIN_ROLE_COUNT ? names[role] : "unknown";
}
