/*
 * The feeling model v0: lexicon loading, tokenizing, utterance and interaction scoring.
 * Formulas, constants and their sources are written down once, in docs/FEELING_MODEL.md;
 * the comments here say why the code is shaped the way it is.
 */
#include "goodwill/feeling.h"
#include "goodwill/ids.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The word fast path reads 16 bytes at a time with SSE2 where the target has it (every x86-64);
 * -DGW_FEELING_NO_SIMD forces the byte loop, which gives the same tokens (tested both ways). */
#if defined(__SSE2__) && !defined(GW_FEELING_NO_SIMD)
#include <emmintrin.h>
#define GW_FEELING_SSE2 1
#else
#define GW_FEELING_SSE2 0
#endif

#define GW_FEELING_MODEL_NAME "gw-feeling-0.3"

/* Limits of the model. Entries and tokens longer than GW_TOKEN_MAX_BYTES cannot match. */
#define GW_TOKEN_MAX_BYTES   48
#define GW_PHRASE_MAX_TOKENS 5
#define GW_PHRASE_KEY_BYTES  (GW_PHRASE_MAX_TOKENS * (GW_TOKEN_MAX_BYTES + 1))
#define GW_UTTERANCE_MAX_TOK 4096 /* tokens beyond this are not scored (documented) */
#define GW_LEXICON_MAX_BYTES (16u * 1024u * 1024u)
#define GW_LEXICON_LINE_MAX  4096

/* Rule constants (docs/FEELING_MODEL.md, "Utterance valence"). */
#define GW_NORM_ALPHA       15.0  /* x / sqrt(x^2 + alpha), Hutto & Gilbert 2014 */
#define GW_NEG_FLIP_POS     -0.75 /* "not good": flipped, most of the strength kept */
#define GW_NEG_FLIP_NEG     -0.5  /* "not bad": litotes, only mildly positive */
#define GW_CAPS_ADD         0.7   /* a sentiment word in CAPS among lower-case words */
#define GW_ELONG_ADD        0.3   /* "sooo goood" */
#define GW_EXCL_ADD         0.25  /* per '!' up to GW_EXCL_MAX */
#define GW_EXCL_MAX         4
#define GW_QUEST_ADD        0.15 /* per '?' up to GW_QUEST_MAX, only when there are >= 2 */
#define GW_QUEST_MAX        3
#define GW_QUESTION_WEIGHT  0.5 /* sentiment inside a question that asks ("is it good?") */
#define GW_CONTRAST_BEFORE  0.5
#define GW_CONTRAST_AFTER   1.5
#define GW_MOD_WINDOW       3
#define GW_FEELING_RATE     1.5 /* intensity = 1 - exp(-rate * raw) */
#define GW_LOW_INFO_WEIGHT  0.25
#define GW_LOW_INFO_MAX_TOK 4

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

/* How much each kind of empathy behaviour adds to the 0..1 empathy signal; sums to 1. */
static const double gw_empathy_kind_weight[E_COUNT] = {0.25, 0.25, 0.2, 0.2, 0.1};

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

/* ---------------------------------------------------------------------------------------- */
/* Built-in rule words. They are grammar rather than vocabulary, so they do not depend on the
 * lexicon a user plugs in. Written for this project. */

typedef struct gw_rule_word {
  const char *key;
  float value;
} gw_rule_word;

static const char *const gw_negators[] = {
    "not",      "no",        "never",      "nothing", "nobody",  "none",     "nor",
    "neither",  "without",   "cannot",     "dont",    "cant",    "wont",     "didnt",
    "doesnt",   "isnt",      "wasnt",      "arent",   "werent",  "couldnt",  "shouldnt",
    "wouldnt",  "havent",    "hasnt",      "hadnt",   "aint",    "nowhere",  "no one",
    "not even", "no longer", "not at all", "don't",   "can't",   "won't",    "didn't",
    "doesn't",  "isn't",     "wasn't",     "aren't",  "weren't", "couldn't", "shouldn't",
    "wouldn't", "haven't",   "hasn't",     "hadn't",  "ain't",   "mustn't",  "needn't",
    "mightn't", "shan't",    "rarely",     "seldom",  "least"};

static const gw_rule_word gw_boosters[] = {
    {"very", 0.3f},
    {"really", 0.3f},
    {"so", 0.3f},
    {"so much", 0.3f},
    {"extremely", 0.45f},
    {"incredibly", 0.45f},
    {"absolutely", 0.4f},
    {"totally", 0.35f},
    {"completely", 0.35f},
    {"utterly", 0.4f},
    {"super", 0.3f},
    {"truly", 0.3f},
    {"seriously", 0.3f},
    {"highly", 0.3f},
    {"too", 0.2f},
    {"such", 0.2f},
    {"especially", 0.25f},
    {"exceptionally", 0.4f},
    {"remarkably", 0.3f},
    {"pretty", 0.15f},
    {"way too", 0.4f},
    {"the most", 0.3f},
    {"so so", 0.4f},
    {"insanely", 0.45f},
    {"ridiculously", 0.4f},
    {"beyond", 0.3f},
    {"deeply", 0.35f},
    {"hugely", 0.4f},
    {"massively", 0.4f},
    {"entirely", 0.3f},
    {"thoroughly", 0.3f},
    {"genuinely", 0.25f},
    {"slightly", -0.4f},
    {"somewhat", -0.3f},
    {"kind of", -0.3f},
    {"sort of", -0.3f},
    {"kinda", -0.3f},
    {"sorta", -0.3f},
    {"a bit", -0.3f},
    {"a little", -0.3f},
    {"a little bit", -0.35f},
    {"a tad", -0.35f},
    {"barely", -0.5f},
    {"hardly", -0.5f},
    {"marginally", -0.4f},
    {"partly", -0.3f},
    {"partially", -0.3f},
    {"fairly", -0.15f},
    {"mildly", -0.4f},
    {"a touch", -0.3f},
    /* Swearing as emphasis ("fucking awesome"), and colloquial boosters. */
    {"fucking", 0.4f},
    {"fuckin", 0.4f},
    {"freaking", 0.35f},
    {"freakin", 0.35f},
    {"frickin", 0.35f},
    {"friggin", 0.35f},
    {"hella", 0.35f},
    {"soo", 0.35f},
    {"rly", 0.3f},
    {"realy", 0.3f},
    {"enormously", 0.4f},
    {"tremendously", 0.4f},
    {"unbelievably", 0.4f},
    {"immensely", 0.4f},
    {"intensely", 0.35f},
    {"exceedingly", 0.4f},
    {"wildly", 0.35f},
    {"particularly", 0.2f},
    {"fully", 0.25f},
    {"most", 0.2f},
    {"almost", -0.3f},
    {"nearly", -0.3f},
    {"relatively", -0.2f},
    {"moderately", -0.3f},
    {"occasionally", -0.3f},
    {"scarcely", -0.5f},
    /* "at least" is not the negator "least" ("least favourite"): a modifier of no strength. */
    {"at least", 0.0f},
    {"the very least", 0.0f},
    /* Disbelief emphasises, it does not negate: "I can't believe how good this is". */
    {"can't believe", 0.3f},
    {"cant believe", 0.3f},
    {"cannot believe", 0.3f},
    {"couldn't believe", 0.3f},
};

static const char *const gw_contrasts[] = {"but", "however"};

static const char *const gw_echoes[] = {"just"};

/* Short low-information replies ("ok.", "thanks", "great, bye"): see the interaction rules. */
static const char *const gw_closings[] = {
    "ok",    "okay", "k",          "kk",          "thanks",     "thank",  "you",
    "thx",   "ty",   "bye",        "goodbye",     "bye-bye",    "yes",    "yeah",
    "yep",   "yup",  "no",         "nope",        "alright",    "sure",   "cheers",
    "great", "cool", "fine",       "perfect",     "got",        "it",     "that's",
    "all",   "good", "right",      "sounds",      "will",       "do",     "hi",
    "hello", "hey",  "have",       "a",           "nice",       "day",    "thankyou",
    "much",  "very", "so",         "appreciated", "ta",         "oh",     "ah",
    "i",     "see",  "understood", "np",          "mm",         "hmm",    "mhm",
    "uh",    "um",   "wow",        "awesome",     "excellent",  "lovely", "that",
    "is",    "was",  "will",       "do",          "for",        "your",   "help",
    "now",   "then", "well",       "anyway",      "everything", "thats",  "well",
    "cya",   "later"};

typedef struct gw_empathy_phrase {
  const char *key;
  gw_empathy_kind kind;
  float strength;
} gw_empathy_phrase;

