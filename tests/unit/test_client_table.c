/* test_client_table.c — client_table.c: the stick table (placed, sticky,
 * peek, expiry with an injected clock), the bound on its size with least
 * recently used eviction over the whole table, the `show clients` counts
 * (total, active, top N, clear), and IPv4-mapped clients finding their
 * IPv4 entry (the keys themselves: test_client_key.c). Eviction follows last use times, so
 * every test here advances its clock between uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/un.h>
#include <cmocka.h>

#include "client_table.h"
#include "util.h"

#define FOREVER 1e12

/* ---- helpers ------------------------------------------------------------------ */

/* Client number i as the IPv4 key 10.x.y.z. */
static struct client_key key_n(uint32_t i)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(0x0a000000u | (i & 0xffffffu));
    struct client_key k;
    client_key_from_addr((const struct sockaddr *)&sin, &k);
    return k;
}

static int present(struct client_table *t, const struct client_key *k)
{
    uint32_t server;
    return client_table_peek(t, k, 0, FOREVER, &server);
}

/* The stats of <k>, through client_table_top(). 1 = found. */
static int stat_of(struct client_table *t, const struct client_key *k,
                   struct client_stat *out)
{
    size_t n = client_table_size(t);
    struct client_stat *all = calloc(n ? n : 1, sizeof(*all));
    assert_non_null(all);
    size_t got = client_table_top(t, all, n);
    int found = 0;
    for (size_t i = 0; i < got; i++)
        if (client_key_equal(&all[i].key, k)) {
            *out = all[i];
            found = 1;
        }
    free(all);
    return found;
}

/* ---- stick table: placed, sticky, expiry ------------------------------------------ */

static void test_unknown_client_is_not_sticky(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    assert_non_null(t);
    struct client_key k = key_n(1);
    uint32_t server = 77;
    assert_int_equal(client_table_sticky(t, &k, 10, 60, &server), 0);
    assert_int_equal(server, 77);
    assert_int_equal(client_table_size(t), 0);
    client_table_free(t);
}

static void test_sticky_within_timeout_not_after(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key k = key_n(1);
    uint32_t server = CLIENT_NONE;
    client_table_placed(t, &k, 2, 100.0, 0);
    assert_int_equal(client_table_peek(t, &k, 100.0, 10, &server), 1);
    assert_int_equal(server, 2);
    assert_int_equal(client_table_peek(t, &k, 109.999, 10, &server), 1);
    /* "less than <timeout> seconds before <now>": 10 s old is expired */
    assert_int_equal(client_table_peek(t, &k, 110.0, 10, &server), 0);
    assert_int_equal(client_table_sticky(t, &k, 110.5, 10, &server), 0);
    assert_int_equal(client_table_sticky(t, &k, 5000, 10, &server), 0);
    /* expired is not forgotten: the counts stay for `show clients` */
    assert_int_equal(client_table_size(t), 1);
    client_table_free(t);
}

static void test_sticky_refreshes_last_use(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key k = key_n(1);
    uint32_t server;
    client_table_placed(t, &k, 3, 0.0, 0);
    /* seen every 0.9 x timeout: never expires */
    double now = 0.0;
    for (int i = 0; i < 1000; i++) {
        now += 9.0;
        server = CLIENT_NONE;
        assert_int_equal(client_table_sticky(t, &k, now, 10, &server), 1);
        assert_int_equal(server, 3);
    }
    /* and then 10 s of silence expires it */
    assert_int_equal(client_table_sticky(t, &k, now + 10.0, 10, &server), 0);
    client_table_free(t);
}

static void test_peek_does_not_refresh(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key k = key_n(1);
    uint32_t server;
    client_table_placed(t, &k, 0, 0.0, 0);
    assert_int_equal(client_table_peek(t, &k, 9.0, 10, &server), 1);
    assert_int_equal(client_table_peek(t, &k, 18.0, 10, &server), 0);
    client_table_free(t);
}

