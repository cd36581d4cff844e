/*
 * Scoring: InteractionEvent -> packed ScoredRecord. Checks what the aggregator relies on:
 * the fields, the milli rounding, the key, the record id (deterministic, derived from kind,
 * tenant and event id only), and the refusals (live Turn, no body).
 */
#include "goodwill/aggregates.h"
#include "goodwill/scoring.h"
#include "gw_test.h"

#include <errno.h>

static gw_feeling_model *model;

static Goodwill__V1__Turn *mk_turn(Goodwill__V1__Turn *t, unsigned seq, Goodwill__V1__Speaker sp,
                                   const char *text) {
  goodwill__v1__turn__init(t);
  t->seq = seq;
  t->speaker = sp;
  t->text = (char *)text;
  return t;
}

static void mk_event(Goodwill__V1__InteractionEvent *ev, const char *event_id) {
  goodwill__v1__interaction_event__init(ev);
  ev->event_id = (char *)event_id;
  ev->tenant_id = (char *)"acme";
  ev->team_id = (char *)"billing-1";
  ev->agent_id = (char *)"agent-7";
  ev->interaction_id = (char *)"call-42";
  ev->channel = GOODWILL__V1__CHANNEL__CHANNEL_VOICE;
  ev->occurred_at_ms = 1700000000123LL;
}

/* Scores ev and unpacks the record; the caller frees it. */
static Goodwill__V1__ScoredRecord *score_event(const Goodwill__V1__InteractionEvent *ev,
                                               char id[GW_ID_HEX_LEN + 1], gw_buf *key) {
  gw_buf rec = GW_BUF_INIT;
  int rc = gw_scoring_score_event(model, ev, 0, &rec, key, id);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    gw_buf_free(&rec);
    return NULL;
  }
  Goodwill__V1__ScoredRecord *r =
      goodwill__v1__scored_record__unpack(NULL, rec.len, (const uint8_t *)rec.data);
  CHECK(r != NULL);
  gw_buf_free(&rec);
  return r;
}

static void test_closed_interaction_fields(void) {
  Goodwill__V1__Turn t[5];
  Goodwill__V1__Turn *tp[5] = {
      mk_turn(&t[0], 1, GOODWILL__V1__SPEAKER__SPEAKER_BOT, "Welcome! Great to have you!"),
      mk_turn(&t[1], 2, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
              "Third time calling, my internet is still not working!"),
      mk_turn(&t[2], 3, GOODWILL__V1__SPEAKER__SPEAKER_AGENT,
              "I'm so sorry, I understand how frustrating that is. Let me fix it."),
      mk_turn(&t[3], 4, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
              "That fixed it, thank you so much!"),
      mk_turn(&t[4], 5, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, "ok bye"),
  };
  Goodwill__V1__InteractionClosed cl = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  cl.handle_ms = 345000;
  cl.wait_ms = 61000;
  cl.transfers = 1;
  cl.resolved_presence_case = GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED;
  cl.resolved = false; /* presence with false must survive */
  cl.n_transcript = 5;
  cl.transcript = tp;
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-1");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;

  char id[GW_ID_HEX_LEN + 1];
  gw_buf key = GW_BUF_INIT;
  Goodwill__V1__ScoredRecord *r = score_event(&ev, id, &key);
  if (!r)
    return;
  CHECK_STR_EQ(key.data, "acme/billing-1");
  CHECK_INT_EQ(r->record_case, GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION);
  Goodwill__V1__ScoredInteraction *si = r->interaction;
  CHECK_STR_EQ(si->record_id, id);
  CHECK_INT_EQ(strlen(id), GW_ID_HEX_LEN);
  CHECK_STR_EQ(si->source_event_id, "evt-1");
  CHECK_STR_EQ(si->tenant_id, "acme");
  CHECK_STR_EQ(si->team_id, "billing-1");
  CHECK_STR_EQ(si->agent_id, "agent-7");
  CHECK_STR_EQ(si->interaction_id, "call-42");
  CHECK_INT_EQ(si->channel, GOODWILL__V1__CHANNEL__CHANNEL_VOICE);
  CHECK_INT_EQ(si->occurred_at_ms, 1700000000123LL);
  CHECK_STR_EQ(si->model_version, gw_feeling_model_version(model));
  CHECK(si->start_valence_milli < -50);
  CHECK(si->end_valence_milli > 50);
  CHECK_INT_EQ(si->change_valence_milli, si->end_valence_milli - si->start_valence_milli);
  CHECK_INT_EQ(si->start_polarity, GOODWILL__V1__POLARITY__POLARITY_NEGATIVE);
  CHECK_INT_EQ(si->end_polarity, GOODWILL__V1__POLARITY__POLARITY_POSITIVE);
  CHECK(si->recovered && !si->soured);
  CHECK(si->empathy_milli > 200 && si->empathy_milli <= 1000);
  CHECK_INT_EQ(si->customer_turns, 3); /* the bot turn is not the customer's */
  CHECK_INT_EQ(si->agent_turns, 1);
  CHECK_INT_EQ(si->handle_ms, 345000);
  CHECK_INT_EQ(si->wait_ms, 61000);
  CHECK_INT_EQ(si->transfers, 1);
  CHECK_INT_EQ(si->resolved_presence_case,
               GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED);
  CHECK(!si->resolved);
  /* Feelings: only non-zero categories, each a known name with 1..1000. */
  CHECK(si->n_start_feelings > 0 && si->n_start_feelings < GW_FEELING_COUNT);
  int frustration = 0, gratitude = 0;
  for (size_t i = 0; i < si->n_start_feelings; i++) {
    CHECK(si->start_feelings[i]->intensity_milli > 0);
    CHECK(si->start_feelings[i]->intensity_milli <= 1000);
    if (strcmp(si->start_feelings[i]->category, "frustration") == 0)
      frustration = 1;
  }
  for (size_t i = 0; i < si->n_end_feelings; i++)
    if (strcmp(si->end_feelings[i]->category, "gratitude") == 0)
      gratitude = 1;
  CHECK(frustration && gratitude);
  goodwill__v1__scored_record__free_unpacked(r, NULL);

  /* Without presence, resolved is absent, not false. */
  cl.resolved_presence_case = GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE__NOT_SET;
  gw_buf_reset(&key);
  r = score_event(&ev, id, &key);
  if (r) {
    CHECK_INT_EQ(r->interaction->resolved_presence_case,
                 GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE__NOT_SET);
    goodwill__v1__scored_record__free_unpacked(r, NULL);
  }
  gw_buf_free(&key);
}

