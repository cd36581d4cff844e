#include "goodwill/rate_limit.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  struct bucket *next; /* chain of the same slot */
  double level;        /* events that may still be sent; negative: debt */
  uint64_t at_ms;      /* when level was last brought up to date */
  char key[];          /* NUL-terminated */
} bucket;

struct gw_rate_limit {
  double rate_per_ms;
  double burst;
  size_t max_keys;
  size_t count;
  size_t nslots; /* a power of two */
  bucket **slots;
};

/* FNV-1a: keys are short tenant ids chosen by the operator, not by clients. */
static size_t key_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  }
  return (size_t)(h ^ (h >> 32));
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
  rl->nslots = 64;
  while (rl->nslots < max_keys && rl->nslots < ((size_t)1 << 20)) {
    rl->nslots <<= 1;
  }
  rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
  if (rl->slots == NULL) {
    free(rl);
    return -ENOMEM;
  }
  *out = rl;
  return 0;
}

void gw_rate_limit_free(gw_rate_limit *rl) {
  if (rl == NULL) {
    return;
  }
  for (size_t i = 0; i < rl->nslots; i++) {
    while (rl->slots[i] != NULL) {
      bucket *b = rl->slots[i];
      rl->slots[i] = b->next;
      free(b);
    }
  }
  free(rl->slots);
  free(rl);
}

size_t gw_rate_limit_keys(const gw_rate_limit *rl) {
  return rl->count;
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
  for (size_t i = 0; i < rl->nslots; i++) {
    for (bucket **pp = &rl->slots[i]; *pp != NULL;) {
      bucket *b = *pp;
      refill(rl, b, now_ms);
      if (b->level >= rl->burst) {
        *pp = b->next;
        free(b);
        rl->count--;
      } else {
        pp = &b->next;
      }
    }
  }
}

/* key's bucket, created full when new; NULL when there is no room (or no memory). */
static bucket *find(gw_rate_limit *rl, const char *key, uint64_t now_ms, int *err) {
  size_t slot = key_hash(key) & (rl->nslots - 1);
  for (bucket *b = rl->slots[slot]; b != NULL; b = b->next) {
    if (strcmp(b->key, key) == 0) {
      refill(rl, b, now_ms);
      return b;
    }
  }
  if (rl->count >= rl->max_keys) {
    drop_full(rl, now_ms);
    if (rl->count >= rl->max_keys) {
      *err = -ENOSPC;
      return NULL;
    }
  }
  size_t n = strlen(key);
  bucket *b = malloc(sizeof(*b) + n + 1);
  if (b == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  memcpy(b->key, key, n + 1);
  b->level = rl->burst;
  b->at_ms = now_ms;
  b->next = rl->slots[slot];
  rl->slots[slot] = b;
  rl->count++;
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

void gw_rate_limit_charge(gw_rate_limit *rl, const char *key, uint64_t now_ms, size_t events) {
  int err = 0;
  bucket *b = find(rl, key, now_ms, &err);
  if (b != NULL) {
    b->level -= (double)events;
  }
}
