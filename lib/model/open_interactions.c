/*
 * Open live interactions (see goodwill/open_interactions.h).
 *
 * A gw_hash_table maps (partition, tenant, interaction) to the interaction. Every open
 * interaction is on four lists:
 * - its partition's activity list, least recently active first: the event-time expiry looks at
 *   its head only, so it depends on that partition's records and the grace alone;
 * - the activity list over all partitions, in the order turns were added: its head is the one
 *   that has gone longest without a turn in processing time (GW_OPEN_EXPIRED_QUIET);
 * - its tenant's activity list: the head is the victim when that tenant holds the most;
 * - the list of all interactions in the order they were opened: its head gives the age of the
 *   oldest open interaction.
 * Tenants are in a second gw_hash_table and in two max-heaps, by bytes and by turns held, so
 * the tenant holding the most of what is over a bound is found in O(1) and kept in O(log n).
 *
 * Remembered closes are in a third gw_hash_table, keyed like the interactions, and on a FIFO
 * list in the order they were remembered, which is also their order in processing time: the
 * head is the first to age out or to be pushed out by max_closed.
 */
#include "goodwill/open_interactions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

typedef struct open_part open_part;
typedef struct open_tenant open_tenant;
typedef struct open_ia open_ia;

enum { L_PART, L_ALL, L_TENANT, L_OPENED, NLISTS };

typedef struct ia_link {
  open_ia *prev, *next;
} ia_link;

typedef struct ia_list {
  open_ia *head, *tail;
} ia_list;

struct open_ia {
  ia_link links[NLISTS];
  open_part *part;
  open_tenant *tenant;
  uint64_t hash; /* hash_key of its key, under which the table holds it */
  char *tenant_id, *interaction_id;
  gw_open_turn *turns;
  size_t nturns, cap;
  size_t bytes;            /* counted for it: struct, ids, turn array, turns' data */
  int64_t last_turn_at_ms; /* event time: the largest occurred_at_ms of its turns */
  int64_t last_added_ms;   /* processing time its last turn was added */
  int64_t opened_ms;       /* processing time its first turn was added */
};

struct open_part {
  open_part *next;
  int32_t partition;
  bool has_time;
  int64_t stream_time_ms; /* the largest occurred_at_ms seen in the partition */
  ia_list active;
};

struct open_tenant {
  uint64_t hash;
  char *tenant_id;
  size_t bytes;        /* its interactions' bytes plus its own struct and id */
  size_t turns;        /* turns its interactions hold */
  size_t interactions; /* open interactions; the tenant is freed at 0 */
  size_t heap_at[2];   /* its index in each heap (gw_open_bound) */
  ia_list active;
};

typedef struct closed_ia {
  struct closed_ia *prev, *next; /* remembered order, oldest first */
  uint64_t hash;
  int32_t partition;
  int64_t close_offset;
  int64_t closed_ms;                /* processing time */
  char *tenant_id, *interaction_id; /* in the same allocation, after the struct */
} closed_ia;

