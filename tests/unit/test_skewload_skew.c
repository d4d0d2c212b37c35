/* test_skewload_skew.c — tools/skewload skew.c and rng.c: --skew parsing,
 * the exact probability table (Zipf 1/k^s normalised, s = 0 uniform, hot K),
 * the binary-search sampler at its edges, and 200,000 seeded draws whose
 * counts must match the probabilities within statistical bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"
#include "skew.h"

#define DRAWS 200000
#define SEED 20240611

static struct skew *make(enum skew_kind kind, double param, size_t n)
{
    struct skew_spec spec = { .kind = kind, .param = param };
    struct skew *s = skew_new(&spec, n);
    assert_non_null(s);
    return s;
}

/* DRAWS seeded picks, counted per client; the caller frees. */
static uint64_t *draw(const struct skew *s)
{
    struct rng r;
    uint64_t *counts = calloc(s->n, sizeof *counts);

    assert_non_null(counts);
    rng_seed(&r, SEED);
    for (int i = 0; i < DRAWS; i++) {
        size_t c = skew_pick(s, rng_unit(&r));
        assert_true(c < s->n);
        counts[c]++;
    }
    return counts;
}

/* Every count within 5 standard deviations of DRAWS * p (a false alarm
 * about once in 1.7 million per client), and Pearson's chi-square below
 * dof + 6 sqrt(2 dof), far in the tail for a correct sampler. */
static void assert_matches(const struct skew *s, const uint64_t *counts)
{
    double chi2 = 0;

    for (size_t i = 0; i < s->n; i++) {
        double p = skew_prob(s, i), want = DRAWS * p;
        double sigma = sqrt(DRAWS * p * (1 - p));
        double diff = fabs((double)counts[i] - want);
        if (diff > 5 * sigma + 1)
            fail_msg("client %zu: %llu draws, expected %.1f +- %.1f", i,
                     (unsigned long long)counts[i], want, 5 * sigma);
        chi2 += (counts[i] - want) * (counts[i] - want) / want;
    }
    double dof = (double)s->n - 1;
    if (chi2 > dof + 6 * sqrt(2 * dof))
        fail_msg("chi-square %.1f for %.0f degrees of freedom", chi2, dof);
}

static void test_parse_accepts_the_three_forms(void **state)
{
    struct skew_spec spec;
    char err[128], text[64];

    (void)state;
    assert_int_equal(skew_parse("uniform", &spec, err, sizeof err), 0);
    assert_int_equal(spec.kind, SKEW_UNIFORM);
    assert_int_equal(skew_parse("zipf:1.1", &spec, err, sizeof err), 0);
    assert_int_equal(spec.kind, SKEW_ZIPF);
    assert_true(spec.param == 1.1);
    skew_format(&spec, text, sizeof text);
    assert_string_equal(text, "zipf:1.1");
    assert_int_equal(skew_parse("zipf:0", &spec, err, sizeof err), 0);
    assert_int_equal(skew_parse("hot:10", &spec, err, sizeof err), 0);
    assert_int_equal(spec.kind, SKEW_HOT);
    assert_true(spec.param == 10);
    skew_format(&spec, text, sizeof text);
    assert_string_equal(text, "hot:10");
}

