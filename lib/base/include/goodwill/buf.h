/*
 * gw_buf: a growable byte buffer, always NUL-terminated, for building response bodies,
 * metrics text, JSON and log lines.
 *
 * Pure; any thread, one buffer per thread at a time. The buffer owns its memory; release it
 * with gw_buf_free. Growth aborts on allocation failure (callers bound what they append by
 * configured limits before appending input-sized data).
 */
#ifndef GOODWILL_BUF_H
#define GOODWILL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_buf {
  char *data; /* NUL-terminated; NULL until the first append */
  size_t len; /* bytes used, excluding the terminating NUL */
  size_t cap; /* bytes allocated */
} gw_buf;

#define GW_BUF_INIT                                                                                \
  { NULL, 0, 0 }

void gw_buf_reserve(gw_buf *b, size_t extra);
void gw_buf_append(gw_buf *b, const void *data, size_t len);
void gw_buf_puts(gw_buf *b, const char *s);
void gw_buf_putc(gw_buf *b, char c);
/* Appends v in decimal. Hot answers are built from constant parts (GW_BUF_PUT_LIT) and this
 * instead of gw_buf_printf, whose format parsing costs more than the rest of a small answer. */
void gw_buf_put_uint(gw_buf *b, uint64_t v);
/* Appends a string literal without measuring it at run time. */
#define GW_BUF_PUT_LIT(b, lit) gw_buf_append((b), (lit), sizeof(lit) - 1)
void gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap);
/* Appends s as the inside of a JSON string (quotes not included), escaping as RFC 8259 says. */
void gw_buf_json_escape(gw_buf *b, const char *s, size_t len);
/* Appends s as a JSON string, quotes included. */
void gw_buf_json_string(gw_buf *b, const char *s);
void gw_buf_reset(gw_buf *b); /* len = 0, keeps the memory */
void gw_buf_free(gw_buf *b);

/* Formats an error message into the caller's err[errlen] (truncated to fit, always
 * NUL-terminated); does nothing when err is NULL or errlen is 0, so that callers may pass no
 * error buffer. */
void gw_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
