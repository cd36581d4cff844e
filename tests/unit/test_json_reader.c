/* Unit tests of gw_json_reader: the grammar (what is accepted and refused), values, keys,
 * nesting, skipping and where errors are reported. */
#include "goodwill/json_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/buf.h"
#include "gw_test.h"

/* Reads a whole text, every value of it, with the hash key (NULL: the default) and allocator
 * (NULL: malloc) given; returns 0 or the reader's error (reason copied). */
static int read_all_with(const char *text, size_t len, char reason[96], const uint64_t *key,
                         const gw_json_allocator *alloc) {
  gw_json_reader r;
  gw_json_reader_init(&r, text, len, true);
  if (key != NULL) {
    gw_json_reader_set_hash_key(&r, key);
  }
  if (alloc != NULL) {
    gw_json_reader_set_allocator(&r, alloc);
  }
  gw_json_value v;
  int rc = gw_json_read(&r, &v);
  if (rc == 0) {
    rc = gw_json_skip_to(&r, 0);
  }
  if (rc == 0) {
    rc = gw_json_finish(&r);
  }
  if (reason != NULL) {
    const char *why = gw_json_reader_error(&r, NULL, NULL);
    snprintf(reason, 96, "%s", why != NULL ? why : "");
  }
  gw_json_reader_free(&r);
  return rc;
}

static int read_all(const char *text, size_t len, char reason[96]) {
  return read_all_with(text, len, reason, NULL, NULL);
}

