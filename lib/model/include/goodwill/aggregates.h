/*
 * gw_agg: the Redis side of the aggregates, without doing any I/O. It turns a decoded
 * ScoredRecord into integer counter increments, decides which buckets a record may still
 * update (retention) and whether it can still be deduplicated (the dedupe horizon), names the
 * keys (docs/REDIS_SCHEMA.md), builds the one Lua script call per team per flush that applies
 * a batch with dedupe, and turns the summed counters of a window into a summary row (JSON or
 * CSV).
 *
 * Keys of a team share the hash tag {tenant:team}, so one script touches one Redis Cluster
 * slot:
 *   gw:{T:M}:b:<res>:<bucket_start_s>  HASH of counters, EXPIREAT start + retention(res)
 *   gw:{T:M}:dedupe:<day_start_s>      SET of the ids of the records applied that were received
 *                                      (received_at) that UTC day, EXPIREAT day + 1 day +
 *                                      the replay window (gw_agg_horizon)
 *   gw:{T}:teams                       SET of team ids of tenant T
 *   gw:tenants                         SET of tenant ids
 *
 * The apply script, for each record of the batch: looks its id up in the dedupe sets of its
 * arrival day and of the days around it that the client retry window covers, and only if it is
 * in none, adds it to its arrival day's set and its increments to its buckets; it replies
 * {applied, duplicates}. Re-running a batch (after a timeout whose outcome is unknown) is
 * therefore harmless. The read script returns HGETALL of each bucket key; the sums are made
 * in C with 64-bit integers (Lua numbers are doubles and would round large sums).
 *
 * Pure: no I/O, any thread (callers pass the time). Strings passed in are borrowed; a batch
 * owns its copies.
 */
#ifndef GOODWILL_AGGREGATES_H
#define GOODWILL_AGGREGATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goodwill/buf.h"
#include "goodwill/event.h"
#include "goodwill/feeling.h"
#include "goodwill/window.h"
#include "goodwill/v1/scored.pb-c.h"

/* The counters of a bucket hash; the field names are in docs/REDIS_SCHEMA.md. */
typedef enum gw_agg_field {
  GW_AGG_N,
  GW_AGG_FELT, /* interactions with a start and an end feeling (customer words) */
  GW_AGG_START_SUM,
  GW_AGG_END_SUM,
  GW_AGG_CHANGE_SUM,
  GW_AGG_START_SQ,
  GW_AGG_END_SQ,
  GW_AGG_CHANGE_SQ,
  GW_AGG_START_END,
  GW_AGG_IMPROVED,
  GW_AGG_WORSENED,
  GW_AGG_RECOVERED,
  GW_AGG_SOURED,
  GW_AGG_START_NEG,
  GW_AGG_START_NEU,
  GW_AGG_START_POS,
  GW_AGG_END_NEG,
  GW_AGG_END_NEU,
  GW_AGG_END_POS,
  GW_AGG_T_NN, /* transitions start -> end: n(egative), u (neutral), p(ositive) */
  GW_AGG_T_NU,
  GW_AGG_T_NP,
  GW_AGG_T_UN,
  GW_AGG_T_UU,
  GW_AGG_T_UP,
  GW_AGG_T_PN,
  GW_AGG_T_PU,
  GW_AGG_T_PP,
  GW_AGG_HANDLE_SUM, /* ms */
  GW_AGG_HANDLE_SQ,  /* s^2 (seconds, rounded: ms^2 could overflow 64 bits in a day bucket) */
  GW_AGG_WAIT_SUM,   /* ms */
  GW_AGG_WAIT_SQ,    /* s^2 */
  GW_AGG_TRANSFERS_SUM,
  GW_AGG_RESOLVED,
  GW_AGG_RESOLVED_KNOWN,
  GW_AGG_EMPATHY_SUM,
  GW_AGG_EMPATHY_SQ,
  GW_AGG_CHANGE_EMPATHY, /* sum of change_milli * empathy_milli */
  GW_AGG_CHANGE_HANDLE,  /* sum of change_milli * handle_s */
  GW_AGG_S,              /* surveys */
  GW_AGG_PROMOTERS,
  GW_AGG_PASSIVES,
  GW_AGG_DETRACTORS,
  GW_AGG_LTR_SUM,
  GW_AGG_LTR_SQ,
  GW_AGG_COMMENT_N,
  GW_AGG_COMMENT_SUM,
  GW_AGG_COMMENT_SQ,
  /* The change (milli) summed per start polarity, for the mean change of the interactions that
   * began negative, neutral, positive: change_neg, change_neu, change_pos. */
  GW_AGG_CHANGE_NEG,
  GW_AGG_CHANGE_NEU,
  GW_AGG_CHANGE_POS,
  /* The dominant feelings at the start and at the end, one counter per pair (start, end):
   * f_<start>_<end>, GW_AGG_DOMINANT_PAIRS + start * GW_AGG_DOMINANT_KINDS + end, each of them a
   * gw_feeling_category or GW_AGG_DOMINANT_NONE. Only the pairs that occur are written. */
  GW_AGG_DOMINANT_PAIRS,
  GW_AGG_FIELD_COUNT = GW_AGG_DOMINANT_PAIRS + (GW_FEELING_COUNT + 1) * (GW_FEELING_COUNT + 1)
} gw_agg_field;

