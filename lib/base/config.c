/* Configuration from flags and GOODWILL_* environment variables (see config.h). */
#include "goodwill/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENV_PREFIX "GOODWILL_"

/* Every string handed out lives here until gw_config_free. */
typedef struct arena {
  void **ptrs;
  size_t count, cap;
} arena;

/* Where a key's current value came from; a later source replaces an earlier one, and the
 * first occurrence of a list key in a new source starts the list afresh. */
enum source { SRC_NONE, SRC_DEFAULT, SRC_ENV, SRC_FLAG };

typedef struct loader {
  const gw_config_key *keys;
  size_t nkeys;
  char *cfg;
  arena *arena;
  enum source *sources;
  char *err;
  size_t errlen;
} loader;

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

static void *arena_keep(arena *a, void *p) {
  if (a->count == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    void **ptrs = realloc(a->ptrs, cap * sizeof *ptrs);
    if (ptrs == NULL) {
      abort();
    }
    a->ptrs = ptrs;
    a->cap = cap;
  }
  a->ptrs[a->count++] = p;
  return p;
}

static char *arena_strndup(arena *a, const char *s, size_t n) {
  char *p = xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return arena_keep(a, p);
}

static void arena_free(arena *a) {
  if (a == NULL) {
    return;
  }
  for (size_t i = 0; i < a->count; i++) {
    free(a->ptrs[i]);
  }
  free(a->ptrs);
  free(a);
}

__attribute__((format(printf, 2, 3))) static int fail(loader *l, const char *fmt, ...) {
  if (l->err != NULL && l->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, l->errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* The environment variable of a key: GOODWILL_ + upper case, '-' -> '_'. */
static void env_name(const char *key, char *out, size_t outlen) {
  size_t n = strlen(ENV_PREFIX);
  if (outlen == 0) {
    return;
  }
  snprintf(out, outlen, "%s", ENV_PREFIX);
  for (const char *p = key; *p && n + 1 < outlen; p++) {
    out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  }
  out[n] = '\0';
}

/* A range of 0..0 means the key definition set none. */
static bool has_range(const gw_config_key *k) {
  return !(k->min == 0 && k->max == 0);
}

/* --- value parsers: each returns NULL or a reason for the error message --- */

static const char *parse_int(const char *s, long long *out) {
  if (*s == '\0') {
    return "is empty, expected an integer";
  }
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || isspace((unsigned char)*s)) {
    return "is not an integer";
  }
  if (errno == ERANGE) {
    return "is too large";
  }
  *out = v;
  return NULL;
}

static const char *parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = true;
      return NULL;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = false;
      return NULL;
    }
  }
  return "is not a boolean (use true/false, 1/0, yes/no, on/off)";
}

typedef struct unit {
  const char *name;
  long long factor;
} unit;

static const unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static const unit size_units[] = {
    {"b", 1},           {"k", 1LL << 10},   {"kb", 1LL << 10},  {"kib", 1LL << 10},
    {"m", 1LL << 20},   {"mb", 1LL << 20},  {"mib", 1LL << 20}, {"g", 1LL << 30},
    {"gb", 1LL << 30},  {"gib", 1LL << 30}, {"t", 1LL << 40},   {"tb", 1LL << 40},
    {"tib", 1LL << 40},
};

/*
 * Parses a sequence of <number><unit> terms ("1h30m", "1.5s", "64KiB"), or a bare number in
 * the base unit. Fractions are allowed as long as the total is a whole number of base units.
 */
