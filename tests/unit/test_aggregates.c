/*
 * Tests of the aggregates module: increments, verdicts, rows, and the apply / read Lua
 * scripts run against a real /usr/bin/redis-server started on a free port in a temp dir.
 * The test talks to Redis with hiredis's blocking client, independent of lib/io/redis.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "goodwill/aggregates.h"
#include "gw_test.h"
#include "gw_test_redis.h"

static pid_t redis_pid = -1;
static redisContext *rc;
static char tmpdir[] = "/tmp/gw-test-agg-XXXXXX";
static gw_buf apply_src = GW_BUF_INIT, read_src = GW_BUF_INIT;

static int start_redis(void) {
  if (mkdtemp(tmpdir) == NULL)
    return -1;
  int port;
  rc = gw_test_redis_start(tmpdir, &port, &redis_pid);
  return rc != NULL ? 0 : -1;
}

static void stop_redis(void) {
  if (rc)
    redisFree(rc);
  gw_test_redis_stop(&redis_pid);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmpdir);
}

static redisReply *cmd(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  return r;
}

static redisReply *eval(const char *src, int nkeys, const char *const *keys, const size_t *keylens,
                        int nargs, const char *const *args, const size_t *arglens) {
  int argc = 3 + nkeys + nargs;
  const char **argv = calloc((size_t)argc, sizeof(*argv));
  size_t *lens = calloc((size_t)argc, sizeof(*lens));
  char nk[16];
  snprintf(nk, sizeof(nk), "%d", nkeys);
  argv[0] = "EVAL";
  lens[0] = 4;
  argv[1] = src;
  lens[1] = strlen(src);
  argv[2] = nk;
  lens[2] = strlen(nk);
  for (int i = 0; i < nkeys; i++) {
    argv[3 + i] = keys[i];
    lens[3 + i] = keylens ? keylens[i] : strlen(keys[i]);
  }
  for (int i = 0; i < nargs; i++) {
    argv[3 + nkeys + i] = args[i];
    lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
  }
  redisReply *r = redisCommandArgv(rc, argc, argv, lens);
  free(argv);
  free(lens);
  return r;
}

/* Runs the batch; returns applied and duplicates, or -1 on any error (printed). */
static int run_batch(gw_agg_batch *b, long long *applied, long long *dups) {
  gw_agg_call c;
  gw_agg_batch_call(b, &c);
  redisReply *r = eval(apply_src.data, c.nkeys, c.keys, c.keylens, c.nargs, c.args, c.arglens);
  int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
  if (!ok) {
    fprintf(stderr, "apply failed: %s\n",
            r == NULL                      ? rc->errstr
            : r->type == REDIS_REPLY_ERROR ? r->str
                                           : "bad reply");
  } else {
    *applied = r->element[0]->integer;
    *dups = r->element[1]->integer;
  }
  if (r)
    freeReplyObject(r);
  return ok ? 0 : -1;
}

static long long hget(const char *key, const char *field) {
  redisReply *r = cmd("HGET %s %s", key, field);
  long long v = -1;
  if (r && r->type == REDIS_REPLY_STRING)
    v = strtoll(r->str, NULL, 10);
  else if (r && r->type == REDIS_REPLY_NIL)
    v = 0;
  if (r)
    freeReplyObject(r);
  return v;
}

static long long integer_cmd(const char *fmt, const char *arg) {
  redisReply *r = cmd(fmt, arg);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
  if (r)
    freeReplyObject(r);
  return v;
}

/* A scored interaction with the given direction (UNSPECIFIED: as older scorers wrote it). */
static void make_interaction_dir(gw_agg_record *out, const char *id, const char *team, int64_t t_s,
                                 int start, int end, uint64_t handle_ms,
                                 Goodwill__V1__ChangeDirection direction) {
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
  si.record_id = (char *)id;
  si.tenant_id = "acme";
  si.team_id = (char *)team;
  si.occurred_at_ms = t_s * 1000 + 123;
  si.start_valence_milli = start;
  si.end_valence_milli = end;
  si.change_valence_milli = end - start;
  si.start_polarity = start < -50  ? GOODWILL__V1__POLARITY__POLARITY_NEGATIVE
                      : start > 50 ? GOODWILL__V1__POLARITY__POLARITY_POSITIVE
                                   : GOODWILL__V1__POLARITY__POLARITY_NEUTRAL;
  si.end_polarity = end < -50  ? GOODWILL__V1__POLARITY__POLARITY_NEGATIVE
                    : end > 50 ? GOODWILL__V1__POLARITY__POLARITY_POSITIVE
                               : GOODWILL__V1__POLARITY__POLARITY_NEUTRAL;
  si.recovered = start < -50 && end >= -50;
  si.soured = start >= -50 && end < -50;
  si.empathy_milli = 400;
  si.handle_ms = handle_ms;
  si.wait_ms = 30000;
  si.transfers = 1;
  si.resolved_presence_case = GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED;
  si.resolved = true;
  si.change_direction = direction;
  /* A dominant feeling at each end, spread over every category and none by the valences, so
   * that batches of such records touch many of the f_<start>_<end> counters. */
  static const char *const cats[] = {"anger",   "frustration",  "confusion",
                                     "anxiety", "sadness",      "gratitude",
                                     "relief",  "satisfaction", "delight"};
  Goodwill__V1__FeelingIntensity fs = GOODWILL__V1__FEELING_INTENSITY__INIT, fe = fs;
  Goodwill__V1__FeelingIntensity *fsp[] = {&fs}, *fep[] = {&fe};
  fs.category = (char *)cats[(start + 1000) % 9];
  fs.intensity_milli = (uint32_t)(start + 1000) / 9 % 3 * 100;
  fe.category = (char *)cats[(end + 1000) % 9];
  fe.intensity_milli = (uint32_t)(end + 1000) / 9 % 3 * 100;
  si.start_feelings = fsp;
  si.n_start_feelings = 1;
  si.end_feelings = fep;
  si.n_end_feelings = 1;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  char err[200];
  int r = gw_agg_record_from_scored(&rec, out, err, sizeof(err));
  if (r != 0)
    fprintf(stderr, "make_interaction: %s\n", err);
  CHECK_INT_EQ(r, 0);
}

static void make_interaction(gw_agg_record *out, const char *id, const char *team, int64_t t_s,
                             int start, int end, uint64_t handle_ms) {
  make_interaction_dir(out, id, team, t_s, start, end, handle_ms,
                       GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_UNSPECIFIED);
}

static void make_survey(gw_agg_record *out, const char *id, const char *team, int64_t t_s,
                        unsigned ltr) {
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  Goodwill__V1__ScoredSurvey ss = GOODWILL__V1__SCORED_SURVEY__INIT;
  ss.record_id = (char *)id;
  ss.tenant_id = "acme";
  ss.team_id = (char *)team;
  ss.occurred_at_ms = t_s * 1000;
  ss.likelihood_to_recommend = ltr;
  ss.comment_presence_case = GOODWILL__V1__SCORED_SURVEY__COMMENT_PRESENCE_COMMENT_VALENCE_MILLI;
  ss.comment_valence_milli = 250;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY;
  rec.survey = &ss;
  char err[200];
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, out, err, sizeof(err)), 0);
}

/* ------------------------------------------------------------------ pure tests */

static void test_increments_of_an_interaction(void) {
  gw_agg_record r;
  make_interaction(&r, "rec-1", "t1", 1795428000, -600, 300, 125400);
  CHECK_INT_EQ(r.event_s, 1795428000);
  CHECK_INT_EQ(r.inc[GW_AGG_N], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_SUM], 900);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_SQ], 810000);
  CHECK_INT_EQ(r.inc[GW_AGG_START_END], -180000);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_RECOVERED], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_START_NEG], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_END_POS], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_T_NP], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_T_NN], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_HANDLE_SUM], 125400);
  CHECK_INT_EQ(r.inc[GW_AGG_HANDLE_SQ], 125 * 125);
  CHECK_INT_EQ(r.inc[GW_AGG_RESOLVED_KNOWN], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_HANDLE], 900 * 125);
  CHECK_INT_EQ(r.inc[GW_AGG_S], 0);
  CHECK_STR_EQ(gw_agg_field_name(GW_AGG_T_PU), "t_pu");
  CHECK_INT_EQ(gw_agg_field_lookup("comment_sum", 11), GW_AGG_COMMENT_SUM);
  CHECK_INT_EQ(gw_agg_field_lookup("nope", 4), -1);

  gw_agg_record s;
  make_survey(&s, "rec-2", "t1", 1795428000, 7);
  CHECK_INT_EQ(s.inc[GW_AGG_S], 1);
  CHECK_INT_EQ(s.inc[GW_AGG_PASSIVES], 1);
  CHECK_INT_EQ(s.inc[GW_AGG_LTR_SQ], 49);
  CHECK_INT_EQ(s.inc[GW_AGG_COMMENT_N], 1);
  CHECK_INT_EQ(s.inc[GW_AGG_N], 0);
}

/* Improved and worsened follow the model's direction: a small rise within one polarity is
 * unchanged; records without a direction (older scorers) count by the sign of the change. */
