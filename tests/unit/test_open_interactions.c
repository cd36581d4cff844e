/*
 * gw_open_interactions: turns come back sorted by seq with retried seqs flagged, interactions
 * of different partitions and tenants stay apart, expiry follows event time (the partition's
 * stream time) after a grace in processing time, and processing time alone for an interaction
 * nothing is read of; over the turn or the byte bound the victim is the least recently active
 * interaction of the tenant holding the most; a turn after its interaction's close is refused;
 * dropping a partition releases only its turns; the bytes counted return to zero.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/open_interactions.h"
#include "gw_test.h"

#define HOUR_MS (3600 * 1000LL)
#define MIN_MS  (60 * 1000LL)

/* The processing clock the tests pass (uv_now in the scorer); each test sets it. */
static int64_t clock_ms;

static int add_rc(gw_open_interactions *o, int32_t partition, const char *tenant, const char *iid,
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
  return gw_open_interactions_add_turn(o, partition, tenant, iid, &t, clock_ms);
}

static void add(gw_open_interactions *o, int32_t partition, const char *tenant, const char *iid,
                uint32_t seq, int64_t input_offset, int64_t at_ms, const char *text) {
  CHECK_INT_EQ(add_rc(o, partition, tenant, iid, seq, input_offset, at_ms, text), 0);
}

static gw_open_interactions *make_cfg(const gw_open_interactions_config *cfg) {
  gw_open_interactions *o = NULL;
  CHECK_INT_EQ(gw_open_interactions_new(cfg, &o), 0);
  clock_ms = 1000;
  return o;
}

static gw_open_interactions *make(int64_t idle_ms, size_t max_turns) {
  gw_open_interactions_config cfg = {.idle_timeout_ms = idle_ms, .max_turns = max_turns};
  return make_cfg(&cfg);
}

static bool take(gw_open_interactions *o, int32_t partition, const char *tenant, const char *iid,
                 gw_open_batch *b) {
  return gw_open_interactions_take(o, partition, tenant, iid, 1000, clock_ms, b);
}

