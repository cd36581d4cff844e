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
/* Conversational reading (docs/FEELING_MODEL.md, "Reading a conversation"). */
#define GW_DESCRIBE_WEIGHT 0.3  /* a description alone ("not working", -2.2) stays neutral */
#define GW_ALONE_MAX_WORDS 4    /* a clause this short around one positive word is a comment */
#define GW_SHOUT_VALENCE   -1.2 /* shouting in a turn without praise */
#define GW_HEDGE_VALENCE   -1.0 /* "..., I guess": a trailing hedge concedes */
#define GW_SHOUT_MIN_LEN   4    /* a shouted word has this many letters at least ("NOTHING") */

/* The least intensity of a present category: the milli resolution of scored records, so that
 * a category the evidence admits is never rounded away. */
#define GW_FEELING_MIN_INTENSITY 0.001

/* The evidence each category needs before it is present, in the lexicon's category scale
 * (0..1): at least one item that is not negated and is annotated with at least this much of
 * the category. A word of merely negative (or positive) valence, or one that touches a
 * category in passing ("wtf" is mostly anger, only a little confusion), is not evidence.
 * Calibrated on the GoEmotions train split, per category the highest value whose F1 is within
 * 0.005 of the best (precision over recall when they tie); docs/FEELING_MODEL.md, "Feeling
 * categories". Order of gw_feeling_category. Floats, as the annotations are: 0.9f >= 0.9f. */
static const float gw_feeling_min_evidence[GW_FEELING_COUNT] = {
    0.9f, /* anger */
    0.6f, /* frustration */
    0.7f, /* confusion */
    0.9f, /* anxiety */
    0.4f, /* sadness */
    0.9f, /* gratitude */
    0.9f, /* relief */
    0.3f, /* satisfaction */
    0.5f, /* delight */
};

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
  uint16_t tok;          /* its first token */
  uint8_t negated;       /* negated or echoed (sentiment items) */
  uint8_t words;         /* its tokens with letters */
  uint8_t ntok;          /* its number of tokens (set only when explaining) */
  float v;               /* its contribution to the utterance's sum (0: none) */
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

/* Whether item x is courtesy in a conversation: a closing word, a formula, or a mild approval
 * (CONV_ACK); items without letters (emoji aside) count as nothing. */
static int gw_is_courtesy(const gw_item *x) {
  if (x->e && (x->e->kind & K_SENTIMENT) && !(x->e->kind & K_MODIFIER) && x->e->valence != 0)
    return x->e->conv == CONV_FORMULA || (!x->negated && x->e->conv == CONV_ACK);
  if (x->words == 0)
    return 1;
  return x->w && (x->w->kind & K_CLOSING);
}

static int gw_token_is(const gw_tokens *t, size_t i, const char *word) {
  size_t n = strlen(word);
  return i < t->n && t->v[i].len == n && memcmp(t->v[i].text, word, n) == 0;
}

/* Whether a turn shouts: a word of GW_SHOUT_MIN_LEN letters or more in capitals among
 * lower-case words ("I called 2 HOURS ago"), not a code ("KP19", "PAC"). Doubled '?' or '!'
 * are no cue: surprise goes both ways ("48??", "free??"). */
static int gw_shouts(const gw_tokens *t, int caps_differential) {
  for (size_t i = 0; caps_differential && i < t->n; i++) {
    const gw_token *k = &t->v[i];
    if ((k->flags & (T_CAPS | T_LETTERS)) != (T_CAPS | T_LETTERS) || k->len < GW_SHOUT_MIN_LEN)
      continue;
    int letters = 1;
    for (size_t j = 0; j < k->len && letters; j++)
      letters = k->text[j] >= 'a' && k->text[j] <= 'z';
    if (letters)
      return 1;
  }
  return 0;
}

/* Whether the turn ends a clause on "I guess" or "I suppose" after saying something ("thanks
 * I guess", "I'll wait, I suppose."): conceding without agreeing, resignation. "I guess so"
 * or "I suppose that works" agree and do not count. */
