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

/* Applies the operator's "name=value" properties after goodwill's defaults. */
static int conf_apply_properties(rd_kafka_conf_t *conf, const char *const *props, size_t n,
                                 char *err, size_t errlen) {
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

static void client_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque,
                            const gw_log *log, bool *all_down) {
  gw_log_level level = GW_LOG_WARN;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    GW_LOG(log, GW_LOG_ERROR, "kafka fatal error", GW_LS("client", rd_kafka_name(rk)),
           GW_LS("error", rd_kafka_err2name(ferr)), GW_LS("reason", fatal));
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    level = GW_LOG_ERROR;
    if (all_down != NULL) {
      *all_down = true;
    }
  }
  GW_LOG(log, level, "kafka error", GW_LS("client", rd_kafka_name(rk)),
         GW_LS("error", rd_kafka_err2name((rd_kafka_resp_err_t)err)), GW_LS("reason", reason));
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
  client_error_cb(rk, err, reason, opaque, p->log, &p->all_brokers_down);
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
    rc = conf_apply_properties(conf, cfg->properties, cfg->nproperties, err, errlen);
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
  if (p->all_brokers_down || p->closing) {
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

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  gw_kafka_consumer *c = opaque;
  client_error_cb(rk, err, reason, opaque, c->log, NULL);
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
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
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
static void consumer_keepalive_tick(uv_timer_t *t) {
  pump_run(t->data);
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
    rc = conf_apply_properties(conf, cfg->properties, cfg->nproperties, err, errlen);
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
      client_error_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), c, c->log,
                      NULL);
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
  if (c->rk == NULL) {
    return -ESRCH;
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

int gw_kafka_consumer_commit(gw_kafka_consumer *c) {
  if (c->rk == NULL || c->closing) {
    return -ESHUTDOWN;
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

static void consumer_destroy_work(uv_work_t *w) {
  gw_kafka_consumer *c = w->data;
  rd_kafka_destroy(c->dying_rk);
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
  if (rd_kafka_consumer_closed(c->rk)) {
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
    GW_LOG(c->log, GW_LOG_WARN, "kafka consumer close",
           GW_LS("reason", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  }
  uv_timer_start(&c->pump.timer, consumer_close_tick, 0, GW_KAFKA_CLOSE_TICK_MS);
}
