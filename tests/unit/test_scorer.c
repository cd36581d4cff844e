/*
 * gw_scorer in-process against the mock cluster: valid events become ScoredRecords keyed
 * tenant/team, undecodable and invalid records go to the DLQ with their reason and source
 * headers, a tiny in-flight bound still lets everything through (pause/resume), and after a
 * drained stop a second scorer of the same group reads only what came later. Live turns are
 * buffered until their close, their offsets held uncommitted (a restarted scorer reads them
 * again), scored together in seq order with a retried turn once (or released when the close
 * carries a transcript), and expired to the DLQ by event time, or by processing time when
 * nothing more is read. A turn read after its interaction's close goes to the DLQ at once and
 * does not hold the committed offset back. A lexicon reload applies to the records scored after
 * it, and a broken overlay keeps the old model. A fatal producer error makes the scorer not
 * ready and its stop quick.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/aggregates.h"
#include "goodwill/buf.h"
#include "goodwill/event.h"
#include "devkafka.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "goodwill/scorer.h"
#include "goodwill/v1/scored.pb-c.h"
#include "gw_test.h"
#include "gw_test_loop.h"

typedef struct fixture {
  uv_loop_t loop;
  gw_log log;
  gw_devkafka *dk;
  gw_kafka_producer *producer;
} fixture;

static fixture fx;

static bool run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms) {
  return gw_test_run_until(&fx.loop, cond, arg, timeout_ms);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- input records */

static int delivered, delivery_failed;

static void on_input_delivery(void *opaque, int status, const char *errstr, int32_t partition,
                              int64_t offset) {
  if (status == 0) {
    delivered++;
  } else {
    delivery_failed++;
  }
}

static void produce_raw(const char *key, const void *value, size_t len) {
  int rc = gw_kafka_produce(fx.producer, GW_TOPIC_INTERACTIONS, key, strlen(key), value, len, NULL,
                            0, on_input_delivery, NULL);
  CHECK_INT_EQ(rc, 0);
}

static void produce_event(const Goodwill__V1__InteractionEvent *ev) {
  gw_buf value = GW_BUF_INIT, key = GW_BUF_INIT;
  gw_event_pack(ev, &value);
  gw_event_kafka_key(ev, &key);
  produce_raw(key.data, value.data, value.len);
  gw_buf_free(&value);
  gw_buf_free(&key);
}

static void fill_envelope(Goodwill__V1__InteractionEvent *ev, const char *event_id,
                          const char *team) {
  ev->event_id = (char *)event_id;
  ev->tenant_id = "acme";
  ev->team_id = (char *)team;
  ev->agent_id = "agent-7";
  ev->interaction_id = (char *)event_id;
  ev->channel = GOODWILL__V1__CHANNEL__CHANNEL_CHAT;
  ev->occurred_at_ms = now_ms() - 3600 * 1000;
  ev->received_at_ms = now_ms();
}

static void produce_closed_at(const char *event_id, const char *team, int64_t at_ms) {
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__InteractionClosed closed = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  Goodwill__V1__Turn t1 = GOODWILL__V1__TURN__INIT, t2 = GOODWILL__V1__TURN__INIT,
                     t3 = GOODWILL__V1__TURN__INIT;
  Goodwill__V1__Turn *turns[] = {&t1, &t2, &t3};
  fill_envelope(&ev, event_id, team);
  if (at_ms > 0) {
    ev.occurred_at_ms = at_ms;
  }
  t1.seq = 1;
  t1.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  t1.text = "This is the third time calling and it is still not working!";
  t2.seq = 2;
  t2.speaker = GOODWILL__V1__SPEAKER__SPEAKER_AGENT;
  t2.text = "I am so sorry about that, I understand. Let me fix it right now.";
  t3.seq = 3;
  t3.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  t3.text = "That fixed it, thank you so much!";
  closed.handle_ms = 300000;
  closed.wait_ms = 20000;
  closed.n_transcript = 3;
  closed.transcript = turns;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &closed;
  produce_event(&ev);
}

static void produce_closed(const char *event_id, const char *team) {
  produce_closed_at(event_id, team, 0);
}

static void produce_survey(const char *event_id) {
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__SurveyResponse survey = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  fill_envelope(&ev, event_id, "team-b");
  survey.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  survey.likelihood_to_recommend = 9;
  survey.comment = "great help";
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &survey;
  produce_event(&ev);
}

/* One live utterance of interaction_id; speaker 0 makes it invalid. */
static void produce_live_turn(const char *event_id, const char *interaction_id, uint32_t seq,
                              Goodwill__V1__Speaker speaker, const char *text, int64_t at_ms) {
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__Turn turn = GOODWILL__V1__TURN__INIT;
  fill_envelope(&ev, event_id, "team-live");
  ev.interaction_id = (char *)interaction_id;
  ev.occurred_at_ms = at_ms;
  turn.seq = seq;
  turn.speaker = speaker;
  turn.text = (char *)text;
  turn.offset_ms = seq * 5000u;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
  ev.turn = &turn;
  produce_event(&ev);
}

/* The end of a live interaction: facts, no transcript. */
static void produce_live_close(const char *event_id, const char *interaction_id, int64_t at_ms) {
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__InteractionClosed closed = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  fill_envelope(&ev, event_id, "team-live");
  ev.interaction_id = (char *)interaction_id;
  ev.occurred_at_ms = at_ms;
  closed.handle_ms = 240000;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &closed;
  produce_event(&ev);
}

static void produce_missing_tenant(const char *event_id) {
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__SurveyResponse survey = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  fill_envelope(&ev, event_id, "team-b");
  ev.tenant_id = "";
  survey.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  survey.likelihood_to_recommend = 3;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  ev.survey = &survey;
  produce_event(&ev);
}

/* ------------------------------------------------------------- output reader */