static void test_improved_follows_direction(void) {
  gw_agg_record r;
  make_interaction_dir(&r, "d-1", "t1", 1795428000, -600, -500, 60000,
                       GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_UNCHANGED);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED] + r.inc[GW_AGG_WORSENED], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_SUM], 100);
  make_interaction_dir(&r, "d-2", "t1", 1795428000, -600, -100, 60000,
                       GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_IMPROVED);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_WORSENED], 0);
  make_interaction_dir(&r, "d-3", "t1", 1795428000, 300, -300, 60000,
                       GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_WORSENED);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_WORSENED], 1);
  make_interaction(&r, "d-4", "t1", 1795428000, -600, -500, 60000);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED], 1);
}

/* No customer words (no transcript, or agent and bot turns only): the scorer leaves both
 * polarities unspecified. The interaction counts, with its times, but adds nothing to the
 * feeling sums, so a team's mean feeling is not dragged towards neutral by silence. */
static void test_interaction_without_feeling(void) {
  gw_agg_record r;
  make_interaction(&r, "rec-3", "t1", 1795428000, 0, 0, 60000);
  CHECK_INT_EQ(r.inc[GW_AGG_FELT], 1); /* a neutral customer is a feeling */
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
  si.record_id = "rec-4";
  si.tenant_id = "acme";
  si.team_id = "t1";
  si.occurred_at_ms = 1795428000000;
  si.handle_ms = 60000;
  si.empathy_milli = 500;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  char err[200] = "";
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &r, err, sizeof(err)), 0);
  CHECK_INT_EQ(r.inc[GW_AGG_N], 1);
  CHECK_INT_EQ(r.inc[GW_AGG_FELT], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_START_NEU] + r.inc[GW_AGG_END_NEU] + r.inc[GW_AGG_T_UU], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_IMPROVED] + r.inc[GW_AGG_WORSENED], 0);
  CHECK_INT_EQ(r.inc[GW_AGG_HANDLE_SUM], 60000);
  CHECK_INT_EQ(r.inc[GW_AGG_EMPATHY_SUM], 500);

  /* Only such interactions: counted, feeling means undefined (null), times defined. */
  gw_agg_totals t;
  memset(&t, 0, sizeof(t));
  t.v[GW_AGG_N] = 2;
  t.v[GW_AGG_HANDLE_SUM] = 120000;
  gw_agg_summary s;
  gw_agg_summarize(&t, &s);
  gw_agg_row_meta m = {"acme", "t1", "1h", 1795424400, 1795428000};
  gw_buf b = GW_BUF_INIT;
  gw_agg_row_json(&b, &m, &s);
  CHECK_STR_CONTAINS(b.data, "\"interactions\":2,\"with_feeling\":0,\"start_mean\":null,"
                             "\"end_mean\":null,\"change_mean\":null,\"improved_share\":null,");
  CHECK_STR_CONTAINS(b.data, "\"handle_ms_mean\":60000,");
  gw_buf_free(&b);
}

static void test_invalid_records_are_named(void) {
  char err[200];
  gw_agg_record out;
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "neither interaction nor survey");

  Goodwill__V1__ScoredSurvey ss = GOODWILL__V1__SCORED_SURVEY__INIT;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY;
  rec.survey = &ss;
  ss.record_id = "r";
  ss.tenant_id = "acme";
  ss.team_id = "bad team";
  ss.occurred_at_ms = 1795428000000;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "team_id");
  ss.team_id = "t1";
  ss.likelihood_to_recommend = 11;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "likelihood_to_recommend: 11");
  ss.likelihood_to_recommend = 10;
  ss.occurred_at_ms = 0;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "occurred_at_ms");

  Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  si.record_id = "r";
  si.tenant_id = "acme";
  si.team_id = "t1";
  si.occurred_at_ms = 1795428000000;
  si.start_valence_milli = 1500;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "valence_milli");
  si.start_valence_milli = 0;
  si.handle_ms = (uint64_t)GW_EVENT_MAX_DURATION_MS + 1;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "handle_ms");
  si.handle_ms = 0;
  si.record_id = "";
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &out, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "record_id");
}

/* Event time is not judged against now: a record in the future of this clock is applied (its
 * receipt judged it); only the retention of its buckets and the dedupe horizon of its receipt
 * decide. */
static void test_verdicts(void) {
  const int64_t now = 1795428000;
  bool ret[GW_RES_COUNT];
  gw_agg_record r;
  make_interaction(&r, "v-1", "t1", now - 10, 0, 0, 1000);
  r.received_s = now;
  CHECK_INT_EQ(gw_agg_classify(&r, NULL, now, ret), GW_AGG_APPLY);
  CHECK(ret[GW_RES_1M] && ret[GW_RES_1H] && ret[GW_RES_1D]);
  r.event_s = now - 3 * 86400;
  CHECK_INT_EQ(gw_agg_classify(&r, NULL, now, ret), GW_AGG_APPLY);
  CHECK(!ret[GW_RES_1M] && ret[GW_RES_1H] && ret[GW_RES_1D]);
  r.event_s = now - 100 * 86400;
  CHECK_INT_EQ(gw_agg_classify(&r, NULL, now, ret), GW_AGG_APPLY);
  CHECK(!ret[GW_RES_1M] && !ret[GW_RES_1H] && ret[GW_RES_1D]);
  r.event_s = now - 401 * 86400;
  CHECK_INT_EQ(gw_agg_classify(&r, NULL, now, ret), GW_AGG_TOO_LATE);
  CHECK(!ret[GW_RES_1D]);
  /* An hour ahead of this clock (the ingest's clock was ahead, or the client's): applied. */
  r.event_s = now + 3600;
  CHECK_INT_EQ(gw_agg_classify(&r, NULL, now, ret), GW_AGG_APPLY);
  CHECK(ret[GW_RES_1M] && ret[GW_RES_1H] && ret[GW_RES_1D]);
  CHECK_STR_EQ(gw_agg_verdict_name(GW_AGG_TOO_LATE), "too_late");
  CHECK_STR_EQ(gw_agg_verdict_name(GW_AGG_PAST_HORIZON), "too_late");

  /* The horizon: K 7 d, C 1 d: replay window 15 d, sets kept their day + 16 d, looked up one
   * day on each side; a record received at noon can be deduplicated until the set of the day
   * before (received - C) expires. */
  gw_agg_horizon h;
  gw_agg_horizon_default(&h);
  CHECK_INT_EQ(gw_agg_replay_window_s(&h), 15 * 86400);
  CHECK_INT_EQ(gw_agg_lookback_days(&h), 1);
  int64_t day = gw_window_floor(now, GW_RES_1D);
  CHECK_INT_EQ(gw_agg_dedupe_expire_s(&h, day), day + 16 * 86400);
  CHECK_INT_EQ(gw_agg_dedupe_deadline_s(&h, day + 43200), day - 86400 + 16 * 86400);
  r.event_s = now - 60;
  r.received_s = day + 43200;
  CHECK_INT_EQ(gw_agg_classify(&r, &h, day + 15 * 86400 - 1, NULL), GW_AGG_APPLY);
  CHECK_INT_EQ(gw_agg_classify(&r, &h, day + 15 * 86400, NULL), GW_AGG_PAST_HORIZON);
  h.client_retry_window_s = 0;
  CHECK_INT_EQ(gw_agg_lookback_days(&h), 0);
  CHECK_INT_EQ(gw_agg_dedupe_deadline_s(&h, day + 43200), day + 15 * 86400);
  h.client_retry_window_s = 86401;
  CHECK_INT_EQ(gw_agg_lookback_days(&h), 2);

  /* The ranges: K 1 h .. 14 d (what ingest's lateness bound leaves room for), C 0 .. 7 d. */
  char err[256] = "";
  gw_agg_horizon_default(&h);
  CHECK_INT_EQ(gw_agg_horizon_check(&h, err, sizeof(err)), 0);
  h.kafka_retention_s = 15 * 86400;
  CHECK_INT_EQ(gw_agg_horizon_check(&h, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "kafka retention 1296000 s: must be 3600..1209600 s");
  gw_agg_horizon_default(&h);
  h.client_retry_window_s = 8 * 86400;
  CHECK_INT_EQ(gw_agg_horizon_check(&h, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "client retry window");
  gw_agg_batch *b = NULL;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "t1", &h), -EINVAL);
}

