/*
 * gw_sha1: SHA-1 as specified in FIPS 180-4 (section 6.1), for the digests EVALSHA names Redis
 * scripts by. SHA-1 is not collision resistant: use it for nothing that needs security. Pure;
 * any thread; the context is the caller's. Written from the standard, checked against its test
 * vectors (tests/unit/test_sha1.c).
 */
#ifndef GOODWILL_SHA1_H
#define GOODWILL_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define GW_SHA1_HEX_LEN 40

typedef struct gw_sha1_ctx {
  uint32_t h[5];
  uint8_t block[64];
  size_t block_len;     /* bytes waiting in block */
  uint64_t total_bytes; /* bytes hashed so far */
} gw_sha1_ctx;

void gw_sha1_init(gw_sha1_ctx *c);
void gw_sha1_update(gw_sha1_ctx *c, const void *data, size_t len);
/* Writes the digest as 40 lowercase hex digits and a NUL. */
void gw_sha1_final_hex(gw_sha1_ctx *c, char out[GW_SHA1_HEX_LEN + 1]);

/* One-shot digest in hex. */
void gw_sha1_hex(const void *data, size_t len, char out[GW_SHA1_HEX_LEN + 1]);

#endif
