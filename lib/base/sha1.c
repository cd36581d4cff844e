/* gw_sha1: SHA-1 (FIPS 180-4, section 6.1). See goodwill/sha1.h. */
#include "goodwill/sha1.h"

#include <string.h>

static uint32_t rotl32(uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

static void compress(gw_sha1_ctx *c, const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++) {
    w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 |
           (uint32_t)p[4 * t + 3];
  }
  for (int t = 16; t < 80; t++) {
    w[t] = rotl32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  }
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & cc) ^ (~b & d); /* Ch */
      k = 0x5a827999u;
    } else if (t < 40) {
      f = b ^ cc ^ d; /* Parity */
      k = 0x6ed9eba1u;
    } else if (t < 60) {
      f = (b & cc) ^ (b & d) ^ (cc & d); /* Maj */
      k = 0x8f1bbcdcu;
    } else {
      f = b ^ cc ^ d;
      k = 0xca62c1d6u;
    }
    uint32_t tmp = rotl32(a, 5) + f + e + k + w[t];
    e = d;
    d = cc;
    cc = rotl32(b, 30);
    b = a;
    a = tmp;
  }
  c->h[0] += a;
  c->h[1] += b;
  c->h[2] += cc;
  c->h[3] += d;
  c->h[4] += e;
}

void gw_sha1_init(gw_sha1_ctx *c) {
  static const uint32_t h0[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
  memcpy(c->h, h0, sizeof h0);
  c->block_len = 0;
  c->total_bytes = 0;
}

void gw_sha1_update(gw_sha1_ctx *c, const void *data, size_t len) {
  const uint8_t *p = data;
  c->total_bytes += len;
  while (len > 0) {
    size_t n = 64 - c->block_len;
    if (n > len) {
      n = len;
    }
    memcpy(c->block + c->block_len, p, n);
    c->block_len += n;
    p += n;
    len -= n;
    if (c->block_len == 64) {
      compress(c, c->block);
      c->block_len = 0;
    }
  }
}

/* Padding (5.1.1): a 1 bit, zeros up to 56 mod 64 bytes, then the message length in bits as a
 * big-endian 64-bit integer. */
void gw_sha1_final_hex(gw_sha1_ctx *c, char out[GW_SHA1_HEX_LEN + 1]) {
  uint64_t bits = c->total_bytes * 8;
  uint8_t pad = 0x80;
  gw_sha1_update(c, &pad, 1);
  pad = 0;
  while (c->block_len != 56) {
    gw_sha1_update(c, &pad, 1);
  }
  uint8_t len_be[8];
  for (int i = 0; i < 8; i++) {
    len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
  }
  gw_sha1_update(c, len_be, 8);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 8; j++) {
      out[i * 8 + j] = hex[(c->h[i] >> (28 - 4 * j)) & 0xf];
    }
  }
  out[GW_SHA1_HEX_LEN] = '\0';
}

void gw_sha1_hex(const void *data, size_t len, char out[GW_SHA1_HEX_LEN + 1]) {
  gw_sha1_ctx c;
  gw_sha1_init(&c);
  gw_sha1_update(&c, data, len);
  gw_sha1_final_hex(&c, out);
}
