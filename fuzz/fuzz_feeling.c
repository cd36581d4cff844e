/*
 * Fuzz target for the feeling model: any bytes are scored as one utterance, and split into
 * turns (one per line, the first byte of a line choosing the speaker) as an interaction, with
 * the built-in default lexicon, as goodwill-score and the scorer do with outside text.
 *
 * Besides crashes and sanitizer reports (the model must never read past `len`: libFuzzer's
 * buffer is not NUL-terminated), it checks the model's documented ranges and invariants,
 * aborting when one fails: valence in -1..1, intensities and empathy in 0..1, no NaN,
 * change = end - start, polarities (by the conversational band), the change direction and the
 * recovered / soured flags agree with the valences,
 * the turn counts, and that scoring is deterministic.
 *
 * The same bytes are also one input line of goodwill-score (gw_feeling_json_line): its fast
 * path for flat objects must write exactly the bytes of the general jansson path.
 *
 * Explanations (gw_feeling_explain): scoring into a sink gives the same scores as scoring
 * without one, and the explanation adds up to them (each hit's valence and rule deltas to its
 * contribution, the contributions and punctuation to the sum, the normalised sum to the
 * valence; the turns' weights to start and end, the agents' phrases to the empathy); its JSON
 * can always be written.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/buf.h"
#include "goodwill/feeling.h"

#define GW_FUZZ_MAX_TURNS 64

/* libFuzzer calls LLVMFuzzerInitialize once; the model is immutable after loading, so the
 * fuzz target keeps it for the whole run (loading per input would hide the scorer's cost). */
static gw_feeling_model *gw_fuzz_model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char err[256];
  if (gw_feeling_model_load(&gw_fuzz_model, NULL, err, sizeof(err)) != 0)
    abort(); /* the built-in lexicon must always load */
  return 0;
}

static int gw_in_range(double v, double lo, double hi) {
  return !isnan(v) && v >= lo && v <= hi;
}

static void check_utterance(const gw_utterance_score *s) {
  if (!gw_in_range(s->valence, -1, 1) || !gw_in_range(s->empathy, 0, 1))
    abort();
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    if (!gw_in_range(s->feelings[c], 0, 1))
      abort();
}

static void check_interaction(const gw_interaction_feeling *f, unsigned customers,
                              unsigned agents) {
  if (!gw_in_range(f->start, -1, 1) || !gw_in_range(f->end, -1, 1) ||
      !gw_in_range(f->empathy, 0, 1))
    abort();
  if (fabs(f->change - (f->end - f->start)) > 1e-12)
    abort();
  if (f->start_polarity != gw_feeling_conversation_polarity(f->start) ||
      f->end_polarity != gw_feeling_conversation_polarity(f->end))
    abort();
  /* The direction follows differing polarities, and never goes against the change. */
  if (f->start_polarity != f->end_polarity &&
      f->change_direction !=
          (f->end_polarity > f->start_polarity ? GW_CHANGE_IMPROVED : GW_CHANGE_WORSENED))
    abort();
  if ((f->change_direction == GW_CHANGE_IMPROVED && !(f->change > 0)) ||
      (f->change_direction == GW_CHANGE_WORSENED && !(f->change < 0)) ||
      (!f->has_customer_turns && f->change_direction != GW_CHANGE_UNCHANGED))
    abort();
  int start_neg = f->start_polarity == GW_POLARITY_NEGATIVE;
  int end_neg = f->end_polarity == GW_POLARITY_NEGATIVE;
  if (f->recovered != (f->has_customer_turns && start_neg && !end_neg))
    abort();
  if (f->soured != (f->has_customer_turns && !start_neg && end_neg))
    abort();
  if (f->customer_turns != customers || f->agent_turns != agents)
    abort();
  if (!f->has_customer_turns && (f->start != 0 || f->end != 0))
    abort();
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    if (!gw_in_range(f->start_feelings[c], 0, 1) || !gw_in_range(f->end_feelings[c], 0, 1))
      abort();
}

static int gw_close(double a, double b) {
  return fabs(a - b) <= 1e-9 * (1 + fabs(a) + fabs(b));
}

