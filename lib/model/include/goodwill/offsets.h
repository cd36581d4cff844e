/*
 * gw_offsets: which consumed offsets of a partition are done (their effects durable), and so
 * which offset may be committed: the offset after the highest record below which every
 * record is done. Records finish out of order (delivery reports, Redis flushes); the commit
 * point only moves over a contiguous prefix, so a crash replays, never skips.
 *
 * Pure, no I/O; loop thread only. One gw_offsets tracks any number of (topic, partition).
 */
#ifndef GOODWILL_OFFSETS_H
#define GOODWILL_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_offsets gw_offsets;

int gw_offsets_new(gw_offsets **out);
void gw_offsets_free(gw_offsets *o);

/* A record was received and is now in progress. Offsets of a partition must be added in
 * increasing order (gaps, as left by compaction or transaction markers, are fine). */
int gw_offsets_begin(gw_offsets *o, const char *topic, int32_t partition, int64_t offset);

/*
 * The record is done. Returns true and sets *commit_next when the committable point of the
 * partition moved (to the offset of the first record not yet done, or last done + 1).
 */
bool gw_offsets_done(gw_offsets *o, const char *topic, int32_t partition, int64_t offset,
                     int64_t *commit_next);

/* Records begun and not yet done, over all partitions. */
size_t gw_offsets_in_flight(const gw_offsets *o);

/* Entries held in memory over all partitions: records not yet released, with neighbouring
 * done records merged into runs once a partition's ring fills (so it stays near twice the
 * records in flight even behind one record that stays in progress for long). */
size_t gw_offsets_entries(const gw_offsets *o);

/* Forgets a partition (revoked): records of it still in progress are ignored when done. */
void gw_offsets_forget(gw_offsets *o, const char *topic, int32_t partition);

#endif