static const char *parse_with_units(const char *s, const unit *units, size_t nunits,
                                    const char *what, long long *out) {
  if (*s == '\0') {
    return what[0] == 'd' ? "is empty, expected a duration such as 250ms, 5s, 2m, 1h, 7d"
                          : "is empty, expected a size such as 512, 64k, 8MiB, 1GiB";
  }
  if (*s == '-') {
    return "must not be negative";
  }
  long long total = 0;
  const char *p = s;
  bool first = true;
  while (*p) {
    /* Digits, then an optional fraction: parsed by hand so "1e3" or " 5" are rejected. */
    long long whole = 0;
    long long frac_num = 0, frac_den = 1;
    const char *start = p;
    while (isdigit((unsigned char)*p)) {
      if (whole > (LLONG_MAX - 9) / 10) {
        return "is too large";
      }
      whole = whole * 10 + (*p - '0');
      p++;
    }
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) {
        if (frac_den <= LLONG_MAX / 10 / 10) {
          frac_num = frac_num * 10 + (*p - '0');
          frac_den *= 10;
        }
        p++;
      }
    }
    if (p == start || (p == start + 1 && *start == '.')) {
      return what[0] == 'd' ? "is not a duration (expected e.g. 250ms, 5s, 2m, 1h, 7d)"
                            : "is not a size (expected e.g. 512, 64k, 8MiB, 1GiB)";
    }
    const char *ustart = p;
    while (isalpha((unsigned char)*p)) {
      p++;
    }
    size_t ulen = (size_t)(p - ustart);
    long long factor = 0;
    if (ulen == 0) {
      /* A bare number is only valid alone: "5" is 5 ms or 5 bytes, "1h5" is a typo. */
      if (!first || *p != '\0') {
        return "has a number without a unit";
      }
      factor = 1;
    } else {
      for (size_t i = 0; i < nunits; i++) {
        if (strlen(units[i].name) == ulen && strncasecmp(units[i].name, ustart, ulen) == 0) {
          factor = units[i].factor;
          break;
        }
      }
      if (factor == 0) {
        return what[0] == 'd' ? "has an unknown unit (use ms, s, m, h or d)"
                              : "has an unknown unit (use k/KiB, m/MiB, g/GiB or t/TiB)";
      }
    }
    if (whole > LLONG_MAX / factor) {
      return "is too large";
    }
    long long v = whole * factor;
    if (frac_num != 0) {
      /* The fraction counts only when it lands on a whole base unit (1.5s = 1500 ms, but
       * 0.5ms is refused); dividing first where possible keeps the product in range. */
      if (factor % frac_den == 0) {
        v += frac_num * (factor / frac_den);
      } else if (frac_num <= LLONG_MAX / factor && (frac_num * factor) % frac_den == 0) {
        v += frac_num * factor / frac_den;
      } else {
        return what[0] == 'd' ? "is not a whole number of milliseconds"
                              : "is not a whole number of bytes";
      }
    }
    if (v > LLONG_MAX - total) {
      return "is too large";
    }
    total += v;
    first = false;
  }
  *out = total;
  return NULL;
}

/* Writes v in the largest unit that divides it exactly, for messages and --help. */
static void format_with_units(long long v, const unit *units, size_t nunits, char *out,
                              size_t outlen) {
  const unit *best = &units[0];
  for (size_t i = 0; i < nunits; i++) {
    if (units[i].factor > best->factor && v != 0 && v % units[i].factor == 0) {
      best = &units[i];
    }
  }
  snprintf(out, outlen, "%lld%s", v / best->factor, best->name);
}

static void format_duration(long long ms, char *out, size_t outlen) {
  format_with_units(ms, duration_units, sizeof duration_units / sizeof duration_units[0], out,
                    outlen);
}

static void format_size(long long bytes, char *out, size_t outlen) {
  /* Only the IEC spellings in output, so nobody reads "m" as metres or minutes. */
  static const unit iec[] = {
      {"", 1}, {"KiB", 1LL << 10}, {"MiB", 1LL << 20}, {"GiB", 1LL << 30}, {"TiB", 1LL << 40}};
  format_with_units(bytes, iec, sizeof iec / sizeof iec[0], out, outlen);
}

static void format_number(const gw_config_key *k, long long v, char *out, size_t outlen) {
  if (k->type == GW_CONF_DURATION) {
    format_duration(v, out, outlen);
  } else if (k->type == GW_CONF_SIZE) {
    format_size(v, out, outlen);
  } else {
    snprintf(out, outlen, "%lld", v);
  }
}

static void list_append(loader *l, gw_config_list *list, const char *s, size_t n) {
  char **items = xmalloc((list->count + 1) * sizeof *items);
  if (list->count > 0) {
    memcpy(items, list->items, list->count * sizeof *items);
  }
  /* The old array stays in the arena; lists are short and loaded once. */
  arena_keep(l->arena, items);
  items[list->count] = arena_strndup(l->arena, s, n);
  list->items = items;
  list->count++;
}

