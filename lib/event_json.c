/*
 * gw_event_parse_json: request bodies (one JSON object, a JSON array of objects, or NDJSON)
 * to InteractionEvents. jansson does the JSON syntax (it validates UTF-8, rejects "\u0000"
 * and, with JSON_REJECT_DUPLICATES, duplicate keys, which would otherwise make the last value
 * silently win); this file maps the objects field by field, strictly: an unknown field is an
 * error, so a misspelt field never silently loses data. The semantic rules (ids, ranges,
 * limits, UTF-8) are gw_event_validate's, shared with the protobuf sources.
 */
#include "goodwill/event.h"
#include "goodwill/ids.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_JSON_FLAGS JSON_REJECT_DUPLICATES

/* ---- allocation ----
 *
 * jansson allocates every value, key and hashtable of a parsed document separately, and frees
 * them one by one on json_decref: malloc and free took about a third of the CPU of an NDJSON
 * request. While this file parses a body, jansson's allocations on this thread come from a
 * bump arena instead, which is dropped as a whole when the body is done. jansson's allocator
 * hooks are process-wide, so they are installed once and fall back to malloc and free on any
 * thread (and at any time) no arena is active; a pointer is given back to free only when it
 * lies outside the active arena's blocks. No jansson value outlives the parse: the mapping
 * copies every string it keeps with malloc.
 */

/* The first block lives on the parsing function's stack: one ~800-byte event needs about
 * 5 KiB, and a malloc of a large block per request costs more than it saves. */
#define GW_ARENA_STACK_BYTES ((size_t)32 * 1024)

typedef struct gw_arena_block {
  struct gw_arena_block *next;
  size_t size_bytes; /* usable bytes after the header */
  size_t used_bytes;
  bool on_stack;
  max_align_t data[];
} gw_arena_block;

typedef struct gw_arena {
  gw_arena_block *head; /* the block being filled; older (smaller) blocks follow */
} gw_arena;

static _Thread_local gw_arena *gw_arena_active;

static bool gw_arena_owns(const gw_arena *a, const void *p) {
  for (const gw_arena_block *b = a->head; b != NULL; b = b->next) {
    const char *start = (const char *)b->data;
    if ((const char *)p >= start && (const char *)p < start + b->size_bytes) {
      return true;
    }
  }
  return false;
}

static void *gw_arena_malloc(size_t n) {
  gw_arena *a = gw_arena_active;
  if (a == NULL) {
    return malloc(n);
  }
  const size_t align = _Alignof(max_align_t);
  n = (n + align - 1) & ~(align - 1);
  gw_arena_block *b = a->head;
  if (b == NULL || b->size_bytes - b->used_bytes < n) {
    size_t size = b != NULL ? b->size_bytes * 2 : GW_ARENA_STACK_BYTES;
    while (size < n) {
      size *= 2;
    }
    gw_arena_block *nb = malloc(sizeof(*nb) + size);
    if (nb == NULL) {
      return NULL; /* jansson reports it as an allocation failure */
    }
    nb->next = b;
    nb->size_bytes = size;
    nb->used_bytes = 0;
    nb->on_stack = false;
    a->head = nb;
    b = nb;
  }
  void *p = (char *)b->data + b->used_bytes;
  b->used_bytes += n;
  return p;
}

static void gw_arena_free(void *p) {
  gw_arena *a = gw_arena_active;
  if (p == NULL || (a != NULL && gw_arena_owns(a, p))) {
    return;
  }
  free(p);
}

static void gw_arena_install(void) {
  json_set_alloc_funcs(gw_arena_malloc, gw_arena_free);
}

static void gw_arena_free_blocks(gw_arena_block *b) {
  while (b != NULL) {
    gw_arena_block *n = b->next;
    if (!b->on_stack) {
      free(b);
    }
    b = n;
  }
}

/* Keeps only the largest block (the newest) for the next item, empty. */
static void gw_arena_reset(gw_arena *a) {
  gw_arena_block *b = a->head;
  gw_arena_free_blocks(b->next);
  b->next = NULL;
  b->used_bytes = 0;
}

