/*
 * gw_feeling: the feeling model. Reads the valence (-1..1) and the feeling categories of an
 * utterance from its words, and the feeling of a whole interaction from its turns: how the
 * customer felt at the start, at the end, the change, and the agent's empathy signal.
 *
 * Pure: no I/O apart from the load functions reading the lexicon and overlay files; no libuv,
 * Kafka or Redis. A loaded model is immutable: any number of threads may score with it at once.
 * Formulas and rules: docs/FEELING_MODEL.md.
 */
#ifndef GOODWILL_FEELING_H
#define GOODWILL_FEELING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_feeling_model gw_feeling_model;

typedef enum gw_feeling_category {
  GW_FEELING_ANGER,
  GW_FEELING_FRUSTRATION,
  GW_FEELING_CONFUSION,
  GW_FEELING_ANXIETY,
  GW_FEELING_SADNESS,
  GW_FEELING_GRATITUDE,
  GW_FEELING_RELIEF,
  GW_FEELING_SATISFACTION,
  GW_FEELING_DELIGHT,
  GW_FEELING_COUNT
} gw_feeling_category;

typedef enum gw_polarity {
  GW_POLARITY_NEGATIVE = -1,
  GW_POLARITY_NEUTRAL = 0,
  GW_POLARITY_POSITIVE = 1,
} gw_polarity;

/* How the customer's feeling changed from the start to the end of an interaction
 * (docs/FEELING_MODEL.md, "Reading a conversation"). */
typedef enum gw_change_direction {
  GW_CHANGE_WORSENED = -1,
  GW_CHANGE_UNCHANGED = 0,
  GW_CHANGE_IMPROVED = 1,
} gw_change_direction;

typedef struct gw_utterance_score {
  double valence;                    /* -1..1 */
  double feelings[GW_FEELING_COUNT]; /* intensity 0..1 per category */
  double empathy;                    /* 0..1, meaningful for agent turns */
} gw_utterance_score;

typedef enum gw_speaker_role {
  GW_SPEAKER_CUSTOMER,
  GW_SPEAKER_AGENT,
  GW_SPEAKER_BOT
} gw_speaker_role;

typedef struct gw_turn_text {
  gw_speaker_role speaker;
  const char *text; /* UTF-8, borrowed */
  size_t len;
} gw_turn_text;

typedef struct gw_interaction_feeling {
  double start, end, change; /* felt valences of the customer, -1..1; change = end - start */
  gw_polarity start_polarity, end_polarity; /* by the conversational band, not -0.05/+0.05 */
  gw_change_direction change_direction;
  bool recovered, soured;
  bool has_customer_turns; /* false: start/end are 0 and neutral */
  double start_feelings[GW_FEELING_COUNT];
  double end_feelings[GW_FEELING_COUNT];
  double empathy; /* agent empathy / validation, 0..1 */
  unsigned customer_turns, agent_turns;
} gw_interaction_feeling;

/* Loads a lexicon (the project's format, VADER-style or AFINN-style, detected), or the
 * built-in default lexicon when path is NULL. Errors name the line and reason in err. */
int gw_feeling_model_load(gw_feeling_model **out, const char *path, char *err, size_t errlen);
/* The same from len bytes in memory (a lexicon file's content); source names them in errors. */
int gw_feeling_model_parse(gw_feeling_model **out, const char *source, const char *data, size_t len,
                           char *err, size_t errlen);
/*
 * The same with a lexicon overlay merged over the lexicon (docs/FEELING_MODEL.md,
 * "Customisation"): the overlay is a file in the goodwill format whose entries are added to the
 * lexicon, or replace the lexicon's entry of the same key (valence and categories as a whole;
 * valence 0 neutralises a word). overlay_path NULL: no overlay, as gw_feeling_model_load. The
 * version gains "+overlay.<12 hex digits of the overlay's SHA-256>". Errors name the file (the
 * lexicon's or the overlay's), the line and the reason in err; *out is NULL on failure.
 */
int gw_feeling_model_load_overlaid(gw_feeling_model **out, const char *path,
                                   const char *overlay_path, char *err, size_t errlen);
/* In memory: overlay NULL means no overlay (an empty overlay is overlay_len 0, not NULL). */
int gw_feeling_model_parse_overlaid(gw_feeling_model **out, const char *source, const char *data,
                                    size_t len, const char *overlay_source, const char *overlay,
                                    size_t overlay_len, char *err, size_t errlen);
void gw_feeling_model_free(gw_feeling_model *m);
/* "<model>-<version>+lex.<8 hex digits of the lexicon hash>", followed by
 * "+overlay.<12 hex digits of the overlay's SHA-256>" when an overlay was merged. At most
 * GW_FEELING_VERSION_MAX bytes with its NUL. */