static void test_summary_and_rows(void) {
  gw_agg_totals t;
  memset(&t, 0, sizeof(t));
  gw_agg_summary s;
  gw_agg_summarize(&t, &s);
  gw_agg_row_meta m = {"acme", "t1", "1h", 1795424400, 1795428000};
  gw_buf b = GW_BUF_INIT;
  gw_agg_row_json(&b, &m, &s);
  CHECK_STR_CONTAINS(b.data,
                     "{\"tenant\":\"acme\",\"team\":\"t1\",\"window\":\"1h\","
                     "\"from\":\"2026-11-23T09:00:00Z\",\"to\":\"2026-11-23T10:00:00Z\","
                     "\"interactions\":0,\"with_feeling\":0,\"start_mean\":null,\"end_mean\":null,"
                     "\"change_mean\":null,\"improved_share\":null,\"recovered\":0,"
                     "\"soured\":0,\"surveys\":0,\"promoters\":0,\"passives\":0,"
                     "\"detractors\":0,\"nps\":null,\"nps_moe\":null,\"handle_ms_mean\":null,"
                     "\"wait_ms_mean\":null,\"neg_to_neg\":0,");
  /* Null, never noise: every rate over nothing is null, sums and counts are 0. */
  CHECK_STR_CONTAINS(b.data, "\"pos_to_pos\":0,\"neg_to_neg_share\":null,");
  CHECK_STR_CONTAINS(b.data, "\"recovered_rate\":null,\"soured_rate\":null,"
                             "\"change_mean_from_neg\":null,\"change_mean_from_neu\":null,"
                             "\"change_mean_from_pos\":null,\"change_sum\":0.000,"
                             "\"change_balance\":0.000,\"empathy_mean\":null,"
                             "\"transfers_mean\":null,\"resolved_known\":0,"
                             "\"resolution_rate\":null,"
                             "\"survey_response_rate\":null}");
  /* The dominant feelings have a route of their own: no row column holds them. */
  CHECK(strstr(b.data, "dominant_n") == NULL && strstr(b.data, "start_anger") == NULL &&
        strstr(b.data, "none_to_none") == NULL);

  /* 50 promoters, 30 passives, 20 detractors: NPS 30; var = 0.7 - 0.09 = 0.61;
   * moe = 196 * sqrt(0.61 / 100) = 15.308... */
  t.v[GW_AGG_S] = 100;
  t.v[GW_AGG_PROMOTERS] = 50;
  t.v[GW_AGG_PASSIVES] = 30;
  t.v[GW_AGG_DETRACTORS] = 20;
  t.v[GW_AGG_N] = 5; /* one without customer words: in the count, not in the feeling means */
  t.v[GW_AGG_FELT] = 4;
  t.v[GW_AGG_START_SUM] = -2000;
  t.v[GW_AGG_END_SUM] = 1000;
  t.v[GW_AGG_CHANGE_SUM] = 3000;
  t.v[GW_AGG_IMPROVED] = 3;
  t.v[GW_AGG_HANDLE_SUM] = 400000;
  gw_agg_summarize(&t, &s);
  CHECK(fabs(s.nps - 30.0) < 1e-9);
  CHECK(fabs(s.nps_moe - 196.0 * sqrt(0.61 / 100.0)) < 1e-9);
  CHECK(fabs(s.start_mean - -0.5) < 1e-12);
  CHECK(fabs(s.change_mean - 0.75) < 1e-12);
  CHECK(fabs(s.improved_share - 0.75) < 1e-12);
  CHECK(fabs(s.handle_ms_mean - 80000) < 1e-9);
  CHECK_INT_EQ(s.with_feeling, 4);
  gw_buf_reset(&b);
  gw_agg_csv_header(&b);
  gw_agg_row_csv(&b, &m, &s);
  CHECK_STR_CONTAINS(b.data, "tenant,team,window,from,to,interactions,start_mean,");
  CHECK_STR_CONTAINS(b.data, "acme,t1,1h,2026-11-23T09:00:00Z,2026-11-23T10:00:00Z,5,-0.5,0.25,"
                             "0.75,0.75,0,0,100,50,30,20,30,");
  CHECK_STR_CONTAINS(b.data, ",80000,0,4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,");
  /* Only surveys: the interaction means are empty CSV fields. */
  memset(&t, 0, sizeof(t));
  t.v[GW_AGG_S] = 1;
  t.v[GW_AGG_PROMOTERS] = 1;
  gw_agg_summarize(&t, &s);
  gw_buf_reset(&b);
  gw_agg_row_csv(&b, &m, &s);
  const char *row_start =
      "acme,t1,1h,2026-11-23T09:00:00Z,2026-11-23T10:00:00Z,0,,,,,0,0,1,1,0,0,100,0,,,0,";
  CHECK(strncmp(b.data, row_start, strlen(row_start)) == 0);
  CHECK_STR_CONTAINS(b.data, ",0.000,0.000,,,0,,\r\n");
  gw_buf_free(&b);
  /* The CSV header and a row have as many columns, in the order of the JSON fields. */
  b = (gw_buf)GW_BUF_INIT;
  gw_agg_csv_header(&b);
  size_t header_commas = 0, row_commas = 0;
  for (size_t i = 0; i < b.len; i++)
    header_commas += b.data[i] == ',';
  CHECK_STR_CONTAINS(b.data, ",with_feeling,neg_to_neg,neg_to_neu,");
  CHECK_STR_CONTAINS(b.data, ",resolution_rate,survey_response_rate\r\n");
  CHECK(strstr(b.data, "dominant_n") == NULL && strstr(b.data, "anger") == NULL);
  gw_buf_reset(&b);
  gw_agg_row_csv(&b, &m, &s);
  for (size_t i = 0; i < b.len; i++)
    row_commas += b.data[i] == ',';
  CHECK_INT_EQ(row_commas, header_commas);
  gw_buf_free(&b);
}

/* ------------------------------------------------------------------ what the buckets hold */

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* The categories in their fixed tie order, as the test knows them (not from the module). */
static const char *const kinds[] = {"anger",   "frustration", "confusion", "anxiety",
                                    "sadness", "gratitude",   "relief",    "satisfaction",
                                    "delight", "none"};

static void test_dominant_feelings(void) {
  /* Names: the module's list is the feeling model's, then none; every field name round-trips. */
  for (int k = 0; k < GW_FEELING_COUNT; k++)
    CHECK_STR_EQ(gw_agg_dominant_name(k), gw_feeling_category_name((gw_feeling_category)k));
  CHECK_STR_EQ(gw_agg_dominant_name(GW_AGG_DOMINANT_NONE), "none");
  for (int f = 0; f < GW_AGG_FIELD_COUNT; f++) {
    const char *name = gw_agg_field_name((gw_agg_field)f);
    CHECK_INT_EQ(gw_agg_field_lookup(name, strlen(name)), f);
  }
  CHECK_STR_EQ(gw_agg_field_name(GW_AGG_DOMINANT_PAIRS + 0 * GW_AGG_DOMINANT_KINDS + 6),
               "f_anger_relief");
  CHECK_STR_EQ(gw_agg_field_name(GW_AGG_FIELD_COUNT - 1), "f_none_none");
  CHECK_INT_EQ(gw_agg_field_lookup("f_anger", 7), -1);
  CHECK_INT_EQ(gw_agg_field_lookup("f_anger_", 8), -1);
  CHECK_INT_EQ(gw_agg_field_lookup("f_anger_joy", 11), -1);
  CHECK_INT_EQ(gw_agg_field_lookup("f__", 3), -1);

  /* Highest intensity wins; a tie goes to the earlier category; unknown categories and zero
   * intensities do not count; nothing left is none. */
  Goodwill__V1__FeelingIntensity a = GOODWILL__V1__FEELING_INTENSITY__INIT, b = a, c = a, d = a;
  a.category = "relief", a.intensity_milli = 500;
  b.category = "anger", b.intensity_milli = 500;
  c.category = "disgust", c.intensity_milli = 900; /* a newer scorer's category */
  d.category = "delight", d.intensity_milli = 0;
  Goodwill__V1__FeelingIntensity *list[] = {&a, &b, &c, &d};
  CHECK_INT_EQ(gw_agg_dominant(list, 4), GW_FEELING_ANGER);
  b.intensity_milli = 499;
  CHECK_INT_EQ(gw_agg_dominant(list, 4), GW_FEELING_RELIEF);
  CHECK_INT_EQ(gw_agg_dominant(list + 2, 2), GW_AGG_DOMINANT_NONE);
  CHECK_INT_EQ(gw_agg_dominant(NULL, 0), GW_AGG_DOMINANT_NONE);

  /* A record that began angry and ended relieved: one pair, and its change by start polarity.
   * Redis cost: a typical interaction with feeling wrote 25 counters per bucket before
   * (improved or worsened, recovered or soured, resolved, transfers present), 27 now. */
  Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
  Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
  si.record_id = "dom-1";
  si.tenant_id = "acme";
  si.team_id = "t1";
  si.occurred_at_ms = 1795428000000;
  si.start_valence_milli = -600;
  si.end_valence_milli = 300;
  si.change_valence_milli = 900;
  si.start_polarity = GOODWILL__V1__POLARITY__POLARITY_NEGATIVE;
  si.end_polarity = GOODWILL__V1__POLARITY__POLARITY_POSITIVE;
  si.recovered = true;
  si.empathy_milli = 400;
  si.handle_ms = 125400;
  si.wait_ms = 30000;
  si.transfers = 1;
  si.resolved_presence_case = GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED;
  si.resolved = true;
  Goodwill__V1__FeelingIntensity *start[] = {&b, &c}, *end[] = {&a};
  si.start_feelings = start;
  si.n_start_feelings = 2;
  si.end_feelings = end;
  si.n_end_feelings = 1;
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  gw_agg_record r;
  char err[200];
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &r, err, sizeof(err)), 0);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_NEG], 900);
  CHECK_INT_EQ(r.inc[GW_AGG_CHANGE_NEU] + r.inc[GW_AGG_CHANGE_POS], 0);
  int pairs = 0, before = 0, after = 0;
  for (int f = 0; f < GW_AGG_FIELD_COUNT; f++) {
    if (r.inc[f] == 0)
      continue;
    after++;
    if (f >= GW_AGG_DOMINANT_PAIRS)
      pairs++;
    else if (f < GW_AGG_CHANGE_NEG)
      before++;
  }
  CHECK_INT_EQ(pairs, 1);
  CHECK_INT_EQ(
      r.inc[GW_AGG_DOMINANT_PAIRS + GW_FEELING_ANGER * GW_AGG_DOMINANT_KINDS + GW_FEELING_RELIEF],
      1);
  CHECK_INT_EQ(before, 25);
  CHECK_INT_EQ(after, 27);
  /* Without customer words: no pair, no change by polarity (as for the other feeling sums). */
  si.start_polarity = si.end_polarity = GOODWILL__V1__POLARITY__POLARITY_UNSPECIFIED;
  CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &r, err, sizeof(err)), 0);
  for (int f = GW_AGG_CHANGE_NEG; f < GW_AGG_FIELD_COUNT; f++)
    CHECK_INT_EQ(r.inc[f], 0);
}

