/*
 * Interaction scoring (goodwill/feeling.h, gw_feeling_score_interaction): the customer's
 * feeling at the start and at the end of an interaction and the change, their polarities and
 * the transitions between them (recovered, soured), and the agents' empathy over all their
 * turns. docs/FEELING_MODEL.md, "Interaction feeling".
 */
#include "lexicon.h"
#include "utterance.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GW_LOW_INFO_WEIGHT 0.25

typedef struct gw_cturn {
  size_t index; /* in the turns given */
  double valence;
  double feelings[GW_FEELING_COUNT];
  int low_information;
} gw_cturn;

/* Weighted mean of the chosen customer turns into valence and feelings. */
static void gw_window_mean(const gw_cturn *c, const size_t *idx, const double *w, size_t n,
                           double *valence, double feelings[GW_FEELING_COUNT]) {
  double tw = 0, v = 0, f[GW_FEELING_COUNT] = {0};
  for (size_t i = 0; i < n; i++) {
    tw += w[i];
    v += w[i] * c[idx[i]].valence;
    for (int k = 0; k < GW_FEELING_COUNT; k++)
      f[k] += w[i] * c[idx[i]].feelings[k];
  }
  *valence = tw > 0 ? v / tw : 0;
  for (int k = 0; k < GW_FEELING_COUNT; k++)
    feelings[k] = tw > 0 ? f[k] / tw : 0;
}

/* Explaining: the weights of the window's turns (customer-turn positions idx) into the sink's
 * turns, which are the customer turns in the same order. */
static void gw_explain_window(gw_feeling_explain *x, const size_t *idx, const double *w, size_t n,
                              int end) {
  for (size_t i = 0; i < n; i++)
    if (idx[i] < x->nturns) {
      if (end)
        x->turns[idx[i]].end_weight = w[i];
      else
        x->turns[idx[i]].start_weight = w[i];
    }
}

/* Explaining: scores the turns that have a weight once more, into the sink (the same
 * arithmetic as the first time, so the same valences). */
static void gw_explain_weighted_turns(const gw_feeling_model *m, const gw_turn_text *turns,
                                      gw_feeling_explain *x) {
  for (size_t i = 0; i < x->nturns && !x->failed; i++) {
    if (x->turns[i].start_weight == 0 && x->turns[i].end_weight == 0)
      continue;
    const gw_turn_text *tt = &turns[x->turns[i].index];
    gw_utt_detail d;
    size_t before = x->nutterances;
    gw_feeling_score_detail(m, tt->text ? tt->text : "", tt->text ? tt->len : 0, &d, x);
    if (x->nutterances > before)
      x->turns[i].utterance = x->nutterances - 1;
  }
}

/* Explaining: the phrase of each empathy kind's strongest agent turn (kind_turn), found by
 * scoring that turn once more into the sink; what that adds to the sink's lists is dropped
 * again (only the phrase's text stays in the arena). */
static void gw_explain_agent_empathy(const gw_feeling_model *m, const gw_turn_text *turns,
                                     const double kinds[E_COUNT], const size_t kind_turn[E_COUNT],
                                     gw_feeling_explain *x) {
  for (int k = 0; k < E_COUNT && !x->failed; k++) {
    if (kinds[k] <= 0)
      continue;
    const gw_turn_text *tt = &turns[kind_turn[k]];
    size_t nu = x->nutterances, nh = x->nhits, ns = x->nsteps, ne = x->nempathy;
    gw_utt_detail d;
    gw_feeling_score_detail(m, tt->text ? tt->text : "", tt->text ? tt->len : 0, &d, x);
    for (size_t p = ne; p < x->nempathy; p++)
      if (x->empathy[p].kind == (unsigned)k && x->empathy[p].strength == kinds[k]) {
        x->agent_empathy[k] = x->empathy[p];
        x->agent_empathy_turn[k] = kind_turn[k];
        break;
      }
    x->nutterances = nu;
    x->nhits = nh;
    x->nsteps = ns;
    x->nempathy = ne;
  }
}