static const gw_empathy_phrase gw_empathy_phrases[] = {
    {"sorry", E_APOLOGY, 0.6f},
    {"i'm sorry", E_APOLOGY, 0.9f},
    {"i am sorry", E_APOLOGY, 0.9f},
    {"i'm so sorry", E_APOLOGY, 1.0f},
    {"i'm really sorry", E_APOLOGY, 1.0f},
    {"so sorry", E_APOLOGY, 0.9f},
    {"i apologize", E_APOLOGY, 1.0f},
    {"i apologise", E_APOLOGY, 1.0f},
    {"we apologize", E_APOLOGY, 0.8f},
    {"we apologise", E_APOLOGY, 0.8f},
    {"apologies", E_APOLOGY, 0.8f},
    {"my apologies", E_APOLOGY, 0.9f},
    {"sorry about that", E_APOLOGY, 0.9f},
    {"sorry to hear", E_APOLOGY, 0.9f},
    {"sorry for the inconvenience", E_APOLOGY, 0.6f},
    {"i understand", E_ACKNOWLEDGE, 0.8f},
    {"i can understand", E_ACKNOWLEDGE, 0.9f},
    {"i completely understand", E_ACKNOWLEDGE, 1.0f},
    {"i totally understand", E_ACKNOWLEDGE, 1.0f},
    {"i understand how", E_ACKNOWLEDGE, 1.0f},
    {"i understand why", E_ACKNOWLEDGE, 1.0f},
    {"that must be frustrating", E_ACKNOWLEDGE, 1.0f},
    {"that sounds frustrating", E_ACKNOWLEDGE, 1.0f},
    {"that must be", E_ACKNOWLEDGE, 0.6f},
    {"that sounds really", E_ACKNOWLEDGE, 0.6f},
    {"i can see why", E_ACKNOWLEDGE, 0.9f},
    {"i can imagine", E_ACKNOWLEDGE, 0.9f},
    {"i hear you", E_ACKNOWLEDGE, 0.9f},
    {"you're right", E_ACKNOWLEDGE, 0.8f},
    {"you are right", E_ACKNOWLEDGE, 0.8f},
    {"you're absolutely right", E_ACKNOWLEDGE, 1.0f},
    {"understandably", E_ACKNOWLEDGE, 0.8f},
    {"that shouldn't have happened", E_ACKNOWLEDGE, 1.0f},
    {"that's not okay", E_ACKNOWLEDGE, 0.8f},
    {"i get it", E_ACKNOWLEDGE, 0.7f},
    {"makes sense", E_ACKNOWLEDGE, 0.4f},
    {"don't worry", E_REASSURE, 0.8f},
    {"no worries", E_REASSURE, 0.5f},
    {"rest assured", E_REASSURE, 0.9f},
    {"i'll make sure", E_REASSURE, 0.9f},
    {"i will make sure", E_REASSURE, 0.9f},
    {"we'll get this sorted", E_REASSURE, 1.0f},
    {"let's get this sorted", E_REASSURE, 1.0f},
    {"let's get this fixed", E_REASSURE, 1.0f},
    {"let's fix this", E_REASSURE, 0.9f},
    {"we'll fix", E_REASSURE, 0.8f},
    {"we can fix", E_REASSURE, 0.8f},
    {"i can fix", E_REASSURE, 0.9f},
    {"i can help", E_REASSURE, 0.8f},
    {"happy to help", E_REASSURE, 0.7f},
    {"glad to help", E_REASSURE, 0.7f},
    {"good news", E_REASSURE, 0.7f},
    {"you're in good hands", E_REASSURE, 1.0f},
    {"we'll take care", E_REASSURE, 0.9f},
    {"i'll take care of", E_OWNERSHIP, 1.0f},
    {"i will take care of", E_OWNERSHIP, 1.0f},
    {"let me fix", E_OWNERSHIP, 0.9f},
    {"let me check", E_OWNERSHIP, 0.6f},
    {"let me look into", E_OWNERSHIP, 0.8f},
    {"let me see what", E_OWNERSHIP, 0.6f},
    {"i'll personally", E_OWNERSHIP, 1.0f},
    {"i will personally", E_OWNERSHIP, 1.0f},
    {"i'll follow up", E_OWNERSHIP, 0.9f},
    {"i will follow up", E_OWNERSHIP, 0.9f},
    {"i'll call you back", E_OWNERSHIP, 0.8f},
    {"i've escalated", E_OWNERSHIP, 0.8f},
    {"i have escalated", E_OWNERSHIP, 0.8f},
    {"that's on us", E_OWNERSHIP, 1.0f},
    {"our mistake", E_OWNERSHIP, 1.0f},
    {"my mistake", E_OWNERSHIP, 0.9f},
    {"our fault", E_OWNERSHIP, 1.0f},
    {"we made a mistake", E_OWNERSHIP, 1.0f},
    {"i've fixed", E_OWNERSHIP, 0.9f},
    {"i have fixed", E_OWNERSHIP, 0.9f},
    {"i've refunded", E_OWNERSHIP, 0.9f},
    {"i have refunded", E_OWNERSHIP, 0.9f},
    {"i've credited", E_OWNERSHIP, 0.9f},
    {"i've reset", E_OWNERSHIP, 0.7f},
    {"thank you", E_THANKS, 0.6f},
    {"thanks", E_THANKS, 0.5f},
    {"thank you for your patience", E_THANKS, 1.0f},
    {"thanks for your patience", E_THANKS, 1.0f},
    {"thank you for waiting", E_THANKS, 0.9f},
    {"thanks for waiting", E_THANKS, 0.9f},
    {"appreciate your patience", E_THANKS, 1.0f},
    {"i appreciate", E_THANKS, 0.8f},
    {"thank you for bearing", E_THANKS, 1.0f},
    {"thanks for bearing", E_THANKS, 1.0f},
    {"for letting us know", E_THANKS, 0.9f},
};

#define GW_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------------------- */
/* Hash table: open addressing with linear probing. A key's hash is built from its words'
 * hashes (gw_word_hash, joined by gw_hash_join), so that phrase matching extends a key word by
 * word from hashes the tokenizer already computed. */

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

_Static_assert(GW_TOKEN_MAX_BYTES % 16 == 0, "token texts are readable in 16-byte blocks");

