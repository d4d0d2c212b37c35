/* health.c — the health checker (see health.h): combines what the active
 * checks (health_probe.c), traffic (passive checks, outlier ejection), the
 * agents (health_agent.c) and the stats socket say into one state per
 * server, and the agent's percentage and the slow start's ramp into its
 * weight in force, and publishes them to the workers, logging every change
 * with its reason and recording it as an event. Main thread. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "health_int.h"
#include "log.h"
#include "scheduler.h"
#include "util.h"


/* Workers wake the checker through this watcher, which lives as long as
 * the process: a reload replaces the checker, never the watcher, so a worker
 * can never signal a freed one. */
static ev_async health_passive;
static int health_passive_started;
static struct health *health_current;   /* main thread only */

/* ---- state --------------------------------------------------------------- */

static enum server_state health_effective(const struct health_check *c)
{
    if (c->admin == ADMIN_MAINT || c->agent.admin == ADMIN_MAINT)
        return SERVER_MAINT;
    if (!c->st.up || c->agent.down)
        return SERVER_DOWN;
    if (c->outlier.ejected)
        return SERVER_EJECTED;
    if (c->admin == ADMIN_DRAIN || c->agent.admin == ADMIN_DRAIN)
        return SERVER_DRAIN;
    return SERVER_UP;
}

/* What failing connects to this server cost clients since it last went up:
 * attempts that failed, and of those how many were hidden by a retry on
 * another server and how many left the client with no server. */
static void health_cost(struct health_check *c, char *out, size_t len)
{
    struct server_totals t;
    counters_server_sum(c->srv->counters, c->owner->config->global.workers, &t);
    snprintf(out, len, "failed=%llu retried=%llu lost=%llu",
             (unsigned long long)(t.failed - c->at_up.failed),
             (unsigned long long)(t.retried - c->at_up.retried),
             (unsigned long long)(t.lost - c->at_up.lost));
}

/* ---- slow start ------------------------------------------------------------ */

static void health_factors(struct health_check *c)
{
    ev_tstamp now = ev_now(c->owner->loop);
    unsigned pml = check_ramp_pml(c->ramp_since, now, c->pool->slowstart);
    if (pml >= 1000 && c->ramp_since != 0) {
        c->ramp_since = 0;
        ev_timer_stop(c->owner->loop, &c->ramp);
    }
    pool_set_server_factors(c->srv, c->agent.pct, pml);
}

static void health_ramp_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    health_factors(container_of(w, struct health_check, ramp));
}

/* A server became available after the start: its weight ramps from 1/20
 * of it to all of it over slowstart, for every scheduler but consistent
 * hashing (where a weight moves clients, not load). */
static void health_ramp_start(struct health_check *c)
{
    struct pool *p = c->pool;
    if (p->slowstart <= 0 || (p->sched->flags & SCHED_HASHES_CLIENT) || c->owner->starting)
        return;
    c->ramp_since = ev_now(c->owner->loop);
    double step = p->slowstart / CHECK_RAMP_STEPS;
    ev_timer_set(&c->ramp, step, step);
    ev_timer_start(c->owner->loop, &c->ramp);
}

/* ---- publishing ------------------------------------------------------------- */

void health_publish(struct health_check *c, const char *reason)
{
    enum server_state old = server_state(c->srv);
    enum server_state now = health_effective(c);
    if (now == SERVER_UP && old != SERVER_UP)
        health_ramp_start(c);
    else if (now != SERVER_UP && c->ramp_since != 0) {
        c->ramp_since = 0;          /* the next time it is up, it ramps again */
        ev_timer_stop(c->owner->loop, &c->ramp);
    }
    health_factors(c);
    if (old == now)
        return;
    pool_set_server_state(c->srv, now);
    log_msg("server %s/%s is %s: %s", c->pool->name, c->srv->name,
            server_state_str(now), reason);

    char cost[128], line[400];
    health_cost(c, cost, sizeof(cost));
    ev_tstamp t = ev_now(c->owner->loop);
    if (now == SERVER_UP && c->left_up > 0)
        snprintf(line, sizeof(line), "%s; after %.1fs; cost: %s", reason,
                 t - c->left_up, cost);
    else
        snprintf(line, sizeof(line), "%s; cost: %s", reason, cost);
    events_record(c->srv, old, now, line);
    if (now == SERVER_UP) {
        counters_server_sum(c->srv->counters, c->owner->config->global.workers,
                            &c->at_up);
        c->left_up = 0;
    } else if (old == SERVER_UP) {
        c->left_up = t;
    }
}

void health_counters_cleared(struct health *h)
{
    for (size_t i = 0; i < h->nchecks; i++)
        memset(&h->checks[i].at_up, 0, sizeof(h->checks[i].at_up));
}

