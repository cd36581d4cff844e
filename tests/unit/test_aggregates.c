/*
 * Tests of the aggregates module: increments, verdicts, rows, and the apply / read Lua
 * scripts run against a real /usr/bin/redis-server started on a free port in a temp dir.
 * The test talks to Redis with hiredis's blocking client, independent of lib/redis.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
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

static void make_interaction(gw_agg_record *out, const char *id, const char *team, int64_t t_s,
                             int start, int end, uint64_t handle_ms) {
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
  rec.record_case = GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION;
  rec.interaction = &si;
  char err[200];
  int r = gw_agg_record_from_scored(&rec, out, err, sizeof(err));
  if (r != 0)
    fprintf(stderr, "make_interaction: %s\n", err);
  CHECK_INT_EQ(r, 0);
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

static void test_verdicts(void) {
  const int64_t now = 1795428000;
  bool ret[GW_RES_COUNT];
  CHECK_INT_EQ(gw_agg_classify(now - 10, now, ret), GW_AGG_APPLY);
  CHECK(ret[GW_RES_1M] && ret[GW_RES_1H] && ret[GW_RES_1D]);
  CHECK_INT_EQ(gw_agg_classify(now - 3 * 86400, now, ret), GW_AGG_APPLY);
  CHECK(!ret[GW_RES_1M] && ret[GW_RES_1H] && ret[GW_RES_1D]);
  CHECK_INT_EQ(gw_agg_classify(now - 100 * 86400, now, ret), GW_AGG_APPLY);
  CHECK(!ret[GW_RES_1M] && !ret[GW_RES_1H] && ret[GW_RES_1D]);
  CHECK_INT_EQ(gw_agg_classify(now - 401 * 86400, now, ret), GW_AGG_TOO_LATE);
  CHECK(!ret[GW_RES_1D]);
  CHECK_INT_EQ(gw_agg_classify(now + GW_WINDOW_FUTURE_S, now, ret), GW_AGG_APPLY);
  CHECK_INT_EQ(gw_agg_classify(now + GW_WINDOW_FUTURE_S + 1, now, ret), GW_AGG_FUTURE);
  CHECK_STR_EQ(gw_agg_verdict_name(GW_AGG_TOO_LATE), "too_late");
}

static void test_summary_and_rows(void) {
  gw_agg_totals t;
  memset(&t, 0, sizeof(t));
  gw_agg_summary s;
  gw_agg_summarize(&t, &s);
  gw_agg_row_meta m = {"acme", "t1", "1h", 1795424400, 1795428000};
  gw_buf b = GW_BUF_INIT;
  gw_agg_row_json(&b, &m, &s);
  CHECK_STR_EQ(b.data,
               "{\"tenant\":\"acme\",\"team\":\"t1\",\"window\":\"1h\","
               "\"from\":\"2026-11-23T09:00:00Z\",\"to\":\"2026-11-23T10:00:00Z\","
               "\"interactions\":0,\"with_feeling\":0,\"start_mean\":null,\"end_mean\":null,"
               "\"change_mean\":null,\"improved_share\":null,\"recovered\":0,"
               "\"soured\":0,\"surveys\":0,\"promoters\":0,\"passives\":0,"
               "\"detractors\":0,\"nps\":null,\"nps_moe\":null,\"handle_ms_mean\":null,"
               "\"wait_ms_mean\":null}");

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
  CHECK_STR_CONTAINS(b.data, ",80000,0,4\r\n");
  /* Only surveys: the interaction means are empty CSV fields. */
  memset(&t, 0, sizeof(t));
  t.v[GW_AGG_S] = 1;
  t.v[GW_AGG_PROMOTERS] = 1;
  gw_agg_summarize(&t, &s);
  gw_buf_reset(&b);
  gw_agg_row_csv(&b, &m, &s);
  CHECK_STR_EQ(b.data, "acme,t1,1h,2026-11-23T09:00:00Z,2026-11-23T10:00:00Z,0,,,,,0,0,1,1,0,0,"
                       "100,0,,,0\r\n");
  gw_buf_free(&b);
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
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "t1"), 0);
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
  gw_buf_reset(&key);
  gw_agg_key_seen(&key, "acme", "t1", day);
  CHECK_INT_EQ(integer_cmd("SCARD %s", key.data),
               3 - (gw_window_floor(now - 10, GW_RES_1D) != day));
  CHECK_INT_EQ(integer_cmd("EXPIRETIME %s", key.data), day + 401 * 86400);
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
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "atomic"), 0);
  gw_agg_record r;
  make_interaction(&r, "a-1", "atomic", t, -500, 400, 1000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now + 120), GW_AGG_APPLY);
  make_interaction(&r, "a-2", "atomic", t, 100, 200, 2000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now + 120), GW_AGG_APPLY);
  make_interaction(&r, "a-1", "atomic", t, -500, 400, 1000); /* the same record again */
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

