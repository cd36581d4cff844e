/*
 * gw_ingest: POST /v1/events -> Kafka, answered after acknowledgement (see goodwill/ingest.h).
 *
 * One request is one ingest_call. The handler parses and validates the body, produces every
 * valid event and counts the delivery reports it waits for; the answer is built when the last
 * report arrived. A produce that fails synchronously with a full queue answers 503 at once; the
 * call then lives on, unanswered, until the reports of the events already queued came back
 * (they may be acknowledged: a retried request yields the same event ids, and the pipeline
 * dedupes by id).
 *
 * Before anything of the body is read the bearer token is checked (authorize); the body is
 * then decoded by gw_ingest_decode_body (gzip inflation capped by the body limit, then JSON,
 * NDJSON or protobuf), and events of another tenant than the token's become item errors.
 *
 * All three bodies are accepted: live `turn` events go to Kafka like the others (the topic is
 * keyed tenant/interaction, so a live interaction's turns and its close stay in order on one
 * partition, and goodwill-scorer buffers the turns until the close; see goodwill/scorer.h).
 */
#include "goodwill/ingest.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include <zlib.h>

#include "goodwill/admin.h"
#include "goodwill/auth.h"
#include "goodwill/build_info.h"
#include "goodwill/hash.h"
#include "goodwill/rate_limit.h"
#include "goodwill/buf.h"
#include "goodwill/http.h"

#define GW_INGEST_DEFAULT_MAX_BODY_BYTES (8u * 1024u * 1024u)
#define GW_INGEST_DEFAULT_PRODUCE_MS     30000u
#define GW_INGEST_RETRY_AFTER_FAILED     "5"
#define GW_INGEST_RETRY_AFTER_QUEUE_FULL "1"
/* Tenants the rate limiter tracks at once (idle ones are dropped first): far above the tenants
 * of any tokens file, so only a dev-mode flood of tenants could reach it. */
#define GW_INGEST_RATE_MAX_TENANTS    100000
#define GW_INGEST_MAX_REASON_SERIES   128
#define GW_INGEST_INFLATE_CHUNK_BYTES (64u * 1024u)

/* The realm of the WWW-Authenticate challenge of a 401 (RFC 6750, section 3). */
#define GW_INGEST_REALM "goodwill-ingest"

typedef enum route { ROUTE_EVENTS, ROUTE_HEALTH, ROUTE_OTHER, ROUTE_COUNT } route;
static const char *const route_names[ROUTE_COUNT] = {"/v1/events", "/v1/health", "other"};

struct gw_ingest {
  uv_loop_t *loop;
  const gw_log *log;
  gw_http_server *http;
  gw_admin *admin;
  gw_kafka_producer *producer;
  gw_event_limits limits;
  uint64_t produce_timeout_ms;
  int port, admin_port;
  char *bootstrap; /* for the not-ready reason */

  gw_metrics *metrics;
  bool own_metrics;
  gw_metric_family *m_requests; /* {route,status} */
  gw_metric_family *m_duration; /* {route} */
  gw_metric_family *m_rejected; /* {reason} */
  gw_metric *m_accepted;
  gw_metric *m_bytes;
  gw_metric *m_queue;
  gw_metric *m_delivery;
  gw_metric *m_connections;
  gw_metric *m_tokens;
  gw_metric_family *m_reloads; /* {result} */
  /* Series looked up once and kept: a request is counted without formatting its status or
   * hashing its labels. Filled as statuses occur, so /metrics shows the same series as
   * without the cache. */
  struct {
    int status;
    gw_metric *series;
  } request_series[ROUTE_COUNT][8];
  gw_metric *duration_series[ROUTE_COUNT];
  /* Reused for every produce: the Kafka key and the packed event (librdkafka copies both). */
  gw_buf produce_key, produce_value;
  /* The answer on_head refuses a request with: the HTTP layer copies it during the call. */
  gw_buf early_body;
  gw_http_header early_extra;
  char early_extra_value[256]; /* early_extra's value: r.extra's points into on_head's stack */

  size_t max_body_bytes;
  bool dev_mode;
  char *tokens_file;
  gw_auth *auth; /* the tokens in use; NULL in dev mode */
  /* Every tenant id a token was ever bound to, interned: on_head hands the request's tenant to
   * handle_events through req->user, and a tokens reload in between must not free it. Grows
   * only with the tenants of the tokens files loaded (operator's ids, a few bytes each). */
  gw_hash_table tenants;
  gw_rate_limit *rate; /* per-tenant event budgets; NULL: no limit */
  double rate_per_s, rate_burst;
  gw_metric *m_rate_limited;

  size_t calls_in_flight;
  bool draining;
  /* The producer's fatal error (kept after the producer is closed, for /readyz), "" while none;
   * and the owner to tell. */
  char fatal[512];
  void (*on_fatal)(void *opaque, const char *reason);
  void *fatal_opaque;
  void (*done)(void *opaque);
  void *done_opaque;
};

typedef struct ingest_error {
  size_t index;
  size_t line;
  char field[96];
  char reason[192];
} ingest_error;

typedef struct ingest_call {
  gw_ingest *ing;
  gw_http_request *req; /* NULL once answered */
  gw_event_batch batch;
  gw_buf inflated;  /* the gunzipped body, when it was gzipped */
  const char *text; /* the decoded body, for NDJSON line numbers */
  size_t text_len;
  bool lines;         /* items have lines of their own (not protobuf) */
  size_t *item_lines; /* per item its 1-based line (0: none), made on first need (arena) */
  size_t nitem_lines;
  size_t nforbidden; /* items of another tenant than the token's */
  /* Both in the batch's arena (gw_event_batch_alloc), released with it; errors only once
   * there is one. */
  bool *skipped;        /* per valid event: not produced (another tenant's, too large) */
  ingest_error *errors; /* every rejected item, batch errors included */
  size_t nerrors;
  size_t nproduced; /* produce calls that took the event */
  size_t pending;   /* delivery reports outstanding */
  size_t nfailed;   /* failed delivery reports */
  bool producing;   /* still inside the produce loop */
  uint64_t produced_ns;
  char failure[256]; /* the first delivery failure */
} ingest_call;

/* ------------------------------------------------------------------ answers */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static route route_of(const char *path) {
  if (path != NULL && strcmp(path, "/v1/events") == 0)
    return ROUTE_EVENTS;
  if (path != NULL && strcmp(path, "/v1/health") == 0)
    return ROUTE_HEALTH;
  return ROUTE_OTHER;
}