static int gw_trailing_hedge(const gw_tokens *t) {
  for (size_t i = 1; i + 1 < t->n; i++) { /* from 1: something was said before */
    if (!gw_token_is(t, i, "i"))
      continue;
    if (!gw_token_is(t, i + 1, "guess") && !gw_token_is(t, i + 1, "suppose"))
      continue;
    if (i + 2 == t->n || (t->v[i + 2].flags & T_BOUNDARY))
      return 1;
  }
  return 0;
}

/* Explaining: the felt-valence rules applied to hit h (the item's hit in the sink), and its
 * part of the felt sum. */
static void gw_explain_felt_hit(gw_feeling_explain *x, size_t h, unsigned rules, double felt) {
  if (h < x->nhits) {
    x->hits[h].felt_rules |= rules;
    x->hits[h].felt = felt;
  }
}

/* Explaining: a felt step (shout, hedge, resignation, '!' or '?') of the utterance. */
static void gw_explain_felt_step(gw_feeling_explain *x, gw_explain_rule rule, unsigned count,
                                 double delta) {
  gw_explain_step *st = gw_explain_push_step(x);
  if (!st)
    return;
  st->rule = rule;
  st->count = count;
  st->delta = delta;
}

/* The felt valence of a customer turn (docs/FEELING_MODEL.md, "Reading a conversation"), from
 * the items' contributions to the utterance sum: formulas count nothing, a mild approval alone
 * among formulas in its clause counts nothing, descriptions of the problem and words of no
 * feeling category count GW_DESCRIBE_WEIGHT, a positive word that comments alone on a turn
 * that is otherwise negative, or that opens "another ..." ("great, another week without
 * internet"), is sarcasm and counts as negated, as does all praise of a turn with a sarcasm
 * marker; shouting and a trailing hedge add a complaint. With a sink x (xu: the utterance's
 * index in it), records each hit's part and the felt steps; inlined, so that without one the
 * recording is compiled out. */
