/*
 * Fuzz target for everything gw_event reads from outside: the input is parsed as a request
 * body in all three formats, and unpacked as a protobuf InteractionEvent (and batch) and
 * validated, as goodwill-ingest and goodwill-scorer do.
 *
 * Besides crashes and sanitizer reports it checks two properties, aborting when they fail:
 * every event the parser accepts packs, unpacks and validates again to the same bytes, and
 * an event's derived id does not depend on received_at_ms.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/event.h"

/* 2026-11-23T10:00:00Z: fixed, so a crashing input reproduces whatever the date. */
#define GW_FUZZ_NOW_MS 1795428000000LL

static void check_round_trip(const Goodwill__V1__InteractionEvent *ev, const gw_event_limits *lim) {
  gw_buf packed = GW_BUF_INIT, again = GW_BUF_INIT, key = GW_BUF_INIT;
  gw_event_pack(ev, &packed);
  gw_event_kafka_key(ev, &key);
  Goodwill__V1__InteractionEvent *u =
      goodwill__v1__interaction_event__unpack(NULL, packed.len, (const uint8_t *)packed.data);
  if (u == NULL) {
    abort(); /* what we packed must unpack */
  }
  gw_event_error err;
  if (gw_event_validate(u, lim, GW_FUZZ_NOW_MS, &err) != 0) {
    abort(); /* a valid event must stay valid through Kafka */
  }
  gw_event_pack(u, &again);
  if (again.len != packed.len || memcmp(again.data, packed.data, packed.len) != 0) {
    abort();
  }
  goodwill__v1__interaction_event__free_unpacked(u, NULL);
  gw_buf_free(&packed);
  gw_buf_free(&again);
  gw_buf_free(&key);
}

static void check_derived_id(Goodwill__V1__InteractionEvent *ev) {
  char *saved_id = ev->event_id;
  int64_t saved_received = ev->received_at_ms;
  char a[33], b[33];
  ev->event_id = (char *)protobuf_c_empty_string;
  gw_event_assign_id(ev, a);
  ev->event_id = (char *)protobuf_c_empty_string;
  ev->received_at_ms = saved_received + 12345;
  gw_event_assign_id(ev, b);
  if (strcmp(a, b) != 0) {
    abort();
  }
  ev->event_id = saved_id;
  ev->received_at_ms = saved_received;
}

static void fuzz_protobuf(const uint8_t *data, size_t size, const gw_event_limits *lim) {
  gw_event_error err;
  Goodwill__V1__InteractionEvent *ev = goodwill__v1__interaction_event__unpack(NULL, size, data);
  if (ev != NULL) {
    if (gw_event_validate(ev, lim, GW_FUZZ_NOW_MS, &err) == 0) {
      check_round_trip(ev, lim);
      check_derived_id(ev);
    }
    goodwill__v1__interaction_event__free_unpacked(ev, NULL);
  }
  Goodwill__V1__InteractionEventBatch *batch =
      goodwill__v1__interaction_event_batch__unpack(NULL, size, data);
  if (batch != NULL) {
    for (size_t i = 0; i < batch->n_events; i++) {
      (void)gw_event_validate(batch->events[i], lim, GW_FUZZ_NOW_MS, &err);
    }
    goodwill__v1__interaction_event_batch__free_unpacked(batch, NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Small limits, so that the limit checks are reachable with small inputs. */
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  lim.max_events = 16;
  lim.max_turns = 8;
  lim.max_text_bytes = 64;
  lim.max_id_bytes = 40;

  static const gw_event_format formats[] = {GW_EVENT_FORMAT_AUTO, GW_EVENT_FORMAT_JSON,
                                            GW_EVENT_FORMAT_NDJSON};
  for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
    gw_event_batch batch;
    int rc =
        gw_event_parse_json((const char *)data, size, formats[f], &lim, GW_FUZZ_NOW_MS, &batch);
    if (rc != 0 && batch.nerrors == 0) {
      abort(); /* a whole-body failure must say why */
    }
    if (batch.nevents + batch.nerrors < batch.nitems && rc == 0) {
      abort(); /* every item is either kept or reported */
    }
    for (size_t i = 0; i < batch.nevents; i++) {
      check_round_trip(batch.events[i], &lim);
      check_derived_id(batch.events[i]);
    }
    gw_event_batch_free(&batch);
  }
  fuzz_protobuf(data, size, &lim);
  return 0;
}
