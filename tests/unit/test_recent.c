/* test_recent.c — recent.c: quantiles of the merged response times within
 * 10 % of the true ones over several distributions, the mean, counts, the
 * window sliding past old slots (and a slot reused for a new epoch starting
 * from zero), merging several workers' windows, and clear. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "recent.h"
#include "util.h"

#define T0 1000000.0     /* any time after the epoch */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The true q-quantile as recent.c defines it: the ceil(q n)-th smallest. */
static double true_quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t k = (size_t)ceil(q * (double)n);
    return v[(k ? k : 1) - 1];
}

static void check_within(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= 0.10 * want))
        fail_msg("%s: %g, true %g (%.1f %% off)", what, got, want,
                 100 * fabs(got - want) / want);
}

static void test_quantiles_within_ten_percent(void **state)
{
    (void)state;
    static const struct { const char *name; double lo, hi; int shape; } dists[] = {
        { "uniform 1-100 ms", 0.001, 0.100, 0 },
        { "log-uniform 50 us - 5 s", 50e-6, 5.0, 1 },
        { "two modes 2 ms / 300 ms", 0.002, 0.300, 2 },
    };
    static struct recent r;
    static double v[20000];
    for (size_t d = 0; d < ARRAY_LEN(dists); d++) {
        memset(&r, 0, sizeof(r));
        uint64_t x = 88172645463325252ULL;
        for (size_t i = 0; i < ARRAY_LEN(v); i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            double u = (double)(x >> 11) / 9007199254740992.0;
            if (dists[d].shape == 0)
                v[i] = dists[d].lo + u * (dists[d].hi - dists[d].lo);
            else if (dists[d].shape == 1)
                v[i] = dists[d].lo * pow(dists[d].hi / dists[d].lo, u);
            else
                v[i] = (i % 10 == 0 ? dists[d].hi : dists[d].lo) * (0.9 + 0.2 * u);
            recent_rt(&r, T0 + (double)i / 1000, v[i]);   /* 20 s of samples */
        }
        struct recent_sum sum = { 0 };
        recent_merge(&r, T0 + 20, &sum);
        assert_int_equal(sum.rt_samples, ARRAY_LEN(v));
        double mean = 0;
        for (size_t i = 0; i < ARRAY_LEN(v); i++)
            mean += v[i];
        mean /= ARRAY_LEN(v);
        check_within(recent_rt_mean(&sum), mean, "mean");
        static const double qs[] = { 0.5, 0.9, 0.99 };
        for (size_t k = 0; k < ARRAY_LEN(qs); k++) {
            double want = true_quantile(v, ARRAY_LEN(v), qs[k]);
            check_within(recent_rt_quantile(&sum, qs[k]), want, dists[d].name);
        }
    }
}

static void test_empty_window_has_no_quantile(void **state)
{
    (void)state;
    static struct recent r;
    memset(&r, 0, sizeof(r));
    struct recent_sum sum = { 0 };
    recent_merge(&r, T0, &sum);
    assert_true(isnan(recent_rt_quantile(&sum, 0.5)));
    assert_true(isnan(recent_rt_mean(&sum)));
}

static void test_window_slides_and_slots_restart_at_zero(void **state)
{
    (void)state;
    static struct recent r;
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 5; i++)
        recent_count(&r, T0, RECENT_REQUESTS);
    recent_rt(&r, T0, 0.010);
    struct recent_sum sum = { 0 };
    recent_merge(&r, T0 + 50, &sum);
    assert_int_equal(sum.counts[RECENT_REQUESTS], 5);
    assert_int_equal(sum.rt_samples, 1);
    /* 70 s later the slot is out of the window */
    memset(&sum, 0, sizeof(sum));
    recent_merge(&r, T0 + 70, &sum);
    assert_int_equal(sum.counts[RECENT_REQUESTS], 0);
    assert_int_equal(sum.rt_samples, 0);
    /* the same slot, a new epoch: it starts from zero */
    recent_count(&r, T0 + 70, RECENT_REQUESTS);
    memset(&sum, 0, sizeof(sum));
    recent_merge(&r, T0 + 70, &sum);
    assert_int_equal(sum.counts[RECENT_REQUESTS], 1);
    /* every 10 s slot of one minute adds up */
    memset(&r, 0, sizeof(r));
    for (int s = 0; s < 60; s++)
        recent_count(&r, T0 + s, RECENT_CONNS);
    memset(&sum, 0, sizeof(sum));
    recent_merge(&r, T0 + 59, &sum);
    assert_int_equal(sum.counts[RECENT_CONNS], 60);
}

static void test_merge_adds_workers_and_clear_forgets(void **state)
{
    (void)state;
    static struct recent a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    recent_count(&a, T0, RECENT_5XX);
    recent_count(&b, T0 + 3, RECENT_5XX);
    recent_rt(&a, T0, 0.001);
    recent_rt(&b, T0, 0.100);
    struct recent_sum sum = { 0 };
    recent_merge(&a, T0 + 5, &sum);
    recent_merge(&b, T0 + 5, &sum);
    assert_int_equal(sum.counts[RECENT_5XX], 2);
    assert_int_equal(sum.rt_samples, 2);
    check_within(recent_rt_quantile(&sum, 1.0), 0.100, "max");
    check_within(recent_rt_quantile(&sum, 0.5), 0.001, "median");
    recent_clear(&a);
    memset(&sum, 0, sizeof(sum));
    recent_merge(&a, T0 + 5, &sum);
    assert_int_equal(sum.counts[RECENT_5XX], 0);
    assert_int_equal(sum.rt_samples, 0);
}

static void test_buckets_are_monotonic_and_bounded(void **state)
{
    (void)state;
    assert_int_equal(recent_rt_bucket(0), 0);
    assert_int_equal(recent_rt_bucket(-1), 0);
    assert_int_equal(recent_rt_bucket(NAN), 0);
    assert_int_equal(recent_rt_bucket(1e9), RECENT_RT_BUCKETS - 1);
    unsigned last = 0;
    for (double s = 1e-6; s < 1000; s *= 1.01) {
        unsigned b = recent_rt_bucket(s);
        assert_true(b >= last);
        last = b;
        if (s > 2 * RECENT_RT_MIN && s < 100)
            check_within(recent_rt_bucket_value(b), s, "bucket value");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantiles_within_ten_percent),
        cmocka_unit_test(test_empty_window_has_no_quantile),
        cmocka_unit_test(test_window_slides_and_slots_restart_at_zero),
        cmocka_unit_test(test_merge_adds_workers_and_clear_forgets),
        cmocka_unit_test(test_buckets_are_monotonic_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
