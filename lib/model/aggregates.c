/*
 * Increments, key names, the apply/read Lua scripts and summary rows (see aggregates.h and
 * docs/REDIS_SCHEMA.md for every formula).
 */
#include "goodwill/aggregates.h"

#include "goodwill/buf.h"
#include "goodwill/event.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The time bounds of goodwill/event.h are derived from the day retention and the future
 * allowance of window.h: keep them one definition. */
_Static_assert(GW_EVENT_DAY_BUCKET_RETENTION_MS == GW_WINDOW_MAX_S * 1000,
               "GW_EVENT_DAY_BUCKET_RETENTION_MS must be the 1d bucket retention of window.h");
_Static_assert(GW_EVENT_MAX_FUTURE_MS == GW_WINDOW_FUTURE_S * 1000,
               "GW_EVENT_MAX_FUTURE_MS must be GW_WINDOW_FUTURE_S");
_Static_assert(GW_EVENT_MAX_PAST_MS + GW_DAY_MS + GW_EVENT_MAX_DELIVERY_DELAY_MS <=
                   GW_WINDOW_MAX_S * 1000,
               "an event ingest accepts must find its day bucket at the latest apply");

#define DAY_S 86400LL
/* The most days looked up on each side of the arrival day (C at most 7 days). */
#define LOOKBACK_MAX ((int)(GW_CLIENT_RETRY_WINDOW_MAX_MS / GW_DAY_MS))

/* The dominant feelings: the categories of gw_feeling_category in its order, then none
 * (test_aggregates checks both lists), and the counter f_<start>_<end> of each pair in the
 * order of GW_AGG_DOMINANT_PAIRS. */
#define DOMINANT_KINDS(X)                                                                          \
  X(anger), X(frustration), X(confusion), X(anxiety), X(sadness), X(gratitude), X(relief),         \
      X(satisfaction), X(delight), X(none)
#define DOMINANT_KINDS_WITH(X, a)                                                                  \
  X(a, anger), X(a, frustration), X(a, confusion), X(a, anxiety), X(a, sadness), X(a, gratitude),  \
      X(a, relief), X(a, satisfaction), X(a, delight), X(a, none)
#define PAIR_NAME(s, e) "f_" #s "_" #e
#define PAIR_ROW(s)     DOMINANT_KINDS_WITH(PAIR_NAME, s)

static const char *const field_names[GW_AGG_FIELD_COUNT] = {
    [GW_AGG_N] = "n",
    [GW_AGG_FELT] = "felt",
    [GW_AGG_START_SUM] = "start_sum",
    [GW_AGG_END_SUM] = "end_sum",
    [GW_AGG_CHANGE_SUM] = "change_sum",
    [GW_AGG_START_SQ] = "start_sq",
    [GW_AGG_END_SQ] = "end_sq",
    [GW_AGG_CHANGE_SQ] = "change_sq",
    [GW_AGG_START_END] = "start_end",
    [GW_AGG_IMPROVED] = "improved",
    [GW_AGG_WORSENED] = "worsened",
    [GW_AGG_RECOVERED] = "recovered",
    [GW_AGG_SOURED] = "soured",
    [GW_AGG_START_NEG] = "start_neg",
    [GW_AGG_START_NEU] = "start_neu",
    [GW_AGG_START_POS] = "start_pos",
    [GW_AGG_END_NEG] = "end_neg",
    [GW_AGG_END_NEU] = "end_neu",
    [GW_AGG_END_POS] = "end_pos",
    [GW_AGG_T_NN] = "t_nn",
    [GW_AGG_T_NU] = "t_nu",
    [GW_AGG_T_NP] = "t_np",
    [GW_AGG_T_UN] = "t_un",
    [GW_AGG_T_UU] = "t_uu",
    [GW_AGG_T_UP] = "t_up",
    [GW_AGG_T_PN] = "t_pn",
    [GW_AGG_T_PU] = "t_pu",
    [GW_AGG_T_PP] = "t_pp",
    [GW_AGG_HANDLE_SUM] = "handle_sum",
    [GW_AGG_HANDLE_SQ] = "handle_sq",
    [GW_AGG_WAIT_SUM] = "wait_sum",
    [GW_AGG_WAIT_SQ] = "wait_sq",
    [GW_AGG_TRANSFERS_SUM] = "transfers_sum",
    [GW_AGG_RESOLVED] = "resolved",
    [GW_AGG_RESOLVED_KNOWN] = "resolved_known",
    [GW_AGG_EMPATHY_SUM] = "empathy_sum",
    [GW_AGG_EMPATHY_SQ] = "empathy_sq",
    [GW_AGG_CHANGE_EMPATHY] = "change_empathy",
    [GW_AGG_CHANGE_HANDLE] = "change_handle",
    [GW_AGG_S] = "s",
    [GW_AGG_PROMOTERS] = "promoters",
    [GW_AGG_PASSIVES] = "passives",
    [GW_AGG_DETRACTORS] = "detractors",
    [GW_AGG_LTR_SUM] = "ltr_sum",
    [GW_AGG_LTR_SQ] = "ltr_sq",
    [GW_AGG_COMMENT_N] = "comment_n",
    [GW_AGG_COMMENT_SUM] = "comment_sum",
    [GW_AGG_COMMENT_SQ] = "comment_sq",
    [GW_AGG_CHANGE_NEG] = "change_neg",
    [GW_AGG_CHANGE_NEU] = "change_neu",
    [GW_AGG_CHANGE_POS] = "change_pos",
    [GW_AGG_DOMINANT_PAIRS] = DOMINANT_KINDS(PAIR_ROW)};

#define KIND_NAME(k) #k
static const char *const dominant_names[GW_AGG_DOMINANT_KINDS] = {DOMINANT_KINDS(KIND_NAME)};

const char *gw_agg_dominant_name(int kind) {
  return kind >= 0 && kind < GW_AGG_DOMINANT_KINDS ? dominant_names[kind] : "?";
}

static int dominant_lookup(const char *name, size_t len) {
  for (int k = 0; k < GW_AGG_DOMINANT_KINDS; k++)
    if (strlen(dominant_names[k]) == len && memcmp(dominant_names[k], name, len) == 0)
      return k;
  return -1;
}

int gw_agg_dominant(Goodwill__V1__FeelingIntensity *const *items, size_t n) {
  int best = GW_AGG_DOMINANT_NONE;
  uint32_t best_milli = 0;
  for (size_t i = 0; i < n; i++) {
    if (items[i] == NULL || items[i]->category == NULL)
      continue;
    int k = dominant_lookup(items[i]->category, strlen(items[i]->category));
    if (k < 0 || k == GW_AGG_DOMINANT_NONE || items[i]->intensity_milli == 0)
      continue;
    if (items[i]->intensity_milli > best_milli ||
        (items[i]->intensity_milli == best_milli && k < best)) {
      best = k;
      best_milli = items[i]->intensity_milli;
    }
  }
  return best;
}

const char *gw_agg_field_name(gw_agg_field f) {
  return (unsigned)f < GW_AGG_FIELD_COUNT ? field_names[f] : "?";
}