static void test_grammar(void) {
  static const struct {
    const char *text;
    int ok;
  } cases[] = {
      {"{}", 1},
      {"[]", 1},
      {" \t\r\n{ \"a\" : [ 1 , 2 ] } \n", 1},
      {"[true,false,null]", 1},
      {"[0,-0,1,-1,10,1.5,-0.25,1e3,1E-3,2e+2,0.0e0]", 1},
      {"[\"\",\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"]", 1},
      {"[\"\x7f\"]", 1},                         /* DEL needs no escape */
      {"[\"caf\xc3\xa9 \xf0\x9f\x98\x80\"]", 1}, /* raw UTF-8 */
      /* Roots other than objects and arrays. */
      {"1", 0},
      {"\"a\"", 0},
      {"null", 0},
      {"", 0},
      {"   ", 0},
      /* Trailing and missing commas, unclosed containers, trailing garbage. */
      {"[1,]", 0},
      {"{\"a\":1,}", 0},
      {"[,1]", 0},
      {"[1 2]", 0},
      {"{\"a\" 1}", 0},
      {"{\"a\":}", 0},
      {"{1:2}", 0},
      {"[1", 0},
      {"{\"a\":1", 0},
      {"{} {}", 0},
      {"{}x", 0},
      {"[]]", 0},
      /* Numbers. */
      {"[01]", 0},
      {"[-01]", 0},
      {"[00]", 0},
      {"[+1]", 0},
      {"[.5]", 0},
      {"[1.]", 0},
      {"[1.e3]", 0},
      {"[1e]", 0},
      {"[1e+]", 0},
      {"[-]", 0},
      {"[NaN]", 0},
      {"[Infinity]", 0},
      {"[0x10]", 0},
      {"[9223372036854775807]", 1},
      {"[-9223372036854775808]", 1},
      {"[9223372036854775808]", 0},
      {"[-9223372036854775809]", 0},
      {"[1e308]", 1},
      {"[1e309]", 0},
      {"[-1e309]", 0},
      {"[1e-400]", 1}, /* underflow is fine */
      /* Literals. */
      {"[tru]", 0},
      {"[truee]", 0},
      {"[True]", 0},
      {"[nul]", 0},
      /* Strings. */
      {"[\"a]", 0},
      {"[\"a\nb\"]", 0},
      {"[\"a\tb\"]", 0},
      {"[\"\\x\"]", 0},
      {"[\"\\u12\"]", 0},
      {"[\"\\u12g4\"]", 0},
      {"[\"\\u0000\"]", 0},
      {"[\"\\ud800\"]", 0},
      {"[\"\\ud800x\"]", 0},
      {"[\"\\ud800\\u0041\"]", 0},
      {"[\"\\udc00\"]", 0},
      {"[\"\\ude00\\ud83d\"]", 0},
      {"[\"\xc3\"]", 0},
      {"[\"\xc0\x80\"]", 0},
      {"[\"\xed\xa0\x80\"]", 0},
      {"[\"\xf4\x90\x80\x80\"]", 0},
      {"[\"\xff\"]", 0},
      {"[\"\x80\"]", 0},
      {"\xef\xbb\xbf{}", 0}, /* a byte order mark is not whitespace */
      {"[\"a\"\xc3\xa9]", 0},
      /* Keys. */
      {"{\"a\":1,\"a\":2}", 0},
      {"{\"a\":1,\"\\u0061\":2}", 0}, /* the same key once decoded */
      {"{\"a\":{\"a\":1},\"b\":{\"a\":2}}", 1},
      {"{\"a\":[{\"x\":1,\"x\":2}]}", 0},
      {"{\"a\":1,\"A\":2}", 1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char reason[96];
    int rc = read_all(cases[i].text, strlen(cases[i].text), reason);
    if ((rc == 0) != (cases[i].ok == 1)) {
      fprintf(stderr, "grammar case %zu %s: expected %s, got rc %d (%s)\n", i, cases[i].text,
              cases[i].ok ? "accepted" : "refused", rc, reason);
      gw_test_failed_checks++;
    }
  }
  /* A NUL byte is refused wherever it is (jansson let one pass after a number). */
  static const char nul_after_number[] = "[1\0]";
  CHECK_INT_EQ(read_all(nul_after_number, sizeof(nul_after_number) - 1, NULL), -EINVAL);
  static const char nul_in_string[] = "[\"a\0b\"]";
  CHECK_INT_EQ(read_all(nul_in_string, sizeof(nul_in_string) - 1, NULL), -EINVAL);
}

static void test_values(void) {
  const char *text =
      "{\"i\":-9223372036854775808,\"z\":-0,\"r\":1.5e2,\"s\":\"x\\u00e9\\ud83d\\ude00"
      "\\n\",\"p\":\"plain\",\"t\":true,\"n\":null,\"a\":[]}";
  gw_json_reader r;
  gw_json_reader_init(&r, text, strlen(text), true);
  gw_json_value v;
  gw_json_str key;
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_OBJECT);
  CHECK_INT_EQ(gw_json_depth(&r), 1);

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK(key.len == 1 && key.ptr[0] == 'i');
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_INTEGER);
  CHECK(v.integer == INT64_MIN);

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_INTEGER); /* "-0" is the integer 0 */
  CHECK_INT_EQ(v.integer, 0);

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_REAL);
  CHECK(v.real == 150.0);

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_STRING);
  CHECK_INT_EQ(v.str.len, 1 + 2 + 4 + 1);
  CHECK(v.str.len == 8 && memcmp(v.str.ptr, "x\xc3\xa9\xf0\x9f\x98\x80\n", 8) == 0);

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK(v.str.len == 5 && memcmp(v.str.ptr, "plain", 5) == 0);
  CHECK(v.str.ptr > text && v.str.ptr < text + strlen(text)); /* no escapes: read in place */

  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_TRUE);
  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_NULL);
  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(v.type, GW_JSON_ARRAY);
  CHECK_INT_EQ(gw_json_depth(&r), 2);
  CHECK_INT_EQ(gw_json_next(&r, NULL), 0); /* the empty array closes */
  CHECK_INT_EQ(gw_json_depth(&r), 1);
  CHECK_INT_EQ(gw_json_next(&r, &key), 0);
  CHECK_INT_EQ(gw_json_depth(&r), 0);
  CHECK_INT_EQ(gw_json_finish(&r), 0);
  CHECK(gw_json_reader_error(&r, NULL, NULL) == NULL);
  gw_json_reader_free(&r);
}

/* Objects with many keys use a hash index: a duplicate is found wherever it is, whatever the
 * caller's hash key. */
