/* test_pool.c — pool.c: the FIFO queue of connections waiting under maxconn
 * (push, push at head, remove, take by owner worker, length, head owner),
 * pool_has_room, server state and weight changes as the scheduler sees them,
 * lookups and names, backup servers (in rotation only while no other
 * server is available). The workers are two zeroed structs: the queue only
 * compares their addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "config.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"
#include "worker.h"

static struct worker w1, w2;

static struct config *pool_config(const char *servers)
{
    char text[2048], err[CONFIG_ERR_LEN];
    snprintf(text, sizeof(text),
             "[global]\nworkers = 2\n"
             "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
             "[pool p]\nscheduler = roundrobin\n%s", servers);
    struct config *c = config_load_string("pool.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    return c;
}

static struct config *queue_config(void)
{
    return pool_config("server = a 127.0.0.1:19001 maxconn=1\n"
                       "server = b 127.0.0.1:19002 maxconn=1\n");
}

/* Takes everything <w> may take, in order, into out; returns how many. */
static size_t take_all(struct pool *p, struct worker *w,
                       struct pool_queue_node **out, size_t max)
{
    size_t n = 0;
    struct worker *owner = NULL;
    struct pool_queue_node *node;
    while (n < max && (node = pool_queue_take(p, w, &owner)) != NULL)
        out[n++] = node;
    return n;
}

/* ---- the queue -------------------------------------------------------------------- */

static void test_queue_starts_empty(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    assert_true(p->has_maxconn);
    assert_int_equal(pool_queue_len(p), 0);
    assert_null(pool_queue_head_owner(p));
    struct worker *owner = &w2;
    assert_null(pool_queue_take(p, &w1, &owner));
    assert_null(owner);
    config_unref(c);
}

static void test_push_order_is_take_order(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    struct pool_queue_node n[5];
    memset(n, 0, sizeof(n));
    for (size_t i = 0; i < 5; i++) {
        n[i].worker = &w1;
        pool_queue_push(p, &n[i], 0);
        assert_int_equal(n[i].queued, 1);
        assert_int_equal(pool_queue_len(p), i + 1);
    }
    struct pool_queue_node *got[8];
    assert_int_equal(take_all(p, &w1, got, 8), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_ptr_equal(got[i], &n[i]);
        assert_int_equal(n[i].queued, 0);
    }
    assert_int_equal(pool_queue_len(p), 0);
    config_unref(c);
}

static void test_push_at_head_goes_first(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    struct pool_queue_node a = { .worker = &w1 }, b = { .worker = &w1 },
                           back = { .worker = &w1 }, d = { .worker = &w1 };
    pool_queue_push(p, &a, 0);
    pool_queue_push(p, &b, 0);
    pool_queue_push(p, &back, 1);     /* lost a race for a slot: back in front */
    pool_queue_push(p, &d, 0);
    struct pool_queue_node *got[8];
    assert_int_equal(take_all(p, &w1, got, 8), 4);
    assert_ptr_equal(got[0], &back);
    assert_ptr_equal(got[1], &a);
    assert_ptr_equal(got[2], &b);
    assert_ptr_equal(got[3], &d);

    /* at head on an empty queue is simply the only node */
    pool_queue_push(p, &a, 1);
    pool_queue_push(p, &b, 0);
    assert_int_equal(take_all(p, &w1, got, 8), 2);
    assert_ptr_equal(got[0], &a);
    assert_ptr_equal(got[1], &b);
    config_unref(c);
}

static void test_remove_head_middle_tail(void **state)
{
    (void)state;
    /* remove one position of five; the rest keep their order */
    for (size_t gone = 0; gone < 5; gone++) {
        struct config *c = queue_config();
        struct pool *p = &c->pools[0];
        struct pool_queue_node n[5];
        memset(n, 0, sizeof(n));
        for (size_t i = 0; i < 5; i++) {
            n[i].worker = &w1;
            pool_queue_push(p, &n[i], 0);
        }
        assert_int_equal(pool_queue_remove(p, &n[gone]), 1);
        assert_int_equal(n[gone].queued, 0);
        assert_int_equal(pool_queue_len(p), 4);
        /* a second remove is harmless and says it was not queued */
        assert_int_equal(pool_queue_remove(p, &n[gone]), 0);
        assert_int_equal(pool_queue_len(p), 4);
        struct pool_queue_node *got[8];
        assert_int_equal(take_all(p, &w1, got, 8), 4);
        for (size_t i = 0, j = 0; i < 5; i++)
            if (i != gone)
                assert_ptr_equal(got[j++], &n[i]);
        config_unref(c);
    }
}

