/*
 * The per-team gauges on the admin /metrics (team_metrics.h): a refresh timer, the refresh in
 * progress (tenants, then teams, then their window=1h totals through the read path), and the
 * series it publishes. Loop thread only.
 */
#include "team_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/aggregates.h"
#include "goodwill/window.h"

/* The gauges of one team, in the order of team_gauges. */
enum {
  TM_INTERACTIONS,
  TM_SURVEYS,
  TM_NPS,
  TM_START_MEAN,
  TM_END_MEAN,
  TM_CHANGE_MEAN,
  TM_IMPROVED_SHARE,
  TM_GAUGES
};

/* One team read by a refresh. */
typedef struct tm_team {
  char tenant[GW_AGG_ID_MAX + 1];
  char team[GW_AGG_ID_MAX + 1];
  gw_agg_totals totals;
} tm_team;

/* The series a refresh set, so the next one can blank teams that left the export. */
typedef struct tm_series {
  gw_metric *g[TM_GAUGES];
} tm_series;

struct gw_agg_team_metrics {
  uv_loop_t *loop;
  const gw_log *log;
  size_t max;
  uint64_t interval_ms;
  gw_agg_read_path *read_path; /* borrowed; set by start */

  uv_timer_t timer;
  bool started; /* the timer is initialised: close must close it */
  bool stopping;
  bool closing;
  void (*closed)(void *opaque);
  void *closed_opaque;

  /* One refresh's state. */
  bool refreshing;
  uint64_t started_ns;
  gw_window_composition comp;
  char **tenants; /* of the refresh running, sorted */
  size_t ntenants;
  tm_team *teams; /* of the refresh running, at most max */
  size_t nteams;
  size_t next;     /* the tenant listed, then the team read, next */
  tm_series *prev; /* the series the last published refresh set */
  size_t nprev;

  gw_metric_family *f_team[TM_GAUGES];
  gw_metric *m_seconds, *m_teams, *m_failures;
};

static void tm_reset(gw_agg_team_metrics *tm) {
  for (size_t i = 0; i < tm->ntenants; i++)
    free(tm->tenants[i]);
  free(tm->tenants);
  tm->tenants = NULL;
  tm->ntenants = 0;
  free(tm->teams);
  tm->teams = NULL;
  tm->nteams = 0;
  tm->refreshing = false;
}

/* A refresh that cannot finish: the gauges keep the previous refresh's values. */
static void tm_fail(gw_agg_team_metrics *tm, const char *what, int status,
                    const gw_redis_reply *reply) {
  gw_metric_add(tm->m_failures, 1);
  if (!tm->closing)
    GW_LOG(tm->log, GW_LOG_WARN, "per-team metrics refresh failed, previous values kept",
           GW_LS("step", what), GW_LI("status", status),
           GW_LS("error", reply && reply->type == GW_REDIS_ERROR && reply->str ? reply->str : ""));
  tm_reset(tm);
}

/* Publishes the teams read: every series of the previous refresh is blanked first (a team
 * that left the export shows NaN rather than a stale value), then the new values are set, all
 * within one callback, so a scrape never sees a half-done refresh. */
