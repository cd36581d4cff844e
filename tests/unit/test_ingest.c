/*
 * gw_ingest tests, in-process against the embedded Kafka-protocol cluster (gw_devkafka): the
 * ingest runs on a private loop on the main thread, a client thread posts over TCP and checks
 * what a client sees, and /usr/bin/kcat (an independent Kafka client) reads what reached the
 * topic. Failure paths: producer queue full (503 at once, Retry-After: 1), a broker that is
 * down past the produce timeout (503 with Retry-After once the delivery reports failed), and a
 * fatal producer error (503, /readyz 503 with the reason, the owner told once).
 * Also: protobuf and gzip bodies (built here with protobuf-c and zlib), bearer tokens (401,
 * 403 per item, reload keeping the old set on a bad file), and each limit with its status
 * (413 body / events / inflated size, 400 per item for transcripts and text, 431, 408, 503).
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <zlib.h>

#include "goodwill/buf.h"
#include "goodwill/ingest.h"
#include "devkafka.h"
#include "goodwill/kafka.h"
#include "goodwill/log.h"
#include "gw_test.h"
#include "gw_test_http.h"

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
  /* gw_ingest_reload_tokens runs on the loop: the client thread asks through an async and
   * waits for the result. */
  uv_async_t reload;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool reload_done;
  int reload_rc;
};

/* ------------------------------------------------------------------ client helpers */

typedef gw_test_answer answer;

/* One HTTP/1.0 request with optional extra header lines ("Name: value\r\n" each) and a body
 * of body_len bytes (binary allowed). */
static bool http_post(int port, const char *method, const char *path, const char *ctype,
                      const char *headers, const void *body, size_t body_len, answer *a) {
  gw_buf req = GW_BUF_INIT;
  gw_buf_printf(&req, "%s %s HTTP/1.0\r\n", method, path);
  if (ctype != NULL) {
    gw_buf_printf(&req, "Content-Type: %s\r\n", ctype);
  }
  if (headers != NULL) {
    gw_buf_puts(&req, headers);
  }
  gw_buf_printf(&req, "Content-Length: %zu\r\n\r\n", body_len);
  if (body_len > 0) {
    gw_buf_append(&req, body, body_len);
  }
  bool ok = gw_test_http_raw(port, req.data, req.len, a);
  gw_buf_free(&req);
  return ok;
}

