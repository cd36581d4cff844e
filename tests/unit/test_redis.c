/*
 * gw_redis against real redis-server processes that the test starts on free ports in a
 * scratch directory (and kills at exit, or when the test process dies: PR_SET_PDEATHSIG).
 * Every wait is bounded and says what it waited for when it gives up.
 */
#include "goodwill/buf.h"
#include "goodwill/redis.h"
#include "gw_test.h"
#include "gw_test_redis.h"
#include "gw_test_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 8

/* The servers this process started, so that an early exit still stops them. */
static pid_t started_pids[MAX_SERVERS];
static char scratch_dir[512];

typedef struct server {
  pid_t pid;
  int port;
} server;

static void kill_all_servers(void) {
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (started_pids[i] > 0) {
      kill(started_pids[i], SIGKILL);
      waitpid(started_pids[i], NULL, 0);
      started_pids[i] = 0;
    }
  }
  if (scratch_dir[0] != '\0') {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "could not remove %s\n", scratch_dir);
    }
    scratch_dir[0] = '\0';
  }
}

static void on_fatal_signal(int sig) {
  kill_all_servers();
  signal(sig, SIG_DFL);
  raise(sig);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A free loopback port; the test cannot go on without one. */
static int free_port(void) {
  int port = gw_test_free_port();
  if (port < 0) {
    fprintf(stderr, "free_port: %s\n", strerror(errno));
    exit(2);
  }
  return port;
}

/* True when something on port answers an inline PING with a RESP line ("+PONG", or "-NOAUTH"
 * when a password is required). */
static bool answers_ping(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  struct timeval tv = {0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  char buf[64];
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
    ssize_t n = read(fd, buf, sizeof buf);
    ok = n > 0 && (buf[0] == '+' || buf[0] == '-');
  }
  close(fd);
  return ok;
}

/* Starts redis-server on port with extra arguments (NULL-terminated) and waits, at most 5 s,
 * until it answers. */
static server start_server(int port, ...) {
  const char *argv[32];
  char port_str[16];
  snprintf(port_str, sizeof port_str, "%d", port);
  int n = 0;
  argv[n++] = "/usr/bin/redis-server";
  argv[n++] = "--port";
  argv[n++] = port_str;
  argv[n++] = "--bind";
  argv[n++] = "127.0.0.1";
  argv[n++] = "--save";
  argv[n++] = "";
  argv[n++] = "--appendonly";
  argv[n++] = "no";
  argv[n++] = "--dir";
  argv[n++] = scratch_dir;
  argv[n++] = "--enable-debug-command";
  argv[n++] = "local";
  va_list ap;
  va_start(ap, port);
  const char *extra;
  while ((extra = va_arg(ap, const char *)) != NULL && n < 30) {
    argv[n++] = extra;
  }
  va_end(ap);
  argv[n] = NULL;
  server s = {0, port};
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "fork: %s\n", strerror(errno));
    exit(2);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  s.pid = pid;
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (started_pids[i] == 0) {
      started_pids[i] = pid;
      break;
    }
  }
  uint64_t deadline = now_ms() + 5000;
  while (!answers_ping(port)) {
    if (now_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
      fprintf(stderr, "redis-server on port %d did not answer PING within 5 s\n", port);
      kill_all_servers();
      exit(2);
    }
    usleep(10000); /* polling a condition with a deadline, not synchronising by sleep */
  }
  return s;
}

static void stop_server(server *s) {
  if (s->pid <= 0) {
    return;
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (started_pids[i] == s->pid) {
      started_pids[i] = 0;
    }
  }
  s->pid = 0;
}

/* ---- loop helpers ---- */

static bool never(void *arg) {
  (void)arg;
  return false;
}

static void run_for(uv_loop_t *loop, uint64_t ms) {
  gw_test_run_until(loop, never, NULL, ms);
}

static bool is_connected(void *arg) {
  return gw_redis_connected(arg);
}

