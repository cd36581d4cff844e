/*
 * The feeling model's tokenizer (tokenizer.h): words, emoji and emoticon symbols, the flags the
 * rules read, and each token's lexicon entry. A plain ASCII word takes a fast path, read in one
 * pass straight into its token (with SSE2, 16 bytes at a time); every other chunk takes the
 * general UTF-8 path. Both give the same tokens (docs/FEELING_MODEL.md, "Lexicon", tokenizer
 * fast path).
 */
#include "tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The word fast path reads 16 bytes at a time with SSE2 where the target has it (every x86-64);
 * -DGW_FEELING_NO_SIMD forces the byte loop, which gives the same tokens (tested both ways). */
#if defined(__SSE2__) && !defined(GW_FEELING_NO_SIMD)
#include <emmintrin.h>
#define GW_FEELING_SSE2 1
#else
#define GW_FEELING_SSE2 0
#endif

/* Doubles the token array (the slow path of gw_tokens_push); NULL at the token limit or when
 * memory is short. */
static gw_token *gw_tokens_grow(gw_tokens *t) {
  if (t->cap >= GW_UTTERANCE_MAX_TOK)
    return NULL;
  size_t ncap = t->cap * 2;
  gw_token *nv = malloc(ncap * sizeof(*nv));
  if (!nv)
    return NULL;
  memcpy(nv, t->v, t->n * sizeof(*nv));
  if (t->v != t->inline_v)
    free(t->v);
  t->v = nv;
  t->cap = ncap;
  return t->v;
}

/* Returns a new token slot, or NULL when the utterance is over the token limit or memory is
 * short: the rest of the text is then not scored (documented), never a crash. */
static inline gw_token *gw_tokens_push(gw_tokens *t) {
  if (t->n == t->cap && !gw_tokens_grow(t))
    return NULL;
  gw_token *tok = &t->v[t->n++];
  tok->len = 0;
  tok->e = NULL;
  tok->state = 0;
  tok->flags = t->pending_boundary ? T_BOUNDARY : 0;
  t->pending_boundary = 0;
  return tok;
}

/* gw_tokens_push for the word fast path, which sets the token's text, length, hash state and
 * entry itself (gw_token_finish): only the flags are set here. */