static bool http_call(int port, const char *method, const char *path, const char *ctype,
                      const char *body, answer *a) {
  return http_post(port, method, path, ctype, NULL, body, body ? strlen(body) : 0, a);
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

static void on_reload(uv_async_t *a) {
  fixture *f = a->data;
  int rc = gw_ingest_reload_tokens(f->ing);
  pthread_mutex_lock(&f->mu);
  f->reload_rc = rc;
  f->reload_done = true;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* From the client thread: reloads the tokens file on the loop and returns the result. */
static int reload_tokens(fixture *f) {
  pthread_mutex_lock(&f->mu);
  f->reload_done = false;
  pthread_mutex_unlock(&f->mu);
  uv_async_send(&f->reload);
  pthread_mutex_lock(&f->mu);
  while (!f->reload_done) {
    pthread_cond_wait(&f->cv, &f->mu);
  }
  int rc = f->reload_rc;
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static void on_client_done(uv_async_t *a) {
  fixture *f = a->data;
  uv_close((uv_handle_t *)a, NULL);
  uv_close((uv_handle_t *)&f->reload, NULL);
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
    uv_async_init(&f.loop, &f.reload, on_reload);
    f.reload.data = &f;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
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
  cfg.dev_mode = true;
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

  /* A live turn, a bad channel and a valid event: 400, the turn and the valid close still
   * produced (live turns are accepted like the other bodies). */
  gw_buf_reset(&b);
  turn_event(&b);
  closed_event(&b, "ev-3", "int-3", "fax");
  closed_event(&b, "ev-4", "int-4", "email");
  CHECK(http_call(f->port, "POST", "/v1/events", NULL, b.data, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":2,\"rejected\":1");
  CHECK_STR_CONTAINS(a->body, "{\"index\":0,\"event_id\":\"");
  CHECK_STR_CONTAINS(a->body, "{\"index\":2,\"event_id\":\"ev-4\"}");
  CHECK(strstr(a->body, "\"field\":\"turn\"") == NULL);
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
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_accepted_total 4\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"202\"} 1\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"415\"} 1\n");
  CHECK(strstr(a->body, "goodwill_ingest_events_rejected_total{reason=\"turn\"}") == NULL);
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_rejected_total{reason=\"channel\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_delivery_duration_seconds_count 4\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_producer_queue_records 0\n");

  /* What reached Kafka: exactly the four accepted events, keyed tenant/interaction. */
  static char keys[4096];
  kcat_keys(f, keys, sizeof(keys));
  if (keys[0] != '\0') {
    CHECK_STR_CONTAINS(keys, "t1/int-1\n");
    CHECK_STR_CONTAINS(keys, "t1/int-2\n");
    CHECK_STR_CONTAINS(keys, "t1/int-4\n");
    CHECK_STR_CONTAINS(keys, "t1/live-1\n");
    CHECK(strstr(keys, "int-3") == NULL);
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

/* Told by the ingest on the loop; read by the client thread only after the fact was seen on
 * /readyz, and by the test after the join. */
static int fatal_calls;
static char fatal_reason[512];

static void on_fatal(void *opaque, const char *reason) {
  fatal_calls++;
  snprintf(fatal_reason, sizeof(fatal_reason), "%s", reason);
}

/* The producer fails for good (the broker answers a Produce request OUT_OF_ORDER_SEQUENCE_NUMBER,
 * fatal to the idempotent producer): the request gets 503, /readyz turns 503 naming the error
 * and stays so, later requests get 503 at once. */
static void client_fatal(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  closed_event(&b, "fatal-1", "fatal-1", "chat");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 202);
  CHECK(http_call(f->admin_port, "GET", "/readyz", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 200);

  char err[256] = "";
  CHECK_INT_EQ(gw_devkafka_push_request_errors(f->dk, "Produce", "OUT_OF_ORDER_SEQUENCE_NUMBER", 1,
                                               err, sizeof(err)),
               0);
  gw_buf_reset(&b);
  closed_event(&b, "fatal-2", "fatal-2", "chat");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 503);
  /* The fatal error is told before the failed delivery report, so readiness is gone now. */
  CHECK(http_call(f->admin_port, "GET", "/readyz", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->body, "kafka producer failed for good: OUT_OF_ORDER_SEQUENCE_NUMBER");

  gw_buf_reset(&b);
  closed_event(&b, "fatal-3", "fatal-3", "chat");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK(http_call(f->admin_port, "GET", "/readyz", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 503);
  gw_buf_free(&b);
  free(a);
}

static void test_fatal_producer_error(void) {
  gw_ingest_config cfg = base_config();
  cfg.on_fatal = on_fatal;
  run_case(&cfg, client_fatal, false);
  CHECK_INT_EQ(fatal_calls, 1);
  CHECK_STR_CONTAINS(fatal_reason, "OUT_OF_ORDER_SEQUENCE_NUMBER");
}

/* ------------------------------------------------------------------ protobuf, gzip */

static void closed_event_of(gw_buf *b, const char *tenant, const char *id) {
  gw_buf_printf(b,
                "{\"event_id\":\"%s\",\"tenant_id\":\"%s\",\"team_id\":\"team-a\","
                "\"agent_id\":\"ag-1\",\"interaction_id\":\"%s\",\"channel\":\"chat\","
                "\"occurred_at\":%lld,\"closed\":{\"handle_ms\":1000}}\n",
                id, tenant, id, now_ms() - 60000);
}

/* A packed goodwill.v1.InteractionEventBatch: n events, a closed one with a transcript at
 * even positions and a survey at odd ones; the survey at bad_index (if < n) scores 11. */
static void pb_batch(gw_buf *out, size_t n, size_t bad_index, const char *id_prefix) {
  Goodwill__V1__InteractionEvent *evs = calloc(n, sizeof(*evs));
  Goodwill__V1__InteractionEvent **ptrs = calloc(n, sizeof(*ptrs));
  Goodwill__V1__InteractionClosed closed = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  Goodwill__V1__SurveyResponse good = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  Goodwill__V1__SurveyResponse bad = GOODWILL__V1__SURVEY_RESPONSE__INIT;
  Goodwill__V1__Turn turn = GOODWILL__V1__TURN__INIT;
  turn.seq = 1;
  turn.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  turn.text = "thank you, that fixed it";
  Goodwill__V1__Turn *turns[1] = {&turn};
  closed.handle_ms = 1000;
  closed.n_transcript = 1;
  closed.transcript = turns;
  good.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  good.likelihood_to_recommend = 9;
  bad = good;
  bad.likelihood_to_recommend = 11;
  char(*ids)[32] = calloc(n, 32);
  for (size_t i = 0; i < n; i++) {
    Goodwill__V1__InteractionEvent init = GOODWILL__V1__INTERACTION_EVENT__INIT;
    evs[i] = init;
    snprintf(ids[i], 32, "%s-%zu", id_prefix, i);
    evs[i].event_id = ids[i];
    evs[i].tenant_id = "t1";
    evs[i].team_id = "team-a";
    evs[i].agent_id = "ag-1";
    evs[i].interaction_id = ids[i];
    evs[i].channel = GOODWILL__V1__CHANNEL__CHANNEL_CHAT;
    evs[i].occurred_at_ms = now_ms() - 60000;
    if (i % 2 == 0) {
      evs[i].body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
      evs[i].closed = &closed;
    } else {
      evs[i].body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
      evs[i].survey = i == bad_index ? &bad : &good;
    }
    ptrs[i] = &evs[i];
  }
  Goodwill__V1__InteractionEventBatch batch = GOODWILL__V1__INTERACTION_EVENT_BATCH__INIT;
  batch.n_events = n;
  batch.events = ptrs;
  size_t len = goodwill__v1__interaction_event_batch__get_packed_size(&batch);
  gw_buf_reserve(out, len);
  goodwill__v1__interaction_event_batch__pack(&batch, (uint8_t *)out->data + out->len);
  out->len += len;
  free(ids);
  free(ptrs);
  free(evs);
}

/* gzip (RFC 1952) of in, with zlib as any client would. */
static void gzip_bytes(const void *in, size_t len, gw_buf *out) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  CHECK_INT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&z, (uLong)len) + 64;
  gw_buf_reserve(out, cap);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = (Bytef *)out->data + out->len;
  z.avail_out = (uInt)cap;
  CHECK_INT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out->len += cap - z.avail_out;
  deflateEnd(&z);
}

static const char pb_type[] = "application/x-protobuf";
static const char gzip_header[] = "Content-Encoding: gzip\r\n";

static void client_protobuf_gzip(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT, z = GW_BUF_INIT;

  /* A protobuf batch of three: all accepted after Kafka's acknowledgement. */
  pb_batch(&b, 3, 99, "pb");
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);
  CHECK_STR_CONTAINS(a->body, "{\"accepted\":3,\"rejected\":0,\"events\":[{\"index\":0,"
                              "\"event_id\":\"pb-0\"},{\"index\":1,\"event_id\":\"pb-1\"},"
                              "{\"index\":2,\"event_id\":\"pb-2\"}]}");

  /* One survey scores 11: that item is rejected with index and field, line 0; the rest go. */
  gw_buf_reset(&b);
  pb_batch(&b, 4, 1, "pbbad");
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, b.data, b.len, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":3,\"rejected\":1");
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"line\":0,\"field\":\"survey.likelihood_to_"
                              "recommend\",\"reason\":\"must be an integer 0..10, got 11\"}");

  /* More than max_events (5): 413 before anything is decoded. */
  gw_buf_reset(&b);
  pb_batch(&b, 6, 99, "pbmany");
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, b.data, b.len, a));
  CHECK_INT_EQ(a->status, 413);
  CHECK_STR_CONTAINS(a->body, "\"error\":\"too many events: at most 5 per request\"");

  /* Not protobuf at all: 400 naming the byte. */
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, "\xff\xff\xff", 3, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "not a readable goodwill.v1.InteractionEventBatch");
  CHECK_STR_CONTAINS(a->body, "invalid protobuf at byte 0");
  /* events (field 1) as a varint: refused whole, not skipped. */
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, "\x08\x01", 2, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "field 1 (events) must be length-delimited");
  /* An empty protobuf body. */
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, NULL, "", 0, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "without events");

  /* gzip NDJSON and gzip protobuf. */
  gw_buf_reset(&b);
  closed_event(&b, "gz-1", "gz-1", "voice");
  closed_event(&b, "gz-2", "gz-2", "chat");
  gzip_bytes(b.data, b.len, &z);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, z.data, z.len,
                  a));
  CHECK_INT_EQ(a->status, 202);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":2,\"rejected\":0");
  /* Lines of the inflated NDJSON are the ones reported. */
  gw_buf_reset(&b);
  gw_buf_reset(&z);
  closed_event(&b, "gz-3", "gz-3", "voice");
  gw_buf_puts(&b, "\n");
  closed_event(&b, "gz-4", "gz-4", "pigeon");
  gzip_bytes(b.data, b.len, &z);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, z.data, z.len,
                  a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"line\":3,\"field\":\"channel\"");
  gw_buf_reset(&b);
  gw_buf_reset(&z);
  pb_batch(&b, 2, 99, "pbgz");
  gzip_bytes(b.data, b.len, &z);
  CHECK(http_post(f->port, "POST", "/v1/events", pb_type, gzip_header, z.data, z.len, a));
  CHECK_INT_EQ(a->status, 202);
  CHECK_STR_CONTAINS(a->body, "\"event_id\":\"pbgz-1\"");

  /* A gzip bomb: 1 MiB of blanks in about 1 KiB, past the 256 KiB body limit once inflated. */
  gw_buf_reset(&b);
  gw_buf_reset(&z);
  for (int i = 0; i < 1024 * 1024 / 64; i++) {
    gw_buf_puts(&b, "                                                               \n");
  }
  gzip_bytes(b.data, b.len, &z);
  CHECK(z.len < 16 * 1024);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, z.data, z.len,
                  a));
  CHECK_INT_EQ(a->status, 413);
  CHECK_STR_CONTAINS(a->body, "the gzip body inflates to more than the body size limit (262144 "
                              "bytes)");

  /* Corrupt and truncated streams: 400. */
  gw_buf_reset(&b);
  gw_buf_reset(&z);
  closed_event(&b, "gz-5", "gz-5", "voice");
  gzip_bytes(b.data, b.len, &z);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, z.data,
                  z.len / 2, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "the gzip body is truncated");
  z.data[12] ^= 0x55;
  z.data[13] ^= 0x55;
  z.data[z.len - 5] ^= 0x55; /* the CRC/length trailer, should the data still inflate */
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, z.data, z.len,
                  a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "the gzip body is corrupt at byte");
  CHECK(
      http_post(f->port, "POST", "/v1/events", "application/x-ndjson", gzip_header, "plain", 5, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "the gzip body is corrupt at byte");

  /* Other codings: 415. */
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", "Content-Encoding: br\r\n",
                  "x", 1, a));
  CHECK_INT_EQ(a->status, 415);
  CHECK_STR_CONTAINS(a->body, "Content-Encoding br is not supported; send gzip or identity");

  CHECK(http_call(f->admin_port, "GET", "/metrics", NULL, NULL, a));
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_accepted_total 11\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_rejected_total{reason=\"survey.likelihood_"
                              "to_recommend\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_auth_tokens 0\n");
  gw_buf_free(&b);
  gw_buf_free(&z);
  free(a);
}