/* ---- replies as text, so that checks read like what redis-cli would show ---- */

static void reply_text(gw_buf *b, const gw_redis_reply *rep) {
  switch (rep->type) {
  case GW_REDIS_STRING:
    gw_buf_puts(b, "S:");
    for (size_t i = 0; i < rep->len; i++) {
      unsigned char c = (unsigned char)rep->str[i];
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        gw_buf_putc(b, (char)c);
      } else {
        gw_buf_printf(b, "\\x%02x", c);
      }
    }
    break;
  case GW_REDIS_STATUS:
    gw_buf_printf(b, "+%s", rep->str);
    break;
  case GW_REDIS_ERROR:
    gw_buf_printf(b, "-%s", rep->str);
    break;
  case GW_REDIS_INTEGER:
    gw_buf_printf(b, "I:%lld", rep->integer);
    break;
  case GW_REDIS_NIL:
    gw_buf_puts(b, "nil");
    break;
  case GW_REDIS_ARRAY:
    gw_buf_putc(b, '[');
    for (size_t i = 0; i < rep->nelements; i++) {
      if (i > 0) {
        gw_buf_putc(b, ',');
      }
      reply_text(b, &rep->elements[i]);
    }
    gw_buf_putc(b, ']');
    break;
  }
}

typedef struct result {
  int calls;
  int status;
  char text[512];
  uint64_t at_ms;
} result;

static void on_result(void *opaque, int status, const gw_redis_reply *rep) {
  result *res = opaque;
  res->calls++;
  res->status = status;
  res->at_ms = now_ms();
  gw_buf b = GW_BUF_INIT;
  if (rep != NULL) {
    reply_text(&b, rep);
  } else {
    gw_buf_printf(&b, "(status %d, no reply)", status);
  }
  snprintf(res->text, sizeof res->text, "%s", b.data);
  gw_buf_free(&b);
}

static bool result_called(void *arg) {
  return ((result *)arg)->calls > 0;
}

/* Sends argv (NUL-terminated strings) and waits at most 3 s for the callback; returns the reply
 * as text, "(send error N)" when the send failed, "(no callback)" on timeout. */
static const char *do_cmdv(uv_loop_t *loop, gw_redis *r, result *res, int argc,
                           const char *const *argv, const size_t *lens) {
  memset(res, 0, sizeof *res);
  int rc = gw_redis_command(r, argc, argv, lens, on_result, res);
  if (rc != 0) {
    snprintf(res->text, sizeof res->text, "(send error %d)", rc);
    return res->text;
  }
  if (!gw_test_run_until(loop, result_called, res, 3000)) {
    snprintf(res->text, sizeof res->text, "(no callback)");
  }
  return res->text;
}

static const char *do_cmd(uv_loop_t *loop, gw_redis *r, result *res, ...) {
  const char *argv[16];
  int argc = 0;
  va_list ap;
  va_start(ap, res);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 16) {
    argv[argc++] = a;
  }
  va_end(ap);
  return do_cmdv(loop, r, res, argc, argv, NULL);
}

static gw_redis_config base_config(int port, const gw_log *log) {
  gw_redis_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.connect_timeout_ms = 1000;
  cfg.command_timeout_ms = 2000;
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 200;
  cfg.max_in_flight = 64;
  cfg.log = log;
  return cfg;
}

static bool closed_flag_set(void *arg) {
  return *(bool *)arg;
}

static void on_closed(void *opaque) {
  *(bool *)opaque = true;
}

/* Closes r, waits for close_cb and checks that no handle was left behind on the loop. */
static void close_client(uv_loop_t *loop, gw_redis *r) {
  bool closed = false;
  gw_redis_close(r, on_closed, &closed);
  CHECK(gw_test_run_until(loop, closed_flag_set, &closed, 2000));
}

static void finish_loop(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_NOWAIT);
  CHECK_INT_EQ(uv_loop_close(loop), 0);
}

