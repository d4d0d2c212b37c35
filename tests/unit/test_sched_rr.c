/* test_sched_rr.c — sched_rr.c through sched_pick(): the smooth weighted
 * sequence, exact shares per period, state and weight changes, the tried set,
 * and exactness when several threads pick at once. Pools come from
 * config_load_string(), which runs pool_start() and so inits the scheduler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "config.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define MAX_SERVERS 8

/* A config with one round-robin pool "p" whose servers a, b, c, ... have the
 * given weights. */
static struct config *rr_config(const unsigned *weights, size_t n)
{
    char text[2048], err[CONFIG_ERR_LEN];
    int len = snprintf(text, sizeof(text),
                       "[global]\nworkers = 2\n"
                       "[listener web]\nbind = 127.0.0.1:8080\npool = p\n"
                       "[pool p]\nscheduler = roundrobin\n");
    for (size_t i = 0; i < n; i++)
        len += snprintf(text + len, sizeof(text) - (size_t)len,
                        "server = %c 127.0.0.1:%zu weight=%u\n",
                        (char)('a' + i), 9001 + i, weights[i]);
    struct config *c = config_load_string("rr.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_ptr_equal(c->pools[0].sched, &sched_roundrobin);
    return c;
}

static char pick_letter(struct pool *p, const struct sched_request *req)
{
    struct server *s = sched_pick(p, req);
    if (s == NULL)
        return '-';
    assert_ptr_equal(s->pool, p);
    return s->name[0];
}

/* n picks with an empty request, as letters ('-' for NULL). */
static void pick_sequence(struct pool *p, size_t n, char *out)
{
    struct sched_request req = { 0 };
    for (size_t i = 0; i < n; i++)
        out[i] = pick_letter(p, &req);
    out[n] = '\0';
}

static void pick_counts(struct pool *p, const struct sched_request *req, size_t n,
                        unsigned counts[MAX_SERVERS], unsigned *nulls)
{
    memset(counts, 0, MAX_SERVERS * sizeof(counts[0]));
    *nulls = 0;
    for (size_t i = 0; i < n; i++) {
        struct server *s = sched_pick(p, req);
        if (s == NULL)
            (*nulls)++;
        else
            counts[s->index]++;
    }
}

static void assert_counts(struct pool *p, size_t n, const unsigned *want)
{
    struct sched_request req = { 0 };
    unsigned counts[MAX_SERVERS], nulls;
    pick_counts(p, &req, n, counts, &nulls);
    assert_int_equal(nulls, 0);
    for (uint32_t i = 0; i < p->nservers; i++)
        if (counts[i] != want[i])
            fail_msg("server %s: %u picks, want %u", p->servers[i].name,
                     counts[i], want[i]);
}

static size_t longest_run(const char *seq)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; seq[i]; i++) {
        run = (i > 0 && seq[i] == seq[i - 1]) ? run + 1 : 1;
        if (run > best)
            best = run;
    }
    return best;
}

/* ---- the sequence ------------------------------------------------------------- */

static void test_weights_5_1_1_give_aabacaa_every_period(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 5, 1, 1 }, 3);
    char seq[64];
    pick_sequence(&c->pools[0], 28, seq);
    assert_string_equal(seq, "aabacaa" "aabacaa" "aabacaa" "aabacaa");
    config_unref(c);
}

static void test_weights_1_2_3_give_cbacbc_every_period(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 2, 3 }, 3);
    char seq[32];
    pick_sequence(&c->pools[0], 18, seq);
    assert_string_equal(seq, "cbacbc" "cbacbc" "cbacbc");
    config_unref(c);
}

static void test_weights_1_2_3_split_exactly_over_600(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 2, 3 }, 3);
    assert_counts(&c->pools[0], 600, (unsigned[]){ 100, 200, 300 });
    config_unref(c);
}

static void test_weights_1_2_3_interleave(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 2, 3 }, 3);
    char seq[601];
    pick_sequence(&c->pools[0], 600, seq);
    /* the heaviest server gets half the picks yet never three in a row */
    assert_true(longest_run(seq) <= 2);
    config_unref(c);
}

