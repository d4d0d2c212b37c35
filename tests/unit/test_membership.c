/* test_membership.c — membership.c: servers joining and leaving a running
 * pool, on one pool from config_load_string() with no health checker
 * (h = NULL: nothing checks, drains or ramps). Adds publish the next slot
 * and are refused for what `add server` must refuse; del wants maint and
 * no connection; removed slots come back to the same name at once, to
 * another after MEMBERSHIP_REUSE_AFTER (an injected `now`); sync makes the
 * discovered servers the answer's set; carry hands them to a reloaded
 * pool; and the placement of `scheduler = source` (pool_mapping(), Maglev
 * picks) does not depend on the order servers joined in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "client_key.h"
#include "config.h"
#include "config_keys.h"
#include "counters.h"
#include "membership.h"
#include "pool.h"
#include "proxy_proto.h"
#include "scheduler.h"

/* ---- helpers ------------------------------------------------------------------ */

/* A config with one pool "p" of <keys> (its scheduler, health, servers ...). */
static struct config *mb_config(const char *keys)
{
    char text[4096], err[CONFIG_ERR_LEN];
    int len = snprintf(text, sizeof(text),
                       "[global]\nworkers = 2\n"
                       "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
                       "[pool p]\n%s", keys);
    assert_true(len > 0 && (size_t)len < sizeof(text));
    struct config *c = config_load_string("membership.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    return c;
}

/* membership_add() from the stats socket with options <opts> (copied: the
 * parser writes into them); NULL and the reason in err when refused. */
static struct server *add(struct config *c, const char *name, const char *addr,
                          const char *opts, double now, char *err, size_t errlen)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", opts ? opts : "");
    err[0] = '\0';
    return membership_add(c, NULL, &c->pools[0], name, addr, opts ? copy : NULL,
                          SERVER_FROM_SOCKET, "test", now, err, errlen);
}

/* The same, which must succeed. */
static struct server *add_ok(struct config *c, const char *name, const char *addr,
                             const char *opts, double now)
{
    char err[512];
    struct server *s = add(c, name, addr, opts, now, err, sizeof(err));
    if (s == NULL)
        fail_msg("add %s %s refused: %s", name, addr, err);
    return s;
}

static int del(struct config *c, const char *name, double now, char *err, size_t errlen)
{
    err[0] = '\0';
    return membership_del(NULL, &c->pools[0], name, now, err, errlen);
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("'%s' does not say '%s'", text, part);
}

/* "ADDR:PORT" as a discovery entry of weight <w>. */
static struct membership_entry entry(const char *addr, unsigned w)
{
    struct membership_entry e;
    char err[256];
    memset(&e, 0, sizeof(e));
    if (net_parse_ip_addr(addr, &e.addr, err, sizeof(err)) == -1)
        fail_msg("%s", err);
    e.weight = w;
    return e;
}

static void sync_set(struct config *c, const char *const *addrs, const unsigned *weights,
                     size_t n, double now)
{
    struct membership_entry set[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        set[i] = entry(addrs[i], weights ? weights[i] : 1);
    membership_sync(c, NULL, &c->pools[0], set, n, now);
}

/* Listed servers of the pool. */
static unsigned listed(struct pool *p)
{
    unsigned k = 0;
    for (uint32_t i = 0; i < pool_nservers(p); i++)
        k += server_listed(&p->servers[i]);
    return k;
}

static void assert_counters_zero(const struct server *s, unsigned nworkers)
{
    struct server_totals t;
    counters_server_sum(s->counters, nworkers, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.failed, 0);
    assert_int_equal(t.bytes_in, 0);
    assert_int_equal(t.bytes_out, 0);
    assert_int_equal(t.requests, 0);
    assert_int_equal(t.connect.buckets[0], 0);
}

/* Client number i as 10.x.y.z. */
static void key_v4(uint32_t i, struct client_key *k)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x0a000000u | (i & 0xffffffu));
    client_key_from_addr((const struct sockaddr *)&sin, k);
}

/* Where client i goes, by name, without moving anything. */
static const char *placed(struct pool *p, uint32_t i)
{
    struct client_key k;
    key_v4(i, &k);
    struct sched_request req = { .key = &k, .now = 1000, .peek = 1 };
    struct server *s = sched_pick(p, &req);
    return s ? s->name : "(none)";
}

/* ---- add ------------------------------------------------------------------------- */

static const char health_tcp[] =
    "health = tcp\nserver_slots = 4\nserver = s1 127.0.0.1:19001\n";

/* A new server takes the next slot and is published in it: nservers one
 * more, listed, down until a check passes, its options parsed, its
 * counters zero. */
