/* sched.c — the registry of scheduling algorithms (name -> ops table) and the
 * one call sessions use to place a connection. The algorithms live one per
 * file (sched_rr.c, ...). */
#include <stdio.h>
#include <string.h>

#include "client_table.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

static const struct sched_ops *const sched_all[] = {
    &sched_roundrobin,
    &sched_leastconn,
    &sched_random2,
    &sched_source,
    &sched_leasttime,
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
    /* built from the table, so a new algorithm is listed by being added */
    static char names[128];
    if (names[0] == '\0') {
        size_t len = 0;
        for (size_t i = 0; i < ARRAY_LEN(sched_all) && len < sizeof(names); i++)
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                    i ? " " : "", sched_all[i]->name);
    }
    return names;
}

int sched_tried(const struct sched_request *req, uint32_t index)
{
    for (size_t i = 0; i < req->ntried; i++)
        if (req->tried[i] == index)
            return 1;
    return 0;
}

int sched_eligible(const struct sched_request *req, const struct server *srv)
{
    return server_available(srv) && server_has_room(srv) &&
           !sched_tried(req, srv->index);
}

const char *sched_why_str(enum sched_why why)
{
    switch (why) {
    case SCHED_WHY_NONE: return "none";
    case SCHED_WHY_PERSIST: return "persist";
    case SCHED_WHY_HASH: return "hash";
    case SCHED_WHY_SPILL: return "spill";
    case SCHED_WHY_SCHEDULE: return "schedule";
    }
    return "?";
}

/* A remembered server keeps its client while up or draining (drain keeps
 * persistent clients, takes no new ones); down and maint lose them. A full
 * server (maxconn) yields: the client is placed afresh rather than queued
 * behind its old server, which is what bounds a hot client. A backup keeps
 * its clients only while the pool uses its backups: once a primary is back,
 * they go to it like every other new connection. */
static int sched_sticky_ok(const struct sched_request *req, const struct server *s)
{
    enum server_state st = server_state(s);
    return (st == SERVER_UP || st == SERVER_DRAIN) && server_has_room(s) &&
           server_in_rotation(s) &&
           !sched_tried(req, s->index);
}

int sched_load_cmp(const struct server *a, const struct server *b)
{
    /* active_a / weight_a vs active_b / weight_b without division */
    int64_t lhs = server_active(a) * (int64_t)server_eweight(b);
    int64_t rhs = server_active(b) * (int64_t)server_eweight(a);
    return (lhs > rhs) - (lhs < rhs);
}

struct server *sched_pick(struct pool *pool, const struct sched_request *req)
{
    enum sched_why why;
    return sched_pick_why(pool, req, &why);
}

struct server *sched_pick_why(struct pool *pool, const struct sched_request *req,
                              enum sched_why *why)
{
    *why = SCHED_WHY_NONE;
    if (pool_nservers(pool) == 0)
        return NULL;
    if (pool->persist == PERSIST_SOURCE && req->key != NULL && pool->clients != NULL) {
        uint32_t index;
        int found = req->peek
            ? client_table_peek(pool->clients, req->key, req->now,
                                pool->persist_timeout, &index)
            : client_table_sticky(pool->clients, req->key, req->now,
                                  pool->persist_timeout, &index);
        if (found &&
            index < pool_nservers(pool) && sched_sticky_ok(req, &pool->servers[index])) {
            *why = SCHED_WHY_PERSIST;
            return &pool->servers[index];
        }
    }
    int spilled = 0;
    struct sched_request local = *req;
    local.spilled = &spilled;
    struct server *s = pool->sched->pick(pool->sched_state, pool, &local);
    if (req->spilled != NULL)
        *req->spilled = spilled;
    if (s != NULL && !req->peek && pool->persist == PERSIST_SOURCE && req->key != NULL &&
        pool->clients != NULL) {
        /* Claim the client for s unless a racing first connection of the
         * same IP claimed another server a moment ago: then join it. */
        uint32_t chosen = client_table_claim(pool->clients, req->key, s->index, req->now,
                                             pool->persist_timeout);
        if (chosen != s->index && chosen < pool_nservers(pool) &&
            sched_sticky_ok(req, &pool->servers[chosen])) {
            *why = SCHED_WHY_PERSIST;
            return &pool->servers[chosen];
        }
    }
    if (s != NULL) {
        if (pool->sched->flags & SCHED_HASHES_CLIENT)
            *why = spilled ? SCHED_WHY_SPILL : SCHED_WHY_HASH;
        else
            *why = SCHED_WHY_SCHEDULE;
    }
    return s;
}