static inline gw_token *gw_tokens_push_word(gw_tokens *t) {
  if (t->n == t->cap && !gw_tokens_grow(t))
    return NULL;
  gw_token *tok = &t->v[t->n++];
  tok->flags = t->pending_boundary ? T_BOUNDARY : 0;
  t->pending_boundary = 0;
  return tok;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 for an invalid byte. */
static size_t gw_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if ((c & 0xe0) == 0xc0) {
    len = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return len;
}

/* Byte classes for the tokenizer's innermost loops: ASCII letter or digit, ASCII letter, ASCII
 * upper case (the top bit of the three, so that `cls >> 2` is 0 or 1), sentence punctuation that
 * may trail a word, ASCII white space. Bytes from 0x80 are none of these. */
enum { C_ALNUM = 1, C_LETTER = 2, C_UPPER = 4, C_TRAIL = 8, C_SPACE = 16 };
static const uint8_t gw_byte_class[256] = {
    0, 0, 0, 0,  0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 16, 8, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 8, 0, 8, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 8, 0, 0,  0, 8, 0, 7, 7, 7,  7,  7,  7,  7,  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7,  0, 0, 0, 0, 0, 0,  3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3,  3, 3, 3, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The word loop's view of a byte: bits 0-7 the lower-cased ASCII letter or digit (0 for every
 * other byte), bit 16 set for a letter, bit 24 for an upper-case one. Summed over a word (fewer
 * than 48 bytes, so bits 0-15 never carry into bit 16) it counts letters in bits 16-23 and
 * upper-case letters in bits 24-31, with one addition per byte. */
static const uint32_t gw_byte_fold[256] = {
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0x30,      0x31,      0x32,      0x33,      0x34,      0x35,      0x36,      0x37,
    0x38,      0x39,      0,         0,         0,         0,         0,         0,
    0,         0x1010061, 0x1010062, 0x1010063, 0x1010064, 0x1010065, 0x1010066, 0x1010067,
    0x1010068, 0x1010069, 0x101006a, 0x101006b, 0x101006c, 0x101006d, 0x101006e, 0x101006f,
    0x1010070, 0x1010071, 0x1010072, 0x1010073, 0x1010074, 0x1010075, 0x1010076, 0x1010077,
    0x1010078, 0x1010079, 0x101007a, 0,         0,         0,         0,         0,
    0,         0x10061,   0x10062,   0x10063,   0x10064,   0x10065,   0x10066,   0x10067,
    0x10068,   0x10069,   0x1006a,   0x1006b,   0x1006c,   0x1006d,   0x1006e,   0x1006f,
    0x10070,   0x10071,   0x10072,   0x10073,   0x10074,   0x10075,   0x10076,   0x10077,
    0x10078,   0x10079,   0x1007a,   0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
};

static int gw_is_ascii_alnum(unsigned char c) {
  return gw_byte_class[c] & C_ALNUM;
}

static int gw_is_ascii_space(unsigned char c) {
  return gw_byte_class[c] & C_SPACE;
}

static int gw_is_space_cp(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
         cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x3000;
}

static int gw_is_emoji_cp(uint32_t cp) {
  return (cp >= 0x1f000 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf) || cp == 0x2b50 ||
         cp == 0x2b55 || cp == 0x2b06 || cp == 0x2b07 || cp == 0x2b05 || cp == 0x2b1b ||
         cp == 0x2b1c;
}

/* Variation selectors, the zero-width joiner and skin-tone modifiers only dress an emoji. */
static int gw_is_emoji_dress_cp(uint32_t cp) {
  return cp == 0xfe0f || cp == 0xfe0e || cp == 0x200d || (cp >= 0x1f3fb && cp <= 0x1f3ff);
}

static int gw_is_apostrophe_cp(uint32_t cp) {
  return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x02bc;
}

/* Clause punctuation: stops negation and modifier windows and phrase matches. */
static int gw_is_boundary_cp(uint32_t cp) {
  return cp == ',' || cp == '.' || cp == ';' || cp == ':' || cp == '(' || cp == ')' || cp == '"' ||
         cp == 0x2026 || cp == 0x2013 || cp == 0x2014 || cp == 0x201c || cp == 0x201d ||
         cp == 0x3002 || cp == 0xff0c;
}

static int gw_is_word_cp(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  /* Letters of other scripts stay inside words; symbols and punctuation blocks do not. */
  return !(gw_is_space_cp(cp) || gw_is_emoji_cp(cp) || gw_is_emoji_dress_cp(cp) ||
           gw_is_apostrophe_cp(cp) || gw_is_boundary_cp(cp) || (cp >= 0x2000 && cp <= 0x2bff) ||
           (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
           (cp >= 0xff00 && cp <= 0xff20) || cp == 0xa1 || cp == 0xbf || cp == 0xab || cp == 0xbb);
}

/* Word being assembled: lower-cased ASCII, other code points copied. */
typedef struct gw_word {
  char text[GW_TOKEN_MAX_BYTES];
  size_t len;
  const unsigned char *src, *src_end; /* its bytes in the text */
  unsigned letters, upper;
  int too_long;
  int elong;
  char last;
  unsigned run;
} gw_word;

static void gw_word_add(gw_word *w, const unsigned char *s, size_t n, uint32_t cp) {
  if (w->len + n >= GW_TOKEN_MAX_BYTES) {
    w->too_long = 1;
    return;
  }
  if (cp < 0x80) {
    char c = (char)cp;
    if (c >= 'A' && c <= 'Z') {
      w->upper++;
      w->letters++;
      c = (char)(c - 'A' + 'a');
    } else if (c >= 'a' && c <= 'z') {
      w->letters++;
    }
    if (c >= 'a' && c <= 'z' && c == w->last) {
      if (++w->run >= 3)
        w->elong = 1;
    } else {
      w->run = 1;
    }
    w->last = c;
    w->text[w->len++] = c;
  } else {
    w->letters++;
    w->last = 0;
    w->run = 0;
    memcpy(w->text + w->len, s, n);
    w->len += n;
  }
}

/* gw_word_add for a run of ASCII letters and digits, the common case, in one tight loop. */
static void gw_word_add_ascii(gw_word *w, const unsigned char *s, size_t n) {
  if (w->len + n >= GW_TOKEN_MAX_BYTES) {
    w->too_long = 1;
    return;
  }
  char last = w->last;
  unsigned run = w->run;
  for (size_t i = 0; i < n; i++) {
    char c = (char)s[i];
    if (c >= 'A' && c <= 'Z') {
      w->upper++;
      c = (char)(c - 'A' + 'a');
    }
    if (c >= 'a' && c <= 'z') {
      w->letters++;
      if (c == last) {
        if (++run >= 3)
          w->elong = 1;
      } else {
        run = 1;
      }
    } else {
      run = 1;
    }
    last = c;
    w->text[w->len++] = c;
  }
  w->last = last;
  w->run = run;
}

static void gw_word_reset(gw_word *w) {
  w->len = 0;
  w->letters = w->upper = 0;
  w->too_long = w->elong = 0;
  w->last = 0;
  w->run = 0;
}

/* Collapses runs of three or more equal letters to at most `keep` letters. */
static size_t gw_collapse_runs(const char *in, size_t n, unsigned keep, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && in[j] == in[i] && in[i] >= 'a' && in[i] <= 'z')
      j++;
    size_t run = j - i;
    size_t copy = run >= 3 ? keep : run;
    for (size_t k = 0; k < copy; k++)
      out[o++] = in[i];
    i = j;
  }
  return o;
}

