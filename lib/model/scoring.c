/*
 * InteractionEvent -> ScoredRecord (see scoring.h). Valences become fixed-point thousandths:
 * milli = round(v * 1000) with halves away from zero (C's lround), clamped to the documented
 * range, so that the same input gives the same integers on every machine.
 */
#include "goodwill/scoring.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t gw_scoring_milli(double v, int32_t lo, int32_t hi) {
  if (!isfinite(v))
    return 0;
  long r = lround(v * 1000.0);
  if (r < lo)
    r = lo;
  if (r > hi)
    r = hi;
  return (int32_t)r;
}

static Goodwill__V1__Polarity gw_scoring_polarity(gw_polarity p) {
  switch (p) {
  case GW_POLARITY_NEGATIVE:
    return GOODWILL__V1__POLARITY__POLARITY_NEGATIVE;
  case GW_POLARITY_POSITIVE:
    return GOODWILL__V1__POLARITY__POLARITY_POSITIVE;
  default:
    return GOODWILL__V1__POLARITY__POLARITY_NEUTRAL;
  }
}

static Goodwill__V1__ChangeDirection gw_scoring_direction(gw_change_direction d) {
  switch (d) {
  case GW_CHANGE_IMPROVED:
    return GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_IMPROVED;
  case GW_CHANGE_WORSENED:
    return GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_WORSENED;
  default:
    return GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_UNCHANGED;
  }
}

Goodwill__V1__NpsCategory gw_scoring_nps_category(unsigned likelihood) {
  if (likelihood > 10)
    return GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_UNSPECIFIED;
  if (likelihood >= 9)
    return GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PROMOTER;
  if (likelihood >= 7)
    return GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PASSIVE;
  return GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_DETRACTOR;
}

static void gw_scoring_record_id(const char *kind, const Goodwill__V1__InteractionEvent *ev,
                                 char out[GW_ID_HEX_LEN + 1]) {
  gw_id_hasher h;
  gw_id_init(&h);
  gw_id_update_field(&h, kind);
  gw_id_update_field(&h, ev->tenant_id ? ev->tenant_id : "");
  gw_id_update_field(&h, ev->event_id ? ev->event_id : "");
  gw_id_final_hex(&h, out);
}

/* Only the categories with a non-zero rounded intensity are listed, in enum order. */
static size_t gw_scoring_feelings(const double f[GW_FEELING_COUNT],
                                  Goodwill__V1__FeelingIntensity items[GW_FEELING_COUNT],
                                  Goodwill__V1__FeelingIntensity *ptrs[GW_FEELING_COUNT]) {
  size_t n = 0;
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    int32_t milli = gw_scoring_milli(f[c], 0, 1000);
    if (milli <= 0)
      continue;
    goodwill__v1__feeling_intensity__init(&items[n]);
    items[n].category = (char *)gw_feeling_category_name((gw_feeling_category)c);
    items[n].intensity_milli = (uint32_t)milli;
    ptrs[n] = &items[n];
    n++;
  }
  return n;
}

/* The explanation in x as the record's JSON string into b (left empty when it cannot be built:
 * the record is complete without it), bounded by GW_SCORING_EXPLAIN_MAX_BYTES. */
static void gw_scoring_explain_json(const gw_feeling_explain *x, gw_buf *b) {
  if (gw_feeling_explain_json(x, b) < 0) {
    gw_buf_reset(b);
    return;
  }
  if (b->len > GW_SCORING_EXPLAIN_MAX_BYTES) {
    size_t n = b->len;
    gw_buf_reset(b);
    gw_buf_printf(b, "{\"omitted\":\"explanation of %zu bytes, over the limit of %d\"}", n,
                  GW_SCORING_EXPLAIN_MAX_BYTES);
  }
}

static int gw_scoring_pack(const Goodwill__V1__ScoredRecord *rec, gw_buf *record) {
  size_t size = goodwill__v1__scored_record__get_packed_size(rec);
  uint8_t *tmp = malloc(size ? size : 1);
  if (!tmp)
    return -ENOMEM;
  size_t packed = goodwill__v1__scored_record__pack(rec, tmp);
  gw_buf_append(record, tmp, packed);
  free(tmp);
  return 0;
}

static void gw_scoring_key(const Goodwill__V1__InteractionEvent *ev, gw_buf *key) {
  gw_buf_puts(key, ev->tenant_id ? ev->tenant_id : "");
  gw_buf_putc(key, '/');
  gw_buf_puts(key, ev->team_id ? ev->team_id : "");
}

