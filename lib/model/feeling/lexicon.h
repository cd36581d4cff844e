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
#include "goodwill/hash.h"

#include "word_hash.h"

#include <stdbool.h>
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

/* Conversational roles of sentiment entries (docs/FEELING_MODEL.md, "Reading a conversation"):
 * what a customer turn's felt valence makes of them. Utterance valence ignores them. */
enum {
  CONV_FEELING = 0,  /* carries feeling: counts in full */
  CONV_FORMULA = 1,  /* politeness and social formula ("thanks", "have a nice day", "ok") */
  CONV_ACK = 2,      /* mild approval that acknowledges when alone in its clause ("great,") */
  CONV_DESCRIBE = 3, /* describes the problem rather than a feeling ("not working") */
  CONV_SARCASM = 4,  /* marks the turn sarcastic ("thanks for nothing", "🙃") */
};

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
  uint8_t has_cats : 1;     /* some cats[] is non-zero: the scorer skips the others' categories */
  uint8_t from_overlay : 1; /* a line of the lexicon overlay set the sentiment (line is its) */
  uint8_t conv;  /* conversational role (CONV_*): how the entry counts in a conversation */
  float valence; /* -4..4 */
  float boost;   /* scalar for K_BOOST */
  float empathy; /* 0..1 strength for K_EMPATHY */
  float cats[GW_FEELING_COUNT];
  uint32_t line; /* lexicon (or overlay) line that set the sentiment, 0 for built-in rules */
} gw_lex_entry;

_Static_assert(sizeof(gw_lex_entry) == 64, "a lexicon entry fills one cache line");

#define GW_BLOOM_WORDS 4096 /* 32 KiB */

#define GW_LEX_CHUNK_ENTRIES 1024 /* entries per block of storage: 64 KiB */

/* The lexicon's keys are found through gw_hash_table (goodwill/hash.h), the project's one hash
 * table, under their word_hash.h hashes; its items are pointers to entries. Entries live in
 * blocks of GW_LEX_CHUNK_ENTRIES that are never moved or freed before the model, so those
 * pointers stay valid while the lexicon grows during loading. Keys live in one arena. */
struct gw_feeling_model {
  gw_hash_table table; /* key hash -> gw_lex_entry *, at most half full */
  char *keys;          /* arena of keys, not NUL-terminated, with 16 bytes of slack */
  /* A blocked Bloom filter of every key (one bit in one word per key): most words of a text
   * are in no table, and 32 KiB answer that from the first-level cache. */
  uint64_t bloom[GW_BLOOM_WORDS];
  gw_lex_entry **chunks; /* nchunks blocks of GW_LEX_CHUNK_ENTRIES entries, 64-byte aligned */
  size_t nchunks, chunks_cap;
  size_t count; /* entries, in insertion order through the blocks */
  size_t keys_len, keys_cap;
  /* First bytes of the symbol entries: most chunks cannot be a symbol and need no lookup. */
  uint8_t symbol_first[256];
  char version[GW_FEELING_VERSION_MAX];
};

/* The bit of a key in its Bloom word: one bit filters almost as well as two for a table this
 * size and costs half the work on every lookup. */
static inline uint64_t gw_bloom_bits(uint64_t h) {
  return 1ULL << ((h >> 40) & 63);
}

/* The Bloom word of a key. */
static inline size_t gw_bloom_index(uint64_t h) {
  return (size_t)(h >> 20) & (GW_BLOOM_WORDS - 1);
}

/* A key looked up: its bytes, and the arena the entries' keys are in. */
typedef struct gw_lex_key {
  const char *arena;
  const char *s;
  size_t n;
} gw_lex_key;

/* The table's eq functions (gw_hash_eq_fn): whether entry `item` has the key `key` (a
 * gw_lex_key). The padded form is for keys readable up to the next multiple of 16 at or above
 * their length (token texts and phrase keys; see gw_key_equal_padded). */
static inline bool gw_lex_eq_padded(const void *item, const void *key) {
  const gw_lex_entry *e = item;
  const gw_lex_key *k = key;
  return e->key_len == k->n && gw_key_equal_padded(k->arena + e->key_off, k->s, k->n);
}

static inline bool gw_lex_eq(const void *item, const void *key) {
  const gw_lex_entry *e = item;
  const gw_lex_key *k = key;
  return e->key_len == k->n && gw_key_equal(k->arena + e->key_off, k->s, k->n);
}

/* Finds key, whose hash state (gw_key_state) is `state`; `padded`: key is readable up to the
 * next multiple of 16 at or above n (see gw_key_equal_padded). */
static inline const gw_lex_entry *gw_lex_find_hp(const gw_feeling_model *m, uint64_t state,
                                                 const char *key, size_t n, int padded) {
  uint64_t h = gw_hash_stored(state);
  uint64_t want = gw_bloom_bits(h);
  if ((m->bloom[gw_bloom_index(h)] & want) != want)
    return NULL;
  gw_lex_key k = {m->keys, key, n};
  if (padded)
    return gw_hash_table_find(&m->table, h, gw_lex_eq_padded, &k);
  return gw_hash_table_find(&m->table, h, gw_lex_eq, &k);
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

/* A model with no entries, or NULL when memory is short. Freed by gw_feeling_model_free.
 * lexicon_table.c. */
gw_feeling_model *gw_lex_new(void);

/* Finds or inserts key (n bytes, ntokens words) and sets *out to its entry; new entries are
 * zero apart from their key. Entries never move: *out stays valid as long as the model.
 * 0, or -ENOMEM (the lexicon is unchanged). lexicon_table.c. */
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

/* Sets the conversational role (CONV_*) of the entries of the built-in role lists that the
 * loaded lexicon has as sentiment entries, and of their derived forms; called once the lexicon
 * and its inflections are in. Keys the lexicon lacks are skipped: a role only changes how a
 * valence counts. rules.c. */
void gw_lex_set_conv_roles(gw_feeling_model *m);

#endif