static void test_add_publishes_the_next_slot(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    assert_int_equal(pool_nservers(p), 1);
    assert_int_equal(p->cap_servers, 1 + 4);
    assert_int_equal(p->has_maxconn, 0);

    struct server *s = add_ok(c, "n1", "10.0.0.1:8080", "weight=5 maxconn=10 send-proxy",
                              100);
    assert_ptr_equal(s, &p->servers[1]);
    assert_int_equal(s->index, 1);
    assert_int_equal(pool_nservers(p), 2);
    assert_true(server_listed(s));
    assert_ptr_equal(pool_find_server(p, "n1"), s);
    assert_ptr_equal(s->pool, p);
    assert_string_equal(s->name, "n1");
    assert_string_equal(s->addr_text, "10.0.0.1:8080");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->addr.ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a000001u);

    assert_int_equal(server_state(s), SERVER_DOWN);
    assert_int_equal(s->weight, 5);
    assert_int_equal(server_weight(s), 5);
    assert_int_equal(server_eweight(s), 5 * SERVER_WEIGHT_SCALE);
    assert_int_equal(pool_live_weight(p, 1), 0);        /* down: no share */
    assert_int_equal(s->maxconn, 10);
    assert_int_equal(p->has_maxconn, 1);
    assert_int_equal(s->send_proxy, PROXY_V1);
    assert_int_equal(s->origin, SERVER_FROM_SOCKET);
    assert_int_equal(s->leaving, 0);
    assert_int_equal(server_active(s), 0);
    assert_non_null(s->counters);
    assert_counters_zero(s, c->global.workers);

    /* the next one takes the next slot; no options: weight 1 */
    struct server *t = add_ok(c, "n2", "10.0.0.2:8080", NULL, 100);
    assert_ptr_equal(t, &p->servers[2]);
    assert_int_equal(pool_nservers(p), 3);
    assert_int_equal(server_weight(t), 1);
    assert_int_equal(t->maxconn, 0);
    assert_int_equal(t->send_proxy, PROXY_NONE);
    /* send-proxy-v2 */
    struct server *u = add_ok(c, "n3", "10.0.0.3:8080", "send-proxy-v2 weight=0", 100);
    assert_int_equal(u->send_proxy, PROXY_V2);
    assert_int_equal(server_weight(u), 0);
    /* the config's server is untouched */
    assert_int_equal(server_state(&p->servers[0]), SERVER_UP);
    config_unref(c);
}

/* With no health checks nothing would ever bring it up: up at once. */
static void test_add_with_health_none_is_up_at_once(void **state)
{
    (void)state;
    struct config *c = mb_config("health = none\nserver = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    struct server *s = add_ok(c, "n1", "10.0.0.1:80", "weight=3", 100);
    assert_int_equal(server_state(s), SERVER_UP);
    assert_true(server_available(s));
    assert_int_equal(pool_live_weight(p, s->index), 3 * SERVER_WEIGHT_SCALE);
    assert_int_equal(p->live_weight_total, (1 + 3) * SERVER_WEIGHT_SCALE);
    config_unref(c);
}

static void test_add_ipv6_address(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct server *s = add_ok(c, "v6", "[2001:db8::5]:443", NULL, 100);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->addr.ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 443);
    assert_int_equal(s->addr.len, sizeof(*sin6));
    /* named by its address, as discovery names them */
    assert_non_null(add_ok(c, "[2001:db8::6]:443", "[2001:db8::6]:443", NULL, 100));
    config_unref(c);
}

/* A name the pool has (from the config or added) is refused. */
static void test_add_refuses_a_duplicate_name(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    char err[512];
    assert_null(add(c, "s1", "10.0.0.1:80", NULL, 100, err, sizeof(err)));
    assert_contains(err, "has a server 's1' already");
    add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
    assert_null(add(c, "n1", "10.0.0.2:80", NULL, 100, err, sizeof(err)));
    assert_contains(err, "has a server 'n1' already");
    assert_int_equal(pool_nservers(p), 2);
    config_unref(c);
}

/* Only IP addresses: a name would need a blocking lookup on the main loop. */
static void test_add_refuses_a_hostname(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    static const char *const bad[] = {
        "localhost:80", "backend.example.com:80", "10.0.0.1", "10.0.0.1:0",
        "10.0.0.1:65536", "[2001:db8::1]", "2001:db8::1:80", "[localhost]:80", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[512];
        if (add(c, "n1", bad[i], NULL, 100, err, sizeof(err)) != NULL)
            fail_msg("address '%s' accepted", bad[i]);
        assert_contains(err, "bad address");
    }
    char err[512];
    assert_null(add(c, "n1", "localhost:80", NULL, 100, err, sizeof(err)));
    assert_contains(err, "not an IP address");
    assert_int_equal(pool_nservers(p), 1);
    config_unref(c);
}

/* A bad option is refused with the list of the known ones. */
static void test_add_refuses_a_bad_option(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    char err[512];
    assert_null(add(c, "n1", "10.0.0.1:80", "bogus", 100, err, sizeof(err)));
    assert_contains(err, "unknown option 'bogus'");
    assert_contains(err, config_server_option_names());
    assert_contains(err, "weight=N");
    assert_null(add(c, "n1", "10.0.0.1:80", "weight", 100, err, sizeof(err)));
    assert_contains(err, "unknown option 'weight'");
    assert_null(add(c, "n1", "10.0.0.1:80", "send-proxy=1", 100, err, sizeof(err)));
    assert_contains(err, "unknown option 'send-proxy'");
    assert_null(add(c, "n1", "10.0.0.1:80", "weight=257", 100, err, sizeof(err)));
    assert_contains(err, "weight must be 0-256");
    assert_null(add(c, "n1", "10.0.0.1:80", "weight=-1", 100, err, sizeof(err)));
    assert_null(add(c, "n1", "10.0.0.1:80", "maxconn=x", 100, err, sizeof(err)));
    assert_null(add(c, "n1", "10.0.0.1:80", "weight=2 bogus", 100, err, sizeof(err)));
    assert_int_equal(pool_nservers(p), 1);
    assert_null(pool_find_server(p, "n1"));
    config_unref(c);
}

