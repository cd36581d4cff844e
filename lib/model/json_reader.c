/*
 * gw_json_reader: see goodwill/json_reader.h for the grammar. The hot paths are the byte
 * loops over whitespace and over strings without escapes; everything else (escapes, reals,
 * deep nesting, objects with many keys) takes a slower path that allocates.
 */
#include "goodwill/json_reader.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/hash.h"

/* Memory handed out by the reader: decoded strings and number texts. Chunks never move, so
 * a string stays where it is while later ones are decoded. */
struct gw_json_chunk {
  struct gw_json_chunk *next;
  size_t size_bytes;
  size_t used_bytes;
  char data[];
};

#define GW_JSON_CHUNK_BYTES ((size_t)4096)

/* Objects with more keys than this get a hash index for the duplicate check, so that a body
 * of one object with many keys costs linear time, not quadratic. */
#define GW_JSON_LINEAR_KEYS 16

static int gw_json_fail(gw_json_reader *r, const char *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int gw_json_fail(gw_json_reader *r, const char *at, int code, const char *fmt, ...) {
  if (r->error != 0) {
    return r->error;
  }
  r->error = code;
  r->error_offset = (size_t)(at - r->start);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->error_reason, sizeof(r->error_reason), fmt, ap);
  va_end(ap);
  return code;
}

static void *gw_json_malloc(gw_json_reader *r, size_t n) {
  return r->allocator != NULL ? r->allocator->alloc(r->allocator->opaque, n) : malloc(n);
}

static void gw_json_mfree(gw_json_reader *r, void *p) {
  if (p == NULL) {
    return;
  }
  if (r->allocator != NULL) {
    r->allocator->free(r->allocator->opaque, p);
  } else {
    free(p);
  }
}

static void *gw_json_alloc(gw_json_reader *r, size_t n) {
  gw_json_chunk *c = r->chunks;
  if (c == NULL || c->size_bytes - c->used_bytes < n) {
    size_t size = n > GW_JSON_CHUNK_BYTES ? n : GW_JSON_CHUNK_BYTES;
    gw_json_chunk *nc = gw_json_malloc(r, sizeof(*nc) + size);
    if (nc == NULL) {
      return NULL;
    }
    nc->next = c;
    nc->size_bytes = size;
    nc->used_bytes = 0;
    r->chunks = nc;
    c = nc;
  }
  void *p = c->data + c->used_bytes;
  c->used_bytes += n;
  return p;
}

void gw_json_reader_init(gw_json_reader *r, const char *text, size_t len, bool root_container) {
  r->start = text;
  r->p = text;
  r->end = text + len;
  r->root_container = root_container;
  r->root_read = false;
  r->error = 0;
  r->error_offset = 0;
  r->error_reason[0] = '\0';
  r->frames = r->frames_inline;
  r->frames_cap = sizeof(r->frames_inline) / sizeof(r->frames_inline[0]);
  r->depth = 0;
  r->keys = r->keys_inline;
  r->keys_cap = sizeof(r->keys_inline) / sizeof(r->keys_inline[0]);
  r->nkeys = 0;
  r->chunks = NULL;
  r->hash_key[0] = r->hash_key[1] = 0;
  r->allocator = NULL;
}

void gw_json_reader_set_hash_key(gw_json_reader *r, const uint64_t key[2]) {
  r->hash_key[0] = key[0];
  r->hash_key[1] = key[1];
}

void gw_json_reader_set_allocator(gw_json_reader *r, const gw_json_allocator *a) {
  r->allocator = a;
}

void gw_json_reader_free(gw_json_reader *r) {
  for (size_t i = 0; i < r->depth; i++) {
    gw_json_mfree(r, r->frames[i].table);
  }
  if (r->frames != r->frames_inline) {
    gw_json_mfree(r, r->frames);
  }
  if (r->keys != r->keys_inline) {
    gw_json_mfree(r, r->keys);
  }
  gw_json_chunk *c = r->chunks;
  while (c != NULL) {
    gw_json_chunk *n = c->next;
    gw_json_mfree(r, c);
    c = n;
  }
  r->frames = r->frames_inline;
  r->keys = r->keys_inline;
  r->chunks = NULL;
  r->depth = 0;
  r->nkeys = 0;
}

