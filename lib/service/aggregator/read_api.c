/*
 * The read API (read_api.h): routes, bearer tokens, query parsing, reads of the aggregates
 * through the read path, and the JSON and CSV answers. Loop thread only.
 */
#include "read_api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/aggregates.h"
#include "goodwill/auth.h"
#include "goodwill/buf.h"
#include "goodwill/http.h"
#include "goodwill/rate_limit.h"
#include "goodwill/read_query.h"
#include "goodwill/window.h"

/* Teams of one list request read concurrently (the Redis client caps commands in flight). */
#define LIST_CONCURRENCY 16
/* The most teams one list request reads. */
#define LIST_MAX_TEAMS 10000
/* Read requests answered at once; more get 503 with Retry-After. With LIST_MAX_TEAMS this
 * bounds the read API's memory (a list request holds the summary of each of its teams, 0.6 KB
 * with its id and rank: 6 MB for 10,000 teams, then its answer, about 1.2 KB of JSON a team)
 * and its share of the read connection. */
#define READ_MAX_REQUESTS 16
/* Tenants whose read budgets are tracked at once (rate_limit.h drops idle ones first). */
#define READ_RATE_MAX_TENANTS 10000
/* The realm of the read API's WWW-Authenticate challenges (RFC 6750, section 3). */
#define READ_REALM "goodwill-read"

struct gw_agg_read_api {
  uv_loop_t *loop;
  const gw_log *log;
  gw_metric *redis_errors;     /* borrowed */
  gw_agg_read_path *read_path; /* borrowed; set by start */
  const char *host;            /* borrowed */
  int port;
  gw_http_server *http; /* NULL until listening */
  bool stopping;
  size_t reads_in_flight;

  bool dev_mode;
  char *tokens_file;
  gw_auth *auth;       /* the tokens in use; NULL in dev mode */
  gw_rate_limit *rate; /* requests per tenant; NULL: no limit */
  /* Every failed Redis read is counted in redis_errors and explained in the log, at most a few
   * lines a second (the rest are counted in the next line's "suppressed"). */
  gw_log_limit error_lines;
  double rate_per_s, rate_burst;

  gw_metric_family *f_requests, *f_duration; /* {route, status} */
  gw_metric *m_tokens;
  gw_metric_family *f_reloads; /* {result} */
};

/* A team of a window read. Its counters are summed per reply and summarized at once, so a
 * leaderboard holds a summary per team, not its counters (1.2 KB with the pairs of dominant
 * feelings, which no row shows). */
typedef struct read_team {
  char team[GW_AGG_ID_MAX + 1];
  gw_agg_summary s;
} read_team;

typedef struct read_req {
  gw_agg_read_api *api;
  gw_http_request *req;
  char tenant[GW_AGG_ID_MAX + 1];
  char window[32];
  bool csv;
  bool list;
  /* The feelings route: the team's counters, for its pairs of dominant feelings. */
  bool feelings;
  gw_agg_totals *feel_totals;
  int64_t from_s, to_s;
  gw_window_composition *comp;
  read_team *teams;
  size_t nteams, next, done, outstanding;
  /* Leaderboards (list): the row field teams are ranked by (-1: by team id), the order, and
   * the most rows answered (0: all). */
  int sort_field;
  bool ascending;
  size_t limit;
  /* Time series (one team): one point per bucket of `step`, from first_s; points[i] holds the
   * i-th bucket's totals. */
  bool series;
  gw_resolution step;
  int64_t first_s;
  size_t npoints;
  gw_agg_totals *points;
  int failed; /* 0, or the HTTP status to answer */
  char error[256];
} read_req;

/* The route label of a read API path: the data routes' patterns, /readyz, or "other"
 * (bounded, for metrics). */
static const char *api_route(const char *path) {
  if (path != NULL && strcmp(path, "/readyz") == 0)
    return "/readyz";
  gw_read_route route;
  const char *team;
  size_t team_len;
  return gw_read_route_parse(path, &route, &team, &team_len) == 0 ? gw_read_route_pattern(route)
                                                                  : "other";
}

