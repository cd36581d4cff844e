/*
 * gw_config: a daemon's configuration from command-line flags and GOODWILL_* environment
 * variables, described by one table of keys.
 *
 * Each key "kafka-bootstrap" is set by the flag --kafka-bootstrap=V (or --kafka-bootstrap V)
 * and by the variable GOODWILL_KAFKA_BOOTSTRAP; a flag wins over the environment, which wins
 * over the default. Every value is parsed and range-checked at start. An unknown flag and an
 * unknown GOODWILL_* variable are errors (a typo must not silently fall back to a default).
 * `--help` is reported as GW_CONFIG_HELP so main() can print gw_config_usage and exit 0;
 * `--version` as GW_CONFIG_VERSION, for main() to print its version and exit 0.
 *
 * Values are written into the caller's struct at each key's offset. Strings are owned by the
 * gw_config_values arena the caller passes and freed with gw_config_free; they stay valid
 * until then. Pure apart from reading argv/envp: no I/O, any thread.
 *
 * Types and formats:
 *   GW_CONF_STRING   char *            any text ("" allowed unless min > 0: then required)
 *   GW_CONF_INT      long long         decimal, within [min, max]
 *   GW_CONF_BOOL     bool              true/false/1/0/yes/no/on/off
 *   GW_CONF_DURATION long long (ms)    "250ms", "5s", "2m", "1h", "7d", or plain ms
 *   GW_CONF_SIZE     long long (bytes) "512", "64k"/"64KiB", "8m"/"8MiB", "1g"/"1GiB"
 *   GW_CONF_LIST     gw_config_list    repeatable key; each occurrence appends one value
 *                                      (e.g. --kafka-property=sasl.mechanism=PLAIN); in the
 *                                      environment, values are separated by ','
 */
#ifndef GOODWILL_CONFIG_H
#define GOODWILL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum gw_config_type {
  GW_CONF_STRING,
  GW_CONF_INT,
  GW_CONF_BOOL,
  GW_CONF_DURATION,
  GW_CONF_SIZE,
  GW_CONF_LIST,
} gw_config_type;

typedef struct gw_config_list {
  char **items; /* owned by the gw_config_values arena */
  size_t count;
} gw_config_list;

typedef struct gw_config_key {
  const char *name; /* "kafka-bootstrap"; env is GOODWILL_ + upper-cased, '-' -> '_' */
  gw_config_type type;
  const char *default_value; /* parsed like user input; NULL means "" / 0 / false / empty */
  long long min, max;        /* range for INT, DURATION, SIZE; min > 0 makes a STRING required */
  size_t offset;             /* offsetof(the caller's config struct, field) */
  const char *help;          /* one line for --help */
} gw_config_key;

typedef struct gw_config_values {
  void *priv; /* owned strings, freed by gw_config_free */
} gw_config_values;

#define GW_CONFIG_HELP    1 /* gw_config_load's answer to --help / -h */
#define GW_CONFIG_VERSION 2 /* gw_config_load's answer to --version */

/*
 * Fills cfg from keys (defaults, then envp, then argv[1..argc-1]). Returns 0, GW_CONFIG_HELP,
 * or -EINVAL with a message naming the key, its source (flag or variable) and the reason in
 * err (e.g. "--redis-port: 70000 is out of range 1..65535").
 */
int gw_config_load(const gw_config_key *keys, size_t nkeys, void *cfg, gw_config_values *values,
                   int argc, char *const *argv, char *const *envp, char *err, size_t errlen);

/* Writes the usage text: every key with its flag, variable, default and help line. */
void gw_config_usage(const char *program, const char *summary, const gw_config_key *keys,
                     size_t nkeys, FILE *out);

void gw_config_free(gw_config_values *values);

#endif