typedef struct outputs {
  gw_kafka_consumer *c;
  int scored, dlq;
  int interactions, surveys;
  int bad_key;
  int dlq_decode, dlq_invalid, dlq_unsupported, dlq_expired, dlq_undeliverable, dlq_after_close;
  char undeliverable_reason[256], undeliverable_type[64];
  int dlq_headers_ok;
  char invalid_reason[256], expired_reason[256], after_close_reason[256];
  /* How many ScoredInteractions of interaction "live-1" were read, and the last one. */
  int live;
  Goodwill__V1__ScoredInteraction live_copy;
  /* Interaction "live-3" (a live turn, then a close with a transcript). */
  int live3;
  uint32_t live3_customer_turns, live3_agent_turns;
  char live_copy_id[72];
  /* The records of test_time_and_bounds (source event ids "tb-*"): how many, how many the
   * aggregator's decoder takes, and the received_at_ms each carries. */
  int tb, tb_agg_ok;
  int64_t tb_received[3]; /* tb-bound, tb-skew, tb-direct */
  /* The records of test_lexicon_reload (source event ids "rl-*"): how many, and the
   * model_version of the last one. */
  int rl;
  char rl_version[96];
} outputs;

static const char *const tb_ids[3] = {"tb-bound", "tb-skew", "tb-direct"};

/* Notes a scored record of test_time_and_bounds. */
static void note_tb(outputs *o, const gw_kafka_message *m, const char *source_event_id,
                    int64_t received_at_ms) {
  for (int i = 0; i < 3; i++) {
    if (source_event_id != NULL && strcmp(source_event_id, tb_ids[i]) == 0) {
      o->tb++;
      o->tb_received[i] = received_at_ms;
      gw_agg_record r;
      char err[200];
      if (gw_agg_record_decode(m->value, m->value_len, &r, err, sizeof err) == 0) {
        o->tb_agg_ok++;
      } else {
        fprintf(stderr, "%s: the aggregator refuses its record: %s\n", tb_ids[i], err);
      }
    }
  }
}

static const char *header(const gw_kafka_message *m, const char *name, char *buf, size_t len) {
  for (size_t i = 0; i < m->nheaders; i++) {
    if (strcmp(m->headers[i].name, name) == 0) {
      size_t n = m->headers[i].value_len < len - 1 ? m->headers[i].value_len : len - 1;
      memcpy(buf, m->headers[i].value, n);
      buf[n] = '\0';
      return buf;
    }
  }
  return NULL;
}

static void on_output(void *opaque, const gw_kafka_message *m) {
  outputs *o = opaque;
  if (strcmp(m->topic, GW_TOPIC_SCORED) == 0) {
    o->scored++;
    Goodwill__V1__ScoredRecord *r =
        goodwill__v1__scored_record__unpack(NULL, m->value_len, m->value);
    if (r == NULL) {
      o->bad_key++;
      return;
    }
    const char *tenant = NULL, *team = NULL;
    if (r->record_case == GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION) {
      o->interactions++;
      tenant = r->interaction->tenant_id;
      team = r->interaction->team_id;
      note_tb(o, m, r->interaction->source_event_id, r->interaction->received_at_ms);
      if (strncmp(r->interaction->source_event_id, "rl-", 3) == 0) {
        o->rl++;
        snprintf(o->rl_version, sizeof o->rl_version, "%s", r->interaction->model_version);
      }
      if (strcmp(r->interaction->interaction_id, "live-3") == 0) {
        o->live3++;
        o->live3_customer_turns = r->interaction->customer_turns;
        o->live3_agent_turns = r->interaction->agent_turns;
      }
      if (strcmp(r->interaction->interaction_id, "live-1") == 0) {
        o->live++;
        /* Only the scalar fields are read later; the pointers are not kept. */
        o->live_copy = *r->interaction;
        o->live_copy.record_id = o->live_copy_id;
        snprintf(o->live_copy_id, sizeof o->live_copy_id, "%s", r->interaction->record_id);
        o->live_copy.start_feelings = o->live_copy.end_feelings = NULL;
        o->live_copy.tenant_id = o->live_copy.team_id = o->live_copy.agent_id = NULL;
        o->live_copy.interaction_id = o->live_copy.source_event_id = NULL;
        o->live_copy.model_version = NULL;
      }
    } else if (r->record_case == GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY) {
      o->surveys++;
      tenant = r->survey->tenant_id;
      team = r->survey->team_id;
      note_tb(o, m, r->survey->source_event_id, r->survey->received_at_ms);
    }
    char want[2 * GW_EVENT_MAX_ID_BYTES + 2];
    int n = snprintf(want, sizeof want, "%s/%s", tenant ? tenant : "?", team ? team : "?");
    if (m->key_len != (size_t)n || memcmp(m->key, want, (size_t)n) != 0) {
      o->bad_key++;
    }
    goodwill__v1__scored_record__free_unpacked(r, NULL);
  } else {
    o->dlq++;
    char reason[256], src_topic[128], src_part[16], src_off[32];
    if (header(m, "goodwill-reason", reason, sizeof reason) == NULL) {
      return;
    }
    if (strncmp(reason, "decode", 6) == 0) {
      o->dlq_decode++;
    } else if (strncmp(reason, "invalid", 7) == 0) {
      o->dlq_invalid++;
      snprintf(o->invalid_reason, sizeof o->invalid_reason, "%s", reason);
    } else if (strncmp(reason, "unsupported", 11) == 0) {
      o->dlq_unsupported++;
    } else if (strncmp(reason, "expired", 7) == 0) {
      o->dlq_expired++;
      snprintf(o->expired_reason, sizeof o->expired_reason, "%s", reason);
    } else if (strncmp(reason, "turn_after_close", 16) == 0) {
      o->dlq_after_close++;
      snprintf(o->after_close_reason, sizeof o->after_close_reason, "%s", reason);
    } else if (strncmp(reason, "undeliverable", 13) == 0) {
      o->dlq_undeliverable++;
      snprintf(o->undeliverable_reason, sizeof o->undeliverable_reason, "%s", reason);
      if (header(m, "goodwill-value-type", o->undeliverable_type, sizeof o->undeliverable_type) ==
          NULL) {
        snprintf(o->undeliverable_type, sizeof o->undeliverable_type, "(no header)");
      }
    }
    if (header(m, "goodwill-source-topic", src_topic, sizeof src_topic) != NULL &&
        strcmp(src_topic, GW_TOPIC_INTERACTIONS) == 0 &&
        header(m, "goodwill-source-partition", src_part, sizeof src_part) != NULL &&
        header(m, "goodwill-source-offset", src_off, sizeof src_off) != NULL &&
        strtoll(src_off, NULL, 10) >= 0 && m->key_len > 0) {
      o->dlq_headers_ok++;
    }
  }
}