static void tm_publish(gw_agg_team_metrics *tm) {
  for (size_t i = 0; i < tm->nprev; i++)
    for (size_t g = 0; g < TM_GAUGES; g++)
      gw_metric_set(tm->prev[i].g[g], NAN);
  tm_series *next = calloc(tm->nteams ? tm->nteams : 1, sizeof(*next));
  if (next == NULL)
    abort();
  for (size_t i = 0; i < tm->nteams; i++) {
    const tm_team *t = &tm->teams[i];
    gw_agg_summary s;
    gw_agg_summarize(&t->totals, &s);
    double v[TM_GAUGES] = {
        [TM_INTERACTIONS] = (double)s.interactions,
        [TM_SURVEYS] = (double)s.surveys,
        [TM_NPS] = s.has_surveys ? s.nps : NAN,
        [TM_START_MEAN] = s.has_feeling ? s.start_mean : NAN,
        [TM_END_MEAN] = s.has_feeling ? s.end_mean : NAN,
        [TM_CHANGE_MEAN] = s.has_feeling ? s.change_mean : NAN,
        [TM_IMPROVED_SHARE] = s.has_feeling ? s.improved_share : NAN,
    };
    const char *labels[2] = {t->tenant, t->team};
    for (size_t g = 0; g < TM_GAUGES; g++) {
      next[i].g[g] = gw_metrics_series(tm->f_team[g], labels);
      gw_metric_set(next[i].g[g], v[g]);
    }
  }
  free(tm->prev);
  tm->prev = next;
  tm->nprev = tm->nteams;
  gw_metric_set(tm->m_teams, (double)tm->nteams);
  gw_metric_set(tm->m_seconds, (double)(uv_hrtime() - tm->started_ns) / 1e9);
  tm_reset(tm);
}

static void tm_read_next(gw_agg_team_metrics *tm);

static void tm_on_read(void *opaque, int status, const gw_redis_reply *reply) {
  gw_agg_team_metrics *tm = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(tm, "read", status, reply);
    return;
  }
  if (gw_agg_read_path_sum(&tm->teams[tm->next].totals, reply) < 0) {
    tm_fail(tm, "a bucket holds a non-integer counter", 0, NULL);
    return;
  }
  tm->next++;
  tm_read_next(tm);
}

/* Reads the teams one at a time: the gauges are not urgent, and the apply path keeps the
 * Redis client's commands in flight to itself. */
static void tm_read_next(gw_agg_team_metrics *tm) {
  if (tm->closing) {
    tm_fail(tm, "closing", -ECANCELED, NULL);
    return;
  }
  if (tm->next >= tm->nteams) {
    tm_publish(tm);
    return;
  }
  const tm_team *t = &tm->teams[tm->next];
  int rc = gw_agg_read_path_window(tm->read_path, t->tenant, t->team, &tm->comp, tm_on_read, tm);
  if (rc < 0)
    tm_fail(tm, "read", rc, NULL);
}

static void tm_teams_next(gw_agg_team_metrics *tm);

static void tm_on_teams(void *opaque, int status, const gw_redis_reply *reply) {
  gw_agg_team_metrics *tm = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(tm, "team index", status, reply);
    return;
  }
  const char *tenant = tm->tenants[tm->next];
  /* Teams in id order within the tenant, then cut at the bound: the same teams every time. */
  const char **ids;
  size_t n = gw_agg_read_path_ids(reply, SIZE_MAX, &ids);
  tm_team *grown = realloc(tm->teams, (tm->nteams + n + 1) * sizeof(*grown));
  if (grown == NULL)
    abort();
  tm->teams = grown;
  for (size_t i = 0; i < n; i++) {
    tm_team *t = &tm->teams[tm->nteams++];
    memset(t, 0, sizeof(*t));
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    snprintf(t->team, sizeof(t->team), "%s", ids[i]);
  }
  free(ids);
  if (tm->nteams > tm->max)
    tm->nteams = tm->max;
  tm->next++;
  tm_teams_next(tm);
}

/* Lists the teams of the tenants in id order until the bound is reached, then reads them. */
static void tm_teams_next(gw_agg_team_metrics *tm) {
  if (tm->closing) {
    tm_fail(tm, "closing", -ECANCELED, NULL);
    return;
  }
  if (tm->next >= tm->ntenants || tm->nteams >= tm->max) {
    tm->next = 0;
    tm_read_next(tm);
    return;
  }
  int rc = gw_agg_read_path_members(tm->read_path, tm->tenants[tm->next], tm_on_teams, tm);
  if (rc < 0)
    tm_fail(tm, "team index", rc, NULL);
}

