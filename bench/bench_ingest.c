/*
 * bench_ingest: an HTTP/1.1 load generator for POST /v1/events, closed-loop (as fast as the
 * server answers) or open-loop at a fixed rate, printing one JSON line of figures.
 *
 *   bench_ingest --port N --events FILE [--host 127.0.0.1] [--path /v1/events]
 *                [--events-per-request 1] [--content-type T] [--connections 16]
 *                [--duration 5] [--warmup 1] [--rate 0] [--cpu-pid PID] [--label NAME]
 *                [--protobuf] [--header 'Name: value' ...]
 *
 * FILE holds NDJSON events (one per line, e.g. from goodwill-gen). Each request carries
 * --events-per-request consecutive lines, cycling through the file: one line alone is sent as
 * a JSON object (Content-Type application/json), several as NDJSON (application/x-ndjson),
 * unless --content-type says otherwise. With --protobuf the lines of each request are parsed
 * and validated by the library (gw_event_parse_json) and sent as one packed
 * goodwill.v1.InteractionEventBatch (application/x-protobuf). --header adds a request header
 * (e.g. Authorization: Bearer ...), up to BENCH_MAX_HEADERS of them. Every connection is
 * keep-alive with one request in flight.
 *
 * --rate 0 is closed-loop: every connection sends its next request as soon as the answer
 * arrived. --rate R is open-loop: request i is due at start + i/R seconds whatever the server
 * does; a due request waits for a free connection, and its latency counts from when it was
 * due, not from when it was sent, so a slow server cannot hide its queueing (the
 * "coordinated omission" that wrk's closed loop suffers from; wrk2 corrects it the same way).
 *
 * The first --warmup seconds are not counted. With --cpu-pid, the CPU time (user + system, all
 * threads) that process spent during the counted part is read from /proc/PID/stat and divided
 * by the events sent in 2xx-answered requests.
 *
 * Runs on one libuv loop, one thread. Exit status 0 when the run completed (whatever the
 * server answered: the figures say it), 1 when the server could not be reached at all, 2 on
 * bad flags or input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "goodwill/event.h"

/* Due requests beyond this many waiting for a connection are dropped and counted: the
 * server is then so far behind that the latency figures are meaningless anyway. */
#define BENCH_BACKLOG_MAX       (1u << 20)
#define BENCH_DISTINCT_REQUESTS 512
#define BENCH_READ_MAX_BYTES    (1u << 20)
#define BENCH_MAX_HEADERS       8

typedef struct bench_opts {
  const char *host;
  int port;
  const char *path;
  const char *events_file;
  const char *content_type;
  const char *label;
  int events_per_request;
  int connections;
  double duration_s;
  double warmup_s;
  double rate_per_s;
  long cpu_pid;
  int protobuf;
  const char *headers[BENCH_MAX_HEADERS];
  int nheaders;
} bench_opts;

typedef struct bench_request {
  char *data;
  size_t len;
} bench_request;

struct bench;

typedef struct bench_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  struct bench *b;
  int connected;
  int busy;
  int closing;
  uint64_t due_ns; /* when the request in flight was due (open loop) or sent (closed loop) */
  char *rbuf;
  size_t rlen;
  size_t rcap;
} bench_conn;

typedef struct bench {
  bench_opts opts;
  uv_loop_t *loop;
  uv_timer_t tick;
  bench_request *requests;
  size_t nrequests;
  size_t next_request;
  bench_conn *conns;
  uint64_t start_ns; /* the run (warmup included) started */
  uint64_t count_ns; /* counting started (end of warmup) */
  uint64_t end_ns;   /* the run ends */
  uint64_t issued;   /* open loop: requests made due so far */
  uint64_t *backlog; /* open loop: due times waiting for a free connection (ring) */
  uint64_t backlog_head, backlog_len;
  int stopping;
  /* Figures of the counted part. */
  uint64_t answers, ok, events_ok, errors, dropped, connect_failures;
  int connects_done; /* connection attempts finished, failed or not */
  uint64_t status_counts[600];
  uint64_t *lat_ns;
  size_t nlat, lat_cap;
  double cpu_start_s, cpu_end_s;
  double self_cpu_start_s;
} bench;