static void test_placed_again_moves_and_refreshes(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key k = key_n(1);
    uint32_t server;
    client_table_placed(t, &k, 1, 0.0, 0);
    client_table_placed(t, &k, 4, 8.0, 0);
    assert_int_equal(client_table_sticky(t, &k, 17.0, 10, &server), 1);
    assert_int_equal(server, 4);
    struct client_stat st;
    assert_true(stat_of(t, &k, &st));
    assert_int_equal(st.total, 2);
    assert_int_equal(st.active, 2);
    assert_int_equal(st.server, 4);
    assert_int_equal(client_table_size(t), 1);
    client_table_free(t);
}

static void test_unknown_key_is_ignored(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key none;
    client_key_from_addr(NULL, &none);
    assert_int_equal(none.len, 0);
    uint32_t server;
    client_table_placed(t, &none, 1, 0.0, 0);
    client_table_ended(t, &none);
    assert_int_equal(client_table_sticky(t, &none, 0.0, 10, &server), 0);
    assert_int_equal(client_table_size(t), 0);
    client_table_free(t);
    client_table_free(NULL);
}

/* ---- bounded size and eviction ------------------------------------------------------ */

static void test_size_never_exceeds_capacity(void **state)
{
    (void)state;
    static const size_t capacities[] = { 1, 2, 31, 33, 64, 100, 1000 };
    for (size_t c = 0; c < ARRAY_LEN(capacities); c++) {
        struct client_table *t = client_table_new(capacities[c]);
        assert_non_null(t);
        size_t max = 0;
        for (uint32_t i = 0; i < 5000; i++) {
            struct client_key k = key_n(i);
            client_table_placed(t, &k, i % 5, i, 0);
            size_t n = client_table_size(t);
            if (n > capacities[c])
                fail_msg("capacity %zu: %zu entries after %u clients",
                         capacities[c], n, i + 1);
            if (n > max)
                max = n;
            /* the entry just placed is there */
            assert_true(present(t, &k));
        }
        /* and the table does fill up to its capacity */
        assert_int_equal(max, capacities[c]);
        client_table_free(t);
    }
    /* capacity 0 still remembers one client */
    struct client_table *t = client_table_new(0);
    struct client_key a = key_n(1), b = key_n(2);
    client_table_placed(t, &a, 0, 1, 0);
    client_table_placed(t, &b, 0, 2, 0);
    assert_int_equal(client_table_size(t), 1);
    assert_true(present(t, &b));
    client_table_free(t);
}

/* A client looked up between every placement survives 10,000 newcomers; one
 * placed at the same time and never looked up again is evicted. */
static void test_recently_used_client_survives_a_flood(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key hot = key_n(0xabcdef), cold = key_n(0xabcdee);
    uint32_t server;
    client_table_placed(t, &hot, 1, 0, 0);
    client_table_placed(t, &cold, 2, 0, 0);
    for (uint32_t i = 0; i < 10000; i++) {
        struct client_key k = key_n(i);
        client_table_placed(t, &k, 0, 1 + i, 0);
        assert_int_equal(client_table_sticky(t, &hot, 1 + i, FOREVER, &server), 1);
        assert_int_equal(server, 1);
    }
    assert_false(present(t, &cold));
    client_table_free(t);
}

/* Capacity 64, clients 0..63 placed at t = 0..63: the next newcomer evicts
 * the least recently used one, which a look-up (not a peek) refreshes. */
static void test_least_recently_used_is_evicted(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    uint32_t server;
    for (uint32_t i = 0; i < 64; i++) {
        struct client_key k = key_n(i);
        client_table_placed(t, &k, 0, i, 0);
    }
    struct client_key k0 = key_n(0), k1 = key_n(1), k2 = key_n(2), k3 = key_n(3);
    assert_int_equal(client_table_sticky(t, &k0, 64, FOREVER, &server), 1);
    struct client_key n1 = key_n(1000);
    client_table_placed(t, &n1, 0, 65, 0);
    assert_true(present(t, &k0));
    assert_false(present(t, &k1));
    assert_true(present(t, &k2));
    assert_int_equal(client_table_size(t), 64);

    /* placed again counts as a use too */
    client_table_placed(t, &k2, 1, 66, 0);
    struct client_key n2 = key_n(1001);
    client_table_placed(t, &n2, 0, 67, 0);
    assert_true(present(t, &k2));
    assert_false(present(t, &k3));

    /* peek only looks: client 4 is next to go whatever */
    struct client_key k4 = key_n(4), k5 = key_n(5);
    assert_int_equal(client_table_peek(t, &k4, 68, FOREVER, &server), 1);
    struct client_key n3 = key_n(1002);
    client_table_placed(t, &n3, 0, 69, 0);
    assert_false(present(t, &k4));
    assert_true(present(t, &k5));
    client_table_free(t);
}

