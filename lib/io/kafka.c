/*
 * gw_kafka: librdkafka driven by a libuv loop. See goodwill/kafka.h for the contract.
 *
 * Loop integration (the same for producer and consumer): librdkafka writes 8 bytes to a
 * non-blocking eventfd when a queue goes from empty to non-empty (rd_kafka_queue_io_event_
 * enable); a uv_poll watches the fd. Each wake-up first resets the eventfd and then serves the
 * queue with a bounded budget; when the budget runs out, a uv_idle handle continues on the
 * next loop turn, because no second wake-up would come for a queue that is still non-empty.
 *
 * Every librdkafka callback (delivery reports, rebalances, errors, logs with log.queue=true)
 * is served from those polls, so they all run on the loop thread. The one blocking call,
 * rd_kafka_destroy, runs on the libuv thread pool once nothing else uses the handle.
 */
#include "goodwill/kafka.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "goodwill/buf.h"

/* Queue operations served per loop turn before yielding to other handles. */
#define GW_KAFKA_DRAIN_BUDGET 256
/* Period of the timer that drives producer and consumer close. */
#define GW_KAFKA_CLOSE_TICK_MS 20
#define GW_KAFKA_KEEPALIVE_MS  1000
/* After purging at close, how long to wait for librdkafka to report the purged records. */
#define GW_KAFKA_PURGE_GRACE_MS 2000
/* Room for a fatal error's reason: the error's name and librdkafka's sentence. */
#define GW_KAFKA_FATAL_MAX 512

/* ---------------------------------------------------------------- shared helpers */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen) {
  char rderr[512];
  if (rd_kafka_conf_set(conf, name, value, rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
    gw_errf(err, errlen, "kafka property %s: %s", name, rderr);
    return -EINVAL;
  }
  return 0;
}

static int conf_set_u64(rd_kafka_conf_t *conf, const char *name, uint64_t value, char *err,
                        size_t errlen) {
  char v[32];
  snprintf(v, sizeof v, "%llu", (unsigned long long)value);
  return conf_set(conf, name, v, err, errlen);
}

/*
 * The settings goodwill's guarantees rest on (docs/RELIABILITY.md), which --kafka-property may
 * not change. Names as librdkafka 2.0.2 knows them (CONFIGURATION.md), aliases included:
 * request.required.acks is acks' own name, auto.commit.enable the legacy topic-level
 * enable.auto.commit. librdkafka also accepts topic-level names with a "topic." prefix, which
 * is removed before the comparison; its names are case-sensitive, like this comparison.
 */
typedef struct protected_property {
  const char *name;
  const char *why;
} protected_property;

static const char why_idempotence[] =
    "goodwill requires the idempotent producer (enable.idempotence=true), so that retries "
    "neither duplicate nor reorder records";
static const char why_acks[] =
    "goodwill requires acks=all for every record it acknowledges: an event answered 2xx, a "
    "scored record whose input is committed, must be held by every in-sync replica";
static const char why_offset_store[] =
    "goodwill stores each offset itself, only once the record's effects are durable "
    "(enable.auto.offset.store=false); automatic stores would commit records not yet done";
static const char why_auto_commit[] =
    "goodwill commits the offsets it has stored (enable.auto.commit=true with explicit "
    "stores); without it nothing would be committed before shutdown and a crash would replay "
    "everything";
static const char why_offset_reset[] =
    "goodwill starts a new consumer group at the earliest offset and reports records skipped "
    "by an out-of-range reset as lost (auto.offset.reset=earliest); any other policy skips or "
    "stalls silently";

static const protected_property producer_protected[] = {
    {"enable.idempotence", why_idempotence},
    {"acks", why_acks},
    {"request.required.acks", why_acks},
};

static const protected_property consumer_protected[] = {
    {"enable.auto.offset.store", why_offset_store},
    {"enable.auto.commit", why_auto_commit},
    {"auto.commit.enable", why_auto_commit},
    {"auto.offset.reset", why_offset_reset},
};

/* Applies the operator's "name=value" properties after goodwill's defaults, refusing the
 * protected ones. */
static int conf_apply_properties(rd_kafka_conf_t *conf, const char *const *props, size_t n,
                                 const protected_property *protected, size_t nprotected, char *err,
                                 size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    const char *eq = props[i] != NULL ? strchr(props[i], '=') : NULL;
    if (eq == NULL || eq == props[i]) {
      gw_errf(err, errlen, "kafka property \"%s\": expected name=value",
              props[i] != NULL ? props[i] : "");
      return -EINVAL;
    }
    size_t nlen = (size_t)(eq - props[i]);
    char *name = malloc(nlen + 1);
    if (name == NULL) {
      abort();
    }
    memcpy(name, props[i], nlen);
    name[nlen] = '\0';
    const char *bare = strncmp(name, "topic.", 6) == 0 ? name + 6 : name;
    for (size_t k = 0; k < nprotected; k++) {
      if (strcmp(bare, protected[k].name) == 0) {
        gw_errf(err, errlen, "kafka property %s may not be set: %s", name, protected[k].why);
        free(name);
        return -EINVAL;
      }
    }
    int rc = conf_set(conf, name, eq + 1, err, errlen);
    free(name);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static gw_log_level syslog_to_gw(int level) {
  if (level <= 3) {
    return GW_LOG_ERROR;
  }
  if (level == 4) {
    return GW_LOG_WARN;
  }
  if (level <= 6) {
    return GW_LOG_INFO;
  }
  return GW_LOG_DEBUG;
}

/*
 * A queue watched by the loop: the eventfd librdkafka signals, the uv_poll on it and the idle
 * handle that continues a drain cut short by the budget. `serve` drains up to a budget and
 * returns true when the queue was found empty.
 */
typedef struct gw_kafka_pump {
  uv_poll_t poll;
  uv_idle_t idle;
  uv_timer_t timer; /* close driver */
  int efd;
  bool (*serve)(void *self);
  void *self;
  int open_handles;
  void (*all_closed)(void *self);
} gw_kafka_pump;

static void pump_on_idle(uv_idle_t *h);

static void pump_run(gw_kafka_pump *pump) {
  if (pump->serve(pump->self)) {
    uv_idle_stop(&pump->idle);
  } else if (!uv_is_active((uv_handle_t *)&pump->idle)) {
    uv_idle_start(&pump->idle, pump_on_idle);
  }
}

static void pump_on_idle(uv_idle_t *h) {
  pump_run(h->data);
}

static void pump_on_poll(uv_poll_t *h, int status, int events) {
  gw_kafka_pump *pump = h->data;
  uint64_t v;
  /* Reset the eventfd before serving, so an enqueue racing with the drain signals again. */
  while (read(pump->efd, &v, sizeof v) > 0) {
  }
  pump_run(pump);
}

static int pump_init(gw_kafka_pump *pump, uv_loop_t *loop, bool (*serve)(void *), void *self,
                     void (*all_closed)(void *)) {
  memset(pump, 0, sizeof *pump);
  pump->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (pump->efd < 0) {
    return -errno;
  }
  pump->serve = serve;
  pump->self = self;
  pump->all_closed = all_closed;
  int rc = uv_poll_init(loop, &pump->poll, pump->efd);
  if (rc != 0) {
    close(pump->efd);
    pump->efd = -1;
    return rc;
  }
  uv_idle_init(loop, &pump->idle);
  uv_timer_init(loop, &pump->timer);
  pump->poll.data = pump->idle.data = pump->timer.data = pump;
  pump->open_handles = 3;
  return 0;
}

static void pump_start(gw_kafka_pump *pump) {
  uv_poll_start(&pump->poll, UV_READABLE, pump_on_poll);
}

static void pump_on_close(uv_handle_t *h) {
  gw_kafka_pump *pump = h->data;
  if (--pump->open_handles == 0) {
    if (pump->efd >= 0) {
      close(pump->efd);
      pump->efd = -1;
    }
    pump->all_closed(pump->self);
  }
}

static void pump_close(gw_kafka_pump *pump) {
  uv_close((uv_handle_t *)&pump->poll, pump_on_close);
  uv_close((uv_handle_t *)&pump->idle, pump_on_close);
  uv_close((uv_handle_t *)&pump->timer, pump_on_close);
}

/* The eventfd counter is 8 bytes wide: librdkafka writes this payload as is. */
static const uint64_t pump_payload = 1;

/* ---------------------------------------------------------------- producer */

typedef struct gw_kafka_pending {
  gw_kafka_delivery_cb cb;
  void *opaque;
  struct gw_kafka_pending *prev, *next;
} gw_kafka_pending;

struct gw_kafka_producer {
  uv_loop_t *loop;
  rd_kafka_t *rk;
  rd_kafka_queue_t *mainq;
  const gw_log *log;
  gw_kafka_pump pump;
  gw_kafka_pending pending; /* list head: records awaiting their delivery report */
  size_t npending;
  bool all_brokers_down;
  char fatal[GW_KAFKA_FATAL_MAX]; /* the fatal error's reason; empty while there is none */
  gw_kafka_fatal_cb on_fatal;
  void *fatal_opaque;
  bool probe_running, probe_ok; /* metadata probe on the thread pool, see producer_probe */
  uv_work_t probe_work;
  bool closing, purged;
  uint64_t close_deadline_ms, purge_deadline_ms;
  uv_work_t destroy_work;
  void (*close_cb)(void *opaque);
  void *close_opaque;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  gw_kafka_producer *p = opaque;
  gw_kafka_pending *pd = m->_private;
  if (pd == NULL) {
    return;
  }
  pd->prev->next = pd->next;
  pd->next->prev = pd->prev;
  p->npending--;
  int status = 0;
  char reason[256] = "";
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    p->all_brokers_down = false;
  } else if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
    status = -ETIMEDOUT;
    snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(m->err));
  } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
             m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    /* Purged because the close timeout expired: the record was not confirmed in time. */
    status = -ETIMEDOUT;
    snprintf(reason, sizeof reason, "not delivered before close: %s", rd_kafka_err2str(m->err));
  } else if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
             m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
    status = -EMSGSIZE; /* this record will never fit: retrying cannot help */
    snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(m->err));
  } else if (m->err == RD_KAFKA_RESP_ERR_INVALID_RECORD ||
             m->err == RD_KAFKA_RESP_ERR_INVALID_MSG) {
    status = -EBADMSG; /* the broker refuses this record as it is */
    snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(m->err));
  } else {
    status = -EIO;
    snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(m->err));
  }
  pd->cb(pd->opaque, status, status == 0 ? NULL : reason, status == 0 ? m->partition : -1,
         status == 0 ? m->offset : -1);
  free(pd);
}

