/*
 * gw_sha256 against the FIPS 180-4 example vectors (NIST CSRC "Examples with intermediate
 * values", SHA-256: "abc", the two-block 448-bit message, and one million 'a'), and gw_auth:
 * the tokens file format with its errors by line, the bearer header, and the lookups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goodwill/auth.h"
#include "goodwill/sha256.h"
#include "gw_test.h"

static void test_sha256_vectors(void) {
  char hex[GW_SHA256_HEX_LEN + 1];
  gw_sha256_hex("", 0, hex);
  CHECK_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  gw_sha256_hex("abc", 3, hex);
  CHECK_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  gw_sha256_hex(two, strlen(two), hex);
  CHECK_STR_EQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  /* One million 'a', fed in uneven pieces so every path of update is taken. */
  char *a = malloc(1000000);
  memset(a, 'a', 1000000);
  gw_sha256_ctx c;
  gw_sha256_init(&c);
  size_t off = 0, step = 1;
  while (off < 1000000) {
    size_t n = step < 1000000 - off ? step : 1000000 - off;
    gw_sha256_update(&c, a + off, n);
    off += n;
    step = step * 3 % 1021 + 1;
  }
  uint8_t d[GW_SHA256_BYTES];
  gw_sha256_final(&c, d);
  char got[3];
  snprintf(got, sizeof(got), "%02x", d[0]);
  CHECK_STR_EQ(got, "cd");
  gw_sha256_hex(a, 1000000, hex);
  CHECK_STR_EQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  /* 55, 56 and 64 bytes: the padding boundaries. */
  gw_sha256_hex(a, 55, hex);
  CHECK_STR_EQ(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  gw_sha256_hex(a, 56, hex);
  CHECK_STR_EQ(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  gw_sha256_hex(a, 64, hex);
  CHECK_STR_EQ(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  free(a);
}

/* The SHA-256 of "tok-alpha-1" and of "tok-beta-2" (sha256sum), the second in upper case. */
#define HASH_A "2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33"
#define HASH_B "3BD5FF797DE41F255A56ADFD843F8C6D8F157413A3F001F336A61FC4D94E096F"

static int parse(const char *text, gw_auth **out, char *err, size_t errlen) {
  return gw_auth_parse(text, strlen(text), "tokens.tsv", out, err, errlen);
}

static void test_tokens_file(void) {
  gw_auth *a = NULL;
  char err[256] = "";
  CHECK_INT_EQ(parse("# comment\n\n  # indented comment\n" HASH_A "\tacme\tsupport team\r\n" HASH_B
                     "\tglobex\n",
                     &a, err, sizeof(err)),
               0);
  CHECK_INT_EQ((int)gw_auth_count(a), 2);
  const char *tenant = NULL;
  CHECK_INT_EQ(gw_auth_check(a, "tok-alpha-1", 11, &tenant), 0);
  CHECK_STR_EQ(tenant, "acme");
  CHECK_INT_EQ(gw_auth_check(a, "tok-beta-2", 10, &tenant), 0);
  CHECK_STR_EQ(tenant, "globex");
  CHECK_INT_EQ(gw_auth_check(a, "tok-beta-", 9, &tenant), -EACCES);
  CHECK(tenant == NULL);
  CHECK_INT_EQ(gw_auth_check(a, "tok-beta-22", 11, &tenant), -EACCES);
  CHECK_INT_EQ(gw_auth_check(a, "", 0, &tenant), -EACCES);
  CHECK_INT_EQ(gw_auth_check(NULL, "tok-alpha-1", 11, &tenant), -EACCES);
  gw_auth_free(a);

  /* Every error names the source and the line. */
  static const struct {
    const char *text;
    const char *message;
  } bad[] = {
      {"# c\n" HASH_A " acme\n", "tokens.tsv:2: expected <sha256-hex><TAB><tenant_id>"},
      {HASH_A "\tacme\nabc\tacme\n", "tokens.tsv:2: the token hash must be 64 hex digits (the "
                                     "SHA-256 of the token), got 3 characters"},
      {"\n\n2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d3g\tacme\n",
       "tokens.tsv:3: the token hash has a non-hex character at column 64"},
      {HASH_A "\t\n", "tokens.tsv:1: tenant_id must have 1..128 characters, got 0"},
      {HASH_A "\tac me\n", "tokens.tsv:1: tenant_id may only hold letters, digits and . _ @ - "
                           "(bad character at column 68)"},
      {HASH_A "\tacme\n" HASH_B "\tx\n" HASH_A "\tglobex\n",
       "tokens.tsv:3: this token hash is already listed (tenant acme)"},
      {"# nothing\n\n", "tokens.tsv: no tokens"},
      {"", "tokens.tsv: no tokens"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    a = NULL;
    err[0] = '\0';
    CHECK_INT_EQ(parse(bad[i].text, &a, err, sizeof(err)), -EINVAL);
    CHECK(a == NULL);
    CHECK_STR_CONTAINS(err, bad[i].message);
  }
  /* Upper-case hex is the same hash: a duplicate. */
  CHECK_INT_EQ(parse(HASH_B "\ta\n"
                            "3bd5ff797de41f255a56adfd843f8c6d8f157413a3f001f336a61fc4d94e096f\tb\n",
                     &a, err, sizeof(err)),
               -EINVAL);
}

static void test_tokens_load_file(void) {
  char path[64];
  snprintf(path, sizeof(path), "/tmp/gw-test-auth-%ld", (long)getpid());
  gw_auth *a = NULL;
  char err[256] = "";
  CHECK_INT_EQ(gw_auth_load_file(path, &a, err, sizeof(err)), -ENOENT);
  CHECK_STR_CONTAINS(err, path);
  CHECK_STR_CONTAINS(err, "cannot open");
  FILE *fp = fopen(path, "w");
  CHECK(fp != NULL);
  if (fp == NULL) {
    return;
  }
  fputs(HASH_A "\tacme\n", fp);
  fclose(fp);
  CHECK_INT_EQ(gw_auth_load_file(path, &a, err, sizeof(err)), 0);
  CHECK_INT_EQ((int)gw_auth_count(a), 1);
  gw_auth_free(a);
  fp = fopen(path, "w");
  fputs(HASH_A "\n", fp);
  fclose(fp);
  CHECK_INT_EQ(gw_auth_load_file(path, &a, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, ":1: expected");
  unlink(path);
  CHECK_INT_EQ(gw_auth_load_file("/tmp", &a, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "not a regular file");
}

static void test_bearer_header(void) {
  const char *t;
  size_t n;
  CHECK_INT_EQ(gw_auth_bearer("Bearer abc.DEF-1~+/=", &t, &n), 0);
  CHECK_INT_EQ((int)n, 13);
  CHECK(strncmp(t, "abc.DEF-1~+/=", 13) == 0);
  CHECK_INT_EQ(gw_auth_bearer("  bearer   tok  ", &t, &n), 0);
  CHECK_INT_EQ((int)n, 3);
  CHECK(strncmp(t, "tok", 3) == 0);
  CHECK_INT_EQ(gw_auth_bearer(NULL, &t, &n), -ENOENT);
  CHECK_INT_EQ(gw_auth_bearer("   ", &t, &n), -ENOENT);
  CHECK_INT_EQ(gw_auth_bearer("Basic dTpw", &t, &n), -EINVAL);
  CHECK_INT_EQ(gw_auth_bearer("Bearer", &t, &n), -EINVAL);
  CHECK_INT_EQ(gw_auth_bearer("Bearer ", &t, &n), -EINVAL);
  CHECK_INT_EQ(gw_auth_bearer("Bearerabc", &t, &n), -EINVAL);
  CHECK_INT_EQ(gw_auth_bearer("Bearer a b", &t, &n), -EINVAL);
  char *long_token = malloc(GW_AUTH_MAX_TOKEN_BYTES + 16);
  memcpy(long_token, "Bearer ", 7);
  memset(long_token + 7, 'x', GW_AUTH_MAX_TOKEN_BYTES + 1);
  long_token[7 + GW_AUTH_MAX_TOKEN_BYTES + 1] = '\0';
  CHECK_INT_EQ(gw_auth_bearer(long_token, &t, &n), -EINVAL);
  free(long_token);
}

int main(void) {
  GW_RUN(test_sha256_vectors);
  GW_RUN(test_tokens_file);
  GW_RUN(test_tokens_load_file);
  GW_RUN(test_bearer_header);
  return gw_test_finish();
}
