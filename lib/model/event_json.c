/*
 * gw_event_parse_json: request bodies (one JSON object, a JSON array of objects, or NDJSON)
 * to InteractionEvents, in one pass: lib/json_reader.c reads the JSON text strictly (its
 * header lists the grammar decisions: valid UTF-8 only, no "\u0000", no lone surrogates, no
 * duplicate keys, which would otherwise make the last value silently win, no leading zeros,
 * integers within 64 bits, nesting at most 2048 deep) and this file fills the protobuf-c
 * structs while it reads, without a tree in between. The mapping is strict: an unknown field is
 * an error, so a misspelt field never silently loses data. The semantic rules (ids, ranges,
 * limits, UTF-8) are gw_event_validate's, shared with the protobuf sources.
 *
 * Errors keep the order a tree walk had: the first failing field of an item, in the order of
 * the item's keys. After a field error the rest of the item is still read for syntax (not
 * mapped): a syntax error anywhere in a JSON body makes the whole body unreadable, and one in
 * an NDJSON line makes that line's item unreadable, whatever field errors came before it.
 *
 * Everything the events keep (structs, arrays, strings copied from the body) comes from the
 * batch's arena (gw_event_batch_alloc) and goes with it; keys and values that are only
 * compared are read where they lie in the body.
 */
#include "goodwill/event.h"
#include "goodwill/ids.h"
#include "goodwill/json_reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static void gw_field_join(char out[96], const char *prefix, const char *key, size_t key_len) {
  char joined[160];
  size_t p = strlen(prefix);
  if (p >= sizeof(joined)) {
    p = sizeof(joined) - 1;
  }
  memcpy(joined, prefix, p);
  size_t k = key_len < sizeof(joined) - 1 - p ? key_len : sizeof(joined) - 1 - p;
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
  const char *base;       /* "", "turn", "closed", "survey" or "closed.transcript" */
  long index;             /* >= 0: base is followed by "[index]" */
  const gw_json_str *key; /* NULL: the path is base[index] itself */
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
  gw_field_join(out, prefix, p->key->ptr, p->key->len);
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

/* Result of a field that failed: a field error (e is filled) or a syntax error (the reader
 * has it). */
static bool gw_syntax_failed(const gw_json_reader *r) {
  return r->error != 0;
}

/* A string the event keeps: copied into the batch's arena, NUL-terminated. */
static int gw_json_keep(gw_event_batch *mem, const gw_jpath *field, const gw_json_value *v,
                        bool nullable, char **out, gw_event_error *e) {
  if (nullable && v->type == GW_JSON_NULL) {
    return 0;
  }
  if (v->type != GW_JSON_STRING) {
    return gw_jfail_at(e, field, "must be a string");
  }
  /* An empty string stays protobuf's default: absent and empty mean the same in proto3, and
   * gw_event_validate reports a required one as "missing or empty". */
  size_t n = v->str.len;
  if (n == 0) {
    return 0;
  }
  char *s = gw_event_batch_alloc(mem, n + 1);
  memcpy(s, v->str.ptr, n);
  s[n] = '\0';
  *out = s;
  return 0;
}

static int gw_json_uint(const gw_jpath *field, const gw_json_value *v, long long max, uint64_t *out,
                        gw_event_error *e) {
  if (v->type != GW_JSON_INTEGER) {
    return gw_jfail_at(e, field, "must be an integer 0..%lld", max);
  }
  int64_t x = v->integer;
  if (x < 0 || x > max) {
    return gw_jfail_at(e, field, "must be an integer 0..%lld, got %" PRId64, max, x);
  }
  *out = (uint64_t)x;
  return 0;
}