static void count_api_answer(gw_agg_read_api *api, const char *path, int status,
                             uint64_t received_ns) {
  char status_s[8];
  snprintf(status_s, sizeof(status_s), "%d", status);
  const char *route = api_route(path);
  const char *labels[2] = {route, status_s};
  gw_metric_add(gw_metrics_series(api->f_requests, labels), 1);
  if (received_ns != 0)
    gw_metric_observe(gw_metrics_series(api->f_duration, labels),
                      (double)(uv_hrtime() - received_ns) / 1e9);
}

/* Every answer of the read API goes through here (req->user is the read API), so each is
 * counted by route and status, with its duration. */
static void api_respond(gw_http_request *req, int status, const char *content_type,
                        const char *body, size_t len, const gw_http_header *headers,
                        size_t nheaders) {
  count_api_answer(req->user, req->path, status, req->received_ns);
  gw_http_respond(req, status, content_type, body, len, headers, nheaders);
}

/* Answers the HTTP layer gave by itself (400 malformed, 408, 413, 431, 503). */
static void on_api_server_answer(void *opaque, const char *path, int status) {
  count_api_answer(opaque, path, status, 0);
}

static void respond_error_with(gw_http_request *req, int status, const char *msg,
                               const gw_http_header *headers, size_t nheaders) {
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "{\"error\":");
  gw_buf_json_string(&b, msg);
  gw_buf_puts(&b, "}\n");
  api_respond(req, status, "application/json", b.data, b.len, headers, nheaders);
  gw_buf_free(&b);
}

static void respond_error(gw_http_request *req, int status, const char *msg) {
  respond_error_with(req, status, msg, NULL, 0);
}

static void read_free(read_req *r) {
  r->api->reads_in_flight--;
  free(r->points);
  free(r->feel_totals);
  free(r->comp);
  free(r->teams);
  free(r);
}

/* A team, with what its leaderboard ranks by (qsort has no context). */
typedef struct ranked {
  const read_team *team;
  int field;
  bool ascending;
} ranked;

static int compare_ranked(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  int c = gw_agg_rank_compare(&a->team->s, &b->team->s, a->field, a->ascending);
  return c != 0 ? c : strcmp(a->team->team, b->team->team);
}

static void read_render_series(read_req *r, gw_buf *b) {
  int64_t size = gw_res_seconds(r->step);
  gw_agg_row_meta meta = {r->tenant, r->teams[0].team, gw_res_name(r->step), 0, 0};
  gw_agg_summary s;
  if (r->csv) {
    gw_agg_csv_header(b);
  } else {
    char from[GW_ISO_LEN], to[GW_ISO_LEN];
    gw_window_format_iso(r->first_s, from);
    gw_window_format_iso(r->first_s + (int64_t)r->npoints * size, to);
    gw_buf_puts(b, "{\"tenant\":");
    gw_buf_json_string(b, r->tenant);
    gw_buf_puts(b, ",\"team\":");
    gw_buf_json_string(b, r->teams[0].team);
    gw_buf_printf(b, ",\"step\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"points\":[",
                  gw_res_name(r->step), from, to);
  }
  /* The running balance of feeling change: every interaction's change from the first point's
   * start up to the end of each point. */
  int64_t balance_milli = 0;
  for (size_t i = 0; i < r->npoints; i++) {
    meta.from_s = r->first_s + (int64_t)i * size;
    meta.to_s = meta.from_s + size;
    gw_agg_summarize(&r->points[i], &s);
    balance_milli += s.change_sum_milli;
    s.change_balance_milli = balance_milli;
    if (r->csv) {
      gw_agg_row_csv(b, &meta, &s);
    } else {
      if (i > 0)
        gw_buf_putc(b, ',');
      gw_agg_row_json(b, &meta, &s);
    }
  }
  if (!r->csv)
    gw_buf_puts(b, "]}\n");
}

/* The feelings route: flat rows of the pairs of dominant feelings and their margins
 * (gw_agg_feelings_rows), in an object like a leaderboard's. */