int gw_agg_field_lookup(const char *name, size_t len) {
  /* A pair of dominant feelings, f_<start>_<end>, is found by its two names (category names
   * hold no '_'), which keeps the scan below to the other fields. */
  if (len > 2 && name[0] == 'f' && name[1] == '_') {
    const char *sep = memchr(name + 2, '_', len - 2);
    if (sep == NULL)
      return -1;
    int a = dominant_lookup(name + 2, (size_t)(sep - name - 2));
    int b = dominant_lookup(sep + 1, len - (size_t)(sep + 1 - name));
    return a < 0 || b < 0 ? -1 : GW_AGG_DOMINANT_PAIRS + a * GW_AGG_DOMINANT_KINDS + b;
  }
  for (int i = 0; i < GW_AGG_DOMINANT_PAIRS; i++)
    if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0)
      return i;
  return -1;
}

static bool id_char(char c, bool record_id) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-' || (record_id && c == ':');
}

static bool valid_id(const char *s, bool record_id) {
  size_t n = 0;
  if (s == NULL)
    return false;
  for (; s[n] != '\0'; n++)
    if (n >= GW_AGG_ID_MAX || !id_char(s[n], record_id))
      return false;
  return n > 0;
}

bool gw_agg_valid_id(const char *s) {
  return valid_id(s, false);
}

static int copy_ids(gw_agg_record *out, const char *record_id, const char *tenant, const char *team,
                    int64_t occurred_at_ms, int64_t received_at_ms, char *err, size_t errlen) {
  if (!valid_id(record_id, true)) {
    gw_errf(err, errlen, "record_id: empty, longer than %d or not [A-Za-z0-9._@:-]", GW_AGG_ID_MAX);
    return -EINVAL;
  }
  if (!valid_id(tenant, false)) {
    gw_errf(err, errlen, "tenant_id: empty, longer than %d or not [A-Za-z0-9._@-]", GW_AGG_ID_MAX);
    return -EINVAL;
  }
  if (!valid_id(team, false)) {
    gw_errf(err, errlen, "team_id: empty, longer than %d or not [A-Za-z0-9._@-]", GW_AGG_ID_MAX);
    return -EINVAL;
  }
  if (occurred_at_ms <= 0) {
    gw_errf(err, errlen, "occurred_at_ms: missing or not after 1970 (%" PRId64 ")", occurred_at_ms);
    return -EINVAL;
  }
  snprintf(out->record_id, sizeof(out->record_id), "%s", record_id);
  snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
  snprintf(out->team, sizeof(out->team), "%s", team);
  out->event_s = occurred_at_ms / 1000;
  out->received_s = received_at_ms > 0 ? received_at_ms / 1000 : 0;
  return 0;
}

/* Index 0..2 of negative / neutral / positive, or -1 when the scorer left it unspecified. */
static int polarity_index(Goodwill__V1__Polarity p) {
  switch (p) {
  case GOODWILL__V1__POLARITY__POLARITY_NEGATIVE:
    return 0;
  case GOODWILL__V1__POLARITY__POLARITY_NEUTRAL:
    return 1;
  case GOODWILL__V1__POLARITY__POLARITY_POSITIVE:
    return 2;
  default:
    return -1;
  }
}

static bool valence_ok(int32_t v) {
  return v >= -1000 && v <= 1000;
}

/* Seconds, rounded to nearest, for the squares (see GW_AGG_HANDLE_SQ). */
static int64_t ms_to_s(uint64_t ms) {
  return (int64_t)((ms + 500) / 1000);
}

static int from_interaction(const Goodwill__V1__ScoredInteraction *si, gw_agg_record *out,
                            char *err, size_t errlen) {
  int rc = copy_ids(out, si->record_id, si->tenant_id, si->team_id, si->occurred_at_ms,
                    si->received_at_ms, err, errlen);
  if (rc < 0)
    return rc;
  int64_t s = si->start_valence_milli, e = si->end_valence_milli, c = si->change_valence_milli;
  if (!valence_ok(si->start_valence_milli) || !valence_ok(si->end_valence_milli) || c < -2000 ||
      c > 2000) {
    gw_errf(err, errlen,
            "start/end/change_valence_milli: %" PRId64 "/%" PRId64 "/%" PRId64
            " outside -1000..1000 (change -2000..2000)",
            s, e, c);
    return -EINVAL;
  }
  if (si->empathy_milli < 0 || si->empathy_milli > 1000) {
    gw_errf(err, errlen, "empathy_milli: %d outside 0..1000", (int)si->empathy_milli);
    return -EINVAL;
  }
  if (si->handle_ms > (uint64_t)GW_EVENT_MAX_DURATION_MS ||
      si->wait_ms > (uint64_t)GW_EVENT_MAX_DURATION_MS) {
    gw_errf(err, errlen, "handle_ms/wait_ms: %" PRIu64 "/%" PRIu64 " above %lld (7 days)",
            si->handle_ms, si->wait_ms, GW_EVENT_MAX_DURATION_MS);
    return -EINVAL;
  }
  int64_t *v = out->inc;
  int64_t emp = si->empathy_milli, handle_s = ms_to_s(si->handle_ms);
  v[GW_AGG_N] = 1;
  int ps = polarity_index(si->start_polarity), pe = polarity_index(si->end_polarity);
  if (ps >= 0)
    v[GW_AGG_START_NEG + ps] = 1;
  if (pe >= 0)
    v[GW_AGG_END_NEG + pe] = 1;
  /* The scorer leaves the polarities unspecified when the customer said nothing it could
   * read (no transcript, agent or bot turns only): such an interaction counts, but its zero
   * valences must not pull the feeling means towards neutral. */
  if (ps >= 0 && pe >= 0) {
    v[GW_AGG_FELT] = 1;
    v[GW_AGG_T_NN + ps * 3 + pe] = 1;
    v[GW_AGG_START_SUM] = s;
    v[GW_AGG_END_SUM] = e;
    v[GW_AGG_CHANGE_SUM] = c;
    v[GW_AGG_START_SQ] = s * s;
    v[GW_AGG_END_SQ] = e * e;
    v[GW_AGG_CHANGE_SQ] = c * c;
    v[GW_AGG_START_END] = s * e;
    /* By the model's direction; by the sign of the change in records of older scorers. */
    switch (si->change_direction) {
    case GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_IMPROVED:
      v[GW_AGG_IMPROVED] = 1;
      break;
    case GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_WORSENED:
      v[GW_AGG_WORSENED] = 1;
      break;
    case GOODWILL__V1__CHANGE_DIRECTION__CHANGE_DIRECTION_UNCHANGED:
      break;
    default:
      v[GW_AGG_IMPROVED] = c > 0;
      v[GW_AGG_WORSENED] = c < 0;
      break;
    }
    v[GW_AGG_RECOVERED] = si->recovered ? 1 : 0;
    v[GW_AGG_SOURED] = si->soured ? 1 : 0;
    v[GW_AGG_CHANGE_EMPATHY] = c * emp;
    v[GW_AGG_CHANGE_HANDLE] = c * handle_s;
    v[GW_AGG_CHANGE_NEG + ps] = c;
    /* Every interaction with feeling writes exactly one pair, none_none included, so the pairs
     * add up to the interactions counted since these counters exist (dominant_n). */
    int ds = gw_agg_dominant(si->start_feelings, si->n_start_feelings);
    int de = gw_agg_dominant(si->end_feelings, si->n_end_feelings);
    v[GW_AGG_DOMINANT_PAIRS + ds * GW_AGG_DOMINANT_KINDS + de] = 1;
  }
  v[GW_AGG_HANDLE_SUM] = (int64_t)si->handle_ms;
  v[GW_AGG_HANDLE_SQ] = handle_s * handle_s;
  v[GW_AGG_WAIT_SUM] = (int64_t)si->wait_ms;
  v[GW_AGG_WAIT_SQ] = ms_to_s(si->wait_ms) * ms_to_s(si->wait_ms);
  v[GW_AGG_TRANSFERS_SUM] = si->transfers;
  if (si->resolved_presence_case == GOODWILL__V1__SCORED_INTERACTION__RESOLVED_PRESENCE_RESOLVED) {
    v[GW_AGG_RESOLVED_KNOWN] = 1;
    v[GW_AGG_RESOLVED] = si->resolved ? 1 : 0;
  }
  v[GW_AGG_EMPATHY_SUM] = emp;
  v[GW_AGG_EMPATHY_SQ] = emp * emp;
  return 0;
}