static inline __attribute__((always_inline)) void
gw_felt(const gw_tokens *t, const gw_item *items, size_t nitems, unsigned excl, unsigned quest,
        int shouts, gw_utt_detail *d, gw_feeling_explain *x, size_t xu) {
  double neg = 0, pos = 0;
  /* Lone positive comments: approvals (CONV_ACK, nothing when not sarcastic) and feeling
   * words ("lovely."), and the part of them that opens "another ...". */
  double lone_ack = 0, lone_feel = 0, lone_another = 0;
  unsigned n = 0;
  /* Explaining: the hit of the current item (items with a contribution are the hits, in
   * order); SIZE_MAX when the sink has no complete record of them. */
  size_t xh = SIZE_MAX;
  if (x && xu != SIZE_MAX && !x->failed)
    xh = x->utterances[xu].first_hit;
  /* Whether the turn thanks: then a bad feeling told in the past ("I was panicking") is what
   * the customer went through, and its end is relief. */
  int thanks = 0;
  for (size_t j = 0; j < nitems && !thanks; j++)
    thanks = items[j].v > 0 && !items[j].negated && items[j].e->conv == CONV_FORMULA &&
             items[j].e->cats[GW_FEELING_GRATITUDE] > 0;
  /* The sentence the current item is in: the token that ends it, and whether it asks. */
  size_t sentence_end = 0;
  int asks = 0, have_end = 0;
  int cue = 0;           /* a sarcasm marker: "thanks for nothing", "🙃" */
  unsigned resigned = 0; /* dismissive clauses: "whatever" */
  for (size_t s = 0; s < nitems;) {
    size_t e = s + 1;
    while (e < nitems && !(items[e].flags & T_BOUNDARY))
      e++;
    size_t courtesy = 0, clause_words = 0, whatever = 0;
    for (size_t j = s; j < e; j++) {
      courtesy += (size_t)gw_is_courtesy(&items[j]);
      clause_words += items[j].words;
      whatever += (size_t)(!items[j].e && gw_token_is(t, items[j].tok, "whatever"));
    }
    /* "fine, whatever", "ok whatever": a dismissive "whatever" among courtesy only. */
    if (whatever && courtesy + whatever == e - s) {
      resigned++;
      n++;
    }
    int another = e < nitems && gw_token_is(t, items[e].tok, "another");
    int past = 0;
    for (size_t j = s; thanks && j < e && !past; j++)
      past = gw_token_is(t, items[j].tok, "was") || gw_token_is(t, items[j].tok, "were") ||
             gw_token_is(t, items[j].tok, "been") || gw_token_is(t, items[j].tok, "thought");
    for (size_t j = s; j < e; j++) {
      const gw_item *x_ = &items[j];
      if (x_->v == 0)
        continue;
      size_t h = xh;
      if (x && xh != SIZE_MAX)
        xh++;
      /* A negated approval is a feeling ("not good"); a negated formula is still one ("no
       * thanks", "no, that's all, thank you"). */
      int role = x_->negated && x_->e->conv != CONV_FORMULA ? CONV_FEELING : x_->e->conv;
      cue |= role == CONV_SARCASM;
      /* One positive word among courtesy in a short clause: a comment on the rest. An emoji
       * is not one: it shows a feeling, and sarcasm has its own ("🙃", "🙄"). */
      if (x_->v > 0 && x_->words > 0 && role != CONV_FORMULA && role != CONV_DESCRIBE &&
          courtesy + 1 - (size_t)gw_is_courtesy(x_) == e - s &&
          clause_words <= GW_ALONE_MAX_WORDS) {
        if (role == CONV_ACK)
          lone_ack += x_->v;
        else
          lone_feel += x_->v;
        if (another)
          lone_another += x_->v;
        if (x && h != SIZE_MAX) /* its part is known once the turn is read (below) */
          gw_explain_felt_hit(
              x, h, GW_EXPLAIN_FELT_LONE | (role == CONV_ACK ? GW_EXPLAIN_FELT_LONE_ACK : 0u),
              x_->v);
        continue;
      }
      if (!have_end || x_->tok > sentence_end) {
        size_t k = x_->tok;
        while (k + 1 < t->n && !(t->v[k].flags & (T_QEND | T_SEND)))
          k++;
        sentence_end = k;
        asks = (t->v[k].flags & T_QEND) && !(t->v[k].flags & T_SEND);
        have_end = 1;
      }
      unsigned why = 0;
      double c = x_->v;
      if (asks && c > 0 && (role == CONV_FEELING || role == CONV_ACK)) {
        c *= GW_DESCRIBE_WEIGHT; /* "is it fountain pen friendly?" asks about it */
        why |= GW_EXPLAIN_FELT_ASKS;
      }
      if (role == CONV_FORMULA || (role == CONV_ACK && courtesy == e - s)) {
        c = 0;
        why |= role == CONV_FORMULA ? GW_EXPLAIN_FELT_FORMULA : GW_EXPLAIN_FELT_COURTESY;
      } else if (role == CONV_DESCRIBE || !x_->e->has_cats) {
        c *= GW_DESCRIBE_WEIGHT; /* the problem, or the customer's world: "holiday", "upgrade" */
        why |= role == CONV_DESCRIBE ? GW_EXPLAIN_FELT_DESCRIPTION : GW_EXPLAIN_FELT_NO_CATEGORY;
      } else if (x_->negated && x_->e->conv == CONV_DESCRIBE) {
        c = 0; /* "no outage": the absence of a problem is no feeling either */
        why |= GW_EXPLAIN_FELT_NO_PROBLEM;
      }
      if (past && c < 0) {
        c *= GW_NEG_FLIP_NEG; /* "thank you, I was really panicking": relief, like "not bad" */
        why |= GW_EXPLAIN_FELT_PAST;
      }
      n += c != 0;
      if (c < 0)
        neg += c;
      else
        pos += c;
      if (x && h != SIZE_MAX)
        gw_explain_felt_hit(x, h, why, c);
    }
    s = e;
  }
  /* Sarcasm: lone positive comments in a turn that says something bad and nothing else good
   * ("Being told it's our phones. Lovely."), or that open "another ...", say the opposite. */
  double sum = neg + pos;
  /* Explaining: which parts the sarcasm turns (1: the lone comments, 2: every positive part),
   * or which lone comments count as they are (3: the feeling words; approvals count 0). */
  int xflip = 0;
  if (cue || lone_another != 0) {
    /* A marked turn is sarcastic throughout: "Great. Another week without internet. Really
     * looking forward to that." */
    sum = neg + (pos + lone_ack + lone_feel) * GW_NEG_FLIP_POS;
    n += lone_ack + lone_feel != 0;
    xflip = 2;
  } else if (neg < 0 && pos == 0) {
    sum += (lone_ack + lone_feel) * GW_NEG_FLIP_POS;
    n += lone_ack + lone_feel != 0;
    xflip = 1;
  } else {
    sum += lone_feel; /* approval: "Lovely, that worked, thank you!" */
    n += lone_feel != 0;
    xflip = 3;
  }
  if (x && xu != SIZE_MAX && !x->failed) {
    gw_explain_utterance *u = &x->utterances[xu];
    for (size_t h = u->first_hit; h < u->first_hit + u->nhits && h < x->nhits; h++) {
      gw_explain_hit *hh = &x->hits[h];
      int lone = (hh->felt_rules & GW_EXPLAIN_FELT_LONE) != 0;
      if (lone && xflip == 3 && (hh->felt_rules & GW_EXPLAIN_FELT_LONE_ACK))
        hh->felt = 0;
      else if ((lone && xflip != 3) || (xflip == 2 && hh->felt > 0)) {
        hh->felt *= GW_NEG_FLIP_POS;
        hh->felt_rules |= GW_EXPLAIN_FELT_SARCASM;
      }
    }
    u->first_felt_step = x->nsteps;
  }
  /* Shouting without praise is complaint: calm customers do not shout ("I called 2 HOURS
   * ago", "there is NOTHING at my door"). */
  if (shouts && sum <= 0 && lone_feel == 0) {
    sum += GW_SHOUT_VALENCE;
    n++;
    if (x)
      gw_explain_felt_step(x, GW_EXPLAIN_SHOUT, 0, GW_SHOUT_VALENCE);
  }
  if (gw_trailing_hedge(t)) {
    sum += GW_HEDGE_VALENCE;
    n++;
    if (x)
      gw_explain_felt_step(x, GW_EXPLAIN_HEDGE, 0, GW_HEDGE_VALENCE);
  }
  sum += GW_HEDGE_VALENCE * resigned;
  if (x && resigned > 0)
    gw_explain_felt_step(x, GW_EXPLAIN_RESIGNATION, resigned, GW_HEDGE_VALENCE * resigned);
  if (sum != 0) {
    double s0 = sum;
    sum += gw_sign(sum) * GW_EXCL_ADD * excl;
    if (x && excl > 0)
      gw_explain_felt_step(x, GW_EXPLAIN_EXCLAMATION, excl, sum - s0);
    if (t->quest >= 2) {
      s0 = sum;
      sum += gw_sign(sum) * GW_QUEST_ADD * quest;
      if (x)
        gw_explain_felt_step(x, GW_EXPLAIN_QUESTION_MARKS, quest, sum - s0);
    }
  }
  double val = sum / sqrt(sum * sum + GW_NORM_ALPHA);
  d->felt = val > 1 ? 1 : val < -1 ? -1 : val;
  d->felt_items = n;
  if (x && xu != SIZE_MAX && !x->failed) {
    gw_explain_utterance *u = &x->utterances[xu];
    u->conversation = true;
    u->nfelt_steps = x->nsteps - u->first_felt_step;
    u->felt_sum = sum;
    u->felt = d->felt;
    u->felt_items = n;
  }
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
  h->role = e->conv;
  return x->nhits - 1;
}