/*
 * Records the fatal error of rk as "<ERROR_NAME>: <librdkafka's reason>" in fatal (fatal_len
 * bytes, empty until then) and logs it, once. Returns true when this call recorded it, so the
 * caller tells its owner exactly once.
 */
static bool client_record_fatal(rd_kafka_t *rk, const gw_log *log, char *fatal, size_t fatal_len) {
  if (fatal[0] != '\0') {
    return false;
  }
  char why[512] = "";
  rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, why, sizeof why);
  snprintf(fatal, fatal_len, "%s: %s", rd_kafka_err2name(ferr),
           why[0] != '\0' ? why : rd_kafka_err2str(ferr));
  GW_LOG(log, GW_LOG_ERROR, "kafka fatal error: this client cannot go on",
         GW_LS("client", rd_kafka_name(rk)), GW_LS("error", rd_kafka_err2name(ferr)),
         GW_LS("reason", why));
  return true;
}

/* Logs an error event; a fatal one is recorded in fatal (see client_record_fatal), and the
 * return value says whether it was recorded now. */
static bool client_error_cb(rd_kafka_t *rk, int err, const char *reason, const gw_log *log,
                            bool *all_down, char *fatal, size_t fatal_len) {
  gw_log_level level = GW_LOG_WARN;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    return client_record_fatal(rk, log, fatal, fatal_len);
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    level = GW_LOG_ERROR;
    if (all_down != NULL) {
      *all_down = true;
    }
  }
  GW_LOG(log, level, "kafka error", GW_LS("client", rd_kafka_name(rk)),
         GW_LS("error", rd_kafka_err2name((rd_kafka_resp_err_t)err)), GW_LS("reason", reason));
  return false;
}

/*
 * librdkafka says when all brokers went down, but not when one is back. While down, a
 * Metadata request (blocking, so on the thread pool) is tried every second; its success
 * clears the flag, so readiness recovers even when nothing is being produced.
 */
#define GW_KAFKA_PROBE_INTERVAL_MS 1000

