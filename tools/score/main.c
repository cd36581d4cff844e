/*
 * goodwill-score: the feeling model over JSON lines, offline. Reads one JSON object per line
 * on stdin and writes one JSON line per input line, in order, on stdout: the input object with
 * its fields kept and the scores added. The contract is stable (docs/FEELING_MODEL.md,
 * "goodwill-score"); scripts and evaluations depend on it.
 *
 *   {"id":1,"text":"..."}                     gains valence, polarity, feelings, empathy
 *   {"id":2,"turns":[{"speaker":"customer","text":"..."}, ...]}
 *                                             gains start, end, change, start_polarity,
 *                                             end_polarity, change_direction, recovered,
 *                                             soured, empathy, customer_turns, agent_turns,
 *                                             has_customer_turns, start_feelings,
 *                                             end_feelings
 *   an object it cannot score                 gains "error"
 *   a line that is not a JSON object          becomes {"line":N,"error":"..."}
 *
 * --lexicon-overlay merges a goodwill-format overlay over the lexicon (docs/FEELING_MODEL.md,
 * "Customisation"); --model-version prints the version the two make and exits.
 *
 * Exit status: 0 when every line was read and written (whatever the lines held), 1 on an I/O
 * failure of stdin or stdout, 2 on a usage error or a lexicon or overlay that cannot be
 * loaded.
 *
 * The line contract itself is gw_feeling_json_line (lib/model/feeling/json.c). This file
 * reads stdin in large blocks and answers every complete line of a block before it reads
 * again, so a caller talking line by line through pipes gets each answer at once, and a file
 * streams without a write per line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goodwill/buf.h"
#include "goodwill/config.h"
#include "goodwill/feeling.h"
#include "goodwill/version.h"

#define GW_SCORE_READ_BYTES (256 * 1024)

typedef struct gw_score_config {
  bool explain;
  char *lexicon;
  char *lexicon_overlay;
  bool model_version;
} gw_score_config;

static const gw_config_key gw_score_keys[] = {
    {"explain", GW_CONF_BOOL, "false", 0, 0, offsetof(gw_score_config, explain),
     "add an \"explain\" member to every scored object: the words, phrases and rules behind "
     "each score, with their contributions (docs/FEELING_MODEL.md, \"Explanations\")"},
    {"lexicon", GW_CONF_STRING, "", 0, 0, offsetof(gw_score_config, lexicon),
     "lexicon file (goodwill TSV, VADER-style or AFINN-style); empty: the built-in "
     "goodwill-cx lexicon"},
    {"lexicon-overlay", GW_CONF_STRING, "", 0, 0, offsetof(gw_score_config, lexicon_overlay),
     "lexicon overlay (goodwill TSV) merged over the lexicon: its entries are added or replace "
     "the lexicon's; empty: none"},
    {"model-version", GW_CONF_BOOL, "false", 0, 0, offsetof(gw_score_config, model_version),
     "print the version of the model that --lexicon and --lexicon-overlay make (the "
     "model_version of scored records) and exit"},
};

/* Writes all of b to stdout; 0 or -errno. */
static int gw_score_write_all(const gw_buf *b) {
  size_t off = 0;
  while (off < b->len) {
    ssize_t w = write(STDOUT_FILENO, b->data + off, b->len - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    off += (size_t)w;
  }
  return 0;
}

/* One input line (newline removed): a trailing CR goes too, and the answer ends the output
 * line. Lines over the limit arrive here already cut (too_long): only their number counts. */
static int gw_score_one(const gw_feeling_model *m, const char *line, size_t len, size_t lineno,
                        int too_long, unsigned flags, gw_buf *out) {
  if (len > 0 && line[len - 1] == '\r')
    len--;
  int rc;
  if (too_long) {
    gw_buf_printf(out, "{\"line\":%zu,\"error\":\"line longer than %d bytes\"}", lineno,
                  GW_FEELING_JSON_MAX_LINE_BYTES);
    rc = 0;
  } else {
    rc = gw_feeling_json_line(m, line, len, lineno, flags, out);
  }
  gw_buf_putc(out, '\n');
  return rc;
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
  if (rc == GW_CONFIG_VERSION) {
    char model[96];
    gw_feeling_default_version(model, sizeof model);
    printf("goodwill-score %s (feeling model %s)\n", GW_VERSION, model);
    gw_config_free(&values);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "goodwill-score: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  gw_feeling_model *m = NULL;
  const char *overlay = cfg.lexicon_overlay && cfg.lexicon_overlay[0] ? cfg.lexicon_overlay : NULL;
  rc = gw_feeling_model_load_overlaid(&m, cfg.lexicon && cfg.lexicon[0] ? cfg.lexicon : NULL,
                                      overlay, err, sizeof(err));
  gw_config_free(&values);
  unsigned flags = cfg.explain ? GW_FEELING_JSON_EXPLAIN : 0;
  if (rc < 0) {
    fprintf(stderr, "goodwill-score: cannot load the lexicon%s: %s\n",
            overlay ? " and its overlay" : "", err);
    return 2;
  }
  if (cfg.model_version) {
    int ok = printf("%s\n", gw_feeling_model_version(m)) > 0 && fflush(stdout) == 0;
    gw_feeling_model_free(m);
    return ok ? 0 : 1;
  }

  /* in holds the unanswered tail of the input: at most one partial line, which is cut at the
   * limit (only its number is kept) so that memory stays bounded whatever the input. */
  gw_buf in = GW_BUF_INIT, out = GW_BUF_INIT;
  size_t lineno = 0;
  int too_long = 0; /* the partial line in `in` is over the limit: skip to its newline */
  int status = 0;
  for (;;) {
    gw_buf_reserve(&in, GW_SCORE_READ_BYTES);
    ssize_t r = read(STDIN_FILENO, in.data + in.len, GW_SCORE_READ_BYTES);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "goodwill-score: cannot read stdin: %s\n", strerror(errno));
      status = 1;
      break;
    }
    in.len += (size_t)r;
    in.data[in.len] = 0;
    size_t start = 0;
    for (;;) {
      char *nl = memchr(in.data + start, '\n', in.len - start);
      if (!nl)
        break;
      size_t len = (size_t)(nl - (in.data + start));
      if (gw_score_one(m, in.data + start, len, ++lineno, too_long, flags, &out) < 0) {
        fprintf(stderr, "goodwill-score: out of memory at line %zu\n", lineno);
        status = 1;
        break;
      }
      too_long = 0;
      start += len + 1;
    }
    if (status)
      break;
    memmove(in.data, in.data + start, in.len - start);
    in.len -= start;
    /* A partial line longer than the limit plus a CR is over it, whatever follows: keep only
     * enough to know that. */
    if (in.len > (size_t)GW_FEELING_JSON_MAX_LINE_BYTES + 1) {
      too_long = 1;
      in.len = 0;
    }
    if (r == 0 && (in.len > 0 || too_long)) {
      /* The last line has no newline. */
      if (gw_score_one(m, in.data, in.len, ++lineno, too_long, flags, &out) < 0) {
        fprintf(stderr, "goodwill-score: out of memory at line %zu\n", lineno);
        status = 1;
        break;
      }
      in.len = 0;
    }
    if (out.len > 0) {
      int wrc = gw_score_write_all(&out);
      if (wrc < 0) {
        fprintf(stderr, "goodwill-score: cannot write to stdout: %s\n", strerror(-wrc));
        status = 1;
        break;
      }
      gw_buf_reset(&out);
    }
    if (r == 0)
      break;
  }
  gw_buf_free(&in);
  gw_buf_free(&out);
  gw_feeling_model_free(m);
  return status;
}
