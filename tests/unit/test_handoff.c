/* test_handoff.c — handoff.c's choice: a worker keeps a connection unless
 * another one holds more than HANDOFF_SLACK fewer, then the least loaded
 * takes it; stopping workers take nothing; one worker alone keeps all, and
 * so does every worker with accept_balance = off. The
 * workers are zeroed structs with only their loads set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "handoff.h"
#include "worker.h"

static struct worker ws[4];
static struct config cfg = { .global = { .accept_balance = 1 } };

static void set_loads(unsigned n, const int64_t *loads)
{
    memset(ws, 0, sizeof(ws));
    for (unsigned i = 0; i < n; i++) {
        ws[i].id = i;
        ws[i].load = loads[i];
        ws[i].peers = ws;
        ws[i].npeers = n;
        ws[i].config = &cfg;
    }
    cfg.global.accept_balance = 1;
}

static void test_keeps_within_the_slack(void **state)
{
    (void)state;
    const int64_t even[] = { 10, 10 };
    set_loads(2, even);
    assert_null(handoff_target(&ws[0]));
    const int64_t slack[] = { 10 + HANDOFF_SLACK, 10 };
    set_loads(2, slack);
    assert_null(handoff_target(&ws[0]));
    const int64_t over[] = { 11 + HANDOFF_SLACK, 10 };
    set_loads(2, over);
    assert_ptr_equal(handoff_target(&ws[0]), &ws[1]);
    /* never to a busier one */
    assert_null(handoff_target(&ws[1]));
}

static void test_the_least_loaded_takes_it(void **state)
{
    (void)state;
    const int64_t loads[] = { 20, 9, 3, 7 };
    set_loads(4, loads);
    assert_ptr_equal(handoff_target(&ws[0]), &ws[2]);
    assert_ptr_equal(handoff_target(&ws[1]), &ws[2]);
    assert_null(handoff_target(&ws[2]));
    assert_ptr_equal(handoff_target(&ws[3]), &ws[2]);   /* 7 - 3 = 4, over the slack */
}

static void test_stopping_workers_take_nothing(void **state)
{
    (void)state;
    const int64_t loads[] = { 20, 0, 5 };
    set_loads(3, loads);
    ws[1].stop_requested = 1;
    assert_ptr_equal(handoff_target(&ws[0]), &ws[2]);
    ws[2].stop_requested = 1;
    assert_null(handoff_target(&ws[0]));
}

static void test_one_worker_keeps_everything(void **state)
{
    (void)state;
    const int64_t loads[] = { 1000 };
    set_loads(1, loads);
    assert_null(handoff_target(&ws[0]));
    ws[0].peers = NULL;                  /* not wired up (a unit test, a failed start) */
    assert_null(handoff_target(&ws[0]));
}

static void test_accept_balance_off_keeps_everything(void **state)
{
    (void)state;
    const int64_t loads[] = { 50, 0 };
    set_loads(2, loads);
    assert_ptr_equal(handoff_target(&ws[0]), &ws[1]);
    cfg.global.accept_balance = 0;
    assert_null(handoff_target(&ws[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_within_the_slack),
        cmocka_unit_test(test_the_least_loaded_takes_it),
        cmocka_unit_test(test_stopping_workers_take_nothing),
        cmocka_unit_test(test_one_worker_keeps_everything),
        cmocka_unit_test(test_accept_balance_off_keeps_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