struct gw_open_interactions {
  int64_t idle_timeout_ms, grace_ms;
  size_t max_turns, max_bytes, max_closed;
  gw_hash_table table; /* open_ia by (partition, tenant, interaction) */
  size_t turns, bytes;
  ia_list all, opened;
  open_part *parts;
  gw_hash_table tenants; /* open_tenant by id */
  open_tenant **heap[2]; /* max-heaps by bytes and by turns (gw_open_bound) */
  size_t ntenants, heap_cap;
  gw_hash_table closed; /* closed_ia by (partition, tenant, interaction) */
  closed_ia *chead, *ctail;
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

static bool closed_eq(const void *item, const void *key) {
  const closed_ia *c = item;
  const ia_key *k = key;
  return c->partition == k->partition && strcmp(c->tenant_id, k->tenant_id) == 0 &&
         strcmp(c->interaction_id, k->interaction_id) == 0;
}

static bool tenant_eq(const void *item, const void *key) {
  return strcmp(((const open_tenant *)item)->tenant_id, key) == 0;
}

int gw_open_interactions_new(const gw_open_interactions_config *cfg, gw_open_interactions **out) {
  if (out == NULL) {
    return -EINVAL;
  }
  gw_open_interactions_config c = {0};
  if (cfg != NULL) {
    c = *cfg;
  }
  gw_open_interactions *o = xcalloc(1, sizeof *o);
  o->idle_timeout_ms = c.idle_timeout_ms > 0 ? c.idle_timeout_ms : GW_OPEN_DEFAULT_IDLE_MS;
  o->grace_ms = c.grace_ms > 0 ? c.grace_ms : GW_OPEN_DEFAULT_GRACE_MS;
  if (o->grace_ms > o->idle_timeout_ms) {
    o->grace_ms = o->idle_timeout_ms;
  }
  o->max_turns = c.max_turns > 0 ? c.max_turns : GW_OPEN_DEFAULT_MAX_TURNS;
  o->max_bytes = c.max_bytes > 0 ? c.max_bytes : GW_OPEN_DEFAULT_MAX_BYTES;
  o->max_closed = c.max_closed > 0 ? c.max_closed : GW_OPEN_DEFAULT_MAX_CLOSED;
  o->table = (gw_hash_table)GW_HASH_TABLE_INIT;
  o->tenants = (gw_hash_table)GW_HASH_TABLE_INIT;
  o->closed = (gw_hash_table)GW_HASH_TABLE_INIT;
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
  open_ia *ia = o->all.head;
  while (ia != NULL) {
    open_ia *next = ia->links[L_ALL].next;
    ia_free(ia);
    ia = next;
  }
  for (size_t i = 0; i < o->ntenants; i++) {
    free(o->heap[0][i]->tenant_id);
    free(o->heap[0][i]);
  }
  free(o->heap[0]);
  free(o->heap[1]);
  open_part *p = o->parts;
  while (p != NULL) {
    open_part *next = p->next;
    free(p);
    p = next;
  }
  closed_ia *c = o->chead;
  while (c != NULL) {
    closed_ia *next = c->next;
    free(c);
    c = next;
  }
  gw_hash_table_free(&o->table);
  gw_hash_table_free(&o->tenants);
  gw_hash_table_free(&o->closed);
  free(o);
}

/* ------------------------------------------------------------------ lists */

static ia_list *list_of(gw_open_interactions *o, open_ia *ia, int k) {
  switch (k) {
  case L_PART:
    return &ia->part->active;
  case L_ALL:
    return &o->all;
  case L_TENANT:
    return &ia->tenant->active;
  default:
    return &o->opened;
  }
}

static void list_unlink(gw_open_interactions *o, open_ia *ia, int k) {
  ia_list *l = list_of(o, ia, k);
  ia_link *n = &ia->links[k];
  if (n->prev != NULL) {
    n->prev->links[k].next = n->next;
  } else {
    l->head = n->next;
  }
  if (n->next != NULL) {
    n->next->links[k].prev = n->prev;
  } else {
    l->tail = n->prev;
  }
  n->prev = n->next = NULL;
}

static void list_append(gw_open_interactions *o, open_ia *ia, int k) {
  ia_list *l = list_of(o, ia, k);
  ia_link *n = &ia->links[k];
  n->prev = l->tail;
  n->next = NULL;
  if (l->tail != NULL) {
    l->tail->links[k].next = ia;
  } else {
    l->head = ia;
  }
  l->tail = ia;
}

/* ------------------------------------------------------------------ tenants and their heaps */

static size_t tenant_measure(const open_tenant *t, int which) {
  return which == GW_OPEN_BOUND_BYTES ? t->bytes : t->turns;
}

static void heap_set(gw_open_interactions *o, int w, size_t i, open_tenant *t) {
  o->heap[w][i] = t;
  t->heap_at[w] = i;
}

/* Moves the tenant at i up or down heap w until its parent holds at least as much and its
 * children no more. */
static void heap_fix_at(gw_open_interactions *o, int w, size_t i) {
  open_tenant *t = o->heap[w][i];
  size_t m = tenant_measure(t, w);
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (tenant_measure(o->heap[w][parent], w) >= m) {
      break;
    }
    heap_set(o, w, i, o->heap[w][parent]);
    i = parent;
  }
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= o->ntenants) {
      break;
    }
    if (c + 1 < o->ntenants &&
        tenant_measure(o->heap[w][c + 1], w) > tenant_measure(o->heap[w][c], w)) {
      c++;
    }
    if (tenant_measure(o->heap[w][c], w) <= m) {
      break;
    }
    heap_set(o, w, i, o->heap[w][c]);
    i = c;
  }
  heap_set(o, w, i, t);
}

static void heap_fix(gw_open_interactions *o, open_tenant *t) {
  heap_fix_at(o, GW_OPEN_BOUND_BYTES, t->heap_at[GW_OPEN_BOUND_BYTES]);
  heap_fix_at(o, GW_OPEN_BOUND_TURNS, t->heap_at[GW_OPEN_BOUND_TURNS]);
}

