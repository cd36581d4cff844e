/*
 * gw_open_interactions: turns come back sorted by seq with retried seqs flagged, interactions
 * of different partitions and tenants stay apart, expiry follows event time (the partition's
 * stream time, not the clock), the turn limit evicts the least recently active interaction,
 * and dropping a partition releases only its turns.
 */
#include <stdlib.h>
#include <string.h>

#include "goodwill/open_interactions.h"
#include "gw_test.h"

#define HOUR_MS (3600 * 1000LL)

static void add(gw_open_interactions *o, int32_t partition, const char *tenant, const char *iid,
                uint32_t seq, int64_t input_offset, int64_t at_ms, const char *text) {
  char value[64];
  snprintf(value, sizeof value, "raw-%s-%u", iid, (unsigned)seq);
  gw_open_turn t = {
      .input_offset = input_offset,
      .seq = seq,
      .speaker = 1,
      .offset_ms = seq * 1000u,
      .occurred_at_ms = at_ms,
      .text = (char *)text,
      .key = (void *)iid,
      .key_len = strlen(iid),
      .value = value,
      .value_len = strlen(value),
  };
  CHECK_INT_EQ(gw_open_interactions_add_turn(o, partition, tenant, iid, &t), 0);
}

static gw_open_interactions *make(int64_t idle_ms, size_t max_turns) {
  gw_open_interactions_config cfg = {.idle_timeout_ms = idle_ms, .max_turns = max_turns};
  gw_open_interactions *o = NULL;
  CHECK_INT_EQ(gw_open_interactions_new(&cfg, &o), 0);
  return o;
}

static void test_take_sorts_by_seq_and_flags_retries(void) {
  gw_open_interactions *o = make(0, 0);
  int64_t t0 = 1700000000000LL;
  add(o, 0, "acme", "i1", 3, 12, t0 + 3, "third");
  add(o, 0, "acme", "i1", 1, 10, t0 + 1, "first");
  add(o, 0, "acme", "i1", 2, 11, t0 + 2, "second");
  add(o, 0, "acme", "i1", 2, 13, t0 + 4, "second");
  CHECK_INT_EQ(gw_open_interactions_count(o), 1);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 4);

  gw_open_batch b;
  CHECK(gw_open_interactions_take(o, 0, "acme", "i1", &b));
  CHECK_INT_EQ(b.nturns, 4);
  CHECK_STR_EQ(b.tenant_id, "acme");
  CHECK_STR_EQ(b.interaction_id, "i1");
  if (b.nturns == 4) {
    CHECK_STR_EQ(b.turns[0].text, "first");
    CHECK_STR_EQ(b.turns[1].text, "second");
    CHECK_INT_EQ(b.turns[1].input_offset, 11);
    CHECK(!b.turns[1].duplicate);
    /* The retry came later (higher offset): it is the one flagged, the first copy counts. */
    CHECK_INT_EQ(b.turns[2].input_offset, 13);
    CHECK(b.turns[2].duplicate);
    CHECK_STR_EQ(b.turns[3].text, "third");
    CHECK(!b.turns[0].duplicate && !b.turns[3].duplicate);
    CHECK_INT_EQ(b.turns[0].value_len, strlen("raw-i1-1"));
    CHECK(memcmp(b.turns[0].value, "raw-i1-1", b.turns[0].value_len) == 0);
  }
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_count(o), 0);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 0);
  /* Taken once: a second close for it finds nothing. */
  CHECK(!gw_open_interactions_take(o, 0, "acme", "i1", &b));
  CHECK_INT_EQ(b.nturns, 0);
  gw_open_interactions_free(o);
}