/* Whether the lexicon or the rules know the key as a word of their own (a phrase prefix alone
 * does not count). */
static int gw_lex_has(const gw_feeling_model *m, const char *s, size_t n) {
  const gw_lex_entry *e = m ? gw_lex_find(m, s, n) : NULL;
  return e && e->kind != 0;
}

/* Looks the finished token up once: every later rule uses tok->e and tok->state. */
static void gw_token_lookup(gw_token *tok, const gw_feeling_model *m) {
  tok->state = gw_word_hash_padded(tok->text, tok->len);
  tok->e = m && tok->len ? gw_lex_find_h(m, tok->state, tok->text, tok->len) : NULL;
}

/* Laughter has no fixed length: "hahahaha", "hehehe", "lololol" score as the lexicon's
 * "haha" / "lol" when it has them. */
static void gw_token_laughter(gw_token *tok, const gw_feeling_model *m) {
  const char *w = tok->text;
  size_t n = tok->len;
  const char *as = NULL;
  if (w[0] == 'h' && (w[1] == 'a' || w[1] == 'e')) {
    size_t i = 0;
    while (i + 1 < n && w[i] == 'h' && w[i + 1] == w[1])
      i += 2;
    if (i == n || (i + 1 == n && w[i] == 'h'))
      as = "haha";
  } else if (w[0] == 'l' && w[1] == 'o') {
    size_t i = 1;
    while (i + 1 < n && w[i] == 'o' && w[i + 1] == 'l')
      i += 2;
    if (i == n)
      as = "lol";
  }
  if (as)
    tok->e = gw_lex_find(m, as, strlen(as));
}

/* The elongated word's entry: "goooood" -> "good", "sooo" -> "so": the as-written form, then
 * runs cut to two, then to one, whichever the lexicon knows (the two-letter form when none
 * does). Rare, so kept out of gw_token_finish, which the word loops inline. */
static void gw_token_elong(gw_token *tok, uint64_t state, const gw_feeling_model *m) {
  if (!gw_lex_has(m, tok->text, tok->len)) {
    char two[GW_TOKEN_MAX_BYTES], one[GW_TOKEN_MAX_BYTES];
    size_t n2 = gw_collapse_runs(tok->text, tok->len, 2, two);
    size_t n1 = gw_collapse_runs(tok->text, tok->len, 1, one);
    if (!gw_lex_has(m, two, n2) && gw_lex_has(m, one, n1)) {
      memcpy(tok->text, one, n1);
      tok->len = (uint8_t)n1;
    } else {
      memcpy(tok->text, two, n2);
      tok->len = (uint8_t)n2;
    }
    gw_token_lookup(tok, m);
    return;
  }
  tok->state = state;
  tok->e = tok->len ? gw_lex_find_h(m, state, tok->text, tok->len) : NULL;
  if (!tok->e && tok->len >= 5)
    gw_token_laughter(tok, m);
}

/* Sets a word token's flags, hash and entry once its text (lower-cased, len bytes) is in
 * place. */