/* What the output reader saw since it started (test_scores_and_routes_to_dlq starts it). */
static outputs seen;

static gw_kafka_consumer *new_output_reader(outputs *o, const char *group) {
  memset(o, 0, sizeof *o);
  static const char *const topics[] = {GW_TOPIC_SCORED, GW_TOPIC_DLQ};
  gw_kafka_consumer_config cc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .group_id = group,
      .topics = topics,
      .ntopics = 2,
      .session_timeout_ms = 6000,
      .commit_interval_ms = 500,
      .log = &fx.log,
  };
  gw_kafka_consumer_handlers h = {.on_message = on_output};
  char err[256];
  int rc = gw_kafka_consumer_new(&o->c, &fx.loop, &cc, &h, o, err, sizeof err);
  CHECK_INT_EQ(rc, 0);
  return o->c;
}

/* ------------------------------------------------------------- scorer lifecycle */

typedef struct stop_state {
  bool done;
  int status;
} stop_state;

static void on_stopped(void *opaque, int status) {
  stop_state *st = opaque;
  st->done = true;
  st->status = status;
}

static bool stop_done(void *arg) {
  return ((stop_state *)arg)->done;
}

static gw_metrics *scorer_metrics; /* when set, the next scorer started registers in it */
static const char *scorer_overlay; /* when set, the next scorer started merges this overlay */

static gw_scorer *start_scorer_live(size_t max_in_flight, int64_t turn_idle_timeout_ms,
                                    size_t max_open_turns) {
  gw_scorer_config cfg = {
      .kafka_bootstrap = gw_devkafka_bootstrap(fx.dk),
      .group_id = "test-scorer",
      .max_in_flight = max_in_flight,
      .session_timeout_ms = 3000,
      .commit_interval_ms = 200,
      .shutdown_grace_ms = 10000,
      .retry_backoff_ms = 100,
      .retry_backoff_max_ms = 800,
      .turn_idle_timeout_ms = turn_idle_timeout_ms,
      /* The grace protects backfills in processing time; these tests move event time with the
       * records they produce, a second after the turns. */
      .turn_expiry_grace_ms = 1000,
      .max_open_turns = max_open_turns,
      .metrics = scorer_metrics,
      .lexicon_overlay_path = scorer_overlay,
      .admin_host = "127.0.0.1",
      .admin_port = 0,
      .log = &fx.log,
  };
  gw_scorer *s = NULL;
  CHECK_INT_EQ(gw_scorer_start(&fx.loop, &cfg, &s), 0);
  return s;
}

static gw_scorer *start_scorer(size_t max_in_flight) {
  return start_scorer_live(max_in_flight, 0, 0);
}

typedef struct stats_wait {
  gw_scorer *s;
  uint64_t consumed, done;
} stats_wait;

static bool scorer_reached(void *arg) {
  stats_wait *w = arg;
  gw_scorer_stats st;
  gw_scorer_get_stats(w->s, &st);
  return st.consumed >= w->consumed && st.scored + st.dlq >= w->done && st.in_flight == 0;
}

static bool scorer_ready(void *arg) {
  return gw_scorer_ready(arg, NULL, 0);
}