static void test_many_keys(void) {
  static const uint64_t keys[][2] = {
      {0, 0}, {1, 2}, {UINT64_MAX, 0x0123456789abcdefULL}, {0x9e3779b97f4a7c15ULL, 0}};
  for (size_t ki = 0; ki < sizeof(keys) / sizeof(keys[0]); ki++)
    for (int n = 1; n <= 300; n += (n < 40 ? 1 : 37)) {
      for (int dup = 0; dup < 2; dup++) {
        size_t cap = (size_t)n * 24 + 64;
        char *text = malloc(cap);
        size_t o = (size_t)snprintf(text, cap, "{");
        for (int k = 0; k < n; k++) {
          o += (size_t)snprintf(text + o, cap - o, "%s\"key%d\":%d", k ? "," : "", k, k);
        }
        if (dup) {
          /* The duplicate of a key from the middle, written with an escape. */
          o += (size_t)snprintf(text + o, cap - o, ",\"k\\u0065y%d\":0", n / 2);
        }
        snprintf(text + o, cap - o, "}");
        char reason[96];
        int rc = read_all_with(text, strlen(text), reason, keys[ki], NULL);
        if (dup) {
          CHECK_INT_EQ(rc, -EINVAL);
          CHECK_STR_CONTAINS(reason, "duplicate");
        } else {
          CHECK_INT_EQ(rc, 0);
        }
        free(text);
      }
    }
}

static void test_depth(void) {
  /* 2048 nested arrays are fine; a value inside the innermost is one level too deep. */
  size_t n = GW_JSON_MAX_DEPTH;
  char *text = malloc(2 * n + 8);
  memset(text, '[', n);
  memset(text + n, ']', n);
  CHECK_INT_EQ(read_all(text, 2 * n, NULL), 0);
  memset(text, '[', n);
  text[n] = '1';
  memset(text + n + 1, ']', n);
  char reason[96];
  CHECK_INT_EQ(read_all(text, 2 * n + 1, reason), -EINVAL);
  CHECK_STR_CONTAINS(reason, "deeper than 2048");
  /* Objects count alike. */
  size_t o = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    text[o++] = '[';
  }
  memcpy(text + o, "{\"a\":1}", 7);
  o += 7;
  memset(text + o, ']', n - 1);
  o += n - 1;
  CHECK_INT_EQ(read_all(text, o, reason), -EINVAL);
  free(text);
}

static void test_skip(void) {
  /* A mapper that stops in the middle of an item skips the rest, still checked. */
  const char *text = "[{\"a\":{\"b\":[1,2,{\"c\":\"d\"}]},\"e\":2},{\"f\":3}]";
  gw_json_reader r;
  gw_json_reader_init(&r, text, strlen(text), true);
  gw_json_value v;
  gw_json_str key;
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_next(&r, NULL), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0); /* item 0 */
  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0); /* "a": { */
  CHECK_INT_EQ(gw_json_depth(&r), 3);
  CHECK_INT_EQ(gw_json_skip_to(&r, 1), 0);
  CHECK_INT_EQ(gw_json_next(&r, NULL), 1);
  CHECK_INT_EQ(gw_json_skip(&r), 0); /* item 1 whole */
  CHECK_INT_EQ(gw_json_next(&r, NULL), 0);
  CHECK_INT_EQ(gw_json_finish(&r), 0);
  gw_json_reader_free(&r);

  /* A duplicate inside the skipped part is still a syntax error. */
  const char *dup = "[{\"a\":1,\"x\":{\"b\":1,\"b\":2}}]";
  gw_json_reader_init(&r, dup, strlen(dup), true);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_next(&r, NULL), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_next(&r, &key), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_skip_to(&r, 1), -EINVAL);
  CHECK_STR_CONTAINS(gw_json_reader_error(&r, NULL, NULL), "duplicate");
  /* The error sticks. */
  CHECK_INT_EQ(gw_json_next(&r, NULL), -EINVAL);
  CHECK_INT_EQ(gw_json_finish(&r), -EINVAL);
  gw_json_reader_free(&r);
}

static void test_error_position(void) {
  const char *text = "{\n  \"a\": 1,\n  \"b\": }";
  gw_json_reader r;
  gw_json_reader_init(&r, text, strlen(text), true);
  gw_json_value v;
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_skip_to(&r, 0), -EINVAL);
  size_t line = 0, column = 0;
  const char *why = gw_json_reader_error(&r, &line, &column);
  CHECK_STR_CONTAINS(why, "a value expected, found '}'");
  CHECK_INT_EQ(line, 3);
  CHECK_INT_EQ(column, 8);
  gw_json_reader_free(&r);

  /* Columns count characters, not bytes. */
  const char *wide = "[\"\xc3\xa9\xc3\xa9\",x]";
  gw_json_reader_init(&r, wide, strlen(wide), true);
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_skip_to(&r, 0), -EINVAL);
  (void)gw_json_reader_error(&r, &line, &column);
  CHECK_INT_EQ(line, 1);
  CHECK_INT_EQ(column, 7); /* [ " é é " , x */
  gw_json_reader_free(&r);

  /* Reading past the end says so. */
  char reason[96];
  CHECK_INT_EQ(read_all("{\"a\":", 5, reason), -EINVAL);
  CHECK_STR_CONTAINS(reason, "end of input");
}

