/*
 * gw_event: the parts shared by every source of events: limits, names of the enums, the
 * content-derived event id, the Kafka key and packing. JSON parsing is in event_json.c and
 * the validation rules in event_validate.c.
 */
#include "goodwill/event.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/ids.h"

void gw_event_limits_default(gw_event_limits *lim) {
  gw_event_limits_hard(lim);
  lim->max_events = 10000;
}

void gw_event_limits_hard(gw_event_limits *lim) {
  lim->max_events = SIZE_MAX;
  lim->max_turns = GW_EVENT_MAX_TURNS;
  lim->max_text_bytes = GW_EVENT_MAX_TEXT_BYTES;
  lim->max_id_bytes = GW_EVENT_MAX_ID_BYTES;
  lim->max_future_ms = GW_EVENT_MAX_FUTURE_MS;
  lim->max_past_ms = GW_EVENT_MAX_PAST_MS;
  lim->json_hash_key[0] = 0;
  lim->json_hash_key[1] = 0;
}

int gw_event_limits_check(const gw_event_limits *lim, char *err, size_t errlen) {
  struct {
    const char *name;
    long long value, bound;
  } checks[] = {
      {"max_turns", (long long)lim->max_turns, GW_EVENT_MAX_TURNS},
      {"max_text_bytes", (long long)lim->max_text_bytes, GW_EVENT_MAX_TEXT_BYTES},
      {"max_id_bytes", (long long)lim->max_id_bytes, GW_EVENT_MAX_ID_BYTES},
      {"max_future_ms", (long long)lim->max_future_ms, GW_EVENT_MAX_FUTURE_MS},
      {"max_past_ms", (long long)lim->max_past_ms, GW_EVENT_MAX_PAST_MS},
  };
  for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
    if (checks[i].value <= 0 || checks[i].value > checks[i].bound) {
      snprintf(err, errlen,
               "%s is %lld: it must be 1..%lld (the hard bound every stage accepts, "
               "goodwill/event.h; the scorer would dead-letter anything above it)",
               checks[i].name, checks[i].value, checks[i].bound);
      return -EINVAL;
    }
  }
  return 0;
}

static const char *const gw_channel_names[] = {NULL,    "voice",     "chat",
                                               "email", "messaging", "social"};
static const char *const gw_speaker_names[] = {NULL, "customer", "agent", "bot"};

#define GW_COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *gw_event_channel_name(Goodwill__V1__Channel c) {
  if ((int)c <= 0 || (size_t)c >= GW_COUNT(gw_channel_names)) {
    return NULL;
  }
  return gw_channel_names[c];
}

int gw_event_channel_parse(const char *s, Goodwill__V1__Channel *out) {
  for (size_t i = 1; s != NULL && i < GW_COUNT(gw_channel_names); i++) {
    if (strcmp(s, gw_channel_names[i]) == 0) {
      *out = (Goodwill__V1__Channel)i;
      return 0;
    }
  }
  return -EINVAL;
}

const char *gw_event_speaker_name(Goodwill__V1__Speaker s) {
  if ((int)s <= 0 || (size_t)s >= GW_COUNT(gw_speaker_names)) {
    return NULL;
  }
  return gw_speaker_names[s];
}

int gw_event_speaker_parse(const char *s, Goodwill__V1__Speaker *out) {
  for (size_t i = 1; s != NULL && i < GW_COUNT(gw_speaker_names); i++) {
    if (strcmp(s, gw_speaker_names[i]) == 0) {
      *out = (Goodwill__V1__Speaker)i;
      return 0;
    }
  }
  return -EINVAL;
}

/*
 * protobuf-c packs into any ProtobufCBuffer. Feeding the bytes straight into the hasher (or
 * into a gw_buf) avoids a temporary copy of a packed event that may hold a long transcript.
 */
typedef struct gw_hash_sink {
  ProtobufCBuffer base;
  gw_id_hasher hasher;
} gw_hash_sink;

static void gw_hash_sink_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data) {
  gw_hash_sink *sink = (gw_hash_sink *)buffer;
  gw_id_update(&sink->hasher, data, len);
}

typedef struct gw_buf_sink {
  ProtobufCBuffer base;
  gw_buf *out;
} gw_buf_sink;

static void gw_buf_sink_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data) {
  gw_buf_sink *sink = (gw_buf_sink *)buffer;
  gw_buf_append(sink->out, data, len);
}

