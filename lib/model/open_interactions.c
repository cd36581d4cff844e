/*
 * Open live interactions (see goodwill/open_interactions.h).
 *
 * A gw_hash_table maps (partition, tenant, interaction) to the interaction; every open
 * interaction is also on two activity lists, least recently active first: one per partition
 * (idle expiry looks at its head only, so it depends on that partition's records alone and is
 * the same on a replay) and one over all partitions (the victim when max_turns is exceeded).
 */
#include "goodwill/open_interactions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

#define GW_OPEN_DEFAULT_IDLE_MS   (6 * 3600 * 1000LL)
#define GW_OPEN_DEFAULT_MAX_TURNS 200000u

typedef struct open_part open_part;

typedef struct open_ia {
  struct open_ia *pprev, *pnext; /* partition activity list */
  struct open_ia *gprev, *gnext; /* global activity list */
  open_part *part;
  uint64_t hash; /* hash_key of its key, under which the table holds it */
  char *tenant_id, *interaction_id;
  gw_open_turn *turns;
  size_t nturns, cap;
  int64_t last_turn_at_ms; /* the largest occurred_at_ms of its turns */
} open_ia;

struct open_part {
  open_part *next;
  int32_t partition;
  bool has_time;
  int64_t stream_time_ms; /* the largest occurred_at_ms seen in the partition */
  open_ia *head, *tail;
};

struct gw_open_interactions {
  int64_t idle_timeout_ms;
  size_t max_turns;
  gw_hash_table table; /* open_ia by (partition, tenant, interaction) */
  size_t turns;
  open_ia *ghead, *gtail;
  open_part *parts;
};

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

static void *xdup(const void *src, size_t len, bool nul) {
  char *d = xcalloc(len + (nul ? 1 : 0), 1);
  if (len > 0) {
    memcpy(d, src, len);
  }
  return d;
}

/* An interaction's key, as looked up. */
typedef struct ia_key {
  int32_t partition;
  const char *tenant_id, *interaction_id;
} ia_key;

/* FNV-1a over the partition and both ids, each id followed by a separator so that no other
 * split of the same bytes into tenant and interaction hashes alike. */
static uint64_t hash_key(const ia_key *k) {
  uint32_t p = (uint32_t)k->partition;
  uint64_t h = gw_fnv64(&p, sizeof p);
  h = gw_fnv64_update_field(h, k->tenant_id);
  return gw_fnv64_update_field(h, k->interaction_id);
}

static bool ia_eq(const void *item, const void *key) {
  const open_ia *ia = item;
  const ia_key *k = key;
  return ia->part->partition == k->partition && strcmp(ia->tenant_id, k->tenant_id) == 0 &&
         strcmp(ia->interaction_id, k->interaction_id) == 0;
}

int gw_open_interactions_new(const gw_open_interactions_config *cfg, gw_open_interactions **out) {
  if (out == NULL) {
    return -EINVAL;
  }
  gw_open_interactions *o = xcalloc(1, sizeof *o);
  o->idle_timeout_ms =
      cfg != NULL && cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : GW_OPEN_DEFAULT_IDLE_MS;
  o->max_turns = cfg != NULL && cfg->max_turns > 0 ? cfg->max_turns : GW_OPEN_DEFAULT_MAX_TURNS;
  o->table = (gw_hash_table)GW_HASH_TABLE_INIT;
  *out = o;
  return 0;
}

static void turn_release(gw_open_turn *t) {
  free(t->text);
  free(t->key);
  free(t->value);
}

static void ia_free(open_ia *ia) {
  for (size_t i = 0; i < ia->nturns; i++) {
    turn_release(&ia->turns[i]);
  }
  free(ia->turns);
  free(ia->tenant_id);
  free(ia->interaction_id);
  free(ia);
}

void gw_open_interactions_free(gw_open_interactions *o) {
  if (o == NULL) {
    return;
  }
  open_ia *ia = o->ghead;
  while (ia != NULL) {
    open_ia *next = ia->gnext;
    ia_free(ia);
    ia = next;
  }
  open_part *p = o->parts;
  while (p != NULL) {
    open_part *next = p->next;
    free(p);
    p = next;
  }
  gw_hash_table_free(&o->table);
  free(o);
}