static size_t tenant_own_bytes(const char *tenant_id) {
  return sizeof(open_tenant) + strlen(tenant_id) + 1;
}

static open_tenant *tenant_get(gw_open_interactions *o, const char *tenant_id) {
  uint64_t h = gw_fnv64_update_field(GW_FNV64_BASIS, tenant_id);
  open_tenant *t = gw_hash_table_find(&o->tenants, h, tenant_eq, tenant_id);
  if (t != NULL) {
    return t;
  }
  t = xcalloc(1, sizeof *t);
  t->hash = h;
  t->tenant_id = xdup(tenant_id, strlen(tenant_id), true);
  t->bytes = tenant_own_bytes(tenant_id);
  o->bytes += t->bytes;
  if (gw_hash_table_insert(&o->tenants, h, t) != 0) {
    abort();
  }
  if (o->ntenants == o->heap_cap) {
    size_t cap = o->heap_cap ? o->heap_cap * 2 : 16;
    for (int w = 0; w < 2; w++) {
      open_tenant **n = realloc(o->heap[w], cap * sizeof *n);
      if (n == NULL) {
        abort();
      }
      o->heap[w] = n;
    }
    o->heap_cap = cap;
  }
  size_t i = o->ntenants++;
  for (int w = 0; w < 2; w++) {
    heap_set(o, w, i, t);
    heap_fix_at(o, w, i);
  }
  return t;
}

/* The tenant's last interaction left: out of the table and the heaps, and freed. */
static void tenant_drop(gw_open_interactions *o, open_tenant *t) {
  gw_hash_table_remove(&o->tenants, t->hash, t);
  size_t n = --o->ntenants;
  for (int w = 0; w < 2; w++) {
    open_tenant *last = o->heap[w][n];
    if (last != t) {
      heap_set(o, w, t->heap_at[w], last);
      heap_fix_at(o, w, last->heap_at[w]);
    }
  }
  o->bytes -= t->bytes;
  free(t->tenant_id);
  free(t);
}

/* ------------------------------------------------------------------ remembered closes */

static void closed_forget(gw_open_interactions *o, closed_ia *c) {
  gw_hash_table_remove(&o->closed, c->hash, c);
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    o->chead = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  } else {
    o->ctail = c->prev;
  }
  free(c);
}

/* Forgets the closes remembered for longer than the idle timeout. */
static void closed_prune(gw_open_interactions *o, int64_t now_ms) {
  while (o->chead != NULL && now_ms - o->chead->closed_ms > o->idle_timeout_ms) {
    closed_forget(o, o->chead);
  }
}

static closed_ia *closed_find(const gw_open_interactions *o, const ia_key *k, uint64_t h) {
  return gw_hash_table_find(&o->closed, h, closed_eq, k);
}

static void closed_remember(gw_open_interactions *o, const ia_key *k, uint64_t h,
                            int64_t close_offset, int64_t now_ms) {
  closed_ia *old = closed_find(o, k, h);
  if (old != NULL) {
    closed_forget(o, old); /* a close read again: remembered anew, at the tail */
  }
  size_t tl = strlen(k->tenant_id), il = strlen(k->interaction_id);
  closed_ia *c = xcalloc(1, sizeof *c + tl + 1 + il + 1);
  c->tenant_id = (char *)(c + 1);
  c->interaction_id = c->tenant_id + tl + 1;
  memcpy(c->tenant_id, k->tenant_id, tl);
  memcpy(c->interaction_id, k->interaction_id, il);
  c->hash = h;
  c->partition = k->partition;
  c->close_offset = close_offset;
  c->closed_ms = now_ms;
  if (gw_hash_table_insert(&o->closed, h, c) != 0) {
    abort();
  }
  c->prev = o->ctail;
  if (o->ctail != NULL) {
    o->ctail->next = c;
  } else {
    o->chead = c;
  }
  o->ctail = c;
  while (o->closed.count > o->max_closed) {
    closed_forget(o, o->chead);
  }
}

/* ------------------------------------------------------------------ buffering */

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

static void advance(open_part *p, int64_t occurred_at_ms) {
  if (!p->has_time || occurred_at_ms > p->stream_time_ms) {
    p->stream_time_ms = occurred_at_ms;
    p->has_time = true;
  }
}

/* Counts n more bytes for ia, its tenant and the whole buffer (the caller fixes the heaps). */
static void charge(gw_open_interactions *o, open_ia *ia, size_t n) {
  ia->bytes += n;
  ia->tenant->bytes += n;
  o->bytes += n;
}