/* A log that goes to a scratch file, so tests can check what an operator would read. */
typedef struct captured_log {
  gw_log log;
  FILE *f;
} captured_log;

static void captured_log_init(captured_log *c) {
  c->f = tmpfile();
  c->log.out = c->f;
  c->log.min_level = GW_LOG_DEBUG;
  c->log.component = "test";
}

/* The log so far (caller frees). */
static char *captured_log_text(captured_log *c) {
  fflush(c->f);
  long n = ftell(c->f);
  char *s = calloc(1, (size_t)n + 1);
  rewind(c->f);
  size_t got = fread(s, 1, (size_t)n, c->f);
  s[got] = '\0';
  fseek(c->f, 0, SEEK_END);
  return s;
}

static int count_occurrences(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
    n++;
  }
  return n;
}

/* ---- tests without a server ---- */

static void test_parse_url(void) {
  gw_redis_config cfg;
  char *storage = NULL;
  char err[200];

  memset(&cfg, 0, sizeof cfg);
  CHECK_INT_EQ(gw_redis_parse_url("redis://cache.local", &cfg, &storage, err, sizeof err), 0);
  CHECK_STR_EQ(cfg.host, "cache.local");
  CHECK_INT_EQ(cfg.port, 6379);
  CHECK(cfg.password == NULL);
  CHECK_INT_EQ(cfg.db, 0);
  free(storage);

  CHECK_INT_EQ(
      gw_redis_parse_url("redis://:p%40ss@10.0.0.7:6380/3", &cfg, &storage, err, sizeof err), 0);
  CHECK_STR_EQ(cfg.host, "10.0.0.7");
  CHECK_INT_EQ(cfg.port, 6380);
  CHECK_STR_EQ(cfg.password, "p@ss");
  CHECK_INT_EQ(cfg.db, 3);
  free(storage);

  CHECK_INT_EQ(gw_redis_parse_url("redis://[::1]:7000", &cfg, &storage, err, sizeof err), 0);
  CHECK_STR_EQ(cfg.host, "::1");
  CHECK_INT_EQ(cfg.port, 7000);
  free(storage);

  CHECK_INT_EQ(gw_redis_parse_url("http://x", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "redis://");
  CHECK(storage == NULL);
  CHECK_INT_EQ(gw_redis_parse_url("rediss://h", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "TLS");
  CHECK_INT_EQ(gw_redis_parse_url("redis://h:99999", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "port");
  CHECK_INT_EQ(gw_redis_parse_url("redis://h:6379/x", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "database");
  CHECK_INT_EQ(gw_redis_parse_url("redis://user:pw@h", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "user names");
  CHECK_INT_EQ(gw_redis_parse_url("redis://:6379", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "empty host");
  CHECK_INT_EQ(gw_redis_parse_url("redis://:a%4@h", &cfg, &storage, err, sizeof err), -EINVAL);
  CHECK_STR_CONTAINS(err, "percent");
}

/* FIPS 180-4 examples (and the SHA-1 of the empty string). */
static void test_script_sha1(void) {
  struct {
    const char *in, *sha;
  } v[] = {
      {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
      {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    gw_redis_script *s = NULL;
    CHECK_INT_EQ(gw_redis_script_new(&s, v[i].in), 0);
    CHECK_STR_EQ(gw_redis_script_sha(s), v[i].sha);
    gw_redis_script_free(s);
  }
}

/* ---- tests against a server ---- */

static void test_commands_and_replies(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  result res;
  const char *ping[] = {"PING"};
  /* The connection is being set up: nothing may be queued yet. */
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &res), -ENOTCONN);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));

  CHECK_STR_EQ(do_cmd(&loop, r, &res, "PING", NULL), "+PONG");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "SET", "k1", "hello", NULL), "+OK");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "GET", "k1", NULL), "S:hello");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "GET", "missing", NULL), "nil");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "INCR", "n", NULL), "I:1");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "INCRBY", "n", "41", NULL), "I:42");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "INCR", "k1", NULL),
               "-ERR value is not an integer or out of range");
  CHECK_INT_EQ(res.status, 0);
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "RPUSH", "l", "a", "", "c", NULL), "I:3");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "LRANGE", "l", "0", "-1", NULL), "[S:a,S:,S:c]");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "LRANGE", "nolist", "0", "-1", NULL), "[]");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "MGET", "k1", "missing", "n", NULL), "[S:hello,nil,S:42]");

  /* Binary-safe arguments: NUL, CR and LF inside both the key and the value. */
  const char key[] = {'b', 0, 'k'};
  const char val[] = {'a', 0, '\r', '\n', (char)0xff};
  const char *set[] = {"SET", key, val};
  const size_t set_lens[] = {3, sizeof key, sizeof val};
  CHECK_STR_EQ(do_cmdv(&loop, r, &res, 3, set, set_lens), "+OK");
  const char *get[] = {"GET", key};
  const size_t get_lens[] = {3, sizeof key};
  CHECK_STR_EQ(do_cmdv(&loop, r, &res, 2, get, get_lens), "S:a\\x00\\x0d\\x0a\\xff");
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "STRLEN", "b", NULL), "I:0");

  /* A larger reply than the converter's on-stack pool. */
  for (int i = 0; i < 40; i++) {
    char v[8];
    snprintf(v, sizeof v, "%d", i);
    do_cmd(&loop, r, &res, "RPUSH", "big", v, NULL);
  }
  const char *text = do_cmd(&loop, r, &res, "LRANGE", "big", "0", "-1", NULL);
  CHECK_STR_CONTAINS(text, "[S:0,S:1,S:2,");
  CHECK_STR_CONTAINS(text, ",S:39]");

  CHECK_INT_EQ(gw_redis_in_flight(r), 0);
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
}