const char *gw_json_reader_error(const gw_json_reader *r, size_t *line, size_t *column) {
  if (r->error == 0) {
    return NULL;
  }
  /* Counted only for an error: lines by '\n', columns in characters (UTF-8 lead bytes), the
   * offending character included, as jansson counted them. */
  size_t ln = 1, col = 0;
  const char *at = r->start + r->error_offset;
  for (const char *s = r->start; s < at; s++) {
    if (*s == '\n') {
      ln++;
      col = 0;
    } else if (((unsigned char)*s & 0xC0) != 0x80) {
      col++;
    }
  }
  if (at < r->end) {
    col++;
  }
  if (line != NULL) {
    *line = ln;
  }
  if (column != NULL) {
    *column = col;
  }
  return r->error_reason;
}

/* ---- bytes ---- */

static inline const char *gw_json_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
    p++;
  }
  return p;
}

/* Describes the byte at p (or the end) for a message. */
static void gw_json_describe(const gw_json_reader *r, const char *p, char out[24]) {
  if (p >= r->end) {
    snprintf(out, 24, "end of input");
  } else if ((unsigned char)*p >= 0x21 && (unsigned char)*p < 0x7F) {
    snprintf(out, 24, "'%c'", *p);
  } else {
    snprintf(out, 24, "byte 0x%02x", (unsigned char)*p);
  }
}

static int gw_json_unexpected(gw_json_reader *r, const char *p, const char *expected) {
  char what[24];
  gw_json_describe(r, p, what);
  return gw_json_fail(r, p, -EINVAL, "%s expected, found %s", expected, what);
}

/*
 * Length of the valid UTF-8 sequence starting at p (2..4 bytes; p[0] >= 0x80), or 0: RFC 3629
 * (no overlong forms, no surrogates, at most U+10FFFF).
 */
static size_t gw_json_utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n) {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

static int gw_json_hex4(const char *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (uint32_t)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (uint32_t)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (uint32_t)(c - 'A' + 10);
    } else {
      return -1;
    }
  }
  *out = v;
  return 0;
}

/* Bytes a string loop may pass without a closer look: printable ASCII but '"' and '\\'. */
static const unsigned char gw_json_plain[256] = {
#define GW_R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    GW_R16(0), GW_R16(0), /* 0x00-0x1F: control bytes */
    1,         1,         0,         1,         1, 1, 1, 1,
    1,         1,         1,         1,         1, 1, 1, 1, /* 0x20-0x2F, '"' */
    GW_R16(1), GW_R16(1),                                   /* 0x30-0x4F */
    1,         1,         1,         1,         1, 1, 1, 1,
    1,         1,         1,         1,         0, 1, 1, 1, /* 0x50-0x5F, '\\' */
    GW_R16(1), GW_R16(1),                                   /* 0x60-0x7F */
    GW_R16(0), GW_R16(0), GW_R16(0), GW_R16(0),             /* 0x80-0xBF */
    GW_R16(0), GW_R16(0), GW_R16(0), GW_R16(0),             /* 0xC0-0xFF */
#undef GW_R16
};

/* Decodes the escapes of a string whose raw bytes [s, e) were checked by the first pass. */
static int gw_json_decode(gw_json_reader *r, const char *s, const char *e, gw_json_str *out) {
  char *d = gw_json_alloc(r, (size_t)(e - s) + 1);
  if (d == NULL) {
    return gw_json_fail(r, s, -ENOMEM, "out of memory decoding a string");
  }
  char *o = d;
  while (s < e) {
    if (*s != '\\') {
      *o++ = *s++;
      continue;
    }
    const char *esc = s;
    char c = s[1];
    s += 2;
    switch (c) {
    case 'b':
      *o++ = '\b';
      break;
    case 'f':
      *o++ = '\f';
      break;
    case 'n':
      *o++ = '\n';
      break;
    case 'r':
      *o++ = '\r';
      break;
    case 't':
      *o++ = '\t';
      break;
    case 'u': {
      uint32_t cp = 0, lo = 0;
      (void)gw_json_hex4(s, &cp); /* checked by the first pass */
      s += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (e - s >= 6 && s[0] == '\\' && s[1] == 'u' && gw_json_hex4(s + 2, &lo) == 0 &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          s += 6;
        } else {
          return gw_json_fail(r, esc, -EINVAL,
                              "invalid \\u escape: high surrogate %04X without a low surrogate",
                              cp);
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return gw_json_fail(r, esc, -EINVAL, "invalid \\u escape: lone low surrogate %04X", cp);
      } else if (cp == 0) {
        return gw_json_fail(r, esc, -EINVAL, "\\u0000 is not allowed in strings");
      }
      if (cp < 0x80) {
        *o++ = (char)cp;
      } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
      } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
      }
      break;
    }
    default: /* '"', '\\', '/' */
      *o++ = c;
      break;
    }
  }
  *o = '\0';
  out->ptr = d;
  out->len = (size_t)(o - d);
  return 0;
}

