/*
 * The feeling model's tokenizer, private to lib/model/feeling/: UTF-8 text to tokens (words,
 * emoji, emoticon symbols) with what the rules need to know of each (caps, elongation, clause
 * boundaries, sentence ends) and its lexicon entry, looked up once. docs/FEELING_MODEL.md,
 * "Tokenizer". Pure; any thread; a gw_tokens is the caller's, released with gw_tokens_free.
 */
#ifndef GOODWILL_FEELING_TOKENIZER_H
#define GOODWILL_FEELING_TOKENIZER_H

#include "lexicon.h"

#include <stdint.h>
#include <stdlib.h>

#define GW_UTTERANCE_MAX_TOK 4096 /* tokens beyond this are not scored (documented) */

enum {
  T_CAPS = 1u << 0,     /* two or more letters, all upper case */
  T_ELONG = 1u << 1,    /* a letter repeated three or more times: "sooo" */
  T_BOUNDARY = 1u << 2, /* clause punctuation before this token */
  T_SYMBOL = 1u << 3,   /* emoticon chunk matched as a whole: ":-)" */
  T_EMOJI = 1u << 4,
  T_LETTERS = 1u << 5, /* has a letter: counts as a word for caps and low-information */
  T_QEND = 1u << 6,    /* the last token before a '?' */
  T_SEND = 1u << 7,    /* the last token before a '.' or '!' */
};

typedef struct gw_token {
  const gw_lex_entry *e; /* the token's own entry (any kind), looked up once; NULL: none */
  uint64_t state;        /* gw_word_hash of text, for lookups and phrase keys */
  char text[GW_TOKEN_MAX_BYTES];
  uint8_t len;
  uint8_t flags;
  /* Where the token is written in the text (its bytes as typed: case, elongation and
   * typographic apostrophes kept), for explanations; in the padding, so no larger. */
  uint16_t src_len;
  uint32_t src_off;
} gw_token;

typedef struct gw_tokens {
  gw_token *v;
  size_t n, cap;
  gw_token inline_v[64];
  unsigned excl, quest;
  unsigned pending_boundary;
  const unsigned char *base; /* gw_tokenize_src: the text, for src_off; else NULL */
} gw_tokens;

static inline void gw_tokens_init(gw_tokens *t) {
  /* The inline tokens are written before they are read: clearing them would cost more than
   * scoring a short utterance. */
  t->n = 0;
  t->excl = t->quest = t->pending_boundary = 0;
  t->v = t->inline_v;
  t->cap = GW_NELEM(t->inline_v);
}

static inline void gw_tokens_free(gw_tokens *t) {
  if (t->v != t->inline_v)
    free(t->v);
}

/* Tokenizes text. With a model, a whitespace-separated chunk that is a symbol entry of the
 * lexicon (an emoticon such as ":-)" or "</3") becomes one token, also when sentence
 * punctuation follows it; without a model (lexicon keys) only words are produced. */
void gw_tokenize(gw_tokens *t, const char *text, size_t len, const gw_feeling_model *m);
/* gw_tokenize that also records each token's src_off and src_len (explanations). */
void gw_tokenize_src(gw_tokens *t, const char *text, size_t len, const gw_feeling_model *m);

#endif