static void producer_probe_work(uv_work_t *w) {
  gw_kafka_producer *p = w->data;
  const struct rd_kafka_metadata *md = NULL;
  p->probe_ok = rd_kafka_metadata(p->rk, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (md != NULL) {
    rd_kafka_metadata_destroy(md);
  }
}

static void producer_probe_done(uv_work_t *w, int status) {
  gw_kafka_producer *p = w->data;
  p->probe_running = false;
  if (p->probe_ok && p->all_brokers_down) {
    p->all_brokers_down = false;
    GW_LOG(p->log, GW_LOG_INFO, "kafka brokers reachable again",
           GW_LS("client", rd_kafka_name(p->rk)));
  }
  if (!p->closing && !p->all_brokers_down) {
    uv_timer_stop(&p->pump.timer);
  }
}

static void producer_probe_tick(uv_timer_t *t) {
  gw_kafka_producer *p = ((gw_kafka_pump *)t->data)->self;
  if (!p->all_brokers_down) {
    uv_timer_stop(t);
    return;
  }
  if (!p->probe_running) {
    p->probe_running = true;
    p->probe_work.data = p;
    if (uv_queue_work(p->loop, &p->probe_work, producer_probe_work, producer_probe_done) != 0) {
      p->probe_running = false;
    }
  }
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  gw_kafka_producer *p = opaque;
  if (client_error_cb(rk, err, reason, p->log, &p->all_brokers_down, p->fatal, sizeof p->fatal)) {
    /* librdkafka purges the queued records now (their reports follow) and refuses new ones. */
    if (p->on_fatal != NULL) {
      p->on_fatal(p->fatal_opaque, p->fatal);
    }
    return;
  }
  /* The close driver owns the timer once close began. */
  if (p->all_brokers_down && !p->closing && !uv_is_active((uv_handle_t *)&p->pump.timer)) {
    uv_timer_start(&p->pump.timer, producer_probe_tick, GW_KAFKA_PROBE_INTERVAL_MS,
                   GW_KAFKA_PROBE_INTERVAL_MS);
  }
}

/* The log_cb of every client (defined after both client structs). */
static void client_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

static bool producer_serve(void *self) {
  gw_kafka_producer *p = self;
  /* rd_kafka_poll serves every operation queued when it is called; a few rounds catch what
   * arrives meanwhile, the idle handle the rest. */
  for (int i = 0; i < 4; i++) {
    if (rd_kafka_poll(p->rk, 0) == 0) {
      return true;
    }
  }
  return false;
}

static void producer_all_closed(void *self) {
  gw_kafka_producer *p = self;
  void (*cb)(void *) = p->close_cb;
  void *opaque = p->close_opaque;
  free(p);
  if (cb != NULL) {
    cb(opaque);
  }
}

int gw_kafka_producer_new(gw_kafka_producer **out, uv_loop_t *loop,
                          const gw_kafka_producer_config *cfg, char *err, size_t errlen) {
  *out = NULL;
  if (cfg->bootstrap == NULL || cfg->bootstrap[0] == '\0') {
    gw_errf(err, errlen, "kafka bootstrap servers are required");
    return -EINVAL;
  }
  gw_kafka_producer *p = calloc(1, sizeof *p);
  if (p == NULL) {
    abort();
  }
  p->loop = loop;
  p->log = cfg->log;
  p->on_fatal = cfg->on_fatal;
  p->fatal_opaque = cfg->fatal_opaque;
  p->pending.next = p->pending.prev = &p->pending;

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = conf_set(conf, "bootstrap.servers", cfg->bootstrap, err, errlen);
  if (rc == 0 && cfg->client_id != NULL && cfg->client_id[0] != '\0') {
    rc = conf_set(conf, "client.id", cfg->client_id, err, errlen);
  }
  /* Idempotence gives acks=all, ordered retries without duplicates within a session. */
  if (rc == 0) {
    rc = conf_set(conf, "enable.idempotence", "true", err, errlen);
  }
  if (rc == 0) {
    rc = conf_set(conf, "acks", "all", err, errlen);
  }
  if (rc == 0 && cfg->delivery_timeout_ms > 0) {
    rc = conf_set_u64(conf, "message.timeout.ms", cfg->delivery_timeout_ms, err, errlen);
  }
  if (rc == 0 && cfg->queue_max_messages > 0) {
    rc = conf_set_u64(conf, "queue.buffering.max.messages", cfg->queue_max_messages, err, errlen);
  }
  if (rc == 0) {
    rc = conf_set_u64(conf, "linger.ms", cfg->linger_ms, err, errlen);
  }
  /* Logs go to the main queue, so log_cb runs on the loop like every other callback. */
  if (rc == 0) {
    rc = conf_set(conf, "log.queue", "true", err, errlen);
  }
  if (rc == 0) {
    rc = conf_apply_properties(conf, cfg->properties, cfg->nproperties, producer_protected,
                               sizeof producer_protected / sizeof producer_protected[0], err,
                               errlen);
  }
  if (rc != 0) {
    rd_kafka_conf_destroy(conf);
    free(p);
    return rc;
  }
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
  rd_kafka_conf_set_error_cb(conf, producer_error_cb);
  rd_kafka_conf_set_log_cb(conf, client_log_cb);

  char rderr[512];
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
  if (p->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "kafka producer: %s", rderr);
    free(p);
    return -EINVAL;
  }
  rd_kafka_set_log_queue(p->rk, NULL);
  rc = pump_init(&p->pump, loop, producer_serve, p, producer_all_closed);
  if (rc != 0) {
    rd_kafka_destroy(p->rk);
    gw_errf(err, errlen, "kafka producer: %s", uv_strerror(rc));
    free(p);
    return rc;
  }
  p->mainq = rd_kafka_queue_get_main(p->rk);
  rd_kafka_queue_io_event_enable(p->mainq, p->pump.efd, &pump_payload, sizeof pump_payload);
  pump_start(&p->pump);
  /* Anything queued before the fd was attached would never signal it. */
  pump_run(&p->pump);
  *out = p;
  return 0;
}

int gw_kafka_produce(gw_kafka_producer *p, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const gw_kafka_header *headers,
                     size_t nheaders, gw_kafka_delivery_cb cb, void *opaque) {
  if (p->closing) {
    return -ESHUTDOWN;
  }
  if (p->fatal[0] != '\0') {
    return -EIO; /* logged once, when it happened */
  }
  if (topic == NULL || topic[0] == '\0' || cb == NULL) {
    return -EINVAL;
  }
  gw_kafka_pending *pd = malloc(sizeof *pd);
  if (pd == NULL) {
    abort();
  }
  pd->cb = cb;
  pd->opaque = opaque;
  rd_kafka_headers_t *hdrs = NULL;
  if (nheaders > 0) {
    hdrs = rd_kafka_headers_new(nheaders);
    for (size_t i = 0; i < nheaders; i++) {
      rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                          (ssize_t)headers[i].value_len);
    }
  }
  rd_kafka_resp_err_t e;
  if (hdrs != NULL) {
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(pd),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  } else {
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(pd),
                          RD_KAFKA_V_END);
  }
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    /* On failure the headers stay ours (rd_kafka_producev docs). */
    if (hdrs != NULL) {
      rd_kafka_headers_destroy(hdrs);
    }
    free(pd);
    switch (e) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return -ENOBUFS;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return -EMSGSIZE;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return -EINVAL;
    default:
      GW_LOG(p->log, GW_LOG_ERROR, "kafka produce failed", GW_LS("topic", topic),
             GW_LS("error", rd_kafka_err2name(e)));
      return -EIO;
    }
  }
  pd->next = &p->pending;
  pd->prev = p->pending.prev;
  p->pending.prev->next = pd;
  p->pending.prev = pd;
  p->npending++;
  return 0;
}

size_t gw_kafka_producer_queue_len(const gw_kafka_producer *p) {
  return p->npending;
}

bool gw_kafka_producer_connected(const gw_kafka_producer *p) {
  if (p->all_brokers_down || p->closing || p->fatal[0] != '\0') {
    return false;
  }
  /* The cluster id is known once a Metadata response arrived; timeout 0 does not block. */
  char *id = rd_kafka_clusterid(p->rk, 0);
  if (id != NULL) {
    rd_kafka_mem_free(p->rk, id);
    return true;
  }
  return rd_kafka_controllerid(p->rk, 0) >= 0;
}

const char *gw_kafka_producer_fatal(const gw_kafka_producer *p) {
  return p->fatal[0] != '\0' ? p->fatal : NULL;
}

static void producer_destroy_work(uv_work_t *w) {
  gw_kafka_producer *p = w->data;
  rd_kafka_destroy(p->rk);
}

static void producer_destroy_done(uv_work_t *w, int status) {
  gw_kafka_producer *p = w->data;
  p->rk = NULL;
  /* librdkafka no longer reports anything: fail what it did not report, so every callback
   * is called exactly once. */
  while (p->pending.next != &p->pending) {
    gw_kafka_pending *pd = p->pending.next;
    pd->prev->next = pd->next;
    pd->next->prev = pd->prev;
    p->npending--;
    pd->cb(pd->opaque, -ETIMEDOUT, "not delivered before close", -1, -1);
    free(pd);
  }
  pump_close(&p->pump);
}

static void producer_finish_close(gw_kafka_producer *p) {
  uv_timer_stop(&p->pump.timer);
  uv_idle_stop(&p->pump.idle);
  uv_poll_stop(&p->pump.poll);
  rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
  rd_kafka_queue_destroy(p->mainq);
  p->mainq = NULL;
  p->destroy_work.data = p;
  if (uv_queue_work(p->loop, &p->destroy_work, producer_destroy_work, producer_destroy_done) != 0) {
    producer_destroy_work(&p->destroy_work);
    producer_destroy_done(&p->destroy_work, 0);
  }
}

