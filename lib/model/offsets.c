/* In-progress offsets per (topic, partition) and the contiguous commit point (see offsets.h). */
#include "goodwill/offsets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
  struct part_state *next; /* hash chain */
  char *topic;
  int32_t partition;
  entry *ring;
  size_t head, count, cap;
  size_t not_done;
  int64_t last_begun; /* -1 before the first begin */
} part_state;

struct gw_offsets {
  part_state **buckets; /* chained hash table, power-of-two size */
  size_t nbuckets;
  size_t npartitions;
  size_t in_flight;
};

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

static size_t hash_tp(const char *topic, int32_t p) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 over the topic, then the partition */
  for (const unsigned char *c = (const unsigned char *)topic; *c; c++) {
    h = (h ^ *c) * 0x100000001b3ULL;
  }
  h = (h ^ (uint32_t)p) * 0x100000001b3ULL;
  return (size_t)(h ^ (h >> 32));
}

int gw_offsets_new(gw_offsets **out) {
  gw_offsets *o = xcalloc(1, sizeof *o);
  o->nbuckets = 16;
  o->buckets = xcalloc(o->nbuckets, sizeof *o->buckets);
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
  for (size_t i = 0; i < o->nbuckets; i++) {
    part_state *p = o->buckets[i];
    while (p != NULL) {
      part_state *next = p->next;
      partition_free(p);
      p = next;
    }
  }
  free(o->buckets);
  free(o);
}

static part_state **find_slot(const gw_offsets *o, const char *topic, int32_t part) {
  part_state **slot = &o->buckets[hash_tp(topic, part) & (o->nbuckets - 1)];
  while (*slot != NULL && ((*slot)->partition != part || strcmp((*slot)->topic, topic) != 0)) {
    slot = &(*slot)->next;
  }
  return slot;
}

static void rehash(gw_offsets *o) {
  size_t n = o->nbuckets * 2;
  part_state **b = xcalloc(n, sizeof *b);
  for (size_t i = 0; i < o->nbuckets; i++) {
    part_state *p = o->buckets[i];
    while (p != NULL) {
      part_state *next = p->next;
      size_t k = hash_tp(p->topic, p->partition) & (n - 1);
      p->next = b[k];
      b[k] = p;
      p = next;
    }
  }
  free(o->buckets);
  o->buckets = b;
  o->nbuckets = n;
}

static part_state *get_or_create(gw_offsets *o, const char *topic, int32_t part) {
  part_state **slot = find_slot(o, topic, part);
  if (*slot != NULL) {
    return *slot;
  }
  if (o->npartitions + 1 > o->nbuckets) {
    rehash(o);
    slot = find_slot(o, topic, part);
  }
  part_state *p = xcalloc(1, sizeof *p);
  size_t n = strlen(topic);
  p->topic = xcalloc(n + 1, 1);
  memcpy(p->topic, topic, n);
  p->partition = part;
  p->last_begun = -1;
  *slot = p;
  o->npartitions++;
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
  part_state *p = *find_slot(o, topic, partition);
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
  size_t n = 0;
  for (size_t i = 0; o != NULL && i < o->nbuckets; i++) {
    for (const part_state *p = o->buckets[i]; p != NULL; p = p->next) {
      n += p->count;
    }
  }
  return n;
}

void gw_offsets_forget(gw_offsets *o, const char *topic, int32_t partition) {
  if (o == NULL || topic == NULL) {
    return;
  }
  part_state **slot = find_slot(o, topic, partition);
  part_state *p = *slot;
  if (p == NULL) {
    return;
  }
  *slot = p->next;
  o->in_flight -= p->not_done;
  o->npartitions--;
  partition_free(p);
}