static uint64_t gw_word_hash(const char *s, size_t n) {
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
static uint64_t gw_key_state(const char *s, size_t n) {
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

/* The probe array holds 32 bits of each hash (never 0, which marks an empty slot): half the
 * cache footprint of full hashes; the key comparison decides. */
static uint32_t gw_hash_tag(uint64_t h) {
  return (uint32_t)(h >> 32) | 1u;
}

/* The bit of a key in its Bloom word: one bit filters almost as well as two for a table this
 * size and costs half the work on every lookup. */
static uint64_t gw_bloom_bits(uint64_t h) {
  return 1ULL << ((h >> 40) & 63);
}

/* The stored form of a hash state: 0 marks an empty slot. */
static uint64_t gw_hash_final(uint64_t h) {
  return h ? h : 1;
}

static uint64_t gw_key_hash(const char *s, size_t n) {
  return gw_hash_final(gw_key_state(s, n));
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

static const gw_lex_entry *gw_lex_find(const gw_feeling_model *m, const char *key, size_t n) {
  return gw_lex_find_hp(m, gw_key_state(key, n), key, n, 0);
}

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

/* Finds or inserts key; *created tells which. The table stays at most half full. Entry
 * pointers are valid until the next insertion. */
static int gw_lex_upsert(gw_feeling_model *m, const char *key, size_t n, unsigned ntokens,
                         gw_lex_entry **out, int *created) {
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
      *created = 0;
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
  *created = 1;
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokenizer. */

enum {
  T_CAPS = 1u << 0,     /* two or more letters, all upper case */
  T_ELONG = 1u << 1,    /* a letter repeated three or more times: "sooo" */
  T_BOUNDARY = 1u << 2, /* clause punctuation before this token */
  T_SYMBOL = 1u << 3,   /* emoticon chunk matched as a whole: ":-)" */
  T_EMOJI = 1u << 4,
  T_LETTERS = 1u << 5, /* has a letter: counts as a word for caps and low-information */
  T_QEND = 1u << 6,    /* the last token before a '?' */
  T_SEND = 1u << 7,    /* the last token before a '.' or '!' */
};

typedef struct gw_token {
  const gw_lex_entry *e; /* the token's own entry (any kind), looked up once; NULL: none */
  uint64_t state;        /* gw_word_hash of text, for lookups and phrase keys */
  char text[GW_TOKEN_MAX_BYTES];
  uint8_t len;
  uint8_t flags;
} gw_token;

typedef struct gw_tokens {
  gw_token *v;
  size_t n, cap;
  gw_token inline_v[64];
  unsigned excl, quest;
  unsigned pending_boundary;
} gw_tokens;

static void gw_tokens_init(gw_tokens *t) {
  /* The inline tokens are written before they are read: clearing them would cost more than
   * scoring a short utterance. */
  t->n = 0;
  t->excl = t->quest = t->pending_boundary = 0;
  t->v = t->inline_v;
  t->cap = GW_NELEM(t->inline_v);
}

static void gw_tokens_free(gw_tokens *t) {
  if (t->v != t->inline_v)
    free(t->v);
}

/* Doubles the token array (the slow path of gw_tokens_push); NULL at the token limit or when
 * memory is short. */
static gw_token *gw_tokens_grow(gw_tokens *t) {
  if (t->cap >= GW_UTTERANCE_MAX_TOK)
    return NULL;
  size_t ncap = t->cap * 2;
  gw_token *nv = malloc(ncap * sizeof(*nv));
  if (!nv)
    return NULL;
  memcpy(nv, t->v, t->n * sizeof(*nv));
  if (t->v != t->inline_v)
    free(t->v);
  t->v = nv;
  t->cap = ncap;
  return t->v;
}

/* Returns a new token slot, or NULL when the utterance is over the token limit or memory is
 * short: the rest of the text is then not scored (documented), never a crash. */
static inline gw_token *gw_tokens_push(gw_tokens *t) {
  if (t->n == t->cap && !gw_tokens_grow(t))
    return NULL;
  gw_token *tok = &t->v[t->n++];
  tok->len = 0;
  tok->e = NULL;
  tok->state = 0;
  tok->flags = t->pending_boundary ? T_BOUNDARY : 0;
  t->pending_boundary = 0;
  return tok;
}

/* gw_tokens_push for the word fast path, which sets the token's text, length, hash state and
 * entry itself (gw_token_finish): only the flags are set here. */
static inline gw_token *gw_tokens_push_word(gw_tokens *t) {
  if (t->n == t->cap && !gw_tokens_grow(t))
    return NULL;
  gw_token *tok = &t->v[t->n++];
  tok->flags = t->pending_boundary ? T_BOUNDARY : 0;
  t->pending_boundary = 0;
  return tok;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 for an invalid byte. */
static size_t gw_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if ((c & 0xe0) == 0xc0) {
    len = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return len;
}

/* Byte classes for the tokenizer's innermost loops: ASCII letter or digit, ASCII letter, ASCII
 * upper case (the top bit of the three, so that `cls >> 2` is 0 or 1), sentence punctuation that
 * may trail a word, ASCII white space. Bytes from 0x80 are none of these. */
enum { C_ALNUM = 1, C_LETTER = 2, C_UPPER = 4, C_TRAIL = 8, C_SPACE = 16 };
static const uint8_t gw_byte_class[256] = {
    0, 0, 0, 0,  0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 16, 8, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 8, 0, 8, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 8, 0, 0,  0, 8, 0, 7, 7, 7,  7,  7,  7,  7,  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7,  0, 0, 0, 0, 0, 0,  3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3,  3, 3, 3, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The word loop's view of a byte: bits 0-7 the lower-cased ASCII letter or digit (0 for every
 * other byte), bit 16 set for a letter, bit 24 for an upper-case one. Summed over a word (fewer
 * than 48 bytes, so bits 0-15 never carry into bit 16) it counts letters in bits 16-23 and
 * upper-case letters in bits 24-31, with one addition per byte. */
static const uint32_t gw_byte_fold[256] = {
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0x30,      0x31,      0x32,      0x33,      0x34,      0x35,      0x36,      0x37,
    0x38,      0x39,      0,         0,         0,         0,         0,         0,
    0,         0x1010061, 0x1010062, 0x1010063, 0x1010064, 0x1010065, 0x1010066, 0x1010067,
    0x1010068, 0x1010069, 0x101006a, 0x101006b, 0x101006c, 0x101006d, 0x101006e, 0x101006f,
    0x1010070, 0x1010071, 0x1010072, 0x1010073, 0x1010074, 0x1010075, 0x1010076, 0x1010077,
    0x1010078, 0x1010079, 0x101007a, 0,         0,         0,         0,         0,
    0,         0x10061,   0x10062,   0x10063,   0x10064,   0x10065,   0x10066,   0x10067,
    0x10068,   0x10069,   0x1006a,   0x1006b,   0x1006c,   0x1006d,   0x1006e,   0x1006f,
    0x10070,   0x10071,   0x10072,   0x10073,   0x10074,   0x10075,   0x10076,   0x10077,
    0x10078,   0x10079,   0x1007a,   0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
};

static int gw_is_ascii_alnum(unsigned char c) {
  return gw_byte_class[c] & C_ALNUM;
}

static int gw_is_ascii_space(unsigned char c) {
  return gw_byte_class[c] & C_SPACE;
}

static int gw_is_space_cp(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
         cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x3000;
}

static int gw_is_emoji_cp(uint32_t cp) {
  return (cp >= 0x1f000 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf) || cp == 0x2b50 ||
         cp == 0x2b55 || cp == 0x2b06 || cp == 0x2b07 || cp == 0x2b05 || cp == 0x2b1b ||
         cp == 0x2b1c;
}

/* Variation selectors, the zero-width joiner and skin-tone modifiers only dress an emoji. */
static int gw_is_emoji_dress_cp(uint32_t cp) {
  return cp == 0xfe0f || cp == 0xfe0e || cp == 0x200d || (cp >= 0x1f3fb && cp <= 0x1f3ff);
}

static int gw_is_apostrophe_cp(uint32_t cp) {
  return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x02bc;
}

/* Clause punctuation: stops negation and modifier windows and phrase matches. */
static int gw_is_boundary_cp(uint32_t cp) {
  return cp == ',' || cp == '.' || cp == ';' || cp == ':' || cp == '(' || cp == ')' || cp == '"' ||
         cp == 0x2026 || cp == 0x2013 || cp == 0x2014 || cp == 0x201c || cp == 0x201d ||
         cp == 0x3002 || cp == 0xff0c;
}

static int gw_is_word_cp(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  /* Letters of other scripts stay inside words; symbols and punctuation blocks do not. */
  return !(gw_is_space_cp(cp) || gw_is_emoji_cp(cp) || gw_is_emoji_dress_cp(cp) ||
           gw_is_apostrophe_cp(cp) || gw_is_boundary_cp(cp) || (cp >= 0x2000 && cp <= 0x2bff) ||
           (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
           (cp >= 0xff00 && cp <= 0xff20) || cp == 0xa1 || cp == 0xbf || cp == 0xab || cp == 0xbb);
}

/* Word being assembled: lower-cased ASCII, other code points copied. */
typedef struct gw_word {
  char text[GW_TOKEN_MAX_BYTES];
  size_t len;
  unsigned letters, upper;
  int too_long;
  int elong;
  char last;
  unsigned run;
} gw_word;

static void gw_word_add(gw_word *w, const unsigned char *s, size_t n, uint32_t cp) {
  if (w->len + n >= GW_TOKEN_MAX_BYTES) {
    w->too_long = 1;
    return;
  }
  if (cp < 0x80) {
    char c = (char)cp;
    if (c >= 'A' && c <= 'Z') {
      w->upper++;
      w->letters++;
      c = (char)(c - 'A' + 'a');
    } else if (c >= 'a' && c <= 'z') {
      w->letters++;
    }
    if (c >= 'a' && c <= 'z' && c == w->last) {
      if (++w->run >= 3)
        w->elong = 1;
    } else {
      w->run = 1;
    }
    w->last = c;
    w->text[w->len++] = c;
  } else {
    w->letters++;
    w->last = 0;
    w->run = 0;
    memcpy(w->text + w->len, s, n);
    w->len += n;
  }
}

/* gw_word_add for a run of ASCII letters and digits, the common case, in one tight loop. */
static void gw_word_add_ascii(gw_word *w, const unsigned char *s, size_t n) {
  if (w->len + n >= GW_TOKEN_MAX_BYTES) {
    w->too_long = 1;
    return;
  }
  char last = w->last;
  unsigned run = w->run;
  for (size_t i = 0; i < n; i++) {
    char c = (char)s[i];
    if (c >= 'A' && c <= 'Z') {
      w->upper++;
      c = (char)(c - 'A' + 'a');
    }
    if (c >= 'a' && c <= 'z') {
      w->letters++;
      if (c == last) {
        if (++run >= 3)
          w->elong = 1;
      } else {
        run = 1;
      }
    } else {
      run = 1;
    }
    last = c;
    w->text[w->len++] = c;
  }
  w->last = last;
  w->run = run;
}

static void gw_word_reset(gw_word *w) {
  w->len = 0;
  w->letters = w->upper = 0;
  w->too_long = w->elong = 0;
  w->last = 0;
  w->run = 0;
}

/* Collapses runs of three or more equal letters to at most `keep` letters. */
static size_t gw_collapse_runs(const char *in, size_t n, unsigned keep, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && in[j] == in[i] && in[i] >= 'a' && in[i] <= 'z')
      j++;
    size_t run = j - i;
    size_t copy = run >= 3 ? keep : run;
    for (size_t k = 0; k < copy; k++)
      out[o++] = in[i];
    i = j;
  }
  return o;
}

/* Whether the lexicon or the rules know the key as a word of their own (a phrase prefix alone
 * does not count). */
static int gw_lex_has(const gw_feeling_model *m, const char *s, size_t n) {
  const gw_lex_entry *e = m ? gw_lex_find(m, s, n) : NULL;
  return e && e->kind != 0;
}

/* Looks the finished token up once: every later rule uses tok->e and tok->state. */
static void gw_token_lookup(gw_token *tok, const gw_feeling_model *m) {
  tok->state = gw_word_hash_padded(tok->text, tok->len);
  tok->e = m && tok->len ? gw_lex_find_h(m, tok->state, tok->text, tok->len) : NULL;
}

/* Laughter has no fixed length: "hahahaha", "hehehe", "lololol" score as the lexicon's
 * "haha" / "lol" when it has them. */
static void gw_token_laughter(gw_token *tok, const gw_feeling_model *m) {
  const char *w = tok->text;
  size_t n = tok->len;
  const char *as = NULL;
  if (w[0] == 'h' && (w[1] == 'a' || w[1] == 'e')) {
    size_t i = 0;
    while (i + 1 < n && w[i] == 'h' && w[i + 1] == w[1])
      i += 2;
    if (i == n || (i + 1 == n && w[i] == 'h'))
      as = "haha";
  } else if (w[0] == 'l' && w[1] == 'o') {
    size_t i = 1;
    while (i + 1 < n && w[i] == 'o' && w[i + 1] == 'l')
      i += 2;
    if (i == n)
      as = "lol";
  }
  if (as)
    tok->e = gw_lex_find(m, as, strlen(as));
}

/* The elongated word's entry: "goooood" -> "good", "sooo" -> "so": the as-written form, then
 * runs cut to two, then to one, whichever the lexicon knows (the two-letter form when none
 * does). Rare, so kept out of gw_token_finish, which the word loops inline. */
static void gw_token_elong(gw_token *tok, uint64_t state, const gw_feeling_model *m) {
  if (!gw_lex_has(m, tok->text, tok->len)) {
    char two[GW_TOKEN_MAX_BYTES], one[GW_TOKEN_MAX_BYTES];
    size_t n2 = gw_collapse_runs(tok->text, tok->len, 2, two);
    size_t n1 = gw_collapse_runs(tok->text, tok->len, 1, one);
    if (!gw_lex_has(m, two, n2) && gw_lex_has(m, one, n1)) {
      memcpy(tok->text, one, n1);
      tok->len = (uint8_t)n1;
    } else {
      memcpy(tok->text, two, n2);
      tok->len = (uint8_t)n2;
    }
    gw_token_lookup(tok, m);
    return;
  }
  tok->state = state;
  tok->e = tok->len ? gw_lex_find_h(m, state, tok->text, tok->len) : NULL;
  if (!tok->e && tok->len >= 5)
    gw_token_laughter(tok, m);
}

/* Sets a word token's flags, hash and entry once its text (lower-cased, len bytes) is in
 * place. */
static inline __attribute__((always_inline)) void gw_token_finish(gw_token *tok, unsigned letters,
                                                                  unsigned upper, int elong,
                                                                  const gw_feeling_model *m) {
  uint64_t state = gw_word_hash_padded(tok->text, tok->len);
  if (letters > 0)
    tok->flags |= T_LETTERS;
  if (letters >= 2 && upper == letters)
    tok->flags |= T_CAPS;
  if (elong) {
    tok->flags |= T_ELONG;
    if (m) {
      gw_token_elong(tok, state, m);
      return;
    }
  }
  tok->state = state;
  tok->e = m && tok->len ? gw_lex_find_h(m, state, tok->text, tok->len) : NULL;
  /* Laughter starts with 'h' or 'l': other unknown words need no call. */
  if (!tok->e && m && tok->len >= 5 && (tok->text[0] == 'h' || tok->text[0] == 'l'))
    gw_token_laughter(tok, m);
}

static void gw_word_flush(gw_tokens *t, gw_word *w, const gw_feeling_model *m) {
  if (w->len == 0 && !w->too_long)
    goto reset;
  gw_token *tok = gw_tokens_push(t);
  if (!tok)
    goto reset;
  if (w->too_long) {
    /* A token no entry can match: it still counts as a word for windows. */
    tok->len = 0;
    tok->flags |= T_LETTERS;
    goto reset;
  }
  memcpy(tok->text, w->text, w->len);
  tok->len = (uint8_t)w->len;
  gw_token_finish(tok, w->letters, w->upper, w->elong, m);
reset:
  gw_word_reset(w);
}

static void gw_push_bytes_token(gw_tokens *t, const char *s, size_t n, uint8_t flags,
                                const gw_feeling_model *m) {
  if (n >= GW_TOKEN_MAX_BYTES)
    return;
  gw_token *tok = gw_tokens_push(t);
  if (!tok)
    return;
  memcpy(tok->text, s, n);
  tok->len = (uint8_t)n;
  tok->flags |= flags;
  gw_token_lookup(tok, m);
}

/* Counts emphasis and marks where sentences end (for the question rule). */
static void gw_count_punct(gw_tokens *t, unsigned char c) {
  if (c == '!')
    t->excl++;
  else if (c == '?')
    t->quest++;
  if (t->n > 0 && (c == '!' || c == '?' || c == '.'))
    t->v[t->n - 1].flags |= c == '?' ? T_QEND : T_SEND;
}

/* Splits one whitespace-free chunk into words, emoji and punctuation. */
static void gw_tokenize_chunk(gw_tokens *t, const unsigned char *s, size_t n,
                              const gw_feeling_model *m) {
  gw_word w;
  gw_word_reset(&w);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    unsigned char c = s[i];
    if (gw_is_ascii_alnum(c)) {
      /* Most bytes are ASCII letters: add the run without decoding or classifying. */
      size_t j = i + 1;
      while (j < n && gw_is_ascii_alnum(s[j]))
        j++;
      gw_word_add_ascii(&w, s + i, j - i);
      i = j;
      continue;
    }
    size_t l = gw_utf8_decode(s + i, n - i, &cp);
    if (l == 0) {
      /* Invalid UTF-8: the byte separates words and is otherwise ignored. */
      gw_word_flush(t, &w, m);
      i++;
      continue;
    }
    if (gw_is_emoji_dress_cp(cp)) {
      /* Skin tones, variation selectors and joiners add nothing to the emoji's meaning. */
    } else if (gw_is_word_cp(cp)) {
      gw_word_add(&w, s + i, l, cp);
    } else if ((gw_is_apostrophe_cp(cp) || cp == '-') && (w.len > 0 || w.too_long) && i + l < n &&
               gw_is_word_cp(s[i + l] < 0x80 ? s[i + l] : 0x80)) {
      /* Inside a word: "don't", "it’s", "follow-up". Typographic apostrophes become '\''. */
      const unsigned char ap = cp == '-' ? '-' : '\'';
      gw_word_add(&w, &ap, 1, ap);
      w.run = 0;
      w.last = 0;
    } else {
      gw_word_flush(t, &w, m);
      if (gw_is_emoji_cp(cp)) {
        gw_push_bytes_token(t, (const char *)s + i, l, T_EMOJI, m);
      } else if (cp == '!' || cp == '?') {
        gw_count_punct(t, (unsigned char)cp);
        t->pending_boundary = 1;
      } else if (gw_is_boundary_cp(cp)) {
        gw_count_punct(t, cp == '.' || cp == 0x2026 || cp == 0x3002 ? '.' : ',');
        t->pending_boundary = 1;
      }
    }
    i += l;
  }
  gw_word_flush(t, &w, m);
}

static int gw_is_trailing_punct(unsigned char c) {
  return gw_byte_class[c] & C_TRAIL;
}

#if GW_FEELING_SSE2
/* The word loop for sixteen bytes at once (SSE2, part of every x86-64): classifies the bytes of
 * s (fewer than 16 when the text ends: the rest read as 0, which ends a word), writes all 16
 * lower-cased to out (which must have room for them), and returns how many of them lead the
 * block as ASCII letters or digits. Adds their letter and upper-case counts to *counts as the
 * byte loop does, and sets *dup when the word may be elongated (prev: the byte before the
 * block, 0 at a word's start). Same tokens as the byte loop, which is the reference. */
static inline unsigned gw_fold16(const unsigned char *s, size_t avail, char *out, unsigned prev,
                                 unsigned *counts, unsigned *dup) {
  __m128i v;
  if (avail >= 16) {
    v = _mm_loadu_si128((const __m128i *)(const void *)s);
  } else {
    unsigned char b[16] = {0};
    for (size_t j = 0; j < avail; j++)
      b[j] = s[j];
    v = _mm_loadu_si128((const __m128i *)(const void *)b);
  }
  /* Signed compares: bytes from 0x80 are negative and fall outside every range. */
  __m128i lx = _mm_or_si128(v, _mm_set1_epi8(0x20));
  __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lx, _mm_set1_epi8('a' - 1)),
                                _mm_cmplt_epi8(lx, _mm_set1_epi8('z' + 1)));
  __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
  __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
  unsigned word = (unsigned)_mm_movemask_epi8(_mm_or_si128(alpha, digit));
  unsigned stop = ~word & 0xffffu;
  unsigned k = stop ? (unsigned)__builtin_ctz(stop) : 16;
  unsigned in = (1u << k) - 1;
  __m128i low = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
  _mm_storeu_si128((__m128i *)(void *)out, low);
  /* Letters in the low half, upper case in the high half, counted together (16-bit lanes). */
  uint32_t x =
      ((unsigned)_mm_movemask_epi8(alpha) & in) | (((unsigned)_mm_movemask_epi8(upper) & in) << 16);
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  x = (x + (x >> 8)) & 0x001f001fu;
  *counts += ((x & 0xffu) << 16) + ((x >> 16) << 24);
  /* Elongation candidates: a byte equal to the two before it, or the first one equal to the
   * byte before the block (the run may have started there). gw_tokenize_ascii_word checks
   * candidates exactly; most doubled letters ("good", "all") are no candidates. */
  __m128i before = _mm_or_si128(_mm_slli_si128(low, 1), _mm_cvtsi32_si128((int)prev));
  unsigned same = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(low, before));
  *dup |= (((same & (same << 1)) | (same & 1u)) & in) != 0;
  return k;
}
#endif