static void producer_close_tick(uv_timer_t *t) {
  gw_kafka_producer *p = ((gw_kafka_pump *)t->data)->self;
  producer_serve(p);
  if (p->probe_running) {
    return; /* the probe uses the handle: destroy only after it returned */
  }
  if (p->npending == 0) {
    producer_finish_close(p);
    return;
  }
  uint64_t now = uv_now(p->loop);
  if (!p->purged && now >= p->close_deadline_ms) {
    GW_LOG(p->log, GW_LOG_WARN, "kafka producer close timed out, purging",
           GW_LI("outstanding", p->npending));
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    p->purged = true;
    p->purge_deadline_ms = now + GW_KAFKA_PURGE_GRACE_MS;
  } else if (p->purged && now >= p->purge_deadline_ms) {
    producer_finish_close(p);
  }
}

void gw_kafka_producer_close(gw_kafka_producer *p, uint64_t timeout_ms,
                             void (*close_cb)(void *opaque), void *opaque) {
  if (p->closing) {
    return;
  }
  p->closing = true;
  p->close_cb = close_cb;
  p->close_opaque = opaque;
  p->close_deadline_ms = uv_now(p->loop) + timeout_ms;
  uv_timer_start(&p->pump.timer, producer_close_tick, 0, GW_KAFKA_CLOSE_TICK_MS);
}

/* ---------------------------------------------------------------- consumer */

/*
 * What the consumer knows of one assigned partition, to see records skipped (gw_kafka.h, "Lost
 * records"). The committed offset is asked when the partition is assigned; the answer may come
 * before or after the first record, and is compared with that record either way.
 */
typedef enum committed_state {
  COMMITTED_ASKING, /* the query runs */
  COMMITTED_KNOWN,  /* committed holds the group's offset */
  COMMITTED_NONE,   /* nothing committed (a new group), or the query failed: no check */
} committed_state;

typedef struct gw_kafka_tracked {
  char *topic;
  int32_t partition;
  int64_t next;  /* offset expected next: the last delivered + 1; -1 before the first record */
  int64_t first; /* the first offset delivered since the assignment; -1 before */
  int64_t committed;
  committed_state committed_state;
  uint64_t query; /* serial of the query that answers for this assignment */
} gw_kafka_tracked;

struct gw_kafka_consumer {
  uv_loop_t *loop;
  const gw_log *log;
  rd_kafka_t *rk;
  rd_kafka_t *dying_rk;     /* being destroyed on the thread pool: no more calls */
  rd_kafka_queue_t *cq;     /* the consumer queue (main queue forwarded into it) */
  rd_kafka_queue_t *closeq; /* where close forwards everything */
  gw_kafka_pump pump;
  gw_kafka_consumer_handlers h;
  void *opaque;
  bool assigned, paused, closing, closed_handlers;
  /* rd_kafka_consumer_close_queue refused (after a fatal error): destroy without leaving. */
  bool close_refused;
  char fatal[GW_KAFKA_FATAL_MAX];
  gw_kafka_tracked *tracked; /* assigned partitions, ntracked of them */
  size_t ntracked, cap_tracked, last_tracked;
  uint64_t query_serial;
  size_t queries_running; /* committed-offset queries on the thread pool (they use rk) */
  uint64_t records_lost;
  gw_metric_family *m_lost; /* {topic,partition}, or NULL */
  gw_metric_family *m_lag;  /* goodwill_kafka_consumer_lag{topic,partition}, or NULL */
  uv_work_t destroy_work;
  void (*close_cb)(void *opaque);
  void *close_opaque;
};

/* With log.queue=true this runs on the loop, from our polls, like every other callback. */
static void client_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  void *opaque = rd_kafka_opaque(rk);
  const gw_log *log = rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? ((gw_kafka_producer *)opaque)->log
                                                             : ((gw_kafka_consumer *)opaque)->log;
  if (log == NULL) {
    return;
  }
  GW_LOG(log, syslog_to_gw(level), "librdkafka", GW_LS("client", rd_kafka_name(rk)),
         GW_LS("facility", fac), GW_LS("text", buf));
}

/* The consumer's fatal error, from whichever path it came: record, log and tell, once. */
static void consumer_fatal(gw_kafka_consumer *c) {
  if (client_record_fatal(c->rk, c->log, c->fatal, sizeof c->fatal) && c->h.on_fatal != NULL &&
      !c->closed_handlers) {
    c->h.on_fatal(c->opaque, c->fatal);
  }
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  gw_kafka_consumer *c = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    consumer_fatal(c);
    return;
  }
  client_error_cb(rk, err, reason, c->log, NULL, c->fatal, sizeof c->fatal);
}

/* ---------------------------------------------------------------- records skipped */

#define GW_KAFKA_COMMITTED_TIMEOUT_MS 5000

static gw_kafka_tracked *tracked_find(gw_kafka_consumer *c, const char *topic, int32_t partition) {
  /* Records come in runs of one partition: try the last one first. */
  if (c->last_tracked < c->ntracked) {
    gw_kafka_tracked *t = &c->tracked[c->last_tracked];
    if (t->partition == partition && strcmp(t->topic, topic) == 0) {
      return t;
    }
  }
  for (size_t i = 0; i < c->ntracked; i++) {
    gw_kafka_tracked *t = &c->tracked[i];
    if (t->partition == partition && strcmp(t->topic, topic) == 0) {
      c->last_tracked = i;
      return t;
    }
  }
  return NULL;
}

/* The partition's entry, reset for a new assignment (created when missing). */
static gw_kafka_tracked *tracked_reset(gw_kafka_consumer *c, const char *topic, int32_t partition) {
  gw_kafka_tracked *t = tracked_find(c, topic, partition);
  if (t == NULL) {
    if (c->ntracked == c->cap_tracked) {
      c->cap_tracked = c->cap_tracked > 0 ? c->cap_tracked * 2 : 16;
      c->tracked = realloc(c->tracked, c->cap_tracked * sizeof *c->tracked);
      if (c->tracked == NULL) {
        abort();
      }
    }
    t = &c->tracked[c->ntracked++];
    t->topic = strdup(topic);
    if (t->topic == NULL) {
      abort();
    }
    t->partition = partition;
    if (c->m_lost != NULL) {
      /* The series exists from the assignment on, at 0, so that the first loss is an increase
       * a rate() or increase() can see, not a series appearing. */
      char part[16];
      snprintf(part, sizeof part, "%d", (int)partition);
      const char *labels[2] = {topic, part};
      gw_metrics_series(c->m_lost, labels);
    }
  }
  t->next = -1;
  t->first = -1;
  t->committed = -1;
  t->committed_state = COMMITTED_NONE;
  t->query = 0;
  return t;
}

/* A partition no longer assigned here shows no lag (NaN, not its last value). */
static void lag_forget(gw_kafka_consumer *c, const gw_kafka_tracked *t) {
  if (c->m_lag != NULL) {
    char part[16];
    snprintf(part, sizeof part, "%d", (int)t->partition);
    const char *labels[2] = {t->topic, part};
    gw_metric_set(gw_metrics_series(c->m_lag, labels), NAN);
  }
}