/* Reads a string; r->p is at its opening quote. */
static int gw_json_string(gw_json_reader *r, gw_json_str *out) {
  const char *s = r->p + 1, *p = s, *end = r->end;
  bool escaped = false;
  for (;;) {
    while (p < end && gw_json_plain[(unsigned char)*p]) {
      p++;
    }
    if (p >= end) {
      return gw_json_fail(r, p, -EINVAL, "unterminated string");
    }
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      break;
    }
    if (c == '\\') {
      escaped = true;
      if (end - p < 2) {
        return gw_json_fail(r, end, -EINVAL, "unterminated string");
      }
      char x = p[1];
      if (x == 'u') {
        uint32_t cp;
        if (end - p < 6 || gw_json_hex4(p + 2, &cp) != 0) {
          return gw_json_fail(r, p, -EINVAL, "invalid \\u escape: 4 hex digits expected");
        }
        p += 6;
      } else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' ||
                 x == 'r' || x == 't') {
        p += 2;
      } else {
        return gw_json_fail(r, p, -EINVAL, "invalid escape in string");
      }
    } else if (c < 0x20) {
      return gw_json_fail(r, p, -EINVAL, "control character 0x%02x in string (escape it)", c);
    } else {
      size_t n = gw_json_utf8_len((const unsigned char *)p, (const unsigned char *)end);
      if (n == 0) {
        return gw_json_fail(r, p, -EINVAL, "invalid UTF-8 byte 0x%02x", c);
      }
      p += n;
    }
  }
  r->p = p + 1;
  if (!escaped) {
    out->ptr = s;
    out->len = (size_t)(p - s);
    return 0;
  }
  return gw_json_decode(r, s, p, out);
}

/* Reads a number; r->p is at its first byte ('-' or a digit). */
static int gw_json_number(gw_json_reader *r, gw_json_value *v) {
  const char *s = r->p, *p = s, *end = r->end;
  bool neg = false;
  if (*p == '-') {
    neg = true;
    p++;
  }
  if (p >= end || *p < '0' || *p > '9') {
    return gw_json_fail(r, p, -EINVAL, "invalid number: a digit must follow '-'");
  }
  /* Accumulated negatively, so that INT64_MIN fits. */
  int64_t acc = 0;
  bool overflow = false;
  if (*p == '0') {
    p++;
    if (p < end && *p >= '0' && *p <= '9') {
      return gw_json_fail(r, p, -EINVAL, "invalid number: leading zero");
    }
  } else {
    while (p < end && *p >= '0' && *p <= '9') {
      int d = *p - '0';
      if (acc < (INT64_MIN + d) / 10) {
        overflow = true;
      } else {
        acc = acc * 10 - d;
      }
      p++;
    }
  }
  bool real = false;
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9') {
      return gw_json_fail(r, p, -EINVAL, "invalid number: a digit must follow '.'");
    }
    while (p < end && *p >= '0' && *p <= '9') {
      p++;
    }
    real = true;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) {
      p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
      return gw_json_fail(r, p, -EINVAL, "invalid number: a digit must follow the exponent");
    }
    while (p < end && *p >= '0' && *p <= '9') {
      p++;
    }
    real = true;
  }
  if (!real) {
    if (overflow || (!neg && acc == INT64_MIN)) {
      return gw_json_fail(r, s, -EINVAL, "integer out of the 64-bit range");
    }
    v->type = GW_JSON_INTEGER;
    v->integer = neg ? acc : -acc;
    r->p = p;
    return 0;
  }
  /* strtod needs a terminated copy; reals are rare in events. The text has the JSON grammar,
   * which strtod reads the same in the "C" locale goodwill runs in (see the header on why
   * that holds). */
  size_t n = (size_t)(p - s);
  char small[64];
  char *copy = n < sizeof(small) ? small : gw_json_alloc(r, n + 1);
  if (copy == NULL) {
    return gw_json_fail(r, s, -ENOMEM, "out of memory reading a number");
  }
  memcpy(copy, s, n);
  copy[n] = '\0';
  double d = strtod(copy, NULL);
  if (isinf(d)) {
    return gw_json_fail(r, s, -EINVAL, "number out of the range of a double");
  }
  v->type = GW_JSON_REAL;
  v->real = d;
  r->p = p;
  return 0;
}