/* The test's own view of one scored interaction, kept apart from the module's increments. */
typedef struct view_rec {
  int ps, pe; /* polarity 0..2, -1 unspecified */
  int s, e;   /* valence milli */
  int emp, transfers;
  int resolved; /* -1 unknown, 0, 1 */
  bool recovered, soured;
  int ds, de; /* dominant kinds, computed here */
} view_rec;

static int brute_dominant(const char *const *cats, const unsigned *milli, size_t n) {
  int best = 9;
  unsigned best_milli = 0;
  for (size_t i = 0; i < n; i++) {
    int k = -1;
    for (int j = 0; j < 9; j++)
      if (strcmp(cats[i], kinds[j]) == 0)
        k = j;
    if (k < 0 || milli[i] == 0)
      continue;
    if (milli[i] > best_milli || (milli[i] == best_milli && k < best))
      best = k, best_milli = milli[i];
  }
  return best;
}

static double jnum(json_t *row, const char *name, bool *is_null) {
  json_t *v = json_object_get(row, name);
  *is_null = v == NULL || json_is_null(v);
  if (v == NULL)
    fprintf(stderr, "row has no field %s\n", name);
  CHECK(v != NULL);
  return json_is_number(v) ? json_number_value(v) : 0;
}

static void check_num(json_t *row, const char *name, bool defined, double want) {
  bool is_null;
  double got = jnum(row, name, &is_null);
  if (is_null == defined || (defined && fabs(got - want) > 1e-9))
    fprintf(stderr, "%s: got %s%.12g, want %s%.12g\n", name, is_null ? "null " : "", got,
            defined ? "" : "null ", want);
  CHECK(is_null != defined);
  if (defined)
    CHECK(fabs(got - want) <= 1e-9);
}

static void check_count(json_t *row, const char *name, long long want) {
  bool is_null;
  double got = jnum(row, name, &is_null);
  if (is_null || (long long)got != want)
    fprintf(stderr, "%s: got %.0f, want %lld\n", name, got, want);
  CHECK(!is_null && (long long)got == want);
}

/* The interactions of a (start, end) cell, 10 meaning "*" (any). */
static long long pair_cell(long long pair[10][10], int a, int b) {
  long long n = 0;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 10; j++)
      if ((a == 10 || a == i) && (b == 10 || b == j))
        n += pair[i][j];
  return n;
}

/*
 * The feelings rows of t against the pairs counted here: exactly the occurring pairs and
 * margins, in the documented order (a start's pairs then its margin, the end margins, the
 * total last), each with its share of the total; the CSV lines say the same.
 */
static void check_feelings(const gw_agg_totals *t, const gw_agg_row_meta *m, long long pair[10][10],
                           long long total) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_putc(&b, '[');
  size_t nrows = gw_agg_feelings_rows(&b, m, t, false);
  gw_buf_putc(&b, ']');
  json_error_t jerr;
  json_t *rows = json_loads(b.data, 0, &jerr);
  CHECK(rows != NULL && json_is_array(rows));
  if (rows == NULL) {
    gw_buf_free(&b);
    return;
  }
  size_t want_rows = 0, at = 0;
  for (int a = 0; a <= 10; a++) {
    for (int e = 0; e <= 10; e++) {
      long long n = pair_cell(pair, a, e);
      if (n == 0 && !(a == 10 && e == 10))
        continue;
      want_rows++;
      json_t *row = json_array_get(rows, at++);
      CHECK(row != NULL);
      if (row == NULL)
        continue;
      CHECK_INT_EQ(json_object_size(row), 9);
      CHECK_STR_EQ(json_string_value(json_object_get(row, "team")), m->team);
      CHECK_STR_EQ(json_string_value(json_object_get(row, "start")), a < 10 ? kinds[a] : "*");
      CHECK_STR_EQ(json_string_value(json_object_get(row, "end")), e < 10 ? kinds[e] : "*");
      check_count(row, "interactions", n);
      check_num(row, "share", total > 0, total > 0 ? (double)n / (double)total : 0);
    }
  }
  CHECK_INT_EQ(nrows, want_rows);
  CHECK_INT_EQ(json_array_size(rows), want_rows);
  json_decref(rows);
  /* CSV: the header, then one line per JSON row. */
  gw_buf_reset(&b);
  gw_agg_feelings_csv_header(&b);
  CHECK_STR_EQ(b.data, "tenant,team,window,from,to,start,end,interactions,share\r\n");
  CHECK_INT_EQ(gw_agg_feelings_rows(&b, m, t, true), want_rows);
  size_t lines = 0;
  for (size_t i = 0; i < b.len; i++)
    lines += b.data[i] == '\n';
  CHECK_INT_EQ(lines, want_rows + 1);
  char total_line[160];
  snprintf(total_line, sizeof(total_line), ",*,*,%lld,%s\r\n", total, total > 0 ? "1" : "");
  CHECK_STR_CONTAINS(b.data, total_line);
  gw_buf_free(&b);
}

/*
 * Random scored interactions and surveys, summed as the buckets sum them; every new row field
 * equals a brute-force recomputation from the records (exact counts, derived numbers within
 * 1e-9), including a range with no interactions (null rates) and the rule that a range holding
 * buckets from before the per-polarity sums keeps the change by start polarity null.
 */
