/* membership.c — servers joining and leaving a running pool (see
 * membership.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "events.h"
#include "health.h"
#include "log.h"
#include "membership.h"
#include "scheduler.h"

static const char *const membership_origins[] = {
    [SERVER_FROM_CONFIG] = "config",
    [SERVER_FROM_SOCKET] = "stats socket",
    [SERVER_FROM_DISCOVERY] = "discover",
};

/* A slot for <name>: a removed one of the same name, else one removed
 * long enough ago with nothing open, else a fresh one; NULL when full. */
static struct server *membership_slot(struct pool *pool, const char *name, double now)
{
    uint32_t n = pool_nservers(pool);
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &pool->servers[i];
        if (!server_listed(s) && strcmp(s->name, name) == 0)
            return s;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &pool->servers[i];
        if (!server_listed(s) && now - s->removed_at >= MEMBERSHIP_REUSE_AFTER &&
            server_active(s) == 0)
            return s;
    }
    return n < pool->cap_servers ? &pool->servers[n] : NULL;
}

/* Replaces an owned string a worker may still be reading: the old one is
 * kept until the pool goes (a removed server's last log line may name it). */
static int membership_set_text(struct pool *pool, char **field, const char *text)
{
    if (*field != NULL && strcmp(*field, text) == 0)
        return 0;
    char *copy = strdup(text);
    if (copy == NULL)
        return -1;
    if (*field != NULL && pool_keep_text(pool, *field) == -1) {
        free(copy);
        return -1;
    }
    *field = copy;
    return 0;
}

/* Fills slot <s> from <tmpl> (parsed address and options) and publishes
 * it. */
static int membership_fill(struct pool *pool, struct server *s, const struct server *tmpl,
                           const char *name, const char *addr_text,
                           enum server_origin origin, enum server_state state,
                           unsigned nworkers, double now)
{
    (void)now;
    int fresh = s == &pool->servers[pool_nservers(pool)];
    if (membership_set_text(pool, &s->name, name) == -1 ||
        membership_set_text(pool, &s->addr_text, addr_text) == -1)
        return -1;
    if (s->counters == NULL) {
        s->counters = counters_server_new(nworkers);
        if (s->counters == NULL)
            return -1;
    } else {
        counters_server_clear(s->counters, nworkers);   /* a slot taken again */
    }
    s->addr = tmpl->addr;
    s->weight = tmpl->weight;
    s->maxconn = tmpl->maxconn;
    s->send_proxy = tmpl->send_proxy;
    s->agent_port = tmpl->agent_port;
    s->backup = tmpl->backup;
    s->check_port = tmpl->check_port;
    s->has_source = tmpl->has_source;
    s->source = tmpl->source;
    s->index = (uint32_t)(s - pool->servers);
    s->line = 0;
    s->pool = pool;
    s->origin = origin;
    s->leaving = 0;
    s->successor = NULL;
    __atomic_store_n(&s->cur_weight, tmpl->weight, __ATOMIC_RELAXED);
    __atomic_store_n(&s->agent_pct, 100, __ATOMIC_RELAXED);
    __atomic_store_n(&s->ramp_pml, 1000, __ATOMIC_RELAXED);
    __atomic_store_n(&s->passive_failures, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->outlier_run, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->state, (int)state, __ATOMIC_RELEASE);
    if (s->maxconn > 0)
        pool->has_maxconn = 1;
    /* listed first, so that the scheduler's rebuild counts it */
    if (fresh)
        __atomic_store_n(&pool->nservers, s->index + 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&s->removed, 0, __ATOMIC_RELEASE);
    pool_server_published(pool, s);
    return 0;
}

struct server *membership_add(struct config *cfg, struct health *h, struct pool *pool,
                              const char *name, const char *addr_text, char *options,
                              enum server_origin origin, const char *why, double now,
                              char *err, size_t errlen)
{
    if (!config_valid_server_name(name)) {
        snprintf(err, errlen, "'%s' is not a valid server name (letters, digits, '_', "
                 "'-', '.', ':', '[', ']')", name);
        return NULL;
    }
    if (pool_find_server(pool, name) != NULL) {
        snprintf(err, errlen, "pool '%s' has a server '%s' already", pool->name, name);
        return NULL;
    }
    struct server tmpl = { .weight = 1 };
    if (net_parse_ip_addr(addr_text, &tmpl.addr, err, errlen) == -1)
        return NULL;
    if (options != NULL && config_server_options(name, options, &tmpl, err, errlen) == -1)
        return NULL;
    struct server *s = membership_slot(pool, name, now);
    if (s == NULL) {
        snprintf(err, errlen, "pool '%s' has no room for another server (server_slots = "
                 "%u)", pool->name, pool->server_slots);
        return NULL;
    }
    enum server_state state = pool->health == HEALTH_NONE ? SERVER_UP : SERVER_DOWN;
    if (membership_fill(pool, s, &tmpl, name, addr_text, origin, state,
                        cfg->global.workers, now) == -1) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    log_msg("server %s/%s added at %s from the %s: %s", pool->name, name, addr_text,
            membership_origins[origin], why);
    events_note(pool->name, name, "none", server_state_str(state), why);
    if (h != NULL)
        health_server_added(h, s, why);
    return s;
}

