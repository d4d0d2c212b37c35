/* sched_random2.c — power of two random choices: draw two available servers
 * at random, each with probability proportional to its weight, and take the
 * one with fewer active connections per unit weight. Nearly as good as
 * leastconn without leastconn's herd onto one idle server when several
 * balancers share the servers.
 *
 * A draw is a binary search in a cumulative weight table of the available
 * servers, rebuilt by the main thread on every state or weight change into
 * the idle half of a double buffer (as in sched_rr.c), so a pick costs two
 * searches, not scans. A drawn server that cannot take this request (tried,
 * full) is redrawn a few times, then a scan decides. The random value comes
 * with the request, so tests are deterministic. */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define RANDOM2_REDRAWS 4

struct random2_entry {
    uint32_t index;     /* server */
    uint32_t end;       /* cumulative weight up to and including it */
};

struct sched_random2 {
    uint32_t published;                 /* which half is live, atomic */
    uint32_t len[2], total[2];          /* per half, written before publish */
    struct random2_entry *table[2];     /* owned: pool_capacity() entries each */
};

static unsigned random2_gcd(unsigned a, unsigned b)
{
    while (b) {
        unsigned t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void random2_build(struct sched_random2 *r, struct pool *pool)
{
    unsigned half = __atomic_load_n(&r->published, __ATOMIC_RELAXED) ^ 1u;
    struct random2_entry *t = r->table[half];
    uint32_t len = 0, total = 0;
    /* weights in force reduced by their gcd: the operator's weights, unless
     * a slow start or an agent is under way */
    unsigned g = 0;
    for (uint32_t i = 0; i < pool_nservers(pool); i++)
        if (server_available(&pool->servers[i]))
            g = random2_gcd(g, server_eweight(&pool->servers[i]));
    for (uint32_t i = 0; i < pool_nservers(pool); i++) {
        struct server *s = &pool->servers[i];
        if (!server_available(s))
            continue;
        total += server_eweight(s) / g;
        __atomic_store_n(&t[len].index, i, __ATOMIC_RELAXED);
        __atomic_store_n(&t[len].end, total, __ATOMIC_RELAXED);
        len++;
    }
    __atomic_store_n(&r->len[half], len, __ATOMIC_RELAXED);
    __atomic_store_n(&r->total[half], total, __ATOMIC_RELAXED);
    __atomic_store_n(&r->published, half, __ATOMIC_RELEASE);
}

/* One weighted draw from the published table. */
static struct server *random2_table_draw(struct sched_random2 *r, struct pool *pool,
                                         uint32_t point_seed)
{
    unsigned half = __atomic_load_n(&r->published, __ATOMIC_ACQUIRE) & 1u;
    uint32_t len = __atomic_load_n(&r->len[half], __ATOMIC_RELAXED);
    uint32_t total = __atomic_load_n(&r->total[half], __ATOMIC_RELAXED);
    if (len == 0 || total == 0)
        return NULL;
    const struct random2_entry *t = r->table[half];
    uint32_t point = point_seed % total, lo = 0, hi = len - 1;
    while (lo < hi) {          /* first entry whose end is above point */
        uint32_t mid = lo + (hi - lo) / 2;
        if (__atomic_load_n(&t[mid].end, __ATOMIC_RELAXED) > point)
            hi = mid;
        else
            lo = mid + 1;
    }
    uint32_t index = __atomic_load_n(&t[lo].index, __ATOMIC_RELAXED);
    return index < pool_nservers(pool) ? &pool->servers[index] : NULL;
}

/* The slow path: a weighted draw among eligible servers by scanning, <skip>
 * excluded. */
static struct server *random2_scan_draw(struct pool *pool, const struct sched_request *req,
                                        uint32_t seed, const struct server *skip)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < pool_nservers(pool); i++) {
        struct server *s = &pool->servers[i];
        if (s != skip && sched_eligible(req, s))
            total += server_eweight(s);
    }
    if (total == 0)
        return NULL;
    uint64_t point = seed % total;
    for (uint32_t i = 0; i < pool_nservers(pool); i++) {
        struct server *s = &pool->servers[i];
        if (s == skip || !sched_eligible(req, s))
            continue;
        if (point < server_eweight(s))
            return s;
        point -= server_eweight(s);
    }
    return NULL;
}

/* A draw that can take the request, other than <skip>. */
static struct server *random2_draw(struct sched_random2 *r, struct pool *pool,
                                   const struct sched_request *req, uint32_t seed,
                                   const struct server *skip)
{
    uint32_t x = seed;
    for (int k = 0; k < RANDOM2_REDRAWS; k++) {
        struct server *s = random2_table_draw(r, pool, x);
        if (s != NULL && s != skip && sched_eligible(req, s))
            return s;
        x = x * 2654435761u + 0x9e3779b9u;   /* next value from the same seed */
    }
    return random2_scan_draw(pool, req, seed, skip);
}

static void *random2_init(struct pool *pool)
{
    struct sched_random2 *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    size_t n = pool_capacity(pool) ? pool_capacity(pool) : 1;
    r->table[0] = calloc(n, sizeof(struct random2_entry));
    r->table[1] = calloc(n, sizeof(struct random2_entry));
    if (r->table[0] == NULL || r->table[1] == NULL) {
        free(r->table[0]);
        free(r->table[1]);
        free(r);
        return NULL;
    }
    r->published = 1;
    random2_build(r, pool);
    return r;
}

static struct server *random2_pick(void *state, struct pool *pool,
                                   const struct sched_request *req)
{
    struct sched_random2 *r = state;
    struct server *a = random2_draw(r, pool, req, (uint32_t)req->random, NULL);
    if (a == NULL)
        return NULL;
    struct server *b = random2_draw(r, pool, req, (uint32_t)(req->random >> 32), a);
    if (b == NULL)
        return a;
    return sched_load_cmp(b, a) < 0 ? b : a;
}

static void random2_server_changed(void *state, struct pool *pool, struct server *srv)
{
    (void)srv;
    random2_build(state, pool);
}

static void random2_free(void *state)
{
    struct sched_random2 *r = state;
    if (r == NULL)
        return;
    free(r->table[0]);
    free(r->table[1]);
    free(r);
}

const struct sched_ops sched_random2 = {
    .name = "random2",
    .init = random2_init,
    .pick = random2_pick,
    .server_changed = random2_server_changed,
    .free = random2_free,
};
