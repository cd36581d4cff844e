/*
 * The asynchronous Redis client (see redis.h): hiredis 0.14 for the protocol, and our own libuv
 * glue, timeouts, reconnection, handshake and script handling around it.
 *
 * Object model. A gw_redis owns three timers (reconnect backoff, connect timeout, command
 * timeout) and at most one live connection (gw_redis_conn). A connection owns one
 * redisAsyncContext and the uv_poll handle on its socket; it outlives the context (it is freed
 * in the poll handle's close callback), so hiredis callbacks that run while the context is torn
 * down can still reach it. Every command sent to hiredis is a gw_redis_cmd whose pointer is the
 * hiredis privdata; hiredis calls our reply trampoline exactly once per send (with a NULL reply
 * when the context is freed), and only the trampoline frees the command. Commands also sit in
 * the connection's FIFO while a reply is awaited, which is what the command timeout and the
 * "fail everything in flight" paths walk; Redis answers in order, so the head is the oldest.
 *
 * hiredis 0.14.1 behaviour this relies on (from its async.c; test_redis drives each path):
 *  - __redisAsyncFree runs every pending reply callback with a NULL reply, then the ev.cleanup
 *    hook, then onDisconnect (only if it had connected), then frees the context. This is the
 *    path of redisAsyncFree and of every error inside hiredis (EOF, read/write error, failed
 *    connect), so the cleanup hook is the one place where we learn "this context is gone".
 *  - A failed connect calls onConnect(ac, REDIS_ERR) and then frees the context: the context
 *    must not be touched from onConnect in that case.
 *  - redisAsyncFree called from inside a reply callback only sets REDIS_FREEING; hiredis frees
 *    the context right after that callback returns, still inside redisAsyncHandleRead.
 */
#include "goodwill/redis.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "goodwill/sha1.h"

#define GW_REDIS_DEFAULT_RECONNECT_MIN_MS 100
#define GW_REDIS_DEFAULT_MAX_IN_FLIGHT    1024

typedef struct gw_redis_conn gw_redis_conn;
typedef struct gw_redis_cmd gw_redis_cmd;

typedef enum cmd_kind {
  CMD_USER,   /* gw_redis_command */
  CMD_EVAL,   /* gw_redis_eval: EVALSHA, on NOSCRIPT SCRIPT LOAD and EVALSHA again */
  CMD_AUTH,   /* handshake */
  CMD_SELECT, /* handshake */
} cmd_kind;

typedef enum eval_step {
  EVAL_FIRST, /* EVALSHA sent once */
  EVAL_LOAD,  /* SCRIPT LOAD sent after NOSCRIPT */
  EVAL_RETRY, /* EVALSHA sent again after the load */
} eval_step;

struct gw_redis_cmd {
  gw_redis *r;
  gw_redis_conn *conn; /* the connection the current send went to */
  cmd_kind kind;
  bool done;        /* the outcome has been delivered (or the handshake step is over) */
  bool outstanding; /* hiredis still holds this command and will call the trampoline */
  bool queued;      /* in conn's FIFO */
  uint64_t sent_ms; /* loop time of the current send */
  gw_redis_cmd *prev, *next;
  gw_redis_reply_cb cb;
  void *opaque;
  /* CMD_EVAL only. */
  eval_step step;
  const gw_redis_script *script; /* borrowed: scripts live as long as the evals using them */
  char *evalsha;                 /* the formatted EVALSHA command, kept for the retry */
  int evalsha_len;
};

struct gw_redis_conn {
  gw_redis *r;
  redisAsyncContext *ac; /* NULL once hiredis has freed (or is freeing) it */
  uv_poll_t poll;
  bool poll_open;
  int events;   /* UV_READABLE | UV_WRITABLE currently polled */
  bool ready;   /* TCP up and AUTH/SELECT answered */
  bool dying;   /* detached from r, in-flight commands already failed */
  bool freeing; /* hiredis is inside __redisAsyncFree for ac: do not free it again */
  int handshake_left;
  gw_redis_cmd *head, *tail; /* commands awaiting a reply, oldest first */
};

typedef struct resolve_req {
  uv_getaddrinfo_t req;
  gw_redis *r;
  bool stale; /* superseded (timeout) or client closing: ignore the answer */
} resolve_req;

struct gw_redis {
  uv_loop_t *loop;
  char *host;     /* owned copy */
  char *password; /* owned copy, NULL when none; never logged */
  int port;
  int db;
  uint64_t connect_timeout_ms;
  uint64_t command_timeout_ms;
  uint64_t reconnect_min_ms;
  uint64_t reconnect_max_ms;
  size_t max_in_flight;
  const gw_log *log;
  bool host_is_numeric;

  uv_timer_t reconnect_timer;
  uv_timer_t connect_timer;
  uv_timer_t command_timer;
  int open_handles; /* timers not yet closed */

  gw_redis_conn *conn;   /* the live connection (connecting, handshaking or ready) */
  resolve_req *resolve;  /* the pending name resolution of the current attempt */
  int live_conns;        /* connections not yet freed, including dying ones */
  int live_resolves;     /* resolution requests whose callback has not run yet */
  unsigned attempt;      /* failed attempts since the last ready connection */
  uint64_t rng;          /* xorshift state for the backoff jitter */
  size_t user_in_flight; /* accepted user commands whose callback has not run */

  void (*state_cb)(void *opaque, bool connected);
  void *state_opaque;