static int from_survey(const Goodwill__V1__ScoredSurvey *ss, gw_agg_record *out, char *err,
                       size_t errlen) {
  int rc = copy_ids(out, ss->record_id, ss->tenant_id, ss->team_id, ss->occurred_at_ms,
                    ss->received_at_ms, err, errlen);
  if (rc < 0)
    return rc;
  if (ss->likelihood_to_recommend > 10) {
    gw_errf(err, errlen, "likelihood_to_recommend: %u outside 0..10",
            (unsigned)ss->likelihood_to_recommend);
    return -EINVAL;
  }
  int64_t ltr = ss->likelihood_to_recommend;
  int64_t *v = out->inc;
  v[GW_AGG_S] = 1;
  /* The category follows from the score (9-10 promoter, 7-8 passive, 0-6 detractor); it is
   * recomputed rather than trusted so the three counts always add up to s. */
  if (ltr >= 9)
    v[GW_AGG_PROMOTERS] = 1;
  else if (ltr >= 7)
    v[GW_AGG_PASSIVES] = 1;
  else
    v[GW_AGG_DETRACTORS] = 1;
  v[GW_AGG_LTR_SUM] = ltr;
  v[GW_AGG_LTR_SQ] = ltr * ltr;
  if (ss->comment_presence_case ==
      GOODWILL__V1__SCORED_SURVEY__COMMENT_PRESENCE_COMMENT_VALENCE_MILLI) {
    if (!valence_ok(ss->comment_valence_milli)) {
      gw_errf(err, errlen, "comment_valence_milli: %d outside -1000..1000",
              (int)ss->comment_valence_milli);
      return -EINVAL;
    }
    int64_t cv = ss->comment_valence_milli;
    v[GW_AGG_COMMENT_N] = 1;
    v[GW_AGG_COMMENT_SUM] = cv;
    v[GW_AGG_COMMENT_SQ] = cv * cv;
  }
  return 0;
}

int gw_agg_record_from_scored(const Goodwill__V1__ScoredRecord *rec, gw_agg_record *out, char *err,
                              size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (rec == NULL) {
    gw_errf(err, errlen, "record: missing");
    return -EINVAL;
  }
  if (rec->record_case == GOODWILL__V1__SCORED_RECORD__RECORD_INTERACTION &&
      rec->interaction != NULL)
    return from_interaction(rec->interaction, out, err, errlen);
  if (rec->record_case == GOODWILL__V1__SCORED_RECORD__RECORD_SURVEY && rec->survey != NULL)
    return from_survey(rec->survey, out, err, errlen);
  gw_errf(err, errlen, "record: neither interaction nor survey");
  return -EINVAL;
}

int gw_agg_record_decode(const void *value, size_t len, gw_agg_record *out, char *err,
                         size_t errlen) {
  Goodwill__V1__ScoredRecord *rec =
      goodwill__v1__scored_record__unpack(NULL, len, (const uint8_t *)value);
  if (rec == NULL) {
    memset(out, 0, sizeof(*out));
    gw_errf(err, errlen, "not a goodwill.v1.ScoredRecord protobuf");
    return -EBADMSG;
  }
  int rc = gw_agg_record_from_scored(rec, out, err, errlen);
  goodwill__v1__scored_record__free_unpacked(rec, NULL);
  return rc;
}

void gw_agg_horizon_default(gw_agg_horizon *h) {
  h->kafka_retention_s = GW_AGG_KAFKA_RETENTION_DEFAULT_S;
  h->client_retry_window_s = GW_AGG_CLIENT_RETRY_WINDOW_DEFAULT_S;
}

int gw_agg_horizon_check(const gw_agg_horizon *h, char *err, size_t errlen) {
  const int64_t kmax = GW_KAFKA_RETENTION_MAX_MS / 1000,
                cmax = GW_CLIENT_RETRY_WINDOW_MAX_MS / 1000;
  if (h->kafka_retention_s < GW_AGG_KAFKA_RETENTION_MIN_S || h->kafka_retention_s > kmax) {
    gw_errf(err, errlen,
            "kafka retention %" PRId64 " s: must be %lld..%" PRId64
            " s (ingest's lateness bound leaves room for %" PRId64 " days of retention)",
            h->kafka_retention_s, GW_AGG_KAFKA_RETENTION_MIN_S, kmax, (int64_t)(kmax / DAY_S));
    return -EINVAL;
  }
  if (h->client_retry_window_s < 0 || h->client_retry_window_s > cmax) {
    gw_errf(err, errlen, "client retry window %" PRId64 " s: must be 0..%" PRId64 " s",
            h->client_retry_window_s, cmax);
    return -EINVAL;
  }
  return 0;
}

int64_t gw_agg_replay_window_s(const gw_agg_horizon *h) {
  return 2 * h->kafka_retention_s + h->client_retry_window_s;
}

int gw_agg_lookback_days(const gw_agg_horizon *h) {
  int64_t c = h->client_retry_window_s > 0 ? h->client_retry_window_s : 0;
  int64_t l = (c + DAY_S - 1) / DAY_S;
  return l > LOOKBACK_MAX ? LOOKBACK_MAX : (int)l;
}

int64_t gw_agg_dedupe_expire_s(const gw_agg_horizon *h, int64_t day_start_s) {
  return day_start_s + DAY_S + gw_agg_replay_window_s(h);
}

int64_t gw_agg_dedupe_deadline_s(const gw_agg_horizon *h, int64_t received_s) {
  /* The earliest set that may hold an earlier delivery is that of the day of received - C. */
  int64_t first = gw_window_floor(received_s - h->client_retry_window_s, GW_RES_1D);
  return gw_agg_dedupe_expire_s(h, first);
}

static int64_t received_or_now(const gw_agg_record *r, int64_t now_s) {
  return r->received_s > 0 ? r->received_s : now_s;
}

gw_agg_verdict gw_agg_classify(const gw_agg_record *r, const gw_agg_horizon *h, int64_t now_s,
                               bool retained[GW_RES_COUNT]) {
  gw_agg_horizon def;
  if (h == NULL) {
    gw_agg_horizon_default(&def);
    h = &def;
  }
  bool any = false;
  bool local[GW_RES_COUNT];
  if (retained == NULL)
    retained = local;
  for (int res = 0; res < GW_RES_COUNT; res++) {
    retained[res] =
        gw_window_bucket_retained((gw_resolution)res, gw_window_floor(r->event_s, res), now_s);
    any = any || retained[res];
  }
  if (now_s >= gw_agg_dedupe_deadline_s(h, received_or_now(r, now_s)))
    return GW_AGG_PAST_HORIZON;
  if (!any)
    return GW_AGG_TOO_LATE;
  return GW_AGG_APPLY;
}