static gw_speaker_role gw_scoring_speaker(Goodwill__V1__Speaker s, int *known) {
  *known = 1;
  switch (s) {
  case GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER:
    return GW_SPEAKER_CUSTOMER;
  case GOODWILL__V1__SPEAKER__SPEAKER_AGENT:
    return GW_SPEAKER_AGENT;
  case GOODWILL__V1__SPEAKER__SPEAKER_BOT:
    return GW_SPEAKER_BOT;
  default:
    /* Validation rejects it; if one gets here, it is not attributed to anyone. */
    *known = 0;
    return GW_SPEAKER_BOT;
  }
}

static int gw_scoring_closed(const gw_feeling_model *m, const Goodwill__V1__InteractionEvent *ev,
                             const Goodwill__V1__Turn *const *transcript, size_t n, unsigned flags,
                             gw_buf *record, gw_buf *key, char record_id[GW_ID_HEX_LEN + 1]) {
  const Goodwill__V1__InteractionClosed *cl = ev->closed;
  if (!cl)
    return -EINVAL;
  gw_turn_text *turns = calloc(n ? n : 1, sizeof(*turns));
  if (!turns)
    return -ENOMEM;
  size_t nt = 0;
  for (size_t i = 0; i < n; i++) {
    const Goodwill__V1__Turn *t = transcript[i];
    int known;
    if (!t)
      continue;
    gw_speaker_role role = gw_scoring_speaker(t->speaker, &known);
    if (!known)
      continue;
    turns[nt].speaker = role;
    turns[nt].text = t->text ? t->text : "";
    turns[nt].len = strlen(turns[nt].text);
    nt++;
  }
  gw_interaction_feeling f;
  gw_buf explain = GW_BUF_INIT;
  if (flags & GW_SCORING_EXPLAIN) {
    gw_feeling_explain x;
    gw_feeling_explain_init(&x);
    gw_feeling_score_interaction_explained(m, turns, nt, &f, &x);
    gw_scoring_explain_json(&x, &explain);
    gw_feeling_explain_free(&x);
  } else {
    gw_feeling_score_interaction(m, turns, nt, &f);
  }
  free(turns);

  gw_scoring_record_id("interaction", ev, record_id);
  Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
  si.record_id = record_id;
  si.source_event_id = ev->event_id;
  si.tenant_id = ev->tenant_id;
  si.team_id = ev->team_id;
  si.agent_id = ev->agent_id;
  si.interaction_id = ev->interaction_id;
  si.channel = ev->channel;
  si.occurred_at_ms = ev->occurred_at_ms;
  si.received_at_ms = ev->received_at_ms;
  si.model_version = (char *)gw_feeling_model_version(m);
  si.start_valence_milli = gw_scoring_milli(f.start, -1000, 1000);
  si.end_valence_milli = gw_scoring_milli(f.end, -1000, 1000);
  /* The change is end - start of the rounded values, so that sums in Redis agree exactly. */
  si.change_valence_milli = si.end_valence_milli - si.start_valence_milli;
  /* Without a customer turn there is no feeling to measure: the polarities stay UNSPECIFIED
   * (with customer_turns 0) rather than reading as a measured neutral, and the aggregates
   * leave such an interaction out of the polarity counts and the transition matrix. */
  if (f.has_customer_turns) {
    si.start_polarity = gw_scoring_polarity(f.start_polarity);
    si.end_polarity = gw_scoring_polarity(f.end_polarity);
    si.change_direction = gw_scoring_direction(f.change_direction);
  }
  si.recovered = f.recovered;
  si.soured = f.soured;
  si.empathy_milli = gw_scoring_milli(f.empathy, 0, 1000);
  si.customer_turns = f.customer_turns;
  si.agent_turns = f.agent_turns;
  Goodwill__V1__FeelingIntensity sf[GW_FEELING_COUNT], ef[GW_FEELING_COUNT];
  Goodwill__V1__FeelingIntensity *sfp[GW_FEELING_COUNT], *efp[GW_FEELING_COUNT];
  si.n_start_feelings = gw_scoring_feelings(f.start_feelings, sf, sfp);
  si.start_feelings = sfp;
  si.n_end_feelings = gw_scoring_feelings(f.end_feelings, ef, efp);
  si.end_feelings = efp;
  si.handle_ms = cl->handle_ms;
  si.wait_ms = cl->wait_ms;
  si.transfers = cl->transfers;
  if (cl->resolved_presence_case == GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED) {
    si.resolved_presence_case = GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED;
    si.resolved = cl->resolved;
  }
  if (explain.len > 0)
    si.explain_json = explain.data;
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  int rc = gw_scoring_pack(&rec, record);
  gw_buf_free(&explain);
  if (rc == 0)
    gw_scoring_key(ev, key);
  return rc;
}