/* A short enum name as a C string for the *_parse functions; false when it cannot be one. */
static bool gw_json_name(const gw_json_value *v, char out[16]) {
  if (v->type != GW_JSON_STRING || v->str.len >= 16) {
    return false;
  }
  memcpy(out, v->str.ptr, v->str.len);
  out[v->str.len] = '\0';
  return true;
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

static int gw_json_time(const gw_json_value *v, int64_t *out_ms, gw_event_error *e) {
  static const char *const expect =
      "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z or an integer of epoch ms";
  if (v->type == GW_JSON_INTEGER) {
    *out_ms = v->integer;
    return 0;
  }
  if (v->type != GW_JSON_STRING || gw_parse_rfc3339(v->str.ptr, v->str.len, out_ms) != 0) {
    return gw_jfail(e, "occurred_at", "%s", expect);
  }
  return 0;
}

/* ---- objects ----
 *
 * Each function below is called right after the reader returned the value it maps (for an
 * object: after its '{'). It returns 0 or -EINVAL: a field error when the reader has no error
 * (e says which field and why; the caller skips the rest of the item), else a syntax error.
 */

static inline bool gw_key_is(const gw_json_str *k, const char *name, size_t name_len) {
  return k->len == name_len && memcmp(k->ptr, name, name_len) == 0;
}
#define GW_KEY(k, name) gw_key_is((k), name, sizeof(name) - 1)

/* base and index name the turn: "turn", or "closed.transcript" and its index. */
static int gw_json_turn(gw_json_reader *r, gw_event_batch *mem, const char *base, long index,
                        const gw_json_value *obj, Goodwill__V1__Turn **out, gw_event_error *e) {
  gw_jpath field = {.base = base, .index = index, .key = NULL};
  if (obj->type != GW_JSON_OBJECT) {
    return gw_jfail_at(e, &field, "must be an object");
  }
  Goodwill__V1__Turn *t = gw_event_batch_alloc(mem, sizeof(*t));
  goodwill__v1__turn__init(t);
  *out = t; /* owned by the caller's message from here on, also on error */
  gw_json_str key;
  field.key = &key;
  int m;
  while ((m = gw_json_next(r, &key)) == 1) {
    gw_json_value v;
    if (gw_json_read(r, &v) != 0) {
      return -EINVAL;
    }
    uint64_t x = 0;
    int rc = 0;
    char name[16];
    if (GW_KEY(&key, "seq")) {
      if ((rc = gw_json_uint(&field, &v, UINT32_MAX, &x, e)) == 0) {
        t->seq = (uint32_t)x;
      }
    } else if (GW_KEY(&key, "speaker")) {
      if (!gw_json_name(&v, name) || gw_event_speaker_parse(name, &t->speaker) != 0) {
        rc = gw_jfail_at(e, &field, "must be one of customer, agent, bot");
      }
    } else if (GW_KEY(&key, "text")) {
      rc = gw_json_keep(mem, &field, &v, false, &t->text, e);
    } else if (GW_KEY(&key, "offset_ms")) {
      if ((rc = gw_json_uint(&field, &v, GW_EVENT_MAX_DURATION_MS, &x, e)) == 0) {
        t->offset_ms = x;
      }
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return m < 0 ? -EINVAL : 0;
}

/* The members of closed.transcript (its '[' was read). All of them are counted, also after
 * an error, so that "too many turns" wins over an error in one of the turns, as when the count
 * was checked first; turns past the limit are only checked for syntax, never allocated. */
static int gw_json_transcript(gw_json_reader *r, gw_event_batch *mem, const gw_event_limits *lim,
                              const gw_jpath *field, Goodwill__V1__InteractionClosed *c,
                              gw_event_error *e) {
  const size_t depth = gw_json_depth(r);
  size_t n = 0, cap = 0;
  int rc = 0, m;
  while ((m = gw_json_next(r, NULL)) == 1) {
    n++;
    if (rc != 0 || n > lim->max_turns) {
      if (gw_json_skip(r) != 0) {
        return -EINVAL;
      }
      continue;
    }
    gw_json_value v;
    if (gw_json_read(r, &v) != 0) {
      return -EINVAL;
    }
    if (c->n_transcript == cap) {
      /* cap is bounded by max_turns; the outgrown array stays in the arena (at most as much
       * again as the final one). */
      size_t grown_cap = cap != 0 ? cap * 2 : 8;
      Goodwill__V1__Turn **grown = gw_event_batch_alloc(mem, grown_cap * sizeof(*grown));
      if (cap != 0) {
        memcpy(grown, c->transcript, cap * sizeof(*grown));
      }
      c->transcript = grown;
      cap = grown_cap;
    }
    Goodwill__V1__Turn *t = NULL;
    rc = gw_json_turn(r, mem, "closed.transcript", (long)(n - 1), &v, &t, e);
    if (t != NULL) {
      c->transcript[c->n_transcript++] = t;
    }
    if (rc != 0 && (gw_syntax_failed(r) || gw_json_skip_to(r, depth) != 0)) {
      return -EINVAL;
    }
  }
  if (m < 0) {
    return -EINVAL;
  }
  if (n > lim->max_turns) {
    return gw_jfail_at(e, field, "too many turns: %zu, at most %zu", n, lim->max_turns);
  }
  return rc;
}

static int gw_json_closed(gw_json_reader *r, gw_event_batch *mem, const gw_event_limits *lim,
                          Goodwill__V1__InteractionClosed *c, gw_event_error *e) {
  gw_json_str key;
  gw_jpath field = {.base = "closed", .index = -1, .key = &key};
  int m;
  while ((m = gw_json_next(r, &key)) == 1) {
    gw_json_value v;
    if (gw_json_read(r, &v) != 0) {
      return -EINVAL;
    }
    uint64_t x = 0;
    int rc = 0;
    if (GW_KEY(&key, "handle_ms")) {
      rc = gw_json_uint(&field, &v, GW_EVENT_MAX_DURATION_MS, &c->handle_ms, e);
    } else if (GW_KEY(&key, "wait_ms")) {
      rc = gw_json_uint(&field, &v, GW_EVENT_MAX_DURATION_MS, &c->wait_ms, e);
    } else if (GW_KEY(&key, "talk_ms")) {
      rc = gw_json_uint(&field, &v, GW_EVENT_MAX_DURATION_MS, &c->talk_ms, e);
    } else if (GW_KEY(&key, "hold_ms")) {
      rc = gw_json_uint(&field, &v, GW_EVENT_MAX_DURATION_MS, &c->hold_ms, e);
    } else if (GW_KEY(&key, "transfers")) {
      if ((rc = gw_json_uint(&field, &v, GW_EVENT_MAX_TRANSFERS, &x, e)) == 0) {
        c->transfers = (uint32_t)x;
      }
    } else if (GW_KEY(&key, "resolved")) {
      if (v.type == GW_JSON_TRUE || v.type == GW_JSON_FALSE) {
        c->resolved_presence_case = GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED;
        c->resolved = v.type == GW_JSON_TRUE;
      } else if (v.type != GW_JSON_NULL) {
        rc = gw_jfail_at(e, &field, "must be true or false");
      }
    } else if (GW_KEY(&key, "transcript")) {
      if (v.type != GW_JSON_ARRAY) {
        rc = gw_jfail_at(e, &field, "must be an array of turns");
      } else {
        rc = gw_json_transcript(r, mem, lim, &field, c, e);
      }
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return m < 0 ? -EINVAL : 0;
}

static int gw_json_survey(gw_json_reader *r, gw_event_batch *mem, Goodwill__V1__SurveyResponse *s,
                          gw_event_error *e) {
  gw_json_str key;
  gw_jpath field = {.base = "survey", .index = -1, .key = &key};
  int m;
  while ((m = gw_json_next(r, &key)) == 1) {
    gw_json_value v;
    if (gw_json_read(r, &v) != 0) {
      return -EINVAL;
    }
    int rc = 0;
    if (GW_KEY(&key, "likelihood_to_recommend")) {
      uint64_t x = 0;
      if ((rc = gw_json_uint(&field, &v, 10, &x, e)) == 0) {
        s->likelihood_presence_case =
            GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
        s->likelihood_to_recommend = (uint32_t)x;
      }
    } else if (GW_KEY(&key, "comment")) {
      rc = gw_json_keep(mem, &field, &v, true, &s->comment, e);
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return m < 0 ? -EINVAL : 0;
}

/* name is "closed", "survey" or "turn". */
static int gw_json_body(gw_json_reader *r, gw_event_batch *mem, const char *name,
                        const gw_json_value *v, const gw_event_limits *lim,
                        Goodwill__V1__InteractionEvent *ev, gw_event_error *e) {
  if (ev->body_case != GOODWILL__V1__INTERACTION_EVENT__BODY__NOT_SET) {
    return gw_jfail(e, name, "only one body is allowed: closed, survey or turn");
  }
  if (name[0] == 't') {
    ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
    return gw_json_turn(r, mem, "turn", -1, v, &ev->turn, e);
  }
  if (v->type != GW_JSON_OBJECT) {
    return gw_jfail(e, name, "must be an object");
  }
  if (name[0] == 'c') {
    ev->closed = gw_event_batch_alloc(mem, sizeof(*ev->closed));
    goodwill__v1__interaction_closed__init(ev->closed);
    ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
    return gw_json_closed(r, mem, lim, ev->closed, e);
  }
  ev->survey = gw_event_batch_alloc(mem, sizeof(*ev->survey));
  goodwill__v1__survey_response__init(ev->survey);
  ev->body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  return gw_json_survey(r, mem, ev->survey, e);
}

static int gw_json_event(gw_json_reader *r, gw_event_batch *mem, const gw_event_limits *lim,
                         Goodwill__V1__InteractionEvent *ev, gw_event_error *e) {
  gw_json_str key;
  gw_jpath field = {.base = "", .index = -1, .key = &key};
  int m;
  while ((m = gw_json_next(r, &key)) == 1) {
    gw_json_value v;
    if (gw_json_read(r, &v) != 0) {
      return -EINVAL;
    }
    int rc = 0;
    char name[16];
    if (GW_KEY(&key, "event_id")) {
      rc = gw_json_keep(mem, &field, &v, true, &ev->event_id, e);
    } else if (GW_KEY(&key, "tenant_id")) {
      rc = gw_json_keep(mem, &field, &v, false, &ev->tenant_id, e);
    } else if (GW_KEY(&key, "team_id")) {
      rc = gw_json_keep(mem, &field, &v, false, &ev->team_id, e);
    } else if (GW_KEY(&key, "agent_id")) {
      rc = gw_json_keep(mem, &field, &v, false, &ev->agent_id, e);
    } else if (GW_KEY(&key, "interaction_id")) {
      rc = gw_json_keep(mem, &field, &v, false, &ev->interaction_id, e);
    } else if (GW_KEY(&key, "channel")) {
      if (!gw_json_name(&v, name) || gw_event_channel_parse(name, &ev->channel) != 0) {
        rc = gw_jfail(e, "channel", "must be one of voice, chat, email, messaging, social");
      }
    } else if (GW_KEY(&key, "occurred_at")) {
      rc = gw_json_time(&v, &ev->occurred_at_ms, e);
    } else if (GW_KEY(&key, "closed")) {
      rc = gw_json_body(r, mem, "closed", &v, lim, ev, e);
    } else if (GW_KEY(&key, "survey")) {
      rc = gw_json_body(r, mem, "survey", &v, lim, ev, e);
    } else if (GW_KEY(&key, "turn")) {
      rc = gw_json_body(r, mem, "turn", &v, lim, ev, e);
    } else {
      rc = gw_unknown(e, &field);
    }
    if (rc != 0) {
      return rc;
    }
  }
  return m < 0 ? -EINVAL : 0;
}

/* ---- the batch ---- */

/* Grows an array of the batch's arena; the outgrown copy stays in the arena (at most as much
 * again as the final array). need is bounded by max_events, checked before any item is
 * parsed (NDJSON) or as items are counted (arrays). */
static void *gw_grow(gw_event_batch *mem, void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) {
    return p;
  }
  size_t n = *cap ? *cap * 2 : 4;
  while (n < need) {
    n *= 2;
  }
  void *q = gw_event_batch_alloc(mem, n * elem);
  if (*cap > 0) {
    memcpy(q, p, *cap * elem);
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
  b->errors = gw_grow(b, b->errors, &bb->errors_cap, b->nerrors + 1, sizeof(*b->errors));
  b->errors[b->nerrors++] = *e;
}

/*
 * Maps one item whose value v was just read (item_depth: the reader's depth before it) and
 * validates it. Returns the event, or NULL with e filled; either way the item has been read
 * to its end (unless the reader failed, which the caller checks).
 */
static Goodwill__V1__InteractionEvent *gw_map_item(gw_batch_builder *bb, gw_json_reader *r,
                                                   const gw_json_value *v, size_t item_depth,
                                                   gw_event_error *e) {
  if (v->type != GW_JSON_OBJECT) {
    gw_jfail(e, "", "must be a JSON object");
    (void)gw_json_skip_to(r, item_depth);
    return NULL;
  }
  /* An item that fails leaves what it had in the arena until the batch goes. */
  Goodwill__V1__InteractionEvent *ev = gw_event_batch_alloc(bb->batch, sizeof(*ev));
  goodwill__v1__interaction_event__init(ev);
  int rc = gw_json_event(r, bb->batch, bb->lim, ev, e);
  if (rc != 0) {
    (void)gw_json_skip_to(r, item_depth);
    return NULL;
  }
  ev->received_at_ms = bb->now_ms;
  if (ev->event_id[0] == '\0') {
    gw_event_assign_id(ev, gw_event_batch_alloc(bb->batch, GW_ID_HEX_LEN + 1));
  }
  if (gw_event_validate(ev, bb->lim, bb->now_ms, e) != 0) {
    return NULL;
  }
  return ev;
}

/* Records the next item: its event, or (ev NULL) its error. */
static void gw_commit(gw_batch_builder *bb, Goodwill__V1__InteractionEvent *ev, gw_event_error *e,
                      size_t line) {
  gw_event_batch *b = bb->batch;
  size_t index = b->nitems++;
  if (ev == NULL) {
    e->index = index;
    e->line = line;
    gw_add_error(bb, e);
    return;
  }
  b->events = gw_grow(b, b->events, &bb->events_cap, b->nevents + 1, sizeof(*b->events));
  b->event_index =
      gw_grow(b, b->event_index, &bb->index_cap, b->nevents + 1, sizeof(*b->event_index));
  b->events[b->nevents] = ev;
  b->event_index[b->nevents] = index;
  b->nevents++;
}

/* Drops every item recorded so far: the body turned out unreadable or too large as a whole. */
static void gw_clear(gw_batch_builder *bb) {
  gw_event_batch *b = bb->batch;
  b->nevents = 0;
  b->nerrors = 0;
  b->nitems = 0;
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

/* The reader ran out of memory: the body is not at fault, and no part of it is kept. */
static int gw_out_of_memory(gw_batch_builder *bb, size_t line) {
  gw_clear(bb);
  return gw_body_error(bb, -ENOMEM, 0, line, "out of memory reading the body");
}

static int gw_parse_whole(gw_batch_builder *bb, const char *body, size_t len) {
  gw_json_reader r;
  gw_json_reader_init(&r, body, len, true);
  gw_json_reader_set_hash_key(&r, bb->lim->json_hash_key);
  gw_json_value root;
  size_t count = 0;
  bool over = false;
  gw_event_error e;
  if (gw_json_read(&r, &root) == 0) {
    if (root.type == GW_JSON_ARRAY) {
      /* Items are mapped as they come; a syntax error later in the body drops them all. */
      while (gw_json_next(&r, NULL) == 1) {
        if (++count > bb->lim->max_events) {
          over = true; /* the rest is only counted and checked for syntax */
          if (gw_json_skip(&r) != 0) {
            break;
          }
          continue;
        }
        gw_json_value v;
        if (gw_json_read(&r, &v) != 0) {
          break;
        }
        memset(&e, 0, sizeof(e));
        Goodwill__V1__InteractionEvent *ev = gw_map_item(bb, &r, &v, 1, &e);
        if (gw_syntax_failed(&r)) {
          break; /* the event (if any) stays in the arena, unused */
        }
        gw_commit(bb, ev, &e, 0);
      }
    } else {
      memset(&e, 0, sizeof(e));
      Goodwill__V1__InteractionEvent *ev = gw_map_item(bb, &r, &root, 0, &e);
      if (!gw_syntax_failed(&r)) {
        gw_commit(bb, ev, &e, 0);
      }
    }
  }
  int rc = 0;
  int frc = gw_json_finish(&r);
  if (frc == -ENOMEM) {
    rc = gw_out_of_memory(bb, 0);
  } else if (frc != 0) {
    size_t line = 0, column = 0;
    char why[96];
    gw_copy_printable(why, sizeof(why), gw_json_reader_error(&r, &line, &column));
    gw_clear(bb);
    rc = gw_body_error(bb, -EINVAL, 0, line, "invalid JSON at line %zu, column %zu: %s", line,
                       column, why);
  } else if (over) {
    gw_clear(bb);
    bb->batch->nitems = count;
    rc = gw_body_error(bb, -E2BIG, bb->lim->max_events, 0, "too many events: %zu, at most %zu",
                       count, bb->lim->max_events);
  }
  gw_json_reader_free(&r);
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
    gw_json_reader r;
    gw_json_reader_init(&r, line.start, line.len, true);
    gw_json_reader_set_hash_key(&r, bb->lim->json_hash_key);
    gw_event_error e;
    memset(&e, 0, sizeof(e));
    gw_json_value v;
    Goodwill__V1__InteractionEvent *ev = NULL;
    if (gw_json_read(&r, &v) == 0) {
      ev = gw_map_item(bb, &r, &v, 0, &e);
    }
    int frc = gw_json_finish(&r);
    if (frc == -ENOMEM) {
      gw_json_reader_free(&r);
      return gw_out_of_memory(bb, line.number);
    }
    if (frc != 0) {
      ev = NULL;
      size_t column = 0;
      char why[96];
      gw_copy_printable(why, sizeof(why), gw_json_reader_error(&r, NULL, &column));
      memset(&e, 0, sizeof(e));
      snprintf(e.reason, sizeof(e.reason), "invalid JSON at column %zu: %s", column, why);
    }
    gw_json_reader_free(&r);
    gw_commit(bb, ev, &e, line.number);
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
  return gw_parse_body(body, len, format, lim, now_ms, batch);
}