const char *gw_agg_verdict_name(gw_agg_verdict v) {
  switch (v) {
  case GW_AGG_APPLY:
    return "apply";
  case GW_AGG_TOO_LATE:
  case GW_AGG_PAST_HORIZON:
    return "too_late";
  }
  return "?";
}

void gw_agg_key_bucket(gw_buf *out, const char *tenant, const char *team, gw_resolution r,
                       int64_t bucket_start_s) {
  gw_buf_printf(out, "gw:{%s:%s}:b:%s:%" PRId64, tenant, team, gw_res_name(r), bucket_start_s);
}

void gw_agg_key_seen(gw_buf *out, const char *tenant, const char *team, int64_t day_start_s) {
  gw_buf_printf(out, "gw:{%s:%s}:dedupe:%" PRId64, tenant, team, day_start_s);
}

void gw_agg_key_applied(gw_buf *out, const char *topic, int32_t partition) {
  gw_buf_printf(out, "gw:applied:%s:%" PRId32, topic, partition);
}

void gw_agg_key_teams(gw_buf *out, const char *tenant) {
  gw_buf_printf(out, "gw:{%s}:teams", tenant);
}

/*
 * ARGV of the apply script, format 2:
 *   ARGV[1]             format version "2"
 *   ARGV[2 .. 1+#KEYS]  the EXPIREAT unix time of each key
 *   then per record:    id, ns, ns dedupe set key indexes (the first is the set of the
 *                       record's arrival day, where a new id is added; the others are only
 *                       looked up), nb, nb bucket key indexes, nf, nf pairs (field number
 *                       1..F, increment)
 * (Format 1 had one seen key index per record, the set of its event day.)
 *
 * The script is all or nothing: everything that can fail is tried before the first write.
 * Phase 1 only reads: one SMISMEMBER per dedupe set key, with the ids of every record that
 * looks there, tells which ids are known (an id known in any of its sets, or met earlier in the
 * batch, is a duplicate), the increments of the new records are summed per (key, field), and
 * HMGET per bucket key reads the counters they touch, each of which must be absent or an
 * integer that the increment keeps within 64 bits. A key of the wrong type makes SMISMEMBER
 * or HMGET fail, a corrupt counter makes the script return an error: either way nothing was
 * written, and the retry finds the same state. Phase 2 writes: one SADD per arrival day set
 * with its new ids, one HINCRBY per touched counter, and EXPIREAT on every key written. Redis
 * refuses a script's first write when it is out of memory and lets a script that has written
 * go on (scripts are atomic), so memory cannot cut phase 2 short either.
 *
 * Lua numbers are doubles: the sums stay exact because every batch sum is below 2^53
 * (GW_AGG_BATCH_MAX records of bounded increments), and they are handed to HINCRBY as "%d"
 * strings, never in Lua's exponent notation. SMISMEMBER needs Redis 6.2 or later.
 */
static const char apply_script_body[] =
    "if ARGV[1] ~= '2' then\n"
    "  return redis.error_reply('ERR goodwill apply: unknown format ' .. tostring(ARGV[1]))\n"
    "end\n"
    "local nk = #KEYS\n"
    "local recs, byseen = {}, {}\n"
    "local p = nk + 2\n"
    "while p <= #ARGV do\n"
    "  local id = ARGV[p]\n"
    "  local ns = tonumber(ARGV[p + 1])\n"
    "  local bp = p + 2 + ns\n"
    "  local nb = tonumber(ARGV[bp])\n"
    "  local fp = bp + 1 + nb\n"
    "  local nf = tonumber(ARGV[fp])\n"
    "  recs[#recs + 1] = {id = id, add = tonumber(ARGV[p + 2]), b0 = bp + 1, nb = nb, fp = fp,\n"
    "                     nf = nf}\n"
    "  for i = 0, ns - 1 do\n"
    "    local s = tonumber(ARGV[p + 2 + i])\n"
    "    local ids = byseen[s]\n"
    "    if ids == nil then ids = {}; byseen[s] = ids end\n"
    "    ids[#ids + 1] = id\n"
    "  end\n"
    "  p = fp + 1 + 2 * nf\n"
    "end\n"
    "local known = {}\n"
    "for s, ids in pairs(byseen) do\n"
    "  local m = redis.call('SMISMEMBER', KEYS[s], unpack(ids))\n"
    "  for i = 1, #ids do if m[i] == 1 then known[ids[i]] = true end end\n"
    "end\n"
    "local applied, dups = 0, 0\n"
    "local acc, fresh = {}, {}\n"
    "for _, r in ipairs(recs) do\n"
    "  if known[r.id] then\n"
    "    dups = dups + 1\n"
    "  else\n"
    "    known[r.id] = true\n"
    "    applied = applied + 1\n"
    "    local ids = fresh[r.add]\n"
    "    if ids == nil then ids = {}; fresh[r.add] = ids end\n"
    "    ids[#ids + 1] = r.id\n"
    "    for i = 0, r.nb - 1 do\n"
    "      local k = tonumber(ARGV[r.b0 + i])\n"
    "      local a = acc[k]\n"
    "      if a == nil then a = {}; acc[k] = a end\n"
    "      for j = 0, r.nf - 1 do\n"
    "        local f = tonumber(ARGV[r.fp + 1 + 2 * j])\n"
    "        a[f] = (a[f] or 0) + tonumber(ARGV[r.fp + 2 + 2 * j])\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for k, a in pairs(acc) do\n"
    "  local fs, names = {}, {}\n"
    "  for f, v in pairs(a) do if v ~= 0 then fs[#fs + 1] = f; names[#names + 1] = F[f] end end\n"
    "  if #names > 0 then\n"
    "    local cur = redis.call('HMGET', KEYS[k], unpack(names))\n"
    "    for i = 1, #fs do\n"
    "      local c = cur[i]\n"
    "      if c then\n"
    "        local n = tonumber(c)\n"
    "        if not string.match(c, '^%-?%d+$') or n == nil or\n"
    "           math.abs(n) + math.abs(a[fs[i]]) >= 9.2e18 then\n"
    "          return redis.error_reply('ERR goodwill apply: counter ' .. F[fs[i]] ..\n"
    "            ' of ' .. KEYS[k] .. ' is not an integer in range: ' .. c)\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local written = {}\n"
    "for s, ids in pairs(fresh) do redis.call('SADD', KEYS[s], unpack(ids)); written[s] = true "
    "end\n"
    "for k, a in pairs(acc) do\n"
    "  for f, v in pairs(a) do\n"
    "    if v ~= 0 then\n"
    "      redis.call('HINCRBY', KEYS[k], F[f], string.format('%d', v))\n"
    "      written[k] = true\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for k in pairs(written) do redis.call('EXPIREAT', KEYS[k], ARGV[1 + k]) end\n"
    "return {applied, dups}\n";

void gw_agg_apply_script(gw_buf *out) {
  gw_buf_puts(out,
              "-- goodwill apply v2 (lib/model/aggregates.c, docs/REDIS_SCHEMA.md)\nlocal F = {");
  for (int i = 0; i < GW_AGG_FIELD_COUNT; i++)
    gw_buf_printf(out, "%s'%s'", i ? "," : "", field_names[i]);
  gw_buf_puts(out, "}\n");
  gw_buf_puts(out, apply_script_body);
}