static void test_bucket_views_brute_force(void) {
  enum { NREC = 3000 };
  static const char *const cats[] = {"anger",   "frustration", "confusion", "anxiety",
                                     "sadness", "gratitude",   "relief",    "satisfaction",
                                     "delight", "disgust"};
  view_rec *vr = calloc(NREC, sizeof(*vr));
  gw_agg_totals t;
  memset(&t, 0, sizeof(t));
  long long n = 0, surveys = 0;
  for (int i = 0; i < NREC; i++) {
    Goodwill__V1__ScoredRecord rec = GOODWILL__V1__SCORED_RECORD__INIT;
    gw_agg_record r;
    char err[200], id[32];
    snprintf(id, sizeof(id), "bf-%d", i);
    if (rng() % 4 == 0) {
      Goodwill__V1__ScoredSurvey ss = GOODWILL__V1__SCORED_SURVEY__INIT;
      ss.record_id = id, ss.tenant_id = "acme", ss.team_id = "t1";
      ss.occurred_at_ms = 1795428000000;
      ss.likelihood_to_recommend = (uint32_t)(rng() % 11);
      rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY;
      rec.survey = &ss;
      CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &r, err, sizeof(err)), 0);
      surveys++;
      vr[i].ps = -2; /* not an interaction */
    } else {
      view_rec *v = &vr[i];
      Goodwill__V1__ScoredInteraction si = GOODWILL__V1__SCORED_INTERACTION__INIT;
      si.record_id = id, si.tenant_id = "acme", si.team_id = "t1";
      si.occurred_at_ms = 1795428000000;
      bool felt = rng() % 10 != 0;
      v->ps = felt ? (int)(rng() % 3) : -1;
      v->pe = felt ? (int)(rng() % 3) : -1;
      v->s = felt ? (int)(rng() % 2001) - 1000 : 0;
      v->e = felt ? (int)(rng() % 2001) - 1000 : 0;
      v->recovered = felt && v->ps == 0 && v->pe > 0;
      v->soured = felt && v->ps > 0 && v->pe == 0;
      v->emp = (int)(rng() % 1001);
      v->transfers = (int)(rng() % 4);
      v->resolved = (int)(rng() % 3) - 1;
      si.start_valence_milli = v->s, si.end_valence_milli = v->e;
      si.change_valence_milli = v->e - v->s;
      si.start_polarity = (Goodwill__V1__Polarity)(v->ps + 1);
      si.end_polarity = (Goodwill__V1__Polarity)(v->pe + 1);
      si.recovered = v->recovered, si.soured = v->soured;
      si.empathy_milli = v->emp, si.transfers = (uint32_t)v->transfers;
      if (v->resolved >= 0) {
        si.resolved_presence_case = GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED;
        si.resolved = v->resolved == 1;
      }
      /* Up to three feelings at each end, intensities from a few values so that ties occur. */
      Goodwill__V1__FeelingIntensity fi[6], *sp[3], *ep[3];
      const char *names[6];
      unsigned milli[6];
      size_t ns = felt ? rng() % 4 : 0, ne = felt ? rng() % 4 : 0;
      for (size_t k = 0; k < ns + ne; k++) {
        goodwill__v1__feeling_intensity__init(&fi[k]);
        names[k] = cats[rng() % 10];
        milli[k] = (unsigned)(rng() % 4) * 250;
        fi[k].category = (char *)names[k];
        fi[k].intensity_milli = milli[k];
        if (k < ns)
          sp[k] = &fi[k];
        else
          ep[k - ns] = &fi[k];
      }
      si.start_feelings = sp, si.n_start_feelings = ns;
      si.end_feelings = ep, si.n_end_feelings = ne;
      v->ds = brute_dominant(names, milli, ns);
      v->de = brute_dominant(names + ns, milli + ns, ne);
      rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
      rec.interaction = &si;
      CHECK_INT_EQ(gw_agg_record_from_scored(&rec, &r, err, sizeof(err)), 0);
      n++;
    }
    for (int f = 0; f < GW_AGG_FIELD_COUNT; f++)
      t.v[f] += r.inc[f];
  }

  /* The brute force. */
  long long trans[9] = {0}, felt = 0, rec_n = 0, sour_n = 0, emp = 0, xfer = 0, res = 0, known = 0,
            change = 0, started[3] = {0}, change_from[3] = {0};
  long long pair[10][10] = {{0}};
  for (int i = 0; i < NREC; i++) {
    const view_rec *v = &vr[i];
    if (v->ps == -2)
      continue;
    emp += v->emp;
    xfer += v->transfers;
    if (v->resolved >= 0)
      known++, res += v->resolved;
    if (v->ps < 0)
      continue;
    felt++;
    trans[v->ps * 3 + v->pe]++;
    rec_n += v->recovered;
    sour_n += v->soured;
    change += v->e - v->s;
    started[v->ps]++;
    change_from[v->ps] += v->e - v->s;
    pair[v->ds][v->de]++;
  }

  gw_agg_summary s;
  gw_agg_summarize(&t, &s);
  gw_agg_row_meta m = {"acme", "t1", "1h", 1795424400, 1795428000};
  gw_buf b = GW_BUF_INIT;
  gw_agg_row_json(&b, &m, &s);
  json_error_t jerr;
  json_t *row = json_loads(b.data, 0, &jerr);
  CHECK(row != NULL);
  if (row == NULL) {
    gw_buf_free(&b);
    free(vr);
    return;
  }
  static const char *const pol[3] = {"neg", "neu", "pos"};
  char name[64];
  for (int k = 0; k < 9; k++) {
    snprintf(name, sizeof(name), "%s_to_%s", pol[k / 3], pol[k % 3]);
    check_count(row, name, trans[k]);
    snprintf(name, sizeof(name), "%s_to_%s_share", pol[k / 3], pol[k % 3]);
    check_num(row, name, true, (double)trans[k] / (double)felt);
  }
  check_num(row, "recovered_rate", true, (double)rec_n / (double)felt);
  check_num(row, "soured_rate", true, (double)sour_n / (double)felt);
  check_num(row, "empathy_mean", true, (double)emp / 1000.0 / (double)n);
  check_num(row, "transfers_mean", true, (double)xfer / (double)n);
  check_count(row, "resolved_known", known);
  check_num(row, "resolution_rate", true, (double)res / (double)known);
  check_num(row, "survey_response_rate", true, (double)surveys / (double)n);
  for (int k = 0; k < 3; k++) {
    snprintf(name, sizeof(name), "change_mean_from_%s", pol[k]);
    check_num(row, name, started[k] > 0, (double)change_from[k] / 1000.0 / (double)started[k]);
  }
  check_num(row, "change_sum", true, (double)change / 1000.0);
  check_num(row, "change_balance", true, (double)change / 1000.0);
  CHECK(json_object_get(row, "dominant_n") == NULL);
  CHECK(json_object_get(row, "start_anger") == NULL);
  CHECK(json_object_get(row, "anger_to_relief") == NULL);
  json_decref(row);
  check_feelings(&t, &m, pair, felt);

  /* A window reaching back before the upgrade: buckets with feeling but without the new
   * counters. The distribution is over what was counted (dominant_n), the change by start
   * polarity is null rather than a mean over part of the range. */
  t.v[GW_AGG_FELT] += 7;
  t.v[GW_AGG_START_NEG] += 7;
  t.v[GW_AGG_T_NN] += 7;
  gw_agg_summarize(&t, &s);
  CHECK_INT_EQ(s.dominant_n, felt);
  CHECK_INT_EQ(s.with_feeling, felt + 7);
  check_feelings(&t, &m, pair, felt);
  for (int k = 0; k < 3; k++)
    CHECK(!s.has_change_from[k]);

  /* A start polarity without an end one (not from the scorer): counted in start_neg, but not
   * an interaction with feeling, so no change from negative is made up for it. */
  memset(&t, 0, sizeof(t));
  t.v[GW_AGG_N] = 1;
  t.v[GW_AGG_START_NEG] = 1;
  gw_agg_summarize(&t, &s);
  CHECK(!s.has_change_from[0]);

  /* No dominant feelings at all: only the total, 0 with a null share. */
  memset(pair, 0, sizeof(pair));
  check_feelings(&t, &m, pair, 0);

  /* Surveys without interactions: the response rate is null, not infinite. */
  memset(&t, 0, sizeof(t));
  t.v[GW_AGG_S] = 3;
  gw_agg_summarize(&t, &s);
  gw_buf_reset(&b);
  gw_agg_row_json(&b, &m, &s);
  CHECK_STR_CONTAINS(b.data, "\"survey_response_rate\":null");
  gw_buf_free(&b);
  free(vr);
}

static void test_totals_parse(void) {
  gw_agg_totals t;
  memset(&t, 0, sizeof(t));
  const char *kv[] = {"n", "3", "future_field", "x", "start_sum", "-9000000000"};
  const size_t lens[] = {1, 1, 12, 1, 9, 11};
  CHECK_INT_EQ(gw_agg_totals_add_hash(&t, kv, lens, 6), 0);
  CHECK_INT_EQ(t.v[GW_AGG_N], 3);
  CHECK_INT_EQ(t.v[GW_AGG_START_SUM], -9000000000LL);
  const char *bad[] = {"n", "3x"};
  const size_t blens[] = {1, 2};
  CHECK_INT_EQ(gw_agg_totals_add_hash(&t, bad, blens, 2), -EINVAL);
  CHECK_INT_EQ(gw_agg_totals_add_hash(&t, kv, lens, 3), -EINVAL);
}

/* ------------------------------------------------------------------ against Redis */

static void test_apply_twice_counts_once(void) {
  int64_t now = time(NULL);
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "t1", NULL), 0);
  gw_agg_record r;
  make_interaction(&r, "i-1", "t1", now - 30, -600, 300, 60000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  make_interaction(&r, "i-2", "t1", now - 20, 200, -400, 120000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  make_survey(&r, "s-1", "t1", now - 10, 10);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  make_interaction(&r, "x-1", "t2", now, 0, 0, 0);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), -EINVAL); /* another team */
  CHECK_INT_EQ(gw_agg_batch_records(b), 3);

  long long applied = -1, dups = -1;
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 3);
  CHECK_INT_EQ(dups, 0);
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 0);
  CHECK_INT_EQ(dups, 3);

  gw_buf key = GW_BUF_INIT;
  int64_t day = gw_window_floor(now - 30, GW_RES_1D);
  gw_agg_key_bucket(&key, "acme", "t1", GW_RES_1D, day);
  CHECK_STR_CONTAINS(key.data, "gw:{acme:t1}:b:1d:");
  /* The three records may straddle a minute, never a day (unless run at midnight). */
  if (gw_window_floor(now - 10, GW_RES_1D) == day) {
    CHECK_INT_EQ(hget(key.data, "n"), 2);
    CHECK_INT_EQ(hget(key.data, "start_sum"), -400);
    CHECK_INT_EQ(hget(key.data, "change_sum"), 900 - 600);
    CHECK_INT_EQ(hget(key.data, "recovered"), 1);
    CHECK_INT_EQ(hget(key.data, "soured"), 1);
    CHECK_INT_EQ(hget(key.data, "handle_sum"), 180000);
    CHECK_INT_EQ(hget(key.data, "s"), 1);
    CHECK_INT_EQ(hget(key.data, "promoters"), 1);
    CHECK_INT_EQ(hget(key.data, "detractors"), 0);
    CHECK_INT_EQ(integer_cmd("EXPIRETIME %s", key.data), day + 400 * 86400);
  }
  /* The records carry no received_at: they count as received now, on today's set. */
  gw_buf_reset(&key);
  int64_t today = gw_window_floor(now, GW_RES_1D);
  gw_agg_key_seen(&key, "acme", "t1", today);
  CHECK_STR_CONTAINS(key.data, "gw:{acme:t1}:dedupe:");
  CHECK_INT_EQ(integer_cmd("SCARD %s", key.data), 3);
  CHECK_INT_EQ(integer_cmd("EXPIRETIME %s", key.data), today + 16 * 86400);
  gw_buf_reset(&key);
  int64_t minute = gw_window_floor(now - 30, GW_RES_1M);
  gw_agg_key_bucket(&key, "acme", "t1", GW_RES_1M, minute);
  CHECK_INT_EQ(integer_cmd("EXPIRETIME %s", key.data), minute + 2 * 86400);
  gw_buf_free(&key);
  gw_agg_batch_free(b);
}