/* A model of a single LRU list of 64 against the table over a long random
 * mix of placements and look-ups (the clock advancing at each): the clients
 * present are exactly the model's at every check. */
static void test_eviction_matches_an_lru_model(void **state)
{
    (void)state;
    enum { CAP = 64, KEYS = 400, STEPS = 20000 };
    struct client_table *t = client_table_new(CAP);
    double last_use[KEYS];
    int in[KEYS];
    size_t count = 0;
    memset(in, 0, sizeof(in));
    uint64_t x = 0x1234567;
    for (int step = 0; step < STEPS; step++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        uint64_t r = x * 0x2545f4914f6cdd1dULL;
        uint32_t id = (uint32_t)(r % KEYS);
        int look = (r >> 32) % 3 == 0;
        struct client_key k = key_n(id);
        double now = step;
        uint32_t server;
        if (look) {
            int found = client_table_sticky(t, &k, now, FOREVER, &server);
            assert_int_equal(found, in[id]);
            if (found)
                last_use[id] = now;
            continue;
        }
        client_table_placed(t, &k, id % 7, now, 0);
        if (!in[id]) {
            if (count == CAP) {          /* the model evicts its oldest */
                int oldest = -1;
                for (int i = 0; i < KEYS; i++)
                    if (in[i] && (oldest == -1 || last_use[i] < last_use[oldest]))
                        oldest = i;
                in[oldest] = 0;
                count--;
            }
            in[id] = 1;
            count++;
        }
        last_use[id] = now;

        if (step % 97 == 0 || step == STEPS - 1) {
            for (uint32_t i = 0; i < KEYS; i++) {
                struct client_key ki = key_n(i);
                if (present(t, &ki) != in[i])
                    fail_msg("step %d: client %u present %d, model %d", step, i,
                             !in[i], in[i]);
            }
            assert_int_equal(client_table_size(t), count);
        }
    }
    client_table_free(t);
}

/* ---- counts: active, total, top, clear ----------------------------------------------- */

static void test_active_counts_up_and_down_never_below_zero(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key k = key_n(9);
    struct client_stat st;
    for (int i = 1; i <= 3; i++) {
        client_table_placed(t, &k, 0, i, 0);
        assert_true(stat_of(t, &k, &st));
        assert_int_equal(st.active, i);
        assert_int_equal(st.total, (uint64_t)i);
    }
    for (int i = 2; i >= -2; i--) {
        client_table_ended(t, &k);
        assert_true(stat_of(t, &k, &st));
        assert_int_equal(st.active, i > 0 ? i : 0);
    }
    assert_int_equal(st.total, 3);
    /* ended() of a client never seen is harmless and adds nothing */
    struct client_key other = key_n(10);
    client_table_ended(t, &other);
    assert_int_equal(client_table_size(t), 1);
    client_table_free(t);
}