/* ---------------------------------------------------------------------------------------- */

/* The scorer. Inlined into its callers below: where x is NULL the compiler removes every
 * recording step, so scoring without an explanation pays nothing for them (docs/BENCHMARKS.md,
 * "Explanations"); with a sink it records as it scores, from the same arithmetic. With
 * `conversation`, it also computes the felt valence a customer turn needs (gw_felt), which an
 * utterance scored alone does without. */
static inline __attribute__((always_inline)) void gw_score(const gw_feeling_model *m,
                                                           const char *text, size_t len,
                                                           int conversation, gw_utt_detail *d,
                                                           gw_feeling_explain *x) {
  memset(d, 0, sizeof(*d));
  gw_tokens t;
  gw_tokens_init(&t);
  if (x)
    gw_tokenize_src(&t, text, len, m); /* the tokens' positions, for the hits' texts */
  else
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
    size_t item_words = 0;
    for (size_t j = i; j < i + k; j++) {
      uint8_t f = t.v[j].flags;
      if (j > i)
        fl |= (uint8_t)(f & ~T_BOUNDARY);
      item_words += (f & T_LETTERS) != 0;
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
    items[nitems].tok = (uint16_t)i;
    items[nitems].words = (uint8_t)(item_words < 255 ? item_words : 255);
    items[nitems].negated = 0;
    items[nitems].v = 0;
    if (x)
      items[nitems].ntok = (uint8_t)k;
    words += item_words;
    nitems++;
    i += k;
  }
  if (contrast_at == SIZE_MAX)
    contrast_at = nitems;
  /* Caps emphasis needs a contrast: a shouted word among normal ones. */
  int caps_differential = caps > 0 && caps < words;
  d->words = t.n;
  d->low_information = t.n > 0 && t.n <= GW_LOW_INFO_MAX_TOK && closings == t.n;
  d->content_words = words > closings ? words - closings : 0;
  size_t xu = SIZE_MAX; /* the utterance's index in x->utterances */
  if (x && gw_explain_push_utterance(x)) {
    xu = x->nutterances - 1;
    x->utterances[xu].first_hit = x->nhits;
  }

  double sum = 0;
  double raw[GW_FEELING_COUNT] = {0};
  float evidence[GW_FEELING_COUNT] = {0}; /* strongest annotation of a non-negated item */
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
    items[j].v = (float)v;
    items[j].negated = (uint8_t)negated;
    if (x && xh != SIZE_MAX) {
      x->hits[xh].nsteps = x->nsteps - x->hits[xh].first_step;
      x->hits[xh].contribution = v;
    }
    /* "not angry" says nothing about anger: negated items give no feeling. */
    if (!negated && e->has_cats)
      for (int c = 0; c < GW_FEELING_COUNT; c++) {
        double ev = e->cats[c] * fabs(v) / 4.0;
        raw[c] += ev;
        if (e->cats[c] > evidence[c])
          evidence[c] = e->cats[c];
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
  if (xu != SIZE_MAX)
    x->utterances[xu].npunct = x->nsteps - x->utterances[xu].first_punct;
  if (conversation)
    gw_felt(&t, items, nitems, excl, quest, gw_shouts(&t, caps_differential), d, x, xu);
  /* A category is present only on enough evidence; its intensity then says how strongly it is
   * expressed: every item carrying it, by its annotation and its final valence. */
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double r = raw[c] * (1.0 + 0.1 * excl);
    double f = 0.0;
    if (evidence[c] >= gw_feeling_min_evidence[c] && r > 0) {
      f = 1.0 - exp(-GW_FEELING_RATE * r);
      if (f < GW_FEELING_MIN_INTENSITY)
        f = GW_FEELING_MIN_INTENSITY;
    }
    d->score.feelings[c] = f;
    if (xu != SIZE_MAX) {
      gw_explain_utterance *u = &x->utterances[xu];
      u->evidence[c] = evidence[c];
      u->min_evidence[c] = gw_feeling_min_evidence[c];
      u->held_back[c] = r > 0 && !(evidence[c] >= gw_feeling_min_evidence[c]);
    }
  }
  if (xu != SIZE_MAX) {
    gw_explain_utterance *u = &x->utterances[xu];
    u->min_intensity = GW_FEELING_MIN_INTENSITY;
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
    gw_score(m, text, len, 1, d, x);
  else
    gw_score(m, text, len, 1, d, NULL);
}

void gw_feeling_score_utterance(const gw_feeling_model *m, const char *text, size_t len,
                                gw_utterance_score *out) {
  gw_utt_detail d;
  gw_score(m, text, len, 0, &d, NULL);
  *out = d.score;
}

void gw_feeling_score_utterance_explained(const gw_feeling_model *m, const char *text, size_t len,
                                          gw_utterance_score *out, gw_feeling_explain *x) {
  gw_utt_detail d;
  if (x) {
    gw_explain_reset(x, false);
    gw_score(m, text, len, 0, &d, x);
  } else {
    gw_score(m, text, len, 0, &d, NULL);
  }
  *out = d.score;
}
