/*
 * The lexicon as the rest of the feeling model sees it, private to lib/model/feeling/: the
 * model's limits, the kinds of entries, the entry layout, the model itself and the lookups the
 * tokenizer and the scorer make. Built by lexicon.c (the lexicon file in its three formats),
 * rules.c (the built-in rule words) and lexicon_table.c (entries and their lookup structure);
 * immutable once gw_feeling_model_load returns, so any thread may look up.
 */
#ifndef GOODWILL_FEELING_LEXICON_H
#define GOODWILL_FEELING_LEXICON_H

#include "goodwill/feeling.h"

#include "word_hash.h"

#include <stddef.h>
#include <stdint.h>

#define GW_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Limits of the model. Entries and tokens longer than GW_TOKEN_MAX_BYTES cannot match. */
#define GW_TOKEN_MAX_BYTES   48
#define GW_PHRASE_MAX_TOKENS 5
#define GW_PHRASE_KEY_BYTES  (GW_PHRASE_MAX_TOKENS * (GW_TOKEN_MAX_BYTES + 1))

_Static_assert(GW_TOKEN_MAX_BYTES % 16 == 0, "token texts are readable in 16-byte blocks");

/* Entry kinds: one key may be several at once (e.g. "sorry": sentiment and empathy). */
enum {
  K_SENTIMENT = 1u << 0,
  K_NEGATOR = 1u << 1,
  K_BOOST = 1u << 2, /* booster (boost > 0) or dampener (boost < 0) */
  K_CONTRAST = 1u << 3,
  K_CLOSING = 1u << 4,
  K_EMPATHY = 1u << 5,
  K_SYMBOL = 1u << 6, /* matched against a whole whitespace-separated chunk, case kept */
  K_ECHO = 1u << 7,   /* "just" in the sarcastic echo "great, just great" */
};
#define K_MODIFIER (K_NEGATOR | K_BOOST | K_CONTRAST)

typedef enum gw_empathy_kind {
  E_APOLOGY,
  E_ACKNOWLEDGE,
  E_REASSURE,
  E_OWNERSHIP,
  E_THANKS,
  E_COUNT
} gw_empathy_kind;

/* One cache line per entry (entries are 64-byte aligned), the fields every lookup reads first:
 * a scored word costs one line, not two. */
typedef struct gw_lex_entry {
  uint8_t kind;
  uint8_t prefix_kinds; /* kinds of the longer phrases that start with this key */
  uint8_t empathy_kind;
  uint8_t ntokens;
  uint32_t key_off;
  uint16_t key_len;
  uint8_t has_cats; /* some cats[] is non-zero: the scorer skips the others' categories */
  uint8_t spare;
  float valence; /* -4..4 */
  float boost;   /* scalar for K_BOOST */
  float empathy; /* 0..1 strength for K_EMPATHY */
  float cats[GW_FEELING_COUNT];
  uint32_t line; /* lexicon line that set the sentiment, 0 for built-in rules */
} gw_lex_entry;

_Static_assert(sizeof(gw_lex_entry) == 64, "a lexicon entry fills one cache line");

#define GW_BLOOM_WORDS 4096 /* 32 KiB */

typedef struct gw_lex_slot {
  uint32_t tag;   /* gw_hash_tag of the entry's hash, 0 for an empty slot */
  uint32_t index; /* the entry's position in entries */
} gw_lex_slot;

/* The table is split so that lookups stay in cache: probing reads only 8-byte slots (a 32-bit
 * hash tag and the entry's position), and the entries lie densely in insertion order. */
struct gw_feeling_model {
  gw_lex_entry *entries; /* count of them, in insertion order, 64-byte aligned */
  uint64_t *entry_hash;  /* per entry: its key's hash, for growing and inserting */
  size_t entries_cap;
  gw_lex_slot *slots; /* probe array, at most half full */
  /* A blocked Bloom filter of every key (two bits in one word per key): most words of a
   * text are in no table, and 32 KiB answer that from the first-level cache. */
  uint64_t bloom[GW_BLOOM_WORDS];
  size_t cap; /* slots, a power of two */
  size_t count;
  char *keys; /* arena of keys, not NUL-terminated */
  size_t keys_len, keys_cap;
  unsigned max_tokens; /* longest key in tokens */
  /* First bytes of the symbol entries: most chunks cannot be a symbol and need no lookup. */
  uint8_t symbol_first[256];
  char version[64];
};

