/* sched_maglev.c — `source`: consistent hashing of the client IP through a
 * Maglev lookup table (Eisenbud et al., NSDI 2016), with an optional bound on
 * load (Mirrokni et al., "Consistent Hashing with Bounded Loads").
 *
 * Every available server walks its own permutation of the table's slots
 * (offset and skip hashed from its name with a fixed hash), taking turns to
 * claim the next free slot; a server of weight w takes a turn in w of every
 * max-weight rounds, so slots split by weight. The same pool therefore gives
 * the same table in every tcplb, and removing a server mostly moves only the
 * slots it held. A client hashes to a slot; slots after it form its
 * preference order, used when its server is tried already or over the
 * balance_factor cap. Rebuilds (state or weight changes) go to the idle half
 * of a double buffer, published with one atomic store, so workers never
 * wait; a worker still reading the old half reads valid indexes at worst.
 * Servers take their turns in the order of their names, not of their
 * slots, so two tcplb whose servers joined in another order (discovery,
 * add server) still build the same table; its digest is the pool's
 * `mapping`. */
#include <stdlib.h>
#include <string.h>

#include "client_key.h"
#include "hash.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define MAGLEV_SIZE 65537u            /* prime: every skip walks all slots */
#define MAGLEV_EMPTY UINT32_MAX
#define MAGLEV_SALT_OFFSET 0x6f666673ULL
#define MAGLEV_SALT_SKIP 0x736b6970ULL
#define MAGLEV_SALT_CLIENT 0x636c6965ULL
#define MAGLEV_SALT_DIGEST 0x64696765ULL

struct sched_maglev {
    uint32_t published;               /* which half is live, atomic */
    uint32_t *slots[2];               /* owned: MAGLEV_SIZE server indexes */
    uint64_t digest;                  /* of the live table, by server names; atomic */
};

static int maglev_by_name(const void *a, const void *b, void *servers)
{
    const struct server *s = servers;
    return strcmp(s[*(const uint32_t *)a].name, s[*(const uint32_t *)b].name);
}

static void maglev_build(struct sched_maglev *m, struct pool *pool)
{
    unsigned next_half = __atomic_load_n(&m->published, __ATOMIC_RELAXED) ^ 1u;
    uint32_t *slots = m->slots[next_half];
    uint32_t n = pool_nservers(pool);

    uint64_t *offset = calloc(n ? n : 1, sizeof(*offset));
    uint64_t *skip = calloc(n ? n : 1, sizeof(*skip));
    uint64_t *next = calloc(n ? n : 1, sizeof(*next));
    unsigned *weight = calloc(n ? n : 1, sizeof(*weight));
    uint32_t *order = calloc(n ? n : 1, sizeof(*order));
    uint64_t *name_hash = calloc(n ? n : 1, sizeof(*name_hash));
    if (!offset || !skip || !next || !weight || !order || !name_hash)
        goto out;   /* keep the table in force rather than publish a wrong one */

    unsigned max_weight = 0;
    uint32_t candidates = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &pool->servers[i];
        if (!server_listed(s) || !server_available(s))
            continue;
        order[candidates++] = i;
        weight[i] = server_eweight(s);
        if (weight[i] > max_weight)
            max_weight = weight[i];
        size_t len = strlen(s->name);
        offset[i] = hash_bytes(s->name, len, MAGLEV_SALT_OFFSET) % MAGLEV_SIZE;
        skip[i] = hash_bytes(s->name, len, MAGLEV_SALT_SKIP) % (MAGLEV_SIZE - 1) + 1;
        name_hash[i] = hash_bytes(s->name, len, MAGLEV_SALT_DIGEST);
    }
    qsort_r(order, candidates, sizeof(*order), maglev_by_name, pool->servers);
    for (uint32_t k = 0; k < MAGLEV_SIZE; k++)
        __atomic_store_n(&slots[k], MAGLEV_EMPTY, __ATOMIC_RELAXED);

    if (max_weight > 0) {
        uint32_t filled = 0;
        for (uint64_t round = 0; filled < MAGLEV_SIZE; round++) {
            for (uint32_t o = 0; o < candidates && filled < MAGLEV_SIZE; o++) {
                uint32_t i = order[o];
                if (weight[i] == 0)
                    continue;
                /* weight w: a turn in w of every max_weight rounds */
                if ((round + 1) * weight[i] / max_weight ==
                    round * weight[i] / max_weight)
                    continue;
                uint64_t c;
                do {
                    c = (offset[i] + next[i] * skip[i]) % MAGLEV_SIZE;
                    next[i]++;
                } while (slots[c] != MAGLEV_EMPTY);
                __atomic_store_n(&slots[c], i, __ATOMIC_RELAXED);
                filled++;
            }
        }
    }
    /* the digest names the servers, not their slots */
    uint64_t d = 0xcbf29ce484222325ULL;
    for (uint32_t k = 0; k < MAGLEV_SIZE; k++) {
        uint32_t i = slots[k];
        d = (d ^ (i == MAGLEV_EMPTY ? 0 : name_hash[i])) * 0x100000001b3ULL;
    }
    __atomic_store_n(&m->digest, d, __ATOMIC_RELAXED);
    __atomic_store_n(&m->published, next_half, __ATOMIC_RELEASE);
