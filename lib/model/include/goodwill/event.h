/*
 * gw_event: InteractionEvents as clients send them. Parses request bodies (one JSON object,
 * a JSON array of objects, NDJSON lines, or a protobuf InteractionEventBatch) into
 * goodwill.v1.InteractionEvent, validates
 * events from any source with one set of rules (goodwill-ingest and goodwill-scorer apply the
 * same checks), assigns deterministic event ids, and builds the Kafka record.
 *
 * Pure: no I/O, any thread. The JSON schema is documented in docs/API.md.
 *
 * Errors are per item: the 0-based index of the item in the body, the 1-based line (NDJSON:
 * the line of the item; JSON: the line where a syntax error was found, else 0), the field as a
 * dotted path ("closed.transcript[3].speaker", "" for the whole item) and the reason in words
 * ("missing", "must be a string", "out of range 0..10: 11", "invalid UTF-8", ...). Valid items
 * of a body are kept even when other items are rejected.
 */
#ifndef GOODWILL_EVENT_H
#define GOODWILL_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "goodwill/buf.h"
#include "goodwill/v1/events.pb-c.h"

/*
 * The one definition of what an event may hold and of when it may have happened: the hard
 * bounds every stage accepts. goodwill-ingest's flags (--max-text, --max-turns) may only
 * tighten them (gw_event_limits_check); goodwill-scorer validates what it reads from Kafka
 * against these bounds themselves (gw_event_limits_hard), and the aggregator's own checks are
 * these constants too, so that an event ingest answered 2xx for is accepted by every later
 * stage (docs/API-ingest.md, "Limits and time"; docs/RELIABILITY.md).
 */
#define GW_EVENT_MAX_TURNS      2000  /* turns of one transcript */
#define GW_EVENT_MAX_TEXT_BYTES 16384 /* bytes of one turn's text or a survey comment */
#define GW_EVENT_MAX_ID_BYTES   128   /* event, tenant, team, agent and interaction ids */
/*
 * Durations and offsets (handle_ms, wait_ms, talk_ms, hold_ms, offset_ms): at most 7 days.
 * The aggregator sums a batch of up to GW_AGG_BATCH_MAX (5000) records in Lua, whose numbers
 * are doubles, exact only below 2^53 (about 9.0e15). The largest of those sums is handle_sq or
 * wait_sq, the squares of the durations in seconds: 5000 * 604800^2 = 1.8e15 at 7 days, safely
 * below; 30 days would be 3.4e16, over. The same bound keeps a busy day bucket's 64-bit
 * counters far from overflow (a million records of 7 days: 3.7e17 s^2).
 */
#define GW_EVENT_MAX_DURATION_MS (7LL * 24 * 3600 * 1000)
#define GW_EVENT_MAX_TRANSFERS   1000

/*
 * Time is judged once, against the time the event was received (received_at_ms): by ingest,
 * which stamps it, or, for an event a producer wrote to Kafka without it, by the scorer, which
 * stamps it from its own clock first. No later stage judges event time against its own clock.
 *
 * occurred_at may lie at most GW_EVENT_MAX_FUTURE_MS after received_at (clock skew of the
 * client) and at most GW_EVENT_MAX_PAST_MS before it. The past bound is chosen so that every
 * bucket a record updates is still retained when the aggregator applies it:
 *
 *   - the aggregator applies a record at most GW_EVENT_MAX_DELIVERY_DELAY_MS after it was
 *     received: it may wait out the retention of goodwill.interactions.v1 in a scorer backlog,
 *     and then that of goodwill.scored.v1 in an aggregator backlog, each at most
 *     GW_KAFKA_RETENTION_MAX_MS (the aggregator's --kafka-retention may not say more);
 *   - the 1d bucket of occurred_at starts up to a day before it and is kept
 *     GW_EVENT_DAY_BUCKET_RETENTION_MS (window.h's 400 days);
 *
 * so received_at - occurred_at <= 400 d - 1 d - 2 * 14 d = 371 days guarantees the day bucket
 * is still there at the latest possible apply. The aggregator sends a record to the DLQ as
 * too_late only when none of its buckets is retained, which within these bounds cannot happen.
 */
