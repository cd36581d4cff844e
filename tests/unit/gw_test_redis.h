/*
 * A real redis-server for unit tests: a free loopback port, and a server started on it in a
 * directory of the test's, awaited until it answers PING (bounded), for the tests of the
 * modules that talk to Redis (aggregates, aggregator, redis) and bench_dedupe_memory.
 */
#ifndef GW_TEST_REDIS_H
#define GW_TEST_REDIS_H

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A loopback port nothing listens on right now (bind to 0, read it back, release it); -1 on
 * failure. */
static inline int gw_test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

/*
 * Starts the redis-server binary at server on a free port with its files in dir (no
 * persistence) and waits, at most 10 s, until it answers PING. Returns a connection to it (the
 * caller frees it with redisFree) with *port and *pid set, or NULL after saying why on stderr.
 */
static inline redisContext *gw_test_redis_start_server(const char *server, const char *dir,
                                                       int *port, pid_t *pid) {
  *port = gw_test_free_port();
  *pid = -1;
  if (*port < 0)
    return NULL;
  char portstr[16];
  snprintf(portstr, sizeof(portstr), "%d", *port);
  *pid = fork();
  if (*pid == 0) {
    execl(server, "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--dir", dir, "--save",
          "", "--appendonly", "no", "--logfile", "redis.log", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", *port, tv);
    if (c != NULL && c->err == 0) {
      redisReply *r = redisCommand(c, "PING");
      bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
      if (r)
        freeReplyObject(r);
      if (ok)
        return c;
    }
    if (c)
      redisFree(c);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "redis-server on port %d did not answer PING within 10 s\n", *port);
  return NULL;
}

/* gw_test_redis_start_server with Debian's /usr/bin/redis-server. */
static inline redisContext *gw_test_redis_start(const char *dir, int *port, pid_t *pid) {
  return gw_test_redis_start_server("/usr/bin/redis-server", dir, port, pid);
}

/* Stops a server of gw_test_redis_start (SIGTERM, then waits for it). */
static inline void gw_test_redis_stop(pid_t *pid) {
  if (*pid > 0) {
    kill(*pid, SIGTERM);
    waitpid(*pid, NULL, 0);
    *pid = -1;
  }
}

#endif