/*
 * Applies one textual value to a key. `origin` names the source in messages: "--name",
 * "GOODWILL_NAME" or "default of name".
 */
static int apply(loader *l, size_t ki, enum source src, const char *origin, const char *value) {
  const gw_config_key *k = &l->keys[ki];
  void *field = l->cfg + k->offset;
  bool fresh = l->sources[ki] != src;
  l->sources[ki] = src;
  const char *why = NULL;
  switch (k->type) {
  case GW_CONF_STRING: {
    size_t n = strlen(value);
    if (k->min > 0 && n == 0) {
      return fail(l, "%s: a value is required", origin);
    }
    if (k->max > 0 && (long long)n > k->max) {
      return fail(l, "%s: value is %zu bytes long, at most %lld allowed", origin, n, k->max);
    }
    *(char **)field = arena_strndup(l->arena, value, n);
    return 0;
  }
  case GW_CONF_BOOL: {
    bool b = false;
    why = parse_bool(value, &b);
    if (why == NULL) {
      *(bool *)field = b;
      return 0;
    }
    break;
  }
  case GW_CONF_INT:
  case GW_CONF_DURATION:
  case GW_CONF_SIZE: {
    long long v = 0;
    if (k->type == GW_CONF_INT) {
      why = parse_int(value, &v);
    } else if (k->type == GW_CONF_DURATION) {
      why = parse_with_units(value, duration_units,
                             sizeof duration_units / sizeof duration_units[0], "duration", &v);
    } else {
      why =
          parse_with_units(value, size_units, sizeof size_units / sizeof size_units[0], "size", &v);
    }
    if (why != NULL) {
      break;
    }
    if (has_range(k) && (v < k->min || v > k->max)) {
      char lo[32], hi[32];
      format_number(k, k->min, lo, sizeof lo);
      format_number(k, k->max, hi, sizeof hi);
      return fail(l, "%s: %s is out of range %s..%s", origin, value, lo, hi);
    }
    *(long long *)field = v;
    return 0;
  }
  case GW_CONF_LIST: {
    gw_config_list *list = field;
    if (fresh) {
      list->items = NULL;
      list->count = 0;
    }
    if (src == SRC_FLAG) {
      /* One flag occurrence is one value, commas included (a Kafka property may hold some). */
      list_append(l, list, value, strlen(value));
      return 0;
    }
    /* The environment and defaults carry several values separated by ','. */
    const char *p = value;
    while (*p) {
      const char *comma = strchr(p, ',');
      size_t n = comma ? (size_t)(comma - p) : strlen(p);
      if (n > 0) {
        list_append(l, list, p, n);
      }
      p += n + (comma ? 1 : 0);
    }
    return 0;
  }
  default:
    return fail(l, "%s: key has an unknown type %d", origin, (int)k->type);
  }
  /* Quote values that could be mistaken for part of the message. */
  return fail(l, "%s: \"%s\" %s", origin, value, why);
}

static size_t find_key(const loader *l, const char *name, size_t len) {
  for (size_t i = 0; i < l->nkeys; i++) {
    if (strlen(l->keys[i].name) == len && strncmp(l->keys[i].name, name, len) == 0) {
      return i;
    }
  }
  return SIZE_MAX;
}

/* Edit distance, to suggest the flag a typo was meant to be. */
static size_t edit_distance(const char *a, size_t la, const char *b) {
  size_t lb = strlen(b);
  if (la > 64 || lb > 64) {
    return SIZE_MAX;
  }
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) {
    row[j] = j;
  }
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) {
        best = row[j] + 1;
      }
      if (row[j - 1] + 1 < best) {
        best = row[j - 1] + 1;
      }
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static const char *closest_key(const loader *l, const char *name, size_t len) {
  const char *best = NULL;
  size_t best_d = 3; /* Suggest only near misses. */
  for (size_t i = 0; i < l->nkeys; i++) {
    size_t d = edit_distance(name, len, l->keys[i].name);
    if (d < best_d) {
      best_d = d;
      best = l->keys[i].name;
    }
  }
  return best;
}