static void test_protobuf_gzip(void) {
  gw_ingest_config cfg = base_config();
  run_case(&cfg, client_protobuf_gzip, false);
}

/* ------------------------------------------------------------------ auth */

#define TOKEN_A_HASH "2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33"
#define TOKEN_B_HASH "3bd5ff797de41f255a56adfd843f8c6d8f157413a3f001f336a61fc4d94e096f"
#define TOKEN_C_HASH "c2f2f62e998533e6233b112ee02dc34552983f425058c9e962956f027371c9bb"

static char tokens_path[64];

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  CHECK(fp != NULL);
  if (fp != NULL) {
    fputs(text, fp);
    fclose(fp);
  }
}

static void client_auth(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  closed_event_of(&b, "t1", "auth-1");

  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->text, "WWW-Authenticate: Bearer realm=\"goodwill-ingest\"\r\n");
  CHECK_STR_CONTAINS(a->body, "missing credentials: send the header Authorization: Bearer "
                              "<token>");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-wrong\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->text, "WWW-Authenticate: Bearer realm=\"goodwill-ingest\", "
                              "error=\"invalid_token\"\r\n");
  CHECK_STR_CONTAINS(a->body, "the bearer token is not known");
  CHECK(strstr(a->text, "tok-wrong") == NULL);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Basic dTpw\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 401);
  CHECK_STR_CONTAINS(a->body, "must be \\\"Bearer <token>\\\"");

  /* Decided on the head: a client without a token announcing a huge body with Expect:
   * 100-continue gets its 401 at once, with no 100 Continue before it, and the body (never
   * sent here) is not waited for. */
  const char *head_only = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          "application/x-ndjson\r\nContent-Length: 900000000\r\n"
                          "Expect: 100-continue\r\n\r\n";
  CHECK(gw_test_http_raw(f->port, head_only, strlen(head_only), a));
  CHECK_INT_EQ(a->status, 401);
  CHECK(strstr(a->text, "100 Continue") == NULL);
  CHECK_STR_CONTAINS(a->text, "Connection: close\r\n");

  /* The right token: accepted; the scheme is case-insensitive. */
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);

  /* A batch with an event of another tenant: 403 naming tenant_id, the rest accepted. */
  gw_buf_reset(&b);
  closed_event_of(&b, "t1", "auth-2");
  closed_event_of(&b, "t2", "auth-3");
  closed_event_of(&b, "t1", "auth-4");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 403);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":2,\"rejected\":1");
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"line\":2,\"field\":\"tenant_id\",\"reason\":"
                              "\"forbidden: this token may only send events of tenant t1\"}");
  CHECK_STR_CONTAINS(a->body, "{\"index\":2,\"event_id\":\"auth-4\"}");

  /* Reload with a bad file: refused, the old tokens still work. */
  write_file(tokens_path, TOKEN_C_HASH "\tt2\n" TOKEN_A_HASH "\n");
  CHECK_INT_EQ(reload_tokens(f), -EINVAL);
  gw_buf_reset(&b);
  closed_event_of(&b, "t1", "auth-5");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);

  /* A good file: tok-alpha-1 is revoked, tok-gamma-3 writes for t2. */
  write_file(tokens_path, "# rotated\n" TOKEN_C_HASH "\tt2\tnew key\n");
  CHECK_INT_EQ(reload_tokens(f), 0);
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 401);
  gw_buf_reset(&b);
  closed_event_of(&b, "t2", "auth-6");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-gamma-3\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);

  /* /v1/health needs no token; tokens appear nowhere in the metrics. */
  CHECK(http_call(f->port, "GET", "/v1/health", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 200);
  CHECK(http_call(f->admin_port, "GET", "/metrics", NULL, NULL, a));
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_auth_tokens 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_auth_reloads_total{result=\"failed\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_auth_reloads_total{result=\"ok\"} 1\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"401\"} 5\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"403\"} 1\n");
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_events_rejected_total{reason=\"tenant_id\"} 1\n");
  CHECK(strstr(a->body, "tok-") == NULL);
  gw_buf_free(&b);
  free(a);
}