static void gw_arena_release(gw_arena *a) {
  gw_arena_free_blocks(a->head);
  a->head = NULL;
}

/* ---- errors ---- */

/*
 * Copies src into dst (dst_size bytes) for an error message that will be shown to a client:
 * control bytes become '?', and a multi-byte UTF-8 character is copied whole or not at all,
 * so a truncated field name stays valid UTF-8.
 */
static void gw_copy_printable(char *dst, size_t dst_size, const char *src) {
  size_t o = 0;
  const unsigned char *s = (const unsigned char *)src;
  while (*s != '\0') {
    size_t n = 1;
    if (*s >= 0xF0) {
      n = 4;
    } else if (*s >= 0xE0) {
      n = 3;
    } else if (*s >= 0xC0) {
      n = 2;
    }
    if (o + n >= dst_size) {
      break;
    }
    size_t k = 0;
    while (k < n && s[k] != '\0') {
      k++;
    }
    if (k < n || *s < 0x20 || *s == 0x7F || (*s >= 0x80 && *s < 0xC0)) {
      /* A stray continuation byte, a control byte or a cut sequence. */
      dst[o++] = '?';
      s += (k < n) ? k : 1;
      continue;
    }
    memcpy(dst + o, s, n);
    o += n;
    s += n;
  }
  dst[o] = '\0';
}