  bool closing;
  void (*close_cb)(void *opaque);
  void *close_opaque;
};

struct gw_redis_script {
  char *source;
  size_t source_len;
  char sha[GW_SHA1_HEX_LEN + 1];
};

static void start_attempt(gw_redis *r);
static void conn_drop(gw_redis_conn *conn, int status, const char *reason);
static int cmd_send_argv(gw_redis_conn *conn, gw_redis_cmd *cmd, int argc, const char **argv,
                         const size_t *argvlen);
static int cmd_send_formatted(gw_redis_conn *conn, gw_redis_cmd *cmd, const char *buf, size_t len);
static void on_reconnect_timer(uv_timer_t *t);
static void on_command_timer(uv_timer_t *t);

/* ---- URL parsing ---- */

static int hex_digit(int ch) {
  if (ch >= '0' && ch <= '9') {
    return ch - '0';
  }
  if (ch >= 'a' && ch <= 'f') {
    return ch - 'a' + 10;
  }
  if (ch >= 'A' && ch <= 'F') {
    return ch - 'A' + 10;
  }
  return -1;
}

/* Parses a decimal number in [lo, hi] from s[0..len). */
static bool parse_bounded_int(const char *s, size_t len, long lo, long hi, long *out) {
  if (len == 0 || len > 10) {
    return false;
  }
  long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  if (v < lo || v > hi) {
    return false;
  }
  *out = v;
  return true;
}

int gw_redis_parse_url(const char *url, gw_redis_config *cfg, char **storage, char *err,
                       size_t errlen) {
  static const char scheme[] = "redis://";
  *storage = NULL;
  if (url != NULL && strncmp(url, "rediss://", 9) == 0) {
    snprintf(err, errlen, "redis url: TLS (rediss://) is not supported (hiredis 0.14 has no TLS)");
    return -EINVAL;
  }
  if (url == NULL || strncmp(url, scheme, sizeof scheme - 1) != 0) {
    snprintf(err, errlen, "redis url: must start with \"redis://\"");
    return -EINVAL;
  }
  const char *p = url + sizeof scheme - 1;
  const char *end = p + strlen(p);
  const char *slash = memchr(p, '/', (size_t)(end - p));
  const char *auth_end = end;
  if (slash != NULL) {
    auth_end = slash;
  }
  /* The last '@' before the path ends the userinfo, so a password may contain '@'. */
  const char *at = NULL;
  for (const char *q = p; q < auth_end; q++) {
    if (*q == '@') {
      at = q;
    }
  }
  const char *pw = NULL;
  size_t pw_len = 0;
  if (at != NULL) {
    if (*p != ':') {
      snprintf(err, errlen,
               "redis url: userinfo must be \":password\" (user names are not supported)");
      return -EINVAL;
    }
    pw = p + 1;
    pw_len = (size_t)(at - pw);
    p = at + 1;
  }
  const char *host = p;
  size_t host_len;
  const char *after_host;
  if (*p == '[') {
    const char *close = memchr(p, ']', (size_t)(auth_end - p));
    if (close == NULL) {
      snprintf(err, errlen, "redis url: '[' of an IPv6 host without ']'");
      return -EINVAL;
    }
    host = p + 1;
    host_len = (size_t)(close - host);
    after_host = close + 1;
    if (after_host != auth_end && *after_host != ':') {
      snprintf(err, errlen, "redis url: unexpected character after ']'");
      return -EINVAL;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(auth_end - p));
    after_host = colon != NULL ? colon : auth_end;
    host_len = (size_t)(after_host - p);
  }
  if (host_len == 0) {
    snprintf(err, errlen, "redis url: empty host");
    return -EINVAL;
  }
  long port = 6379;
  if (after_host < auth_end) { /* ":port" */
    const char *ps = after_host + 1;
    if (!parse_bounded_int(ps, (size_t)(auth_end - ps), 1, 65535, &port)) {
      snprintf(err, errlen, "redis url: port must be a number in 1..65535");
      return -EINVAL;
    }
  }
  long db = 0;
  if (slash != NULL && slash + 1 < end) {
    if (!parse_bounded_int(slash + 1, (size_t)(end - slash - 1), 0, INT_MAX, &db)) {
      snprintf(err, errlen, "redis url: database must be a non-negative number after '/'");
      return -EINVAL;
    }
  }
  /* One allocation holds the host and the percent-decoded password. */
  char *buf = malloc(host_len + 1 + pw_len + 1);
  if (buf == NULL) {
    snprintf(err, errlen, "redis url: out of memory");
    return -ENOMEM;
  }
  memcpy(buf, host, host_len);
  buf[host_len] = '\0';
  char *pwout = buf + host_len + 1;
  size_t n = 0;
  for (size_t i = 0; i < pw_len; i++) {
    if (pw[i] == '%') {
      if (i + 2 >= pw_len || hex_digit(pw[i + 1]) < 0 || hex_digit(pw[i + 2]) < 0) {
        free(buf);
        snprintf(err, errlen, "redis url: bad percent-escape in the password");
        return -EINVAL;
      }
      pwout[n++] = (char)(hex_digit(pw[i + 1]) * 16 + hex_digit(pw[i + 2]));
      i += 2;
    } else {
      pwout[n++] = pw[i];
    }
  }
  pwout[n] = '\0';
  cfg->host = buf;
  cfg->port = (int)port;
  cfg->password = at != NULL ? pwout : NULL;
  cfg->db = (int)db;
  *storage = buf;
  return 0;
}

