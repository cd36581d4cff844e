/*
 * The lexicon's entries and their lookup structure (lexicon.h): entries in blocks that never
 * move, the arena of their keys, the Bloom filter, and gw_hash_table (goodwill/hash.h) mapping
 * each key's hash to its entry. Filled while gw_feeling_model_load runs, read-only afterwards;
 * gw_feeling_model_free releases it all.
 */
#include "lexicon.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

gw_feeling_model *gw_lex_new(void) {
  gw_feeling_model *m = calloc(1, sizeof(*m));
  if (m)
    m->table = (gw_hash_table)GW_HASH_TABLE_INIT;
  return m;
}

/* Makes room for one more entry: a new block when the last one is full. Blocks are allocated
 * whole and never reallocated, so the table's pointers into them stay valid; only the small
 * array of block pointers grows. */
static int gw_lex_reserve_entry(gw_feeling_model *m) {
  if (m->count < m->nchunks * GW_LEX_CHUNK_ENTRIES)
    return 0;
  if (m->nchunks == m->chunks_cap) {
    size_t ncap = m->chunks_cap ? m->chunks_cap * 2 : 8;
    gw_lex_entry **nc = realloc(m->chunks, ncap * sizeof(*nc));
    if (!nc)
      return -ENOMEM;
    m->chunks = nc;
    m->chunks_cap = ncap;
  }
  /* 64-byte aligned: one entry per cache line. */
  gw_lex_entry *chunk = aligned_alloc(64, GW_LEX_CHUNK_ENTRIES * sizeof(*chunk));
  if (!chunk)
    return -ENOMEM;
  m->chunks[m->nchunks++] = chunk;
  return 0;
}

/* Makes room for n more bytes of keys. */
static int gw_lex_reserve_key(gw_feeling_model *m, size_t n) {
  if (m->keys_len + n <= m->keys_cap)
    return 0;
  size_t ncap = m->keys_cap ? m->keys_cap : 16384;
  while (ncap < m->keys_len + n)
    ncap *= 2;
  /* 16 bytes of slack: gw_key_equal_padded reads keys in 16-byte blocks. */
  char *nk = realloc(m->keys, ncap + 16);
  if (!nk)
    return -ENOMEM;
  memset(nk + ncap, 0, 16);
  m->keys = nk;
  m->keys_cap = ncap;
  return 0;
}

int gw_lex_upsert(gw_feeling_model *m, const char *key, size_t n, unsigned ntokens,
                  gw_lex_entry **out) {
  uint64_t h = gw_hash_stored(gw_key_state(key, n));
  gw_lex_key k = {m->keys, key, n};
  gw_lex_entry *e = gw_hash_table_find(&m->table, h, gw_lex_eq, &k);
  if (e) {
    *out = e;
    return 0;
  }
  if (gw_lex_reserve_entry(m) < 0 || gw_lex_reserve_key(m, n) < 0)
    return -ENOMEM;
  e = gw_lex_entry_at(m, m->count);
  memset(e, 0, sizeof(*e));
  e->key_off = (uint32_t)m->keys_len;
  e->key_len = (uint16_t)n;
  e->ntokens = (uint8_t)ntokens;
  int rc = gw_hash_table_insert(&m->table, h, e);
  if (rc < 0)
    return rc;
  memcpy(m->keys + m->keys_len, key, n);
  m->keys_len += n;
  m->bloom[gw_bloom_index(h)] |= gw_bloom_bits(h);
  m->count++;
  *out = e;
  return 0;
}

int gw_lex_add_prefixes(gw_feeling_model *m, const char *key, size_t keylen, unsigned kind) {
  unsigned words = 1;
  for (size_t i = 0; i < keylen; i++) {
    if (key[i] != ' ')
      continue;
    gw_lex_entry *p;
    int rc = gw_lex_upsert(m, key, i, words, &p);
    if (rc < 0)
      return rc;
    p->prefix_kinds |= (uint8_t)kind;
    words++;
  }
  return 0;
}

gw_lex_entry *gw_lex_entry_at(gw_feeling_model *m, size_t k) {
  return &m->chunks[k / GW_LEX_CHUNK_ENTRIES][k % GW_LEX_CHUNK_ENTRIES];
}

void gw_feeling_model_free(gw_feeling_model *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->nchunks; i++)
    free(m->chunks[i]);
  free(m->chunks);
  gw_hash_table_free(&m->table);
  free(m->keys);
  free(m);
}
