#include "goodwill/offsets.h"
#include "gw_test.h"

#include <errno.h>
#include <stdlib.h>

static const char *T = "goodwill.interactions.v1";

static gw_offsets *new_tracker(void) {
  gw_offsets *o = NULL;
  CHECK_INT_EQ(gw_offsets_new(&o), 0);
  return o;
}

static void test_in_order_completion(void) {
  gw_offsets *o = new_tracker();
  for (int64_t off = 10; off < 13; off++) {
    CHECK_INT_EQ(gw_offsets_begin(o, T, 0, off), 0);
  }
  CHECK_INT_EQ(gw_offsets_in_flight(o), 3);
  int64_t next = -1;
  CHECK(gw_offsets_done(o, T, 0, 10, &next));
  CHECK_INT_EQ(next, 11);
  CHECK(gw_offsets_done(o, T, 0, 11, &next));
  CHECK_INT_EQ(next, 12);
  CHECK(gw_offsets_done(o, T, 0, 12, &next));
  CHECK_INT_EQ(next, 13);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  gw_offsets_free(o);
}

static void test_out_of_order_completion(void) {
  gw_offsets *o = new_tracker();
  for (int64_t off = 0; off < 5; off++) {
    CHECK_INT_EQ(gw_offsets_begin(o, T, 3, off), 0);
  }
  int64_t next = -1;
  /* 3, 1, 4 finish while 0 is still in progress: nothing may be committed yet. */
  CHECK(!gw_offsets_done(o, T, 3, 3, &next));
  CHECK(!gw_offsets_done(o, T, 3, 1, &next));
  CHECK(!gw_offsets_done(o, T, 3, 4, &next));
  CHECK_INT_EQ(next, -1);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 2);
  /* 0 done: the commit point moves to 2, the first record not done. */
  CHECK(gw_offsets_done(o, T, 3, 0, &next));
  CHECK_INT_EQ(next, 2);
  /* 2 done: everything is done, so the point is last done + 1. */
  CHECK(gw_offsets_done(o, T, 3, 2, &next));
  CHECK_INT_EQ(next, 5);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  gw_offsets_free(o);
}

static void test_gaps_in_offsets(void) {
  gw_offsets *o = new_tracker();
  /* Offsets 101..104 do not exist (compaction, transaction markers). */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 1, 100), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, T, 1, 105), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, T, 1, 200), 0);
  int64_t next = -1;
  CHECK(gw_offsets_done(o, T, 1, 100, &next));
  CHECK_INT_EQ(next, 105);
  CHECK(!gw_offsets_done(o, T, 1, 200, &next));
  CHECK(gw_offsets_done(o, T, 1, 105, &next));
  CHECK_INT_EQ(next, 201);
  gw_offsets_free(o);
}

static void test_bad_input(void) {
  gw_offsets *o = new_tracker();
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 7), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 7), -EINVAL); /* twice */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 5), -EINVAL); /* backwards */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, -1), -EINVAL);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 1);
  int64_t next = -1;
  CHECK(!gw_offsets_done(o, T, 0, 6, &next));       /* never begun */
  CHECK(!gw_offsets_done(o, T, 9, 7, &next));       /* unknown partition */
  CHECK(!gw_offsets_done(o, "other", 0, 7, &next)); /* unknown topic */
  CHECK(gw_offsets_done(o, T, 0, 7, &next));
  CHECK_INT_EQ(next, 8);
  CHECK(!gw_offsets_done(o, T, 0, 7, &next)); /* done twice */
  /* Even after everything was released, an old offset cannot be begun again. */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 7), -EINVAL);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  gw_offsets_free(o);
}

static void test_forget_after_revoke(void) {
  gw_offsets *o = new_tracker();
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 1), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 2), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, T, 1, 1), 0);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 3);
  gw_offsets_forget(o, T, 0);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 1);
  int64_t next = -1;
  /* Late completions of the revoked partition are ignored. */
  CHECK(!gw_offsets_done(o, T, 0, 1, &next));
  CHECK_INT_EQ(next, -1);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 1);
  /* The other partition is untouched. */
  CHECK(gw_offsets_done(o, T, 1, 1, &next));
  CHECK_INT_EQ(next, 2);
  /* Reassigned, the partition starts afresh, from the committed offset or anywhere. */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 1), 0);
  CHECK(gw_offsets_done(o, T, 0, 1, &next));
  CHECK_INT_EQ(next, 2);
  gw_offsets_forget(o, T, 42); /* unknown: no effect */
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  gw_offsets_free(o);
}

/* Same partition number on two topics are different partitions. */
static void test_topics_are_separate(void) {
  gw_offsets *o = new_tracker();
  CHECK_INT_EQ(gw_offsets_begin(o, "a", 0, 5), 0);
  CHECK_INT_EQ(gw_offsets_begin(o, "b", 0, 5), 0);
  int64_t next = -1;
  CHECK(gw_offsets_done(o, "b", 0, 5, &next));
  CHECK_INT_EQ(next, 6);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 1);
  gw_offsets_free(o);
}

/*
 * Many partitions and a ring that wraps and grows: records finish in a scrambled order; the
 * reported commit point must always equal a brute-force recomputation, and never go back.
 */