static int check_keys(loader *l) {
  for (size_t i = 0; i < l->nkeys; i++) {
    const char *n = l->keys[i].name;
    if (n == NULL || n[0] == '\0' || n[0] == '-') {
      return fail(l, "config key %zu: invalid name", i);
    }
    if (find_key(l, n, strlen(n)) != i) {
      return fail(l, "config key %s: defined twice", n);
    }
  }
  return 0;
}

static int load_defaults(loader *l) {
  for (size_t i = 0; i < l->nkeys; i++) {
    const gw_config_key *k = &l->keys[i];
    void *field = l->cfg + k->offset;
    /* Start from a known state, so a NULL default leaves "" / 0 / false / empty. */
    switch (k->type) {
    case GW_CONF_STRING:
      *(char **)field = arena_strndup(l->arena, "", 0);
      break;
    case GW_CONF_INT:
    case GW_CONF_DURATION:
    case GW_CONF_SIZE:
      *(long long *)field = 0;
      break;
    case GW_CONF_BOOL:
      *(bool *)field = false;
      break;
    case GW_CONF_LIST:
      ((gw_config_list *)field)->items = NULL;
      ((gw_config_list *)field)->count = 0;
      break;
    }
    if (k->default_value != NULL) {
      char origin[128];
      snprintf(origin, sizeof origin, "default of %s", k->name);
      int rc = apply(l, i, SRC_DEFAULT, origin, k->default_value);
      if (rc != 0) {
        return rc;
      }
    }
  }
  return 0;
}

/*
 * Kubernetes injects variables for every Service in the namespace ("service links"): for a
 * Service goodwill-redis, GOODWILL_REDIS_SERVICE_HOST, GOODWILL_REDIS_SERVICE_PORT[_NAME],
 * GOODWILL_REDIS_PORT=tcp://..., GOODWILL_REDIS_PORT_6379_TCP[_PROTO|_PORT|_ADDR]. They are
 * not settings, so an unknown name of exactly that shape is skipped rather than refused.
 */
static bool is_service_link(const char *name, size_t nlen, const char *value) {
  char n[256];
  if (nlen >= sizeof n) {
    return false;
  }
  memcpy(n, name, nlen);
  n[nlen] = '\0';
  if (strstr(n, "_SERVICE_HOST") != NULL && strcmp(n + nlen - 13, "_SERVICE_HOST") == 0) {
    return true;
  }
  if (strstr(n, "_SERVICE_PORT") != NULL) {
    return true;
  }
  const char *port = strstr(n, "_PORT");
  while (port != NULL) {
    const char *rest = port + 5;
    if (*rest == '\0') {
      return strncmp(value, "tcp://", 6) == 0 || strncmp(value, "udp://", 6) == 0 ||
             strncmp(value, "sctp://", 7) == 0;
    }
    if (rest[0] == '_' && isdigit((unsigned char)rest[1])) {
      rest++;
      while (isdigit((unsigned char)*rest)) {
        rest++;
      }
      if (strncmp(rest, "_TCP", 4) == 0 || strncmp(rest, "_UDP", 4) == 0 ||
          strncmp(rest, "_SCTP", 5) == 0) {
        return true;
      }
    }
    port = strstr(port + 1, "_PORT");
  }
  return false;
}