/* ---- replies ---- */

static size_t reply_count_nodes(const redisReply *rr) {
  size_t n = 1;
  if (rr->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < rr->elements; i++) {
      n += reply_count_nodes(rr->element[i]);
    }
  }
  return n;
}

/* Fills *out from rr; array children are taken from pool starting at *next. Strings point
 * into the hiredis reply, which lives until the trampoline returns. */
static void reply_fill(gw_redis_reply *out, const redisReply *rr, gw_redis_reply *pool,
                       size_t *next) {
  memset(out, 0, sizeof *out);
  switch (rr->type) {
  case REDIS_REPLY_STRING:
    out->type = GW_REDIS_STRING;
    break;
  case REDIS_REPLY_STATUS:
    out->type = GW_REDIS_STATUS;
    break;
  case REDIS_REPLY_ERROR:
    out->type = GW_REDIS_ERROR;
    break;
  case REDIS_REPLY_INTEGER:
    out->type = GW_REDIS_INTEGER;
    out->integer = rr->integer;
    return;
  case REDIS_REPLY_ARRAY: {
    out->type = GW_REDIS_ARRAY;
    out->nelements = rr->elements;
    gw_redis_reply *children = pool + *next;
    *next += rr->elements;
    for (size_t i = 0; i < rr->elements; i++) {
      reply_fill(&children[i], rr->element[i], pool, next);
    }
    out->elements = children;
    return;
  }
  case REDIS_REPLY_NIL:
  default:
    out->type = GW_REDIS_NIL;
    return;
  }
  out->str = rr->str != NULL ? rr->str : "";
  out->len = rr->str != NULL ? rr->len : 0;
}

static bool reply_is_error_prefix(const redisReply *rr, const char *prefix) {
  size_t n = strlen(prefix);
  return rr->type == REDIS_REPLY_ERROR && rr->str != NULL && rr->len >= n &&
         strncmp(rr->str, prefix, n) == 0;
}

/* ---- small helpers ---- */

static void maybe_finish_close(gw_redis *r) {
  if (!r->closing || r->open_handles > 0 || r->live_conns > 0 || r->live_resolves > 0) {
    return;
  }
  void (*cb)(void *) = r->close_cb;
  void *opaque = r->close_opaque;
  free(r->host);
  free(r->password);
  free(r);
  if (cb != NULL) {
    cb(opaque);
  }
}

static uint64_t next_random(gw_redis *r) {
  /* xorshift64: plenty for spreading reconnects of many instances apart. */
  uint64_t x = r->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  r->rng = x;
  return x;
}

/* Exponential backoff with jitter: the n-th retry waits a random time in [d/2, d] where
 * d = min(max, min * 2^n), so a fleet restarted together does not reconnect in lockstep. */
static uint64_t backoff_ms(gw_redis *r) {
  uint64_t d = r->reconnect_min_ms;
  for (unsigned i = 0; i < r->attempt && d < r->reconnect_max_ms; i++) {
    d *= 2;
  }
  if (d > r->reconnect_max_ms) {
    d = r->reconnect_max_ms;
  }
  uint64_t half = d / 2;
  return half + (half > 0 ? next_random(r) % (d - half + 1) : 0);
}

static void schedule_reconnect(gw_redis *r) {
  if (r->closing) {
    return;
  }
  uint64_t delay = backoff_ms(r);
  r->attempt++;
  GW_LOG(r->log, GW_LOG_DEBUG, "redis reconnect scheduled", GW_LS("host", r->host),
         GW_LI("port", r->port), GW_LI("attempt", r->attempt), GW_LI("delay_ms", delay));
  uv_timer_start(&r->reconnect_timer, on_reconnect_timer, delay, 0);
}

static void fifo_push(gw_redis_conn *conn, gw_redis_cmd *cmd) {
  gw_redis *r = conn->r;
  cmd->prev = conn->tail;
  cmd->next = NULL;
  if (conn->tail != NULL) {
    conn->tail->next = cmd;
  } else {
    conn->head = cmd;
  }
  conn->tail = cmd;
  cmd->queued = true;
  cmd->sent_ms = uv_now(r->loop);
  if (r->command_timeout_ms > 0 && !uv_is_active((uv_handle_t *)&r->command_timer)) {
    uv_timer_start(&r->command_timer, on_command_timer, r->command_timeout_ms, 0);
  }
}

static void fifo_remove(gw_redis_conn *conn, gw_redis_cmd *cmd) {
  if (!cmd->queued) {
    return;
  }
  if (cmd->prev != NULL) {
    cmd->prev->next = cmd->next;
  } else {
    conn->head = cmd->next;
  }
  if (cmd->next != NULL) {
    cmd->next->prev = cmd->prev;
  } else {
    conn->tail = cmd->prev;
  }
  cmd->prev = cmd->next = NULL;
  cmd->queued = false;
}

static void cmd_free(gw_redis_cmd *cmd) {
  if (cmd->evalsha != NULL) {
    redisFreeCommand(cmd->evalsha);
  }
  free(cmd);
}

/* Delivers the outcome of a user command (exactly once). */
static void cmd_complete(gw_redis_cmd *cmd, int status, const gw_redis_reply *reply) {
  if (cmd->done) {
    return;
  }
  cmd->done = true;
  if (cmd->kind == CMD_USER || cmd->kind == CMD_EVAL) {
    cmd->r->user_in_flight--;
    cmd->cb(cmd->opaque, status, reply);
  }
}