static void test_closed_without_transcript(void) {
  Goodwill__V1__InteractionClosed cl = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  cl.handle_ms = 1000;
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-live");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;
  char id[GW_ID_HEX_LEN + 1];
  gw_buf key = GW_BUF_INIT;
  Goodwill__V1__ScoredRecord *r = score_event(&ev, id, &key);
  if (r) {
    Goodwill__V1__ScoredInteraction *si = r->interaction;
    CHECK_INT_EQ(si->start_valence_milli, 0);
    CHECK_INT_EQ(si->start_polarity, GOODWILL__V1__POLARITY__POLARITY_UNSPECIFIED);
    CHECK_INT_EQ(si->end_polarity, GOODWILL__V1__POLARITY__POLARITY_UNSPECIFIED);
    CHECK_INT_EQ(si->customer_turns, 0);
    CHECK_INT_EQ(si->n_start_feelings, 0);
    CHECK(!si->recovered && !si->soured);
    CHECK_INT_EQ(si->handle_ms, 1000);
    goodwill__v1__scored_record__free_unpacked(r, NULL);
  }
  gw_buf_free(&key);
}

static void test_survey(void) {
  Goodwill__V1__SurveyResponse sv = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  sv.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  sv.likelihood_to_recommend = 0; /* present zero: a detractor, not "missing" */
  sv.comment = (char *)"Terrible, I waited for hours";
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-s1");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &sv;
  char id[GW_ID_HEX_LEN + 1];
  gw_buf key = GW_BUF_INIT;
  Goodwill__V1__ScoredRecord *r = score_event(&ev, id, &key);
  if (!r)
    return;
  CHECK_INT_EQ(r->record_case, GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY);
  Goodwill__V1__ScoredSurvey *ss = r->survey;
  CHECK_STR_EQ(key.data, "acme/billing-1");
  CHECK_STR_EQ(ss->record_id, id);
  CHECK_STR_EQ(ss->interaction_id, "call-42");
  CHECK_STR_EQ(ss->model_version, gw_feeling_model_version(model));
  CHECK_INT_EQ(ss->likelihood_to_recommend, 0);
  CHECK_INT_EQ(ss->category, GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_DETRACTOR);
  CHECK_INT_EQ(ss->comment_presence_case,
               GOODWILL__V1__SCORED_SURVEY__COMMENT_PRESENCE_COMMENT_VALENCE_MILLI);
  CHECK(ss->comment_valence_milli < -300);
  goodwill__v1__scored_record__free_unpacked(r, NULL);

  /* No comment (or only blanks): no comment valence at all, rather than a neutral 0. */
  sv.likelihood_to_recommend = 10;
  sv.comment = (char *)"  \n";
  gw_buf_reset(&key);
  r = score_event(&ev, id, &key);
  if (r) {
    CHECK_INT_EQ(r->survey->category, GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PROMOTER);
    CHECK_INT_EQ(r->survey->comment_presence_case,
                 GOODWILL__V1__SCORED_SURVEY__COMMENT_PRESENCE__NOT_SET);
    goodwill__v1__scored_record__free_unpacked(r, NULL);
  }
  /* Likelihood missing or out of range: refused, nothing appended. */
  gw_buf rec = GW_BUF_INIT;
  gw_buf_reset(&key);
  sv.likelihood_presence_case = GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE__NOT_SET;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &rec, &key, id), -EINVAL);
  sv.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  sv.likelihood_to_recommend = 11;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &rec, &key, id), -EINVAL);
  CHECK_INT_EQ(rec.len, 0);
  CHECK_INT_EQ(key.len, 0);
  gw_buf_free(&rec);
  gw_buf_free(&key);
}

