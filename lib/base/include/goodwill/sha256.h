/*
 * gw_sha256: SHA-256 as specified in FIPS 180-4 (section 6.2), for the hashes of bearer
 * tokens in the ingest tokens file. Pure; any thread; the context is the caller's.
 * Written from the standard, checked against its test vectors (tests/unit/test_auth.c).
 */
#ifndef GOODWILL_SHA256_H
#define GOODWILL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GW_SHA256_BYTES   32
#define GW_SHA256_HEX_LEN 64

typedef struct gw_sha256_ctx {
  uint32_t state[8];
  uint64_t total_bytes;
  uint8_t block[64];
  size_t block_len; /* bytes waiting in block */
} gw_sha256_ctx;

void gw_sha256_init(gw_sha256_ctx *c);
void gw_sha256_update(gw_sha256_ctx *c, const void *data, size_t len);
void gw_sha256_final(gw_sha256_ctx *c, uint8_t out[GW_SHA256_BYTES]);

/* One-shot digest, and its lowercase hex form (GW_SHA256_HEX_LEN digits and a NUL). */
void gw_sha256(const void *data, size_t len, uint8_t out[GW_SHA256_BYTES]);
void gw_sha256_hex(const void *data, size_t len, char out[GW_SHA256_HEX_LEN + 1]);

#endif