static bool expire(gw_open_interactions *o, int32_t partition, gw_open_batch *b) {
  return gw_open_interactions_expire_next(o, partition, clock_ms, b);
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
  CHECK(take(o, 0, "acme", "i1", &b));
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
  CHECK(!take(o, 0, "acme", "i1", &b));
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
  CHECK(take(o, 0, "acme", "i", &b));
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
  CHECK(take(o, 1, "acme", "x", &b));
  CHECK_INT_EQ(b.nturns, 1);
  CHECK_INT_EQ(b.partition, 1);
  if (b.nturns == 1) {
    CHECK_STR_EQ(b.turns[0].text, "b");
  }
  gw_open_batch_free(&b);
  CHECK(take(o, 0, "acme", "x", &b));
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
    if (take(o, i % 3, "acme", id, &b) && b.nturns == 1 && b.turns[0].input_offset == i) {
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
  clock_ms += MIN_MS; /* past the grace: event time alone decides */
  /* Exactly 6 h after the last turn is not yet expired. */
  gw_open_interactions_observe(o, 0, t0 + 6 * HOUR_MS);
  CHECK(!expire(o, 0, &b));
  /* One millisecond later it is, and only it; partition 1's stream time did not move. */
  gw_open_interactions_observe(o, 0, t0 + 6 * HOUR_MS + 1);
  CHECK(expire(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "old");
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_IDLE);
  gw_open_batch_free(&b);
  CHECK(!expire(o, 0, &b));
  CHECK(!expire(o, 1, &b));
  /* Stream time never goes back: an older event does not revive anything. */
  gw_open_interactions_observe(o, 0, t0);
  gw_open_interactions_observe(o, 0, t0 + 7 * HOUR_MS + 1);
  CHECK(expire(o, 0, &b));
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
  clock_ms += MIN_MS;
  gw_open_interactions_observe(o, 0, t0 + HOUR_MS + 20);
  /* b is now the least recently active and past the timeout; a had a turn 50 min in. */
  CHECK(expire(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "b");
  gw_open_batch_free(&b);
  CHECK(!expire(o, 0, &b));
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
  CHECK(!expire(o, 1, &b));
  add(o, 1, "acme", "c", 2, 3, t0, "c2");
  /* Five turns, limit four: b (touched least recently, on partition 1) goes, although the
   * check is asked for partition 0. */
  CHECK(expire(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "b");
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_LIMIT);
  CHECK_INT_EQ(b.partition, 1);
  gw_open_batch_free(&b);
  CHECK(!expire(o, 0, &b));
  CHECK_INT_EQ(gw_open_interactions_turns(o), 4);
  add(o, 0, "acme", "d", 1, 3, t0, "d1");
  CHECK(expire(o, 0, &b));
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
  CHECK(!take(o, 0, "acme", "b", &b)); /* dropped: its close finds nothing */
  CHECK(take(o, 1, "acme", "c", &b));
  gw_open_batch_free(&b);
  /* The partition starts afresh: no stream time left over to expire the rebuilt turns. */
  add(o, 0, "acme", "a", 1, 1, t0 - 10 * HOUR_MS, "a1");
  clock_ms += MIN_MS;
  CHECK(!expire(o, 0, &b));
  gw_open_interactions_free(o);
}

/* A tenant that floods the buffer with interactions that never close evicts its own: "quiet"
 * opened its interactions first (the least recently active of all), and keeps them. */
static void test_a_tenant_over_its_share_evicts_its_own(void) {
  gw_open_interactions *o = make(0, 10);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "quiet", "q1", 1, 1, t0, "hello");
  add(o, 1, "quiet", "q2", 1, 1, t0, "hello");
  add(o, 0, "quiet", "q3", 1, 2, t0, "hello");
  int evicted = 0, evicted_quiet = 0;
  char id[32];
  for (int i = 0; i < 40; i++) {
    snprintf(id, sizeof id, "flood-%d", i);
    add(o, i % 2, "flood", id, 1, 10 + i, t0 + i, "never closes");
    while (expire(o, 0, &b)) {
      evicted++;
      evicted_quiet += strcmp(b.tenant_id, "quiet") == 0;
      CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_LIMIT);
      CHECK_INT_EQ(b.bound, GW_OPEN_BOUND_TURNS);
      CHECK_INT_EQ(b.total_turns, 11);
      CHECK_INT_EQ(b.tenant_turns, 8); /* the flood's share when it was chosen */
      gw_open_batch_free(&b);
    }
    CHECK(gw_open_interactions_turns(o) <= 10);
  }
  CHECK_INT_EQ(evicted, 33);
  CHECK_INT_EQ(evicted_quiet, 0);
  /* The flood lost its least recently active first: its newest seven are left. */
  CHECK(!take(o, 0, "flood", "flood-32", &b));
  CHECK(take(o, 1, "flood", "flood-33", &b));
  gw_open_batch_free(&b);
  CHECK(take(o, 0, "quiet", "q1", &b));
  gw_open_batch_free(&b);
  CHECK(take(o, 1, "quiet", "q2", &b));
  gw_open_batch_free(&b);
  CHECK(take(o, 0, "quiet", "q3", &b));
  gw_open_batch_free(&b);
  gw_open_interactions_free(o);
}

/* Over the turn bound the victim is the tenant holding the most turns, even if another holds
 * more bytes in fewer turns: the one that makes the buffer exceed what is bounded pays. */
static void test_over_the_turn_bound_the_most_turns_pay(void) {
  gw_open_interactions *o = make(0, 6);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  char big[4096];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  add(o, 0, "essays", "e1", 1, 1, t0, big);
  add(o, 0, "essays", "e2", 1, 2, t0, big);
  add(o, 0, "chatty", "c1", 1, 3, t0, "ok");
  add(o, 0, "chatty", "c2", 1, 4, t0, "ok");
  add(o, 0, "chatty", "c3", 1, 5, t0, "ok");
  add(o, 0, "chatty", "c1", 2, 6, t0, "ok");
  CHECK(!expire(o, 0, &b));
  add(o, 0, "chatty", "c4", 1, 7, t0, "ok");
  CHECK(expire(o, 0, &b));
  CHECK_STR_EQ(b.tenant_id, "chatty");
  CHECK_STR_EQ(b.interaction_id, "c2"); /* c1 had a turn after c2 opened */
  CHECK_INT_EQ(b.bound, GW_OPEN_BOUND_TURNS);
  CHECK_INT_EQ(b.tenant_turns, 5);
  CHECK_INT_EQ(b.total_turns, 7);
  gw_open_batch_free(&b);
  CHECK(!expire(o, 0, &b));
  gw_open_interactions_free(o);
}

