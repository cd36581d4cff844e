/*
 * The JSON-lines contract of goodwill-score (docs/FEELING_MODEL.md, "goodwill-score"): one
 * input line in, one JSON line out. jansson defines the output: the input object, its members
 * kept in order, with the scores appended, dumped compact with six significant digits.
 *
 * Parsing and dumping with jansson costs several times more than scoring a short text, so the
 * common line shape takes a fast path: a flat object whose strings need no escapes, whose
 * numbers are plain integers and which has a "text" string and none of the keys the scorer
 * adds. Such a line's members are copied byte for byte (jansson would dump them exactly so),
 * and the scores are formatted as jansson formats them. Every other line, valid or not, goes
 * through jansson. fuzz/fuzz_feeling.c checks that both paths give the same bytes.
 */
#include "goodwill/buf.h"
#include "goodwill/feeling.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_FAST_MAX_MEMBERS 16

/* ---------------------------------------------------------------------------------------- */
/* Explanations (goodwill/feeling.h, gw_feeling_explain_json; docs/FEELING_MODEL.md,
 * "Explanations"). */

static size_t gw_json_utf8_len(const unsigned char *s, size_t n);

/* A JSON string of n bytes of text: invalid UTF-8 (which the tokenizer skips between words of
 * a phrase) becomes U+FFFD, since a JSON string cannot carry it. */
static json_t *gw_json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j)
    return j;
  gw_buf b = GW_BUF_INIT;
  for (size_t i = 0; i < n;) {
    size_t l = s[i] ? gw_json_utf8_len((const unsigned char *)s + i, n - i) : 0;
    if (l == 0) {
      gw_buf_puts(&b, "\xef\xbf\xbd");
      i++;
    } else {
      gw_buf_append(&b, s + i, l);
      i += l;
    }
  }
  j = json_stringn(b.data ? b.data : "", b.len);
  gw_buf_free(&b);
  return j;
}

/* Non-zero categories only, unrounded (evidence is often far below a thousandth). */
static json_t *gw_json_explain_categories(const double f[GW_FEELING_COUNT]) {
  json_t *o = json_object();
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    if (f[c] > 0)
      json_object_set_new(o, gw_feeling_category_name((gw_feeling_category)c), json_real(f[c]));
  return o;
}

static json_t *gw_json_explain_step(const gw_feeling_explain *x, const gw_explain_step *st) {
  json_t *o = json_object();
  json_object_set_new(o, "rule", json_string(gw_explain_rule_name(st->rule)));
  if (st->cue_len > 0)
    json_object_set_new(o, "cue", gw_json_text(x->arena + st->cue, st->cue_len));
  if (st->rule == GW_EXPLAIN_MODIFIER)
    json_object_set_new(o, "boost", json_real(st->boost));
  if (st->factor != 0)
    json_object_set_new(o, "factor", json_real(st->factor));
  if (st->rule == GW_EXPLAIN_EXCLAMATION || st->rule == GW_EXPLAIN_QUESTION_MARKS ||
      st->rule == GW_EXPLAIN_RESIGNATION)
    json_object_set_new(o, "count", json_integer(st->count));
  json_object_set_new(o, "delta", json_real(st->delta));
  return o;
}

static const char *const gw_json_empathy_kinds[] = {"apology", "acknowledging", "reassuring",
                                                    "ownership", "thanking"};

