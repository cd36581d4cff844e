/*
 * gw_redis: the only module that speaks to hiredis. An asynchronous Redis client on a libuv
 * loop, with what hiredis 0.14 lacks: its own libuv glue that reports refused and broken
 * connections, connect and command timeouts, reconnection with exponential backoff, AUTH and
 * SELECT on every (re)connect, a cap on commands in flight, and scripts run by EVALSHA with
 * a transparent reload on NOSCRIPT.
 *
 * Loop thread only; every callback runs on the loop. A command either fails synchronously
 * (negative return, callback never called: -ENOTCONN while disconnected, -EAGAIN at the
 * in-flight cap, -ESHUTDOWN after close) or its callback is called exactly once: with status
 * 0 and the reply (which may be a Redis error reply: type GW_REDIS_ERROR), or with -ETIMEDOUT
 * / -ECONNRESET and a NULL reply when the connection timed out or broke, in which case the
 * command may or may not have been executed by the server.
 *
 * Replies are borrowed for the duration of the callback.
 */
#ifndef GOODWILL_REDIS_H
#define GOODWILL_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/log.h"

typedef struct gw_redis gw_redis;

typedef enum gw_redis_reply_type {
  GW_REDIS_STRING,
  GW_REDIS_ARRAY,
  GW_REDIS_INTEGER,
  GW_REDIS_NIL,
  GW_REDIS_STATUS,
  GW_REDIS_ERROR,
} gw_redis_reply_type;

typedef struct gw_redis_reply {
  gw_redis_reply_type type;
  long long integer; /* GW_REDIS_INTEGER */
  const char *str;   /* STRING, STATUS, ERROR: NUL-terminated */
  size_t len;
  const struct gw_redis_reply *elements; /* ARRAY: nelements replies */
  size_t nelements;
} gw_redis_reply;

typedef void (*gw_redis_reply_cb)(void *opaque, int status, const gw_redis_reply *reply);

typedef struct gw_redis_config {
  const char *host;
  int port;
  const char *password;        /* AUTH on connect when non-empty; never logged */
  int db;                      /* SELECT on connect when non-zero */
  uint64_t connect_timeout_ms; /* 0: no timeout */
  uint64_t command_timeout_ms; /* a reply later than this fails every command in flight
                                  with -ETIMEDOUT and drops the connection; 0: no timeout */
  uint64_t reconnect_min_ms;   /* backoff: min (0: 100 ms), doubling up to max */
  uint64_t reconnect_max_ms;
  size_t max_in_flight; /* 0: 1024 (hiredis' output buffer has no bound of its own) */
  const gw_log *log;
} gw_redis_config;

/* Parses "redis://[:password@]host[:port][/db]" into cfg (host/password point into a copy
 * the caller frees with free(*storage)). */
int gw_redis_parse_url(const char *url, gw_redis_config *cfg, char **storage, char *err,
                       size_t errlen);

/* Creates the client and starts connecting; it keeps reconnecting until closed. */
int gw_redis_new(gw_redis **out, uv_loop_t *loop, const gw_redis_config *cfg);

bool gw_redis_connected(const gw_redis *r);
size_t gw_redis_in_flight(const gw_redis *r);

/* Optional: called on the loop each time a connection becomes ready (after AUTH/SELECT) or
 * is lost (connected=false), e.g. to resume paused work. */
void gw_redis_on_state(gw_redis *r, void (*cb)(void *opaque, bool connected), void *opaque);

/* One command, arguments binary-safe (argvlen may be NULL for NUL-terminated strings). */
int gw_redis_command(gw_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                     gw_redis_reply_cb cb, void *opaque);

/* A Lua script, loaded once per connection and run with EVALSHA; NOSCRIPT reloads and
 * retries once. The script object owns a copy of the source and its SHA1. It is borrowed by
 * gw_redis_eval: it must outlive every eval still in flight (the retry reads its source). */
typedef struct gw_redis_script gw_redis_script;
int gw_redis_script_new(gw_redis_script **out, const char *source);
void gw_redis_script_free(gw_redis_script *s);
const char *gw_redis_script_sha(const gw_redis_script *s);

int gw_redis_eval(gw_redis *r, const gw_redis_script *s, int nkeys, const char *const *keys,
                  const size_t *keylens, int nargs, const char *const *args, const size_t *arglens,
                  gw_redis_reply_cb cb, void *opaque);

/* Fails commands still in flight with -ECONNRESET, disconnects, and calls close_cb; the
 * client is freed after close_cb returns. A second close is ignored. */
void gw_redis_close(gw_redis *r, void (*close_cb)(void *opaque), void *opaque);

/* Why a command failed, for a log line: the error reply's text, or what status means ("timed
 * out", "connection lost", "not connected", "too many commands in flight", ...). Never NULL. */
const char *gw_redis_failure_reason(int status, const gw_redis_reply *reply);

#endif
