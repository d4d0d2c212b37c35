/* test_skewload_stats.c — tools/skewload dist.c and tally.c: nearest-rank
 * percentiles on known arrays, imbalance and coefficient of variation on
 * known counts (zero-request servers included), and the tally's bookkeeping
 * of servers, clients, pins, errors and the per-second timeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dist.h"
#include "tally.h"

static double pct(const double *v, size_t n, double p)
{
    double out = -12345;

    assert_int_equal(dist_percentile(v, n, p, &out), 0);
    return out;
}

static void test_percentiles_of_1_to_100(void **state)
{
    double v[100];

    (void)state;
    /* Filled in reverse: dist_sort must put them in order first. */
    for (int i = 0; i < 100; i++)
        v[i] = 100 - i;
    dist_sort(v, 100);
    for (int i = 0; i < 100; i++)
        assert_true(v[i] == i + 1);
    assert_true(pct(v, 100, 50) == 50);
    assert_true(pct(v, 100, 99) == 99);
    assert_true(pct(v, 100, 90) == 90);
    assert_true(pct(v, 100, 100) == 100);
    assert_true(pct(v, 100, 0) == 1);
    assert_true(pct(v, 100, 1) == 1);
    assert_true(pct(v, 100, 99.5) == 100);
}

static void test_percentiles_of_small_arrays(void **state)
{
    const double one[] = { 7.25 };
    const double ten[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    const double two[] = { 3, 8 };

    (void)state;
    assert_true(pct(one, 1, 50) == 7.25);
    assert_true(pct(one, 1, 99) == 7.25);
    assert_true(pct(one, 1, 0) == 7.25);
    /* Nearest rank: ceil(0.5 * 10) = 5th, ceil(0.99 * 10) = 10th. */
    assert_true(pct(ten, 10, 50) == 5);
    assert_true(pct(ten, 10, 99) == 10);
    assert_true(pct(ten, 10, 51) == 6);
    assert_true(pct(two, 2, 50) == 3);
    assert_true(pct(two, 2, 50.1) == 8);
}

static void test_percentile_of_nothing_is_refused(void **state)
{
    double out = 42;

    (void)state;
    assert_int_equal(dist_percentile(NULL, 0, 50, &out), -1);
    assert_true(out == 42);
    dist_sort(NULL, 0);
}

static void test_imbalance_and_cv_on_known_counts(void **state)
{
    const uint64_t even[] = { 200, 200, 200 };
    const uint64_t skewed[] = { 300, 100, 200 };
    const uint64_t one_idle[] = { 300, 300, 0 };
    const uint64_t all_on_one[] = { 600, 0, 0 };
    const uint64_t zeros[] = { 0, 0, 0 };
    const uint64_t single[] = { 17 };

    (void)state;
    assert_float_equal(dist_mean(skewed, 3), 200, 1e-12);
    assert_float_equal(dist_imbalance(even, 3), 1.0, 1e-12);
    assert_float_equal(dist_cv(even, 3), 0.0, 1e-12);
    assert_float_equal(dist_imbalance(skewed, 3), 1.5, 1e-12);
    /* Population sd: sqrt((100^2 + 100^2 + 0) / 3) = 81.65; / 200. */
    assert_float_equal(dist_cv(skewed, 3), sqrt(20000.0 / 3) / 200, 1e-12);
    /* A server that got nothing counts: mean 200, max 300. */
    assert_float_equal(dist_imbalance(one_idle, 3), 1.5, 1e-12);
    assert_float_equal(dist_cv(one_idle, 3), sqrt(2) / 2, 1e-12);
    assert_float_equal(dist_imbalance(all_on_one, 3), 3.0, 1e-12);
    assert_float_equal(dist_cv(all_on_one, 3), sqrt(2), 1e-12);
    assert_float_equal(dist_imbalance(zeros, 3), 0, 0);
    assert_float_equal(dist_cv(zeros, 3), 0, 0);
    assert_float_equal(dist_imbalance(single, 1), 1.0, 1e-12);
    assert_float_equal(dist_cv(single, 1), 0, 1e-12);
    assert_float_equal(dist_imbalance(NULL, 0), 0, 0);
    assert_float_equal(dist_cv(NULL, 0), 0, 0);
    assert_float_equal(dist_mean(NULL, 0), 0, 0);
}

static void test_tally_learns_servers_and_pins_clients(void **state)
{
    struct tally *t = tally_new(3);

    (void)state;
    assert_non_null(t);
    assert_int_equal(tally_response(t, 0, "a", 200, 1.5, 0.1), 0);
    assert_int_equal(tally_response(t, 0, "a", 200, 0.5, 0.2), 0);
    assert_int_equal(tally_response(t, 1, "b", 200, 2.0, 1.7), 0);
    assert_int_equal(tally_response(t, 1, "a", 204, 3.0, 2.2), 0);
    assert_int_equal(t->nservers, 2);
    assert_string_equal(t->servers[0].name, "a");
    assert_int_equal(t->servers[0].requests, 3);
    assert_int_equal(t->servers[1].requests, 1);
    assert_int_equal(t->requests, 4);
    assert_int_equal(t->ok, 4);
    assert_int_equal(tally_errors(t), 0);

    /* Client 0 stayed on a; client 1 reached both. */
    assert_int_equal(t->clients[0].requests, 2);
    assert_int_equal(t->clients[0].npins, 1);
    assert_int_equal(t->clients[0].pins[0].server, 0);
    assert_int_equal(t->clients[0].pins[0].count, 2);
    assert_int_equal(t->clients[1].npins, 2);
    assert_int_equal(t->clients[2].requests, 0);

    /* Timeline: a answered twice in second 0 and once in second 2. */
    assert_true(t->servers[0].nsec >= 3);
    assert_int_equal(t->servers[0].per_sec[0], 2);
    assert_int_equal(t->servers[0].per_sec[1], 0);
    assert_int_equal(t->servers[0].per_sec[2], 1);
    assert_int_equal(t->servers[1].per_sec[1], 1);

    tally_sort(t);
    assert_int_equal(t->servers[0].nlat, 3);
    assert_true(t->servers[0].lat_ms[0] == 0.5);
    assert_true(t->servers[0].lat_ms[2] == 3.0);
    tally_free(t);
    tally_free(NULL);
}

static void test_tally_errors_by_kind_and_status(void **state)
{
    struct tally *t = tally_new(2);

    (void)state;
    assert_non_null(t);
    tally_failure(t, 0, TALLY_CONNECT_REFUSED);
    tally_failure(t, 0, TALLY_TIMEOUT);
    tally_failure(t, 1, TALLY_RESET);
    /* tcplb's own 503 names no server: an error, but no server's. */
    assert_int_equal(tally_response(t, 1, "", 503, 1, 0), 0);
    /* A named 500 is the server's error and still its answer. */
    assert_int_equal(tally_response(t, 1, "b", 500, 1, 0), 0);
    /* A 2xx without a name lands on the unnamed server. */
    assert_int_equal(tally_response(t, 0, NULL, 200, 1, 0), 0);
    /* tcp mode: status 0 is a success. */
    assert_int_equal(tally_response(t, 0, "echo", 0, 1, 0), 0);

    assert_int_equal(t->requests, 7);
    assert_int_equal(t->ok, 2);
    assert_int_equal(tally_errors(t), 5);
    assert_int_equal(t->failures[TALLY_CONNECT_REFUSED], 1);
    assert_int_equal(t->failures[TALLY_TIMEOUT], 1);
    assert_int_equal(t->failures[TALLY_RESET], 1);
    assert_int_equal(t->status[503], 1);
    assert_int_equal(t->status[500], 1);
    assert_int_equal(t->nservers, 3);
    assert_string_equal(t->servers[0].name, "b");
    assert_int_equal(t->servers[0].requests, 1);
    assert_int_equal(t->servers[0].errors, 1);
    assert_string_equal(t->servers[1].name, TALLY_UNNAMED);
    assert_string_equal(t->servers[2].name, "echo");
    assert_int_equal(t->clients[0].requests, 4);
    assert_int_equal(t->clients[0].errors, 2);
    assert_int_equal(t->clients[1].errors, 3);
    assert_string_equal(tally_err_str(TALLY_CONNECT_REFUSED), "connect_refused");
    assert_string_equal(tally_err_str(TALLY_BAD_RESPONSE), "bad_response");
    tally_free(t);
}

static void test_tally_bounds_the_server_table(void **state)
{
    struct tally *t = tally_new(1);
    char name[32];

    (void)state;
    assert_non_null(t);
    for (int i = 0; i < TALLY_SERVERS_MAX + 50; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(tally_response(t, 0, name, 200, 1, 0), 0);
    }
    assert_int_equal(t->nservers, TALLY_SERVERS_MAX);
    assert_string_equal(t->servers[TALLY_SERVERS_MAX - 1].name, TALLY_OTHER);
    assert_int_equal(t->servers[TALLY_SERVERS_MAX - 1].requests, 51);
    /* Names are clipped to TALLY_NAME_MAX, and clipped names still match. */
    char long_name[TALLY_NAME_MAX + 20];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct tally *u = tally_new(1);
    assert_non_null(u);
    assert_int_equal(tally_response(u, 0, long_name, 200, 1, 0), 0);
    assert_int_equal(tally_response(u, 0, long_name, 200, 1, 0), 0);
    assert_int_equal(u->nservers, 1);
    assert_int_equal(strlen(u->servers[0].name), TALLY_NAME_MAX);
    tally_free(u);
    tally_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_of_1_to_100),
        cmocka_unit_test(test_percentiles_of_small_arrays),
        cmocka_unit_test(test_percentile_of_nothing_is_refused),
        cmocka_unit_test(test_imbalance_and_cv_on_known_counts),
        cmocka_unit_test(test_tally_learns_servers_and_pins_clients),
        cmocka_unit_test(test_tally_errors_by_kind_and_status),
        cmocka_unit_test(test_tally_bounds_the_server_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