static void test_remove_of_a_never_queued_node_returns_zero(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    struct pool_queue_node queued = { .worker = &w1 }, loose = { .worker = &w1 };
    pool_queue_push(p, &queued, 0);
    assert_int_equal(pool_queue_remove(p, &loose), 0);
    assert_int_equal(pool_queue_len(p), 1);
    assert_int_equal(pool_queue_remove(p, &queued), 1);
    assert_int_equal(pool_queue_len(p), 0);
    assert_null(pool_queue_head_owner(p));
    /* removing the only node leaves a usable empty queue */
    pool_queue_push(p, &loose, 0);
    assert_int_equal(pool_queue_len(p), 1);
    assert_int_equal(pool_queue_remove(p, &loose), 1);
    config_unref(c);
}

/* Only the worker that owns the head may take it; the others learn whom to
 * wake. First come, first served across workers. */
static void test_take_only_the_head_of_the_given_worker(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    struct pool_queue_node x = { .worker = &w2 }, y = { .worker = &w1 },
                           z = { .worker = &w1 };
    pool_queue_push(p, &x, 0);
    pool_queue_push(p, &y, 0);
    pool_queue_push(p, &z, 0);
    assert_ptr_equal(pool_queue_head_owner(p), &w2);

    struct worker *owner = NULL;
    assert_null(pool_queue_take(p, &w1, &owner));
    assert_ptr_equal(owner, &w2);
    assert_int_equal(pool_queue_len(p), 3);      /* nothing taken */
    assert_int_equal(y.queued, 1);

    /* w2 takes its head; the owner of the new head is reported */
    assert_ptr_equal(pool_queue_take(p, &w2, &owner), &x);
    assert_ptr_equal(owner, &w1);
    assert_null(pool_queue_take(p, &w2, &owner));
    assert_ptr_equal(owner, &w1);

    assert_ptr_equal(pool_queue_take(p, &w1, &owner), &y);
    assert_ptr_equal(owner, &w1);
    assert_ptr_equal(pool_queue_take(p, &w1, &owner), &z);
    assert_null(owner);
    assert_null(pool_queue_take(p, &w1, &owner));
    assert_null(owner);
    assert_int_equal(pool_queue_len(p), 0);
    config_unref(c);
}

static void test_taken_node_can_be_queued_again(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    struct pool_queue_node a = { .worker = &w1 }, b = { .worker = &w1 };
    struct worker *owner;
    pool_queue_push(p, &a, 0);
    pool_queue_push(p, &b, 0);
    assert_ptr_equal(pool_queue_take(p, &w1, &owner), &a);
    pool_queue_push(p, &a, 1);
    assert_int_equal(pool_queue_len(p), 2);
    assert_ptr_equal(pool_queue_take(p, &w1, &owner), &a);
    assert_ptr_equal(pool_queue_take(p, &w1, &owner), &b);
    config_unref(c);
}

struct queue_thread_arg {
    struct pool *pool;
    struct worker *worker;
};

/* Pushes and removes its own nodes many times. */
static void *queue_thread(void *arg)
{
    struct queue_thread_arg *a = arg;
    struct pool_queue_node n[16];
    memset(n, 0, sizeof(n));
    for (int round = 0; round < 2000; round++) {
        for (int i = 0; i < 16; i++) {
            n[i].worker = a->worker;
            pool_queue_push(a->pool, &n[i], i % 3 == 0);
        }
        for (int i = 15; i >= 0; i--)
            if (pool_queue_remove(a->pool, &n[i]) != 1)
                return (void *)1;
    }
    return NULL;
}

