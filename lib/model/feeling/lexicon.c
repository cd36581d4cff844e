/*
 * Loading the feeling model's lexicon (lexicon.h): the lexicon file in its three formats (the
 * project's goodwill format, VADER-style `token<TAB>mean<TAB>stddev<TAB>[ratings]` and
 * AFINN-style `token<TAB>integer`, told apart by the first entry line), or the built-in default
 * lexicon; the lexicon overlay merged over it (always in the goodwill format); entry keys in the
 * form tokens are looked up in; the derived inflections of the goodwill format; the model
 * version. Errors name the file, the line and the reason. docs/FEELING_MODEL.md, "Lexicon" and
 * "Customisation".
 */
#include "lexicon.h"
#include "tokenizer.h"

#include "goodwill/ids.h"
#include "goodwill/sha256.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_FEELING_MODEL_NAME "gw-feeling-0.4"

#define GW_LEXICON_MAX_BYTES (16u * 1024u * 1024u)
#define GW_LEXICON_LINE_MAX  4096

typedef enum gw_lex_format { FMT_UNKNOWN, FMT_GOODWILL, FMT_VADER, FMT_AFINN } gw_lex_format;

static const char *const gw_category_names[GW_FEELING_COUNT] = {
    "anger",     "frustration", "confusion",    "anxiety", "sadness",
    "gratitude", "relief",      "satisfaction", "delight"};

/* Joins tokens [i, i+k) with single spaces; returns 0 when a phrase would cross clause
 * punctuation or include an unmatchable token. */
static size_t gw_phrase_key(const gw_tokens *t, size_t i, size_t k, char *out) {
  size_t o = 0;
  for (size_t j = i; j < i + k; j++) {
    const gw_token *tok = &t->v[j];
    if (tok->len == 0 || (j > i && (tok->flags & T_BOUNDARY)))
      return 0;
    if (j > i)
      out[o++] = ' ';
    memcpy(out + o, tok->text, tok->len);
    o += tok->len;
  }
  return o;
}

/* The key of a lexicon entry in the form text tokens are looked up in. Returns the number of
 * tokens (0: no words) and sets *symbol for emoticon-like single chunks kept as written. */
