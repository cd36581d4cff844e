/*
 * Fuzz target for everything gw_event reads from outside: the input is parsed as a request
 * body in all three formats, and unpacked as a protobuf InteractionEvent (and batch) and
 * validated, as goodwill-ingest and goodwill-scorer do.
 *
 * Besides crashes and sanitizer reports it checks three properties, aborting when they fail:
 * every event the parser accepts packs, unpacks and validates again to the same bytes; an
 * event's derived id does not depend on received_at_ms; and the project's own JSON reader
 * gives the same results as the jansson-based parser it replaced (event_json_jansson_ref.inc):
 * the same status, the same items accepted with byte-identical packed events, the same item
 * errors with the same index, line, field and reason. Only the wording of syntax errors may
 * differ (both say "invalid JSON at ..."), and their column. Inputs with a NUL byte are not
 * compared: jansson's lexer drops a NUL byte that follows a token it had to look past (it
 * reads "[1<NUL>]" as [1]), which the own reader deliberately does not copy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/event.h"

#include <stdio.h>

#include "event_json_jansson_ref.inc"

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

static bool is_syntax_error(const gw_event_error *e) {
  return strncmp(e->reason, "invalid JSON at ", 16) == 0;
}

static void differ(const char *what, size_t i, const gw_event_batch *a, const gw_event_batch *b) {
  fprintf(stderr, "own reader and jansson differ: %s (item %zu)\n", what, i);
  const gw_event_batch *both[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    const gw_event_batch *x = both[k];
    fprintf(stderr, "  %s: items %zu events %zu errors %zu\n", k == 0 ? "own" : "jansson",
            x->nitems, x->nevents, x->nerrors);
    for (size_t j = 0; j < x->nerrors; j++) {
      fprintf(stderr, "    [%zu] line %zu [%s] %s\n", x->errors[j].index, x->errors[j].line,
              x->errors[j].field, x->errors[j].reason);
    }
  }
  abort();
}

/* The differential check: own reader (a, rc_a) against jansson (b, rc_b). */
static void compare_with_jansson(int rc_a, const gw_event_batch *a, int rc_b,
                                 const gw_event_batch *b) {
  if (rc_a != rc_b || a->nitems != b->nitems || a->nevents != b->nevents ||
      a->nerrors != b->nerrors) {
    differ("status or counts", 0, a, b);
  }
  for (size_t i = 0; i < a->nerrors; i++) {
    const gw_event_error *x = &a->errors[i], *y = &b->errors[i];
    /* jansson reports a whole-body syntax error where its lexer stood, sometimes past the
     * offending byte (even on the next line); an NDJSON line's number is the line's. */
    bool body_syntax = is_syntax_error(x) && is_syntax_error(y) &&
                       strncmp(x->reason, "invalid JSON at line", 20) == 0;
    if (x->index != y->index || (x->line != y->line && !body_syntax) ||
        strcmp(x->field, y->field) != 0) {
      differ("error index, line or field", i, a, b);
    }
    if (is_syntax_error(x) != is_syntax_error(y) ||
        (!is_syntax_error(x) && strcmp(x->reason, y->reason) != 0)) {
      differ("error reason", i, a, b);
    }
  }
  for (size_t i = 0; i < a->nevents; i++) {
    gw_buf pa = GW_BUF_INIT, pb = GW_BUF_INIT;
    gw_event_pack(a->events[i], &pa);
    gw_event_pack(b->events[i], &pb);
    bool same = a->event_index[i] == b->event_index[i] && pa.len == pb.len &&
                memcmp(pa.data, pb.data, pa.len) == 0;
    gw_buf_free(&pa);
    gw_buf_free(&pb);
    if (!same) {
      differ("event content", i, a, b);
    }
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
    if (memchr(data, '\0', size) == NULL) {
      gw_event_batch ref;
      int rc_ref =
          ref_event_parse_json((const char *)data, size, formats[f], &lim, GW_FUZZ_NOW_MS, &ref);
      compare_with_jansson(rc, &batch, rc_ref, &ref);
      gw_event_batch_free(&ref);
    }
    gw_event_batch_free(&batch);
  }
  fuzz_protobuf(data, size, &lim);
  return 0;
}
