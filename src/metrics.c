/* metrics.c — Prometheus exposition (see metrics.h). Values are the sums of
 * the workers' counter slots at the time of the scrape. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "stats_fields.h"
#include "util.h"
#include "worker.h"

static void metrics_family(struct buf *out, const char *name, const char *type,
                           const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Names are restricted to [A-Za-z0-9_.-] by the config, so label values
 * need no escaping. */

/* Writes every family of a field table: rows with a metric name, the rows
 * of one family next to each other; one sample per object and row.
 * labels[k] are object k's labels, views[k] its view, totals at
 * totals_offset inside the view. */
static void metrics_fields(struct buf *out, const struct stats_field *fields, size_t n,
                           const void *views, size_t view_size, size_t totals_offset,
                           char (*labels)[160], size_t nobjects)
{
    for (size_t i = 0; i < n;) {
        if (fields[i].metric == NULL) {
            i++;
            continue;
        }
        size_t end = i + 1;
        while (end < n && fields[end].metric != NULL &&
               strcmp(fields[end].metric, fields[i].metric) == 0)
            end++;
        metrics_family(out, fields[i].metric, fields[i].type, fields[i].help);
        for (size_t k = 0; k < nobjects; k++) {
            const char *view = (const char *)views + k * view_size;
            for (size_t f = i; f < end; f++) {
                struct stats_value v;
                stats_field_value(&fields[f], view, view + totals_offset, &v);
                buf_printf(out, "%s{%s%s%s} ", fields[f].metric, labels[k],
                           fields[f].label ? "," : "", fields[f].label ? fields[f].label : "");
                stats_value_text(&v, out);
                buf_append(out, "\n", 1);
            }
        }
        i = end;
    }
}

/* The server state as an enumeration: one sample per state, 1 for the
 * current one. */
static void metrics_server_state(struct buf *out, const struct stats_server_view *views,
                                 char (*labels)[160], size_t n)
{
    metrics_family(out, "tcplb_server_state", "gauge",
                   "1 for the server's current state (up, down, drain, maint, ejected).");
    for (size_t k = 0; k < n; k++)
        for (int st = SERVER_UP; st <= SERVER_STATE_LAST; st++)
            buf_printf(out, "tcplb_server_state{%s,state=\"%s\"} %d\n", labels[k],
                       server_state_str(st), (int)server_state(views[k].srv) == st);
}

static void metrics_histograms(struct buf *out, const struct stats_server_view *views,
                               char (*labels)[160], size_t n)
{
    for (size_t hi = 0; hi < counters_server_nhists; hi++) {
        const struct counters_hist_desc *d = &counters_server_hists[hi];
        metrics_family(out, d->metric, "histogram", d->help);
        for (size_t k = 0; k < n; k++) {
            const struct counters_hist *h = (const struct counters_hist *)(const void *)
                ((const char *)&views[k].t + d->offset);
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= COUNTERS_HIST_BUCKETS; b++) {
                cumulative += h->buckets[b];
                char le[32];
                if (b < COUNTERS_HIST_BUCKETS)
                    snprintf(le, sizeof(le), "%g", d->bounds[b]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                buf_printf(out, "%s_bucket{%s,le=\"%s\"} %llu\n", d->metric, labels[k],
                           le, (unsigned long long)cumulative);
            }
            buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", d->metric, labels[k],
                       h->sum_us / 1e6, d->metric, labels[k],
                       (unsigned long long)cumulative);
        }
    }
}

static void metrics_servers(struct config *c, double now, struct buf *out)
{
    size_t cap = 0;
    for (size_t p = 0; p < c->npools; p++)
        cap += pool_capacity(&c->pools[p]);
    struct stats_server_view *views = calloc(cap ? cap : 1, sizeof(*views));
    char (*labels)[160] = calloc(cap ? cap : 1, sizeof(*labels));
    if (views == NULL || labels == NULL)
        goto out;
    size_t n = 0;
    for (size_t p = 0; p < c->npools; p++) {
        uint32_t ns = pool_nservers(&c->pools[p]);
        for (uint32_t i = 0; i < ns && n < cap; i++) {
            const struct server *s = &c->pools[p].servers[i];
            if (!server_listed(s))
                continue;
            stats_server_view_read(&views[n], s, c->global.workers, now);
            snprintf(labels[n], sizeof(labels[n]), "pool=\"%s\",server=\"%s\"",
                     c->pools[p].name, s->name);
            n++;
        }
    }
    metrics_fields(out, stats_server_fields, stats_server_nfields, views, sizeof(*views),
                   offsetof(struct stats_server_view, t), labels, n);
    metrics_server_state(out, views, labels, n);
    metrics_histograms(out, views, labels, n);
out:
    free(views);
    free(labels);
}

static void metrics_listeners(struct config *c, struct buf *out)
{
    size_t n = c->nlisteners;
    struct stats_listener_view *views = calloc(n ? n : 1, sizeof(*views));
    char (*labels)[160] = calloc(n ? n : 1, sizeof(*labels));
    if (views == NULL || labels == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        stats_listener_view_read(&views[i], &c->listeners[i], c->global.workers);
        snprintf(labels[i], sizeof(labels[i]), "listener=\"%s\"", c->listeners[i].name);
    }
    metrics_fields(out, stats_listener_fields, stats_listener_nfields, views,
                   sizeof(*views), offsetof(struct stats_listener_view, t), labels, n);
out:
    free(views);
    free(labels);
}

void metrics_write(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
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
    metrics_servers(c, ctx->now(), out);
}