/* Delivers a hiredis reply to the user as a gw_redis_reply tree. */
static void cmd_complete_reply(gw_redis_cmd *cmd, const redisReply *rr) {
  gw_redis_reply small[16];
  size_t n = reply_count_nodes(rr);
  gw_redis_reply *pool = small;
  if (n > sizeof small / sizeof small[0]) {
    pool = malloc(n * sizeof *pool);
    if (pool == NULL) {
      cmd_complete(cmd, -ENOMEM, NULL);
      return;
    }
  }
  size_t next = 1;
  reply_fill(&pool[0], rr, pool, &next);
  cmd_complete(cmd, 0, &pool[0]);
  if (pool != small) {
    free(pool);
  }
}

/* ---- connection life cycle ---- */

static void become_ready(gw_redis_conn *conn) {
  gw_redis *r = conn->r;
  conn->ready = true;
  r->attempt = 0;
  uv_timer_stop(&r->connect_timer);
  GW_LOG(r->log, GW_LOG_INFO, "redis connected", GW_LS("host", r->host), GW_LI("port", r->port),
         GW_LI("db", r->db));
  if (r->state_cb != NULL) {
    r->state_cb(r->state_opaque, true);
  }
}

static void on_handshake_reply(gw_redis_cmd *cmd, const redisReply *rr) {
  gw_redis_conn *conn = cmd->conn;
  gw_redis *r = cmd->r;
  cmd->done = true;
  if (rr->type == REDIS_REPLY_ERROR) {
    /* The server's message ("WRONGPASS ...", "ERR DB index is out of range") never contains
     * the password, so it is safe to log. */
    GW_LOG(r->log, GW_LOG_ERROR,
           cmd->kind == CMD_AUTH ? "redis AUTH rejected" : "redis SELECT rejected",
           GW_LS("host", r->host), GW_LI("port", r->port), GW_LS("error", rr->str));
    conn_drop(conn, -ECONNRESET, cmd->kind == CMD_AUTH ? "AUTH rejected" : "SELECT rejected");
    return;
  }
  if (--conn->handshake_left == 0) {
    become_ready(conn);
  }
}

static void on_eval_reply(gw_redis_cmd *cmd, const redisReply *rr) {
  gw_redis_conn *conn = cmd->conn;
  gw_redis *r = cmd->r;
  if (cmd->step == EVAL_FIRST && reply_is_error_prefix(rr, "NOSCRIPT")) {
    /* The server does not know the script (first use on this connection's server, restart,
     * failover, SCRIPT FLUSH): load it and run it once more. */
    const char *argv[] = {"SCRIPT", "LOAD", cmd->script->source};
    const size_t lens[] = {6, 4, cmd->script->source_len};
    cmd->step = EVAL_LOAD;
    if (cmd_send_argv(conn, cmd, 3, argv, lens) != 0) {
      cmd_complete(cmd, -ECONNRESET, NULL);
    }
    return;
  }
  if (cmd->step == EVAL_LOAD && rr->type != REDIS_REPLY_ERROR) {
    if (rr->type == REDIS_REPLY_STRING &&
        (rr->len != GW_SHA1_HEX_LEN ||
         strncasecmp(rr->str, cmd->script->sha, GW_SHA1_HEX_LEN) != 0)) {
      GW_LOG(r->log, GW_LOG_WARN, "redis SCRIPT LOAD returned an unexpected sha",
             GW_LS("expected", cmd->script->sha), GW_LS("got", rr->str));
    }
    cmd->step = EVAL_RETRY;
    if (cmd_send_formatted(conn, cmd, cmd->evalsha, (size_t)cmd->evalsha_len) != 0) {
      cmd_complete(cmd, -ECONNRESET, NULL);
    }
    return;
  }
  /* A result, a script error, or a load error: the caller sees it as it is. */
  cmd_complete_reply(cmd, rr);
}

/* The hiredis reply callback of every command we send. hiredis calls it exactly once per send:
 * with the reply, or with NULL while it frees the context. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  gw_redis_cmd *cmd = privdata;
  gw_redis_conn *conn = cmd->conn;
  cmd->outstanding = false;
  if (cmd->done) {
    /* Already failed (timeout, close, broken connection): only the memory is left. */
    cmd_free(cmd);
    return;
  }
  if (reply == NULL) {
    /* hiredis is tearing the context down after an error it saw itself (EOF, read or write
     * error). Fail everything in flight now, in order; the context is not ours to free. */
    conn->freeing = true;
    conn_drop(conn, -ECONNRESET,
              conn->ac != NULL && conn->ac->c.err ? conn->ac->c.errstr : "connection lost");
    cmd_free(cmd);
    return;
  }
  fifo_remove(conn, cmd);
  const redisReply *rr = reply;
  switch (cmd->kind) {
  case CMD_AUTH:
  case CMD_SELECT:
    on_handshake_reply(cmd, rr);
    break;
  case CMD_EVAL:
    on_eval_reply(cmd, rr);
    break;
  case CMD_USER:
    cmd_complete_reply(cmd, rr);
    break;
  }
  if (cmd->done && !cmd->outstanding) {
    cmd_free(cmd);
  }
}

static int cmd_sent(gw_redis_conn *conn, gw_redis_cmd *cmd, int rc) {
  if (rc != REDIS_OK) {
    return -ECONNRESET;
  }
  cmd->conn = conn;
  cmd->outstanding = true;
  fifo_push(conn, cmd);
  return 0;
}