/* ---- containers ---- */

static int gw_json_push(gw_json_reader *r, bool is_object) {
  if (r->depth == r->frames_cap) {
    size_t cap = r->frames_cap * 2;
    gw_json_frame *f = gw_json_malloc(r, cap * sizeof(*f));
    if (f == NULL) {
      return gw_json_fail(r, r->p, -ENOMEM, "out of memory for nesting");
    }
    memcpy(f, r->frames, r->depth * sizeof(*f));
    if (r->frames != r->frames_inline) {
      gw_json_mfree(r, r->frames);
    }
    r->frames = f;
    r->frames_cap = cap;
  }
  gw_json_frame *f = &r->frames[r->depth++];
  f->first_key = r->nkeys;
  f->table = NULL;
  f->table_cap = 0;
  f->is_object = is_object;
  f->has_member = false;
  f->value_pending = false;
  return 0;
}

static void gw_json_pop(gw_json_reader *r) {
  gw_json_frame *f = &r->frames[--r->depth];
  gw_json_mfree(r, f->table);
  f->table = NULL;
  r->nkeys = f->first_key;
}

int gw_json_read(gw_json_reader *r, gw_json_value *v) {
  if (r->error != 0) {
    return r->error;
  }
  if (r->depth == 0) {
    if (r->root_read) {
      return gw_json_fail(r, r->p, -EINVAL, "no value expected here");
    }
    r->root_read = true;
  } else {
    gw_json_frame *f = &r->frames[r->depth - 1];
    if (!f->value_pending) {
      return gw_json_fail(r, r->p, -EINVAL, "no value expected here");
    }
    f->value_pending = false;
  }
  const char *p = gw_json_ws(r->p, r->end);
  r->p = p;
  if (r->depth >= GW_JSON_MAX_DEPTH) {
    return gw_json_fail(r, p, -EINVAL, "nested deeper than %d levels", GW_JSON_MAX_DEPTH);
  }
  if (p >= r->end) {
    return gw_json_unexpected(r, p, "a value");
  }
  if (r->depth == 0 && r->root_container && *p != '{' && *p != '[') {
    return gw_json_unexpected(r, p, "'{' or '['");
  }
  switch (*p) {
  case '"':
    v->type = GW_JSON_STRING;
    return gw_json_string(r, &v->str);
  case '{':
  case '[':
    v->type = *p == '{' ? GW_JSON_OBJECT : GW_JSON_ARRAY;
    r->p = p + 1;
    return gw_json_push(r, *p == '{');
  case 't':
    if (r->end - p >= 4 && memcmp(p, "true", 4) == 0) {
      v->type = GW_JSON_TRUE;
      r->p = p + 4;
      return 0;
    }
    break;
  case 'f':
    if (r->end - p >= 5 && memcmp(p, "false", 5) == 0) {
      v->type = GW_JSON_FALSE;
      r->p = p + 5;
      return 0;
    }
    break;
  case 'n':
    if (r->end - p >= 4 && memcmp(p, "null", 4) == 0) {
      v->type = GW_JSON_NULL;
      r->p = p + 4;
      return 0;
    }
    break;
  default:
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
      return gw_json_number(r, v);
    }
    break;
  }
  return gw_json_unexpected(r, p, "a value");
}

