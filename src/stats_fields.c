/* stats_fields.c — the server and listener field tables (generated from the
 * lists in counters.h), the getters of their computed rows, and the CSV and
 * JSON writers that walk them (see stats_fields.h). The metrics walk the same
 * tables in metrics.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "pool.h"
#include "stats_fields.h"
#include "util.h"

/* ---- getters of the computed rows ------------------------------------------ */

#define SERVER_VIEW(view) ((const struct stats_server_view *)(view))->srv
#define LISTENER_VIEW(view) ((const struct stats_listener_view *)(view))->l

static void stats_set_str(struct stats_value *out, const char *s)
{
    out->type = STATS_STR;
    out->v.s = s;
}

static void stats_set_u64(struct stats_value *out, uint64_t u)
{
    out->type = STATS_U64;
    out->v.u = u;
}

static void stats_server_get_name(const void *view, struct stats_value *out)
{
    stats_set_str(out, SERVER_VIEW(view)->name);
}

static void stats_server_get_addr(const void *view, struct stats_value *out)
{
    stats_set_str(out, SERVER_VIEW(view)->addr_text);
}

static void stats_server_get_state(const void *view, struct stats_value *out)
{
    stats_set_str(out, server_state_str(server_state(SERVER_VIEW(view))));
}

static void stats_server_get_up(const void *view, struct stats_value *out)
{
    stats_set_u64(out, server_state(SERVER_VIEW(view)) == SERVER_UP);
}

static void stats_server_get_weight(const void *view, struct stats_value *out)
{
    stats_set_u64(out, server_weight(SERVER_VIEW(view)));
}

static void stats_server_get_eweight(const void *view, struct stats_value *out)
{
    out->type = STATS_DOUBLE;
    out->v.d = (double)server_eweight(SERVER_VIEW(view)) / SERVER_WEIGHT_SCALE;
}

static void stats_server_get_backup(const void *view, struct stats_value *out)
{
    stats_set_u64(out, SERVER_VIEW(view)->backup != 0);
}

static void stats_server_get_active(const void *view, struct stats_value *out)
{
    out->type = STATS_S64;
    out->v.i = server_active(SERVER_VIEW(view));
}

static void stats_set_ms(struct stats_value *out, double seconds)
{
    out->type = STATS_DOUBLE;
    out->v.d = isnan(seconds) ? NAN : seconds * 1000.0;
}

static void stats_server_get_rt_p50(const void *view, struct stats_value *out)
{
    stats_set_ms(out, recent_rt_quantile(&((const struct stats_server_view *)view)->recent,
                                         0.50));
}

static void stats_server_get_rt_p90(const void *view, struct stats_value *out)
{
    stats_set_ms(out, recent_rt_quantile(&((const struct stats_server_view *)view)->recent,
                                         0.90));
}

static void stats_server_get_rt_p99(const void *view, struct stats_value *out)
{
    stats_set_ms(out, recent_rt_quantile(&((const struct stats_server_view *)view)->recent,
                                         0.99));
}

static void stats_server_get_rt_mean(const void *view, struct stats_value *out)
{
    stats_set_ms(out, recent_rt_mean(&((const struct stats_server_view *)view)->recent));
}

static void stats_server_get_rt_samples(const void *view, struct stats_value *out)
{
    stats_set_u64(out, ((const struct stats_server_view *)view)->recent.rt_samples);
}

static uint64_t stats_recent(const void *view, enum recent_count what)
{
    return ((const struct stats_server_view *)view)->recent.counts[what];
}

static void stats_server_get_lm_connections(const void *view, struct stats_value *out)
{
    stats_set_u64(out, stats_recent(view, RECENT_CONNS));
}

static void stats_server_get_lm_requests(const void *view, struct stats_value *out)
{
    stats_set_u64(out, stats_recent(view, RECENT_REQUESTS));
}

