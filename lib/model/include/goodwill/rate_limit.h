/*
 * gw_rate_limit: per-tenant rate limits, as token buckets: the events of goodwill-ingest
 * (admit, then charge what the request held) and the requests of the read API (take: a cost
 * known up front).
 *
 * Each key (a tenant) has a bucket that fills at `rate_per_s` events per second up to `burst`
 * events. A request may start while its tenant's bucket is not in debt (level >= 0); once its
 * events are known they are charged, and the level may go below zero. A large batch is
 * therefore never refused for its size alone (the body and events-per-request limits bound
 * it), and the debt it leaves delays the tenant's next requests by exactly the time its
 * events took beyond the rate: over any period, a tenant sends at most burst + rate * seconds
 * events plus one request's worth.
 *
 * Pure, no I/O: the caller passes a monotonic clock in milliseconds. Loop thread only.
 * Memory is bounded: at most `max_keys` buckets; when a new key finds the table full, the
 * buckets that refilled completely (idle tenants, whose state equals a fresh bucket's) are
 * dropped, and if none did, the new key is refused with -ENOSPC (the caller answers 503).
 * Errors: -EINVAL for a bad configuration, -ENOMEM, -ENOSPC as above.
 */
#ifndef GOODWILL_RATE_LIMIT_H
#define GOODWILL_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_rate_limit gw_rate_limit;

/* rate_per_s > 0 (events per second), burst >= 1 (events), max_keys >= 1. */
int gw_rate_limit_new(double rate_per_s, double burst, size_t max_keys, gw_rate_limit **out);
void gw_rate_limit_free(gw_rate_limit *rl);

/*
 * Whether key may send a request now: 0, or -EAGAIN with *retry_after_ms set to when its
 * bucket is out of debt (at least 1), or -ENOSPC (no room for a new key).
 */
int gw_rate_limit_admit(gw_rate_limit *rl, const char *key, uint64_t now_ms,
                        uint64_t *retry_after_ms);

/* For a cost known up front: 0 and the cost taken from key's bucket when its level covers it;
 * otherwise nothing is taken and -EAGAIN with *retry_after_ms (at least 1) until it would, or
 * -ENOSPC. At most burst / cost takes at once, then one per cost / rate_per_s seconds. */
int gw_rate_limit_take(gw_rate_limit *rl, const char *key, uint64_t now_ms, double cost,
                       uint64_t *retry_after_ms);

/* Charges `events` to key's bucket (after gw_rate_limit_admit let its request in). */
void gw_rate_limit_charge(gw_rate_limit *rl, const char *key, uint64_t now_ms, size_t events);

/* Buckets held. */
size_t gw_rate_limit_keys(const gw_rate_limit *rl);

#endif
