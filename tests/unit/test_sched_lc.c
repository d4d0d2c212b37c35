/* test_sched_lc.c — sched_lc.c (leastconn) through sched_pick(): fewest
 * active connections per unit weight, ties in round robin order, and every
 * reason a server is passed over. Active counts are set by hand with
 * server_active_add(); pools come from config_load_string(). */
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

/* One leastconn pool "p" with servers a, b, c, ... of the given weights and
 * maxconns (maxconn may be NULL: no cap). */
static struct config *lc_config(const unsigned *weights, const unsigned *maxconn,
                                size_t n)
{
    char text[2048], err[CONFIG_ERR_LEN];
    int len = snprintf(text, sizeof(text),
                       "[global]\nworkers = 1\n"
                       "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
                       "[pool p]\nscheduler = leastconn\n");
    for (size_t i = 0; i < n; i++)
        len += snprintf(text + len, sizeof(text) - (size_t)len,
                        "server = %c 127.0.0.1:%zu weight=%u maxconn=%u\n",
                        (char)('a' + i), 19001 + i, weights[i],
                        maxconn ? maxconn[i] : 0);
    struct config *c = config_load_string("lc.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_ptr_equal(c->pools[0].sched, &sched_leastconn);
    return c;
}

static void set_actives(struct pool *p, const int64_t *actives)
{
    for (uint32_t i = 0; i < p->nservers; i++)
        server_active_add(&p->servers[i], actives[i] - server_active(&p->servers[i]));
}

static char pick_letter(struct pool *p, const struct sched_request *req)
{
    struct server *s = sched_pick(p, req);
    return s == NULL ? '-' : s->name[0];
}

/* ---- least load per unit weight --------------------------------------------- */

/* Table-driven: weights and actives -> the only server leastconn may pick
 * (whatever the round robin position, so each case picks n times). */
static void test_fewest_active_per_unit_weight(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        unsigned weights[4];
        int64_t actives[4];
        char want;
    } cases[] = {
        { 2, { 1, 1 }, { 3, 2 }, 'b' },
        { 2, { 1, 1 }, { 0, 1 }, 'a' },
        { 2, { 1, 2 }, { 1, 1 }, 'b' },          /* 1/1 > 1/2 */
        { 2, { 1, 2 }, { 1, 3 }, 'a' },          /* 1/1 < 3/2 */
        { 2, { 1, 2 }, { 2, 3 }, 'b' },          /* 2/1 > 3/2 */
        { 3, { 1, 2, 3 }, { 1, 2, 2 }, 'c' },    /* 1, 1, 0.67 */
        { 3, { 1, 2, 3 }, { 0, 5, 5 }, 'a' },
        { 3, { 10, 1, 1 }, { 19, 2, 2 }, 'a' },  /* 1.9 < 2 */
        { 4, { 256, 1, 1, 1 }, { 255, 1, 1, 1 }, 'a' },
        { 4, { 1, 1, 1, 1 }, { 7, 7, 6, 7 }, 'c' },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct config *c = lc_config(cases[i].weights, NULL, cases[i].n);
        struct pool *p = &c->pools[0];
        set_actives(p, cases[i].actives);
        struct sched_request req = { 0 };
        for (size_t k = 0; k < 2 * cases[i].n; k++) {
            char got = pick_letter(p, &req);
            if (got != cases[i].want)
                fail_msg("case %zu, pick %zu: got %c, want %c", i, k, got,
                         cases[i].want);
        }
        config_unref(c);
    }
}

/* Equal load per unit weight (1/1 == 2/2) is a tie: both get picks, in turn. */
static void test_equal_load_per_weight_is_a_tie(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 2 }, NULL, 2);
    struct pool *p = &c->pools[0];
    set_actives(p, (int64_t[]){ 1, 2 });
    struct sched_request req = { 0 };
    char seq[9];
    for (int i = 0; i < 8; i++)
        seq[i] = pick_letter(p, &req);
    seq[8] = '\0';
    /* the scan starts one server further on each pick */
    assert_string_equal(seq, "abababab");
    config_unref(c);
}