static int gw_jfail(gw_event_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gw_jfail(gw_event_error *e, const char *field, const char *fmt, ...) {
  gw_copy_printable(e->field, sizeof(e->field), field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* "closed." + "handle_ms"; the key comes from the client and may be long or odd. */
static void gw_field_join(char out[96], const char *prefix, const char *key) {
  char joined[160];
  size_t p = strlen(prefix);
  if (p >= sizeof(joined)) {
    p = sizeof(joined) - 1;
  }
  memcpy(joined, prefix, p);
  size_t k = strnlen(key, sizeof(joined) - 1 - p);
  memcpy(joined + p, key, k);
  joined[p + k] = '\0';
  gw_copy_printable(out, 96, joined);
}

/*
 * Where a value sits in an event ("closed.transcript[2].text"). The dotted path is only needed
 * for an error message, so it is kept in parts and rendered by gw_jfail_at on failure: building
 * it for every field of every valid event cost more than parsing some of the fields.
 */
typedef struct gw_jpath {
  const char *base; /* "", "turn", "closed", "survey" or "closed.transcript" */
  long index;       /* >= 0: base is followed by "[index]" */
  const char *key;  /* NULL: the path is base[index] itself */
} gw_jpath;

static void gw_jpath_render(const gw_jpath *p, char out[96]) {
  char head[48];
  if (p->index >= 0) {
    snprintf(head, sizeof(head), "%s[%ld]", p->base, p->index);
  } else {
    snprintf(head, sizeof(head), "%s", p->base);
  }
  if (p->key == NULL) {
    gw_copy_printable(out, 96, head);
    return;
  }
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "%s%s", head, head[0] != '\0' ? "." : "");
  gw_field_join(out, prefix, p->key);
}

static int gw_jfail_at(gw_event_error *e, const gw_jpath *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gw_jfail_at(gw_event_error *e, const gw_jpath *p, const char *fmt, ...) {
  gw_jpath_render(p, e->field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int gw_unknown(gw_event_error *e, const gw_jpath *p) {
  return gw_jfail_at(e, p, "unknown field");
}

/* ---- values ---- */

static int gw_json_string(const gw_jpath *field, json_t *v, bool nullable, char **out,
                          gw_event_error *e) {
  if (nullable && json_is_null(v)) {
    return 0;
  }
  if (!json_is_string(v)) {
    return gw_jfail_at(e, field, "must be a string");
  }
  /* An empty string stays protobuf's default: absent and empty mean the same in proto3, and
   * gw_event_validate reports a required one as "missing or empty". */
  size_t n = json_string_length(v);
  if (n == 0) {
    return 0;
  }
  char *s = malloc(n + 1);
  if (s == NULL) {
    abort();
  }
  memcpy(s, json_string_value(v), n);
  s[n] = '\0';
  *out = s;
  return 0;
}

static int gw_json_uint(const gw_jpath *field, json_t *v, long long max, uint64_t *out,
                        gw_event_error *e) {
  if (!json_is_integer(v)) {
    return gw_jfail_at(e, field, "must be an integer 0..%lld", max);
  }
  json_int_t x = json_integer_value(v);
  if (x < 0 || x > max) {
    return gw_jfail_at(e, field, "must be an integer 0..%lld, got %" JSON_INTEGER_FORMAT, max, x);
  }
  *out = (uint64_t)x;
  return 0;
}

/* Howard Hinnant's days_from_civil ("chrono-Compatible Low-Level Date Algorithms",
 * public domain): days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t gw_days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static bool gw_digits(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/*
 * RFC 3339 date-time (section 5.6): YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' and 'Z'
 * in either case. The fraction is truncated to milliseconds. A leap second (:60) is accepted
 * and lands on the following second, as POSIX time has no leap seconds.
 */
static int gw_parse_rfc3339(const char *s, size_t len, int64_t *out_ms) {
  int year, mon, day, hour, min, sec;
  if (len < 20 || !gw_digits(s, 4, &year) || s[4] != '-' || !gw_digits(s + 5, 2, &mon) ||
      s[7] != '-' || !gw_digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
      !gw_digits(s + 11, 2, &hour) || s[13] != ':' || !gw_digits(s + 14, 2, &min) || s[16] != ':' ||
      !gw_digits(s + 17, 2, &sec)) {
    return -EINVAL;
  }
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60) {
    return -EINVAL;
  }
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > mdays[mon - 1] + (mon == 2 && leap ? 1 : 0)) {
    return -EINVAL;
  }
  size_t i = 19;
  int frac_ms = 0;
  if (s[i] == '.') {
    i++;
    size_t start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (i - start < 3) {
        frac_ms = frac_ms * 10 + (s[i] - '0');
      }
      i++;
    }
    size_t ndig = i - start;
    if (ndig == 0) {
      return -EINVAL;
    }
    for (size_t k = ndig; k < 3; k++) {
      frac_ms *= 10;
    }
  }
  int offset_min = 0;
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < len && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (len - i < 6 || !gw_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
        !gw_digits(s + i + 4, 2, &om) || oh > 23 || om > 59) {
      return -EINVAL;
    }
    offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return -EINVAL;
  }
  if (i != len) {
    return -EINVAL;
  }
  int64_t days = gw_days_from_civil(year, mon, day);
  int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - (int64_t)offset_min * 60;
  *out_ms = secs * 1000 + frac_ms;
  return 0;
}

static int gw_json_time(json_t *v, int64_t *out_ms, gw_event_error *e) {
  static const char *const expect =
      "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z or an integer of epoch ms";
  if (json_is_integer(v)) {
    *out_ms = json_integer_value(v);
    return 0;
  }
  if (!json_is_string(v) ||
      gw_parse_rfc3339(json_string_value(v), json_string_length(v), out_ms) != 0) {
    return gw_jfail(e, "occurred_at", "%s", expect);
  }
  return 0;
}

/* ---- objects ---- */

/* base and index name the turn: "turn", or "closed.transcript" and its index. */
static int gw_json_turn(const char *base, long index, json_t *obj, Goodwill__V1__Turn **out,
                        gw_event_error *e) {
  gw_jpath field = {.base = base, .index = index, .key = NULL};
  if (!json_is_object(obj)) {
    return gw_jfail_at(e, &field, "must be an object");
  }
  Goodwill__V1__Turn *t = malloc(sizeof(*t));
  if (t == NULL) {
    abort();
  }
  goodwill__v1__turn__init(t);
  *out = t; /* owned by the caller's message from here on, also on error */
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    field.key = key;
    uint64_t x = 0;
    int rc = 0;
    if (strcmp(key, "seq") == 0) {
      if ((rc = gw_json_uint(&field, v, UINT32_MAX, &x, e)) == 0) {
        t->seq = (uint32_t)x;
      }
    } else if (strcmp(key, "speaker") == 0) {
      if (!json_is_string(v) || gw_event_speaker_parse(json_string_value(v), &t->speaker) != 0) {
        rc = gw_jfail_at(e, &field, "must be one of customer, agent, bot");
      }
    } else if (strcmp(key, "text") == 0) {
      rc = gw_json_string(&field, v, false, &t->text, e);
    } else if (strcmp(key, "offset_ms") == 0) {
      if ((rc = gw_json_uint(&field, v, GW_EVENT_MAX_DURATION_MS, &x, e)) == 0) {
        t->offset_ms = x;
      }
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int gw_json_closed(json_t *obj, const gw_event_limits *lim,
                          Goodwill__V1__InteractionClosed *c, gw_event_error *e) {
  const char *key;
  json_t *v;
  gw_jpath field = {.base = "closed", .index = -1, .key = NULL};
  json_object_foreach(obj, key, v) {
    field.key = key;
    uint64_t x = 0;
    int rc = 0;
    if (strcmp(key, "handle_ms") == 0) {
      rc = gw_json_uint(&field, v, GW_EVENT_MAX_DURATION_MS, &c->handle_ms, e);
    } else if (strcmp(key, "wait_ms") == 0) {
      rc = gw_json_uint(&field, v, GW_EVENT_MAX_DURATION_MS, &c->wait_ms, e);
    } else if (strcmp(key, "talk_ms") == 0) {
      rc = gw_json_uint(&field, v, GW_EVENT_MAX_DURATION_MS, &c->talk_ms, e);
    } else if (strcmp(key, "hold_ms") == 0) {
      rc = gw_json_uint(&field, v, GW_EVENT_MAX_DURATION_MS, &c->hold_ms, e);
    } else if (strcmp(key, "transfers") == 0) {
      if ((rc = gw_json_uint(&field, v, GW_EVENT_MAX_TRANSFERS, &x, e)) == 0) {
        c->transfers = (uint32_t)x;
      }
    } else if (strcmp(key, "resolved") == 0) {
      if (json_is_boolean(v)) {
        c->resolved_presence_case = GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED;
        c->resolved = json_is_true(v);
      } else if (!json_is_null(v)) {
        rc = gw_jfail_at(e, &field, "must be true or false");
      }
    } else if (strcmp(key, "transcript") == 0) {
      if (!json_is_array(v)) {
        rc = gw_jfail_at(e, &field, "must be an array of turns");
      } else if (json_array_size(v) > lim->max_turns) {
        /* Checked before allocating anything for the turns. */
        rc = gw_jfail_at(e, &field, "too many turns: %zu, at most %zu", json_array_size(v),
                         lim->max_turns);
      } else if (json_array_size(v) > 0) {
        size_t n = json_array_size(v);
        c->transcript = calloc(n, sizeof(*c->transcript));
        if (c->transcript == NULL) {
          abort();
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
          rc = gw_json_turn("closed.transcript", (long)i, json_array_get(v, i), &c->transcript[i],
                            e);
          if (c->transcript[i] != NULL) {
            c->n_transcript = i + 1;
          }
        }
      }
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int gw_json_survey(json_t *obj, Goodwill__V1__SurveyResponse *s, gw_event_error *e) {
  const char *key;
  json_t *v;
  gw_jpath field = {.base = "survey", .index = -1, .key = NULL};
  json_object_foreach(obj, key, v) {
    field.key = key;
    int rc = 0;
    if (strcmp(key, "likelihood_to_recommend") == 0) {
      uint64_t x = 0;
      if ((rc = gw_json_uint(&field, v, 10, &x, e)) == 0) {
        s->likelihood_presence_case =
            GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
        s->likelihood_to_recommend = (uint32_t)x;
      }
    } else if (strcmp(key, "comment") == 0) {
      rc = gw_json_string(&field, v, true, &s->comment, e);
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int gw_json_body(const char *key, json_t *v, const gw_event_limits *lim,
                        Goodwill__V1__InteractionEvent *ev, gw_event_error *e) {
  if (ev->body_case != GOODWILL__V1__INTERACTION_EVENT__BODY__NOT_SET) {
    return gw_jfail(e, key, "only one body is allowed: closed, survey or turn");
  }
  if (strcmp(key, "turn") == 0) {
    ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
    return gw_json_turn("turn", -1, v, &ev->turn, e);
  }
  if (!json_is_object(v)) {
    return gw_jfail(e, key, "must be an object");
  }
  if (strcmp(key, "closed") == 0) {
    ev->closed = malloc(sizeof(*ev->closed));
    if (ev->closed == NULL) {
      abort();
    }
    goodwill__v1__interaction_closed__init(ev->closed);
    ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
    return gw_json_closed(v, lim, ev->closed, e);
  }
  ev->survey = malloc(sizeof(*ev->survey));
  if (ev->survey == NULL) {
    abort();
  }
  goodwill__v1__survey_response__init(ev->survey);
  ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  return gw_json_survey(v, ev->survey, e);
}

static int gw_json_event(json_t *obj, const gw_event_limits *lim,
                         Goodwill__V1__InteractionEvent *ev, gw_event_error *e) {
  const char *key;
  json_t *v;
  gw_jpath field = {.base = "", .index = -1, .key = NULL};
  json_object_foreach(obj, key, v) {
    int rc = 0;
    field.key = key;
    if (strcmp(key, "event_id") == 0) {
      rc = gw_json_string(&field, v, true, &ev->event_id, e);
    } else if (strcmp(key, "tenant_id") == 0) {
      rc = gw_json_string(&field, v, false, &ev->tenant_id, e);
    } else if (strcmp(key, "team_id") == 0) {
      rc = gw_json_string(&field, v, false, &ev->team_id, e);
    } else if (strcmp(key, "agent_id") == 0) {
      rc = gw_json_string(&field, v, false, &ev->agent_id, e);
    } else if (strcmp(key, "interaction_id") == 0) {
      rc = gw_json_string(&field, v, false, &ev->interaction_id, e);
    } else if (strcmp(key, "channel") == 0) {
      if (!json_is_string(v) || gw_event_channel_parse(json_string_value(v), &ev->channel) != 0) {
        rc = gw_jfail(e, key, "must be one of voice, chat, email, messaging, social");
      }
    } else if (strcmp(key, "occurred_at") == 0) {
      rc = gw_json_time(v, &ev->occurred_at_ms, e);
    } else if (strcmp(key, "closed") == 0 || strcmp(key, "survey") == 0 ||
               strcmp(key, "turn") == 0) {
      rc = gw_json_body(key, v, lim, ev, e);
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

/* ---- the batch ---- */

static void *gw_grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) {
    return p;
  }
  size_t n = *cap ? *cap * 2 : 16;
  while (n < need) {
    n *= 2;
  }
  /* need is bounded by max_events, checked before any item is parsed. */
  void *q = realloc(p, n * elem);
  if (q == NULL) {
    abort();
  }
  *cap = n;
  return q;
}

typedef struct gw_batch_builder {
  gw_event_batch *batch;
  size_t events_cap;
  size_t index_cap;
  size_t errors_cap;
  const gw_event_limits *lim;
  int64_t now_ms;
} gw_batch_builder;

static void gw_add_error(gw_batch_builder *bb, const gw_event_error *e) {
  gw_event_batch *b = bb->batch;
  b->errors = gw_grow(b->errors, &bb->errors_cap, b->nerrors + 1, sizeof(*b->errors));
  b->errors[b->nerrors++] = *e;
}

static void gw_add_item(gw_batch_builder *bb, json_t *item, size_t line) {
  gw_event_batch *b = bb->batch;
  gw_event_error e;
  memset(&e, 0, sizeof(e));
  size_t index = b->nitems++;
  if (!json_is_object(item)) {
    gw_jfail(&e, "", "must be a JSON object");
    e.index = index;
    e.line = line;
    gw_add_error(bb, &e);
    return;
  }
  Goodwill__V1__InteractionEvent *ev = malloc(sizeof(*ev));
  if (ev == NULL) {
    abort();
  }
  goodwill__v1__interaction_event__init(ev);
  int rc = gw_json_event(item, bb->lim, ev, &e);
  if (rc == 0) {
    ev->received_at_ms = bb->now_ms;
    if (ev->event_id[0] == '\0') {
      char *id = malloc(GW_ID_HEX_LEN + 1);
      if (id == NULL) {
        abort();
      }
      gw_event_assign_id(ev, id);
    }
    rc = gw_event_validate(ev, bb->lim, bb->now_ms, &e);
  }
  e.index = index;
  e.line = line;
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    gw_add_error(bb, &e);
    return;
  }
  b->events = gw_grow(b->events, &bb->events_cap, b->nevents + 1, sizeof(*b->events));
  b->event_index = gw_grow(b->event_index, &bb->index_cap, b->nevents + 1, sizeof(*b->event_index));
  b->events[b->nevents] = ev;
  b->event_index[b->nevents] = index;
  b->nevents++;
}

/* Fills the single whole-body error and returns rc. */
static int gw_body_error(gw_batch_builder *bb, int rc, size_t index, size_t line, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

static int gw_body_error(gw_batch_builder *bb, int rc, size_t index, size_t line, const char *fmt,
                         ...) {
  gw_event_error e;
  memset(&e, 0, sizeof(e));
  e.index = index;
  e.line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.reason, sizeof(e.reason), fmt, ap);
  va_end(ap);
  gw_add_error(bb, &e);
  return rc;
}

static bool gw_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* jansson's message may quote the offending input: keep it printable. */
static void gw_json_error_text(const json_error_t *je, char *out, size_t out_size) {
  gw_copy_printable(out, out_size, je->text);
}

static int gw_parse_whole(gw_batch_builder *bb, const char *body, size_t len) {
  json_error_t je;
  json_t *root = json_loadb(body, len, GW_JSON_FLAGS, &je);
  if (root == NULL) {
    char text[JSON_ERROR_TEXT_LENGTH];
    gw_json_error_text(&je, text, sizeof(text));
    return gw_body_error(bb, -EINVAL, 0, je.line > 0 ? (size_t)je.line : 0,
                         "invalid JSON at line %d, column %d: %s", je.line, je.column, text);
  }
  int rc = 0;
  if (json_is_array(root)) {
    size_t n = json_array_size(root);
    if (n > bb->lim->max_events) {
      bb->batch->nitems = n;
      rc = gw_body_error(bb, -E2BIG, bb->lim->max_events, 0, "too many events: %zu, at most %zu", n,
                         bb->lim->max_events);
    } else {
      for (size_t i = 0; i < n; i++) {
        gw_add_item(bb, json_array_get(root, i), 0);
      }
    }
  } else {
    gw_add_item(bb, root, 0);
  }
  json_decref(root);
  return rc;
}

/* A non-blank line of an NDJSON body, without its newline or a trailing '\r'. */
typedef struct gw_line {
  const char *start;
  size_t len;
  size_t number; /* 1-based */
} gw_line;

static bool gw_next_line(const char **cursor, const char *end, size_t *number, gw_line *out) {
  while (*cursor < end) {
    const char *s = *cursor;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl != NULL ? nl : end;
    *cursor = nl != NULL ? nl + 1 : end;
    ++*number;
    const char *t = s;
    while (t < e && gw_is_space(*t)) {
      t++;
    }
    if (t == e) {
      continue; /* blank line: skipped, but counted for the line numbers */
    }
    out->start = s;
    out->len = (size_t)(e - s);
    if (out->len > 0 && s[out->len - 1] == '\r') {
      out->len--;
    }
    out->number = *number;
    return true;
  }
  return false;
}

static int gw_parse_lines(gw_batch_builder *bb, const char *body, size_t len) {
  const char *end = body + len;
  /* Count first, so an oversized body is refused before any item is parsed. */
  const char *cur = body;
  size_t number = 0, count = 0;
  gw_line line;
  while (gw_next_line(&cur, end, &number, &line)) {
    if (count == bb->lim->max_events) {
      size_t first_over_line = line.number;
      count++;
      while (gw_next_line(&cur, end, &number, &line)) {
        count++;
      }
      bb->batch->nitems = count;
      return gw_body_error(bb, -E2BIG, bb->lim->max_events, first_over_line,
                           "too many events: %zu, at most %zu", count, bb->lim->max_events);
    }
    count++;
  }
  cur = body;
  number = 0;
  while (gw_next_line(&cur, end, &number, &line)) {
    json_error_t je;
    json_t *item = json_loadb(line.start, line.len, GW_JSON_FLAGS, &je);
    if (item == NULL) {
      char text[JSON_ERROR_TEXT_LENGTH];
      gw_json_error_text(&je, text, sizeof(text));
      gw_event_error e;
      memset(&e, 0, sizeof(e));
      e.index = bb->batch->nitems++;
      e.line = line.number;
      snprintf(e.reason, sizeof(e.reason), "invalid JSON at column %d: %s", je.column, text);
      gw_add_error(bb, &e);
      continue;
    }
    gw_add_item(bb, item, line.number);
    json_decref(item);
    if (gw_arena_active != NULL) {
      gw_arena_reset(gw_arena_active); /* nothing of this line's document is left */
    }
  }
  return 0;
}

/*
 * AUTO: a body starting with '[' is an array; a body of several non-blank lines whose first
 * one is a complete object on its own ("{...}") is NDJSON; anything else is one JSON value
 * (so a pretty-printed single object, whose first line is "{", is read whole).
 */
static gw_event_format gw_detect(const char *body, size_t len) {
  size_t i = 0;
  while (i < len && gw_is_space(body[i])) {
    i++;
  }
  if (i < len && body[i] == '[') {
    return GW_EVENT_FORMAT_JSON;
  }
  const char *cur = body;
  size_t number = 0;
  gw_line first, second;
  if (!gw_next_line(&cur, body + len, &number, &first) ||
      !gw_next_line(&cur, body + len, &number, &second)) {
    return GW_EVENT_FORMAT_JSON;
  }
  size_t a = 0, b = first.len;
  while (a < b && gw_is_space(first.start[a])) {
    a++;
  }
  while (b > a && gw_is_space(first.start[b - 1])) {
    b--;
  }
  if (b - a >= 2 && first.start[a] == '{' && first.start[b - 1] == '}') {
    return GW_EVENT_FORMAT_NDJSON;
  }
  return GW_EVENT_FORMAT_JSON;
}

static int gw_parse_body(const char *body, size_t len, gw_event_format format,
                         const gw_event_limits *lim, int64_t now_ms, gw_event_batch *batch) {
  memset(batch, 0, sizeof(*batch));
  gw_event_limits defaults;
  if (lim == NULL) {
    gw_event_limits_default(&defaults);
    lim = &defaults;
  }
  gw_batch_builder bb = {.batch = batch, .lim = lim, .now_ms = now_ms};
  if (body == NULL) {
    len = 0;
  }
  size_t i = 0;
  while (i < len && gw_is_space(body[i])) {
    i++;
  }
  if (i == len) {
    return gw_body_error(&bb, -EINVAL, 0, 0, "empty body");
  }
  if (format == GW_EVENT_FORMAT_AUTO) {
    format = gw_detect(body, len);
  }
  if (format == GW_EVENT_FORMAT_NDJSON) {
    return gw_parse_lines(&bb, body, len);
  }
  return gw_parse_whole(&bb, body, len);
}

int gw_event_parse_json(const char *body, size_t len, gw_event_format format,
                        const gw_event_limits *lim, int64_t now_ms, gw_event_batch *batch) {
  static pthread_once_t installed = PTHREAD_ONCE_INIT;
  pthread_once(&installed, gw_arena_install);
  union {
    gw_arena_block block;
    max_align_t align;
    char bytes[sizeof(gw_arena_block) + GW_ARENA_STACK_BYTES];
  } first;
  first.block.next = NULL;
  first.block.size_bytes = GW_ARENA_STACK_BYTES;
  first.block.used_bytes = 0;
  first.block.on_stack = true;
  gw_arena arena = {.head = &first.block};
  gw_arena *outer = gw_arena_active;
  gw_arena_active = &arena;
  int rc = gw_parse_body(body, len, format, lim, now_ms, batch);
  gw_arena_active = outer;
  gw_arena_release(&arena);
  return rc;
}