/* The dominant feeling of an interaction's start or end: a gw_feeling_category, or none. */
#define GW_AGG_DOMINANT_NONE  GW_FEELING_COUNT
#define GW_AGG_DOMINANT_KINDS (GW_FEELING_COUNT + 1)
/* "anger" .. "delight" (gw_feeling_category_name), "none". */
const char *gw_agg_dominant_name(int kind);

/*
 * The dominant feeling of a list of intensities (a ScoredInteraction's start_feelings or
 * end_feelings): the category of the highest intensity; between equal intensities the first in
 * gw_feeling_category order (anger, frustration, confusion, anxiety, sadness, gratitude, relief,
 * satisfaction, delight); GW_AGG_DOMINANT_NONE when no known category has an intensity above 0.
 * Categories this build does not know (a newer scorer's) are ignored.
 */
int gw_agg_dominant(Goodwill__V1__FeelingIntensity *const *items, size_t n);

const char *gw_agg_field_name(gw_agg_field f);
/* The field of a name, or -1 when unknown. */
int gw_agg_field_lookup(const char *name, size_t len);

/* Longest tenant, team or record id accepted: the events' bound (goodwill/event.h). */
#define GW_AGG_ID_MAX GW_EVENT_MAX_ID_BYTES
/* Largest batch gw_agg_batch_add accepts. With durations at most GW_EVENT_MAX_DURATION_MS
 * (goodwill/event.h, which gives the arithmetic) every sum the script makes over a batch stays
 * below 2^53, where Lua's doubles stop being exact. */
#define GW_AGG_BATCH_MAX   5000
#define GW_AGG_KEY_TENANTS "gw:tenants"

/* ------------------------------------------------------------------ the dedupe horizon */

/*
 * Dedupe by arrival day. Every delivery of a record carries the same received_at (a Kafka
 * replay, a scorer replay: the stamp is in the input record), and a client's retry of an event
 * (same event id, so the same record id) is received within the client retry window C of the
 * first attempt. A record is applied at most D = 2 * K after it was received, K being the
 * retention of the Kafka topics: it may wait out goodwill.interactions.v1's in a scorer backlog
 * and then goodwill.scored.v1's in an aggregator backlog. So:
 *
 *   - the apply script adds a record's id to the set of its arrival day A (the UTC day of
 *     received_at) and looks it up in the sets of the days A - L .. A + L, L = ceil(C / 1 day):
 *     two deliveries received at most C apart count once, whichever is applied first (Kafka
 *     orders only within a partition, and a retry may travel another one);
 *   - the set of day A expires at A + 1 day + R, R = D + C the replay window: the last delivery
 *     that may need it is received before A + 1 day + C and applied within D of that;
 *   - a record can no longer be deduplicated once one of the sets that may hold an earlier
 *     delivery is gone: from floor_day(received - C) + 1 day + R on (gw_agg_dedupe_deadline_s).
 *     Applied later, it could count twice, so the aggregator sends it to the DLQ (too_late) and
 *     logs a configuration error: Kafka kept it longer than --kafka-retention says.
 *
 * Memory: the sets hold the ids received over the last R + 1 day (16 days by default);
 * docs/BENCHMARKS.md measures the bytes per id.
 */