static void test_nps_categories(void) {
  for (unsigned l = 0; l <= 6; l++)
    CHECK_INT_EQ(gw_scoring_nps_category(l), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_DETRACTOR);
  CHECK_INT_EQ(gw_scoring_nps_category(7), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PASSIVE);
  CHECK_INT_EQ(gw_scoring_nps_category(8), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PASSIVE);
  CHECK_INT_EQ(gw_scoring_nps_category(9), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PROMOTER);
  CHECK_INT_EQ(gw_scoring_nps_category(10), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_PROMOTER);
  CHECK_INT_EQ(gw_scoring_nps_category(11), GOODWILL__V1__NPS_CATEGORY__NPS_CATEGORY_UNSPECIFIED);
}

static void test_record_ids_are_deterministic(void) {
  Goodwill__V1__SurveyResponse sv = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  sv.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  sv.likelihood_to_recommend = 8;
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-d");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &sv;
  char a[GW_ID_HEX_LEN + 1], b[GW_ID_HEX_LEN + 1], c[GW_ID_HEX_LEN + 1];
  gw_buf r1 = GW_BUF_INIT, r2 = GW_BUF_INIT, k = GW_BUF_INIT;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r1, &k, a), 0);
  /* The same input again gives the same id and the same bytes. */
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r2, &k, b), 0);
  CHECK_STR_EQ(a, b);
  CHECK(r1.len == r2.len && memcmp(r1.data, r2.data, r1.len) == 0);
  /* The id is FNV-1a 128 over ("survey", tenant, event id), each NUL-terminated. */
  gw_id_hasher h;
  gw_id_init(&h);
  gw_id_update_field(&h, "survey");
  gw_id_update_field(&h, "acme");
  gw_id_update_field(&h, "evt-d");
  gw_id_final_hex(&h, c);
  CHECK_STR_EQ(a, c);
  /* Fields that are not identity (score, agent, time) do not change it ... */
  sv.likelihood_to_recommend = 3;
  ev.agent_id = (char *)"someone-else";
  ev.occurred_at_ms = 1;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r2, &k, b), 0);
  CHECK_STR_EQ(a, b);
  /* ... while the tenant, the event id and the kind do. */
  ev.tenant_id = (char *)"other";
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r2, &k, b), 0);
  CHECK(strcmp(a, b) != 0);
  ev.tenant_id = (char *)"acme";
  ev.event_id = (char *)"evt-e";
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r2, &k, b), 0);
  CHECK(strcmp(a, b) != 0);
  ev.event_id = (char *)"evt-d";
  Goodwill__V1__InteractionClosed cl = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &r2, &k, b), 0);
  CHECK(strcmp(a, b) != 0);
  gw_buf_free(&r1);
  gw_buf_free(&r2);
  gw_buf_free(&k);
}

static void test_refusals(void) {
  Goodwill__V1__Turn t;
  mk_turn(&t, 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, "hello");
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-t");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
  ev.turn = &t;
  gw_buf rec = GW_BUF_INIT, key = GW_BUF_INIT;
  char id[GW_ID_HEX_LEN + 1];
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &rec, &key, id), -ENOTSUP);
  CHECK_INT_EQ(rec.len, 0);
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY__NOT_SET;
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &rec, &key, id), -EINVAL);
  CHECK_INT_EQ(rec.len, 0);
  CHECK_INT_EQ(key.len, 0);
  gw_buf_free(&rec);
  gw_buf_free(&key);
}