static double now_cpu_self_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system, all threads) of process pid from /proc/pid/stat; -1 when it
 * cannot be read. Fields 14 and 15 count clock ticks; the command name (field 2) may hold
 * spaces, so parsing starts after its closing parenthesis. */
static double proc_cpu_s(long pid) {
  char path[64], line[2048];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return -1;
  }
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  char *p = strrchr(line, ')');
  if (p == NULL) {
    return -1;
  }
  unsigned long long utime = 0, stime = 0;
  /* After ")": state (field 3), then fields 4..13, then utime (14) and stime (15). */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2) {
    return -1;
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void record_latency(bench *b, uint64_t ns) {
  if (b->nlat == b->lat_cap) {
    size_t cap = b->lat_cap ? b->lat_cap * 2 : 65536;
    uint64_t *p = realloc(b->lat_ns, cap * sizeof *p);
    if (p == NULL) {
      return; /* The figures then cover fewer samples; not worth failing the run. */
    }
    b->lat_ns = p;
    b->lat_cap = cap;
  }
  b->lat_ns[b->nlat++] = ns;
}

static void conn_send(bench_conn *c, uint64_t due_ns);
static void dispatch(bench *b);

static void on_close(uv_handle_t *h) {
  bench_conn *c = h->data;
  free(c->rbuf);
  c->rbuf = NULL;
}

static void conn_close(bench_conn *c) {
  if (!c->closing) {
    c->closing = 1;
    c->connected = 0;
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

static void on_write(uv_write_t *w, int status) {
  bench_conn *c = w->data;
  free(w);
  if (status < 0 && !c->closing) {
    c->b->errors++;
    conn_close(c);
  }
}

/* One answer is complete: count it and send the next request. */
static void answered(bench_conn *c, int status) {
  bench *b = c->b;
  uint64_t now = uv_hrtime();
  c->busy = 0;
  if (c->due_ns >= b->count_ns && now <= b->end_ns) {
    b->answers++;
    if (status >= 100 && status < 600) {
      b->status_counts[status]++;
    }
    if (status >= 200 && status < 300) {
      b->ok++;
      b->events_ok += (uint64_t)b->opts.events_per_request;
    }
    record_latency(b, now - c->due_ns);
  }
  if (b->stopping) {
    return;
  }
  if (b->opts.rate_per_s > 0) {
    dispatch(b);
  } else {
    conn_send(c, uv_hrtime());
  }
}

/* Parses complete answers out of the read buffer. Both goodwill-ingest and nginx send
 * Content-Length; an answer without it (or chunked) is counted as an error. */
static int parse_answers(bench_conn *c) {
  for (;;) {
    if (c->rlen == 0) {
      return 0;
    }
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
      return c->rlen > 65536 ? -1 : 0;
    }
    size_t head = (size_t)(end - c->rbuf) + 4;
    int status = 0;
    if (c->rlen < 12 || sscanf(c->rbuf, "HTTP/1.%*d %d", &status) != 1) {
      return -1;
    }
    long long clen = -1;
    int closes = 0;
    for (char *l = memchr(c->rbuf, '\n', head); l != NULL && l < end;
         l = memchr(l + 1, '\n', (size_t)(end - l))) {
      const char *h = l + 1;
      if (strncasecmp(h, "Content-Length:", 15) == 0) {
        clen = strtoll(h + 15, NULL, 10);
      } else if (strncasecmp(h, "Connection:", 11) == 0) {
        const char *v = h + 11;
        while (*v == ' ') {
          v++;
        }
        closes = strncasecmp(v, "close", 5) == 0;
      }
    }
    if (clen < 0 || clen > BENCH_READ_MAX_BYTES) {
      return -1;
    }
    if (c->rlen < head + (size_t)clen) {
      return 0;
    }
    size_t used = head + (size_t)clen;
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    answered(c, status);
    if (closes) {
      return -1;
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  bench_conn *c = h->data;
  (void)suggested;
  if (c->rcap - c->rlen < 16384) {
    size_t cap = c->rcap ? c->rcap * 2 : 32768;
    char *p = realloc(c->rbuf, cap);
    if (p == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->rbuf = p;
    c->rcap = cap;
  }
  *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  bench_conn *c = s->data;
  (void)buf;
  if (n < 0) {
    /* The server closed or reset: a failure unless the run is over. */
    if (!c->b->stopping) {
      c->b->errors++;
    }
    conn_close(c);
    return;
  }
  c->rlen += (size_t)n;
  if (parse_answers(c) != 0) {
    if (!c->b->stopping) {
      c->b->errors++;
    }
    conn_close(c);
  }
}

static void conn_send(bench_conn *c, uint64_t due_ns) {
  bench *b = c->b;
  bench_request *r = &b->requests[b->next_request];
  b->next_request = (b->next_request + 1) % b->nrequests;
  uv_buf_t buf = uv_buf_init(r->data, (unsigned)r->len);
  c->busy = 1;
  c->due_ns = due_ns;
  /* A write request per request: the answer can be read before libuv reported the write of
   * its request done (the report waits for the next loop turn), so the next request of the
   * connection may start while the previous write request is still libuv's. */
  uv_write_t *w = malloc(sizeof *w);
  if (w == NULL) {
    abort();
  }
  w->data = c;
  int rc = uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (rc != 0) {
    free(w);
    b->errors++;
    c->busy = 0;
    conn_close(c);
  }
}

/* Open loop: hands due requests to idle connections, oldest first. */
static void dispatch(bench *b) {
  for (int i = 0; i < b->opts.connections && b->backlog_len > 0; i++) {
    bench_conn *c = &b->conns[i];
    if (c->connected && !c->busy && !c->closing) {
      uint64_t due = b->backlog[b->backlog_head];
      b->backlog_head = (b->backlog_head + 1) % BENCH_BACKLOG_MAX;
      b->backlog_len--;
      conn_send(c, due);
    }
  }
}

static void stop_run(bench *b) {
  b->stopping = 1;
  if (b->opts.cpu_pid > 0) {
    b->cpu_end_s = proc_cpu_s(b->opts.cpu_pid);
  }
  uv_timer_stop(&b->tick);
  uv_close((uv_handle_t *)&b->tick, NULL);
  for (int i = 0; i < b->opts.connections; i++) {
    conn_close(&b->conns[i]);
  }
}

static void on_tick(uv_timer_t *t) {
  bench *b = t->data;
  uint64_t now = uv_hrtime();
  if (b->count_ns != 0 && b->cpu_start_s < 0 && now >= b->count_ns && b->opts.cpu_pid > 0) {
    b->cpu_start_s = proc_cpu_s(b->opts.cpu_pid);
  }
  if (now >= b->end_ns) {
    stop_run(b);
    return;
  }
  if (b->opts.rate_per_s <= 0) {
    return;
  }
  double elapsed_s = (double)(now - b->start_ns) / 1e9;
  uint64_t due = (uint64_t)(elapsed_s * b->opts.rate_per_s);
  while (b->issued < due) {
    uint64_t due_ns = b->start_ns + (uint64_t)((double)b->issued * 1e9 / b->opts.rate_per_s);
    b->issued++;
    if (b->backlog_len == BENCH_BACKLOG_MAX) {
      if (due_ns >= b->count_ns) {
        b->dropped++;
      }
      continue;
    }
    b->backlog[(b->backlog_head + b->backlog_len) % BENCH_BACKLOG_MAX] = due_ns;
    b->backlog_len++;
  }
  dispatch(b);
}

static void start_clock(bench *b) {
  b->start_ns = uv_hrtime();
  b->count_ns = b->start_ns + (uint64_t)(b->opts.warmup_s * 1e9);
  b->end_ns = b->count_ns + (uint64_t)(b->opts.duration_s * 1e9);
  b->self_cpu_start_s = now_cpu_self_s();
  if (b->opts.warmup_s <= 0 && b->opts.cpu_pid > 0) {
    b->cpu_start_s = proc_cpu_s(b->opts.cpu_pid);
  }
  /* A 1 ms tick: the open loop makes requests due in bursts of rate/1000 at most. */
  uv_timer_start(&b->tick, on_tick, 1, 1);
  for (int i = 0; i < b->opts.connections && b->opts.rate_per_s <= 0; i++) {
    if (b->conns[i].connected) {
      conn_send(&b->conns[i], uv_hrtime());
    }
  }
}

static int connected_count(const bench *b) {
  int n = 0;
  for (int i = 0; i < b->opts.connections; i++) {
    n += b->conns[i].connected;
  }
  return n;
}

static void on_connect(uv_connect_t *req, int status) {
  bench_conn *c = req->data;
  bench *b = c->b;
  if (status < 0) {
    fprintf(stderr, "bench_ingest: connect to %s:%d: %s\n", b->opts.host, b->opts.port,
            uv_strerror(status));
    b->connect_failures++;
    conn_close(c);
  } else {
    c->connected = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  /* The clock starts once every connection attempt has finished. */
  if (++b->connects_done == b->opts.connections) {
    if (connected_count(b) == 0) {
      b->stopping = 1;
      uv_close((uv_handle_t *)&b->tick, NULL);
      return;
    }
    start_clock(b);
  }
}

/* Replaces an NDJSON body by the packed InteractionEventBatch of its events. */
static int ndjson_to_protobuf(char **body, size_t *len, size_t first_line) {
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  gw_event_batch batch;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  int rc = gw_event_parse_json(*body, *len, GW_EVENT_FORMAT_NDJSON, &lim, now_ms, &batch);
  if (rc != 0 || batch.nerrors != 0) {
    const gw_event_error *e = batch.nerrors ? &batch.errors[0] : NULL;
    fprintf(stderr, "bench_ingest: --protobuf: event %zu of the request from line %zu: %s: %s\n",
            e ? e->index : 0, first_line + 1, e ? e->field : "", e ? e->reason : "unreadable");
    gw_event_batch_free(&batch);
    return -1;
  }
  Goodwill__V1__InteractionEventBatch msg = GOODWILL__V1__INTERACTION_EVENT_BATCH__INIT;
  msg.n_events = batch.nevents;
  msg.events = batch.events;
  size_t n = goodwill__v1__interaction_event_batch__get_packed_size(&msg);
  char *out = malloc(n ? n : 1);
  if (out == NULL) {
    abort();
  }
  goodwill__v1__interaction_event_batch__pack(&msg, (uint8_t *)out);
  gw_event_batch_free(&batch);
  free(*body);
  *body = out;
  *len = n;
  return 0;
}

/* Builds the distinct requests from the events file (consecutive lines per request). */
static int load_requests(bench *b) {
  FILE *f = fopen(b->opts.events_file, "r");
  if (f == NULL) {
    fprintf(stderr, "bench_ingest: --events %s: %s\n", b->opts.events_file, strerror(errno));
    return -1;
  }
  char **lines = NULL;
  size_t nlines = 0, cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
      line[--len] = '\0';
    }
    if (len == 0) {
      continue;
    }
    if (nlines == cap) {
      cap = cap ? cap * 2 : 1024;
      char **p = realloc(lines, cap * sizeof *p);
      if (p == NULL) {
        abort();
      }
      lines = p;
    }
    lines[nlines++] = strdup(line);
  }
  free(line);
  fclose(f);
  if (nlines == 0) {
    fprintf(stderr, "bench_ingest: --events %s holds no events\n", b->opts.events_file);
    free(lines);
    return -1;
  }
  const char *ctype = b->opts.content_type != NULL      ? b->opts.content_type
                      : b->opts.protobuf                ? "application/x-protobuf"
                      : b->opts.events_per_request == 1 ? "application/json"
                                                        : "application/x-ndjson";
  size_t per = (size_t)b->opts.events_per_request;
  b->nrequests =
      nlines / per < BENCH_DISTINCT_REQUESTS ? (nlines + per - 1) / per : BENCH_DISTINCT_REQUESTS;
  b->requests = calloc(b->nrequests, sizeof *b->requests);
  if (b->requests == NULL) {
    abort();
  }
  size_t li = 0;
  int rc = 0;
  for (size_t r = 0; r < b->nrequests; r++) {
    size_t body_len = 0;
    for (size_t k = 0; k < per; k++) {
      body_len += strlen(lines[(li + k) % nlines]) + (per > 1 || b->opts.protobuf ? 1 : 0);
    }
    char *body = malloc(body_len + 1);
    if (body == NULL) {
      abort();
    }
    size_t off = 0;
    for (size_t k = 0; k < per; k++) {
      const char *l = lines[(li + k) % nlines];
      size_t n = strlen(l);
      memcpy(body + off, l, n);
      off += n;
      if (per > 1 || b->opts.protobuf) {
        body[off++] = '\n';
      }
    }
    if (b->opts.protobuf && ndjson_to_protobuf(&body, &body_len, li) != 0) {
      free(body);
      rc = -1;
      break;
    }
    char head[8192];
    int hl = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n",
                      b->opts.path, b->opts.host, b->opts.port, ctype);
    for (int h = 0; h < b->opts.nheaders && hl > 0 && (size_t)hl < sizeof head; h++) {
      hl += snprintf(head + hl, sizeof head - (size_t)hl, "%s\r\n", b->opts.headers[h]);
    }
    if (hl > 0 && (size_t)hl < sizeof head) {
      hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Length: %zu\r\n\r\n", body_len);
    }
    if (hl < 0 || (size_t)hl >= sizeof head) {
      fprintf(stderr, "bench_ingest: the request head is longer than %zu bytes\n", sizeof head);
      free(body);
      rc = -1;
      break;
    }
    char *d = malloc((size_t)hl + body_len);
    if (d == NULL) {
      abort();
    }
    memcpy(d, head, (size_t)hl);
    memcpy(d + hl, body, body_len);
    free(body);
    b->requests[r].data = d;
    b->requests[r].len = (size_t)hl + body_len;
    li = (li + per) % nlines;
  }
  for (size_t i = 0; i < nlines; i++) {
    free(lines[i]);
  }
  free(lines);
  return rc;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_ms(const bench *b, double q) {
  if (b->nlat == 0) {
    return 0;
  }
  size_t i = (size_t)(q * (double)(b->nlat - 1) + 0.5);
  return (double)b->lat_ns[i] / 1e6;
}

static void print_figures(bench *b) {
  qsort(b->lat_ns, b->nlat, sizeof *b->lat_ns, cmp_u64);
  double secs = b->opts.duration_s;
  double cpu_s = b->opts.cpu_pid > 0 && b->cpu_start_s >= 0 && b->cpu_end_s >= 0
                     ? b->cpu_end_s - b->cpu_start_s
                     : -1;
  printf("{\"label\":\"%s\",\"connections\":%d,\"events_per_request\":%d,\"rate_per_s\":%.0f,"
         "\"seconds\":%.2f,\"answers\":%llu,\"ok\":%llu,\"errors\":%llu,\"dropped\":%llu,"
         "\"connect_failures\":%llu,"
         "\"requests_per_s\":%.1f,\"events_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
         "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"server_cpu_s\":%.2f,\"server_cpu_us_per_event\":%.2f,"
         "\"generator_cpu_s\":%.2f,\"status\":{",
         b->opts.label, b->opts.connections, b->opts.events_per_request, b->opts.rate_per_s, secs,
         (unsigned long long)b->answers, (unsigned long long)b->ok, (unsigned long long)b->errors,
         (unsigned long long)b->dropped, (unsigned long long)b->connect_failures,
         (double)b->answers / secs, (double)b->events_ok / secs, percentile_ms(b, 0.50),
         percentile_ms(b, 0.90), percentile_ms(b, 0.99), percentile_ms(b, 1.0), cpu_s,
         cpu_s >= 0 && b->events_ok > 0 ? cpu_s * 1e6 / (double)b->events_ok : -1,
         now_cpu_self_s() - b->self_cpu_start_s);
  const char *sep = "";
  for (int s = 100; s < 600; s++) {
    if (b->status_counts[s] != 0) {
      printf("%s\"%d\":%llu", sep, s, (unsigned long long)b->status_counts[s]);
      sep = ",";
    }
  }
  printf("}}\n");
}

static int usage(void) {
  fprintf(stderr, "usage: bench_ingest --port N --events FILE [--host H] [--path P]\n"
                  "         [--events-per-request N] [--content-type T] [--connections N]\n"
                  "         [--duration S] [--warmup S] [--rate R] [--cpu-pid PID] [--label L]\n"
                  "         [--protobuf] [--header 'Name: value' ...]\n");
  return 2;
}

static int parse_args(bench_opts *o, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (strcmp(k, "--protobuf") == 0) {
      o->protobuf = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "bench_ingest: %s needs a value\n", k);
      return -1;
    }
    const char *v = argv[++i];
    char *end = NULL;
    if (strcmp(k, "--host") == 0) {
      o->host = v;
    } else if (strcmp(k, "--port") == 0) {
      o->port = (int)strtol(v, &end, 10);
    } else if (strcmp(k, "--path") == 0) {
      o->path = v;
    } else if (strcmp(k, "--events") == 0) {
      o->events_file = v;
    } else if (strcmp(k, "--content-type") == 0) {
      o->content_type = v;
    } else if (strcmp(k, "--header") == 0) {
      if (o->nheaders == BENCH_MAX_HEADERS || strchr(v, ':') == NULL || strpbrk(v, "\r\n")) {
        fprintf(stderr, "bench_ingest: --header \"Name: value\", at most %d\n", BENCH_MAX_HEADERS);
        return -1;
      }
      o->headers[o->nheaders++] = v;
    } else if (strcmp(k, "--label") == 0) {
      o->label = v;
    } else if (strcmp(k, "--events-per-request") == 0) {
      o->events_per_request = (int)strtol(v, &end, 10);
    } else if (strcmp(k, "--connections") == 0) {
      o->connections = (int)strtol(v, &end, 10);
    } else if (strcmp(k, "--duration") == 0) {
      o->duration_s = strtod(v, &end);
    } else if (strcmp(k, "--warmup") == 0) {
      o->warmup_s = strtod(v, &end);
    } else if (strcmp(k, "--rate") == 0) {
      o->rate_per_s = strtod(v, &end);
    } else if (strcmp(k, "--cpu-pid") == 0) {
      o->cpu_pid = strtol(v, &end, 10);
    } else {
      fprintf(stderr, "bench_ingest: unknown flag %s\n", k);
      return -1;
    }
    if (end != NULL && (*end != '\0' || end == v)) {
      fprintf(stderr, "bench_ingest: %s: \"%s\" is not a number\n", k, v);
      return -1;
    }
  }
  if (o->port <= 0 || o->port > 65535 || o->events_file == NULL) {
    fprintf(stderr, "bench_ingest: --port and --events are required\n");
    return -1;
  }
  if (o->events_per_request < 1 || o->events_per_request > 100000 || o->connections < 1 ||
      o->connections > 10000 || o->duration_s <= 0 || o->warmup_s < 0 || o->rate_per_s < 0) {
    fprintf(stderr, "bench_ingest: --events-per-request 1..100000, --connections 1..10000, "
                    "--duration > 0, --warmup >= 0, --rate >= 0\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static bench b; /* Large (status counts), so not on the stack; main's only instance. */
  b.opts = (bench_opts){.host = "127.0.0.1",
                        .path = "/v1/events",
                        .label = "run",
                        .events_per_request = 1,
                        .connections = 16,
                        .duration_s = 5,
                        .warmup_s = 1};
  if (parse_args(&b.opts, argc, argv) != 0) {
    return usage();
  }
  if (load_requests(&b) != 0) {
    return 2;
  }
  b.cpu_start_s = -1;
  b.cpu_end_s = -1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  b.loop = &loop;
  uv_timer_init(&loop, &b.tick);
  b.tick.data = &b;
  if (b.opts.rate_per_s > 0) {
    b.backlog = malloc(BENCH_BACKLOG_MAX * sizeof *b.backlog);
    if (b.backlog == NULL) {
      abort();
    }
  }
  struct sockaddr_in addr;
  if (uv_ip4_addr(b.opts.host, b.opts.port, &addr) != 0) {
    fprintf(stderr, "bench_ingest: --host %s is not an IPv4 address\n", b.opts.host);
    return 2;
  }
  b.conns = calloc((size_t)b.opts.connections, sizeof *b.conns);
  if (b.conns == NULL) {
    abort();
  }
  for (int i = 0; i < b.opts.connections; i++) {
    bench_conn *c = &b.conns[i];
    c->b = &b;
    uv_tcp_init(&loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->connect.data = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connect);
    if (rc != 0) {
      fprintf(stderr, "bench_ingest: connect: %s\n", uv_strerror(rc));
      return 1;
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = 0;
  if (connected_count(&b) == 0 && b.start_ns == 0) {
    fprintf(stderr, "bench_ingest: no connection to %s:%d succeeded\n", b.opts.host, b.opts.port);
    rc = 1;
  } else {
    print_figures(&b);
  }
  uv_loop_close(&loop);
  for (size_t i = 0; i < b.nrequests; i++) {
    free(b.requests[i].data);
  }
  free(b.requests);
  free(b.conns);
  free(b.backlog);
  free(b.lat_ns);
  return rc;
}