typedef struct counter {
  int calls;
  int ok;
  int last_status;
  int expected;
} counter;

static void on_count(void *opaque, int status, const gw_redis_reply *rep) {
  counter *c = opaque;
  c->calls++;
  c->last_status = status;
  if (status == 0 && rep != NULL && rep->type != GW_REDIS_ERROR) {
    c->ok++;
  }
}

static bool counter_done(void *arg) {
  counter *c = arg;
  return c->calls >= c->expected;
}

static void test_in_flight_cap(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  cfg.max_in_flight = 4;
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  counter c = {0, 0, 0, 4};
  const char *incr[] = {"INCR", "cap"};
  for (int i = 0; i < 4; i++) {
    CHECK_INT_EQ(gw_redis_command(r, 2, incr, NULL, on_count, &c), 0);
  }
  CHECK_INT_EQ(gw_redis_in_flight(r), 4);
  CHECK_INT_EQ(gw_redis_command(r, 2, incr, NULL, on_count, &c), -EAGAIN);
  CHECK(gw_test_run_until(&loop, counter_done, &c, 3000));
  CHECK_INT_EQ(c.ok, 4);
  CHECK_INT_EQ(gw_redis_in_flight(r), 0);
  result res;
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "GET", "cap", NULL), "S:4");
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
}

static const char *do_eval(uv_loop_t *loop, gw_redis *r, const gw_redis_script *s, int nkeys,
                           const char *const *keys, int nargs, const char *const *args,
                           result *res) {
  memset(res, 0, sizeof *res);
  int rc = gw_redis_eval(r, s, nkeys, keys, NULL, nargs, args, NULL, on_result, res);
  if (rc != 0) {
    snprintf(res->text, sizeof res->text, "(send error %d)", rc);
    return res->text;
  }
  if (!gw_test_run_until(loop, result_called, res, 3000)) {
    snprintf(res->text, sizeof res->text, "(no callback)");
  }
  return res->text;
}

