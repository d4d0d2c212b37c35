/* test_sched_random2.c — sched_random2.c (power of two random choices)
 * through sched_pick(). The request's random value drives both draws (low 32
 * bits: the first, high 32 bits: the second), so every case here is
 * deterministic; the shares test feeds values from a fixed-seed generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define MAX_SERVERS 8

static struct config *r2_config(const unsigned *weights, const unsigned *maxconn,
                                size_t n)
{
    char text[2048], err[CONFIG_ERR_LEN];
    int len = snprintf(text, sizeof(text),
                       "[global]\nworkers = 1\n"
                       "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
                       "[pool p]\nscheduler = random2\n");
    for (size_t i = 0; i < n; i++)
        len += snprintf(text + len, sizeof(text) - (size_t)len,
                        "server = %c 127.0.0.1:%zu weight=%u maxconn=%u\n",
                        (char)('a' + i), 19001 + i, weights[i],
                        maxconn ? maxconn[i] : 0);
    struct config *c = config_load_string("r2.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_ptr_equal(c->pools[0].sched, &sched_random2);
    return c;
}

static void set_actives(struct pool *p, const int64_t *actives)
{
    for (uint32_t i = 0; i < p->nservers; i++)
        server_active_add(&p->servers[i], actives[i] - server_active(&p->servers[i]));
}

/* xorshift64*: a fixed seed gives the same stream on every run. */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

static uint64_t two_draws(uint32_t first, uint32_t second)
{
    return (uint64_t)second << 32 | first;
}

static char pick_letter(struct pool *p, const struct sched_request *req)
{
    struct server *s = sched_pick(p, req);
    return s == NULL ? '-' : s->name[0];
}

/* Weights 1,2,3 (total 6): a draw of r % 6 = 0 is a, 1-2 b, 3-5 c. The less
 * loaded per unit weight of the two draws wins; a tie keeps the first. */


static void test_injected_random_values_decide(void **state)
{
    (void)state;
    static const struct {
        int64_t actives[3];
        uint32_t first, second;
        char want;
    } cases[] = {
        /* Both draws read the same table (r % 6: 0 a, 1-2 b, 3-5 c); a second
         * draw equal to the first is drawn again from the next value of its
         * seed (x * 2654435761 + 0x9e3779b9). */
        { { 0, 0, 0 }, 0, 1, 'a' },     /* a vs b: tie, first kept */
        { { 0, 0, 0 }, 1, 0, 'b' },     /* b vs a: tie, first kept */
        { { 0, 0, 0 }, 5, 0, 'c' },     /* c vs a: tie */
        { { 0, 0, 0 }, 0, 0, 'a' },     /* second is a again: redrawn, 0x9e3779b9 % 6 = 3 -> c; tie */
        { { 5, 0, 0 }, 0, 1, 'b' },     /* a loaded: b wins */
        { { 5, 0, 0 }, 0, 4, 'c' },     /* a loaded: c wins */
        { { 1, 2, 3 }, 3, 0, 'c' },     /* c 3/3 = a 1/1: tie, c kept */
        { { 1, 3, 3 }, 3, 0, 'c' },     /* c 1 vs a 1: tie */
        { { 2, 3, 3 }, 3, 0, 'c' },     /* c 1 < a 2 */
        { { 0, 3, 3 }, 3, 0, 'a' },     /* a 0 < c 1 */
        { { 0, 3, 3 }, 3, 1, 'c' },     /* second 1 -> b: b 1.5 > c 1 */
        { { 9, 0, 9 }, 6 + 4, 7, 'b' }, /* 10 % 6 = 4 -> c; 7 % 6 = 1 -> b */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct config *c = r2_config((unsigned[]){ 1, 2, 3 }, NULL, 3);
        struct pool *p = &c->pools[0];
        set_actives(p, cases[i].actives);
        struct sched_request req = { .random = two_draws(cases[i].first,
                                                         cases[i].second) };
        for (int k = 0; k < 3; k++) {
            char got = pick_letter(p, &req);
            if (got != cases[i].want)
                fail_msg("case %zu (pick %d): got %c, want %c", i, k, got,
                         cases[i].want);
        }
        config_unref(c);
    }
}