static void test_equal_weights_never_repeat_a_server(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 1, 1 }, 3);
    char seq[301];
    pick_sequence(&c->pools[0], 300, seq);
    assert_int_equal(longest_run(seq), 1);
    config_unref(c);
}

static void test_equal_weights_split_exactly(void **state)
{
    (void)state;
    static const struct { size_t k; unsigned weight; } cases[] = {
        { 1, 1 }, { 2, 1 }, { 3, 1 }, { 4, 7 }, { 7, 256 }, { 8, 2 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        unsigned weights[MAX_SERVERS], want[MAX_SERVERS];
        for (size_t s = 0; s < cases[i].k; s++) {
            weights[s] = cases[i].weight;
            want[s] = 1000;
        }
        struct config *c = rr_config(weights, cases[i].k);
        assert_counts(&c->pools[0], 1000 * cases[i].k, want);
        config_unref(c);
    }
}

static void test_weights_are_reduced_by_their_gcd(void **state)
{
    (void)state;
    /* {2,4,6} is {1,2,3}: a period of 6, not 12 */
    struct config *c = rr_config((unsigned[]){ 2, 4, 6 }, 3);
    char seq[16];
    pick_sequence(&c->pools[0], 12, seq);
    assert_string_equal(seq, "cbacbc" "cbacbc");
    config_unref(c);
}

static void test_weights_256_and_1_split_exactly(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 256, 1 }, 2);
    assert_counts(&c->pools[0], 257 * 3, (unsigned[]){ 768, 3 });
    config_unref(c);
}

static void test_weight_zero_server_is_never_picked(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 0, 1 }, 3);
    assert_counts(&c->pools[0], 1000, (unsigned[]){ 500, 0, 500 });
    config_unref(c);
}

/* ---- state and weight changes ---------------------------------------------------- */

static void test_non_up_server_is_skipped_and_rest_stay_exact(void **state)
{
    (void)state;
    static const enum server_state states[] = { SERVER_DOWN, SERVER_DRAIN, SERVER_MAINT };
    for (size_t i = 0; i < ARRAY_LEN(states); i++) {
        struct config *c = rr_config((unsigned[]){ 1, 1, 1 }, 3);
        struct pool *p = &c->pools[0];
        char seq[8];
        pick_sequence(p, 1, seq);   /* mid-period: the change must not care */
        pool_set_server_state(&p->servers[1], states[i]);
        assert_int_equal(server_state(&p->servers[1]), states[i]);
        assert_counts(p, 1000, (unsigned[]){ 500, 0, 500 });
        config_unref(c);
    }
}

static void test_server_back_up_restores_exact_shares(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 1, 1 }, 3);
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[1], SERVER_DOWN);
    assert_counts(p, 11, (unsigned[]){ 6, 0, 5 });
    pool_set_server_state(&p->servers[1], SERVER_UP);
    assert_counts(p, 3000, (unsigned[]){ 1000, 1000, 1000 });
    config_unref(c);
}

static void test_repeated_state_change_is_harmless(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 5, 1, 1 }, 3);
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    assert_counts(p, 100, (unsigned[]){ 0, 50, 50 });
    pool_set_server_state(&p->servers[0], SERVER_UP);
    pool_set_server_state(&p->servers[0], SERVER_UP);
    assert_counts(p, 700, (unsigned[]){ 500, 100, 100 });
    config_unref(c);
}

static void test_set_weight_changes_proportions(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 1 }, 2);
    struct pool *p = &c->pools[0];
    assert_int_equal(pool_set_server_weight(&p->servers[0], 3), 0);
    assert_int_equal(server_weight(&p->servers[0]), 3);
    assert_counts(p, 400, (unsigned[]){ 300, 100 });
    assert_int_equal(pool_set_server_weight(&p->servers[1], 3), 0);
    assert_counts(p, 400, (unsigned[]){ 200, 200 });
    config_unref(c);
}

static void test_set_weight_above_256_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 3, 1 }, 2);
    struct pool *p = &c->pools[0];
    assert_int_equal(pool_set_server_weight(&p->servers[1], 257), -1);
    assert_int_equal(server_weight(&p->servers[1]), 1);
    assert_counts(p, 400, (unsigned[]){ 300, 100 });
    assert_int_equal(pool_set_server_weight(&p->servers[1], 256), 0);
    assert_int_equal(server_weight(&p->servers[1]), 256);
    config_unref(c);
}