static void test_queue_under_concurrent_workers(void **state)
{
    (void)state;
    struct config *c = queue_config();
    struct pool *p = &c->pools[0];
    pthread_t th[4];
    struct queue_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct queue_thread_arg){ p, i % 2 ? &w1 : &w2 };
        assert_int_equal(pthread_create(&th[i], NULL, queue_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(pool_queue_len(p), 0);
    assert_null(pool_queue_head_owner(p));
    config_unref(c);
}

/* ---- room ----------------------------------------------------------------------------- */

static void test_has_room_follows_maxconn(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001 maxconn=2\n"
                                   "server = b 127.0.0.1:19002 maxconn=1\n");
    struct pool *p = &c->pools[0];
    struct server *a = &p->servers[0], *b = &p->servers[1];
    assert_true(pool_has_room(p));
    server_active_add(a, 2);
    assert_true(pool_has_room(p));          /* b has its one slot */
    server_active_add(b, 1);
    assert_false(pool_has_room(p));
    server_active_add(a, -1);
    assert_true(pool_has_room(p));
    /* room on a server that may not take connections is no room */
    pool_set_server_state(a, SERVER_DRAIN);
    assert_false(pool_has_room(p));
    pool_set_server_state(a, SERVER_UP);
    assert_int_equal(pool_set_server_weight(a, 0), 0);
    assert_false(pool_has_room(p));
    assert_int_equal(pool_set_server_weight(a, 1), 0);
    assert_true(pool_has_room(p));
    config_unref(c);
}

static void test_no_maxconn_always_has_room(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001\n"
                                   "server = b 127.0.0.1:19002 maxconn=0\n");
    struct pool *p = &c->pools[0];
    assert_false(p->has_maxconn);
    server_active_add(&p->servers[0], 100000);
    server_active_add(&p->servers[1], 100000);
    assert_true(pool_has_room(p));
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    pool_set_server_state(&p->servers[1], SERVER_MAINT);
    assert_false(pool_has_room(p));
    config_unref(c);
}

/* ---- state and weight ------------------------------------------------------------- */

static void test_set_state_is_seen_by_the_scheduler(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001\n"
                                   "server = b 127.0.0.1:19002\n");
    struct pool *p = &c->pools[0];
    struct server *a = &p->servers[0];
    struct sched_request req = { 0 };
    assert_int_equal(server_state(a), SERVER_UP);
    assert_true(server_available(a));
    static const enum server_state states[] = { SERVER_DOWN, SERVER_DRAIN, SERVER_MAINT };
    for (size_t i = 0; i < ARRAY_LEN(states); i++) {
        pool_set_server_state(a, states[i]);
        pool_set_server_state(a, states[i]);     /* a repeat is harmless */
        assert_int_equal(server_state(a), states[i]);
        assert_false(server_available(a));
        for (int k = 0; k < 4; k++)
            assert_ptr_equal(sched_pick(p, &req), &p->servers[1]);
        pool_set_server_state(a, SERVER_UP);
        assert_true(server_available(a));
        unsigned seen = 0;
        for (int k = 0; k < 4; k++)
            seen |= 1u << sched_pick(p, &req)->index;
        assert_int_equal(seen, 3);
    }
    config_unref(c);
}

static void test_set_weight_range_and_effect(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001 weight=3\n"
                                   "server = b 127.0.0.1:19002\n");
    struct pool *p = &c->pools[0];
    struct server *a = &p->servers[0];
    assert_int_equal(server_weight(a), 3);
    assert_int_equal(pool_set_server_weight(a, SERVER_WEIGHT_MAX + 1), -1);
    assert_int_equal(pool_set_server_weight(a, 100000), -1);
    assert_int_equal(server_weight(a), 3);         /* refused: unchanged */
    assert_int_equal(pool_set_server_weight(a, SERVER_WEIGHT_MAX), 0);
    assert_int_equal(server_weight(a), SERVER_WEIGHT_MAX);
    assert_int_equal(a->weight, 3);                /* the config's value stays */

    /* round robin now splits 256:1 */
    struct sched_request req = { 0 };
    unsigned counts[2] = { 0 };
    for (int i = 0; i < 257 * 2; i++)
        counts[sched_pick(p, &req)->index]++;
    assert_int_equal(counts[0], 512);
    assert_int_equal(counts[1], 2);

    /* weight 0: no new connections, but still up */
    assert_int_equal(pool_set_server_weight(a, 0), 0);
    assert_int_equal(pool_set_server_weight(a, 0), 0);
    assert_int_equal(server_state(a), SERVER_UP);
    assert_false(server_available(a));
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(sched_pick(p, &req), &p->servers[1]);
    config_unref(c);
}

/* ---- names and lookups --------------------------------------------------------------- */

