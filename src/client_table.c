/* client_table.c — the per-pool client table (see client_table.h): a hash
 * table split into stripes, each with its own lock, chains and LRU list, so
 * two workers placing different clients rarely meet on a lock. The capacity
 * is global: one atomic count over all stripes, and at capacity the least
 * recently used entry of the whole table goes (the oldest of the stripes'
 * LRU tails), so the bound and the eviction order do not depend on how the
 * hash spreads the clients. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "client_table.h"
#include "recent.h"
#include "util.h"

#define CLIENT_STRIPES 32
#define CLIENT_SALT 0x7374696bULL

/* Connections of the last minute, in the slots of recent.h: slot
 * epoch % RECENT_SLOTS counts epoch `epoch`, for the epochs up to last. */
struct client_window {
    uint64_t last;                           /* newest epoch counted */
    uint32_t n[RECENT_SLOTS];
};

struct client_entry {
    struct client_entry *chain;              /* next in the hash bucket */
    struct client_window win;
    TAILQ_ENTRY(client_entry) lru;           /* newest first */
    struct client_stat stat;
};

struct client_stripe {
    pthread_mutex_t lock;
    struct client_entry **buckets;           /* owned */
    size_t mask;                             /* buckets - 1 */
    TAILQ_HEAD(client_lru, client_entry) lru;   /* owned: every entry is here */
    size_t count;
} __attribute__((aligned(CACHE_LINE)));

struct client_table {
    struct client_stripe stripes[CLIENT_STRIPES];
    int refs;
    size_t capacity;
    size_t count __attribute__((aligned(CACHE_LINE)));   /* atomic */
};