static void stats_server_get_lm_failed(const void *view, struct stats_value *out)
{
    stats_set_u64(out, stats_recent(view, RECENT_FAILED));
}

static void stats_server_get_lm_responses(const void *view, struct stats_value *out)
{
    stats_set_u64(out, stats_recent(view, RECENT_RESPONSES));
}

static void stats_server_get_lm_5xx(const void *view, struct stats_value *out)
{
    stats_set_u64(out, stats_recent(view, RECENT_5XX));
}

static void stats_listener_get_name(const void *view, struct stats_value *out)
{
    stats_set_str(out, LISTENER_VIEW(view)->name);
}

static void stats_listener_get_bind(const void *view, struct stats_value *out)
{
    stats_set_str(out, LISTENER_VIEW(view)->bind_texts[0]);
}

static void stats_listener_get_binds(const void *view, struct stats_value *out)
{
    const struct listener_conf *l = LISTENER_VIEW(view);
    out->type = STATS_STRLIST;
    out->v.list = l->bind_texts;
    out->nlist = l->nbinds;
}

static void stats_listener_get_mode(const void *view, struct stats_value *out)
{
    stats_set_str(out, listener_mode_str(LISTENER_VIEW(view)->mode));
}

static void stats_listener_get_pool(const void *view, struct stats_value *out)
{
    stats_set_str(out, LISTENER_VIEW(view)->pool_name);
}

static void stats_listener_get_accept_proxy(const void *view, struct stats_value *out)
{
    out->type = STATS_BOOL;
    out->v.b = LISTENER_VIEW(view)->accept_proxy != 0;
}

/* ---- the tables -------------------------------------------------------------- */

#define STATS_SERVER_COUNTER(field, json, csv, metric, label, type, clear, help) \
    { json, csv, metric, label, type, help, offsetof(struct server_totals, field), NULL },
