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
    struct server *best = NULL;
    uint32_t ties = 0;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = &pool->servers[i];
        if (!sched_eligible(req, s))
            continue;
        int cmp = best == NULL ? -1 : sched_load_cmp(s, best);
        if (cmp < 0) {
            best = s;
            ties = 1;
        } else if (cmp == 0) {
            ties++;
        }
    }
    if (ties <= 1)
        return best;
    /* round robin among the tied servers only, so that a server out of
     * service does not hand its turn to its neighbour */
    uint64_t k = (req->peek ? __atomic_load_n(&lc->position, __ATOMIC_RELAXED)
                            : __atomic_fetch_add(&lc->position, 1, __ATOMIC_RELAXED)) % ties;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = &pool->servers[i];
        if (sched_eligible(req, s) && sched_load_cmp(s, best) == 0 && k-- == 0)
            return s;
    }
    return best;   /* loads moved between the two passes */
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