static void test_add_refuses_a_bad_name(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    static const char *const bad[] = { "", "a b", "a/b", "a;b", "a\"b", "\xc3\xa9" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[512];
        if (add(c, bad[i], "10.0.0.1:80", NULL, 100, err, sizeof(err)) != NULL)
            fail_msg("name '%s' accepted", bad[i]);
        assert_contains(err, "not a valid server name");
    }
    assert_int_equal(pool_nservers(&c->pools[0]), 1);
    config_unref(c);
}

/* server_slots bounds the additions. */
static void test_add_when_full_answers_no_room(void **state)
{
    (void)state;
    struct config *c = mb_config("health = tcp\nserver_slots = 2\n"
                                 "server = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    assert_int_equal(p->cap_servers, 3);
    add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
    add_ok(c, "n2", "10.0.0.2:80", NULL, 100);
    char err[512];
    assert_null(add(c, "n3", "10.0.0.3:80", NULL, 100, err, sizeof(err)));
    assert_contains(err, "no room");
    assert_contains(err, "server_slots = 2");
    assert_int_equal(pool_nservers(p), 3);
    config_unref(c);

    /* none at all */
    c = mb_config("health = tcp\nserver_slots = 0\nserver = s1 127.0.0.1:19001\n");
    assert_null(add(c, "n1", "10.0.0.1:80", NULL, 100, err, sizeof(err)));
    assert_contains(err, "no room");
    config_unref(c);
}

/* ---- del ------------------------------------------------------------------------- */

/* Only a server in maint with no open connection goes. */
static void test_del_needs_maint_and_no_connection(void **state)
{
    (void)state;
    struct config *c = mb_config("health = none\nserver = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    struct server *s = add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
    char err[512];
    static const struct { enum server_state st; const char *says; } refused[] = {
        { SERVER_UP, "is up" }, { SERVER_DRAIN, "is drain" }, { SERVER_DOWN, "is down" },
        { SERVER_EJECTED, "is ejected" },
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        pool_set_server_state(s, refused[i].st);
        assert_int_equal(del(c, "n1", 200, err, sizeof(err)), -1);
        assert_contains(err, refused[i].says);
        assert_contains(err, "disable server p/n1");
        assert_true(server_listed(s));
    }
    pool_set_server_state(s, SERVER_MAINT);
    server_active_add(s, 1);
    assert_int_equal(del(c, "n1", 200, err, sizeof(err)), -1);
    assert_contains(err, "has 1 open connection:");
    server_active_add(s, 2);
    assert_int_equal(del(c, "n1", 200, err, sizeof(err)), -1);
    assert_contains(err, "has 3 open connections");
    assert_true(server_listed(s));
    assert_ptr_equal(pool_find_server(p, "n1"), s);

    server_active_add(s, -3);
    assert_int_equal(del(c, "n1", 200, err, sizeof(err)), 0);
    assert_false(server_listed(s));
    assert_int_equal(server_state(s), SERVER_MAINT);
    assert_null(pool_find_server(p, "n1"));
    assert_int_equal(pool_nservers(p), 2);          /* the slot stays */
    assert_true(s->removed_at == 200);
    assert_int_equal(pool_live_weight(p, s->index), 0);
    assert_int_equal(listed(p), 1);
    /* gone: a second del finds nothing */
    assert_int_equal(del(c, "n1", 201, err, sizeof(err)), -1);
    assert_contains(err, "no server 'n1' in pool 'p'");
    config_unref(c);
}

static void test_del_unknown_name(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    char err[512];
    assert_int_equal(del(c, "nope", 100, err, sizeof(err)), -1);
    assert_contains(err, "no server 'nope' in pool 'p'");
    config_unref(c);
}

/* The same name comes back into its own slot at once: same index,
 * nservers as it was, counters of before cleared. */
static void test_readd_same_name_takes_its_slot_back(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    struct server *s = add_ok(c, "n1", "10.0.0.1:80", "weight=4", 100);
    uint32_t index = s->index;
    s->counters[0].total = 7;
    s->counters[1].bytes_in = 1234;
    s->counters[1].requests = 3;
    pool_set_server_state(s, SERVER_MAINT);
    char err[512];
    assert_int_equal(del(c, "n1", 200, err, sizeof(err)), 0);
    uint32_t before = pool_nservers(p);

    struct server *again = add_ok(c, "n1", "10.0.0.9:81", "maxconn=5", 200.5);
    assert_ptr_equal(again, s);
    assert_int_equal(again->index, index);
    assert_int_equal(pool_nservers(p), before);
    assert_true(server_listed(again));
    assert_ptr_equal(pool_find_server(p, "n1"), again);
    assert_counters_zero(again, c->global.workers);
    /* what it is now, not what it was */
    assert_string_equal(again->addr_text, "10.0.0.9:81");
    assert_int_equal(ntohs(((const struct sockaddr_in *)&again->addr.ss)->sin_port), 81);
    assert_int_equal(server_weight(again), 1);
    assert_int_equal(again->maxconn, 5);
    assert_int_equal(server_state(again), SERVER_DOWN);
    assert_int_equal(again->origin, SERVER_FROM_SOCKET);
    config_unref(c);
}

/* Another name does not take a freshly removed slot (a worker may still
 * read the old server through it), but does after MEMBERSHIP_REUSE_AFTER. */
static void test_other_name_waits_for_the_reuse_time(void **state)
{
    (void)state;
    struct config *c = mb_config(health_tcp);
    struct pool *p = &c->pools[0];
    struct server *s = add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
    pool_set_server_state(s, SERVER_MAINT);
    char err[512];
    assert_int_equal(del(c, "n1", 1000, err, sizeof(err)), 0);

    struct server *t = add_ok(c, "n2", "10.0.0.2:80", NULL,
                              1000 + MEMBERSHIP_REUSE_AFTER - 0.5);
    assert_ptr_equal(t, &p->servers[2]);            /* a fresh slot */
    assert_int_equal(pool_nservers(p), 3);
    assert_false(server_listed(s));

    struct server *u = add_ok(c, "n3", "10.0.0.3:80", NULL, 1000 + MEMBERSHIP_REUSE_AFTER);
    assert_ptr_equal(u, s);                         /* n1's old slot */
    assert_int_equal(u->index, 1);
    assert_int_equal(pool_nservers(p), 3);
    assert_string_equal(u->name, "n3");
    assert_ptr_equal(pool_find_server(p, "n3"), u);
    assert_null(pool_find_server(p, "n1"));
    config_unref(c);
}

/* A removed slot that still counts an open connection (a worker's late
 * close) is not handed to another name, however long ago it was removed. */
static void test_removed_slot_with_connection_not_reused(void **state)
{
    (void)state;
    struct config *c = mb_config("health = tcp\nserver_slots = 2\n"
                                 "server = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    struct server *s = add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
    pool_set_server_state(s, SERVER_MAINT);
    char err[512];
    assert_int_equal(del(c, "n1", 100, err, sizeof(err)), 0);
    server_active_add(s, 1);
    struct server *t = add_ok(c, "n2", "10.0.0.2:80", NULL, 10000);
    assert_ptr_equal(t, &p->servers[2]);
    /* the pool is full but for that slot */
    assert_null(add(c, "n3", "10.0.0.3:80", NULL, 10000, err, sizeof(err)));
    assert_contains(err, "no room");
    server_active_add(s, -1);
    assert_ptr_equal(add_ok(c, "n3", "10.0.0.3:80", NULL, 10000), s);
    config_unref(c);
}

/* ---- sync ------------------------------------------------------------------------ */

static const char discover_tcp[] =
    "health = tcp\ndiscover = backend.example.com:80\n"
    "server = s1 127.0.0.1:19001\n";

/* New addresses are added, named ADDR:PORT, with the entry's weight. */
static void test_sync_adds_new_addresses(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const addrs[] = { "10.0.0.1:80", "10.0.0.2:8080",
                                         "[2001:db8::1]:80" };
    static const unsigned weights[] = { 1, 3, 256 };
    sync_set(c, addrs, weights, 3, 100);
    assert_int_equal(pool_nservers(p), 4);
    for (size_t i = 0; i < 3; i++) {
        struct server *s = pool_find_server(p, addrs[i]);
        if (s == NULL)
            fail_msg("%s not added", addrs[i]);
        assert_string_equal(s->addr_text, addrs[i]);
        assert_int_equal(s->origin, SERVER_FROM_DISCOVERY);
        assert_int_equal(server_weight(s), weights[i]);
        assert_int_equal(server_state(s), SERVER_DOWN);     /* until a check passes */
        assert_int_equal(s->leaving, 0);
    }
    config_unref(c);
}

/* The same set again changes nothing. */
static void test_sync_is_idempotent(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const addrs[] = { "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, addrs, NULL, 2, 100);
    struct server *a = pool_find_server(p, "10.0.0.1:80");
    sync_set(c, addrs, NULL, 2, 110);
    sync_set(c, addrs, NULL, 2, 120);
    assert_int_equal(pool_nservers(p), 3);
    assert_int_equal(listed(p), 3);
    assert_ptr_equal(pool_find_server(p, "10.0.0.1:80"), a);
    /* the same addresses in another order, and twice in one set */
    static const char *const again[] = { "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, again, NULL, 3, 130);
    assert_int_equal(pool_nservers(p), 3);
    assert_int_equal(listed(p), 3);
    config_unref(c);
}

/* One missing from the set with no connection leaves at once (sync reaps
 * at its end). */
static void test_sync_missing_server_removed_when_empty(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const two[] = { "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, two, NULL, 2, 100);
    struct server *b = pool_find_server(p, "10.0.0.2:80");
    sync_set(c, two, NULL, 1, 110);
    assert_false(server_listed(b));
    assert_int_equal(b->leaving, 0);
    assert_int_equal(server_state(b), SERVER_MAINT);
    assert_null(pool_find_server(p, "10.0.0.2:80"));
    assert_non_null(pool_find_server(p, "10.0.0.1:80"));
    /* an empty answer: all discovered ones go, the config's stays */
    sync_set(c, two, NULL, 0, 120);
    assert_int_equal(listed(p), 1);
    assert_non_null(pool_find_server(p, "s1"));
    config_unref(c);
}

/* One missing with connections open is leaving (draining, with a
 * health checker) and reap keeps it until the last one ends. */
static void test_sync_missing_server_leaves_while_busy(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const two[] = { "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, two, NULL, 2, 100);
    struct server *a = pool_find_server(p, "10.0.0.1:80");
    struct server *b = pool_find_server(p, "10.0.0.2:80");
    server_active_add(b, 2);
    sync_set(c, two, NULL, 1, 110);
    assert_true(server_listed(b));
    assert_int_equal(b->leaving, 1);
    assert_int_equal(a->leaving, 0);
    membership_reap(NULL, p, 111);
    assert_true(server_listed(b));
    server_active_add(b, -1);
    membership_reap(NULL, p, 112);
    assert_true(server_listed(b));
    /* still missing from the next answer: still leaving, still there */
    sync_set(c, two, NULL, 1, 120);
    assert_int_equal(b->leaving, 1);
    assert_true(server_listed(b));
    server_active_add(b, -1);
    membership_reap(NULL, p, 130);
    assert_false(server_listed(b));
    assert_int_equal(b->leaving, 0);
    assert_true(b->removed_at == 130);
    assert_true(server_listed(a));
    config_unref(c);
}

/* Back in the answer before it emptied: it stays, no longer leaving. */
static void test_sync_back_before_reap_clears_leaving(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const two[] = { "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, two, NULL, 2, 100);
    struct server *b = pool_find_server(p, "10.0.0.2:80");
    server_active_add(b, 1);
    sync_set(c, two, NULL, 1, 110);
    assert_int_equal(b->leaving, 1);
    sync_set(c, two, NULL, 2, 120);
    assert_int_equal(b->leaving, 0);
    assert_ptr_equal(pool_find_server(p, "10.0.0.2:80"), b);
    assert_int_equal(pool_nservers(p), 3);
    server_active_add(b, -1);
    membership_reap(NULL, p, 130);
    assert_true(server_listed(b));
    config_unref(c);
}

/* After it left, it comes back into its own slot. */
static void test_sync_back_after_removal_takes_its_slot(void **state)
{
    (void)state;
    struct config *c = mb_config(discover_tcp);
    struct pool *p = &c->pools[0];
    static const char *const two[] = { "10.0.0.1:80", "10.0.0.2:80" };
    sync_set(c, two, NULL, 2, 100);
    struct server *b = pool_find_server(p, "10.0.0.2:80");
    sync_set(c, two, NULL, 1, 110);
    assert_false(server_listed(b));
    static const unsigned weights[] = { 1, 9 };
    sync_set(c, two, weights, 2, 111);
    assert_ptr_equal(pool_find_server(p, "10.0.0.2:80"), b);
    assert_int_equal(pool_nservers(p), 3);
    assert_int_equal(server_weight(b), 9);
    assert_int_equal(b->origin, SERVER_FROM_DISCOVERY);
    config_unref(c);
}

/* The answer's weights follow. */
static void test_sync_applies_weight_change(void **state)
{
    (void)state;
    struct config *c = mb_config("health = none\ndiscover = backend.example.com:80\n"
                                 "server = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    static const char *const one[] = { "10.0.0.1:80" };
    static const unsigned w1[] = { 1 }, w7[] = { 7 };
    sync_set(c, one, w1, 1, 100);
    struct server *a = pool_find_server(p, "10.0.0.1:80");
    assert_int_equal(server_weight(a), 1);
    sync_set(c, one, w7, 1, 110);
    assert_int_equal(server_weight(a), 7);
    assert_int_equal(server_eweight(a), 7 * SERVER_WEIGHT_SCALE);
    assert_int_equal(pool_live_weight(p, a->index), 7 * SERVER_WEIGHT_SCALE);
    assert_int_equal(p->live_weight_total, (1 + 7) * SERVER_WEIGHT_SCALE);
    config_unref(c);
}

/* Servers from the config and the stats socket are never touched: not
 * made to leave, not reweighted, and their address is not added again. */
static void test_sync_leaves_config_and_socket_servers(void **state)
{
    (void)state;
    struct config *c = mb_config("health = tcp\ndiscover = backend.example.com:80\n"
                                 "server = s1 127.0.0.1:19001 weight=2\n");
    struct pool *p = &c->pools[0];
    struct server *s1 = pool_find_server(p, "s1");
    struct server *n1 = add_ok(c, "n1", "10.0.0.9:80", "weight=3", 100);
    sync_set(c, NULL, NULL, 0, 110);
    assert_true(server_listed(s1) && server_listed(n1));
    assert_int_equal(s1->leaving + n1->leaving, 0);
    assert_int_equal(server_state(s1), SERVER_UP);
    /* an answer that holds their addresses, with other weights */
    static const char *const theirs[] = { "127.0.0.1:19001", "10.0.0.9:80", "10.0.0.1:80" };
    static const unsigned weights[] = { 50, 60, 70 };
    sync_set(c, theirs, weights, 3, 120);
    assert_int_equal(server_weight(s1), 2);
    assert_int_equal(server_weight(n1), 3);
    assert_null(pool_find_server(p, "127.0.0.1:19001"));
    assert_null(pool_find_server(p, "10.0.0.9:80"));
    assert_non_null(pool_find_server(p, "10.0.0.1:80"));
    assert_int_equal(listed(p), 3);
    /* and an answer without them again */
    sync_set(c, NULL, NULL, 0, 130);
    assert_int_equal(listed(p), 2);
    assert_int_equal(s1->origin, SERVER_FROM_CONFIG);
    assert_int_equal(n1->origin, SERVER_FROM_SOCKET);
    config_unref(c);
}

/* A full pool: what does not fit is not added (logged), the rest is. */
static void test_sync_when_full_adds_what_fits(void **state)
{
    (void)state;
    struct config *c = mb_config("health = tcp\nserver_slots = 2\n"
                                 "discover = backend.example.com:80\n"
                                 "server = s1 127.0.0.1:19001\n");
    struct pool *p = &c->pools[0];
    static const char *const three[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80" };
    sync_set(c, three, NULL, 3, 100);
    assert_int_equal(pool_nservers(p), 3);
    assert_non_null(pool_find_server(p, "10.0.0.1:80"));
    assert_non_null(pool_find_server(p, "10.0.0.2:80"));
    assert_null(pool_find_server(p, "10.0.0.3:80"));
    config_unref(c);
}

/* ---- carry (reload) ---------------------------------------------------------------- */

/* The discovered servers that are not leaving join the reloaded pool
 * with their weight and state; the config's and the socket's do not. */
static void test_carry_copies_discovered_servers(void **state)
{
    (void)state;
    struct config *old = mb_config(discover_tcp);
    struct pool *op = &old->pools[0];
    static const char *const three[] = { "10.0.0.1:80", "10.0.0.2:80", "[2001:db8::3]:80" };
    static const unsigned weights[] = { 5, 1, 2 };
    sync_set(old, three, weights, 3, 100);
    pool_set_server_state(pool_find_server(op, "10.0.0.1:80"), SERVER_UP);
    add_ok(old, "n1", "10.0.0.9:80", NULL, 100);
    /* 10.0.0.2 left the answer and is still busy: leaving, not carried */
    server_active_add(pool_find_server(op, "10.0.0.2:80"), 1);
    static const char *const two[] = { "10.0.0.1:80", "[2001:db8::3]:80" };
    static const unsigned weights2[] = { 5, 2 };
    sync_set(old, two, weights2, 2, 110);
    assert_int_equal(pool_find_server(op, "10.0.0.2:80")->leaving, 1);

    struct config *next = mb_config(discover_tcp);
    struct pool *np = &next->pools[0];
    assert_int_equal(membership_carry(np, op, next->global.workers), 2);
    assert_int_equal(pool_nservers(np), 3);
    struct server *a = pool_find_server(np, "10.0.0.1:80");
    struct server *v6 = pool_find_server(np, "[2001:db8::3]:80");
    assert_non_null(a);
    assert_non_null(v6);
    assert_null(pool_find_server(np, "10.0.0.2:80"));
    assert_null(pool_find_server(np, "n1"));
    assert_int_equal(a->origin, SERVER_FROM_DISCOVERY);
    assert_int_equal(server_weight(a), 5);
    assert_int_equal(server_weight(v6), 2);
    assert_int_equal(server_state(a), SERVER_UP);
    assert_int_equal(server_state(v6), SERVER_DOWN);
    assert_string_equal(a->addr_text, "10.0.0.1:80");
    assert_memory_equal(&a->addr, &pool_find_server(op, "10.0.0.1:80")->addr,
                        sizeof(a->addr));
    assert_ptr_equal(a->pool, np);
    assert_non_null(a->counters);
    assert_int_equal(a->leaving, 0);
    /* carried ones are the new pool's discovered servers: sync goes on
     * from them, nothing is added twice */
    sync_set(next, two, weights2, 2, 200);
    assert_int_equal(pool_nservers(np), 3);
    server_active_add(pool_find_server(op, "10.0.0.2:80"), -1);
    config_unref(next);
    config_unref(old);
}

/* Only between pools with the same `discover`. */
static void test_carry_needs_the_same_discover(void **state)
{
    (void)state;
    struct config *old = mb_config(discover_tcp);
    static const char *const one[] = { "10.0.0.1:80" };
    sync_set(old, one, NULL, 1, 100);

    struct config *other = mb_config("health = tcp\ndiscover = other.example.com:80\n"
                                     "server = s1 127.0.0.1:19001\n");
    assert_int_equal(membership_carry(&other->pools[0], &old->pools[0], 2), 0);
    assert_int_equal(pool_nservers(&other->pools[0]), 1);
    struct config *port = mb_config("health = tcp\ndiscover = backend.example.com:81\n"
                                    "server = s1 127.0.0.1:19001\n");
    assert_int_equal(membership_carry(&port->pools[0], &old->pools[0], 2), 0);
    struct config *none = mb_config("health = tcp\nserver = s1 127.0.0.1:19001\n");
    assert_int_equal(membership_carry(&none->pools[0], &old->pools[0], 2), 0);
    assert_int_equal(pool_nservers(&none->pools[0]), 1);
    /* and the other way: the old pool had no discover */
    struct config *same = mb_config(discover_tcp);
    assert_int_equal(membership_carry(&same->pools[0], &none->pools[0], 2), 0);
    assert_int_equal(membership_carry(&same->pools[0], &old->pools[0], 2), 1);
    /* again: it is there already */
    assert_int_equal(membership_carry(&same->pools[0], &old->pools[0], 2), 0);
    assert_int_equal(pool_nservers(&same->pools[0]), 2);
    config_unref(same);
    config_unref(none);
    config_unref(port);
    config_unref(other);
    config_unref(old);
}

/* ---- placement does not depend on the order of joining ----------------------------- */

static const char source_tcp[] =
    "scheduler = source\nhealth = tcp\ndiscover = backend.example.com:80\n"
    "server = s0 127.0.0.1:19000\n";

static const char *const join_order[][5] = {
    { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80" },
    { "10.0.0.5:80", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.4:80", "10.0.0.2:80" },
};

/* Two pools given the same five servers in another order (by add server,
 * or by discovery answers growing one address at a time), each server then
 * brought up as its first passed check would. Their slots differ. */
static void setup_two_pools(struct config **c1, struct config **c2, int by_sync)
{
    struct config *c[2] = { mb_config(source_tcp), mb_config(source_tcp) };
    for (int k = 0; k < 2; k++) {
        struct pool *p = &c[k]->pools[0];
        for (size_t i = 0; i < 5; i++) {
            if (by_sync) {
                /* one answer at a time, growing: the set so far */
                sync_set(c[k], join_order[k], NULL, i + 1, 100 + (double)i);
            } else {
                char name[16];
                snprintf(name, sizeof(name), "n%c", join_order[k][i][7]);
                add_ok(c[k], name, join_order[k][i], NULL, 100);
            }
        }
        for (uint32_t i = 0; i < pool_nservers(p); i++)
            pool_set_server_state(&p->servers[i], SERVER_UP);
    }
    /* the slots do differ */
    assert_string_not_equal(c[0]->pools[0].servers[1].name, c[1]->pools[0].servers[1].name);
    *c1 = c[0];
    *c2 = c[1];
}

static void assert_placed_alike(struct pool *a, struct pool *b, size_t nclients)
{
    for (uint32_t i = 0; i < nclients; i++) {
        const char *x = placed(a, i * 7919u), *y = placed(b, i * 7919u);
        if (strcmp(x, y) != 0)
            fail_msg("client %u: %s in one pool, %s in the other", i * 7919u, x, y);
    }
}

/* ... yet the mapping is the same, every client goes to the same server
 * by name, and every server has clients. */
static void test_mapping_ignores_join_order(void **state)
{
    (void)state;
    for (int by_sync = 0; by_sync < 2; by_sync++) {
        struct config *c1, *c2;
        setup_two_pools(&c1, &c2, by_sync);
        struct pool *a = &c1->pools[0], *b = &c2->pools[0];
        assert_int_equal(pool_mapping(a), pool_mapping(b));
        assert_placed_alike(a, b, 5000);
        /* every server gets clients */
        for (uint32_t i = 0; i < pool_nservers(a); i++) {
            const char *name = a->servers[i].name;
            size_t got = 0;
            for (uint32_t k = 0; k < 5000 && got == 0; k++)
                got += strcmp(placed(a, k * 7919u), name) == 0;
            if (got == 0)
                fail_msg("%s gets no client", name);
        }
        config_unref(c1);
        config_unref(c2);
    }
}

/* A server's state or weight is part of the mapping: one differing is
 * another mapping; put back, the same again. */
static void test_mapping_follows_state_and_weight(void **state)
{
    (void)state;
    struct config *c1, *c2;
    setup_two_pools(&c1, &c2, 1);
    struct pool *a = &c1->pools[0], *b = &c2->pools[0];
    uint64_t same = pool_mapping(a);
    assert_int_equal(pool_mapping(b), same);
    struct server *s = pool_find_server(b, "10.0.0.3:80");

    pool_set_server_state(s, SERVER_DRAIN);
    assert_int_not_equal(pool_mapping(b), same);
    pool_set_server_state(s, SERVER_UP);
    assert_int_equal(pool_mapping(b), same);

    pool_set_server_state(s, SERVER_DOWN);
    assert_int_not_equal(pool_mapping(b), same);
    pool_set_server_state(s, SERVER_UP);
    assert_int_equal(pool_mapping(b), same);

    assert_int_equal(pool_set_server_weight(s, 2), 0);
    assert_int_not_equal(pool_mapping(b), same);
    assert_int_equal(pool_set_server_weight(s, 1), 0);
    assert_int_equal(pool_mapping(b), same);
    assert_placed_alike(a, b, 2000);

    /* a removed server drops out of the mapping, back in when it returns */
    pool_set_server_state(s, SERVER_MAINT);
    char err[512];
    assert_int_equal(membership_del(NULL, b, "10.0.0.3:80", 200, err, sizeof(err)), 0);
    assert_int_not_equal(pool_mapping(b), same);
    sync_set(c2, join_order[1], NULL, 5, 300);
    pool_set_server_state(pool_find_server(b, "10.0.0.3:80"), SERVER_UP);
    assert_int_equal(pool_mapping(b), same);
    config_unref(c1);
    config_unref(c2);
}

/* A server up at once (health = none) is in the scheduler's table at
 * once: membership_fill() lists the slot (nservers, or `removed` cleared
 * for a slot taken again) before the rebuild that pool_server_published()
 * asks for; roundrobin, random2 and source rebuild from the listed slots
 * and no state change follows to rebuild again. (Before edc8136 it
 * published after the rebuild: the server got nothing, and two pools that
 * got the same servers in another order had other Maglev tables.) */
static void test_added_up_server_is_in_the_schedulers_table(void **state)
{
    (void)state;
    static const char *const schedulers[] = { "roundrobin", "random2", "source" };
    for (size_t k = 0; k < sizeof(schedulers) / sizeof(schedulers[0]); k++) {
        char keys[256];
        snprintf(keys, sizeof(keys), "scheduler = %s\nhealth = none\n"
                 "server = s0 127.0.0.1:19000\n", schedulers[k]);
        struct config *c = mb_config(keys);
        struct pool *p = &c->pools[0];
        struct server *n1 = add_ok(c, "n1", "10.0.0.1:80", NULL, 100);
        assert_true(server_available(n1));
        size_t got = 0;
        for (uint32_t i = 0; i < 1000; i++) {
            struct client_key key;
            key_v4(i, &key);
            struct sched_request req = { .key = &key, .now = 1000,
                                         .random = (uint64_t)i * 0x9e3779b97f4a7c15ULL };
            got += sched_pick(p, &req) == n1;
        }
        if (got == 0)
            fail_msg("%s: an added server that is up got none of 1000 picks",
                     schedulers[k]);
        /* taken again after del: the same */
        pool_set_server_state(n1, SERVER_MAINT);
        char err[512];
        assert_int_equal(del(c, "n1", 200, err, sizeof(err)), 0);
        assert_ptr_equal(add_ok(c, "n1", "10.0.0.1:80", NULL, 201), n1);
        got = 0;
        for (uint32_t i = 0; i < 1000; i++) {
            struct client_key key;
            key_v4(i, &key);
            struct sched_request req = { .key = &key, .now = 1000,
                                         .random = (uint64_t)i * 0x9e3779b97f4a7c15ULL };
            got += sched_pick(p, &req) == n1;
        }
        if (got == 0)
            fail_msg("%s: a server added again that is up got none of 1000 picks",
                     schedulers[k]);
        config_unref(c);
    }

    /* and so the join order shows in source's mapping */
    struct config *c1 = mb_config("scheduler = source\nhealth = none\n"
                                  "server = s0 127.0.0.1:19000\n");
    struct config *c2 = mb_config("scheduler = source\nhealth = none\n"
                                  "server = s0 127.0.0.1:19000\n");
    add_ok(c1, "a", "10.0.0.1:80", NULL, 100);
    add_ok(c1, "b", "10.0.0.2:80", NULL, 100);
    add_ok(c2, "b", "10.0.0.2:80", NULL, 100);
    add_ok(c2, "a", "10.0.0.1:80", NULL, 100);
    assert_int_equal(pool_mapping(&c1->pools[0]), pool_mapping(&c2->pools[0]));
    assert_placed_alike(&c1->pools[0], &c2->pools[0], 2000);
    config_unref(c1);
    config_unref(c2);
}

/* The same on reload, whatever the health checks: membership_carry()
 * fills each slot with the old server's state (up) through the same
 * membership_fill(); the last one carried must be in the new pool's table
 * too, with nothing changing after. */
static void test_carried_servers_are_in_the_schedulers_table(void **state)
{
    (void)state;
    static const char keys[] = "scheduler = roundrobin\nhealth = tcp\n"
                               "discover = backend.example.com:80\n"
                               "server = s0 127.0.0.1:19000\n";
    struct config *old = mb_config(keys);
    static const char *const three[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80" };
    sync_set(old, three, NULL, 3, 100);
    for (uint32_t i = 0; i < pool_nservers(&old->pools[0]); i++)
        pool_set_server_state(&old->pools[0].servers[i], SERVER_UP);
    struct config *next = mb_config(keys);
    struct pool *np = &next->pools[0];
    assert_int_equal(membership_carry(np, &old->pools[0], 2), 3);
    for (size_t k = 0; k < 3; k++) {
        struct server *s = pool_find_server(np, three[k]);
        assert_int_equal(server_state(s), SERVER_UP);
        size_t got = 0;
        for (int i = 0; i < 8; i++) {
            struct sched_request req = { .now = 1000 };
            got += sched_pick(np, &req) == s;
        }
        if (got == 0)
            fail_msg("carried %s, up, got none of 8 round robin picks", three[k]);
    }
    config_unref(next);
    config_unref(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_publishes_the_next_slot),
        cmocka_unit_test(test_add_with_health_none_is_up_at_once),
        cmocka_unit_test(test_add_ipv6_address),
        cmocka_unit_test(test_add_refuses_a_duplicate_name),
        cmocka_unit_test(test_add_refuses_a_hostname),
        cmocka_unit_test(test_add_refuses_a_bad_option),
        cmocka_unit_test(test_add_refuses_a_bad_name),
        cmocka_unit_test(test_add_when_full_answers_no_room),
        cmocka_unit_test(test_del_needs_maint_and_no_connection),
        cmocka_unit_test(test_del_unknown_name),
        cmocka_unit_test(test_readd_same_name_takes_its_slot_back),
        cmocka_unit_test(test_other_name_waits_for_the_reuse_time),
        cmocka_unit_test(test_removed_slot_with_connection_not_reused),
        cmocka_unit_test(test_sync_adds_new_addresses),
        cmocka_unit_test(test_sync_is_idempotent),
        cmocka_unit_test(test_sync_missing_server_removed_when_empty),
        cmocka_unit_test(test_sync_missing_server_leaves_while_busy),
        cmocka_unit_test(test_sync_back_before_reap_clears_leaving),
        cmocka_unit_test(test_sync_back_after_removal_takes_its_slot),
        cmocka_unit_test(test_sync_applies_weight_change),
        cmocka_unit_test(test_sync_leaves_config_and_socket_servers),
        cmocka_unit_test(test_sync_when_full_adds_what_fits),
        cmocka_unit_test(test_carry_copies_discovered_servers),
        cmocka_unit_test(test_carry_needs_the_same_discover),
        cmocka_unit_test(test_mapping_ignores_join_order),
        cmocka_unit_test(test_mapping_follows_state_and_weight),
        cmocka_unit_test(test_added_up_server_is_in_the_schedulers_table),
        cmocka_unit_test(test_carried_servers_are_in_the_schedulers_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