#define STATS_SERVER_FIGURE(field, json, csv, metric, label, type, help) \
    { json, csv, metric, label, type, help, 0, stats_server_get_##field },
#define STATS_LISTENER_COUNTER(field, json, csv, metric, label, type, clear, help) \
    { json, csv, metric, label, type, help, offsetof(struct listener_totals, field), NULL },
#define STATS_LISTENER_FIGURE(field, json, csv, metric, label, type, help) \
    { json, csv, metric, label, type, help, 0, stats_listener_get_##field },

const struct stats_field stats_server_fields[] = {
    SERVER_FIELDS(STATS_SERVER_COUNTER, STATS_SERVER_FIGURE)
};
const size_t stats_server_nfields = ARRAY_LEN(stats_server_fields);

const struct stats_field stats_listener_fields[] = {
    LISTENER_FIELDS(STATS_LISTENER_COUNTER, STATS_LISTENER_FIGURE)
};
const size_t stats_listener_nfields = ARRAY_LEN(stats_listener_fields);

/* ---- values ------------------------------------------------------------------ */

void stats_server_view_read(struct stats_server_view *v, const struct server *s,
                            unsigned nworkers, double now)
{
    v->srv = s;
    counters_server_sum(s->counters, nworkers, &v->t);
    memset(&v->recent, 0, sizeof(v->recent));
    for (unsigned w = 0; w < nworkers; w++)
        recent_merge(&s->counters[w].recent, now, &v->recent);
}

void stats_listener_view_read(struct stats_listener_view *v,
                              const struct listener_conf *l, unsigned nworkers)
{
    v->l = l;
    counters_listener_sum(l->counters, nworkers, &v->t);
}

void stats_field_value(const struct stats_field *f, const void *view,
                       const void *totals, struct stats_value *out)
{
    memset(out, 0, sizeof(*out));
    if (f->get != NULL) {
        f->get(view, out);
        return;
    }
    out->type = STATS_U64;
    out->v.u = *(const uint64_t *)(const void *)((const char *)totals + f->offset);
}

void stats_json_string(struct buf *out, const char *s)
{
    buf_append(out, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            buf_printf(out, "\\u%04x", c);
        else
            buf_append(out, s, 1);
    }
    buf_append(out, "\"", 1);
}

void stats_value_text(const struct stats_value *v, struct buf *out)
{
    switch (v->type) {
    case STATS_U64:
        buf_printf(out, "%llu", (unsigned long long)v->v.u);
        break;
    case STATS_S64:
        buf_printf(out, "%lld", (long long)v->v.i);
        break;
    case STATS_DOUBLE:
        if (!isnan(v->v.d))
            buf_printf(out, "%.3f", v->v.d);
        break;
    case STATS_STR:
        buf_printf(out, "%s", v->v.s);
        break;
    case STATS_BOOL:
        buf_printf(out, "%d", v->v.b);
        break;
    case STATS_STRLIST:
        for (size_t i = 0; i < v->nlist; i++)
            buf_printf(out, "%s%s", i ? " " : "", v->v.list[i]);
        break;
    }
}

void stats_value_json(const struct stats_value *v, struct buf *out)
{
    switch (v->type) {
    case STATS_DOUBLE:
        if (isnan(v->v.d))
            buf_printf(out, "null");
        else
            buf_printf(out, "%.3f", v->v.d);
        return;
    case STATS_STR:
        stats_json_string(out, v->v.s);
        return;
    case STATS_BOOL:
        buf_printf(out, "%s", v->v.b ? "true" : "false");
        return;
    case STATS_STRLIST:
        buf_append(out, "[", 1);
        for (size_t i = 0; i < v->nlist; i++) {
            if (i)
                buf_append(out, ",", 1);
            stats_json_string(out, v->v.list[i]);
        }
        buf_append(out, "]", 1);
        return;
    case STATS_U64:
    case STATS_S64:
        stats_value_text(v, out);
        return;
    }
}

/* ---- writers ------------------------------------------------------------------ */

void stats_fields_csv_header(const struct stats_field *fields, size_t n, struct buf *out)
{
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].csv == NULL)
            continue;
        buf_printf(out, "%s%s", first ? "" : ",", fields[i].csv);
        first = 0;
    }
}

void stats_fields_csv_row(const struct stats_field *fields, size_t n, const void *view,
                          const void *totals, struct buf *out)
{
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].csv == NULL)
            continue;
        struct stats_value v;
        stats_field_value(&fields[i], view, totals, &v);
        if (!first)
            buf_append(out, ",", 1);
        stats_value_text(&v, out);
        first = 0;
    }
}

/* Length of the object part of a dotted name ("rt_ms" of "rt_ms.p50"), 0
 * when it has none. */
static size_t stats_json_prefix(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

void stats_fields_json(const struct stats_field *fields, size_t n, const void *view,
                       const void *totals, struct buf *out)
{
    const char *open = NULL;      /* the nested object being written */
    size_t open_len = 0;
    int first = 1, first_inner = 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = fields[i].json;
        if (name == NULL)
            continue;
        size_t plen = stats_json_prefix(name);
        if (open != NULL && (plen != open_len || strncmp(name, open, plen) != 0)) {
            buf_append(out, "}", 1);
            open = NULL;
        }
        if (plen > 0 && open == NULL) {
            buf_printf(out, "%s\"%.*s\":{", first ? "" : ",", (int)plen, name);
            open = name;
            open_len = plen;
            first = 0;
            first_inner = 1;
        }
        struct stats_value v;
        stats_field_value(&fields[i], view, totals, &v);
        if (open != NULL) {
            buf_printf(out, "%s\"%s\":", first_inner ? "" : ",", name + plen + 1);
            first_inner = 0;
        } else {
            buf_printf(out, "%s\"%s\":", first ? "" : ",", name);
            first = 0;
        }
        stats_value_json(&v, out);
    }
    if (open != NULL)
        buf_append(out, "}", 1);
}