/* Keys keep 32 bits of their hash: the high half folded into the low. */
static uint32_t gw_json_fold(uint64_t h) {
  return (uint32_t)(h ^ (h >> 32));
}

/* For the linear duplicate check of small objects: a cheap first comparison (FNV-1a). */
static uint32_t gw_json_hash(const char *s, size_t n) {
  return gw_json_fold(gw_fnv64(s, n));
}

/* For the hash index of objects with many keys: SipHash-1-3 keyed with the caller's secret,
 * so a client cannot choose keys that all land in one slot and make the duplicate check
 * quadratic (FNV-1a collisions are easy to compute offline; jansson seeds its hash for the
 * same reason). */
static uint32_t gw_json_siphash(const uint64_t key[2], const char *s, size_t n) {
  return gw_json_fold(gw_siphash13(key, s, n));
}

static bool gw_json_key_eq(const gw_json_key *k, const gw_json_str *s, uint32_t hash) {
  return k->hash == hash && k->len == s->len && memcmp(k->ptr, s->ptr, s->len) == 0;
}

/* The index of an object with many keys is its own probe array of 32-bit key indexes, not a
 * gw_hash_table: its memory must come from the reader's allocator (gw_json_reader_set_
 * allocator), the keys array it points into moves when it grows (so items would be indexes
 * disguised as pointers), and a slot is 4 bytes instead of 16. Measured with a
 * gw_hash_table in its place: objects of 20 to 1,000 keys read about 10% slower, of 10,000
 * keys twice as slow. */

/* Inserts key index ki into the frame's hash index (which has room). */
static void gw_json_table_put(gw_json_reader *r, gw_json_frame *f, size_t ki) {
  size_t mask = f->table_cap - 1;
  size_t i = r->keys[ki].hash & mask;
  while (f->table[i] != 0) {
    i = (i + 1) & mask;
  }
  f->table[i] = (uint32_t)(ki + 1);
}

static int gw_json_table_grow(gw_json_reader *r, gw_json_frame *f) {
  size_t cap = f->table_cap != 0 ? f->table_cap * 2 : 4 * GW_JSON_LINEAR_KEYS;
  uint32_t *t = gw_json_malloc(r, cap * sizeof(*t));
  if (t == NULL) {
    return gw_json_fail(r, r->p, -ENOMEM, "out of memory for object keys");
  }
  memset(t, 0, cap * sizeof(*t));
  if (f->table == NULL) {
    /* From here on this object's keys carry the keyed hash instead of FNV-1a. */
    for (size_t k = f->first_key; k < r->nkeys; k++) {
      r->keys[k].hash = gw_json_siphash(r->hash_key, r->keys[k].ptr, r->keys[k].len);
    }
  }
  gw_json_mfree(r, f->table);
  f->table = t;
  f->table_cap = cap;
  for (size_t k = f->first_key; k < r->nkeys; k++) {
    gw_json_table_put(r, f, k);
  }
  return 0;
}

