/* gw_auth: bearer tokens bound to tenants (see goodwill/auth.h). */
#include "goodwill/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "goodwill/buf.h"
#include "goodwill/sha256.h"

#define GW_AUTH_MAX_TENANT_BYTES 128u

typedef struct gw_auth_entry {
  uint8_t hash[GW_SHA256_BYTES];
  char *tenant;
} gw_auth_entry;

struct gw_auth {
  gw_auth_entry *entries;
  size_t count;
};

void gw_auth_free(gw_auth *a) {
  if (a == NULL) {
    return;
  }
  for (size_t i = 0; i < a->count; i++) {
    free(a->entries[i].tenant);
  }
  free(a->entries);
  free(a);
}

size_t gw_auth_count(const gw_auth *a) {
  return a ? a->count : 0;
}

static int gw_hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

static int gw_tenant_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

/* Parses one non-comment line into e; fills reason on failure. */
static int gw_auth_line(const char *s, size_t len, gw_auth_entry *e, char *reason,
                        size_t reason_len) {
  const char *tab = memchr(s, '\t', len);
  if (tab == NULL) {
    snprintf(reason, reason_len,
             "expected <sha256-hex><TAB><tenant_id>[<TAB><comment>] (no TAB found)");
    return -EINVAL;
  }
  size_t hlen = (size_t)(tab - s);
  if (hlen != 2 * GW_SHA256_BYTES) {
    snprintf(reason, reason_len,
             "the token hash must be 64 hex digits (the SHA-256 of the token), got %zu characters",
             hlen);
    return -EINVAL;
  }
  for (size_t i = 0; i < GW_SHA256_BYTES; i++) {
    int hi = gw_hex_value(s[2 * i]), lo = gw_hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      snprintf(reason, reason_len, "the token hash has a non-hex character at column %zu",
               2 * i + (hi < 0 ? 1 : 2));
      return -EINVAL;
    }
    e->hash[i] = (uint8_t)(hi << 4 | lo);
  }
  const char *t = tab + 1, *end = s + len;
  const char *t_end = memchr(t, '\t', (size_t)(end - t));
  if (t_end == NULL) {
    t_end = end;
  }
  size_t tlen = (size_t)(t_end - t);
  if (tlen == 0 || tlen > GW_AUTH_MAX_TENANT_BYTES) {
    snprintf(reason, reason_len, "tenant_id must have 1..%u characters, got %zu",
             GW_AUTH_MAX_TENANT_BYTES, tlen);
    return -EINVAL;
  }
  for (size_t i = 0; i < tlen; i++) {
    if (!gw_tenant_char(t[i])) {
      snprintf(reason, reason_len,
               "tenant_id may only hold letters, digits and . _ @ - (bad character at column "
               "%zu)",
               (size_t)(t - s) + i + 1);
      return -EINVAL;
    }
  }
  e->tenant = strndup(t, tlen);
  if (e->tenant == NULL) {
    abort(); /* at most 128 bytes */
  }
  return 0;
}

int gw_auth_parse(const char *text, size_t len, const char *source, gw_auth **out, char *err,
                  size_t errlen) {
  *out = NULL;
  if (source == NULL) {
    source = "tokens";
  }
  gw_auth *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return -ENOMEM;
  }
  size_t cap = 0, line_no = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    const char *next = nl ? nl + 1 : end;
    line_no++;
    if (e > p && e[-1] == '\r') {
      e--;
    }
    const char *q = p;
    while (q < e && (*q == ' ' || *q == '\t')) {
      q++;
    }
    if (q == e || *q == '#') {
      p = next;
      continue;
    }
    if (memchr(p, '\0', (size_t)(e - p)) != NULL) {
      gw_errf(err, errlen, "%s:%zu: the line holds a NUL byte", source, line_no);
      gw_auth_free(a);
      return -EINVAL;
    }
    if (a->count == cap) {
      cap = cap ? cap * 2 : 16;
      gw_auth_entry *n = realloc(a->entries, cap * sizeof(*n));
      if (n == NULL) {
        gw_auth_free(a);
        return -ENOMEM;
      }
      a->entries = n;
    }
    gw_auth_entry *entry = &a->entries[a->count];
    char reason[160];
    if (gw_auth_line(p, (size_t)(e - p), entry, reason, sizeof(reason)) != 0) {
      gw_errf(err, errlen, "%s:%zu: %s", source, line_no, reason);
      gw_auth_free(a);
      return -EINVAL;
    }
    for (size_t i = 0; i < a->count; i++) {
      if (memcmp(a->entries[i].hash, entry->hash, GW_SHA256_BYTES) == 0) {
        gw_errf(err, errlen, "%s:%zu: this token hash is already listed (tenant %s)", source,
                line_no, a->entries[i].tenant);
        free(entry->tenant);
        gw_auth_free(a);
        return -EINVAL;
      }
    }
    a->count++;
    p = next;
  }
  if (a->count == 0) {
    gw_errf(err, errlen, "%s: no tokens (every line is blank or a comment)", source);
    gw_auth_free(a);
    return -EINVAL;
  }
  *out = a;
  return 0;
}

