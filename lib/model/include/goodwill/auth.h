/*
 * gw_auth: the bearer tokens of goodwill's HTTP APIs (goodwill-ingest's intake API, where a token
 * writes for its tenant, and goodwill-aggregator's read API, where it reads its tenant). A
 * token set maps the SHA-256 of each token to the one tenant it may use; the tokens themselves
 * are never stored, logged or counted. The same tokens file may serve both daemons.
 *
 * Tokens file (--tokens-file): UTF-8 text, one token per line:
 *     <sha256 of the token, 64 hex digits><TAB><tenant_id>[<TAB><comment>]
 * Blank lines and lines whose first non-blank character is '#' are ignored; a trailing '\r'
 * is dropped. tenant_id follows the event rules (1..128 of [A-Za-z0-9._@-]). A hash listed
 * twice, a malformed line or a file without any token is an error naming the file and line.
 * The hash of a token: `printf %s TOKEN | sha256sum` or `goodwill-ingest --hash-token`.
 *
 * Threading: a set is immutable once built; any thread may check tokens against it.
 * Ownership: gw_auth_parse / gw_auth_load_file create a set the caller frees with
 * gw_auth_free; tenant strings returned by gw_auth_check are borrowed from the set.
 * Errors: -EINVAL (malformed content; err says "<source>:<line>: <reason>"), -EFBIG (file over
 * GW_AUTH_MAX_FILE_BYTES), a negative errno from opening or reading the file; -EACCES from
 * gw_auth_check for an unknown token.
 */
#ifndef GOODWILL_AUTH_H
#define GOODWILL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define GW_AUTH_MAX_FILE_BYTES  (16u * 1024u * 1024u)
#define GW_AUTH_MAX_TOKEN_BYTES 4096u

typedef struct gw_auth gw_auth;

/* Builds a set from the text of a tokens file; source names it in error messages. */
int gw_auth_parse(const char *text, size_t len, const char *source, gw_auth **out, char *err,
                  size_t errlen);
int gw_auth_load_file(const char *path, gw_auth **out, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);
size_t gw_auth_count(const gw_auth *a);

/*
 * The tenant of a presented token: 0 with *tenant set, or -EACCES. The token is hashed and
 * compared with every entry in constant time per entry and without stopping at a match, so
 * the time taken does not tell how much of a hash matched.
 */
int gw_auth_check(const gw_auth *a, const char *token, size_t token_len, const char **tenant);

/*
 * Extracts the token of an Authorization header value "Bearer <token>" (scheme
 * case-insensitive, spaces around the token ignored). Returns 0 with token/len pointing into
 * header, -ENOENT when header is NULL or empty, -EINVAL when it is not a usable bearer
 * credential (other scheme, empty token, spaces inside, longer than GW_AUTH_MAX_TOKEN_BYTES).
 */
int gw_auth_bearer(const char *header, const char **token, size_t *len);

/*
 * What every API with bearer tokens shares, so that ingest and the read API answer, refuse and
 * warn alike.
 */

/*
 * The start-up rule: exactly one of a tokens file (non-empty path) and dev mode. 0 when it
 * holds; -EINVAL otherwise, with err saying which flag to drop or add; doc names the API's
 * document (e.g. "docs/API-read.md") for the operator to read.
 */
int gw_auth_mode_check(const char *tokens_file, bool dev_mode, const char *doc, char *err,
                       size_t errlen);

/* The warning a daemon logs at start in dev mode; what says what anyone may then do, e.g.
 * GW_AUTH_DEV_MODE_WARNING("write events for"). */
#define GW_AUTH_DEV_MODE_WARNING(what)                                                             \
  "DEV MODE: AUTHENTICATION IS OFF. Any client can " what " any tenant. Never run --dev-mode "     \
  "in production; use --tokens-file"

/* The 401 answer of a request that was not authenticated (RFC 6750, section 3). */
typedef struct gw_auth_denial {
  const char *error;   /* the sentence for the body; static, never holds the token */
  char challenge[192]; /* the WWW-Authenticate value: Bearer realm="<realm>"[, error=...] */
} gw_auth_denial;

/*
 * Authenticates a request from its Authorization header value (NULL when absent): 0 with
 * *tenant (borrowed from a), or -EACCES with *denial filled: no credentials give the bare
 * challenge, a malformed header or an unknown token add error="invalid_token".
 */
int gw_auth_authorize(const gw_auth *a, const char *authorization, const char *realm,
                      const char **tenant, gw_auth_denial *denial);

/* Writes the WWW-Authenticate value `Bearer realm="<realm>"` followed by `, error="<error>"`
 * when error is not NULL (e.g. "insufficient_scope" for a 403). */
void gw_auth_challenge(const char *realm, const char *error, char *out, size_t out_len);

#endif