static void test_eval_and_noscript_recovery(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  gw_redis *r = NULL, *admin = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK_INT_EQ(gw_redis_new(&admin, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  CHECK(gw_test_run_until(&loop, is_connected, admin, 3000));

  const char *src = "redis.call('SET', KEYS[1], ARGV[1]) "
                    "return {KEYS[1], redis.call('GET', KEYS[1]), tonumber(ARGV[2]) + 1, "
                    "{ARGV[2]}}";
  gw_redis_script *s = NULL;
  CHECK_INT_EQ(gw_redis_script_new(&s, src), 0);
  result res;
  const char *keys[] = {"gw:{t:a}:k"};
  const char *args[] = {"v1", "41"};
  /* First use: the server has never seen the script (NOSCRIPT is recovered transparently). */
  CHECK_STR_EQ(do_eval(&loop, r, s, 1, keys, 2, args, &res), "[S:gw:{t:a}:k,S:v1,I:42,[S:41]]");
  CHECK_INT_EQ(res.status, 0);
  CHECK_INT_EQ(res.calls, 1);

  /* Our SHA-1 is the one Redis computes. */
  const char *load[] = {"SCRIPT", "LOAD", src};
  char expect[64];
  snprintf(expect, sizeof expect, "S:%s", gw_redis_script_sha(s));
  CHECK_STR_EQ(do_cmdv(&loop, admin, &res, 3, load, NULL), expect);

  /* Flushed behind the client's back (as after a restart or failover): still works. */
  CHECK_STR_EQ(do_cmd(&loop, admin, &res, "SCRIPT", "FLUSH", NULL), "+OK");
  const char *args2[] = {"v2", "9"};
  CHECK_STR_EQ(do_eval(&loop, r, s, 1, keys, 2, args2, &res), "[S:gw:{t:a}:k,S:v2,I:10,[S:9]]");
  CHECK_INT_EQ(res.calls, 1);
  CHECK_STR_EQ(do_eval(&loop, r, s, 1, keys, 2, args, &res), "[S:gw:{t:a}:k,S:v1,I:42,[S:41]]");

  /* A script that does not compile: the caller gets the server's error once. */
  gw_redis_script *bad = NULL;
  CHECK_INT_EQ(gw_redis_script_new(&bad, "return {"), 0);
  const char *text = do_eval(&loop, r, bad, 0, NULL, 0, NULL, &res);
  CHECK_INT_EQ(res.status, 0);
  CHECK_INT_EQ(res.calls, 1);
  CHECK(text[0] == '-');
  CHECK_STR_CONTAINS(text, "Error compiling script");
  /* A runtime error reply is returned as it is, without retry. */
  gw_redis_script *boom = NULL;
  CHECK_INT_EQ(gw_redis_script_new(&boom, "return redis.error_reply('BOOM no luck')"), 0);
  CHECK_STR_EQ(do_eval(&loop, r, boom, 0, NULL, 0, NULL, &res), "-BOOM no luck");
  CHECK_INT_EQ(gw_redis_eval(r, s, -1, NULL, NULL, 0, NULL, NULL, on_result, &res), -EINVAL);
  CHECK_INT_EQ(gw_redis_in_flight(r), 0);

  gw_redis_script_free(s);
  gw_redis_script_free(bad);
  gw_redis_script_free(boom);
  close_client(&loop, r);
  close_client(&loop, admin);
  finish_loop(&loop);
  stop_server(&srv);
}

/* Waits until a PING succeeds (the client reconnects by itself); retries failed PINGs. */
static bool ping_eventually(uv_loop_t *loop, gw_redis *r, uint64_t timeout_ms) {
  uint64_t deadline = now_ms() + timeout_ms;
  result res;
  while (now_ms() < deadline) {
    if (gw_test_run_until(loop, is_connected, r, deadline - now_ms()) &&
        strcmp(do_cmd(loop, r, &res, "PING", NULL), "+PONG") == 0) {
      return true;
    }
  }
  fprintf(stderr, "no successful PING within %llu ms\n", (unsigned long long)timeout_ms);
  return false;
}

static void test_command_timeout(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  cfg.command_timeout_ms = 200;
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  result slow, behind;
  memset(&slow, 0, sizeof slow);
  memset(&behind, 0, sizeof behind);
  const char *sleep1[] = {"DEBUG", "SLEEP", "1"};
  const char *ping[] = {"PING"};
  uint64_t t0 = now_ms();
  CHECK_INT_EQ(gw_redis_command(r, 3, sleep1, NULL, on_result, &slow), 0);
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &behind), 0);
  CHECK(gw_test_run_until(&loop, result_called, &behind, 3000));
  CHECK_INT_EQ(slow.calls, 1);
  CHECK_INT_EQ(slow.status, -ETIMEDOUT);
  CHECK_INT_EQ(behind.calls, 1);
  CHECK_INT_EQ(behind.status, -ETIMEDOUT);
  /* Timed out near 200 ms, well before the server's 1 s sleep ended. */
  CHECK(slow.at_ms - t0 >= 150);
  CHECK(slow.at_ms - t0 < 900);
  CHECK_INT_EQ(gw_redis_in_flight(r), 0);
  CHECK(ping_eventually(&loop, r, 5000));
  CHECK_INT_EQ(slow.calls, 1);
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
}