int gw_auth_load_file(const char *path, gw_auth **out, char *err, size_t errlen) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    gw_errf(err, errlen, "%s: cannot open: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    gw_errf(err, errlen, "%s: not a regular file", path);
    return -EINVAL;
  }
  if ((uintmax_t)st.st_size > GW_AUTH_MAX_FILE_BYTES) {
    close(fd);
    gw_errf(err, errlen, "%s: larger than %u bytes", path, GW_AUTH_MAX_FILE_BYTES);
    return -EFBIG;
  }
  size_t size = (size_t)st.st_size;
  char *text = malloc(size + 1);
  if (text == NULL) {
    close(fd);
    return -ENOMEM;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, text + got, size - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      free(text);
      gw_errf(err, errlen, "%s: cannot read: %s", path, n < 0 ? strerror(e) : "file shrank");
      return -e;
    }
    got += (size_t)n;
  }
  close(fd);
  int rc = gw_auth_parse(text, size, path, out, err, errlen);
  /* The file holds only hashes, but clear it anyway: it is cheap. */
  memset(text, 0, size);
  free(text);
  return rc;
}

int gw_auth_check(const gw_auth *a, const char *token, size_t token_len, const char **tenant) {
  *tenant = NULL;
  if (a == NULL || token == NULL || token_len == 0 || token_len > GW_AUTH_MAX_TOKEN_BYTES) {
    return -EACCES;
  }
  uint8_t h[GW_SHA256_BYTES];
  gw_sha256(token, token_len, h);
  /* Every entry is compared in full; a match is remembered without a branch on the bytes. */
  size_t found = SIZE_MAX;
  for (size_t i = 0; i < a->count; i++) {
    volatile uint8_t diff = 0;
    for (size_t j = 0; j < GW_SHA256_BYTES; j++) {
      diff |= (uint8_t)(a->entries[i].hash[j] ^ h[j]);
    }
    size_t is_match = (size_t)(((unsigned)diff - 1u) >> 8 & 1u); /* 1 when diff == 0 */
    found = is_match ? i : found;
  }
  if (found == SIZE_MAX) {
    return -EACCES;
  }
  *tenant = a->entries[found].tenant;
  return 0;
}

int gw_auth_bearer(const char *header, const char **token, size_t *len) {
  *token = NULL;
  *len = 0;
  if (header == NULL) {
    return -ENOENT;
  }
  while (*header == ' ' || *header == '\t') {
    header++;
  }
  if (*header == '\0') {
    return -ENOENT;
  }
  if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t')) {
    return -EINVAL;
  }
  const char *t = header + 7;
  while (*t == ' ' || *t == '\t') {
    t++;
  }
  size_t n = strlen(t);
  while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t')) {
    n--;
  }
  if (n == 0 || n > GW_AUTH_MAX_TOKEN_BYTES) {
    return -EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] == 0x7f) {
      return -EINVAL;
    }
  }
  *token = t;
  *len = n;
  return 0;
}

int gw_auth_mode_check(const char *tokens_file, bool dev_mode, const char *doc, char *err,
                       size_t errlen) {
  bool has_tokens = tokens_file != NULL && tokens_file[0] != '\0';
  if (has_tokens && dev_mode) {
    gw_errf(err, errlen,
            "--tokens-file and --dev-mode exclude each other: drop --dev-mode to require bearer "
            "tokens");
    return -EINVAL;
  }
  if (!has_tokens && !dev_mode) {
    gw_errf(err, errlen,
            "no --tokens-file given: clients must authenticate with bearer tokens (see %s); for "
            "a local demo without authentication pass --dev-mode",
            doc);
    return -EINVAL;
  }
  return 0;
}

void gw_auth_challenge(const char *realm, const char *error, char *out, size_t out_len) {
  if (error != NULL) {
    snprintf(out, out_len, "Bearer realm=\"%s\", error=\"%s\"", realm, error);
  } else {
    snprintf(out, out_len, "Bearer realm=\"%s\"", realm);
  }
}

int gw_auth_authorize(const gw_auth *a, const char *authorization, const char *realm,
                      const char **tenant, gw_auth_denial *denial) {
  const char *token;
  size_t token_len;
  int rc = gw_auth_bearer(authorization, &token, &token_len);
  if (rc == -ENOENT) {
    *tenant = NULL;
    denial->error = "missing credentials: send the header Authorization: Bearer <token>";
    gw_auth_challenge(realm, NULL, denial->challenge, sizeof(denial->challenge));
    return -EACCES;
  }
  if (rc != 0 || gw_auth_check(a, token, token_len, tenant) != 0) {
    *tenant = NULL;
    denial->error = rc != 0 ? "invalid credentials: the Authorization header must be "
                              "\"Bearer <token>\""
                            : "invalid credentials: the bearer token is not known";
    gw_auth_challenge(realm, "invalid_token", denial->challenge, sizeof(denial->challenge));
    return -EACCES;
  }
  return 0;
}
