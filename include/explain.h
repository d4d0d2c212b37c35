/* explain.h — `explain POOL`: why a pool's load is what it is, from the
 * last minute's figures (recent.h), the servers' states and weights and the
 * client table. Each finding names a kind, a subject and the numbers behind
 * it; the verdict lists the kinds found. Pure over the pool's published
 * state and counters: the stats socket and the page call it on the main
 * thread. */
#ifndef TCPLB_EXPLAIN_H
#define TCPLB_EXPLAIN_H

#include <stddef.h>

struct buf;
struct pool;

/* The kinds, in the order findings are reported. */
enum explain_kind {
    EXPLAIN_DOWN = 0,       /* a server down (or maint): gets nothing */
    EXPLAIN_DRAIN,          /* a server draining: only its persistent clients */
    EXPLAIN_WEIGHTS,        /* unequal weights explain unequal shares */
    EXPLAIN_FAILING,        /* failing_server: >= 5 % connects failed or 5xx */
    EXPLAIN_SLOW,           /* slow_server: rt p50 >= 3x the median server */
    EXPLAIN_HOT_CLIENT,     /* one client IP pinned to one server */
    EXPLAIN_UNEVEN,         /* a share >= 1.3x the mean, nothing above explains it */
    EXPLAIN_BALANCED,       /* none of the above */
    EXPLAIN_KINDS
};
const char *explain_kind_str(enum explain_kind k);

/* The thresholds, from docs/observability.md ("explain"). */
#define EXPLAIN_FAIL_RATIO 0.05       /* failing_server */
#define EXPLAIN_SLOW_RATIO 3.0        /* slow_server: p50 against the median */
#define EXPLAIN_SLOW_GAP 0.001        /* ... and at least this much slower (s):
                                         below a millisecond is scheduling noise */
#define EXPLAIN_HOT_SHARE 0.20        /* hot_client: share of the connections */
#define EXPLAIN_UNEVEN_RATIO 1.3      /* uneven, hot_client: share / mean */
#define EXPLAIN_MIN_EVENTS 10         /* fewer recent events say nothing */
#define EXPLAIN_MAX 32

struct explain_finding {
    enum explain_kind kind;
    char subject[96];       /* a server, "IP SERVER", or the pool */
    char detail[320];       /* the numbers, in words */
};

struct explain {
    struct explain_finding f[EXPLAIN_MAX];
    size_t n;
};

/* Diagnoses <pool> as of <now> (monotonic seconds, the counters' clock). */
void explain_pool(struct pool *pool, unsigned nworkers, double now, struct explain *out);

/* "finding: KIND SUBJECT detail" lines, then "verdict: KIND[,KIND...]". */
void explain_write_text(const struct explain *e, struct buf *out);
/* {"findings":[{"kind","subject","detail"}],"verdict":"..."} */
void explain_write_json(const struct explain *e, struct buf *out);

#endif