static void test_idle_equal_servers_cycle_through_all(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1, 1, 1, 1 }, NULL, 5);
    struct pool *p = &c->pools[0];
    struct sched_request req = { 0 };
    for (int lap = 0; lap < 20; lap++) {
        unsigned seen = 0;
        for (uint32_t k = 0; k < p->nservers; k++) {
            struct server *s = sched_pick(p, &req);
            assert_non_null(s);
            seen |= 1u << s->index;
        }
        /* every lap of 5 picks visits every server once */
        assert_int_equal(seen, 0x1f);
    }
    config_unref(c);
}

/* Ties among a subset: only the tied least-loaded servers take turns. */
static void test_ties_rotate_among_least_loaded_only(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1, 1, 1 }, NULL, 4);
    struct pool *p = &c->pools[0];
    set_actives(p, (int64_t[]){ 3, 1, 3, 1 });
    struct sched_request req = { 0 };
    unsigned counts[MAX_SERVERS] = { 0 };
    for (int i = 0; i < 400; i++) {
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        counts[s->index]++;
    }
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[1], 200);
    assert_int_equal(counts[3], 200);
    config_unref(c);
}

/* With picks opening connections (and none closing), actives follow weights. */
static void test_open_connections_spread_by_weight(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1, 2 }, NULL, 3);
    struct pool *p = &c->pools[0];
    struct sched_request req = { 0 };
    for (int i = 0; i < 400; i++) {
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        /* the pick was among the least loaded per unit weight */
        for (uint32_t k = 0; k < p->nservers; k++)
            assert_true(sched_load_cmp(s, &p->servers[k]) <= 0);
        server_active_add(s, 1);
    }
    assert_int_equal(server_active(&p->servers[0]), 100);
    assert_int_equal(server_active(&p->servers[1]), 100);
    assert_int_equal(server_active(&p->servers[2]), 200);
    config_unref(c);
}

/* ---- servers passed over --------------------------------------------------------- */

enum lc_block { BLOCK_DOWN, BLOCK_MAINT, BLOCK_DRAIN, BLOCK_WEIGHT0, BLOCK_TRIED, BLOCK_FULL };

static const char *lc_block_str(enum lc_block b)
{
    static const char *const names[] = { "down", "maint", "drain", "weight 0",
                                         "tried", "full" };
    return names[b];
}

/* Makes <s> ineligible the way <b> says; may fill *tried. */
static void lc_block(struct server *s, enum lc_block b, uint32_t *tried, size_t *ntried)
{
    switch (b) {
    case BLOCK_DOWN: pool_set_server_state(s, SERVER_DOWN); break;
    case BLOCK_MAINT: pool_set_server_state(s, SERVER_MAINT); break;
    case BLOCK_DRAIN: pool_set_server_state(s, SERVER_DRAIN); break;
    case BLOCK_WEIGHT0: assert_int_equal(pool_set_server_weight(s, 0), 0); break;
    case BLOCK_TRIED: tried[(*ntried)++] = s->index; break;
    case BLOCK_FULL:
        /* maxconn is 5 in the config below; 5 open means full */
        server_active_add(s, 5 - server_active(s));
        break;
    }
}

/* The least loaded server "a" is blocked: the next best "c" is picked, every
 * time; the blocked one never. */
static void test_skips_each_kind_of_unavailable_server(void **state)
{
    (void)state;
    for (enum lc_block b = BLOCK_DOWN; b <= BLOCK_FULL; b++) {
        struct config *c = lc_config((unsigned[]){ 1, 1, 1 },
                                     (unsigned[]){ 5, 5, 5 }, 3);
        struct pool *p = &c->pools[0];
        set_actives(p, (int64_t[]){ 0, 3, 1 });
        uint32_t tried[4];
        size_t ntried = 0;
        lc_block(&p->servers[0], b, tried, &ntried);
        struct sched_request req = { .tried = tried, .ntried = ntried };
        for (int i = 0; i < 9; i++) {
            char got = pick_letter(p, &req);
            if (got != 'c')
                fail_msg("a %s: pick %d got %c, want c", lc_block_str(b), i, got);
        }
        config_unref(c);
    }
}

