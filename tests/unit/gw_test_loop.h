/*
 * Waiting on a libuv loop in unit tests: turn the loop until a condition holds, bounded, so a
 * test waits for what it checks instead of sleeping. For tests whose code under test runs on
 * a loop of the test's own (kafka, redis, scorer).
 */
#ifndef GW_TEST_LOOP_H
#define GW_TEST_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

static void gw_test_loop_tick(uv_timer_t *t) {
  (void)t;
}

/* Turns loop until cond(arg) holds or timeout_ms passes; a 5 ms tick re-checks the condition
 * even when nothing else wakes the loop. Returns whether cond held. */
static inline bool gw_test_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg,
                                     uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, gw_test_loop_tick, 5, 5);
  uv_update_time(loop);
  uint64_t deadline = uv_now(loop) + timeout_ms;
  bool ok;
  while (!(ok = cond(arg)) && uv_now(loop) < deadline) {
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

/* A condition for gw_test_run_until: *counter reached target. */
typedef struct gw_test_count {
  const int *counter;
  int target;
} gw_test_count;

static inline bool gw_test_count_reached(void *arg) {
  const gw_test_count *w = arg;
  return *w->counter >= w->target;
}

#endif