typedef struct gw_agg_horizon {
  int64_t kafka_retention_s;     /* K: the longest a record stays in either topic, 1 h .. 14 d */
  int64_t client_retry_window_s; /* C: first attempt to last retry of an event, 0 .. 7 d */
} gw_agg_horizon;

#define GW_AGG_KAFKA_RETENTION_DEFAULT_S     (7LL * 86400)
#define GW_AGG_CLIENT_RETRY_WINDOW_DEFAULT_S (1LL * 86400)
#define GW_AGG_KAFKA_RETENTION_MIN_S         3600LL

/* K 7 days, C 1 day. */
void gw_agg_horizon_default(gw_agg_horizon *h);
/* 0, or -EINVAL with err naming the setting, when K or C is outside its range above (their
 * maxima are GW_KAFKA_RETENTION_MAX_MS and GW_CLIENT_RETRY_WINDOW_MAX_MS of goodwill/event.h,
 * which ingest's lateness bound leaves room for). */
int gw_agg_horizon_check(const gw_agg_horizon *h, char *err, size_t errlen);
/* R = 2 K + C. */
int64_t gw_agg_replay_window_s(const gw_agg_horizon *h);
/* L = ceil(C / 1 day): days looked up on each side of the arrival day. */
int gw_agg_lookback_days(const gw_agg_horizon *h);
/* The EXPIREAT of the dedupe set of the day starting at day_start_s: day + 1 day + R. */
int64_t gw_agg_dedupe_expire_s(const gw_agg_horizon *h, int64_t day_start_s);
/* A record received at received_s can be deduplicated while now < this. */
int64_t gw_agg_dedupe_deadline_s(const gw_agg_horizon *h, int64_t received_s);

/* ------------------------------------------------------------------ records */

/* One scored record as increments. */
typedef struct gw_agg_record {
  char record_id[GW_AGG_ID_MAX + 1];
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  int64_t event_s; /* occurred_at, unix seconds (floored) */
  /* received_at, unix seconds (floored); 0 when the record has none (written by a scorer
   * older than ScoredInteraction.received_at_ms): the caller then sets the best it knows, and
   * gw_agg_classify and gw_agg_batch_add take now_s for a 0. */
  int64_t received_s;
  int64_t inc[GW_AGG_FIELD_COUNT];
} gw_agg_record;

/*
 * Fills out from a decoded record. -EINVAL with the field and the reason in err for a record
 * that can never be applied (no body, empty or malformed ids, no occurred_at, valences outside
 * -1000..1000, likelihood above 10, durations above GW_EVENT_MAX_DURATION_MS): the caller sends
 * it to the DLQ.
 */
int gw_agg_record_from_scored(const Goodwill__V1__ScoredRecord *rec, gw_agg_record *out, char *err,
                              size_t errlen);

/*
 * Decodes the value of a goodwill.scored.v1 record (a ScoredRecord protobuf) into out:
 * -EBADMSG when the bytes are not a ScoredRecord ("undecodable"), -EINVAL as
 * gw_agg_record_from_scored ("invalid"), with the reason in err.
 */
int gw_agg_record_decode(const void *value, size_t len, gw_agg_record *out, char *err,
                         size_t errlen);

/* True when s is a valid tenant or team id: 1..GW_AGG_ID_MAX of [A-Za-z0-9._@-]. */
bool gw_agg_valid_id(const char *s);

/*
 * What the aggregator may do with a record at now_s. Event time is not judged against now_s
 * (ingest or the scorer judged it against received_at, once): a record is applied to every
 * bucket of its event time still retained, future buckets included. Both late verdicts go to
 * the DLQ as "too_late"; within the guarantees of goodwill/event.h neither happens, so each is
 * counted and logged as what it is, a delivery later than --kafka-retention allows.
 */
typedef enum gw_agg_verdict {
  GW_AGG_APPLY = 0,    /* dedupe possible and at least one bucket retained */
  GW_AGG_TOO_LATE,     /* every bucket of the record has expired */
  GW_AGG_PAST_HORIZON, /* received too long ago to be deduplicated (gw_agg_dedupe_deadline_s) */
} gw_agg_verdict;

