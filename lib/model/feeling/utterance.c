/*
 * Utterance scoring (goodwill/feeling.h, gw_feeling_score_utterance): the tokens grouped
 * greedily into items (longest lexicon or rule phrase first), then the valence rules
 * (emphasis, modifiers and negation, contrast, sarcastic echo, questions that ask, punctuation,
 * normalisation), the feeling categories and the agent empathy phrases.
 * docs/FEELING_MODEL.md, "Utterance valence", "Feeling categories" and "Agent empathy".
 */
#include "lexicon.h"
#include "tokenizer.h"
#include "utterance.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rule constants (docs/FEELING_MODEL.md, "Utterance valence"). */
#define GW_NORM_ALPHA       15.0  /* x / sqrt(x^2 + alpha), Hutto & Gilbert 2014 */
#define GW_NEG_FLIP_POS     -0.75 /* "not good": flipped, most of the strength kept */
#define GW_NEG_FLIP_NEG     -0.5  /* "not bad": litotes, only mildly positive */
#define GW_CAPS_ADD         0.7   /* a sentiment word in CAPS among lower-case words */
#define GW_ELONG_ADD        0.3   /* "sooo goood" */
#define GW_EXCL_ADD         0.25  /* per '!' up to GW_EXCL_MAX */
#define GW_EXCL_MAX         4
#define GW_QUEST_ADD        0.15 /* per '?' up to GW_QUEST_MAX, only when there are >= 2 */
#define GW_QUEST_MAX        3
#define GW_QUESTION_WEIGHT  0.5 /* sentiment inside a question that asks ("is it good?") */
#define GW_CONTRAST_BEFORE  0.5
#define GW_CONTRAST_AFTER   1.5
#define GW_MOD_WINDOW       3
#define GW_FEELING_RATE     1.5 /* intensity = 1 - exp(-rate * raw) */
#define GW_LOW_INFO_MAX_TOK 4

_Static_assert(E_COUNT == GW_EXPLAIN_EMPATHY_KINDS, "explanations name every empathy kind");

/* How much each kind of empathy behaviour adds to the 0..1 empathy signal; sums to 1. */
static const double gw_empathy_kind_weight[E_COUNT] = {0.25, 0.25, 0.2, 0.2, 0.1};

/* Longest entry of one of the kinds in mask starting at token i; *ntok gets its length. Every
 * proper prefix of a phrase is in the table (prefix_kinds), so the match grows word by word and
 * stops at the first key that no phrase starts with: one lookup per word in the common case. */
static const gw_lex_entry *gw_match(const gw_feeling_model *m, const gw_tokens *t, size_t i,
                                    unsigned mask, size_t *ntok) {
  const gw_token *tok = &t->v[i];
  const gw_lex_entry *e = tok->e, *best = NULL;
  if (!e)
    return NULL;
  if (e->kind & mask) {
    best = e;
    *ntok = 1;
  }
  if (!(e->prefix_kinds & mask))
    return best;
  /* The key is built from whole token buffers (fixed-size copies, no loop over the bytes) and
   * its hash from the tokens' hashes: no byte of the text is read again. */
  char key[GW_PHRASE_KEY_BYTES + GW_TOKEN_MAX_BYTES];
  size_t n = tok->len;
  uint64_t h = tok->state;
  memcpy(key, tok->text, GW_TOKEN_MAX_BYTES);
  for (size_t j = i + 1; j < t->n && j - i < GW_PHRASE_MAX_TOKENS; j++) {
    const gw_token *nt = &t->v[j];
    if (nt->len == 0 || (nt->flags & T_BOUNDARY))
      break;
    key[n++] = ' ';
    memcpy(key + n, nt->text, GW_TOKEN_MAX_BYTES);
    n += nt->len;
    h = gw_hash_join(h, nt->state);
    e = gw_lex_find_h(m, h, key, n);
    if (!e)
      break;
    if (e->kind & mask) {
      best = e;
      *ntok = j - i + 1;
    }
    if (!(e->prefix_kinds & mask))
      break;
  }
  return best;
}

typedef struct gw_item {
  const gw_lex_entry *e; /* NULL: a word with no entry */
  const gw_lex_entry *w; /* the entry of its first token in any role ("just": K_ECHO) */
  uint8_t flags;         /* OR of its tokens' flags; T_BOUNDARY of its first token */
  uint8_t question;      /* in a question that asks rather than states (see gw_questions) */
  uint16_t cand;         /* the x-th item holds the x-th token that may start an empathy phrase */
  uint16_t tok;          /* its first token (set only when explaining) */
  uint8_t ntok;          /* its number of tokens (set only when explaining) */
} gw_item;