/* The byte bound: 16 KiB texts reach 256 KiB long before the turn bound; the victim is the
 * least recently active interaction of the tenant holding the most bytes, not the tenant with
 * small turns that was active least recently. */
static void test_byte_bound_with_large_texts(void) {
  gw_open_interactions_config cfg = {.max_bytes = 256 * 1024};
  gw_open_interactions *o = make_cfg(&cfg);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  char *big = malloc(16 * 1024 + 1);
  memset(big, 'x', 16 * 1024);
  big[16 * 1024] = '\0';
  add(o, 0, "small", "s1", 1, 1, t0, "hi");
  add(o, 0, "small", "s1", 2, 2, t0, "thanks");
  size_t small_bytes = gw_open_interactions_bytes(o);
  CHECK(small_bytes > 0 && small_bytes < 2048);
  add(o, 0, "large", "l0", 1, 3, t0, big);
  CHECK(gw_open_interactions_bytes(o) >= small_bytes + 16 * 1024);
  CHECK(!expire(o, 0, &b));
  int evicted = 0;
  char id[32];
  for (int i = 1; i < 40; i++) {
    snprintf(id, sizeof id, "l%d", i);
    add(o, i % 3, "large", id, 1, 3 + i, t0 + i, big);
    while (expire(o, 0, &b)) {
      evicted++;
      CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_LIMIT);
      CHECK_INT_EQ(b.bound, GW_OPEN_BOUND_BYTES);
      CHECK_STR_EQ(b.tenant_id, "large");
      CHECK(b.total_bytes > 256 * 1024);
      CHECK(b.tenant_bytes > b.total_bytes - small_bytes - 1024);
      gw_open_batch_free(&b);
    }
    CHECK(gw_open_interactions_bytes(o) <= 256 * 1024);
  }
  /* About 15 interactions of 16 KiB fit; 40 were opened, far below the turn bound. */
  CHECK(evicted >= 24 && evicted <= 27);
  CHECK(take(o, 0, "small", "s1", &b));
  CHECK_INT_EQ(b.nturns, 2);
  gw_open_batch_free(&b);
  free(big);
  gw_open_interactions_free(o);
}

/* A backfill of turns from two days ago into a partition whose stream time is today: not
 * expired on arrival (its close comes right after), and expired once the grace has passed in
 * processing time without a close. */
static void test_backfill_is_not_expired_on_arrival(void) {
  gw_open_interactions_config cfg = {.idle_timeout_ms = HOUR_MS, .grace_ms = MIN_MS};
  gw_open_interactions *o = make_cfg(&cfg);
  int64_t today = 1700000000000LL, old = today - 48 * HOUR_MS;
  gw_open_batch b;
  add(o, 0, "acme", "live", 1, 1, today, "live now");
  add(o, 0, "acme", "old-1", 1, 2, old, "from the archive");
  add(o, 0, "acme", "old-2", 1, 3, old + 1000, "from the archive too");
  CHECK(!expire(o, 0, &b));
  clock_ms += 2000;
  add(o, 0, "acme", "old-1", 2, 4, old + 2000, "and its end");
  CHECK(!expire(o, 0, &b));
  CHECK(take(o, 0, "acme", "old-1", &b));
  CHECK_INT_EQ(b.nturns, 2);
  gw_open_batch_free(&b);
  /* The event-time rule looks at the partition's least recently active interaction only, here
   * "live", which is not idle: it closes, so old-2 is next. */
  gw_open_interactions_take(o, 0, "acme", "live", 5, clock_ms, &b);
  gw_open_batch_free(&b);
  clock_ms += MIN_MS - 2001; /* old-2: 1 ms short of the grace */
  CHECK(!expire(o, 0, &b));
  CHECK(!expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  clock_ms += 1;
  CHECK(expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  CHECK_STR_EQ(b.interaction_id, "old-2");
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_IDLE);
  CHECK_INT_EQ(b.idle_ms, today - (old + 1000));
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_count(o), 0);
  gw_open_interactions_free(o);
}

/* A partition that stops receiving records never moves its stream time: its interactions
 * expire by processing time, checked over every partition. */