static int cmd_send_argv(gw_redis_conn *conn, gw_redis_cmd *cmd, int argc, const char **argv,
                         const size_t *argvlen) {
  if (conn == NULL || conn->ac == NULL || conn->dying) {
    return -ENOTCONN;
  }
  return cmd_sent(conn, cmd, redisAsyncCommandArgv(conn->ac, on_reply, cmd, argc, argv, argvlen));
}

static int cmd_send_formatted(gw_redis_conn *conn, gw_redis_cmd *cmd, const char *buf, size_t len) {
  if (conn == NULL || conn->ac == NULL || conn->dying) {
    return -ENOTCONN;
  }
  return cmd_sent(conn, cmd, redisAsyncFormattedCommand(conn->ac, on_reply, cmd, buf, len));
}

/* Detaches conn from its client, fails every command in flight with status, frees the hiredis
 * context unless hiredis is already doing so, and schedules the next attempt. Idempotent. */
static void conn_drop(gw_redis_conn *conn, int status, const char *reason) {
  if (conn->dying) {
    return;
  }
  gw_redis *r = conn->r;
  bool was_ready = conn->ready;
  conn->dying = true;
  conn->ready = false;
  if (r->conn == conn) {
    r->conn = NULL;
  }
  uv_timer_stop(&r->command_timer);
  uv_timer_stop(&r->connect_timer);
  if (!r->closing) {
    /* A failed attempt was already logged where its cause was seen (connect failed, timed
     * out, AUTH rejected); only losing a ready connection is news at this point. */
    GW_LOG(r->log, was_ready ? GW_LOG_WARN : GW_LOG_DEBUG,
           was_ready ? "redis connection lost" : "redis connection attempt failed",
           GW_LS("host", r->host), GW_LI("port", r->port), GW_LS("reason", reason),
           GW_LS("error", uv_strerror(status)));
  }
  /* Commands are failed oldest first, so callers see them in the order they sent them. A
   * callback may send (it gets -ENOTCONN) or close the client; neither touches this list. */
  while (conn->head != NULL) {
    gw_redis_cmd *cmd = conn->head;
    fifo_remove(conn, cmd);
    if (cmd->done && !cmd->outstanding) {
      cmd_free(cmd);
      continue;
    }
    cmd_complete(cmd, status, NULL);
    cmd->done = true;
  }
  if (conn->ac != NULL && !conn->freeing) {
    conn->freeing = true;
    /* Runs the trampolines (all done now), the cleanup hook and frees the context; from
     * inside a reply callback hiredis defers this until the callback returns. */
    redisAsyncFree(conn->ac);
  }
  if (was_ready && !r->closing && r->state_cb != NULL) {
    r->state_cb(r->state_opaque, false);
  }
  schedule_reconnect(r);
}

/* ---- libuv glue: hiredis' event hooks on a uv_poll of the socket ---- */

static void on_poll_closed(uv_handle_t *h) {
  gw_redis_conn *conn = h->data;
  gw_redis *r = conn->r;
  free(conn);
  r->live_conns--;
  maybe_finish_close(r);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  gw_redis_conn *conn = h->data;
  redisAsyncContext *ac = conn->ac;
  if (ac == NULL || conn->dying) {
    return;
  }
  if (status < 0) {
    /* libuv reports EPOLLERR as an error status and stops the handle: the 0.14 adapter
     * ignored it and hung. Before the connect completed, let hiredis read SO_ERROR (it calls
     * onConnect with the reason and frees the context); otherwise the socket is broken. */
    if (!(ac->c.flags & REDIS_CONNECTED)) {
      redisAsyncHandleWrite(ac);
    }
    if (conn->ac != NULL && !conn->dying) {
      conn_drop(conn, -ECONNRESET, uv_strerror(status));
    }
    return;
  }
  if (events & UV_READABLE) {
    redisAsyncHandleRead(ac);
  }
  if ((events & UV_WRITABLE) && conn->ac != NULL && !conn->dying) {
    redisAsyncHandleWrite(conn->ac);
  }
}

static void poll_update(gw_redis_conn *conn, int events) {
  if (!conn->poll_open || events == conn->events) {
    return;
  }
  conn->events = events;
  if (events == 0) {
    uv_poll_stop(&conn->poll);
  } else {
    uv_poll_start(&conn->poll, events, on_poll);
  }
}

static void ev_add_read(void *p) {
  gw_redis_conn *conn = p;
  poll_update(conn, conn->events | UV_READABLE);
}

static void ev_del_read(void *p) {
  gw_redis_conn *conn = p;
  poll_update(conn, conn->events & ~UV_READABLE);
}

static void ev_add_write(void *p) {
  gw_redis_conn *conn = p;
  poll_update(conn, conn->events | UV_WRITABLE);
}

static void ev_del_write(void *p) {
  gw_redis_conn *conn = p;
  poll_update(conn, conn->events & ~UV_WRITABLE);
}

/* hiredis is freeing the context (for any reason): the last moment we may look at it. The
 * poll handle is closed before hiredis closes the socket. */
static void ev_cleanup(void *p) {
  gw_redis_conn *conn = p;
  redisAsyncContext *ac = conn->ac;
  if (ac == NULL) {
    return;
  }
  conn->freeing = true;
  if (!conn->dying) {
    conn_drop(conn, -ECONNRESET, ac->c.err ? ac->c.errstr : "connection closed");
  }
  conn->ac = NULL;
  if (conn->poll_open) {
    conn->poll_open = false;
    uv_close((uv_handle_t *)&conn->poll, on_poll_closed);
  }
}