void gw_agg_read_script(gw_buf *out) {
  /* One round trip and one consistent snapshot of every bucket of the window. */
  gw_buf_puts(out, "-- goodwill read v1\n"
                   "local r = {}\n"
                   "for i = 1, #KEYS do r[i] = redis.call('HGETALL', KEYS[i]) end\n"
                   "return r\n");
}

/* ------------------------------------------------------------------ batches */

typedef struct strvec {
  char **items;
  size_t *lens;
  size_t count, cap;
} strvec;

static void strvec_push(strvec *v, const char *s, size_t len) {
  if (v->count == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 64;
    char **ni = realloc(v->items, ncap * sizeof(*ni));
    size_t *nl = realloc(v->lens, ncap * sizeof(*nl));
    if (ni == NULL || nl == NULL)
      abort(); /* small bounded growth: allocation failure is fatal, as buf.h does */
    v->items = ni;
    v->lens = nl;
    v->cap = ncap;
  }
  char *copy = malloc(len + 1);
  if (copy == NULL)
    abort();
  memcpy(copy, s, len);
  copy[len] = '\0';
  v->items[v->count] = copy;
  v->lens[v->count] = len;
  v->count++;
}

static void strvec_clear(strvec *v) {
  for (size_t i = 0; i < v->count; i++)
    free(v->items[i]);
  v->count = 0;
}

static void strvec_free(strvec *v) {
  strvec_clear(v);
  free(v->items);
  free(v->lens);
  memset(v, 0, sizeof(*v));
}

struct gw_agg_batch {
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  gw_agg_horizon horizon;
  strvec keys;   /* KEYS */
  strvec expire; /* EXPIREAT of each key, as text */
  strvec recs;   /* the per-record part of ARGV */
  strvec args;   /* the assembled ARGV, built by gw_agg_batch_call */
  size_t nrecords;
  gw_buf tmp;
};

int gw_agg_batch_new(gw_agg_batch **out, const char *tenant, const char *team,
                     const gw_agg_horizon *h) {
  gw_agg_horizon def;
  if (h == NULL) {
    gw_agg_horizon_default(&def);
    h = &def;
  }
  if (!gw_agg_valid_id(tenant) || !gw_agg_valid_id(team) || gw_agg_horizon_check(h, NULL, 0) != 0)
    return -EINVAL;
  gw_agg_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  b->horizon = *h;
  snprintf(b->tenant, sizeof(b->tenant), "%s", tenant);
  snprintf(b->team, sizeof(b->team), "%s", team);
  *out = b;
  return 0;
}

void gw_agg_batch_clear(gw_agg_batch *b) {
  strvec_clear(&b->keys);
  strvec_clear(&b->expire);
  strvec_clear(&b->recs);
  strvec_clear(&b->args);
  b->nrecords = 0;
}

void gw_agg_batch_free(gw_agg_batch *b) {
  if (b == NULL)
    return;
  strvec_free(&b->keys);
  strvec_free(&b->expire);
  strvec_free(&b->recs);
  strvec_free(&b->args);
  gw_buf_free(&b->tmp);
  free(b);
}

size_t gw_agg_batch_records(const gw_agg_batch *b) {
  return b->nrecords;
}

/* The 1-based index of the key in b->tmp, added with its expiry when new. A flush touches
 * few distinct keys (a team's records cluster in time), and the newest keys are the likeliest
 * matches, so the scan runs backwards. */
static size_t key_index(gw_agg_batch *b, int64_t expire_at) {
  for (size_t i = b->keys.count; i > 0; i--)
    if (b->keys.lens[i - 1] == b->tmp.len &&
        memcmp(b->keys.items[i - 1], b->tmp.data, b->tmp.len) == 0)
      return i;
  strvec_push(&b->keys, b->tmp.data, b->tmp.len);
  char num[32];
  int n = snprintf(num, sizeof(num), "%" PRId64, expire_at);
  strvec_push(&b->expire, num, (size_t)n);
  return b->keys.count;
}

static void push_num(strvec *v, int64_t x) {
  char num[32];
  int n = snprintf(num, sizeof(num), "%" PRId64, x);
  strvec_push(v, num, (size_t)n);
}

int gw_agg_batch_add(gw_agg_batch *b, const gw_agg_record *r, int64_t now_s) {
  if (strcmp(r->tenant, b->tenant) != 0 || strcmp(r->team, b->team) != 0)
    return -EINVAL;
  if (b->nrecords >= GW_AGG_BATCH_MAX)
    return -ENOBUFS;
  bool retained[GW_RES_COUNT];
  gw_agg_verdict v = gw_agg_classify(r, &b->horizon, now_s, retained);
  if (v != GW_AGG_APPLY)
    return (int)v;

  /* The arrival day's set first (where the id goes), then the days around it that the client
   * retry window covers, leaving out sets that have expired already: an id they held belongs to
   * a delivery received more than that window before this one. */
  int64_t arrival = gw_window_floor(received_or_now(r, now_s), GW_RES_1D);
  size_t sidx[1 + 2 * LOOKBACK_MAX];
  int ns = 0;
  gw_buf_reset(&b->tmp);
  gw_agg_key_seen(&b->tmp, b->tenant, b->team, arrival);
  sidx[ns++] = key_index(b, gw_agg_dedupe_expire_s(&b->horizon, arrival));
  int lookback = gw_agg_lookback_days(&b->horizon);
  for (int d = -lookback; d <= lookback; d++) {
    int64_t day = arrival + d * DAY_S;
    int64_t expire = gw_agg_dedupe_expire_s(&b->horizon, day);
    if (d == 0 || expire <= now_s)
      continue;
    gw_buf_reset(&b->tmp);
    gw_agg_key_seen(&b->tmp, b->tenant, b->team, day);
    sidx[ns++] = key_index(b, expire);
  }
  size_t bidx[GW_RES_COUNT];
  int nb = 0;
  for (int res = 0; res < GW_RES_COUNT; res++) {
    if (!retained[res])
      continue;
    int64_t start = gw_window_floor(r->event_s, (gw_resolution)res);
    gw_buf_reset(&b->tmp);
    gw_agg_key_bucket(&b->tmp, b->tenant, b->team, (gw_resolution)res, start);
    bidx[nb++] = key_index(b, start + gw_res_retention_s((gw_resolution)res));
  }
  strvec_push(&b->recs, r->record_id, strlen(r->record_id));
  push_num(&b->recs, ns);
  for (int i = 0; i < ns; i++)
    push_num(&b->recs, (int64_t)sidx[i]);
  push_num(&b->recs, nb);
  for (int i = 0; i < nb; i++)
    push_num(&b->recs, (int64_t)bidx[i]);
  int nf = 0;
  for (int f = 0; f < GW_AGG_FIELD_COUNT; f++)
    nf += r->inc[f] != 0;
  push_num(&b->recs, nf);
  for (int f = 0; f < GW_AGG_FIELD_COUNT; f++) {
    if (r->inc[f] == 0)
      continue;
    push_num(&b->recs, f + 1);
    push_num(&b->recs, r->inc[f]);
  }
  b->nrecords++;
  return GW_AGG_APPLY;
}

void gw_agg_batch_call(gw_agg_batch *b, gw_agg_call *out) {
  strvec_clear(&b->args);
  strvec_push(&b->args, "2", 1);
  for (size_t i = 0; i < b->expire.count; i++)
    strvec_push(&b->args, b->expire.items[i], b->expire.lens[i]);
  for (size_t i = 0; i < b->recs.count; i++)
    strvec_push(&b->args, b->recs.items[i], b->recs.lens[i]);
  out->nkeys = (int)b->keys.count;
  out->keys = (const char *const *)b->keys.items;
  out->keylens = b->keys.lens;
  out->nargs = (int)b->args.count;
  out->args = (const char *const *)b->args.items;
  out->arglens = b->args.lens;
}