static void read_render_feelings(read_req *r, gw_buf *b) {
  gw_agg_row_meta meta = {r->tenant, r->teams[0].team, r->window, r->comp->from_s, r->comp->to_s};
  if (r->csv) {
    gw_agg_feelings_csv_header(b);
    gw_agg_feelings_rows(b, &meta, r->feel_totals, true);
    return;
  }
  char from[GW_ISO_LEN], to[GW_ISO_LEN];
  gw_window_format_iso(meta.from_s, from);
  gw_window_format_iso(meta.to_s, to);
  gw_buf_puts(b, "{\"tenant\":");
  gw_buf_json_string(b, r->tenant);
  gw_buf_puts(b, ",\"team\":");
  gw_buf_json_string(b, meta.team);
  gw_buf_puts(b, ",\"window\":");
  gw_buf_json_string(b, r->window);
  gw_buf_printf(b, ",\"from\":\"%s\",\"to\":\"%s\",\"feelings\":[", from, to);
  gw_agg_feelings_rows(b, &meta, r->feel_totals, false);
  gw_buf_puts(b, "]}\n");
}

static void read_render(read_req *r) {
  gw_buf b = GW_BUF_INIT;
  if (r->series || r->feelings) {
    if (r->series)
      read_render_series(r, &b);
    else
      read_render_feelings(r, &b);
    api_respond(r->req, 200, r->csv ? "text/csv; charset=utf-8" : "application/json", b.data, b.len,
                NULL, 0);
    gw_buf_free(&b);
    return;
  }
  gw_agg_row_meta meta = {r->tenant, NULL, r->window, r->comp->from_s, r->comp->to_s};
  ranked *rows = calloc(r->nteams ? r->nteams : 1, sizeof(*rows));
  if (rows == NULL)
    abort();
  for (size_t i = 0; i < r->nteams; i++) {
    rows[i].team = &r->teams[i];
    rows[i].field = r->sort_field;
    rows[i].ascending = r->ascending;
  }
  /* Teams arrive sorted by id; a leaderboard reorders them by its field. */
  if (r->sort_field >= 0)
    qsort(rows, r->nteams, sizeof(*rows), compare_ranked);
  size_t nrows = r->limit > 0 && r->limit < r->nteams ? r->limit : r->nteams;
  if (r->csv)
    gw_agg_csv_header(&b);
  if (r->list && !r->csv) {
    char from[GW_ISO_LEN], to[GW_ISO_LEN];
    gw_window_format_iso(meta.from_s, from);
    gw_window_format_iso(meta.to_s, to);
    gw_buf_puts(&b, "{\"tenant\":");
    gw_buf_json_string(&b, r->tenant);
    gw_buf_puts(&b, ",\"window\":");
    gw_buf_json_string(&b, r->window);
    gw_buf_printf(&b, ",\"from\":\"%s\",\"to\":\"%s\",\"teams\":[", from, to);
  }
  for (size_t i = 0; i < nrows; i++) {
    meta.team = rows[i].team->team;
    if (r->csv) {
      gw_agg_row_csv(&b, &meta, &rows[i].team->s);
    } else {
      if (i > 0)
        gw_buf_putc(&b, ',');
      gw_agg_row_json(&b, &meta, &rows[i].team->s);
    }
  }
  if (r->list && !r->csv)
    gw_buf_puts(&b, "]}");
  if (!r->csv)
    gw_buf_putc(&b, '\n');
  api_respond(r->req, 200, r->csv ? "text/csv; charset=utf-8" : "application/json", b.data, b.len,
              NULL, 0);
  gw_buf_free(&b);
  free(rows);
}

static void read_next(read_req *r);

static void read_finish_one(read_req *r) {
  r->outstanding--;
  r->done++;
  if (r->failed == 0 && r->next < r->nteams) {
    read_next(r);
    return;
  }
  if (r->outstanding > 0)
    return;
  if (r->failed)
    respond_error(r->req, r->failed, r->error);
  else
    read_render(r);
  read_free(r);
}

typedef struct read_cb_ctx {
  read_req *r;
  size_t index;
} read_cb_ctx;