static void count_request(gw_ingest *ing, route r, int status) {
  size_t i = 0, n = sizeof(ing->request_series[r]) / sizeof(ing->request_series[r][0]);
  for (; i < n && ing->request_series[r][i].series != NULL; i++) {
    if (ing->request_series[r][i].status == status) {
      gw_metric_add(ing->request_series[r][i].series, 1);
      return;
    }
  }
  char status_s[8];
  snprintf(status_s, sizeof(status_s), "%d", status);
  const char *labels[2] = {route_names[r], status_s};
  gw_metric *series = gw_metrics_series(ing->m_requests, labels);
  if (i < n) {
    ing->request_series[r][i].status = status;
    ing->request_series[r][i].series = series;
  }
  gw_metric_add(series, 1);
}

/* Answers the HTTP layer gave by itself (408, 413 by size, 431, 503 over the connection
 * limit, 400 for a malformed request): counted like the others; a request whose head was not
 * read far enough to know its path counts under route "other". */
static void on_server_answer(void *opaque, const char *path, int status) {
  count_request(opaque, route_of(path), status);
}

static void respond(gw_ingest *ing, gw_http_request *req, route r, int status, const gw_buf *body,
                    const gw_http_header *extra, size_t nextra) {
  count_request(ing, r, status);
  if (ing->duration_series[r] == NULL) {
    const char *dlabels[1] = {route_names[r]};
    ing->duration_series[r] = gw_metrics_series(ing->m_duration, dlabels);
  }
  gw_metric_observe(ing->duration_series[r], (double)(uv_hrtime() - req->received_ns) / 1e9);
  gw_http_respond(req, status, "application/json", body->data ? body->data : "", body->len, extra,
                  nextra);
}

/* {"error":"<msg>"} answers for requests that never reach Kafka. */
static void respond_error(gw_ingest *ing, gw_http_request *req, route r, int status,
                          const char *msg, const gw_http_header *extra, size_t nextra) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "{\"error\":");
  gw_buf_json_string(&b, msg);
  gw_buf_puts(&b, "}\n");
  respond(ing, req, r, status, &b, extra, nextra);
  gw_buf_free(&b);
}

static void append_errors(gw_buf *b, const ingest_error *errs, size_t n) {
  gw_buf_puts(b, ",\"errors\":[");
  for (size_t i = 0; i < n; i++) {
    gw_buf_printf(b, "%s{\"index\":%zu,\"line\":%zu,\"field\":", i ? "," : "", errs[i].index,
                  errs[i].line);
    gw_buf_json_string(b, errs[i].field);
    gw_buf_puts(b, ",\"reason\":");
    gw_buf_json_string(b, errs[i].reason);
    gw_buf_putc(b, '}');
  }
  gw_buf_putc(b, ']');
}

static size_t call_accepted(const ingest_call *c) {
  return c->nproduced;
}

static void call_free(ingest_call *c) {
  gw_event_batch_free(&c->batch); /* skipped and errors too */
  gw_buf_free(&c->inflated);
  c->ing->calls_in_flight--;
  free(c);
}

/* Every delivery report is in: answer (unless the 503 already left) and release the call. */
static void call_finish(ingest_call *c) {
  gw_ingest *ing = c->ing;
  if (c->req != NULL) {
    gw_buf b = GW_BUF_INIT;
    if (c->nfailed > 0) {
      gw_buf_printf(&b,
                    "{\"error\":\"%zu of %zu events were not acknowledged by Kafka; retry the "
                    "request\",\"reason\":",
                    c->nfailed, c->nproduced);
      gw_buf_json_string(&b, c->failure);
      gw_buf_printf(&b, ",\"accepted\":0,\"rejected\":%zu", c->nerrors);
      append_errors(&b, c->errors, c->nerrors);
      gw_buf_puts(&b, "}\n");
      const gw_http_header h = {"Retry-After", GW_INGEST_RETRY_AFTER_FAILED};
      respond(ing, c->req, ROUTE_EVENTS, 503, &b, &h, 1);
    } else {
      /* About what an answer of this many events takes (ids are 32 hex digits when derived),
       * so it is built without growing. */
      gw_buf_reserve(&b, 64 + 64 * c->batch.nevents);
      GW_BUF_PUT_LIT(&b, "{\"accepted\":");
      gw_buf_put_uint(&b, call_accepted(c));
      GW_BUF_PUT_LIT(&b, ",\"rejected\":");
      gw_buf_put_uint(&b, c->nerrors);
      GW_BUF_PUT_LIT(&b, ",\"events\":[");
      bool first = true;
      for (size_t i = 0; i < c->batch.nevents; i++) {
        if (c->skipped[i]) {
          continue;
        }
        if (!first) {
          gw_buf_putc(&b, ',');
        }
        GW_BUF_PUT_LIT(&b, "{\"index\":");
        gw_buf_put_uint(&b, c->batch.event_index[i]);
        GW_BUF_PUT_LIT(&b, ",\"event_id\":");
        gw_buf_json_string(&b, c->batch.events[i]->event_id);
        gw_buf_putc(&b, '}');
        first = false;
      }
      gw_buf_putc(&b, ']');
      if (c->nerrors > 0) {
        append_errors(&b, c->errors, c->nerrors);
      }
      gw_buf_puts(&b, "}\n");
      int status = c->nforbidden > 0 ? 403 : c->nerrors > 0 ? 400 : 202;
      respond(ing, c->req, ROUTE_EVENTS, status, &b, NULL, 0);
    }
    gw_buf_free(&b);
    c->req = NULL;
  }
  call_free(c);
}

static void on_delivery(void *opaque, int status, const char *errstr, int32_t partition,
                        int64_t offset) {
  ingest_call *c = opaque;
  gw_ingest *ing = c->ing;
  (void)partition;
  (void)offset;
  gw_metric_observe(ing->m_delivery, (double)(uv_hrtime() - c->produced_ns) / 1e9);
  if (status == 0) {
    gw_metric_add(ing->m_accepted, 1);
  } else {
    if (c->nfailed == 0) {
      snprintf(c->failure, sizeof(c->failure), "%s",
               errstr && errstr[0] ? errstr : (status == -ETIMEDOUT ? "timed out" : "failed"));
      GW_LOG(ing->log, GW_LOG_WARN, "kafka delivery failed", GW_LS("reason", c->failure),
             GW_LI("status", status));
    }
    c->nfailed++;
  }
  c->pending--;
  if (c->pending == 0 && !c->producing) {
    call_finish(c);
  }
}

/* ------------------------------------------------------------------ rejections */

/* The reason label of a rejection: the field path with list indices dropped
 * ("closed.transcript[3].speaker" -> "closed.transcript[].speaker"), so the label set is
 * bounded by the schema, plus "body" for errors about a whole item. */
static void reason_label(const char *field, char *out, size_t out_len) {
  size_t o = 0;
  if (field[0] == '\0') {
    snprintf(out, out_len, "item");
    return;
  }
  for (size_t i = 0; field[i] != '\0' && o + 1 < out_len; i++) {
    out[o++] = field[i];
    if (field[i] == '[') {
      while (field[i + 1] != '\0' && field[i + 1] != ']') {
        i++;
      }
    }
  }
  out[o] = '\0';
}

