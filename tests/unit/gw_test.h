/*
 * A minimal test harness for the unit tests: each test file is one executable whose
 * main() calls GW_RUN(test_fn) for every test function and returns gw_test_finish().
 * A failed CHECK prints file, line and the expression (and both values for the _EQ
 * variants), marks the current test failed and goes on, so one run shows every failure.
 */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int gw_test_failed_checks;
static int gw_test_passed;
static int gw_test_failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
  do {                                                                                             \
    long long gw_a_ = (long long)(a), gw_b_ = (long long)(b);                                      \
    if (gw_a_ != gw_b_) {                                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a,    \
              #b, gw_a_, gw_b_);                                                                   \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
  do {                                                                                             \
    const char *gw_a_ = (a), *gw_b_ = (b);                                                         \
    if (gw_a_ == NULL || gw_b_ == NULL || strcmp(gw_a_, gw_b_) != 0) {                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__,    \
              #a, #b, gw_a_ ? gw_a_ : "(null)", gw_b_ ? gw_b_ : "(null)");                         \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                       \
  do {                                                                                             \
    const char *gw_h_ = (haystack), *gw_n_ = (needle);                                             \
    if (gw_h_ == NULL || strstr(gw_h_, gw_n_) == NULL) {                                           \
      fprintf(stderr, "%s:%d: CHECK failed: \"%s\" contains \"%s\"\n", __FILE__, __LINE__,         \
              gw_h_ ? gw_h_ : "(null)", gw_n_);                                                    \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

#define GW_RUN(fn)                                                                                 \
  do {                                                                                             \
    int gw_before_ = gw_test_failed_checks;                                                        \
    fn();                                                                                          \
    if (gw_test_failed_checks == gw_before_) {                                                     \
      gw_test_passed++;                                                                            \
      fprintf(stderr, "ok   %s\n", #fn);                                                           \
    } else {                                                                                       \
      gw_test_failed++;                                                                            \
      fprintf(stderr, "FAIL %s\n", #fn);                                                           \
    }                                                                                              \
  } while (0)

static inline int gw_test_finish(void) {
  fprintf(stderr, "%d passed, %d failed\n", gw_test_passed, gw_test_failed);
  return gw_test_failed == 0 ? 0 : 1;
}

#endif