static void test_top_lists_busiest_first(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(1024);
    static const unsigned totals[] = { 5, 3, 3, 1, 7, 0, 2 };
    for (uint32_t i = 0; i < ARRAY_LEN(totals); i++) {
        struct client_key k = key_n(i);
        for (unsigned n = 0; n < totals[i]; n++)
            client_table_placed(t, &k, i, n, 0);
    }
    struct client_stat out[16];
    memset(out, 0xee, sizeof(out));
    assert_int_equal(client_table_top(t, out, 3), 3);
    assert_int_equal(out[0].total, 7);
    assert_int_equal(out[1].total, 5);
    assert_int_equal(out[2].total, 3);     /* either of the two with 3 */
    struct client_key k4 = key_n(4);
    assert_true(client_key_equal(&out[0].key, &k4));
    assert_int_equal(out[0].server, 4);
    assert_int_equal(out[0].active, 7);
    /* nothing is written past n */
    assert_int_equal(out[3].total, 0xeeeeeeeeeeeeeeeeULL);

    /* asking for more than there is: everyone (6 placed at least once) */
    assert_int_equal(client_table_top(t, out, 16), 6);
    for (size_t i = 1; i < 6; i++)
        assert_true(out[i - 1].total >= out[i].total);
    assert_int_equal(out[5].total, 1);
    assert_int_equal(client_table_top(t, out, 0), 0);
    client_table_free(t);
}

/* Top N of many clients equals the N largest totals (ties in any order). */
static void test_top_n_of_many_is_the_n_largest(void **state)
{
    (void)state;
    enum { N = 500, TOP = 25 };
    struct client_table *t = client_table_new(4096);
    unsigned hist[64] = { 0 };
    for (uint32_t i = 0; i < N; i++) {
        unsigned total = 1 + (i * 37) % 50;
        hist[total]++;
        struct client_key k = key_n(i * 7919);
        for (unsigned n = 0; n < total; n++)
            client_table_placed(t, &k, 0, n, 0);
    }
    struct client_stat out[TOP];
    assert_int_equal(client_table_top(t, out, TOP), TOP);
    /* expected: walk the histogram down from the top */
    size_t i = 0;
    for (int total = 63; total > 0 && i < TOP; total--)
        for (unsigned n = 0; n < hist[total] && i < TOP; n++, i++)
            assert_int_equal(out[i].total, (uint64_t)total);
    client_table_free(t);
}

static void test_clear_zeroes_totals_not_actives(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key a = key_n(1), b = key_n(2);
    uint32_t server;
    client_table_placed(t, &a, 0, 1, 0);
    client_table_placed(t, &a, 0, 2, 0);
    client_table_placed(t, &b, 1, 3, 0);
    client_table_ended(t, &b);
    client_table_clear(t);
    struct client_stat st;
    assert_true(stat_of(t, &a, &st));
    assert_int_equal(st.total, 0);
    assert_int_equal(st.active, 2);
    assert_true(stat_of(t, &b, &st));
    assert_int_equal(st.total, 0);
    assert_int_equal(st.active, 0);
    /* entries and stickiness stay */
    assert_int_equal(client_table_size(t), 2);
    assert_int_equal(client_table_sticky(t, &b, 4, 10, &server), 1);
    assert_int_equal(server, 1);
    /* counting starts again */
    client_table_placed(t, &a, 0, 5, 0);
    assert_true(stat_of(t, &a, &st));
    assert_int_equal(st.total, 1);
    assert_int_equal(st.active, 3);
    client_table_free(t);
}

/* A connection's client evicted while it was open: its end is harmless, and
 * a fresh entry for the same client counts from zero. */
