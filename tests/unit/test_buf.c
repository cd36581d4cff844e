#include "goodwill/buf.h"
#include "gw_test.h"

#include <jansson.h>
#include <stdlib.h>

static void test_append_grows_and_terminates(void) {
  gw_buf b = GW_BUF_INIT;
  for (int i = 0; i < 1000; i++) {
    gw_buf_puts(&b, "abc");
  }
  CHECK_INT_EQ(b.len, 3000);
  CHECK(b.cap > b.len);
  CHECK_INT_EQ(b.data[b.len], '\0');
  CHECK(memcmp(b.data + 2997, "abc", 3) == 0);
  gw_buf_putc(&b, 'x');
  CHECK_INT_EQ(b.len, 3001);
  CHECK_STR_EQ(b.data + 2998, "bcx");
  gw_buf_free(&b);
  CHECK(b.data == NULL);
  CHECK_INT_EQ(b.len, 0);
}

static void test_reserve_alone_gives_empty_string(void) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_reserve(&b, 100);
  CHECK(b.data != NULL);
  CHECK_STR_EQ(b.data, "");
  CHECK(b.cap >= 101);
  gw_buf_free(&b);
}

static void test_printf_long_output(void) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b, "%s=%d;", "x", 42);
  char big[5000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  gw_buf_printf(&b, "[%s]", big);
  CHECK_INT_EQ(b.len, 5 + 1 + 4999 + 1);
  CHECK(strncmp(b.data, "x=42;[qqq", 9) == 0);
  CHECK_INT_EQ(b.data[b.len - 1], ']');
  CHECK_INT_EQ(strlen(b.data), b.len);
  gw_buf_free(&b);
}

static void test_put_uint_matches_printf(void) {
  /* Answers and response heads are built with gw_buf_put_uint instead of printf: it must
   * write exactly what "%llu" writes, at the edges too. */
  const uint64_t cases[] = {0, 1, 9, 10, 99, 100, 202, 4294967295u, 4294967296u, UINT64_MAX};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    gw_buf a = GW_BUF_INIT, want = GW_BUF_INIT;
    GW_BUF_PUT_LIT(&a, "n=");
    gw_buf_put_uint(&a, cases[i]);
    gw_buf_printf(&want, "n=%llu", (unsigned long long)cases[i]);
    CHECK_STR_EQ(a.data, want.data);
    CHECK_INT_EQ(a.len, want.len);
    gw_buf_free(&a);
    gw_buf_free(&want);
  }
}

static void test_reset_keeps_memory(void) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "hello");
  char *before = b.data;
  size_t cap = b.cap;
  gw_buf_reset(&b);
  CHECK_INT_EQ(b.len, 0);
  CHECK_STR_EQ(b.data, "");
  CHECK(b.data == before);
  CHECK_INT_EQ(b.cap, cap);
  gw_buf_free(&b);
}

static void test_json_escape_specials(void) {
  gw_buf b = GW_BUF_INIT;
  const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f/\x7f";
  gw_buf_json_escape(&b, in, sizeof in - 1);
  CHECK_STR_EQ(b.data, "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\x7f");
  gw_buf_reset(&b);
  /* An embedded NUL is part of the given length and must survive as \u0000. */
  gw_buf_json_escape(&b, "x\0y", 3);
  CHECK_STR_EQ(b.data, "x\\u0000y");
  gw_buf_reset(&b);
  gw_buf_json_escape(&b, "", 0);
  CHECK(b.data != NULL);
  CHECK_STR_EQ(b.data, "");
  gw_buf_free(&b);
}

static void test_json_escape_utf8(void) {
  gw_buf b = GW_BUF_INIT;
  /* Valid multi-byte sequences pass through unchanged: é, €, 😀. */
  gw_buf_json_string(&b, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK_STR_EQ(b.data, "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  gw_buf_reset(&b);
  /* Invalid bytes: lone continuation, overlong '/', truncated sequence, surrogate. */
  gw_buf_json_string(&b, "a\x80z\xc0\xaf\xe2\x82\xed\xa0\x80");
  CHECK_STR_EQ(b.data, "\"a\\ufffdz\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
  gw_buf_free(&b);
}

/* Whatever bytes go in, a JSON parser reads back a string (the same one for valid UTF-8). */
static void test_json_string_round_trips_through_parser(void) {
  const char *samples[] = {
      "plain",
      "quote\" backslash\\ newline\n tab\t",
      "\x01\x02\x03\x1e",
      "caf\xc3\xa9 \xe2\x9c\x93",
      "bad \xff\xfe bytes",
  };
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    gw_buf b = GW_BUF_INIT;
    gw_buf_puts(&b, "[");
    gw_buf_json_string(&b, samples[i]);
    gw_buf_puts(&b, "]");
    json_error_t err;
    json_t *v = json_loads(b.data, 0, &err);
    CHECK(v != NULL);
    if (v == NULL) {
      fprintf(stderr, "  sample %zu: %s: %s\n", i, b.data, err.text);
    } else if (i < 4) {
      CHECK_STR_EQ(json_string_value(json_array_get(v, 0)), samples[i]);
    }
    json_decref(v);
    gw_buf_free(&b);
  }
}

int main(void) {
  GW_RUN(test_append_grows_and_terminates);
  GW_RUN(test_reserve_alone_gives_empty_string);
  GW_RUN(test_printf_long_output);
  GW_RUN(test_put_uint_matches_printf);
  GW_RUN(test_reset_keeps_memory);
  GW_RUN(test_json_escape_specials);
  GW_RUN(test_json_escape_utf8);
  GW_RUN(test_json_string_round_trips_through_parser);
  return gw_test_finish();
}
