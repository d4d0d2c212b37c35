/* metrics.c — Prometheus exposition (see metrics.h). Values are the sums of
 * the workers' counter slots at the time of the scrape. */
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "worker.h"

static void metrics_family(struct buf *out, const char *name, const char *type,
                           const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Names are restricted to [A-Za-z0-9_.-] by the config, so label values
 * need no escaping. */
static void metrics_servers(struct config *c, struct server_totals *totals,
                            struct buf *out)
{
    struct { const char *name, *type, *help; } fam[] = {
        { "tcplb_server_up", "gauge", "1 if the server takes new connections (state up), else 0." },
        { "tcplb_server_state", "gauge", "1 for the server's current state (up, down, drain, maint)." },
        { "tcplb_server_weight", "gauge", "Current weight of the server." },
        { "tcplb_server_active_connections", "gauge", "Connections open to the server now." },
        { "tcplb_server_connections_total", "counter", "Connections handed to the server (connect succeeded)." },
        { "tcplb_server_connect_failures_total", "counter", "Failed connect attempts to the server." },
        { "tcplb_server_connect_retried_total", "counter", "Failed connects hidden by a retry on another server." },
        { "tcplb_server_bytes_total", "counter", "Payload bytes relayed: in = client to server, out = server to client." },
    };
    size_t k;
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
        k = 0;
        for (size_t p = 0; p < c->npools; p++) {
            struct pool *pool = &c->pools[p];
            for (uint32_t i = 0; i < pool->nservers; i++, k++) {
                struct server *s = &pool->servers[i];
                struct server_totals *t = &totals[k];
                const char *pn = pool->name, *sn = s->name;
                switch (f) {
                case 0:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %d\n", fam[f].name, pn,
                               sn, server_state(s) == SERVER_UP);
                    break;
                case 1:
                    for (int st = SERVER_UP; st <= SERVER_MAINT; st++)
                        buf_printf(out, "%s{pool=\"%s\",server=\"%s\",state=\"%s\"} %d\n",
                                   fam[f].name, pn, sn, server_state_str(st),
                                   (int)server_state(s) == st);
                    break;
                case 2:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %u\n", fam[f].name, pn,
                               sn, server_weight(s));
                    break;
                case 3:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %lld\n", fam[f].name,
                               pn, sn, (long long)server_active(s));
                    break;
                case 4:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %llu\n", fam[f].name,
                               pn, sn, (unsigned long long)t->total);
                    break;
                case 5:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %llu\n", fam[f].name,
                               pn, sn, (unsigned long long)t->failed);
                    break;
                case 6:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\"} %llu\n", fam[f].name,
                               pn, sn, (unsigned long long)t->retried);
                    break;
                case 7:
                    buf_printf(out, "%s{pool=\"%s\",server=\"%s\",direction=\"in\"} %llu\n"
                               "%s{pool=\"%s\",server=\"%s\",direction=\"out\"} %llu\n",
                               fam[f].name, pn, sn, (unsigned long long)t->bytes_in,
                               fam[f].name, pn, sn, (unsigned long long)t->bytes_out);
                    break;
                }
            }
        }
    }
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

static void metrics_listeners(struct config *c, struct buf *out)
{
    unsigned nw = c->global.workers;
    struct listener_totals t[c->nlisteners ? c->nlisteners : 1];
    for (size_t i = 0; i < c->nlisteners; i++)
        counters_listener_sum(c->listeners[i].counters, nw, &t[i]);

    metrics_family(out, "tcplb_listener_connections_total", "counter",
                   "Client connections accepted.");
    for (size_t i = 0; i < c->nlisteners; i++)
        buf_printf(out, "tcplb_listener_connections_total{listener=\"%s\"} %llu\n",
                   c->listeners[i].name, (unsigned long long)t[i].total);
    metrics_family(out, "tcplb_listener_rejected_total", "counter",
                   "Client connections answered 503 or closed for want of a server.");
    for (size_t i = 0; i < c->nlisteners; i++)
        buf_printf(out, "tcplb_listener_rejected_total{listener=\"%s\"} %llu\n",
                   c->listeners[i].name, (unsigned long long)t[i].rejected);
    metrics_family(out, "tcplb_listener_active_connections", "gauge",
                   "Client connections open now.");
    for (size_t i = 0; i < c->nlisteners; i++)
        buf_printf(out, "tcplb_listener_active_connections{listener=\"%s\"} %llu\n",
                   c->listeners[i].name, (unsigned long long)t[i].active);
    metrics_family(out, "tcplb_listener_proxy_errors_total", "counter",
                   "Client connections closed for a missing or malformed PROXY header.");
    for (size_t i = 0; i < c->nlisteners; i++)
        buf_printf(out, "tcplb_listener_proxy_errors_total{listener=\"%s\"} %llu\n",
                   c->listeners[i].name, (unsigned long long)t[i].proxy_errors);
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