static void test_server_state_str(void **state)
{
    (void)state;
    assert_string_equal(server_state_str(SERVER_UP), "up");
    assert_string_equal(server_state_str(SERVER_DOWN), "down");
    assert_string_equal(server_state_str(SERVER_DRAIN), "drain");
    assert_string_equal(server_state_str(SERVER_MAINT), "maint");
    assert_string_equal(server_state_str((enum server_state)42), "?");
}

static void test_find_server_and_back_pointers(void **state)
{
    (void)state;
    struct config *c = pool_config("server = web-1 127.0.0.1:19001\n"
                                   "server = web-2 127.0.0.1:19002 maxconn=7\n");
    struct pool *p = &c->pools[0];
    struct server *s = pool_find_server(p, "web-2");
    assert_ptr_equal(s, &p->servers[1]);
    assert_int_equal(s->index, 1);
    assert_ptr_equal(s->pool, p);
    assert_int_equal(s->maxconn, 7);
    assert_non_null(s->counters);
    assert_null(pool_find_server(p, "web-3"));
    assert_null(pool_find_server(p, "web"));
    assert_null(pool_find_server(p, ""));
    config_unref(c);
}

static void test_release_of_a_zeroed_pool_is_harmless(void **state)
{
    (void)state;
    struct pool p;
    memset(&p, 0, sizeof(p));
    pool_release(&p);
    pool_release(&p);
}

/* The weight in force: the operator's weight x the agent's percentage x
 * the slow start's ramp, in 1/16ths, never 0 while both are above 0; round
 * robin follows it. */
static void test_weight_in_force_combines_agent_and_ramp(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001 weight=2\n"
                                   "server = b 127.0.0.1:19002 weight=2\n");
    struct pool *p = &c->pools[0];
    struct server *a = &p->servers[0];
    assert_int_equal(server_eweight(a), 2 * SERVER_WEIGHT_SCALE);
    pool_set_server_factors(a, 50, 1000);
    assert_int_equal(server_eweight(a), SERVER_WEIGHT_SCALE);
    assert_int_equal(server_weight(a), 2);                 /* the operator's stays */
    pool_set_server_factors(a, 50, 500);
    assert_int_equal(server_eweight(a), SERVER_WEIGHT_SCALE / 2);
    pool_set_server_factors(a, 100, 1);                    /* tiny, yet above 0 */
    assert_int_equal(server_eweight(a), 1);
    assert_true(server_available(a));
    pool_set_server_factors(a, 0, 1000);                   /* the agent's 0 % */
    assert_int_equal(server_eweight(a), 0);
    assert_false(server_available(a));
    /* a at 1/4 of b: round robin gives it one in five */
    pool_set_server_factors(a, 25, 1000);
    unsigned got = 0;
    for (int i = 0; i < 100; i++) {
        struct sched_request req = { .now = 1 };
        got += sched_pick(p, &req) == a;
    }
    assert_int_equal(got, 20);
    /* set weight keeps the factors */
    assert_int_equal(pool_set_server_weight(a, 4), 0);
    assert_int_equal(server_eweight(a), SERVER_WEIGHT_SCALE);
    config_unref(c);
}


/* ---- backup servers ------------------------------------------------------------- */

/* Which servers <n> round-robin picks reach, as a bit set by index. */
static unsigned picked_set(struct pool *p, int n)
{
    unsigned set = 0;
    for (int i = 0; i < n; i++) {
        struct sched_request req = { 0 };
        struct server *s = sched_pick(p, &req);
        if (s != NULL)
            set |= 1u << s->index;
    }
    return set;
}

