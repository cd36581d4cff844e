/*
 * goodwill-aggregator's library object for in-process tests: started on a private loop on the
 * test's thread, with a client function on a thread of its own that talks to its ports over
 * TCP as a BI tool or a kubelet would. When the client returns, the aggregator is stopped and
 * the loop closed, and the test checks it stopped exactly once. The client may reload the
 * tokens file on the loop (gw_test_agg_reload_tokens). Used by test_aggregator_*.c.
 */
#ifndef GW_TEST_AGGREGATOR_H
#define GW_TEST_AGGREGATOR_H

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <uv.h>

#include "goodwill/aggregator.h"
#include "goodwill/log.h"
#include "gw_test.h"

typedef struct gw_test_agg gw_test_agg;

struct gw_test_agg {
  uv_loop_t loop;
  gw_aggregator *agg;
  int api_port, admin_port;
  void (*client)(gw_test_agg *f); /* runs on its own thread */
  void *user;                     /* the test's own state, for the client */
  uv_async_t done;
  int stopped;
  /* gw_aggregator_reload_tokens runs on the loop: the client thread asks through an async and
   * waits for the result. */
  uv_async_t reload;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool reload_done;
  int reload_rc;
};

/* The settings every in-process test shares: loopback ports chosen by the kernel, a Kafka
 * bootstrap where nothing listens (the consumer is never assigned: the read API, the gauges
 * and readiness do not need Kafka), short flush and shutdown times, the test's log. */
static inline void gw_test_agg_config(gw_aggregator_config *cfg, const gw_log *log,
                                      const char *redis_url, const char *group) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->admin_host = "127.0.0.1";
  cfg->api_host = "127.0.0.1";
  cfg->kafka_bootstrap = "127.0.0.1:1";
  cfg->group = group;
  cfg->redis_url = redis_url;
  cfg->flush_interval_ms = 50;
  cfg->max_batch = 100;
  cfg->max_pending = 1000;
  cfg->session_timeout_ms = 6000;
  cfg->shutdown_grace_ms = 2000;
  cfg->log = log;
}

static void gw_test_agg_on_stopped(void *opaque, int status) {
  gw_test_agg *f = opaque;
  (void)status;
  f->stopped++;
}

static void gw_test_agg_on_client_done(uv_async_t *h) {
  gw_test_agg *f = h->data;
  uv_close((uv_handle_t *)&f->done, NULL);
  uv_close((uv_handle_t *)&f->reload, NULL);
  gw_aggregator_stop(f->agg, gw_test_agg_on_stopped, f);
}

static void gw_test_agg_on_reload(uv_async_t *h) {
  gw_test_agg *f = h->data;
  int rc = gw_aggregator_reload_tokens(f->agg);
  pthread_mutex_lock(&f->mu);
  f->reload_rc = rc;
  f->reload_done = true;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* From the client thread: reloads the tokens file on the loop and returns the result. */
static inline int gw_test_agg_reload_tokens(gw_test_agg *f) {
  pthread_mutex_lock(&f->mu);
  f->reload_done = false;
  pthread_mutex_unlock(&f->mu);
  uv_async_send(&f->reload);
  pthread_mutex_lock(&f->mu);
  while (!f->reload_done)
    pthread_cond_wait(&f->cv, &f->mu);
  int rc = f->reload_rc;
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static void *gw_test_agg_client_thread(void *arg) {
  gw_test_agg *f = arg;
  f->client(f);
  uv_async_send(&f->done);
  return NULL;
}

/* Runs an aggregator of cfg with client on its own thread until the client returned and the
 * aggregator stopped; user is handed to the client as f->user. */
static inline void gw_test_agg_run(const gw_aggregator_config *cfg, void (*client)(gw_test_agg *f),
                                   void *user) {
  gw_test_agg f;
  memset(&f, 0, sizeof(f));
  f.client = client;
  f.user = user;
  CHECK_INT_EQ(uv_loop_init(&f.loop), 0);
  int rc = gw_aggregator_start(&f.loop, cfg, &f.agg);
  CHECK_INT_EQ(rc, 0);
  if (rc == 0) {
    f.api_port = gw_aggregator_api_port(f.agg);
    f.admin_port = gw_aggregator_admin_port(f.agg);
    uv_async_init(&f.loop, &f.done, gw_test_agg_on_client_done);
    f.done.data = &f;
    uv_async_init(&f.loop, &f.reload, gw_test_agg_on_reload);
    f.reload.data = &f;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    pthread_t t;
    pthread_create(&t, NULL, gw_test_agg_client_thread, &f);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    CHECK_INT_EQ(f.stopped, 1);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cv);
  }
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK_INT_EQ(uv_loop_close(&f.loop), 0);
}

#endif