/* The probe array holds 32 bits of each hash (never 0, which marks an empty slot): half the
 * cache footprint of full hashes; the key comparison decides. */
static inline uint32_t gw_hash_tag(uint64_t h) {
  return (uint32_t)(h >> 32) | 1u;
}

/* The bit of a key in its Bloom word: one bit filters almost as well as two for a table this
 * size and costs half the work on every lookup. */
static inline uint64_t gw_bloom_bits(uint64_t h) {
  return 1ULL << ((h >> 40) & 63);
}

/* The stored form of a hash state: 0 marks an empty slot. */
static inline uint64_t gw_hash_final(uint64_t h) {
  return h ? h : 1;
}

static inline uint64_t gw_key_hash(const char *s, size_t n) {
  return gw_hash_final(gw_key_state(s, n));
}

/* Finds key, whose hash state (gw_key_state) is `state`; `padded`: key is readable up to the
 * next multiple of 16 at or above n (see gw_key_equal_padded). */
static inline const gw_lex_entry *gw_lex_find_hp(const gw_feeling_model *m, uint64_t state,
                                                 const char *key, size_t n, int padded) {
  uint64_t h = gw_hash_final(state);
  uint64_t bits = m->bloom[(h >> 20) & (GW_BLOOM_WORDS - 1)];
  uint64_t want = gw_bloom_bits(h);
  if ((bits & want) != want)
    return NULL;
  uint32_t tag = gw_hash_tag(h);
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    uint32_t st = m->slots[i].tag;
    if (st == 0)
      return NULL;
    if (st != tag)
      continue;
    const gw_lex_entry *e = &m->entries[m->slots[i].index];
    if (e->key_len == n && (padded ? gw_key_equal_padded(m->keys + e->key_off, key, n)
                                   : gw_key_equal(m->keys + e->key_off, key, n)))
      return e;
  }
}

/* gw_lex_find_hp for token texts and phrase keys, which are padded. */
static inline const gw_lex_entry *gw_lex_find_h(const gw_feeling_model *m, uint64_t state,
                                                const char *key, size_t n) {
  return gw_lex_find_hp(m, state, key, n, 1);
}

static inline const gw_lex_entry *gw_lex_find(const gw_feeling_model *m, const char *key,
                                              size_t n) {
  return gw_lex_find_hp(m, gw_key_state(key, n), key, n, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Building the lexicon (only while gw_feeling_model_load runs). */

/* Finds or inserts key (n bytes, ntokens words) and sets *out to its entry; new entries are
 * zero apart from their key. 0, or -ENOMEM. lexicon_table.c. */
int gw_lex_upsert(gw_feeling_model *m, const char *key, size_t n, unsigned ntokens,
                  gw_lex_entry **out);

/* Marks every proper prefix of a phrase key ("third time" of "third time calling") with the
 * phrase's kinds, so that phrase matching knows when to read on. 0, or -ENOMEM.
 * lexicon_table.c. */
int gw_lex_add_prefixes(gw_feeling_model *m, const char *key, size_t keylen, unsigned kind);

/* The k-th entry in insertion order, k < m->count. lexicon_table.c. */
gw_lex_entry *gw_lex_entry_at(gw_feeling_model *m, size_t k);

/* The key of a lexicon entry or rule word in the form text tokens are looked up in: the
 * number of its tokens (0: no words; -1: too long; -2: more than GW_PHRASE_MAX_TOKENS words),
 * and *symbol for emoticon-like single chunks kept as written. key has room for
 * GW_PHRASE_KEY_BYTES. lexicon.c. */
int gw_lex_entry_key(const char *raw, size_t n, char *key, size_t *keylen, int *symbol);

/* Adds the built-in rule words (negators, modifiers, contrast and echo words, closing words,
 * agent empathy phrases). 0, or a negative errno code. rules.c. */
int gw_lex_add_rules(gw_feeling_model *m);

#endif