static void test_backups_take_over_only_when_no_primary_is_available(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001\n"
                                   "server = b 127.0.0.1:19002\n"
                                   "server = c 127.0.0.1:19003 backup\n"
                                   "server = d 127.0.0.1:19004 backup\n");
    struct pool *p = &c->pools[0];
    struct server *a = &p->servers[0], *b = &p->servers[1];
    struct server *cc = &p->servers[2], *d = &p->servers[3];
    assert_true(cc->backup && d->backup && !a->backup);
    assert_int_equal(p->using_backups, 0);
    assert_false(server_available(cc));
    assert_int_equal(pool_live_weight(p, 2), 0);
    assert_int_equal(picked_set(p, 40), 0x3);           /* a and b only */

    pool_set_server_state(a, SERVER_DOWN);
    assert_int_equal(p->using_backups, 0);
    assert_int_equal(picked_set(p, 40), 0x2);           /* b alone */

    /* the last primary goes: both backups, shared */
    pool_set_server_state(b, SERVER_MAINT);
    assert_int_equal(p->using_backups, 1);
    assert_true(server_available(cc) && server_available(d));
    assert_int_not_equal(pool_live_weight(p, 2), 0);
    assert_int_equal(picked_set(p, 40), 0xc);
    assert_true(pool_has_room(p));

    /* a dead backup is not used; a live one is */
    pool_set_server_state(d, SERVER_DOWN);
    assert_int_equal(picked_set(p, 40), 0x4);

    /* one primary back: the backups leave rotation at once */
    pool_set_server_state(a, SERVER_UP);
    assert_int_equal(p->using_backups, 0);
    assert_false(server_available(cc));
    assert_int_equal(pool_live_weight(p, 2), 0);
    assert_int_equal(picked_set(p, 40), 0x1);

    /* a weight of 0 makes a primary unavailable too */
    assert_int_equal(pool_set_server_weight(a, 0), 0);
    assert_int_equal(p->using_backups, 1);
    assert_int_equal(picked_set(p, 40), 0x4);
    assert_int_equal(pool_set_server_weight(a, 1), 0);
    assert_int_equal(p->using_backups, 0);

    /* an agent's 0% (weight in force 0) counts as well */
    pool_set_server_factors(a, 0, 1000);
    assert_int_equal(p->using_backups, 1);
    pool_set_server_factors(a, 100, 1000);
    assert_int_equal(p->using_backups, 0);

    /* draining the last primary brings the backups in */
    pool_set_server_state(a, SERVER_DRAIN);
    assert_int_equal(p->using_backups, 1);
    config_unref(c);
}

static void test_a_pool_of_backups_only_uses_them(void **state)
{
    (void)state;
    struct config *c = pool_config("server = c 127.0.0.1:19003 backup\n");
    struct pool *p = &c->pools[0];
    assert_int_equal(p->using_backups, 1);
    assert_true(server_available(&p->servers[0]));
    assert_int_equal(picked_set(p, 5), 0x1);
    config_unref(c);
}

static void test_without_backups_nothing_changes(void **state)
{
    (void)state;
    struct config *c = pool_config("server = a 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    pool_set_server_state(&p->servers[0], SERVER_DOWN);
    assert_int_equal(p->using_backups, 0);
    assert_int_equal(picked_set(p, 5), 0);
    config_unref(c);
}

static void test_backup_is_part_of_the_mapping(void **state)
{
    (void)state;
    struct config *c1 = pool_config("server = a 127.0.0.1:19001\n"
                                    "server = b 127.0.0.1:19002\n");
    struct config *c2 = pool_config("server = a 127.0.0.1:19001\n"
                                    "server = b 127.0.0.1:19002 backup\n");
    assert_true(pool_mapping(&c1->pools[0]) != pool_mapping(&c2->pools[0]));
    config_unref(c1);
    config_unref(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_starts_empty),
        cmocka_unit_test(test_push_order_is_take_order),
        cmocka_unit_test(test_push_at_head_goes_first),
        cmocka_unit_test(test_remove_head_middle_tail),
        cmocka_unit_test(test_remove_of_a_never_queued_node_returns_zero),
        cmocka_unit_test(test_take_only_the_head_of_the_given_worker),
        cmocka_unit_test(test_taken_node_can_be_queued_again),
        cmocka_unit_test(test_queue_under_concurrent_workers),
        cmocka_unit_test(test_has_room_follows_maxconn),
        cmocka_unit_test(test_no_maxconn_always_has_room),
        cmocka_unit_test(test_set_state_is_seen_by_the_scheduler),
        cmocka_unit_test(test_set_weight_range_and_effect),
        cmocka_unit_test(test_server_state_str),
        cmocka_unit_test(test_find_server_and_back_pointers),
        cmocka_unit_test(test_release_of_a_zeroed_pool_is_harmless),
        cmocka_unit_test(test_weight_in_force_combines_agent_and_ramp),
        cmocka_unit_test(test_backups_take_over_only_when_no_primary_is_available),
        cmocka_unit_test(test_a_pool_of_backups_only_uses_them),
        cmocka_unit_test(test_without_backups_nothing_changes),
        cmocka_unit_test(test_backup_is_part_of_the_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