static void test_same_seq_different_content_is_kept(void) {
  gw_open_interactions *o = make(0, 0);
  int64_t t0 = 1700000000000LL;
  /* A client that never sends seq: every turn has seq 0, and each one counts, in order. */
  add(o, 0, "acme", "i", 0, 5, t0, "first");
  add(o, 0, "acme", "i", 0, 6, t0, "second");
  add(o, 0, "acme", "i", 0, 7, t0, "first"); /* a retry of the first */
  add(o, 0, "acme", "i", 0, 8, t0, "third");
  gw_open_batch b;
  CHECK(gw_open_interactions_take(o, 0, "acme", "i", &b));
  CHECK_INT_EQ(b.nturns, 4);
  if (b.nturns == 4) {
    CHECK_STR_EQ(b.turns[0].text, "first");
    CHECK_STR_EQ(b.turns[1].text, "second");
    CHECK_STR_EQ(b.turns[3].text, "third");
    CHECK(!b.turns[0].duplicate && !b.turns[1].duplicate && !b.turns[3].duplicate);
    CHECK(b.turns[2].duplicate);
  }
  gw_open_batch_free(&b);
  gw_open_interactions_free(o);
}

static void test_keys_are_partition_tenant_and_interaction(void) {
  gw_open_interactions *o = make(0, 0);
  int64_t t0 = 1700000000000LL;
  add(o, 0, "acme", "x", 1, 1, t0, "a");
  add(o, 1, "acme", "x", 1, 1, t0, "b");
  add(o, 0, "globex", "x", 1, 2, t0, "c");
  /* "ac" + "mex" must not meet "acme" + "x". */
  add(o, 0, "ac", "mex", 1, 3, t0, "d");
  CHECK_INT_EQ(gw_open_interactions_count(o), 4);
  gw_open_batch b;
  CHECK(gw_open_interactions_take(o, 1, "acme", "x", &b));
  CHECK_INT_EQ(b.nturns, 1);
  CHECK_INT_EQ(b.partition, 1);
  if (b.nturns == 1) {
    CHECK_STR_EQ(b.turns[0].text, "b");
  }
  gw_open_batch_free(&b);
  CHECK(gw_open_interactions_take(o, 0, "acme", "x", &b));
  if (b.nturns == 1) {
    CHECK_STR_EQ(b.turns[0].text, "a");
  }
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_count(o), 2);
  gw_open_interactions_free(o); /* frees what is still open */
}

static void test_many_interactions_grow_the_table(void) {
  gw_open_interactions *o = make(0, 0);
  char id[32];
  for (int i = 0; i < 3000; i++) {
    snprintf(id, sizeof id, "i-%d", i);
    add(o, i % 3, "acme", id, 1, i, 1700000000000LL + i, "hello");
  }
  CHECK_INT_EQ(gw_open_interactions_count(o), 3000);
  int found = 0;
  for (int i = 0; i < 3000; i++) {
    gw_open_batch b;
    snprintf(id, sizeof id, "i-%d", i);
    if (gw_open_interactions_take(o, i % 3, "acme", id, &b) && b.nturns == 1 &&
        b.turns[0].input_offset == i) {
      found++;
    }
    gw_open_batch_free(&b);
  }
  CHECK_INT_EQ(found, 3000);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 0);
  gw_open_interactions_free(o);
}

static void test_idle_expiry_follows_event_time(void) {
  gw_open_interactions *o = make(6 * HOUR_MS, 0);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "acme", "old", 1, 1, t0, "hello");
  add(o, 0, "acme", "young", 1, 2, t0 + HOUR_MS, "hi");
  add(o, 1, "acme", "other-partition", 1, 1, t0, "hey");
  /* Exactly 6 h after the last turn is not yet expired. */
  gw_open_interactions_observe(o, 0, t0 + 6 * HOUR_MS);
  CHECK(!gw_open_interactions_expire_next(o, 0, &b));
  /* One millisecond later it is, and only it; partition 1's stream time did not move. */
  gw_open_interactions_observe(o, 0, t0 + 6 * HOUR_MS + 1);
  CHECK(gw_open_interactions_expire_next(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "old");
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_IDLE);
  gw_open_batch_free(&b);
  CHECK(!gw_open_interactions_expire_next(o, 0, &b));
  CHECK(!gw_open_interactions_expire_next(o, 1, &b));
  /* Stream time never goes back: an older event does not revive anything. */
  gw_open_interactions_observe(o, 0, t0);
  gw_open_interactions_observe(o, 0, t0 + 7 * HOUR_MS + 1);
  CHECK(gw_open_interactions_expire_next(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "young");
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_count(o), 1);
  gw_open_interactions_free(o);
}

