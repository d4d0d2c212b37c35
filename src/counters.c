/* counters.c — per-worker counter slots: allocation, sums and clearing.
 * Workers update their own slot with counter_add() (util.h); this file is
 * what readers and owners call. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"

const double counters_connect_bounds[COUNTERS_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1, 2.5,
};
const double counters_response_bounds[COUNTERS_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};
const double counters_duration_bounds[COUNTERS_HIST_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 60, 300,
};

void counters_hist_add(struct counters_hist *h, const double *bounds, double seconds)
{
    size_t i = 0;
    while (i < COUNTERS_HIST_BUCKETS && seconds > bounds[i])
        i++;
    counter_add(&h->buckets[i], 1);
    counter_add(&h->sum_us, seconds > 0 ? (uint64_t)(seconds * 1e6 + 0.5) : 0);
}

static void counters_hist_sum(const struct counters_hist *h, struct counters_hist *out)
{
    for (size_t i = 0; i <= COUNTERS_HIST_BUCKETS; i++)
        out->buckets[i] += counter_read(&h->buckets[i]);
    out->sum_us += counter_read(&h->sum_us);
}

static void counters_hist_clear(struct counters_hist *h)
{
    for (size_t i = 0; i <= COUNTERS_HIST_BUCKETS; i++)
        counter_zero(&h->buckets[i]);
    counter_zero(&h->sum_us);
}

/* The slots follow a one-cache-line header holding the reference count. */
struct counters_header {
    int refs;
} __attribute__((aligned(CACHE_LINE)));

static void *counters_alloc(size_t size, unsigned nworkers)
{
    size_t total = sizeof(struct counters_header) + size * (nworkers ? nworkers : 1);
    /* C11 aligned_alloc() takes whole multiples of the alignment only */
    total = (total + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    struct counters_header *h = aligned_alloc(CACHE_LINE, total);
    if (h == NULL)
        return NULL;
    memset(h, 0, total);
    h->refs = 1;
    return h + 1;
}

void *counters_block_new(size_t bytes)
{
    return counters_alloc(bytes, 1);
}

void *counters_ref(void *slots)
{
    struct counters_header *h = (struct counters_header *)slots - 1;
    __atomic_add_fetch(&h->refs, 1, __ATOMIC_RELAXED);
    return slots;
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
    if (slots == NULL)
        return;
    struct counters_header *h = (struct counters_header *)slots - 1;
    if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(h);
}

/* Code generated from the field lists: one statement per counter row. */
#define COUNTERS_SUM_ONE(field, ...) out->field += counter_read(&slots[i].field);
#define COUNTERS_SUM_HIST(field, ...) counters_hist_sum(&slots[i].field, &out->field);
#define COUNTERS_CLEAR_ONE(field, json, csv, metric, label, type, clear, ...) \
    if (clear == COUNTER_CLEARED)                                            \
        counter_zero(&slots[i].field);
#define COUNTERS_CLEAR_HIST(field, ...) counters_hist_clear(&slots[i].field);

void counters_server_sum(const struct server_counters *slots, unsigned nworkers,
                         struct server_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < nworkers; i++) {
        SERVER_FIELDS(COUNTERS_SUM_ONE, COUNTERS_FIELD_NONE)
        SERVER_HISTOGRAMS(COUNTERS_SUM_HIST)
    }
}

void counters_listener_sum(const struct listener_counters *slots,
                           unsigned nworkers, struct listener_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < nworkers; i++) {
        LISTENER_FIELDS(COUNTERS_SUM_ONE, COUNTERS_FIELD_NONE)
    }
}

void counters_server_clear(struct server_counters *slots, unsigned nworkers)
{
    for (unsigned i = 0; i < nworkers; i++) {
        SERVER_FIELDS(COUNTERS_CLEAR_ONE, COUNTERS_FIELD_NONE)
        SERVER_HISTOGRAMS(COUNTERS_CLEAR_HIST)
        recent_clear(&slots[i].recent);
    }
}

void counters_listener_clear(struct listener_counters *slots, unsigned nworkers)
{
    for (unsigned i = 0; i < nworkers; i++) {
        LISTENER_FIELDS(COUNTERS_CLEAR_ONE, COUNTERS_FIELD_NONE)
    }
}

#define COUNTERS_HIST_DESC(field, metric, help, bounds) \
    { metric, help, bounds, offsetof(struct server_totals, field) },
const struct counters_hist_desc counters_server_hists[] = {
    SERVER_HISTOGRAMS(COUNTERS_HIST_DESC)
};
const size_t counters_server_nhists = ARRAY_LEN(counters_server_hists);