void gw_event_assign_id(Goodwill__V1__InteractionEvent *ev, char id_storage[33]) {
  if (ev->event_id != NULL && ev->event_id[0] != '\0') {
    return;
  }
  /* The digest covers the packed event with the two fields that differ between retries of
   * the same content cleared: the id itself and the time ingest received it. A shallow copy
   * is enough, since packing only reads. */
  Goodwill__V1__InteractionEvent tmp = *ev;
  tmp.event_id = (char *)protobuf_c_empty_string;
  tmp.received_at_ms = 0;
  gw_hash_sink sink;
  sink.base.append = gw_hash_sink_append;
  gw_id_init(&sink.hasher);
  protobuf_c_message_pack_to_buffer(&tmp.base, &sink.base);
  gw_id_final_hex(&sink.hasher, id_storage);
  ev->event_id = id_storage;
}

void gw_event_kafka_key(const Goodwill__V1__InteractionEvent *ev, gw_buf *out) {
  gw_buf_puts(out, ev->tenant_id != NULL ? ev->tenant_id : "");
  gw_buf_putc(out, '/');
  gw_buf_puts(out, ev->interaction_id != NULL ? ev->interaction_id : "");
}

void gw_event_pack(const Goodwill__V1__InteractionEvent *ev, gw_buf *out) {
  gw_buf_sink sink;
  sink.base.append = gw_buf_sink_append;
  sink.out = out;
  /* One reservation of the exact size; it also leaves out->data non-NULL when the event packs
   * to zero bytes, which callers handing the buffer to librdkafka rely on. */
  gw_buf_reserve(out, protobuf_c_message_get_packed_size(&ev->base));
  protobuf_c_message_pack_to_buffer(&ev->base, &sink.base);
}

/* ---- the batch's memory ----
 *
 * A bump allocator over a chain of blocks. The arena's own header sits at the start of its
 * first block, so a batch of one small event costs one malloc and one free. Blocks double from
 * GW_ARENA_FIRST_BYTES up to GW_ARENA_MAX_BLOCK_BYTES; a request larger than half the next
 * block gets a block of its own, chained behind the current one so the current one's free
 * space stays in use. Nothing is freed before the whole arena: memory of events that turned
 * out invalid stays until gw_event_batch_free, which is bounded by the body's size (every
 * byte kept was read from the body, or is a fixed-size struct per object read from it).
 */

#define GW_ARENA_FIRST_BYTES     ((size_t)2048)
#define GW_ARENA_MAX_BLOCK_BYTES ((size_t)64 * 1024)
#define GW_ARENA_ALIGN           ((size_t) _Alignof(max_align_t))

typedef struct gw_arena_block {
  struct gw_arena_block *next;
  size_t size_bytes; /* usable bytes after the header */
  size_t used_bytes;
} gw_arena_block;

struct gw_event_arena {
  gw_arena_block *blocks;  /* the block allocations come from first; others follow */
  size_t next_block_bytes; /* usable size of the next ordinary block */
};

/* The header, rounded up so that data after it is aligned for any type. */
#define GW_ARENA_HEADER_BYTES                                                                      \
  ((sizeof(gw_arena_block) + GW_ARENA_ALIGN - 1) / GW_ARENA_ALIGN * GW_ARENA_ALIGN)

static gw_arena_block *gw_arena_block_new(size_t size_bytes) {
  gw_arena_block *b = malloc(GW_ARENA_HEADER_BYTES + size_bytes);
  if (b == NULL) {
    abort(); /* see gw_event_batch_alloc */
  }
  b->next = NULL;
  b->size_bytes = size_bytes;
  b->used_bytes = 0;
  return b;
}

static void *gw_arena_block_take(gw_arena_block *b, size_t n) {
  void *p = (char *)b + GW_ARENA_HEADER_BYTES + b->used_bytes;
  b->used_bytes += n;
  return p;
}

void *gw_event_batch_alloc(gw_event_batch *batch, size_t n) {
  if (n > SIZE_MAX / 2) {
    abort();
  }
  n = (n + GW_ARENA_ALIGN - 1) / GW_ARENA_ALIGN * GW_ARENA_ALIGN;
  if (n == 0) {
    n = GW_ARENA_ALIGN;
  }
  gw_event_arena *a = batch->arena;
  if (a == NULL) {
    size_t arena_bytes =
        (sizeof(gw_event_arena) + GW_ARENA_ALIGN - 1) / GW_ARENA_ALIGN * GW_ARENA_ALIGN;
    size_t first = GW_ARENA_FIRST_BYTES;
    while (first < arena_bytes + n && first < GW_ARENA_MAX_BLOCK_BYTES) {
      first *= 2;
    }
    if (first < arena_bytes + n) {
      first = arena_bytes + n;
    }
    gw_arena_block *b = gw_arena_block_new(first);
    a = gw_arena_block_take(b, arena_bytes);
    a->blocks = b;
    a->next_block_bytes = first < GW_ARENA_MAX_BLOCK_BYTES ? first * 2 : GW_ARENA_MAX_BLOCK_BYTES;
    batch->arena = a;
  }
  gw_arena_block *cur = a->blocks;
  if (cur->size_bytes - cur->used_bytes >= n) {
    return gw_arena_block_take(cur, n);
  }
  if (n > a->next_block_bytes / 2) {
    /* A block of its own, behind the current one. */
    gw_arena_block *b = gw_arena_block_new(n);
    b->next = cur->next;
    cur->next = b;
    return gw_arena_block_take(b, n);
  }
  gw_arena_block *b = gw_arena_block_new(a->next_block_bytes);
  if (a->next_block_bytes < GW_ARENA_MAX_BLOCK_BYTES) {
    a->next_block_bytes *= 2;
  }
  b->next = cur;
  a->blocks = b;
  return gw_arena_block_take(b, n);
}

