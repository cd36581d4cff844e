/*
 * gw_json_reader: a strict, single-pass, pull-style reader of one JSON text (RFC 8259), for
 * request bodies that are mapped straight into structs without building a tree.
 *
 * The caller drives it: gw_json_read takes the next value (a scalar whole, a container only
 * up to its opening bracket), gw_json_next moves to the next member of the innermost open
 * container (reading the key of an object member), gw_json_skip_to drops the rest of open
 * containers (after a field error, the rest of an item is still checked for syntax but not
 * mapped), gw_json_finish checks that nothing but whitespace follows the root value.
 *
 * Grammar decisions (the same acceptances as jansson 2.14 with JSON_REJECT_DUPLICATES and
 * without JSON_DECODE_ANY, JSON_ALLOW_NUL, JSON_DISABLE_EOF_CHECK, which goodwill used
 * before; fuzz/fuzz_event_json.c checks the two against each other):
 * - Whitespace is space, tab, CR and LF only. The root must be an object or an array when
 *   gw_json_reader_init's root_container is true.
 * - Numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; no leading zeros, no '+', no
 *   bare '.', no NaN or Infinity. Without fraction and exponent a number is an INTEGER and must
 *   fit int64_t (otherwise a syntax error, as jansson's "too big integer"); "-0" is the integer
 *   0. With either it is a REAL, a syntax error when it overflows a double (underflow is
 *   fine), so 1.0 is never an integer.
 * - Strings: every byte must be valid UTF-8 (no overlong forms, no encoded surrogates, nothing
 *   above U+10FFFF); control bytes 0x00-0x1F must be escaped (0x7F need not); escapes are
 *   \" \\ \/ \b \f \n \r \t and \uXXXX (either case of hex); a \u high surrogate must be
 *   followed by a \u low surrogate, a lone low surrogate is refused, and \u0000 is refused
 *   (values are C strings downstream).
 * - Objects: keys are strings; a duplicate key (compared after decoding escapes) is a syntax
 *   error, so no value can silently win over another. Trailing commas are refused.
 * - Nesting: a value may sit at most GW_JSON_MAX_DEPTH levels deep, the root being level 1
 *   (jansson's JSON_PARSER_MAX_DEPTH).
 *
 * Pure: no I/O; one thread per reader. Objects of more than 16 keys index their keys for the
 * duplicate check with SipHash-1-3 under the caller's key (gw_json_reader_set_hash_key), so
 * that a client who does not know the key cannot pick keys that make the check slow: readers
 * of untrusted text should be given a secret random key, drawn once by the process
 * (goodwill-ingest draws it at start); without one the key is all zeros. The text is borrowed
 * and must outlive the reader and every value read from it: a string without escapes points
 * into the text, one with escapes into the reader's own memory, valid until
 * gw_json_reader_free. Strings are not NUL-terminated (use len).
 *
 * Numbers with a fraction or an exponent are converted with strtod, which reads the decimal
 * point of the C library's current locale. That is safe because goodwill's programs never call
 * setlocale: a C program starts in the "C" locale, whose decimal point is '.', as in JSON (C11
 * 7.11.1.1). A program that embeds this reader and switches LC_NUMERIC to a locale with ','
 * would read 1.5 as 1; the grammar check itself does not depend on the locale.
 *
 * Errors: the first error sticks: every later call returns the same code, and
 * gw_json_reader_error says where (1-based line and column, the column in UTF-8 characters)
 * and why. -EINVAL is a syntax error of the text. -ENOMEM means the reader could not get
 * memory for decoded strings, deep nesting or many keys: not the text's fault, so callers
 * must report it as their own (internal) failure, never as a client's error.
 */
#ifndef GOODWILL_JSON_READER_H
#define GOODWILL_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JSON_MAX_DEPTH 2048

typedef enum gw_json_type {
  GW_JSON_NULL,
  GW_JSON_FALSE,
  GW_JSON_TRUE,
  GW_JSON_INTEGER,
  GW_JSON_REAL,
  GW_JSON_STRING,
  GW_JSON_ARRAY,  /* its '[' was read: members follow through gw_json_next */
  GW_JSON_OBJECT, /* its '{' was read: members follow through gw_json_next */
} gw_json_type;