struct client_table *client_table_new(size_t capacity)
{
    struct client_table *t = aligned_alloc(CACHE_LINE, sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    t->refs = 1;
    t->capacity = capacity ? capacity : 1;
    size_t per = (t->capacity + CLIENT_STRIPES - 1) / CLIENT_STRIPES;
    size_t buckets = 1;
    while (buckets < per)
        buckets <<= 1;
    for (int i = 0; i < CLIENT_STRIPES; i++) {
        struct client_stripe *s = &t->stripes[i];
        pthread_mutex_init(&s->lock, NULL);
        TAILQ_INIT(&s->lru);
        s->mask = buckets - 1;
        s->buckets = calloc(buckets, sizeof(*s->buckets));
        if (s->buckets == NULL) {
            client_table_free(t);
            return NULL;
        }
    }
    return t;
}

struct client_table *client_table_ref(struct client_table *t)
{
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
    return t;
}

void client_table_free(struct client_table *t)
{
    if (t == NULL || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int i = 0; i < CLIENT_STRIPES; i++) {
        struct client_stripe *s = &t->stripes[i];
        struct client_entry *e;
        while ((e = TAILQ_FIRST(&s->lru)) != NULL) {
            TAILQ_REMOVE(&s->lru, e, lru);
            free(e);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(t);
}

static uint64_t client_hash(const struct client_key *k)
{
    return client_key_hash(k, CLIENT_SALT);
}

static struct client_stripe *client_stripe_of(struct client_table *t, uint64_t h)
{
    return &t->stripes[h % CLIENT_STRIPES];
}

static struct client_entry **client_bucket(struct client_stripe *s, uint64_t h)
{
    return &s->buckets[(h / CLIENT_STRIPES) & s->mask];
}

/* Lock held. */
static struct client_entry *client_find(struct client_stripe *s, uint64_t h,
                                        const struct client_key *k)
{
    for (struct client_entry *e = *client_bucket(s, h); e != NULL; e = e->chain)
        if (client_key_equal(&e->stat.key, k))
            return e;
    return NULL;
}

/* Lock held. */
static void client_lru_unlink(struct client_stripe *s, struct client_entry *e)
{
    TAILQ_REMOVE(&s->lru, e, lru);
}

/* Lock held. */
static void client_lru_push(struct client_stripe *s, struct client_entry *e)
{
    TAILQ_INSERT_HEAD(&s->lru, e, lru);
}

/* Lock held. Removes e from its hash chain. */
static void client_chain_unlink(struct client_stripe *s, struct client_entry *e)
{
    struct client_entry **pp = client_bucket(s, client_hash(&e->stat.key));
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->chain;
    if (*pp == e)
        *pp = e->chain;
}

static int client_lookup(struct client_table *t, const struct client_key *k,
                         double now, double timeout, uint32_t *server, int refresh)
{
    if (k->len == 0)
        return 0;
    uint64_t h = client_hash(k);
    struct client_stripe *s = client_stripe_of(t, h);
    int found = 0;
    pthread_mutex_lock(&s->lock);
    struct client_entry *e = client_find(s, h, k);
    if (e != NULL && e->stat.server != CLIENT_NONE && now - e->stat.last_use < timeout) {
        *server = e->stat.server;
        found = 1;
        if (refresh) {
            e->stat.last_use = now;
            client_lru_unlink(s, e);
            client_lru_push(s, e);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

int client_table_sticky(struct client_table *t, const struct client_key *k,
                        double now, double timeout, uint32_t *server)
{
    return client_lookup(t, k, now, timeout, server, 1);
}

int client_table_peek(struct client_table *t, const struct client_key *k,
                      double now, double timeout, uint32_t *server)
{
    return client_lookup(t, k, now, timeout, server, 0);
}

/* Takes the least recently used entry out of the table and returns it for
 * reuse (NULL if the table is empty). Takes one stripe lock at a time, so it
 * is called with none held. */
static struct client_entry *client_evict_oldest(struct client_table *t)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        int victim = -1;
        double oldest = 0;
        for (int i = 0; i < CLIENT_STRIPES; i++) {
            struct client_stripe *s = &t->stripes[i];
            pthread_mutex_lock(&s->lock);
            struct client_entry *last = TAILQ_LAST(&s->lru, client_lru);
            if (last != NULL && (victim == -1 || last->stat.last_use < oldest)) {
                victim = i;
                oldest = last->stat.last_use;
            }
            pthread_mutex_unlock(&s->lock);
        }
        if (victim == -1)
            return NULL;
        struct client_stripe *s = &t->stripes[victim];
        pthread_mutex_lock(&s->lock);
        struct client_entry *e = TAILQ_LAST(&s->lru, client_lru);
        if (e != NULL) {
            client_lru_unlink(s, e);
            client_chain_unlink(s, e);
            s->count--;
            __atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&s->lock);
        if (e != NULL)
            return e;   /* another thread emptied that stripe: look again */
    }
    return NULL;
}

/* Finds or creates the entry of <k> and returns it with its stripe locked
 * (*stripe set), moved off the LRU list: the caller updates it and calls
 * client_entry_done(). NULL (nothing locked) when it could not be created. */
static struct client_entry *client_entry_get(struct client_table *t,
                                             const struct client_key *k,
                                             struct client_stripe **stripe)
{
    uint64_t h = client_hash(k);
    struct client_stripe *s = client_stripe_of(t, h);
    *stripe = s;
    pthread_mutex_lock(&s->lock);
    struct client_entry *e = client_find(s, h, k);
    if (e != NULL) {
        client_lru_unlink(s, e);
    } else {
        pthread_mutex_unlock(&s->lock);
        /* A new client: reserve its place in the count first, so that
         * concurrent newcomers cannot all see room for one, then evict while
         * the table is over capacity (others may be evicting too), holding
         * no lock. */
        struct client_entry *spare = NULL;
        size_t n = __atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED);
        while (n > t->capacity) {
            struct client_entry *old = client_evict_oldest(t);   /* gives one back */
            if (old == NULL)
                break;
            if (spare == NULL)
                spare = old;
            else
                free(old);
            n = __atomic_load_n(&t->count, __ATOMIC_RELAXED);
        }
        pthread_mutex_lock(&s->lock);
        e = client_find(s, h, k);     /* another worker may have added it */
        if (e != NULL) {
            client_lru_unlink(s, e);
            free(spare);
            __atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);   /* unreserve */
        } else {
            e = spare ? spare : malloc(sizeof(*e));
            if (e == NULL) {
                __atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);   /* unreserve */
                pthread_mutex_unlock(&s->lock);
                return NULL;             /* not remembered: no harm beyond that */
            }
            s->count++;
            memset(e, 0, sizeof(*e));
            e->stat.key = *k;
            e->stat.server = CLIENT_NONE;
            struct client_entry **b = client_bucket(s, h);
            e->chain = *b;
            *b = e;
        }
    }
    return e;
}

static void client_entry_done(struct client_stripe *s, struct client_entry *e)
{
    client_lru_push(s, e);
    pthread_mutex_unlock(&s->lock);
}

static uint64_t client_epoch(double now)
{
    return now > 0 ? (uint64_t)(now / RECENT_SLOT_SECONDS) : 0;
}

/* Lock held. One more connection at <now>. */
static void client_window_count(struct client_window *w, double now)
{
    uint64_t e = client_epoch(now);
    if (e > w->last) {
        /* empty the slots of the epochs skipped since, at most all of them */
        uint64_t gap = e - w->last;
        for (uint64_t i = 1; i <= gap && i <= RECENT_SLOTS; i++)
            w->n[(w->last + i) % RECENT_SLOTS] = 0;
        w->last = e;
    } else if (w->last - e >= RECENT_SLOTS) {
        return;                 /* older than the window */
    }
    w->n[e % RECENT_SLOTS]++;
}

/* Lock held. Connections in the window as of <now>. */
static uint64_t client_window_sum(const struct client_window *w, double now)
{
    uint64_t e = client_epoch(now), sum = 0;
    for (uint64_t i = 0; i < RECENT_SLOTS && i <= w->last; i++) {
        uint64_t x = w->last - i;               /* the epoch slot i back holds */
        if (x <= e && e - x < RECENT_SLOTS)
            sum += w->n[x % RECENT_SLOTS];
    }
    return sum;
}

void client_table_placed(struct client_table *t, const struct client_key *k,
                         uint32_t server, double now, int already_active)
{
    struct client_stripe *s;
    struct client_entry *e = k->len ? client_entry_get(t, k, &s) : NULL;
    if (e == NULL)
        return;
    e->stat.server = server;
    e->stat.last_use = now;
    e->stat.total++;
    client_window_count(&e->win, now);
    if (!already_active)
        e->stat.active++;
    client_entry_done(s, e);
}

int client_table_admit(struct client_table *t, const struct client_key *k,
                       unsigned limit)
{
    struct client_stripe *s;
    struct client_entry *e = k->len ? client_entry_get(t, k, &s) : NULL;
    if (e == NULL)
        return 1;     /* cannot count it: do not refuse for our own shortage */
    int ok = e->stat.active < (int64_t)limit;
    if (ok)
        e->stat.active++;
    client_entry_done(s, e);
    return ok;
}

uint32_t client_table_claim(struct client_table *t, const struct client_key *k,
                            uint32_t server, double now, double timeout)
{
    struct client_stripe *s;
    struct client_entry *e = k->len ? client_entry_get(t, k, &s) : NULL;
    if (e == NULL)
        return server;
    if (e->stat.server == CLIENT_NONE || now - e->stat.last_use >= timeout)
        e->stat.server = server;
    e->stat.last_use = now;
    uint32_t chosen = e->stat.server;
    client_entry_done(s, e);
    return chosen;
}

void client_table_ended(struct client_table *t, const struct client_key *k)
{
    if (k->len == 0)
        return;
    uint64_t h = client_hash(k);
    struct client_stripe *s = client_stripe_of(t, h);
    pthread_mutex_lock(&s->lock);
    struct client_entry *e = client_find(s, h, k);
    if (e != NULL && e->stat.active > 0)
        e->stat.active--;
    pthread_mutex_unlock(&s->lock);
}

void client_table_moved_in(struct client_table *t, const struct client_key *k)
{
    struct client_stripe *s;
    struct client_entry *e = k->len ? client_entry_get(t, k, &s) : NULL;
    if (e == NULL)
        return;
    e->stat.active++;
    client_entry_done(s, e);
}

/* What the busiest are ranked by. */
enum client_rank { CLIENT_RANK_TOTAL, CLIENT_RANK_RECENT };

static uint64_t client_rank_of(const struct client_stat *st, enum client_rank by)
{
    return by == CLIENT_RANK_RECENT ? st->recent : st->total;
}

/* Keeps out[0..*n) sorted busiest first by <by>, at most cap entries. */
static void client_top_insert(struct client_stat *out, size_t *n, size_t cap,
                              const struct client_stat *st, enum client_rank by)
{
    uint64_t mine = client_rank_of(st, by);
    size_t pos = *n;
    while (pos > 0 && client_rank_of(&out[pos - 1], by) < mine)
        pos--;
    if (pos >= cap)
        return;
    size_t last = *n < cap ? *n : cap - 1;
    memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof(*out));
    out[pos] = *st;
    if (*n < cap)
        (*n)++;
}