static void test_auth(void) {
  snprintf(tokens_path, sizeof(tokens_path), "/tmp/gw-test-tokens-%ld", (long)getpid());
  write_file(tokens_path,
             "# tenants of the test\n" TOKEN_A_HASH "\tt1\talpha\n\n" TOKEN_B_HASH "\tt2\r\n");
  gw_ingest_config cfg = base_config();
  cfg.dev_mode = false;
  cfg.tokens_file = tokens_path;
  run_case(&cfg, client_auth, false);
  unlink(tokens_path);
}

static void client_rate_limit(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  /* One event per 20 s (so that the test's own time refills next to nothing), bucket of 3:
   * t1 spends its 3 events in one request... */
  closed_event_of(&b, "t1", "rate-1");
  closed_event_of(&b, "t1", "rate-2");
  closed_event_of(&b, "t1", "rate-3");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);
  /* ...may still start one more (an empty bucket is not a debt), which leaves a debt... */
  gw_buf_reset(&b);
  closed_event_of(&b, "t1", "rate-4");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);
  /* ...so the next request is refused before its body is read, with the time to wait. */
  gw_buf_reset(&b);
  closed_event_of(&b, "t1", "rate-5");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 429);
  /* A debt of almost one event at 0.05/s: 20 s, less what the requests' time refilled. */
  const char *ra = strstr(a->text, "Retry-After: ");
  CHECK(ra != NULL);
  long secs = ra ? strtol(ra + 13, NULL, 10) : 0;
  CHECK(secs >= 10 && secs <= 20);
  char want[160];
  snprintf(want, sizeof(want),
           "rate limit: this tenant may send 0.05 events per second (burst 3); retry after %ld s",
           secs);
  CHECK_STR_CONTAINS(a->body, want);
  /* The refusal comes on the head: a huge announced body with Expect: 100-continue gets the
   * 429 without a 100 Continue, and none of its bytes are read. */
  const char *head_only = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          "application/x-ndjson\r\nAuthorization: Bearer tok-alpha-1\r\n"
                          "Content-Length: 900000000\r\nExpect: 100-continue\r\n\r\n";
  CHECK(gw_test_http_raw(f->port, head_only, strlen(head_only), a));
  CHECK_INT_EQ(a->status, 429);
  CHECK(strstr(a->text, "100 Continue") == NULL);
  /* Another tenant has its own budget. */
  gw_buf_reset(&b);
  closed_event_of(&b, "t2", "rate-6");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-beta-2\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 202);
  CHECK(http_call(f->admin_port, "GET", "/metrics", NULL, NULL, a));
  CHECK_STR_CONTAINS(a->body, "goodwill_ingest_rate_limited_total 2\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"429\"} 2\n");
  CHECK_STR_CONTAINS(a->body,
                     "goodwill_ingest_requests_total{route=\"/v1/events\",status=\"202\"} 3\n");
  gw_buf_free(&b);
  free(a);
}

