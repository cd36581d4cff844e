/*
 * gw_agg: the Redis side of the aggregates, without doing any I/O. It turns a decoded
 * ScoredRecord into integer counter increments, decides which buckets a record may still
 * update (retention) or whether it is too late or too far in the future, names the keys
 * (docs/REDIS_SCHEMA.md), builds the one Lua script call per team per flush that applies a
 * batch with dedupe, and turns the summed counters of a window into a summary row (JSON or
 * CSV).
 *
 * Keys of a team share the hash tag {tenant:team}, so one script touches one Redis Cluster
 * slot:
 *   gw:{T:M}:b:<res>:<bucket_start_s>  HASH of counters, EXPIREAT start + retention(res)
 *   gw:{T:M}:seen:<day_start_s>        SET of applied record ids, EXPIREAT day + 401 days
 *   gw:{T}:teams                       SET of team ids of tenant T
 *   gw:tenants                         SET of tenant ids
 *
 * The apply script, for each record of the batch: SADD its id to the seen set of its day, and
 * only if it was new, add its increments to its buckets; then EXPIREAT every key; it replies
 * {applied, duplicates}. Re-running a batch (after a timeout whose outcome is unknown) is
 * therefore harmless. The read script returns HGETALL of each bucket key; the sums are made
 * in C with 64-bit integers (Lua numbers are doubles and would round large sums).
 *
 * Pure: no I/O, any thread. Strings passed in are borrowed; a batch owns its copies.
 */
#ifndef GOODWILL_AGGREGATES_H
#define GOODWILL_AGGREGATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goodwill/buf.h"
#include "goodwill/event.h"
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
  GW_AGG_FIELD_COUNT
} gw_agg_field;

const char *gw_agg_field_name(gw_agg_field f);
/* The field of a name, or -1 when unknown. */
int gw_agg_field_lookup(const char *name, size_t len);

/* Longest tenant, team or record id accepted: the events' bound (goodwill/event.h). */
#define GW_AGG_ID_MAX GW_EVENT_MAX_ID_BYTES
/* Largest batch gw_agg_batch_add accepts. With durations at most GW_EVENT_MAX_DURATION_MS
 * (goodwill/event.h, which gives the arithmetic) every sum the script makes over a batch stays
 * below 2^53, where Lua's doubles stop being exact. */
#define GW_AGG_BATCH_MAX 5000
/* Seen sets outlive the longest bucket retention by one day. */
#define GW_AGG_SEEN_RETENTION_S (401LL * 86400)
#define GW_AGG_KEY_TENANTS      "gw:tenants"

/* One scored record as increments. */
typedef struct gw_agg_record {
  char record_id[GW_AGG_ID_MAX + 1];
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  int64_t event_s; /* occurred_at, unix seconds (floored) */
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

typedef enum gw_agg_verdict {
  GW_AGG_APPLY = 0, /* at least one bucket is retained */
  GW_AGG_TOO_LATE,  /* every bucket of the record has expired */
  GW_AGG_FUTURE,    /* later than now + GW_WINDOW_FUTURE_S */
} gw_agg_verdict;

/* Classifies a record at now_s; retained (may be NULL) says which resolutions it updates. */
gw_agg_verdict gw_agg_classify(int64_t event_s, int64_t now_s, bool retained[GW_RES_COUNT]);
const char *gw_agg_verdict_name(gw_agg_verdict v); /* "apply" | "too_late" | "future" */

/* Key names (appended to out). */
void gw_agg_key_bucket(gw_buf *out, const char *tenant, const char *team, gw_resolution r,
                       int64_t bucket_start_s);
void gw_agg_key_seen(gw_buf *out, const char *tenant, const char *team, int64_t day_start_s);
void gw_agg_key_teams(gw_buf *out, const char *tenant);

/* The Lua sources (appended to out). */
void gw_agg_apply_script(gw_buf *out);
void gw_agg_read_script(gw_buf *out);

/* ------------------------------------------------------------------ apply batches */

/* The pending records of one team, encoded as one apply script call. */
typedef struct gw_agg_batch gw_agg_batch;

int gw_agg_batch_new(gw_agg_batch **out, const char *tenant, const char *team);
void gw_agg_batch_free(gw_agg_batch *b);
void gw_agg_batch_clear(gw_agg_batch *b); /* empties it, keeps tenant/team */

/*
 * Adds a record of this batch's team, classified at now_s, and returns the verdict; only
 * GW_AGG_APPLY records are added. -EINVAL when the record is of another team, -ENOBUFS when
 * the batch holds GW_AGG_BATCH_MAX records.
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
} gw_agg_summary;

void gw_agg_summarize(const gw_agg_totals *t, gw_agg_summary *out);

typedef struct gw_agg_row_meta {
  const char *tenant;
  const char *team;
  const char *window; /* "1h", or "custom" for an explicit range */
  int64_t from_s, to_s;
} gw_agg_row_meta;

/*
 * Leaderboards: the numeric row fields teams can be ranked by (interactions, with_feeling,
 * start_mean, end_mean, change_mean, improved_share, recovered, soured, surveys, promoters,
 * passives, detractors, nps, nps_moe, handle_ms_mean, wait_ms_mean). gw_agg_sort_field gives
 * a field's number for a name, or -EINVAL. gw_agg_rank_compare orders two summaries by that
 * field, descending unless ascending is set; undefined values (null) come last either way,
 * and ties are left to the caller (0).
 */
int gw_agg_sort_field(const char *name);
int gw_agg_rank_compare(const gw_agg_summary *a, const gw_agg_summary *b, int field,
                        bool ascending);

/* A JSON object with the row fields (tenant, team, window, from, to, interactions, ...). */
void gw_agg_row_json(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s);
/* The CSV header line and one CSV line (RFC 4180, CRLF; undefined values are empty). */
void gw_agg_csv_header(gw_buf *out);
void gw_agg_row_csv(gw_buf *out, const gw_agg_row_meta *m, const gw_agg_summary *s);

#endif