static void gw_interaction(const gw_feeling_model *m, const gw_turn_text *turns, size_t nturns,
                           gw_interaction_feeling *out, gw_feeling_explain *x) {
  memset(out, 0, sizeof(*out));
  if (x)
    gw_explain_reset(x, true);
  double kinds[E_COUNT] = {0};
  size_t kind_turn[E_COUNT] = {0}; /* the agent turn of each kind's strongest phrase */
  gw_cturn inline_c[32];
  size_t ncust = 0;
  for (size_t i = 0; i < nturns; i++) {
    if (turns[i].speaker == GW_SPEAKER_CUSTOMER)
      ncust++;
  }
  gw_cturn *c = ncust <= GW_NELEM(inline_c) ? inline_c : malloc(ncust * sizeof(*c));
  if (!c) {
    /* Out of memory for a huge transcript: report it as having no scored customer turns. */
    if (x)
      x->failed = true;
    return;
  }
  size_t nc = 0;
  for (size_t i = 0; i < nturns; i++) {
    const gw_turn_text *tt = &turns[i];
    if (tt->speaker == GW_SPEAKER_BOT)
      continue;
    gw_utt_detail d;
    gw_feeling_score_detail(m, tt->text ? tt->text : "", tt->text ? tt->len : 0, &d, NULL);
    if (tt->speaker == GW_SPEAKER_AGENT) {
      out->agent_turns++;
      for (int k = 0; k < E_COUNT; k++)
        if (d.empathy_kind[k] > kinds[k]) {
          kinds[k] = d.empathy_kind[k];
          kind_turn[k] = i;
        }
      continue;
    }
    if (tt->speaker != GW_SPEAKER_CUSTOMER)
      continue;
    out->customer_turns++;
    if (d.words == 0)
      continue; /* an empty turn says nothing */
    c[nc].index = i;
    c[nc].valence = d.score.valence;
    memcpy(c[nc].feelings, d.score.feelings, sizeof(c[nc].feelings));
    c[nc].low_information = d.low_information;
    nc++;
  }
  out->empathy = gw_feeling_empathy_of(kinds);
  if (x)
    gw_explain_agent_empathy(m, turns, kinds, kind_turn, x);
  if (nc > 0) {
    out->has_customer_turns = true;
    size_t informative = 0;
    for (size_t i = 0; i < nc; i++)
      informative += !c[i].low_information;
    /* When every turn is a short closing, they are all the customer said: use them fully. */
    if (informative == 0) {
      for (size_t i = 0; i < nc; i++)
        c[i].low_information = 0;
      informative = nc;
    }
    for (size_t i = 0; x && i < nc; i++) {
      gw_explain_turn *et = gw_explain_push_turn(x);
      if (!et)
        break;
      et->index = c[i].index;
      et->valence = c[i].valence;
      et->low_information = c[i].low_information != 0;
      et->utterance = SIZE_MAX;
    }

    /* Window size: two turns each, fewer when the turns would be shared, so that a short
     * interaction compares its first and its last turns (one turn: start == end). */
    size_t win = informative >= 4 ? 2 : 1;
    size_t idx[4];
    double w[4];
    size_t n = 0;
    for (size_t i = 0; i < nc && n < win; i++)
      if (!c[i].low_information)
        idx[n++] = i;
    w[0] = n == 2 ? 0.6 : 1.0;
    w[1] = 0.4;
    gw_window_mean(c, idx, w, n, &out->start, out->start_feelings);
    if (x)
      gw_explain_window(x, idx, w, n, 0);

    n = 0;
    size_t last_info = nc;
    for (size_t i = nc; i-- > 0 && n < win;)
      if (!c[i].low_information) {
        if (n == 0)
          last_info = i;
        idx[n++] = i;
      }
    w[0] = n == 2 ? 0.6 : 1.0;
    w[1] = 0.4;
    /* Trailing closings after the last informative turn count a little ("ok, thanks"). */
    for (size_t i = last_info + 1; i < nc && n < 4; i++) {
      idx[n] = i;
      w[n] = GW_LOW_INFO_WEIGHT;
      n++;
    }
    gw_window_mean(c, idx, w, n, &out->end, out->end_feelings);
    if (x) {
      gw_explain_window(x, idx, w, n, 1);
      gw_explain_weighted_turns(m, turns, x);
    }
  }
  if (c != inline_c)
    free(c);
  out->change = out->end - out->start;
  out->start_polarity = gw_feeling_polarity(out->start);
  out->end_polarity = gw_feeling_polarity(out->end);
  out->recovered = out->has_customer_turns && out->start_polarity == GW_POLARITY_NEGATIVE &&
                   out->end_polarity != GW_POLARITY_NEGATIVE;
  out->soured = out->has_customer_turns && out->start_polarity != GW_POLARITY_NEGATIVE &&
                out->end_polarity == GW_POLARITY_NEGATIVE;
}

void gw_feeling_score_interaction(const gw_feeling_model *m, const gw_turn_text *turns,
                                  size_t nturns, gw_interaction_feeling *out) {
  gw_interaction(m, turns, nturns, out, NULL);
}

void gw_feeling_score_interaction_explained(const gw_feeling_model *m, const gw_turn_text *turns,
                                            size_t nturns, gw_interaction_feeling *out,
                                            gw_feeling_explain *x) {
  gw_interaction(m, turns, nturns, out, x);
}

gw_polarity gw_feeling_polarity(double valence) {
  if (valence <= -0.05)
    return GW_POLARITY_NEGATIVE;
  if (valence >= 0.05)
    return GW_POLARITY_POSITIVE;
  return GW_POLARITY_NEUTRAL;
}

const char *gw_polarity_name(gw_polarity p) {
  switch (p) {
  case GW_POLARITY_NEGATIVE:
    return "negative";
  case GW_POLARITY_POSITIVE:
    return "positive";
  default:
    return "neutral";
  }
}