int gw_lex_entry_key(const char *raw, size_t n, char *key, size_t *keylen, int *symbol) {
  gw_tokens t;
  gw_tokens_init(&t);
  gw_tokenize(&t, raw, n, NULL);
  int has_space = 0;
  for (size_t i = 0; i < n; i++)
    if (raw[i] == ' ' || raw[i] == '\t')
      has_space = 1;
  int rc;
  *symbol = 0;
  /* The raw key lower-cased, with typographic apostrophes as '\'', to compare with tokens. */
  char low[GW_PHRASE_KEY_BYTES];
  size_t lown = 0;
  for (size_t i = 0; i < n && lown + 1 < sizeof(low); i++) {
    unsigned char c = (unsigned char)raw[i];
    if (c == 0xe2 && i + 2 < n && (unsigned char)raw[i + 1] == 0x80 &&
        ((unsigned char)raw[i + 2] == 0x99 || (unsigned char)raw[i + 2] == 0x98)) {
      low[lown++] = '\'';
      i += 2;
      continue;
    }
    low[lown++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  if (!has_space && !(t.n == 1 && t.v[0].len == lown && memcmp(t.v[0].text, low, lown) == 0)) {
    if (n >= GW_TOKEN_MAX_BYTES || n == 0) {
      rc = -1;
    } else {
      memcpy(key, raw, n);
      *keylen = n;
      *symbol = 1;
      rc = 1;
    }
  } else if (t.n == 0) {
    rc = 0;
  } else if (t.n > GW_PHRASE_MAX_TOKENS) {
    rc = -2;
  } else {
    size_t kn = gw_phrase_key(&t, 0, t.n, key);
    /* Punctuation inside a phrase key ("thanks, bye") is dropped: texts match without it. */
    if (kn == 0) {
      kn = 0;
      for (size_t j = 0; j < t.n; j++) {
        if (t.v[j].len == 0) {
          kn = 0;
          break;
        }
        if (j)
          key[kn++] = ' ';
        memcpy(key + kn, t.v[j].text, t.v[j].len);
        kn += t.v[j].len;
      }
    }
    *keylen = kn;
    rc = kn ? (int)t.n : -1;
  }
  gw_tokens_free(&t);
  return rc;
}

typedef struct gw_loader {
  gw_feeling_model *m;
  const char *src; /* file name for messages */
  char *err;
  size_t errlen;
  int overlay; /* reading the lexicon overlay: its entries replace the base's */
} gw_loader;

static int gw_load_fail(gw_loader *L, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gw_load_fail(gw_loader *L, size_t line, const char *fmt, ...) {
  if (L->err && L->errlen) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
      snprintf(L->err, L->errlen, "%s:%zu: %s", L->src, line, msg);
    else
      snprintf(L->err, L->errlen, "%s: %s", L->src, msg);
  }
  return -EINVAL;
}

static int gw_parse_double(const char *s, size_t n, double *out) {
  char buf[64];
  if (n == 0 || n >= sizeof(buf))
    return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (end != buf + n || errno != 0 || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

static int gw_is_integer(const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && (s[0] == '-' || s[0] == '+'))
    i = 1;
  if (i == n)
    return 0;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int gw_parse_categories(gw_loader *L, size_t line, const char *s, size_t n,
                               float cats[GW_FEELING_COUNT]) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    size_t a = i, b = j;
    while (a < b && s[a] == ' ')
      a++;
    while (b > a && s[b - 1] == ' ')
      b--;
    if (a < b) {
      const char *colon = memchr(s + a, ':', b - a);
      if (!colon)
        return gw_load_fail(L, line, "category \"%.*s\" needs an intensity: name:0..1",
                            (int)(b - a), s + a);
      size_t nlen = (size_t)(colon - (s + a));
      int c = -1;
      for (int k = 0; k < GW_FEELING_COUNT; k++)
        if (strlen(gw_category_names[k]) == nlen && memcmp(gw_category_names[k], s + a, nlen) == 0)
          c = k;
      if (c < 0)
        return gw_load_fail(L, line,
                            "unknown category \"%.*s\" (known: anger, frustration, confusion, "
                            "anxiety, sadness, gratitude, relief, satisfaction, delight)",
                            (int)nlen, s + a);
      double v;
      const char *vs = colon + 1;
      if (gw_parse_double(vs, (size_t)(s + b - vs), &v) < 0 || v < 0 || v > 1)
        return gw_load_fail(L, line, "intensity of \"%s\" must be a number in 0..1, got \"%.*s\"",
                            gw_category_names[c], (int)(s + b - vs), vs);
      cats[c] = (float)v;
    }
    i = j + 1;
  }
  return 0;
}

static int gw_load_line(gw_loader *L, gw_lex_format *fmt, size_t line, const char *s, size_t n,
                        size_t *first_line_of_dup) {
  const char *f[5];
  size_t fl[5];
  size_t nf = 0;
  size_t i = 0;
  while (nf < 5) {
    size_t j = i;
    while (j < n && s[j] != '\t')
      j++;
    f[nf] = s + i;
    fl[nf] = j - i;
    nf++;
    if (j >= n)
      break;
    i = j + 1;
  }
  if (nf == 5)
    return gw_load_fail(L, line, "too many tab-separated fields");
  if (*fmt == FMT_UNKNOWN) {
    if (nf == 4 && fl[3] > 0 && f[3][0] == '[')
      *fmt = FMT_VADER;
    else if (nf == 2 && gw_is_integer(f[1], fl[1]))
      *fmt = FMT_AFINN;
    else if (nf == 2 || nf == 3)
      *fmt = FMT_GOODWILL;
    else
      return gw_load_fail(L, line,
                          "cannot tell the lexicon format: expected token<TAB>valence"
                          "[<TAB>categories], token<TAB>mean<TAB>stddev<TAB>[ratings] or "
                          "token<TAB>integer");
  }
  double valence = 0;
  float cats[GW_FEELING_COUNT] = {0};
  switch (*fmt) {
  case FMT_VADER:
    if (nf != 4)
      return gw_load_fail(L, line,
                          "expected 4 tab-separated fields (token, mean, stddev, ratings) of a "
                          "VADER-style lexicon, found %zu",
                          nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -4 || valence > 4)
      return gw_load_fail(L, line, "mean valence must be a number in -4..4, got \"%.*s\"",
                          (int)fl[1], f[1]);
    break;
  case FMT_AFINN:
    if (nf != 2 || !gw_is_integer(f[1], fl[1]))
      return gw_load_fail(L, line,
                          "expected token<TAB>integer of an AFINN-style lexicon, found %zu "
                          "field(s)",
                          nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -5 || valence > 5)
      return gw_load_fail(L, line, "AFINN valence must be an integer in -5..5, got \"%.*s\"",
                          (int)fl[1], f[1]);
    valence *= 0.8; /* -5..5 onto the model's -4..4 */
    break;
  default:
    if (nf != 2 && nf != 3)
      return gw_load_fail(L, line,
                          "expected token<TAB>valence[<TAB>categories], found %zu field(s)", nf);
    if (gw_parse_double(f[1], fl[1], &valence) < 0 || valence < -4 || valence > 4)
      return gw_load_fail(L, line, "valence must be a number in -4..4, got \"%.*s\"", (int)fl[1],
                          f[1]);
    if (nf == 3) {
      int rc = gw_parse_categories(L, line, f[2], fl[2], cats);
      if (rc < 0)
        return rc;
    }
    break;
  }
  if (fl[0] == 0)
    return gw_load_fail(L, line, "empty token");
  char key[GW_PHRASE_KEY_BYTES];
  size_t keylen = 0;
  int symbol = 0;
  int ntok = gw_lex_entry_key(f[0], fl[0], key, &keylen, &symbol);
  if (ntok == 0)
    return gw_load_fail(L, line, "entry \"%.*s\" has no words", (int)fl[0], f[0]);
  if (ntok == -2)
    return gw_load_fail(L, line, "phrase \"%.*s\" is longer than %d words", (int)fl[0], f[0],
                        GW_PHRASE_MAX_TOKENS);
  if (ntok < 0)
    return gw_load_fail(L, line, "entry \"%.*s\" is too long (at most %d bytes per word)",
                        (int)fl[0], f[0], GW_TOKEN_MAX_BYTES - 1);
  gw_lex_entry *e;
  int rc = gw_lex_upsert(L->m, key, keylen, (unsigned)ntok, &e);
  if (rc < 0)
    return gw_load_fail(L, line, "out of memory");
  if (e->line != 0 && L->overlay && e->from_overlay)
    return gw_load_fail(L, line, "duplicate entry \"%.*s\" in the overlay (first on line %u)",
                        (int)keylen, key, e->line);
  if (e->line != 0 && !L->overlay) {
    /* Our own format must not hide a typo behind a duplicate; foreign files keep the first. */
    if (*fmt == FMT_GOODWILL)
      return gw_load_fail(L, line, "duplicate entry \"%.*s\" (first on line %u)", (int)keylen, key,
                          e->line);
    (*first_line_of_dup)++;
    return 0;
  }
  /* New, or a base entry the overlay replaces as a whole: valence and categories both. */
  e->from_overlay = (uint8_t)(L->overlay ? 1 : 0);
  e->kind |= K_SENTIMENT | (symbol ? K_SYMBOL : 0);
  if (symbol)
    L->m->symbol_first[(unsigned char)key[0]] = 1;
  e->line = (uint32_t)line;
  e->valence = (float)valence;
  memcpy(e->cats, cats, sizeof(cats));
  if (!symbol && gw_lex_add_prefixes(L->m, key, keylen, K_SENTIMENT) < 0)
    return gw_load_fail(L, line, "out of memory");
  return 0;
}

static int gw_is_vowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* Writes w[0..n-cut) + suffix into out; returns its length. */
static size_t gw_inflect(const char *w, size_t n, size_t cut, const char *suffix, char *out) {
  size_t sl = strlen(suffix);
  memcpy(out, w, n - cut);
  memcpy(out + n - cut, suffix, sl);
  return n - cut + sl;
}

/* The regular inflections of the goodwill lexicon's plain words (-s, -ed, -ing, -ly, with the
 * usual spelling changes: "worries", "worried", "loving", "terribly"), added after the file with
 * the word's valence and categories unless the key is already known in any role. The lexicon
 * lists the irregular and the meaning-changing forms itself ("patients" 0 stops "patient"
 * from making it positive). Forms that are not English words cost memory only. */
static int gw_lex_add_inflections(gw_feeling_model *m) {
  size_t n0 = m->count;
  for (size_t k = 0; k < n0; k++) {
    const gw_lex_entry *base = gw_lex_entry_at(m, k);
    if (!(base->kind & K_SENTIMENT) || (base->kind & K_SYMBOL) || base->ntokens != 1 ||
        base->line == 0 || base->valence == 0)
      continue;
    size_t n = base->key_len;
    if (n < 3 || n + 4 >= GW_TOKEN_MAX_BYTES)
      continue;
    char w[GW_TOKEN_MAX_BYTES];
    memcpy(w, m->keys + base->key_off, n);
    int plain = 1;
    for (size_t i = 0; i < n; i++)
      plain &= w[i] >= 'a' && w[i] <= 'z';
    if (!plain)
      continue;
    char last = w[n - 1], prev = w[n - 2];
    int cons_y = last == 'y' && !gw_is_vowel(prev);
    char forms[4][GW_TOKEN_MAX_BYTES];
    size_t fl[4];
    if (last == 's' || last == 'x' || last == 'z' || (last == 'h' && (prev == 'c' || prev == 's')))
      fl[0] = gw_inflect(w, n, 0, "es", forms[0]);
    else
      fl[0] = cons_y ? gw_inflect(w, n, 1, "ies", forms[0]) : gw_inflect(w, n, 0, "s", forms[0]);
    if (last == 'e')
      fl[1] = gw_inflect(w, n, 0, "d", forms[1]);
    else
      fl[1] = cons_y ? gw_inflect(w, n, 1, "ied", forms[1]) : gw_inflect(w, n, 0, "ed", forms[1]);
    fl[2] = last == 'e' && prev != 'e' ? gw_inflect(w, n, 1, "ing", forms[2])
                                       : gw_inflect(w, n, 0, "ing", forms[2]);
    if (last == 'y')
      fl[3] = gw_inflect(w, n, 1, "ily", forms[3]);
    else if (last == 'e' && prev == 'l')
      fl[3] = gw_inflect(w, n, 1, "y", forms[3]);
    else if (last == 'c')
      fl[3] = gw_inflect(w, n, 0, "ally", forms[3]);
    else
      fl[3] = gw_inflect(w, n, 0, "ly", forms[3]);
    for (int f = 0; f < 4; f++) {
      gw_lex_entry *e;
      int rc = gw_lex_upsert(m, forms[f], fl[f], 1, &e);
      if (rc < 0)
        return rc;
      if (e->kind != 0)
        continue; /* known: as an entry, a rule word or a derived form of another word */
      e->kind = K_SENTIMENT;
      e->valence = base->valence;
      memcpy(e->cats, base->cats, sizeof(e->cats));
    }
  }
  return 0;
}

/* "<model>+lex.<the last 8 hex digits of the lexicon bytes' gw_ids digest>". */
static void lexicon_version(const char *data, size_t len, char *out, size_t outlen) {
  gw_id_hasher h;
  char hex[GW_ID_HEX_LEN + 1];
  gw_id_init(&h);
  gw_id_update(&h, data, len);
  gw_id_final_hex(&h, hex);
  snprintf(out, outlen, "%s+lex.%s", GW_FEELING_MODEL_NAME, hex + GW_ID_HEX_LEN - 8);
}

/* Appends "+overlay.<the first 12 hex digits of the overlay bytes' SHA-256>" to the version. */
static void overlay_version(const char *data, size_t len, char *version, size_t size) {
  char hex[GW_SHA256_HEX_LEN + 1];
  gw_sha256_hex(data, len, hex);
  size_t n = strlen(version);
  snprintf(version + n, size - n, "+overlay.%.12s", hex);
}

/* Reads the entry lines of one file (the base lexicon, or the overlay with fmt already set to
 * the goodwill format); counts them in *entries. */
static int gw_load_lines(gw_loader *L, gw_lex_format *fmt, const char *data, size_t len,
                         size_t *entries) {
  size_t line = 0, dups = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && data[j] != '\n')
      j++;
    line++;
    size_t n = j - i;
    if (n > 0 && data[i + n - 1] == '\r')
      n--;
    const char *s = data + i;
    i = j + 1;
    if (n > GW_LEXICON_LINE_MAX)
      return gw_load_fail(L, line, "line longer than %d bytes", GW_LEXICON_LINE_MAX);
    if (memchr(s, '\0', n))
      return gw_load_fail(L, line, "NUL byte in a text file");
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t'))
      k++;
    if (k == n)
      continue;
    /* '#' starts a comment, except where the line is an entry for '#' itself (VADER has
     * emoticons such as "#-)"), which the tab after the token gives away. */
    if (s[0] == '#' && (*fmt == FMT_GOODWILL || *fmt == FMT_UNKNOWN || !memchr(s, '\t', n))) {
      static const char magic[] = "goodwill-lexicon";
      size_t p = 1;
      while (p < n && s[p] == ' ')
        p++;
      if (*fmt == FMT_UNKNOWN && n - p >= sizeof(magic) - 1 &&
          memcmp(s + p, magic, sizeof(magic) - 1) == 0)
        *fmt = FMT_GOODWILL;
      continue;
    }
    int rc = gw_load_line(L, fmt, line, s, n, &dups);
    if (rc < 0)
      return rc;
    (*entries)++;
  }
  return 0;
}