int gw_open_interactions_add_turn(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                                  const char *interaction_id, const gw_open_turn *t,
                                  int64_t now_ms) {
  if (o == NULL || tenant_id == NULL || interaction_id == NULL || t == NULL) {
    return -EINVAL;
  }
  open_part *p = find_part(o, partition, true);
  advance(p, t->occurred_at_ms);
  closed_prune(o, now_ms);
  const ia_key k = {partition, tenant_id, interaction_id};
  uint64_t h = hash_key(&k);
  if (o->closed.count > 0 && closed_find(o, &k, h) != NULL) {
    return -EALREADY;
  }
  open_ia *ia = gw_hash_table_find(&o->table, h, ia_eq, &k);
  if (ia == NULL) {
    ia = xcalloc(1, sizeof *ia);
    ia->part = p;
    ia->tenant = tenant_get(o, tenant_id);
    ia->hash = h;
    ia->tenant_id = xdup(tenant_id, strlen(tenant_id), true);
    ia->interaction_id = xdup(interaction_id, strlen(interaction_id), true);
    ia->last_turn_at_ms = t->occurred_at_ms;
    ia->opened_ms = now_ms;
    if (gw_hash_table_insert(&o->table, h, ia) != 0) {
      abort();
    }
    ia->tenant->interactions++;
    charge(o, ia, sizeof *ia + strlen(tenant_id) + 1 + strlen(interaction_id) + 1);
    list_append(o, ia, L_OPENED);
  } else {
    list_unlink(o, ia, L_PART);
    list_unlink(o, ia, L_ALL);
    list_unlink(o, ia, L_TENANT);
  }
  list_append(o, ia, L_PART);
  list_append(o, ia, L_ALL);
  list_append(o, ia, L_TENANT);
  ia->last_added_ms = now_ms;
  if (ia->nturns == ia->cap) {
    size_t cap = ia->cap ? ia->cap * 2 : 8;
    gw_open_turn *n = realloc(ia->turns, cap * sizeof *n);
    if (n == NULL) {
      abort();
    }
    charge(o, ia, (cap - ia->cap) * sizeof *n);
    ia->turns = n;
    ia->cap = cap;
  }
  gw_open_turn *c = &ia->turns[ia->nturns++];
  *c = *t;
  c->duplicate = false;
  size_t text_len = t->text != NULL ? strlen(t->text) : 0;
  c->text = xdup(t->text != NULL ? t->text : "", text_len, true);
  c->key = t->key != NULL ? xdup(t->key, t->key_len, false) : NULL;
  c->key_len = t->key != NULL ? t->key_len : 0;
  c->value = t->value != NULL ? xdup(t->value, t->value_len, false) : NULL;
  c->value_len = t->value != NULL ? t->value_len : 0;
  charge(o, ia, text_len + 1 + c->key_len + c->value_len);
  if (t->occurred_at_ms > ia->last_turn_at_ms) {
    ia->last_turn_at_ms = t->occurred_at_ms;
  }
  o->turns++;
  ia->tenant->turns++;
  heap_fix(o, ia->tenant);
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

/* Detaches ia from the table, the lists and the accounting, and moves its turns into out. */
static void detach(gw_open_interactions *o, open_ia *ia, gw_open_batch *out) {
  gw_hash_table_remove(&o->table, ia->hash, ia);
  for (int k = 0; k < NLISTS; k++) {
    list_unlink(o, ia, k);
  }
  open_tenant *t = ia->tenant;
  o->turns -= ia->nturns;
  o->bytes -= ia->bytes;
  t->turns -= ia->nturns;
  t->bytes -= ia->bytes;
  if (--t->interactions == 0) {
    tenant_drop(o, t);
  } else {
    heap_fix(o, t);
  }
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
    gw_open_turn *tt = &out->turns[i];
    for (size_t k = i; k-- > 0 && out->turns[k].seq == tt->seq;) {
      if (!out->turns[k].duplicate && out->turns[k].speaker == tt->speaker &&
          strcmp(out->turns[k].text, tt->text) == 0) {
        tt->duplicate = true;
        break;
      }
    }
  }
  free(ia);
}

