/* pool.c — pools and servers at run time: state and weight changes (main
 * thread), lookups, and the set-up/tear-down of what a pool owns. Choosing a
 * server is the scheduler's job (sched.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_table.h"
#include "pool.h"
#include "util.h"
#include "scheduler.h"

const char *server_state_str(enum server_state s)
{
    switch (s) {
    case SERVER_UP: return "up";
    case SERVER_DOWN: return "down";
    case SERVER_DRAIN: return "drain";
    case SERVER_MAINT: return "maint";
    case SERVER_EJECTED: return "ejected";
    }
    return "?";
}

/* cur_weight x agent_pct x ramp in 1/16ths; a weight above zero stays
 * above zero unless the agent says 0 %. */
static unsigned pool_eweight_of(const struct server *s)
{
    uint64_t w = (uint64_t)__atomic_load_n(&s->cur_weight, __ATOMIC_RELAXED) *
                 SERVER_WEIGHT_SCALE;
    unsigned pct = __atomic_load_n(&s->agent_pct, __ATOMIC_RELAXED);
    unsigned pml = __atomic_load_n(&s->ramp_pml, __ATOMIC_RELAXED);
    uint64_t e = w * pct * pml / (100 * 1000);
    if (e == 0 && w > 0 && pct > 0)
        e = 1;
    return (unsigned)e;
}

static void pool_update_live_weight(struct server *s)
{
    struct pool *p = s->pool;
    __atomic_store_n(&s->eweight, pool_eweight_of(s), __ATOMIC_RELAXED);
    uint32_t old = __atomic_load_n(&p->live_weights[s->index], __ATOMIC_RELAXED);
    uint32_t now = server_available(s) ? server_eweight(s) : 0;
    __atomic_store_n(&p->live_weights[s->index], now, __ATOMIC_RELAXED);
    __atomic_store_n(&p->live_weight_total,
                     __atomic_load_n(&p->live_weight_total, __ATOMIC_RELAXED) - old + now,
                     __ATOMIC_RELAXED);
}

/* The actives block: a header with the reference count and the pool's
 * total, one cache line each, then the per-server counts. */
struct pool_actives {
    int refs;
    int64_t total __attribute__((aligned(CACHE_LINE)));
    int32_t counts[] __attribute__((aligned(CACHE_LINE)));
};

static struct pool_actives *pool_actives_of(int32_t *counts)
{
    return container_of(counts, struct pool_actives, counts);
}

static int pool_actives_new(struct pool *p)
{
    size_t bytes = sizeof(struct pool_actives) +
                   ((p->cap_servers * sizeof(int32_t)) / CACHE_LINE + 1) * CACHE_LINE;
    struct pool_actives *a = aligned_alloc(CACHE_LINE, bytes);
    if (a == NULL)
        return -1;
    memset(a, 0, bytes);
    a->refs = 1;
    p->actives = a->counts;
    p->active_total = &a->total;
    return 0;
}

static void pool_actives_free(int32_t *counts)
{
    if (counts == NULL)
        return;
    struct pool_actives *a = pool_actives_of(counts);
    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(a);
}

/* Backups take connections while no other server is available (up with a
 * weight in force): recomputed after every change that can make a server
 * available or not. When it flips, each backup's availability flips with
 * it, so their live weights and the scheduler follow. */
void pool_refresh_backups(struct pool *p)
{
    uint32_t n = pool_nservers(p);
    int backups = 0, primary = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct server *s = &p->servers[i];
        if (!server_listed(s))
            continue;
        if (s->backup)
            backups = 1;
        else if (server_state(s) == SERVER_UP && server_eweight(s) > 0)
            primary = 1;
    }
    int use = backups && !primary;
    if (__atomic_load_n(&p->using_backups, __ATOMIC_RELAXED) == use)
        return;
    __atomic_store_n(&p->using_backups, use, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &p->servers[i];
        if (!s->backup || !server_listed(s))
            continue;
        pool_update_live_weight(s);
        if (p->sched_state != NULL && p->sched->server_changed)
            p->sched->server_changed(p->sched_state, p, s);
    }
}