static open_part *find_part(gw_open_interactions *o, int32_t partition, bool create) {
  for (open_part *p = o->parts; p != NULL; p = p->next) {
    if (p->partition == partition) {
      return p;
    }
  }
  if (!create) {
    return NULL;
  }
  open_part *p = xcalloc(1, sizeof *p);
  p->partition = partition;
  p->next = o->parts;
  o->parts = p;
  return p;
}

static void lists_unlink(gw_open_interactions *o, open_ia *ia) {
  open_part *p = ia->part;
  if (ia->pprev != NULL) {
    ia->pprev->pnext = ia->pnext;
  } else {
    p->head = ia->pnext;
  }
  if (ia->pnext != NULL) {
    ia->pnext->pprev = ia->pprev;
  } else {
    p->tail = ia->pprev;
  }
  if (ia->gprev != NULL) {
    ia->gprev->gnext = ia->gnext;
  } else {
    o->ghead = ia->gnext;
  }
  if (ia->gnext != NULL) {
    ia->gnext->gprev = ia->gprev;
  } else {
    o->gtail = ia->gprev;
  }
  ia->pprev = ia->pnext = ia->gprev = ia->gnext = NULL;
}

static void lists_append(gw_open_interactions *o, open_ia *ia) {
  open_part *p = ia->part;
  ia->pprev = p->tail;
  ia->pnext = NULL;
  if (p->tail != NULL) {
    p->tail->pnext = ia;
  } else {
    p->head = ia;
  }
  p->tail = ia;
  ia->gprev = o->gtail;
  ia->gnext = NULL;
  if (o->gtail != NULL) {
    o->gtail->gnext = ia;
  } else {
    o->ghead = ia;
  }
  o->gtail = ia;
}

static void advance(open_part *p, int64_t occurred_at_ms) {
  if (!p->has_time || occurred_at_ms > p->stream_time_ms) {
    p->stream_time_ms = occurred_at_ms;
    p->has_time = true;
  }
}

int gw_open_interactions_add_turn(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                                  const char *interaction_id, const gw_open_turn *t) {
  if (o == NULL || tenant_id == NULL || interaction_id == NULL || t == NULL) {
    return -EINVAL;
  }
  open_part *p = find_part(o, partition, true);
  advance(p, t->occurred_at_ms);
  const ia_key k = {partition, tenant_id, interaction_id};
  uint64_t h = hash_key(&k);
  open_ia *ia = gw_hash_table_find(&o->table, h, ia_eq, &k);
  if (ia == NULL) {
    ia = xcalloc(1, sizeof *ia);
    ia->part = p;
    ia->hash = h;
    ia->tenant_id = xdup(tenant_id, strlen(tenant_id), true);
    ia->interaction_id = xdup(interaction_id, strlen(interaction_id), true);
    ia->last_turn_at_ms = t->occurred_at_ms;
    if (gw_hash_table_insert(&o->table, h, ia) != 0) {
      abort();
    }
  } else {
    lists_unlink(o, ia);
  }
  lists_append(o, ia);
  if (ia->nturns == ia->cap) {
    size_t cap = ia->cap ? ia->cap * 2 : 8;
    gw_open_turn *n = realloc(ia->turns, cap * sizeof *n);
    if (n == NULL) {
      abort();
    }
    ia->turns = n;
    ia->cap = cap;
  }
  gw_open_turn *c = &ia->turns[ia->nturns++];
  *c = *t;
  c->duplicate = false;
  c->text = xdup(t->text != NULL ? t->text : "", t->text != NULL ? strlen(t->text) : 0, true);
  c->key = t->key != NULL ? xdup(t->key, t->key_len, false) : NULL;
  c->key_len = t->key != NULL ? t->key_len : 0;
  c->value = t->value != NULL ? xdup(t->value, t->value_len, false) : NULL;
  c->value_len = t->value != NULL ? t->value_len : 0;
  if (t->occurred_at_ms > ia->last_turn_at_ms) {
    ia->last_turn_at_ms = t->occurred_at_ms;
  }
  o->turns++;
  return 0;
}

void gw_open_interactions_observe(gw_open_interactions *o, int32_t partition,
                                  int64_t occurred_at_ms) {
  if (o != NULL) {
    advance(find_part(o, partition, true), occurred_at_ms);
  }
}

