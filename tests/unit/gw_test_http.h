/*
 * A plain HTTP/1.0 client for unit tests of the daemons' HTTP ports: one request on a fresh
 * loopback connection, read until the server closes (bounded by a 15 s receive timeout), with
 * the status and the body located in the answer.
 */
#ifndef GW_TEST_HTTP_H
#define GW_TEST_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct gw_test_answer {
  int status;
  char text[131072]; /* head and body, NUL-terminated */
  const char *body;  /* into text; "" when there is none */
} gw_test_answer;

/* Sends raw request bytes and reads the answer; false when nothing like an answer came. */
static inline bool gw_test_http_raw(int port, const char *raw, size_t raw_len, gw_test_answer *a) {
  memset(a, 0, sizeof(*a));
  a->body = "";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return false;
  }
  send(fd, raw, raw_len, MSG_NOSIGNAL);
  size_t len = 0;
  ssize_t n;
  while (len < sizeof(a->text) - 1 &&
         (n = recv(fd, a->text + len, sizeof(a->text) - 1 - len, 0)) > 0) {
    len += (size_t)n;
  }
  a->text[len] = '\0';
  close(fd);
  if (len < 12) {
    return false;
  }
  a->status = atoi(a->text + 9);
  const char *sep = strstr(a->text, "\r\n\r\n");
  a->body = sep ? sep + 4 : "";
  return true;
}

/* A GET of path with optional extra header lines ("Name: value\r\n" each, or NULL). */
static inline bool gw_test_http_get(int port, const char *path, const char *headers,
                                    gw_test_answer *a) {
  char req[4096];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n%s\r\n", path, headers ? headers : "");
  if (n < 0 || (size_t)n >= sizeof(req)) {
    fprintf(stderr, "gw_test_http_get: request for %s too long\n", path);
    return false;
  }
  return gw_test_http_raw(port, req, (size_t)n, a);
}

#endif