/* Classifies a record at now_s under h (NULL: the defaults); retained (may be NULL) says which
 * resolutions it updates. */
gw_agg_verdict gw_agg_classify(const gw_agg_record *r, const gw_agg_horizon *h, int64_t now_s,
                               bool retained[GW_RES_COUNT]);
const char *gw_agg_verdict_name(gw_agg_verdict v); /* "apply" | "too_late" */

/* Key names (appended to out). */
void gw_agg_key_bucket(gw_buf *out, const char *tenant, const char *team, gw_resolution r,
                       int64_t bucket_start_s);
/* The dedupe set of the records received on the day starting at day_start_s. */
void gw_agg_key_seen(gw_buf *out, const char *tenant, const char *team, int64_t day_start_s);
void gw_agg_key_teams(gw_buf *out, const char *tenant);
/* gw:applied:<topic>:<partition>: the applied mark of a partition (lib/service/aggregator/
 * marks.h, docs/REDIS_SCHEMA.md). */
void gw_agg_key_applied(gw_buf *out, const char *topic, int32_t partition);

/* The Lua sources (appended to out). */
void gw_agg_apply_script(gw_buf *out);
void gw_agg_read_script(gw_buf *out);

/* ------------------------------------------------------------------ apply batches */

/* The pending records of one team, encoded as one apply script call. */
typedef struct gw_agg_batch gw_agg_batch;

/* A batch of a team's records under the dedupe horizon h (copied; NULL: the defaults). */
int gw_agg_batch_new(gw_agg_batch **out, const char *tenant, const char *team,
                     const gw_agg_horizon *h);
void gw_agg_batch_free(gw_agg_batch *b);
void gw_agg_batch_clear(gw_agg_batch *b); /* empties it, keeps tenant/team and horizon */

/*
 * Adds a record of this batch's team, classified at now_s (gw_agg_classify), and returns the
 * verdict; only GW_AGG_APPLY records are added. -EINVAL when the record is of another team,
 * -ENOBUFS when the batch holds GW_AGG_BATCH_MAX records.
 */
int gw_agg_batch_add(gw_agg_batch *b, const gw_agg_record *r, int64_t now_s);
size_t gw_agg_batch_records(const gw_agg_batch *b);

/* The script call: KEYS and ARGV, valid until the batch is changed or freed. */
typedef struct gw_agg_call {
  int nkeys;
  const char *const *keys;
  const size_t *keylens;
  int nargs;
  const char *const *args;
  const size_t *arglens;
} gw_agg_call;
void gw_agg_batch_call(gw_agg_batch *b, gw_agg_call *out);

/* ------------------------------------------------------------------ reading */

typedef struct gw_agg_totals {
  int64_t v[GW_AGG_FIELD_COUNT];
} gw_agg_totals;

/*
 * Adds one bucket's HGETALL reply (n strings: field, value, field, value, ...). Unknown
 * fields are ignored (a newer writer may add some). -EINVAL for an odd n or a value that is
 * not a decimal integer.
 */
int gw_agg_totals_add_hash(gw_agg_totals *t, const char *const *strs, const size_t *lens, size_t n);

