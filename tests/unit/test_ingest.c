/*
 * gw_ingest tests, in-process against the embedded Kafka-protocol cluster (gw_devkafka): the
 * ingest runs on a private loop on the main thread, a client thread posts over TCP and checks
 * what a client sees, and /usr/bin/kcat (an independent Kafka client) reads what reached the
 * topic. Failure paths: producer queue full (503 at once, Retry-After: 1) and a broker that is
 * down past the produce timeout (503 with Retry-After once the delivery reports failed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "goodwill/buf.h"
#include "goodwill/ingest.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "gw_test.h"

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);

struct fixture {
  uv_loop_t loop;
  gw_ingest *ing;
  gw_devkafka *dk;
  int port, admin_port;
  uv_async_t done;
  client_fn client;
  int stopped; /* done callbacks of gw_ingest_stop */
};

/* ------------------------------------------------------------------ client helpers */

typedef struct answer {
  int status;
  char text[65536]; /* head and body */
  const char *body;
} answer;

/* One HTTP/1.0 exchange (the server closes after answering). */
static bool http_call(int port, const char *method, const char *path, const char *ctype,
                      const char *body, answer *a) {
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
  gw_buf req = GW_BUF_INIT;
  gw_buf_printf(&req, "%s %s HTTP/1.0\r\n", method, path);
  if (ctype != NULL) {
    gw_buf_printf(&req, "Content-Type: %s\r\n", ctype);
  }
  gw_buf_printf(&req, "Content-Length: %zu\r\n\r\n", body ? strlen(body) : 0);
  if (body != NULL) {
    gw_buf_puts(&req, body);
  }
  send(fd, req.data, req.len, MSG_NOSIGNAL);
  gw_buf_free(&req);
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

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void closed_event(gw_buf *b, const char *id, const char *interaction, const char *channel) {
  gw_buf_printf(&b[0],
                "{\"event_id\":\"%s\",\"tenant_id\":\"t1\",\"team_id\":\"team-a\","
                "\"agent_id\":\"ag-1\",\"interaction_id\":\"%s\",\"channel\":\"%s\","
                "\"occurred_at\":%lld,\"closed\":{\"handle_ms\":1000,\"wait_ms\":10,"
                "\"transfers\":0,\"resolved\":true,\"transcript\":[{\"seq\":1,\"speaker\":"
                "\"customer\",\"text\":\"still not working\",\"offset_ms\":0}]}}\n",
                id, interaction, channel, now_ms() - 60000);
}

static void turn_event(gw_buf *b) {
  gw_buf_printf(b,
                "{\"tenant_id\":\"t1\",\"team_id\":\"team-a\",\"agent_id\":\"ag-1\","
                "\"interaction_id\":\"live-1\",\"channel\":\"chat\",\"occurred_at\":%lld,"
                "\"turn\":{\"seq\":1,\"speaker\":\"customer\",\"text\":\"hi\",\"offset_ms\":0}}\n",
                now_ms() - 1000);
}

/* The keys on the topic, read with kcat; "" when kcat is missing. */
static void kcat_keys(fixture *f, char *out, size_t out_len) {
  out[0] = '\0';
  if (access("/usr/bin/kcat", X_OK) != 0) {
    fprintf(stderr, "note: /usr/bin/kcat is missing; topic contents not checked\n");
    return;
  }
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "timeout 20 /usr/bin/kcat -C -b %s -t " GW_TOPIC_INTERACTIONS
           " -o beginning -e -q -f '%%k\\n' 2>/dev/null",
           gw_devkafka_bootstrap(f->dk));
  FILE *p = popen(cmd, "r");
  if (p == NULL) {
    return;
  }
  size_t n = fread(out, 1, out_len - 1, p);
  out[n] = '\0';
  pclose(p);
}

/* ------------------------------------------------------------------ fixture */

static void on_stopped(void *opaque) {
  fixture *f = opaque;
  f->stopped++;
}

static void on_client_done(uv_async_t *a) {
  fixture *f = a->data;
  uv_close((uv_handle_t *)a, NULL);
  gw_ingest_stop(f->ing, on_stopped, f);
}

static void *client_thread(void *arg) {
  fixture *f = arg;
  f->client(f);
  uv_async_send(&f->done);
  return NULL;
}

static void run_case(gw_ingest_config *cfg, client_fn client, bool broker_down) {
  fixture f;
  memset(&f, 0, sizeof(f));
  f.client = client;
  static const char *const topics[] = {GW_TOPIC_INTERACTIONS};
  char err[256] = "";
  int rc = gw_devkafka_start(&f.dk, 1, 3, topics, 1, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "devkafka: %s\n", err);
    return;
  }
  CHECK_INT_EQ(uv_loop_init(&f.loop), 0);
  gw_log log;
  gw_log_init(&log, "ingest-test", GW_LOG_ERROR);
  cfg->log = &log;
  cfg->producer.bootstrap = gw_devkafka_bootstrap(f.dk);
  rc = gw_ingest_start(&f.loop, cfg, &f.ing);
  CHECK_INT_EQ(rc, 0);
  if (rc == 0) {
    f.port = gw_ingest_port(f.ing);
    f.admin_port = gw_ingest_admin_port(f.ing);
    if (broker_down) {
      CHECK_INT_EQ(gw_devkafka_broker_set_up(f.dk, 1, false), 0);
    }
    uv_async_init(&f.loop, &f.done, on_client_done);
    f.done.data = &f;
    pthread_t t;
    pthread_create(&t, NULL, client_thread, &f);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    CHECK_INT_EQ(f.stopped, 1);
  }
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&f.loop), 0);
  gw_devkafka_stop(f.dk);
}

