#include "goodwill/rate_limit.h"
#include "gw_test.h"

#include <errno.h>

static void test_bad_configuration_is_refused(void) {
  gw_rate_limit *rl = (gw_rate_limit *)1;
  CHECK_INT_EQ(gw_rate_limit_new(0, 10, 10, &rl), -EINVAL);
  CHECK(rl == NULL);
  CHECK_INT_EQ(gw_rate_limit_new(-5, 10, 10, &rl), -EINVAL);
  CHECK_INT_EQ(gw_rate_limit_new(5, 0.5, 10, &rl), -EINVAL);
  CHECK_INT_EQ(gw_rate_limit_new(5, 10, 0, &rl), -EINVAL);
}

static void test_burst_then_rate(void) {
  /* 100 events/s, burst 500: a tenant starts with 500 events to spend. */
  gw_rate_limit *rl;
  CHECK_INT_EQ(gw_rate_limit_new(100, 500, 16, &rl), 0);
  uint64_t retry = 0;
  for (int i = 0; i < 5; i++) {
    CHECK_INT_EQ(gw_rate_limit_admit(rl, "acme", 1000, &retry), 0);
    gw_rate_limit_charge(rl, "acme", 1000, 100);
  }
  /* The bucket is empty, not in debt: one more request may start... */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "acme", 1000, &retry), 0);
  gw_rate_limit_charge(rl, "acme", 1000, 50);
  /* ...and its 50 events are a debt of 0.5 s at 100/s. */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "acme", 1000, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 500);
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "acme", 1300, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 200);
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "acme", 1500, &retry), 0);
  /* Another tenant is not affected by acme's debt. */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "globex", 1000, &retry), 0);
  gw_rate_limit_free(rl);
}

static void test_large_batch_passes_once_and_leaves_debt(void) {
  /* A batch larger than the burst is let in (its size is bounded by other limits), and the
   * debt it leaves is exactly the time its events take at the rate. */
  gw_rate_limit *rl;
  CHECK_INT_EQ(gw_rate_limit_new(1000, 100, 16, &rl), 0);
  uint64_t retry = 0;
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 0, &retry), 0);
  gw_rate_limit_charge(rl, "t", 0, 5100);
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 0, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 5000);
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 5000, &retry), 0);
  gw_rate_limit_free(rl);
}

static void test_refill_stops_at_burst_and_clock_may_not_go_back(void) {
  gw_rate_limit *rl;
  CHECK_INT_EQ(gw_rate_limit_new(10, 20, 16, &rl), 0);
  uint64_t retry = 0;
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 100000, &retry), 0);
  /* An hour idle refills to the burst, not beyond: 21 events put it in debt by 1. */
  gw_rate_limit_charge(rl, "t", 3700000, 21);
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 3700000, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 100);
  /* A clock read that goes backwards adds nothing. */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "t", 3600000, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 100);
  gw_rate_limit_free(rl);
}

static void test_memory_is_bounded(void) {
  gw_rate_limit *rl;
  CHECK_INT_EQ(gw_rate_limit_new(1, 10, 3, &rl), 0);
  uint64_t retry = 0;
  const char *keys[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    CHECK_INT_EQ(gw_rate_limit_admit(rl, keys[i], 0, &retry), 0);
    gw_rate_limit_charge(rl, keys[i], 0, 5);
  }
  CHECK_INT_EQ(gw_rate_limit_keys(rl), 3);
  /* Every bucket is still refilling: a fourth tenant finds no room. */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "d", 1000, &retry), -ENOSPC);
  /* Once the others refilled completely (5 s at 1/s), they make room. */
  CHECK_INT_EQ(gw_rate_limit_admit(rl, "d", 5000, &retry), 0);
  CHECK(gw_rate_limit_keys(rl) <= 3);
  gw_rate_limit_free(rl);
}

/* A cost known up front: exactly burst / cost takes at once, then one per cost / rate. */
static void test_take(void) {
  gw_rate_limit *rl = NULL;
  CHECK_INT_EQ(gw_rate_limit_new(2, 3, 10, &rl), 0);
  uint64_t retry = 0, t = 1000;
  for (int i = 0; i < 3; i++) {
    CHECK_INT_EQ(gw_rate_limit_take(rl, "a", t, 1, &retry), 0);
  }
  CHECK_INT_EQ(gw_rate_limit_take(rl, "a", t, 1, &retry), -EAGAIN);
  CHECK_INT_EQ(retry, 500); /* one request at 2 per second */
  CHECK_INT_EQ(gw_rate_limit_take(rl, "a", t + 499, 1, &retry), -EAGAIN);
  CHECK_INT_EQ(gw_rate_limit_take(rl, "a", t + 500, 1, &retry), 0);
  CHECK_INT_EQ(gw_rate_limit_take(rl, "b", t + 500, 1, &retry), 0); /* its own bucket */
  gw_rate_limit_free(rl);
}

int main(void) {
  GW_RUN(test_take);
  GW_RUN(test_bad_configuration_is_refused);
  GW_RUN(test_burst_then_rate);
  GW_RUN(test_large_batch_passes_once_and_leaves_debt);
  GW_RUN(test_refill_stops_at_burst_and_clock_may_not_go_back);
  GW_RUN(test_memory_is_bounded);
  return gw_test_finish();
}