static void count_rejection(gw_ingest *ing, const char *field) {
  char label[96];
  reason_label(field, label, sizeof(label));
  const char *labels[1] = {label};
  gw_metric_add(gw_metrics_series(ing->m_rejected, labels), 1);
}

static int error_cmp(const void *a, const void *b) {
  const ingest_error *x = a, *y = b;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* The 1-based line of item index in an NDJSON body (items are the non-blank lines); 0 when the
 * body is a JSON array or protobuf, whose items have no line of their own. The body is scanned
 * once for every item's line, on the first call, so that rejecting many items of a request
 * costs time linear in its size. */
static size_t item_line(ingest_call *c, size_t index) {
  if (!c->lines) {
    return 0;
  }
  if (c->item_lines == NULL) {
    size_t n = c->batch.nitems;
    c->item_lines = gw_event_batch_alloc(&c->batch, (n + 1) * sizeof(size_t));
    memset(c->item_lines, 0, (n + 1) * sizeof(size_t));
    const char *body = c->text;
    size_t len = c->text_len, i = 0;
    while (i < len && isspace((unsigned char)body[i])) {
      i++;
    }
    if (i < len && body[i] == '[') {
      c->nitem_lines = 0; /* a JSON array: no lines of their own */
    } else {
      size_t line = 1, item = 0;
      bool blank = true;
      for (i = 0; i <= len && item < n; i++) {
        char ch = i < len ? body[i] : '\n';
        if (ch == '\n') {
          if (!blank) {
            c->item_lines[item++] = line;
          }
          line++;
          blank = true;
        } else if (!isspace((unsigned char)ch)) {
          blank = false;
        }
      }
      c->nitem_lines = item;
    }
  }
  return index < c->nitem_lines ? c->item_lines[index] : 0;
}

static void add_error(ingest_call *c, size_t index, size_t line, const char *field,
                      const char *reason) {
  if (c->errors == NULL) {
    /* Room for every item that can be rejected: the parser's and each valid event. Sized by
     * nitems, which max_events bounds. */
    c->errors = gw_event_batch_alloc(&c->batch, (c->batch.nerrors + c->batch.nevents + 1) *
                                                    sizeof(ingest_error));
  }
  ingest_error *e = &c->errors[c->nerrors++];
  e->index = index;
  e->line = line;
  snprintf(e->field, sizeof(e->field), "%s", field);
  snprintf(e->reason, sizeof(e->reason), "%s", reason);
  count_rejection(c->ing, field);
}

/* ------------------------------------------------------------------ POST /v1/events */

/* Maps Content-Type to a body format; -1 for a type this version does not read. */
static int body_format(const char *content_type, gw_event_format *out, bool *protobuf) {
  *protobuf = false;
  if (content_type == NULL) {
    *out = GW_EVENT_FORMAT_AUTO;
    return 0;
  }
  while (*content_type == ' ' || *content_type == '\t') {
    content_type++;
  }
  size_t n = strcspn(content_type, ";");
  while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t')) {
    n--;
  }
  if (n == 0) {
    *out = GW_EVENT_FORMAT_AUTO;
    return 0;
  }
  if (n == 16 && strncasecmp(content_type, "application/json", n) == 0) {
    *out = GW_EVENT_FORMAT_JSON;
    return 0;
  }
  if ((n == 20 && strncasecmp(content_type, "application/x-ndjson", n) == 0) ||
      (n == 18 && strncasecmp(content_type, "application/ndjson", n) == 0)) {
    *out = GW_EVENT_FORMAT_NDJSON;
    return 0;
  }
  if ((n == 22 && strncasecmp(content_type, "application/x-protobuf", n) == 0) ||
      (n == 20 && strncasecmp(content_type, "application/protobuf", n) == 0)) {
    *out = GW_EVENT_FORMAT_AUTO;
    *protobuf = true;
    return 0;
  }
  return -1;
}

/* Content-Encoding: 0 identity, 1 gzip, -1 anything else (several codings included). */
static int body_encoding(const char *enc) {
  if (enc == NULL) {
    return 0;
  }
  while (*enc == ' ' || *enc == '\t') {
    enc++;
  }
  size_t n = strlen(enc);
  while (n > 0 && (enc[n - 1] == ' ' || enc[n - 1] == '\t')) {
    n--;
  }
  if (n == 0 || (n == 8 && strncasecmp(enc, "identity", n) == 0)) {
    return 0;
  }
  if ((n == 4 && strncasecmp(enc, "gzip", n) == 0) ||
      (n == 6 && strncasecmp(enc, "x-gzip", n) == 0)) {
    return 1;
  }
  return -1;
}

/* Inflates a gzip body (RFC 1952; concatenated members too) into out, refusing to produce
 * more than max_bytes, so that a small "gzip bomb" costs at most max_bytes of memory. */
static int gunzip(const char *body, size_t len, size_t max_bytes, gw_buf *out, char *msg,
                  size_t msg_len) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
    snprintf(msg, msg_len, "cannot inflate the gzip body: zlib could not start");
    return -EBADMSG;
  }
  z.next_in = (Bytef *)(uintptr_t)body;
  z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
  int rc = 0;
  for (;;) {
    if (out->len >= max_bytes + 1) {
      snprintf(msg, msg_len, "the gzip body inflates to more than the body size limit (%zu bytes)",
               max_bytes);
      rc = -EMSGSIZE;
      break;
    }
    /* One byte more than allowed tells "exactly at the limit" from "past it". */
    size_t room = max_bytes + 1 - out->len;
    size_t chunk = room < GW_INGEST_INFLATE_CHUNK_BYTES ? room : GW_INGEST_INFLATE_CHUNK_BYTES;
    gw_buf_reserve(out, chunk);
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)chunk;
    int zr = inflate(&z, Z_NO_FLUSH);
    out->len += chunk - z.avail_out;
    if (zr == Z_STREAM_END) {
      if (z.avail_in == 0) {
        break;
      }
      /* Another gzip member follows (gzip files may be concatenated). */
      if (inflateReset(&z) != Z_OK) {
        snprintf(msg, msg_len, "cannot inflate the gzip body: zlib could not restart");
        rc = -EBADMSG;
        break;
      }
      continue;
    }
    if (zr == Z_OK) {
      continue;
    }
    if (zr == Z_BUF_ERROR && z.avail_in == 0) {
      snprintf(msg, msg_len, "the gzip body is truncated (%zu bytes read)", len);
    } else {
      snprintf(msg, msg_len, "the gzip body is corrupt at byte %zu: %s",
               (size_t)(z.next_in - (const Bytef *)body), z.msg ? z.msg : "invalid data");
    }
    rc = -EBADMSG;
    break;
  }
  inflateEnd(&z);
  if (rc == 0 && out->len > max_bytes) {
    snprintf(msg, msg_len, "the gzip body inflates to more than the body size limit (%zu bytes)",
             max_bytes);
    rc = -EMSGSIZE;
  }
  if (rc == 0) {
    gw_buf_reserve(out, 1);
    out->data[out->len] = '\0';
  }
  return rc;
}