static void test_parse_refuses_bad_specs(void **state)
{
    static const char *const bad[] = {
        "", "zipf", "zipf:", "zipf:-1", "zipf:21", "zipf:1x", "zipf:nan",
        "hot:", "hot:0", "hot:-3", "hot:abc", "Uniform", "normal", "hot:1e7",
    };
    struct skew_spec spec;
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (skew_parse(bad[i], &spec, err, sizeof err) != -1)
            fail_msg("accepted --skew '%s'", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_zipf_table_is_exact(void **state)
{
    const double exps[] = { 0.5, 1.0, 1.1, 2.0 };
    const size_t n = 50;

    (void)state;
    for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++) {
        struct skew *s = make(SKEW_ZIPF, exps[e], n);
        double h = 0, sum = 0;
        for (size_t k = 1; k <= n; k++)
            h += 1 / pow((double)k, exps[e]);
        for (size_t i = 0; i < n; i++) {
            assert_float_equal(skew_prob(s, i), 1 / pow((double)(i + 1), exps[e]) / h, 1e-12);
            sum += skew_prob(s, i);
        }
        assert_float_equal(sum, 1.0, 1e-12);
        assert_true(s->cdf[n - 1] == 1.0);
        skew_free(s);
    }
}

static void test_zipf_draws_follow_one_over_k_to_the_s(void **state)
{
    (void)state;
    struct skew *s = make(SKEW_ZIPF, 1.1, 50);
    uint64_t *counts = draw(s);

    assert_matches(s, counts);
    /* Rank order holds at the top, where counts are far apart. */
    assert_true(counts[0] > counts[1] && counts[1] > counts[2]);
    free(counts);
    skew_free(s);
}

static void test_zipf_s0_is_uniform(void **state)
{
    (void)state;
    struct skew *z = make(SKEW_ZIPF, 0, 40);
    struct skew *u = make(SKEW_UNIFORM, 0, 40);

    for (size_t i = 0; i < 40; i++) {
        assert_float_equal(skew_prob(z, i), 1.0 / 40, 1e-12);
        assert_float_equal(skew_prob(u, i), 1.0 / 40, 1e-12);
    }
    uint64_t *zc = draw(z), *uc = draw(u);
    assert_matches(z, zc);
    assert_matches(u, uc);
    /* Same table, same seed: the very same draws. */
    assert_memory_equal(zc, uc, 40 * sizeof *zc);
    free(zc);
    free(uc);
    skew_free(z);
    skew_free(u);
}

static void test_hot_client_gets_k_over_k_plus_n_minus_1(void **state)
{
    const struct { double k; size_t n; } cases[] = {
        { 10, 20 }, { 10, 30 }, { 2, 5 }, { 100, 253 }, { 1, 10 },
    };

    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct skew *s = make(SKEW_HOT, cases[c].k, cases[c].n);
        double want = cases[c].k / (cases[c].k + (double)cases[c].n - 1);
        assert_float_equal(skew_prob(s, 0), want, 1e-12);
        for (size_t i = 1; i < s->n; i++)
            assert_float_equal(skew_prob(s, i), 1 / (cases[c].k + (double)cases[c].n - 1),
                               1e-12);
        uint64_t *counts = draw(s);
        double share = (double)counts[0] / DRAWS;
        if (fabs(share - want) > 0.01)
            fail_msg("hot:%g over %zu clients: share %.4f, expected %.4f +- 0.01",
                     cases[c].k, cases[c].n, share, want);
        assert_matches(s, counts);
        free(counts);
        skew_free(s);
    }
}

static void test_pick_edges(void **state)
{
    (void)state;
    struct skew *s = make(SKEW_UNIFORM, 0, 4);

    assert_int_equal(skew_pick(s, 0.0), 0);
    assert_int_equal(skew_pick(s, 0.2499), 0);
    assert_int_equal(skew_pick(s, 0.25), 1);
    assert_int_equal(skew_pick(s, 0.5), 2);
    assert_int_equal(skew_pick(s, 0.75), 3);
    assert_int_equal(skew_pick(s, nextafter(1.0, 0.0)), 3);
    skew_free(s);

    struct skew *one = make(SKEW_ZIPF, 1.0, 1);
    assert_int_equal(skew_pick(one, 0.0), 0);
    assert_int_equal(skew_pick(one, 0.999999), 0);
    assert_float_equal(skew_prob(one, 0), 1.0, 0);
    assert_float_equal(skew_prob(one, 1), 0.0, 0);
    skew_free(one);

    struct skew_spec spec = { .kind = SKEW_UNIFORM };
    assert_null(skew_new(&spec, 0));
    skew_free(NULL);
}

static void test_rng_is_seeded_and_in_range(void **state)
{
    struct rng a, b, c;

    (void)state;
    rng_seed(&a, 7);
    rng_seed(&b, 7);
    rng_seed(&c, 8);
    int differs = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a), y = rng_next(&b), z = rng_next(&c);
        assert_true(x == y);
        differs |= x != z;
    }
    assert_true(differs);
    for (int i = 0; i < 100000; i++) {
        double u = rng_unit(&a);
        assert_true(u >= 0 && u < 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_the_three_forms),
        cmocka_unit_test(test_parse_refuses_bad_specs),
        cmocka_unit_test(test_zipf_table_is_exact),
        cmocka_unit_test(test_zipf_draws_follow_one_over_k_to_the_s),
        cmocka_unit_test(test_zipf_s0_is_uniform),
        cmocka_unit_test(test_hot_client_gets_k_over_k_plus_n_minus_1),
        cmocka_unit_test(test_pick_edges),
        cmocka_unit_test(test_rng_is_seeded_and_in_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
