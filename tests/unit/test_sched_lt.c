/* test_sched_lt.c — sched_lt.c (leasttime) through sched_pick() and
 * sched_ops.observe, with fixed timings: the lowest (active + 1) x
 * estimate / weight wins; the estimate jumps at once to a slower answer
 * (the peak) and moves towards faster ones by exp(-dt / 5 s); it fades with
 * time without samples; connect times stand in until a server answers; a
 * server with neither counts as the fastest; weights divide; ties go round
 * robin; tried and full servers are passed over. */
#include <math.h>
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

#define T 1000.0

static struct config *lt_config(const char *servers)
{
    char text[2048], err[CONFIG_ERR_LEN];
    snprintf(text, sizeof(text), "[global]\nworkers = 1\n"
             "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
             "[pool p]\nscheduler = leasttime\n%s", servers);
    struct config *c = config_load_string("lt.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_ptr_equal(c->pools[0].sched, &sched_leasttime);
    return c;
}

static const char abc[] = "server = a 127.0.0.1:1\nserver = b 127.0.0.1:2\n"
                          "server = c 127.0.0.1:3\n";

static void rt(struct pool *p, uint32_t i, double seconds, double now)
{
    p->sched->observe(p->sched_state, &p->servers[i], SCHED_OBSERVE_RESPONSE, seconds, now);
}

static void connect_time(struct pool *p, uint32_t i, double seconds, double now)
{
    p->sched->observe(p->sched_state, &p->servers[i], SCHED_OBSERVE_CONNECT, seconds, now);
}

static char pick_at(struct pool *p, double now)
{
    struct sched_request req = { .now = now };
    struct server *s = sched_pick(p, &req);
    return s == NULL ? '-' : s->name[0];
}

static void test_lowest_estimate_wins(void **state)
{
    (void)state;
    struct config *c = lt_config(abc);
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.010, T);
    rt(p, 1, 0.002, T);
    rt(p, 2, 0.050, T);
    for (int k = 0; k < 5; k++)
        assert_int_equal(pick_at(p, T), 'b');
    /* (active + 1) x est: b with 5 open (6 x 2 ms = 12 ms) loses to a (10 ms) */
    server_active_add(&p->servers[1], 5);
    assert_int_equal(pick_at(p, T), 'a');
    server_active_add(&p->servers[1], -5);
    config_unref(c);
}

static void test_peak_then_decay(void **state)
{
    (void)state;
    struct config *c = lt_config(abc);
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.010, T);
    rt(p, 1, 0.010, T);
    rt(p, 2, 0.010, T);
    /* one slow answer: b's estimate is that answer at once */
    rt(p, 1, 0.200, T + 1);
    assert_int_not_equal(pick_at(p, T + 1), 'b');
    /* fast answers bring it back: each pulls by 1 - exp(-dt / 5) */
    rt(p, 1, 0.010, T + 6);
    /* 0.2 e^-1 + 0.01 (1 - e^-1) = 0.0799; a, c read 0.01 faded by e^-1 */
    rt(p, 0, 0.010, T + 6);
    rt(p, 2, 0.010, T + 6);
    assert_int_not_equal(pick_at(p, T + 6), 'b');
    for (int k = 0; k < 6; k++)
        rt(p, 1, 0.010, T + 6 + 2 * (k + 1));      /* 12 s of fast answers */
    /* b: 0.0799 pulled six times by e^-0.4 towards 10 ms: 16.4 ms; a and c
     * answer 20 ms now */
    rt(p, 0, 0.020, T + 18);
    rt(p, 2, 0.020, T + 18);
    assert_int_equal(pick_at(p, T + 18), 'b');
    config_unref(c);
}

/* An avoided server is not avoided for ever: its estimate fades with time,
 * while the others', fed by answers, stays. */
