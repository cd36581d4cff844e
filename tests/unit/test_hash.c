/* gw_hash: FNV-1a against published vectors, SipHash-1-3's keying, and the table against a
 * brute-force model under inserts, lookups, removals and removal during iteration, with hashes
 * chosen to collide and to wrap around the end of the slot array. */
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"
#include "gw_test.h"

static void test_fnv64_known_vectors(void) {
  CHECK(gw_fnv64("", 0) == 0xcbf29ce484222325ULL);
  CHECK(gw_fnv64("a", 1) == 0xaf63dc4c8601ec8cULL);
  CHECK(gw_fnv64("foobar", 6) == 0x85944171f73967e8ULL);
  /* Pieces hash like the whole. */
  CHECK(gw_fnv64_update(gw_fnv64("foo", 3), "bar", 3) == gw_fnv64("foobar", 6));
  /* Fields are separated. */
  CHECK(gw_fnv64_update_field(gw_fnv64_update_field(GW_FNV64_BASIS, "ab"), "c") !=
        gw_fnv64_update_field(gw_fnv64_update_field(GW_FNV64_BASIS, "a"), "bc"));
}

static void test_fnv128_empty_is_basis(void) {
  gw_fnv128 h;
  gw_fnv128_init(&h);
  CHECK((uint64_t)(h.state >> 64) == 0x6c62272e07bb0142ULL);
  CHECK((uint64_t)h.state == 0x62b821756295c58dULL);
}

static void test_siphash_depends_on_key_and_every_byte(void) {
  const uint64_t k1[2] = {1, 2}, k2[2] = {1, 3};
  const char *s = "0123456789abcdefXYZ";
  CHECK(gw_siphash13(k1, s, strlen(s)) == gw_siphash13(k1, s, strlen(s)));
  CHECK(gw_siphash13(k1, s, strlen(s)) != gw_siphash13(k2, s, strlen(s)));
  char t[32];
  for (size_t i = 0; i < strlen(s); i++) {
    memcpy(t, s, strlen(s));
    t[i] ^= 1;
    CHECK(gw_siphash13(k1, t, strlen(s)) != gw_siphash13(k1, s, strlen(s)));
  }
  /* The length is part of the input: a trailing NUL byte changes the hash. */
  CHECK(gw_siphash13(k1, "ab", 2) != gw_siphash13(k1, "ab\0", 3));
}

typedef struct item {
  int key;
  int in_table;
} item;

static bool item_eq(const void *it, const void *key) {
  return ((const item *)it)->key == *(const int *)key;
}

/* Few distinct hashes, and hashes that land on the last slots, so clusters collide and wrap. */
static uint64_t bad_hash(int key) {
  return (uint64_t)(key % 7) * 0x9e3779b97f4a7c15ULL | 0xf;
}

static void test_table_against_model(void) {
  enum { N = 600 };
  static item items[N];
  gw_hash_table t = GW_HASH_TABLE_INIT;
  unsigned seed = 12345;
  for (int i = 0; i < N; i++) {
    items[i].key = i;
    items[i].in_table = 0;
  }
  for (int round = 0; round < 20000; round++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % N);
    item *found = gw_hash_table_find(&t, bad_hash(k), item_eq, &k);
    CHECK((found != NULL) == (items[k].in_table != 0));
    if (found == NULL) {
      CHECK_INT_EQ(gw_hash_table_insert(&t, bad_hash(k), &items[k]), 0);
      items[k].in_table = 1;
    } else {
      CHECK(found == &items[k]);
      CHECK(gw_hash_table_remove(&t, bad_hash(k), found));
      CHECK(!gw_hash_table_remove(&t, bad_hash(k), found));
      items[k].in_table = 0;
    }
  }
  size_t expected = 0;
  for (int i = 0; i < N; i++) {
    expected += items[i].in_table != 0;
    item *f = gw_hash_table_find(&t, bad_hash(i), item_eq, &i);
    CHECK((f != NULL) == (items[i].in_table != 0));
  }
  CHECK_INT_EQ(t.count, expected);
  gw_hash_table_free(&t);
}

/* Removing every other item while iterating visits each item exactly once, and what is left
 * is exactly the items kept. */
static void test_iteration_with_removal(void) {
  enum { N = 500 };
  static item items[N];
  static int visits[N];
  gw_hash_table t = GW_HASH_TABLE_INIT;
  for (int i = 0; i < N; i++) {
    items[i].key = i;
    visits[i] = 0;
    CHECK_INT_EQ(gw_hash_table_insert(&t, bad_hash(i), &items[i]), 0);
  }
  gw_hash_iter it;
  gw_hash_iter_init(&t, &it);
  for (item *x; (x = gw_hash_table_next(&t, &it)) != NULL;) {
    visits[x->key]++;
    if (x->key % 2 == 0) {
      gw_hash_table_remove_current(&t, &it);
    }
  }
  for (int i = 0; i < N; i++) {
    CHECK_INT_EQ(visits[i], 1);
    item *f = gw_hash_table_find(&t, bad_hash(i), item_eq, &i);
    CHECK((f != NULL) == (i % 2 == 1));
  }
  CHECK_INT_EQ(t.count, N / 2);
  gw_hash_table_clear(&t);
  CHECK_INT_EQ(t.count, 0);
  int k = 1;
  CHECK(gw_hash_table_find(&t, bad_hash(1), item_eq, &k) == NULL);
  gw_hash_table_free(&t);
}

static void test_empty_table(void) {
  gw_hash_table t = GW_HASH_TABLE_INIT;
  int k = 3;
  CHECK(gw_hash_table_find(&t, 3, item_eq, &k) == NULL);
  CHECK(!gw_hash_table_remove(&t, 3, &k));
  gw_hash_iter it;
  gw_hash_iter_init(&t, &it);
  CHECK(gw_hash_table_next(&t, &it) == NULL);
  /* Hash 0 is stored as 1 and still found. */
  item x = {.key = 3};
  CHECK_INT_EQ(gw_hash_table_insert(&t, 0, &x), 0);
  CHECK(gw_hash_table_find(&t, 0, item_eq, &k) == &x);
  CHECK(gw_hash_table_remove(&t, 0, &x));
  gw_hash_table_free(&t);
}

int main(void) {
  GW_RUN(test_fnv64_known_vectors);
  GW_RUN(test_fnv128_empty_is_basis);
  GW_RUN(test_siphash_depends_on_key_and_every_byte);
  GW_RUN(test_table_against_model);
  GW_RUN(test_iteration_with_removal);
  GW_RUN(test_empty_table);
  return gw_test_finish();
}
