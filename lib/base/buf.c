/* Growable NUL-terminated byte buffer and JSON string escaping (see buf.h). */
#include "goodwill/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_buf_reserve(gw_buf *b, size_t extra) {
  /* One byte more than asked for keeps room for the terminating NUL. */
  if (extra > SIZE_MAX - b->len - 1) {
    abort();
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) {
    return;
  }
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    /* The header documents this: growth of a buffer the caller has already bounded. */
    abort();
  }
  b->data = p;
  b->cap = cap;
  /* A fresh allocation must already be a valid empty string. */
  b->data[b->len] = '\0';
}

void gw_buf_append(gw_buf *b, const void *data, size_t len) {
  gw_buf_reserve(b, len);
  if (len > 0) {
    memcpy(b->data + b->len, data, len);
  }
  b->len += len;
  b->data[b->len] = '\0';
}

void gw_buf_puts(gw_buf *b, const char *s) {
  gw_buf_append(b, s, strlen(s));
}

void gw_buf_putc(gw_buf *b, char c) {
  gw_buf_append(b, &c, 1);
}

void gw_buf_put_uint(gw_buf *b, uint64_t v) {
  char tmp[20]; /* UINT64_MAX has 20 digits */
  size_t n = 0;
  do {
    tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  gw_buf_append(b, tmp + sizeof(tmp) - n, n);
}

/* buf.h declares gw_buf_vprintf without a format attribute (its callers are checked through
 * gw_buf_printf's); clang would otherwise flag the forwarding of fmt itself. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
#endif
void gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  /* Try in the space already there first; most lines fit and need one formatting pass. */
  gw_buf_reserve(b, 0);
  size_t room = b->cap - b->len;
  int n = vsnprintf(b->data + b->len, room, fmt, ap);
  if (n < 0) {
    /* An encoding error leaves the buffer as it was. */
    b->data[b->len] = '\0';
    va_end(ap2);
    return;
  }
  if ((size_t)n >= room) {
    gw_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
  }
  b->len += (size_t)n;
  va_end(ap2);
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

void gw_buf_printf(gw_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gw_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at s (at most len bytes), or 0 when it is not
 * well-formed (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_sequence_len(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80) {
    return 1;
  } else if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (len < n) {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

void gw_buf_json_escape(gw_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  gw_buf_reserve(b, len + 2);
  while (i < len) {
    /* Copy the longest run that needs no escaping in one go. */
    size_t start = i;
    while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') {
      i++;
    }
    if (i > start) {
      gw_buf_append(b, p + start, i - start);
    }
    if (i >= len) {
      break;
    }
    unsigned char c = p[i];
    if (c >= 0x80) {
      /* JSON text must be UTF-8 (RFC 8259 section 8.1): valid sequences pass through,
       * any invalid byte becomes U+FFFD so the line stays parseable. */
      size_t n = utf8_sequence_len(p + i, len - i);
      if (n == 0) {
        gw_buf_puts(b, "\\ufffd");
        i++;
      } else {
        gw_buf_append(b, p + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
    case '"':
      gw_buf_puts(b, "\\\"");
      break;
    case '\\':
      gw_buf_puts(b, "\\\\");
      break;
    case '\n':
      gw_buf_puts(b, "\\n");
      break;
    case '\r':
      gw_buf_puts(b, "\\r");
      break;
    case '\t':
      gw_buf_puts(b, "\\t");
      break;
    case '\b':
      gw_buf_puts(b, "\\b");
      break;
    case '\f':
      gw_buf_puts(b, "\\f");
      break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
      gw_buf_append(b, u, sizeof u);
      break;
    }
    }
    i++;
  }
}

void gw_buf_json_string(gw_buf *b, const char *s) {
  gw_buf_putc(b, '"');
  gw_buf_json_escape(b, s, strlen(s));
  gw_buf_putc(b, '"');
}

void gw_buf_reset(gw_buf *b) {
  b->len = 0;
  if (b->data != NULL) {
    b->data[0] = '\0';
  }
}

void gw_buf_free(gw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void gw_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}
