/* pool.c — pools and servers at run time: state and weight changes (main
 * thread), lookups, and the set-up/tear-down of what a pool owns. Choosing a
 * server is the scheduler's job (sched.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "scheduler.h"

const char *server_state_str(enum server_state s)
{
    switch (s) {
    case SERVER_UP: return "up";
    case SERVER_DOWN: return "down";
    case SERVER_DRAIN: return "drain";
    case SERVER_MAINT: return "maint";
    }
    return "?";
}

void pool_set_server_state(struct server *s, enum server_state st)
{
    if (server_state(s) == st)
        return;
    __atomic_store_n(&s->state, (int)st, __ATOMIC_RELEASE);
    struct pool *p = s->pool;
    if (p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
}

int pool_set_server_weight(struct server *s, unsigned weight)
{
    if (weight > SERVER_WEIGHT_MAX)
        return -1;
    __atomic_store_n(&s->cur_weight, weight, __ATOMIC_RELAXED);
    struct pool *p = s->pool;
    if (p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
    return 0;
}

struct server *pool_find_server(struct pool *p, const char *name)
{
    for (uint32_t i = 0; i < p->nservers; i++)
        if (strcmp(p->servers[i].name, name) == 0)
            return &p->servers[i];
    return NULL;
}

int pool_start(struct pool *p, unsigned nworkers, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        p->servers[i].counters = counters_server_new(nworkers);
        if (p->servers[i].counters == NULL)
            goto nomem;
    }
    p->sched_state = p->sched->init(p);
    if (p->sched_state == NULL)
        goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void pool_release(struct pool *p)
{
    if (p->sched_state != NULL && p->sched != NULL)
        p->sched->free(p->sched_state);
    p->sched_state = NULL;
    for (uint32_t i = 0; i < p->nservers; i++) {
        free(p->servers[i].name);
        free(p->servers[i].addr_text);
        counters_free(p->servers[i].counters);
    }
    free(p->servers);
    p->servers = NULL;
    p->nservers = 0;
    free(p->name);
    free(p->health_path);
    p->name = p->health_path = NULL;
}