/* A failing apply writes nothing: with one of its keys of the wrong type, or a counter that is
 * not an integer, the script errors before its first write (no id marked seen, no counter
 * moved), and once the key is repaired the retry counts every record exactly once. Within one
 * batch, the same id twice counts once. */
static void test_failed_apply_writes_nothing(void) {
  int64_t now = time(NULL) - 120; /* well inside one minute bucket's life */
  int64_t t = gw_window_floor(now, GW_RES_1M) + 5;
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "atomic", NULL), 0);
  gw_agg_record r;
  make_interaction(&r, "a-1", "atomic", t, -500, 400, 1000);
  r.received_s = t;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now + 120), GW_AGG_APPLY);
  make_interaction(&r, "a-2", "atomic", t, 100, 200, 2000);
  r.received_s = t;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now + 120), GW_AGG_APPLY);
  make_interaction(&r, "a-1", "atomic", t, -500, 400, 1000); /* the same record again */
  r.received_s = t;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now + 120), GW_AGG_APPLY);

  gw_buf minute = GW_BUF_INIT, day = GW_BUF_INIT, seen = GW_BUF_INIT;
  gw_agg_key_bucket(&minute, "acme", "atomic", GW_RES_1M, gw_window_floor(t, GW_RES_1M));
  gw_agg_key_bucket(&day, "acme", "atomic", GW_RES_1D, gw_window_floor(t, GW_RES_1D));
  gw_agg_key_seen(&seen, "acme", "atomic", gw_window_floor(t, GW_RES_1D));

  /* The day bucket is a string: the apply fails, and nothing is marked or counted. */
  redisReply *x = cmd("SET %s oops", day.data);
  freeReplyObject(x);
  long long applied = -1, dups = -1;
  CHECK_INT_EQ(run_batch(b, &applied, &dups), -1);
  CHECK_INT_EQ(integer_cmd("EXISTS %s", seen.data), 0);
  CHECK_INT_EQ(integer_cmd("EXISTS %s", minute.data), 0);

  /* A counter that is not an integer: the same. */
  x = cmd("DEL %s", day.data);
  freeReplyObject(x);
  x = cmd("HSET %s n not-a-number", day.data);
  freeReplyObject(x);
  CHECK_INT_EQ(run_batch(b, &applied, &dups), -1);
  CHECK_INT_EQ(integer_cmd("EXISTS %s", seen.data), 0);
  CHECK_INT_EQ(integer_cmd("EXISTS %s", minute.data), 0);

  /* Repaired: both records count once, the repeated id is a duplicate. */
  x = cmd("DEL %s", day.data);
  freeReplyObject(x);
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 2);
  CHECK_INT_EQ(dups, 1);
  CHECK_INT_EQ(hget(minute.data, "n"), 2);
  CHECK_INT_EQ(hget(day.data, "n"), 2);
  CHECK_INT_EQ(hget(day.data, "handle_sum"), 3000);
  CHECK_INT_EQ(integer_cmd("SCARD %s", seen.data), 2);
  /* And again: all duplicates, nothing moves. */
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 0);
  CHECK_INT_EQ(dups, 3);
  CHECK_INT_EQ(hget(day.data, "n"), 2);
  gw_buf_free(&minute);
  gw_buf_free(&day);
  gw_buf_free(&seen);
  gw_agg_batch_free(b);
}

/*
 * The aggregator judges no event time against its clock: a record an hour in its future (the
 * ingest's clock, which judged it, runs ahead: skew) is applied to its buckets, future ones
 * included; a record whose event day is a year old but whose day bucket is retained is applied
 * to that bucket alone, deduplicated by its arrival day (today). Only a record none of whose
 * buckets is retained is too late (impossible for what ingest accepts: goodwill/event.h).
 */
static void test_time_not_judged_here(void) {
  int64_t now = time(NULL);
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "late", NULL), 0);
  gw_agg_record r;
  int64_t future = now + 3600;
  make_interaction(&r, "l-future", "late", future, 0, 500, 1000);
  r.received_s = now + 3600 - 240; /* 4 minutes before its event time: fine for ingest */
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  int64_t old = now - 370 * 86400;
  make_interaction(&r, "l-old", "late", old, 0, 500, 1000);
  r.received_s = now;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  int64_t t3 = now - 3 * 86400;
  make_interaction(&r, "l-3d", "late", t3, 0, 500, 1000);
  r.received_s = now;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  make_interaction(&r, "l-gone", "late", now - 402 * 86400, 0, 500, 1000);
  r.received_s = now;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_TOO_LATE);
  CHECK_INT_EQ(gw_agg_batch_records(b), 3);
  long long applied = -1, dups = -1;
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 3);

  gw_buf key = GW_BUF_INIT;
  for (int res = 0; res < GW_RES_COUNT; res++) {
    gw_buf_reset(&key);
    gw_agg_key_bucket(&key, "acme", "late", (gw_resolution)res,
                      gw_window_floor(future, (gw_resolution)res));
    CHECK(hget(key.data, "n") >= 1); /* the future record's minute, hour and day */
  }
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1D, gw_window_floor(old, GW_RES_1D));
  CHECK_INT_EQ(hget(key.data, "n"), 1);
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1H, gw_window_floor(old, GW_RES_1H));
  CHECK_INT_EQ(integer_cmd("EXISTS %s", key.data), 0); /* an hour of a year ago: expired */
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1M, gw_window_floor(t3, GW_RES_1M));
  CHECK_INT_EQ(integer_cmd("EXISTS %s", key.data), 0); /* the minute has expired: skipped */
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1H, gw_window_floor(t3, GW_RES_1H));
  CHECK_INT_EQ(hget(key.data, "end_sum"), 500);
  /* Deduplicated by arrival day: the old record's id is in today's set, not its event day's. */
  gw_buf_reset(&key);
  gw_agg_key_seen(&key, "acme", "late", gw_window_floor(now, GW_RES_1D));
  CHECK_INT_EQ(integer_cmd("SISMEMBER %s l-old", key.data), 1);
  gw_buf_reset(&key);
  gw_agg_key_seen(&key, "acme", "late", gw_window_floor(old, GW_RES_1D));
  CHECK_INT_EQ(integer_cmd("EXISTS %s", key.data), 0);
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0); /* a replay */
  CHECK_INT_EQ(applied, 0);
  CHECK_INT_EQ(dups, 3);
  gw_buf_free(&key);
  gw_agg_batch_free(b);
}

/* Runs a batch of one record of team "arrival", received at received_s, at now_s; returns
 * how many the script applied (0 or 1), or -1. */
static long long apply_one(const char *id, int64_t event_s, int64_t received_s, int64_t now_s) {
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "arrival", NULL), 0);
  gw_agg_record r;
  make_interaction(&r, id, "arrival", event_s, 100, 200, 1000);
  r.received_s = received_s;
  long long applied = -1, dups = -1;
  int v = gw_agg_batch_add(b, &r, now_s);
  if (v == GW_AGG_APPLY && run_batch(b, &applied, &dups) != 0)
    applied = -1;
  gw_agg_batch_free(b);
  return v == GW_AGG_APPLY ? applied : -1;
}

/*
 * Dedupe by arrival day (K 7 d, C 1 d). The same record delivered twice on its arrival day
 * (a Kafka replay: the same received_at) counts once; a client retry received a day later
 * (the same record id) counts once, and so does a retry applied before the attempt it retries
 * (another partition may deliver it first); two attempts further apart than the client retry
 * window count twice, as documented.
 */
static void test_dedupe_by_arrival_day(void) {
  int64_t now = time(NULL);
  int64_t t = now - 36 * 3600, e = now - 40 * 3600;
  CHECK_INT_EQ(apply_one("d-1", e, t, now), 1);
  CHECK_INT_EQ(apply_one("d-1", e, t, now), 0);         /* replay */
  CHECK_INT_EQ(apply_one("d-1", e, t + 86400, now), 0); /* client retry a day later */
  CHECK_INT_EQ(apply_one("d-2", e, t + 86400, now), 1); /* the retry comes first */
  CHECK_INT_EQ(apply_one("d-2", e, t, now), 0);
  CHECK_INT_EQ(apply_one("d-2", e, t, now), 0);
  CHECK_INT_EQ(apply_one("d-3", e, t - 86400, now), 1);
  CHECK_INT_EQ(apply_one("d-3", e, t + 86400, now), 1); /* 2 days apart: past C */

  gw_buf key = GW_BUF_INIT;
  gw_agg_key_seen(&key, "acme", "arrival", gw_window_floor(t, GW_RES_1D));
  CHECK_INT_EQ(integer_cmd("SISMEMBER %s d-1", key.data), 1);
  CHECK_INT_EQ(integer_cmd("SISMEMBER %s d-2", key.data), 0);
  CHECK_INT_EQ(integer_cmd("EXPIRETIME %s", key.data), gw_window_floor(t, GW_RES_1D) + 16 * 86400);
  gw_buf_reset(&key);
  gw_agg_key_seen(&key, "acme", "arrival", gw_window_floor(t + 86400, GW_RES_1D));
  CHECK_INT_EQ(integer_cmd("SISMEMBER %s d-2", key.data), 1);
  CHECK_INT_EQ(integer_cmd("SISMEMBER %s d-1", key.data), 0);
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "arrival", GW_RES_1D, gw_window_floor(e, GW_RES_1D));
  CHECK_INT_EQ(hget(key.data, "n"), 4);
  gw_buf_free(&key);
}