/* The base lexicon, then the overlay (NULL: none) over it, then what is derived from both. */
static int gw_load_bytes(gw_feeling_model *m, const char *src, const char *data, size_t len,
                         const char *overlay_src, const char *overlay, size_t overlay_len,
                         char *err, size_t errlen) {
  gw_loader L = {m, src, err, errlen, 0};
  gw_lex_format fmt = FMT_UNKNOWN;
  size_t entries = 0;
  int rc = gw_load_lines(&L, &fmt, data, len, &entries);
  if (rc < 0)
    return rc;
  if (entries == 0)
    return gw_load_fail(&L, 0, "the lexicon has no entries");
  if (overlay) {
    /* The overlay is always in the goodwill format, whatever the base's; it may be empty. */
    gw_loader O = {m, overlay_src, err, errlen, 1};
    gw_lex_format ofmt = FMT_GOODWILL;
    size_t oentries = 0;
    rc = gw_load_lines(&O, &ofmt, overlay, overlay_len, &oentries);
    if (rc < 0)
      return rc;
  }
  /* Only the project's own format: a plugged-in VADER or AFINN file scores as written. The
   * overlay's words are derived like the base's, so a replaced word's forms follow it. */
  if (fmt == FMT_GOODWILL && gw_lex_add_inflections(m) < 0)
    return gw_load_fail(&L, 0, "out of memory");
  for (size_t k = 0; k < m->count; k++) {
    gw_lex_entry *e = gw_lex_entry_at(m, k);
    for (int c = 0; c < GW_FEELING_COUNT; c++)
      e->has_cats |= e->cats[c] != 0;
  }
  gw_lex_set_conv_roles(m);
  lexicon_version(data, len, m->version, sizeof(m->version));
  if (overlay)
    overlay_version(overlay, overlay_len, m->version, sizeof(m->version));
  return 0;
}

