/* metrics.c — Prometheus exposition (see metrics.h). Values are the sums of
 * the workers' counter slots at the time of the scrape. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

static void metrics_family(struct buf *out, const char *name, const char *type,
                           const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Names are restricted to [A-Za-z0-9_.-] by the config, so label values
 * need no escaping. */

/* A per-server family with one sample per server. */
struct metrics_server_family {
    const char *name, *type, *help;
    long long (*value)(const struct server *s, const struct server_totals *t);
};

static long long metrics_up(const struct server *s, const struct server_totals *t)
{
    (void)t;
    return server_state(s) == SERVER_UP;
}
static long long metrics_weight(const struct server *s, const struct server_totals *t)
{
    (void)t;
    return server_weight(s);
}
static long long metrics_active(const struct server *s, const struct server_totals *t)
{
    (void)t;
    return server_active(s);
}
static long long metrics_total(const struct server *s, const struct server_totals *t)
{
    (void)s;
    return (long long)t->total;
}
static long long metrics_failed(const struct server *s, const struct server_totals *t)
{
    (void)s;
    return (long long)t->failed;
}
static long long metrics_retried(const struct server *s, const struct server_totals *t)
{
    (void)s;
    return (long long)t->retried;
}

static const struct metrics_server_family metrics_server_families[] = {
    { "tcplb_server_up", "gauge",
      "1 if the server takes new connections (state up), else 0.", metrics_up },
    { "tcplb_server_weight", "gauge", "Current weight of the server.", metrics_weight },
    { "tcplb_server_active_connections", "gauge", "Connections open to the server now.",
      metrics_active },
    { "tcplb_server_connections_total", "counter",
      "Connections handed to the server (connect succeeded).", metrics_total },
    { "tcplb_server_connect_failures_total", "counter",
      "Failed connect attempts to the server.", metrics_failed },
    { "tcplb_server_connect_retried_total", "counter",
      "Failed connects hidden by a retry on another server.", metrics_retried },
};

static void metrics_servers(struct config *c, struct server_totals *totals,
                            struct buf *out)
{
    for (size_t f = 0; f < ARRAY_LEN(metrics_server_families); f++) {
        const struct metrics_server_family *fam = &metrics_server_families[f];
        metrics_family(out, fam->name, fam->type, fam->help);
        size_t k = 0;
        for (size_t p = 0; p < c->npools; p++)
            for (uint32_t i = 0; i < c->pools[p].nservers; i++, k++)
                buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %lld\n", fam->name,
                           c->pools[p].name, c->pools[p].servers[i].name,
                           fam->value(&c->pools[p].servers[i], &totals[k]));
    }

    /* the two families with more than one sample per server */
    metrics_family(out, "tcplb_server_state", "gauge",
                   "1 for the server's current state (up, down, drain, maint).");
    for (size_t p = 0; p < c->npools; p++)
        for (uint32_t i = 0; i < c->pools[p].nservers; i++)
            for (int st = SERVER_UP; st <= SERVER_MAINT; st++)
                buf_printf(out, "tcplb_server_state{pool=\"%s\",server=\"%s\","
                           "state=\"%s\"} %d\n", c->pools[p].name,
                           c->pools[p].servers[i].name, server_state_str(st),
                           (int)server_state(&c->pools[p].servers[i]) == st);
    metrics_family(out, "tcplb_server_bytes_total", "counter",
                   "Payload bytes relayed: in = client to server, out = server to client.");
    size_t k = 0;
    for (size_t p = 0; p < c->npools; p++)
        for (uint32_t i = 0; i < c->pools[p].nservers; i++, k++)
            for (int dir = 0; dir < 2; dir++)
                buf_printf(out, "tcplb_server_bytes_total{pool=\"%s\",server=\"%s\","
                           "direction=\"%s\"} %llu\n", c->pools[p].name,
                           c->pools[p].servers[i].name, dir ? "out" : "in",
                           (unsigned long long)(dir ? totals[k].bytes_out
                                                    : totals[k].bytes_in));
}

