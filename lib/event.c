/*
 * gw_event: the parts shared by every source of events: limits, names of the enums, the
 * content-derived event id, the Kafka key and packing. JSON parsing is in event_json.c and
 * the validation rules in event_validate.c.
 */
#include "goodwill/event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/ids.h"

void gw_event_limits_default(gw_event_limits *lim) {
  lim->max_events = 10000;
  lim->max_turns = 2000;
  lim->max_text_bytes = 16 * 1024;
  lim->max_id_bytes = 128;
  lim->max_future_ms = 5LL * 60 * 1000;
  lim->max_past_ms = 400LL * 24 * 3600 * 1000;
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

void gw_event_batch_free(gw_event_batch *batch) {
  if (batch == NULL) {
    return;
  }
  for (size_t i = 0; i < batch->nevents; i++) {
    /* Every part of a parsed event, derived id included, was allocated with malloc, so the
     * protobuf-c walker frees all of it with the default allocator. */
    protobuf_c_message_free_unpacked(&batch->events[i]->base, NULL);
  }
  free(batch->events);
  free(batch->event_index);
  free(batch->errors);
  memset(batch, 0, sizeof(*batch));
}