/* The default lexicon, data/lexicon/goodwill-cx.tsv embedded by CMake. */
extern const unsigned char gw_feeling_default_lexicon[];
extern const size_t gw_feeling_default_lexicon_len;

/* A model with the rule tables and no lexicon yet. */
static int model_with_rules(gw_feeling_model **out, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen)
    err[0] = 0;
  gw_feeling_model *m = gw_lex_new();
  if (!m)
    return -ENOMEM;
  int rc = gw_lex_add_rules(m);
  if (rc < 0) {
    gw_feeling_model_free(m);
    if (err && errlen)
      snprintf(err, errlen, "out of memory building the rule tables");
    return rc;
  }
  *out = m;
  return 0;
}

int gw_feeling_model_parse_overlaid(gw_feeling_model **out, const char *source, const char *data,
                                    size_t len, const char *overlay_source, const char *overlay,
                                    size_t overlay_len, char *err, size_t errlen) {
  gw_feeling_model *m;
  int rc = model_with_rules(&m, err, errlen);
  if (rc < 0)
    return rc;
  if (len > GW_LEXICON_MAX_BYTES || (overlay && overlay_len > GW_LEXICON_MAX_BYTES)) {
    rc = -EFBIG;
    if (err && errlen)
      snprintf(err, errlen, "%s: larger than %u bytes",
               len > GW_LEXICON_MAX_BYTES ? source : overlay_source, GW_LEXICON_MAX_BYTES);
  } else {
    rc = gw_load_bytes(m, source, data, len, overlay_source, overlay, overlay_len, err, errlen);
  }
  if (rc < 0) {
    gw_feeling_model_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

int gw_feeling_model_parse(gw_feeling_model **out, const char *source, const char *data, size_t len,
                           char *err, size_t errlen) {
  return gw_feeling_model_parse_overlaid(out, source, data, len, NULL, NULL, 0, err, errlen);
}

/* Reads a whole lexicon file of at most GW_LEXICON_MAX_BYTES + 1 bytes (one more tells that
 * it is too large) into *data, which the caller frees. */
static int read_lexicon_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int rc = -errno;
    if (err && errlen)
      snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return rc;
  }
  char *d = malloc(GW_LEXICON_MAX_BYTES + 1);
  size_t n = d ? fread(d, 1, GW_LEXICON_MAX_BYTES + 1, f) : 0;
  int rerr = ferror(f);
  fclose(f);
  if (!d) {
    if (err && errlen)
      snprintf(err, errlen, "%s: out of memory", path);
    return -ENOMEM;
  }
  if (rerr) {
    free(d);
    if (err && errlen)
      snprintf(err, errlen, "%s: read error", path);
    return -EIO;
  }
  *data = d;
  *len = n;
  return 0;
}