/* The explanation of utterance u adds up to valence v. */
static void check_explained_utterance(const gw_feeling_explain *x, size_t u, double v) {
  if (u >= x->nutterances)
    abort();
  const gw_explain_utterance *eu = &x->utterances[u];
  double sum = 0;
  for (size_t i = eu->first_hit; i < eu->first_hit + eu->nhits; i++) {
    const gw_explain_hit *h = &x->hits[i];
    double c = h->valence;
    for (size_t k = h->first_step; k < h->first_step + h->nsteps; k++)
      c += x->steps[k].delta;
    if (!gw_close(c, h->contribution) || h->text + h->text_len >= x->arena_len)
      abort();
    sum += h->contribution;
  }
  for (size_t k = eu->first_punct; k < eu->first_punct + eu->npunct; k++)
    sum += x->steps[k].delta;
  if (!gw_close(sum, eu->sum) || eu->valence != v)
    abort();
  /* Category minimums: held back exactly when there was evidence below the minimum. */
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    if (eu->held_back[c] !=
        (eu->feelings_raw[c] * eu->feelings_factor > 0 && eu->evidence[c] < eu->min_evidence[c]))
      abort();
}

/* The felt valence of customer turn t's utterance u adds up to the turn's felt valence. */
static void check_explained_felt(const gw_feeling_explain *x, size_t u, double felt) {
  const gw_explain_utterance *eu = &x->utterances[u];
  if (!eu->conversation || eu->felt != felt)
    abort();
  double sum = 0;
  for (size_t i = eu->first_hit; i < eu->first_hit + eu->nhits; i++)
    sum += x->hits[i].felt;
  for (size_t k = eu->first_felt_step; k < eu->first_felt_step + eu->nfelt_steps; k++)
    sum += x->steps[k].delta;
  double v = eu->felt_sum / sqrt(eu->felt_sum * eu->felt_sum + eu->alpha);
  if (!gw_close(sum, eu->felt_sum) || (v > 1 ? 1 : v < -1 ? -1 : v) != felt)
    abort();
}

