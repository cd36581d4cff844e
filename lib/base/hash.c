/* gw_hash: FNV-1a, SipHash-1-3 and the open-addressing table. See goodwill/hash.h. */
#include "goodwill/hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- FNV-1a */

/* FNV-128 offset basis 0x6c62272e07bb014262b821756295c58d and prime 2^88 + 2^8 + 0x3b. */
#define GW_FNV128_BASIS_HI 0x6c62272e07bb0142ULL
#define GW_FNV128_BASIS_LO 0x62b821756295c58dULL
#define GW_FNV128_PRIME_HI 0x0000000001000000ULL
#define GW_FNV128_PRIME_LO 0x000000000000013bULL

uint64_t gw_fnv64_update_field(uint64_t h, const char *s) {
  static const unsigned char sep = 0;
  h = gw_fnv64_update(h, s, strlen(s));
  return gw_fnv64_update(h, &sep, 1);
}

void gw_fnv128_init(gw_fnv128 *h) {
  h->state = ((unsigned __int128)GW_FNV128_BASIS_HI << 64) | GW_FNV128_BASIS_LO;
}

void gw_fnv128_update(gw_fnv128 *h, const void *data, size_t len) {
  const unsigned __int128 prime =
      ((unsigned __int128)GW_FNV128_PRIME_HI << 64) | GW_FNV128_PRIME_LO;
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h->state ^= p[i];
    h->state *= prime;
  }
}

/* ---------------------------------------------------------------- SipHash-1-3 */

static inline uint64_t rotl64(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

#define GW_SIPROUND                                                                                \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = rotl64(v1, 13);                                                                           \
    v1 ^= v0;                                                                                      \
    v0 = rotl64(v0, 32);                                                                           \
    v2 += v3;                                                                                      \
    v3 = rotl64(v3, 16);                                                                           \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = rotl64(v3, 21);                                                                           \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = rotl64(v1, 17);                                                                           \
    v1 ^= v2;                                                                                      \
    v2 = rotl64(v2, 32);                                                                           \
  } while (0)

/* One compression round per 8-byte word and three finalisation rounds (the "1-3" variant);
 * the words are read little-endian, and the last one carries the length in its top byte. */
uint64_t gw_siphash13(const uint64_t key[2], const void *data, size_t len) {
  uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL, v1 = key[1] ^ 0x646f72616e646f6dULL;
  uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL, v3 = key[1] ^ 0x7465646279746573ULL;
  const unsigned char *p = data;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t m = 0;
    for (int b = 7; b >= 0; b--) {
      m = (m << 8) | p[i + (size_t)b];
    }
    v3 ^= m;
    GW_SIPROUND;
    v0 ^= m;
  }
  uint64_t last = (uint64_t)len << 56;
  for (size_t b = 0; i + b < len; b++) {
    last |= (uint64_t)p[i + b] << (8 * b);
  }
  v3 ^= last;
  GW_SIPROUND;
  v0 ^= last;
  v2 ^= 0xff;
  GW_SIPROUND;
  GW_SIPROUND;
  GW_SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------- table */

static size_t home(const gw_hash_table *t, uint64_t stored) {
  return (size_t)stored & (t->cap - 1);
}

/* Places (hash, item) in the first empty slot of its probe sequence; the table has room. */
static void place(gw_hash_table *t, uint64_t stored, void *item) {
  size_t mask = t->cap - 1;
  size_t i = home(t, stored);
  while (t->slots[i].hash != 0) {
    i = (i + 1) & mask;
  }
  t->slots[i].hash = stored;
  t->slots[i].item = item;
}

static int resize(gw_hash_table *t, size_t ncap) {
  gw_hash_slot *ns = calloc(ncap, sizeof *ns);
  if (ns == NULL) {
    return -ENOMEM;
  }
  gw_hash_slot *old = t->slots;
  size_t ocap = t->cap;
  t->slots = ns;
  t->cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    if (old[i].hash != 0) {
      place(t, old[i].hash, old[i].item);
    }
  }
  free(old);
  return 0;
}

int gw_hash_table_reserve(gw_hash_table *t, size_t n) {
  /* At most half full: the expected probe length of linear probing stays under 2.5. */
  size_t ncap = t->cap == 0 ? 16 : t->cap;
  while (ncap / 2 < n) {
    if (ncap >= GW_HASH_TABLE_MAX_CAP) {
      return -EINVAL;
    }
    ncap <<= 1;
  }
  return ncap == t->cap ? 0 : resize(t, ncap);
}

int gw_hash_table_insert(gw_hash_table *t, uint64_t hash, void *item) {
  int rc = gw_hash_table_reserve(t, t->count + 1);
  if (rc != 0) {
    return rc;
  }
  place(t, gw_hash_stored(hash), item);
  t->count++;
  return 0;
}

/* Empties slot i and shifts back every following slot of its cluster that may move there
 * (its home is not cyclically within (i, j]), so that no probe sequence crosses a hole. */
static void remove_slot(gw_hash_table *t, size_t i) {
  size_t mask = t->cap - 1;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (t->slots[j].hash == 0) {
      break;
    }
    size_t k = home(t, t->slots[j].hash);
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      t->slots[i] = t->slots[j];
      i = j;
    }
  }
  t->slots[i].hash = 0;
  t->slots[i].item = NULL;
  t->count--;
}

bool gw_hash_table_remove(gw_hash_table *t, uint64_t hash, const void *item) {
  if (t->count == 0) {
    return false;
  }
  uint64_t h = gw_hash_stored(hash);
  size_t mask = t->cap - 1;
  for (size_t i = home(t, h); t->slots[i].hash != 0; i = (i + 1) & mask) {
    if (t->slots[i].hash == h && t->slots[i].item == item) {
      remove_slot(t, i);
      return true;
    }
  }
  return false;
}

void gw_hash_iter_init(const gw_hash_table *t, gw_hash_iter *it) {
  it->start = 0;
  it->step = 0;
  /* A table at most half full has an empty slot; an empty table has nothing to walk. */
  for (size_t i = 0; i < t->cap; i++) {
    if (t->slots[i].hash == 0) {
      it->start = i;
      break;
    }
  }
}

void *gw_hash_table_next(const gw_hash_table *t, gw_hash_iter *it) {
  while (it->step < t->cap) {
    size_t i = (it->start + 1 + it->step) & (t->cap - 1);
    it->step++;
    if (t->slots[i].hash != 0) {
      return t->slots[i].item;
    }
  }
  return NULL;
}

void gw_hash_table_remove_current(gw_hash_table *t, gw_hash_iter *it) {
  size_t i = (it->start + it->step) & (t->cap - 1);
  remove_slot(t, i);
  /* A following item may have moved into slot i: visit it again. */
  it->step--;
}

void gw_hash_table_clear(gw_hash_table *t) {
  if (t->slots != NULL) {
    memset(t->slots, 0, t->cap * sizeof *t->slots);
  }
  t->count = 0;
}

void gw_hash_table_free(gw_hash_table *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = 0;
  t->count = 0;
}