/* The check slot of <srv>: the pools' slots follow each other in config
 * order, each pool_capacity() long, so a server added at run time has its
 * slot waiting. */
static struct health_check *health_slot(struct health *h, const struct server *srv)
{
    size_t base = 0;
    struct config *cfg = h->config;
    for (size_t p = 0; p < cfg->npools; p++) {
        if (&cfg->pools[p] == srv->pool)
            return base + srv->index < h->nchecks ? &h->checks[base + srv->index] : NULL;
        base += pool_capacity(&cfg->pools[p]);
    }
    return NULL;
}

void health_result(struct health_check *c, int ok, const char *what)
{
    int fresh = c->st.fresh;
    enum check_change ch = check_state_result(&c->st, ok, c->pool->rise, c->pool->fall);
    if (ch == CHECK_SAME)
        return;
    /* a new state starts a new run of traffic failures */
    __atomic_store_n(&c->srv->passive_failures, 0, __ATOMIC_RELAXED);
    char reason[200];
    if (fresh)
        snprintf(reason, sizeof(reason), "%s, first check", what);
    else if (ch == CHECK_WENT_UP)
        snprintf(reason, sizeof(reason), "%s, %u/%u", what, c->st.successes,
                 c->pool->rise);
    else
        snprintf(reason, sizeof(reason), "%s, %u/%u", what, c->st.failures,
                 c->pool->fall);
    health_publish(c, reason);
}

/* ---- passive checks ------------------------------------------------------- */

static void health_wake(void)
{
    if (__atomic_load_n(&health_passive_started, __ATOMIC_ACQUIRE))
        ev_async_send(ev_default_loop(0), &health_passive);
}

void health_passive_result(struct server *srv, int ok)
{
    if (ok) {
        if (__atomic_load_n(&srv->passive_failures, __ATOMIC_RELAXED) != 0)
            __atomic_store_n(&srv->passive_failures, 0, __ATOMIC_RELAXED);
        return;
    }
    if (srv->pool->health == HEALTH_NONE)
        return;   /* nothing would ever bring it back up */
    unsigned n = __atomic_add_fetch(&srv->passive_failures, 1, __ATOMIC_RELAXED);
    if (n >= srv->pool->fall)
        health_wake();
}

static void health_passive_down(struct health_check *c)
{
    unsigned n = __atomic_load_n(&c->srv->passive_failures, __ATOMIC_RELAXED);
    if (n < c->pool->fall)
        return;
    __atomic_store_n(&c->srv->passive_failures, 0, __ATOMIC_RELAXED);
    if (check_state_passive_down(&c->st, c->pool->fall) == CHECK_SAME)
        return;         /* down already: this run counts for nothing */
    char reason[128];
    snprintf(reason, sizeof(reason), "%u consecutive connects by traffic failed, "
             "%u/%u", n, c->pool->fall, c->pool->fall);
    health_publish(c, reason);
}

/* ---- outlier ejection ------------------------------------------------------- */

void health_outlier_failure(struct server *srv, enum outlier_kind kind)
{
    unsigned need = srv->pool->outlier_consecutive;
    if (need == 0)
        return;
    __atomic_add_fetch(&srv->outlier_kinds[kind], 1, __ATOMIC_RELAXED);
    if (__atomic_add_fetch(&srv->outlier_run, 1, __ATOMIC_RELAXED) == need)
        health_wake();
}

void health_outlier_success(struct server *srv)
{
    if (srv->pool->outlier_consecutive == 0 ||
        __atomic_load_n(&srv->outlier_run, __ATOMIC_RELAXED) == 0)
        return;
    __atomic_store_n(&srv->outlier_run, 0, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < ARRAY_LEN(srv->outlier_kinds); k++)
        __atomic_store_n(&srv->outlier_kinds[k], 0, __ATOMIC_RELAXED);
}

/* "3 http 5xx, 2 connect failed": what the run was made of (read and
 * zeroed). */
static void health_outlier_kinds(struct server *srv, char *out, size_t len)
{
    static const char *const names[] = {
        [OUTLIER_CONNECT] = "connect failed", [OUTLIER_RESET] = "reset by the server",
        [OUTLIER_ANSWERED] = "502/504 answered by tcplb", [OUTLIER_5XX] = "http 5xx",
    };
    size_t used = 0;
    out[0] = '\0';
    for (unsigned k = 0; k < ARRAY_LEN(names); k++) {
        unsigned n = __atomic_exchange_n(&srv->outlier_kinds[k], 0, __ATOMIC_RELAXED);
        if (n > 0 && used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%u %s", used ? ", " : "",
                                     n, names[k]);
    }
}