static void test_set_weight_zero_removes_server(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 1, 1 }, 3);
    struct pool *p = &c->pools[0];
    assert_int_equal(pool_set_server_weight(&p->servers[2], 0), 0);
    assert_false(server_available(&p->servers[2]));
    assert_counts(p, 1000, (unsigned[]){ 500, 500, 0 });
    config_unref(c);
}

/* ---- the tried set and empty answers ------------------------------------------------ */

static void test_tried_server_is_never_picked(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 5, 1, 1 }, 3);
    struct pool *p = &c->pools[0];
    uint32_t tried[] = { 0 };
    struct sched_request req = { .tried = tried, .ntried = 1 };
    unsigned counts[MAX_SERVERS], nulls;
    pick_counts(p, &req, 300, counts, &nulls);
    assert_int_equal(nulls, 0);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1] + counts[2], 300);
    config_unref(c);
}

static void test_all_servers_tried_gives_null(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 2, 3 }, 3);
    uint32_t tried[] = { 2, 0, 1 };
    struct sched_request req = { .tried = tried, .ntried = 3 };
    for (int i = 0; i < 10; i++)
        assert_null(sched_pick(&c->pools[0], &req));
    config_unref(c);
}

static void test_tried_down_and_zero_weight_leave_nothing_gives_null(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 1, 0 }, 3);
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[1], SERVER_DOWN);
    uint32_t tried[] = { 0 };
    struct sched_request req = { .tried = tried, .ntried = 1 };
    assert_null(sched_pick(p, &req));
    config_unref(c);
}

static void test_all_servers_down_gives_null(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 1, 2, 3 }, 3);
    struct pool *p = &c->pools[0];
    struct sched_request req = { 0 };
    for (uint32_t i = 0; i < p->nservers; i++)
        pool_set_server_state(&p->servers[i], SERVER_DOWN);
    assert_null(sched_pick(p, &req));
    pool_set_server_state(&p->servers[2], SERVER_UP);
    assert_ptr_equal(sched_pick(p, &req), &p->servers[2]);
    config_unref(c);
}

static void test_all_weights_zero_gives_null(void **state)
{
    (void)state;
    struct config *c = rr_config((unsigned[]){ 0, 0 }, 2);
    struct sched_request req = { 0 };
    assert_null(sched_pick(&c->pools[0], &req));
    config_unref(c);
}

static void test_empty_pool_gives_null(void **state)
{
    (void)state;
    struct config *c = rr_config(NULL, 0);
    struct sched_request req = { 0 };
    assert_int_equal(c->pools[0].nservers, 0);
    assert_null(sched_pick(&c->pools[0], &req));
    config_unref(c);
}

/* ---- helpers of sched.c ---------------------------------------------------------------- */

static void test_sched_find_knows_roundrobin(void **state)
{
    (void)state;
    assert_ptr_equal(sched_find("roundrobin"), &sched_roundrobin);
    assert_null(sched_find("fastest"));
    assert_null(sched_find(""));
    assert_non_null(strstr(sched_names(), "roundrobin"));
}

static void test_sched_tried_finds_only_listed_indexes(void **state)
{
    (void)state;
    uint32_t tried[] = { 4, 1 };
    struct sched_request req = { .tried = tried, .ntried = 2 };
    struct sched_request none = { 0 };
    assert_true(sched_tried(&req, 1));
    assert_true(sched_tried(&req, 4));
    assert_false(sched_tried(&req, 0));
    assert_false(sched_tried(&req, 2));
    assert_false(sched_tried(&none, 0));
}

/* ---- several workers at once -------------------------------------------------------------- */

struct picker {
    pthread_t thread;
    struct pool *pool;
    pthread_barrier_t *start;
    unsigned npicks;
    unsigned counts[MAX_SERVERS];
    unsigned nulls;
};