/* Explains a failed Redis read in the log (rate limited), as counted in redis_errors. */
static void read_error_line(gw_agg_read_api *api, const char *what, const char *tenant,
                            const char *team, int status, const gw_redis_reply *reply) {
  GW_LOG_LIMITED(
      api->log, &api->error_lines, uv_now(api->loop), GW_LOG_WARN, "read API: redis read failed",
      GW_LS("read", what), GW_LS("tenant", tenant), GW_LS("team", team), GW_LI("status", status),
      GW_LS("error", reply != NULL && reply->type == GW_REDIS_ERROR && reply->str ? reply->str
                     : status == -ETIMEDOUT                                       ? "timed out"
                     : status < 0 ? "no reply (connection lost?)"
                                  : "unexpected reply"));
}

static void on_read(void *opaque, int status, const gw_redis_reply *reply) {
  read_cb_ctx *c = opaque;
  read_req *r = c->r;
  read_team *rt = &r->teams[c->index];
  free(c);
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    gw_metric_add(r->api->redis_errors, 1);
    read_error_line(r->api, "bucket read", r->tenant, rt->team, status, reply);
    if (!r->failed) {
      r->failed = 503;
      snprintf(r->error, sizeof(r->error), "aggregates store unavailable: %s",
               reply && reply->type == GW_REDIS_ERROR ? reply->str : "no reply");
    }
    read_finish_one(r);
    return;
  }
  /* A series keeps each bucket apart (one key per point, in order); a window sums them. */
  int rc;
  if (r->series) {
    rc = gw_agg_read_path_points(r->points, r->npoints, reply);
  } else {
    gw_agg_totals sum;
    memset(&sum, 0, sizeof(sum));
    rc = gw_agg_read_path_sum(&sum, reply);
    gw_agg_summarize(&sum, &rt->s);
    if (r->feelings)
      *r->feel_totals = sum;
  }
  if (rc < 0 && !r->failed) {
    r->failed = 500;
    snprintf(r->error, sizeof(r->error), "a bucket of team %s holds a non-integer counter",
             rt->team);
  }
  read_finish_one(r);
}

/* Starts reads up to the concurrency limit. */
static void read_next(read_req *r) {
  gw_agg_read_api *api = r->api;
  while (r->next < r->nteams && r->outstanding < LIST_CONCURRENCY && !r->failed) {
    size_t i = r->next++;
    read_cb_ctx *c = malloc(sizeof(*c));
    if (c == NULL)
      abort();
    c->r = r;
    c->index = i;
    r->outstanding++;
    /* A window reads the buckets of its composition, a series one bucket per point. */
    int rc = r->series ? gw_agg_read_path_series(api->read_path, r->tenant, r->teams[i].team,
                                                 r->step, r->first_s, r->npoints, on_read, c)
                       : gw_agg_read_path_window(api->read_path, r->tenant, r->teams[i].team,
                                                 r->comp, on_read, c);
    if (rc < 0) {
      free(c);
      r->outstanding--;
      r->failed = 503;
      snprintf(r->error, sizeof(r->error), "aggregates store unavailable (%s)",
               rc == -EAGAIN ? "busy" : "not connected");
    }
  }
  if (r->outstanding == 0) {
    if (r->failed)
      respond_error(r->req, r->failed, r->error);
    else
      read_render(r);
    read_free(r);
  }
}

static void on_members(void *opaque, int status, const gw_redis_reply *reply) {
  read_req *r = opaque;
  if (status < 0 || reply == NULL || reply->type != GW_REDIS_ARRAY) {
    gw_metric_add(r->api->redis_errors, 1);
    read_error_line(r->api, "team index read", r->tenant, "", status, reply);
    respond_error(r->req, 503, "aggregates store unavailable");
    read_free(r);
    return;
  }
  const char **ids;
  r->nteams = gw_agg_read_path_ids(reply, LIST_MAX_TEAMS, &ids);
  r->teams = calloc(r->nteams ? r->nteams : 1, sizeof(*r->teams));
  if (r->teams == NULL)
    abort();
  for (size_t i = 0; i < r->nteams; i++)
    snprintf(r->teams[i].team, sizeof(r->teams[i].team), "%s", ids[i]);
  free(ids);
  read_next(r);
}