static void tm_on_tenants(void *opaque, int status, const gw_redis_reply *reply) {
  gw_agg_team_metrics *tm = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    tm_fail(tm, "tenant index", status, reply);
    return;
  }
  const char **ids;
  size_t n = gw_agg_read_path_ids(reply, SIZE_MAX, &ids);
  tm->tenants = calloc(n ? n : 1, sizeof(char *));
  if (tm->tenants == NULL)
    abort();
  for (; tm->ntenants < n; tm->ntenants++) {
    tm->tenants[tm->ntenants] = strdup(ids[tm->ntenants]);
    if (tm->tenants[tm->ntenants] == NULL)
      abort();
  }
  free(ids);
  tm->next = 0;
  tm_teams_next(tm);
}

/* Every interval_ms: one refresh at a time, none while Redis is not connected (counted as
 * failed: the values shown are older than the interval says). */
static void on_tick(uv_timer_t *h) {
  gw_agg_team_metrics *tm = h->data;
  if (tm->refreshing || tm->stopping || tm->closing)
    return;
  if (!gw_agg_read_path_connected(tm->read_path)) {
    gw_metric_add(tm->m_failures, 1);
    GW_LOG(tm->log, GW_LOG_DEBUG, "per-team metrics refresh skipped: redis not connected");
    return;
  }
  /* The window the read API's window=1h gives, composed the same way. */
  int64_t now = (int64_t)time(NULL), from_s, to_s;
  char err[200];
  if (gw_window_resolve("1h", NULL, NULL, now, &from_s, &to_s, err, sizeof(err)) < 0 ||
      gw_window_compose(from_s, to_s, now, &tm->comp) < 0) {
    gw_metric_add(tm->m_failures, 1);
    return;
  }
  tm->refreshing = true;
  tm->started_ns = uv_hrtime();
  int rc = gw_agg_read_path_members(tm->read_path, NULL, tm_on_tenants, tm);
  if (rc < 0)
    tm_fail(tm, "tenant index", rc, NULL);
}

/* ------------------------------------------------------------------ metrics */

#define TM_HELP(what) what " over the last hour, refreshed every --team-metrics-interval."

static const char *const tenant_team_labels[] = {"tenant", "team"};

static const gw_metric_spec refresh_metrics[] = {
    GW_METRIC_SERIES(gw_agg_team_metrics, m_seconds,
                     .name = "goodwill_aggregator_team_metrics_refresh_seconds",
                     .help = "Duration of the last successful refresh of the per-team gauges.",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_agg_team_metrics, m_teams, .name = "goodwill_aggregator_team_metrics_teams",
                     .help = "Teams exported in the per-team gauges (at most --team-metrics-max).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_SERIES(gw_agg_team_metrics, m_failures,
                     .name = "goodwill_aggregator_team_metrics_refresh_failures_total",
                     .help = "Refreshes of the per-team gauges that failed or were skipped (Redis "
                             "errors or not connected); the previous values stay.",
                     .type = GW_METRIC_COUNTER),
};

/* The gauges, in the order of the TM_ enum. Each family holds at most max series (set at
 * registration): series past it (teams entering after others left; series are never removed)
 * show as the family's _other series. */