static void test_refused_then_server_starts(void) {
  int port = free_port();
  captured_log cl;
  captured_log_init(&cl);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, &cl.log);
  cfg.reconnect_min_ms = 20;
  cfg.reconnect_max_ms = 100;
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  uint64_t t0 = now_ms();
  run_for(&loop, 500);
  /* The loop was not blocked, and the client is honest about its state. */
  CHECK(now_ms() - t0 < 1500);
  CHECK(!gw_redis_connected(r));
  result res;
  const char *ping[] = {"PING"};
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &res), -ENOTCONN);
  char *text = captured_log_text(&cl);
  CHECK(count_occurrences(text, "redis connect failed") >= 3);
  CHECK_STR_CONTAINS(text, "refused");
  free(text);

  server srv = start_server(port, NULL);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "PING", NULL), "+PONG");
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
  fclose(cl.f);
}

typedef struct state_log {
  int ups, downs;
} state_log;

static void on_state(void *opaque, bool connected) {
  state_log *s = opaque;
  if (connected) {
    s->ups++;
  } else {
    s->downs++;
  }
}

static void test_server_killed_mid_flight(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  state_log st = {0, 0};
  gw_redis_on_state(r, on_state, &st);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  result blocked;
  memset(&blocked, 0, sizeof blocked);
  const char *blpop[] = {"BLPOP", "never-pushed", "10"};
  CHECK_INT_EQ(gw_redis_command(r, 3, blpop, NULL, on_result, &blocked), 0);
  run_for(&loop, 50); /* let the command reach the server */
  stop_server(&srv);
  CHECK(gw_test_run_until(&loop, result_called, &blocked, 3000));
  CHECK_INT_EQ(blocked.calls, 1);
  CHECK(blocked.status == -ECONNRESET || blocked.status == -ETIMEDOUT);
  CHECK(!gw_redis_connected(r));
  CHECK_INT_EQ(st.downs, 1);
  result res;
  const char *ping[] = {"PING"};
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &res), -ENOTCONN);
  run_for(&loop, 200); /* a few refused reconnects */

  srv = start_server(port, NULL);
  CHECK(ping_eventually(&loop, r, 5000));
  CHECK_INT_EQ(st.ups, 2);
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
}