/* The tenant a request reads: 0 with *tenant, or the answer (401, 403, 400) was sent. With
 * tokens it is the token's tenant, and tenant= may only repeat it; in dev mode tenant= is
 * required. The token itself is never logged or echoed; only whether it was missing or
 * unknown. */
static int read_tenant(gw_agg_read_api *api, gw_http_request *req, const char **tenant) {
  *tenant = NULL;
  const char *asked = gw_http_request_query(req, "tenant");
  if (asked != NULL && *asked == '\0')
    asked = NULL;
  const char *own = NULL;
  if (!api->dev_mode) {
    gw_auth_denial denial;
    if (gw_auth_authorize(api->auth, gw_http_request_header(req, "Authorization"), READ_REALM, &own,
                          &denial) != 0) {
      const gw_http_header h = {"WWW-Authenticate", denial.challenge};
      respond_error_with(req, 401, denial.error, &h, 1);
      return -EACCES;
    }
  } else if (asked == NULL) {
    respond_error(req, 400, "tenant: required");
    return -EINVAL;
  }
  if (asked != NULL && !gw_agg_valid_id(asked)) {
    respond_error(req, 400, "tenant: must be 1..128 of [A-Za-z0-9._@-]");
    return -EINVAL;
  }
  if (own != NULL && asked != NULL && strcmp(asked, own) != 0) {
    /* RFC 6750, section 3.1: a valid token without the right to this resource. */
    char challenge[192];
    gw_auth_challenge(READ_REALM, "insufficient_scope", challenge, sizeof(challenge));
    const gw_http_header h = {"WWW-Authenticate", challenge};
    gw_buf msg = GW_BUF_INIT;
    gw_buf_printf(&msg, "tenant: this token may not read tenant \"%s\" (it reads tenant \"%s\")",
                  asked, own);
    respond_error_with(req, 403, msg.data, &h, 1);
    gw_buf_free(&msg);
    return -EACCES;
  }
  *tenant = own != NULL ? own : asked;
  return 0;
}

/* What a read shows beyond its range: a leaderboard's order and length, or a series' step. */

/* GET /readyz: the read API's own readiness (see read_api.h), without a token, for the
 * kubelet and load balancers in front of the read API. */
static void respond_ready(gw_agg_read_api *api, gw_http_request *req) {
  if (strcmp(req->method, "GET") != 0) {
    gw_http_header allow = {"Allow", "GET"};
    api_respond(req, 405, "application/json", "{\"error\":\"method: only GET\"}\n", 28, &allow, 1);
    return;
  }
  const char *reason = NULL;
  if (api->stopping)
    reason = "stopping";
  else if (!gw_agg_read_path_connected(api->read_path))
    reason = "redis not connected";
  if (reason == NULL) {
    static const char ready[] = "{\"status\":\"ready\"}\n";
    api_respond(req, 200, "application/json", ready, sizeof(ready) - 1, NULL, 0);
    return;
  }
  char msg[64];
  snprintf(msg, sizeof(msg), "not ready: %s", reason);
  respond_error(req, 503, msg);
}

/* Whether tenant may read now; otherwise the 429 (or 503 when too many tenants are limited at
 * once) was sent. One request costs one unit of its tenant's budget. */
static bool within_read_rate(gw_agg_read_api *api, gw_http_request *req, const char *tenant) {
  if (api->rate == NULL)
    return true;
  uint64_t now = uv_now(api->loop), retry_ms = 0;
  int rc = gw_rate_limit_take(api->rate, tenant, now, 1, &retry_ms);
  if (rc == 0)
    return true;
  if (rc == -EAGAIN) {
    char secs[24], msg[200];
    snprintf(secs, sizeof secs, "%llu", (unsigned long long)((retry_ms + 999) / 1000));
    snprintf(msg, sizeof msg,
             "rate limit: this tenant may read %g requests per second (burst %g); retry after %s s",
             api->rate_per_s, api->rate_burst, secs);
    const gw_http_header retry = {"Retry-After", secs};
    respond_error_with(req, 429, msg, &retry, 1);
  } else {
    const gw_http_header retry = {"Retry-After", "1"};
    respond_error_with(req, 503, "rate limit: too many tenants are being limited at once", &retry,
                       1);
  }
  return false;
}