static void test_same_random_same_pick(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 3, 1, 4, 1, 5 }, NULL, 5);
    struct pool *p = &c->pools[0];
    set_actives(p, (int64_t[]){ 2, 0, 7, 1, 3 });
    uint64_t x = 42;
    for (int i = 0; i < 1000; i++) {
        uint64_t r = rng_next(&x);
        struct sched_request req = { .random = r };
        struct server *s1 = sched_pick(p, &req);
        struct server *s2 = sched_pick(p, &req);
        assert_non_null(s1);
        assert_ptr_equal(s1, s2);
    }
    config_unref(c);
}

/* With nobody loaded every pick is the first draw: shares follow weights. */
static void test_idle_shares_follow_weights_1_2_3(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 1, 2, 3 }, NULL, 3);
    struct pool *p = &c->pools[0];
    enum { PICKS = 30000 };
    unsigned counts[MAX_SERVERS] = { 0 };
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < PICKS; i++) {
        struct sched_request req = { .random = rng_next(&x) };
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        counts[s->index]++;
    }
    double worst = 0;
    for (uint32_t i = 0; i < 3; i++) {
        double want = PICKS * (i + 1) / 6.0;
        double err = (counts[i] - want) / want;
        if (err < 0)
            err = -err;
        if (err > worst)
            worst = err;
        print_message("random2 share %s: %u picks, want %.0f (%+.2f %%)\n",
                      p->servers[i].name, counts[i], want,
                      100.0 * (counts[i] - want) / want);
    }
    /* relative error of each share */
    assert_true(worst < 0.03);
    config_unref(c);
}

/* A heavily loaded server only wins a draw against another as loaded, and
 * the second draw never repeats the first server: it is not picked at all
 * here, where picks add a connection and the others stay far below it. */
static void test_heavily_loaded_server_is_picked_far_less(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 1, 1, 1 }, NULL, 3);
    struct pool *p = &c->pools[0];
    set_actives(p, (int64_t[]){ 1000, 0, 0 });
    unsigned counts[MAX_SERVERS] = { 0 };
    uint64_t x = 7;
    for (int i = 0; i < 3000; i++) {
        struct sched_request req = { .random = rng_next(&x) };
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        counts[s->index]++;
        server_active_add(s, 1);
        /* and some connection ends on a random light server */
        struct server *end = &p->servers[1 + rng_next(&x) % 2];
        if (server_active(end) > 0)
            server_active_add(end, -1);
    }
    print_message("random2 heavy a: %u, b: %u, c: %u of 3000\n",
                  counts[0], counts[1], counts[2]);
    assert_true(counts[0] < 3000 / 3 / 10);
    assert_true(counts[1] > 1000 && counts[2] > 1000);
    config_unref(c);
}

/* Picks feed back into load: with connections opened and never closed the
 * load per unit weight stays close across servers. */
static void test_open_connections_stay_balanced(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 1, 2, 3 }, NULL, 3);
    struct pool *p = &c->pools[0];
    uint64_t x = 99;
    for (int i = 0; i < 6000; i++) {
        struct sched_request req = { .random = rng_next(&x) };
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        server_active_add(s, 1);
    }
    for (uint32_t i = 0; i < 3; i++) {
        double per_weight = (double)server_active(&p->servers[i]) / p->servers[i].weight;
        print_message("random2 open %s: %lld (%.0f per weight)\n", p->servers[i].name,
                      (long long)server_active(&p->servers[i]), per_weight);
        /* 1000 per unit weight if perfect */
        assert_true(per_weight > 950 && per_weight < 1050);
    }
    config_unref(c);
}

