/*
 * gw_open_interactions: the live interactions a scorer has seen Turn events of and no
 * InteractionClosed yet, per input partition. goodwill-scorer buffers each Turn here with the
 * Kafka offset it came from; when the close arrives it takes the interaction's turns (sorted
 * by seq, client retries marked duplicate) and scores them together. Interactions
 * that never close are expired by event time, never by the clock: each partition has a stream
 * time (the largest occurred_at_ms seen in it), and an interaction whose last turn happened
 * more than idle_timeout_ms before that is expired. A bound on buffered turns over all
 * partitions expires the least recently active interaction when it is exceeded.
 *
 * Nothing here is durable on purpose: the scorer keeps the offsets of buffered turns in
 * progress (gw_offsets), so after a crash or a rebalance the consumer reads them again and
 * this buffer is rebuilt from the input topic.
 *
 * Pure: no I/O, no libuv, no Kafka; loop thread only (not thread-safe). Ownership: every
 * string and byte range passed in is copied; a gw_open_batch handed out is owned by the caller
 * and released with gw_open_batch_free. Allocation failure aborts (the sizes are bounded by
 * the event limits and max_turns).
 */
#ifndef GOODWILL_OPEN_INTERACTIONS_H
#define GOODWILL_OPEN_INTERACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_open_interactions gw_open_interactions;

typedef struct gw_open_interactions_config {
  int64_t idle_timeout_ms; /* event time after the last turn; 0: 6 h */
  size_t max_turns;        /* buffered turns over all partitions; 0: 200000 */
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
  GW_OPEN_EXPIRED_IDLE,  /* no InteractionClosed within idle_timeout_ms of the last turn */
  GW_OPEN_EXPIRED_LIMIT, /* max_turns was exceeded and it was the least recently active */
} gw_open_expiry;

/* The turns of one interaction, taken out of the buffer. */
typedef struct gw_open_batch {
  int32_t partition;
  char *tenant_id, *interaction_id;
  gw_open_turn *turns; /* sorted by seq, then by input offset */
  size_t nturns;
  gw_open_expiry reason; /* for gw_open_interactions_expire_next only */
} gw_open_batch;

int gw_open_interactions_new(const gw_open_interactions_config *cfg, gw_open_interactions **out);
void gw_open_interactions_free(gw_open_interactions *o);

/*
 * Buffers a copy of t (text, key and value are copied; duplicate is ignored) for the
 * interaction (tenant_id, interaction_id) of the partition, opening it when needed, and
 * advances the partition's stream time to t->occurred_at_ms if later. Returns 0 or -EINVAL
 * (NULL argument). Exceeding max_turns is not an error: see gw_open_interactions_expire_next.
 */
int gw_open_interactions_add_turn(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                                  const char *interaction_id, const gw_open_turn *t);

/* Advances the partition's stream time to occurred_at_ms if later (any event counts). */
void gw_open_interactions_observe(gw_open_interactions *o, int32_t partition,
                                  int64_t occurred_at_ms);

/*
 * Takes the interaction's turns out of the buffer into *out (sorted by seq, then by offset).
 * A turn with the same seq, speaker and text as an earlier one (a client retry) is flagged
 * duplicate; turns sharing a seq but not their content are all kept (seq is optional in JSON,
 * so a client that never sends it has every turn at seq 0, in arrival order). Returns true,
 * or false with *out zeroed when the interaction has no buffered turns.
 */
bool gw_open_interactions_take(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                               const char *interaction_id, gw_open_batch *out);

/*
 * Takes one interaction that must be expired: while the buffered turns exceed max_turns the
 * least recently active interaction of any partition (GW_OPEN_EXPIRED_LIMIT); otherwise an
 * interaction of the given partition whose last turn is older than its stream time minus the
 * idle timeout (GW_OPEN_EXPIRED_IDLE; interactions are checked in order of last activity, so
 * the result depends only on the partition's records). Returns true with *out filled, or
 * false when nothing is due. Call it until it returns false.
 */
bool gw_open_interactions_expire_next(gw_open_interactions *o, int32_t partition,
                                      gw_open_batch *out);

/* Drops every open interaction of the partition (revoked, or read again from an earlier
 * offset) and its stream time. Returns the number of turns dropped. */
size_t gw_open_interactions_drop_partition(gw_open_interactions *o, int32_t partition);

/* Interactions and turns currently buffered, over all partitions. */
size_t gw_open_interactions_count(const gw_open_interactions *o);
size_t gw_open_interactions_turns(const gw_open_interactions *o);

/* Releases what a batch owns (texts, keys, values, the arrays); the batch is zeroed. */
void gw_open_batch_free(gw_open_batch *b);

#endif
