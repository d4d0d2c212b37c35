/* sched_lt.c — leasttime: the available server with the lowest
 * (active + 1) x its response-time estimate / its weight in force.
 *
 * The estimate is a peak-sensitive moving average, as Finagle's and
 * Linkerd's "peak EWMA": a response slower than the estimate replaces it at
 * once, a faster one pulls it down by the weight exp(-dt / tau) of the time
 * since the last sample, so a server that turns slow is avoided after one
 * answer and one that recovers wins its share back within a few seconds.
 * Until a server has answered, its connect times stand in; a server with
 * neither counts as the pool's fastest. An estimate also fades with the
 * time since its last sample (the same tau), so a server avoided for being
 * slow is tried again now and then, and a probe that is still slow puts its
 * estimate straight back. Ties go round robin among the tied servers, with
 * a shared position (as leastconn).
 *
 * Samples come from every worker (sched_ops.observe): each server's
 * estimate sits on its own cache line under a tiny spin lock, one update
 * per request, never per byte. pick() reads no clock: `now` is the
 * request's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "scheduler.h"
#include "util.h"

/* How fast an estimate follows faster answers, and fades without any. */
#define LT_TAU 5.0

struct lt_estimate {
    int lock;                   /* __atomic_test_and_set spin lock */
    int has_rt;                 /* a response time arrived: connect times no longer count */
    int has_any;
    double est;                 /* seconds */
    double stamp;               /* when it was last updated */
} __attribute__((aligned(CACHE_LINE)));

struct sched_lt {
    uint64_t position __attribute__((aligned(CACHE_LINE)));  /* shared */
    uint32_t n;
    struct lt_estimate *est;    /* owned: one per server */
};

static void lt_lock(struct lt_estimate *e)
{
    while (__atomic_test_and_set(&e->lock, __ATOMIC_ACQUIRE))
        ;
}

static void lt_unlock(struct lt_estimate *e)
{
    __atomic_clear(&e->lock, __ATOMIC_RELEASE);
}

static void *lt_init(struct pool *pool)
{
    struct sched_lt *lt = aligned_alloc(CACHE_LINE, sizeof(*lt));
    if (lt == NULL)
        return NULL;
    memset(lt, 0, sizeof(*lt));
    lt->n = pool_capacity(pool);
    size_t bytes = (lt->n ? lt->n : 1) * sizeof(struct lt_estimate);
    lt->est = aligned_alloc(CACHE_LINE, bytes);
    if (lt->est == NULL) {
        free(lt);
        return NULL;
    }
    memset(lt->est, 0, bytes);
    return lt;
}

/* The weight of a sample <dt> after the previous one. */
static double lt_decay(double dt)
{
    return dt > 0 ? exp(-dt / LT_TAU) : 1.0;
}

static void lt_observe(void *state, struct server *srv, int what, double seconds,
                       double now)
{
    struct sched_lt *lt = state;
    if (srv->index >= lt->n || !(seconds >= 0))
        return;
    struct lt_estimate *e = &lt->est[srv->index];
    lt_lock(e);
    if (what == SCHED_OBSERVE_RESPONSE && !e->has_rt) {
        e->has_rt = 1;
        e->has_any = 0;         /* the first answer replaces connect times */
    }
    if (what == SCHED_OBSERVE_CONNECT && e->has_rt) {
        lt_unlock(e);
        return;
    }
    if (!e->has_any || seconds > e->est) {
        e->est = seconds;       /* the peak: slower answers count at once */
    } else {
        double w = lt_decay(now - e->stamp);
        e->est = e->est * w + seconds * (1 - w);
    }
    e->has_any = 1;
    e->stamp = now;
    lt_unlock(e);
}

/* The estimate of server i at <now>, faded with the time since its last
 * sample; -1 when it has none. */
static double lt_estimate(struct sched_lt *lt, uint32_t i, double now)
{
    struct lt_estimate *e = &lt->est[i];
    lt_lock(e);
    double v = e->has_any ? e->est * lt_decay(now - e->stamp) : -1;
    lt_unlock(e);
    return v;
}

static struct server *lt_pick(void *state, struct pool *pool,
                              const struct sched_request *req)
{
    struct sched_lt *lt = state;
    uint32_t n = pool_nservers(pool) < lt->n ? pool_nservers(pool) : lt->n;
    if (n == 0)
        return NULL;
    double est[n];
    double fastest = -1;
    int check = pool->has_maxconn || req->ntried > 0;
    for (uint32_t i = 0; i < n; i++) {
        est[i] = -2;            /* not a candidate */
        if (pool_live_weight(pool, i) == 0 ||
            (check && !sched_eligible(req, &pool->servers[i])))
            continue;
        est[i] = lt_estimate(lt, i, req->now);
        if (est[i] >= 0 && (fastest < 0 || est[i] < fastest))
            fastest = est[i];
    }
    if (fastest < 0)
        fastest = 0;
    double best = 0;
    uint32_t ties = 0, first = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (est[i] == -2)
            continue;
        double e = est[i] >= 0 ? est[i] : fastest;    /* unknown: the fastest */
        est[i] = (double)(pool_active(pool, i) + 1) * e / pool_live_weight(pool, i);
        if (ties == 0 || est[i] < best) {
            best = est[i];
            first = i;
            ties = 1;
        } else if (est[i] == best) {
            ties++;
        }
    }
    if (ties <= 1)
        return ties ? &pool->servers[first] : NULL;
    uint64_t k = (req->peek ? __atomic_load_n(&lt->position, __ATOMIC_RELAXED)
                            : __atomic_fetch_add(&lt->position, 1, __ATOMIC_RELAXED)) % ties;
    for (uint32_t i = first; i < n; i++)
        if (est[i] != -2 && est[i] == best && k-- == 0)
            return &pool->servers[i];
    return &pool->servers[first];
}

static void lt_free(void *state)
{
    struct sched_lt *lt = state;
    if (lt == NULL)
        return;
    free(lt->est);
    free(lt);
}

const struct sched_ops sched_leasttime = {
    .name = "leasttime",
    .init = lt_init,
    .pick = lt_pick,
    .observe = lt_observe,
    .free = lt_free,
};