int gw_feeling_model_load_overlaid(gw_feeling_model **out, const char *path,
                                   const char *overlay_path, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen)
    err[0] = 0;
  char *data = NULL, *overlay = NULL;
  size_t len = 0, overlay_len = 0;
  int rc = 0;
  if (path)
    rc = read_lexicon_file(path, &data, &len, err, errlen);
  if (rc == 0 && overlay_path)
    rc = read_lexicon_file(overlay_path, &overlay, &overlay_len, err, errlen);
  if (rc == 0) {
    /* The overlay is "" when empty: a NULL overlay means none. */
    rc = gw_feeling_model_parse_overlaid(out, path ? path : "default lexicon",
                                         path ? data : (const char *)gw_feeling_default_lexicon,
                                         path ? len : gw_feeling_default_lexicon_len, overlay_path,
                                         overlay_path ? (overlay ? overlay : "") : NULL,
                                         overlay_len, err, errlen);
  }
  free(data);
  free(overlay);
  return rc;
}

int gw_feeling_model_load(gw_feeling_model **out, const char *path, char *err, size_t errlen) {
  return gw_feeling_model_load_overlaid(out, path, NULL, err, errlen);
}

void gw_feeling_default_version(char *out, size_t outlen) {
  lexicon_version((const char *)gw_feeling_default_lexicon, gw_feeling_default_lexicon_len, out,
                  outlen);
}

const char *gw_feeling_model_version(const gw_feeling_model *m) {
  return m->version;
}

const char *gw_feeling_category_name(gw_feeling_category c) {
  if ((int)c < 0 || c >= GW_FEELING_COUNT)
    return "unknown";
  return gw_category_names[c];
}