#define GW_DAY_MS                        (24LL * 3600 * 1000)
#define GW_EVENT_MAX_FUTURE_MS           (5LL * 60 * 1000)
#define GW_KAFKA_RETENTION_MAX_MS        (14 * GW_DAY_MS)
#define GW_CLIENT_RETRY_WINDOW_MAX_MS    (7 * GW_DAY_MS)
#define GW_EVENT_MAX_DELIVERY_DELAY_MS   (2 * GW_KAFKA_RETENTION_MAX_MS)
#define GW_EVENT_DAY_BUCKET_RETENTION_MS (400 * GW_DAY_MS)
#define GW_EVENT_MAX_PAST_MS                                                                       \
  (GW_EVENT_DAY_BUCKET_RETENTION_MS - GW_DAY_MS - GW_EVENT_MAX_DELIVERY_DELAY_MS)

typedef struct gw_event_limits {
  size_t max_events;     /* items per body; more is a whole-body error (-E2BIG) */
  size_t max_turns;      /* turns per transcript, at most GW_EVENT_MAX_TURNS */
  size_t max_text_bytes; /* bytes per text / comment, at most GW_EVENT_MAX_TEXT_BYTES */
  size_t max_id_bytes;   /* bytes per id field (event, tenant, team, agent, interaction) */
  int64_t max_future_ms; /* occurred_at later than received + this is rejected */
  int64_t max_past_ms;   /* occurred_at earlier than received - this is rejected */
  /* The JSON reader's SipHash key for objects with many keys (see goodwill/json_reader.h):
   * a process reading untrusted bodies sets a secret random key once (goodwill-ingest draws
   * it at start); the default is all zeros. */
  uint64_t json_hash_key[2];
} gw_event_limits;

/* Defaults: 10000 events, and every other limit at its hard bound (2000 turns, 16 KiB text,
 * 128-byte ids, 5 min future, GW_EVENT_MAX_PAST_MS past); JSON hash key all zeros. */
void gw_event_limits_default(gw_event_limits *lim);

/* The hard bounds themselves (max_events unbounded): what goodwill-scorer validates with. */
void gw_event_limits_hard(gw_event_limits *lim);

/*
 * 0 when every limit of lim is within its hard bound (and not 0), else -EINVAL with err naming
 * the limit, its value and its bound. gw_ingest_start refuses looser limits with this, since
 * an event they let through would be dead-lettered by the scorer. gw_event_validate never
 * applies a limit looser than its hard bound anyway.
 */
int gw_event_limits_check(const gw_event_limits *lim, char *err, size_t errlen);

typedef struct gw_event_error {
  size_t index;   /* 0-based item index within the body */
  size_t line;    /* 1-based line, 0 when not known */
  char field[96]; /* dotted path, "" for the whole item */
  char reason[192];
} gw_event_error;

typedef enum gw_event_format {
  GW_EVENT_FORMAT_AUTO,   /* '[' -> array, one object -> single, several lines -> NDJSON */
  GW_EVENT_FORMAT_JSON,   /* one object or an array */
  GW_EVENT_FORMAT_NDJSON, /* one object per non-empty line */
} gw_event_format;

/* Private: the memory of a parsed batch (see gw_event_batch_alloc). */
typedef struct gw_event_arena gw_event_arena;

typedef struct gw_event_batch {
  Goodwill__V1__InteractionEvent **events; /* valid events, owned by the batch */
  size_t *event_index;                     /* item index of each valid event */
  size_t nevents;
  gw_event_error *errors; /* rejected items, owned by the batch */
  size_t nerrors;
  size_t nitems; /* items seen (valid + rejected) */
  /* Where everything above lives when a parser of this module filled the batch: a few large
   * blocks released at once by gw_event_batch_free, instead of one malloc per string, turn and
   * array (freeing those one by one was a tenth of goodwill-ingest's CPU per request). NULL
   * when the batch was built by hand: gw_event_batch_free then frees the arrays with free()
   * and each event with protobuf_c_message_free_unpacked, as before. */
  gw_event_arena *arena;
} gw_event_batch;