/* ------------------------------------------------------------------ reading */

static bool parse_i64(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > 20)
    return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (len == 1)
      return false;
  }
  uint64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
    return false;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

int gw_agg_totals_add_hash(gw_agg_totals *t, const char *const *strs, const size_t *lens,
                           size_t n) {
  if (n % 2 != 0)
    return -EINVAL;
  for (size_t i = 0; i < n; i += 2) {
    int f = gw_agg_field_lookup(strs[i], lens[i]);
    if (f < 0)
      continue;
    int64_t v;
    if (!parse_i64(strs[i + 1], lens[i + 1], &v))
      return -EINVAL;
    t->v[f] += v;
  }
  return 0;
}

void gw_agg_summarize(const gw_agg_totals *t, gw_agg_summary *out) {
  memset(out, 0, sizeof(*out));
  const int64_t *v = t->v;
  out->interactions = v[GW_AGG_N];
  out->recovered = v[GW_AGG_RECOVERED];
  out->soured = v[GW_AGG_SOURED];
  out->surveys = v[GW_AGG_S];
  out->promoters = v[GW_AGG_PROMOTERS];
  out->passives = v[GW_AGG_PASSIVES];
  out->detractors = v[GW_AGG_DETRACTORS];
  out->with_feeling = v[GW_AGG_FELT];
  if (v[GW_AGG_FELT] > 0) {
    double f = (double)v[GW_AGG_FELT];
    out->has_feeling = true;
    out->start_mean = (double)v[GW_AGG_START_SUM] / f / 1000.0;
    out->end_mean = (double)v[GW_AGG_END_SUM] / f / 1000.0;
    out->change_mean = (double)v[GW_AGG_CHANGE_SUM] / f / 1000.0;
    out->improved_share = (double)v[GW_AGG_IMPROVED] / f;
  }
  if (v[GW_AGG_N] > 0) {
    double n = (double)v[GW_AGG_N];
    out->has_interactions = true;
    out->handle_ms_mean = (double)v[GW_AGG_HANDLE_SUM] / n;
    out->wait_ms_mean = (double)v[GW_AGG_WAIT_SUM] / n;
  }
  if (v[GW_AGG_S] > 0) {
    /* NPS = 100 (P - D) / s. A response scores +1 (promoter), 0 or -1 (detractor); its
     * variance is (p + d) - (p - d)^2 with p = P/s, d = D/s, so the standard error of the
     * NPS is 100 sqrt(var / s) and the 95 % margin of error 1.96 times that. */
    double s = (double)v[GW_AGG_S];
    double p = (double)v[GW_AGG_PROMOTERS] / s, d = (double)v[GW_AGG_DETRACTORS] / s;
    double var = (p + d) - (p - d) * (p - d);
    if (var < 0)
      var = 0; /* rounding only */
    out->has_surveys = true;
    out->nps = 100.0 * (p - d);
    out->nps_moe = 1.96 * 100.0 * sqrt(var / s);
  }

  for (int k = 0; k < 9; k++)
    out->transitions[k] = v[GW_AGG_T_NN + k];
  for (int k = 0; k < GW_AGG_DOMINANT_KINDS * GW_AGG_DOMINANT_KINDS; k++)
    out->dominant_n += v[GW_AGG_DOMINANT_PAIRS + k];
  if (v[GW_AGG_FELT] > 0) {
    double f = (double)v[GW_AGG_FELT];
    for (int k = 0; k < 9; k++)
      out->transition_share[k] = (double)v[GW_AGG_T_NN + k] / f;
    out->recovered_rate = (double)v[GW_AGG_RECOVERED] / f;
    out->soured_rate = (double)v[GW_AGG_SOURED] / f;
  }
  /* The per-polarity sums exist only in buckets written since they were added (old buckets
   * read them as 0); every interaction with feeling counted since then also counts one pair of
   * dominant feelings, so dominant_n == with_feeling says that the whole range has them. A mean
   * over part of the range would be noise: it stays undefined. */
  for (int k = 0; k < 3; k++) {
    /* The interactions with feeling that began so: start_<polarity> would also count a record
     * with a start polarity but no end one (not from the scorer), whose change is not summed. */
    int64_t started =
        v[GW_AGG_T_NN + 3 * k] + v[GW_AGG_T_NN + 3 * k + 1] + v[GW_AGG_T_NN + 3 * k + 2];
    if (started > 0 && out->dominant_n == v[GW_AGG_FELT]) {
      out->has_change_from[k] = true;
      out->change_mean_from[k] = (double)v[GW_AGG_CHANGE_NEG + k] / (double)started / 1000.0;
    }
  }
  if (v[GW_AGG_N] > 0) {
    double n = (double)v[GW_AGG_N];
    out->empathy_mean = (double)v[GW_AGG_EMPATHY_SUM] / n / 1000.0;
    out->transfers_mean = (double)v[GW_AGG_TRANSFERS_SUM] / n;
    out->survey_response_rate = (double)v[GW_AGG_S] / n;
  }
  out->resolved_known = v[GW_AGG_RESOLVED_KNOWN];
  if (v[GW_AGG_RESOLVED_KNOWN] > 0) {
    out->has_resolution = true;
    out->resolution_rate = (double)v[GW_AGG_RESOLVED] / (double)v[GW_AGG_RESOLVED_KNOWN];
  }
  out->change_sum_milli = v[GW_AGG_CHANGE_SUM];
  out->change_balance_milli = v[GW_AGG_CHANGE_SUM];
  out->change_sum = (double)v[GW_AGG_CHANGE_SUM] / 1000.0;
}

static void json_num(gw_buf *out, bool defined, double x) {
  if (!defined || !isfinite(x))
    gw_buf_puts(out, "null");
  else
    gw_buf_printf(out, "%.10g", x);
}

/* The fields a leaderboard ranks by: counts (always defined), means (defined per the flag
 * at defined_off) and sums (double, always defined), with their names in the rows. */
typedef enum sort_kind { SORT_KIND_COUNT, SORT_KIND_MEAN, SORT_KIND_SUM } sort_kind;
typedef struct sort_field {
  const char *name;
  sort_kind kind;
  size_t off;         /* of the int64_t count or the double in gw_agg_summary */
  size_t defined_off; /* of the bool saying whether the mean is defined */
} sort_field;