static void health_eject_end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_check *c = container_of(w, struct health_check, eject);
    check_outlier_end(&c->outlier);
    health_publish(c, "ejection over");     /* the event adds how long */
}

/* The pool's servers, those removed at run time left out. */
static unsigned health_listed(const struct health *h, const struct pool *pool)
{
    unsigned n = 0;
    for (size_t i = 0; i < h->nchecks; i++)
        if (h->checks[i].srv != NULL && h->checks[i].pool == pool)
            n++;
    return n;
}

/* The pool's servers ejected now. */
static unsigned health_ejected(const struct health *h, const struct pool *pool)
{
    unsigned n = 0;
    for (size_t i = 0; i < h->nchecks; i++)
        if (h->checks[i].srv != NULL && h->checks[i].pool == pool &&
            h->checks[i].outlier.ejected)
            n++;
    return n;
}

static void health_outlier_check(struct health *h, struct health_check *c)
{
    struct pool *p = c->pool;
    unsigned run = __atomic_load_n(&c->srv->outlier_run, __ATOMIC_RELAXED);
    if (p->outlier_consecutive == 0 || run < p->outlier_consecutive)
        return;
    __atomic_store_n(&c->srv->outlier_run, 0, __ATOMIC_RELAXED);
    char kinds[160];
    health_outlier_kinds(c->srv, kinds, sizeof(kinds));
    if (c->outlier.ejected || server_state(c->srv) != SERVER_UP)
        return;
    unsigned ejected = health_ejected(h, p);
    unsigned cap = check_outlier_cap(p->outlier_max_percent, health_listed(h, p));
    if (!check_outlier_eject(&c->outlier, ev_now(h->loop), p->outlier_ejection,
                             cap > ejected ? cap - ejected : 0)) {
        log_msg("server %s/%s: %u consecutive failures (%s), not ejected: %u of the "
                "pool's %u servers are already, outlier_max_percent = %u", p->name,
                c->srv->name, run, kinds, ejected, health_listed(h, p), p->outlier_max_percent);
        return;
    }
    ev_timer_set(&c->eject, c->outlier.length, 0);
    ev_timer_start(h->loop, &c->eject);
    char reason[320];
    snprintf(reason, sizeof(reason), "%u consecutive failures (%s); ejected for %gs "
             "(%u in a row)", run, kinds, c->outlier.length, c->outlier.in_row);
    health_publish(c, reason);
}

static void health_passive_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    struct health *h = health_current;
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nchecks; i++) {
        if (h->checks[i].srv == NULL)
            continue;
        health_passive_down(&h->checks[i]);
        health_outlier_check(h, &h->checks[i]);
    }
}

/* ---- admin ------------------------------------------------------------------ */

void health_set_admin(struct health *h, struct server *srv, enum server_admin admin,
                      const char *why)
{
    struct health_check *c = health_slot(h, srv);
    if (c == NULL || c->srv != srv)
        return;
    c->admin = admin;
    health_publish(c, why);
}

/* ---- start / stop ------------------------------------------------------------ */

/* Reload: starts a server from its state in the previous checker. */
static void health_inherit(struct health_check *c, struct health *previous)
{
    for (size_t i = 0; i < previous->nchecks; i++) {
        struct health_check *o = &previous->checks[i];
        if (o->srv == NULL || strcmp(o->pool->name, c->pool->name) != 0 ||
            strcmp(o->srv->name, c->srv->name) != 0)
            continue;
        c->st = o->st;
        c->admin = o->admin;
        c->at_up = o->at_up;
        c->left_up = o->left_up;
        c->agent.admin = o->agent.admin;
        c->agent.down = o->agent.down;
        c->agent.pct = o->agent.pct;
        c->outlier = o->outlier;
        ev_tstamp now = ev_now(c->owner->loop);
        if (c->outlier.ejected && c->outlier.until > now) {
            ev_timer_set(&c->eject, c->outlier.until - now, 0);
            ev_timer_start(c->owner->loop, &c->eject);
        } else {
            c->outlier.ejected = 0;
        }
        if (o->ramp_since != 0 && c->pool->slowstart > 0) {
            c->ramp_since = o->ramp_since;
            double step = c->pool->slowstart / CHECK_RAMP_STEPS;
            ev_timer_set(&c->ramp, step, step);
            ev_timer_start(c->owner->loop, &c->ramp);
        }
        if (c->pool->agent_port == 0 && c->srv->agent_port == 0) {
            c->agent.admin = ADMIN_NONE;    /* no agent any more */
            c->agent.down = 0;
            c->agent.pct = 100;
        }
        /* it starts where it was; what the new settings change from there
         * is a state change like any other, with its event */
        pool_set_server_state(c->srv, server_state(o->srv));
        if (c->pool->health == HEALTH_NONE && !c->st.up) {
            check_state_init(&c->st);      /* no checks any more: health says up */
            health_publish(c, "reload: health = none");
        } else {
            health_publish(c, "reload");
        }
        return;
    }
    /* new in this configuration: it becomes available now, after the
     * start, so it ramps like a server that came back */
    if (server_state(c->srv) == SERVER_UP)
        health_ramp_start(c);
    health_factors(c);
}