static json_t *gw_json_explain_utterance(const gw_feeling_explain *x,
                                         const gw_explain_utterance *u) {
  json_t *o = json_object();
  json_t *hits = json_array();
  for (size_t i = u->first_hit; i < u->first_hit + u->nhits && i < x->nhits; i++) {
    const gw_explain_hit *h = &x->hits[i];
    json_t *jh = json_object();
    json_object_set_new(jh, "text", gw_json_text(x->arena + h->text, h->text_len));
    json_object_set_new(jh, "entry", gw_json_text(x->arena + h->entry, h->entry_len));
    json_object_set_new(jh, "valence", json_real(h->valence));
    if (h->line > 0)
      json_object_set_new(jh, "line", json_integer(h->line));
    if (h->nsteps > 0) {
      json_t *rules = json_array();
      for (size_t k = h->first_step; k < h->first_step + h->nsteps && k < x->nsteps; k++)
        json_array_append_new(rules, gw_json_explain_step(x, &x->steps[k]));
      json_object_set_new(jh, "rules", rules);
    }
    json_object_set_new(jh, "contribution", json_real(h->contribution));
    json_t *f = gw_json_explain_categories(h->feelings);
    if (json_object_size(f) > 0)
      json_object_set_new(jh, "feelings", f);
    else
      json_decref(f);
    if (u->conversation) {
      json_object_set_new(jh, "role", json_string(gw_explain_role_name(h->role)));
      if (h->felt_rules) {
        json_t *fr = json_array();
        for (unsigned bit = 1; bit <= GW_EXPLAIN_FELT_SARCASM; bit <<= 1)
          if (h->felt_rules & bit)
            json_array_append_new(fr, json_string(gw_explain_felt_rule_name(bit)));
        json_object_set_new(jh, "felt_rules", fr);
      }
      json_object_set_new(jh, "felt", json_real(h->felt));
    }
    json_array_append_new(hits, jh);
  }
  json_object_set_new(o, "hits", hits);
  if (u->npunct > 0) {
    json_t *p = json_array();
    for (size_t k = u->first_punct; k < u->first_punct + u->npunct && k < x->nsteps; k++)
      json_array_append_new(p, gw_json_explain_step(x, &x->steps[k]));
    json_object_set_new(o, "punctuation", p);
  }
  json_object_set_new(o, "sum", json_real(u->sum));
  json_object_set_new(o, "alpha", json_real(u->alpha));
  json_object_set_new(o, "valence", json_real(u->valence));
  json_t *raw = gw_json_explain_categories(u->feelings_raw);
  if (json_object_size(raw) > 0) {
    json_object_set_new(o, "feelings_raw", raw);
    json_object_set_new(o, "feelings_factor", json_real(u->feelings_factor));
  } else {
    json_decref(raw);
  }
  /* Categories with evidence that the category minimums held back. */
  json_t *held = json_array();
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    if (u->held_back[c]) {
      json_t *jc = json_object();
      json_object_set_new(jc, "category",
                          json_string(gw_feeling_category_name((gw_feeling_category)c)));
      json_object_set_new(jc, "evidence", json_real(u->evidence[c]));
      json_object_set_new(jc, "minimum", json_real(u->min_evidence[c]));
      json_array_append_new(held, jc);
    }
  if (json_array_size(held) > 0)
    json_object_set_new(o, "held_back", held);
  else
    json_decref(held);
  if (u->conversation) {
    json_t *jf = json_object();
    if (u->nfelt_steps > 0) {
      json_t *p = json_array();
      for (size_t k = u->first_felt_step; k < u->first_felt_step + u->nfelt_steps && k < x->nsteps;
           k++)
        json_array_append_new(p, gw_json_explain_step(x, &x->steps[k]));
      json_object_set_new(jf, "rules", p);
    }
    json_object_set_new(jf, "sum", json_real(u->felt_sum));
    json_object_set_new(jf, "valence", json_real(u->felt));
    json_object_set_new(jf, "items", json_integer(u->felt_items));
    json_object_set_new(o, "felt", jf);
  }
  if (u->nempathy > 0) {
    json_t *e = json_array();
    for (size_t k = u->first_empathy; k < u->first_empathy + u->nempathy && k < x->nempathy; k++) {
      const gw_explain_empathy *p = &x->empathy[k];
      json_t *je = json_object();
      json_object_set_new(je, "text", gw_json_text(x->arena + p->text, p->text_len));
      json_object_set_new(je, "kind",
                          json_string(p->kind < 5 ? gw_json_empathy_kinds[p->kind] : "unknown"));
      json_object_set_new(je, "strength", json_real(p->strength));
      json_array_append_new(e, je);
    }
    json_object_set_new(o, "empathy", e);
  }
  return o;
}