static void check_explanations(const gw_feeling_model *m, const char *text, size_t size,
                               const gw_turn_text *turns, size_t n, const gw_utterance_score *a,
                               const gw_interaction_feeling *f) {
  gw_feeling_explain x;
  gw_feeling_explain_init(&x);
  gw_utterance_score s;
  gw_feeling_score_utterance_explained(m, text, size, &s, &x);
  if (memcmp(&s, a, sizeof(s)) != 0 || x.failed)
    abort();
  check_explained_utterance(&x, 0, s.valence);
  gw_buf b = GW_BUF_INIT;
  if (gw_feeling_explain_json(&x, &b) != 0)
    abort();
  gw_buf_free(&b);

  gw_interaction_feeling g;
  gw_feeling_score_interaction_explained(m, turns, n, &g, &x);
  if (memcmp(&g, f, sizeof(g)) != 0 || x.failed)
    abort();
  double sw = 0, sv = 0, ew = 0, ev = 0;
  for (size_t i = 0; i < x.nturns; i++) {
    const gw_explain_turn *t = &x.turns[i];
    if (t->index >= n || turns[t->index].speaker != GW_SPEAKER_CUSTOMER)
      abort();
    sw += t->start_weight;
    sv += t->start_weight * t->felt;
    ew += t->end_weight;
    ev += t->end_weight * t->felt;
    if (t->start_weight > 0 || t->end_weight > 0) {
      check_explained_utterance(&x, t->utterance, t->valence);
      check_explained_felt(&x, t->utterance, t->felt);
    }
  }
  if (g.has_customer_turns != (x.nturns > 0) ||
      (x.nturns > 0 && (!gw_close(sv / sw, g.start) || !gw_close(ev / ew, g.end))))
    abort();
  /* The conversational band gives the polarities, and the direction follows them or the
   * change's size. */
  if (x.nturns > 0 && (x.start != g.start || x.end != g.end || x.change != g.change ||
                       x.start_polarity != gw_feeling_conversation_polarity(x.start) ||
                       x.end_polarity != gw_feeling_conversation_polarity(x.end) ||
                       x.change_direction != g.change_direction ||
                       (x.direction_rule == 1) != (x.start_polarity != x.end_polarity) ||
                       (x.direction_rule == 2 && fabs(x.change) < x.change_min) ||
                       (x.direction_rule == 0 && g.change_direction != GW_CHANGE_UNCHANGED)))
    abort();
  static const double weights[GW_EXPLAIN_EMPATHY_KINDS] = {0.25, 0.25, 0.2, 0.2, 0.1};
  double empathy = 0;
  for (int k = 0; k < GW_EXPLAIN_EMPATHY_KINDS; k++) {
    empathy += weights[k] * x.agent_empathy[k].strength;
    if (x.agent_empathy[k].strength > 0 &&
        (x.agent_empathy_turn[k] >= n ||
         turns[x.agent_empathy_turn[k]].speaker != GW_SPEAKER_AGENT))
      abort();
  }
  if (!gw_close(empathy > 1 ? 1 : empathy, g.empathy))
    abort();
  if (gw_feeling_explain_json(&x, &b) != 0)
    abort();
  gw_buf_free(&b);
  gw_feeling_explain_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const gw_feeling_model *m = gw_fuzz_model;
  const char *text = (const char *)data;

  /* The whole input as one utterance, twice: the same text always scores the same. */
  gw_utterance_score a, b;
  gw_feeling_score_utterance(m, text, size, &a);
  check_utterance(&a);
  gw_feeling_score_utterance(m, text, size, &b);
  if (memcmp(&a, &b, sizeof(a)) != 0)
    abort();

  /* Lines as turns: the first byte of a line picks the speaker (customer, agent, bot), the
   * rest is the text. */
  gw_turn_text turns[GW_FUZZ_MAX_TURNS];
  size_t n = 0;
  unsigned customers = 0, agents = 0;
  for (size_t i = 0; i < size && n < GW_FUZZ_MAX_TURNS;) {
    const uint8_t *nl = memchr(data + i, '\n', size - i);
    size_t end = nl ? (size_t)(nl - data) : size;
    size_t len = end - i;
    gw_speaker_role role = len ? (gw_speaker_role)(data[i] % 3) : GW_SPEAKER_CUSTOMER;
    turns[n].speaker = role;
    turns[n].text = len ? text + i + 1 : text + i;
    turns[n].len = len ? len - 1 : 0;
    customers += role == GW_SPEAKER_CUSTOMER;
    agents += role == GW_SPEAKER_AGENT;
    n++;
    i = end + 1;
  }
  gw_interaction_feeling f, g;
  gw_feeling_score_interaction(m, turns, n, &f);
  check_interaction(&f, customers, agents);
  gw_feeling_score_interaction(m, turns, n, &g);
  if (memcmp(&f, &g, sizeof(f)) != 0)
    abort();
  check_explanations(m, text, size, turns, n, &a, &f);

  /* goodwill-score: fast path and jansson path agree byte for byte. */
  gw_buf fast = GW_BUF_INIT, slow = GW_BUF_INIT;
  if (gw_feeling_json_line(m, text, size, 7, 0, &fast) != 0 ||
      gw_feeling_json_line(m, text, size, 7, GW_FEELING_JSON_NO_FAST_PATH, &slow) != 0)
    abort();
  if (fast.len != slow.len || memcmp(fast.data, slow.data, fast.len) != 0)
    abort();
  gw_buf_free(&fast);
  gw_buf_free(&slow);
  /* With --explain: an answer for any bytes. */
  if (gw_feeling_json_line(m, text, size, 7, GW_FEELING_JSON_EXPLAIN, &slow) != 0)
    abort();
  gw_buf_free(&slow);

  /* A single turn: start and end are the same turn, so nothing changed. */
  if (size > 0) {
    gw_turn_text one = {GW_SPEAKER_CUSTOMER, text, size};
    gw_feeling_score_interaction(m, &one, 1, &f);
    check_interaction(&f, 1, 0);
    if (f.change != 0)
      abort();
  }
  return 0;
}