static void *picker_run(void *arg)
{
    struct picker *pk = arg;
    struct sched_request req = { 0 };
    pthread_barrier_wait(pk->start);
    for (unsigned i = 0; i < pk->npicks; i++) {
        struct server *s = sched_pick(pk->pool, &req);
        if (s == NULL)
            pk->nulls++;
        else
            pk->counts[s->index]++;
    }
    return NULL;
}

/* nthreads pick npicks each, all at once; the totals must be exact. */
static void run_pickers(const unsigned *weights, size_t nservers, unsigned nthreads,
                        unsigned npicks, const unsigned *want)
{
    struct config *c = rr_config(weights, nservers);
    struct picker pickers[8];
    pthread_barrier_t start;
    assert_true(nthreads <= ARRAY_LEN(pickers));
    assert_int_equal(pthread_barrier_init(&start, NULL, nthreads), 0);
    for (unsigned t = 0; t < nthreads; t++) {
        pickers[t] = (struct picker){ .pool = &c->pools[0], .start = &start,
                                      .npicks = npicks };
        assert_int_equal(pthread_create(&pickers[t].thread, NULL, picker_run,
                                        &pickers[t]), 0);
    }
    unsigned total[MAX_SERVERS] = { 0 };
    for (unsigned t = 0; t < nthreads; t++) {
        assert_int_equal(pthread_join(pickers[t].thread, NULL), 0);
        assert_int_equal(pickers[t].nulls, 0);
        for (size_t s = 0; s < nservers; s++)
            total[s] += pickers[t].counts[s];
    }
    pthread_barrier_destroy(&start);
    for (size_t s = 0; s < nservers; s++)
        if (total[s] != want[s])
            fail_msg("server %zu: %u picks, want %u", s, total[s], want[s]);
    config_unref(c);
}

static void test_two_threads_split_equal_weights_exactly(void **state)
{
    (void)state;
    run_pickers((unsigned[]){ 1, 1, 1 }, 3, 2, 30000,
                (unsigned[]){ 20000, 20000, 20000 });
}

static void test_four_threads_split_weights_5_1_1_exactly(void **state)
{
    (void)state;
    run_pickers((unsigned[]){ 5, 1, 1 }, 3, 4, 7000,
                (unsigned[]){ 20000, 4000, 4000 });
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_5_1_1_give_aabacaa_every_period),
        cmocka_unit_test(test_weights_1_2_3_give_cbacbc_every_period),
        cmocka_unit_test(test_weights_1_2_3_split_exactly_over_600),
        cmocka_unit_test(test_weights_1_2_3_interleave),
        cmocka_unit_test(test_equal_weights_never_repeat_a_server),
        cmocka_unit_test(test_equal_weights_split_exactly),
        cmocka_unit_test(test_weights_are_reduced_by_their_gcd),
        cmocka_unit_test(test_weights_256_and_1_split_exactly),
        cmocka_unit_test(test_weight_zero_server_is_never_picked),
        cmocka_unit_test(test_non_up_server_is_skipped_and_rest_stay_exact),
        cmocka_unit_test(test_server_back_up_restores_exact_shares),
        cmocka_unit_test(test_repeated_state_change_is_harmless),
        cmocka_unit_test(test_set_weight_changes_proportions),
        cmocka_unit_test(test_set_weight_above_256_is_refused_and_changes_nothing),
        cmocka_unit_test(test_set_weight_zero_removes_server),
        cmocka_unit_test(test_tried_server_is_never_picked),
        cmocka_unit_test(test_all_servers_tried_gives_null),
        cmocka_unit_test(test_tried_down_and_zero_weight_leave_nothing_gives_null),
        cmocka_unit_test(test_all_servers_down_gives_null),
        cmocka_unit_test(test_all_weights_zero_gives_null),
        cmocka_unit_test(test_empty_pool_gives_null),
        cmocka_unit_test(test_sched_find_knows_roundrobin),
        cmocka_unit_test(test_sched_tried_finds_only_listed_indexes),
        cmocka_unit_test(test_two_threads_split_equal_weights_exactly),
        cmocka_unit_test(test_four_threads_split_weights_5_1_1_exactly),
    };
    return cmocka_run_group_tests_name("sched_rr", tests, NULL, NULL) ? 1 : 0;
}
