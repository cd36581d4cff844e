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

#include <stdlib.h>
#include <string.h>

/* Reading a conversation (docs/FEELING_MODEL.md, "Reading a conversation"). */
#define GW_CONV_BAND      0.20               /* |felt| below this is neutral in a conversation */
#define GW_CHANGE_MIN     (2 * GW_CONV_BAND) /* within one polarity: the band's whole width */
#define GW_BARE_MAX_WORDS 2   /* a turn of this many content words and no feeling is bare */
#define GW_PLAIN_WEIGHT   0.5 /* a turn without feeling next to one with feeling */

typedef struct gw_cturn {
  double felt; /* the turn's felt valence */
  double feelings[GW_FEELING_COUNT];
  int felt_any; /* some item counts in felt */
  int bare;     /* carries nothing: a menu choice, an id, "ok", "thanks, bye" */
} gw_cturn;

/* Weighted mean of the chosen customer turns into valence and feelings. A turn that carries
 * no feeling weighs GW_PLAIN_WEIGHT of its place's weight: answering "what's your account
 * number?" says little of how the customer feels, next to a turn that says something. */
static void gw_window_mean(const gw_cturn *c, const size_t *idx, const double *w, size_t n,
                           double *valence, double feelings[GW_FEELING_COUNT]) {
  double tw = 0, v = 0, f[GW_FEELING_COUNT] = {0};
  int any = 0;
  for (size_t i = 0; i < n; i++)
    any |= c[idx[i]].felt_any;
  for (size_t i = 0; i < n; i++) {
    double wi = w[i] * (any && !c[idx[i]].felt_any ? GW_PLAIN_WEIGHT : 1.0);
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

void gw_feeling_score_interaction(const gw_feeling_model *m, const gw_turn_text *turns,
                                  size_t nturns, gw_interaction_feeling *out) {
  memset(out, 0, sizeof(*out));
  double kinds[E_COUNT] = {0};
  gw_cturn inline_c[32];
  size_t ncust = 0;
  for (size_t i = 0; i < nturns; i++) {
    if (turns[i].speaker == GW_SPEAKER_CUSTOMER)
      ncust++;
  }
  gw_cturn *c = ncust <= GW_NELEM(inline_c) ? inline_c : malloc(ncust * sizeof(*c));
  if (!c) {
    /* Out of memory for a huge transcript: report it as having no scored customer turns. */
    return;
  }
  size_t nc = 0;
  for (size_t i = 0; i < nturns; i++) {
    const gw_turn_text *tt = &turns[i];
    if (tt->speaker == GW_SPEAKER_BOT)
      continue;
    gw_utt_detail d;
    gw_feeling_score_detail(m, tt->text ? tt->text : "", tt->text ? tt->len : 0, &d);
    if (tt->speaker == GW_SPEAKER_AGENT) {
      out->agent_turns++;
      for (int k = 0; k < E_COUNT; k++)
        if (d.empathy_kind[k] > kinds[k])
          kinds[k] = d.empathy_kind[k];
      continue;
    }
    if (tt->speaker != GW_SPEAKER_CUSTOMER)
      continue;
    out->customer_turns++;
    if (d.words == 0)
      continue; /* an empty turn says nothing */
    c[nc].felt = d.felt;
    memcpy(c[nc].feelings, d.score.feelings, sizeof(c[nc].feelings));
    c[nc].felt_any = d.felt_items > 0;
    c[nc].bare = d.felt_items == 0 && (d.low_information || d.content_words <= GW_BARE_MAX_WORDS);
    nc++;
  }
  out->empathy = gw_feeling_empathy_of(kinds);
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
    gw_window_mean(c, idx, w, n, &out->start, out->start_feelings);

    /* The end is read over the last two informative turns (0.6 for the last): closing turns
     * are short, and one of them alone can mislead. Bare turns after them (goodbyes,
     * "no, that's all") say nothing and are left out. */
    n = 0;
    for (size_t i = nc; i-- > 0 && n < win;)
      if (!c[i].bare)
        idx[n++] = i;
    w[0] = n == 2 ? 0.6 : 1.0;
    gw_window_mean(c, idx, w, n, &out->end, out->end_feelings);
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
