/* gw_sha1 against the test vectors of FIPS 180-4's examples (and the empty message). */
#include <string.h>

#include "goodwill/sha1.h"
#include "gw_test.h"

static void check(const char *msg, size_t len, const char *want) {
  char hex[GW_SHA1_HEX_LEN + 1];
  gw_sha1_hex(msg, len, hex);
  CHECK_STR_EQ(hex, want);
}

static void test_sha1_known_vectors(void) {
  check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  check(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

/* A million 'a's fed in uneven pieces: block boundaries anywhere give the same digest. */
static void test_sha1_million_a_in_pieces(void) {
  static char chunk[997];
  memset(chunk, 'a', sizeof chunk);
  gw_sha1_ctx c;
  gw_sha1_init(&c);
  size_t left = 1000000;
  while (left > 0) {
    size_t n = left < sizeof chunk ? left : sizeof chunk;
    gw_sha1_update(&c, chunk, n);
    left -= n;
  }
  char hex[GW_SHA1_HEX_LEN + 1];
  gw_sha1_final_hex(&c, hex);
  CHECK_STR_EQ(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

int main(void) {
  GW_RUN(test_sha1_known_vectors);
  GW_RUN(test_sha1_million_a_in_pieces);
  return gw_test_finish();
}