void gw_event_batch_free(gw_event_batch *batch) {
  if (batch == NULL) {
    return;
  }
  if (batch->arena != NULL) {
    /* The arena header lives in the first block allocated, the last of the chain or one a
     * large request was chained behind: read the chain before freeing any of it. */
    gw_arena_block *b = batch->arena->blocks;
    while (b != NULL) {
      gw_arena_block *next = b->next;
      free(b);
      b = next;
    }
  } else {
    for (size_t i = 0; i < batch->nevents; i++) {
      /* A batch built by hand: every part of each event was allocated with malloc. */
      protobuf_c_message_free_unpacked(&batch->events[i]->base, NULL);
    }
    free(batch->events);
    free(batch->event_index);
    free(batch->errors);
  }
  memset(batch, 0, sizeof(*batch));
}

/* protobuf-c's allocator over the batch's arena: free does nothing, the arena goes whole. */
static void *gw_pb_arena_alloc(void *data, size_t size) {
  return gw_event_batch_alloc(data, size);
}

static void gw_pb_arena_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

/* ---- protobuf bodies ---- */

/* A cursor over protobuf wire format (https://protobuf.dev/programming-guides/encoding/). */
typedef struct gw_wire {
  const uint8_t *p;
  size_t len;
  size_t pos;
} gw_wire;