static void test_idle_partition_expires_by_processing_time(void) {
  gw_open_interactions *o = make(HOUR_MS, 0);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 3, "acme", "stalled", 1, 1, t0, "hello?");
  clock_ms += 30 * MIN_MS;
  add(o, 4, "acme", "later", 1, 1, t0, "hi");
  clock_ms += 30 * MIN_MS; /* exactly the idle timeout: not yet */
  CHECK(!expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  clock_ms += 1;
  /* Asked for another partition: processing time is checked everywhere. */
  CHECK(expire(o, 0, &b));
  CHECK_STR_EQ(b.interaction_id, "stalled");
  CHECK_INT_EQ(b.partition, 3);
  CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_QUIET);
  CHECK_INT_EQ(b.idle_ms, HOUR_MS + 1);
  gw_open_batch_free(&b);
  CHECK(!expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  /* A turn keeps an interaction open in processing time too. */
  clock_ms += 29 * MIN_MS;
  add(o, 4, "acme", "later", 2, 2, t0 + 1000, "still there?");
  clock_ms += 59 * MIN_MS;
  CHECK(!expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  clock_ms += MIN_MS + 1;
  CHECK(expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  CHECK_STR_EQ(b.interaction_id, "later");
  CHECK_INT_EQ(b.nturns, 2);
  gw_open_batch_free(&b);
  gw_open_interactions_free(o);
}

/* A turn read after its interaction's close is refused with -EALREADY, not buffered, and the
 * close's offset is known; closes are remembered per partition, for the idle timeout in
 * processing time, at most max_closed of them, and forgotten with their partition. */
static void test_turn_after_close_is_refused(void) {
  gw_open_interactions_config cfg = {.idle_timeout_ms = HOUR_MS, .max_closed = 3};
  gw_open_interactions *o = make_cfg(&cfg);
  int64_t t0 = 1700000000000LL, at = -1;
  gw_open_batch b;
  add(o, 0, "acme", "c1", 1, 10, t0, "hello");
  CHECK(gw_open_interactions_take(o, 0, "acme", "c1", 11, clock_ms, &b));
  gw_open_batch_free(&b);
  CHECK_INT_EQ(add_rc(o, 0, "acme", "c1", 2, 12, t0 + 5, "one more thing"), -EALREADY);
  CHECK(gw_open_interactions_closed_at(o, 0, "acme", "c1", &at));
  CHECK_INT_EQ(at, 11);
  CHECK_INT_EQ(gw_open_interactions_count(o), 0);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 0);
  CHECK_INT_EQ(gw_open_interactions_bytes(o), 0);
  /* A close without buffered turns (a transcript, or turns expired) is remembered too. */
  CHECK(!gw_open_interactions_take(o, 0, "acme", "c2", 20, clock_ms, &b));
  CHECK_INT_EQ(add_rc(o, 0, "acme", "c2", 1, 21, t0, "late"), -EALREADY);
  /* Other partitions, tenants and interactions are not affected. */
  add(o, 1, "acme", "c1", 1, 1, t0, "same ids, another partition");
  add(o, 0, "globex", "c1", 1, 22, t0, "same id, another tenant");
  CHECK_INT_EQ(gw_open_interactions_count(o), 2);
  CHECK_INT_EQ(gw_open_interactions_closed_count(o), 2);
  /* The fourth close pushes out the first (FIFO): c1 is accepted again. */
  CHECK(gw_open_interactions_take(o, 1, "acme", "c1", 2, clock_ms, &b));
  gw_open_batch_free(&b);
  CHECK(gw_open_interactions_take(o, 0, "globex", "c1", 23, clock_ms, &b));
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_closed_count(o), 3);
  CHECK(!gw_open_interactions_closed_at(o, 0, "acme", "c1", NULL));
  add(o, 0, "acme", "c1", 3, 24, t0, "accepted: its close was forgotten");
  CHECK_INT_EQ(add_rc(o, 1, "acme", "c1", 2, 3, t0, "late"), -EALREADY);
  /* Revoking a partition forgets its closes. */
  gw_open_interactions_drop_partition(o, 1);
  CHECK(!gw_open_interactions_closed_at(o, 1, "acme", "c1", NULL));
  CHECK_INT_EQ(gw_open_interactions_closed_count(o), 2);
  add(o, 1, "acme", "c1", 2, 3, t0, "read again after the revocation");
  /* After the idle timeout in processing time the closes are forgotten. */
  CHECK_INT_EQ(add_rc(o, 0, "acme", "c2", 2, 25, t0, "late"), -EALREADY);
  clock_ms += HOUR_MS + 1;
  CHECK(expire(o, GW_OPEN_ALL_PARTITIONS, &b)); /* the open ones expire meanwhile */
  gw_open_batch_free(&b);
  CHECK(expire(o, GW_OPEN_ALL_PARTITIONS, &b));
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_closed_count(o), 0);
  add(o, 0, "acme", "c2", 2, 26, t0, "a day later: buffered, and will expire");
  gw_open_interactions_free(o);
}

