/*
 * Interaction scoring (goodwill/feeling.h, gw_feeling_score_interaction): the customer's
 * feeling at the start and at the end of an interaction, read from the turns that say
 * something and from their felt valence (utterance.c), the change and its direction, their
 * polarities by the conversational band and the transitions between them (recovered,
 * soured), and the agents' empathy over all their turns. docs/FEELING_MODEL.md, "Interaction
 * feeling" and "Reading a conversation".
 */
#include "lexicon.h"
#include "utterance.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reading a conversation (docs/FEELING_MODEL.md, "Reading a conversation"). */
#define GW_CONV_BAND      0.20               /* |felt| below this is neutral in a conversation */
#define GW_CHANGE_MIN     (2 * GW_CONV_BAND) /* within one polarity: the band's whole width */
#define GW_BARE_MAX_WORDS 2   /* a turn of this many content words and no feeling is bare */
#define GW_PLAIN_WEIGHT   0.5 /* a turn without feeling next to one with feeling */

typedef struct gw_cturn {
  size_t index;   /* in the turns given (explanations) */
  double valence; /* its utterance valence (explanations) */
  double felt;    /* the turn's felt valence */
  double feelings[GW_FEELING_COUNT];
  int felt_any; /* some item counts in felt */
  int bare;     /* carries nothing: a menu choice, an id, "ok", "thanks, bye" */
} gw_cturn;

/* Weighted mean of the chosen customer turns into valence and feelings. A turn that carries
 * no feeling weighs GW_PLAIN_WEIGHT of its place's weight: answering "what's your account
 * number?" says little of how the customer feels, next to a turn that says something. */
static void gw_window_mean(const gw_cturn *c, const size_t *idx, const double *w, size_t n,
                           double *valence, double feelings[GW_FEELING_COUNT], double *weff) {
  double tw = 0, v = 0, f[GW_FEELING_COUNT] = {0};
  int any = 0;
  for (size_t i = 0; i < n; i++)
    any |= c[idx[i]].felt_any;
  for (size_t i = 0; i < n; i++) {
    double wi = w[i] * (any && !c[idx[i]].felt_any ? GW_PLAIN_WEIGHT : 1.0);
    if (weff)
      weff[i] = wi; /* explaining: the weight the turn had */
    tw += wi;
    v += wi * c[idx[i]].felt;
    for (int k = 0; k < GW_FEELING_COUNT; k++)
      f[k] += wi * c[idx[i]].feelings[k];
  }
  *valence = tw > 0 ? v / tw : 0;
  for (int k = 0; k < GW_FEELING_COUNT; k++)
    feelings[k] = tw > 0 ? f[k] / tw : 0;
}

gw_polarity gw_feeling_conversation_polarity(double felt) {
  if (felt <= -GW_CONV_BAND)
    return GW_POLARITY_NEGATIVE;
  if (felt >= GW_CONV_BAND)
    return GW_POLARITY_POSITIVE;
  return GW_POLARITY_NEUTRAL;
}

/* Explaining: the weights of the window's turns (customer-turn positions idx) into the sink's
 * turns, which are the customer turns in the same order. */