static void test_auth_and_select(void) {
  int port = free_port();
  server srv = start_server(port, "--requirepass", "s3cret-pw", NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  result res;

  /* The right password, and database 3. */
  gw_redis_config cfg = base_config(port, NULL);
  cfg.password = "s3cret-pw";
  cfg.db = 3;
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "SET", "in-db3", "yes", NULL), "+OK");
  gw_redis_config cfg0 = cfg;
  cfg0.db = 0;
  gw_redis *r0 = NULL;
  CHECK_INT_EQ(gw_redis_new(&r0, &loop, &cfg0), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r0, 3000));
  CHECK_STR_EQ(do_cmd(&loop, r0, &res, "GET", "in-db3", NULL), "nil");
  CHECK_STR_EQ(do_cmd(&loop, r0, &res, "SELECT", "3", NULL), "+OK");
  CHECK_STR_EQ(do_cmd(&loop, r0, &res, "GET", "in-db3", NULL), "S:yes");

  /* A wrong password: logged as an error (without the password), never ready, retried. */
  captured_log cl;
  captured_log_init(&cl);
  gw_redis_config bad = base_config(port, &cl.log);
  bad.password = "wrong-pw-xyz";
  bad.reconnect_min_ms = 20;
  bad.reconnect_max_ms = 80;
  gw_redis *rb = NULL;
  CHECK_INT_EQ(gw_redis_new(&rb, &loop, &bad), 0);
  run_for(&loop, 600);
  CHECK(!gw_redis_connected(rb));
  const char *ping[] = {"PING"};
  CHECK_INT_EQ(gw_redis_command(rb, 1, ping, NULL, on_result, &res), -ENOTCONN);
  char *text = captured_log_text(&cl);
  CHECK(count_occurrences(text, "redis AUTH rejected") >= 2);
  CHECK_STR_CONTAINS(text, "\"level\":\"error\"");
  CHECK(strstr(text, "wrong-pw-xyz") == NULL);
  free(text);

  close_client(&loop, rb);
  close_client(&loop, r);
  close_client(&loop, r0);
  finish_loop(&loop);
  stop_server(&srv);
  fclose(cl.f);
}

static void test_close_fails_in_flight(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  result blocked, queued;
  memset(&blocked, 0, sizeof blocked);
  memset(&queued, 0, sizeof queued);
  const char *blpop[] = {"BLPOP", "never-pushed", "10"};
  const char *ping[] = {"PING"};
  CHECK_INT_EQ(gw_redis_command(r, 3, blpop, NULL, on_result, &blocked), 0);
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &queued), 0);
  run_for(&loop, 50);
  bool closed = false;
  gw_redis_close(r, on_closed, &closed);
  /* Failed synchronously by close, in order; later commands are refused. */
  CHECK_INT_EQ(blocked.calls, 1);
  CHECK_INT_EQ(blocked.status, -ECONNRESET);
  CHECK_INT_EQ(queued.calls, 1);
  CHECK_INT_EQ(queued.status, -ECONNRESET);
  CHECK(blocked.at_ms <= queued.at_ms);
  CHECK_INT_EQ(gw_redis_command(r, 1, ping, NULL, on_result, &queued), -ESHUTDOWN);
  CHECK(gw_test_run_until(&loop, closed_flag_set, &closed, 2000));
  CHECK_INT_EQ(blocked.calls, 1);
  finish_loop(&loop);

  /* Closing while the first attempt is still in progress leaves nothing behind either. */
  uv_loop_init(&loop);
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  close_client(&loop, r);
  finish_loop(&loop);
  stop_server(&srv);
}

/* A callback that closes the client from inside a reply (re-entrancy). */
typedef struct reentrant {
  gw_redis *r;
  int first_calls, second_calls, second_status;
  bool closed;
} reentrant;

static void on_first_then_close(void *opaque, int status, const gw_redis_reply *rep) {
  reentrant *x = opaque;
  (void)status;
  (void)rep;
  x->first_calls++;
  gw_redis_close(x->r, on_closed, &x->closed);
}

static void on_second(void *opaque, int status, const gw_redis_reply *rep) {
  reentrant *x = opaque;
  (void)rep;
  x->second_calls++;
  x->second_status = status;
}

static bool reentrant_closed(void *arg) {
  return ((reentrant *)arg)->closed;
}