/* Words that open a question asking whether something is so ("is it any good?", "did the
 * refund go through?", "why is this so slow?" keeps its complaint: see gw_questions). */
static const char *const gw_question_openers[] = {
    "is",   "are",   "was",    "were", "do",  "does", "did",    "can",  "could",
    "will", "would", "should", "have", "has", "any",  "anyone", "shall"};

/* Marks the tokens of every sentence that ends in '?' and opens with an auxiliary verb: such a
 * question asks about a feeling rather than expressing it, so its sentiment counts half.
 * Questions opened by "why", "how" or "what" often carry a complaint and are left alone. */
static void gw_questions(const gw_tokens *t, uint8_t *q) {
  size_t start = 0;
  for (size_t i = 0; i < t->n; i++) {
    q[i] = 0;
    uint8_t f = t->v[i].flags;
    if (!(f & (T_QEND | T_SEND)))
      continue;
    if ((f & T_QEND) && !(f & T_SEND)) {
      const gw_token *first = &t->v[start];
      int opener = 0;
      for (size_t k = 0; k < GW_NELEM(gw_question_openers) && !opener; k++)
        opener = strlen(gw_question_openers[k]) == first->len &&
                 memcmp(gw_question_openers[k], first->text, first->len) == 0;
      for (size_t k = start; opener && k <= i; k++)
        q[k] = 1;
    }
    start = i + 1;
  }
}

/* The sarcastic echo "great, just great": a positive item repeated after a clause break and
 * "just", ending its clause, says the opposite of the word ("good, just good enough" does
 * not). */
static int gw_is_echo(const gw_item *items, size_t nitems, size_t a) {
  return a + 2 < nitems && items[a].e && items[a].e->valence > 0 && items[a + 2].e == items[a].e &&
         items[a + 1].w && (items[a + 1].w->kind & K_ECHO) && (items[a + 1].flags & T_BOUNDARY) &&
         (a + 3 == nitems || (items[a + 3].flags & T_BOUNDARY));
}

static double gw_sign(double x) {
  return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
}

double gw_feeling_empathy_of(const double kinds[E_COUNT]) {
  double s = 0;
  for (int k = 0; k < E_COUNT; k++)
    s += gw_empathy_kind_weight[k] * kinds[k];
  return s > 1 ? 1 : s;
}

/* ---------------------------------------------------------------------------------------- */
/* Recording an explanation: called by the explaining copy of gw_score only. */

/* Copies tokens [first, first + ntok) as written in text into the sink's arena. */
static size_t gw_explain_span(gw_feeling_explain *x, const gw_tokens *t, size_t first, size_t ntok,
                              const char *text, size_t len, size_t *n) {
  const gw_token *a = &t->v[first], *b = &t->v[first + ntok - 1];
  size_t s = a->src_off, e = (size_t)b->src_off + b->src_len;
  if (e > len || s > e)
    s = e = 0; /* cannot happen for tokens with an entry; never read outside the text */
  *n = e - s;
  return gw_explain_text(x, text + s, e - s);
}

/* Appends a step to the hit being recorded (its steps are contiguous: nothing else is pushed
 * between a hit's first and last step). cue: the item that triggered it, or NULL. */
static void gw_explain_step_add(gw_feeling_explain *x, const gw_tokens *t, const char *text,
                                size_t len, gw_explain_rule rule, double factor, double boost,
                                unsigned count, double delta, const gw_item *cue) {
  size_t cue_off = 0, cue_len = 0;
  if (cue)
    cue_off = gw_explain_span(x, t, cue->tok, cue->ntok, text, len, &cue_len);
  gw_explain_step *st = gw_explain_push_step(x);
  if (!st)
    return;
  st->rule = rule;
  st->factor = factor;
  st->boost = boost;
  st->count = count;
  st->delta = delta;
  st->cue = cue_off;
  st->cue_len = cue_len;
}

/* Starts the hit of item it (entry e): its text as written and its lexicon entry. Returns its
 * index in x->hits, or SIZE_MAX when memory ran short. */