static void test_late_and_future_records(void) {
  int64_t now = time(NULL);
  gw_agg_batch *b;
  CHECK_INT_EQ(gw_agg_batch_new(&b, "acme", "late"), 0);
  gw_agg_record r;
  int64_t t3 = now - 3 * 86400;
  make_interaction(&r, "l-1", "late", t3, 0, 500, 1000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_APPLY);
  make_interaction(&r, "l-2", "late", now - 402 * 86400, 0, 500, 1000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_TOO_LATE);
  make_interaction(&r, "l-3", "late", now + 3600, 0, 500, 1000);
  CHECK_INT_EQ(gw_agg_batch_add(b, &r, now), GW_AGG_FUTURE);
  CHECK_INT_EQ(gw_agg_batch_records(b), 1);
  long long applied = -1, dups = -1;
  CHECK_INT_EQ(run_batch(b, &applied, &dups), 0);
  CHECK_INT_EQ(applied, 1);

  gw_buf key = GW_BUF_INIT;
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1M, gw_window_floor(t3, GW_RES_1M));
  CHECK_INT_EQ(integer_cmd("EXISTS %s", key.data), 0); /* the minute has expired: skipped */
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1H, gw_window_floor(t3, GW_RES_1H));
  CHECK_INT_EQ(hget(key.data, "end_sum"), 500);
  gw_buf_reset(&key);
  gw_agg_key_bucket(&key, "acme", "late", GW_RES_1D, gw_window_floor(t3, GW_RES_1D));
  CHECK_INT_EQ(hget(key.data, "n"), 1);
  gw_buf_free(&key);
  gw_agg_batch_free(b);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Many records with extreme values over two batches (one replayed), then the window read
 * through the read script: every counter equals the sum computed here in 64-bit integers. */
static void test_sums_exact_and_read_script(void) {
  int64_t now = time(NULL);
  gw_agg_totals want;
  memset(&want, 0, sizeof(want));
  gw_agg_batch *b1, *b2;
  CHECK_INT_EQ(gw_agg_batch_new(&b1, "acme", "sums"), 0);
  CHECK_INT_EQ(gw_agg_batch_new(&b2, "acme", "sums"), 0);
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
  GW_RUN(test_interaction_without_feeling);
  GW_RUN(test_invalid_records_are_named);
  GW_RUN(test_verdicts);
  GW_RUN(test_summary_and_rows);
  GW_RUN(test_rank_compare);
  GW_RUN(test_totals_parse);
  if (start_redis() != 0) {
    CHECK(!"redis-server started");
    stop_redis();
    return gw_test_finish();
  }
  GW_RUN(test_apply_twice_counts_once);
  GW_RUN(test_failed_apply_writes_nothing);
  GW_RUN(test_late_and_future_records);
  GW_RUN(test_sums_exact_and_read_script);
  stop_redis();
  gw_buf_free(&apply_src);
  gw_buf_free(&read_src);
  return gw_test_finish();
}
