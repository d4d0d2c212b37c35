/* sched_lc.c — least connections: the available server with the fewest
 * active connections per unit of weight, counted over all workers (the
 * shared `active` counts). Ties go round robin: the scan starts one server
 * further on each pick, and only a strictly better server replaces the
 * first candidate. */
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
    uint32_t n = pool->nservers;
    uint64_t start = (req->peek ? __atomic_load_n(&lc->position, __ATOMIC_RELAXED)
                                : __atomic_fetch_add(&lc->position, 1, __ATOMIC_RELAXED)) % n;
    struct server *best = NULL;
    for (uint32_t k = 0; k < n; k++) {
        struct server *s = &pool->servers[(start + k) % n];
        if (!sched_eligible(req, s))
            continue;
        if (best == NULL || sched_load_cmp(s, best) < 0)
            best = s;
    }
    return best;
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