static int load_env(loader *l, char *const *envp) {
  size_t plen = strlen(ENV_PREFIX);
  for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
    const char *entry = envp[e];
    if (strncmp(entry, ENV_PREFIX, plen) != 0) {
      continue;
    }
    const char *eq = strchr(entry, '=');
    if (eq == NULL) {
      continue;
    }
    size_t nlen = (size_t)(eq - entry);
    size_t found = SIZE_MAX;
    char name[256];
    for (size_t i = 0; i < l->nkeys; i++) {
      env_name(l->keys[i].name, name, sizeof name);
      if (strlen(name) == nlen && strncmp(name, entry, nlen) == 0) {
        found = i;
        break;
      }
    }
    if (found == SIZE_MAX && is_service_link(entry, nlen, eq + 1)) {
      continue;
    }
    if (found == SIZE_MAX) {
      return fail(l, "%.*s: unknown variable (no setting of that name; see --help)", (int)nlen,
                  entry);
    }
    snprintf(name, sizeof name, "%.*s", (int)nlen, entry);
    int rc = apply(l, found, SRC_ENV, name, eq + 1);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int load_argv(loader *l, int argc, char *const *argv) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      return GW_CONFIG_HELP;
    }
    if (strcmp(arg, "--version") == 0) {
      return GW_CONFIG_VERSION;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      return fail(l, "unexpected argument \"%s\" (settings are given as --name=value)", arg);
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    size_t ki = find_key(l, name, nlen);
    bool negated = false;
    if (ki == SIZE_MAX && eq == NULL && strncmp(name, "no-", 3) == 0) {
      /* --no-dev-mode turns a boolean off. */
      size_t k2 = find_key(l, name + 3, nlen - 3);
      if (k2 != SIZE_MAX && l->keys[k2].type == GW_CONF_BOOL) {
        ki = k2;
        negated = true;
      }
    }
    if (ki == SIZE_MAX) {
      const char *near = closest_key(l, name, nlen);
      if (near != NULL) {
        return fail(l, "--%.*s: unknown flag (did you mean --%s?)", (int)nlen, name, near);
      }
      return fail(l, "--%.*s: unknown flag (see --help)", (int)nlen, name);
    }
    const gw_config_key *k = &l->keys[ki];
    char origin[160];
    snprintf(origin, sizeof origin, "--%s", k->name);
    const char *value;
    if (eq != NULL) {
      value = eq + 1;
    } else if (k->type == GW_CONF_BOOL) {
      value = negated ? "false" : "true";
    } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
      value = argv[++i];
    } else {
      /* A value that itself starts with "--" must be written --name=--value, so that a
       * forgotten value does not silently swallow the next flag. */
      return fail(l, "%s: missing value", origin);
    }
    int rc = apply(l, ki, SRC_FLAG, origin, value);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int check_required(loader *l) {
  for (size_t i = 0; i < l->nkeys; i++) {
    const gw_config_key *k = &l->keys[i];
    if (k->type == GW_CONF_STRING && k->min > 0 && **(char **)(l->cfg + k->offset) == '\0') {
      char env[256];
      env_name(k->name, env, sizeof env);
      return fail(l, "--%s: a value is required (flag --%s or variable %s)", k->name, k->name, env);
    }
  }
  return 0;
}

int gw_config_load(const gw_config_key *keys, size_t nkeys, void *cfg, gw_config_values *values,
                   int argc, char *const *argv, char *const *envp, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) {
    err[0] = '\0';
  }
  arena *a = xmalloc(sizeof *a);
  *a = (arena){NULL, 0, 0};
  /* Whatever values held before is not read: it may be uninitialised. */
  values->priv = a;
  enum source *sources = xmalloc((nkeys ? nkeys : 1) * sizeof *sources);
  for (size_t i = 0; i < nkeys; i++) {
    sources[i] = SRC_NONE;
  }
  loader l = {keys, nkeys, cfg, a, sources, err, errlen};
  int rc = check_keys(&l);
  if (rc == 0) {
    rc = load_defaults(&l);
  }
  if (rc == 0) {
    rc = load_env(&l, envp);
  }
  if (rc == 0) {
    rc = load_argv(&l, argc, argv);
  }
  if (rc == 0) {
    rc = check_required(&l);
  }
  free(sources);
  return rc;
}

void gw_config_free(gw_config_values *values) {
  if (values == NULL) {
    return;
  }
  arena_free(values->priv);
  values->priv = NULL;
}

static const char *type_placeholder(gw_config_type t) {
  switch (t) {
  case GW_CONF_STRING:
    return "=TEXT";
  case GW_CONF_INT:
    return "=N";
  case GW_CONF_BOOL:
    return "[=BOOL]";
  case GW_CONF_DURATION:
    return "=DURATION";
  case GW_CONF_SIZE:
    return "=SIZE";
  case GW_CONF_LIST:
    return "=VALUE...";
  }
  return "=VALUE";
}