static void test_appends_to_buffers(void) {
  Goodwill__V1__SurveyResponse sv = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  sv.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  sv.likelihood_to_recommend = 9;
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-a");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &sv;
  gw_buf rec = GW_BUF_INIT, key = GW_BUF_INIT;
  gw_buf_puts(&rec, "XY");
  gw_buf_puts(&key, "k:");
  char id[GW_ID_HEX_LEN + 1];
  CHECK_INT_EQ(gw_scoring_score_event(model, &ev, 0, &rec, &key, id), 0);
  CHECK(rec.len > 2 && memcmp(rec.data, "XY", 2) == 0);
  CHECK_STR_EQ(key.data, "k:acme/billing-1");
  Goodwill__V1__ScoredRecord *r =
      goodwill__v1__scored_record__unpack(NULL, rec.len - 2, (const uint8_t *)rec.data + 2);
  CHECK(r != NULL && r->survey && r->survey->likelihood_to_recommend == 9);
  if (r)
    goodwill__v1__scored_record__free_unpacked(r, NULL);
  gw_buf_free(&rec);
  gw_buf_free(&key);
}

/* Scores ev with flags into a packed record (the caller frees rec). */
static void score_packed(const Goodwill__V1__InteractionEvent *ev, unsigned flags, gw_buf *rec) {
  gw_buf key = GW_BUF_INIT;
  char id[GW_ID_HEX_LEN + 1];
  CHECK_INT_EQ(gw_scoring_score_event(model, ev, flags, rec, &key, id), 0);
  gw_buf_free(&key);
}

/* With GW_SCORING_EXPLAIN the record carries the explanation and is otherwise the same record
 * byte for byte; without it the field is empty. The aggregator's decoder takes both and reads
 * the same row from them. */