static void test_rate_limit(void) {
  snprintf(tokens_path, sizeof(tokens_path), "/tmp/gw-test-tokens-%ld", (long)getpid());
  write_file(tokens_path, TOKEN_A_HASH "\tt1\n" TOKEN_B_HASH "\tt2\n");
  gw_ingest_config cfg = base_config();
  cfg.dev_mode = false;
  cfg.tokens_file = tokens_path;
  cfg.rate_limit_per_s = 0.05;
  cfg.rate_burst = 3;
  run_case(&cfg, client_rate_limit, false);
  unlink(tokens_path);
}

/* Thousands of items of another tenant in one NDJSON body (with blank lines between them):
 * each rejection names its own line, found by one scan of the body for the whole request. */
static void client_many_rejections(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  size_t line = 0, last_forbidden_line = 0, last_forbidden_index = 0;
  for (int i = 0; i < 4000; i++) {
    if (i % 10 == 9) {
      gw_buf_puts(&b, "\n");
      line++;
    }
    char id[32];
    snprintf(id, sizeof id, "many-%d", i);
    closed_event_of(&b, i % 2 == 0 ? "t1" : "t2", id);
    line++;
    if (i == 999) { /* far enough in to be in the part of the answer the client reads */
      last_forbidden_line = line;
      last_forbidden_index = (size_t)i;
    }
  }
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson",
                  "Authorization: Bearer tok-alpha-1\r\n", b.data, b.len, a));
  CHECK_INT_EQ(a->status, 403);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":2000,\"rejected\":2000");
  char want[128];
  snprintf(want, sizeof want, "{\"index\":%zu,\"line\":%zu,\"field\":\"tenant_id\"",
           last_forbidden_index, last_forbidden_line);
  CHECK_STR_CONTAINS(a->body, want);
  gw_buf_free(&b);
  free(a);
}