static inline __attribute__((always_inline)) void gw_token_finish(gw_token *tok, unsigned letters,
                                                                  unsigned upper, int elong,
                                                                  const gw_feeling_model *m) {
  uint64_t state = gw_word_hash_padded(tok->text, tok->len);
  if (letters > 0)
    tok->flags |= T_LETTERS;
  if (letters >= 2 && upper == letters)
    tok->flags |= T_CAPS;
  if (elong) {
    tok->flags |= T_ELONG;
    if (m) {
      gw_token_elong(tok, state, m);
      return;
    }
  }
  tok->state = state;
  tok->e = m && tok->len ? gw_lex_find_h(m, state, tok->text, tok->len) : NULL;
  /* Laughter starts with 'h' or 'l': other unknown words need no call. */
  if (!tok->e && m && tok->len >= 5 && (tok->text[0] == 'h' || tok->text[0] == 'l'))
    gw_token_laughter(tok, m);
}

static void gw_word_flush(gw_tokens *t, gw_word *w, const gw_feeling_model *m) {
  if (w->len == 0 && !w->too_long)
    goto reset;
  gw_token *tok = gw_tokens_push(t);
  if (!tok)
    goto reset;
  if (w->too_long) {
    /* A token no entry can match: it still counts as a word for windows. */
    tok->len = 0;
    tok->flags |= T_LETTERS;
    goto reset;
  }
  memcpy(tok->text, w->text, w->len);
  tok->len = (uint8_t)w->len;
  if (t->base) { /* recording source positions (gw_tokenize_src) */
    tok->src_off = (uint32_t)(w->src - t->base);
    tok->src_len = (uint16_t)(w->src_end - w->src);
  }
  gw_token_finish(tok, w->letters, w->upper, w->elong, m);
reset:
  gw_word_reset(w);
}

static void gw_push_bytes_token(gw_tokens *t, const char *s, size_t n, uint8_t flags,
                                const gw_feeling_model *m) {
  if (n >= GW_TOKEN_MAX_BYTES)
    return;
  gw_token *tok = gw_tokens_push(t);
  if (!tok)
    return;
  memcpy(tok->text, s, n);
  tok->len = (uint8_t)n;
  if (t->base) {
    tok->src_off = (uint32_t)((const unsigned char *)s - t->base);
    tok->src_len = (uint16_t)n;
  }
  tok->flags |= flags;
  gw_token_lookup(tok, m);
}

/* Counts emphasis and marks where sentences end (for the question rule). */
static void gw_count_punct(gw_tokens *t, unsigned char c) {
  if (c == '!')
    t->excl++;
  else if (c == '?')
    t->quest++;
  if (t->n > 0 && (c == '!' || c == '?' || c == '.'))
    t->v[t->n - 1].flags |= c == '?' ? T_QEND : T_SEND;
}

/* Splits one whitespace-free chunk into words, emoji and punctuation. */
static void gw_tokenize_chunk(gw_tokens *t, const unsigned char *s, size_t n,
                              const gw_feeling_model *m) {
  gw_word w;
  gw_word_reset(&w);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    unsigned char c = s[i];
    if (gw_is_ascii_alnum(c)) {
      /* Most bytes are ASCII letters: add the run without decoding or classifying. */
      size_t j = i + 1;
      while (j < n && gw_is_ascii_alnum(s[j]))
        j++;
      if (t->base) {
        if (w.len == 0)
          w.src = s + i;
        w.src_end = s + j;
      }
      gw_word_add_ascii(&w, s + i, j - i);
      i = j;
      continue;
    }
    size_t l = gw_utf8_decode(s + i, n - i, &cp);
    if (l == 0) {
      /* Invalid UTF-8: the byte separates words and is otherwise ignored. */
      gw_word_flush(t, &w, m);
      i++;
      continue;
    }
    if (gw_is_emoji_dress_cp(cp)) {
      /* Skin tones, variation selectors and joiners add nothing to the emoji's meaning. */
    } else if (gw_is_word_cp(cp)) {
      if (t->base) {
        if (w.len == 0)
          w.src = s + i;
        w.src_end = s + i + l;
      }
      gw_word_add(&w, s + i, l, cp);
    } else if ((gw_is_apostrophe_cp(cp) || cp == '-') && (w.len > 0 || w.too_long) && i + l < n &&
               gw_is_word_cp(s[i + l] < 0x80 ? s[i + l] : 0x80)) {
      /* Inside a word: "don't", "it’s", "follow-up". Typographic apostrophes become '\''. */
      const unsigned char ap = cp == '-' ? '-' : '\'';
      gw_word_add(&w, &ap, 1, ap);
      w.src_end = s + i + l;
      w.run = 0;
      w.last = 0;
    } else {
      gw_word_flush(t, &w, m);
      if (gw_is_emoji_cp(cp)) {
        gw_push_bytes_token(t, (const char *)s + i, l, T_EMOJI, m);
      } else if (cp == '!' || cp == '?') {
        gw_count_punct(t, (unsigned char)cp);
        t->pending_boundary = 1;
      } else if (gw_is_boundary_cp(cp)) {
        gw_count_punct(t, cp == '.' || cp == 0x2026 || cp == 0x3002 ? '.' : ',');
        t->pending_boundary = 1;
      }
    }
    i += l;
  }
  gw_word_flush(t, &w, m);
}