static void tracked_remove(gw_kafka_consumer *c, const char *topic, int32_t partition) {
  gw_kafka_tracked *t = tracked_find(c, topic, partition);
  if (t != NULL) {
    lag_forget(c, t);
    free(t->topic);
    *t = c->tracked[--c->ntracked];
  }
}

static void tracked_clear(gw_kafka_consumer *c) {
  for (size_t i = 0; i < c->ntracked; i++) {
    lag_forget(c, &c->tracked[i]);
    free(c->tracked[i].topic);
  }
  c->ntracked = 0;
}

/* Records first..last of t's partition were skipped without being read: say so and count. */
static void report_lost(gw_kafka_consumer *c, const gw_kafka_tracked *t, int64_t first,
                        int64_t last, const char *why) {
  uint64_t n = (uint64_t)(last - first + 1);
  c->records_lost += n;
  GW_LOG(c->log, GW_LOG_ERROR, "kafka records lost: skipped without being read",
         GW_LS("topic", t->topic), GW_LI("partition", t->partition), GW_LI("first_offset", first),
         GW_LI("last_offset", last), GW_LI("count", (long long)n), GW_LS("reason", why));
  if (c->m_lost != NULL) {
    char part[16];
    snprintf(part, sizeof part, "%d", (int)t->partition);
    const char *labels[2] = {t->topic, part};
    gw_metric_add(gw_metrics_series(c->m_lost, labels), (double)n);
  }
}

static const char why_reset[] =
    "the partition's log no longer held them when they were to be read (retention, or "
    "goodwill-devkafka's per-partition limit): the position was out of range and librdkafka "
    "reset it to the earliest offset";

/* The first record after an assignment against the group's committed offset. */
static void tracked_check_first(gw_kafka_consumer *c, const gw_kafka_tracked *t) {
  if (t->committed_state == COMMITTED_KNOWN && t->first >= 0 && t->committed >= 0 &&
      t->first > t->committed) {
    report_lost(c, t, t->committed, t->first - 1, why_reset);
  }
}

/* A record is about to be delivered: compare its offset with the one expected. */
static void tracked_deliver(gw_kafka_consumer *c, const char *topic, int32_t partition,
                            int64_t offset) {
  gw_kafka_tracked *t = tracked_find(c, topic, partition);
  if (t == NULL) {
    t = tracked_reset(c, topic, partition); /* assigned without our knowing: no committed check */
  }
  if (t->next >= 0) {
    if (offset > t->next) {
      report_lost(c, t, t->next, offset - 1, why_reset);
    }
  } else {
    t->first = offset;
    tracked_check_first(c, t);
  }
  /* Also after a step back (a re-read), the next record follows this one. */
  t->next = offset + 1;
}

typedef struct committed_query {
  uv_work_t work;
  gw_kafka_consumer *c;
  rd_kafka_topic_partition_list_t *parts;
  rd_kafka_resp_err_t err;
  uint64_t serial;
} committed_query;

/* Thread pool: rd_kafka_committed blocks until the group coordinator answered. */
static void committed_query_work(uv_work_t *w) {
  committed_query *q = w->data;
  q->err = rd_kafka_committed(q->c->rk, q->parts, GW_KAFKA_COMMITTED_TIMEOUT_MS);
}

static void committed_query_done(uv_work_t *w, int status) {
  committed_query *q = w->data;
  gw_kafka_consumer *c = q->c;
  c->queries_running--;
  for (int i = 0; i < q->parts->cnt; i++) {
    const rd_kafka_topic_partition_t *e = &q->parts->elems[i];
    gw_kafka_tracked *t = tracked_find(c, e->topic, e->partition);
    if (t == NULL || t->query != q->serial || t->committed_state != COMMITTED_ASKING) {
      continue; /* revoked meanwhile, or assigned again with a query of its own */
    }
    rd_kafka_resp_err_t err = q->err != RD_KAFKA_RESP_ERR_NO_ERROR ? q->err : e->err;
    if (status != 0 || err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      t->committed_state = COMMITTED_NONE;
      GW_LOG(c->log, GW_LOG_WARN,
             "kafka committed offset unknown: records skipped before the first one read "
             "cannot be seen",
             GW_LS("topic", t->topic), GW_LI("partition", t->partition),
             GW_LS("error", rd_kafka_err2name(status != 0 ? RD_KAFKA_RESP_ERR__DESTROY : err)));
      continue;
    }
    t->committed = e->offset;
    t->committed_state = e->offset >= 0 ? COMMITTED_KNOWN : COMMITTED_NONE;
    tracked_check_first(c, t);
  }
  rd_kafka_topic_partition_list_destroy(q->parts);
  free(q);
}

/* Partitions newly assigned: reset their tracking and ask for the group's committed offsets. */
static void tracked_assign(gw_kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts) {
  if (parts == NULL || parts->cnt == 0) {
    return;
  }
  uint64_t serial = ++c->query_serial;
  rd_kafka_topic_partition_list_t *ask = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; i++) {
    gw_kafka_tracked *t = tracked_reset(c, parts->elems[i].topic, parts->elems[i].partition);
    t->committed_state = COMMITTED_ASKING;
    t->query = serial;
    rd_kafka_topic_partition_list_add(ask, parts->elems[i].topic, parts->elems[i].partition);
  }
  committed_query *q = calloc(1, sizeof *q);
  if (q == NULL) {
    abort();
  }
  q->c = c;
  q->parts = ask;
  q->serial = serial;
  q->work.data = q;
  if (uv_queue_work(c->loop, &q->work, committed_query_work, committed_query_done) != 0) {
    for (int i = 0; i < ask->cnt; i++) {
      gw_kafka_tracked *t = tracked_find(c, ask->elems[i].topic, ask->elems[i].partition);
      if (t != NULL) {
        t->committed_state = COMMITTED_NONE;
      }
    }
    rd_kafka_topic_partition_list_destroy(ask);
    free(q);
    return;
  }
  c->queries_running++;
}

static void tracked_revoke(gw_kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                           bool all) {
  if (all) {
    tracked_clear(c);
    return;
  }
  for (int i = 0; parts != NULL && i < parts->cnt; i++) {
    tracked_remove(c, parts->elems[i].topic, parts->elems[i].partition);
  }
}

static void consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  gw_kafka_consumer *c = opaque;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return;
  }
  /* Commits are rejected during a rebalance; the next auto-commit retries, and a replay is
   * harmless downstream (record ids dedupe). */
  GW_LOG(c->log, GW_LOG_WARN, "kafka offset commit failed", GW_LS("error", rd_kafka_err2name(err)));
}

/* Converts a librdkafka partition list into ours for the handlers (borrowed strings). */
static void call_partition_handler(gw_kafka_consumer *c,
                                   void (*fn)(void *, const gw_kafka_partition *, size_t),
                                   const rd_kafka_topic_partition_list_t *parts) {
  if (fn == NULL || c->closed_handlers) {
    return;
  }
  size_t n = parts != NULL ? (size_t)parts->cnt : 0;
  gw_kafka_partition *v = calloc(n > 0 ? n : 1, sizeof *v);
  if (v == NULL) {
    abort();
  }
  for (size_t i = 0; i < n; i++) {
    v[i].topic = parts->elems[i].topic;
    v[i].partition = parts->elems[i].partition;
  }
  fn(c->opaque, v, n);
  free(v);
}