/* A chunk of ASCII letters and digits with only sentence punctuation after them tokenizes to
 * itself, so the loader never makes it a symbol (gw_entry_key): most chunks are such words and
 * need no symbol lookup (`shape` in gw_tokenize). */

/* The common chunk in one pass: an ASCII word of letters and digits, shorter than a token,
 * possibly with inner apostrophes or hyphens ("don't", "follow-up"), with only sentence
 * punctuation after it. Returns the bytes used, or 0 when the chunk is anything else (then the
 * general path reads it from its start). Same tokens as gw_tokenize_chunk. */
static size_t gw_tokenize_ascii_word(gw_tokens *t, const unsigned char *s, size_t len,
                                     const gw_feeling_model *m) {
  /* One pass over the word's bytes: classify, lower-case, count and find elongation candidates
   * while copying into the token; gw_token_finish hashes the finished token. The token is taken
   * first and given back when the chunk turns out not to be a plain word; at the token limit
   * the bytes go to a scratch buffer. */
  unsigned pending = t->pending_boundary;
  gw_token *tok = gw_tokens_push_word(t);
  char scratch[GW_TOKEN_MAX_BYTES];
  char *out = tok ? tok->text : scratch;
  unsigned counts = 0, dup = 0, prev = 0;
  /* A word of GW_TOKEN_MAX_BYTES or more is too long for a token: the loop stops one byte
   * short of that, so that it needs no bounds check of its own (checked once after it). */
  size_t lim = len < GW_TOKEN_MAX_BYTES - 1 ? len : GW_TOKEN_MAX_BYTES - 1;
  size_t i = 0;
  for (;;) {
#if GW_FEELING_SSE2
    /* Sixteen bytes at a time while they fit into the token: most words end in the first
     * block, so finding a word's end costs no data-dependent branch per byte. */
    while (i + 16 <= GW_TOKEN_MAX_BYTES) {
      unsigned k = gw_fold16(s + i, len - i, out + i, prev, &counts, &dup);
      i += k;
      if (k < 16)
        goto word_end;
      prev = (unsigned char)out[i - 1];
    }
#endif
    /* The rest of a long word, or every word without SSE2, a byte at a time. */
    for (; i < lim; i++) {
      uint32_t f = gw_byte_fold[s[i]];
      unsigned c = f & 0xffu;
      if (c == 0)
        break;
      counts += f;
      /* A doubled byte is only a candidate for elongation, checked below. */
      dup |= c == prev;
      prev = c;
      out[i] = (char)c;
    }
#if GW_FEELING_SSE2
  word_end:
#endif
    if (i >= lim)
      break;
    /* An inner apostrophe or hyphen keeps the word going ("don't", "follow-up"), as in
     * gw_tokenize_chunk; it is no letter, so no run of letters crosses it. */
    unsigned char c = s[i];
    if ((c != '\'' && c != '-') || i + 2 > lim || !(gw_byte_fold[s[i + 1]] & 0xffu))
      break;
    out[i] = (char)c;
    prev = c;
    i++;
  }
  if (i > GW_TOKEN_MAX_BYTES - 1 ||
      (i == GW_TOKEN_MAX_BYTES - 1 && i < len && (gw_byte_fold[s[i]] & 0xffu)))
    goto decline;
  size_t wl = i;
  /* Most words end at a space or the end of the text; the rest at sentence punctuation. */
  int trailing = i < len && !gw_is_ascii_space(s[i]);
  if (trailing) {
    while (i < len && gw_is_trailing_punct(s[i]))
      i++;
    if (i < len && !gw_is_ascii_space(s[i]))
      goto decline;
  }
  if (tok) {
    /* Three equal letters in a row ("sooo"): the same test as gw_word_add's run count, run
     * only for the words that may have one (dup). */
    int elong = 0;
    for (size_t k = 2; dup && k < wl && !elong; k++)
      elong = out[k] == out[k - 1] && out[k] == out[k - 2] && out[k] >= 'a' && out[k] <= 'z';
    tok->len = (uint8_t)wl;
    gw_token_finish(tok, (counts >> 16) & 0xffu, counts >> 24, elong, m);
  }
  for (size_t k = wl; trailing && k < i; k++) {
    gw_count_punct(t, s[k]);
    t->pending_boundary = 1;
  }
  /* The space after the word, if any: one trip less through gw_tokenize's loop per word. */
  return i + (i < len && s[i] == ' ');
decline:
  if (tok) {
    t->n--;
    t->pending_boundary = pending;
  }
  return 0;
}

/* Tokenizes text. With a model, a whitespace-separated chunk that is a symbol entry of the
 * lexicon (an emoticon such as ":-)" or "</3") becomes one token, also when sentence
 * punctuation follows it; without a model (lexicon keys) only words are produced. */