/* Sets up the checks of <srv> in slot <c> and starts them, the first
 * ones after <spread> of an interval (a fraction: no thundering herd). */
static void health_check_begin(struct health *h, struct health_check *c, struct pool *pool,
                               struct server *srv, double spread, struct health *previous)
{
    memset(c, 0, sizeof(*c));
    c->owner = h;
    c->srv = srv;
    c->pool = pool;
    c->fd = -1;
    c->agent.fd = -1;
    c->agent.pct = 100;
    check_state_init(&c->st);
    ev_init(&c->io, health_probe_io_cb);
    ev_init(&c->timer, health_probe_timer_cb);
    ev_init(&c->ramp, health_ramp_cb);
    ev_init(&c->eject, health_eject_end_cb);
    health_probe_prepare(c);
    if (previous != NULL)
        health_inherit(c, previous);
    health_agent_start(c, pool->agent_interval * spread);
    if (pool->health == HEALTH_NONE)
        return;
    double delay = pool->health_interval * spread;
    ev_timer_set(&c->timer, delay > 0 ? delay : 0.001, 0);
    ev_timer_start(h->loop, &c->timer);
}

/* Stops everything slot <c> runs and frees its slot. */
static void health_check_end(struct health_check *c)
{
    if (c->srv == NULL)
        return;
    health_probe_stop(c);
    health_agent_stop(c);
    ev_timer_stop(c->owner->loop, &c->ramp);
    ev_timer_stop(c->owner->loop, &c->eject);
    c->srv = NULL;
}

struct health *health_start(struct ev_loop *loop, struct config *cfg,
                            struct health *previous, char *err, size_t errlen)
{
    struct health *h = calloc(1, sizeof(*h));
    size_t n = 0;
    for (size_t p = 0; p < cfg->npools; p++)
        n += pool_capacity(&cfg->pools[p]);
    if (h == NULL || (h->checks = calloc(n ? n : 1, sizeof(*h->checks))) == NULL) {
        free(h);
        snprintf(err, errlen, "out of memory for health checks");
        return NULL;
    }
    h->loop = loop;
    h->config = config_ref(cfg);
    h->nchecks = n;
    h->starting = previous == NULL;
    if (!health_passive_started) {
        /* workers send to ev_default_loop(0): the checker must run there */
        ev_async_init(&health_passive, health_passive_cb);
        ev_async_start(loop, &health_passive);
        __atomic_store_n(&health_passive_started, 1, __ATOMIC_RELEASE);
    }

    size_t base = 0;
    for (size_t p = 0; p < cfg->npools; p++) {
        struct pool *pool = &cfg->pools[p];
        uint32_t ns = pool_nservers(pool);
        for (uint32_t i = 0; i < ns; i++)
            if (server_listed(&pool->servers[i]))
                health_check_begin(h, &h->checks[base + i], pool, &pool->servers[i],
                                   (double)i / ns, previous);
        base += pool_capacity(pool);
    }
    h->starting = 0;
    health_current = h;
    return h;
}

void health_server_added(struct health *h, struct server *srv, const char *why)
{
    struct health_check *c = health_slot(h, srv);
    if (c == NULL)
        return;
    health_check_end(c);                /* a slot taken again */
    health_check_begin(h, c, srv->pool, srv, 0, NULL);
    if (srv->pool->health != HEALTH_NONE)
        check_state_init_added(&c->st); /* down until its first check passes */
    health_publish(c, why);
    if (server_state(srv) == SERVER_UP)
        health_ramp_start(c);           /* up at once (health = none) */
    health_factors(c);
}

void health_server_removed(struct health *h, struct server *srv)
{
    struct health_check *c = health_slot(h, srv);
    if (c != NULL && c->srv == srv)
        health_check_end(c);
}

void health_stop(struct health *h)
{
    if (h == NULL)
        return;
    if (health_current == h)
        health_current = NULL;
    for (size_t i = 0; i < h->nchecks; i++)
        health_check_end(&h->checks[i]);
    config_unref(h->config);
    free(h->checks);
    free(h);
}
