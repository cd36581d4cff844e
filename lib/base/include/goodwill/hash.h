/*
 * gw_hash: the project's hash functions and its one hash table. Pure; any thread; every
 * object is the caller's.
 *
 * Functions:
 * - FNV-1a with the 64-bit and the 128-bit parameters (offset bases and primes from the FNV
 *   specification, draft-eastlake-fnv). Fast and unkeyed: for keys that clients do not choose
 *   (tenant ids from the operator's tokens file, topic and partition, metric label values we
 *   write) and for the deterministic record ids (gw_ids, 128-bit). Not for secrets.
 * - SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), keyed with
 *   a secret the caller draws: for keys a client chooses (JSON object keys), so nobody can
 *   compute a set of keys that collide and make a table quadratic.
 *
 * Table: gw_hash_table maps a 64-bit hash to a caller's item (a pointer the table never
 * dereferences or frees). Open addressing with linear probing in a power-of-two array of
 * (hash, item) slots, at most half full; removal shifts the following slots back, so there are
 * no tombstones and probes stay short whatever the history. The table does not know keys: a
 * lookup walks the slots whose hash matches and the caller's eq function decides, so one item
 * type can be found by different key forms. Several items may share a hash; the table does not
 * refuse duplicates (look up first where keys must be unique).
 *
 * Errors: -ENOMEM when the slot array cannot grow (the table is unchanged), -EINVAL for a
 * capacity beyond GW_HASH_TABLE_MAX_CAP.
 */
#ifndef GOODWILL_HASH_H
#define GOODWILL_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- FNV-1a */

#define GW_FNV64_BASIS 0xcbf29ce484222325ULL
#define GW_FNV64_PRIME 0x00000100000001b3ULL

/* Continues a 64-bit FNV-1a hash h (start from GW_FNV64_BASIS) over len bytes. */
static inline uint64_t gw_fnv64_update(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h = (h ^ p[i]) * GW_FNV64_PRIME;
  }
  return h;
}

/* Continues h over the bytes of s and a 0x00 separator, so ("ab","c") and ("a","bc") differ. */
uint64_t gw_fnv64_update_field(uint64_t h, const char *s);

static inline uint64_t gw_fnv64(const void *data, size_t len) {
  return gw_fnv64_update(GW_FNV64_BASIS, data, len);
}

/* FNV-1a with the 128-bit parameters; the state is the caller's. */
typedef struct gw_fnv128 {
  unsigned __int128 state;
} gw_fnv128;

void gw_fnv128_init(gw_fnv128 *h);
void gw_fnv128_update(gw_fnv128 *h, const void *data, size_t len);

/* ---------------------------------------------------------------- SipHash-1-3 */

/* SipHash-1-3 of len bytes under the 128-bit key (key[0] low, key[1] high half). */
uint64_t gw_siphash13(const uint64_t key[2], const void *data, size_t len);

/* ---------------------------------------------------------------- table */

/* Tables never grow beyond this many slots (2^30: 16 GiB of slots). */
#define GW_HASH_TABLE_MAX_CAP ((size_t)1 << 30)

typedef struct gw_hash_slot {
  uint64_t hash; /* the item's hash with 0 mapped to 1; 0 marks an empty slot */
  void *item;
} gw_hash_slot;

typedef struct gw_hash_table {
  gw_hash_slot *slots; /* cap slots, NULL before the first insert */
  size_t cap;          /* a power of two, or 0 */
  size_t count;        /* items in the table */
} gw_hash_table;

#define GW_HASH_TABLE_INIT                                                                         \
  { NULL, 0, 0 }

/* Decides whether item has the key the caller looks for. */
typedef bool (*gw_hash_eq_fn)(const void *item, const void *key);

/* The stored form of a hash: 0 is the empty mark, so it becomes 1. */
static inline uint64_t gw_hash_stored(uint64_t hash) {
  return hash == 0 ? 1 : hash;
}

/* Makes room for at least n items without growing (optional; insert grows as needed). */
int gw_hash_table_reserve(gw_hash_table *t, size_t n);

/* Adds item under hash; may grow. On failure the table is unchanged. */
int gw_hash_table_insert(gw_hash_table *t, uint64_t hash, void *item);

/* The first item under hash for which eq(item, key) holds, or NULL. Inline, so that a static
 * eq function is inlined at the call site. */
static inline void *gw_hash_table_find(const gw_hash_table *t, uint64_t hash, gw_hash_eq_fn eq,
                                       const void *key) {
  if (t->count == 0) {
    return NULL;
  }
  uint64_t h = gw_hash_stored(hash);
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)h & mask; t->slots[i].hash != 0; i = (i + 1) & mask) {
    if (t->slots[i].hash == h && eq(t->slots[i].item, key)) {
      return t->slots[i].item;
    }
  }
  return NULL;
}

/* Removes the slot holding exactly item (compared by address) under hash; returns whether it
 * was there. */
bool gw_hash_table_remove(gw_hash_table *t, uint64_t hash, const void *item);

/* Iteration: gw_hash_iter_init, then gw_hash_table_next until it returns NULL. It walks the
 * slots once around from an empty one, so removing the current item (gw_hash_table_remove_
 * current) moves only unvisited items back into visited order: every item present from start
 * to end is visited exactly once. The table must not change otherwise meanwhile. */
typedef struct gw_hash_iter {
  size_t start; /* the empty slot the walk starts after */
  size_t step;  /* slots walked so far */
} gw_hash_iter;

void gw_hash_iter_init(const gw_hash_table *t, gw_hash_iter *it);
void *gw_hash_table_next(const gw_hash_table *t, gw_hash_iter *it);
/* Removes the item gw_hash_table_next returned last. */
void gw_hash_table_remove_current(gw_hash_table *t, gw_hash_iter *it);

/* Empties the table, keeping its slots. Items are the caller's. */
void gw_hash_table_clear(gw_hash_table *t);

/* Frees the slots (items are the caller's) and leaves an empty table. */
void gw_hash_table_free(gw_hash_table *t);

#endif