/*
 * The dedupe horizon: a record received an hour ago is deduplicated as long as the sets that
 * may hold an earlier delivery exist (until gw_agg_dedupe_deadline_s); delivered at that
 * deadline it is refused (DLQ too_late), not applied a second time.
 */
static void test_dedupe_horizon(void) {
  int64_t now = time(NULL);
  int64_t t = now - 3600, e = now - 7200;
  gw_agg_horizon h;
  gw_agg_horizon_default(&h);
  gw_buf key = GW_BUF_INIT;
  gw_agg_key_bucket(&key, "acme", "arrival", GW_RES_1D, gw_window_floor(e, GW_RES_1D));
  long long before = hget(key.data, "n");
  CHECK_INT_EQ(apply_one("h-1", e, t, now), 1);
  int64_t deadline = gw_agg_dedupe_deadline_s(&h, t);
  CHECK(deadline >= t + 2 * h.kafka_retention_s);
  CHECK_INT_EQ(apply_one("h-1", e, t, deadline - 1), 0); /* still deduplicated */
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "arrival", NULL), 0);
  gw_agg_record r;
  make_interaction(&r, "h-1", "arrival", e, 100, 200, 1000);
  r.received_s = t;
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, deadline), GW_AGG_PAST_HORIZON);
  CHECK_INT_EQ(gw_agg_batch_records(b), 0);
  gw_agg_batch_free(b);
  CHECK_INT_EQ(hget(key.data, "n"), before + 1); /* counted once */
  gw_buf_free(&key);
}

/* Many records with extreme values over two batches (one replayed), then the window read
 * through the read script: every counter equals the sum computed here in 64-bit integers. */
static void test_sums_exact_and_read_script(void) {
  int64_t now = time(NULL);
  gw_agg_totals want;
  memset(&want, 0, sizeof(want));
  gw_agg_batch *b1, *b2;
  CHECK_INT_EQ(gw_agg_batch_new(&b1, "acme", "sums", NULL), 0);
  CHECK_INT_EQ(gw_agg_batch_new(&b2, "acme", "sums", NULL), 0);
  int64_t day = gw_window_floor(now, GW_RES_1D);
  for (int i = 0; i < 4000; i++) {
    gw_agg_record r;
    char id[32];
    snprintf(id, sizeof(id), "sum-%d", i);
    /* Within today, in the past two days' minutes or earlier hours, never in the future. */
    int64_t t = day + (int64_t)(rng() % (uint64_t)(now - day + 1));
    if (i % 2 == 0)
      make_interaction(&r, id, "sums", t, (int)(rng() % 2001) - 1000, (int)(rng() % 2001) - 1000,
                       rng() % ((uint64_t)GW_EVENT_MAX_DURATION_MS + 1));
    else
      make_survey(&r, id, "sums", t, (unsigned)(rng() % 11));
    for (int f = 0; f < GW_AGG_FIELD_COUNT; f++)
      want.v[f] += r.inc[f];
    CHECK_INT_EQ(gw_agg_batch_add(i < 2000 ? b1 : b2, &r, now), GW_AGG_APPLY);
  }
  long long applied = 0, dups = 0;
  CHECK_INT_EQ(run_batch(b1, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 2000);
  CHECK_INT_EQ(run_batch(b1, &applied, &dups), 0); /* a replay */
  CHECK_INT_EQ(dups, 2000);
  CHECK_INT_EQ(run_batch(b2, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 2000);
  /* Beyond 32 bits, and beyond the 14 digits Lua would print a number with. */
  CHECK(want.v[GW_AGG_HANDLE_SUM] > (1LL << 33));
  CHECK(want.v[GW_AGG_HANDLE_SQ] > 100000000000000LL);
  /* Every pair of dominant feelings occurs. */
  for (int f = GW_AGG_DOMINANT_PAIRS; f < GW_AGG_FIELD_COUNT; f++)
    CHECK(want.v[f] > 0);

  /* Read today through the composition: [day, now + 60). */
  static gw_window_composition comp;
  CHECK_INT_EQ(gw_window_compose(day, gw_window_floor(now, GW_RES_1M) + 60, now, &comp), 0);
  CHECK(comp.nbuckets > 0);
  const char **keys = calloc(comp.nbuckets, sizeof(*keys));
  gw_buf kb[GW_WINDOW_MAX_BUCKETS];
  for (size_t i = 0; i < comp.nbuckets; i++) {
    kb[i] = (gw_buf)GW_BUF_INIT;
    gw_agg_key_bucket(&kb[i], "acme", "sums", comp.buckets[i].res, comp.buckets[i].start_s);
    keys[i] = kb[i].data;
  }
  redisReply *r = eval(read_src.data, (int)comp.nbuckets, keys, NULL, 0, NULL, NULL);
  CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == comp.nbuckets);
  gw_agg_totals got;
  memset(&got, 0, sizeof(got));
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    redisReply *h = r->element[i];
    const char **strs = calloc(h->elements + 1, sizeof(*strs));
    size_t *lens = calloc(h->elements + 1, sizeof(*lens));
    for (size_t j = 0; j < h->elements; j++) {
      strs[j] = h->element[j]->str;
      lens[j] = h->element[j]->len;
    }
    CHECK_INT_EQ(gw_agg_totals_add_hash(&got, strs, lens, h->elements), 0);
    free(strs);
    free(lens);
  }
  for (int f = 0; f < GW_AGG_FIELD_COUNT; f++) {
    if (got.v[f] != want.v[f])
      fprintf(stderr, "field %s: got %lld want %lld\n", gw_agg_field_name(f), (long long)got.v[f],
              (long long)want.v[f]);
    CHECK_INT_EQ(got.v[f], want.v[f]);
  }
  /* The 1d bucket alone holds the same sums. */
  gw_buf key = GW_BUF_INIT;
  gw_agg_key_bucket(&key, "acme", "sums", GW_RES_1D, day);
  CHECK_INT_EQ(hget(key.data, "handle_sum"), want.v[GW_AGG_HANDLE_SUM]);
  CHECK_INT_EQ(hget(key.data, "change_sq"), want.v[GW_AGG_CHANGE_SQ]);
  gw_buf_free(&key);
  if (r)
    freeReplyObject(r);
  for (size_t i = 0; i < comp.nbuckets; i++)
    gw_buf_free(&kb[i]);
  free(keys);
  gw_agg_batch_free(b1);
  gw_agg_batch_free(b2);
}

/* ------------------------------------------------------------------ the property */

#define PROP_IDS     800
#define PROP_TEAMS   4
#define PROP_MAX_DEL (PROP_IDS * 5)

typedef struct prop_record {
  char id[40];
  const char *team;
  int64_t event_s, first_received_s;
  int start, end;
  uint64_t handle_ms;
} prop_record;

typedef struct prop_delivery {
  int rec;
  int64_t received_s;
} prop_delivery;

typedef struct prop_bucket {
  char key[96];
  long long n, handle_sum;
} prop_bucket;

/* True when a bucket of the event time expires within five minutes of now (either side): such
 * a key may vanish while the test runs, so the event time is drawn again. */
static bool near_retention_edge(int64_t event_s, int64_t now) {
  for (int res = 0; res < GW_RES_COUNT; res++) {
    int64_t expire =
        gw_window_floor(event_s, (gw_resolution)res) + gw_res_retention_s((gw_resolution)res);
    if (expire > now - 300 && expire < now + 300)
      return true;
  }
  return false;
}

/*
 * The property: every record counts exactly once in every bucket still retained, whatever the
 * deliveries. 800 records of 4 teams, received 1 to 13 days ago, their event times from 5
 * minutes after their receipt to the lateness bound (goodwill/event.h), each delivered 1 to 4
 * times (Kafka replays with the same received_at, client retries received up to C later),
 * shuffled, applied in batches of random size, some batches run twice at once and some again
 * later. The bucket counters in Redis equal a brute-force count of the distinct records per
 * bucket, no other bucket exists, and every id sits in exactly one dedupe set.
 */