/* The n busiest by <by>; for CLIENT_RANK_RECENT only those with a
 * connection in the last minute, their `recent` filled in. */
static size_t client_table_rank(struct client_table *t, struct client_stat *out, size_t n,
                                double now, enum client_rank by)
{
    size_t got = 0;
    if (n == 0)
        return 0;
    for (int i = 0; i < CLIENT_STRIPES; i++) {
        struct client_stripe *s = &t->stripes[i];
        pthread_mutex_lock(&s->lock);
        struct client_entry *e;
        TAILQ_FOREACH(e, &s->lru, lru) {
            struct client_stat st = e->stat;
            if (by == CLIENT_RANK_RECENT &&
                (st.recent = client_window_sum(&e->win, now)) == 0)
                continue;
            client_top_insert(out, &got, n, &st, by);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return got;
}

size_t client_table_top_recent(struct client_table *t, struct client_stat *out, size_t n,
                               double now)
{
    return client_table_rank(t, out, n, now, CLIENT_RANK_RECENT);
}

size_t client_table_top(struct client_table *t, struct client_stat *out, size_t n)
{
    return client_table_rank(t, out, n, 0, CLIENT_RANK_TOTAL);
}

void client_table_clear(struct client_table *t)
{
    for (int i = 0; i < CLIENT_STRIPES; i++) {
        struct client_stripe *s = &t->stripes[i];
        pthread_mutex_lock(&s->lock);
        struct client_entry *e;
        TAILQ_FOREACH(e, &s->lru, lru)
            e->stat.total = 0;
        pthread_mutex_unlock(&s->lock);
    }
}

void client_table_copy(struct client_table *from, struct client_table *to,
                       const uint32_t *map, uint32_t map_len)
{
    for (int i = 0; i < CLIENT_STRIPES; i++) {
        struct client_stripe *s = &from->stripes[i];
        pthread_mutex_lock(&s->lock);
        /* oldest first, so that the copy keeps the LRU order */
        struct client_entry *e;
        TAILQ_FOREACH_REVERSE(e, &s->lru, client_lru, lru) {
            const struct client_stat *st = &e->stat;
            uint32_t server = st->server < map_len ? map[st->server] : CLIENT_NONE;
            client_table_placed(to, &st->key, server, st->last_use, 0);
            uint64_t h = client_hash(&st->key);
            struct client_stripe *d = client_stripe_of(to, h);
            pthread_mutex_lock(&d->lock);
            struct client_entry *c = client_find(d, h, &st->key);
            if (c != NULL) {      /* placed() counted one connection: set the real ones */
                c->stat.total = st->total;
                c->stat.active = 0;
                c->win = e->win;
            }
            pthread_mutex_unlock(&d->lock);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

size_t client_table_size(struct client_table *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}