int gw_ingest_decode_body(const char *content_type, const char *content_encoding, const char *body,
                          size_t len, size_t max_body_bytes, const gw_event_limits *lim,
                          int64_t now_ms, gw_event_batch *batch, gw_buf *inflated, bool *protobuf,
                          char *msg, size_t msg_len) {
  memset(batch, 0, sizeof(*batch));
  msg[0] = '\0';
  gw_event_format fmt;
  if (body_format(content_type, &fmt, protobuf) != 0) {
    snprintf(msg, msg_len,
             "Content-Type %.100s is not supported; send application/json, "
             "application/x-ndjson or application/x-protobuf",
             content_type);
    return -ENOTSUP;
  }
  int enc = body_encoding(content_encoding);
  if (enc < 0) {
    snprintf(msg, msg_len, "Content-Encoding %.100s is not supported; send gzip or identity",
             content_encoding);
    return -ENOTSUP;
  }
  if (enc == 1) {
    int rc = gunzip(body, len, max_body_bytes, inflated, msg, msg_len);
    if (rc != 0) {
      return rc;
    }
    body = inflated->data;
    len = inflated->len;
  }
  if (*protobuf) {
    return gw_event_parse_protobuf(body, len, lim, now_ms, batch);
  }
  return gw_event_parse_json(body, len, fmt, lim, now_ms, batch);
}

/* A request refused on its head alone: the answer's status, message and one extra header. */
typedef struct refusal {
  int status;
  char msg[256];
  gw_http_header extra; /* name NULL: none */
  char extra_value[256];
} refusal;

static void refuse(refusal *r, int status, const char *header, const char *value, const char *msg) {
  r->status = status;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
  r->extra.name = header;
  snprintf(r->extra_value, sizeof r->extra_value, "%s", value != NULL ? value : "");
  r->extra.value = r->extra_value;
}

/* The tenant a request may write for: 0 with *tenant (NULL in dev mode: any), or -EACCES with
 * the 401 in out. The token itself is never logged; only whether it was missing or unknown. */
static int authorize(gw_ingest *ing, gw_http_request *req, const char **tenant, refusal *out) {
  *tenant = NULL;
  if (ing->dev_mode) {
    return 0;
  }
  gw_auth_denial denial;
  if (gw_auth_authorize(ing->auth, gw_http_request_header(req, "Authorization"), GW_INGEST_REALM,
                        tenant, &denial) != 0) {
    refuse(out, 401, "WWW-Authenticate", denial.challenge, denial.error);
    return -EACCES;
  }
  return 0;
}

/* The budget a request draws on: its token's tenant, or one for all in dev mode. */
static const char *rate_key(const char *tenant) {
  return tenant != NULL ? tenant : "";
}

/* Whether the tenant may send now; otherwise the 429 (or, when the limiter has no room for
 * one more tenant, a 503) is in out. */
static bool within_rate(gw_ingest *ing, const char *tenant, refusal *out) {
  if (ing->rate == NULL) {
    return true;
  }
  uint64_t retry_ms = 0;
  int rc = gw_rate_limit_admit(ing->rate, rate_key(tenant), uv_now(ing->loop), &retry_ms);
  if (rc == 0) {
    return true;
  }
  gw_metric_add(ing->m_rate_limited, 1);
  if (rc == -EAGAIN) {
    char secs[24], msg[192];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)((retry_ms + 999) / 1000));
    snprintf(msg, sizeof(msg),
             "rate limit: this tenant may send %g events per second (burst %g); retry after "
             "%s s",
             ing->rate_per_s, ing->rate_burst, secs);
    refuse(out, 429, "Retry-After", secs, msg);
  } else {
    refuse(out, 503, "Retry-After", GW_INGEST_RETRY_AFTER_QUEUE_FULL,
           "rate limit: too many tenants are being limited at once; retry shortly");
  }
  return false;
}

static bool tenant_eq(const void *item, const void *key) {
  return strcmp(item, key) == 0;
}

/* The interned copy of tenant (see gw_ingest.tenants). */
static const char *intern_tenant(gw_ingest *ing, const char *tenant) {
  uint64_t h = gw_fnv64(tenant, strlen(tenant));
  char *t = gw_hash_table_find(&ing->tenants, h, tenant_eq, tenant);
  if (t == NULL) {
    t = strdup(tenant);
    if (t == NULL || gw_hash_table_insert(&ing->tenants, h, t) != 0) {
      abort(); /* a tenant id of the operator's tokens file */
    }
  }
  return t;
}

/*
 * Decides on a request's head, before any body byte is read or any 100 Continue is sent
 * (gw_http_config.on_head): POST /v1/events needs the method, a token and its tenant's rate
 * budget; the HTTP layer then refuses a Content-Length over --max-body (413). So a client
 * without a token, or a tenant in debt, costs the server a head, never a body.
 */
static void on_head(void *opaque, gw_http_request *req, gw_http_early_answer *ans) {
  gw_ingest *ing = opaque;
  if (route_of(req->path) != ROUTE_EVENTS) {
    return;
  }
  refusal r = {0};
  const char *tenant;
  if (strcmp(req->method, "POST") != 0) {
    refuse(&r, 405, "Allow", "POST", "use POST to send events to /v1/events");
  } else if (authorize(ing, req, &tenant, &r) != 0 || !within_rate(ing, tenant, &r)) {
    /* r holds the refusal */
  } else {
    req->user = tenant != NULL ? (void *)intern_tenant(ing, tenant) : NULL;
    return;
  }
  count_request(ing, ROUTE_EVENTS, r.status);
  gw_buf *b = &ing->early_body;
  gw_buf_reset(b);
  gw_buf_puts(b, "{\"error\":");
  gw_buf_json_string(b, r.msg);
  gw_buf_puts(b, "}\n");
  snprintf(ing->early_extra_value, sizeof(ing->early_extra_value), "%s", r.extra_value);
  ing->early_extra.name = r.extra.name;
  ing->early_extra.value = ing->early_extra_value;
  ans->status = r.status;
  ans->content_type = "application/json";
  ans->body = b->data;
  ans->body_len = b->len;
  ans->extra = &ing->early_extra;
  ans->nextra = r.extra.name != NULL ? 1 : 0;
}

/* POST /v1/events whose head on_head let through: the method, the token and the rate budget
 * were checked there, and req->user is the token's tenant (NULL in dev mode: any). */