/* The explanation as a JSON object, or NULL when it is incomplete (memory ran short). */
static json_t *gw_json_explain(const gw_feeling_explain *x) {
  if (x->failed)
    return NULL;
  if (!x->interaction) {
    if (x->nutterances == 0)
      return NULL;
    return gw_json_explain_utterance(x, &x->utterances[0]);
  }
  json_t *o = json_object();
  json_t *turns = json_array();
  for (size_t i = 0; i < x->nturns; i++) {
    const gw_explain_turn *t = &x->turns[i];
    json_t *jt = json_object();
    json_object_set_new(jt, "turn", json_integer((json_int_t)t->index));
    json_object_set_new(jt, "valence", json_real(t->valence));
    json_object_set_new(jt, "felt", json_real(t->felt));
    json_object_set_new(jt, "felt_any", json_boolean(t->felt_any));
    json_object_set_new(jt, "bare", json_boolean(t->bare));
    if (t->start_weight > 0)
      json_object_set_new(jt, "start_weight", json_real(t->start_weight));
    if (t->start_plain)
      json_object_set_new(jt, "start_plain", json_true());
    if (t->end_weight > 0)
      json_object_set_new(jt, "end_weight", json_real(t->end_weight));
    if (t->end_plain)
      json_object_set_new(jt, "end_plain", json_true());
    if (t->utterance < x->nutterances)
      json_object_set_new(jt, "utterance",
                          gw_json_explain_utterance(x, &x->utterances[t->utterance]));
    json_array_append_new(turns, jt);
  }
  json_object_set_new(o, "customer_turns", turns);
  if (x->nturns > 0) {
    static const char *const rules[] = {"none", "polarity", "change"};
    json_t *c = json_object();
    json_object_set_new(c, "start", json_real(x->start));
    json_object_set_new(c, "end", json_real(x->end));
    json_object_set_new(c, "change", json_real(x->change));
    json_object_set_new(c, "band", json_real(x->band));
    json_object_set_new(c, "start_polarity", json_string(gw_polarity_name(x->start_polarity)));
    json_object_set_new(c, "end_polarity", json_string(gw_polarity_name(x->end_polarity)));
    json_object_set_new(c, "change_min", json_real(x->change_min));
    json_object_set_new(c, "change_direction",
                        json_string(gw_change_direction_name(x->change_direction)));
    json_object_set_new(c, "direction_by",
                        json_string(rules[x->direction_rule < 3 ? x->direction_rule : 0]));
    if (x->all_bare)
      json_object_set_new(c, "all_bare", json_true());
    json_object_set_new(o, "conversation", c);
  }
  static const double weights[GW_EXPLAIN_EMPATHY_KINDS] = {0.25, 0.25, 0.2, 0.2, 0.1};
  json_t *agents = json_array();
  for (unsigned k = 0; k < GW_EXPLAIN_EMPATHY_KINDS; k++) {
    const gw_explain_empathy *p = &x->agent_empathy[k];
    if (p->strength <= 0)
      continue;
    json_t *je = json_object();
    json_object_set_new(je, "turn", json_integer((json_int_t)x->agent_empathy_turn[k]));
    json_object_set_new(je, "text", gw_json_text(x->arena + p->text, p->text_len));
    json_object_set_new(je, "kind", json_string(gw_json_empathy_kinds[k]));
    json_object_set_new(je, "strength", json_real(p->strength));
    json_object_set_new(je, "weight", json_real(weights[k]));
    json_array_append_new(agents, je);
  }
  if (json_array_size(agents) > 0)
    json_object_set_new(o, "agent_empathy", agents);
  else
    json_decref(agents);
  return o;
}