static void api_handler(void *opaque, gw_http_request *req) {
  gw_agg_read_api *api = opaque;
  req->user = api; /* for api_respond */
  const char *path = req->path;
  if (strcmp(path, "/readyz") == 0) {
    respond_ready(api, req);
    return;
  }
  gw_read_route route;
  const char *team_in_path;
  size_t team_len;
  if (gw_read_route_parse(path, &route, &team_in_path, &team_len) != 0) {
    respond_error(req, 404, "unknown route (" GW_READ_ROUTES_TEXT ")");
    return;
  }
  bool list = route == GW_READ_LIST, series = route == GW_READ_SERIES;
  if (strcmp(req->method, "GET") != 0) {
    gw_http_header allow = {"Allow", "GET"};
    api_respond(req, 405, "application/json", "{\"error\":\"method: only GET\"}\n", 28, &allow, 1);
    return;
  }
  /* Credentials before any parameter is looked at, as ingest does: a client without a valid
   * token learns nothing but 401. */
  const char *tenant;
  if (read_tenant(api, req, &tenant) != 0 || !within_read_rate(api, req, tenant))
    return;
  if (api->reads_in_flight >= READ_MAX_REQUESTS) {
    const gw_http_header retry = {"Retry-After", "1"};
    respond_error_with(req, 503, "too many read requests in progress; retry shortly", &retry, 1);
    return;
  }
  char teamid[GW_AGG_ID_MAX + 1] = "";
  if (!list) {
    if (team_len > GW_AGG_ID_MAX) {
      respond_error(req, 400, "team: longer than 128 characters");
      return;
    }
    memcpy(teamid, team_in_path, team_len);
    teamid[team_len] = '\0';
    if (!gw_agg_valid_id(teamid)) {
      respond_error(req, 400, "team: must be 1..128 of [A-Za-z0-9._@-]");
      return;
    }
  }
  gw_read_params params = {
      .window = gw_http_request_query(req, "window"),
      .from = gw_http_request_query(req, "from"),
      .to = gw_http_request_query(req, "to"),
      .format = gw_http_request_query(req, "format"),
      .sort = gw_http_request_query(req, "sort"),
      .order = gw_http_request_query(req, "order"),
      .limit = gw_http_request_query(req, "limit"),
      .step = gw_http_request_query(req, "step"),
  };
  int64_t now = (int64_t)time(NULL);
  gw_read_query q;
  char err[640];
  if (gw_read_query_parse(route, &params, now, LIST_MAX_TEAMS, &q, err, sizeof(err)) != 0) {
    respond_error(req, 400, err);
    return;
  }
  if (!gw_agg_read_path_connected(api->read_path)) {
    respond_error(req, 503, "aggregates store unavailable (not connected)");
    return;
  }
  read_req *r = calloc(1, sizeof(*r));
  if (r == NULL)
    abort();
  r->comp = malloc(sizeof(*r->comp));
  if (r->comp == NULL)
    abort();
  api->reads_in_flight++;
  r->api = api;
  r->req = req;
  r->csv = q.csv;
  r->list = list;
  r->sort_field = q.sort_field;
  r->ascending = q.ascending;
  r->limit = q.limit;
  r->series = series;
  r->step = q.step;
  r->first_s = q.first_s;
  r->npoints = q.npoints;
  if (series) {
    r->points = calloc(q.npoints ? q.npoints : 1, sizeof(*r->points));
    if (r->points == NULL)
      abort();
  }
  r->feelings = route == GW_READ_FEELINGS;
  if (r->feelings) {
    r->feel_totals = calloc(1, sizeof(*r->feel_totals));
    if (r->feel_totals == NULL)
      abort();
  }
  snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
  snprintf(r->window, sizeof(r->window), "%s", q.window);
  gw_window_compose(q.from_s, q.to_s, now, r->comp);
  if (!list) {
    r->teams = calloc(1, sizeof(*r->teams));
    if (r->teams == NULL)
      abort();
    snprintf(r->teams[0].team, sizeof(r->teams[0].team), "%s", teamid);
    r->nteams = 1;
    read_next(r);
    return;
  }
  if (gw_agg_read_path_members(api->read_path, tenant, on_members, r) < 0) {
    respond_error(req, 503, "aggregates store unavailable");
    read_free(r);
  }
}

