/*
 * The lexicon's entries and their lookup structure (lexicon.h): the entries, the arena of
 * their keys, the hash table that finds them and the Bloom filter in front of it. Filled while
 * gw_feeling_model_load runs, read-only afterwards; gw_feeling_model_free releases it all.
 */
#include "lexicon.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int gw_lex_grow(gw_feeling_model *m) {
  size_t ncap = m->cap ? m->cap * 2 : 1024;
  gw_lex_slot *ns = calloc(ncap, sizeof(*ns));
  if (!ns)
    return -ENOMEM;
  for (size_t k = 0; k < m->count; k++) {
    size_t j = (size_t)m->entry_hash[k] & (ncap - 1);
    while (ns[j].tag != 0)
      j = (j + 1) & (ncap - 1);
    ns[j].tag = gw_hash_tag(m->entry_hash[k]);
    ns[j].index = (uint32_t)k;
  }
  free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  return 0;
}

/* Finds or inserts key. The table stays at most half full. Entry
 * pointers are valid until the next insertion. */
int gw_lex_upsert(gw_feeling_model *m, const char *key, size_t n, unsigned ntokens,
                  gw_lex_entry **out) {
  if ((m->count + 1) * 2 > m->cap) {
    int rc = gw_lex_grow(m);
    if (rc < 0)
      return rc;
  }
  uint64_t h = gw_key_hash(key, n);
  size_t mask = m->cap - 1;
  size_t i = (size_t)h & mask;
  for (;; i = (i + 1) & mask) {
    if (m->slots[i].tag == 0)
      break;
    gw_lex_entry *e = &m->entries[m->slots[i].index];
    if (m->entry_hash[m->slots[i].index] == h && e->key_len == n &&
        memcmp(m->keys + e->key_off, key, n) == 0) {
      *out = e;
      return 0;
    }
  }
  if (m->count == m->entries_cap) {
    size_t ncap = m->entries_cap ? m->entries_cap * 2 : 512;
    gw_lex_entry *ne = aligned_alloc(64, ncap * sizeof(*ne));
    uint64_t *nh = realloc(m->entry_hash, ncap * sizeof(*nh));
    if (nh)
      m->entry_hash = nh;
    if (!ne || !nh) {
      free(ne);
      return -ENOMEM;
    }
    if (m->count)
      memcpy(ne, m->entries, m->count * sizeof(*ne));
    free(m->entries);
    m->entries = ne;
    m->entries_cap = ncap;
  }
  if (m->keys_len + n > m->keys_cap) {
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
  }
  memcpy(m->keys + m->keys_len, key, n);
  gw_lex_entry *e = &m->entries[m->count];
  memset(e, 0, sizeof(*e));
  m->entry_hash[m->count] = h;
  e->key_off = (uint32_t)m->keys_len;
  e->key_len = (uint16_t)n;
  e->ntokens = (uint8_t)ntokens;
  m->slots[i].tag = gw_hash_tag(h);
  m->bloom[(h >> 20) & (GW_BLOOM_WORDS - 1)] |= gw_bloom_bits(h);
  m->slots[i].index = (uint32_t)m->count;
  m->keys_len += n;
  m->count++;
  if (ntokens > m->max_tokens)
    m->max_tokens = ntokens;
  *out = e;
  return 0;
}

/* Marks every proper prefix of a phrase key ("third time" of "third time calling") so that
 * gw_match knows when to read on. Call after the last use of the phrase's own entry pointer:
 * inserting may grow the table. */
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
  return &m->entries[k];
}

void gw_feeling_model_free(gw_feeling_model *m) {
  if (!m)
    return;
  free(m->entries);
  free(m->entry_hash);
  free(m->slots);
  free(m->keys);
  free(m);
}