static void on_connect(const redisAsyncContext *ac, int status) {
  gw_redis_conn *conn = ac->ev.data;
  gw_redis *r = conn->r;
  if (status != REDIS_OK) {
    /* hiredis frees the context right after this returns; ev_cleanup does the rest. */
    GW_LOG(r->log, GW_LOG_WARN, "redis connect failed", GW_LS("host", r->host),
           GW_LI("port", r->port), GW_LS("reason", ac->c.errstr), GW_LI("attempt", r->attempt));
    return;
  }
  if (conn->dying) {
    return;
  }
  /* AUTH and SELECT are pipelined; the connection is ready when both answered. */
  struct {
    cmd_kind kind;
    bool wanted;
  } steps[] = {{CMD_AUTH, r->password != NULL && r->password[0] != '\0'}, {CMD_SELECT, r->db != 0}};
  conn->handshake_left = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    if (!steps[i].wanted) {
      continue;
    }
    gw_redis_cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
      abort();
    }
    cmd->r = r;
    cmd->kind = steps[i].kind;
    char dbstr[16];
    int rc;
    if (steps[i].kind == CMD_AUTH) {
      const char *argv[] = {"AUTH", r->password};
      rc = cmd_send_argv(conn, cmd, 2, argv, NULL);
    } else {
      snprintf(dbstr, sizeof dbstr, "%d", r->db);
      const char *argv[] = {"SELECT", dbstr};
      rc = cmd_send_argv(conn, cmd, 2, argv, NULL);
    }
    if (rc != 0) {
      free(cmd);
      conn_drop(conn, rc, "cannot queue the handshake");
      return;
    }
    conn->handshake_left++;
  }
  if (conn->handshake_left == 0) {
    become_ready(conn);
  }
}

/* ---- connecting ---- */

static void connect_to(gw_redis *r, const char *ip) {
  redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
  if (ac == NULL) {
    abort(); /* hiredis could not allocate a small fixed-size context */
  }
  if (ac->err) {
    GW_LOG(r->log, GW_LOG_WARN, "redis connect failed", GW_LS("host", r->host),
           GW_LI("port", r->port), GW_LS("reason", ac->errstr), GW_LI("attempt", r->attempt));
    redisAsyncFree(ac);
    uv_timer_stop(&r->connect_timer);
    schedule_reconnect(r);
    return;
  }
  gw_redis_conn *conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    abort();
  }
  conn->r = r;
  conn->ac = ac;
  int rc = uv_poll_init(r->loop, &conn->poll, ac->c.fd);
  if (rc != 0) {
    GW_LOG(r->log, GW_LOG_ERROR, "redis: cannot poll the socket", GW_LS("error", uv_strerror(rc)));
    redisAsyncFree(ac);
    free(conn);
    uv_timer_stop(&r->connect_timer);
    schedule_reconnect(r);
    return;
  }
  conn->poll.data = conn;
  conn->poll_open = true;
  r->live_conns++;
  r->conn = conn;
  ac->ev.data = conn;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  /* Setting the connect callback asks for writability, which is how the connect completes. */
  redisAsyncSetConnectCallback(ac, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_req *rq = req->data;
  gw_redis *r = rq->r;
  r->live_resolves--;
  if (r->resolve == rq) {
    r->resolve = NULL;
  }
  bool stale = rq->stale;
  free(rq);
  if (stale || r->closing) {
    if (res != NULL) {
      uv_freeaddrinfo(res);
    }
    maybe_finish_close(r);
    return;
  }
  /* A name may have several addresses (IPv6 and IPv4, several replicas behind one name):
   * successive failed attempts walk through them instead of insisting on the first. */
  char ip[64] = "";
  if (status == 0) {
    unsigned count = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
      count += ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
    }
    unsigned pick = count > 0 ? r->attempt % count : 0;
    for (struct addrinfo *ai = res; ai != NULL && ip[0] == '\0'; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
        continue;
      }
      if (pick-- > 0) {
        continue;
      }
      if (ai->ai_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof ip);
      } else {
        uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof ip);
      }
    }
  }
  if (res != NULL) {
    uv_freeaddrinfo(res);
  }
  if (ip[0] == '\0') {
    GW_LOG(r->log, GW_LOG_WARN, "redis host does not resolve", GW_LS("host", r->host),
           GW_LS("error", status < 0 ? uv_strerror(status) : "no address"));
    uv_timer_stop(&r->connect_timer);
    schedule_reconnect(r);
    return;
  }
  connect_to(r, ip);
}

static void on_connect_timer(uv_timer_t *t) {
  gw_redis *r = t->data;
  GW_LOG(r->log, GW_LOG_WARN, "redis connect timed out", GW_LS("host", r->host),
         GW_LI("port", r->port), GW_LI("timeout_ms", r->connect_timeout_ms));
  if (r->conn != NULL) {
    conn_drop(r->conn, -ETIMEDOUT, "connect timeout");
  } else if (r->resolve != NULL) {
    r->resolve->stale = true;
    uv_cancel((uv_req_t *)&r->resolve->req);
    r->resolve = NULL;
    schedule_reconnect(r);
  }
}