out:
    free(offset);
    free(skip);
    free(next);
    free(weight);
    free(order);
    free(name_hash);
}

static uint64_t maglev_mapping(void *state)
{
    return __atomic_load_n(&((struct sched_maglev *)state)->digest, __ATOMIC_RELAXED);
}

static void *maglev_init(struct pool *pool)
{
    struct sched_maglev *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->slots[0] = malloc(MAGLEV_SIZE * sizeof(uint32_t));
    m->slots[1] = malloc(MAGLEV_SIZE * sizeof(uint32_t));
    if (m->slots[0] == NULL || m->slots[1] == NULL) {
        free(m->slots[0]);
        free(m->slots[1]);
        free(m);
        return NULL;
    }
    for (uint32_t k = 0; k < MAGLEV_SIZE; k++)
        m->slots[1][k] = MAGLEV_EMPTY;
    m->published = 1;
    maglev_build(m, pool);
    return m;
}

/* The bounded-load cap: after taking this connection a server may hold at
 * most ceil(F/100 x (A+1) x w / W), A the pool's active connections and W
 * the weight of its available servers. Counting the new connection in A
 * makes sure some server always fits. A counts connections still open on
 * servers that went down meanwhile: the cap is then a little looser, never
 * tighter, than the paper's. */
struct maglev_load {
    uint64_t active_sum, weight_sum;
};

static void maglev_load_read(struct pool *pool, struct maglev_load *load)
{
    int64_t a = __atomic_load_n(pool->active_total, __ATOMIC_RELAXED);
    load->active_sum = a > 0 ? (uint64_t)a : 0;
    load->weight_sum = __atomic_load_n(&pool->live_weight_total, __ATOMIC_RELAXED);
}

static int maglev_under_cap(const struct pool *pool, const struct maglev_load *load,
                            const struct server *s)
{
    if (load->weight_sum == 0)
        return 0;
    uint64_t num = (uint64_t)pool->balance_factor * (load->active_sum + 1) *
                   server_eweight(s);
    uint64_t den = 100 * load->weight_sum;
    uint64_t cap = (num + den - 1) / den;
    int64_t a = server_active(s);
    return (uint64_t)(a > 0 ? a : 0) + 1 <= cap;
}

static struct server *maglev_pick(void *state, struct pool *pool,
                                  const struct sched_request *req)
{
    struct sched_maglev *m = state;
    const uint32_t *slots =
        m->slots[__atomic_load_n(&m->published, __ATOMIC_ACQUIRE) & 1u];
    uint64_t h = req->key != NULL && req->key->len
                     ? client_key_hash(req->key, MAGLEV_SALT_CLIENT) : req->random;
    uint32_t start = (uint32_t)(h % MAGLEV_SIZE);
    struct maglev_load load = { 0, 0 };
    if (pool->balance_factor > 0)
        maglev_load_read(pool, &load);

    struct server *fallback = NULL;
    for (uint32_t k = 0; k < MAGLEV_SIZE; k++) {
        uint32_t index = __atomic_load_n(&slots[(start + k) % MAGLEV_SIZE],
                                         __ATOMIC_RELAXED);
        if (index >= pool_nservers(pool))
            continue;
        struct server *s = &pool->servers[index];
        if (!sched_eligible(req, s))
            continue;
        if (pool->balance_factor == 0 || maglev_under_cap(pool, &load, s))
            return s;
        if (req->spilled != NULL)
            *req->spilled = 1;
        if (fallback == NULL)
            fallback = s;
    }
    return fallback;
}

static void maglev_server_changed(void *state, struct pool *pool, struct server *srv)
{
    (void)srv;
    maglev_build(state, pool);
}

static void maglev_free(void *state)
{
    struct sched_maglev *m = state;
    if (m == NULL)
        return;
    free(m->slots[0]);
    free(m->slots[1]);
    free(m);
}

const struct sched_ops sched_source = {
    .name = "source",
    .flags = SCHED_HASHES_CLIENT,
    .init = maglev_init,
    .pick = maglev_pick,
    .server_changed = maglev_server_changed,
    .mapping = maglev_mapping,
    .free = maglev_free,
};
