/* report.c — the three outputs. The CSV is one table of eight columns so a
 * script can read it with any CSV reader (columns documented in --help and
 * in tools/skewload/README.md); the text report is the same numbers laid out
 * for people, with the busiest clients and the servers each one reached. */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dist.h"
#include "report.h"
#include "svg.h"
#include "tally.h"

/* Chart at most this many bars per server; longer runs merge seconds. */
#define REPORT_SVG_GROUPS_MAX 60
/* Servers listed per client before "+N more". */
#define REPORT_PINS_MAX 8

/* A client with its count, for sorting by busiest. */
struct report_rank {
    size_t client;
    uint64_t requests;
};

static int report_rank_cmp(const void *a, const void *b)
{
    const struct report_rank *x = a, *y = b;

    if (x->requests != y->requests)
        return x->requests < y->requests ? 1 : -1;
    return (x->client > y->client) - (x->client < y->client);
}

/* Clients that made at least one request, busiest first (ties: lower index
 * first). Returns a malloc'ed array of *n entries, or NULL (with *n = 0
 * when there is simply nobody). */
static struct report_rank *report_rank_clients(const struct tally *t, size_t *n)
{
    struct report_rank *r = malloc((t->nclients ? t->nclients : 1) * sizeof *r);

    *n = 0;
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < t->nclients; i++) {
        if (t->clients[i].requests > 0) {
            r[*n].client = i;
            r[*n].requests = t->clients[i].requests;
            (*n)++;
        }
    }
    qsort(r, *n, sizeof *r, report_rank_cmp);
    return r;
}

static int report_pin_cmp(const void *a, const void *b)
{
    const struct tally_pin *x = a, *y = b;

    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->server > y->server) - (x->server < y->server);
}

/* "a:69 b:69 c:69": the servers client c reached, busiest first. */
static void report_pins(const struct tally *t, const struct tally_client *c, char *buf,
                        size_t buflen)
{
    struct tally_pin pins[REPORT_PINS_MAX + 1];
    size_t n = 0, len = 0;

    buf[0] = '\0';
    if (c->npins == 0) {
        snprintf(buf, buflen, "-");
        return;
    }
    /* Keep the busiest REPORT_PINS_MAX without sorting the client's own list
     * (the tally stays read-only). */
    for (size_t i = 0; i < c->npins; i++) {
        pins[n++] = c->pins[i];
        qsort(pins, n, sizeof *pins, report_pin_cmp);
        if (n > REPORT_PINS_MAX)
            n = REPORT_PINS_MAX;
    }
    for (size_t i = 0; i < n && len < buflen; i++) {
        int w = snprintf(buf + len, buflen - len, "%s%s:%llu", i ? " " : "",
                         t->servers[pins[i].server].name,
                         (unsigned long long)pins[i].count);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (c->npins > n && len < buflen)
        snprintf(buf + len, buflen - len, " +%zu more", c->npins - n);
}

/* Server indices ordered by name, so reports and chart colours do not
 * depend on which server happened to answer first. NULL when out of memory. */
static int report_name_cmp(const void *a, const void *b, void *arg)
{
    const struct tally_server *s = ((const struct tally *)arg)->servers;

    return strcmp(s[*(const size_t *)a].name, s[*(const size_t *)b].name);
}

static size_t *report_server_order(const struct tally *t)
{
    size_t *order = malloc((t->nservers ? t->nservers : 1) * sizeof *order);

    if (order == NULL)
        return NULL;
    for (size_t i = 0; i < t->nservers; i++)
        order[i] = i;
    qsort_r(order, t->nservers, sizeof *order, report_name_cmp, (void *)t);
    return order;
}

/* Request counts of the servers, in table order. */
static uint64_t *report_server_counts(const struct tally *t)
{
    uint64_t *c = malloc((t->nservers ? t->nservers : 1) * sizeof *c);

    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < t->nservers; i++)
        c[i] = t->servers[i].requests;
    return c;
}