int gw_feeling_explain_json(const gw_feeling_explain *x, gw_buf *out) {
  json_t *o = gw_json_explain(x);
  if (!o)
    return -ENOMEM;
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  json_decref(o);
  if (!s)
    return -ENOMEM;
  gw_buf_puts(out, s);
  free(s);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The jansson path: any line. */

/* Scores are written with three decimals, the resolution of the scored records (milli). */
static double gw_json_milli(double v) {
  return round(v * 1000.0) / 1000.0;
}

static json_t *gw_json_feelings(const double f[GW_FEELING_COUNT]) {
  json_t *o = json_object();
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double v = gw_json_milli(f[c]);
    if (v > 0)
      json_object_set_new(o, gw_feeling_category_name((gw_feeling_category)c), json_real(v));
  }
  return o;
}

/* x: a sink when the line is to be explained, else NULL. */
static void gw_json_score_text(const gw_feeling_model *m, json_t *obj, const char *text, size_t len,
                               gw_feeling_explain *x) {
  gw_utterance_score s;
  gw_feeling_score_utterance_explained(m, text, len, &s, x);
  json_object_set_new(obj, "valence", json_real(gw_json_milli(s.valence)));
  json_object_set_new(obj, "polarity",
                      json_string(gw_polarity_name(gw_feeling_polarity(s.valence))));
  json_object_set_new(obj, "feelings", gw_json_feelings(s.feelings));
  json_object_set_new(obj, "empathy", json_real(gw_json_milli(s.empathy)));
  if (x)
    json_object_set_new(obj, "explain", gw_json_explain(x));
}

/* Returns NULL, or an error message for the object. */
static const char *gw_json_score_turns(const gw_feeling_model *m, json_t *obj, json_t *turns,
                                       char *msg, size_t msglen, gw_feeling_explain *x) {
  if (!json_is_array(turns))
    return "\"turns\" must be an array of {\"speaker\",\"text\"} objects";
  size_t n = json_array_size(turns);
  if (n > GW_FEELING_JSON_MAX_TURNS) {
    snprintf(msg, msglen, "\"turns\" has %zu turns, more than %d", n, GW_FEELING_JSON_MAX_TURNS);
    return msg;
  }
  gw_turn_text *tt = calloc(n ? n : 1, sizeof(*tt));
  if (!tt)
    return "out of memory";
  for (size_t i = 0; i < n; i++) {
    json_t *t = json_array_get(turns, i);
    json_t *sp = json_object_get(t, "speaker");
    json_t *tx = json_object_get(t, "text");
    if (!json_is_object(t)) {
      snprintf(msg, msglen, "turns[%zu]: must be an object", i);
    } else if (!json_is_string(sp)) {
      snprintf(msg, msglen, "turns[%zu].speaker: must be a string", i);
    } else if (!json_is_string(tx)) {
      snprintf(msg, msglen, "turns[%zu].text: must be a string", i);
    } else {
      const char *s = json_string_value(sp);
      if (strcmp(s, "customer") == 0)
        tt[i].speaker = GW_SPEAKER_CUSTOMER;
      else if (strcmp(s, "agent") == 0)
        tt[i].speaker = GW_SPEAKER_AGENT;
      else if (strcmp(s, "bot") == 0)
        tt[i].speaker = GW_SPEAKER_BOT;
      else {
        snprintf(msg, msglen, "turns[%zu].speaker: must be \"customer\", \"agent\" or \"bot\"", i);
        free(tt);
        return msg;
      }
      tt[i].text = json_string_value(tx);
      tt[i].len = json_string_length(tx);
      continue;
    }
    free(tt);
    return msg;
  }
  gw_interaction_feeling f;
  gw_feeling_score_interaction_explained(m, tt, n, &f, x);
  free(tt);
  json_object_set_new(obj, "start", json_real(gw_json_milli(f.start)));
  json_object_set_new(obj, "end", json_real(gw_json_milli(f.end)));
  json_object_set_new(obj, "change", json_real(gw_json_milli(f.change)));
  json_object_set_new(obj, "start_polarity", json_string(gw_polarity_name(f.start_polarity)));
  json_object_set_new(obj, "end_polarity", json_string(gw_polarity_name(f.end_polarity)));
  json_object_set_new(obj, "change_direction",
                      json_string(gw_change_direction_name(f.change_direction)));
  json_object_set_new(obj, "recovered", json_boolean(f.recovered));
  json_object_set_new(obj, "soured", json_boolean(f.soured));
  json_object_set_new(obj, "empathy", json_real(gw_json_milli(f.empathy)));
  json_object_set_new(obj, "customer_turns", json_integer(f.customer_turns));
  json_object_set_new(obj, "agent_turns", json_integer(f.agent_turns));
  json_object_set_new(obj, "has_customer_turns", json_boolean(f.has_customer_turns));
  json_object_set_new(obj, "start_feelings", gw_json_feelings(f.start_feelings));
  json_object_set_new(obj, "end_feelings", gw_json_feelings(f.end_feelings));
  if (x)
    json_object_set_new(obj, "explain", gw_json_explain(x));
  return NULL;
}