static void test_scores_and_routes_to_dlq(void) {
  /* 5 closed + 1 survey scored; garbage, a turn without speaker and an event without tenant
   * to the DLQ. */
  produce_closed("ev-1", "team-a");
  produce_closed("ev-2", "team-a");
  produce_closed("ev-3", "team-b");
  produce_raw("acme/garbage", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
  produce_closed("ev-4", "team-c");
  produce_survey("ev-5");
  produce_live_turn("ev-7", "ev-7", 1, GOODWILL__V1__SPEAKER__SPEAKER_UNSPECIFIED, "hello?",
                    now_ms() - 3600 * 1000);
  produce_missing_tenant("ev-6");
  produce_closed("ev-8", "team-a");
  gw_test_count w = {&delivered, 9};
  CHECK(run_until(gw_test_count_reached, &w, 15000));

  gw_scorer *s = start_scorer(2);
  if (s == NULL) {
    return;
  }
  CHECK(gw_scorer_admin_port(s) > 0);
  char reason[128] = "";
  CHECK(!gw_scorer_ready(s, reason, sizeof reason));
  CHECK(reason[0] != '\0');
  stats_wait sw = {s, 9, 9};
  CHECK(run_until(scorer_reached, &sw, 30000));
  CHECK(run_until(scorer_ready, s, 10000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.consumed, 9);
  CHECK_INT_EQ(st.scored, 6);
  CHECK_INT_EQ(st.dlq, 3);
  CHECK_INT_EQ(st.in_flight, 0);
  CHECK(!st.paused);

  /* The reader stays open for the later tests (one group join less); main() closes it. */
  outputs *op = &seen;
  new_output_reader(op, "test-scorer-verify");
  gw_test_count wo = {&op->scored, 6};
  CHECK(run_until(gw_test_count_reached, &wo, 30000));
  gw_test_count wd = {&op->dlq, 3};
  CHECK(run_until(gw_test_count_reached, &wd, 10000));
  CHECK_INT_EQ(op->interactions, 5);
  CHECK_INT_EQ(op->surveys, 1);
  CHECK_INT_EQ(op->bad_key, 0);
  CHECK_INT_EQ(op->dlq_decode, 1);
  CHECK_INT_EQ(op->dlq_invalid, 2);
  CHECK_INT_EQ(op->dlq_unsupported, 0);
  CHECK_INT_EQ(op->dlq_headers_ok, 3);
  CHECK_STR_CONTAINS(op->invalid_reason, "tenant");

  /* A drained stop commits everything; the next member of the group starts after it. */
  stop_state stop = {false, -1};
  gw_scorer_stop(s, on_stopped, &stop);
  CHECK(run_until(stop_done, &stop, 30000));
  CHECK_INT_EQ(stop.status, 0);

  gw_scorer *s2 = start_scorer(100);
  if (s2 != NULL) {
    CHECK(run_until(scorer_ready, s2, 20000));
    produce_closed("ev-9", "team-a");
    /* The input topic has one partition: a replay of the first nine would come first. */
    stats_wait sw2 = {s2, 1, 1};
    CHECK(run_until(scorer_reached, &sw2, 20000));
    gw_scorer_get_stats(s2, &st);
    CHECK_INT_EQ(st.consumed, 1);
    CHECK_INT_EQ(st.scored, 1);
    stop_state stop2 = {false, -1};
    gw_scorer_stop(s2, on_stopped, &stop2);
    CHECK(run_until(stop_done, &stop2, 30000));
    CHECK_INT_EQ(stop2.status, 0);
  }
}

/* Produce requests fail for a while: the scorer retries, stores nothing before delivery, and
 * ends with every output written and nothing in flight. */
static void test_retries_failed_deliveries(void) {
  int before = delivered;
  produce_closed("ev-10", "team-r");
  produce_survey("ev-11");
  gw_test_count w = {&delivered, before + 2};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  CHECK_INT_EQ(gw_devkafka_fail_produce(fx.dk, 1), 0);
  gw_scorer *s = start_scorer(100);
  if (s == NULL) {
    return;
  }
  stats_wait sw = {s, 2, 2};
  CHECK(run_until(scorer_reached, &sw, 30000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.consumed, 2);
  CHECK_INT_EQ(st.scored, 2);
  CHECK(st.delivery_failures >= 1);
  CHECK_INT_EQ(st.in_flight, 0);
  stop_state stop = {false, -1};
  gw_scorer_stop(s, on_stopped, &stop);
  CHECK(run_until(stop_done, &stop, 30000));
  CHECK_INT_EQ(stop.status, 0);
}

typedef struct live_wait {
  gw_scorer *s;
  uint64_t consumed, turns_buffered, done, expired;
  size_t open_turns;
} live_wait;

static bool live_reached(void *arg) {
  live_wait *w = arg;
  gw_scorer_stats st;
  gw_scorer_get_stats(w->s, &st);
  return st.consumed >= w->consumed && st.turns_buffered >= w->turns_buffered &&
         st.scored + st.dlq >= w->done && st.interactions_expired >= w->expired &&
         st.open_turns == w->open_turns && st.in_flight == 0;
}

static void stop_scorer_drained(gw_scorer *s) {
  stop_state stop = {false, -1};
  gw_scorer_stop(s, on_stopped, &stop);
  CHECK(run_until(stop_done, &stop, 30000));
  CHECK_INT_EQ(stop.status, 0);
}

/*
 * Live turns of two interactions, then a whole interaction (scored at once). The commit point
 * must stay at the oldest open turn: a restarted scorer reads the turns again. The close of
 * live-1 (no transcript) is scored from its turns in seq order, the retried turn once; live-2
 * never closes and expires by event time when a later event moves the stream past the idle
 * timeout; then everything is committed.
 */
static void test_live_turns(void) {
  int64_t t0 = now_ms() - 3 * 3600 * 1000; /* event time of the live interactions */
  int before = delivered;
  produce_live_turn("l1-a", "live-1", 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "This is the third time calling and it is still not working! I am furious.",
                    t0);
  /* seq 3 arrives before seq 2 (a client resent a late utterance): scoring sorts by seq. */
  produce_live_turn("l1-c", "live-1", 3, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "That fixed it, thank you so much! Great help.", t0 + 3000);
  produce_live_turn("l2-a", "live-2", 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "hello, is anyone there?", t0 + 4000);
  produce_live_turn("l1-b", "live-1", 2, GOODWILL__V1__SPEAKER__SPEAKER_AGENT,
                    "I am so sorry about that, I understand. Let me fix it right now.", t0 + 2000);
  /* The same agent turn again (a client retry with the same seq, another event id). */
  produce_live_turn("l1-b2", "live-1", 2, GOODWILL__V1__SPEAKER__SPEAKER_AGENT,
                    "I am so sorry about that, I understand. Let me fix it right now.", t0 + 2000);
  produce_closed_at("ev-20", "team-a", t0 + 5000);
  gw_test_count w = {&delivered, before + 6};
  CHECK(run_until(gw_test_count_reached, &w, 15000));

  gw_scorer *s = start_scorer_live(100, 3600 * 1000, 0);
  if (s == NULL) {
    return;
  }
  live_wait lw = {s, 6, 5, 1, 0, 5};
  CHECK(run_until(live_reached, &lw, 30000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.open_interactions, 2);
  CHECK_INT_EQ(st.open_turns, 5);
  CHECK_INT_EQ(st.scored, 1);
  CHECK_INT_EQ(st.in_flight, 0); /* held turns are not in flight */
  CHECK(!st.paused);
  /* A drained stop commits what is done; the open turns are not, although ev-20 after them
   * was delivered. */
  stop_scorer_drained(s);

  s = start_scorer_live(100, 3600 * 1000, 0);
  if (s == NULL) {
    return;
  }
  live_wait lw2 = {s, 6, 5, 1, 0, 5};
  if (!run_until(live_reached, &lw2, 30000)) {
    fprintf(stderr, "the restarted scorer did not read the 5 open turns and ev-20 again\n");
    CHECK(false);
  }
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.consumed, 6);
  CHECK_INT_EQ(st.open_interactions, 2);

  before = delivered;
  produce_live_close("l1-close", "live-1", t0 + 60000);
  gw_test_count wc = {&delivered, before + 1};
  CHECK(run_until(gw_test_count_reached, &wc, 15000));
  live_wait lw3 = {s, 7, 5, 2, 0, 1};
  CHECK(run_until(live_reached, &lw3, 20000));

  /* A close with a transcript wins over the turns buffered for its interaction: they are
   * released unscored, and done with the close. */
  before = delivered;
  produce_live_turn("l3-a", "live-3", 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "a live turn the transcript replaces", t0 + 61000);
  produce_closed_at("live-3", "team-live", t0 + 62000);
  gw_test_count w3 = {&delivered, before + 2};
  CHECK(run_until(gw_test_count_reached, &w3, 15000));
  live_wait lw3b = {s, 9, 6, 3, 0, 1};
  CHECK(run_until(live_reached, &lw3b, 20000));
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.turns_released, 1);
  CHECK_INT_EQ(st.open_interactions, 1);

  outputs *o = &seen;
  gw_test_count wl = {&o->live, 1};
  CHECK(run_until(gw_test_count_reached, &wl, 30000));
  CHECK_INT_EQ(o->live, 1);
  const Goodwill__V1__ScoredInteraction *si = &o->live_copy;
  CHECK_INT_EQ(si->customer_turns, 2);
  CHECK_INT_EQ(si->agent_turns, 1); /* the retried turn (seq 2) counted once */
  CHECK(si->start_valence_milli < 0);
  CHECK(si->end_valence_milli > 0);
  CHECK(si->change_valence_milli > 0);
  CHECK_INT_EQ(si->start_polarity, GOODWILL__V1__POLARITY__POLARITY_NEGATIVE);
  CHECK_INT_EQ(si->end_polarity, GOODWILL__V1__POLARITY__POLARITY_POSITIVE);
  CHECK(si->recovered);
  CHECK(si->empathy_milli > 0);
  CHECK_INT_EQ(si->handle_ms, 240000);
  CHECK_INT_EQ(si->occurred_at_ms, t0 + 60000);
  gw_test_count w3o = {&o->live3, 1};
  CHECK(run_until(gw_test_count_reached, &w3o, 20000));
  CHECK_INT_EQ(o->live3, 1);
  CHECK_INT_EQ(o->live3_customer_turns, 2); /* the transcript's two, not the live turn */
  CHECK_INT_EQ(o->live3_agent_turns, 1);

  /* An event 2 h after live-2's turn moves the stream time past the 1 h idle timeout. */
  before = delivered;
  produce_live_close("late-close", "other", t0 + 2 * 3600 * 1000);
  gw_test_count we = {&delivered, before + 1};
  CHECK(run_until(gw_test_count_reached, &we, 15000));
  live_wait lw4 = {s, 10, 6, 5, 1, 0};
  CHECK(run_until(live_reached, &lw4, 20000));
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.open_interactions, 0);
  CHECK_INT_EQ(st.interactions_expired, 1);
  gw_test_count wx = {&o->dlq_expired, 1};
  CHECK(run_until(gw_test_count_reached, &wx, 20000));
  CHECK_INT_EQ(o->dlq_expired, 1);
  CHECK_STR_CONTAINS(o->expired_reason, "expired: no InteractionClosed within 1h of the last turn");
  stop_scorer_drained(s);

  /* Everything before is done now: a third scorer reads only what comes next. It may hold two
   * open turns: the third turn of live-4 expires live-4 (the least recently active) at once. */
  s = start_scorer_live(100, 3600 * 1000, 2);
  if (s != NULL) {
    CHECK(run_until(scorer_ready, s, 20000));
    for (uint32_t seq = 1; seq <= 3; seq++) {
      char id[16];
      snprintf(id, sizeof id, "l4-%u", (unsigned)seq);
      produce_live_turn(id, "live-4", seq, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, "still here",
                        t0 + 2 * 3600 * 1000 + seq);
    }
    produce_closed_at("ev-21", "team-a", t0 + 2 * 3600 * 1000 + 10);
    live_wait lw5 = {s, 4, 3, 4, 1, 0};
    CHECK(run_until(live_reached, &lw5, 20000));
    gw_scorer_get_stats(s, &st);
    CHECK_INT_EQ(st.consumed, 4);
    CHECK_INT_EQ(st.scored, 1);
    CHECK_INT_EQ(st.dlq, 3);
    gw_test_count wy = {&o->dlq_expired, 4};
    CHECK(run_until(gw_test_count_reached, &wy, 20000));
    CHECK_STR_CONTAINS(o->expired_reason, "expired: open-turn limit reached");
    stop_scorer_drained(s);
  }
}

/* What /metrics shows of one metric (the first line starting with name and a space), or -1. */
static double metric_value(gw_metrics *m, const char *name) {
  gw_buf text = GW_BUF_INIT;
  gw_metrics_render(m, &text);
  double v = -1;
  size_t n = strlen(name);
  for (const char *line = text.data; line != NULL && *line != '\0';) {
    if (strncmp(line, name, n) == 0 && line[n] == ' ') {
      v = strtod(line + n + 1, NULL);
      break;
    }
    line = strchr(line, '\n');
    line = line != NULL ? line + 1 : NULL;
  }
  gw_buf_free(&text);
  return v;
}

typedef struct stray_wait {
  gw_scorer *s;
  uint64_t consumed, scored, dlq, after_close;
} stray_wait;

static bool stray_reached(void *arg) {
  stray_wait *w = arg;
  gw_scorer_stats st;
  gw_scorer_get_stats(w->s, &st);
  return st.consumed >= w->consumed && st.scored >= w->scored && st.dlq >= w->dlq &&
         st.turns_after_close >= w->after_close && st.in_flight == 0;
}

/*
 * A turn read after its interaction's close (a client that sent it late, or retried it) goes
 * to the DLQ at once with its reason, and its offset is done when the DLQ acknowledged it: a
 * scorer that joins the group after a drained stop starts after it. Before, it was buffered as
 * a new open interaction that no close would end, and held the committed offset until it
 * expired (6 h by default).
 */
static void test_turn_after_close_goes_to_dlq(void) {
  int64_t t0 = now_ms() - 2 * 3600 * 1000;
  int before = delivered;
  produce_live_turn("s1-a", "stray-1", 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "my card was charged twice", t0);
  produce_live_close("s1-close", "stray-1", t0 + 60000);
  produce_live_turn("s1-b", "stray-1", 2, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER,
                    "one more thing, sorry", t0 + 61000);
  produce_closed_at("ev-30", "team-a", t0 + 62000);
  gw_test_count w = {&delivered, before + 4};
  CHECK(run_until(gw_test_count_reached, &w, 15000));

  gw_metrics *m = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m), 0);
  scorer_metrics = m;
  gw_scorer *s = start_scorer_live(100, 3600 * 1000, 0);
  scorer_metrics = NULL;
  if (s == NULL) {
    gw_metrics_free(m);
    return;
  }
  stray_wait sw = {s, 4, 2, 1, 1};
  CHECK(run_until(stray_reached, &sw, 30000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.consumed, 4);
  CHECK_INT_EQ(st.scored, 2);
  CHECK_INT_EQ(st.dlq, 1);
  CHECK_INT_EQ(st.turns_after_close, 1);
  CHECK_INT_EQ(st.open_interactions, 0);
  CHECK_INT_EQ(st.open_turns, 0);
  CHECK_INT_EQ(st.open_bytes, 0);
  CHECK(metric_value(m, "goodwill_scorer_turns_after_close_total") == 1.0);
  CHECK(metric_value(m, "goodwill_scorer_open_bytes") == 0.0);
  CHECK(metric_value(m, "goodwill_scorer_open_oldest_age_seconds") == 0.0);

  gw_test_count wd = {&seen.dlq_after_close, 1};
  CHECK(run_until(gw_test_count_reached, &wd, 20000));
  CHECK_INT_EQ(seen.dlq_after_close, 1);
  CHECK_STR_CONTAINS(seen.after_close_reason,
                     "turn_after_close: interaction stray-1 of tenant acme was closed at offset ");
  stop_scorer_drained(s);
  gw_metrics_free(m);

  /* The committed offset passed the stray turn: the next member of the group reads only what
   * comes next (one partition: anything replayed would come before it). */
  s = start_scorer(100);
  if (s == NULL) {
    return;
  }
  CHECK(run_until(scorer_ready, s, 20000));
  produce_closed_at("ev-31", "team-a", t0 + 63000);
  stats_wait sw2 = {s, 1, 1};
  CHECK(run_until(scorer_reached, &sw2, 20000));
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.consumed, 1);
  CHECK_INT_EQ(st.scored, 1);
  CHECK_INT_EQ(st.open_turns, 0);
  stop_scorer_drained(s);
}

