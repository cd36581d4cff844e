/*
 * gw_open_interactions: the live interactions a scorer has seen Turn events of and no
 * InteractionClosed yet, per input partition. goodwill-scorer buffers each Turn here with the
 * Kafka offset it came from; when the close arrives it takes the interaction's turns (sorted
 * by seq, client retries marked duplicate) and scores them together.
 *
 * Two clocks. Event time is each partition's stream time: the largest occurred_at_ms seen in
 * it. Processing time is the caller's monotonic clock (now_ms, uv_now in the scorer), passed to
 * every call that may expire or remember something; it must not go back. An interaction
 * expires (GW_OPEN_EXPIRED_IDLE) when its partition's stream time is more than idle_timeout_ms
 * past its last turn's event time and its last turn was added at least grace_ms of processing
 * time ago (so a backfill of old turns into a partition whose stream time is today is not
 * expired on arrival), or (GW_OPEN_EXPIRED_QUIET) when no turn was added to it for more than
 * idle_timeout_ms of processing time (a partition that stops receiving records never moves its
 * stream time).
 *
 * Bounds: max_turns turns and max_bytes bytes over all partitions. The bytes are what the
 * buffer holds for its data: per interaction its struct, its ids and its array of turn structs
 * (at capacity), per turn its text, Kafka key and value, per tenant its struct and id; malloc's
 * own overhead and the hash tables' slots are not counted. Over a bound the victim
 * (GW_OPEN_EXPIRED_LIMIT) is the least recently active interaction of the tenant that holds the
 * most of what is over (bytes, or turns), so a tenant that floods the buffer with interactions
 * that never close loses its own, and a tenant never loses one while another holds more.
 *
 * Stray turns: every close taken is remembered (partition, tenant, interaction, the close's
 * offset) for idle_timeout_ms of processing time, at most max_closed of them (the oldest are
 * forgotten first). A turn for a remembered interaction is refused (-EALREADY) rather than
 * opening an interaction that no close will ever end and holding its offset until it expires.
 *
 * Nothing here is durable on purpose: the scorer keeps the offsets of buffered turns in
 * progress (gw_offsets), so after a crash or a rebalance the consumer reads them again and
 * this buffer is rebuilt from the input topic. What is remembered of closes is rebuilt only as
 * far as the replay reads closes again.
 *
 * Pure: no I/O, no libuv, no Kafka; loop thread only (not thread-safe). Ownership: every
 * string and byte range passed in is copied; a gw_open_batch handed out is owned by the caller
 * and released with gw_open_batch_free. Allocation failure aborts (the sizes are bounded by
 * the event limits, max_turns, max_bytes and max_closed).
 */
#ifndef GOODWILL_OPEN_INTERACTIONS_H
#define GOODWILL_OPEN_INTERACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_open_interactions gw_open_interactions;

#define GW_OPEN_DEFAULT_IDLE_MS    (6 * 3600 * 1000LL)
#define GW_OPEN_DEFAULT_GRACE_MS   (60 * 1000LL)
#define GW_OPEN_DEFAULT_MAX_TURNS  200000u
#define GW_OPEN_DEFAULT_MAX_BYTES  ((size_t)256 << 20)
#define GW_OPEN_DEFAULT_MAX_CLOSED 100000u

typedef struct gw_open_interactions_config {
  int64_t idle_timeout_ms; /* after the last turn, in event and in processing time; 0: 6 h */
  int64_t grace_ms;        /* processing time after the last turn before event-time expiry;
                              0: 60 s; at most idle_timeout_ms */
  size_t max_turns;        /* buffered turns over all partitions; 0: 200000 */
  size_t max_bytes;        /* buffered bytes over all partitions; 0: 256 MiB */
  size_t max_closed;       /* closes remembered for stray turns; 0: 100000 */
} gw_open_interactions_config;

/* One buffered turn: its fields, and the Kafka record it came from. */
typedef struct gw_open_turn {
  int64_t input_offset;   /* offset of the Turn record in its partition */
  uint32_t seq;           /* position within the interaction */
  int speaker;            /* Goodwill__V1__Speaker value */
  uint64_t offset_ms;     /* time since the interaction started */
  int64_t occurred_at_ms; /* event time of the Turn event */
  char *text;             /* UTF-8, NUL-terminated (owned by the batch once handed out) */
  void *key, *value;      /* the original Kafka record, for the DLQ (may be NULL) */
  size_t key_len, value_len;
  bool duplicate; /* set in a batch: an earlier turn has the same seq, speaker and text */
} gw_open_turn;

typedef enum gw_open_expiry {
  GW_OPEN_EXPIRED_IDLE,  /* event time: stream time past the last turn by idle_timeout_ms */
  GW_OPEN_EXPIRED_LIMIT, /* a bound was exceeded; least recently active of the largest tenant */
  GW_OPEN_EXPIRED_QUIET, /* processing time: no turn added for idle_timeout_ms */
} gw_open_expiry;

typedef enum gw_open_bound {
  GW_OPEN_BOUND_BYTES, /* max_bytes */
  GW_OPEN_BOUND_TURNS, /* max_turns */
} gw_open_bound;