static int gw_is_trailing_punct(unsigned char c) {
  return gw_byte_class[c] & C_TRAIL;
}

#if GW_FEELING_SSE2
/* The word loop for sixteen bytes at once (SSE2, part of every x86-64): classifies the bytes of
 * s (fewer than 16 when the text ends: the rest read as 0, which ends a word), writes all 16
 * lower-cased to out (which must have room for them), and returns how many of them lead the
 * block as ASCII letters or digits. Adds their letter and upper-case counts to *counts as the
 * byte loop does, and sets *dup when the word may be elongated (prev: the byte before the
 * block, 0 at a word's start). Same tokens as the byte loop, which is the reference. */
static inline unsigned gw_fold16(const unsigned char *s, size_t avail, char *out, unsigned prev,
                                 unsigned *counts, unsigned *dup) {
  __m128i v;
  if (avail >= 16) {
    v = _mm_loadu_si128((const __m128i *)(const void *)s);
  } else {
    unsigned char b[16] = {0};
    for (size_t j = 0; j < avail; j++)
      b[j] = s[j];
    v = _mm_loadu_si128((const __m128i *)(const void *)b);
  }
  /* Signed compares: bytes from 0x80 are negative and fall outside every range. */
  __m128i lx = _mm_or_si128(v, _mm_set1_epi8(0x20));
  __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lx, _mm_set1_epi8('a' - 1)),
                                _mm_cmplt_epi8(lx, _mm_set1_epi8('z' + 1)));
  __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
  __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
  unsigned word = (unsigned)_mm_movemask_epi8(_mm_or_si128(alpha, digit));
  unsigned stop = ~word & 0xffffu;
  unsigned k = stop ? (unsigned)__builtin_ctz(stop) : 16;
  unsigned in = (1u << k) - 1;
  __m128i low = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
  _mm_storeu_si128((__m128i *)(void *)out, low);
  /* Letters in the low half, upper case in the high half, counted together (16-bit lanes). */
  uint32_t x =
      ((unsigned)_mm_movemask_epi8(alpha) & in) | (((unsigned)_mm_movemask_epi8(upper) & in) << 16);
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  x = (x + (x >> 8)) & 0x001f001fu;
  *counts += ((x & 0xffu) << 16) + ((x >> 16) << 24);
  /* Elongation candidates: a byte equal to the two before it, or the first one equal to the
   * byte before the block (the run may have started there). gw_tokenize_ascii_word checks
   * candidates exactly; most doubled letters ("good", "all") are no candidates. */
  __m128i before = _mm_or_si128(_mm_slli_si128(low, 1), _mm_cvtsi32_si128((int)prev));
  unsigned same = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(low, before));
  *dup |= (((same & (same << 1)) | (same & 1u)) & in) != 0;
  return k;
}
#endif

/* A chunk of ASCII letters and digits with only sentence punctuation after them tokenizes to
 * itself, so the loader never makes it a symbol (gw_lex_entry_key): most chunks are such words and
 * need no symbol lookup (`shape` in gw_tokenize). */

/* The common chunk in one pass: an ASCII word of letters and digits, shorter than a token,
 * possibly with inner apostrophes or hyphens ("don't", "follow-up"), with only sentence
 * punctuation after it. Returns the bytes used, or 0 when the chunk is anything else (then the
 * general path reads it from its start). Same tokens as gw_tokenize_chunk. */