/* A partition that receives nothing after a turn never moves its stream time: the open
 * interaction expires by processing time, on the scorer's timer, with its reason, and the
 * oldest-age gauge showed it meanwhile. */
static void test_quiet_partition_expires_by_processing_time(void) {
  int before = delivered;
  produce_live_turn("q1-a", "quiet-1", 1, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER, "hello, anyone?",
                    now_ms() - 3600 * 1000);
  gw_test_count w = {&delivered, before + 1};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  int expired_before = seen.dlq_expired;

  gw_metrics *m = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m), 0);
  scorer_metrics = m;
  gw_scorer *s = start_scorer_live(100, 1500, 0);
  scorer_metrics = NULL;
  if (s == NULL) {
    gw_metrics_free(m);
    return;
  }
  live_wait lw = {s, 1, 1, 0, 0, 1};
  CHECK(run_until(live_reached, &lw, 30000));
  CHECK(metric_value(m, "goodwill_scorer_open_bytes") > 0);
  live_wait lw2 = {s, 1, 1, 1, 1, 0};
  CHECK(run_until(live_reached, &lw2, 20000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.interactions_expired, 1);
  CHECK_INT_EQ(st.dlq, 1);
  CHECK(metric_value(m, "goodwill_scorer_open_bytes") == 0.0);
  gw_test_count wx = {&seen.dlq_expired, expired_before + 1};
  CHECK(run_until(gw_test_count_reached, &wx, 20000));
  CHECK_STR_CONTAINS(seen.expired_reason, "expired: no InteractionClosed within 1500ms of the last "
                                          "turn (processing time");
  stop_scorer_drained(s);
  gw_metrics_free(m);
}