/* The turns of one interaction, taken out of the buffer. */
typedef struct gw_open_batch {
  int32_t partition;
  char *tenant_id, *interaction_id;
  gw_open_turn *turns; /* sorted by seq, then by input offset */
  size_t nturns;
  /* From gw_open_interactions_expire_next only: */
  gw_open_expiry reason;
  int64_t idle_ms; /* IDLE: stream time minus the last turn's event time; QUIET: processing
                      time since the last turn was added */
  /* LIMIT: the bound exceeded, and what the buffer and the interaction's tenant (the one that
   * held the most of what was over) held when it was chosen, this interaction included. */
  gw_open_bound bound;
  size_t total_bytes, total_turns, tenant_bytes, tenant_turns;
} gw_open_batch;

int gw_open_interactions_new(const gw_open_interactions_config *cfg, gw_open_interactions **out);
void gw_open_interactions_free(gw_open_interactions *o);

/*
 * Buffers a copy of t (text, key and value are copied; duplicate is ignored) for the
 * interaction (tenant_id, interaction_id) of the partition, opening it when needed, and
 * advances the partition's stream time to t->occurred_at_ms if later. now_ms is the processing
 * time. Returns 0, -EALREADY when the interaction's close was taken recently (the turn is not
 * buffered; gw_open_interactions_closed_at says where), or -EINVAL (NULL argument). Exceeding
 * a bound is not an error: see gw_open_interactions_expire_next.
 */
int gw_open_interactions_add_turn(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                                  const char *interaction_id, const gw_open_turn *t,
                                  int64_t now_ms);

/* Advances the partition's stream time to occurred_at_ms if later (any event counts). */
void gw_open_interactions_observe(gw_open_interactions *o, int32_t partition,
                                  int64_t occurred_at_ms);

/*
 * The interaction's close, read at close_offset: takes its turns out of the buffer into *out
 * (sorted by seq, then by offset) and remembers the close, whether or not turns were buffered,
 * so that a later turn of it is refused. A turn with the same seq, speaker and text as an
 * earlier one (a client retry) is flagged duplicate; turns sharing a seq but not their content
 * are all kept (seq is optional in JSON, so a client that never sends it has every turn at
 * seq 0, in arrival order). Returns true, or false with *out zeroed when the interaction has no
 * buffered turns.
 */
bool gw_open_interactions_take(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                               const char *interaction_id, int64_t close_offset, int64_t now_ms,
                               gw_open_batch *out);

/* Whether a close of the interaction is remembered; if so, and close_offset is not NULL, the
 * offset it was read at. */
bool gw_open_interactions_closed_at(const gw_open_interactions *o, int32_t partition,
                                    const char *tenant_id, const char *interaction_id,
                                    int64_t *close_offset);

/* For expire_next: check the event-time rule on every partition. */
#define GW_OPEN_ALL_PARTITIONS (-1)

/*
 * Takes one interaction that must be expired at processing time now_ms, in this order: while
 * over max_bytes, the least recently active interaction of the tenant holding the most bytes,
 * then while over max_turns, that of the tenant holding the most turns (GW_OPEN_EXPIRED_LIMIT,
 * any partition); the least recently active interaction of any partition if no turn was added
 * to it for more than idle_timeout_ms (GW_OPEN_EXPIRED_QUIET); the least recently active
 * interaction of the given partition (or of each, with GW_OPEN_ALL_PARTITIONS) if its last turn
 * is more than idle_timeout_ms older than the stream time and was added at least grace_ms ago
 * (GW_OPEN_EXPIRED_IDLE; only that one is looked at, so one that is not idle in event time
 * keeps those behind it until it leaves or the processing-time rule takes them). Returns true
 * with *out filled, or false when nothing is due. Call it until it returns false. Closes
 * remembered for longer than idle_timeout_ms are forgotten.
 */
bool gw_open_interactions_expire_next(gw_open_interactions *o, int32_t partition, int64_t now_ms,
                                      gw_open_batch *out);

/* Drops every open interaction of the partition (revoked, or read again from an earlier
 * offset), its stream time and the closes remembered for it. Returns the number of turns
 * dropped. */
size_t gw_open_interactions_drop_partition(gw_open_interactions *o, int32_t partition);

/* Interactions, turns and bytes currently buffered, over all partitions. */
size_t gw_open_interactions_count(const gw_open_interactions *o);
size_t gw_open_interactions_turns(const gw_open_interactions *o);
size_t gw_open_interactions_bytes(const gw_open_interactions *o);

/* Closes currently remembered. */
size_t gw_open_interactions_closed_count(const gw_open_interactions *o);

/* Processing time since the first turn of the longest open interaction was added (0 when
 * nothing is open): how long the oldest buffered offset has been held. */
int64_t gw_open_interactions_oldest_age_ms(const gw_open_interactions *o, int64_t now_ms);

/* Releases what a batch owns (texts, keys, values, the arrays); the batch is zeroed. */
void gw_open_batch_free(gw_open_batch *b);

#endif