#define GW_FEELING_VERSION_MAX 64
const char *gw_feeling_model_version(const gw_feeling_model *m);
/* The version of the built-in default model, without loading it (for --version and
 * goodwill_build_info of daemons that do not score). */
void gw_feeling_default_version(char *out, size_t outlen);

void gw_feeling_score_utterance(const gw_feeling_model *m, const char *text, size_t len,
                                gw_utterance_score *out);
void gw_feeling_score_interaction(const gw_feeling_model *m, const gw_turn_text *turns,
                                  size_t nturns, gw_interaction_feeling *out);

/* ---------------------------------------------------------------------------------------- */
/* Explanations (docs/FEELING_MODEL.md, "Explanations"): why a score is what it is.
 *
 * Scoring into a sink records, for an utterance, every lexicon hit (the word or phrase as
 * written, the entry it matched, its lexicon valence), each rule step that changed it with the
 * amount, what punctuation added, the normalisation, the category evidence of each hit and the
 * agent empathy phrases; for an interaction, every scored customer turn with its valence, whether
 * it was low-information, its weights in the start and end windows, the utterance explanation
 * of each turn with a weight, and the agent phrases behind the empathy signal. The numbers add up:
 * for each hit, valence + the deltas of its steps = contribution; the contributions plus the
 * punctuation deltas = sum (S); valence = S / sqrt(S^2 + alpha), clamped to -1..1; a category's raw
 * score is the sum of the hits' evidence, its intensity 1 - exp(-1.5 x raw x feelings_factor). An
 * interaction's start (end) is the mean of its turns' valences weighted by start_weight
 * (end_weight).
 *
 * Scoring without a sink runs a copy of the scorer in which every recording step is compiled
 * out; what remains is the tokenizer noting where each token is written (docs/BENCHMARKS.md,
 * "Explanations": +0.75% instructions per utterance, not measurable in time). The sink is the
 * caller's: zero it with gw_feeling_explain_init, reuse it (each scoring call starts it afresh),
 * release it with gw_feeling_explain_free. Its texts are copies in its own arena (offsets below are
 * into `arena`). One sink per thread. When memory runs short `failed` is set and the explanation is
 * incomplete (the scores themselves are not affected). */

typedef enum gw_explain_rule {
  GW_EXPLAIN_CAPS,           /* hit: + 0.7 in the direction of its valence */
  GW_EXPLAIN_ELONGATION,     /* hit: + 0.3 in the direction of its valence */
  GW_EXPLAIN_MODIFIER,       /* hit: a booster or dampener, v x (1 + sum of boosts) */
  GW_EXPLAIN_NEGATION,       /* hit: x -0.75 (positive v) or x -0.5 (negative v) */
  GW_EXPLAIN_SARCASM,        /* hit: the echo "great, just great", negated as above */
  GW_EXPLAIN_QUESTION,       /* hit: in a question that asks, x 0.5 */
  GW_EXPLAIN_CONTRAST,       /* hit: x 0.5 before the first but/however, x 1.5 after */
  GW_EXPLAIN_EXCLAMATION,    /* utterance: + 0.25 per '!' (at most 4) in the direction of S */
  GW_EXPLAIN_QUESTION_MARKS, /* utterance: + 0.15 per '?' (at most 3) when there are 2 or more */
  GW_EXPLAIN_SHOUT,          /* felt: - 1.2 for a shouted word in a turn without praise */
  GW_EXPLAIN_HEDGE,          /* felt: - 1.0 for a trailing "I guess" / "I suppose" */
  GW_EXPLAIN_RESIGNATION,    /* felt: - 1.0 per dismissive "whatever" clause (count) */
  GW_EXPLAIN_RULE_COUNT
} gw_explain_rule;

typedef struct gw_explain_step {
  gw_explain_rule rule;
  double factor;       /* NEGATION, SARCASM, QUESTION, CONTRAST: the multiplier; else 0 */
  double boost;        /* MODIFIER: this modifier's boost (after distance decay and emphasis) */
  unsigned count;      /* EXCLAMATION, QUESTION_MARKS: the marks counted (after the caps) */
  double delta;        /* what the step added to the hit's valence (or to S) */
  size_t cue, cue_len; /* the word(s) that triggered it as written, in arena; cue_len 0: none */
} gw_explain_step;

