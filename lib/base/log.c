/* Structured JSON log lines (see log.h). */
#include "goodwill/log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/buf.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gw_log_init(gw_log *log, const char *component, gw_log_level min_level) {
  log->out = stderr;
  log->min_level = min_level;
  log->component = component;
}

int gw_log_level_parse(const char *s, gw_log_level *out) {
  if (s == NULL) {
    return -EINVAL;
  }
  for (int i = GW_LOG_DEBUG; i <= GW_LOG_ERROR; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (gw_log_level)i;
      return 0;
    }
  }
  /* "warning" is what many operators type; accept it rather than fail a deployment. */
  if (strcmp(s, "warning") == 0) {
    *out = GW_LOG_WARN;
    return 0;
  }
  return -EINVAL;
}

/* The shortest of %.15g / %.17g that reads back as the same double; JSON has no NaN or
 * infinities, so those become null. */
static void put_json_double(gw_buf *b, double d) {
  if (!isfinite(d)) {
    gw_buf_puts(b, "null");
    return;
  }
  char tmp[40];
  snprintf(tmp, sizeof tmp, "%.15g", d);
  if (strtod(tmp, NULL) != d) {
    snprintf(tmp, sizeof tmp, "%.17g", d);
  }
  gw_buf_puts(b, tmp);
}

static void put_timestamp(gw_buf *b) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  gw_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

void gw_log_write(const gw_log *log, gw_log_level level, const char *msg,
                  const gw_log_field *fields, size_t nfields) {
  if (log == NULL || level < log->min_level) {
    return;
  }
  int li = level < GW_LOG_DEBUG ? GW_LOG_DEBUG : level > GW_LOG_ERROR ? GW_LOG_ERROR : level;
  gw_buf b = GW_BUF_INIT;
  gw_buf_reserve(&b, 256);
  gw_buf_puts(&b, "{\"ts\":\"");
  put_timestamp(&b);
  gw_buf_puts(&b, "\",\"level\":\"");
  gw_buf_puts(&b, level_names[li]);
  gw_buf_putc(&b, '"');
  if (log->component != NULL) {
    gw_buf_puts(&b, ",\"component\":");
    gw_buf_json_string(&b, log->component);
  }
  gw_buf_puts(&b, ",\"msg\":");
  gw_buf_json_string(&b, msg != NULL ? msg : "");
  for (size_t i = 0; i < nfields; i++) {
    const gw_log_field *f = &fields[i];
    if (f->key == NULL) {
      continue;
    }
    gw_buf_putc(&b, ',');
    gw_buf_json_string(&b, f->key);
    gw_buf_putc(&b, ':');
    switch (f->type) {
    case GW_LF_STR:
      if (f->s == NULL) {
        gw_buf_puts(&b, "null");
      } else {
        gw_buf_json_string(&b, f->s);
      }
      break;
    case GW_LF_INT:
      gw_buf_printf(&b, "%lld", f->i);
      break;
    case GW_LF_DOUBLE:
      put_json_double(&b, f->d);
      break;
    case GW_LF_BOOL:
      gw_buf_puts(&b, f->i ? "true" : "false");
      break;
    default:
      gw_buf_puts(&b, "null");
      break;
    }
  }
  gw_buf_puts(&b, "}\n");
  /* One write per line, so lines of several processes sharing the stream do not interleave
   * mid-line, and a crash right after loses nothing already logged. */
  FILE *out = log->out != NULL ? log->out : stderr;
  fwrite(b.data, 1, b.len, out);
  fflush(out);
  gw_buf_free(&b);
}

bool gw_log_limit_allow(gw_log_limit *l, uint64_t now_ms, uint64_t *suppressed) {
  if (l->refilled_ms == 0) {
    l->refilled_ms = now_ms;
  } else if (l->interval_ms > 0 && now_ms > l->refilled_ms) {
    uint64_t n = (now_ms - l->refilled_ms) / l->interval_ms;
    if (n > 0) {
      l->tokens = n >= l->burst - l->tokens ? l->burst : l->tokens + (uint32_t)n;
      l->refilled_ms += n * l->interval_ms;
    }
  }
  if (l->tokens == 0) {
    l->suppressed++;
    return false;
  }
  l->tokens--;
  *suppressed = l->suppressed;
  l->suppressed = 0;
  return true;
}
