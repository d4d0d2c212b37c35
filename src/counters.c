/* counters.c — per-worker counter slots: allocation, sums and clearing.
 * Workers update their own slot with counter_add() (util.h); this file is
 * what readers and owners call. */
#include <stdlib.h>
#include <string.h>

#include "counters.h"

static void *counters_alloc(size_t size, unsigned nworkers)
{
    size_t total = size * (nworkers ? nworkers : 1);
    void *p = aligned_alloc(CACHE_LINE, total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

struct server_counters *counters_server_new(unsigned nworkers)
{
    return counters_alloc(sizeof(struct server_counters), nworkers);
}

struct listener_counters *counters_listener_new(unsigned nworkers)
{
    return counters_alloc(sizeof(struct listener_counters), nworkers);
}

void counters_free(void *slots)
{
    free(slots);
}

void counters_server_sum(const struct server_counters *slots, unsigned nworkers,
                         struct server_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < nworkers; i++) {
        out->total += counter_read(&slots[i].total);
        out->failed += counter_read(&slots[i].failed);
        out->bytes_in += counter_read(&slots[i].bytes_in);
        out->bytes_out += counter_read(&slots[i].bytes_out);
    }
}

void counters_listener_sum(const struct listener_counters *slots,
                           unsigned nworkers, struct listener_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < nworkers; i++) {
        out->total += counter_read(&slots[i].total);
        out->rejected += counter_read(&slots[i].rejected);
        out->active += counter_read(&slots[i].active);
        out->http_502 += counter_read(&slots[i].http_502);
        out->http_504 += counter_read(&slots[i].http_504);
    }
}

void counters_server_clear(struct server_counters *slots, unsigned nworkers)
{
    for (unsigned i = 0; i < nworkers; i++) {
        counter_zero(&slots[i].total);
        counter_zero(&slots[i].failed);
        counter_zero(&slots[i].bytes_in);
        counter_zero(&slots[i].bytes_out);
    }
}

void counters_listener_clear(struct listener_counters *slots, unsigned nworkers)
{
    for (unsigned i = 0; i < nworkers; i++) {
        counter_zero(&slots[i].total);
        counter_zero(&slots[i].rejected);
        counter_zero(&slots[i].http_502);
        counter_zero(&slots[i].http_504);
    }
}
