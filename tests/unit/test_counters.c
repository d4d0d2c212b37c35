/* test_counters.c — counters.c and the counter helpers of util.h: per-worker
 * slots that start at zero, sum exactly, clear the monotonic counters but not
 * `active`, and sit on cache lines of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "counters.h"
#include "util.h"

#define NWORKERS 4

static void test_server_slots_start_at_zero(void **state)
{
    (void)state;
    struct server_counters *c = counters_server_new(NWORKERS);
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        assert_int_equal(c[w].total, 0);
        assert_int_equal(c[w].failed, 0);
        assert_int_equal(c[w].bytes_in, 0);
        assert_int_equal(c[w].bytes_out, 0);
    }
    struct server_totals t;
    memset(&t, 0xff, sizeof(t));   /* sum must overwrite, not add */
    counters_server_sum(c, NWORKERS, &t);
    assert_int_equal(t.total + t.failed + t.bytes_in + t.bytes_out, 0);
    counters_free(c);
}

static void test_server_sums_add_every_worker_slot(void **state)
{
    (void)state;
    struct server_counters *c = counters_server_new(NWORKERS);
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        counter_add(&c[w].total, w + 1);             /* 1+2+3+4 = 10 */
        counter_add(&c[w].failed, 10 * (w + 1));     /* 100 */
        counter_add(&c[w].bytes_in, 1000);           /* 4000 */
        counter_add(&c[w].bytes_out, (uint64_t)1 << (32 + w));
    }
    struct server_totals t;
    counters_server_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 10);
    assert_int_equal(t.failed, 100);
    assert_int_equal(t.bytes_in, 4000);
    assert_int_equal(t.bytes_out, (uint64_t)15 << 32);   /* no 32-bit truncation */
    counters_free(c);
}

static void test_server_slot_write_touches_only_its_worker(void **state)
{
    (void)state;
    struct server_counters *c = counters_server_new(NWORKERS);
    assert_non_null(c);
    counter_add(&c[2].total, 5);
    for (unsigned w = 0; w < NWORKERS; w++)
        assert_int_equal(counter_read(&c[w].total), w == 2 ? 5 : 0);
    struct server_totals t;
    counters_server_sum(c, 2, &t);   /* a sum over fewer workers stops there */
    assert_int_equal(t.total, 0);
    counters_server_sum(c, 3, &t);
    assert_int_equal(t.total, 5);
    counters_free(c);
}

static void test_server_clear_zeroes_every_counter(void **state)
{
    (void)state;
    struct server_counters *c = counters_server_new(NWORKERS);
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        counter_add(&c[w].total, 3);
        counter_add(&c[w].failed, 2);
        counter_add(&c[w].bytes_in, 100);
        counter_add(&c[w].bytes_out, 200);
    }
    counters_server_clear(c, NWORKERS);
    struct server_totals t;
    counters_server_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.failed, 0);
    assert_int_equal(t.bytes_in, 0);
    assert_int_equal(t.bytes_out, 0);
    counter_add(&c[1].total, 1);     /* counting goes on after a clear */
    counters_server_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 1);
    counters_free(c);
}

static void test_listener_sums_add_every_worker_slot(void **state)
{
    (void)state;
    struct listener_counters *c = counters_listener_new(NWORKERS);
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        counter_add(&c[w].total, 7);
        counter_add(&c[w].rejected, w);
        counter_add(&c[w].active, 2);
    }
    struct listener_totals t;
    counters_listener_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 28);
    assert_int_equal(t.rejected, 6);
    assert_int_equal(t.active, 8);
    counters_free(c);
}

static void test_listener_clear_keeps_active(void **state)
{
    (void)state;
    struct listener_counters *c = counters_listener_new(NWORKERS);
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        counter_add(&c[w].total, 9);
        counter_add(&c[w].rejected, 1);
        counter_add(&c[w].active, w + 1);
    }
    counters_listener_clear(c, NWORKERS);
    struct listener_totals t;
    counters_listener_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.rejected, 0);
    assert_int_equal(t.active, 10);   /* open connections are still open */
    counters_free(c);
}

static void test_counter_add_minus_one_decrements(void **state)
{
    (void)state;
    struct listener_counters *c = counters_listener_new(1);
    assert_non_null(c);
    counter_add(&c[0].active, 3);
    counter_add(&c[0].active, (uint64_t)-1);
    assert_int_equal(counter_read(&c[0].active), 2);
    counter_add(&c[0].active, (uint64_t)-1);
    counter_add(&c[0].active, (uint64_t)-1);
    assert_int_equal(counter_read(&c[0].active), 0);
    counter_add(&c[0].active, 1);
    counter_zero(&c[0].active);
    assert_int_equal(counter_read(&c[0].active), 0);
    counters_free(c);
}

static void test_slots_are_cache_line_aligned(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct server_counters) % CACHE_LINE, 0);
    assert_int_equal(sizeof(struct listener_counters) % CACHE_LINE, 0);
    static const unsigned counts[] = { 1, 3, 8, 64 };
    for (size_t i = 0; i < ARRAY_LEN(counts); i++) {
        struct server_counters *s = counters_server_new(counts[i]);
        struct listener_counters *l = counters_listener_new(counts[i]);
        assert_non_null(s);
        assert_non_null(l);
        for (unsigned w = 0; w < counts[i]; w++) {
            assert_int_equal((uintptr_t)&s[w] % CACHE_LINE, 0);
            assert_int_equal((uintptr_t)&l[w] % CACHE_LINE, 0);
        }
        /* every slot is zeroed, to the last worker */
        assert_int_equal(s[counts[i] - 1].bytes_out, 0);
        assert_int_equal(l[counts[i] - 1].active, 0);
        counters_free(s);
        counters_free(l);
    }
}