static void handle_events(gw_ingest *ing, gw_http_request *req) {
  gw_metric_add(ing->m_bytes, (double)req->body_len);
  const char *tenant = req->user;

  ingest_call *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    abort();
  }
  c->ing = ing;
  c->req = req;
  ing->calls_in_flight++;
  c->inflated = (gw_buf)GW_BUF_INIT;
  bool protobuf = false;
  char msg[256];
  int rc = gw_ingest_decode_body(gw_http_request_header(req, "Content-Type"),
                                 gw_http_request_header(req, "Content-Encoding"), req->body,
                                 req->body_len, ing->max_body_bytes, &ing->limits, wall_ms(),
                                 &c->batch, &c->inflated, &protobuf, msg, sizeof(msg));
  if (rc == -ENOTSUP || rc == -EMSGSIZE || rc == -EBADMSG) {
    count_rejection(ing, "");
    respond_error(ing, req, ROUTE_EVENTS,
                  rc == -ENOTSUP    ? 415
                  : rc == -EMSGSIZE ? 413
                                    : 400,
                  msg, NULL, 0);
    c->req = NULL;
    call_free(c);
    return;
  }
  c->lines = !protobuf;
  c->text = c->inflated.data ? c->inflated.data : req->body;
  c->text_len = c->inflated.data ? c->inflated.len : req->body_len;
  if (rc == -E2BIG || rc == -EINVAL) {
    int status = rc == -E2BIG ? 413 : 400;
    gw_buf b = GW_BUF_INIT;
    if (rc == -E2BIG) {
      gw_buf_printf(&b, "{\"error\":\"too many events: at most %zu per request\"",
                    ing->limits.max_events);
    } else if (protobuf) {
      gw_buf_puts(&b,
                  "{\"error\":\"the body is not a readable goodwill.v1.InteractionEventBatch\"");
    } else {
      gw_buf_puts(&b, "{\"error\":\"the body is not readable as JSON or NDJSON events\"");
    }
    gw_buf_printf(&b, ",\"accepted\":0,\"rejected\":%zu,\"events\":[]",
                  c->batch.nerrors ? c->batch.nerrors : 1);
    ingest_error *errs = calloc(c->batch.nerrors ? c->batch.nerrors : 1, sizeof(*errs));
    if (errs == NULL) {
      abort();
    }
    size_t n = 0;
    for (; n < c->batch.nerrors; n++) {
      errs[n].index = c->batch.errors[n].index;
      errs[n].line = c->batch.errors[n].line;
      snprintf(errs[n].field, sizeof(errs[n].field), "%s", c->batch.errors[n].field);
      snprintf(errs[n].reason, sizeof(errs[n].reason), "%s", c->batch.errors[n].reason);
    }
    if (n == 0) {
      snprintf(errs[0].reason, sizeof(errs[0].reason),
               rc == -E2BIG ? "too many events" : "unreadable body");
      n = 1;
    }
    count_rejection(ing, "");
    append_errors(&b, errs, n);
    gw_buf_puts(&b, "}\n");
    respond(ing, req, ROUTE_EVENTS, status, &b, NULL, 0);
    gw_buf_free(&b);
    free(errs);
    c->req = NULL;
    call_free(c);
    return;
  }
  if (rc == -ENOMEM) {
    /* The server's failure, not the body's: like the other internal failures, 503 with
     * Retry-After, and nothing counted as rejected. */
    const gw_http_header h = {"Retry-After", GW_INGEST_RETRY_AFTER_FAILED};
    GW_LOG(ing->log, GW_LOG_ERROR, "request body not read",
           GW_LS("reason", "out of memory reading the body"));
    respond_error(ing, req, ROUTE_EVENTS, 503,
                  "the server ran out of memory reading the body; retry shortly", &h, 1);
    c->req = NULL;
    call_free(c);
    return;
  }
  if (rc != 0 || c->batch.nitems == 0) {
    respond_error(ing, req, ROUTE_EVENTS, 400, "the body holds no events", NULL, 0);
    c->req = NULL;
    call_free(c);
    return;
  }

  c->skipped = gw_event_batch_alloc(&c->batch, c->batch.nevents + 1);
  memset(c->skipped, 0, c->batch.nevents + 1);
  for (size_t i = 0; i < c->batch.nerrors; i++) {
    const gw_event_error *e = &c->batch.errors[i];
    add_error(c, e->index, e->line, e->field, e->reason);
  }
  /* A token writes for one tenant: events of any other are rejected one by one (403), the
   * rest of the batch goes on. */
  for (size_t i = 0; i < c->batch.nevents && tenant != NULL; i++) {
    if (strcmp(c->batch.events[i]->tenant_id, tenant) != 0) {
      char reason[192];
      snprintf(reason, sizeof(reason), "forbidden: this token may only send events of tenant %s",
               tenant);
      c->skipped[i] = true;
      c->nforbidden++;
      add_error(c, c->batch.event_index[i], item_line(c, c->batch.event_index[i]), "tenant_id",
                reason);
    }
  }

  if (ing->rate != NULL) {
    gw_rate_limit_charge(ing->rate, rate_key(tenant), uv_now(ing->loop),
                         c->batch.nevents - c->nforbidden);
  }

  /* Produce every remaining event; the answer waits for all their delivery reports. */
  gw_buf *key = &ing->produce_key, *value = &ing->produce_value;
  c->producing = true;
  c->produced_ns = uv_hrtime();
  bool queue_full = false;
  int fatal = 0;
  for (size_t i = 0; i < c->batch.nevents && !queue_full && fatal == 0; i++) {
    if (c->skipped[i]) {
      continue;
    }
    const Goodwill__V1__InteractionEvent *ev = c->batch.events[i];
    gw_buf_reset(key);
    gw_buf_reset(value);
    gw_event_kafka_key(ev, key);
    gw_event_pack(ev, value);
    rc = gw_kafka_produce(ing->producer, GW_TOPIC_INTERACTIONS, key->data, key->len, value->data,
                          value->len, NULL, 0, on_delivery, c);
    if (rc == 0) {
      c->nproduced++;
      c->pending++;
    } else if (rc == -EMSGSIZE) {
      c->skipped[i] = true;
      add_error(c, c->batch.event_index[i], item_line(c, c->batch.event_index[i]), "",
                "event too large for a Kafka record (message.max.bytes)");
    } else if (rc == -ENOBUFS) {
      queue_full = true;
    } else {
      fatal = rc;
    }
  }
  if (value->cap > GW_INGEST_INFLATE_CHUNK_BYTES) {
    gw_buf_free(value); /* an unusually large event does not stay pinned */
  }
  c->producing = false;
  if (c->nerrors > 1) {
    qsort(c->errors, c->nerrors, sizeof(ingest_error), error_cmp);
  }

  if (queue_full || fatal != 0) {
    /* Answer now; the call lives on until the reports of what was queued came back. */
    const gw_http_header h = {"Retry-After", queue_full ? GW_INGEST_RETRY_AFTER_QUEUE_FULL
                                                        : GW_INGEST_RETRY_AFTER_FAILED};
    const char *why = queue_full ? "the Kafka producer queue is full; retry shortly"
                                 : "Kafka is not accepting events (shutting down?); retry";
    GW_LOG(ing->log, GW_LOG_WARN, "events refused", GW_LS("reason", why), GW_LI("error", fatal));
    respond_error(ing, req, ROUTE_EVENTS, 503, why, &h, 1);
    c->req = NULL;
  }
  if (c->pending == 0) {
    call_finish(c);
  }
}