typedef struct gw_explain_hit {
  size_t text, text_len;             /* the word or phrase as written, in arena */
  size_t entry, entry_len;           /* the lexicon key it matched, in arena */
  double valence;                    /* lexicon valence, -4..4 */
  unsigned line;                     /* lexicon line; 0: none (derived inflection or built in) */
  size_t first_step, nsteps;         /* its rule steps, in order of application, in steps */
  double contribution;               /* valence + its steps' deltas: what it adds to S */
  double feelings[GW_FEELING_COUNT]; /* raw category evidence it gave (negated hits give none) */
  /* Felt valence (customer turns of an interaction only; docs/FEELING_MODEL.md, "Reading a
   * conversation"): the conversational role of its entry, what the felt-valence rules did to
   * its contribution (GW_EXPLAIN_FELT_* bits) and what it adds to the
   * felt sum. */
  unsigned role; /* GW_EXPLAIN_ROLE_* */
  unsigned felt_rules;
  double felt; /* its part of felt_sum */
} gw_explain_hit;

/* Conversational roles of a hit's entry (rules.c): feeling, formula ("thanks", "hello"),
 * acknowledgement ("ok", "fine"), description of the problem, sarcasm marker. */
enum {
  GW_EXPLAIN_ROLE_FEELING,
  GW_EXPLAIN_ROLE_FORMULA,
  GW_EXPLAIN_ROLE_ACK,
  GW_EXPLAIN_ROLE_DESCRIBE,
  GW_EXPLAIN_ROLE_SARCASM,
  GW_EXPLAIN_ROLE_COUNT
};

/* What the felt-valence rules did to a hit's contribution (bits of gw_explain_hit.felt_rules).
 * felt = contribution x the factors of the rules that applied (multiplications, in any order);
 * a lone approval counts 0 unless the turn is sarcastic. */
#define GW_EXPLAIN_FELT_FORMULA     0x001u /* a formula: x 0 */
#define GW_EXPLAIN_FELT_COURTESY    0x002u /* an approval in a clause of courtesy only: x 0 */
#define GW_EXPLAIN_FELT_ASKS        0x004u /* praise in a question that asks: x 0.3 */
#define GW_EXPLAIN_FELT_DESCRIPTION 0x008u /* a description of the problem: x 0.3 */
#define GW_EXPLAIN_FELT_NO_CATEGORY 0x010u /* a word of no feeling category: x 0.3 */
#define GW_EXPLAIN_FELT_NO_PROBLEM  0x020u /* a negated description ("no outage"): x 0 */
#define GW_EXPLAIN_FELT_PAST        0x040u /* bad feeling told in the past, thanking: x -0.5 */
#define GW_EXPLAIN_FELT_LONE        0x080u /* a positive comment alone in a short clause */
#define GW_EXPLAIN_FELT_LONE_ACK    0x100u /* ... an approval, which counts 0 unless sarcastic */
#define GW_EXPLAIN_FELT_SARCASM     0x200u /* read as sarcasm: x -0.75 */
const char *gw_explain_felt_rule_name(unsigned bit); /* "formula", ... */
const char *gw_explain_role_name(unsigned role);     /* "feeling", "formula", ... */

#define GW_EXPLAIN_EMPATHY_KINDS 5

typedef struct gw_explain_empathy {
  size_t text, text_len; /* the agent phrase as written, in arena */
  unsigned kind;         /* 0 apology, 1 acknowledging, 2 reassuring, 3 ownership, 4 thanking */
  double strength;       /* 0..1 */
} gw_explain_empathy;

typedef struct gw_explain_utterance {
  size_t first_hit, nhits;
  size_t first_punct, npunct; /* EXCLAMATION / QUESTION_MARKS steps, in steps */
  size_t first_empathy, nempathy;
  double sum;                            /* S: contributions + punctuation, before normalising */
  double alpha;                          /* normalisation constant (15) */
  double valence;                        /* S / sqrt(S^2 + alpha), clamped to -1..1 */
  double feelings_raw[GW_FEELING_COUNT]; /* sum of the hits' evidence per category */
  double feelings_factor;                /* 1 + 0.1 x min(#!, 4) */
  /* Category minimums: the strongest annotation of a non-negated hit per category, the
   * minimum it must reach, and whether the category had raw evidence but was held back. */
  double evidence[GW_FEELING_COUNT];
  double min_evidence[GW_FEELING_COUNT];
  bool held_back[GW_FEELING_COUNT];
  double min_intensity; /* a present category's least intensity (0.001) */
  /* Felt valence (conversation: a customer turn of an interaction): the hits' felt parts, the
   * felt steps (shout, hedge, resignation, then '!' and '?'), their sum and its
   * normalisation (with alpha, clamped). */
  bool conversation;
  size_t first_felt_step, nfelt_steps;
  double felt_sum;
  double felt;
  unsigned felt_items;
} gw_explain_utterance;