/*
 * Parses and validates a body. Every valid event gets received_at_ms = now_ms and, when the
 * client gave none, a derived event_id (gw_event_assign_id). Returns 0 (the batch may hold
 * errors), -E2BIG when the body has more than max_events items (batch->errors says so),
 * -EINVAL when the body as a whole is unreadable (batch->errors[0] has line and reason), or
 * -ENOMEM when the JSON reader ran out of memory (no events; batch->errors[0] says so): the
 * server's failure, not the client's. The batch must be released with gw_event_batch_free in
 * every case.
 */
int gw_event_parse_json(const char *body, size_t len, gw_event_format format,
                        const gw_event_limits *lim, int64_t now_ms, gw_event_batch *batch);
void gw_event_batch_free(gw_event_batch *batch);

/*
 * n bytes of memory owned by the batch (aligned for any type), released by
 * gw_event_batch_free; for callers that keep per-event data as long as the batch. Creates the
 * batch's arena when it has none. Like malloc for small objects in this code base it aborts
 * when memory runs out; callers bound n by the configured limits first.
 */
void *gw_event_batch_alloc(gw_event_batch *batch, size_t n);

/*
 * Parses and validates an application/x-protobuf body: one goodwill.v1.InteractionEventBatch.
 * Same results as gw_event_parse_json: every event is an item (index = its position in
 * `events`, line 0) and is decoded and validated on its own, so one undecodable or invalid
 * event is an item error and the others are kept. Counts are checked on the wire before
 * anything is decoded: more than max_events events is -E2BIG, a transcript of more than
 * max_turns turns an item error, so a small body cannot make the decoder allocate without
 * bound. -EINVAL when the body is not a protobuf message at all (errors[0] says at which
 * byte), or is empty.
 */
int gw_event_parse_protobuf(const void *body, size_t len, const gw_event_limits *lim,
                            int64_t now_ms, gw_event_batch *batch);

/*
 * Validates one event from any source (JSON, protobuf from a client, a record read from
 * Kafka): ids present, well-formed (1..max_id_bytes of [A-Za-z0-9._@-], since tenant and
 * team become parts of Redis hash tags), channel known, exactly one body, speaker known,
 * likelihood 0..10 and present, texts valid UTF-8, everything within the limits, and
 * occurred_at within [received_ms - max_past_ms, received_ms + max_future_ms]. received_ms is
 * the time the event was received (ingest: now, which it stamps as received_at_ms; the scorer:
 * the event's received_at_ms). A limit of lim looser than its hard bound counts as the hard
 * bound. Returns 0 or -EINVAL with err filled (index and line left 0).
 */
int gw_event_validate(const Goodwill__V1__InteractionEvent *ev, const gw_event_limits *lim,
                      int64_t received_ms, gw_event_error *err);

/* Sets ev->event_id, when empty, to a digest of the event's content (everything but
 * received_at_ms), so a retried request yields the same id. id_storage must outlive ev's use
 * of it (the batch's arena holds it for parsed events). */
void gw_event_assign_id(Goodwill__V1__InteractionEvent *ev, char id_storage[33]);

/* The Kafka key of an input event: "tenant_id/interaction_id". */
void gw_event_kafka_key(const Goodwill__V1__InteractionEvent *ev, gw_buf *out);

/* Packs ev into out (appends). */
void gw_event_pack(const Goodwill__V1__InteractionEvent *ev, gw_buf *out);

/* Channel and speaker names as in the JSON API ("voice", "customer"); NULL when unknown. */
const char *gw_event_channel_name(Goodwill__V1__Channel c);
int gw_event_channel_parse(const char *s, Goodwill__V1__Channel *out);
const char *gw_event_speaker_name(Goodwill__V1__Speaker s);
int gw_event_speaker_parse(const char *s, Goodwill__V1__Speaker *out);

#endif