/* Remembers a key of the innermost object; a syntax error when the object has it already. */
static int gw_json_add_key(gw_json_reader *r, gw_json_frame *f, const gw_json_str *key,
                           const char *at) {
  if (key->len > UINT32_MAX || r->nkeys >= UINT32_MAX - 1) {
    return gw_json_fail(r, at, -EINVAL, "object key or key count too large");
  }
  uint32_t hash = f->table == NULL ? gw_json_hash(key->ptr, key->len)
                                   : gw_json_siphash(r->hash_key, key->ptr, key->len);
  size_t n = r->nkeys - f->first_key;
  if (f->table == NULL) {
    for (size_t k = f->first_key; k < r->nkeys; k++) {
      if (gw_json_key_eq(&r->keys[k], key, hash)) {
        return gw_json_fail(r, at, -EINVAL, "duplicate object key");
      }
    }
  } else {
    size_t mask = f->table_cap - 1;
    for (size_t i = hash & mask; f->table[i] != 0; i = (i + 1) & mask) {
      if (gw_json_key_eq(&r->keys[f->table[i] - 1], key, hash)) {
        return gw_json_fail(r, at, -EINVAL, "duplicate object key");
      }
    }
  }
  if (r->nkeys == r->keys_cap) {
    size_t cap = r->keys_cap * 2;
    gw_json_key *k = gw_json_malloc(r, cap * sizeof(*k));
    if (k == NULL) {
      return gw_json_fail(r, at, -ENOMEM, "out of memory for object keys");
    }
    memcpy(k, r->keys, r->nkeys * sizeof(*k));
    if (r->keys != r->keys_inline) {
      gw_json_mfree(r, r->keys);
    }
    r->keys = k;
    r->keys_cap = cap;
  }
  r->keys[r->nkeys++] = (gw_json_key){.ptr = key->ptr, .len = (uint32_t)key->len, .hash = hash};
  n++;
  if (f->table == NULL) {
    return n > GW_JSON_LINEAR_KEYS ? gw_json_table_grow(r, f) : 0;
  }
  if (2 * n > f->table_cap) {
    return gw_json_table_grow(r, f); /* indexes every key, the new one included */
  }
  gw_json_table_put(r, f, r->nkeys - 1);
  return 0;
}

int gw_json_next(gw_json_reader *r, gw_json_str *key) {
  if (r->error != 0) {
    return r->error;
  }
  if (r->depth == 0) {
    return gw_json_fail(r, r->p, -EINVAL, "no container is open");
  }
  gw_json_frame *f = &r->frames[r->depth - 1];
  if (f->value_pending) {
    return gw_json_fail(r, r->p, -EINVAL, "the member's value was not read");
  }
  const char close = f->is_object ? '}' : ']';
  const char *p = gw_json_ws(r->p, r->end);
  if (p < r->end && *p == close) {
    r->p = p + 1;
    gw_json_pop(r);
    return 0;
  }
  if (f->has_member) {
    if (p >= r->end || *p != ',') {
      r->p = p;
      return gw_json_unexpected(r, p, f->is_object ? "',' or '}'" : "',' or ']'");
    }
    p = gw_json_ws(p + 1, r->end);
  }
  const bool first = !f->has_member;
  f->has_member = true;
  if (f->is_object) {
    if (p >= r->end || *p != '"') {
      r->p = p;
      return gw_json_unexpected(r, p, first ? "a key or '}'" : "an object key (a string)");
    }
    const char *at = p;
    r->p = p;
    gw_json_str k;
    int rc = gw_json_string(r, &k);
    if (rc != 0) {
      return rc;
    }
    if ((rc = gw_json_add_key(r, f, &k, at)) != 0) {
      return rc;
    }
    p = gw_json_ws(r->p, r->end);
    if (p >= r->end || *p != ':') {
      r->p = p;
      return gw_json_unexpected(r, p, "':'");
    }
    p++;
    if (key != NULL) {
      *key = k;
    }
  }
  r->p = p;
  f->value_pending = true;
  return 1;
}

int gw_json_skip_to(gw_json_reader *r, size_t depth) {
  while (r->error == 0 && r->depth > depth) {
    gw_json_frame *f = &r->frames[r->depth - 1];
    gw_json_value v;
    if (f->value_pending) {
      (void)gw_json_read(r, &v); /* a container pushes a frame the loop then finishes */
    } else {
      (void)gw_json_next(r, NULL);
    }
  }
  return r->error;
}

int gw_json_skip(gw_json_reader *r) {
  size_t depth = r->depth;
  gw_json_value v;
  int rc = gw_json_read(r, &v);
  if (rc != 0) {
    return rc;
  }
  return gw_json_skip_to(r, depth);
}

int gw_json_finish(gw_json_reader *r) {
  if (r->error != 0) {
    return r->error;
  }
  if (!r->root_read || r->depth != 0) {
    return gw_json_fail(r, r->p, -EINVAL, "the root value is not complete");
  }
  const char *p = gw_json_ws(r->p, r->end);
  if (p < r->end) {
    return gw_json_unexpected(r, p, "end of input");
  }
  r->p = p;
  return 0;
}
