/*
 * The feeling model's hashing of words and phrases, private to lib/model/feeling/: a hash
 * function, not a table (the lexicon keeps its keys in gw_hash_table, goodwill/hash.h, under
 * these hashes). A word's hash mixes its bytes in 16-byte blocks of two zero-padded
 * little-endian numbers (a word of up to 16 bytes costs a fixed amount of work and no branch on
 * its length), and a phrase's hash joins its words' hashes (gw_hash_join), so that phrase
 * matching extends a key word by word from the hashes the tokenizer already computed. Keys are
 * compared in masked 8-byte words. docs/FEELING_MODEL.md, "Lexicon", describes both; no score
 * depends on them.
 */
#ifndef GOODWILL_FEELING_WORD_HASH_H
#define GOODWILL_FEELING_WORD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GW_HASH_SEED 0x9e3779b97f4a7c15ULL
#define GW_HASH_MUL  0xbf58476d1ce4e5b9ULL

static inline uint64_t gw_hash_mix(uint64_t h) {
  h ^= h >> 31;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return h;
}

/* The eight bytes at p as a little-endian number. */
static inline uint64_t gw_le64(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

/* The low r bytes of a number, r in 0..8 (a table: no branch on r). */
static const uint64_t gw_low_mask[9] = {0,
                                        0xffULL,
                                        0xffffULL,
                                        0xffffffULL,
                                        0xffffffffULL,
                                        0xffffffffffULL,
                                        0xffffffffffffULL,
                                        0xffffffffffffffULL,
                                        0xffffffffffffffffULL};

static inline uint64_t gw_low_bytes(uint64_t v, size_t r) {
  return v & gw_low_mask[r];
}

/* The hash of one word of n bytes: its bytes in 16-byte blocks of two zero-padded little-endian
 * numbers, so that a word of up to 16 bytes (nearly all) costs a fixed amount of work and no
 * data-dependent branch. s must be readable up to the next multiple of 16 at or above n (token
 * texts are: GW_TOKEN_MAX_BYTES is a multiple of 16); gw_word_hash reads only s[0..n). */
static inline uint64_t gw_word_hash_padded(const char *s, size_t n) {
  uint64_t h = GW_HASH_SEED ^ n;
  for (size_t j = 0;; j += 16) {
    size_t r = n - j;
    size_t r0 = r < 8 ? r : 8, r1 = (r < 16 ? r : 16) - r0;
    h = (h ^ gw_low_bytes(gw_le64(s + j), r0)) * GW_HASH_MUL;
    h = (h ^ gw_low_bytes(gw_le64(s + j + 8), r1)) * GW_HASH_MUL;
    if (j + 16 >= n)
      break;
  }
  return gw_hash_mix(h);
}

static inline uint64_t gw_word_hash(const char *s, size_t n) {
  char block[16];
  uint64_t h = GW_HASH_SEED ^ n;
  for (size_t j = 0;; j += 16) {
    size_t r = n - j < 16 ? n - j : 16;
    memset(block, 0, sizeof(block));
    memcpy(block, s + j, r);
    h = (h ^ gw_le64(block)) * GW_HASH_MUL;
    h = (h ^ gw_le64(block + 8)) * GW_HASH_MUL;
    if (j + 16 >= n)
      break;
  }
  return gw_hash_mix(h);
}

/* The hash of a phrase continued by one more word. */
static inline uint64_t gw_hash_join(uint64_t phrase, uint64_t word) {
  return gw_hash_mix((phrase + GW_HASH_SEED) * GW_HASH_MUL ^ word);
}

/* The hash state of a key: its words (separated by single spaces) joined. */
static inline uint64_t gw_key_state(const char *s, size_t n) {
  uint64_t h = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != ' ')
      continue;
    uint64_t w = gw_word_hash(s + start, i - start);
    h = start == 0 ? w : gw_hash_join(h, w);
    start = i + 1;
  }
  return h;
}

/* Keys are short words: a byte loop beats a call to memcmp. For keys of any buffer; token
 * texts and phrase keys use gw_key_equal_padded. */
static inline int gw_key_equal(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return 0;
  return 1;
}

/* Whether the n-byte keys a and b are equal, both readable up to the next multiple of 16 at
 * or above n (token texts, phrase keys, and the key arena, which has 16 bytes of slack): two
 * masked 8-byte compares per 16 bytes, no loop over the bytes. */
static inline int gw_key_equal_padded(const char *a, const char *b, size_t n) {
  for (size_t j = 0;; j += 16) {
    size_t r = n - j;
    size_t r0 = r < 8 ? r : 8, r1 = (r < 16 ? r : 16) - r0;
    uint64_t d = gw_low_bytes(gw_le64(a + j) ^ gw_le64(b + j), r0) |
                 gw_low_bytes(gw_le64(a + j + 8) ^ gw_le64(b + j + 8), r1);
    if (d != 0)
      return 0;
    if (j + 16 >= n)
      return 1;
  }
}

#endif