static void handle(void *opaque, gw_http_request *req) {
  gw_ingest *ing = opaque;
  route r = route_of(req->path);
  if (r == ROUTE_EVENTS) {
    handle_events(ing, req);
    return;
  }
  if (r == ROUTE_HEALTH) {
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
      const gw_http_header allow = {"Allow", "GET, HEAD"};
      respond_error(ing, req, ROUTE_HEALTH, 405, "use GET for /v1/health", &allow, 1);
      return;
    }
    gw_buf b = GW_BUF_INIT;
    gw_buf_puts(&b, "{\"status\":\"ok\"}\n");
    respond(ing, req, ROUTE_HEALTH, 200, &b, NULL, 0);
    gw_buf_free(&b);
    return;
  }
  gw_buf msg = GW_BUF_INIT;
  gw_buf_printf(&msg, "no such path: %.200s (try POST /v1/events or GET /v1/health)", req->path);
  respond_error(ing, req, ROUTE_OTHER, 404, msg.data, NULL, 0);
  gw_buf_free(&msg);
}

/* ------------------------------------------------------------------ readiness, metrics */

static bool ready(void *opaque, char *reason, size_t reason_len) {
  gw_ingest *ing = opaque;
  if (ing->fatal[0] != '\0') {
    snprintf(reason, reason_len, "kafka producer failed for good: %s", ing->fatal);
    return false;
  }
  if (ing->draining) {
    snprintf(reason, reason_len, "draining");
    return false;
  }
  if (ing->producer == NULL || !gw_kafka_producer_connected(ing->producer)) {
    snprintf(reason, reason_len, "kafka producer has not reached a broker yet (bootstrap %s)",
             ing->bootstrap);
    return false;
  }
  return true;
}

static void collect(void *opaque) {
  gw_ingest *ing = opaque;
  gw_metric_set(ing->m_queue,
                ing->producer ? (double)gw_kafka_producer_queue_len(ing->producer) : 0.0);
  gw_metric_set(ing->m_connections, ing->http ? (double)gw_http_server_connections(ing->http) : 0);
}

static const char *const route_status_labels[] = {"route", "status"};
static const char *const route_labels[] = {"route"};
static const char *const reason_labels[] = {"reason"};
static const char *const result_labels[] = {"result"};

static const gw_metric_spec ingest_metrics[] = {
    GW_METRIC_FAMILY(gw_ingest, m_requests, .name = "goodwill_ingest_requests_total",
                     .help = "HTTP requests answered by the ingest API.", .type = GW_METRIC_COUNTER,
                     .label_names = route_status_labels, .nlabels = 2),
    GW_METRIC_FAMILY(gw_ingest, m_duration, .name = "goodwill_ingest_request_duration_seconds",
                     .help = "Time from a complete request to its answer (includes waiting for "
                             "Kafka acknowledgements).",
                     .type = GW_METRIC_HISTOGRAM, .label_names = route_labels, .nlabels = 1,
                     .buckets = gw_metrics_latency_buckets_s,
                     .nbuckets = GW_METRICS_LATENCY_BUCKETS),
    GW_METRIC_SERIES(gw_ingest, m_accepted, .name = "goodwill_ingest_events_accepted_total",
                     .help = "Events acknowledged by Kafka.", .type = GW_METRIC_COUNTER),
    GW_METRIC_FAMILY(gw_ingest, m_rejected, .name = "goodwill_ingest_events_rejected_total",
                     .help = "Items rejected, by the field at fault (\"item\": the whole item or "
                             "body).",
                     .type = GW_METRIC_COUNTER, .label_names = reason_labels, .nlabels = 1,
                     .max_series = GW_INGEST_MAX_REASON_SERIES),
    GW_METRIC_SERIES(gw_ingest, m_bytes, .name = "goodwill_ingest_bytes_received_total",
                     .help = "Request body bytes received on /v1/events.",
                     .type = GW_METRIC_COUNTER),
    GW_METRIC_SERIES(gw_ingest, m_queue, .name = "goodwill_ingest_producer_queue_records",
                     .help = "Records queued or in flight in the Kafka producer.",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_ingest, m_delivery, .name = "goodwill_ingest_delivery_duration_seconds",
                     .help = "Time from produce to the Kafka delivery report.",
                     .type = GW_METRIC_HISTOGRAM, .buckets = gw_metrics_latency_buckets_s,
                     .nbuckets = GW_METRICS_LATENCY_BUCKETS),
    GW_METRIC_SERIES(gw_ingest, m_connections, .name = "goodwill_ingest_http_connections",
                     .help = "Open connections on the ingest API port.", .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_ingest, m_tokens, .name = "goodwill_ingest_auth_tokens",
                     .help = "Bearer tokens in use (from the tokens file; 0 in dev mode).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_FAMILY(gw_ingest, m_reloads, .name = "goodwill_ingest_auth_reloads_total",
                     .help = "Reloads of the tokens file (SIGHUP) by result: ok, or failed (the "
                             "previous tokens stay in use).",
                     .type = GW_METRIC_COUNTER, .label_names = result_labels, .nlabels = 1),
    GW_METRIC_SERIES(gw_ingest, m_rate_limited, .name = "goodwill_ingest_rate_limited_total",
                     .help = "Requests refused by the per-tenant rate limit (--rate-limit): 429, "
                             "or 503 when too many tenants are limited at once.",
                     .type = GW_METRIC_COUNTER),
};

static int register_metrics(gw_ingest *ing) {
  int rc = gw_metrics_register_all(ing->metrics, ingest_metrics,
                                   sizeof ingest_metrics / sizeof ingest_metrics[0], ing, NULL);
  if (rc == 0) {
    rc = gw_build_info_register(ing->metrics, NULL);
  }
  if (rc != 0) {
    return rc;
  }
  return gw_metrics_on_collect(ing->metrics, collect, ing);
}

/* ------------------------------------------------------------------ start, stop */