static void test_null_when_every_server_is_blocked(void **state)
{
    (void)state;
    for (enum lc_block b = BLOCK_DOWN; b <= BLOCK_FULL; b++) {
        struct config *c = lc_config((unsigned[]){ 1, 2, 3 },
                                     (unsigned[]){ 5, 5, 5 }, 3);
        struct pool *p = &c->pools[0];
        uint32_t tried[4];
        size_t ntried = 0;
        for (uint32_t i = 0; i < p->nservers; i++)
            lc_block(&p->servers[i], b, tried, &ntried);
        struct sched_request req = { .tried = tried, .ntried = ntried };
        for (int i = 0; i < 4; i++)
            if (sched_pick(p, &req) != NULL)
                fail_msg("all %s: got a server", lc_block_str(b));
        config_unref(c);
    }
}

/* A full server becomes eligible again when one of its connections ends. */
static void test_full_server_returns_when_a_slot_frees(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1 }, (unsigned[]){ 2, 0 }, 2);
    struct pool *p = &c->pools[0];
    /* a: 2/2 full, b: 9 open, no cap */
    set_actives(p, (int64_t[]){ 2, 9 });
    struct sched_request req = { 0 };
    assert_int_equal(pick_letter(p, &req), 'b');
    server_active_add(&p->servers[0], -1);
    assert_int_equal(pick_letter(p, &req), 'a');
    config_unref(c);
}

/* Back up after down: picked again, as the least loaded. */
static void test_server_back_up_is_picked_again(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1 }, NULL, 2);
    struct pool *p = &c->pools[0];
    set_actives(p, (int64_t[]){ 0, 4 });
    struct sched_request req = { 0 };
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    assert_int_equal(pick_letter(p, &req), 'b');
    pool_set_server_state(&p->servers[0], SERVER_UP);
    assert_int_equal(pick_letter(p, &req), 'a');
    config_unref(c);
}

/* BUG (reported, sched_lc.c:31-40, lc_pick): ties are rotated by starting
 * the scan at `position % n` over all servers, so an ineligible server's turn
 * falls to the next eligible one, which then wins twice per lap. With a, b, c, d idle
 * and b down, picks go a c c d: c gets twice the share of a and d. Expected:
 * the tied servers share picks equally (round robin among them). */
static void test_ties_stay_even_when_a_server_is_down(void **state)
{
    (void)state;
    struct config *c = lc_config((unsigned[]){ 1, 1, 1, 1 }, NULL, 4);
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[1], SERVER_DOWN);
    struct sched_request req = { 0 };
    unsigned counts[MAX_SERVERS] = { 0 };
    for (int i = 0; i < 300; i++) {
        struct server *s = sched_pick(p, &req);
        assert_non_null(s);
        counts[s->index]++;
    }
    config_unref(c);    /* before a failure, so that the sanitizers see no leak */
    assert_int_equal(counts[1], 0);
    if (counts[0] != 100 || counts[2] != 100 || counts[3] != 100)
        fail_msg("idle ties with b down: a %u, c %u, d %u of 300 (want 100 each)",
                 counts[0], counts[2], counts[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fewest_active_per_unit_weight),
        cmocka_unit_test(test_equal_load_per_weight_is_a_tie),
        cmocka_unit_test(test_idle_equal_servers_cycle_through_all),
        cmocka_unit_test(test_ties_rotate_among_least_loaded_only),
        cmocka_unit_test(test_open_connections_spread_by_weight),
        cmocka_unit_test(test_skips_each_kind_of_unavailable_server),
        cmocka_unit_test(test_null_when_every_server_is_blocked),
        cmocka_unit_test(test_full_server_returns_when_a_slot_frees),
        cmocka_unit_test(test_server_back_up_is_picked_again),
        cmocka_unit_test(test_ties_stay_even_when_a_server_is_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
