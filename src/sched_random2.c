/* sched_random2.c — power of two random choices: draw two available servers
 * at random, each with probability proportional to its weight, and take the
 * one with fewer active connections per unit weight. Nearly as good as
 * leastconn at a fraction of the scan, and without leastconn's herd onto
 * one idle server. The random value comes with the request, so tests are
 * deterministic. */
#include <stdlib.h>

#include "pool.h"
#include "scheduler.h"

/* A weighted draw among eligible servers, <skip> excluded. */
static struct server *random2_draw(struct pool *pool, const struct sched_request *req,
                                   uint32_t r, const struct server *skip)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = &pool->servers[i];
        if (s != skip && sched_eligible(req, s))
            total += server_weight(s);
    }
    if (total == 0)
        return NULL;
    uint64_t point = r % total;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = &pool->servers[i];
        if (s == skip || !sched_eligible(req, s))
            continue;
        uint64_t w = server_weight(s);
        if (point < w)
            return s;
        point -= w;
    }
    return NULL;   /* a weight changed under us: no pick this time */
}

static void *random2_init(struct pool *pool)
{
    (void)pool;
    static char stateless;
    return &stateless;   /* non-NULL: init succeeded */
}

static struct server *random2_pick(void *state, struct pool *pool,
                                   const struct sched_request *req)
{
    (void)state;
    struct server *a = random2_draw(pool, req, (uint32_t)req->random, NULL);
    if (a == NULL)
        return NULL;
    struct server *b = random2_draw(pool, req, (uint32_t)(req->random >> 32), a);
    if (b == NULL)
        return a;
    return sched_load_cmp(b, a) < 0 ? b : a;
}

static void random2_free(void *state)
{
    (void)state;
}

const struct sched_ops sched_random2 = {
    .name = "random2",
    .init = random2_init,
    .pick = random2_pick,
    .free = random2_free,
};