static void consumer_log_assignment_error(gw_kafka_consumer *c, const char *what,
                                          rd_kafka_error_t *error) {
  if (error != NULL) {
    GW_LOG(c->log, GW_LOG_ERROR, "kafka assignment change failed", GW_LS("op", what),
           GW_LS("reason", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  }
}

static void consumer_rebalance(gw_kafka_consumer *c, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts) {
  rd_kafka_t *rk = c->rk;
  bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  int n = parts != NULL ? parts->cnt : 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    GW_LOG(c->log, GW_LOG_INFO, "kafka partitions assigned", GW_LI("count", n),
           GW_LB("cooperative", cooperative));
    /* Asked before the assignment starts fetching, so no commit of ours can come first. */
    tracked_assign(c, parts);
    call_partition_handler(c, c->h.on_assign, parts);
    if (cooperative) {
      consumer_log_assignment_error(c, "incremental_assign",
                                    rd_kafka_incremental_assign(rk, parts));
    } else {
      rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        GW_LOG(c->log, GW_LOG_ERROR, "kafka assign failed", GW_LS("error", rd_kafka_err2name(e)));
      }
    }
    if (c->paused && n > 0) {
      rd_kafka_pause_partitions(rk, parts);
    }
    c->assigned = true;
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    GW_LOG(c->log, GW_LOG_INFO, "kafka partitions revoked", GW_LI("count", n),
           GW_LB("lost", rd_kafka_assignment_lost(rk) != 0), GW_LB("cooperative", cooperative));
    call_partition_handler(c, c->h.on_revoke, parts);
    tracked_revoke(c, parts, !cooperative);
    if (cooperative) {
      consumer_log_assignment_error(c, "incremental_unassign",
                                    rd_kafka_incremental_unassign(rk, parts));
    } else {
      rd_kafka_assign(rk, NULL);
      c->assigned = false;
    }
  } else {
    GW_LOG(c->log, GW_LOG_ERROR, "kafka rebalance error", GW_LS("error", rd_kafka_err2name(err)));
    call_partition_handler(c, c->h.on_revoke, parts);
    tracked_revoke(c, parts, !cooperative);
    if (cooperative) {
      consumer_log_assignment_error(c, "incremental_unassign",
                                    rd_kafka_incremental_unassign(rk, parts));
    } else {
      rd_kafka_assign(rk, NULL);
    }
    c->assigned = false;
  }
}

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque) {
  consumer_rebalance(opaque, err, parts);
}

static void consumer_deliver(gw_kafka_consumer *c, rd_kafka_message_t *m) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      /* A group consumer's fatal error comes this way, not through error_cb. */
      consumer_fatal(c);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      char *reason = rd_kafka_message_errstr(m) != NULL ? (char *)rd_kafka_message_errstr(m) : "";
      GW_LOG(c->log, GW_LOG_WARN, "kafka consumer error",
             GW_LS("topic", m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : ""),
             GW_LI("partition", m->partition), GW_LS("error", rd_kafka_err2name(m->err)),
             GW_LS("reason", reason));
    }
    return;
  }
  if (c->closing || c->h.on_message == NULL) {
    /* Not stored, so not committed: the next owner of the partition reads it again. */
    return;
  }
  tracked_deliver(c, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(m, &tstype);
  gw_kafka_message gm = {
      .topic = rd_kafka_topic_name(m->rkt),
      .partition = m->partition,
      .offset = m->offset,
      .key = m->key,
      .key_len = m->key_len,
      .value = m->payload,
      .value_len = m->len,
      .timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
  };
  rd_kafka_headers_t *hdrs = NULL;
  gw_kafka_header *hv = NULL;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL) {
    size_t n = rd_kafka_header_cnt(hdrs);
    hv = calloc(n > 0 ? n : 1, sizeof *hv);
    if (hv == NULL) {
      abort();
    }
    for (size_t i = 0; i < n; i++) {
      const char *name = NULL;
      const void *value = NULL;
      size_t size = 0;
      if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        break;
      }
      hv[gm.nheaders].name = name;
      hv[gm.nheaders].value = value != NULL ? value : "";
      hv[gm.nheaders].value_len = value != NULL ? size : 0;
      gm.nheaders++;
    }
    gm.headers = hv;
  }
  c->h.on_message(c->opaque, &gm);
  free(hv);
}

static bool consumer_serve(void *self);

static void consumer_all_closed(void *self) {
  gw_kafka_consumer *c = self;
  void (*cb)(void *) = c->close_cb;
  void *opaque = c->close_opaque;
  tracked_clear(c);
  free(c->tracked);
  free(c);
  if (cb != NULL) {
    cb(opaque);
  }
}

/*
 * librdkafka counts a consumer as stuck, leaves the group and rebalances when the application
 * has not polled for max.poll.interval.ms (300 s). The eventfd only signals new events, so on
 * a quiet topic nothing would poll: this tick polls (and serves what is queued) regardless.
 * Close takes the timer over with its own tick.
 */
/* Every assigned partition's lag: records in the log (the high watermark librdkafka last
 * fetched) not yet read by this consumer (its position). Cached values: nothing is asked of
 * the brokers. Partitions no longer assigned show NaN, so a stale lag never fires an alert. */