static void metrics_histogram(struct config *c, struct server_totals *totals,
                              struct buf *out, const char *name, const char *help,
                              const double *bounds, int duration)
{
    metrics_family(out, name, "histogram", help);
    size_t k = 0;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        for (uint32_t i = 0; i < pool->nservers; i++, k++) {
            const struct counters_hist *h = duration ? &totals[k].duration
                                                     : &totals[k].connect;
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= COUNTERS_HIST_BUCKETS; b++) {
                cumulative += h->buckets[b];
                char le[32];
                if (b < COUNTERS_HIST_BUCKETS)
                    snprintf(le, sizeof(le), "%g", bounds[b]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                buf_printf(out, "%s_bucket{pool=\"%s\",server=\"%s\",le=\"%s\"} %llu\n",
                           name, pool->name, pool->servers[i].name, le,
                           (unsigned long long)cumulative);
            }
            buf_printf(out, "%s_sum{pool=\"%s\",server=\"%s\"} %.6f\n"
                       "%s_count{pool=\"%s\",server=\"%s\"} %llu\n",
                       name, pool->name, pool->servers[i].name, h->sum_us / 1e6,
                       name, pool->name, pool->servers[i].name,
                       (unsigned long long)cumulative);
        }
    }
}

/* Listener families: one sample per listener, read at an offset of the
 * summed totals. */
static const struct {
    const char *name, *type, *help;
    size_t field;
} metrics_listener_families[] = {
    { "tcplb_listener_connections_total", "counter", "Client connections accepted.",
      offsetof(struct listener_totals, total) },
    { "tcplb_listener_rejected_total", "counter",
      "Client connections answered 503 or closed for want of a server.",
      offsetof(struct listener_totals, rejected) },
    { "tcplb_listener_active_connections", "gauge", "Client connections open now.",
      offsetof(struct listener_totals, active) },
    { "tcplb_listener_proxy_errors_total", "counter",
      "Client connections closed for a missing or malformed PROXY header.",
      offsetof(struct listener_totals, proxy_errors) },
};

static void metrics_listeners(struct config *c, struct buf *out)
{
    unsigned nw = c->global.workers;
    struct listener_totals t[c->nlisteners ? c->nlisteners : 1];
    for (size_t i = 0; i < c->nlisteners; i++)
        counters_listener_sum(c->listeners[i].counters, nw, &t[i]);

    for (size_t f = 0; f < ARRAY_LEN(metrics_listener_families); f++) {
        metrics_family(out, metrics_listener_families[f].name,
                       metrics_listener_families[f].type, metrics_listener_families[f].help);
        for (size_t i = 0; i < c->nlisteners; i++) {
            const uint64_t *v = (const uint64_t *)(const void *)
                ((const char *)&t[i] + metrics_listener_families[f].field);
            buf_printf(out, "%s{listener=\"%s\"} %llu\n", metrics_listener_families[f].name,
                       c->listeners[i].name, (unsigned long long)*v);
        }
    }
    metrics_family(out, "tcplb_listener_http_errors_total", "counter",
                   "Error answers of mode=http listeners by status code.");
    for (size_t i = 0; i < c->nlisteners; i++)
        buf_printf(out, "tcplb_listener_http_errors_total{listener=\"%s\",code=\"502\"} %llu\n"
                   "tcplb_listener_http_errors_total{listener=\"%s\",code=\"504\"} %llu\n",
                   c->listeners[i].name, (unsigned long long)t[i].http_502,
                   c->listeners[i].name, (unsigned long long)t[i].http_504);
}

void metrics_write(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    size_t n = 0;
    for (size_t p = 0; p < c->npools; p++)
        n += c->pools[p].nservers;
    struct server_totals *totals = calloc(n ? n : 1, sizeof(*totals));
    if (totals == NULL)
        return;
    size_t k = 0;
    for (size_t p = 0; p < c->npools; p++)
        for (uint32_t i = 0; i < c->pools[p].nservers; i++)
            counters_server_sum(c->pools[p].servers[i].counters, c->global.workers,
                                &totals[k++]);

    metrics_family(out, "tcplb_up", "gauge", "1 while tcplb runs.");
    buf_printf(out, "tcplb_up 1\n");
    metrics_family(out, "tcplb_uptime_seconds", "gauge", "Seconds since tcplb started.");
    buf_printf(out, "tcplb_uptime_seconds %.3f\n", ctx->now() - ctx->started);
    metrics_family(out, "tcplb_active_connections", "gauge",
                   "Client connections open now, all listeners.");
    buf_printf(out, "tcplb_active_connections %lld\n", (long long)worker_conn_count());
    metrics_family(out, "tcplb_log_dropped_total", "counter",
                   "Access log lines dropped because the writer fell behind.");
    buf_printf(out, "tcplb_log_dropped_total %llu\n", (unsigned long long)log_dropped());

    metrics_listeners(c, out);
    metrics_servers(c, totals, out);
    metrics_histogram(c, totals, out, "tcplb_server_connect_seconds",
                      "Time to connect to the server.", counters_connect_bounds, 0);
    metrics_histogram(c, totals, out, "tcplb_server_session_seconds",
                      "Duration of client connections that reached the server.",
                      counters_duration_bounds, 1);
    free(totals);
}