/* ------------------------------------------------------------------ metrics */

static const char *const route_status_labels[] = {"route", "status"};
static const char *const result_labels[] = {"result"};

static const gw_metric_spec read_api_metrics[] = {
    GW_METRIC_FAMILY(gw_agg_read_api, f_requests, .name = "goodwill_aggregator_api_requests_total",
                     .help = "Read API answers by route and HTTP status (the HTTP layer's own "
                             "answers included).",
                     .type = GW_METRIC_COUNTER, .label_names = route_status_labels, .nlabels = 2,
                     .max_series = 64),
    GW_METRIC_FAMILY(gw_agg_read_api, f_duration,
                     .name = "goodwill_aggregator_api_request_duration_seconds",
                     .help = "Time from a complete read API request to its answer (Redis reads "
                             "included), by route and status.",
                     .type = GW_METRIC_HISTOGRAM, .label_names = route_status_labels, .nlabels = 2,
                     .buckets = gw_metrics_latency_buckets_s,
                     .nbuckets = GW_METRICS_LATENCY_BUCKETS, .max_series = 64),
    GW_METRIC_SERIES(gw_agg_read_api, m_tokens, .name = "goodwill_aggregator_auth_tokens",
                     .help = "Read API bearer tokens in use (from the tokens file; 0 in dev mode).",
                     .type = GW_METRIC_GAUGE),
    GW_METRIC_FAMILY(gw_agg_read_api, f_reloads, .name = "goodwill_aggregator_auth_reloads_total",
                     .help = "Reloads of the read API tokens file (SIGHUP) by result: ok, or "
                             "failed (the previous tokens stay in use).",
                     .type = GW_METRIC_COUNTER, .label_names = result_labels, .nlabels = 1),
};

/* ------------------------------------------------------------------ lifecycle */

int gw_agg_read_api_new(gw_agg_read_api **out, const gw_agg_read_api_config *cfg) {
  *out = NULL;
  char auth_err[512] = "";
  if (gw_auth_mode_check(cfg->tokens_file, cfg->dev_mode, "docs/API-read.md", auth_err,
                         sizeof(auth_err)) != 0) {
    GW_LOG(cfg->log, GW_LOG_ERROR, "invalid aggregator configuration", GW_LS("reason", auth_err));
    return -EINVAL;
  }
  gw_auth *auth = NULL;
  if (!cfg->dev_mode) {
    int arc = gw_auth_load_file(cfg->tokens_file, &auth, auth_err, sizeof(auth_err));
    if (arc != 0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "the tokens file cannot be used", GW_LS("reason", auth_err));
      return arc == -ENOMEM ? arc : -EINVAL;
    }
  }
  gw_agg_read_api *api = calloc(1, sizeof(*api));
  if (api == NULL) {
    gw_auth_free(auth);
    return -ENOMEM;
  }
  api->auth = auth;
  api->dev_mode = cfg->dev_mode;
  if (!cfg->dev_mode) {
    api->tokens_file = strdup(cfg->tokens_file);
    if (api->tokens_file == NULL)
      abort(); /* a path */
  }
  api->loop = cfg->loop;
  api->log = cfg->log;
  api->redis_errors = cfg->redis_errors;
  api->host = cfg->host;
  api->port = cfg->port;
  api->error_lines = (gw_log_limit)GW_LOG_LIMIT_INIT(1000, 5);
  if (cfg->rate_limit_per_s > 0) {
    api->rate_per_s = cfg->rate_limit_per_s;
    api->rate_burst = cfg->rate_burst >= 1             ? cfg->rate_burst
                      : cfg->rate_limit_per_s * 2 >= 1 ? cfg->rate_limit_per_s * 2
                                                       : 1;
    if (gw_rate_limit_new(api->rate_per_s, api->rate_burst, READ_RATE_MAX_TENANTS, &api->rate) !=
        0) {
      GW_LOG(cfg->log, GW_LOG_ERROR, "invalid read API rate limit",
             GW_LD("rate_per_s", cfg->rate_limit_per_s), GW_LD("burst", cfg->rate_burst));
      gw_agg_read_api_free(api);
      return -EINVAL;
    }
  }
  int rc =
      gw_metrics_register_all(cfg->metrics, read_api_metrics,
                              sizeof(read_api_metrics) / sizeof(read_api_metrics[0]), api, NULL);
  if (rc < 0) {
    gw_agg_read_api_free(api);
    return rc;
  }
  gw_metric_set(api->m_tokens, (double)gw_auth_count(api->auth));
  *out = api;
  return 0;
}