static void consumer_update_lag(gw_kafka_consumer *c) {
  if (c->m_lag == NULL || c->rk == NULL || c->fatal[0] != '\0') {
    return;
  }
  for (size_t i = 0; i < c->ntracked; i++) {
    gw_kafka_tracked *t = &c->tracked[i];
    char part[16];
    snprintf(part, sizeof part, "%d", (int)t->partition);
    const char *labels[2] = {t->topic, part};
    int64_t lo = -1, hi = -1;
    double lag = NAN;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t->topic, t->partition);
    if (rd_kafka_get_watermark_offsets(c->rk, t->topic, t->partition, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0 && rd_kafka_position(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      int64_t pos = l->elems[0].offset;
      /* Before the first fetch the position is not known: from the committed offset, else
       * from the log start (a new group reads from the earliest record). */
      if (pos < 0) {
        pos = t->committed_state == COMMITTED_KNOWN ? t->committed : lo;
      }
      if (pos >= 0) {
        lag = (double)(hi > pos ? hi - pos : 0);
      }
    }
    rd_kafka_topic_partition_list_destroy(l);
    gw_metric_set(gw_metrics_series(c->m_lag, labels), lag);
  }
}

static void consumer_keepalive_tick(uv_timer_t *t) {
  gw_kafka_pump *pump = t->data;
  consumer_update_lag(pump->self);
  pump_run(pump);
}

static int consumer_register_metrics(gw_kafka_consumer *c, const gw_kafka_consumer_config *cfg,
                                     char *err, size_t errlen) {
  static const char *const labels[] = {"topic", "partition"};
  if (cfg->metrics_prefix == NULL || cfg->metrics_prefix[0] == '\0') {
    gw_errf(err, errlen, "kafka consumer: metrics need a metrics_prefix");
    return -EINVAL;
  }
  char name[128];
  snprintf(name, sizeof name, "%s_records_lost_total", cfg->metrics_prefix);
  gw_metric_family_def d = {
      .name = name,
      .help = "Records skipped without being read, by topic and partition: the log no longer "
              "held them (retention, or goodwill-devkafka's per-partition limit) and the "
              "position was reset past them. Each skip is also logged as an error.",
      .type = GW_METRIC_COUNTER,
      .label_names = labels,
      .nlabels = 2,
  };
  int rc = gw_metrics_register(cfg->metrics, &d, &c->m_lost);
  if (rc != 0) {
    gw_errf(err, errlen, "kafka consumer: cannot register %s (%s)", name,
            rc == -EEXIST ? "already registered" : "invalid name");
    return rc;
  }
  /* One name for every goodwill consumer (dashboards and autoscalers join on it); a daemon with
   * several consumers shares the family. */
  c->m_lag = gw_metrics_family(cfg->metrics, "goodwill_kafka_consumer_lag");
  if (c->m_lag == NULL) {
    gw_metric_family_def ld = {
        .name = "goodwill_kafka_consumer_lag",
        .help = "Records of an assigned partition not yet read by this consumer (high watermark "
                "minus position; NaN once the partition is no longer assigned here).",
        .type = GW_METRIC_GAUGE,
        .label_names = labels,
        .nlabels = 2,
    };
    rc = gw_metrics_register(cfg->metrics, &ld, &c->m_lag);
  }
  return rc;
}

int gw_kafka_consumer_new(gw_kafka_consumer **out, uv_loop_t *loop,
                          const gw_kafka_consumer_config *cfg,
                          const gw_kafka_consumer_handlers *handlers, void *opaque, char *err,
                          size_t errlen) {
  *out = NULL;
  if (cfg->bootstrap == NULL || cfg->bootstrap[0] == '\0') {
    gw_errf(err, errlen, "kafka bootstrap servers are required");
    return -EINVAL;
  }
  if (cfg->group_id == NULL || cfg->group_id[0] == '\0') {
    gw_errf(err, errlen, "kafka consumer group id is required");
    return -EINVAL;
  }
  if (cfg->ntopics == 0) {
    gw_errf(err, errlen, "kafka consumer needs at least one topic");
    return -EINVAL;
  }
  gw_kafka_consumer *c = calloc(1, sizeof *c);
  if (c == NULL) {
    abort();
  }
  c->loop = loop;
  c->log = cfg->log;
  c->h = *handlers;
  c->opaque = opaque;

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = conf_set(conf, "bootstrap.servers", cfg->bootstrap, err, errlen);
  if (rc == 0) {
    rc = conf_set(conf, "group.id", cfg->group_id, err, errlen);
  }
  if (rc == 0 && cfg->client_id != NULL && cfg->client_id[0] != '\0') {
    rc = conf_set(conf, "client.id", cfg->client_id, err, errlen);
  }
  /* At least once: only offsets the caller stored (effects durable) are ever committed. */
  if (rc == 0) {
    rc = conf_set(conf, "enable.auto.offset.store", "false", err, errlen);
  }
  if (rc == 0) {
    rc = conf_set(conf, "enable.auto.commit", "true", err, errlen);
  }
  if (rc == 0 && cfg->commit_interval_ms > 0) {
    rc = conf_set_u64(conf, "auto.commit.interval.ms", cfg->commit_interval_ms, err, errlen);
  }
  if (rc == 0) {
    rc = conf_set(conf, "auto.offset.reset", "earliest", err, errlen);
  }
  if (rc == 0 && cfg->session_timeout_ms > 0) {
    rc = conf_set_u64(conf, "session.timeout.ms", cfg->session_timeout_ms, err, errlen);
    /* The heartbeat must stay well below the session timeout (librdkafka default 3 s). */
    uint64_t hb = cfg->session_timeout_ms / 3;
    if (rc == 0 && hb < 3000) {
      rc = conf_set_u64(conf, "heartbeat.interval.ms", hb > 0 ? hb : 1, err, errlen);
    }
  }
  if (rc == 0) {
    rc = conf_set(conf, "log.queue", "true", err, errlen);
  }
  if (rc == 0) {
    rc = conf_apply_properties(conf, cfg->properties, cfg->nproperties, consumer_protected,
                               sizeof consumer_protected / sizeof consumer_protected[0], err,
                               errlen);
  }
  /* Registered once the configuration is known to be good, so a refused one leaves the
   * registry as it was. */
  if (rc == 0 && cfg->metrics != NULL) {
    rc = consumer_register_metrics(c, cfg, err, errlen);
  }
  if (rc != 0) {
    rd_kafka_conf_destroy(conf);
    free(c);
    return rc;
  }
  rd_kafka_conf_set_opaque(conf, c);
  rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);
  rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
  rd_kafka_conf_set_log_cb(conf, client_log_cb);

  char rderr[512];
  c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
  if (c->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    gw_errf(err, errlen, "kafka consumer: %s", rderr);
    free(c);
    return -EINVAL;
  }
  rd_kafka_set_log_queue(c->rk, NULL);
  rd_kafka_poll_set_consumer(c->rk);

  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)cfg->ntopics);
  for (size_t i = 0; i < cfg->ntopics; i++) {
    rd_kafka_topic_partition_list_add(topics, cfg->topics[i], RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    gw_errf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
    rd_kafka_destroy(c->rk);
    free(c);
    return -EINVAL;
  }
  rc = pump_init(&c->pump, loop, consumer_serve, c, consumer_all_closed);
  if (rc != 0) {
    gw_errf(err, errlen, "kafka consumer: %s", uv_strerror(rc));
    rd_kafka_destroy(c->rk);
    free(c);
    return rc;
  }
  c->cq = rd_kafka_queue_get_consumer(c->rk);
  rd_kafka_queue_io_event_enable(c->cq, c->pump.efd, &pump_payload, sizeof pump_payload);
  pump_start(&c->pump);
  uv_timer_start(&c->pump.timer, consumer_keepalive_tick, GW_KAFKA_KEEPALIVE_MS,
                 GW_KAFKA_KEEPALIVE_MS);
  pump_run(&c->pump);
  *out = c;
  return 0;
}

/* Serves the close queue: rebalance events (handled like the callback would), logs, errors;
 * fetched messages are dropped (not stored, so read again by the next owner). */
static bool consumer_serve_closeq(gw_kafka_consumer *c) {
  for (int i = 0; i < GW_KAFKA_DRAIN_BUDGET; i++) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(c->closeq, 0);
    if (ev == NULL) {
      return true;
    }
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_REBALANCE:
      consumer_rebalance(c, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
      break;
    case RD_KAFKA_EVENT_ERROR:
      if (rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__FATAL) {
        consumer_fatal(c);
      } else {
        client_error_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), c->log,
                        NULL, c->fatal, sizeof c->fatal);
      }
      break;
    case RD_KAFKA_EVENT_LOG: {
      const char *fac = "", *text = "";
      int level = 6;
      if (rd_kafka_event_log(ev, &fac, &text, &level) == 0) {
        client_log_cb(c->rk, level, fac, text);
      }
      break;
    }
    case RD_KAFKA_EVENT_OFFSET_COMMIT:
      consumer_commit_cb(c->rk, rd_kafka_event_error(ev), NULL, c);
      break;
    default:
      break;
    }
    rd_kafka_event_destroy(ev);
  }
  return false;
}

static bool consumer_serve(void *self) {
  gw_kafka_consumer *c = self;
  if (c->rk == NULL) {
    return true;
  }
  if (c->closeq != NULL) {
    return consumer_serve_closeq(c);
  }
  for (int i = 0; i < GW_KAFKA_DRAIN_BUDGET; i++) {
    /* Rebalance, commit, error and log callbacks are served inside this call. */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
    if (m == NULL) {
      return true;
    }
    consumer_deliver(c, m);
    rd_kafka_message_destroy(m);
    if (c->closeq != NULL || c->rk == NULL) {
      /* A handler began closing: the rest is served by the close path. */
      return false;
    }
  }
  return false;
}