typedef struct gw_explain_turn {
  size_t index;        /* position in the turns given to gw_feeling_score_interaction */
  double valence;      /* the turn's utterance valence (as scored alone; not what counts) */
  double felt;         /* the turn's felt valence: what the windows average */
  bool felt_any;       /* some item counts in felt */
  bool bare;           /* carries nothing (no felt item, closings only or <= 2 content words) */
  double start_weight; /* weight in the start window, plain factor included; 0: not in it */
  double end_weight;   /* weight in the end window, plain factor included; 0: not in it */
  bool start_plain;    /* its place's weight was halved: no feeling next to a turn with one */
  bool end_plain;
  size_t utterance; /* index in utterances of its explanation; SIZE_MAX: none (no weight) */
} gw_explain_turn;

typedef struct gw_feeling_explain {
  bool interaction; /* what was scored last: an interaction (turns) or one utterance */
  bool failed;      /* memory ran short: the explanation is incomplete */
  gw_explain_utterance *utterances;
  size_t nutterances, utterances_cap;
  gw_explain_hit *hits;
  size_t nhits, hits_cap;
  gw_explain_step *steps;
  size_t nsteps, steps_cap;
  gw_explain_empathy *empathy;
  size_t nempathy, empathy_cap;
  gw_explain_turn *turns; /* customer turns with words, in order */
  size_t nturns, turns_cap;
  /* Interaction: the strongest agent phrase of each empathy kind, whose weighted sum is the
   * interaction's empathy (strength 0: none), and the index of its turn. */
  gw_explain_empathy agent_empathy[GW_EXPLAIN_EMPATHY_KINDS];
  size_t agent_empathy_turn[GW_EXPLAIN_EMPATHY_KINDS];
  /* Interaction: the conversational reading. start and end are the weighted means of the
   * turns' felt valences; their polarities use the band (|felt| < band: neutral); the change
   * direction follows the polarities when they differ (direction_rule "polarity"), else needs
   * |change| >= change_min ("change"; "none": unchanged). all_bare: every turn was bare and
   * all were used. */
  double band, change_min;
  double start, end, change;
  gw_polarity start_polarity, end_polarity;
  gw_change_direction change_direction;
  unsigned direction_rule; /* 0 none, 1 polarity, 2 change */
  bool all_bare;
  char *arena;
  size_t arena_len, arena_cap;
} gw_feeling_explain;

void gw_feeling_explain_init(gw_feeling_explain *x);
void gw_feeling_explain_free(gw_feeling_explain *x);
/* gw_feeling_score_utterance and gw_feeling_score_interaction with an explanation sink; x may
 * be NULL (then they are those functions). */
void gw_feeling_score_utterance_explained(const gw_feeling_model *m, const char *text, size_t len,
                                          gw_utterance_score *out, gw_feeling_explain *x);
void gw_feeling_score_interaction_explained(const gw_feeling_model *m, const gw_turn_text *turns,
                                            size_t nturns, gw_interaction_feeling *out,
                                            gw_feeling_explain *x);
/* Appends the explanation in x as one compact JSON object (the shape of docs/FEELING_MODEL.md,
 * "Explanations"). Returns 0, or -ENOMEM (also when x->failed). json.c. */
struct gw_buf;
int gw_feeling_explain_json(const gw_feeling_explain *x, struct gw_buf *out);
const char *gw_explain_rule_name(gw_explain_rule r); /* "caps", "negation", ... */

/* goodwill-score's JSON-lines contract (docs/FEELING_MODEL.md, "goodwill-score"), in memory so
 * that it can be tested and fuzzed: scores one input line (without its newline) and appends
 * exactly one JSON line (without newline) to out. Any bytes are accepted; what cannot be scored
 * is answered with an "error" member, as the contract says. A flat object with a "text" takes a
 * fast path that writes the same bytes as the general jansson path, which
 * GW_FEELING_JSON_NO_FAST_PATH forces (for differential tests). GW_FEELING_JSON_EXPLAIN adds
 * an "explain" member (gw_feeling_explain_json) to each scored object. Returns 0, or -ENOMEM. */
#define GW_FEELING_JSON_MAX_LINE_BYTES (1024 * 1024)
#define GW_FEELING_JSON_MAX_TURNS      10000
#define GW_FEELING_JSON_NO_FAST_PATH   1u
#define GW_FEELING_JSON_EXPLAIN        2u /* adds "explain" to every scored object (jansson path) */
int gw_feeling_json_line(const gw_feeling_model *m, const char *line, size_t len, size_t lineno,
                         unsigned flags, struct gw_buf *out);

gw_polarity gw_feeling_polarity(double valence); /* thresholds -0.05 / +0.05 */
/* The polarity of a felt valence in a conversation (an interaction's start and end): the
 * conversational band, thresholds -0.2 / +0.2. */
gw_polarity gw_feeling_conversation_polarity(double felt);
const char *gw_feeling_category_name(gw_feeling_category c); /* "anger", ... */
const char *gw_polarity_name(gw_polarity p);                 /* "negative", ... */
const char *gw_change_direction_name(gw_change_direction d); /* "improved", ... */

#endif