/* p50 and p99 over every server's samples together; -1 for none. */
static int report_overall_latency(const struct tally *t, double *p50, double *p99)
{
    size_t n = 0, k = 0;

    for (size_t i = 0; i < t->nservers; i++)
        n += t->servers[i].nlat;
    if (n == 0)
        return -1;
    double *all = malloc(n * sizeof *all);
    if (all == NULL)
        return -1;
    for (size_t i = 0; i < t->nservers; i++) {
        memcpy(all + k, t->servers[i].lat_ms, t->servers[i].nlat * sizeof *all);
        k += t->servers[i].nlat;
    }
    dist_sort(all, n);
    dist_percentile(all, n, 50, p50);
    dist_percentile(all, n, 99, p99);
    free(all);
    return 0;
}

static double report_rate(const struct tally *t, const struct report_info *ri)
{
    return ri->elapsed_s > 0 ? (double)t->requests / ri->elapsed_s : 0;
}

static double report_share(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* A percentile cell: the value in ms, or none when there are no samples. */
static const char *report_ms(const double *sorted, size_t n, double p, const char *none,
                             char *buf, size_t buflen)
{
    double v;

    if (dist_percentile(sorted, n, p, &v) == -1)
        snprintf(buf, buflen, "%s", none);
    else
        snprintf(buf, buflen, "%.3f", v);
    return buf;
}

static uint64_t report_answered(const struct tally *t)
{
    uint64_t n = 0;

    for (size_t i = 0; i < t->nservers; i++)
        n += t->servers[i].requests;
    return n;
}

int report_text(FILE *out, const struct tally *t, const struct report_info *ri)
{
    char a[32], b[32], ip[INET_ADDRSTRLEN], pins[256];
    uint64_t answered = report_answered(t);
    uint64_t *counts = report_server_counts(t);
    size_t nranked;
    struct report_rank *ranked = report_rank_clients(t, &nranked);
    size_t *order = report_server_order(t);
    int any = 0;

    if (counts == NULL || ranked == NULL || order == NULL)
        goto fail;
    char how[64];
    if (!ri->keepalive)
        snprintf(how, sizeof how, "a connection per request");
    else if (ri->per_conn)
        snprintf(how, sizeof how, "keep-alive, %u requests per connection", ri->per_conn);
    else
        snprintf(how, sizeof how, "keep-alive");
    fprintf(out, "target   %s, %s, %u connections, %s\n", ri->target, ri->mode,
            ri->concurrency, how);
    fprintf(out, "clients  %zu from %s, skew %s, seed %llu\n", ri->nclients,
            addr_str(ri->client_base, ip, sizeof ip), ri->skew,
            (unsigned long long)ri->seed);
    fprintf(out, "result   %llu requests in %.2f s = %.1f req/s; %llu ok, %llu errors%s\n\n",
            (unsigned long long)t->requests, ri->elapsed_s, report_rate(t, ri),
            (unsigned long long)t->ok, (unsigned long long)tally_errors(t),
            ri->interrupted ? " (interrupted)" : "");

    fprintf(out, "%-20s %9s %7s %9s %9s %7s\n", "server", "requests", "share", "p50 ms",
            "p99 ms", "errors");
    for (size_t i = 0; i < t->nservers; i++) {
        const struct tally_server *s = &t->servers[order[i]];
        fprintf(out, "%-20s %9llu %6.1f%% %9s %9s %7llu\n", s->name,
                (unsigned long long)s->requests, report_share(s->requests, answered),
                report_ms(s->lat_ms, s->nlat, 50, "-", a, sizeof a),
                report_ms(s->lat_ms, s->nlat, 99, "-", b, sizeof b),
                (unsigned long long)s->errors);
    }
    double p50, p99;
    if (report_overall_latency(t, &p50, &p99) == 0)
        fprintf(out, "%-20s %9llu %6.1f%% %9.3f %9.3f\n", "(all)",
                (unsigned long long)answered, answered ? 100.0 : 0.0, p50, p99);
    fprintf(out, "imbalance max/mean %.3f, cv %.3f over %zu servers\n\n",
            dist_imbalance(counts, t->nservers), dist_cv(counts, t->nservers), t->nservers);

    fprintf(out, "%-20s %9s %7s %7s  %s\n", "top clients", "requests", "share", "errors",
            "servers (requests each)");
    for (size_t i = 0; i < nranked && i < REPORT_TOP_CLIENTS; i++) {
        const struct tally_client *c = &t->clients[ranked[i].client];
        report_pins(t, c, pins, sizeof pins);
        fprintf(out, "%-20s %9llu %6.1f%% %7llu  %s\n",
                addr_str(addr_client(ri->client_base, ranked[i].client), ip, sizeof ip),
                (unsigned long long)c->requests, report_share(c->requests, t->requests),
                (unsigned long long)c->errors, pins);
    }
    fprintf(out, "(%zu of %zu clients made requests)\n\nerrors\n", nranked, ri->nclients);
    for (int k = 0; k < TALLY_ERR_COUNT; k++) {
        if (t->failures[k] > 0) {
            fprintf(out, "  %-18s %llu\n", tally_err_str((enum tally_err)k),
                    (unsigned long long)t->failures[k]);
            any = 1;
        }
    }
    for (int code = 0; code <= TALLY_STATUS_MAX; code++) {
        if (t->status[code] > 0) {
            fprintf(out, "  status_%03d         %llu\n", code,
                    (unsigned long long)t->status[code]);
            any = 1;
        }
    }
    if (!any)
        fprintf(out, "  none\n");
    free(counts);
    free(ranked);
    free(order);
    return ferror(out) ? -1 : 0;
fail:
    free(counts);
    free(ranked);
    free(order);
    return -1;
}

/* One CSV field, quoted when it holds a comma, a quote or a line end. */
static void report_csv_field(FILE *out, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

/* kind,name,value followed by the five remaining columns. */
static void report_csv_row(FILE *out, const char *kind, const char *name, const char *value,
                           const char *rest)
{
    fprintf(out, "%s,", kind);
    report_csv_field(out, name);
    fprintf(out, ",%s,%s\n", value, rest);
}

static void report_csv_metric(FILE *out, const char *name, const char *fmt, double v)
{
    char value[64];

    snprintf(value, sizeof value, fmt, v);
    report_csv_row(out, "summary", name, value, ",,,,");
}

int report_csv(FILE *out, const struct tally *t, const struct report_info *ri)
{
    char value[32], rest[512], a[32], b[32], ip[INET_ADDRSTRLEN], pins[256];
    uint64_t answered = report_answered(t);
    uint64_t *counts = report_server_counts(t);
    size_t nranked;
    struct report_rank *ranked = report_rank_clients(t, &nranked);
    size_t *order = report_server_order(t);
    double p50, p99;

    if (counts == NULL || ranked == NULL || order == NULL)
        goto fail;
    fprintf(out, "kind,name,value,share_pct,p50_ms,p99_ms,errors,servers\n");
    report_csv_metric(out, "requests", "%.0f", (double)t->requests);
    report_csv_metric(out, "ok", "%.0f", (double)t->ok);
    report_csv_metric(out, "errors", "%.0f", (double)tally_errors(t));
    report_csv_metric(out, "elapsed_s", "%.3f", ri->elapsed_s);
    report_csv_metric(out, "req_per_s", "%.1f", report_rate(t, ri));
    report_csv_metric(out, "servers", "%.0f", (double)t->nservers);
    report_csv_metric(out, "clients", "%.0f", (double)nranked);
    report_csv_metric(out, "imbalance", "%.4f", dist_imbalance(counts, t->nservers));
    report_csv_metric(out, "cv", "%.4f", dist_cv(counts, t->nservers));
    if (report_overall_latency(t, &p50, &p99) == 0) {
        report_csv_metric(out, "p50_ms", "%.3f", p50);
        report_csv_metric(out, "p99_ms", "%.3f", p99);
    }
    report_csv_metric(out, "interrupted", "%.0f", ri->interrupted);

    for (size_t i = 0; i < t->nservers; i++) {
        const struct tally_server *s = &t->servers[order[i]];
        snprintf(value, sizeof value, "%llu", (unsigned long long)s->requests);
        snprintf(rest, sizeof rest, "%.2f,%s,%s,%llu,", report_share(s->requests, answered),
                 report_ms(s->lat_ms, s->nlat, 50, "", a, sizeof a),
                 report_ms(s->lat_ms, s->nlat, 99, "", b, sizeof b),
                 (unsigned long long)s->errors);
        report_csv_row(out, "server", s->name, value, rest);
    }
    for (size_t i = 0; i < nranked; i++) {
        const struct tally_client *c = &t->clients[ranked[i].client];
        report_pins(t, c, pins, sizeof pins);
        snprintf(value, sizeof value, "%llu", (unsigned long long)c->requests);
        fprintf(out, "client,%s,%s,%.2f,,,%llu,",
                addr_str(addr_client(ri->client_base, ranked[i].client), ip, sizeof ip),
                value, report_share(c->requests, t->requests),
                (unsigned long long)c->errors);
        report_csv_field(out, pins);
        fputc('\n', out);
    }
    for (int k = 0; k < TALLY_ERR_COUNT; k++) {
        if (t->failures[k] > 0) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)t->failures[k]);
            report_csv_row(out, "error", tally_err_str((enum tally_err)k), value, ",,,,");
        }
    }
    for (int code = 0; code <= TALLY_STATUS_MAX; code++) {
        if (t->status[code] > 0) {
            snprintf(a, sizeof a, "status_%03d", code);
            snprintf(value, sizeof value, "%llu", (unsigned long long)t->status[code]);
            report_csv_row(out, "error", a, value, ",,,,");
        }
    }
    free(counts);
    free(ranked);
    free(order);
    return ferror(out) ? -1 : 0;