static void test_zero_workers_still_allocates_and_free_null_is_harmless(void **state)
{
    (void)state;
    struct server_counters *s = counters_server_new(0);
    assert_non_null(s);
    struct server_totals t;
    memset(&t, 0xff, sizeof(t));   /* sum must overwrite, not add */
    counters_server_sum(s, 0, &t);
    assert_int_equal(t.total, 0);
    counters_free(s);
    counters_free(NULL);
}

/* Every counter row of the lists is summed and cleared as its row says:
 * each gets a distinct value per worker, the sums must match row by row,
 * and a clear zeroes exactly the COUNTER_CLEARED rows. */
#define ROW_SET(field, json, csv, metric, label, type, clear, help) \
    counter_add(&slots[w].field, (uint64_t)(w + 1) * (++k));
#define ROW_CHECK_SUM(field, json, csv, metric, label, type, clear, help) \
    k++;                                                                 \
    assert_int_equal(t.field, (uint64_t)k * (NWORKERS * (NWORKERS + 1) / 2));
#define ROW_CHECK_CLEAR(field, json, csv, metric, label, type, clear, help) \
    k++;                                                                   \
    assert_int_equal(t.field, clear == COUNTER_KEPT                          \
                                  ? (uint64_t)k * (NWORKERS * (NWORKERS + 1) / 2) : 0);
#define ROW_NONE(...)

static void test_every_listed_server_counter_sums_and_clears_by_its_row(void **state)
{
    (void)state;
    struct server_counters *slots = counters_server_new(NWORKERS);
    assert_non_null(slots);
    unsigned k;
    for (unsigned w = 0; w < NWORKERS; w++) {
        k = 0;
        SERVER_FIELDS(ROW_SET, ROW_NONE)
    }
    struct server_totals t;
    counters_server_sum(slots, NWORKERS, &t);
    k = 0;
    SERVER_FIELDS(ROW_CHECK_SUM, ROW_NONE)
    counters_server_clear(slots, NWORKERS);
    counters_server_sum(slots, NWORKERS, &t);
    k = 0;
    SERVER_FIELDS(ROW_CHECK_CLEAR, ROW_NONE)
    counters_free(slots);
}

static void test_every_listed_listener_counter_sums_and_clears_by_its_row(void **state)
{
    (void)state;
    struct listener_counters *slots = counters_listener_new(NWORKERS);
    assert_non_null(slots);
    unsigned k;
    for (unsigned w = 0; w < NWORKERS; w++) {
        k = 0;
        LISTENER_FIELDS(ROW_SET, ROW_NONE)
    }
    struct listener_totals t;
    counters_listener_sum(slots, NWORKERS, &t);
    k = 0;
    LISTENER_FIELDS(ROW_CHECK_SUM, ROW_NONE)
    counters_listener_clear(slots, NWORKERS);
    counters_listener_sum(slots, NWORKERS, &t);
    k = 0;
    LISTENER_FIELDS(ROW_CHECK_CLEAR, ROW_NONE)
    counters_free(slots);
}

/* Each thread owns one slot, as a worker does; the reader's sum is exact. */
struct slot_writer {
    pthread_t thread;
    struct server_counters *slot;
    unsigned n;
};

static void *slot_writer_run(void *arg)
{
    struct slot_writer *sw = arg;
    for (unsigned i = 0; i < sw->n; i++) {
        counter_add(&sw->slot->total, 1);
        counter_add(&sw->slot->bytes_in, 3);
    }
    return NULL;
}

static void test_concurrent_workers_sum_exactly(void **state)
{
    (void)state;
    struct server_counters *c = counters_server_new(NWORKERS);
    struct slot_writer writers[NWORKERS];
    assert_non_null(c);
    for (unsigned w = 0; w < NWORKERS; w++) {
        writers[w] = (struct slot_writer){ .slot = &c[w], .n = 200000 };
        assert_int_equal(pthread_create(&writers[w].thread, NULL, slot_writer_run,
                                        &writers[w]), 0);
    }
    for (unsigned w = 0; w < NWORKERS; w++)
        assert_int_equal(pthread_join(writers[w].thread, NULL), 0);
    struct server_totals t;
    counters_server_sum(c, NWORKERS, &t);
    assert_int_equal(t.total, 200000 * NWORKERS);
    assert_int_equal(t.bytes_in, 600000 * NWORKERS);
    counters_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_slots_start_at_zero),
        cmocka_unit_test(test_server_sums_add_every_worker_slot),
        cmocka_unit_test(test_server_slot_write_touches_only_its_worker),
        cmocka_unit_test(test_server_clear_zeroes_every_counter),
        cmocka_unit_test(test_listener_sums_add_every_worker_slot),
        cmocka_unit_test(test_listener_clear_keeps_active),
        cmocka_unit_test(test_counter_add_minus_one_decrements),
        cmocka_unit_test(test_slots_are_cache_line_aligned),
        cmocka_unit_test(test_zero_workers_still_allocates_and_free_null_is_harmless),
        cmocka_unit_test(test_concurrent_workers_sum_exactly),
        cmocka_unit_test(test_every_listed_server_counter_sums_and_clears_by_its_row),
        cmocka_unit_test(test_every_listed_listener_counter_sums_and_clears_by_its_row),
    };
    return cmocka_run_group_tests_name("counters", tests, NULL, NULL) ? 1 : 0;
}
