/*
 * Fuzz target for the bearer tokens file (gw_auth_parse), read by goodwill-ingest and the
 * read API at start and on SIGHUP, and for the Authorization header checked against it. The
 * first input line after a 0x00 byte, if any, is the presented header; the rest is the file.
 *
 * Besides crashes and sanitizer reports it checks, aborting when they fail: a refused file has
 * a message that names the source and a line; an accepted one holds at least one token; a
 * header is either authorized to a valid tenant or refused with a challenge and a reason.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t file_len = nul != NULL ? (size_t)(nul - data) : size;
  gw_auth *a = NULL;
  char err[512] = "";
  int rc = gw_auth_parse((const char *)data, file_len, "fuzz.tokens", &a, err, sizeof err);
  if (rc != 0) {
    if (a != NULL || rc != -EINVAL || strncmp(err, "fuzz.tokens", 11) != 0) {
      abort();
    }
    return 0;
  }
  if (a == NULL || gw_auth_count(a) == 0) {
    abort();
  }
  if (nul != NULL) {
    size_t hlen = size - file_len - 1;
    char *header = malloc(hlen + 1);
    memcpy(header, nul + 1, hlen);
    header[hlen] = '\0';
    const char *tenant = NULL;
    gw_auth_denial denial;
    memset(&denial, 0, sizeof denial);
    int ar = gw_auth_authorize(a, header, "fuzz", &tenant, &denial);
    if (ar == 0 ? (tenant == NULL || tenant[0] == '\0')
                : (denial.challenge[0] == '\0' || denial.error == NULL)) {
      abort();
    }
    free(header);
  }
  gw_auth_free(a);
  return 0;
}