static void test_explanations_in_records(void) {
  Goodwill__V1__Turn t[4];
  Goodwill__V1__Turn *tp[4] = {
      mk_turn(&t[0], 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
              "Third time calling, my internet is STILL not working!"),
      mk_turn(&t[1], 2, GOODWILL__V1__SPEAKER__SPEAKER_AGENT, "I'm so sorry. Let me fix it."),
      mk_turn(&t[2], 3, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
              "That fixed it, thank you so much!"),
      mk_turn(&t[3], 4, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, "ok bye"),
  };
  Goodwill__V1__InteractionClosed cl = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  cl.n_transcript = 4;
  cl.transcript = tp;
  Goodwill__V1__InteractionEvent ev;
  mk_event(&ev, "evt-explain");
  ev.received_at_ms = 1700000000456LL;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;

  gw_buf plain = GW_BUF_INIT, explained = GW_BUF_INIT;
  score_packed(&ev, 0, &plain);
  score_packed(&ev, GW_SCORING_EXPLAIN, &explained);
  Goodwill__V1__ScoredRecord *p =
      goodwill__v1__scored_record__unpack(NULL, plain.len, (const uint8_t *)plain.data);
  Goodwill__V1__ScoredRecord *x =
      goodwill__v1__scored_record__unpack(NULL, explained.len, (const uint8_t *)explained.data);
  CHECK(p && x && p->interaction && x->interaction);
  if (p && x && p->interaction && x->interaction) {
    CHECK_STR_EQ(p->interaction->explain_json, "");
    const char *j = x->interaction->explain_json;
    CHECK(strncmp(j, "{\"customer_turns\":[{\"turn\":0,", 29) == 0);
    CHECK_STR_CONTAINS(j, "\"text\":\"Third time calling\"");
    CHECK_STR_CONTAINS(j, "\"rule\":\"caps\"");
    CHECK_STR_CONTAINS(j, "\"start_weight\":1.0");
    /* gw-feeling-0.4: the last informative turn is the end, "ok bye" is bare and left out;
     * the conversational band and the change direction are explained. */
    CHECK_STR_CONTAINS(j, "\"end_weight\":1.0");
    CHECK_STR_CONTAINS(j, "\"bare\":true}");
    CHECK_STR_CONTAINS(j, "\"rule\":\"shout\"");
    CHECK_STR_CONTAINS(j, "\"change_direction\":\"improved\",\"direction_by\":\"polarity\"");
    CHECK_STR_CONTAINS(j, "\"held_back\":[{\"category\":\"anger\"");
    CHECK(strlen(j) < GW_SCORING_EXPLAIN_MAX_BYTES);
    /* Without the field, the same record. */
    char *kept = x->interaction->explain_json;
    x->interaction->explain_json = (char *)"";
    gw_buf again = GW_BUF_INIT;
    size_t n = goodwill__v1__scored_record__get_packed_size(x);
    gw_buf_reserve(&again, n);
    again.len = goodwill__v1__scored_record__pack(x, (uint8_t *)again.data);
    CHECK(again.len == plain.len && memcmp(again.data, plain.data, plain.len) == 0);
    gw_buf_free(&again);
    x->interaction->explain_json = kept; /* free_unpacked frees what unpack allocated */
  }
  if (x)
    goodwill__v1__scored_record__free_unpacked(x, NULL);
  if (p)
    goodwill__v1__scored_record__free_unpacked(p, NULL);

  /* The aggregator ignores the field: the same row from both records. */
  gw_agg_record ra, rb;
  char err[200];
  memset(&ra, 0, sizeof(ra));
  memset(&rb, 0, sizeof(rb));
  CHECK_INT_EQ(gw_agg_record_decode(plain.data, plain.len, &ra, err, sizeof(err)), 0);
  CHECK_INT_EQ(gw_agg_record_decode(explained.data, explained.len, &rb, err, sizeof(err)), 0);
  CHECK(memcmp(&ra, &rb, sizeof(ra)) == 0);
  gw_buf_free(&plain);
  gw_buf_free(&explained);

  /* A survey's comment is explained as one utterance; a blank comment is not. */
  Goodwill__V1__SurveyResponse sv = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  sv.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  sv.likelihood_to_recommend = 3;
  sv.comment = (char *)"not good at all, very rude";
  mk_event(&ev, "evt-survey-explain");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &sv;
  score_packed(&ev, GW_SCORING_EXPLAIN, &explained);
  x = goodwill__v1__scored_record__unpack(NULL, explained.len, (const uint8_t *)explained.data);
  CHECK(x && x->survey);
  if (x && x->survey) {
    CHECK_STR_CONTAINS(x->survey->comment_explain_json, "\"rule\":\"negation\",\"cue\":\"not\"");
    CHECK_STR_CONTAINS(x->survey->comment_explain_json, "\"cue\":\"very\"");
    CHECK(strncmp(x->survey->comment_explain_json, "{\"hits\":[", 9) == 0);
  }
  if (x)
    goodwill__v1__scored_record__free_unpacked(x, NULL);
  CHECK_INT_EQ(gw_agg_record_decode(explained.data, explained.len, &rb, err, sizeof(err)), 0);
  gw_buf_free(&explained);
  sv.comment = (char *)"  \n";
  score_packed(&ev, GW_SCORING_EXPLAIN, &explained);
  x = goodwill__v1__scored_record__unpack(NULL, explained.len, (const uint8_t *)explained.data);
  CHECK(x && x->survey && x->survey->comment_explain_json[0] == '\0');
  if (x)
    goodwill__v1__scored_record__free_unpacked(x, NULL);
  gw_buf_free(&explained);

  /* An explanation over the limit is replaced by a short note; the record is still read. */
  gw_buf huge = GW_BUF_INIT;
  while (huge.len < 16000)
    gw_buf_puts(&huge, "awful ");
  Goodwill__V1__Turn ht;
  Goodwill__V1__Turn *htp[1] = {
      mk_turn(&ht, 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, huge.data)};
  cl.n_transcript = 1;
  cl.transcript = htp;
  mk_event(&ev, "evt-explain-huge");
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;
  score_packed(&ev, GW_SCORING_EXPLAIN, &explained);
  x = goodwill__v1__scored_record__unpack(NULL, explained.len, (const uint8_t *)explained.data);
  CHECK(x && x->interaction);
  if (x && x->interaction) {
    CHECK(strncmp(x->interaction->explain_json, "{\"omitted\":\"explanation of ", 27) == 0);
    CHECK_STR_CONTAINS(x->interaction->explain_json, "over the limit of 65536");
    CHECK(x->interaction->start_valence_milli < -900);
  }
  if (x)
    goodwill__v1__scored_record__free_unpacked(x, NULL);
  CHECK_INT_EQ(gw_agg_record_decode(explained.data, explained.len, &rb, err, sizeof(err)), 0);
  gw_buf_free(&explained);
  gw_buf_free(&huge);
}

int main(void) {
  char err[256];
  if (gw_feeling_model_load(&model, NULL, err, sizeof(err)) != 0) {
    fprintf(stderr, "cannot load the default lexicon: %s\n", err);
    return 1;
  }
  GW_RUN(test_closed_interaction_fields);
  GW_RUN(test_closed_without_transcript);
  GW_RUN(test_survey);
  GW_RUN(test_nps_categories);
  GW_RUN(test_record_ids_are_deterministic);
  GW_RUN(test_refusals);
  GW_RUN(test_appends_to_buffers);
  GW_RUN(test_explanations_in_records);
  gw_feeling_model_free(model);
  return gw_test_finish();
}