static void gw_tokenize(gw_tokens *t, const char *text, size_t len, const gw_feeling_model *m) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    uint32_t cp;
    size_t l;
    if (s[i] < 0x80) {
      if (gw_is_ascii_space(s[i])) {
        i++;
        continue;
      }
    } else if ((l = gw_utf8_decode(s + i, len - i, &cp)) > 0 && gw_is_space_cp(cp)) {
      i += l;
      continue;
    }
    size_t start = i;
    /* A hashtag or mention ("#fail", "@support"): the general path drops the sign and reads
     * the word, so the word's fast path gives the same tokens when no symbol starts with the
     * sign. One call site, so that the compiler inlines the fast path. */
    size_t sign = 0;
    if (!gw_is_ascii_alnum(s[i]))
      sign = (s[i] == '#' || s[i] == '@') && m && !m->symbol_first[s[i]] && i + 1 < len;
    if (gw_is_ascii_alnum(s[i + sign])) {
      size_t used = gw_tokenize_ascii_word(t, s + i + sign, len - i - sign, m);
      if (used) {
        i += sign + used;
        continue;
      }
    }
    /* While finding the chunk's end, tell plain words from possible symbols (shape):
     * 0 letters and digits so far, 1 sentence punctuation after them, 2 anything else. */
    int shape = gw_is_ascii_alnum(s[i]) ? 0 : 2;
    while (i < len) {
      unsigned char c = s[i];
      if (c < 0x80) {
        if (gw_is_ascii_space(c))
          break;
        if (gw_is_ascii_alnum(c))
          shape = shape == 1 ? 2 : shape;
        else if (gw_is_trailing_punct(c))
          shape = shape == 0 ? 1 : shape;
        else
          shape = 2;
        i++;
        continue;
      }
      shape = 2;
      l = gw_utf8_decode(s + i, len - i, &cp);
      if (l > 0 && gw_is_space_cp(cp))
        break;
      i += l ? l : 1;
    }
    size_t clen = i - start;
    if (m && shape == 2 && m->symbol_first[s[start]]) {
      size_t core = clen;
      while (core > 1 && gw_is_trailing_punct(s[start + core - 1]))
        core--;
      const gw_lex_entry *e = NULL;
      size_t used = 0;
      if (clen < GW_TOKEN_MAX_BYTES && (e = gw_lex_find(m, (const char *)s + start, clen)) &&
          (e->kind & K_SYMBOL))
        used = clen;
      else if (core < clen && (e = gw_lex_find(m, (const char *)s + start, core)) &&
               (e->kind & K_SYMBOL))
        used = core;
      if (used) {
        gw_push_bytes_token(t, (const char *)s + start, used, T_SYMBOL, m);
        for (size_t k = start + used; k < start + clen; k++)
          gw_count_punct(t, s[k]);
        if (used < clen)
          t->pending_boundary = 1;
        continue;
      }
    }
    if (m && shape == 2) {
      /* An emoticon glued to the word before it ("great:)", "sad:-("): the words, then the
       * symbol. The suffix starts at punctuation that can begin a symbol entry. */
      size_t core = clen;
      while (core > 1 && gw_is_trailing_punct(s[start + core - 1]))
        core--;
      size_t cut = 0;
      for (size_t p = 1; p < core && !cut; p++) {
        unsigned char c = s[start + p];
        if (c < 0x80 && !gw_is_ascii_alnum(c) && m->symbol_first[c] &&
            core - p < GW_TOKEN_MAX_BYTES) {
          const gw_lex_entry *e = gw_lex_find(m, (const char *)s + start + p, core - p);
          if (e && (e->kind & K_SYMBOL))
            cut = p;
        }
      }
      if (cut) {
        gw_tokenize_chunk(t, s + start, cut, m);
        t->pending_boundary = 1;
        gw_push_bytes_token(t, (const char *)s + start + cut, core - cut, T_SYMBOL, m);
        for (size_t k = start + core; k < start + clen; k++)
          gw_count_punct(t, s[k]);
        if (core < clen)
          t->pending_boundary = 1;
        continue;
      }
    }
    gw_tokenize_chunk(t, s + start, clen, m);
  }
}

/* Joins tokens [i, i+k) with single spaces; returns 0 when a phrase would cross clause
 * punctuation or include an unmatchable token. */
static size_t gw_phrase_key(const gw_tokens *t, size_t i, size_t k, char *out) {
  size_t o = 0;
  for (size_t j = i; j < i + k; j++) {
    const gw_token *tok = &t->v[j];
    if (tok->len == 0 || (j > i && (tok->flags & T_BOUNDARY)))
      return 0;
    if (j > i)
      out[o++] = ' ';
    memcpy(out + o, tok->text, tok->len);
    o += tok->len;
  }
  return o;
}

/* Longest entry of one of the kinds in mask starting at token i; *ntok gets its length. Every
 * proper prefix of a phrase is in the table (prefix_kinds), so the match grows word by word and
 * stops at the first key that no phrase starts with: one lookup per word in the common case. */
static const gw_lex_entry *gw_match(const gw_feeling_model *m, const gw_tokens *t, size_t i,
                                    unsigned mask, size_t *ntok) {
  const gw_token *tok = &t->v[i];
  const gw_lex_entry *e = tok->e, *best = NULL;
  if (!e)
    return NULL;
  if (e->kind & mask) {
    best = e;
    *ntok = 1;
  }
  if (!(e->prefix_kinds & mask))
    return best;
  /* The key is built from whole token buffers (fixed-size copies, no loop over the bytes) and
   * its hash from the tokens' hashes: no byte of the text is read again. */
  char key[GW_PHRASE_KEY_BYTES + GW_TOKEN_MAX_BYTES];
  size_t n = tok->len;
  uint64_t h = tok->state;
  memcpy(key, tok->text, GW_TOKEN_MAX_BYTES);
  for (size_t j = i + 1; j < t->n && j - i < GW_PHRASE_MAX_TOKENS; j++) {
    const gw_token *nt = &t->v[j];
    if (nt->len == 0 || (nt->flags & T_BOUNDARY))
      break;
    key[n++] = ' ';
    memcpy(key + n, nt->text, GW_TOKEN_MAX_BYTES);
    n += nt->len;
    h = gw_hash_join(h, nt->state);
    e = gw_lex_find_h(m, h, key, n);
    if (!e)
      break;
    if (e->kind & mask) {
      best = e;
      *ntok = j - i + 1;
    }
    if (!(e->prefix_kinds & mask))
      break;
  }
  return best;
}

/* ---------------------------------------------------------------------------------------- */
/* Loader. */

typedef enum gw_lex_format { FMT_UNKNOWN, FMT_GOODWILL, FMT_VADER, FMT_AFINN } gw_lex_format;

static const char *const gw_category_names[GW_FEELING_COUNT] = {
    "anger",     "frustration", "confusion",    "anxiety", "sadness",
    "gratitude", "relief",      "satisfaction", "delight"};

/* The key of a lexicon entry in the form text tokens are looked up in. Returns the number of
 * tokens (0: no words) and sets *symbol for emoticon-like single chunks kept as written. */