static gw_ingest_config base_config(void) {
  gw_ingest_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.listen_host = "127.0.0.1";
  cfg.listen_port = 0;
  cfg.admin_host = "127.0.0.1";
  cfg.admin_port = 0;
  cfg.max_body_bytes = 256 * 1024;
  gw_event_limits_default(&cfg.limits);
  cfg.limits.max_events = 5;
  cfg.produce_timeout_ms = 10000;
  cfg.producer.linger_ms = 1;
  return cfg;
}

/* ------------------------------------------------------------------ cases */

static void client_main_paths(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;

  CHECK(http_call(f->port, "GET", "/v1/health", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 200);
  CHECK_STR_EQ(a->body, "{\"status\":\"ok\"}\n");

  /* Two valid events: 202 after Kafka acknowledged both. */
  closed_event(&b, "ev-1", "int-1", "voice");
  closed_event(&b, "ev-2", "int-2", "chat");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 202);
  CHECK_STR_CONTAINS(a->text, "Content-Type: application/json\r\n");
  CHECK_STR_CONTAINS(a->body, "{\"accepted\":2,\"rejected\":0,\"events\":[{\"index\":0,"
                              "\"event_id\":\"ev-1\"},{\"index\":1,\"event_id\":\"ev-2\"}]}");

  /* A live turn, a bad channel and a valid event: 400, the valid one still produced. */
  gw_buf_reset(&b);
  turn_event(&b);
  closed_event(&b, "ev-3", "int-3", "fax");
  closed_event(&b, "ev-4", "int-4", "email");
  CHECK(http_call(f->port, "POST", "/v1/events", NULL, b.data, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":1,\"rejected\":2");
  CHECK_STR_CONTAINS(a->body, "{\"index\":2,\"event_id\":\"ev-4\"}");
  CHECK_STR_CONTAINS(a->body, "{\"index\":0,\"line\":1,\"field\":\"turn\",\"reason\":\"live turns "
                              "are not supported yet; send the whole interaction as "
                              "closed.transcript\"}");
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"line\":2,\"field\":\"channel\"");

  /* Unreadable JSON: 400 naming the line. */
  CHECK(http_call(f->port, "POST", "/v1/events", "application/json",
                  "{\n \"tenant_id\": \"t1\",\n \"team_id\": oops\n}", a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"line\":3");
  CHECK_STR_CONTAINS(a->body, "\"accepted\":0");

  /* More than max_events (5) items: 413. */
  gw_buf_reset(&b);
  for (int i = 0; i < 6; i++) {
    char id[16];
    snprintf(id, sizeof(id), "many-%d", i);
    closed_event(&b, id, id, "chat");
  }
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 413);
  CHECK_STR_CONTAINS(a->body, "too many events");

  /* A body over max_body_bytes: 413 from the HTTP layer. */
  gw_buf_reset(&b);
  for (int i = 0; i < 300 * 1024 / 64; i++) {
    gw_buf_puts(&b, "                                                               \n");
  }
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 413);

  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-www-form-urlencoded", "a=b", a));
  CHECK_INT_EQ(a->status, 415);
  CHECK_STR_CONTAINS(a->body, "application/x-www-form-urlencoded is not supported");
  CHECK(http_call(f->port, "GET", "/v1/events", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 405);
  CHECK_STR_CONTAINS(a->text, "Allow: POST\r\n");
  CHECK(http_call(f->port, "GET", "/elsewhere", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 404);
  CHECK_STR_CONTAINS(a->body, "/elsewhere");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/json", "", a));
  CHECK_INT_EQ(a->status, 400);

  /* Admin: ready (the producer reached the broker), and the counters moved. */
  CHECK(http_call(f->admin_port, "GET", "/readyz", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 200);
  CHECK(http_call(f->admin_port, "GET", "/metrics", NULL, NULL, a));
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_accepted_total 3\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"202\"} 1\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"415\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_rejected_total{reason=\"turn\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_rejected_total{reason=\"channel\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_delivery_duration_seconds_count 3\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_producer_queue_records 0\n");

  /* What reached Kafka: exactly the three accepted events, keyed tenant/interaction. */
  static char keys[4096];
  kcat_keys(f, keys, sizeof(keys));
  if (keys[0] != '\0') {
    CHECK_STR_CONTAINS(keys, "t1/int-1\n");
    CHECK_STR_CONTAINS(keys, "t1/int-2\n");
    CHECK_STR_CONTAINS(keys, "t1/int-4\n");
    CHECK(strstr(keys, "int-3") == NULL && strstr(keys, "live-1") == NULL);
  }
  gw_buf_free(&b);
  free(a);
}

static void test_main_paths(void) {
  gw_ingest_config cfg = base_config();
  run_case(&cfg, client_main_paths, false);
}

static void client_queue_full(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof(id), "q-%d", i);
    closed_event(&b, id, id, "chat");
  }
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->text, "Retry-After: 1\r\n");
  CHECK_STR_CONTAINS(a->body, "queue is full");
  gw_buf_free(&b);
  free(a);
}

static void test_queue_full(void) {
  gw_ingest_config cfg = base_config();
  cfg.producer.queue_max_messages = 1;
  cfg.producer.linger_ms = 500;
  run_case(&cfg, client_queue_full, false);
}

static void client_broker_down(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  closed_event(&b, "down-1", "down-1", "chat");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->text, "Retry-After: 5\r\n");
  CHECK_STR_CONTAINS(a->body, "not acknowledged by Kafka");
  gw_buf_free(&b);
  free(a);
}

static void test_delivery_timeout(void) {
  gw_ingest_config cfg = base_config();
  cfg.produce_timeout_ms = 1500;
  run_case(&cfg, client_broker_down, true);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  GW_RUN(test_main_paths);
  GW_RUN(test_queue_full);
  GW_RUN(test_delivery_timeout);
  return gw_test_finish();
}