/* The producer failed for good (kafka.h): every produce fails from now on. */
static void on_producer_fatal(void *opaque, const char *reason) {
  gw_ingest *ing = opaque;
  snprintf(ing->fatal, sizeof(ing->fatal), "%s", reason);
  if (ing->on_fatal != NULL) {
    ing->on_fatal(ing->fatal_opaque, reason);
  }
}

static void ingest_free(gw_ingest *ing) {
  gw_rate_limit_free(ing->rate);
  gw_buf_free(&ing->produce_key);
  gw_buf_free(&ing->produce_value);
  gw_buf_free(&ing->early_body);
  gw_hash_iter it;
  gw_hash_iter_init(&ing->tenants, &it);
  for (char *t; (t = gw_hash_table_next(&ing->tenants, &it)) != NULL;) {
    free(t);
  }
  gw_hash_table_free(&ing->tenants);
  if (ing->own_metrics) {
    gw_metrics_free(ing->metrics);
  }
  free(ing->bootstrap);
  free(ing->tokens_file);
  gw_auth_free(ing->auth);
  free(ing);
}

/* Start failed after some parts were up: close them, then free (the caller already got the
 * error; nothing is reported). */
static void abort_start_step(void *opaque);

static void abort_start_step(void *opaque) {
  gw_ingest *ing = opaque;
  if (ing->http != NULL) {
    gw_http_server *h = ing->http;
    ing->http = NULL;
    gw_http_server_close(h, abort_start_step, ing);
    return;
  }
  if (ing->admin != NULL) {
    gw_admin *a = ing->admin;
    ing->admin = NULL;
    gw_admin_close(a, abort_start_step, ing);
    return;
  }
  if (ing->producer != NULL) {
    gw_kafka_producer *p = ing->producer;
    ing->producer = NULL;
    gw_kafka_producer_close(p, 0, abort_start_step, ing);
    return;
  }
  ingest_free(ing);
}

/* The JSON reader's secret SipHash key (see goodwill/json_reader.h), drawn once per process
 * start so that no client can know it. */
static void draw_json_hash_key(uint64_t key[2]) {
  if (getrandom(key, 2 * sizeof(uint64_t), GRND_NONBLOCK) != (ssize_t)(2 * sizeof(uint64_t))) {
    /* No entropy yet (early boot): addresses (randomised by ASLR) and the clocks. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    key[0] = (uint64_t)(uintptr_t)key ^ ((uint64_t)ts.tv_nsec << 32) ^ uv_hrtime();
    key[1] = (uint64_t)(uintptr_t)&ts ^ (uint64_t)ts.tv_sec * 0x9E3779B97F4A7C15ULL;
  }
  if (key[0] == 0 && key[1] == 0) {
    key[1] = 1; /* all zeros means "not set" */
  }
}

int gw_ingest_start(uv_loop_t *loop, const gw_ingest_config *cfg, gw_ingest **out) {
  *out = NULL;
  if (loop == NULL || cfg == NULL || cfg->log == NULL) {
    return -EINVAL;
  }
  if (cfg->listen_host == NULL || cfg->listen_port < 0 || cfg->listen_port > 65535 ||
      (cfg->admin_port >= 0 && cfg->admin_host == NULL) || cfg->admin_port > 65535) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid ingest configuration",
           GW_LS("reason", "listen/admin host and port (0..65535) are required"));
    return -EINVAL;
  }
  if (cfg->producer.bootstrap == NULL || cfg->producer.bootstrap[0] == '\0') {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid ingest configuration",
           GW_LS("reason", "kafka bootstrap servers are required"));
    return -EINVAL;
  }
  /* Limits may only tighten the hard bounds (goodwill/event.h): an event accepted past them
   * would be answered 202 here and dead-lettered by the scorer. */
  char limits_err[256] = "";
  if (cfg->limits.max_events != 0 &&
      gw_event_limits_check(&cfg->limits, limits_err, sizeof(limits_err)) != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid ingest configuration", GW_LS("reason", limits_err));
    return -EINVAL;
  }
  bool has_tokens = cfg->tokens_file != NULL && cfg->tokens_file[0] != '\0';
  char mode_err[256] = "";
  if (gw_auth_mode_check(cfg->tokens_file, cfg->dev_mode, "docs/API-ingest.md", mode_err,
                         sizeof(mode_err)) != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid ingest configuration", GW_LS("reason", mode_err));
    return -EINVAL;
  }
  gw_auth *auth = NULL;
  if (has_tokens) {
    char aerr[512] = "";
    int arc = gw_auth_load_file(cfg->tokens_file, &auth, aerr, sizeof(aerr));
    if (arc != 0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "the tokens file cannot be used", GW_LS("reason", aerr));
      return arc == -ENOMEM ? arc : -EINVAL;
    }
  }
  gw_ingest *ing = calloc(1, sizeof(*ing));
  if (ing == NULL) {
    gw_auth_free(auth);
    return -ENOMEM;
  }
  ing->auth = auth;
  ing->dev_mode = cfg->dev_mode;
  if (has_tokens) {
    ing->tokens_file = strdup(cfg->tokens_file);
  }
  ing->max_body_bytes =
      cfg->max_body_bytes ? cfg->max_body_bytes : GW_INGEST_DEFAULT_MAX_BODY_BYTES;
  ing->loop = loop;
  ing->log = cfg->log;
  ing->limits = cfg->limits;
  if (ing->limits.max_events == 0) {
    gw_event_limits_default(&ing->limits);
  }
  if (ing->limits.json_hash_key[0] == 0 && ing->limits.json_hash_key[1] == 0) {
    draw_json_hash_key(ing->limits.json_hash_key);
  }
  ing->produce_timeout_ms =
      cfg->produce_timeout_ms ? cfg->produce_timeout_ms : GW_INGEST_DEFAULT_PRODUCE_MS;
  ing->bootstrap = strdup(cfg->producer.bootstrap);
  ing->admin_port = -1;
  ing->metrics = cfg->metrics;
  if (ing->metrics == NULL) {
    ing->own_metrics = true;
    if (gw_metrics_new(&ing->metrics) != 0) {
      abort();
    }
  }
  int rc = 0;
  if (cfg->rate_limit_per_s > 0) {
    ing->rate_per_s = cfg->rate_limit_per_s;
    ing->rate_burst = cfg->rate_burst > 0 ? cfg->rate_burst : 2 * cfg->rate_limit_per_s;
    if (ing->rate_burst < 1) {
      ing->rate_burst = 1;
    }
    rc =
        gw_rate_limit_new(ing->rate_per_s, ing->rate_burst, GW_INGEST_RATE_MAX_TENANTS, &ing->rate);
    if (rc != 0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "the rate limit cannot be used",
             GW_LS("reason", "rate and burst must be finite and positive"));
      ingest_free(ing);
      return rc;
    }
  } else if (cfg->rate_limit_per_s < 0 || cfg->rate_burst < 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "the rate limit cannot be used",
           GW_LS("reason", "rate and burst must not be negative"));
    ingest_free(ing);
    return -EINVAL;
  }
  rc = register_metrics(ing);
  if (rc != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "ingest metrics could not be registered",
           GW_LS("reason", rc == -EEXIST ? "a goodwill_ingest_* family already exists in the "
                                           "registry"
                                         : "invalid family"));
    ingest_free(ing);
    return rc;
  }

  gw_kafka_producer_config pc = cfg->producer;
  pc.delivery_timeout_ms = ing->produce_timeout_ms;
  if (pc.client_id == NULL || pc.client_id[0] == '\0') {
    pc.client_id = "goodwill-ingest";
  }
  if (pc.log == NULL) {
    pc.log = cfg->log;
  }
  ing->on_fatal = cfg->on_fatal;
  ing->fatal_opaque = cfg->fatal_opaque;
  pc.on_fatal = on_producer_fatal;
  pc.fatal_opaque = ing;
  char err[512] = "";
  rc = gw_kafka_producer_new(&ing->producer, loop, &pc, err, sizeof(err));
  if (rc != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "kafka producer could not be created", GW_LS("reason", err));
    ingest_free(ing);
    return rc;
  }

  gw_http_config hc = {
      .host = cfg->listen_host,
      .port = cfg->listen_port,
      .max_body_bytes = ing->max_body_bytes,
      .max_header_bytes = cfg->max_header_bytes,
      .max_connections = cfg->max_connections,
      .request_timeout_ms = cfg->request_timeout_ms,
      .server_name = "goodwill-ingest",
      .log = cfg->log,
      .on_server_answer = on_server_answer,
      .on_head = on_head,
  };
  rc = gw_http_server_start(&ing->http, loop, &hc, handle, ing);
  if (rc != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "ingest API port could not be opened",
           GW_LS("host", cfg->listen_host), GW_LI("port", cfg->listen_port),
           GW_LS("reason", uv_strerror(rc)));
    ing->http = NULL;
    abort_start_step(ing);
    return rc;
  }
  ing->port = gw_http_server_port(ing->http);
  if (cfg->admin_port >= 0) {
    gw_admin_config ac = {.host = cfg->admin_host,
                          .port = cfg->admin_port,
                          .metrics = ing->metrics,
                          .log = cfg->log,
                          .ready = ready,
                          .ready_opaque = ing};
    rc = gw_admin_start(&ing->admin, loop, &ac);
    if (rc != 0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "ingest admin port could not be opened",
             GW_LS("host", cfg->admin_host), GW_LI("port", cfg->admin_port),
             GW_LS("reason", uv_strerror(rc)));
      ing->admin = NULL;
      abort_start_step(ing);
      return rc;
    }
    ing->admin_port = gw_admin_port(ing->admin);
  }
  gw_metric_set(ing->m_tokens, (double)gw_auth_count(ing->auth));
  if (ing->dev_mode) {
    GW_LOG(cfg->log, GW_LOG_WARN, GW_AUTH_DEV_MODE_WARNING("write events for"));
  } else {
    GW_LOG(cfg->log, GW_LOG_INFO, "bearer tokens loaded", GW_LS("file", ing->tokens_file),
           GW_LI("tokens", (long long)gw_auth_count(ing->auth)));
  }
  *out = ing;
  return 0;
}

