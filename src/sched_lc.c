/* sched_lc.c — least connections: the available server with the fewest
 * active connections per unit of weight, counted over all workers (the
 * shared `active` counts). Ties go round robin among the tied servers only
 * (a shared position picks the k-th of them), so that a server out of
 * service does not hand its turn to its neighbour. */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "scheduler.h"
#include "util.h"

struct sched_lc {
    uint64_t position __attribute__((aligned(CACHE_LINE)));  /* shared */
};

static void *lc_init(struct pool *pool)
{
    (void)pool;
    struct sched_lc *lc = aligned_alloc(CACHE_LINE, sizeof(*lc));
    if (lc != NULL)
        memset(lc, 0, sizeof(*lc));
    return lc;
}

static struct server *lc_pick(void *state, struct pool *pool,
                              const struct sched_request *req)
{
    struct sched_lc *lc = state;
    /* The scans read the pool's compact active and live-weight arrays; the
     * server structs only when maxconn or a tried set can rule one out. */
    int check = pool->has_maxconn || req->ntried > 0;
    int64_t best_active = 0;
    uint32_t best_weight = 0, ties = 0, best = 0;
    for (uint32_t i = 0; i < pool_nservers(pool); i++) {
        uint32_t w = pool_live_weight(pool, i);
        if (w == 0 || (check && !sched_eligible(req, &pool->servers[i])))
            continue;
        int64_t a = pool_active(pool, i);
        /* a / w against best_active / best_weight, without dividing */
        int64_t lhs = a * best_weight, rhs = best_active * w;
        if (ties == 0 || lhs < rhs) {
            best = i;
            best_active = a;
            best_weight = w;
            ties = 1;
        } else if (lhs == rhs) {
            ties++;
        }
    }
    if (ties <= 1)
        return ties ? &pool->servers[best] : NULL;
    /* round robin among the tied servers only, so that a server out of
     * service does not hand its turn to its neighbour */
    uint64_t k = (req->peek ? __atomic_load_n(&lc->position, __ATOMIC_RELAXED)
                            : __atomic_fetch_add(&lc->position, 1, __ATOMIC_RELAXED)) % ties;
    for (uint32_t i = best; i < pool_nservers(pool); i++) {
        uint32_t w = pool_live_weight(pool, i);
        if (w == 0 || (check && !sched_eligible(req, &pool->servers[i])))
            continue;
        if (pool_active(pool, i) * best_weight == best_active * w && k-- == 0)
            return &pool->servers[i];
    }
    return &pool->servers[best];   /* loads moved between the two passes */
}

static void lc_free(void *state)
{
    free(state);
}

const struct sched_ops sched_leastconn = {
    .name = "leastconn",
    .init = lc_init,
    .pick = lc_pick,
    .free = lc_free,
};