static void test_close_from_reply_callback(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  reentrant x;
  memset(&x, 0, sizeof x);
  CHECK_INT_EQ(gw_redis_new(&x.r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, x.r, 3000));
  const char *ping[] = {"PING"};
  const char *blpop[] = {"BLPOP", "never-pushed", "10"};
  CHECK_INT_EQ(gw_redis_command(x.r, 1, ping, NULL, on_first_then_close, &x), 0);
  CHECK_INT_EQ(gw_redis_command(x.r, 3, blpop, NULL, on_second, &x), 0);
  CHECK(gw_test_run_until(&loop, reentrant_closed, &x, 3000));
  CHECK_INT_EQ(x.first_calls, 1);
  CHECK_INT_EQ(x.second_calls, 1);
  CHECK_INT_EQ(x.second_status, -ECONNRESET);
  finish_loop(&loop);
  stop_server(&srv);
}

/* A peer that completes the TCP handshake (the kernel does it) but never says a word: the
 * handshake (AUTH) hangs, and only the connect timeout can end the attempt. */
static void test_connect_timeout_on_silent_peer(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
  captured_log cl;
  captured_log_init(&cl);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(ntohs(a.sin_port), &cl.log);
  cfg.password = "pw";
  cfg.connect_timeout_ms = 100;
  cfg.command_timeout_ms = 0; /* only the connect timeout may fire */
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  run_for(&loop, 700);
  CHECK(!gw_redis_connected(r));
  char *text = captured_log_text(&cl);
  CHECK(count_occurrences(text, "redis connect timed out") >= 2);
  free(text);
  close_client(&loop, r);
  finish_loop(&loop);
  close(fd);
  fclose(cl.f);
}

/* A host name goes through the loop's resolver rather than a blocking getaddrinfo. */
static void test_host_name_and_bad_config(void) {
  int port = free_port();
  server srv = start_server(port, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_redis_config cfg = base_config(port, NULL);
  cfg.host = "localhost";
  gw_redis *r = NULL;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  CHECK(gw_test_run_until(&loop, is_connected, r, 3000));
  result res;
  CHECK_STR_EQ(do_cmd(&loop, r, &res, "PING", NULL), "+PONG");
  close_client(&loop, r);

  /* Closing while the name is being resolved waits for the resolver before freeing. */
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &cfg), 0);
  close_client(&loop, r);

  gw_redis_config bad = cfg;
  bad.port = 0;
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &bad), -EINVAL);
  CHECK(r == NULL);
  bad = cfg;
  bad.host = "";
  CHECK_INT_EQ(gw_redis_new(&r, &loop, &bad), -EINVAL);
  finish_loop(&loop);
  stop_server(&srv);
}

int main(void) {
  const char *base = getenv("GW_BUILD_DIR");
  snprintf(scratch_dir, sizeof scratch_dir, "%s/test_redis.XXXXXX", base ? base : "/tmp");
  if (mkdtemp(scratch_dir) == NULL) {
    fprintf(stderr, "mkdtemp %s: %s\n", scratch_dir, strerror(errno));
    return 2;
  }
  atexit(kill_all_servers);
  signal(SIGABRT, on_fatal_signal);
  signal(SIGSEGV, on_fatal_signal);
  signal(SIGINT, on_fatal_signal);
  signal(SIGTERM, on_fatal_signal);
  signal(SIGPIPE, SIG_IGN);

  GW_RUN(test_parse_url);
  GW_RUN(test_script_sha1);
  GW_RUN(test_commands_and_replies);
  GW_RUN(test_in_flight_cap);
  GW_RUN(test_eval_and_noscript_recovery);
  GW_RUN(test_command_timeout);
  GW_RUN(test_refused_then_server_starts);
  GW_RUN(test_server_killed_mid_flight);
  GW_RUN(test_auth_and_select);
  GW_RUN(test_close_fails_in_flight);
  GW_RUN(test_close_from_reply_callback);
  GW_RUN(test_connect_timeout_on_silent_peer);
  GW_RUN(test_host_name_and_bad_config);
  return gw_test_finish();
}