static int gw_scoring_survey(const gw_feeling_model *m, const Goodwill__V1__InteractionEvent *ev,
                             unsigned flags, gw_buf *record, gw_buf *key,
                             char record_id[GW_ID_HEX_LEN + 1]) {
  const Goodwill__V1__SurveyResponse *sv = ev->survey;
  if (!sv ||
      sv->likelihood_presence_case !=
          GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND ||
      sv->likelihood_to_recommend > 10)
    return -EINVAL;
  gw_scoring_record_id("survey", ev, record_id);
  Goodwill__V1__ScoredSurvey ss = GOODWILL__V1__SCORED_SURVEY__INIT;
  ss.record_id = record_id;
  ss.source_event_id = ev->event_id;
  ss.tenant_id = ev->tenant_id;
  ss.team_id = ev->team_id;
  ss.agent_id = ev->agent_id;
  ss.interaction_id = ev->interaction_id;
  ss.channel = ev->channel;
  ss.occurred_at_ms = ev->occurred_at_ms;
  ss.received_at_ms = ev->received_at_ms;
  ss.model_version = (char *)gw_feeling_model_version(m);
  ss.likelihood_to_recommend = sv->likelihood_to_recommend;
  ss.category = gw_scoring_nps_category(sv->likelihood_to_recommend);
  /* A comment of only whitespace is no comment: it would read as a neutral 0. */
  const char *c = sv->comment ? sv->comment : "";
  size_t clen = strlen(c);
  size_t blank = strspn(c, " \t\r\n");
  gw_buf explain = GW_BUF_INIT;
  if (blank < clen) {
    gw_utterance_score s;
    if (flags & GW_SCORING_EXPLAIN) {
      gw_feeling_explain x;
      gw_feeling_explain_init(&x);
      gw_feeling_score_utterance_explained(m, c, clen, &s, &x);
      gw_scoring_explain_json(&x, &explain);
      gw_feeling_explain_free(&x);
      if (explain.len > 0)
        ss.comment_explain_json = explain.data;
    } else {
      gw_feeling_score_utterance(m, c, clen, &s);
    }
    ss.comment_presence_case = GOODWILL__V1__SCORED_SURVEY__COMMENT_PRESENCE_COMMENT_VALENCE_MILLI;
    ss.comment_valence_milli = gw_scoring_milli(s.valence, -1000, 1000);
  }
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY;
  rec.survey = &ss;
  int rc = gw_scoring_pack(&rec, record);
  gw_buf_free(&explain);
  if (rc == 0)
    gw_scoring_key(ev, key);
  return rc;
}

int gw_scoring_score_event(const gw_feeling_model *m, const Goodwill__V1__InteractionEvent *ev,
                           unsigned flags, gw_buf *record, gw_buf *key,
                           char record_id[GW_ID_HEX_LEN + 1]) {
  record_id[0] = '\0';
  switch (ev->body_case) {
  case GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED:
    if (!ev->closed)
      return -EINVAL;
    return gw_scoring_closed(m, ev, (const Goodwill__V1__Turn *const *)ev->closed->transcript,
                             ev->closed->n_transcript, flags, record, key, record_id);
  case GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY:
    return gw_scoring_survey(m, ev, flags, record, key, record_id);
  case GOODWILL__V1__INTERACTION_EVENT__BODY_TURN:
    return -ENOTSUP;
  default:
    return -EINVAL;
  }
}

int gw_scoring_score_closed_turns(const gw_feeling_model *m,
                                  const Goodwill__V1__InteractionEvent *ev,
                                  const Goodwill__V1__Turn *const *turns, size_t nturns,
                                  unsigned flags, gw_buf *record, gw_buf *key,
                                  char record_id[GW_ID_HEX_LEN + 1]) {
  record_id[0] = '\0';
  if (ev->body_case != GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED || !ev->closed)
    return -EINVAL;
  return gw_scoring_closed(m, ev, turns, nturns, flags, record, key, record_id);
}