static inline __attribute__((always_inline)) size_t
gw_tokenize_ascii_word(gw_tokens *t, const unsigned char *s, size_t len, const gw_feeling_model *m,
                       const int src) {
  /* One pass over the word's bytes: classify, lower-case, count and find elongation candidates
   * while copying into the token; gw_token_finish hashes the finished token. The token is taken
   * first and given back when the chunk turns out not to be a plain word; at the token limit
   * the bytes go to a scratch buffer. */
  unsigned pending = t->pending_boundary;
  gw_token *tok = gw_tokens_push_word(t);
  char scratch[GW_TOKEN_MAX_BYTES];
  char *out = tok ? tok->text : scratch;
  unsigned counts = 0, dup = 0, prev = 0;
  /* A word of GW_TOKEN_MAX_BYTES or more is too long for a token: the loop stops one byte
   * short of that, so that it needs no bounds check of its own (checked once after it). */
  size_t lim = len < GW_TOKEN_MAX_BYTES - 1 ? len : GW_TOKEN_MAX_BYTES - 1;
  size_t i = 0;
  for (;;) {
#if GW_FEELING_SSE2
    /* Sixteen bytes at a time while they fit into the token: most words end in the first
     * block, so finding a word's end costs no data-dependent branch per byte. */
    while (i + 16 <= GW_TOKEN_MAX_BYTES) {
      unsigned k = gw_fold16(s + i, len - i, out + i, prev, &counts, &dup);
      i += k;
      if (k < 16)
        goto word_end;
      prev = (unsigned char)out[i - 1];
    }
#endif
    /* The rest of a long word, or every word without SSE2, a byte at a time. */
    for (; i < lim; i++) {
      uint32_t f = gw_byte_fold[s[i]];
      unsigned c = f & 0xffu;
      if (c == 0)
        break;
      counts += f;
      /* A doubled byte is only a candidate for elongation, checked below. */
      dup |= c == prev;
      prev = c;
      out[i] = (char)c;
    }
#if GW_FEELING_SSE2
  word_end:
#endif
    if (i >= lim)
      break;
    /* An inner apostrophe or hyphen keeps the word going ("don't", "follow-up"), as in
     * gw_tokenize_chunk; it is no letter, so no run of letters crosses it. */
    unsigned char c = s[i];
    if ((c != '\'' && c != '-') || i + 2 > lim || !(gw_byte_fold[s[i + 1]] & 0xffu))
      break;
    out[i] = (char)c;
    prev = c;
    i++;
  }
  if (i > GW_TOKEN_MAX_BYTES - 1 ||
      (i == GW_TOKEN_MAX_BYTES - 1 && i < len && (gw_byte_fold[s[i]] & 0xffu)))
    goto decline;
  size_t wl = i;
  /* Most words end at a space or the end of the text; the rest at sentence punctuation. */
  int trailing = i < len && !gw_is_ascii_space(s[i]);
  if (trailing) {
    while (i < len && gw_is_trailing_punct(s[i]))
      i++;
    if (i < len && !gw_is_ascii_space(s[i]))
      goto decline;
  }
  if (tok) {
    /* Three equal letters in a row ("sooo"): the same test as gw_word_add's run count, run
     * only for the words that may have one (dup). */
    int elong = 0;
    for (size_t k = 2; dup && k < wl && !elong; k++)
      elong = out[k] == out[k - 1] && out[k] == out[k - 2] && out[k] >= 'a' && out[k] <= 'z';
    tok->len = (uint8_t)wl;
    if (src) {
      tok->src_off = (uint32_t)(s - t->base);
      tok->src_len = (uint16_t)wl;
    }
    gw_token_finish(tok, (counts >> 16) & 0xffu, counts >> 24, elong, m);
  }
  for (size_t k = wl; trailing && k < i; k++) {
    gw_count_punct(t, s[k]);
    t->pending_boundary = 1;
  }
  /* The space after the word, if any: one trip less through gw_tokenize's loop per word. */
  return i + (i < len && s[i] == ' ');
decline:
  if (tok) {
    t->n--;
    t->pending_boundary = pending;
  }
  return 0;
}

/* Tokenizes text. With a model, a whitespace-separated chunk that is a symbol entry of the
 * lexicon (an emoticon such as ":-)" or "</3") becomes one token, also when sentence
 * punctuation follows it; without a model (lexicon keys) only words are produced. */
