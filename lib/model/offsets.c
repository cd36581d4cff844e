/* In-progress offsets per (topic, partition) and the contiguous commit point (see offsets.h). */
#include "goodwill/offsets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

/* A record in progress (offset == last), or a run of done records [offset, last]. */
typedef struct entry {
  int64_t offset;
  int64_t last;
  bool done;
} entry;

/*
 * One partition: the records begun and not yet released, in offset order, as a ring. Done
 * records stay until every record before them is done too, then leave from the head; so the
 * head is always the first record not done. Behind one long-running record (a live turn
 * waiting hours for its interaction's close) every later record would stay; instead, when
 * the ring is full, neighbouring done entries are merged into runs before it grows, so it
 * holds about two entries per record in progress, not one per record read.
 */
typedef struct part_state {
  char *topic;
  int32_t partition;
  entry *ring;
  size_t head, count, cap;
  size_t not_done;
  int64_t last_begun; /* -1 before the first begin */
} part_state;

struct gw_offsets {
  gw_hash_table partitions; /* part_state by (topic, partition) */
  size_t in_flight;
};

/* A partition's key, as looked up. */
typedef struct tp_key {
  const char *topic;
  int32_t partition;
} tp_key;

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

/* FNV-1a over the topic (with its separator), then the partition. */
static uint64_t hash_tp(const tp_key *k) {
  uint32_t p = (uint32_t)k->partition;
  return gw_fnv64_update(gw_fnv64_update_field(GW_FNV64_BASIS, k->topic), &p, sizeof p);
}

static bool tp_eq(const void *item, const void *key) {
  const part_state *p = item;
  const tp_key *k = key;
  return p->partition == k->partition && strcmp(p->topic, k->topic) == 0;
}

int gw_offsets_new(gw_offsets **out) {
  gw_offsets *o = xcalloc(1, sizeof *o);
  o->partitions = (gw_hash_table)GW_HASH_TABLE_INIT;
  *out = o;
  return 0;
}

static void partition_free(part_state *p) {
  free(p->ring);
  free(p->topic);
  free(p);
}

void gw_offsets_free(gw_offsets *o) {
  if (o == NULL) {
    return;
  }
  gw_hash_iter it;
  gw_hash_iter_init(&o->partitions, &it);
  for (part_state *p; (p = gw_hash_table_next(&o->partitions, &it)) != NULL;) {
    partition_free(p);
  }
  gw_hash_table_free(&o->partitions);
  free(o);
}

static part_state *find(const gw_offsets *o, const char *topic, int32_t part) {
  const tp_key k = {topic, part};
  return gw_hash_table_find(&o->partitions, hash_tp(&k), tp_eq, &k);
}

static part_state *get_or_create(gw_offsets *o, const char *topic, int32_t part) {
  const tp_key k = {topic, part};
  uint64_t h = hash_tp(&k);
  part_state *p = gw_hash_table_find(&o->partitions, h, tp_eq, &k);
  if (p != NULL) {
    return p;
  }
  p = xcalloc(1, sizeof *p);
  size_t n = strlen(topic);
  p->topic = xcalloc(n + 1, 1);
  memcpy(p->topic, topic, n);
  p->partition = part;
  p->last_begun = -1;
  if (gw_hash_table_insert(&o->partitions, h, p) != 0) {
    abort();
  }
  return p;
}

static entry *at(const part_state *p, size_t i) {
  return &p->ring[(p->head + i) & (p->cap - 1)];
}

/* Merges neighbouring done entries into runs, in place; returns whether room was made. */
static bool ring_compact(part_state *p) {
  size_t out = 0;
  for (size_t i = 0; i < p->count; i++) {
    entry e = *at(p, i);
    entry *prev = out > 0 ? at(p, out - 1) : NULL;
    if (e.done && prev != NULL && prev->done) {
      prev->last = e.last;
    } else {
      *at(p, out++) = e;
    }
  }
  bool freed = out < p->count;
  p->count = out;
  return freed;
}

static void ring_grow(part_state *p) {
  if (p->count > 0 && ring_compact(p) && p->count <= p->cap / 2) {
    return;
  }
  size_t cap = p->cap ? p->cap * 2 : 64;
  entry *r = xcalloc(cap, sizeof *r);
  for (size_t i = 0; i < p->count; i++) {
    r[i] = *at(p, i);
  }
  free(p->ring);
  p->ring = r;
  p->head = 0;
  p->cap = cap;
}

int gw_offsets_begin(gw_offsets *o, const char *topic, int32_t partition, int64_t offset) {
  if (o == NULL || topic == NULL || offset < 0) {
    return -EINVAL;
  }
  part_state *p = get_or_create(o, topic, partition);
  /* The order is what lets the head be the commit point; a seek backwards must forget the
   * partition first, so old records cannot be confused with their replays. */
  if (offset <= p->last_begun) {
    return -EINVAL;
  }
  if (p->count == p->cap) {
    ring_grow(p);
  }
  *at(p, p->count) = (entry){offset, offset, false};
  p->count++;
  p->not_done++;
  p->last_begun = offset;
  o->in_flight++;
  return 0;
}

bool gw_offsets_done(gw_offsets *o, const char *topic, int32_t partition, int64_t offset,
                     int64_t *commit_next) {
  if (o == NULL || topic == NULL) {
    return false;
  }
  part_state *p = find(o, topic, partition);
  /* A forgotten partition, or an offset never begun: nothing to release. */
  if (p == NULL || p->count == 0) {
    return false;
  }
  /* Binary search: the ring is sorted by offset. */
  size_t lo = 0, hi = p->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (at(p, mid)->offset < offset) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == p->count || at(p, lo)->offset != offset || at(p, lo)->done) {
    return false;
  }
  at(p, lo)->done = true;
  p->not_done--;
  o->in_flight--;
  if (lo != 0) {
    return false; /* Something before it is still in progress: the commit point stays. */
  }
  int64_t last = offset;
  while (p->count > 0 && at(p, 0)->done) {
    last = at(p, 0)->last;
    p->head = (p->head + 1) & (p->cap - 1);
    p->count--;
  }
  if (commit_next != NULL) {
    *commit_next = p->count > 0 ? at(p, 0)->offset : last + 1;
  }
  return true;
}

size_t gw_offsets_in_flight(const gw_offsets *o) {
  return o != NULL ? o->in_flight : 0;
}

size_t gw_offsets_entries(const gw_offsets *o) {
  if (o == NULL) {
    return 0;
  }
  size_t n = 0;
  gw_hash_iter it;
  gw_hash_iter_init(&o->partitions, &it);
  for (const part_state *p; (p = gw_hash_table_next(&o->partitions, &it)) != NULL;) {
    n += p->count;
  }
  return n;
}

void gw_offsets_forget(gw_offsets *o, const char *topic, int32_t partition) {
  if (o == NULL || topic == NULL) {
    return;
  }
  const tp_key k = {topic, partition};
  uint64_t h = hash_tp(&k);
  part_state *p = gw_hash_table_find(&o->partitions, h, tp_eq, &k);
  if (p == NULL) {
    return;
  }
  gw_hash_table_remove(&o->partitions, h, p);
  o->in_flight -= p->not_done;
  partition_free(p);
}