static void gw_explain_window(gw_feeling_explain *x, const size_t *idx, const double *w,
                              const double *weff, size_t n, int end) {
  for (size_t i = 0; i < n; i++)
    if (idx[i] < x->nturns) {
      if (end) {
        x->turns[idx[i]].end_weight = weff[i];
        x->turns[idx[i]].end_plain = weff[i] != w[i];
      } else {
        x->turns[idx[i]].start_weight = weff[i];
        x->turns[idx[i]].start_plain = weff[i] != w[i];
      }
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
    c[nc].felt = d.felt;
    memcpy(c[nc].feelings, d.score.feelings, sizeof(c[nc].feelings));
    c[nc].felt_any = d.felt_items > 0;
    c[nc].bare = d.felt_items == 0 && (d.low_information || d.content_words <= GW_BARE_MAX_WORDS);
    nc++;
  }
  out->empathy = gw_feeling_empathy_of(kinds);
  if (x)
    gw_explain_agent_empathy(m, turns, kinds, kind_turn, x);
  if (nc > 0) {
    out->has_customer_turns = true;
    size_t informative = 0;
    for (size_t i = 0; i < nc; i++)
      informative += !c[i].bare;
    /* When every turn is bare, they are all the customer said: use them. */
    if (informative == 0) {
      for (size_t i = 0; i < nc; i++)
        c[i].bare = 0;
      informative = nc;
      if (x)
        x->all_bare = true;
    }
    for (size_t i = 0; x && i < nc; i++) {
      gw_explain_turn *et = gw_explain_push_turn(x);
      if (!et)
        break;
      et->index = c[i].index;
      et->valence = c[i].valence;
      et->felt = c[i].felt;
      et->felt_any = c[i].felt_any != 0;
      et->bare = c[i].bare != 0 || x->all_bare;
      et->utterance = SIZE_MAX;
    }

    /* The start is the opening statement, the first informative turn: customers say what
     * brings them and how they feel about it first. When it carries no feeling (a neutral
     * question), the next informative turn is read with it, as the customer goes on. */
    size_t win = informative >= 4 ? 2 : 1;
    size_t idx[2];
    double w[2] = {0.6, 0.4};
    size_t n = 0;
    for (size_t i = 0; i < nc && n < win; i++)
      if (!c[i].bare) {
        idx[n++] = i;
        if (c[i].felt_any)
          break;
      }
    if (n == 1)
      w[0] = 1.0;
    double weff[2];
    gw_window_mean(c, idx, w, n, &out->start, out->start_feelings, weff);
    if (x)
      gw_explain_window(x, idx, w, weff, n, 0);

    /* The end is read over the last two informative turns (0.6 for the last): closing turns
     * are short, and one of them alone can mislead. Bare turns after them (goodbyes,
     * "no, that's all") say nothing and are left out. */
    n = 0;
    for (size_t i = nc; i-- > 0 && n < win;)
      if (!c[i].bare)
        idx[n++] = i;
    w[0] = n == 2 ? 0.6 : 1.0;
    gw_window_mean(c, idx, w, n, &out->end, out->end_feelings, weff);
    if (x) {
      gw_explain_window(x, idx, w, weff, n, 1);
      gw_explain_weighted_turns(m, turns, x);
    }
  }
  if (c != inline_c)
    free(c);
  out->change = out->end - out->start;
  out->start_polarity = gw_feeling_conversation_polarity(out->start);
  out->end_polarity = gw_feeling_conversation_polarity(out->end);
  /* The direction follows the polarities when they differ; within one polarity it needs a
   * change of GW_CHANGE_MIN ("furious" to "annoyed but calmer" improved). */
  if (out->end_polarity != out->start_polarity)
    out->change_direction =
        out->end_polarity > out->start_polarity ? GW_CHANGE_IMPROVED : GW_CHANGE_WORSENED;
  else if (out->change >= GW_CHANGE_MIN)
    out->change_direction = GW_CHANGE_IMPROVED;
  else if (out->change <= -GW_CHANGE_MIN)
    out->change_direction = GW_CHANGE_WORSENED;
  else
    out->change_direction = GW_CHANGE_UNCHANGED;
  out->recovered = out->has_customer_turns && out->start_polarity == GW_POLARITY_NEGATIVE &&
                   out->end_polarity != GW_POLARITY_NEGATIVE;
  out->soured = out->has_customer_turns && out->start_polarity != GW_POLARITY_NEGATIVE &&
                out->end_polarity == GW_POLARITY_NEGATIVE;
  if (x) {
    x->band = GW_CONV_BAND;
    x->change_min = GW_CHANGE_MIN;
    x->start = out->start;
    x->end = out->end;
    x->change = out->change;
    x->start_polarity = out->start_polarity;
    x->end_polarity = out->end_polarity;
    x->change_direction = out->change_direction;
    x->direction_rule = out->end_polarity != out->start_polarity       ? 1u
                        : out->change_direction != GW_CHANGE_UNCHANGED ? 2u
                                                                       : 0u;
  }
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

const char *gw_change_direction_name(gw_change_direction d) {
  switch (d) {
  case GW_CHANGE_IMPROVED:
    return "improved";
  case GW_CHANGE_WORSENED:
    return "worsened";
  default:
    return "unchanged";
  }
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
