/*
 * Fuzz target for what goodwill-aggregator does with a record read from goodwill.scored.v1:
 * decode it (gw_agg_record_decode), classify it at a fixed now under the default dedupe horizon,
 * add it to its team's batch and build the apply script's KEYS and ARGV (gw_agg_batch_call). Kafka
 * producers other than the scorer may write there, so every byte is outside input.
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: a decoded record
 * has valid tenant and team ids and a reason-free success, a refused one a reason; a record
 * the batch takes adds exactly one record; the script's arguments are well-formed (format
 * version first, an expiry per key, every key index within KEYS).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/aggregates.h"

/* 2026-11-23T10:00:00Z: fixed, so a crashing input reproduces whatever the date. */
#define GW_FUZZ_NOW_S 1795428000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_index(const gw_agg_call *c, int p) {
  long k = strtol(c->args[p], NULL, 10);
  if (k < 1 || k > c->nkeys) {
    abort();
  }
}

static void check_call(const gw_agg_call *c, size_t nrecords) {
  if (c->nkeys < 1 || c->nargs < 1 + c->nkeys || c->arglens[0] != 1 || c->args[0][0] != '2') {
    abort();
  }
  /* Per record: id, ns, ns dedupe set indexes, nb, nb bucket indexes, nf, nf pairs. */
  int p = 1 + c->nkeys;
  size_t seen = 0;
  while (p < c->nargs) {
    if (p + 1 >= c->nargs) {
      abort();
    }
    long ns = strtol(c->args[p + 1], NULL, 10);
    if (ns < 1 || p + 2 + ns >= c->nargs) {
      abort();
    }
    for (long i = 0; i < ns; i++) {
      check_index(c, p + 2 + (int)i);
    }
    int bp = p + 2 + (int)ns;
    long nb = strtol(c->args[bp], NULL, 10);
    if (nb < 0 || bp + 1 + nb >= c->nargs) {
      abort();
    }
    for (long i = 0; i < nb; i++) {
      check_index(c, bp + 1 + (int)i);
    }
    long nf = strtol(c->args[bp + 1 + nb], NULL, 10);
    p = bp + 2 + (int)nb + 2 * (int)nf;
    seen++;
  }
  if (p != c->nargs || seen != nrecords) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gw_agg_record r;
  char err[256] = "";
  int rc = gw_agg_record_decode(data, size, &r, err, sizeof err);
  if (rc != 0) {
    if ((rc != -EBADMSG && rc != -EINVAL) || err[0] == '\0') {
      abort();
    }
    return 0;
  }
  if (!gw_agg_valid_id(r.tenant) || !gw_agg_valid_id(r.team) || r.record_id[0] == '\0') {
    abort();
  }
  gw_agg_batch *b = NULL;
  if (gw_agg_batch_new(&b, r.tenant, r.team, NULL) != 0) {
    abort();
  }
  gw_agg_verdict v = gw_agg_classify(&r, NULL, GW_FUZZ_NOW_S, NULL);
  int added = gw_agg_batch_add(b, &r, GW_FUZZ_NOW_S);
  if ((v == GW_AGG_APPLY) != (added == GW_AGG_APPLY)) {
    abort();
  }
  if (gw_agg_batch_records(b) != (added == GW_AGG_APPLY ? 1u : 0u)) {
    abort();
  }
  if (added == GW_AGG_APPLY) {
    gw_agg_call c;
    gw_agg_batch_call(b, &c);
    check_call(&c, 1);
  }
  gw_agg_batch_free(b);
  return 0;
}