fail:
    free(counts);
    free(ranked);
    free(order);
    return -1;
}

int report_svg(FILE *out, const struct tally *t, const struct report_info *ri)
{
    size_t ns = t->nservers, secs = 0;
    char title[256], ylabel[64];
    int rc = -1;

    /* The run's length in whole seconds: the last second anyone answered in. */
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < t->servers[i].nsec; k++)
            if (t->servers[i].per_sec[k] > 0 && k + 1 > secs)
                secs = k + 1;
    size_t step = secs > REPORT_SVG_GROUPS_MAX
                  ? (secs + REPORT_SVG_GROUPS_MAX - 1) / REPORT_SVG_GROUPS_MAX : 1;
    size_t ngroups = (secs + step - 1) / step;

    double *values = calloc(ngroups * ns + 1, sizeof *values);
    char (*names)[TALLY_NAME_MAX + 32] = calloc(ns + 1, sizeof *names);
    const char **series = calloc(ns + 1, sizeof *series);
    size_t *order = report_server_order(t);
    if (values == NULL || names == NULL || series == NULL || order == NULL)
        goto out;
    for (size_t i = 0; i < ns; i++) {
        const struct tally_server *s = &t->servers[order[i]];
        snprintf(names[i], sizeof names[i], "%s (%llu)", s->name,
                 (unsigned long long)s->requests);
        series[i] = names[i];
        for (size_t k = 0; k < s->nsec && k < secs; k++)
            values[(k / step) * ns + i] += (double)s->per_sec[k];
    }
    snprintf(title, sizeof title, "requests per server: %s, skew %s, %zu clients, %s%s",
             ri->target, ri->skew, ri->nclients, ri->mode, ri->keepalive ? " keep-alive" : "");
    if (step == 1)
        snprintf(ylabel, sizeof ylabel, "requests per second");
    else
        snprintf(ylabel, sizeof ylabel, "requests per %zu s", step);

    struct svg_chart chart = {
        .title = title,
        .x_label = "seconds since start",
        .y_label = ylabel,
        .series = series,
        .nseries = ns,
        .ngroups = ngroups,
        .group_start = 0,
        .group_step = (double)step,
        .values = values,
    };
    rc = svg_write(out, &chart);
out:
    free(values);
    free(names);
    free(series);
    free(order);
    return rc;
}
