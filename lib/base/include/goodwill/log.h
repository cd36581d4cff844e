/*
 * gw_log: structured JSON log lines on stderr (or any FILE), one object per line:
 *   {"ts":"2026-11-23T10:00:00.123Z","level":"info","component":"ingest","msg":"...",<fields>}
 *
 * A gw_log is created by main.c and passed (borrowed) to every module through its config;
 * the library keeps no global logger. Loop thread only (it is not locked). Secrets (tokens,
 * passwords) must never be passed as fields.
 */
#ifndef GOODWILL_LOG_H
#define GOODWILL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum gw_log_level {
  GW_LOG_DEBUG = 0,
  GW_LOG_INFO = 1,
  GW_LOG_WARN = 2,
  GW_LOG_ERROR = 3,
} gw_log_level;

typedef struct gw_log {
  FILE *out; /* borrowed; stderr by default */
  gw_log_level min_level;
  const char *component; /* borrowed, e.g. "ingest" */
} gw_log;

typedef enum gw_log_field_type { GW_LF_STR, GW_LF_INT, GW_LF_DOUBLE, GW_LF_BOOL } gw_log_field_type;

typedef struct gw_log_field {
  const char *key;
  gw_log_field_type type;
  const char *s;
  long long i;
  double d;
} gw_log_field;

#define GW_LS(k, v) ((gw_log_field){(k), GW_LF_STR, (v), 0, 0.0})
#define GW_LI(k, v) ((gw_log_field){(k), GW_LF_INT, NULL, (long long)(v), 0.0})
#define GW_LD(k, v) ((gw_log_field){(k), GW_LF_DOUBLE, NULL, 0, (double)(v)})
#define GW_LB(k, v) ((gw_log_field){(k), GW_LF_BOOL, NULL, (v) ? 1 : 0, 0.0})

void gw_log_init(gw_log *log, const char *component, gw_log_level min_level);
/* Parses "debug" | "info" | "warn" | "error"; returns 0 or -EINVAL. */
int gw_log_level_parse(const char *s, gw_log_level *out);
void gw_log_write(const gw_log *log, gw_log_level level, const char *msg,
                  const gw_log_field *fields, size_t nfields);

/* GW_LOG(log, GW_LOG_INFO, "message", GW_LS("topic", t), GW_LI("partition", p)); */
#define GW_LOG(log, level, ...) GW_LOG_FIELDS_((log), (level), __VA_ARGS__, )
#define GW_LOG_FIELDS_(log, level, msg, ...)                                                       \
  gw_log_write((log), (level), (msg),                                                              \
               (const gw_log_field[]){{NULL, GW_LF_STR, NULL, 0, 0.0}, __VA_ARGS__} + 1,           \
               sizeof((const gw_log_field[]){{NULL, GW_LF_STR, NULL, 0, 0.0}, __VA_ARGS__}) /      \
                       sizeof(gw_log_field) -                                                      \
                   1)

/*
 * A rate limit for one kind of log line (an error that may repeat thousands of times a
 * second): up to burst lines at once, then one per interval_ms. Lines held back are counted and
 * reported with the next line written (field "suppressed"), so every error counted in a metric
 * is explained in the log without flooding it. The caller passes its clock (uv_now on the
 * loop); the limit is the caller's, per kind of line. Loop thread only.
 */
typedef struct gw_log_limit {
  uint64_t interval_ms; /* one line per interval once the burst is spent */
  uint32_t burst;       /* lines allowed at once */
  uint32_t tokens;      /* lines allowed now (starts full) */
  uint64_t refilled_ms; /* clock of the last refill, 0: never */
  uint64_t suppressed;  /* lines held back since the last one written */
} gw_log_limit;

#define GW_LOG_LIMIT_INIT(interval_ms, burst)                                                      \
  { (interval_ms), (burst), (burst), 0, 0 }

/* Whether a line may be written at now_ms; when it may, *suppressed is the number held back
 * since the last written line (and is reset). */
bool gw_log_limit_allow(gw_log_limit *l, uint64_t now_ms, uint64_t *suppressed);

/* GW_LOG_LIMITED(log, &limit, now_ms, GW_LOG_ERROR, "redis command failed", GW_LS(...)); */
#define GW_LOG_LIMITED(log, limit, now_ms, level, msg, ...)                                        \
  do {                                                                                             \
    uint64_t gw_suppressed_;                                                                       \
    if (gw_log_limit_allow((limit), (now_ms), &gw_suppressed_)) {                                  \
      GW_LOG((log), (level), (msg), GW_LI("suppressed", gw_suppressed_), __VA_ARGS__);             \
    }                                                                                              \
  } while (0)

#endif