static void test_many_partitions_against_model(void) {
  enum { NP = 64, PER = 300 };
  gw_offsets *o = new_tracker();
  static unsigned char done_flag[NP][PER];
  memset(done_flag, 0, sizeof done_flag);
  int64_t last_commit[NP];
  for (int p = 0; p < NP; p++) {
    last_commit[p] = 0;
  }
  /* Records of a partition are begun in batches, and completed in an order from a fixed
   * pseudo-random generator, so the test is reproducible. */
  uint32_t rng = 12345;
  int begun[NP] = {0};
  int mismatches = 0, backwards = 0, total_done = 0;
  while (total_done < NP * PER) {
    rng = rng * 1103515245u + 12345u;
    int p = (int)((rng >> 8) % NP);
    /* Begin up to 7 more records of p, offsets 3 apart so there are gaps. */
    for (int k = 0; k < 7 && begun[p] < PER; k++) {
      CHECK_INT_EQ(gw_offsets_begin(o, "t", p, (int64_t)begun[p] * 3), 0);
      begun[p]++;
    }
    /* Finish a random in-progress record of p (if any). */
    int candidates = 0;
    for (int i = 0; i < begun[p]; i++) {
      candidates += !done_flag[p][i];
    }
    if (candidates == 0) {
      continue;
    }
    rng = rng * 1103515245u + 12345u;
    int pick = (int)((rng >> 8) % (uint32_t)candidates);
    int idx = -1;
    for (int i = 0; i < begun[p]; i++) {
      if (!done_flag[p][i] && pick-- == 0) {
        idx = i;
        break;
      }
    }
    done_flag[p][idx] = 1;
    total_done++;
    /* Model: the first record not done, or last done + 1 when none is in progress. */
    int first_not_done = 0;
    while (first_not_done < begun[p] && done_flag[p][first_not_done]) {
      first_not_done++;
    }
    int64_t want =
        first_not_done < begun[p] ? (int64_t)first_not_done * 3 : (int64_t)(begun[p] - 1) * 3 + 1;
    int64_t next = -1;
    bool moved = gw_offsets_done(o, "t", p, (int64_t)idx * 3, &next);
    if (first_not_done > 0 && want != last_commit[p]) {
      mismatches += !moved || next != want;
      backwards += moved && next < last_commit[p];
      if (moved) {
        last_commit[p] = next;
      }
    } else {
      mismatches += moved;
    }
  }
  CHECK_INT_EQ(mismatches, 0);
  CHECK_INT_EQ(backwards, 0);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  for (int p = 0; p < NP; p++) {
    CHECK_INT_EQ(last_commit[p], (int64_t)(PER - 1) * 3 + 1);
  }
  gw_offsets_free(o);
}

/* A live turn can stay in progress for hours while the partition moves on: memory must follow
 * the records in progress, not the records read since the oldest of them. */
static void test_long_running_record_keeps_memory_small(void) {
  gw_offsets *o = new_tracker();
  int64_t next = -1;
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 0), 0); /* the long-running one */
  for (int64_t off = 1; off <= 100000; off++) {
    CHECK_INT_EQ(gw_offsets_begin(o, T, 0, off), 0);
    /* Every 10,000th record also stays open a while. */
    if (off % 10000 != 0) {
      CHECK(!gw_offsets_done(o, T, 0, off, &next));
    }
  }
  CHECK_INT_EQ(gw_offsets_in_flight(o), 11);
  CHECK(gw_offsets_entries(o) <= 64); /* runs between the 11 open records, not 100,001 */
  /* A done record inside a run is not done twice; an unknown offset is not released. */
  CHECK(!gw_offsets_done(o, T, 0, 5, &next));
  CHECK(!gw_offsets_done(o, T, 0, 100001, &next));
  /* The open ones finish, last first: the commit point moves only at the end, to the record
   * after the last one. */
  for (int64_t off = 100000; off >= 10000; off -= 10000) {
    CHECK(!gw_offsets_done(o, T, 0, off, &next));
  }
  CHECK(gw_offsets_done(o, T, 0, 0, &next));
  CHECK_INT_EQ(next, 100001);
  CHECK_INT_EQ(gw_offsets_in_flight(o), 0);
  CHECK_INT_EQ(gw_offsets_entries(o), 0);
  /* Between two open records, the commit point stops at the first still open. */
  CHECK_INT_EQ(gw_offsets_begin(o, T, 0, 100001), 0);
  for (int64_t off = 100002; off < 100500; off++) {
    CHECK_INT_EQ(gw_offsets_begin(o, T, 0, off), 0);
    if (off != 100300) {
      CHECK(!gw_offsets_done(o, T, 0, off, &next));
    }
  }
  CHECK(gw_offsets_done(o, T, 0, 100001, &next));
  CHECK_INT_EQ(next, 100300);
  CHECK(gw_offsets_done(o, T, 0, 100300, &next));
  CHECK_INT_EQ(next, 100500);
  gw_offsets_free(o);
}

int main(void) {
  GW_RUN(test_in_order_completion);
  GW_RUN(test_out_of_order_completion);
  GW_RUN(test_gaps_in_offsets);
  GW_RUN(test_bad_input);
  GW_RUN(test_forget_after_revoke);
  GW_RUN(test_topics_are_separate);
  GW_RUN(test_many_partitions_against_model);
  GW_RUN(test_long_running_record_keeps_memory_small);
  return gw_test_finish();
}
