/* test_skewload_addr.c — tools/skewload addr.c: the client address plan
 * (127.0.0.2 .. 127.0.0.254, then 127.0.1.2 ...), its bounds, target
 * parsing and the loopback test behind --allow-remote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "addr.h"

static struct in_addr ip(const char *text)
{
    struct in_addr a;

    assert_int_equal(inet_pton(AF_INET, text, &a), 1);
    return a;
}

static void assert_client(const char *base, size_t i, const char *want)
{
    char buf[INET_ADDRSTRLEN];

    addr_str(addr_client(ip(base), i), buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("client %zu from %s: %s, expected %s", i, base, buf, want);
}

static void test_client_plan(void **state)
{
    (void)state;
    assert_client("127.0.0.2", 0, "127.0.0.2");
    assert_client("127.0.0.2", 1, "127.0.0.3");
    assert_client("127.0.0.2", 252, "127.0.0.254");
    assert_client("127.0.0.2", 253, "127.0.1.2");
    assert_client("127.0.0.2", 254, "127.0.1.3");
    assert_client("127.0.0.2", 506, "127.0.2.2");
    assert_client("127.0.0.2", 65535, "127.1.3.10");
    assert_client("127.0.0.250", 5, "127.0.1.2");
    assert_client("127.5.6.7", 0, "127.5.6.7");
}

static void test_client_plan_never_uses_0_1_or_255(void **state)
{
    char buf[INET_ADDRSTRLEN];

    (void)state;
    for (size_t i = 0; i < 5000; i++) {
        struct in_addr a = addr_client(ip("127.0.0.2"), i);
        unsigned last = ntohl(a.s_addr) & 0xff;
        if (last < 2 || last > 254)
            fail_msg("client %zu is %s", i, addr_str(a, buf, sizeof buf));
    }
}

static void test_client_bounds(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(addr_check_clients(ip("127.0.0.2"), 65536, err, sizeof err), 0);
    assert_int_equal(addr_check_clients(ip("127.0.0.1"), 1, err, sizeof err), -1);
    assert_int_equal(addr_check_clients(ip("127.0.0.255"), 1, err, sizeof err), -1);
    assert_int_equal(addr_check_clients(ip("127.255.255.254"), 1, err, sizeof err), 0);
    assert_int_equal(addr_check_clients(ip("127.255.255.254"), 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "127.0.0.0/8"));
}

static void test_target_and_loopback(void **state)
{
    struct sockaddr_in sin;
    char err[256];

    (void)state;
    assert_int_equal(addr_parse_target("127.0.0.1:8080", &sin, err, sizeof err), 0);
    assert_int_equal(ntohs(sin.sin_port), 8080);
    assert_true(addr_is_loopback(sin.sin_addr));
    assert_int_equal(addr_parse_target("localhost:1", &sin, err, sizeof err), 0);
    assert_true(addr_is_loopback(sin.sin_addr));
    assert_int_equal(addr_parse_target("10.1.2.3:80", &sin, err, sizeof err), 0);
    assert_false(addr_is_loopback(sin.sin_addr));
    assert_true(addr_is_loopback(ip("127.200.0.9")));
    assert_false(addr_is_loopback(ip("128.0.0.1")));
    assert_int_equal(addr_parse_target("127.0.0.1", &sin, err, sizeof err), -1);
    assert_int_equal(addr_parse_target("127.0.0.1:0", &sin, err, sizeof err), -1);
    assert_int_equal(addr_parse_target("127.0.0.1:65536", &sin, err, sizeof err), -1);
    assert_int_equal(addr_parse_target("127.0.0.1:8x", &sin, err, sizeof err), -1);
    assert_int_equal(addr_parse_target("[::1]:80", &sin, err, sizeof err), -1);
    assert_non_null(strstr(err, "IPv6"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_plan),
        cmocka_unit_test(test_client_plan_never_uses_0_1_or_255),
        cmocka_unit_test(test_client_bounds),
        cmocka_unit_test(test_target_and_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