int gw_agg_read_api_start(gw_agg_read_api *api, gw_agg_read_path *read_path) {
  api->read_path = read_path;
  gw_http_config hcfg = {
      .host = api->host,
      .port = api->port,
      .max_body_bytes = 4096,
      .max_header_bytes = 16384,
      .max_connections = 512,
      .request_timeout_ms = 30000,
      .server_name = "goodwill-aggregator",
      .log = api->log,
      .on_server_answer = on_api_server_answer,
  };
  int rc = gw_http_server_start(&api->http, api->loop, &hcfg, api_handler, api);
  if (rc < 0) {
    api->http = NULL;
    GW_LOG(api->log, GW_LOG_ERROR, "read API listen failed", GW_LS("host", api->host),
           GW_LI("port", api->port), GW_LI("error", rc));
    return rc;
  }
  if (api->dev_mode)
    GW_LOG(api->log, GW_LOG_WARN, GW_AUTH_DEV_MODE_WARNING("read the aggregates of"));
  else
    GW_LOG(api->log, GW_LOG_INFO, "read API bearer tokens loaded", GW_LS("file", api->tokens_file),
           GW_LI("tokens", (long long)gw_auth_count(api->auth)));
  return 0;
}

void gw_agg_read_api_stop(gw_agg_read_api *api) {
  api->stopping = true;
}

void gw_agg_read_api_close(gw_agg_read_api *api, void (*closed)(void *opaque), void *opaque) {
  api->stopping = true;
  if (api->http == NULL) {
    closed(opaque);
    return;
  }
  gw_http_server *http = api->http;
  api->http = NULL;
  gw_http_server_close(http, closed, opaque);
}

void gw_agg_read_api_free(gw_agg_read_api *api) {
  if (api == NULL)
    return;
  free(api->tokens_file);
  gw_auth_free(api->auth);
  gw_rate_limit_free(api->rate);
  free(api);
}

int gw_agg_read_api_port(const gw_agg_read_api *api) {
  return api->http != NULL ? gw_http_server_port(api->http) : -1;
}

int gw_agg_read_api_reload_tokens(gw_agg_read_api *api) {
  if (api->dev_mode || api->tokens_file == NULL) {
    GW_LOG(api->log, GW_LOG_WARN, "no tokens file to reload (dev mode)");
    return -ENOTSUP;
  }
  gw_auth *fresh = NULL;
  char err[512] = "";
  int rc = gw_auth_load_file(api->tokens_file, &fresh, err, sizeof(err));
  if (rc != 0) {
    const char *labels[1] = {"failed"};
    gw_metric_add(gw_metrics_series(api->f_reloads, labels), 1);
    GW_LOG(api->log, GW_LOG_ERROR, "tokens file not reloaded; the previous tokens stay in use",
           GW_LS("reason", err), GW_LI("tokens", (long long)gw_auth_count(api->auth)));
    return rc;
  }
  /* Reads in flight copied their tenant when they started, so the old set can go at once. */
  gw_auth_free(api->auth);
  api->auth = fresh;
  const char *labels[1] = {"ok"};
  gw_metric_add(gw_metrics_series(api->f_reloads, labels), 1);
  gw_metric_set(api->m_tokens, (double)gw_auth_count(fresh));
  GW_LOG(api->log, GW_LOG_INFO, "tokens file reloaded", GW_LS("file", api->tokens_file),
         GW_LI("tokens", (long long)gw_auth_count(fresh)));
  return 0;
}
