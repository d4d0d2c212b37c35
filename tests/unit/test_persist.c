/* test_persist.c — `persist = source` as sched_pick() applies it (sched.c):
 * the stick table layered over a pool's scheduler. A session calls
 * client_table_placed(, 0) once its connect succeeds; these tests do the same
 * by hand, with an injected clock, so every expiry is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "client_table.h"
#include "config.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

#define TIMEOUT 10.0

/* Pool "p": servers a, b, c (weight 1) under <scheduler>, persist = source,
 * persist_timeout = 10s, <extra> lines appended to the pool section. */
static struct config *ps_config(const char *scheduler, const char *persist,
                                const char *server_opts)
{
    char text[2048], err[CONFIG_ERR_LEN];
    snprintf(text, sizeof(text),
             "[global]\nworkers = 1\n"
             "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
             "[pool p]\nscheduler = %s\npersist = %s\npersist_timeout = 10s\n"
             "server = a 127.0.0.1:19001 %s\n"
             "server = b 127.0.0.1:19002 %s\n"
             "server = c 127.0.0.1:19003 %s\n",
             scheduler, persist, server_opts, server_opts, server_opts);
    struct config *c = config_load_string("persist.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    return c;
}

static struct config *rr_persist(void)
{
    struct config *c = ps_config("roundrobin", "source", "");
    assert_int_equal(c->pools[0].persist, PERSIST_SOURCE);
    assert_true(c->pools[0].persist_timeout == TIMEOUT);
    return c;
}

/* A client: its address and key. */
struct client {
    struct sockaddr_in sin;
    struct client_key key;
};

static struct client client_n(uint32_t i)
{
    struct client cl;
    memset(&cl, 0, sizeof(cl));
    cl.sin.sin_family = AF_INET;
    cl.sin.sin_addr.s_addr = htonl(0xc0000200u + i);    /* 192.0.2.i */
    client_key_from_addr((const struct sockaddr *)&cl.sin, &cl.key);
    return cl;
}

static struct server *pick(struct pool *p, const struct client *cl, double now,
                           enum sched_why *why)
{
    struct sched_request req = { .key = &cl->key, .now = now, .random = 42 };
    enum sched_why dummy;
    return sched_pick_why(p, &req, why ? why : &dummy);
}

/* A connection as a session makes it: pick, then (connect succeeded) placed. */
static struct server *connect_at(struct pool *p, const struct client *cl, double now,
                                 enum sched_why *why)
{
    struct server *s = pick(p, cl, now, why);
    if (s != NULL)
        client_table_placed(p->clients, &cl->key, s->index, now, 0);
    return s;
}

/* ---- first connection, then sticky -------------------------------------------------- */

static void test_first_connection_is_scheduled(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client cl = client_n(1);
    enum sched_why why = SCHED_WHY_PERSIST;
    struct server *s = pick(p, &cl, 100, &why);
    assert_non_null(s);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    config_unref(c);
}

/* The first pick claims the client for its server at once, so a second
 * first connection racing from the same IP (another worker) joins it; only
 * the connect (placed) counts a connection. */
static void test_first_pick_claims_the_client(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client cl = client_n(1);
    enum sched_why why;
    struct server *s1 = pick(p, &cl, 100, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    struct server *s2 = pick(p, &cl, 100, &why);
    assert_ptr_equal(s2, s1);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    assert_int_equal(client_table_size(p->clients), 1);
    struct client_stat top[1];
    assert_int_equal(client_table_top(p->clients, top, 1), 1);
    assert_int_equal(top[0].total, 0);

    client_table_placed(p->clients, &cl.key, s1->index, 100, 0);
    for (int i = 0; i < 6; i++) {
        assert_ptr_equal(pick(p, &cl, 101, &why), s1);
        assert_int_equal(why, SCHED_WHY_PERSIST);
    }
    assert_int_equal(client_table_top(p->clients, top, 1), 1);
    assert_int_equal(top[0].total, 1);
    config_unref(c);
}

/* Other clients move round robin on; this one keeps its server. */
static void test_sticky_across_round_robin_positions(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    unsigned others[3] = { 0 };
    for (uint32_t i = 0; i < 30; i++) {
        struct client other = client_n(10 + i);
        struct server *o = pick(p, &other, 100 + i * 0.1, &why);
        assert_int_equal(why, SCHED_WHY_SCHEDULE);
        others[o->index]++;
        assert_ptr_equal(connect_at(p, &me, 100 + i * 0.1, &why), mine);
        assert_int_equal(why, SCHED_WHY_PERSIST);
    }
    /* round robin went on for the others: every server got some */
    assert_true(others[0] > 0 && others[1] > 0 && others[2] > 0);
    config_unref(c);
}

static void test_expires_after_timeout_unused(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client cl = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &cl, 100, &why);
    assert_ptr_equal(pick(p, &cl, 109.5, &why), mine);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    /* that look-up refreshed it: 19 s after placement, 9.5 s after use */
    assert_ptr_equal(pick(p, &cl, 119.0, &why), mine);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    /* 10 s unused: scheduled afresh */
    (void)pick(p, &cl, 129.0, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    config_unref(c);
}

/* Expired, the client is placed by round robin afresh: over three expiries
 * in a row it lands on three different servers. */
static void test_after_expiry_a_fresh_schedule_can_move_it(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client cl = client_n(1);
    enum sched_why why;
    unsigned seen = 0;
    double now = 0;
    for (int i = 0; i < 3; i++) {
        struct server *s = connect_at(p, &cl, now, &why);
        assert_int_equal(why, SCHED_WHY_SCHEDULE);
        seen |= 1u << s->index;
        assert_ptr_equal(pick(p, &cl, now + 1, &why), s);
        assert_int_equal(why, SCHED_WHY_PERSIST);
        now += 1 + TIMEOUT;
    }
    assert_int_equal(seen, 7);
    config_unref(c);
}

/* ---- server states ----------------------------------------------------------------- */

static void test_drain_keeps_its_clients_but_gets_no_new_ones(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    pool_set_server_state(mine, SERVER_DRAIN);
    for (int i = 0; i < 5; i++) {
        assert_ptr_equal(connect_at(p, &me, 101 + i, &why), mine);
        assert_int_equal(why, SCHED_WHY_PERSIST);
    }
    for (uint32_t i = 0; i < 60; i++) {
        struct client other = client_n(10 + i);
        struct server *o = connect_at(p, &other, 106, &why);
        assert_non_null(o);
        assert_ptr_not_equal(o, mine);
        assert_int_equal(why, SCHED_WHY_SCHEDULE);
    }
    /* a drained server's client that expired is not brought back to it */
    struct server *s = pick(p, &me, 106 + TIMEOUT, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    assert_ptr_not_equal(s, mine);
    config_unref(c);
}

static void test_down_and_maint_lose_their_clients(void **state)
{
    (void)state;
    static const enum server_state states[] = { SERVER_DOWN, SERVER_MAINT };
    for (size_t i = 0; i < ARRAY_LEN(states); i++) {
        struct config *c = rr_persist();
        struct pool *p = &c->pools[0];
        struct client me = client_n(1);
        enum sched_why why;
        struct server *mine = connect_at(p, &me, 100, &why);
        pool_set_server_state(mine, states[i]);
        struct server *s = connect_at(p, &me, 101, &why);
        assert_non_null(s);
        assert_ptr_not_equal(s, mine);
        assert_int_equal(why, SCHED_WHY_SCHEDULE);
        /* placed there, it now sticks to its new server, also once the old
         * one is back */
        pool_set_server_state(mine, SERVER_UP);
        assert_ptr_equal(pick(p, &me, 102, &why), s);
        assert_int_equal(why, SCHED_WHY_PERSIST);
        config_unref(c);
    }
}

/* Weight 0 means no new connections, like drain: its sticky clients stay. */
static void test_weight_zero_keeps_sticky_clients(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    assert_int_equal(pool_set_server_weight(mine, 0), 0);
    assert_ptr_equal(pick(p, &me, 101, &why), mine);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    struct client other = client_n(2);
    for (int i = 0; i < 6; i++)
        assert_ptr_not_equal(pick(p, &other, 101, &why), mine);
    config_unref(c);
}

/* A full server (maxconn) yields: the client is scheduled afresh rather than
 * queued behind its old server. */
static void test_full_server_yields_to_a_fresh_schedule(void **state)
{
    (void)state;
    struct config *c = ps_config("roundrobin", "source", "maxconn=2");
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    server_active_add(mine, 1);
    assert_ptr_equal(pick(p, &me, 101, &why), mine);   /* 1 of 2 */
    assert_int_equal(why, SCHED_WHY_PERSIST);
    server_active_add(mine, 1);                          /* 2 of 2: full */
    struct server *s = pick(p, &me, 102, &why);
    assert_non_null(s);
    assert_ptr_not_equal(s, mine);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    /* a slot frees: back to its own server (the entry was never replaced) */
    server_active_add(mine, -1);
    assert_ptr_equal(pick(p, &me, 103, &why), mine);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    server_active_add(mine, -1);
    config_unref(c);
}

/* A retry after a failed connect never goes back to the tried server. */
static void test_tried_server_is_not_returned(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    uint32_t tried[3] = { mine->index };
    struct sched_request req = { .key = &me.key, .now = 101, .tried = tried,
                                 .ntried = 1 };
    struct server *s = sched_pick_why(p, &req, &why);
    assert_non_null(s);
    assert_ptr_not_equal(s, mine);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    tried[req.ntried++] = s->index;
    struct server *t = sched_pick_why(p, &req, &why);
    assert_non_null(t);
    assert_ptr_not_equal(t, mine);
    assert_ptr_not_equal(t, s);
    tried[req.ntried++] = t->index;
    assert_null(sched_pick_why(p, &req, &why));
    assert_int_equal(why, SCHED_WHY_NONE);
    config_unref(c);
}

/* ---- on top of other schedulers, and off ----------------------------------------------- */

/* leastconn would pick the idle server; the sticky one wins though loaded. */
static void test_persist_over_leastconn(void **state)
{
    (void)state;
    struct config *c = ps_config("leastconn", "source", "");
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    server_active_add(mine, 50);
    assert_ptr_equal(pick(p, &me, 101, &why), mine);
    assert_int_equal(why, SCHED_WHY_PERSIST);
    struct client other = client_n(2);
    assert_ptr_not_equal(pick(p, &other, 101, &why), mine);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    server_active_add(mine, -50);
    config_unref(c);
}

/* random2 with changing random values: still the same server for the client. */
static void test_persist_over_random2(void **state)
{
    (void)state;
    struct config *c = ps_config("random2", "source", "");
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    struct server *mine = connect_at(p, &me, 100, &why);
    for (uint64_t r = 0; r < 50; r++) {
        struct sched_request req = { .key = &me.key, .now = 101,
                                     .random = r * 0x9e3779b97f4a7c15ULL };
        assert_ptr_equal(sched_pick_why(p, &req, &why), mine);
        assert_int_equal(why, SCHED_WHY_PERSIST);
    }
    config_unref(c);
}

static void test_persist_none_ignores_the_table(void **state)
{
    (void)state;
    struct config *c = ps_config("roundrobin", "none", "");
    struct pool *p = &c->pools[0];
    assert_int_equal(p->persist, PERSIST_NONE);
    struct client me = client_n(1);
    enum sched_why why;
    struct server *first = connect_at(p, &me, 100, &why);
    /* the table counts the client (show clients) but does not steer it */
    struct server *second = connect_at(p, &me, 101, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    assert_ptr_not_equal(first, second);
    config_unref(c);
}

/* Without a key (unknown address family) the client is just scheduled. */
static void test_no_key_is_scheduled(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    enum sched_why why;
    struct sched_request req = { .now = 100 };
    struct server *a = sched_pick_why(p, &req, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    struct client_key none = { .len = 0 };
    req.key = &none;
    client_table_placed(p->clients, &none, a->index, 100, 0);
    struct server *b = sched_pick_why(p, &req, &why);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    assert_ptr_not_equal(a, b);
    config_unref(c);
}

/* A remembered index that no longer exists (a reload shrank the pool and the
 * table were shared) is ignored rather than followed. */
static void test_out_of_range_entry_is_ignored(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    client_table_placed(p->clients, &me.key, 7, 100, 0);
    enum sched_why why;
    struct server *s = pick(p, &me, 101, &why);
    assert_non_null(s);
    assert_int_equal(why, SCHED_WHY_SCHEDULE);
    config_unref(c);
}

static void test_no_server_reports_none(void **state)
{
    (void)state;
    struct config *c = rr_persist();
    struct pool *p = &c->pools[0];
    struct client me = client_n(1);
    enum sched_why why;
    (void)connect_at(p, &me, 100, &why);
    for (uint32_t i = 0; i < p->nservers; i++)
        pool_set_server_state(&p->servers[i], SERVER_MAINT);
    assert_null(pick(p, &me, 101, &why));
    assert_int_equal(why, SCHED_WHY_NONE);
    assert_null(sched_pick(p, &(struct sched_request){ .key = &me.key, .now = 101 }));
    config_unref(c);
}

static void test_why_strings(void **state)
{
    (void)state;
    assert_string_equal(sched_why_str(SCHED_WHY_NONE), "none");
    assert_string_equal(sched_why_str(SCHED_WHY_PERSIST), "persist");
    assert_string_equal(sched_why_str(SCHED_WHY_SCHEDULE), "schedule");
    assert_string_equal(sched_why_str((enum sched_why)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_connection_is_scheduled),
        cmocka_unit_test(test_first_pick_claims_the_client),
        cmocka_unit_test(test_sticky_across_round_robin_positions),
        cmocka_unit_test(test_expires_after_timeout_unused),
        cmocka_unit_test(test_after_expiry_a_fresh_schedule_can_move_it),
        cmocka_unit_test(test_drain_keeps_its_clients_but_gets_no_new_ones),
        cmocka_unit_test(test_down_and_maint_lose_their_clients),
        cmocka_unit_test(test_weight_zero_keeps_sticky_clients),
        cmocka_unit_test(test_full_server_yields_to_a_fresh_schedule),
        cmocka_unit_test(test_tried_server_is_not_returned),
        cmocka_unit_test(test_persist_over_leastconn),
        cmocka_unit_test(test_persist_over_random2),
        cmocka_unit_test(test_persist_none_ignores_the_table),
        cmocka_unit_test(test_no_key_is_scheduled),
        cmocka_unit_test(test_out_of_range_entry_is_ignored),
        cmocka_unit_test(test_no_server_reports_none),
        cmocka_unit_test(test_why_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