static int gw_entry_key(const char *raw, size_t n, char *key, size_t *keylen, int *symbol) {
  gw_tokens t;
  gw_tokens_init(&t);
  gw_tokenize(&t, raw, n, NULL);
  int has_space = 0;
  for (size_t i = 0; i < n; i++)
    if (raw[i] == ' ' || raw[i] == '\t')
      has_space = 1;
  int rc;
  *symbol = 0;
  /* The raw key lower-cased, with typographic apostrophes as '\'', to compare with tokens. */
  char low[GW_PHRASE_KEY_BYTES];
  size_t lown = 0;
  for (size_t i = 0; i < n && lown + 1 < sizeof(low); i++) {
    unsigned char c = (unsigned char)raw[i];
    if (c == 0xe2 && i + 2 < n && (unsigned char)raw[i + 1] == 0x80 &&
        ((unsigned char)raw[i + 2] == 0x99 || (unsigned char)raw[i + 2] == 0x98)) {
      low[lown++] = '\'';
      i += 2;
      continue;
    }
    low[lown++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  if (!has_space && !(t.n == 1 && t.v[0].len == lown && memcmp(t.v[0].text, low, lown) == 0)) {
    if (n >= GW_TOKEN_MAX_BYTES || n == 0) {
      rc = -1;
    } else {
      memcpy(key, raw, n);
      *keylen = n;
      *symbol = 1;
      rc = 1;
    }
  } else if (t.n == 0) {
    rc = 0;
  } else if (t.n > GW_PHRASE_MAX_TOKENS) {
    rc = -2;
  } else {
    size_t kn = gw_phrase_key(&t, 0, t.n, key);
    /* Punctuation inside a phrase key ("thanks, bye") is dropped: texts match without it. */
    if (kn == 0) {
      kn = 0;
      for (size_t j = 0; j < t.n; j++) {
        if (t.v[j].len == 0) {
          kn = 0;
          break;
        }
        if (j)
          key[kn++] = ' ';
        memcpy(key + kn, t.v[j].text, t.v[j].len);
        kn += t.v[j].len;
      }
    }
    *keylen = kn;
    rc = kn ? (int)t.n : -1;
  }
  gw_tokens_free(&t);
  return rc;
}

typedef struct gw_loader {
  gw_feeling_model *m;
  const char *src; /* file name for messages */
  char *err;
  size_t errlen;
} gw_loader;

static int gw_load_fail(gw_loader *L, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gw_load_fail(gw_loader *L, size_t line, const char *fmt, ...) {
  if (L->err && L->errlen) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
      snprintf(L->err, L->errlen, "%s:%zu: %s", L->src, line, msg);
    else
      snprintf(L->err, L->errlen, "%s: %s", L->src, msg);
  }
  return -EINVAL;
}

static int gw_parse_double(const char *s, size_t n, double *out) {
  char buf[64];
  if (n == 0 || n >= sizeof(buf))
    return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (end != buf + n || errno != 0 || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

static int gw_is_integer(const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && (s[0] == '-' || s[0] == '+'))
    i = 1;
  if (i == n)
    return 0;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int gw_parse_categories(gw_loader *L, size_t line, const char *s, size_t n,
                               float cats[GW_FEELING_COUNT]) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    size_t a = i, b = j;
    while (a < b && s[a] == ' ')
      a++;
    while (b > a && s[b - 1] == ' ')
      b--;
    if (a < b) {
      const char *colon = memchr(s + a, ':', b - a);
      if (!colon)
        return gw_load_fail(L, line, "category \"%.*s\" needs an intensity: name:0..1",
                            (int)(b - a), s + a);
      size_t nlen = (size_t)(colon - (s + a));
      int c = -1;
      for (int k = 0; k < GW_FEELING_COUNT; k++)
        if (strlen(gw_category_names[k]) == nlen && memcmp(gw_category_names[k], s + a, nlen) == 0)
          c = k;
      if (c < 0)
        return gw_load_fail(L, line,
                            "unknown category \"%.*s\" (known: anger, frustration, confusion, "
                            "anxiety, sadness, gratitude, relief, satisfaction, delight)",
                            (int)nlen, s + a);
      double v;
      const char *vs = colon + 1;
      if (gw_parse_double(vs, (size_t)(s + b - vs), &v) < 0 || v < 0 || v > 1)
        return gw_load_fail(L, line, "intensity of \"%s\" must be a number in 0..1, got \"%.*s\"",
                            gw_category_names[c], (int)(s + b - vs), vs);
      cats[c] = (float)v;
    }
    i = j + 1;
  }
  return 0;
}

/* Marks every proper prefix of a phrase key ("third time" of "third time calling") so that
 * gw_match knows when to read on. Call after the last use of the phrase's own entry pointer:
 * inserting may grow the table. */
static int gw_lex_add_prefixes(gw_feeling_model *m, const char *key, size_t keylen, unsigned kind) {
  unsigned words = 1;
  for (size_t i = 0; i < keylen; i++) {
    if (key[i] != ' ')
      continue;
    gw_lex_entry *p;
    int created;
    int rc = gw_lex_upsert(m, key, i, words, &p, &created);
    if (rc < 0)
      return rc;
    p->prefix_kinds |= (uint8_t)kind;
    words++;
  }
  return 0;
}

static int gw_load_line(gw_loader *L, gw_lex_format *fmt, size_t line, const char *s, size_t n,
                        size_t *first_line_of_dup) {
  const char *f[5];
  size_t fl[5];
  size_t nf = 0;
  size_t i = 0;
  while (nf < 5) {
    size_t j = i;
    while (j < n && s[j] != '\t')
      j++;
    f[nf] = s + i;
    fl[nf] = j - i;
    nf++;
    if (j >= n)
      break;
    i = j + 1;
  }
  if (nf == 5)
    return gw_load_fail(L, line, "too many tab-separated fields");
  if (*fmt == FMT_UNKNOWN) {
    if (nf == 4 && fl[3] > 0 && f[3][0] == '[')
      *fmt = FMT_VADER;
    else if (nf == 2 && gw_is_integer(f[1], fl[1]))
      *fmt = FMT_AFINN;
    else if (nf == 2 || nf == 3)
      *fmt = FMT_GOODWILL;
    else
      return gw_load_fail(L, line,
                          "cannot tell the lexicon format: expected token<TAB>valence"
                          "[<TAB>categories], token<TAB>mean<TAB>stddev<TAB>[ratings] or "
                          "token<TAB>integer");
  }
  double valence = 0;
  float cats[GW_FEELING_COUNT] = {0};
  switch (*fmt) {
  case FMT_VADER:
    if (nf != 4)
      return gw_load_fail(L, line,
                          "expected 4 tab-separated fields (token, mean, stddev, ratings) of a "
                          "VADER-style lexicon, found %zu",
                          nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -4 || valence > 4)
      return gw_load_fail(L, line, "mean valence must be a number in -4..4, got \"%.*s\"",
                          (int)fl[1], f[1]);
    break;
  case FMT_AFINN:
    if (nf != 2 || !gw_is_integer(f[1], fl[1]))
      return gw_load_fail(L, line,
                          "expected token<TAB>integer of an AFINN-style lexicon, found %zu "
                          "field(s)",
                          nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -5 || valence > 5)
      return gw_load_fail(L, line, "AFINN valence must be an integer in -5..5, got \"%.*s\"",
                          (int)fl[1], f[1]);
    valence *= 0.8; /* -5..5 onto the model's -4..4 */
    break;
  default:
    if (nf != 2 && nf != 3)
      return gw_load_fail(L, line,
                          "expected token<TAB>valence[<TAB>categories], found %zu field(s)", nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -4 || valence > 4)
      return gw_load_fail(L, line, "valence must be a number in -4..4, got \"%.*s\"", (int)fl[1],
                          f[1]);
    if (nf == 3) {
      int rc = gw_parse_categories(L, line, f[2], fl[2], cats);
      if (rc < 0)
        return rc;
    }
    break;
  }
  if (fl[0] == 0)
    return gw_load_fail(L, line, "empty token");
  char key[GW_PHRASE_KEY_BYTES];
  size_t keylen = 0;
  int symbol = 0;
  int ntok = gw_entry_key(f[0], fl[0], key, &keylen, &symbol);
  if (ntok == 0)
    return gw_load_fail(L, line, "entry \"%.*s\" has no words", (int)fl[0], f[0]);
  if (ntok == -2)
    return gw_load_fail(L, line, "phrase \"%.*s\" is longer than %d words", (int)fl[0], f[0],
                        GW_PHRASE_MAX_TOKENS);
  if (ntok < 0)
    return gw_load_fail(L, line, "entry \"%.*s\" is too long (at most %d bytes per word)",
                        (int)fl[0], f[0], GW_TOKEN_MAX_BYTES - 1);
  gw_lex_entry *e;
  int created;
  int rc = gw_lex_upsert(L->m, key, keylen, (unsigned)ntok, &e, &created);
  if (rc < 0)
    return gw_load_fail(L, line, "out of memory");
  if (e->line != 0) {
    /* Our own format must not hide a typo behind a duplicate; foreign files keep the first. */
    if (*fmt == FMT_GOODWILL)
      return gw_load_fail(L, line, "duplicate entry \"%.*s\" (first on line %u)", (int)keylen, key,
                          e->line);
    (*first_line_of_dup)++;
    return 0;
  }
  e->kind |= K_SENTIMENT | (symbol ? K_SYMBOL : 0);
  if (symbol)
    L->m->symbol_first[(unsigned char)key[0]] = 1;
  e->line = (uint32_t)line;
  e->valence = (float)valence;
  memcpy(e->cats, cats, sizeof(cats));
  if (!symbol && gw_lex_add_prefixes(L->m, key, keylen, K_SENTIMENT) < 0)
    return gw_load_fail(L, line, "out of memory");
  return 0;
}

static int gw_load_rule(gw_feeling_model *m, const char *k, unsigned kind, float value,
                        gw_empathy_kind ek) {
  char key[GW_PHRASE_KEY_BYTES];
  size_t keylen;
  int symbol;
  int ntok = gw_entry_key(k, strlen(k), key, &keylen, &symbol);
  if (ntok <= 0)
    return -EINVAL;
  gw_lex_entry *e;
  int created;
  int rc = gw_lex_upsert(m, key, keylen, (unsigned)ntok, &e, &created);
  if (rc < 0)
    return rc;
  e->kind |= (uint8_t)kind;
  if (kind & K_BOOST)
    e->boost = value;
  if (kind & K_EMPATHY) {
    e->empathy = value;
    e->empathy_kind = (uint8_t)ek;
  }
  if (!symbol && (rc = gw_lex_add_prefixes(m, key, keylen, kind)) < 0)
    return rc;
  return 0;
}

static int gw_load_rules(gw_feeling_model *m) {
  int rc = 0;
  for (size_t i = 0; i < GW_NELEM(gw_negators) && rc == 0; i++)
    rc = gw_load_rule(m, gw_negators[i], K_NEGATOR, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_boosters) && rc == 0; i++)
    rc = gw_load_rule(m, gw_boosters[i].key, K_BOOST, gw_boosters[i].value, 0);
  for (size_t i = 0; i < GW_NELEM(gw_contrasts) && rc == 0; i++)
    rc = gw_load_rule(m, gw_contrasts[i], K_CONTRAST, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_echoes) && rc == 0; i++)
    rc = gw_load_rule(m, gw_echoes[i], K_ECHO, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_closings) && rc == 0; i++)
    rc = gw_load_rule(m, gw_closings[i], K_CLOSING, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_empathy_phrases) && rc == 0; i++)
    rc = gw_load_rule(m, gw_empathy_phrases[i].key, K_EMPATHY, gw_empathy_phrases[i].strength,
                      gw_empathy_phrases[i].kind);
  return rc;
}

static int gw_is_vowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* Writes w[0..n-cut) + suffix into out; returns its length. */
static size_t gw_inflect(const char *w, size_t n, size_t cut, const char *suffix, char *out) {
  size_t sl = strlen(suffix);
  memcpy(out, w, n - cut);
  memcpy(out + n - cut, suffix, sl);
  return n - cut + sl;
}

/* The regular inflections of the goodwill lexicon's plain words (-s, -ed, -ing, -ly, with the
 * usual spelling changes: "worries", "worried", "loving", "terribly"), added after the file with
 * the word's valence and categories unless the key is already known in any role. The lexicon
 * lists the irregular and the meaning-changing forms itself ("patients" 0 stops "patient"
 * from making it positive). Forms that are not English words cost memory only. */
static int gw_lex_add_inflections(gw_feeling_model *m) {
  size_t n0 = m->count;
  for (size_t k = 0; k < n0; k++) {
    gw_lex_entry base = m->entries[k]; /* a copy: inserting may move the entries */
    if (!(base.kind & K_SENTIMENT) || (base.kind & K_SYMBOL) || base.ntokens != 1 ||
        base.line == 0 || base.valence == 0)
      continue;
    size_t n = base.key_len;
    if (n < 3 || n + 4 >= GW_TOKEN_MAX_BYTES)
      continue;
    char w[GW_TOKEN_MAX_BYTES];
    memcpy(w, m->keys + base.key_off, n);
    int plain = 1;
    for (size_t i = 0; i < n; i++)
      plain &= w[i] >= 'a' && w[i] <= 'z';
    if (!plain)
      continue;
    char last = w[n - 1], prev = w[n - 2];
    int cons_y = last == 'y' && !gw_is_vowel(prev);
    char forms[4][GW_TOKEN_MAX_BYTES];
    size_t fl[4];
    if (last == 's' || last == 'x' || last == 'z' || (last == 'h' && (prev == 'c' || prev == 's')))
      fl[0] = gw_inflect(w, n, 0, "es", forms[0]);
    else
      fl[0] = cons_y ? gw_inflect(w, n, 1, "ies", forms[0]) : gw_inflect(w, n, 0, "s", forms[0]);
    if (last == 'e')
      fl[1] = gw_inflect(w, n, 0, "d", forms[1]);
    else
      fl[1] = cons_y ? gw_inflect(w, n, 1, "ied", forms[1]) : gw_inflect(w, n, 0, "ed", forms[1]);
    fl[2] = last == 'e' && prev != 'e' ? gw_inflect(w, n, 1, "ing", forms[2])
                                       : gw_inflect(w, n, 0, "ing", forms[2]);
    if (last == 'y')
      fl[3] = gw_inflect(w, n, 1, "ily", forms[3]);
    else if (last == 'e' && prev == 'l')
      fl[3] = gw_inflect(w, n, 1, "y", forms[3]);
    else if (last == 'c')
      fl[3] = gw_inflect(w, n, 0, "ally", forms[3]);
    else
      fl[3] = gw_inflect(w, n, 0, "ly", forms[3]);
    for (int f = 0; f < 4; f++) {
      gw_lex_entry *e;
      int created;
      int rc = gw_lex_upsert(m, forms[f], fl[f], 1, &e, &created);
      if (rc < 0)
        return rc;
      if (e->kind != 0)
        continue; /* known: as an entry, a rule word or a derived form of another word */
      e->kind = K_SENTIMENT;
      e->valence = base.valence;
      memcpy(e->cats, base.cats, sizeof(e->cats));
    }
  }
  return 0;
}

