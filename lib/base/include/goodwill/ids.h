/*
 * gw_ids: deterministic identifiers. An event without a client event_id gets one derived
 * from its content; every scored record gets a record id derived from its input (tenant and
 * event id), never from a Kafka offset, so a re-emitted record is recognisably the same.
 *
 * The digest is FNV-1a with the 128-bit parameters (gw_fnv128 in goodwill/hash.h), written as
 * 32 lowercase hex digits. It is not a
 * cryptographic hash: ids are keys for deduplication, not secrets. Pure; any thread.
 */
#ifndef GOODWILL_IDS_H
#define GOODWILL_IDS_H

#include <stddef.h>

#include "goodwill/hash.h"

#define GW_ID_HEX_LEN 32

typedef struct gw_id_hasher {
  gw_fnv128 fnv;
} gw_id_hasher;

void gw_id_init(gw_id_hasher *h);
void gw_id_update(gw_id_hasher *h, const void *data, size_t len);
/* Adds a string followed by a 0x00 separator, so ("ab","c") and ("a","bc") differ. */
void gw_id_update_field(gw_id_hasher *h, const char *s);
/* Writes GW_ID_HEX_LEN hex digits and a NUL into out. */
void gw_id_final_hex(const gw_id_hasher *h, char out[GW_ID_HEX_LEN + 1]);

#endif