/* A string: decoded bytes, valid UTF-8 without NUL, not NUL-terminated. */
typedef struct gw_json_str {
  const char *ptr;
  size_t len;
} gw_json_str;

typedef struct gw_json_value {
  gw_json_type type;
  gw_json_str str; /* GW_JSON_STRING */
  int64_t integer; /* GW_JSON_INTEGER */
  double real;     /* GW_JSON_REAL */
} gw_json_value;

/* Private: one open container. */
typedef struct gw_json_frame {
  size_t first_key; /* index in keys of this object's first key */
  uint32_t *table;  /* hash index of this object's keys (1 + index), once it has many */
  size_t table_cap; /* slots, a power of two */
  bool is_object;
  bool has_member;    /* a member was announced, so ',' or the closing bracket comes next */
  bool value_pending; /* gw_json_next announced a member whose value is not read yet */
} gw_json_frame;

typedef struct gw_json_key {
  const char *ptr;
  uint32_t len;
  uint32_t hash;
} gw_json_key;

typedef struct gw_json_chunk gw_json_chunk;

/* Where a reader gets its memory (gw_json_reader_set_allocator); the default is malloc/free.
 * alloc returns NULL when out of memory. Tests use it to make allocation fail. */
typedef struct gw_json_allocator {
  void *(*alloc)(void *opaque, size_t n);
  void (*free)(void *opaque, void *p);
  void *opaque;
} gw_json_allocator;

typedef struct gw_json_reader {
  const char *start, *p, *end;
  bool root_container; /* the root must be an object or an array */
  bool root_read;
  int error; /* 0, or the sticky error */
  size_t error_offset;
  char error_reason[96];
  gw_json_frame *frames; /* frames_inline, or malloc'd when deeper */
  size_t depth, frames_cap;
  gw_json_key *keys; /* keys of the open objects, innermost last */
  size_t nkeys, keys_cap;
  gw_json_chunk *chunks; /* memory of decoded strings and of numbers given to strtod */
  uint64_t hash_key[2];  /* SipHash key of the duplicate check of objects with many keys */
  const gw_json_allocator *allocator; /* NULL: malloc and free */
  gw_json_frame frames_inline[16];
  gw_json_key keys_inline[64];
} gw_json_reader;

/* Starts reading text[0..len). Never fails; the reader must be freed. */
void gw_json_reader_init(gw_json_reader *r, const char *text, size_t len, bool root_container);
void gw_json_reader_free(gw_json_reader *r);

/* The SipHash key of the duplicate check (see above); call before reading. */
void gw_json_reader_set_hash_key(gw_json_reader *r, const uint64_t key[2]);

/* Memory from a (borrowed) allocator instead of malloc; call before reading. */
void gw_json_reader_set_allocator(gw_json_reader *r, const gw_json_allocator *a);

/* Reads the value that comes next: the root, or the member gw_json_next announced. */
int gw_json_read(gw_json_reader *r, gw_json_value *v);

/*
 * Moves to the next member of the innermost open container: returns 1 when there is one (for
 * an object, *key is its key; key may be NULL for arrays), 0 when the container closed here,
 * or a negative error.
 */
int gw_json_next(gw_json_reader *r, gw_json_str *key);

/* Open containers: 0 before the root is read and after it closed. */
static inline size_t gw_json_depth(const gw_json_reader *r) {
  return r->depth;
}

/* Reads and checks, without mapping, the rest of the open containers until depth is left. */
int gw_json_skip_to(gw_json_reader *r, size_t depth);

/* Reads and checks one whole value (the one gw_json_read would read). */
int gw_json_skip(gw_json_reader *r);

/* After the root value: only whitespace may follow. */
int gw_json_finish(gw_json_reader *r);

/* The sticky syntax error, or NULL: reason, and 1-based line and column of where it was. */
const char *gw_json_reader_error(const gw_json_reader *r, size_t *line, size_t *column);

#endif
