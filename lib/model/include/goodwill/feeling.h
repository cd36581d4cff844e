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

/* goodwill-score's JSON-lines contract (docs/FEELING_MODEL.md, "goodwill-score"), in memory so
 * that it can be tested and fuzzed: scores one input line (without its newline) and appends
 * exactly one JSON line (without newline) to out. Any bytes are accepted; what cannot be scored
 * is answered with an "error" member, as the contract says. A flat object with a "text" takes a
 * fast path that writes the same bytes as the general jansson path, which
 * GW_FEELING_JSON_NO_FAST_PATH forces (for differential tests). Returns 0, or -ENOMEM. */
#define GW_FEELING_JSON_MAX_LINE_BYTES (1024 * 1024)
#define GW_FEELING_JSON_MAX_TURNS      10000
#define GW_FEELING_JSON_NO_FAST_PATH   1u
struct gw_buf;
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