static bool gw_wire_varint(gw_wire *w, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (w->pos >= w->len) {
      return false;
    }
    uint8_t b = w->p[w->pos++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Reads the next field's tag and, for length-delimited fields, the payload's bounds; skips
 * the value of every other wire type. Groups (wire types 3, 4) are refused: proto3 has none. */
static bool gw_wire_field(gw_wire *w, uint32_t *field, unsigned *wire_type, size_t *payload,
                          size_t *payload_len) {
  uint64_t key;
  if (!gw_wire_varint(w, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
    return false;
  }
  *field = (uint32_t)(key >> 3);
  *wire_type = (unsigned)(key & 7);
  uint64_t v;
  switch (*wire_type) {
  case 0:
    return gw_wire_varint(w, &v);
  case 1:
    if (w->len - w->pos < 8) {
      return false;
    }
    w->pos += 8;
    return true;
  case 5:
    if (w->len - w->pos < 4) {
      return false;
    }
    w->pos += 4;
    return true;
  case 2:
    if (!gw_wire_varint(w, &v) || v > w->len - w->pos) {
      return false;
    }
    *payload = w->pos;
    *payload_len = (size_t)v;
    w->pos += (size_t)v;
    return true;
  default:
    return false;
  }
}

/* Turns in an encoded InteractionEvent: occurrences of transcript (10) inside every closed
 * (11) field. False when the event is not well-formed wire data. */
static bool gw_wire_count_turns(const uint8_t *p, size_t len, size_t *turns) {
  gw_wire w = {p, len, 0};
  *turns = 0;
  while (w.pos < w.len) {
    uint32_t field;
    unsigned wt;
    size_t off = 0, n = 0;
    if (!gw_wire_field(&w, &field, &wt, &off, &n)) {
      return false;
    }
    if (field != 11 || wt != 2) {
      continue;
    }
    gw_wire c = {p + off, n, 0};
    while (c.pos < c.len) {
      uint32_t cf;
      unsigned cwt;
      size_t coff = 0, cn = 0;
      if (!gw_wire_field(&c, &cf, &cwt, &coff, &cn)) {
        return false;
      }
      *turns += cf == 10 && cwt == 2;
    }
  }
  return true;
}

static void gw_pb_error(gw_event_batch *b, size_t index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void gw_pb_error(gw_event_batch *b, size_t index, const char *field, const char *fmt, ...) {
  gw_event_error *e = &b->errors[b->nerrors++];
  memset(e, 0, sizeof(*e));
  e->index = index;
  snprintf(e->field, sizeof(e->field), "%s", field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
  va_end(ap);
}

int gw_event_parse_protobuf(const void *body, size_t len, const gw_event_limits *lim,
                            int64_t now_ms, gw_event_batch *batch) {
  memset(batch, 0, sizeof(*batch));
  gw_event_limits defaults;
  if (lim == NULL) {
    gw_event_limits_default(&defaults);
    lim = &defaults;
  }
  const uint8_t *p = body;
  if (body == NULL) {
    len = 0;
  }
  /* First pass: the body is well-formed and holds at most max_events events. Unknown
   * top-level fields are skipped, as protobuf readers do. */
  gw_wire w = {p, len, 0};
  size_t count = 0;
  while (w.pos < w.len) {
    size_t at = w.pos, off, n;
    uint32_t field;
    unsigned wt;
    if (!gw_wire_field(&w, &field, &wt, &off, &n)) {
      batch->errors = gw_event_batch_alloc(batch, sizeof(*batch->errors));
      gw_pb_error(batch, 0, "",
                  "invalid protobuf at byte %zu: not a goodwill.v1.InteractionEventBatch", at);
      return -EINVAL;
    }
    if (field == 1 && wt != 2) {
      /* A reader that skipped it would drop an event without a word. */
      batch->errors = gw_event_batch_alloc(batch, sizeof(*batch->errors));
      gw_pb_error(batch, 0, "",
                  "invalid protobuf at byte %zu: field 1 (events) must be length-delimited", at);
      return -EINVAL;
    }
    count += field == 1;
  }
  size_t nalloc = count ? count : 1;
  if (count > lim->max_events) {
    nalloc = 1; /* only the one whole-body error */
  }
  batch->errors = gw_event_batch_alloc(batch, nalloc * sizeof(*batch->errors));
  if (count == 0) {
    gw_pb_error(batch, 0, "", "empty body: an InteractionEventBatch without events");
    return -EINVAL;
  }
  if (count > lim->max_events) {
    batch->nitems = count;
    gw_pb_error(batch, lim->max_events, "", "too many events: %zu, at most %zu", count,
                lim->max_events);
    return -E2BIG;
  }
  /* nalloc is bounded by max_events, checked just above. */
  batch->events = gw_event_batch_alloc(batch, nalloc * sizeof(*batch->events));
  batch->event_index = gw_event_batch_alloc(batch, nalloc * sizeof(*batch->event_index));
  /* Everything an event holds comes from the batch's arena too. */
  ProtobufCAllocator pb_alloc = {
      .alloc = gw_pb_arena_alloc, .free = gw_pb_arena_free, .allocator_data = batch};
  /* Second pass: each event on its own, so that one bad event does not spoil the batch. */
  w.pos = 0;
  while (w.pos < w.len) {
    size_t off = 0, n = 0;
    uint32_t field;
    unsigned wt;
    (void)gw_wire_field(&w, &field, &wt, &off, &n); /* checked by the first pass */
    if (field != 1 || wt != 2) {
      continue;
    }
    size_t index = batch->nitems++;
    size_t turns;
    if (!gw_wire_count_turns(p + off, n, &turns)) {
      gw_pb_error(batch, index, "", "not a valid goodwill.v1.InteractionEvent message");
      continue;
    }
    if (turns > lim->max_turns) {
      gw_pb_error(batch, index, "closed.transcript", "too many turns: %zu, at most %zu", turns,
                  lim->max_turns);
      continue;
    }
    Goodwill__V1__InteractionEvent *ev =
        goodwill__v1__interaction_event__unpack(&pb_alloc, n, p + off);
    if (ev == NULL) {
      gw_pb_error(batch, index, "", "not a valid goodwill.v1.InteractionEvent message");
      continue;
    }
    ev->received_at_ms = now_ms;
    if (ev->event_id == NULL || ev->event_id[0] == '\0') {
      /* The digest covers the event without an id, whether the wire had none or an explicit
       * "" (both pack the same). */
      ev->event_id = (char *)protobuf_c_empty_string;
      gw_event_assign_id(ev, gw_event_batch_alloc(batch, GW_ID_HEX_LEN + 1));
    }
    gw_event_error e;
    memset(&e, 0, sizeof(e));
    if (gw_event_validate(ev, lim, now_ms, &e) != 0) {
      /* Its memory stays in the arena until the batch goes. */
      gw_pb_error(batch, index, e.field, "%s", e.reason);
      continue;
    }
    batch->events[batch->nevents] = ev;
    batch->event_index[batch->nevents] = index;
    batch->nevents++;
  }
  return 0;
}