/* The brokers refuse a scored record for good (too large): retrying would block the partition
 * forever, so the record goes to the DLQ as a ScoredRecord with its reason, and its input is
 * done. */
typedef struct fatal_seen {
  int calls;
  char reason[512];
} fatal_seen;

static void on_fatal(void *opaque, const char *reason) {
  fatal_seen *f = opaque;
  f->calls++;
  snprintf(f->reason, sizeof f->reason, "%s", reason);
}

static bool fatal_called(void *arg) {
  return ((fatal_seen *)arg)->calls > 0;
}

/*
 * The scorer's producer fails for good (the brokers answer its first Produce request
 * OUT_OF_ORDER_SEQUENCE_NUMBER, fatal to an idempotent producer): the owner is told once, the
 * scorer is not ready with the reason, and a stop does not wait for the grace (10 s here) for
 * deliveries that cannot happen; the input stays uncommitted. Runs last: it leaves that input
 * unread for the group.
 */
static void test_fatal_producer_error(void) {
  int before = delivered;
  produce_closed("ev-30", "team-f");
  gw_test_count w = {&delivered, before + 1};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  /* Nothing else produces from here on: the next Produce request is the scorer's. */
  char err[256] = "";
  CHECK_INT_EQ(gw_devkafka_push_request_errors(fx.dk, "Produce", "OUT_OF_ORDER_SEQUENCE_NUMBER", 1,
                                               err, sizeof err),
               0);
  fatal_seen f;
  memset(&f, 0, sizeof f);
  gw_scorer_config cfg = {
      .kafka_bootstrap = gw_devkafka_bootstrap(fx.dk),
      .group_id = "test-scorer",
      .session_timeout_ms = 3000,
      .commit_interval_ms = 200,
      .shutdown_grace_ms = 10000,
      .admin_port = -1,
      .log = &fx.log,
      .on_fatal = on_fatal,
      .fatal_opaque = &f,
  };
  gw_scorer *s = NULL;
  CHECK_INT_EQ(gw_scorer_start(&fx.loop, &cfg, &s), 0);
  if (s == NULL) {
    return;
  }
  CHECK(run_until(fatal_called, &f, 30000));
  CHECK_INT_EQ(f.calls, 1);
  CHECK_STR_CONTAINS(f.reason, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  char reason[256] = "";
  CHECK(!gw_scorer_ready(s, reason, sizeof reason));
  CHECK_STR_CONTAINS(reason, "kafka fatal error: OUT_OF_ORDER_SEQUENCE_NUMBER");
  uint64_t t0 = uv_now(&fx.loop);
  stop_state stop = {false, -1};
  gw_scorer_stop(s, on_stopped, &stop);
  CHECK(run_until(stop_done, &stop, 30000));
  uv_update_time(&fx.loop);
  CHECK(uv_now(&fx.loop) - t0 < 5000);
  CHECK_INT_EQ(stop.status, -ETIMEDOUT);
  CHECK_INT_EQ(f.calls, 1);
}

static void test_undeliverable_scored_record_goes_to_dlq(void) {
  int before = delivered;
  produce_closed("ev-20", "team-u");
  gw_test_count w = {&delivered, before + 1};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  CHECK_INT_EQ(gw_devkafka_refuse_produce_too_large(fx.dk, 1), 0);
  gw_scorer *s = start_scorer(100);
  if (s == NULL) {
    return;
  }
  stats_wait sw = {s, 1, 1};
  CHECK(run_until(scorer_reached, &sw, 30000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.scored, 0);
  CHECK_INT_EQ(st.dlq, 1);
  CHECK(st.delivery_failures >= 1);
  CHECK_INT_EQ(st.in_flight, 0);
  gw_test_count wd = {&seen.dlq_undeliverable, 1};
  CHECK(run_until(gw_test_count_reached, &wd, 15000));
  CHECK_STR_EQ(seen.undeliverable_type, "goodwill.v1.ScoredRecord");
  CHECK_STR_CONTAINS(seen.undeliverable_reason,
                     "undeliverable: " GW_TOPIC_SCORED " refused the scored record: ");
  stop_scorer_drained(s);
}

/*
 * Limits and time, read from Kafka: (1) an event at every hard bound (128-byte ids, a text of
 * GW_EVENT_MAX_TEXT_BYTES, 7-day durations, 1000 transfers) is scored, and the aggregator's
 * decoder takes its record: what ingest may accept passes every stage. (2) An event whose
 * received_at (the ingest's clock) is an hour ahead of this clock, with occurred_at 4 minutes
 * after it: judged against received_at it is fine, so it is scored, though this clock would
 * call it an hour in the future. (3) An event without received_at (another producer) is stamped
 * from this clock, judged against it, and the stamp is in its record. (4) Such an event 10
 * minutes in the future goes to the DLQ as invalid.
 */
static void test_time_and_bounds(void) {
  int before = delivered;
  int invalid_before = seen.dlq_invalid;
  char id128[GW_EVENT_MAX_ID_BYTES + 1];
  memset(id128, 'x', GW_EVENT_MAX_ID_BYTES);
  id128[GW_EVENT_MAX_ID_BYTES] = '\0';
  char *text = malloc(GW_EVENT_MAX_TEXT_BYTES + 1);
  for (int i = 0; i < GW_EVENT_MAX_TEXT_BYTES; i++) {
    text[i] = "still not working "[i % 18];
  }
  text[GW_EVENT_MAX_TEXT_BYTES] = '\0';

  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__InteractionClosed closed = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  Goodwill__V1__Turn t1 = GOODWILL__V1__TURN__INIT;
  Goodwill__V1__Turn *turns[] = {&t1};
  fill_envelope(&ev, "tb-bound", id128);
  ev.agent_id = id128;
  ev.interaction_id = id128;
  t1.seq = 1;
  t1.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  t1.text = text;
  t1.offset_ms = (uint64_t)GW_EVENT_MAX_DURATION_MS;
  closed.handle_ms = closed.wait_ms = closed.talk_ms = closed.hold_ms =
      (uint64_t)GW_EVENT_MAX_DURATION_MS;
  closed.transfers = GW_EVENT_MAX_TRANSFERS;
  closed.n_transcript = 1;
  closed.transcript = turns;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &closed;
  produce_event(&ev);

  Goodwill__V1__SurveyResponse survey = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  survey.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  survey.likelihood_to_recommend = 6;
  Goodwill__V1__InteractionEvent sv = GOODWILL__V1__INTERACTION_EVENT__INIT;
  fill_envelope(&sv, "tb-skew", "team-t");
  sv.received_at_ms = now_ms() + 3600 * 1000;
  sv.occurred_at_ms = sv.received_at_ms + 4 * 60 * 1000;
  sv.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  sv.survey = &survey;
  int64_t skew_received = sv.received_at_ms;
  produce_event(&sv);

  fill_envelope(&sv, "tb-direct", "team-t");
  sv.received_at_ms = 0;
  sv.occurred_at_ms = now_ms() - 60 * 1000;
  int64_t direct_from = now_ms();
  produce_event(&sv);

  fill_envelope(&sv, "tb-future", "team-t");
  sv.received_at_ms = 0;
  sv.occurred_at_ms = now_ms() + 10 * 60 * 1000;
  produce_event(&sv);
  free(text);

  gw_test_count w = {&delivered, before + 4};
  CHECK(run_until(gw_test_count_reached, &w, 15000));
  gw_scorer *s = start_scorer(100);
  if (s == NULL) {
    return;
  }
  stats_wait sw = {s, 4, 4};
  CHECK(run_until(scorer_reached, &sw, 30000));
  gw_scorer_stats st;
  gw_scorer_get_stats(s, &st);
  CHECK_INT_EQ(st.scored, 3);
  CHECK_INT_EQ(st.dlq, 1);
  gw_test_count wo = {&seen.tb, 3};
  CHECK(run_until(gw_test_count_reached, &wo, 15000));
  CHECK_INT_EQ(seen.tb_agg_ok, 3);
  CHECK_INT_EQ(seen.tb_received[1], skew_received);
  CHECK(seen.tb_received[2] >= direct_from && seen.tb_received[2] <= now_ms());
  CHECK(seen.tb_received[0] > 0);
  gw_test_count wd = {&seen.dlq_invalid, invalid_before + 1};
  CHECK(run_until(gw_test_count_reached, &wd, 15000));
  CHECK_STR_CONTAINS(seen.invalid_reason, "occurred_at: too far in the future");
  stop_scorer_drained(s);
}

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f != NULL) {
    fputs(content, f);
    fclose(f);
  }
}