enum r2_block { BLOCK_DOWN, BLOCK_MAINT, BLOCK_DRAIN, BLOCK_WEIGHT0, BLOCK_TRIED, BLOCK_FULL };

static void r2_block(struct server *s, enum r2_block b, uint32_t *tried, size_t *ntried)
{
    switch (b) {
    case BLOCK_DOWN: pool_set_server_state(s, SERVER_DOWN); break;
    case BLOCK_MAINT: pool_set_server_state(s, SERVER_MAINT); break;
    case BLOCK_DRAIN: pool_set_server_state(s, SERVER_DRAIN); break;
    case BLOCK_WEIGHT0: assert_int_equal(pool_set_server_weight(s, 0), 0); break;
    case BLOCK_TRIED: tried[(*ntried)++] = s->index; break;
    case BLOCK_FULL: server_active_add(s, 4 - server_active(s)); break;  /* maxconn 4 */
    }
}

/* Server b, the idle one, is blocked: whatever the random value, b is never
 * picked and the other two still are. */
static void test_skips_unavailable_tried_and_full(void **state)
{
    (void)state;
    for (enum r2_block b = BLOCK_DOWN; b <= BLOCK_FULL; b++) {
        struct config *c = r2_config((unsigned[]){ 1, 1, 1 },
                                     (unsigned[]){ 4, 4, 4 }, 3);
        struct pool *p = &c->pools[0];
        set_actives(p, (int64_t[]){ 2, 0, 2 });
        uint32_t tried[4];
        size_t ntried = 0;
        r2_block(&p->servers[1], b, tried, &ntried);
        unsigned counts[MAX_SERVERS] = { 0 };
        uint64_t x = 5 + b;
        for (int i = 0; i < 1000; i++) {
            struct sched_request req = { .random = rng_next(&x), .tried = tried,
                                         .ntried = ntried };
            struct server *s = sched_pick(p, &req);
            assert_non_null(s);
            counts[s->index]++;
        }
        if (counts[1] != 0 || counts[0] == 0 || counts[2] == 0)
            fail_msg("block %d: a %u, b %u, c %u", (int)b, counts[0], counts[1],
                     counts[2]);
        config_unref(c);
    }
}

static void test_single_eligible_server_is_always_picked(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 1, 1, 1 }, NULL, 3);
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    pool_set_server_state(&p->servers[2], SERVER_MAINT);
    server_active_add(&p->servers[1], 1000);
    uint64_t x = 11;
    for (int i = 0; i < 100; i++) {
        struct sched_request req = { .random = rng_next(&x) };
        assert_int_equal(pick_letter(p, &req), 'b');
    }
    config_unref(c);
}

static void test_null_when_none_eligible(void **state)
{
    (void)state;
    struct config *c = r2_config((unsigned[]){ 1, 1 }, (unsigned[]){ 1, 0 }, 2);
    struct pool *p = &c->pools[0];
    server_active_add(&p->servers[0], 1);                /* a full */
    uint32_t tried[] = { 1 };                            /* b tried */
    struct sched_request req = { .random = 12345, .tried = tried, .ntried = 1 };
    assert_null(sched_pick(p, &req));
    pool_set_server_state(&p->servers[1], SERVER_DOWN);
    req.ntried = 0;
    assert_null(sched_pick(p, &req));
    server_active_add(&p->servers[0], -1);               /* a has room again */
    assert_int_equal(pick_letter(p, &req), 'a');
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_injected_random_values_decide),
        cmocka_unit_test(test_same_random_same_pick),
        cmocka_unit_test(test_idle_shares_follow_weights_1_2_3),
        cmocka_unit_test(test_heavily_loaded_server_is_picked_far_less),
        cmocka_unit_test(test_open_connections_stay_balanced),
        cmocka_unit_test(test_skips_unavailable_tried_and_full),
        cmocka_unit_test(test_single_eligible_server_is_always_picked),
        cmocka_unit_test(test_null_when_none_eligible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