static void test_property_totals(void) {
  const int64_t now = time(NULL);
  const int64_t past_s = GW_EVENT_MAX_PAST_MS / 1000;
  gw_agg_horizon h;
  gw_agg_horizon_default(&h);
  static const char *const teams[PROP_TEAMS] = {"prop-a", "prop-b", "prop-c", "prop-d"};
  prop_record *recs = calloc(PROP_IDS, sizeof(*recs));
  prop_delivery *dels = calloc(PROP_MAX_DEL, sizeof(*dels));
  size_t ndel = 0;
  for (int i = 0; i < PROP_IDS; i++) {
    prop_record *pr = &recs[i];
    snprintf(pr->id, sizeof(pr->id), "%016llx%016llx", (unsigned long long)rng(),
             (unsigned long long)i);
    pr->team = teams[rng() % PROP_TEAMS];
    pr->first_received_s = now - 86400 - (int64_t)(rng() % (12 * 86400));
    do {
      int64_t off;
      switch (rng() % 4) {
      case 0: /* around its receipt, up to the 5 minutes ahead ingest allows */
        off = (int64_t)(rng() % 900) - 300;
        break;
      case 1:
        off = (int64_t)(rng() % (30 * 86400));
        break;
      case 2:
        off = (int64_t)(rng() % (uint64_t)(past_s + 1));
        break;
      default: /* the last day before the lateness bound */
        off = past_s - (int64_t)(rng() % 86400);
        break;
      }
      pr->event_s = pr->first_received_s - off;
    } while (near_retention_edge(pr->event_s, now));
    pr->start = (int)(rng() % 2001) - 1000;
    pr->end = (int)(rng() % 2001) - 1000;
    pr->handle_ms = rng() % ((uint64_t)GW_EVENT_MAX_DURATION_MS + 1);
    dels[ndel++] = (prop_delivery){i, pr->first_received_s};
    int extra = (int)(rng() % 4);
    for (int k = 0; k < extra; k++) {
      int64_t rcv = pr->first_received_s;
      if (rng() % 2) /* a client retry: a later receipt within the window */
        rcv += (int64_t)(rng() % (uint64_t)(h.client_retry_window_s + 1));
      dels[ndel++] = (prop_delivery){i, rcv};
    }
  }
  for (size_t i = ndel - 1; i > 0; i--) { /* Fisher-Yates */
    size_t j = (size_t)(rng() % (i + 1));
    prop_delivery tmp = dels[i];
    dels[i] = dels[j];
    dels[j] = tmp;
  }

  /* Apply in chunks of 1..120 deliveries, one batch per team per chunk. */
  gw_agg_batch **done = calloc(ndel * 2, sizeof(*done));
  size_t ndone = 0;
  long long applied_total = 0, dups_total = 0, sent_total = 0;
  for (size_t pos = 0; pos < ndel;) {
    size_t len = 1 + (size_t)(rng() % 120);
    if (pos + len > ndel)
      len = ndel - pos;
    for (int t = 0; t < PROP_TEAMS; t++) {
      gw_agg_batch *b;
      CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", teams[t], &h), 0);
      for (size_t k = pos; k < pos + len; k++) {
        const prop_record *pr = &recs[dels[k].rec];
        if (pr->team != teams[t])
          continue;
        gw_agg_record r;
        make_interaction(&r, pr->id, pr->team, pr->event_s, pr->start, pr->end, pr->handle_ms);
        r.received_s = dels[k].received_s;
        CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
      }
      if (gw_agg_batch_records(b) == 0) {
        gw_agg_batch_free(b);
        continue;
      }
      int runs = rng() % 3 == 0 ? 2 : 1; /* an unknown outcome, sent again at once */
      for (int k = 0; k < runs; k++) {
        long long applied = 0, dups = 0;
        CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
        applied_total += applied;
        dups_total += dups;
        sent_total += (long long)gw_agg_batch_records(b);
      }
      done[ndone++] = b;
      if (rng() % 5 == 0) { /* a replay of an earlier batch (a consumer restarted) */
        gw_agg_batch *old = done[rng() % ndone];
        long long applied = 0, dups = 0;
        CHECK_INT_EQ(run_batch(old, &applied, &dups), 0);
        applied_total += applied;
        dups_total += dups;
        sent_total += (long long)gw_agg_batch_records(old);
      }
    }
    pos += len;
  }
  CHECK_INT_EQ(applied_total, PROP_IDS);
  CHECK_INT_EQ(applied_total + dups_total, sent_total);

  /* The brute force: each distinct record once in each bucket retained now. */
  prop_bucket *want = calloc(PROP_IDS * GW_RES_COUNT, sizeof(*want));
  size_t nwant = 0;
  for (int i = 0; i < PROP_IDS; i++) {
    for (int res = 0; res < GW_RES_COUNT; res++) {
      int64_t start = gw_window_floor(recs[i].event_s, (gw_resolution)res);
      if (!gw_window_bucket_retained((gw_resolution)res, start, now))
        continue;
      gw_buf key = GW_BUF_INIT;
      gw_agg_key_bucket(&key, "acme", recs[i].team, (gw_resolution)res, start);
      size_t j = 0;
      while (j < nwant && strcmp(want[j].key, key.data) != 0)
        j++;
      if (j == nwant)
        snprintf(want[nwant++].key, sizeof(want[0].key), "%s", key.data);
      want[j].n++;
      want[j].handle_sum += (long long)recs[i].handle_ms;
      gw_buf_free(&key);
    }
  }
  int mismatches = 0;
  for (size_t j = 0; j < nwant; j++) {
    long long n = hget(want[j].key, "n"), hs = hget(want[j].key, "handle_sum");
    if (n != want[j].n || hs != want[j].handle_sum) {
      if (mismatches++ < 5)
        fprintf(stderr, "%s: n %lld handle_sum %lld, want %lld %lld\n", want[j].key, n, hs,
                want[j].n, want[j].handle_sum);
    }
  }
  CHECK_INT_EQ(mismatches, 0);
  /* No other bucket, and every id in exactly one dedupe set. */
  long long buckets = 0, ids = 0;
  const char *cursor = "0";
  char cur[32] = "0";
  do {
    redisReply *r = cmd("SCAN %s MATCH gw:{acme:prop-*}:* COUNT 1000", cursor);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      CHECK(!"SCAN answered");
      if (r)
        freeReplyObject(r);
      break;
    }
    snprintf(cur, sizeof(cur), "%s", r->element[0]->str);
    cursor = cur;
    for (size_t k = 0; k < r->element[1]->elements; k++) {
      const char *key = r->element[1]->element[k]->str;
      if (strstr(key, "}:b:") != NULL)
        buckets++;
      else if (strstr(key, "}:dedupe:") != NULL)
        ids += integer_cmd("SCARD %s", key);
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  CHECK_INT_EQ(buckets, (long long)nwant);
  CHECK_INT_EQ(ids, PROP_IDS);
  fprintf(stderr, "property: %d records, %zu deliveries, %lld sent in batches, %zu buckets\n",
          PROP_IDS, ndel, sent_total, nwant);
  for (size_t k = 0; k < ndone; k++)
    gw_agg_batch_free(done[k]);
  free(done);
  free(want);
  free(dels);
  free(recs);
}

static void test_rank_compare(void) {
  CHECK_INT_EQ(gw_agg_sort_field("nps"), 12);
  CHECK(gw_agg_sort_field("interactions") >= 0);
  CHECK(gw_agg_sort_field("change_mean") >= 0);
  CHECK_INT_EQ(gw_agg_sort_field("team"), -EINVAL); /* not numeric */
  CHECK_INT_EQ(gw_agg_sort_field("bogus"), -EINVAL);
  CHECK_INT_EQ(gw_agg_sort_field(NULL), -EINVAL);

  gw_agg_summary hi = {0}, lo = {0}, none = {0};
  hi.interactions = 10, hi.has_surveys = true, hi.nps = 40, hi.surveys = 5;
  lo.interactions = 20, lo.has_surveys = true, lo.nps = -10, lo.surveys = 8;
  none.interactions = 30; /* no surveys: nps undefined */
  int nps = gw_agg_sort_field("nps"), n = gw_agg_sort_field("interactions");
  /* Descending by default: the higher NPS ranks first. */
  CHECK(gw_agg_rank_compare(&hi, &lo, nps, false) < 0);
  CHECK(gw_agg_rank_compare(&lo, &hi, nps, false) > 0);
  CHECK(gw_agg_rank_compare(&hi, &lo, nps, true) > 0);
  /* A team without the value (null) comes last, ascending or descending. */
  CHECK(gw_agg_rank_compare(&none, &lo, nps, false) > 0);
  CHECK(gw_agg_rank_compare(&none, &lo, nps, true) > 0);
  CHECK(gw_agg_rank_compare(&lo, &none, nps, true) < 0);
  CHECK_INT_EQ(gw_agg_rank_compare(&none, &none, nps, false), 0);
  /* Counts are always defined. */
  CHECK(gw_agg_rank_compare(&none, &hi, n, false) < 0);
  CHECK_INT_EQ(gw_agg_rank_compare(&hi, &hi, n, false), 0);
}

int main(void) {
  gw_agg_apply_script(&apply_src);
  gw_agg_read_script(&read_src);
  GW_RUN(test_increments_of_an_interaction);
  GW_RUN(test_improved_follows_direction);
  GW_RUN(test_interaction_without_feeling);
  GW_RUN(test_invalid_records_are_named);
  GW_RUN(test_verdicts);
  GW_RUN(test_summary_and_rows);
  GW_RUN(test_rank_compare);
  GW_RUN(test_totals_parse);
  GW_RUN(test_dominant_feelings);
  GW_RUN(test_bucket_views_brute_force);
  if (start_redis() != 0) {
    CHECK(!"redis-server started");
    stop_redis();
    return gw_test_finish();
  }
  GW_RUN(test_apply_twice_counts_once);
  GW_RUN(test_failed_apply_writes_nothing);
  GW_RUN(test_time_not_judged_here);
  GW_RUN(test_dedupe_by_arrival_day);
  GW_RUN(test_dedupe_horizon);
  GW_RUN(test_sums_exact_and_read_script);
  GW_RUN(test_property_totals);
  stop_redis();
  gw_buf_free(&apply_src);
  gw_buf_free(&read_src);
  return gw_test_finish();
}
