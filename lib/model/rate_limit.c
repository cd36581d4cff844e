#include "goodwill/rate_limit.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

typedef struct bucket {
  double level;   /* events that may still be sent; negative: debt */
  uint64_t at_ms; /* when level was last brought up to date */
  char key[];     /* NUL-terminated */
} bucket;

struct gw_rate_limit {
  double rate_per_ms;
  double burst;
  size_t max_keys;
  gw_hash_table buckets; /* bucket by key, at most max_keys of them */
};

/* FNV-1a: keys are short tenant ids chosen by the operator, not by clients. */
static uint64_t key_hash(const char *s) {
  return gw_fnv64(s, strlen(s));
}

static bool key_eq(const void *item, const void *key) {
  return strcmp(((const bucket *)item)->key, key) == 0;
}

int gw_rate_limit_new(double rate_per_s, double burst, size_t max_keys, gw_rate_limit **out) {
  *out = NULL;
  if (!(rate_per_s > 0) || !isfinite(rate_per_s) || !(burst >= 1) || !isfinite(burst) ||
      max_keys == 0) {
    return -EINVAL;
  }
  gw_rate_limit *rl = calloc(1, sizeof(*rl));
  if (rl == NULL) {
    return -ENOMEM;
  }
  rl->rate_per_ms = rate_per_s / 1000.0;
  rl->burst = burst;
  rl->max_keys = max_keys;
  rl->buckets = (gw_hash_table)GW_HASH_TABLE_INIT;
  *out = rl;
  return 0;
}

void gw_rate_limit_free(gw_rate_limit *rl) {
  if (rl == NULL) {
    return;
  }
  gw_hash_iter it;
  gw_hash_iter_init(&rl->buckets, &it);
  for (bucket *b; (b = gw_hash_table_next(&rl->buckets, &it)) != NULL;) {
    free(b);
  }
  gw_hash_table_free(&rl->buckets);
  free(rl);
}

size_t gw_rate_limit_keys(const gw_rate_limit *rl) {
  return rl->buckets.count;
}

/* Brings b's level up to now (a clock that goes backwards adds nothing). */
static void refill(const gw_rate_limit *rl, bucket *b, uint64_t now_ms) {
  if (now_ms > b->at_ms) {
    b->level = fmin(rl->burst, b->level + (double)(now_ms - b->at_ms) * rl->rate_per_ms);
    b->at_ms = now_ms;
  }
}

/* Drops every bucket that has refilled completely: it holds nothing a fresh one would not. */
static void drop_full(gw_rate_limit *rl, uint64_t now_ms) {
  gw_hash_iter it;
  gw_hash_iter_init(&rl->buckets, &it);
  for (bucket *b; (b = gw_hash_table_next(&rl->buckets, &it)) != NULL;) {
    refill(rl, b, now_ms);
    if (b->level >= rl->burst) {
      gw_hash_table_remove_current(&rl->buckets, &it);
      free(b);
    }
  }
}

/* key's bucket, created full when new; NULL when there is no room (or no memory). */
static bucket *find(gw_rate_limit *rl, const char *key, uint64_t now_ms, int *err) {
  uint64_t h = key_hash(key);
  bucket *b = gw_hash_table_find(&rl->buckets, h, key_eq, key);
  if (b != NULL) {
    refill(rl, b, now_ms);
    return b;
  }
  if (rl->buckets.count >= rl->max_keys) {
    drop_full(rl, now_ms);
    if (rl->buckets.count >= rl->max_keys) {
      *err = -ENOSPC;
      return NULL;
    }
  }
  size_t n = strlen(key);
  b = malloc(sizeof(*b) + n + 1);
  if (b == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  memcpy(b->key, key, n + 1);
  b->level = rl->burst;
  b->at_ms = now_ms;
  int rc = gw_hash_table_insert(&rl->buckets, h, b);
  if (rc != 0) {
    free(b);
    *err = rc;
    return NULL;
  }
  return b;
}

int gw_rate_limit_admit(gw_rate_limit *rl, const char *key, uint64_t now_ms,
                        uint64_t *retry_after_ms) {
  *retry_after_ms = 0;
  int err = 0;
  bucket *b = find(rl, key, now_ms, &err);
  if (b == NULL) {
    return err;
  }
  if (b->level >= 0) {
    return 0;
  }
  double wait_ms = ceil(-b->level / rl->rate_per_ms);
  *retry_after_ms = wait_ms < 1 ? 1 : (uint64_t)wait_ms;
  return -EAGAIN;
}

int gw_rate_limit_take(gw_rate_limit *rl, const char *key, uint64_t now_ms, double cost,
                       uint64_t *retry_after_ms) {
  *retry_after_ms = 0;
  int err = 0;
  bucket *b = find(rl, key, now_ms, &err);
  if (b == NULL) {
    return err;
  }
  if (b->level >= cost) {
    b->level -= cost;
    return 0;
  }
  double wait_ms = ceil((cost - b->level) / rl->rate_per_ms);
  *retry_after_ms = wait_ms < 1 ? 1 : (uint64_t)wait_ms;
  return -EAGAIN;
}

void gw_rate_limit_charge(gw_rate_limit *rl, const char *key, uint64_t now_ms, size_t events) {
  int err = 0;
  bucket *b = find(rl, key, now_ms, &err);
  if (b != NULL) {
    b->level -= (double)events;
  }
}
