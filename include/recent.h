/* recent.h — what a server did lately: a sliding window of 10-second slots
 * holding counts (connections, failed connects, requests, responses, 5xx)
 * and a log-scale histogram of response times, from which the last minute's
 * figures and response-time quantiles are read. One window per server per
 * worker, written only by that worker (relaxed atomics, nothing shared
 * written per event); readers merge every worker's window. No clock of its
 * own: callers pass `now` (monotonic seconds). */
#ifndef TCPLB_RECENT_H
#define TCPLB_RECENT_H

#include <stdint.h>

#define RECENT_SLOT_SECONDS 10
/* Six full slots and the one being filled: a read covers the last 60 to 70
 * seconds. */
#define RECENT_SLOTS 7
/* Response times from 10 µs up, four buckets per doubling (each bucket's
 * bounds differ by 2^(1/4) = 1.19, so a quantile read at a bucket's
 * geometric middle is within 9 % of the true one); 96 buckets reach 167 s,
 * longer times land in the last. */
#define RECENT_RT_BUCKETS 96
#define RECENT_RT_MIN 10e-6

enum recent_count {
    RECENT_CONNS = 0,     /* connections handed to the server */
    RECENT_FAILED,        /* failed connect attempts */
    RECENT_REQUESTS,      /* requests (exchanges) sent */
    RECENT_RESPONSES,     /* final responses (http mode) */
    RECENT_5XX,           /* of those, 5xx */
    RECENT_COUNTS
};

struct recent_slot {
    uint64_t epoch;                       /* now / RECENT_SLOT_SECONDS */
    uint32_t counts[RECENT_COUNTS];
    uint32_t rt[RECENT_RT_BUCKETS];
    uint64_t rt_sum_us;
};

struct recent {
    struct recent_slot slots[RECENT_SLOTS];
};

/* One worker's writes. */
void recent_count(struct recent *r, double now, enum recent_count what);
void recent_rt(struct recent *r, double now, double seconds);
/* Forgets everything (`clear counters`). */
void recent_clear(struct recent *r);

/* A reader's merge of the windows of every worker. */
struct recent_sum {
    uint64_t counts[RECENT_COUNTS];
    uint64_t rt[RECENT_RT_BUCKETS];
    uint64_t rt_samples, rt_sum_us;
};
/* Adds <r>'s slots that are still in the window at <now> to *sum (zero it
 * first). */
void recent_merge(const struct recent *r, double now, struct recent_sum *sum);

/* The q-quantile (0 < q <= 1) of the merged response times in seconds, or
 * NaN with no sample; the mean likewise. */
double recent_rt_quantile(const struct recent_sum *sum, double q);
double recent_rt_mean(const struct recent_sum *sum);

/* The bucket of <seconds> and a bucket's representative value (its
 * geometric middle), exposed for tests. */
unsigned recent_rt_bucket(double seconds);
double recent_rt_bucket_value(unsigned bucket);

#endif