static int gw_load_bytes(gw_feeling_model *m, const char *src, const char *data, size_t len,
                         char *err, size_t errlen) {
  gw_loader L = {m, src, err, errlen};
  gw_lex_format fmt = FMT_UNKNOWN;
  size_t line = 0, entries = 0, dups = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && data[j] != '\n')
      j++;
    line++;
    size_t n = j - i;
    if (n > 0 && data[i + n - 1] == '\r')
      n--;
    const char *s = data + i;
    i = j + 1;
    if (n > GW_LEXICON_LINE_MAX)
      return gw_load_fail(&L, line, "line longer than %d bytes", GW_LEXICON_LINE_MAX);
    if (memchr(s, '\0', n))
      return gw_load_fail(&L, line, "NUL byte in a text file");
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t'))
      k++;
    if (k == n)
      continue;
    /* '#' starts a comment, except where the line is an entry for '#' itself (VADER has
     * emoticons such as "#-)"), which the tab after the token gives away. */
    if (s[0] == '#' && (fmt == FMT_GOODWILL || fmt == FMT_UNKNOWN || !memchr(s, '\t', n))) {
      static const char magic[] = "goodwill-lexicon";
      size_t p = 1;
      while (p < n && s[p] == ' ')
        p++;
      if (fmt == FMT_UNKNOWN && n - p >= sizeof(magic) - 1 &&
          memcmp(s + p, magic, sizeof(magic) - 1) == 0)
        fmt = FMT_GOODWILL;
      continue;
    }
    int rc = gw_load_line(&L, &fmt, line, s, n, &dups);
    if (rc < 0)
      return rc;
    entries++;
  }
  if (entries == 0)
    return gw_load_fail(&L, 0, "the lexicon has no entries");
  /* Only the project's own format: a plugged-in VADER or AFINN file scores as written. */
  if (fmt == FMT_GOODWILL && gw_lex_add_inflections(m) < 0)
    return gw_load_fail(&L, 0, "out of memory");
  for (size_t k = 0; k < m->count; k++) {
    gw_lex_entry *e = &m->entries[k];
    for (int c = 0; c < GW_FEELING_COUNT; c++)
      e->has_cats |= e->cats[c] != 0;
  }
  gw_id_hasher h;
  char hex[GW_ID_HEX_LEN + 1];
  gw_id_init(&h);
  gw_id_update(&h, data, len);
  gw_id_final_hex(&h, hex);
  snprintf(m->version, sizeof(m->version), "%s+lex.%s", GW_FEELING_MODEL_NAME,
           hex + GW_ID_HEX_LEN - 8);
  return 0;
}

/* The default lexicon, data/lexicon/goodwill-cx.tsv embedded by CMake. */
extern const unsigned char gw_feeling_default_lexicon[];
extern const size_t gw_feeling_default_lexicon_len;

int gw_feeling_model_load(gw_feeling_model **out, const char *path, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen)
    err[0] = 0;
  gw_feeling_model *m = calloc(1, sizeof(*m));
  if (!m)
    return -ENOMEM;
  int rc = gw_lex_grow(m);
  if (rc == 0)
    rc = gw_load_rules(m);
  if (rc < 0) {
    gw_feeling_model_free(m);
    if (err && errlen)
      snprintf(err, errlen, "out of memory building the rule tables");
    return rc;
  }
  if (!path) {
    rc = gw_load_bytes(m, "default lexicon", (const char *)gw_feeling_default_lexicon,
                       gw_feeling_default_lexicon_len, err, errlen);
  } else {
    FILE *f = fopen(path, "rb");
    if (!f) {
      rc = -errno;
      if (err && errlen)
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
      gw_feeling_model_free(m);
      return rc;
    }
    char *data = malloc(GW_LEXICON_MAX_BYTES + 1);
    size_t len = data ? fread(data, 1, GW_LEXICON_MAX_BYTES + 1, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (!data) {
      rc = -ENOMEM;
    } else if (rerr) {
      rc = -EIO;
      if (err && errlen)
        snprintf(err, errlen, "%s: read error", path);
    } else if (len > GW_LEXICON_MAX_BYTES) {
      rc = -EFBIG;
      if (err && errlen)
        snprintf(err, errlen, "%s: larger than %u bytes", path, GW_LEXICON_MAX_BYTES);
    } else {
      rc = gw_load_bytes(m, path, data, len, err, errlen);
    }
    free(data);
  }
  if (rc < 0) {
    gw_feeling_model_free(m);
    return rc;
  }
  *out = m;
  return 0;
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

const char *gw_feeling_model_version(const gw_feeling_model *m) {
  return m->version;
}

/* ---------------------------------------------------------------------------------------- */
/* Utterance scoring. */

typedef struct gw_item {
  const gw_lex_entry *e; /* NULL: a word with no entry */
  const gw_lex_entry *w; /* the entry of its first token in any role ("just": K_ECHO) */
  uint8_t flags;         /* OR of its tokens' flags; T_BOUNDARY of its first token */
  uint8_t question;      /* in a question that asks rather than states (see gw_questions) */
  uint16_t cand;         /* the x-th item holds the x-th token that may start an empathy phrase */
} gw_item;

/* Words that open a question asking whether something is so ("is it any good?", "did the
 * refund go through?", "why is this so slow?" keeps its complaint: see gw_questions). */
static const char *const gw_question_openers[] = {
    "is",   "are",   "was",    "were", "do",  "does", "did",    "can",  "could",
    "will", "would", "should", "have", "has", "any",  "anyone", "shall"};

/* Marks the tokens of every sentence that ends in '?' and opens with an auxiliary verb: such a
 * question asks about a feeling rather than expressing it, so its sentiment counts half.
 * Questions opened by "why", "how" or "what" often carry a complaint and are left alone. */
static void gw_questions(const gw_tokens *t, uint8_t *q) {
  size_t start = 0;
  for (size_t i = 0; i < t->n; i++) {
    q[i] = 0;
    uint8_t f = t->v[i].flags;
    if (!(f & (T_QEND | T_SEND)))
      continue;
    if ((f & T_QEND) && !(f & T_SEND)) {
      const gw_token *first = &t->v[start];
      int opener = 0;
      for (size_t k = 0; k < GW_NELEM(gw_question_openers) && !opener; k++)
        opener = strlen(gw_question_openers[k]) == first->len &&
                 memcmp(gw_question_openers[k], first->text, first->len) == 0;
      for (size_t k = start; opener && k <= i; k++)
        q[k] = 1;
    }
    start = i + 1;
  }
}

/* The sarcastic echo "great, just great": a positive item repeated after a clause break and
 * "just", ending its clause, says the opposite of the word ("good, just good enough" does
 * not). */
static int gw_is_echo(const gw_item *items, size_t nitems, size_t a) {
  return a + 2 < nitems && items[a].e && items[a].e->valence > 0 && items[a + 2].e == items[a].e &&
         items[a + 1].w && (items[a + 1].w->kind & K_ECHO) && (items[a + 1].flags & T_BOUNDARY) &&
         (a + 3 == nitems || (items[a + 3].flags & T_BOUNDARY));
}

static double gw_sign(double x) {
  return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
}

typedef struct gw_utt_detail {
  gw_utterance_score score;
  double empathy_kind[E_COUNT]; /* strongest phrase of each empathy kind */
  size_t words;                 /* tokens with letters, emoji or symbols */
  int low_information;          /* every token is a closing word and there are few */
} gw_utt_detail;

static double gw_empathy_of(const double kinds[E_COUNT]) {
  double s = 0;
  for (int k = 0; k < E_COUNT; k++)
    s += gw_empathy_kind_weight[k] * kinds[k];
  return s > 1 ? 1 : s;
}

static void gw_score_detail(const gw_feeling_model *m, const char *text, size_t len,
                            gw_utt_detail *d) {
  memset(d, 0, sizeof(*d));
  gw_tokens t;
  gw_tokens_init(&t);
  gw_tokenize(&t, text, len, m);

  /* Greedy longest match into items. */
  gw_item inline_items[64];
  gw_item *items = t.n <= GW_NELEM(inline_items) ? inline_items : malloc(t.n * sizeof(*items));
  size_t nitems = 0;
  if (!items) {
    gw_tokens_free(&t);
    return;
  }
  uint8_t inline_q[64];
  uint8_t *q = NULL;
  if (t.quest > 0) {
    q = t.n <= sizeof(inline_q) ? inline_q : malloc(t.n);
    if (q)
      gw_questions(&t, q);
  }
  /* One pass over the tokens: the items, and what the rules need to know about all tokens
   * (words and caps for the caps differential, closing words, empathy, the first contrast). */
  size_t words = 0, caps = 0, closings = 0;
  size_t ncand = 0;
  size_t contrast_at = SIZE_MAX;
  for (size_t i = 0; i < t.n;) {
    size_t k = 1;
    const gw_lex_entry *w = t.v[i].e, *e = w;
    /* Most words start no phrase: only those that do need gw_match. */
    if (e && (e->prefix_kinds & (K_SENTIMENT | K_MODIFIER)))
      e = gw_match(m, &t, i, K_SENTIMENT | K_MODIFIER, &k);
    else if (e && !(e->kind & (K_SENTIMENT | K_MODIFIER)))
      e = NULL;
    if (e && (e->kind & K_CONTRAST) && contrast_at == SIZE_MAX)
      contrast_at = nitems;
    uint8_t fl = t.v[i].flags;
    for (size_t j = i; j < i + k; j++) {
      uint8_t f = t.v[j].flags;
      if (j > i)
        fl |= (uint8_t)(f & ~T_BOUNDARY);
      words += (f & T_LETTERS) != 0;
      caps += (f & (T_LETTERS | T_CAPS)) == (T_LETTERS | T_CAPS);
      const gw_lex_entry *te = t.v[j].e;
      if (te) {
        /* A list of the few tokens that may start an empathy phrase, kept without a branch:
         * the empathy pass below visits only them. */
        items[ncand].cand = (uint16_t)j;
        ncand += ((te->kind | te->prefix_kinds) & K_EMPATHY) != 0;
        closings += (te->kind & K_CLOSING) != 0;
      }
    }
    items[nitems].e = e;
    items[nitems].flags = fl;
    items[nitems].w = w;
    items[nitems].question = q ? q[i] : 0;
    nitems++;
    i += k;
  }
  if (contrast_at == SIZE_MAX)
    contrast_at = nitems;
  /* Caps emphasis needs a contrast: a shouted word among normal ones. */
  int caps_differential = caps > 0 && caps < words;
  d->words = t.n;
  d->low_information = t.n > 0 && t.n <= GW_LOW_INFO_MAX_TOK && closings == t.n;

  double sum = 0;
  double raw[GW_FEELING_COUNT] = {0};
  for (size_t j = 0; j < nitems; j++) {
    const gw_lex_entry *e = items[j].e;
    if (!e || !(e->kind & K_SENTIMENT) || (e->kind & K_MODIFIER) || e->valence == 0)
      continue;
    double v = e->valence;
    if (caps_differential && (items[j].flags & T_CAPS))
      v += gw_sign(v) * GW_CAPS_ADD;
    if (items[j].flags & T_ELONG)
      v += gw_sign(v) * GW_ELONG_ADD;
    /* Modifiers in the GW_MOD_WINDOW items before, within the clause. */
    static const double decay[GW_MOD_WINDOW] = {1.0, 0.8, 0.6};
    double boost = 0;
    int negated = 0;
    for (size_t k = 1; k <= GW_MOD_WINDOW && k <= j; k++) {
      if (items[j - k + 1].flags & T_BOUNDARY)
        break;
      const gw_lex_entry *p = items[j - k].e;
      if (!p)
        continue;
      if (p->kind & K_CONTRAST)
        break;
      if (p->kind & K_NEGATOR)
        negated = 1;
      else if (p->kind & K_BOOST)
        /* "sooo good", "VERY good": an emphasised modifier modifies more. */
        boost +=
            p->boost * decay[k - 1] *
            ((items[j - k].flags & T_ELONG) || (caps_differential && (items[j - k].flags & T_CAPS))
                 ? 1.5
                 : 1.0);
    }
    if (boost < -0.8)
      boost = -0.8;
    if (boost > 1.0)
      boost = 1.0;
    v *= 1.0 + boost;
    if (gw_is_echo(items, nitems, j) || (j >= 2 && gw_is_echo(items, nitems, j - 2)))
      negated = 1;
    if (negated)
      v *= v > 0 ? GW_NEG_FLIP_POS : GW_NEG_FLIP_NEG;
    if (items[j].question)
      v *= GW_QUESTION_WEIGHT;
    if (contrast_at < nitems)
      v *= j < contrast_at ? GW_CONTRAST_BEFORE : GW_CONTRAST_AFTER;
    sum += v;
    /* "not angry" says nothing about anger: negated items give no feeling. */
    if (!negated && e->has_cats)
      for (int c = 0; c < GW_FEELING_COUNT; c++)
        raw[c] += e->cats[c] * fabs(v) / 4.0;
  }
  if (q != inline_q)
    free(q);

  unsigned excl = t.excl < GW_EXCL_MAX ? t.excl : GW_EXCL_MAX;
  unsigned quest = t.quest < GW_QUEST_MAX ? t.quest : GW_QUEST_MAX;
  if (sum != 0) {
    sum += gw_sign(sum) * GW_EXCL_ADD * excl;
    if (t.quest >= 2)
      sum += gw_sign(sum) * GW_QUEST_ADD * quest;
  }
  double val = sum / sqrt(sum * sum + GW_NORM_ALPHA);
  if (val > 1)
    val = 1;
  if (val < -1)
    val = -1;
  d->score.valence = val;
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double r = raw[c] * (1.0 + 0.1 * excl);
    d->score.feelings[c] = r > 0 ? 1.0 - exp(-GW_FEELING_RATE * r) : 0.0;
  }

  /* Empathy phrases, matched on their own so that "i'm sorry" is both a (negative) sentiment
   * phrase and an apology. */
  for (size_t x = 0, next = 0; x < ncand; x++) {
    size_t i = items[x].cand, k = 1;
    if (i < next)
      continue; /* inside the phrase matched before */
    const gw_lex_entry *e = gw_match(m, &t, i, K_EMPATHY, &k);
    if (e && e->empathy > d->empathy_kind[e->empathy_kind])
      d->empathy_kind[e->empathy_kind] = e->empathy;
    next = i + (e ? k : 1);
  }
  if (items != inline_items)
    free(items);
  d->score.empathy = gw_empathy_of(d->empathy_kind);
  gw_tokens_free(&t);
}