/* Takes <s> out: its slot stays, flagged removed. */
static void membership_remove(struct health *h, struct server *s, const char *why,
                              double now)
{
    struct pool *pool = s->pool;
    enum server_state was = server_state(s);
    if (h != NULL)
        health_server_removed(h, s);
    pool_set_server_state(s, SERVER_MAINT);   /* schedulers drop it */
    s->leaving = 0;
    s->removed_at = now;
    __atomic_store_n(&s->removed, 1, __ATOMIC_RELEASE);
    pool_refresh_backups(pool);
    log_msg("server %s/%s removed: %s", pool->name, s->name, why);
    events_note(pool->name, s->name, server_state_str(was), "none", why);
}

int membership_del(struct health *h, struct pool *pool, const char *name, double now,
                   char *err, size_t errlen)
{
    struct server *s = pool_find_server(pool, name);
    if (s == NULL) {
        snprintf(err, errlen, "no server '%s' in pool '%s'", name, pool->name);
        return -1;
    }
    if (server_state(s) != SERVER_MAINT) {
        snprintf(err, errlen, "server %s/%s is %s: disable it first (disable server "
                 "%s/%s), then delete it once its connections ended", pool->name, name,
                 server_state_str(server_state(s)), pool->name, name);
        return -1;
    }
    int64_t active = server_active(s);
    if (active > 0) {
        snprintf(err, errlen, "server %s/%s has %lld open connection%s: wait until they "
                 "end", pool->name, name, (long long)active, active == 1 ? "" : "s");
        return -1;
    }
    membership_remove(h, s, "deleted from the stats socket", now);
    return 0;
}

static const struct membership_entry *membership_find(const struct membership_entry *set,
                                                      size_t n, const struct server *s)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].addr.len == s->addr.len &&
            memcmp(&set[i].addr.ss, &s->addr.ss, s->addr.len) == 0)
            return &set[i];
    return NULL;
}

void membership_sync(struct config *cfg, struct health *h, struct pool *pool,
                     const struct membership_entry *set, size_t n, double now)
{
    uint32_t ns = pool_nservers(pool);
    /* those that stay, come back or leave */
    for (uint32_t i = 0; i < ns; i++) {
        struct server *s = &pool->servers[i];
        if (!server_listed(s) || s->origin != SERVER_FROM_DISCOVERY)
            continue;
        const struct membership_entry *e = membership_find(set, n, s);
        if (e == NULL) {
            if (!s->leaving) {
                s->leaving = 1;
                if (h != NULL)
                    health_set_admin(h, s, ADMIN_DRAIN, "left the DNS answer: draining");
            }
            continue;
        }
        if (s->leaving) {
            s->leaving = 0;
            if (h != NULL)
                health_set_admin(h, s, ADMIN_NONE, "back in the DNS answer");
        }
        if (server_weight(s) != e->weight)
            pool_set_server_weight(s, e->weight);
    }
    /* those that are new */
    for (size_t k = 0; k < n; k++) {
        int known = 0;
        for (uint32_t i = 0; i < ns && !known; i++) {
            const struct server *s = &pool->servers[i];
            known = server_listed(s) && s->addr.len == set[k].addr.len &&
                    memcmp(&s->addr.ss, &set[k].addr.ss, s->addr.len) == 0;
        }
        if (known)
            continue;
        char name[NET_ADDR_STRLEN], opts[32], err[256];
        net_addr_str((const struct sockaddr *)&set[k].addr.ss, name, sizeof(name));
        snprintf(opts, sizeof(opts), "weight=%u", set[k].weight);
        if (membership_add(cfg, h, pool, name, name, opts, SERVER_FROM_DISCOVERY,
                           "found by discover", now, err, sizeof(err)) == NULL)
            log_msg("pool %s: discover: %s not added: %s", pool->name, name, err);
    }
    membership_reap(h, pool, now);
}

void membership_reap(struct health *h, struct pool *pool, double now)
{
    uint32_t ns = pool_nservers(pool);
    for (uint32_t i = 0; i < ns; i++) {
        struct server *s = &pool->servers[i];
        if (server_listed(s) && s->leaving && server_active(s) == 0)
            membership_remove(h, s, "left the DNS answer, its last connection ended",
                              now);
    }
}

size_t membership_carry(struct pool *pool, const struct pool *old, unsigned nworkers)
{
    if (pool->discover == NULL || old->discover == NULL ||
        strcmp(pool->discover, old->discover) != 0)
        return 0;
    size_t carried = 0;
    uint32_t ns = pool_nservers(old);
    for (uint32_t i = 0; i < ns; i++) {
        const struct server *o = &old->servers[i];
        if (!server_listed(o) || o->origin != SERVER_FROM_DISCOVERY || o->leaving ||
            pool_find_server(pool, o->name) != NULL)
            continue;
        struct server *s = membership_slot(pool, o->name, 0);
        if (s == NULL)
            break;
        struct server tmpl = *o;
        tmpl.weight = server_weight(o);         /* the answer's, not a config's */
        if (membership_fill(pool, s, &tmpl, o->name, o->addr_text, SERVER_FROM_DISCOVERY,
                            server_state(o), nworkers, 0) == -1)
            break;
        carried++;
    }
    return carried;
}