void pool_set_server_state(struct server *s, enum server_state st)
{
    if (server_state(s) == st)
        return;
    __atomic_store_n(&s->state, (int)st, __ATOMIC_RELEASE);
    pool_update_live_weight(s);
    struct pool *p = s->pool;
    if (p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
    if (!s->backup)
        pool_refresh_backups(p);
}

int pool_set_server_weight(struct server *s, unsigned weight)
{
    if (weight > SERVER_WEIGHT_MAX)
        return -1;
    __atomic_store_n(&s->cur_weight, weight, __ATOMIC_RELAXED);
    pool_update_live_weight(s);
    struct pool *p = s->pool;
    if (p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
    if (!s->backup)
        pool_refresh_backups(p);
    return 0;
}

void pool_set_server_factors(struct server *s, unsigned agent_pct, unsigned ramp_pml)
{
    if (agent_pct > 100)
        agent_pct = 100;
    if (ramp_pml == 0 || ramp_pml > 1000)
        ramp_pml = 1000;
    if (__atomic_load_n(&s->agent_pct, __ATOMIC_RELAXED) == agent_pct &&
        __atomic_load_n(&s->ramp_pml, __ATOMIC_RELAXED) == ramp_pml)
        return;
    unsigned before = server_eweight(s);
    __atomic_store_n(&s->agent_pct, agent_pct, __ATOMIC_RELAXED);
    __atomic_store_n(&s->ramp_pml, ramp_pml, __ATOMIC_RELAXED);
    pool_update_live_weight(s);
    struct pool *p = s->pool;
    if (server_eweight(s) != before && p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
    if (!s->backup && (before == 0) != (server_eweight(s) == 0))
        pool_refresh_backups(p);
}

struct server *pool_find_server(struct pool *p, const char *name)
{
    uint32_t n = pool_nservers(p);
    for (uint32_t i = 0; i < n; i++)
        if (server_listed(&p->servers[i]) && strcmp(p->servers[i].name, name) == 0)
            return &p->servers[i];
    return NULL;
}

static uint64_t pool_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int pool_by_name(const void *a, const void *b)
{
    return strcmp((*(const struct server *const *)a)->name,
                  (*(const struct server *const *)b)->name);
}

uint64_t pool_mapping(struct pool *p)
{
    uint64_t h = pool_fnv(0xcbf29ce484222325ULL, p->sched->name, strlen(p->sched->name));
    h = pool_fnv(h, &p->balance_factor, sizeof(p->balance_factor));
    uint32_t n = pool_nservers(p), k = 0;
    const struct server **sorted = calloc(n ? n : 1, sizeof(*sorted));
    if (sorted == NULL)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (server_listed(&p->servers[i]))
            sorted[k++] = &p->servers[i];
    qsort(sorted, k, sizeof(*sorted), pool_by_name);
    for (uint32_t i = 0; i < k; i++) {
        const struct server *s = sorted[i];
        unsigned st = (unsigned)server_state(s), ew = server_eweight(s);
        h = pool_fnv(h, s->name, strlen(s->name) + 1);
        h = pool_fnv(h, s->addr_text, strlen(s->addr_text) + 1);
        h = pool_fnv(h, &st, sizeof(st));
        h = pool_fnv(h, &ew, sizeof(ew));
        h = pool_fnv(h, &s->backup, sizeof(s->backup));
    }
    free(sorted);
    if (p->sched->mapping != NULL && p->sched_state != NULL) {
        uint64_t t = p->sched->mapping(p->sched_state);
        h = pool_fnv(h, &t, sizeof(t));
    }
    return h;
}

void pool_server_published(struct pool *p, struct server *s)
{
    pool_update_live_weight(s);
    if (p->sched_state != NULL && p->sched->server_changed)
        p->sched->server_changed(p->sched_state, p, s);
    pool_refresh_backups(p);
}

int pool_keep_text(struct pool *p, char *text)
{
    char **kept = realloc(p->kept, (p->nkept + 1) * sizeof(*kept));
    if (kept == NULL)
        return -1;
    p->kept = kept;
    kept[p->nkept++] = text;
    return 0;
}

void pool_queue_push(struct pool *p, struct pool_queue_node *n, int at_head)
{
    struct pool_queue *q = &p->queue;
    pthread_mutex_lock(&q->lock);
    if (at_head)
        TAILQ_INSERT_HEAD(&q->nodes, n, link);
    else
        TAILQ_INSERT_TAIL(&q->nodes, n, link);
    n->queued = 1;
    __atomic_add_fetch(&q->len, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&q->lock);
}

/* Lock held. */
static void pool_queue_unlink(struct pool_queue *q, struct pool_queue_node *n)
{
    TAILQ_REMOVE(&q->nodes, n, link);
    n->queued = 0;
    __atomic_sub_fetch(&q->len, 1, __ATOMIC_SEQ_CST);
}

int pool_queue_remove(struct pool *p, struct pool_queue_node *n)
{
    struct pool_queue *q = &p->queue;
    pthread_mutex_lock(&q->lock);
    int was = n->queued;
    if (was)
        pool_queue_unlink(q, n);
    pthread_mutex_unlock(&q->lock);
    return was;
}

struct pool_queue_node *pool_queue_take(struct pool *p, struct worker *w,
                                        struct worker **head_owner)
{
    struct pool_queue *q = &p->queue;
    struct pool_queue_node *n = NULL;
    pthread_mutex_lock(&q->lock);
    struct pool_queue_node *head = TAILQ_FIRST(&q->nodes);
    *head_owner = head ? head->worker : NULL;
    if (head != NULL && head->worker == w) {
        n = head;
        pool_queue_unlink(q, n);
        head = TAILQ_FIRST(&q->nodes);
        *head_owner = head ? head->worker : NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}

struct worker *pool_queue_head_owner(struct pool *p)
{
    pthread_mutex_lock(&p->queue.lock);
    struct pool_queue_node *head = TAILQ_FIRST(&p->queue.nodes);
    struct worker *w = head ? head->worker : NULL;
    pthread_mutex_unlock(&p->queue.lock);
    return w;
}

size_t pool_queue_len(struct pool *p)
{
    return __atomic_load_n(&p->queue.len, __ATOMIC_SEQ_CST);
}

int pool_has_room(struct pool *p)
{
    uint32_t n = pool_nservers(p);
    for (uint32_t i = 0; i < n; i++)
        if (server_available(&p->servers[i]) && server_has_room(&p->servers[i]))
            return 1;
    return 0;
}

int pool_start(struct pool *p, unsigned nworkers, char *err, size_t errlen)
{
    pthread_mutex_init(&p->queue.lock, NULL);
    TAILQ_INIT(&p->queue.nodes);
    p->started = 1;
    /* the slots for servers added at run time: the array never moves
     * again, so workers may index it while the main thread adds */
    p->cap_servers = p->nservers + p->server_slots;
    struct server *grown = realloc(p->servers, (p->cap_servers ? p->cap_servers : 1) *
                                                   sizeof(*grown));
    if (grown == NULL)
        goto nomem;
    p->servers = grown;
    memset(&p->servers[p->nservers], 0,
           (p->cap_servers - p->nservers) * sizeof(*p->servers));
    size_t bytes = ((p->cap_servers * sizeof(uint32_t) + CACHE_LINE - 1) / CACHE_LINE + 1) *
                   CACHE_LINE;
    if (pool_actives_new(p) == -1)
        goto nomem;
    p->live_weights = aligned_alloc(CACHE_LINE, bytes);
    if (p->live_weights == NULL)
        goto nomem;
    memset(p->live_weights, 0, bytes);
    p->live_weight_total = 0;
    for (uint32_t i = 0; i < p->nservers; i++)
        p->servers[i].pool = p;
    pool_refresh_backups(p);     /* before the weights: backups depend on it */
    for (uint32_t i = 0; i < p->nservers; i++)
        pool_update_live_weight(&p->servers[i]);
    p->clients = client_table_new(p->persist_max);
    if (p->clients == NULL)
        goto nomem;
    for (uint32_t i = 0; i < p->nservers; i++) {
        p->servers[i].counters = counters_server_new(nworkers);
        if (p->servers[i].counters == NULL)
            goto nomem;
        if (p->servers[i].maxconn > 0)
            p->has_maxconn = 1;
    }
    p->sched_state = p->sched->init(p);
    if (p->sched_state == NULL)
        goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void pool_adopt(struct pool *p, struct pool *old)
{
    /* sharing the actives block needs the same slots for the same servers */
    int same = p->nservers == old->nservers && p->cap_servers == old->cap_servers;
    uint32_t *map = calloc(old->nservers ? old->nservers : 1, sizeof(*map));
    for (uint32_t i = 0; i < old->nservers; i++) {
        struct server *mine = server_listed(&old->servers[i])
                                  ? pool_find_server(p, old->servers[i].name) : NULL;
        if (map != NULL)
            map[i] = mine ? mine->index : CLIENT_NONE;
        if (mine == NULL || mine->index != i)
            same = 0;
        old->servers[i].successor = mine;
        if (mine != NULL) {
            counters_free(mine->counters);
            mine->counters = counters_ref(old->servers[i].counters);
        }
    }
    old->successor = p;
    if (same) {
        pool_actives_free(p->actives);
        p->actives = old->actives;
        p->active_total = old->active_total;
        __atomic_add_fetch(&pool_actives_of(old->actives)->refs, 1, __ATOMIC_RELAXED);
        client_table_free(p->clients);
        p->clients = client_table_ref(old->clients);
    } else if (map != NULL) {
        client_table_copy(old->clients, p->clients, map, old->nservers);
    }
    free(map);
}

void pool_forget_successors(struct pool *p)
{
    p->successor = NULL;
    uint32_t n = pool_nservers(p);
    for (uint32_t i = 0; i < n; i++)
        p->servers[i].successor = NULL;
}

void pool_release(struct pool *p)
{
    if (p->sched_state != NULL && p->sched != NULL)
        p->sched->free(p->sched_state);
    p->sched_state = NULL;
    client_table_free(p->clients);
    p->clients = NULL;
    pool_actives_free(p->actives);
    free(p->live_weights);
    p->actives = NULL;
    p->active_total = NULL;
    p->live_weights = NULL;
    if (p->started)
        pthread_mutex_destroy(&p->queue.lock);
    p->started = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        free(p->servers[i].name);
        free(p->servers[i].addr_text);
        counters_free(p->servers[i].counters);
    }
    free(p->servers);
    p->servers = NULL;
    p->nservers = 0;
    for (size_t i = 0; i < p->nkept; i++)
        free(p->kept[i]);
    free(p->kept);
    p->kept = NULL;
    p->nkept = 0;
    free(p->name);
    free(p->health_path);
    free(p->health_send);
    free(p->health_expect);
    free(p->discover);
    p->name = p->health_path = p->discover = NULL;
}