static void test_many_rejections(void) {
  snprintf(tokens_path, sizeof(tokens_path), "/tmp/gw-test-tokens-%ld", (long)getpid());
  write_file(tokens_path, TOKEN_A_HASH "\tt1\n");
  gw_ingest_config cfg = base_config();
  cfg.dev_mode = false;
  cfg.tokens_file = tokens_path;
  cfg.limits.max_events = 5000;
  cfg.max_body_bytes = 8 * 1024 * 1024;
  run_case(&cfg, client_many_rejections, false);
  unlink(tokens_path);
}

/* Neither tokens nor dev mode, both, or a bad tokens file: the ingest refuses to start. */
static void test_auth_config(void) {
  uv_loop_t loop;
  CHECK_INT_EQ(uv_loop_init(&loop), 0);
  gw_log log;
  gw_log_init(&log, "ingest-test", GW_LOG_ERROR + 1);
  gw_ingest_config cfg = base_config();
  cfg.log = &log;
  cfg.producer.bootstrap = "127.0.0.1:1";
  gw_ingest *ing = NULL;
  cfg.dev_mode = false;
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  cfg.dev_mode = true;
  cfg.tokens_file = "/nonexistent/tokens";
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  cfg.dev_mode = false;
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  CHECK(ing == NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------ limits */

static void client_limits(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;

  /* A transcript of more turns than max_turns (3), and a text longer than max_text (64). */
  gw_buf_printf(&b,
                "{\"tenant_id\":\"t1\",\"team_id\":\"team-a\",\"agent_id\":\"ag-1\","
                "\"interaction_id\":\"lim-1\",\"channel\":\"chat\",\"occurred_at\":%lld,"
                "\"closed\":{\"handle_ms\":5,\"transcript\":[",
                now_ms() - 1000);
  for (int i = 0; i < 4; i++) {
    gw_buf_printf(&b, "%s{\"seq\":%d,\"speaker\":\"customer\",\"text\":\"hi\"}", i ? "," : "",
                  i + 1);
  }
  gw_buf_puts(&b, "]}}\n");
  gw_buf_printf(&b,
                "{\"tenant_id\":\"t1\",\"team_id\":\"team-a\",\"agent_id\":\"ag-1\","
                "\"interaction_id\":\"lim-2\",\"channel\":\"chat\",\"occurred_at\":%lld,"
                "\"survey\":{\"likelihood_to_recommend\":3,\"comment\":\"%080d\"}}\n",
                now_ms() - 1000, 0);
  closed_event(&b, "lim-3", "lim-3", "voice");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":1,\"rejected\":2");
  CHECK_STR_CONTAINS(a->body, "{\"index\":0,\"line\":1,\"field\":\"closed.transcript\",\"reason\":"
                              "\"too many turns: 4, at most 3\"}");
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"line\":2,\"field\":\"survey.comment\",\"reason\":"
                              "\"too long: 80 bytes, at most 64\"}");

  /* A request head over max_header_bytes (2048): 431. */
  gw_buf_reset(&b);
  gw_buf_puts(&b, "X-Padding: ");
  for (int i = 0; i < 3000; i++) {
    gw_buf_putc(&b, 'x');
  }
  gw_buf_puts(&b, "\r\n");
  CHECK(http_post(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, "{}", 2, a));
  CHECK_INT_EQ(a->status, 431);

  /* A request that stops half-way: 408 after request_timeout_ms (400 ms). */
  static const char partial[] = "POST /v1/events HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"te";
  uint64_t t0 = uv_hrtime();
  CHECK(gw_test_http_raw(f->port, partial, sizeof(partial) - 1, a));
  CHECK_INT_EQ(a->status, 408);
  CHECK((uv_hrtime() - t0) / 1000000 >= 300);

  gw_buf_free(&b);
  free(a);
}

