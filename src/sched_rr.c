/* sched_rr.c — smooth weighted round robin, exact across workers.
 *
 * The main thread precomputes one period of the smooth weighted sequence
 * (nginx's algorithm: weights 5,1,1 give a a b a c a a) over the available
 * servers; workers take slot `position++ mod length` with one atomic add.
 * So N sequential connections split exactly by weight whatever the number of
 * workers, and picking costs no lock. A state or weight change rebuilds the
 * sequence into the idle half of a double buffer and publishes it with one
 * atomic store; a worker that still reads the old half gets a valid server
 * index at worst from a sequence being rewritten, and checks availability
 * anyway, so nothing unsafe can come of the race. */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define RR_BUF_BIT 0x80000000u

struct sched_rr {
    uint64_t position __attribute__((aligned(CACHE_LINE)));  /* shared */
    uint32_t published __attribute__((aligned(CACHE_LINE)));  /* buf bit | len */
    uint32_t capacity;
    uint32_t *slots[2];         /* owned: server indexes, atomic access */
};

static unsigned rr_gcd(unsigned a, unsigned b)
{
    while (b) {
        unsigned t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Rebuilds the sequence from current states and weights. Main thread. */
static void rr_rebuild(struct sched_rr *rr, struct pool *pool)
{
    uint32_t n = pool_nservers(pool);
    unsigned g = 0;
    for (uint32_t i = 0; i < n; i++)
        if (server_available(&pool->servers[i]))
            g = rr_gcd(g, server_eweight(&pool->servers[i]));

    uint32_t published = __atomic_load_n(&rr->published, __ATOMIC_RELAXED);
    unsigned next = (published & RR_BUF_BIT) ? 0 : 1;
    uint32_t *out = rr->slots[next];
    uint32_t len = 0;

    if (g > 0) {
        int64_t *current = calloc(n, sizeof(*current));
        unsigned *weight = calloc(n, sizeof(*weight));
        if (current == NULL || weight == NULL) {
            /* keep the old sequence rather than publish a wrong one */
            free(current);
            free(weight);
            return;
        }
        int64_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (server_available(&pool->servers[i]))
                weight[i] = server_eweight(&pool->servers[i]) / g;
            total += weight[i];
        }
        /* Weights in force in 1/16ths reduce by their gcd to the operator's
         * weights, whose period fits; one that does not (a slow start or an
         * agent's percentage under way) is scaled down to fit, keeping each
         * server at least one slot. */
        if (total > rr->capacity) {
            int64_t budget = (int64_t)rr->capacity - n, scaled = 0;
            for (uint32_t i = 0; i < n; i++) {
                if (weight[i] == 0)
                    continue;
                int64_t w = (int64_t)weight[i] * budget / total;
                weight[i] = w > 0 ? (unsigned)w : 1;
                scaled += weight[i];
            }
            total = scaled;
        }
        for (int64_t step = 0; step < total && len < rr->capacity; step++) {
            uint32_t best = 0;
            int64_t best_value = INT64_MIN;
            for (uint32_t i = 0; i < n; i++) {
                if (weight[i] == 0)
                    continue;
                current[i] += weight[i];
                if (current[i] > best_value) {
                    best_value = current[i];
                    best = i;
                }
            }
            current[best] -= total;
            __atomic_store_n(&out[len++], best, __ATOMIC_RELAXED);
        }
        free(current);
        free(weight);
    }
    __atomic_store_n(&rr->published, (next ? RR_BUF_BIT : 0) | len, __ATOMIC_RELEASE);
}

static void *rr_init(struct pool *pool)
{
    struct sched_rr *rr = aligned_alloc(CACHE_LINE, sizeof(*rr));
    if (rr == NULL)
        return NULL;
    memset(rr, 0, sizeof(*rr));
    rr->capacity = pool_capacity(pool) * SERVER_WEIGHT_MAX;
    size_t bytes = (rr->capacity ? rr->capacity : 1) * sizeof(uint32_t);
    rr->slots[0] = malloc(bytes);
    rr->slots[1] = malloc(bytes);
    if (rr->slots[0] == NULL || rr->slots[1] == NULL) {
        free(rr->slots[0]);
        free(rr->slots[1]);
        free(rr);
        return NULL;
    }
    rr_rebuild(rr, pool);
    return rr;
}

static struct server *rr_pick(void *state, struct pool *pool,
                              const struct sched_request *req)
{
    struct sched_rr *rr = state;
    uint32_t published = __atomic_load_n(&rr->published, __ATOMIC_ACQUIRE);
    uint32_t len = published & ~RR_BUF_BIT;
    const uint32_t *slots = rr->slots[(published & RR_BUF_BIT) ? 1 : 0];
    if (len == 0)
        return NULL;
    /* One lap at most: after it every available server has been offered. */
    for (uint32_t tries = 0; tries < len; tries++) {
        uint64_t pos = req->peek
            ? __atomic_load_n(&rr->position, __ATOMIC_RELAXED) + tries
            : __atomic_fetch_add(&rr->position, 1, __ATOMIC_RELAXED);
        uint32_t index = __atomic_load_n(&slots[pos % len], __ATOMIC_RELAXED);
        if (index >= pool_nservers(pool))
            continue;
        struct server *s = &pool->servers[index];
        if (sched_eligible(req, s))
            return s;
    }
    return NULL;
}

static void rr_server_changed(void *state, struct pool *pool, struct server *srv)
{
    (void)srv;
    rr_rebuild(state, pool);
}

static void rr_free(void *state)
{
    struct sched_rr *rr = state;
    if (rr == NULL)
        return;
    free(rr->slots[0]);
    free(rr->slots[1]);
    free(rr);
}

const struct sched_ops sched_roundrobin = {
    .name = "roundrobin",
    .init = rr_init,
    .pick = rr_pick,
    .release = NULL,
    .server_changed = rr_server_changed,
    .free = rr_free,
};
