/*
 * goodwill-score: the feeling model over JSON lines, offline. Reads one JSON object per line
 * on stdin and writes one JSON line per input line, in order, on stdout: the input object with
 * its fields kept and the scores added. The contract is stable (docs/FEELING_MODEL.md,
 * "goodwill-score"); scripts and evaluations depend on it.
 *
 *   {"id":1,"text":"..."}                     gains valence, polarity, feelings, empathy
 *   {"id":2,"turns":[{"speaker":"customer","text":"..."}, ...]}
 *                                             gains start, end, change, start_polarity,
 *                                             end_polarity, recovered, soured, empathy,
 *                                             customer_turns, agent_turns, has_customer_turns,
 *                                             start_feelings, end_feelings
 *   an object it cannot score                 gains "error"
 *   a line that is not a JSON object          becomes {"line":N,"error":"..."}
 *
 * Exit status: 0 when every line was read and written (whatever the lines held), 1 on an I/O
 * failure of stdin or stdout, 2 on a usage error or a lexicon that cannot be loaded.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goodwill/config.h"
#include "goodwill/feeling.h"

#define GW_SCORE_MAX_LINE_BYTES (1024 * 1024)
#define GW_SCORE_MAX_TURNS      10000

typedef struct gw_score_config {
  char *lexicon;
} gw_score_config;

static const gw_config_key gw_score_keys[] = {
    {"lexicon", GW_CONF_STRING, "", 0, 0, offsetof(gw_score_config, lexicon),
     "lexicon file (goodwill TSV, VADER-style or AFINN-style); empty: the built-in "
     "goodwill-cx lexicon"},
};

/* Scores are written with three decimals, the resolution of the scored records (milli). */
static json_t *gw_score_number(double v) {
  return json_real(round(v * 1000.0) / 1000.0);
}

static json_t *gw_score_feelings(const double f[GW_FEELING_COUNT]) {
  json_t *o = json_object();
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    double v = round(f[c] * 1000.0) / 1000.0;
    if (v > 0)
      json_object_set_new(o, gw_feeling_category_name((gw_feeling_category)c), json_real(v));
  }
  return o;
}

static void gw_score_text(const gw_feeling_model *m, json_t *obj, const char *text, size_t len) {
  gw_utterance_score s;
  gw_feeling_score_utterance(m, text, len, &s);
  json_object_set_new(obj, "valence", gw_score_number(s.valence));
  json_object_set_new(obj, "polarity",
                      json_string(gw_polarity_name(gw_feeling_polarity(s.valence))));
  json_object_set_new(obj, "feelings", gw_score_feelings(s.feelings));
  json_object_set_new(obj, "empathy", gw_score_number(s.empathy));
}

/* Returns NULL, or an error message for the object. */
static const char *gw_score_turns(const gw_feeling_model *m, json_t *obj, json_t *turns, char *msg,
                                  size_t msglen) {
  if (!json_is_array(turns))
    return "\"turns\" must be an array of {\"speaker\",\"text\"} objects";
  size_t n = json_array_size(turns);
  if (n > GW_SCORE_MAX_TURNS) {
    snprintf(msg, msglen, "\"turns\" has %zu turns, more than %d", n, GW_SCORE_MAX_TURNS);
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
  gw_feeling_score_interaction(m, tt, n, &f);
  free(tt);
  json_object_set_new(obj, "start", gw_score_number(f.start));
  json_object_set_new(obj, "end", gw_score_number(f.end));
  json_object_set_new(obj, "change", gw_score_number(f.change));
  json_object_set_new(obj, "start_polarity", json_string(gw_polarity_name(f.start_polarity)));
  json_object_set_new(obj, "end_polarity", json_string(gw_polarity_name(f.end_polarity)));
  json_object_set_new(obj, "recovered", json_boolean(f.recovered));
  json_object_set_new(obj, "soured", json_boolean(f.soured));
  json_object_set_new(obj, "empathy", gw_score_number(f.empathy));
  json_object_set_new(obj, "customer_turns", json_integer(f.customer_turns));
  json_object_set_new(obj, "agent_turns", json_integer(f.agent_turns));
  json_object_set_new(obj, "has_customer_turns", json_boolean(f.has_customer_turns));
  json_object_set_new(obj, "start_feelings", gw_score_feelings(f.start_feelings));
  json_object_set_new(obj, "end_feelings", gw_score_feelings(f.end_feelings));
  return NULL;
}

/* Scores one line into a JSON object to print (owned by the caller). */
static json_t *gw_score_line(const gw_feeling_model *m, const char *line, size_t len,
                             size_t lineno) {
  char msg[256];
  json_error_t jerr;
  json_t *obj = NULL;
  const char *error = NULL;
  if (len > GW_SCORE_MAX_LINE_BYTES) {
    snprintf(msg, sizeof(msg), "line longer than %d bytes", GW_SCORE_MAX_LINE_BYTES);
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
    gw_score_text(m, obj, json_string_value(text), json_string_length(text));
  else if (turns)
    error = gw_score_turns(m, obj, turns, msg, sizeof(msg));
  else
    error = "needs \"text\" (a string) or \"turns\" (an array)";
  if (error)
    json_object_set_new(obj, "error", json_string(error));
  return obj;
}

int main(int argc, char **argv) {
  extern char **environ;
  gw_score_config cfg;
  gw_config_values values = {0};
  char err[512];
  memset(&cfg, 0, sizeof(cfg));
  size_t nkeys = sizeof(gw_score_keys) / sizeof(gw_score_keys[0]);
  int rc =
      gw_config_load(gw_score_keys, nkeys, &cfg, &values, argc, argv, environ, err, sizeof(err));
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-score",
                    "Scores JSON lines on stdin with the goodwill feeling model, one JSON line "
                    "out per line in.",
                    gw_score_keys, nkeys, stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "goodwill-score: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  gw_feeling_model *m = NULL;
  rc = gw_feeling_model_load(&m, cfg.lexicon && cfg.lexicon[0] ? cfg.lexicon : NULL, err,
                             sizeof(err));
  gw_config_free(&values);
  if (rc < 0) {
    fprintf(stderr, "goodwill-score: cannot load the lexicon: %s\n", err);
    return 2;
  }
  /* A caller may talk to us line by line through pipes: every answer goes out at once. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  int status = 0;
  char *line = NULL;
  size_t cap = 0;
  size_t lineno = 0;
  ssize_t n;
  errno = 0;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    size_t len = (size_t)n;
    if (len > 0 && line[len - 1] == '\n')
      len--;
    if (len > 0 && line[len - 1] == '\r')
      len--;
    json_t *out = gw_score_line(m, line, len, lineno);
    char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(out);
    if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF) {
      free(s);
      fprintf(stderr, "goodwill-score: cannot write to stdout: %s\n", strerror(errno));
      status = 1;
      break;
    }
    free(s);
  }
  if (status == 0 && ferror(stdin)) {
    fprintf(stderr, "goodwill-score: cannot read stdin: %s\n", strerror(errno));
    status = 1;
  }
  if (fflush(stdout) != 0 && status == 0) {
    fprintf(stderr, "goodwill-score: cannot write to stdout: %s\n", strerror(errno));
    status = 1;
  }
  free(line);
  gw_feeling_model_free(m);
  return status;
}
