/* test_client_key.c — client_key.c: keys from socket addresses (IPv4, IPv6,
 * IPv4-mapped IPv6 as its IPv4 client, ports ignored, other families
 * unknown), back to addresses, text round trips, refusals, equality, and a
 * hash that sees a mapped client as its IPv4 self. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "client_key.h"
#include "util.h"

static void test_keys_from_addresses(void **state)
{
    (void)state;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1) };
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(2) };
    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6, .sin6_port = htons(3) };
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &mapped.sin6_addr);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    struct client_key k4, k6, km, ku, kn;
    client_key_from_addr((const struct sockaddr *)&sin, &k4);
    client_key_from_addr((const struct sockaddr *)&sin6, &k6);
    client_key_from_addr((const struct sockaddr *)&mapped, &km);
    client_key_from_addr((const struct sockaddr *)&sun, &ku);
    client_key_from_addr(NULL, &kn);
    assert_int_equal(k4.len, 4);
    static const uint8_t want4[4] = { 192, 0, 2, 7 };
    assert_memory_equal(k4.bytes, want4, 4);
    assert_int_equal(k6.len, 16);
    assert_memory_equal(k6.bytes, sin6.sin6_addr.s6_addr, 16);
    assert_true(client_key_equal(&km, &k4));
    assert_false(client_key_equal(&k6, &k4));
    assert_int_equal(ku.len, 0);
    assert_int_equal(kn.len, 0);

    struct sockaddr_in other_port = sin;
    other_port.sin_port = htons(999);
    struct client_key kp;
    client_key_from_addr((const struct sockaddr *)&other_port, &kp);
    assert_true(client_key_equal(&kp, &k4));

    /* an IPv6 key sharing its first 4 bytes with an IPv4 one differs */
    struct client_key k6b = { .len = 16 };
    memcpy(k6b.bytes, k4.bytes, 4);
    assert_false(client_key_equal(&k6b, &k4));
}

static void test_keys_back_to_addresses(void **state)
{
    (void)state;
    static const char *const ips[] = { "10.1.2.3", "2001:db8::9", "::ffff:10.9.8.7" };
    for (size_t i = 0; i < ARRAY_LEN(ips); i++) {
        struct client_key k, again;
        assert_int_equal(client_key_parse(ips[i], &k), 0);
        struct sockaddr_storage ss;
        socklen_t len = client_key_to_addr(&k, &ss);
        assert_int_equal(len, k.len == 4 ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6));
        client_key_from_addr((const struct sockaddr *)&ss, &again);
        assert_true(client_key_equal(&k, &again));
    }
    struct client_key none = { .len = 0 };
    struct sockaddr_storage ss;
    assert_int_equal(client_key_to_addr(&none, &ss), 0);
}

static void test_key_parse_and_str_round_trip(void **state)
{
    (void)state;
    static const struct { const char *in, *out; int len; } cases[] = {
        { "192.0.2.1", "192.0.2.1", 4 },
        { "0.0.0.0", "0.0.0.0", 4 },
        { "255.255.255.255", "255.255.255.255", 4 },
        { "2001:db8::1", "2001:db8::1", 16 },
        { "2001:0DB8:0000::0001", "2001:db8::1", 16 },
        { "::1", "::1", 16 },
        { "::", "::", 16 },
        { "fe80::1:2:3:4", "fe80::1:2:3:4", 16 },
        { "::ffff:10.1.2.3", "10.1.2.3", 4 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct client_key k, again;
        char buf[64];
        assert_int_equal(client_key_parse(cases[i].in, &k), 0);
        assert_int_equal(k.len, cases[i].len);
        assert_string_equal(client_key_str(&k, buf, sizeof(buf)), cases[i].out);
        assert_int_equal(client_key_parse(buf, &again), 0);
        assert_true(client_key_equal(&k, &again));
    }
    static const char *const bad[] = {
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "hello", "1.2.3.4:80",
        "[::1]", "2001:db8::1::2", "::1/128", " 1.2.3.4",
    };
    struct client_key k;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (client_key_parse(bad[i], &k) != -1)
            fail_msg("'%s' parsed", bad[i]);
    assert_int_equal(k.len, 0);

    char buf[8] = "xyz";
    struct client_key none = { .len = 0 };
    assert_string_equal(client_key_str(&none, buf, sizeof(buf)), "");
}

static void test_hash_sees_mapped_as_ipv4(void **state)
{
    (void)state;
    struct client_key plain, mapped, other;
    assert_int_equal(client_key_parse("10.0.0.1", &plain), 0);
    assert_int_equal(client_key_parse("::ffff:10.0.0.1", &mapped), 0);
    assert_int_equal(client_key_parse("10.0.0.2", &other), 0);
    assert_int_equal(client_key_hash(&plain, 7), client_key_hash(&mapped, 7));
    assert_true(client_key_hash(&plain, 7) != client_key_hash(&other, 7));
    assert_true(client_key_hash(&plain, 7) != client_key_hash(&plain, 8));
    /* fixed: two tcplb processes hash a client the same way */
    assert_int_equal(client_key_hash(&plain, 0x636c6965ULL), 0xff61d5b0ff54d063ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_from_addresses),
        cmocka_unit_test(test_keys_back_to_addresses),
        cmocka_unit_test(test_key_parse_and_str_round_trip),
        cmocka_unit_test(test_hash_sees_mapped_as_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
