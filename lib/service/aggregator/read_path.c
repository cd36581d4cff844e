/*
 * The aggregator's read path over Redis: the read script's EVALs, the index sets' SMEMBERS and
 * the sums of their replies, shared by the read API and the per-team gauges (read_path.h).
 * Called on the loop thread by read_api.c and team_metrics.c; it owns the read script only.
 */
#include "read_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goodwill/buf.h"

struct gw_agg_read_path {
  gw_redis *redis;         /* borrowed from the aggregator */
  gw_redis_script *script; /* gw_agg_read_script, owned */
};

int gw_agg_read_path_new(gw_agg_read_path **out, gw_redis *redis) {
  *out = NULL;
  gw_agg_read_path *rp = calloc(1, sizeof(*rp));
  if (rp == NULL)
    return -ENOMEM;
  gw_buf src = GW_BUF_INIT;
  gw_agg_read_script(&src);
  int rc = gw_redis_script_new(&rp->script, src.data);
  gw_buf_free(&src);
  if (rc < 0) {
    free(rp);
    return rc;
  }
  rp->redis = redis;
  *out = rp;
  return 0;
}

void gw_agg_read_path_free(gw_agg_read_path *rp) {
  if (rp == NULL)
    return;
  gw_redis_script_free(rp->script);
  free(rp);
}

bool gw_agg_read_path_connected(const gw_agg_read_path *rp) {
  return gw_redis_connected(rp->redis);
}

/* Sends one EVAL of the read script for a team: the buckets of comp (a window), or when comp
 * is NULL one bucket of step per point from first_s (a series). */
static int eval_team_buckets(gw_agg_read_path *rp, const char *tenant, const char *teamid,
                             const gw_window_composition *comp, gw_resolution step, int64_t first_s,
                             size_t npoints, gw_redis_reply_cb cb, void *opaque) {
  size_t nkeys = comp != NULL ? comp->nbuckets : npoints;
  gw_buf *keys = calloc(nkeys ? nkeys : 1, sizeof(gw_buf));
  const char **kp = calloc(nkeys ? nkeys : 1, sizeof(char *));
  if (keys == NULL || kp == NULL)
    abort();
  for (size_t k = 0; k < nkeys; k++) {
    if (comp == NULL)
      gw_agg_key_bucket(&keys[k], tenant, teamid, step,
                        first_s + (int64_t)k * gw_res_seconds(step));
    else
      gw_agg_key_bucket(&keys[k], tenant, teamid, comp->buckets[k].res, comp->buckets[k].start_s);
    kp[k] = keys[k].data;
  }
  int rc = gw_redis_eval(rp->redis, rp->script, (int)nkeys, kp, NULL, 0, NULL, NULL, cb, opaque);
  for (size_t k = 0; k < nkeys; k++)
    gw_buf_free(&keys[k]);
  free(keys);
  free(kp);
  return rc;
}

int gw_agg_read_path_window(gw_agg_read_path *rp, const char *tenant, const char *team,
                            const gw_window_composition *comp, gw_redis_reply_cb cb, void *opaque) {
  return eval_team_buckets(rp, tenant, team, comp, GW_RES_1H, 0, 0, cb, opaque);
}

int gw_agg_read_path_series(gw_agg_read_path *rp, const char *tenant, const char *team,
                            gw_resolution step, int64_t first_s, size_t npoints,
                            gw_redis_reply_cb cb, void *opaque) {
  return eval_team_buckets(rp, tenant, team, NULL, step, first_s, npoints, cb, opaque);
}

/* Adds one element of the read script's reply (a bucket's HGETALL) to into; elements that
 * are not arrays (a missing bucket) add nothing. -EINVAL for a non-integer counter. */
static int add_bucket_reply(gw_agg_totals *into, const gw_redis_reply *h) {
  if (h->type != GW_REDIS_ARRAY)
    return 0;
  const char *strs[256];
  size_t lens[256];
  size_t n = h->nelements < 256 ? h->nelements : 256;
  for (size_t j = 0; j < n; j++) {
    strs[j] = h->elements[j].str ? h->elements[j].str : "";
    lens[j] = h->elements[j].str ? h->elements[j].len : 0;
  }
  return gw_agg_totals_add_hash(into, strs, lens, n & ~(size_t)1);
}

int gw_agg_read_path_sum(gw_agg_totals *into, const gw_redis_reply *reply) {
  for (size_t i = 0; i < reply->nelements; i++)
    if (add_bucket_reply(into, &reply->elements[i]) < 0)
      return -EINVAL;
  return 0;
}

int gw_agg_read_path_points(gw_agg_totals *points, size_t npoints, const gw_redis_reply *reply) {
  for (size_t i = 0; i < reply->nelements && i < npoints; i++)
    if (add_bucket_reply(&points[i], &reply->elements[i]) < 0)
      return -EINVAL;
  return 0;
}

int gw_agg_read_path_members(gw_agg_read_path *rp, const char *tenant, gw_redis_reply_cb cb,
                             void *opaque) {
  if (tenant == NULL) {
    const char *argv[] = {"SMEMBERS", GW_AGG_KEY_TENANTS};
    return gw_redis_command(rp->redis, 2, argv, NULL, cb, opaque);
  }
  gw_buf key = GW_BUF_INIT;
  gw_agg_key_teams(&key, tenant);
  const char *argv[] = {"SMEMBERS", key.data};
  int rc = gw_redis_command(rp->redis, 2, argv, NULL, cb, opaque);
  gw_buf_free(&key);
  return rc;
}

static int compare_strp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

size_t gw_agg_read_path_ids(const gw_redis_reply *reply, size_t examined, const char ***out) {
  size_t n = reply->nelements < examined ? reply->nelements : examined, k = 0;
  const char **ids = calloc(n ? n : 1, sizeof(*ids));
  if (ids == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    const gw_redis_reply *e = &reply->elements[i];
    if (e->type == GW_REDIS_STRING && e->str != NULL && gw_agg_valid_id(e->str))
      ids[k++] = e->str;
  }
  qsort(ids, k, sizeof(*ids), compare_strp);
  *out = ids;
  return k;
}