int gw_ingest_reload_tokens(gw_ingest *ing) {
  if (ing->dev_mode || ing->tokens_file == NULL) {
    GW_LOG(ing->log, GW_LOG_WARN, "no tokens file to reload (dev mode)");
    return -ENOTSUP;
  }
  gw_auth *fresh = NULL;
  char err[512] = "";
  int rc = gw_auth_load_file(ing->tokens_file, &fresh, err, sizeof(err));
  if (rc != 0) {
    const char *labels[1] = {"failed"};
    gw_metric_add(gw_metrics_series(ing->m_reloads, labels), 1);
    GW_LOG(ing->log, GW_LOG_ERROR, "tokens file not reloaded; the previous tokens stay in use",
           GW_LS("reason", err), GW_LI("tokens", (long long)gw_auth_count(ing->auth)));
    return rc;
  }
  /* Requests in flight hold no pointer into the old set (their tenant is interned), so it can
   * go at once; a request whose head was authorised by the old set goes on. */
  gw_auth_free(ing->auth);
  ing->auth = fresh;
  const char *labels[1] = {"ok"};
  gw_metric_add(gw_metrics_series(ing->m_reloads, labels), 1);
  gw_metric_set(ing->m_tokens, (double)gw_auth_count(fresh));
  GW_LOG(ing->log, GW_LOG_INFO, "tokens file reloaded", GW_LS("file", ing->tokens_file),
         GW_LI("tokens", (long long)gw_auth_count(fresh)));
  return 0;
}

int gw_ingest_port(const gw_ingest *ing) {
  return ing->port;
}

int gw_ingest_admin_port(const gw_ingest *ing) {
  return ing->admin_port;
}

static void stop_step(void *opaque);

/* Drain order: the API (in-flight calls finish as their reports arrive), then the producer
 * (flush), then the admin port, which answered /readyz 503 "draining" all along. */
static void stop_step(void *opaque) {
  gw_ingest *ing = opaque;
  if (ing->http != NULL) {
    gw_http_server *h = ing->http;
    ing->http = NULL;
    gw_http_server_close(h, stop_step, ing);
    return;
  }
  if (ing->producer != NULL) {
    gw_kafka_producer *p = ing->producer;
    ing->producer = NULL;
    GW_LOG(ing->log, GW_LOG_INFO, "flushing the kafka producer",
           GW_LI("queued", gw_kafka_producer_queue_len(p)));
    gw_kafka_producer_close(p, ing->produce_timeout_ms, stop_step, ing);
    return;
  }
  if (ing->admin != NULL) {
    gw_admin *a = ing->admin;
    ing->admin = NULL;
    gw_admin_close(a, stop_step, ing);
    return;
  }
  void (*done)(void *) = ing->done;
  void *done_opaque = ing->done_opaque;
  GW_LOG(ing->log, GW_LOG_INFO, "ingest stopped");
  ingest_free(ing);
  if (done != NULL) {
    done(done_opaque);
  }
}

void gw_ingest_stop(gw_ingest *ing, void (*done)(void *opaque), void *opaque) {
  if (ing == NULL || ing->draining) {
    return;
  }
  ing->draining = true;
  ing->done = done;
  ing->done_opaque = opaque;
  GW_LOG(ing->log, GW_LOG_INFO, "ingest draining", GW_LI("calls_in_flight", ing->calls_in_flight));
  stop_step(ing);
}