/* Scores one interaction with source event id `id` and waits for its ScoredRecord. */
static void score_one(const char *id) {
  int want = seen.rl + 1;
  produce_closed(id, "team-rl");
  gw_test_count w = {&seen.rl, want};
  CHECK(run_until(gw_test_count_reached, &w, 20000));
}

/*
 * gw_scorer_reload_lexicon (goodwill-scorer's SIGHUP): a record scored after a reload carries
 * the new overlay's model version, and goodwill_build_info shows it alone; a broken or missing
 * overlay leaves the old model scoring, and each reload is counted by result.
 */
static void test_lexicon_reload(void) {
  char dir[] = "/tmp/gw-test-reload-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char overlay[96];
  snprintf(overlay, sizeof overlay, "%s/overlay.tsv", dir);
  write_file(overlay, "zorblax\t2\n");
  gw_metrics *m = NULL;
  CHECK_INT_EQ(gw_metrics_new(&m), 0);
  scorer_metrics = m;
  scorer_overlay = overlay;
  gw_scorer *s = start_scorer(100);
  scorer_metrics = NULL;
  scorer_overlay = NULL;
  if (s == NULL || seen.c == NULL) {
    gw_metrics_free(m);
    return;
  }
  CHECK(run_until(scorer_ready, s, 20000));
  char v1[96], v2[96], info[200];
  snprintf(v1, sizeof v1, "%s", gw_scorer_model_version(s));
  CHECK_STR_CONTAINS(v1, "+overlay.");
  score_one("rl-1");
  CHECK_STR_EQ(seen.rl_version, v1);

  write_file(overlay, "zorblax\t-2\nterrible\t0\n");
  CHECK_INT_EQ(gw_scorer_reload_lexicon(s), 0);
  snprintf(v2, sizeof v2, "%s", gw_scorer_model_version(s));
  CHECK_STR_CONTAINS(v2, "+overlay.");
  CHECK(strcmp(v1, v2) != 0);
  score_one("rl-2");
  CHECK_STR_EQ(seen.rl_version, v2);
  CHECK(metric_value(m, "goodwill_scorer_lexicon_reloads_total{result=\"ok\"}") == 1);
  CHECK(metric_value(m, "goodwill_scorer_lexicon_reloads_total{result=\"error\"}") == 0);
  gw_buf text = GW_BUF_INIT;
  gw_metrics_render(m, &text);
  gw_buf_putc(&text, '\0');
  snprintf(info, sizeof info, "model_version=\"%s\"} 1\n", v2);
  CHECK_STR_CONTAINS(text.data, info);
  CHECK(strstr(text.data, v1) == NULL);
  gw_buf_free(&text);

  /* Broken, then gone: the model of v2 stays and scores. */
  write_file(overlay, "zorblax\t-2\nwidget\tlots\n");
  CHECK_INT_EQ(gw_scorer_reload_lexicon(s), -EINVAL);
  CHECK_STR_EQ(gw_scorer_model_version(s), v2);
  unlink(overlay);
  CHECK_INT_EQ(gw_scorer_reload_lexicon(s), -ENOENT);
  CHECK_STR_EQ(gw_scorer_model_version(s), v2);
  score_one("rl-3");
  CHECK_STR_EQ(seen.rl_version, v2);
  CHECK(metric_value(m, "goodwill_scorer_lexicon_reloads_total{result=\"ok\"}") == 1);
  CHECK(metric_value(m, "goodwill_scorer_lexicon_reloads_total{result=\"error\"}") == 2);
  stop_scorer_drained(s);
  gw_metrics_free(m);
  rmdir(dir);
}