static void test_ended_after_eviction_is_harmless(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(32);
    struct client_key a = key_n(0xfedcba);
    client_table_placed(t, &a, 3, 0, 0);
    for (uint32_t i = 0; i < 5000 && present(t, &a); i++) {
        struct client_key k = key_n(i);
        client_table_placed(t, &k, 0, 1 + i, 0);
    }
    assert_false(present(t, &a));
    size_t size = client_table_size(t);
    client_table_ended(t, &a);
    client_table_ended(t, &a);
    assert_int_equal(client_table_size(t), size);

    client_table_placed(t, &a, 1, 9999, 0);
    struct client_stat st;
    assert_true(stat_of(t, &a, &st));
    assert_int_equal(st.total, 1);
    assert_int_equal(st.active, 1);
    assert_int_equal(st.server, 1);
    client_table_ended(t, &a);
    client_table_ended(t, &a);
    assert_true(stat_of(t, &a, &st));
    assert_int_equal(st.active, 0);
    client_table_free(t);
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_ipv4_ipv6_and_mapped_keys_in_the_table(void **state)
{
    (void)state;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1) };
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(2) };
    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6, .sin6_port = htons(3) };
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &mapped.sin6_addr);

    struct client_key k4, k6, km;
    client_key_from_addr((const struct sockaddr *)&sin, &k4);
    client_key_from_addr((const struct sockaddr *)&sin6, &k6);
    client_key_from_addr((const struct sockaddr *)&mapped, &km);

    /* in the table: mapped finds plain, v6 is its own entry */
    struct client_table *t = client_table_new(64);
    uint32_t server = CLIENT_NONE;
    client_table_placed(t, &k4, 5, 0, 0);
    assert_int_equal(client_table_sticky(t, &km, 1, 10, &server), 1);
    assert_int_equal(server, 5);
    assert_int_equal(client_table_sticky(t, &k6, 1, 10, &server), 0);
    client_table_placed(t, &k6, 6, 1, 0);
    assert_int_equal(client_table_sticky(t, &k6, 2, 10, &server), 1);
    assert_int_equal(server, 6);
    assert_int_equal(client_table_size(t), 2);
    /* an IPv6 key sharing its first 4 bytes with an IPv4 one is another key */
    struct client_key k6b = { .len = 16 };
    memcpy(k6b.bytes, k4.bytes, 4);
    assert_int_equal(client_table_sticky(t, &k6b, 2, 10, &server), 0);
    client_table_free(t);
}

/* ---- threads -------------------------------------------------------------------------- */

struct churn_arg {
    struct client_table *t;
    uint32_t seed;
};

static void *churn_thread(void *arg)
{
    struct churn_arg *a = arg;
    uint32_t x = a->seed;
    uint32_t server;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        struct client_key k = key_n((x >> 16) % 200);
        client_table_placed(a->t, &k, x % 4, i, 0);
        (void)client_table_sticky(a->t, &k, i, FOREVER, &server);
        client_table_ended(a->t, &k);
    }
    return NULL;
}

/* Four threads placing and ending on 200 shared clients (no eviction): every
 * connection is counted once and every active count returns to zero. */
static void test_concurrent_place_and_end_keep_counts(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(1024);
    pthread_t th[4];
    struct churn_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct churn_arg){ t, 17u + (uint32_t)i };
        assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct client_stat out[256];
    size_t n = client_table_top(t, out, 256);
    assert_true(n <= 200);
    assert_int_equal(n, client_table_size(t));
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += out[i].total;
        assert_int_equal(out[i].active, 0);
    }
    assert_int_equal(total, 4 * 20000);
    client_table_free(t);
}

struct flood_arg {
    struct client_table *t;
    uint32_t base;
    size_t max_seen;
};

static void *flood_thread(void *arg)
{
    struct flood_arg *a = arg;
    for (uint32_t i = 0; i < 25000; i++) {
        struct client_key k = key_n(a->base + i);
        client_table_placed(a->t, &k, 0, i, 0);
        size_t n = client_table_size(a->t);
        if (n > a->max_seen)
            a->max_seen = n;
    }
    return NULL;
}

/* BUG (reported, client_table.c:274-290 since bcec76f): four workers placing
 * new clients into a full table of 64. A newcomer checks the count, evicts
 * only if it is at capacity, and adds itself afterwards; two newcomers that
 * both see 63 both add, and client_evict_oldest() gives up (returns NULL)
 * after 4 contended attempts, so every race leaves one more entry for good:
 * the table grows past persist_max for good (85-150 entries for 64 in this
 * test on a 2-CPU VM; 250-380 with 300,000 newcomers per thread). Fix:
 * reserve the slot first (atomic add), then evict while the count is above
 * capacity. The transient bound asserted is capacity + threads. */
