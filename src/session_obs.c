/* session_obs.c — what each connection costs: its requests and their
 * response times. In mode http the request observer (http_obs.c) follows
 * both directions and reports requests, answers by status class and, with
 * log_requests, one access log line per request; in mode tcp an exchange
 * is a burst of client bytes after the server has spoken (or first), timed
 * to the server's next byte. Both count into the server's counters and its
 * window of the last minute, from this worker's slot only. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "health.h"
#include "http_obs.h"
#include "log.h"
#include "log_line.h"
#include "net.h"
#include "scheduler.h"
#include "session_int.h"

static struct server_counters *session_slot(struct session *s)
{
    return &s->server->counters[s->worker->id];
}

/* A request (or exchange) went to the server. */
static void session_count_request(struct session *s)
{
    struct server_counters *c = session_slot(s);
    s->requests++;
    counter_add(&c->requests, 1);
    recent_count(&c->recent, ev_now(s->worker->loop), RECENT_REQUESTS);
}

/* The first byte of an answer came <rt> seconds after its request's. */
static void session_count_rt(struct session *s, double rt)
{
    struct server_counters *c = session_slot(s);
    s->rt_sum += rt;
    s->rt_n++;
    counters_hist_add(&c->response, counters_response_bounds, rt);
    recent_rt(&c->recent, ev_now(s->worker->loop), rt);
    if (s->pool->sched->observe != NULL)
        s->pool->sched->observe(s->pool->sched_state, s->server, SCHED_OBSERVE_RESPONSE,
                                rt, ev_now(s->worker->loop));
}

/* ---- mode tcp ------------------------------------------------------------------ */

void session_exchange_start(struct session *s)
{
    session_count_request(s);
}

void session_exchange_answered(struct session *s)
{
    session_count_rt(s, ev_now(s->worker->loop) - s->awaiting_since);
    health_outlier_success(s->server);
}

void session_server_reset(struct session *s)
{
    /* a request was sent and not answered yet, or (mode http) an answer
     * was under way: the observer is held only while one is in flight */
    if (s->server != NULL && (s->awaiting_since > 0 || s->obs != NULL))
        health_outlier_failure(s->server, OUTLIER_RESET);
}

/* ---- mode http ------------------------------------------------------------------ */

/* Writes <path> with every byte that could break a logfmt line (spaces,
 * quotes, backslashes, controls, non-ASCII) as %XX. */
static void session_escape_path(const char *path, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

static void session_log_request(struct session *s, const struct http_obs_exchange *x)
{
    char line[2048], client[NET_ADDR_STRLEN], ts[40], path[HTTP_OBS_PATH_MAX * 3 + 1];
    /* the request's own start on the wall clock */
    double at = (double)s->wall_start.tv_sec + s->wall_start.tv_nsec / 1e9 +
                (x->sent - s->started);
    time_t sec = (time_t)at;
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)((at - (double)sec) * 1000) % 1000);
    session_escape_path(x->path, path, sizeof(path));

    struct log_line l;
    log_line_start(&l, line, sizeof(line), s->worker->config->global.log_format);
    log_line_str(&l, "type", "request");
    log_line_str(&l, "ts", ts);
    log_line_str(&l, "client",
                 net_addr_str((struct sockaddr *)&s->client_addr, client, sizeof(client)));
    log_line_str(&l, "listener", s->listener->name);
    log_line_str(&l, "pool", s->pool->name);
    log_line_str(&l, "server", s->server->name);
    log_line_str(&l, "method", x->method);
    log_line_str(&l, "path", path[0] ? path : NULL);
    log_line_num(&l, "status", "%d", x->status);
    if (isnan(x->rt))
        log_line_none(&l, "rt_ms");
    else
        log_line_num(&l, "rt_ms", "%.2f", x->rt * 1000.0);
    log_line_u64(&l, "bytes_in", x->bytes_in);
    log_line_u64(&l, "bytes_out", x->bytes_out);
    size_t len = log_line_end(&l);
    if (len > 0)
        log_access(s->worker->id, line, len);
}

static void session_obs_request(void *ctx)
{
    session_count_request(ctx);
}

static void session_obs_first_byte(void *ctx, double rt)
{
    session_count_rt(ctx, rt);
}

static void session_obs_response(void *ctx, const struct http_obs_exchange *x)
{
    struct session *s = ctx;
    struct server_counters *c = session_slot(s);
    switch (x->status / 100) {
    case 1: counter_add(&c->resp_1xx, 1); break;
    case 2: counter_add(&c->resp_2xx, 1); break;
    case 3: counter_add(&c->resp_3xx, 1); break;
    case 4: counter_add(&c->resp_4xx, 1); break;
    case 5: counter_add(&c->resp_5xx, 1); break;
    default: break;
    }
    if (x->interim)
        return;
    if (x->status / 100 == 5)
        health_outlier_failure(s->server, OUTLIER_5XX);
    else
        health_outlier_success(s->server);
    double now = ev_now(s->worker->loop);
    s->last_status = (uint16_t)x->status;
    recent_count(&c->recent, now, RECENT_RESPONSES);
    if (x->status / 100 == 5)
        recent_count(&c->recent, now, RECENT_5XX);
    if (s->listener->log_requests && log_access_enabled())
        session_log_request(s, x);
}

static void session_obs_stopped(void *ctx, enum http_obs_stop why)
{
    struct session *s = ctx;
    s->obs_off = 1;
    if (why == HTTP_OBS_UNPARSED)
        counter_add(&session_slot(s)->http_unparsed, 1);
}

static const struct http_obs_sink session_obs_sink = {
    .request = session_obs_request,
    .first_byte = session_obs_first_byte,
    .response = session_obs_response,
    .stopped = session_obs_stopped,
};

int session_observed(const struct session *s)
{
    return s->listener->mode == LISTENER_HTTP && !s->obs_off;
}

/* The observer for the next bytes, created when a request starts. */
static struct http_obs *session_obs_get(struct session *s)
{
    if (s->obs == NULL) {
        s->obs = http_obs_new(&session_obs_sink, s, s->listener->log_requests);
        if (s->obs == NULL)
            s->obs_off = 1;     /* out of memory: this connection goes unobserved */
    }
    return s->obs;
}

/* Between requests the observer goes back: an idle keep-alive connection
 * holds none. */
static void session_obs_settle(struct session *s)
{
    if (s->obs != NULL && (s->obs_off || http_obs_idle(s->obs))) {
        http_obs_free(s->obs);
        s->obs = NULL;
    }
}

void session_observe_sent(struct session *s, const char *data, size_t n)
{
    if (!session_observed(s) || session_obs_get(s) == NULL)
        return;
    http_obs_feed(s->obs, HTTP_OBS_REQUEST, data, n, ev_now(s->worker->loop));
    session_obs_settle(s);
}

void session_observe_received(struct session *s, const char *data, size_t n)
{
    if (!session_observed(s) || session_obs_get(s) == NULL)
        return;
    http_obs_feed(s->obs, HTTP_OBS_RESPONSE, data, n, ev_now(s->worker->loop));
    session_obs_settle(s);
}

void session_observe_eof(struct session *s, int from_server)
{
    if (!session_observed(s) || s->obs == NULL)
        return;
    http_obs_eof(s->obs, from_server ? HTTP_OBS_RESPONSE : HTTP_OBS_REQUEST,
                 ev_now(s->worker->loop));
    session_obs_settle(s);
}

void session_observe_end(struct session *s)
{
    http_obs_free(s->obs);
    s->obs = NULL;
}