static const gw_metric_spec team_gauges[TM_GAUGES] = {
    GW_METRIC_FAMILY(gw_agg_team_metrics, f_team[TM_INTERACTIONS],
                     .name = "goodwill_team_interactions",
                     .help = TM_HELP("Interactions of the team"), .type = GW_METRIC_GAUGE,
                     .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(gw_agg_team_metrics, f_team[TM_SURVEYS], .name = "goodwill_team_surveys",
                     .help = TM_HELP("Survey answers of the team"), .type = GW_METRIC_GAUGE,
                     .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(gw_agg_team_metrics, f_team[TM_NPS], .name = "goodwill_team_nps",
                     .help =
                         TM_HELP("Net Promoter Score of the team, -100..100 (NaN without surveys)"),
                     .type = GW_METRIC_GAUGE, .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(
        gw_agg_team_metrics, f_team[TM_START_MEAN], .name = "goodwill_team_feeling_start_mean",
        .help = TM_HELP("Mean customer feeling at the start, -1..1 (NaN without feeling)"),
        .type = GW_METRIC_GAUGE, .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(
        gw_agg_team_metrics, f_team[TM_END_MEAN], .name = "goodwill_team_feeling_end_mean",
        .help = TM_HELP("Mean customer feeling at the end, -1..1 (NaN without feeling)"),
        .type = GW_METRIC_GAUGE, .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(
        gw_agg_team_metrics, f_team[TM_CHANGE_MEAN], .name = "goodwill_team_feeling_change_mean",
        .help = TM_HELP("Mean change of customer feeling, end minus start (NaN without feeling)"),
        .type = GW_METRIC_GAUGE, .label_names = tenant_team_labels, .nlabels = 2),
    GW_METRIC_FAMILY(gw_agg_team_metrics, f_team[TM_IMPROVED_SHARE],
                     .name = "goodwill_team_improved_share",
                     .help = TM_HELP("Share of interactions whose feeling improved, 0..1 (NaN "
                                     "without feeling)"),
                     .type = GW_METRIC_GAUGE, .label_names = tenant_team_labels, .nlabels = 2),
};

/* ------------------------------------------------------------------ lifecycle */

int gw_agg_team_metrics_new(gw_agg_team_metrics **out, const gw_agg_team_metrics_config *cfg) {
  *out = NULL;
  gw_agg_team_metrics *tm = calloc(1, sizeof(*tm));
  if (tm == NULL)
    return -ENOMEM;
  tm->loop = cfg->loop;
  tm->log = cfg->log;
  tm->max = cfg->max;
  tm->interval_ms = cfg->interval_ms;
  int rc = gw_metrics_register_all(cfg->metrics, refresh_metrics,
                                   sizeof(refresh_metrics) / sizeof(refresh_metrics[0]), tm, NULL);
  if (rc == 0 && tm->max > 0) {
    /* The bound is the flag's: a copy of the table carries it. */
    gw_metric_spec gauges[TM_GAUGES];
    memcpy(gauges, team_gauges, sizeof(gauges));
    for (size_t g = 0; g < TM_GAUGES; g++)
      gauges[g].def.max_series = tm->max;
    rc = gw_metrics_register_all(cfg->metrics, gauges, TM_GAUGES, tm, NULL);
  }
  if (rc < 0) {
    free(tm);
    return rc;
  }
  *out = tm;
  return 0;
}

void gw_agg_team_metrics_start(gw_agg_team_metrics *tm, gw_agg_read_path *read_path) {
  tm->read_path = read_path;
  uv_timer_init(tm->loop, &tm->timer);
  tm->timer.data = tm;
  tm->started = true;
  if (tm->max > 0)
    uv_timer_start(&tm->timer, on_tick, tm->interval_ms, tm->interval_ms);
}

void gw_agg_team_metrics_stop(gw_agg_team_metrics *tm) {
  tm->stopping = true;
}

static void timer_closed(uv_handle_t *h) {
  gw_agg_team_metrics *tm = h->data;
  tm->closed(tm->closed_opaque);
}

void gw_agg_team_metrics_close(gw_agg_team_metrics *tm, void (*closed)(void *opaque),
                               void *opaque) {
  tm->closing = true;
  tm->closed = closed;
  tm->closed_opaque = opaque;
  if (tm->started)
    uv_close((uv_handle_t *)&tm->timer, timer_closed);
  else
    closed(opaque);
}

void gw_agg_team_metrics_free(gw_agg_team_metrics *tm) {
  if (tm == NULL)
    return;
  tm_reset(tm);
  free(tm->prev);
  free(tm);
}