int gw_kafka_consumer_store(gw_kafka_consumer *c, const char *topic, int32_t partition,
                            int64_t next_offset) {
  if (c->rk == NULL || c->fatal[0] != '\0') {
    return -ESRCH; /* after a fatal error nothing can be committed any more */
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
  rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    e = l->elems[0].err;
  }
  rd_kafka_topic_partition_list_destroy(l);
  switch (e) {
  case RD_KAFKA_RESP_ERR_NO_ERROR:
    return 0;
  case RD_KAFKA_RESP_ERR__STATE:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    return -ESRCH;
  case RD_KAFKA_RESP_ERR__INVALID_ARG:
    return -EINVAL;
  default:
    return -EIO;
  }
}

int gw_kafka_consumer_committed(gw_kafka_consumer *c, const char *topic, int32_t partition,
                                int64_t *out) {
  gw_kafka_tracked *t = tracked_find(c, topic, partition);
  if (t == NULL) {
    return -ESRCH;
  }
  switch (t->committed_state) {
  case COMMITTED_KNOWN:
    *out = t->committed;
    return 0;
  case COMMITTED_ASKING:
    return -EAGAIN;
  default:
    return -ENOENT;
  }
}

int gw_kafka_consumer_seek(gw_kafka_consumer *c, const char *topic, int32_t partition,
                           int64_t offset) {
  if (c->rk == NULL || c->fatal[0] != '\0') {
    return -ESRCH;
  }
  if (offset < 0 && offset != GW_KAFKA_OFFSET_BEGINNING) {
    return -EINVAL;
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset =
      offset == GW_KAFKA_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : offset;
  /* A timeout of 0 makes the seek asynchronous: records fetched before it are discarded by
   * librdkafka (their fetch version is older), the next one delivered is at offset. */
  rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 0);
  rd_kafka_resp_err_t e = error != NULL ? rd_kafka_error_code(error) : l->elems[0].err;
  if (error != NULL) {
    rd_kafka_error_destroy(error);
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    gw_kafka_tracked *t = tracked_find(c, topic, partition);
    if (t != NULL) {
      t->next = -1; /* a step back, not a loss: the next record starts over */
      t->committed_state = COMMITTED_NONE;
    }
    return 0;
  }
  return e == RD_KAFKA_RESP_ERR__STATE || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ? -ESRCH : -EIO;
}

int gw_kafka_consumer_commit(gw_kafka_consumer *c) {
  if (c->rk == NULL || c->closing) {
    return -ESHUTDOWN;
  }
  if (c->fatal[0] != '\0') {
    return -EIO; /* logged when it happened */
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 1);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return 0;
  }
  GW_LOG(c->log, GW_LOG_WARN, "kafka commit failed", GW_LS("error", rd_kafka_err2name(e)));
  return -EIO;
}

static void consumer_set_paused(gw_kafka_consumer *c, bool pause) {
  c->paused = pause;
  if (c->rk == NULL) {
    return;
  }
  rd_kafka_topic_partition_list_t *parts = NULL;
  if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL) {
    return;
  }
  if (parts->cnt > 0) {
    if (pause) {
      rd_kafka_pause_partitions(c->rk, parts);
    } else {
      rd_kafka_resume_partitions(c->rk, parts);
    }
  }
  rd_kafka_topic_partition_list_destroy(parts);
}

void gw_kafka_consumer_pause(gw_kafka_consumer *c) {
  if (!c->paused) {
    consumer_set_paused(c, true);
  }
}

void gw_kafka_consumer_resume(gw_kafka_consumer *c) {
  if (c->paused) {
    consumer_set_paused(c, false);
    /* Resumed partitions fetch again; anything already queued is served now. */
    pump_run(&c->pump);
  }
}

bool gw_kafka_consumer_assigned(const gw_kafka_consumer *c) {
  return c->assigned && !c->closing;
}

const char *gw_kafka_consumer_fatal(const gw_kafka_consumer *c) {
  return c->fatal[0] != '\0' ? c->fatal : NULL;
}

uint64_t gw_kafka_consumer_records_lost(const gw_kafka_consumer *c) {
  return c->records_lost;
}

static void consumer_destroy_work(uv_work_t *w) {
  gw_kafka_consumer *c = w->data;
  if (c->fatal[0] != '\0' || c->close_refused) {
    /* After a fatal error the plain destroy tries to close the consumer again and never
     * returns (librdkafka 2.0.2, checked): destroy without the close. */
    rd_kafka_destroy_flags(c->dying_rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  } else {
    rd_kafka_destroy(c->dying_rk);
  }
}

static void consumer_destroy_done(uv_work_t *w, int status) {
  gw_kafka_consumer *c = w->data;
  c->dying_rk = NULL;
  pump_close(&c->pump);
}

static void consumer_finish_close(gw_kafka_consumer *c) {
  uv_timer_stop(&c->pump.timer);
  uv_idle_stop(&c->pump.idle);
  uv_poll_stop(&c->pump.poll);
  c->closed_handlers = true;
  rd_kafka_queue_io_event_enable(c->closeq, -1, NULL, 0);
  rd_kafka_queue_destroy(c->closeq);
  c->closeq = NULL;
  rd_kafka_queue_destroy(c->cq);
  c->cq = NULL;
  /* From here on every entry point sees rk == NULL and does nothing. */
  c->dying_rk = c->rk;
  c->rk = NULL;
  c->destroy_work.data = c;
  if (uv_queue_work(c->loop, &c->destroy_work, consumer_destroy_work, consumer_destroy_done) != 0) {
    consumer_destroy_work(&c->destroy_work);
    consumer_destroy_done(&c->destroy_work, 0);
  }
}

static void consumer_close_tick(uv_timer_t *t) {
  gw_kafka_consumer *c = ((gw_kafka_pump *)t->data)->self;
  consumer_serve(c);
  /* A consumer with a fatal error never reports itself closed: nothing more will come. The
   * committed-offset queries use the handle: destroy only after they returned. */
  bool closed = c->close_refused || c->fatal[0] != '\0' || rd_kafka_consumer_closed(c->rk);
  if (closed && c->queries_running == 0) {
    consumer_serve(c); /* the last revoke, if any */
    consumer_finish_close(c);
  }
}

void gw_kafka_consumer_close(gw_kafka_consumer *c, void (*close_cb)(void *opaque), void *opaque) {
  if (c->closing) {
    return;
  }
  c->closing = true;
  c->close_cb = close_cb;
  c->close_opaque = opaque;
  /* Close forwards the group's queue (and so everything the consumer queue received) to a
   * queue of ours; the fd moves with it, since only the final queue may signal. */
  rd_kafka_queue_io_event_enable(c->cq, -1, NULL, 0);
  c->closeq = rd_kafka_queue_new(c->rk);
  rd_kafka_queue_io_event_enable(c->closeq, c->pump.efd, &pump_payload, sizeof pump_payload);
  rd_kafka_error_t *error = rd_kafka_consumer_close_queue(c->rk, c->closeq);
  if (error != NULL) {
    /* Refused (after a fatal error): the close would never finish, so only destroy. */
    GW_LOG(c->log, GW_LOG_WARN, "kafka consumer cannot leave its group; destroying it",
           GW_LS("reason", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
    c->close_refused = true;
  }
  uv_timer_start(&c->pump.timer, consumer_close_tick, 0, GW_KAFKA_CLOSE_TICK_MS);
}