/* Scores one line into a JSON object to print (owned by the caller). */
static json_t *gw_json_line_object(const gw_feeling_model *m, const char *line, size_t len,
                                   size_t lineno, gw_feeling_explain *x) {
  char msg[256];
  json_error_t jerr;
  json_t *obj = NULL;
  const char *error = NULL;
  if (len > GW_FEELING_JSON_MAX_LINE_BYTES) {
    snprintf(msg, sizeof(msg), "line longer than %d bytes", GW_FEELING_JSON_MAX_LINE_BYTES);
    error = msg;
  } else if (len == 0) {
    error = "empty line";
  } else {
    obj = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
    if (!obj) {
      snprintf(msg, sizeof(msg), "invalid JSON at column %d: %s", jerr.column, jerr.text);
      error = msg;
    } else if (!json_is_object(obj)) {
      json_decref(obj);
      obj = NULL;
      error = "not a JSON object";
    }
  }
  if (error) {
    json_t *out = json_object();
    json_object_set_new(out, "line", json_integer((json_int_t)lineno));
    json_object_set_new(out, "error", json_string(error));
    return out;
  }
  json_t *text = json_object_get(obj, "text");
  json_t *turns = json_object_get(obj, "turns");
  if (text && turns)
    error = "has both \"text\" and \"turns\": give one";
  else if (text && !json_is_string(text))
    error = "\"text\" must be a string";
  else if (text)
    gw_json_score_text(m, obj, json_string_value(text), json_string_length(text), x);
  else if (turns)
    error = gw_json_score_turns(m, obj, turns, msg, sizeof(msg), x);
  else
    error = "needs \"text\" (a string) or \"turns\" (an array)";
  if (error)
    json_object_set_new(obj, "error", json_string(error));
  return obj;
}

static int gw_json_line_slow(const gw_feeling_model *m, const char *line, size_t len, size_t lineno,
                             gw_feeling_explain *x, gw_buf *out) {
  json_t *obj = gw_json_line_object(m, line, len, lineno, x);
  char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  json_decref(obj);
  if (!s)
    return -ENOMEM;
  gw_buf_puts(out, s);
  free(s);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The fast path: flat objects of plain strings and integers. */

typedef struct gw_span {
  const char *p;
  size_t n;
} gw_span;

static int gw_json_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Length of one well-formed UTF-8 sequence at s (as jansson accepts them: no overlong forms,
 * no surrogates, at most U+10FFFF), or 0. */
static size_t gw_json_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, v = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, v = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, v = c & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  return len;
}

/* A string with no escape and no control character, whose bytes are its value and also
 * jansson's compact dump of it. *i is at the opening quote; on success it is past the closing
 * one and *val spans the value without quotes. */