typedef struct gw_agg_summary {
  int64_t interactions, recovered, soured;
  int64_t with_feeling; /* interactions the feeling means are over */
  int64_t surveys, promoters, passives, detractors;
  bool has_feeling;                         /* false: the feeling means are undefined (null) */
  double start_mean, end_mean, change_mean; /* valence, -1..1, over with_feeling */
  double improved_share;                    /* 0..1, of with_feeling */
  bool has_interactions;                    /* false: the time means are undefined (null) */
  double handle_ms_mean, wait_ms_mean;
  bool has_surveys; /* false: nps and nps_moe are undefined (null) */
  double nps;       /* -100..100 */
  double nps_moe;   /* margin of error at 95 %, NPS points */

  /* What the buckets hold beyond the means above (docs/API-read.md gives every formula). */
  int64_t transitions[9];             /* t_nn .. t_pp: start polarity -> end polarity */
  double transition_share[9];         /* t_nn .. t_pp / with_feeling (has_feeling) */
  double recovered_rate, soured_rate; /* of with_feeling (has_feeling) */
  double empathy_mean;                /* agent empathy 0..1, over interactions */
  double transfers_mean;              /* over interactions */
  double survey_response_rate;        /* surveys / interactions of the same range */
  bool has_resolution;                /* false: resolution_rate is undefined (null) */
  int64_t resolved_known;             /* interactions whose resolved flag was given */
  double resolution_rate;             /* resolved / resolved_known */
  /* Mean change of the interactions that began negative, neutral, positive (valence, -2..2);
   * undefined without such interactions, or when the range holds interactions counted before
   * the per-polarity sums were kept (dominant_n < with_feeling). */
  bool has_change_from[3];
  double change_mean_from[3];
  /* Interactions whose dominant feelings were counted: with_feeling, less those of buckets
   * written before these counters were. Not a row column (gw_agg_feelings_rows gives it as
   * the "*" -> "*" row); it says whether the change by start polarity is defined. */
  int64_t dominant_n;
  /* The sum of every interaction's change over the range (milli), and the running balance: the
   * same sum from the start of a series up to the end of this row (gw_agg_summarize sets it to
   * change_sum_milli; a series adds the points before). */
  int64_t change_sum_milli, change_balance_milli;
  double change_sum; /* change_sum_milli / 1000, for ranking */
} gw_agg_summary;

/* Fills out from t; out keeps no pointer into t. */
void gw_agg_summarize(const gw_agg_totals *t, gw_agg_summary *out);

typedef struct gw_agg_row_meta {
  const char *tenant;
  const char *team;
  const char *window; /* "1h", or "custom" for an explicit range */
  int64_t from_s, to_s;
} gw_agg_row_meta;

/*
 * Leaderboards: the numeric row fields teams can be ranked by (GW_AGG_SORT_FIELDS_TEXT).
 * gw_agg_sort_field gives a field's number for a name, or -EINVAL. gw_agg_rank_compare orders
 * two summaries by that field, descending unless ascending is set; undefined values (null) come
 * last either way, and ties are left to the caller (0).
 */
#define GW_AGG_SORT_FIELDS_TEXT                                                                    \
  "interactions, with_feeling, start_mean, end_mean, change_mean, improved_share, recovered, "     \
  "soured, surveys, promoters, passives, detractors, nps, nps_moe, handle_ms_mean, wait_ms_mean, " \
  "recovered_rate, soured_rate, empathy_mean, resolution_rate, transfers_mean, "                   \
  "survey_response_rate, change_mean_from_neg, change_mean_from_neu, change_mean_from_pos, "       \
  "change_sum"
int gw_agg_sort_field(const char *name);
int gw_agg_rank_compare(const gw_agg_summary *a, const gw_agg_summary *b, int field,
                        bool ascending);

/* A JSON object with the row fields (tenant, team, window, from, to, interactions, ...). */
void gw_agg_row_json(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s);
/* The CSV header line and one CSV line (RFC 4180, CRLF; undefined values are empty). */
void gw_agg_csv_header(gw_buf *out);
void gw_agg_row_csv(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s);

/*
 * The dominant feelings of a range (GET /v1/teams/{team}/feelings, docs/API-read.md): flat rows
 * of the columns tenant, team, window, from, to, start, end, interactions, share. One row per
 * pair of dominant feelings (start, end) that occurred, start in the order of
 * gw_agg_dominant_name then end; after a start's pairs, its margin (start, "*"): the
 * interactions that began so, whatever the end; then the end margins ("*", end); last the total
 * ("*", "*"), dominant_n, always listed. share = interactions / dominant_n (null, or empty in
 * CSV, when dominant_n is 0). Rows of 0 interactions other than the total are not listed.
 * JSON: the row objects separated by commas (the caller writes the brackets); CSV: one CRLF
 * line each, after gw_agg_feelings_csv_header. Returns the rows written.
 */
void gw_agg_feelings_csv_header(gw_buf *out);
size_t gw_agg_feelings_rows(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_totals *t,
                            bool csv);

#endif