/* Bytes and turns go back to zero whatever took the interactions out: a close, each kind of
 * expiry, a dropped partition; the oldest age follows the longest open interaction. */
static void test_bytes_return_to_zero(void) {
  gw_open_interactions_config cfg = {
      .idle_timeout_ms = HOUR_MS, .grace_ms = MIN_MS, .max_turns = 50, .max_bytes = 64 * 1024};
  gw_open_interactions *o = make_cfg(&cfg);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  char text[3000];
  memset(text, 'y', sizeof text - 1);
  text[sizeof text - 1] = '\0';
  CHECK_INT_EQ(gw_open_interactions_oldest_age_ms(o, clock_ms), 0);
  int64_t start = clock_ms;
  char tenant[16], id[32];
  for (int i = 0; i < 120; i++) {
    snprintf(tenant, sizeof tenant, "t%d", i % 4);
    snprintf(id, sizeof id, "i%d", i % 17);
    add(o, i % 5, tenant, id, (uint32_t)i, i, t0 + i * 1000, i % 3 == 0 ? text : "short");
    clock_ms += 10;
    while (expire(o, i % 5, &b)) {
      gw_open_batch_free(&b);
    }
    CHECK(gw_open_interactions_bytes(o) <= 64 * 1024);
    CHECK(gw_open_interactions_turns(o) <= 50);
  }
  CHECK(gw_open_interactions_bytes(o) > 0);
  CHECK(gw_open_interactions_oldest_age_ms(o, clock_ms) > 0);
  CHECK(gw_open_interactions_oldest_age_ms(o, clock_ms) <= clock_ms - start);
  /* Some are closed, one partition is dropped, the rest expire by processing time. */
  for (int i = 0; i < 17; i += 3) {
    snprintf(id, sizeof id, "i%d", i);
    gw_open_interactions_take(o, i % 5, "t1", id, 1000 + i, clock_ms, &b);
    gw_open_batch_free(&b);
  }
  gw_open_interactions_drop_partition(o, 2);
  clock_ms += HOUR_MS + 1;
  while (expire(o, GW_OPEN_ALL_PARTITIONS, &b)) {
    CHECK_INT_EQ(b.reason, GW_OPEN_EXPIRED_QUIET);
    gw_open_batch_free(&b);
  }
  CHECK_INT_EQ(gw_open_interactions_count(o), 0);
  CHECK_INT_EQ(gw_open_interactions_turns(o), 0);
  CHECK_INT_EQ(gw_open_interactions_bytes(o), 0);
  CHECK_INT_EQ(gw_open_interactions_oldest_age_ms(o, clock_ms), 0);
  gw_open_interactions_free(o);
}

/* The oldest age is since the longest open interaction was opened, not since its last turn. */
static void test_oldest_age_follows_the_longest_open(void) {
  gw_open_interactions *o = make(0, 0);
  int64_t t0 = 1700000000000LL;
  gw_open_batch b;
  add(o, 0, "acme", "a", 1, 1, t0, "one");
  clock_ms += 100;
  add(o, 1, "acme", "b", 1, 1, t0, "one");
  clock_ms += 100;
  add(o, 0, "acme", "a", 2, 2, t0, "two");
  clock_ms += 100;
  CHECK_INT_EQ(gw_open_interactions_oldest_age_ms(o, clock_ms), 300);
  CHECK(take(o, 0, "acme", "a", &b));
  gw_open_batch_free(&b);
  CHECK_INT_EQ(gw_open_interactions_oldest_age_ms(o, clock_ms), 200);
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
  GW_RUN(test_a_tenant_over_its_share_evicts_its_own);
  GW_RUN(test_over_the_turn_bound_the_most_turns_pay);
  GW_RUN(test_byte_bound_with_large_texts);
  GW_RUN(test_backfill_is_not_expired_on_arrival);
  GW_RUN(test_idle_partition_expires_by_processing_time);
  GW_RUN(test_turn_after_close_is_refused);
  GW_RUN(test_bytes_return_to_zero);
  GW_RUN(test_oldest_age_follows_the_longest_open);
  return gw_test_finish();
}