static void test_a_new_turn_keeps_an_interaction_open(void) {
  gw_open_interactions *o = make(HOUR_MS, 0);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "acme", "a", 1, 1, t0, "one");
  add(o, 0, "acme", "b", 1, 2, t0 + 10, "one");
  add(o, 0, "acme", "a", 2, 3, t0 + 50 * 60 * 1000, "two");
  gw_open_interactions_observe(o, 0, t0 + HOUR_MS + 20);
  /* b is now the least recently active and past the timeout; a had a turn 50 min in. */
  CHECK(gw_open_interactions_expire_next(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "b");
  gw_open_batch_free(&b);
  CHECK(!gw_open_interactions_expire_next(o, 0, &b));
  gw_open_interactions_free(o);
}

static void test_turn_limit_evicts_least_recently_active(void) {
  gw_open_interactions *o = make(0, 4);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "acme", "a", 1, 1, t0, "a1");
  add(o, 1, "acme", "b", 1, 1, t0, "b1");
  add(o, 0, "acme", "a", 2, 2, t0, "a2");
  add(o, 1, "acme", "c", 1, 2, t0, "c1");
  CHECK(!gw_open_interactions_expire_next(o, 1, &b));
  add(o, 1, "acme", "c", 2, 3, t0, "c2");
  /* Five turns, limit four: b (touched least recently, on partition 1) goes, although the
   * check is asked for partition 0. */
  CHECK(gw_open_interactions_expire_next(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "b");
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_LIMIT);
  CHECK_INT_EQ(b.partition, 1);
  gw_open_batch_free(&b);
  CHECK(!gw_open_interactions_expire_next(o, 0, &b));
  CHECK_INT_EQ(gw_open_interactions_turns(o), 4);
  add(o, 0, "acme", "d", 1, 3, t0, "d1");
  CHECK(gw_open_interactions_expire_next(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "a");
  CHECK_INT_EQ(b.nturns, 2);
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 3);
  gw_open_interactions_free(o);
}

static void test_drop_partition_releases_only_its_turns(void) {
  gw_open_interactions *o = make(0, 0);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "acme", "a", 1, 1, t0, "a1");
  add(o, 0, "acme", "a", 2, 2, t0, "a2");
  add(o, 0, "acme", "b", 1, 3, t0, "b1");
  add(o, 1, "acme", "c", 1, 1, t0, "c1");
  CHECK_INT_EQ(gw_open_interactions_drop_partition(o, 0), 3);
  CHECK_INT_EQ(gw_open_interactions_drop_partition(o, 0), 0);
  CHECK_INT_EQ(gw_open_interactions_count(o), 1);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 1);
  CHECK(!gw_open_interactions_take(o, 0, "acme", "a", &b));
  CHECK(gw_open_interactions_take(o, 1, "acme", "c", &b));
  gw_open_batch_free(&b);
  /* The partition starts afresh: no stream time left over to expire the rebuilt turns. */
  add(o, 0, "acme", "a", 1, 1, t0 - 10 * HOUR_MS, "a1");
  CHECK(!gw_open_interactions_expire_next(o, 0, &b));
  gw_open_interactions_free(o);
}

int main(void) {
  GW_RUN(test_take_sorts_by_seq_and_flags_retries);
  GW_RUN(test_same_seq_different_content_is_kept);
  GW_RUN(test_keys_are_partition_tenant_and_interaction);
  GW_RUN(test_many_interactions_grow_the_table);
  GW_RUN(test_idle_expiry_follows_event_time);
  GW_RUN(test_a_new_turn_keeps_an_interaction_open);
  GW_RUN(test_turn_limit_evicts_least_recently_active);
  GW_RUN(test_drop_partition_releases_only_its_turns);
  return gw_test_finish();
}