static int gw_json_plain_string(const char *s, size_t n, size_t *i, gw_span *val) {
  size_t k = *i + 1;
  const size_t start = k;
  while (k < n) {
    unsigned char c = (unsigned char)s[k];
    if (c == '"') {
      val->p = s + start;
      val->n = k - start;
      *i = k + 1;
      return 1;
    }
    if (c == '\\' || c < 0x20)
      return 0;
    if (c < 0x80) {
      k++;
      continue;
    }
    size_t l = gw_json_utf8_len((const unsigned char *)s + k, n - k);
    if (l == 0)
      return 0;
    k += l;
  }
  return 0;
}

/* A value copied verbatim: a plain string, an integer that jansson dumps as written (no "-0",
 * no leading zero, at most 18 digits so it fits json_int_t), true, false or null. */
static int gw_json_plain_value(const char *s, size_t n, size_t *i, gw_span *val, int *is_string,
                               gw_span *str) {
  size_t k = *i;
  *is_string = 0;
  if (s[k] == '"') {
    if (!gw_json_plain_string(s, n, &k, str))
      return 0;
    *is_string = 1;
  } else if (s[k] == '-' || (s[k] >= '0' && s[k] <= '9')) {
    size_t d = k + (s[k] == '-');
    size_t digits = 0;
    while (d + digits < n && s[d + digits] >= '0' && s[d + digits] <= '9')
      digits++;
    if (digits == 0 || digits > 18 || (s[d] == '0' && (digits > 1 || s[k] == '-')))
      return 0;
    k = d + digits;
    if (k < n && (s[k] == '.' || s[k] == 'e' || s[k] == 'E'))
      return 0;
  } else if (n - k >= 4 && memcmp(s + k, "true", 4) == 0) {
    k += 4;
  } else if (n - k >= 5 && memcmp(s + k, "false", 5) == 0) {
    k += 5;
  } else if (n - k >= 4 && memcmp(s + k, "null", 4) == 0) {
    k += 4;
  } else {
    return 0;
  }
  val->p = s + *i;
  val->n = k - *i;
  *i = k;
  return 1;
}

static int gw_json_span_is(gw_span a, const char *lit) {
  size_t n = strlen(lit);
  return a.n == n && memcmp(a.p, lit, n) == 0;
}

/* jansson's JSON_REAL_PRECISION(6) form of a real: "%.6g", with ".0" when that has neither a
 * '.' nor an 'e' (the milli values written here never need an exponent). */
static void gw_json_put_real(gw_buf *out, double v) {
  char b[32];
  int n = snprintf(b, sizeof(b), "%.6g", v);
  if (n < 0 || (size_t)n >= sizeof(b) - 3)
    n = snprintf(b, sizeof(b), "0.0");
  if (!memchr(b, '.', (size_t)n) && !memchr(b, 'e', (size_t)n)) {
    b[n++] = '.';
    b[n++] = '0';
  }
  gw_buf_append(out, b, (size_t)n);
}

/* Returns 1 when the line took the fast path (output appended), 0 when jansson must read it
 * (nothing appended). */
