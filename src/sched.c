/* sched.c — the registry of scheduling algorithms (name -> ops table) and the
 * one call sessions use to place a connection. The algorithms live one per
 * file (sched_rr.c, ...). */
#include <netinet/in.h>
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
    return "roundrobin leastconn random2 source";
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
 * behind its old server, which is what bounds a hot client. */
static int sched_sticky_ok(const struct sched_request *req, const struct server *s)
{
    enum server_state st = server_state(s);
    return (st == SERVER_UP || st == SERVER_DRAIN) && server_has_room(s) &&
           !sched_tried(req, s->index);
}

int sched_load_cmp(const struct server *a, const struct server *b)
{
    /* active_a / weight_a vs active_b / weight_b without division */
    int64_t lhs = server_active(a) * (int64_t)server_weight(b);
    int64_t rhs = server_active(b) * (int64_t)server_weight(a);
    return (lhs > rhs) - (lhs < rhs);
}

uint64_t sched_hash(const void *data, size_t len, uint64_t salt)
{
    /* FNV-1a, then a murmur3 finaliser so that nearby keys (consecutive IPs)
     * spread over the whole range. */
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ salt;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

size_t sched_client_key(const struct sockaddr *client, const uint8_t **key)
{
    if (client == NULL)
        return 0;
    if (client->sa_family == AF_INET) {
        *key = (const uint8_t *)&((const struct sockaddr_in *)client)->sin_addr;
        return 4;
    }
    if (client->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)client)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {      /* the IPv4 client it is */
            *key = &a->s6_addr[12];
            return 4;
        }
        *key = a->s6_addr;
        return 16;
    }
    return 0;
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
    if (pool->nservers == 0)
        return NULL;
    if (pool->persist == PERSIST_SOURCE && req->key != NULL && pool->clients != NULL) {
        uint32_t index;
        int found = req->peek
            ? client_table_peek(pool->clients, req->key, req->now,
                                pool->persist_timeout, &index)
            : client_table_sticky(pool->clients, req->key, req->now,
                                  pool->persist_timeout, &index);
        if (found &&
            index < pool->nservers && sched_sticky_ok(req, &pool->servers[index])) {
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
        if (chosen != s->index && chosen < pool->nservers &&
            sched_sticky_ok(req, &pool->servers[chosen])) {
            *why = SCHED_WHY_PERSIST;
            return &pool->servers[chosen];
        }
    }
    if (s != NULL) {
        if (pool->sched == &sched_source)
            *why = spilled ? SCHED_WHY_SPILL : SCHED_WHY_HASH;
        else
            *why = SCHED_WHY_SCHEDULE;
    }
    return s;
}
