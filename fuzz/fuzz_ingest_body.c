/*
 * Fuzz target for how goodwill-ingest reads a POST /v1/events body (gw_ingest_decode_body):
 * Content-Encoding (identity, gzip, or an unsupported one) and Content-Type (JSON, NDJSON,
 * protobuf, none: detected) chosen by the first input byte, the rest is the body. So gzip
 * inflation with its size cap, the JSON and NDJSON parsers and the protobuf batch decoder
 * all see hostile input, as they do on the network.
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: the inflated
 * body never exceeds the cap; a parsed body accounts for every item exactly once (valid +
 * rejected = items, indices below the item count and increasing); every accepted event
 * validates again; a refused body (415, 413, corrupt gzip) leaves an empty batch and a
 * message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/ingest.h"

/* 2026-11-23T10:00:00Z: fixed, so a crashing input reproduces whatever the date. */
#define GW_FUZZ_NOW_MS   1795428000000LL
#define GW_FUZZ_MAX_BODY (256u * 1024u)

static const char *const content_types[8] = {
    NULL,
    "application/json",
    "application/x-ndjson",
    "application/x-protobuf",
    "application/json; charset=utf-8",
    "application/protobuf",
    "",
    "text/plain",
};
static const char *const encodings[4] = {NULL, "gzip", "identity", "br"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  const char *ctype = content_types[data[0] & 7];
  const char *enc = encodings[(data[0] >> 3) & 3];
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  /* Small limits, so the limit paths are reachable from small inputs. */
  lim.max_events = 1 + (data[0] >> 5);
  lim.max_turns = 4;
  lim.max_text_bytes = 64;
  /* The body is NUL-terminated, as the HTTP layer hands it over. */
  char *body = malloc(size);
  memcpy(body, data + 1, size - 1);
  body[size - 1] = '\0';

  gw_event_batch batch;
  gw_buf inflated = GW_BUF_INIT;
  bool protobuf = false;
  char msg[256];
  int rc = gw_ingest_decode_body(ctype, enc, body, size - 1, GW_FUZZ_MAX_BODY, &lim, GW_FUZZ_NOW_MS,
                                 &batch, &inflated, &protobuf, msg, sizeof(msg));
  if (inflated.len > GW_FUZZ_MAX_BODY + 1) {
    abort(); /* the cap must hold while inflating, not only after */
  }
  if (rc == -ENOTSUP || rc == -EMSGSIZE || rc == -EBADMSG) {
    if (msg[0] == '\0' || batch.nitems != 0 || batch.nevents != 0 || batch.nerrors != 0) {
      abort();
    }
  } else if (rc == 0) {
    if (batch.nevents + batch.nerrors != batch.nitems || batch.nitems > lim.max_events) {
      abort();
    }
    for (size_t i = 0; i < batch.nevents; i++) {
      gw_event_error err;
      if (batch.event_index[i] >= batch.nitems ||
          (i > 0 && batch.event_index[i] <= batch.event_index[i - 1]) ||
          gw_event_validate(batch.events[i], &lim, GW_FUZZ_NOW_MS, &err) != 0) {
        abort();
      }
    }
    for (size_t i = 0; i < batch.nerrors; i++) {
      if (batch.errors[i].index >= batch.nitems) {
        abort();
      }
    }
  } else if (rc != -E2BIG && rc != -EINVAL) {
    abort(); /* no other outcome is documented */
  } else if (batch.nerrors == 0 || batch.nevents != 0) {
    abort(); /* a whole-body error says why and keeps nothing */
  }
  gw_event_batch_free(&batch);
  gw_buf_free(&inflated);
  free(body);
  return 0;
}
