/* counters.h — per-worker traffic counters for servers and listeners.
 * Each worker writes only its own slot (one cache line each, so workers never
 * share a written line); readers sum the slots. */
#ifndef TCPLB_COUNTERS_H
#define TCPLB_COUNTERS_H

#include <stdint.h>
#include "util.h"

/* Histogram bucket upper bounds, in seconds (a last +Inf bucket follows). */
#define COUNTERS_HIST_BUCKETS 12
extern const double counters_connect_bounds[COUNTERS_HIST_BUCKETS];
extern const double counters_duration_bounds[COUNTERS_HIST_BUCKETS];

struct counters_hist {
    uint64_t buckets[COUNTERS_HIST_BUCKETS + 1];   /* not cumulative */
    uint64_t sum_us;                               /* sum of observations */
};

struct server_counters {
    uint64_t total;      /* connections handed to the server (connect ok) */
    uint64_t failed;     /* failed connect attempts (= retried + lost) */
    uint64_t bytes_in;   /* client -> server payload bytes */
    uint64_t bytes_out;  /* server -> client payload bytes */
    uint64_t retried;    /* failed attempts after which another server was tried */
    uint64_t lost;       /* failed attempts after which the client got no server */
    struct counters_hist connect;    /* connect time */
    struct counters_hist duration;   /* client session time, if it reached us */
} __attribute__((aligned(CACHE_LINE)));

struct listener_counters {
    uint64_t total;      /* accepted client connections */
    uint64_t rejected;   /* answered 503 or closed for want of a server */
    uint64_t active;     /* open now, on this worker (inc and dec by it) */
    uint64_t http_502;   /* answered 502: server closed before a byte */
    uint64_t http_504;   /* answered 504: server silent past server_timeout */
    uint64_t proxy_errors;   /* closed: missing or malformed PROXY header */
} __attribute__((aligned(CACHE_LINE)));

/* Sums of all workers' slots, as read by the stats thread. */
struct server_totals {
    uint64_t total, failed, bytes_in, bytes_out, retried, lost;
    struct counters_hist connect, duration;
};
struct listener_totals {
    uint64_t total, rejected, active, http_502, http_504, proxy_errors;
};

/* Allocates nworkers zeroed slots (cache-line aligned) with one reference.
 * NULL on ENOMEM. A reload shares the slots of a server or listener that
 * stays between the old and the new config (counters_ref), so connections
 * still running on the old config count into the same totals; each holder
 * drops its reference with counters_free(). */
struct server_counters *counters_server_new(unsigned nworkers);
struct listener_counters *counters_listener_new(unsigned nworkers);
void *counters_ref(void *slots);
/* <bytes> of zeroed, cache-line-aligned, reference-counted memory, for a
 * shared atomic (a listener's open connections over all workers). */
void *counters_block_new(size_t bytes);
void counters_free(void *slots);    /* NULL is a no-op */

void counters_server_sum(const struct server_counters *slots, unsigned nworkers,
                         struct server_totals *out);
void counters_listener_sum(const struct listener_counters *slots,
                           unsigned nworkers, struct listener_totals *out);

/* Adds one observation of <seconds> to a worker's own histogram. */
void counters_hist_add(struct counters_hist *h, const double *bounds, double seconds);

/* Zeroes the monotonic counters (not `active`). Racy by design against a
 * worker's concurrent add: an increment in flight may survive the clear. */
void counters_server_clear(struct server_counters *slots, unsigned nworkers);
void counters_listener_clear(struct listener_counters *slots, unsigned nworkers);

#endif
