/* history.c — ten minutes of samples per server (see history.h). Entries
 * are found by pool and server name with a linear search: a sample every
 * ten seconds over a few hundred servers costs nothing worth a hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "history.h"
#include "stats_fields.h"

struct history_entry {
    char pool[72], server[72];
    uint64_t requests[HISTORY_SAMPLES];     /* totals, a ring */
    uint64_t conns[HISTORY_SAMPLES];
    unsigned next, count;                   /* ring position, samples held */
    unsigned long last_sample;              /* the sample that last saw it */
};

/* Owner: main.c. */
struct history {
    struct history_entry *entries;          /* owned */
    size_t n, cap;
    unsigned long samples;                  /* taken so far */
};

struct history *history_new(void)
{
    return calloc(1, sizeof(struct history));
}

void history_free(struct history *h)
{
    if (h == NULL)
        return;
    free(h->entries);
    free(h);
}

static struct history_entry *history_find(const struct history *h, const char *pool,
                                          const char *server)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->entries[i].pool, pool) == 0 &&
            strcmp(h->entries[i].server, server) == 0)
            return &h->entries[i];
    return NULL;
}

static struct history_entry *history_get(struct history *h, const char *pool,
                                         const char *server)
{
    struct history_entry *e = history_find(h, pool, server);
    if (e != NULL)
        return e;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct history_entry *grown = realloc(h->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;             /* this server just has no chart */
        h->entries = grown;
        h->cap = cap;
    }
    e = &h->entries[h->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->pool, sizeof(e->pool), "%s", pool);
    snprintf(e->server, sizeof(e->server), "%s", server);
    return e;
}

void history_sample(struct history *h, struct config *c, double now)
{
    h->samples++;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        uint32_t n = pool_nservers(pool);
        for (uint32_t i = 0; i < n; i++) {
            if (!server_listed(&pool->servers[i]))
                continue;
            struct history_entry *e = history_get(h, pool->name, pool->servers[i].name);
            if (e == NULL)
                continue;
            struct stats_server_view v;
            stats_server_view_read(&v, &pool->servers[i], c->global.workers, now);
            e->requests[e->next] = v.t.requests;
            e->conns[e->next] = v.t.total;
            e->next = (e->next + 1) % HISTORY_SAMPLES;
            if (e->count < HISTORY_SAMPLES)
                e->count++;
            e->last_sample = h->samples;
        }
    }
    /* servers gone for the whole span have nothing left to chart */
    for (size_t i = 0; i < h->n;) {
        if (h->samples - h->entries[i].last_sample >= HISTORY_SAMPLES)
            h->entries[i] = h->entries[--h->n];
        else
            i++;
    }
}

/* The per-second rates between consecutive samples of a ring, oldest
 * first; a total that went down (clear counters) gives 0. */
static void history_rates(struct buf *out, const uint64_t *ring, unsigned next,
                          unsigned count)
{
    buf_append(out, "[", 1);
    unsigned first = (next + HISTORY_SAMPLES - count) % HISTORY_SAMPLES;
    for (unsigned k = 1; k < count; k++) {
        uint64_t a = ring[(first + k - 1) % HISTORY_SAMPLES];
        uint64_t b = ring[(first + k) % HISTORY_SAMPLES];
        buf_printf(out, "%s%.2f", k > 1 ? "," : "", b >= a ? (b - a) / HISTORY_STEP : 0.0);
    }
    buf_append(out, "]", 1);
}

void history_write_json(const struct history *h, struct config *c, struct buf *out)
{
    buf_printf(out, "{\"step_s\":%g,\"servers\":[", HISTORY_STEP);
    int first = 1;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        uint32_t n = pool_nservers(pool);
        for (uint32_t i = 0; i < n; i++) {
            if (!server_listed(&pool->servers[i]))
                continue;
            const struct history_entry *e = history_find(h, pool->name,
                                                         pool->servers[i].name);
            buf_printf(out, "%s{\"pool\":", first ? "" : ",");
            stats_json_string(out, pool->name);
            buf_printf(out, ",\"server\":");
            stats_json_string(out, pool->servers[i].name);
            buf_printf(out, ",\"requests_per_s\":");
            if (e != NULL)
                history_rates(out, e->requests, e->next, e->count);
            else
                buf_append(out, "[]", 2);
            buf_printf(out, ",\"connections_per_s\":");
            if (e != NULL)
                history_rates(out, e->conns, e->next, e->count);
            else
                buf_append(out, "[]", 2);
            buf_append(out, "}", 1);
            first = 0;
        }
    }
    buf_printf(out, "]}\n");
}