/* One attempt: resolve the name off the loop (hiredis would block in getaddrinfo), then
 * connect without blocking. Numeric addresses skip the resolver. */
static void start_attempt(gw_redis *r) {
  if (r->closing || r->conn != NULL || r->resolve != NULL) {
    return;
  }
  if (r->connect_timeout_ms > 0) {
    uv_timer_start(&r->connect_timer, on_connect_timer, r->connect_timeout_ms, 0);
  }
  if (r->host_is_numeric) {
    connect_to(r, r->host);
    return;
  }
  resolve_req *rq = calloc(1, sizeof *rq);
  if (rq == NULL) {
    abort();
  }
  rq->r = r;
  rq->req.data = rq;
  char port[8];
  snprintf(port, sizeof port, "%d", r->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(r->loop, &rq->req, on_resolved, r->host, port, &hints);
  if (rc != 0) {
    free(rq);
    GW_LOG(r->log, GW_LOG_WARN, "redis host does not resolve", GW_LS("host", r->host),
           GW_LS("error", uv_strerror(rc)));
    uv_timer_stop(&r->connect_timer);
    schedule_reconnect(r);
    return;
  }
  r->resolve = rq;
  r->live_resolves++;
}

static void on_reconnect_timer(uv_timer_t *t) {
  start_attempt(t->data);
}

/* The oldest command in flight is the head of the FIFO: if it is late, the connection is
 * presumed stuck and every command on it fails; otherwise wait until it would be late. */
static void on_command_timer(uv_timer_t *t) {
  gw_redis *r = t->data;
  gw_redis_conn *conn = r->conn;
  if (conn == NULL || conn->head == NULL) {
    return;
  }
  uint64_t now = uv_now(r->loop);
  uint64_t age = now - conn->head->sent_ms;
  if (age >= r->command_timeout_ms) {
    GW_LOG(r->log, GW_LOG_WARN, "redis command timed out", GW_LS("host", r->host),
           GW_LI("port", r->port), GW_LI("timeout_ms", r->command_timeout_ms));
    conn_drop(conn, -ETIMEDOUT, "command timeout");
    return;
  }
  uv_timer_start(&r->command_timer, on_command_timer, r->command_timeout_ms - age, 0);
}

/* ---- public API ---- */

int gw_redis_new(gw_redis **out, uv_loop_t *loop, const gw_redis_config *cfg) {
  *out = NULL;
  if (loop == NULL || cfg == NULL || cfg->host == NULL || cfg->host[0] == '\0' || cfg->port <= 0 ||
      cfg->port > 65535 || cfg->db < 0) {
    return -EINVAL;
  }
  gw_redis *r = calloc(1, sizeof *r);
  if (r == NULL) {
    return -ENOMEM;
  }
  r->loop = loop;
  r->host = strdup(cfg->host);
  r->password = cfg->password != NULL && cfg->password[0] != '\0' ? strdup(cfg->password) : NULL;
  if (r->host == NULL || (cfg->password != NULL && cfg->password[0] != '\0' && !r->password)) {
    free(r->host);
    free(r->password);
    free(r);
    return -ENOMEM;
  }
  r->port = cfg->port;
  r->db = cfg->db;
  r->connect_timeout_ms = cfg->connect_timeout_ms;
  r->command_timeout_ms = cfg->command_timeout_ms;
  r->reconnect_min_ms =
      cfg->reconnect_min_ms > 0 ? cfg->reconnect_min_ms : GW_REDIS_DEFAULT_RECONNECT_MIN_MS;
  r->reconnect_max_ms =
      cfg->reconnect_max_ms >= r->reconnect_min_ms ? cfg->reconnect_max_ms : r->reconnect_min_ms;
  /* hiredis' output buffer has no bound of its own, so "no limit" is not offered: 0 means the
   * default cap. */
  r->max_in_flight = cfg->max_in_flight > 0 ? cfg->max_in_flight : GW_REDIS_DEFAULT_MAX_IN_FLIGHT;
  r->log = cfg->log;
  r->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)r) | 1;
  unsigned char addr[sizeof(struct in6_addr)];
  r->host_is_numeric =
      uv_inet_pton(AF_INET, r->host, addr) == 0 || uv_inet_pton(AF_INET6, r->host, addr) == 0;
  uv_timer_t *timers[] = {&r->reconnect_timer, &r->connect_timer, &r->command_timer};
  for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = r;
    r->open_handles++;
  }
  start_attempt(r);
  *out = r;
  return 0;
}

bool gw_redis_connected(const gw_redis *r) {
  return r->conn != NULL && r->conn->ready;
}

size_t gw_redis_in_flight(const gw_redis *r) {
  return r->user_in_flight;
}

void gw_redis_on_state(gw_redis *r, void (*cb)(void *opaque, bool connected), void *opaque) {
  r->state_cb = cb;
  r->state_opaque = opaque;
}

/* The checks every user command passes before it is queued. */
static int admit(const gw_redis *r) {
  if (r->closing) {
    return -ESHUTDOWN;
  }
  if (!gw_redis_connected(r)) {
    return -ENOTCONN;
  }
  if (r->user_in_flight >= r->max_in_flight) {
    return -EAGAIN;
  }
  return 0;
}

