/* test_skewload_resp.c — tools/skewload resp.c: where an HTTP answer ends
 * (Content-Length, chunked, up to EOF, no body), who sent it (X-Backend,
 * else the body's first line), keep-alive, and refusal of what is not HTTP
 * or is ambiguous; and tcp mode's one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "resp.h"

static int parse(const char *text, int eof, struct resp *r)
{
    return resp_parse_http(text, strlen(text), eof, r);
}

static void test_content_length_and_x_backend(void **state)
{
    const char *a = "HTTP/1.1 200 OK\r\nX-Backend: web2\r\nContent-Length: 5\r\n"
                    "Connection: close\r\n\r\nweb2\n";
    struct resp r;

    (void)state;
    assert_int_equal(parse(a, 0, &r), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, strlen(a));
    assert_string_equal(r.name, "web2");
    assert_int_equal(r.keep_alive, 0);
    /* Every proper prefix needs more bytes, and is malformed at EOF. */
    for (size_t n = 0; n < strlen(a); n++) {
        assert_int_equal(resp_parse_http(a, n, 0, &r), 0);
        assert_int_equal(resp_parse_http(a, n, 1, &r), -1);
    }
}

static void test_name_from_the_body_when_no_header(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n  web3\r\nx", 0, &r), 1);
    assert_string_equal(r.name, "web3");
    assert_int_equal(r.keep_alive, 1);
    /* Not for errors: tcplb's 503 body is not a server name. */
    assert_int_equal(parse("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\n"
                           "503\n", 0, &r), 1);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.name, "");
    /* The header wins over the body. */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nx-backend:  a \r\nContent-Length: 2\r\n\r\nb\n",
                           0, &r), 1);
    assert_string_equal(r.name, "a");
}

static void test_keep_alive_rules(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &r), 1);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n",
                           0, &r), 1);
    assert_int_equal(r.keep_alive, 0);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &r), 1);
    assert_int_equal(r.keep_alive, 0);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                           "Content-Length: 0\r\n\r\n", 0, &r), 1);
    assert_int_equal(r.keep_alive, 1);
}

static void test_body_until_eof(void **state)
{
    const char *a = "HTTP/1.0 200 OK\r\n\r\nweb1\nmore";
    struct resp r;

    (void)state;
    assert_int_equal(parse(a, 0, &r), 0);
    assert_int_equal(parse(a, 1, &r), 1);
    assert_int_equal(r.len, strlen(a));
    assert_string_equal(r.name, "web1");
    assert_int_equal(r.keep_alive, 0);
}

static void test_chunked_body(void **state)
{
    const char *a = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nnginx\r\nA\r\n-pool-one\n\r\n0\r\nX-T: 1\r\n\r\n";
    struct resp r;

    (void)state;
    assert_int_equal(parse(a, 0, &r), 1);
    assert_int_equal(r.len, strlen(a));
    assert_string_equal(r.name, "nginx");
    assert_int_equal(r.keep_alive, 1);
    for (size_t n = 0; n < strlen(a); n++)
        assert_int_equal(resp_parse_http(a, n, 0, &r), 0);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "zz\r\n", 0, &r), -1);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\nabcd\r\n", 0, &r), -1);
}

static void test_no_body_statuses_and_interim(void **state)
{
    struct resp r;
    const char *a = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n"
                    "X-Backend: s\r\nContent-Length: 10\r\n\r\n";

    (void)state;
    assert_int_equal(parse(a, 0, &r), 1);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, strlen(a));
    assert_string_equal(r.name, "s");
    assert_int_equal(parse("HTTP/1.1 304 Not Modified\r\n\r\n", 0, &r), 1);
    assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\n", 0, &r), 0);
}

static void test_refuses_what_is_not_http(void **state)
{
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "hello\n",
    };
    struct resp r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i], 0, &r) != -1)
            fail_msg("accepted: %s", bad[i]);
    /* Refused early: a 5-byte prefix is enough to know. */
    assert_int_equal(resp_parse_http("SSH-2", 5, 0, &r), -1);
    assert_int_equal(resp_parse_http("HTT", 3, 0, &r), 0);
}

static void test_name_is_clipped_and_printable(void **state)
{
    char text[512];
    struct resp r;

    (void)state;
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nX-Backend: %0100d\r\n"
             "Content-Length: 0\r\n\r\n", 7);
    assert_int_equal(parse(text, 0, &r), 1);
    assert_int_equal(strlen(r.name), RESP_NAME_MAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na\x01" "b\n", 0, &r), 1);
    assert_string_equal(r.name, "a?b");
}

static void test_line_mode(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(resp_parse_line("web1", 4, 0, &r), 0);
    assert_int_equal(resp_parse_line("web1\r\nrest", 10, 0, &r), 1);
    assert_int_equal(r.len, 6);
    assert_string_equal(r.name, "web1");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(resp_parse_line("web2", 4, 1, &r), 1);
    assert_string_equal(r.name, "web2");
    assert_int_equal(r.keep_alive, 0);
    assert_int_equal(resp_parse_line("", 0, 1, &r), -1);
    assert_int_equal(resp_parse_line("", 0, 0, &r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_and_x_backend),
        cmocka_unit_test(test_name_from_the_body_when_no_header),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_body_until_eof),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_no_body_statuses_and_interim),
        cmocka_unit_test(test_refuses_what_is_not_http),
        cmocka_unit_test(test_name_is_clipped_and_printable),
        cmocka_unit_test(test_line_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