static int turn_cmp(const void *a, const void *b) {
  const gw_open_turn *x = a, *y = b;
  if (x->seq != y->seq) {
    return x->seq < y->seq ? -1 : 1;
  }
  return x->input_offset < y->input_offset ? -1 : x->input_offset > y->input_offset;
}

/* Detaches ia from the table and the lists and moves its turns into out. */
static void detach(gw_open_interactions *o, open_ia *ia, gw_open_batch *out) {
  gw_hash_table_remove(&o->table, ia->hash, ia);
  lists_unlink(o, ia);
  o->turns -= ia->nturns;
  memset(out, 0, sizeof *out);
  out->partition = ia->part->partition;
  out->tenant_id = ia->tenant_id;
  out->interaction_id = ia->interaction_id;
  out->turns = ia->turns;
  out->nturns = ia->nturns;
  qsort(out->turns, out->nturns, sizeof *out->turns, turn_cmp);
  /* A client that retried a turn sent it twice: the same seq, speaker and text. Only the first
   * copy is scored. Turns that share a seq but differ are all kept, in arrival order: seq is
   * optional in JSON (0 when absent), and a client that never sends it must not lose every
   * turn but the first. */
  for (size_t i = 1; i < out->nturns; i++) {
    gw_open_turn *t = &out->turns[i];
    for (size_t k = i; k-- > 0 && out->turns[k].seq == t->seq;) {
      if (!out->turns[k].duplicate && out->turns[k].speaker == t->speaker &&
          strcmp(out->turns[k].text, t->text) == 0) {
        t->duplicate = true;
        break;
      }
    }
  }
  free(ia);
}

bool gw_open_interactions_take(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                               const char *interaction_id, gw_open_batch *out) {
  memset(out, 0, sizeof *out);
  if (o == NULL || tenant_id == NULL || interaction_id == NULL) {
    return false;
  }
  const ia_key k = {partition, tenant_id, interaction_id};
  open_ia *ia = gw_hash_table_find(&o->table, hash_key(&k), ia_eq, &k);
  if (ia == NULL) {
    return false;
  }
  detach(o, ia, out);
  return true;
}

bool gw_open_interactions_expire_next(gw_open_interactions *o, int32_t partition,
                                      gw_open_batch *out) {
  memset(out, 0, sizeof *out);
  if (o == NULL) {
    return false;
  }
  if (o->turns > o->max_turns && o->ghead != NULL) {
    detach(o, o->ghead, out);
    out->reason = GW_OPEN_EXPIRED_LIMIT;
    return true;
  }
  open_part *p = find_part(o, partition, false);
  if (p == NULL || p->head == NULL || !p->has_time) {
    return false;
  }
  if (p->head->last_turn_at_ms < p->stream_time_ms - o->idle_timeout_ms) {
    detach(o, p->head, out);
    out->reason = GW_OPEN_EXPIRED_IDLE;
    return true;
  }
  return false;
}

size_t gw_open_interactions_drop_partition(gw_open_interactions *o, int32_t partition) {
  if (o == NULL) {
    return 0;
  }
  open_part **pp = &o->parts;
  while (*pp != NULL && (*pp)->partition != partition) {
    pp = &(*pp)->next;
  }
  open_part *p = *pp;
  if (p == NULL) {
    return 0;
  }
  size_t dropped = 0;
  while (p->head != NULL) {
    gw_open_batch b;
    dropped += p->head->nturns;
    detach(o, p->head, &b);
    gw_open_batch_free(&b);
  }
  *pp = p->next;
  free(p);
  return dropped;
}

size_t gw_open_interactions_count(const gw_open_interactions *o) {
  return o != NULL ? o->table.count : 0;
}

size_t gw_open_interactions_turns(const gw_open_interactions *o) {
  return o != NULL ? o->turns : 0;
}

void gw_open_batch_free(gw_open_batch *b) {
  if (b == NULL) {
    return;
  }
  for (size_t i = 0; i < b->nturns; i++) {
    turn_release(&b->turns[i]);
  }
  free(b->turns);
  free(b->tenant_id);
  free(b->interaction_id);
  memset(b, 0, sizeof *b);
}