static void test_estimate_fades_without_samples(void **state)
{
    (void)state;
    struct config *c = lt_config("server = a 127.0.0.1:1\nserver = b 127.0.0.1:2\n");
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.010, T);
    rt(p, 1, 0.100, T);
    assert_int_equal(pick_at(p, T), 'a');
    double now = T;
    while (now < T + 60 && pick_at(p, now) == 'a') {
        rt(p, 0, 0.010, now);          /* a keeps answering in 10 ms */
        now += 1;
    }
    /* b (100 ms) fades below 10 ms after ln(10) x 5 s = 11.5 s */
    assert_true(now > T + 11 && now <= T + 13);
    config_unref(c);
}

static void test_connect_times_until_an_answer(void **state)
{
    (void)state;
    struct config *c = lt_config("server = a 127.0.0.1:1\nserver = b 127.0.0.1:2\n");
    struct pool *p = &c->pools[0];
    connect_time(p, 0, 0.001, T);
    connect_time(p, 1, 0.0002, T);
    assert_int_equal(pick_at(p, T), 'b');
    /* b's first answer replaces its connect times: it is 20 ms */
    rt(p, 1, 0.020, T);
    assert_int_equal(pick_at(p, T), 'a');
    /* later connect times of b no longer count */
    connect_time(p, 1, 0.0001, T);
    assert_int_equal(pick_at(p, T), 'a');
    config_unref(c);
}

/* A server with no estimate counts as the pool's fastest: a new or
 * returning server gets traffic (and so an estimate). */
static void test_unknown_counts_as_the_fastest(void **state)
{
    (void)state;
    struct config *c = lt_config(abc);
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.010, T);
    rt(p, 1, 0.005, T);
    /* c has nothing: it is taken as 5 ms, like b; ties go round robin */
    char seen[3] = { 0 };
    for (int k = 0; k < 10; k++) {
        char x = pick_at(p, T);
        assert_true(x == 'b' || x == 'c');
        seen[x - 'a'] = 1;
    }
    assert_true(seen[1] && seen[2]);
    config_unref(c);
}

static void test_weights_divide_and_ties_rotate(void **state)
{
    (void)state;
    struct config *c = lt_config("server = a 127.0.0.1:1 weight=1\n"
                                 "server = b 127.0.0.1:2 weight=4\n"
                                 "server = c 127.0.0.1:3 weight=4\n");
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.010, T);
    rt(p, 1, 0.030, T);     /* 30 / 4 = 7.5 < 10 */
    rt(p, 2, 0.030, T);
    /* b and c tie: strictly alternating */
    char last = 0;
    for (int k = 0; k < 8; k++) {
        char x = pick_at(p, T);
        assert_true(x == 'b' || x == 'c');
        assert_true(x != last);
        last = x;
    }
    config_unref(c);
}

static void test_tried_full_and_unavailable_are_passed_over(void **state)
{
    (void)state;
    struct config *c = lt_config("server = a 127.0.0.1:1 maxconn=1\n"
                                 "server = b 127.0.0.1:2\nserver = c 127.0.0.1:3\n");
    struct pool *p = &c->pools[0];
    rt(p, 0, 0.001, T);
    rt(p, 1, 0.002, T);
    rt(p, 2, 0.003, T);
    assert_int_equal(pick_at(p, T), 'a');
    server_active_add(&p->servers[0], 1);          /* a is full */
    assert_int_equal(pick_at(p, T), 'b');
    uint32_t tried[1] = { 1 };
    struct sched_request req = { .now = T, .tried = tried, .ntried = 1 };
    assert_int_equal(sched_pick(p, &req)->name[0], 'c');
    pool_set_server_state(&p->servers[2], SERVER_DOWN);
    assert_null(sched_pick(p, &req));
    server_active_add(&p->servers[0], -1);
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowest_estimate_wins),
        cmocka_unit_test(test_peak_then_decay),
        cmocka_unit_test(test_estimate_fades_without_samples),
        cmocka_unit_test(test_connect_times_until_an_answer),
        cmocka_unit_test(test_unknown_counts_as_the_fastest),
        cmocka_unit_test(test_weights_divide_and_ties_rotate),
        cmocka_unit_test(test_tried_full_and_unavailable_are_passed_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