static inline __attribute__((always_inline)) void gw_tokenize_impl(gw_tokens *t, const char *text,
                                                                   size_t len,
                                                                   const gw_feeling_model *m,
                                                                   const int src) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  t->base = src ? s : NULL; /* the slower paths record positions when base is set */
  while (i < len) {
    uint32_t cp;
    size_t l;
    if (s[i] < 0x80) {
      if (gw_is_ascii_space(s[i])) {
        i++;
        continue;
      }
    } else if ((l = gw_utf8_decode(s + i, len - i, &cp)) > 0 && gw_is_space_cp(cp)) {
      i += l;
      continue;
    }
    size_t start = i;
    /* A hashtag or mention ("#fail", "@support"): the general path drops the sign and reads
     * the word, so the word's fast path gives the same tokens when no symbol starts with the
     * sign. One call site, so that the compiler inlines the fast path. */
    size_t sign = 0;
    if (!gw_is_ascii_alnum(s[i]))
      sign = (s[i] == '#' || s[i] == '@') && m && !m->symbol_first[s[i]] && i + 1 < len;
    if (gw_is_ascii_alnum(s[i + sign])) {
      size_t used = gw_tokenize_ascii_word(t, s + i + sign, len - i - sign, m, src);
      if (used) {
        i += sign + used;
        continue;
      }
    }
    /* While finding the chunk's end, tell plain words from possible symbols (shape):
     * 0 letters and digits so far, 1 sentence punctuation after them, 2 anything else. */
    int shape = gw_is_ascii_alnum(s[i]) ? 0 : 2;
    while (i < len) {
      unsigned char c = s[i];
      if (c < 0x80) {
        if (gw_is_ascii_space(c))
          break;
        if (gw_is_ascii_alnum(c))
          shape = shape == 1 ? 2 : shape;
        else if (gw_is_trailing_punct(c))
          shape = shape == 0 ? 1 : shape;
        else
          shape = 2;
        i++;
        continue;
      }
      shape = 2;
      l = gw_utf8_decode(s + i, len - i, &cp);
      if (l > 0 && gw_is_space_cp(cp))
        break;
      i += l ? l : 1;
    }
    size_t clen = i - start;
    if (m && shape == 2 && m->symbol_first[s[start]]) {
      size_t core = clen;
      while (core > 1 && gw_is_trailing_punct(s[start + core - 1]))
        core--;
      const gw_lex_entry *e = NULL;
      size_t used = 0;
      if (clen < GW_TOKEN_MAX_BYTES && (e = gw_lex_find(m, (const char *)s + start, clen)) &&
          (e->kind & K_SYMBOL))
        used = clen;
      else if (core < clen && (e = gw_lex_find(m, (const char *)s + start, core)) &&
               (e->kind & K_SYMBOL))
        used = core;
      if (used) {
        gw_push_bytes_token(t, (const char *)s + start, used, T_SYMBOL, m);
        for (size_t k = start + used; k < start + clen; k++)
          gw_count_punct(t, s[k]);
        if (used < clen)
          t->pending_boundary = 1;
        continue;
      }
    }
    if (m && shape == 2) {
      /* An emoticon glued to the word before it ("great:)", "sad:-("): the words, then the
       * symbol. The suffix starts at punctuation that can begin a symbol entry. */
      size_t core = clen;
      while (core > 1 && gw_is_trailing_punct(s[start + core - 1]))
        core--;
      size_t cut = 0;
      for (size_t p = 1; p < core && !cut; p++) {
        unsigned char c = s[start + p];
        if (c < 0x80 && !gw_is_ascii_alnum(c) && m->symbol_first[c] &&
            core - p < GW_TOKEN_MAX_BYTES) {
          const gw_lex_entry *e = gw_lex_find(m, (const char *)s + start + p, core - p);
          if (e && (e->kind & K_SYMBOL))
            cut = p;
        }
      }
      if (cut) {
        gw_tokenize_chunk(t, s + start, cut, m);
        t->pending_boundary = 1;
        gw_push_bytes_token(t, (const char *)s + start + cut, core - cut, T_SYMBOL, m);
        for (size_t k = start + core; k < start + clen; k++)
          gw_count_punct(t, s[k]);
        if (core < clen)
          t->pending_boundary = 1;
        continue;
      }
    }
    gw_tokenize_chunk(t, s + start, clen, m);
  }
}

/* Two copies of the tokenizer: one for scoring, which records nothing more, and one for
 * explanations, which also notes where each token is written in the text (src_off, src_len).
 * Scoring without a sink thus pays nothing for explanations (docs/BENCHMARKS.md). */
void gw_tokenize(gw_tokens *t, const char *text, size_t len, const gw_feeling_model *m) {
  gw_tokenize_impl(t, text, len, m, 0);
}

void gw_tokenize_src(gw_tokens *t, const char *text, size_t len, const gw_feeling_model *m) {
  gw_tokenize_impl(t, text, len, m, 1);
}