static void test_limits(void) {
  gw_ingest_config cfg = base_config();
  cfg.limits.max_turns = 3;
  cfg.limits.max_text_bytes = 64;
  cfg.max_header_bytes = 2048;
  cfg.request_timeout_ms = 400;
  run_case(&cfg, client_limits, false);
}

/*
 * The hard bounds of goodwill/event.h (what the scorer and the aggregator accept) are the most
 * an ingest accepts: limits looser than them refuse to start, an 8-day handle time (the
 * aggregator's bound is 7 days) is a 400 naming the field and the limit, and a text of exactly
 * the hard bound is accepted (test_scorer then scores such an event, and the aggregator takes
 * its record).
 */
static void test_hard_bounds_at_start(void) {
  uv_loop_t loop;
  CHECK_INT_EQ(uv_loop_init(&loop), 0);
  gw_log log;
  gw_log_init(&log, "ingest-test", GW_LOG_ERROR + 1);
  gw_ingest_config cfg = base_config();
  cfg.log = &log;
  cfg.producer.bootstrap = "127.0.0.1:1";
  gw_ingest *ing = NULL;
  cfg.limits.max_text_bytes = GW_EVENT_MAX_TEXT_BYTES + 1;
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  cfg = base_config();
  cfg.log = &log;
  cfg.producer.bootstrap = "127.0.0.1:1";
  cfg.limits.max_turns = GW_EVENT_MAX_TURNS + 1;
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  cfg = base_config();
  cfg.log = &log;
  cfg.producer.bootstrap = "127.0.0.1:1";
  cfg.limits.max_past_ms = GW_EVENT_MAX_PAST_MS + 1;
  CHECK_INT_EQ(gw_ingest_start(&loop, &cfg, &ing), -EINVAL);
  CHECK(ing == NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void client_hard_bounds(fixture *f) {
  answer *a = malloc(sizeof(*a));
  gw_buf b = GW_BUF_INIT;
  gw_buf_printf(&b,
                "{\"event_id\":\"hb-8d\",\"tenant_id\":\"t1\",\"team_id\":\"team-a\","
                "\"agent_id\":\"ag-1\",\"interaction_id\":\"hb-1\",\"channel\":\"voice\","
                "\"occurred_at\":%lld,\"closed\":{\"handle_ms\":691200000}}\n",
                now_ms() - 1000);
  gw_buf_printf(&b,
                "{\"event_id\":\"hb-text\",\"tenant_id\":\"t1\",\"team_id\":\"team-a\","
                "\"agent_id\":\"ag-1\",\"interaction_id\":\"hb-2\",\"channel\":\"email\","
                "\"occurred_at\":%lld,\"closed\":{\"handle_ms\":604800000,\"wait_ms\":604800000,"
                "\"transcript\":[{\"seq\":1,\"speaker\":\"customer\",\"text\":\"",
                now_ms() - 1000);
  for (int i = 0; i < GW_EVENT_MAX_TEXT_BYTES; i++) {
    gw_buf_putc(&b, "abcdefgh "[i % 9]);
  }
  gw_buf_puts(&b, "\"}]}}\n");
  CHECK(http_call(f->port, "POST", "/v1/events", "application/x-ndjson", b.data, a));
  CHECK_INT_EQ(a->status, 400);
  CHECK_STR_CONTAINS(a->body, "\"accepted\":1,\"rejected\":1");
  CHECK_STR_CONTAINS(a->body, "{\"index\":1,\"event_id\":\"hb-text\"}");
  CHECK_STR_CONTAINS(a->body, "{\"index\":0,\"line\":1,\"field\":\"closed.handle_ms\",\"reason\":"
                              "\"must be an integer 0..604800000, got 691200000\"}");
  gw_buf_free(&b);
  free(a);
}

static void test_hard_bounds(void) {
  gw_ingest_config cfg = base_config();
  cfg.limits.max_text_bytes = GW_EVENT_MAX_TEXT_BYTES; /* the largest it may be */
  run_case(&cfg, client_hard_bounds, false);
}

static void client_connection_limit(fixture *f) {
  answer *a = malloc(sizeof(*a));
  /* max_connections (2): a third connection gets 503 while two are held open. */
  int held[2];
  for (int i = 0; i < 2; i++) {
    held[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT_EQ(connect(held[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
  }
  /* The server counts a connection once it accepted it: poll until the gauge says 2. */
  bool two = false;
  for (int i = 0; i < 200 && !two; i++) {
    CHECK(http_call(f->admin_port, "GET", "/metrics", NULL, NULL, a));
    two = strstr(a->body, "goodwill_ingest_http_connections 2\n") != NULL;
    if (!two) {
      usleep(10 * 1000);
    }
  }
  CHECK(two);
  CHECK(http_call(f->port, "GET", "/v1/health", NULL, NULL, a));
  CHECK_INT_EQ(a->status, 503);
  CHECK_STR_CONTAINS(a->text, "Retry-After: 1\r\n");
  close(held[0]);
  close(held[1]);
  free(a);
}

static void test_connection_limit(void) {
  gw_ingest_config cfg = base_config();
  cfg.max_connections = 2;
  run_case(&cfg, client_connection_limit, false);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  GW_RUN(test_main_paths);
  GW_RUN(test_queue_full);
  GW_RUN(test_delivery_timeout);
  GW_RUN(test_fatal_producer_error);
  GW_RUN(test_protobuf_gzip);
  GW_RUN(test_auth);
  GW_RUN(test_auth_config);
  GW_RUN(test_rate_limit);
  GW_RUN(test_many_rejections);
  GW_RUN(test_limits);
  GW_RUN(test_hard_bounds_at_start);
  GW_RUN(test_hard_bounds);
  GW_RUN(test_connection_limit);
  return gw_test_finish();
}