/* An allocator that fails once `budget` allocations were made, and counts what is live. */
typedef struct test_alloc {
  int budget;
  int live;
  int failed;
} test_alloc;

static void *test_alloc_fn(void *opaque, size_t n) {
  test_alloc *a = opaque;
  if (a->budget <= 0) {
    a->failed++;
    return NULL;
  }
  a->budget--;
  void *p = malloc(n);
  if (p != NULL) {
    a->live++;
  }
  return p;
}

static void test_free_fn(void *opaque, void *p) {
  test_alloc *a = opaque;
  a->live--;
  free(p);
}

/* Running out of memory is -ENOMEM with its own reason, never a syntax error, and it sticks;
 * whatever the reader got is given back. */
static void test_out_of_memory(void) {
  /* Each needs memory of the reader's own: an escaped string, nesting deeper than the
   * inline frames, an object with more keys than the inline key slots. */
  gw_buf deep = GW_BUF_INIT, many = GW_BUF_INIT;
  for (int i = 0; i < 40; i++) {
    gw_buf_putc(&deep, '[');
  }
  for (int i = 0; i < 40; i++) {
    gw_buf_putc(&deep, ']');
  }
  gw_buf_putc(&many, '{');
  for (int i = 0; i < 100; i++) {
    gw_buf_printf(&many, "%s\"k%d\":%d", i ? "," : "", i, i);
  }
  gw_buf_putc(&many, '}');
  const char *texts[] = {"{\"text\":\"caf\\u00e9 \\\"quoted\\\"\"}", deep.data, many.data};
  for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
    test_alloc a = {.budget = 0};
    const gw_json_allocator alloc = {test_alloc_fn, test_free_fn, &a};
    char reason[96];
    CHECK_INT_EQ(read_all_with(texts[t], strlen(texts[t]), reason, NULL, &alloc), -ENOMEM);
    CHECK_STR_CONTAINS(reason, "out of memory");
    CHECK(a.failed > 0);
    CHECK_INT_EQ(a.live, 0);
    /* With memory the same texts are fine, and everything is freed. */
    test_alloc b = {.budget = 1000};
    const gw_json_allocator ok = {test_alloc_fn, test_free_fn, &b};
    CHECK_INT_EQ(read_all_with(texts[t], strlen(texts[t]), reason, NULL, &ok), 0);
    CHECK(b.budget < 1000);
    CHECK_INT_EQ(b.live, 0);
  }
  /* The error sticks: later calls return it too. */
  test_alloc a = {.budget = 0};
  const gw_json_allocator alloc = {test_alloc_fn, test_free_fn, &a};
  gw_json_reader r;
  gw_json_reader_init(&r, "[\"a\\nb\",1]", 10, true);
  gw_json_reader_set_allocator(&r, &alloc);
  gw_json_value v;
  CHECK_INT_EQ(gw_json_read(&r, &v), 0);
  CHECK_INT_EQ(gw_json_next(&r, NULL), 1);
  CHECK_INT_EQ(gw_json_read(&r, &v), -ENOMEM);
  CHECK_INT_EQ(gw_json_next(&r, NULL), -ENOMEM);
  CHECK_INT_EQ(gw_json_finish(&r), -ENOMEM);
  gw_json_reader_free(&r);
  CHECK_INT_EQ(a.live, 0);
  gw_buf_free(&deep);
  gw_buf_free(&many);
}

int main(void) {
  GW_RUN(test_grammar);
  GW_RUN(test_values);
  GW_RUN(test_many_keys);
  GW_RUN(test_depth);
  GW_RUN(test_skip);
  GW_RUN(test_error_position);
  GW_RUN(test_out_of_memory);
  return gw_test_finish();
}