/* The default as the user would type it, "-" when there is none. */
static void describe_default(const gw_config_key *k, char *out, size_t outlen) {
  const char *d = k->default_value;
  if (d == NULL || d[0] == '\0') {
    if (k->type == GW_CONF_STRING && k->min > 0) {
      snprintf(out, outlen, "(required)");
    } else if (k->type == GW_CONF_BOOL) {
      snprintf(out, outlen, "false");
    } else if (k->type == GW_CONF_INT || k->type == GW_CONF_DURATION || k->type == GW_CONF_SIZE) {
      snprintf(out, outlen, "0");
    } else {
      snprintf(out, outlen, "-");
    }
    return;
  }
  snprintf(out, outlen, "%s", d);
}

void gw_config_usage(const char *program, const char *summary, const gw_config_key *keys,
                     size_t nkeys, FILE *out) {
  fprintf(out, "Usage: %s [--name=value ...]\n", program != NULL ? program : "goodwill");
  if (summary != NULL && summary[0] != '\0') {
    fprintf(out, "%s\n", summary);
  }
  fprintf(out, "\nEvery setting is a flag and an environment variable; a flag wins over the\n"
               "environment, which wins over the default. Durations take ms/s/m/h/d, sizes\n"
               "k/KiB, m/MiB, g/GiB. Settings marked ... may be repeated (comma-separated in\n"
               "the environment).\n\n");
  size_t wflag = strlen("FLAG"), wenv = strlen("ENVIRONMENT"), wdef = strlen("DEFAULT");
  char buf[512];
  for (size_t i = 0; i < nkeys; i++) {
    size_t n = 2 + strlen(keys[i].name) + strlen(type_placeholder(keys[i].type));
    wflag = n > wflag ? n : wflag;
    env_name(keys[i].name, buf, sizeof buf);
    wenv = strlen(buf) > wenv ? strlen(buf) : wenv;
    describe_default(&keys[i], buf, sizeof buf);
    wdef = strlen(buf) > wdef ? strlen(buf) : wdef;
  }
  /* Very long defaults would push help far right; they wrap instead. */
  if (wdef > 24) {
    wdef = 24;
  }
  fprintf(out, "  %-*s  %-*s  %-*s  %s\n", (int)wflag, "FLAG", (int)wenv, "ENVIRONMENT", (int)wdef,
          "DEFAULT", "DESCRIPTION");
  for (size_t i = 0; i < nkeys; i++) {
    const gw_config_key *k = &keys[i];
    char flag[300], env[256], def[512], range[80] = "";
    snprintf(flag, sizeof flag, "--%s%s", k->name, type_placeholder(k->type));
    env_name(k->name, env, sizeof env);
    describe_default(k, def, sizeof def);
    if (has_range(k) &&
        (k->type == GW_CONF_INT || k->type == GW_CONF_DURATION || k->type == GW_CONF_SIZE)) {
      char lo[32], hi[32];
      format_number(k, k->min, lo, sizeof lo);
      format_number(k, k->max, hi, sizeof hi);
      snprintf(range, sizeof range, " [%s..%s]", lo, hi);
    }
    const char *help = k->help != NULL ? k->help : "";
    if (strlen(def) > wdef) {
      fprintf(out, "  %-*s  %-*s  %s\n  %-*s  %-*s  %-*s  %s%s\n", (int)wflag, flag, (int)wenv, env,
              def, (int)wflag, "", (int)wenv, "", (int)wdef, "", help, range);
    } else {
      fprintf(out, "  %-*s  %-*s  %-*s  %s%s\n", (int)wflag, flag, (int)wenv, env, (int)wdef, def,
              help, range);
    }
  }
  fprintf(out, "  %-*s  %-*s  %-*s  %s\n", (int)wflag, "--version", (int)wenv, "", (int)wdef, "",
          "Print the version and exit.");
  fprintf(out, "  %-*s  %-*s  %-*s  %s\n", (int)wflag, "--help, -h", (int)wenv, "", (int)wdef, "",
          "Print this help and exit.");
}