int gw_redis_command(gw_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                     gw_redis_reply_cb cb, void *opaque) {
  if (argc <= 0 || argv == NULL || cb == NULL) {
    return -EINVAL;
  }
  int rc = admit(r);
  if (rc != 0) {
    return rc;
  }
  gw_redis_cmd *cmd = calloc(1, sizeof *cmd);
  if (cmd == NULL) {
    return -ENOMEM;
  }
  cmd->r = r;
  cmd->kind = CMD_USER;
  cmd->cb = cb;
  cmd->opaque = opaque;
  rc = cmd_send_argv(r->conn, cmd, argc, (const char **)argv, argvlen);
  if (rc != 0) {
    free(cmd);
    return rc;
  }
  r->user_in_flight++;
  return 0;
}

int gw_redis_script_new(gw_redis_script **out, const char *source) {
  *out = NULL;
  if (source == NULL) {
    return -EINVAL;
  }
  gw_redis_script *s = calloc(1, sizeof *s);
  if (s == NULL) {
    return -ENOMEM;
  }
  s->source_len = strlen(source);
  s->source = malloc(s->source_len + 1);
  if (s->source == NULL) {
    free(s);
    return -ENOMEM;
  }
  memcpy(s->source, source, s->source_len + 1);
  gw_sha1_hex(s->source, s->source_len, s->sha);
  *out = s;
  return 0;
}

void gw_redis_script_free(gw_redis_script *s) {
  if (s == NULL) {
    return;
  }
  free(s->source);
  free(s);
}

const char *gw_redis_script_sha(const gw_redis_script *s) {
  return s->sha;
}

int gw_redis_eval(gw_redis *r, const gw_redis_script *s, int nkeys, const char *const *keys,
                  const size_t *keylens, int nargs, const char *const *args, const size_t *arglens,
                  gw_redis_reply_cb cb, void *opaque) {
  if (s == NULL || cb == NULL || nkeys < 0 || nargs < 0 || (nkeys > 0 && keys == NULL) ||
      (nargs > 0 && args == NULL) || nkeys > INT_MAX - 3 - nargs) {
    return -EINVAL;
  }
  int rc = admit(r);
  if (rc != 0) {
    return rc;
  }
  int argc = 3 + nkeys + nargs;
  const char **argv = malloc((size_t)argc * sizeof *argv);
  size_t *lens = malloc((size_t)argc * sizeof *lens);
  gw_redis_cmd *cmd = calloc(1, sizeof *cmd);
  if (argv == NULL || lens == NULL || cmd == NULL) {
    free(argv);
    free(lens);
    free(cmd);
    return -ENOMEM;
  }
  char nkeys_str[16];
  snprintf(nkeys_str, sizeof nkeys_str, "%d", nkeys);
  argv[0] = "EVALSHA";
  lens[0] = 7;
  argv[1] = s->sha;
  lens[1] = GW_SHA1_HEX_LEN;
  argv[2] = nkeys_str;
  lens[2] = strlen(nkeys_str);
  for (int i = 0; i < nkeys; i++) {
    argv[3 + i] = keys[i];
    lens[3 + i] = keylens != NULL ? keylens[i] : strlen(keys[i]);
  }
  for (int i = 0; i < nargs; i++) {
    argv[3 + nkeys + i] = args[i];
    lens[3 + nkeys + i] = arglens != NULL ? arglens[i] : strlen(args[i]);
  }
  /* The formatted command is kept so that a NOSCRIPT retry resends the very same bytes. */
  char *formatted = NULL;
  int len = redisFormatCommandArgv(&formatted, argc, argv, lens);
  free(argv);
  free(lens);
  if (len < 0) {
    free(cmd);
    return -ENOMEM;
  }
  cmd->r = r;
  cmd->kind = CMD_EVAL;
  cmd->cb = cb;
  cmd->opaque = opaque;
  cmd->script = s;
  cmd->step = EVAL_FIRST;
  cmd->evalsha = formatted;
  cmd->evalsha_len = len;
  rc = cmd_send_formatted(r->conn, cmd, formatted, (size_t)len);
  if (rc != 0) {
    cmd_free(cmd);
    return rc;
  }
  r->user_in_flight++;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  gw_redis *r = h->data;
  r->open_handles--;
  maybe_finish_close(r);
}

void gw_redis_close(gw_redis *r, void (*close_cb)(void *opaque), void *opaque) {
  if (r->closing) {
    return;
  }
  r->closing = true;
  r->close_cb = close_cb;
  r->close_opaque = opaque;
  if (r->conn != NULL) {
    conn_drop(r->conn, -ECONNRESET, "client closed");
  }
  if (r->resolve != NULL) {
    r->resolve->stale = true;
    uv_cancel((uv_req_t *)&r->resolve->req);
    r->resolve = NULL;
  }
  uv_close((uv_handle_t *)&r->reconnect_timer, on_timer_closed);
  uv_close((uv_handle_t *)&r->connect_timer, on_timer_closed);
  uv_close((uv_handle_t *)&r->command_timer, on_timer_closed);
}

const char *gw_redis_failure_reason(int status, const gw_redis_reply *reply) {
  if (reply != NULL && reply->type == GW_REDIS_ERROR && reply->str != NULL)
    return reply->str;
  switch (status) {
  case -ETIMEDOUT:
    return "timed out";
  case -ENOTCONN:
    return "not connected";
  case -EAGAIN:
    return "too many commands in flight";
  case -ECONNRESET:
  case -EPIPE:
  case -EIO:
    return "connection lost";
  case -ESHUTDOWN:
    return "client closing";
  default:
    return status < 0 ? "failed" : "unexpected reply";
  }
}