static int gw_json_line_fast(const gw_feeling_model *m, const char *s, size_t n, gw_buf *out) {
  gw_span keys[GW_FAST_MAX_MEMBERS], vals[GW_FAST_MAX_MEMBERS];
  size_t nm = 0;
  gw_span text = {NULL, 0};
  int has_text = 0;
  size_t i = 0;
  while (i < n && gw_json_ws(s[i]))
    i++;
  if (i == n || s[i] != '{')
    return 0;
  i++;
  while (i < n && gw_json_ws(s[i]))
    i++;
  if (i < n && s[i] == '}')
    return 0; /* {} has no text: the error is jansson's to word */
  for (;;) {
    if (nm == GW_FAST_MAX_MEMBERS || i == n || s[i] != '"')
      return 0;
    gw_span key;
    if (!gw_json_plain_string(s, n, &i, &key))
      return 0;
    /* Keys the scorer sets would replace a member in place, and duplicates keep the last
     * value: jansson handles both. */
    if (gw_json_span_is(key, "valence") || gw_json_span_is(key, "polarity") ||
        gw_json_span_is(key, "feelings") || gw_json_span_is(key, "empathy") ||
        gw_json_span_is(key, "turns"))
      return 0;
    for (size_t k = 0; k < nm; k++)
      if (keys[k].n == key.n && memcmp(keys[k].p, key.p, key.n) == 0)
        return 0;
    while (i < n && gw_json_ws(s[i]))
      i++;
    if (i == n || s[i] != ':')
      return 0;
    i++;
    while (i < n && gw_json_ws(s[i]))
      i++;
    if (i == n)
      return 0;
    int is_string;
    gw_span str;
    if (!gw_json_plain_value(s, n, &i, &vals[nm], &is_string, &str))
      return 0;
    if (gw_json_span_is(key, "text")) {
      if (!is_string)
        return 0;
      text = str;
      has_text = 1;
    }
    keys[nm++] = key;
    while (i < n && gw_json_ws(s[i]))
      i++;
    if (i == n)
      return 0;
    if (s[i] == ',') {
      i++;
      while (i < n && gw_json_ws(s[i]))
        i++;
      continue;
    }
    if (s[i] != '}')
      return 0;
    i++;
    break;
  }
  while (i < n && gw_json_ws(s[i]))
    i++;
  if (i != n || !has_text)
    return 0;

  gw_utterance_score sc;
  gw_feeling_score_utterance(m, text.p, text.n, &sc);
  gw_buf_reserve(out, n + 256);
  gw_buf_putc(out, '{');
  for (size_t k = 0; k < nm; k++) {
    gw_buf_putc(out, '"');
    gw_buf_append(out, keys[k].p, keys[k].n);
    gw_buf_append(out, "\":", 2);
    gw_buf_append(out, vals[k].p, vals[k].n);
    gw_buf_putc(out, ',');
  }
  gw_buf_puts(out, "\"valence\":");
  gw_json_put_real(out, gw_json_milli(sc.valence));
  gw_buf_puts(out, ",\"polarity\":\"");
  gw_buf_puts(out, gw_polarity_name(gw_feeling_polarity(sc.valence)));
  gw_buf_puts(out, "\",\"feelings\":{");
  int first = 1;
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double v = gw_json_milli(sc.feelings[c]);
    if (!(v > 0))
      continue;
    if (!first)
      gw_buf_putc(out, ',');
    first = 0;
    gw_buf_putc(out, '"');
    gw_buf_puts(out, gw_feeling_category_name((gw_feeling_category)c));
    gw_buf_append(out, "\":", 2);
    gw_json_put_real(out, v);
  }
  gw_buf_puts(out, "},\"empathy\":");
  gw_json_put_real(out, gw_json_milli(sc.empathy));
  gw_buf_putc(out, '}');
  return 1;
}

int gw_feeling_json_line(const gw_feeling_model *m, const char *line, size_t len, size_t lineno,
                         unsigned flags, gw_buf *out) {
  if (flags & GW_FEELING_JSON_EXPLAIN) {
    /* Explained lines take the jansson path: the fast path is for the plain contract. */
    gw_feeling_explain x;
    gw_feeling_explain_init(&x);
    int rc = gw_json_line_slow(m, line, len, lineno, &x, out);
    gw_feeling_explain_free(&x);
    return rc;
  }
  if (!(flags & GW_FEELING_JSON_NO_FAST_PATH) && len <= GW_FEELING_JSON_MAX_LINE_BYTES &&
      gw_json_line_fast(m, line, len, out))
    return 0;
  return gw_json_line_slow(m, line, len, lineno, NULL, out);
}