static void test_concurrent_newcomers_keep_the_capacity(void **state)
{
    (void)state;
    enum { CAP = 64, THREADS = 4 };
    struct client_table *t = client_table_new(CAP);
    pthread_t th[THREADS];
    struct flood_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct flood_arg){ t, 0x100000u * (uint32_t)(i + 1), 0 };
        assert_int_equal(pthread_create(&th[i], NULL, flood_thread, &args[i]), 0);
    }
    size_t max_seen = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].max_seen > max_seen)
            max_seen = args[i].max_seen;
    }
    size_t final = client_table_size(t);
    struct client_stat out[1024];
    size_t entries = client_table_top(t, out, 1024);
    print_message("client table capacity %d, %d threads x 25000 newcomers: %zu "
                  "entries at the end, at most %zu seen\n", CAP, THREADS, entries,
                  max_seen);
    client_table_free(t);   /* before a failure: no leak for the sanitizers */
    assert_int_equal(entries, final);
    assert_true(final <= CAP);
    assert_true(max_seen <= CAP + THREADS);
}

/* The last minute's connections per client: placed ones count in their
 * 10-second slot, older than the window drop out, busiest first, clients
 * with none left out; a copy (reload) keeps the window. */
static void test_top_recent_counts_the_last_minute(void **state)
{
    (void)state;
    struct client_table *t = client_table_new(64);
    struct client_key a = key_n(1), b = key_n(2), c = key_n(3);
    const double t0 = 100000;
    for (int i = 0; i < 5; i++)
        client_table_placed(t, &a, 0, t0 + i, 0);          /* 5 now */
    for (int i = 0; i < 3; i++)
        client_table_placed(t, &b, 1, t0 - 100 + i, 0);    /* 3, long ago */
    client_table_placed(t, &b, 1, t0, 0);                  /* and 1 now */
    client_table_placed(t, &c, 2, t0 - 200, 0);            /* only long ago */
    struct client_stat top[4];
    size_t n = client_table_top_recent(t, top, 4, t0 + 5);
    assert_int_equal(n, 2);
    assert_true(client_key_equal(&top[0].key, &a));
    assert_int_equal(top[0].recent, 5);
    assert_true(client_key_equal(&top[1].key, &b));
    assert_int_equal(top[1].recent, 1);
    assert_int_equal(top[1].total, 4);
    /* 80 s later nothing is recent */
    assert_int_equal(client_table_top_recent(t, top, 4, t0 + 80), 0);
    /* a copy keeps the window; moved_in counts an open connection only */
    struct client_table *u = client_table_new(64);
    uint32_t map[3] = { 0, 1, 2 };
    client_table_copy(t, u, map, 3);
    n = client_table_top_recent(u, top, 4, t0 + 5);
    assert_int_equal(n, 2);
    assert_int_equal(top[0].recent, 5);
    assert_int_equal(top[0].active, 0);
    client_table_moved_in(u, &a);
    client_table_top_recent(u, top, 1, t0 + 5);
    assert_int_equal(top[0].active, 1);
    assert_int_equal(top[0].total, 5);
    client_table_free(t);
    client_table_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_client_is_not_sticky),
        cmocka_unit_test(test_sticky_within_timeout_not_after),
        cmocka_unit_test(test_sticky_refreshes_last_use),
        cmocka_unit_test(test_peek_does_not_refresh),
        cmocka_unit_test(test_placed_again_moves_and_refreshes),
        cmocka_unit_test(test_unknown_key_is_ignored),
        cmocka_unit_test(test_size_never_exceeds_capacity),
        cmocka_unit_test(test_recently_used_client_survives_a_flood),
        cmocka_unit_test(test_least_recently_used_is_evicted),
        cmocka_unit_test(test_eviction_matches_an_lru_model),
        cmocka_unit_test(test_active_counts_up_and_down_never_below_zero),
        cmocka_unit_test(test_top_lists_busiest_first),
        cmocka_unit_test(test_top_n_of_many_is_the_n_largest),
        cmocka_unit_test(test_clear_zeroes_totals_not_actives),
        cmocka_unit_test(test_ended_after_eviction_is_harmless),
        cmocka_unit_test(test_ipv4_ipv6_and_mapped_keys_in_the_table),
        cmocka_unit_test(test_concurrent_place_and_end_keep_counts),
        cmocka_unit_test(test_concurrent_newcomers_keep_the_capacity),
        cmocka_unit_test(test_top_recent_counts_the_last_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