int main(void) {
  uv_loop_init(&fx.loop);
  gw_log_init(&fx.log, "test_scorer", GW_LOG_WARN);
  static const char *const topics[] = {GW_TOPIC_INTERACTIONS, GW_TOPIC_SCORED, GW_TOPIC_DLQ};
  char err[256] = "";
  if (gw_devkafka_start(&fx.dk, 1, 1, topics, 3, err, sizeof err) != 0) {
    fprintf(stderr, "devkafka: %s\n", err);
    return 1;
  }
  gw_kafka_producer_config pc = {
      .bootstrap = gw_devkafka_bootstrap(fx.dk),
      .delivery_timeout_ms = 10000,
      .log = &fx.log,
  };
  if (gw_kafka_producer_new(&fx.producer, &fx.loop, &pc, err, sizeof err) != 0) {
    fprintf(stderr, "producer: %s\n", err);
    return 1;
  }
  GW_RUN(test_scores_and_routes_to_dlq);
  GW_RUN(test_retries_failed_deliveries);
  GW_RUN(test_live_turns);
  GW_RUN(test_turn_after_close_goes_to_dlq);
  GW_RUN(test_quiet_partition_expires_by_processing_time);
  GW_RUN(test_undeliverable_scored_record_goes_to_dlq);
  GW_RUN(test_time_and_bounds);
  GW_RUN(test_lexicon_reload);
  /* Last: its scorer stops at once on the fatal error and leaves its records uncommitted, which
   * the group's next scorer would read again. */
  GW_RUN(test_fatal_producer_error);
  if (seen.c != NULL) {
    gw_kafka_consumer_close(seen.c, NULL, NULL);
  }
  gw_kafka_producer_close(fx.producer, 5000, NULL, NULL);
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  gw_devkafka_stop(fx.dk);
  int rc = gw_test_finish();
  if (uv_loop_close(&fx.loop) != 0) {
    fprintf(stderr, "FAIL: handles left open on the loop\n");
    rc = 1;
  }
  return rc;
}