static size_t gw_explain_hit_begin(gw_feeling_explain *x, const gw_feeling_model *m,
                                   const gw_tokens *t, const gw_item *it, const gw_lex_entry *e,
                                   const char *text, size_t len) {
  size_t tlen, toff = gw_explain_span(x, t, it->tok, it->ntok, text, len, &tlen);
  size_t eoff = gw_explain_text(x, m->keys + e->key_off, e->key_len);
  gw_explain_hit *h = gw_explain_push_hit(x);
  if (!h)
    return SIZE_MAX;
  h->text = toff;
  h->text_len = tlen;
  h->entry = eoff;
  h->entry_len = e->key_len;
  h->valence = e->valence;
  h->line = e->line;
  h->first_step = x->nsteps;
  return x->nhits - 1;
}

/* ---------------------------------------------------------------------------------------- */

/* The scorer. Inlined into its callers below: where x is NULL the compiler removes every
 * recording step, so scoring without an explanation pays nothing for them (docs/BENCHMARKS.md,
 * "Explanations"); with a sink it records as it scores, from the same arithmetic. */
static inline __attribute__((always_inline)) void gw_score(const gw_feeling_model *m,
                                                           const char *text, size_t len,
                                                           gw_utt_detail *d,
                                                           gw_feeling_explain *x) {
  memset(d, 0, sizeof(*d));
  gw_tokens t;
  gw_tokens_init(&t);
  gw_tokenize(&t, text, len, m);

  /* Greedy longest match into items. */
  gw_item inline_items[64];
  gw_item *items = t.n <= GW_NELEM(inline_items) ? inline_items : malloc(t.n * sizeof(*items));
  size_t nitems = 0;
  if (!items) {
    if (x)
      x->failed = true;
    gw_tokens_free(&t);
    return;
  }
  uint8_t inline_q[64];
  uint8_t *q = NULL;
  if (t.quest > 0) {
    q = t.n <= sizeof(inline_q) ? inline_q : malloc(t.n);
    if (q)
      gw_questions(&t, q);
  }
  /* One pass over the tokens: the items, and what the rules need to know about all tokens
   * (words and caps for the caps differential, closing words, empathy, the first contrast). */
  size_t words = 0, caps = 0, closings = 0;
  size_t ncand = 0;
  size_t contrast_at = SIZE_MAX;
  for (size_t i = 0; i < t.n;) {
    size_t k = 1;
    const gw_lex_entry *w = t.v[i].e, *e = w;
    /* Most words start no phrase: only those that do need gw_match. */
    if (e && (e->prefix_kinds & (K_SENTIMENT | K_MODIFIER)))
      e = gw_match(m, &t, i, K_SENTIMENT | K_MODIFIER, &k);
    else if (e && !(e->kind & (K_SENTIMENT | K_MODIFIER)))
      e = NULL;
    if (e && (e->kind & K_CONTRAST) && contrast_at == SIZE_MAX)
      contrast_at = nitems;
    uint8_t fl = t.v[i].flags;
    for (size_t j = i; j < i + k; j++) {
      uint8_t f = t.v[j].flags;
      if (j > i)
        fl |= (uint8_t)(f & ~T_BOUNDARY);
      words += (f & T_LETTERS) != 0;
      caps += (f & (T_LETTERS | T_CAPS)) == (T_LETTERS | T_CAPS);
      const gw_lex_entry *te = t.v[j].e;
      if (te) {
        /* A list of the few tokens that may start an empathy phrase, kept without a branch:
         * the empathy pass below visits only them. */
        items[ncand].cand = (uint16_t)j;
        ncand += ((te->kind | te->prefix_kinds) & K_EMPATHY) != 0;
        closings += (te->kind & K_CLOSING) != 0;
      }
    }
    items[nitems].e = e;
    items[nitems].flags = fl;
    items[nitems].w = w;
    items[nitems].question = q ? q[i] : 0;
    if (x) {
      items[nitems].tok = (uint16_t)i;
      items[nitems].ntok = (uint8_t)k;
    }
    nitems++;
    i += k;
  }
  if (contrast_at == SIZE_MAX)
    contrast_at = nitems;
  /* Caps emphasis needs a contrast: a shouted word among normal ones. */
  int caps_differential = caps > 0 && caps < words;
  d->words = t.n;
  d->low_information = t.n > 0 && t.n <= GW_LOW_INFO_MAX_TOK && closings == t.n;
  size_t xu = SIZE_MAX; /* the utterance's index in x->utterances */
  if (x && gw_explain_push_utterance(x)) {
    xu = x->nutterances - 1;
    x->utterances[xu].first_hit = x->nhits;
  }

  double sum = 0;
  double raw[GW_FEELING_COUNT] = {0};
  for (size_t j = 0; j < nitems; j++) {
    const gw_lex_entry *e = items[j].e;
    if (!e || !(e->kind & K_SENTIMENT) || (e->kind & K_MODIFIER) || e->valence == 0)
      continue;
    double v = e->valence;
    size_t xh = x ? gw_explain_hit_begin(x, m, &t, &items[j], e, text, len) : SIZE_MAX;
    double v0 = v;
    if (caps_differential && (items[j].flags & T_CAPS)) {
      v += gw_sign(v) * GW_CAPS_ADD;
      if (x)
        gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_CAPS, 0, 0, 0, v - v0, NULL);
    }
    if (items[j].flags & T_ELONG) {
      v0 = v;
      v += gw_sign(v) * GW_ELONG_ADD;
      if (x)
        gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_ELONGATION, 0, 0, 0, v - v0, NULL);
    }
    /* Modifiers in the GW_MOD_WINDOW items before, within the clause. */
    static const double decay[GW_MOD_WINDOW] = {1.0, 0.8, 0.6};
    double boost = 0;
    int negated = 0;
    const gw_item *negator = NULL;        /* explaining: the nearest negator */
    const gw_item *boosts[GW_MOD_WINDOW]; /* explaining: the modifiers and their boosts */
    double boost_of[GW_MOD_WINDOW];
    size_t nboosts = 0;
    for (size_t k = 1; k <= GW_MOD_WINDOW && k <= j; k++) {
      if (items[j - k + 1].flags & T_BOUNDARY)
        break;
      const gw_lex_entry *p = items[j - k].e;
      if (!p)
        continue;
      if (p->kind & K_CONTRAST)
        break;
      if (p->kind & K_NEGATOR) {
        if (x && !negated)
          negator = &items[j - k];
        negated = 1;
      } else if (p->kind & K_BOOST) {
        /* "sooo good", "VERY good": an emphasised modifier modifies more. */
        double b =
            p->boost * decay[k - 1] *
            ((items[j - k].flags & T_ELONG) || (caps_differential && (items[j - k].flags & T_CAPS))
                 ? 1.5
                 : 1.0);
        boost += b;
        if (x) {
          boosts[nboosts] = &items[j - k];
          boost_of[nboosts++] = b;
        }
      }
    }
    double boost_sum = boost;
    if (boost < -0.8)
      boost = -0.8;
    if (boost > 1.0)
      boost = 1.0;
    v0 = v;
    v *= 1.0 + boost;
    if (x) {
      /* Each modifier's share of the change: its boost, scaled down when the sum was clamped. */
      for (size_t b = 0; b < nboosts; b++)
        if (boost_of[b] != 0)
          gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_MODIFIER, 0, boost_of[b], 0,
                              v0 * boost_of[b] * (boost == boost_sum ? 1.0 : boost / boost_sum),
                              boosts[b]);
    }
    int echo_first = 0, echo_second = 0;
    if ((echo_first = gw_is_echo(items, nitems, j)) ||
        (echo_second = j >= 2 && gw_is_echo(items, nitems, j - 2)))
      negated = 1;
    if (negated) {
      double f = v > 0 ? GW_NEG_FLIP_POS : GW_NEG_FLIP_NEG;
      v0 = v;
      v *= f;
      if (x)
        gw_explain_step_add(x, &t, text, len, negator ? GW_EXPLAIN_NEGATION : GW_EXPLAIN_SARCASM, f,
                            0, 0, v - v0,
                            negator       ? negator
                            : echo_first  ? &items[j + 1]
                            : echo_second ? &items[j - 1]
                                          : NULL);
    }
    if (items[j].question) {
      v0 = v;
      v *= GW_QUESTION_WEIGHT;
      if (x)
        gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_QUESTION, GW_QUESTION_WEIGHT, 0, 0, v - v0,
                            NULL);
    }
    if (contrast_at < nitems) {
      double f = j < contrast_at ? GW_CONTRAST_BEFORE : GW_CONTRAST_AFTER;
      v0 = v;
      v *= f;
      if (x)
        gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_CONTRAST, f, 0, 0, v - v0,
                            &items[contrast_at]);
    }
    sum += v;
    if (x && xh != SIZE_MAX) {
      x->hits[xh].nsteps = x->nsteps - x->hits[xh].first_step;
      x->hits[xh].contribution = v;
    }
    /* "not angry" says nothing about anger: negated items give no feeling. */
    if (!negated && e->has_cats)
      for (int c = 0; c < GW_FEELING_COUNT; c++) {
        double ev = e->cats[c] * fabs(v) / 4.0;
        raw[c] += ev;
        if (x && xh != SIZE_MAX)
          x->hits[xh].feelings[c] = ev;
      }
  }
  if (q != inline_q)
    free(q);

  unsigned excl = t.excl < GW_EXCL_MAX ? t.excl : GW_EXCL_MAX;
  unsigned quest = t.quest < GW_QUEST_MAX ? t.quest : GW_QUEST_MAX;
  if (xu != SIZE_MAX) {
    x->utterances[xu].nhits = x->nhits - x->utterances[xu].first_hit;
    x->utterances[xu].first_punct = x->nsteps;
  }
  if (sum != 0) {
    double s0 = sum;
    sum += gw_sign(sum) * GW_EXCL_ADD * excl;
    if (x && excl > 0)
      gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_EXCLAMATION, 0, 0, excl, sum - s0, NULL);
    if (t.quest >= 2) {
      s0 = sum;
      sum += gw_sign(sum) * GW_QUEST_ADD * quest;
      if (x)
        gw_explain_step_add(x, &t, text, len, GW_EXPLAIN_QUESTION_MARKS, 0, 0, quest, sum - s0,
                            NULL);
    }
  }
  double val = sum / sqrt(sum * sum + GW_NORM_ALPHA);
  if (val > 1)
    val = 1;
  if (val < -1)
    val = -1;
  d->score.valence = val;
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double r = raw[c] * (1.0 + 0.1 * excl);
    d->score.feelings[c] = r > 0 ? 1.0 - exp(-GW_FEELING_RATE * r) : 0.0;
  }
  if (xu != SIZE_MAX) {
    gw_explain_utterance *u = &x->utterances[xu];
    u->npunct = x->nsteps - u->first_punct;
    u->sum = sum;
    u->alpha = GW_NORM_ALPHA;
    u->valence = val;
    memcpy(u->feelings_raw, raw, sizeof(raw));
    u->feelings_factor = 1.0 + 0.1 * excl;
    u->first_empathy = x->nempathy;
  }

  /* Empathy phrases, matched on their own so that "i'm sorry" is both a (negative) sentiment
   * phrase and an apology. */
  for (size_t ci = 0, next = 0; ci < ncand; ci++) {
    size_t i = items[ci].cand, k = 1;
    if (i < next)
      continue; /* inside the phrase matched before */
    const gw_lex_entry *e = gw_match(m, &t, i, K_EMPATHY, &k);
    if (e && e->empathy > d->empathy_kind[e->empathy_kind])
      d->empathy_kind[e->empathy_kind] = e->empathy;
    if (x && e) {
      size_t plen, poff = gw_explain_span(x, &t, i, k, text, len, &plen);
      gw_explain_empathy *p = gw_explain_push_empathy(x);
      if (p) {
        p->text = poff;
        p->text_len = plen;
        p->kind = e->empathy_kind;
        p->strength = e->empathy;
      }
    }
    next = i + (e ? k : 1);
  }
  if (xu != SIZE_MAX)
    x->utterances[xu].nempathy = x->nempathy - x->utterances[xu].first_empathy;
  if (items != inline_items)
    free(items);
  d->score.empathy = gw_feeling_empathy_of(d->empathy_kind);
  gw_tokens_free(&t);
}

void gw_feeling_score_detail(const gw_feeling_model *m, const char *text, size_t len,
                             gw_utt_detail *d, gw_feeling_explain *x) {
  if (x)
    gw_score(m, text, len, d, x);
  else
    gw_score(m, text, len, d, NULL);
}

void gw_feeling_score_utterance(const gw_feeling_model *m, const char *text, size_t len,
                                gw_utterance_score *out) {
  gw_utt_detail d;
  gw_score(m, text, len, &d, NULL);
  *out = d.score;
}

void gw_feeling_score_utterance_explained(const gw_feeling_model *m, const char *text, size_t len,
                                          gw_utterance_score *out, gw_feeling_explain *x) {
  gw_utt_detail d;
  if (x)
    gw_explain_reset(x, false);
  gw_feeling_score_detail(m, text, len, &d, x);
  *out = d.score;
}