void gw_feeling_score_utterance(const gw_feeling_model *m, const char *text, size_t len,
                                gw_utterance_score *out) {
  gw_utt_detail d;
  gw_score_detail(m, text, len, &d);
  *out = d.score;
}

/* ---------------------------------------------------------------------------------------- */
/* Interaction. */

typedef struct gw_cturn {
  double valence;
  double feelings[GW_FEELING_COUNT];
  int low_information;
} gw_cturn;

/* Weighted mean of the chosen customer turns into valence and feelings. */
static void gw_window_mean(const gw_cturn *c, const size_t *idx, const double *w, size_t n,
                           double *valence, double feelings[GW_FEELING_COUNT]) {
  double tw = 0, v = 0, f[GW_FEELING_COUNT] = {0};
  for (size_t i = 0; i < n; i++) {
    tw += w[i];
    v += w[i] * c[idx[i]].valence;
    for (int k = 0; k < GW_FEELING_COUNT; k++)
      f[k] += w[i] * c[idx[i]].feelings[k];
  }
  *valence = tw > 0 ? v / tw : 0;
  for (int k = 0; k < GW_FEELING_COUNT; k++)
    feelings[k] = tw > 0 ? f[k] / tw : 0;
}

void gw_feeling_score_interaction(const gw_feeling_model *m, const gw_turn_text *turns,
                                  size_t nturns, gw_interaction_feeling *out) {
  memset(out, 0, sizeof(*out));
  double kinds[E_COUNT] = {0};
  gw_cturn inline_c[32];
  size_t ncust = 0;
  for (size_t i = 0; i < nturns; i++) {
    if (turns[i].speaker == GW_SPEAKER_CUSTOMER)
      ncust++;
  }
  gw_cturn *c = ncust <= GW_NELEM(inline_c) ? inline_c : malloc(ncust * sizeof(*c));
  if (!c) {
    /* Out of memory for a huge transcript: report it as having no scored customer turns. */
    return;
  }
  size_t nc = 0;
  for (size_t i = 0; i < nturns; i++) {
    const gw_turn_text *tt = &turns[i];
    if (tt->speaker == GW_SPEAKER_BOT)
      continue;
    gw_utt_detail d;
    gw_score_detail(m, tt->text ? tt->text : "", tt->text ? tt->len : 0, &d);
    if (tt->speaker == GW_SPEAKER_AGENT) {
      out->agent_turns++;
      for (int k = 0; k < E_COUNT; k++)
        if (d.empathy_kind[k] > kinds[k])
          kinds[k] = d.empathy_kind[k];
      continue;
    }
    if (tt->speaker != GW_SPEAKER_CUSTOMER)
      continue;
    out->customer_turns++;
    if (d.words == 0)
      continue; /* an empty turn says nothing */
    c[nc].valence = d.score.valence;
    memcpy(c[nc].feelings, d.score.feelings, sizeof(c[nc].feelings));
    c[nc].low_information = d.low_information;
    nc++;
  }
  out->empathy = gw_empathy_of(kinds);
  if (nc > 0) {
    out->has_customer_turns = true;
    size_t informative = 0;
    for (size_t i = 0; i < nc; i++)
      informative += !c[i].low_information;
    /* When every turn is a short closing, they are all the customer said: use them fully. */
    if (informative == 0) {
      for (size_t i = 0; i < nc; i++)
        c[i].low_information = 0;
      informative = nc;
    }

    /* Window size: two turns each, fewer when the turns would be shared, so that a short
     * interaction compares its first and its last turns (one turn: start == end). */
    size_t win = informative >= 4 ? 2 : 1;
    size_t idx[4];
    double w[4];
    size_t n = 0;
    for (size_t i = 0; i < nc && n < win; i++)
      if (!c[i].low_information)
        idx[n++] = i;
    w[0] = n == 2 ? 0.6 : 1.0;
    w[1] = 0.4;
    gw_window_mean(c, idx, w, n, &out->start, out->start_feelings);

    n = 0;
    size_t last_info = nc;
    for (size_t i = nc; i-- > 0 && n < win;)
      if (!c[i].low_information) {
        if (n == 0)
          last_info = i;
        idx[n++] = i;
      }
    w[0] = n == 2 ? 0.6 : 1.0;
    w[1] = 0.4;
    /* Trailing closings after the last informative turn count a little ("ok, thanks"). */
    for (size_t i = last_info + 1; i < nc && n < 4; i++) {
      idx[n] = i;
      w[n] = GW_LOW_INFO_WEIGHT;
      n++;
    }
    gw_window_mean(c, idx, w, n, &out->end, out->end_feelings);
  }
  if (c != inline_c)
    free(c);
  out->change = out->end - out->start;
  out->start_polarity = gw_feeling_polarity(out->start);
  out->end_polarity = gw_feeling_polarity(out->end);
  out->recovered = out->has_customer_turns && out->start_polarity == GW_POLARITY_NEGATIVE &&
                   out->end_polarity != GW_POLARITY_NEGATIVE;
  out->soured = out->has_customer_turns && out->start_polarity != GW_POLARITY_NEGATIVE &&
                out->end_polarity == GW_POLARITY_NEGATIVE;
}

gw_polarity gw_feeling_polarity(double valence) {
  if (valence <= -0.05)
    return GW_POLARITY_NEGATIVE;
  if (valence >= 0.05)
    return GW_POLARITY_POSITIVE;
  return GW_POLARITY_NEUTRAL;
}

const char *gw_feeling_category_name(gw_feeling_category c) {
  if ((int)c < 0 || c >= GW_FEELING_COUNT)
    return "unknown";
  return gw_category_names[c];
}

const char *gw_polarity_name(gw_polarity p) {
  switch (p) {
  case GW_POLARITY_NEGATIVE:
    return "negative";
  case GW_POLARITY_POSITIVE:
    return "positive";
  default:
    return "neutral";
  }
}