#define SORT_COUNT(f)                                                                              \
  { #f, SORT_KIND_COUNT, offsetof(gw_agg_summary, f), 0 }
#define SORT_MEAN(f, d)                                                                            \
  { #f, SORT_KIND_MEAN, offsetof(gw_agg_summary, f), offsetof(gw_agg_summary, d) }
#define SORT_MEAN_AT(name, f, d, i)                                                                \
  { name, SORT_KIND_MEAN, offsetof(gw_agg_summary, f[i]), offsetof(gw_agg_summary, d[i]) }
static const sort_field sort_fields[] = {
    SORT_COUNT(interactions),
    SORT_COUNT(with_feeling),
    SORT_MEAN(start_mean, has_feeling),
    SORT_MEAN(end_mean, has_feeling),
    SORT_MEAN(change_mean, has_feeling),
    SORT_MEAN(improved_share, has_feeling),
    SORT_COUNT(recovered),
    SORT_COUNT(soured),
    SORT_COUNT(surveys),
    SORT_COUNT(promoters),
    SORT_COUNT(passives),
    SORT_COUNT(detractors),
    SORT_MEAN(nps, has_surveys),
    SORT_MEAN(nps_moe, has_surveys),
    SORT_MEAN(handle_ms_mean, has_interactions),
    SORT_MEAN(wait_ms_mean, has_interactions),
    SORT_MEAN(recovered_rate, has_feeling),
    SORT_MEAN(soured_rate, has_feeling),
    SORT_MEAN(empathy_mean, has_interactions),
    SORT_MEAN(resolution_rate, has_resolution),
    SORT_MEAN(transfers_mean, has_interactions),
    SORT_MEAN(survey_response_rate, has_interactions),
    SORT_MEAN_AT("change_mean_from_neg", change_mean_from, has_change_from, 0),
    SORT_MEAN_AT("change_mean_from_neu", change_mean_from, has_change_from, 1),
    SORT_MEAN_AT("change_mean_from_pos", change_mean_from, has_change_from, 2),
    {"change_sum", SORT_KIND_SUM, offsetof(gw_agg_summary, change_sum), 0},
};
#define SORT_FIELDS (sizeof(sort_fields) / sizeof(sort_fields[0]))

int gw_agg_sort_field(const char *name) {
  for (size_t i = 0; name != NULL && i < SORT_FIELDS; i++)
    if (strcmp(name, sort_fields[i].name) == 0)
      return (int)i;
  return -EINVAL;
}

/* The value of a sort field, false when it is undefined (null in the rows). */
static bool sort_value(const gw_agg_summary *s, int field, double *v) {
  if (field < 0 || field >= (int)SORT_FIELDS)
    return false;
  const sort_field *f = &sort_fields[field];
  const char *base = (const char *)s;
  if (f->kind == SORT_KIND_COUNT) {
    int64_t n;
    memcpy(&n, base + f->off, sizeof(n));
    *v = (double)n;
    return true;
  }
  bool defined = true;
  if (f->kind == SORT_KIND_MEAN)
    memcpy(&defined, base + f->defined_off, sizeof(defined));
  memcpy(v, base + f->off, sizeof(*v));
  return defined;
}

int gw_agg_rank_compare(const gw_agg_summary *a, const gw_agg_summary *b, int field,
                        bool ascending) {
  double va = 0, vb = 0;
  bool da = sort_value(a, field, &va), db = sort_value(b, field, &vb);
  if (da != db)
    return da ? -1 : 1;
  if (!da || va == vb)
    return 0;
  int c = va < vb ? -1 : 1;
  return ascending ? c : -c;
}

/*
 * The row columns added after with_feeling (docs/API-read.md), written by one function for the
 * CSV header, JSON rows and CSV rows, so the three always agree on names and order.
 */
typedef enum cols_mode { COLS_HEADER, COLS_JSON, COLS_CSV } cols_mode;

static void col_name(gw_buf *out, cols_mode mode, const char *a, const char *b, const char *c) {
  if (mode == COLS_CSV) {
    gw_buf_putc(out, ',');
    return;
  }
  gw_buf_puts(out, mode == COLS_JSON ? ",\"" : ",");
  gw_buf_puts(out, a);
  gw_buf_puts(out, b);
  gw_buf_puts(out, c);
  if (mode == COLS_JSON)
    gw_buf_puts(out, "\":");
}

static void col_count(gw_buf *out, cols_mode mode, const char *name, int64_t v) {
  col_name(out, mode, name, "", "");
  if (mode != COLS_HEADER)
    gw_buf_printf(out, "%" PRId64, v);
}

static void col_num(gw_buf *out, cols_mode mode, const char *a, const char *b, bool defined,
                    double x) {
  col_name(out, mode, a, b, "");
  if (mode == COLS_JSON)
    json_num(out, defined, x);
  else if (mode == COLS_CSV && defined && isfinite(x))
    gw_buf_printf(out, "%.10g", x);
}

/* A sum of milli values as an exact decimal (-12.345), never rounded. */
static void col_milli(gw_buf *out, cols_mode mode, const char *name, int64_t milli) {
  col_name(out, mode, name, "", "");
  if (mode == COLS_HEADER)
    return;
  uint64_t a = milli < 0 ? 0 - (uint64_t)milli : (uint64_t)milli;
  gw_buf_printf(out, "%s%" PRIu64 ".%03u", milli < 0 ? "-" : "", a / 1000, (unsigned)(a % 1000));
}

static const char *const polarity_short[3] = {"neg", "neu", "pos"};

static void extra_columns(gw_buf *out, cols_mode mode, const gw_agg_summary *s) {
  char name[64];
  for (int k = 0; k < 9; k++) {
    snprintf(name, sizeof(name), "%s_to_%s", polarity_short[k / 3], polarity_short[k % 3]);
    col_count(out, mode, name, s ? s->transitions[k] : 0);
  }
  for (int k = 0; k < 9; k++) {
    snprintf(name, sizeof(name), "%s_to_%s", polarity_short[k / 3], polarity_short[k % 3]);
    col_num(out, mode, name, "_share", s && s->has_feeling, s ? s->transition_share[k] : 0);
  }
  bool felt = s && s->has_feeling, inter = s && s->has_interactions;
  col_num(out, mode, "recovered_rate", "", felt, s ? s->recovered_rate : 0);
  col_num(out, mode, "soured_rate", "", felt, s ? s->soured_rate : 0);
  for (int k = 0; k < 3; k++)
    col_num(out, mode, "change_mean_from_", polarity_short[k], s && s->has_change_from[k],
            s ? s->change_mean_from[k] : 0);
  col_milli(out, mode, "change_sum", s ? s->change_sum_milli : 0);
  col_milli(out, mode, "change_balance", s ? s->change_balance_milli : 0);
  col_num(out, mode, "empathy_mean", "", inter, s ? s->empathy_mean : 0);
  col_num(out, mode, "transfers_mean", "", inter, s ? s->transfers_mean : 0);
  col_count(out, mode, "resolved_known", s ? s->resolved_known : 0);
  col_num(out, mode, "resolution_rate", "", s && s->has_resolution, s ? s->resolution_rate : 0);
  col_num(out, mode, "survey_response_rate", "", inter, s ? s->survey_response_rate : 0);
  /* The dominant feelings are not row columns: their 100 pairs would make every row of every
   * route ten times bigger. GET /v1/teams/{team}/feelings answers them (gw_agg_feelings_rows). */
}

void gw_agg_row_json(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s) {
  char from[GW_ISO_LEN], to[GW_ISO_LEN];
  gw_window_format_iso(m->from_s, from);
  gw_window_format_iso(m->to_s, to);
  gw_buf_puts(out, "{\"tenant\":");
  gw_buf_json_string(out, m->tenant);
  gw_buf_puts(out, ",\"team\":");
  gw_buf_json_string(out, m->team);
  gw_buf_puts(out, ",\"window\":");
  gw_buf_json_string(out, m->window);
  gw_buf_printf(out, ",\"from\":\"%s\",\"to\":\"%s\"", from, to);
  gw_buf_printf(out, ",\"interactions\":%" PRId64 ",\"with_feeling\":%" PRId64, s->interactions,
                s->with_feeling);
  gw_buf_puts(out, ",\"start_mean\":");
  json_num(out, s->has_feeling, s->start_mean);
  gw_buf_puts(out, ",\"end_mean\":");
  json_num(out, s->has_feeling, s->end_mean);
  gw_buf_puts(out, ",\"change_mean\":");
  json_num(out, s->has_feeling, s->change_mean);
  gw_buf_puts(out, ",\"improved_share\":");
  json_num(out, s->has_feeling, s->improved_share);
  gw_buf_printf(out,
                ",\"recovered\":%" PRId64 ",\"soured\":%" PRId64 ",\"surveys\":%" PRId64
                ",\"promoters\":%" PRId64 ",\"passives\":%" PRId64 ",\"detractors\":%" PRId64,
                s->recovered, s->soured, s->surveys, s->promoters, s->passives, s->detractors);
  gw_buf_puts(out, ",\"nps\":");
  json_num(out, s->has_surveys, s->nps);
  gw_buf_puts(out, ",\"nps_moe\":");
  json_num(out, s->has_surveys, s->nps_moe);
  gw_buf_puts(out, ",\"handle_ms_mean\":");
  json_num(out, s->has_interactions, s->handle_ms_mean);
  gw_buf_puts(out, ",\"wait_ms_mean\":");
  json_num(out, s->has_interactions, s->wait_ms_mean);
  extra_columns(out, COLS_JSON, s);
  gw_buf_putc(out, '}');
}

void gw_agg_csv_header(gw_buf *out) {
  gw_buf_puts(out, "tenant,team,window,from,to,interactions,start_mean,end_mean,change_mean,"
                   "improved_share,recovered,soured,surveys,promoters,passives,detractors,nps,"
                   "nps_moe,handle_ms_mean,wait_ms_mean,with_feeling");
  extra_columns(out, COLS_HEADER, NULL);
  gw_buf_puts(out, "\r\n");
}

static void csv_text(gw_buf *out, const char *s) {
  /* Ids are restricted upstream, but quote defensively (RFC 4180) anything that needs it, and
   * prefix text a spreadsheet would run as a formula. */
  bool quote = strpbrk(s, ",\"\r\n") != NULL || strchr("=+-@", s[0]) != NULL;
  if (s[0] == '\0')
    quote = false;
  if (!quote) {
    gw_buf_puts(out, s);
    return;
  }
  gw_buf_putc(out, '"');
  if (strchr("=+-@", s[0]) != NULL)
    gw_buf_putc(out, '\'');
  for (; *s; s++) {
    if (*s == '"')
      gw_buf_putc(out, '"');
    gw_buf_putc(out, *s);
  }
  gw_buf_putc(out, '"');
}

static void csv_num(gw_buf *out, bool defined, double x) {
  gw_buf_putc(out, ',');
  if (defined && isfinite(x))
    gw_buf_printf(out, "%.10g", x);
}

void gw_agg_row_csv(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s) {
  char from[GW_ISO_LEN], to[GW_ISO_LEN];
  gw_window_format_iso(m->from_s, from);
  gw_window_format_iso(m->to_s, to);
  csv_text(out, m->tenant);
  gw_buf_putc(out, ',');
  csv_text(out, m->team);
  gw_buf_putc(out, ',');
  csv_text(out, m->window);
  gw_buf_printf(out, ",%s,%s,%" PRId64, from, to, s->interactions);
  csv_num(out, s->has_feeling, s->start_mean);
  csv_num(out, s->has_feeling, s->end_mean);
  csv_num(out, s->has_feeling, s->change_mean);
  csv_num(out, s->has_feeling, s->improved_share);
  gw_buf_printf(out, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
                s->recovered, s->soured, s->surveys, s->promoters, s->passives, s->detractors);
  csv_num(out, s->has_surveys, s->nps);
  csv_num(out, s->has_surveys, s->nps_moe);
  csv_num(out, s->has_interactions, s->handle_ms_mean);
  csv_num(out, s->has_interactions, s->wait_ms_mean);
  gw_buf_printf(out, ",%" PRId64, s->with_feeling);
  extra_columns(out, COLS_CSV, s);
  gw_buf_puts(out, "\r\n");
}

/* ------------------------------------------------------------------ dominant feelings */

void gw_agg_feelings_csv_header(gw_buf *out) {
  gw_buf_puts(out, "tenant,team,window,from,to,start,end,interactions,share\r\n");
}

/* The interactions of a (start, end) cell of the 11 x 11 grid: a kind, or GW_AGG_DOMINANT_KINDS
 * for any kind (a margin, "*"). */
static int64_t feelings_cell(const int64_t *v, int a, int b) {
  int64_t n = 0;
  for (int i = 0; i < GW_AGG_DOMINANT_KINDS; i++) {
    if (a != GW_AGG_DOMINANT_KINDS && i != a)
      continue;
    for (int j = 0; j < GW_AGG_DOMINANT_KINDS; j++)
      if (b == GW_AGG_DOMINANT_KINDS || j == b)
        n += v[GW_AGG_DOMINANT_PAIRS + i * GW_AGG_DOMINANT_KINDS + j];
  }
  return n;
}

size_t gw_agg_feelings_rows(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_totals *t,
                            bool csv) {
  char from[GW_ISO_LEN], to[GW_ISO_LEN];
  gw_window_format_iso(m->from_s, from);
  gw_window_format_iso(m->to_s, to);
  int64_t total = feelings_cell(t->v, GW_AGG_DOMINANT_KINDS, GW_AGG_DOMINANT_KINDS);
  size_t rows = 0;
  for (int a = 0; a <= GW_AGG_DOMINANT_KINDS; a++) {
    for (int b = 0; b <= GW_AGG_DOMINANT_KINDS; b++) {
      int64_t n = feelings_cell(t->v, a, b);
      bool grand = a == GW_AGG_DOMINANT_KINDS && b == GW_AGG_DOMINANT_KINDS;
      if (n == 0 && !grand)
        continue; /* pairs and margins that did not occur are not listed */
      const char *sa = a < GW_AGG_DOMINANT_KINDS ? dominant_names[a] : "*";
      const char *sb = b < GW_AGG_DOMINANT_KINDS ? dominant_names[b] : "*";
      double share = total > 0 ? (double)n / (double)total : 0;
      if (csv) {
        csv_text(out, m->tenant);
        gw_buf_putc(out, ',');
        csv_text(out, m->team);
        gw_buf_putc(out, ',');
        csv_text(out, m->window);
        gw_buf_printf(out, ",%s,%s,%s,%s,%" PRId64, from, to, sa, sb, n);
        csv_num(out, total > 0, share);
        gw_buf_puts(out, "\r\n");
      } else {
        if (rows > 0)
          gw_buf_putc(out, ',');
        gw_buf_puts(out, "{\"tenant\":");
        gw_buf_json_string(out, m->tenant);
        gw_buf_puts(out, ",\"team\":");
        gw_buf_json_string(out, m->team);
        gw_buf_puts(out, ",\"window\":");
        gw_buf_json_string(out, m->window);
        gw_buf_printf(out,
                      ",\"from\":\"%s\",\"to\":\"%s\",\"start\":\"%s\",\"end\":\"%s\","
                      "\"interactions\":%" PRId64 ",\"share\":",
                      from, to, sa, sb, n);
        json_num(out, total > 0, share);
        gw_buf_putc(out, '}');
      }
      rows++;
    }
  }
  return rows;
}
