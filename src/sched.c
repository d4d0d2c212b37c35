/* sched.c — the registry of scheduling algorithms (name -> ops table) and the
 * one call sessions use to place a connection. The algorithms live one per
 * file (sched_rr.c, ...). */
#include <string.h>

#include "pool.h"
#include "scheduler.h"
#include "util.h"

static const struct sched_ops *const sched_all[] = {
    &sched_roundrobin,
};

const struct sched_ops *sched_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(sched_all); i++)
        if (strcmp(sched_all[i]->name, name) == 0)
            return sched_all[i];
    return NULL;
}

const char *sched_names(void)
{
    return "roundrobin";
}

int sched_tried(const struct sched_request *req, uint32_t index)
{
    for (size_t i = 0; i < req->ntried; i++)
        if (req->tried[i] == index)
            return 1;
    return 0;
}

struct server *sched_pick(struct pool *pool, const struct sched_request *req)
{
    if (pool->nservers == 0)
        return NULL;
    return pool->sched->pick(pool->sched_state, pool, req);
}