bool gw_open_interactions_take(gw_open_interactions *o, int32_t partition, const char *tenant_id,
                               const char *interaction_id, int64_t close_offset, int64_t now_ms,
                               gw_open_batch *out) {
  memset(out, 0, sizeof *out);
  if (o == NULL || tenant_id == NULL || interaction_id == NULL) {
    return false;
  }
  closed_prune(o, now_ms);
  const ia_key k = {partition, tenant_id, interaction_id};
  uint64_t h = hash_key(&k);
  closed_remember(o, &k, h, close_offset, now_ms);
  open_ia *ia = gw_hash_table_find(&o->table, h, ia_eq, &k);
  if (ia == NULL) {
    return false;
  }
  detach(o, ia, out);
  return true;
}

bool gw_open_interactions_closed_at(const gw_open_interactions *o, int32_t partition,
                                    const char *tenant_id, const char *interaction_id,
                                    int64_t *close_offset) {
  if (o == NULL || tenant_id == NULL || interaction_id == NULL || o->closed.count == 0) {
    return false;
  }
  const ia_key k = {partition, tenant_id, interaction_id};
  const closed_ia *c = closed_find(o, &k, hash_key(&k));
  if (c != NULL && close_offset != NULL) {
    *close_offset = c->close_offset;
  }
  return c != NULL;
}

/* ------------------------------------------------------------------ expiry */

/* The event-time rule for one partition's least recently active interaction. */
static bool idle_in_event_time(const gw_open_interactions *o, const open_part *p, int64_t now_ms) {
  const open_ia *ia = p->active.head;
  return ia != NULL && p->has_time &&
         ia->last_turn_at_ms < p->stream_time_ms - o->idle_timeout_ms &&
         now_ms - ia->last_added_ms >= o->grace_ms;
}

bool gw_open_interactions_expire_next(gw_open_interactions *o, int32_t partition, int64_t now_ms,
                                      gw_open_batch *out) {
  memset(out, 0, sizeof *out);
  if (o == NULL) {
    return false;
  }
  closed_prune(o, now_ms);
  int over = o->bytes > o->max_bytes   ? GW_OPEN_BOUND_BYTES
             : o->turns > o->max_turns ? GW_OPEN_BOUND_TURNS
                                       : -1;
  if (over >= 0 && o->ntenants > 0) {
    open_tenant *t = o->heap[over][0];
    size_t total_bytes = o->bytes, total_turns = o->turns;
    size_t tenant_bytes = t->bytes, tenant_turns = t->turns;
    detach(o, t->active.head, out);
    out->reason = GW_OPEN_EXPIRED_LIMIT;
    out->bound = (gw_open_bound)over;
    out->total_bytes = total_bytes;
    out->total_turns = total_turns;
    out->tenant_bytes = tenant_bytes;
    out->tenant_turns = tenant_turns;
    return true;
  }
  open_ia *quiet = o->all.head;
  if (quiet != NULL && now_ms - quiet->last_added_ms > o->idle_timeout_ms) {
    int64_t idle_ms = now_ms - quiet->last_added_ms;
    detach(o, quiet, out);
    out->reason = GW_OPEN_EXPIRED_QUIET;
    out->idle_ms = idle_ms;
    return true;
  }
  for (open_part *p = o->parts; p != NULL; p = p->next) {
    if (partition != GW_OPEN_ALL_PARTITIONS && p->partition != partition) {
      continue;
    }
    if (idle_in_event_time(o, p, now_ms)) {
      int64_t idle_ms = p->stream_time_ms - p->active.head->last_turn_at_ms;
      detach(o, p->active.head, out);
      out->reason = GW_OPEN_EXPIRED_IDLE;
      out->idle_ms = idle_ms;
      return true;
    }
  }
  return false;
}

size_t gw_open_interactions_drop_partition(gw_open_interactions *o, int32_t partition) {
  if (o == NULL) {
    return 0;
  }
  for (closed_ia *c = o->chead; c != NULL;) {
    closed_ia *next = c->next;
    if (c->partition == partition) {
      closed_forget(o, c);
    }
    c = next;
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
  while (p->active.head != NULL) {
    gw_open_batch b;
    dropped += p->active.head->nturns;
    detach(o, p->active.head, &b);
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

size_t gw_open_interactions_bytes(const gw_open_interactions *o) {
  return o != NULL ? o->bytes : 0;
}

size_t gw_open_interactions_closed_count(const gw_open_interactions *o) {
  return o != NULL ? o->closed.count : 0;
}

int64_t gw_open_interactions_oldest_age_ms(const gw_open_interactions *o, int64_t now_ms) {
  if (o == NULL || o->opened.head == NULL || now_ms < o->opened.head->opened_ms) {
    return 0;
  }
  return now_ms - o->opened.head->opened_ms;
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
