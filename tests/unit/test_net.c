/* test_net.c — net.c: address parsing (IPv4, [IPv6], host names, errors),
 * printing round trips, and real loopback sockets: a listener that accepts a
 * non-blocking connect, and a connect to a closed port that is refused;
 * source=IP (an IP alone, bindable or not, a connect leaving from it),
 * keepalive settings read back from the socket, a port replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

static uint16_t addr_port(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* ---- parsing ----------------------------------------------------------------- */

static const struct {
    const char *text;
    int family;
    const char *ip;         /* as net_ip_str prints it */
    uint16_t port;
} parse_ok[] = {
    { "127.0.0.1:80", AF_INET, "127.0.0.1", 80 },
    { "0.0.0.0:65535", AF_INET, "0.0.0.0", 65535 },
    { "10.1.2.3:1", AF_INET, "10.1.2.3", 1 },
    { "[::1]:443", AF_INET6, "::1", 443 },
    { "[::]:8080", AF_INET6, "::", 8080 },
    { "[2001:db8::1]:9000", AF_INET6, "2001:db8::1", 9000 },
    { "[::ffff:127.0.0.1]:80", AF_INET6, "::ffff:127.0.0.1", 80 },
    { "127.0.0.1:00080", AF_INET, "127.0.0.1", 80 },
};

static void test_parse_addr_accepts_ip_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(parse_ok); i++) {
        struct net_addr a;
        char err[256] = "", ip[NET_ADDR_STRLEN];
        if (net_parse_addr(parse_ok[i].text, &a, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", parse_ok[i].text, err);
        assert_int_equal(a.ss.ss_family, parse_ok[i].family);
        assert_int_equal(a.len, parse_ok[i].family == AF_INET ?
                         sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        assert_string_equal(net_ip_str((struct sockaddr *)&a.ss, ip, sizeof(ip)),
                            parse_ok[i].ip);
        assert_int_equal(addr_port(&a), parse_ok[i].port);
    }
}

static void test_parse_addr_resolves_localhost(void **state)
{
    (void)state;
    struct net_addr a;
    char err[256] = "", ip[NET_ADDR_STRLEN];
    if (net_parse_addr("localhost:8080", &a, err, sizeof(err)) != 0)
        fail_msg("localhost refused: %s", err);
    assert_true(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
    net_ip_str((struct sockaddr *)&a.ss, ip, sizeof(ip));
    if (strcmp(ip, "127.0.0.1") != 0 && strcmp(ip, "::1") != 0)
        fail_msg("localhost resolved to %s", ip);
    assert_int_equal(addr_port(&a), 8080);
}

static const struct {
    const char *text;
    const char *phrase;
} parse_bad[] = {
    { "", "expected host:port" },
    { "127.0.0.1", "expected host:port" },
    { "127.0.0.1:", "port must be 1-65535" },
    { "127.0.0.1:0", "port must be 1-65535" },
    { "127.0.0.1:65536", "port must be 1-65535" },
    { "127.0.0.1:123456", "port must be 1-65535" },
    { "127.0.0.1:8o", "port must be 1-65535" },
    { "127.0.0.1:-1", "port must be 1-65535" },
    { "127.0.0.1: 80", "port must be 1-65535" },
    { ":80", "empty or overlong host" },
    { "::1:80", "IPv6 as [addr]:port" },
    { "[::1", "expected [IPv6]:port" },
    { "[::1]", "expected [IPv6]:port" },
    { "[::1]80", "expected [IPv6]:port" },
    { "[]:80", "empty or overlong host" },
    { "[127.0.0.1]:80", "is not an IPv6 address" },
    { "[not-v6]:80", "is not an IPv6 address" },
    { "no-such-host.invalid:80", "cannot resolve 'no-such-host.invalid'" },
};

static void test_parse_addr_rejects_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(parse_bad); i++) {
        struct net_addr a;
        char err[256] = "";
        if (net_parse_addr(parse_bad[i].text, &a, err, sizeof(err)) != -1)
            fail_msg("'%s' accepted", parse_bad[i].text);
        if (strstr(err, parse_bad[i].phrase) == NULL)
            fail_msg("'%s': expected '%s' in '%s'", parse_bad[i].text,
                     parse_bad[i].phrase, err);
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "'%s'", parse_bad[i].text);
        if (strstr(err, quoted) == NULL)
            fail_msg("error does not quote the input: '%s'", err);
    }
}

static void test_parse_addr_overlong_host_is_refused(void **state)
{
    (void)state;
    char text[400], err[512] = "";
    struct net_addr a;
    memset(text, 'h', 300);
    strcpy(text + 300, ":80");
    assert_int_equal(net_parse_addr(text, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty or overlong host"));
}

/* ---- printing --------------------------------------------------------------------- */

static void test_addr_str_round_trips(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "127.0.0.1:80", "0.0.0.0:65535", "192.168.10.200:8080",
        "[::1]:443", "[2001:db8::42]:9000", "[::]:1",
    };
    for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
        struct net_addr a, b;
        char err[256] = "", out[NET_ADDR_STRLEN], again[NET_ADDR_STRLEN];
        assert_int_equal(net_parse_addr(texts[i], &a, err, sizeof(err)), 0);
        assert_string_equal(net_addr_str((struct sockaddr *)&a.ss, out, sizeof(out)),
                            texts[i]);
        /* and the printed form parses back to the same address */
        assert_int_equal(net_parse_addr(out, &b, err, sizeof(err)), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(&a.ss, &b.ss, a.len);
        assert_string_equal(net_addr_str((struct sockaddr *)&b.ss, again,
                                         sizeof(again)), texts[i]);
    }
}

static void test_addr_str_longest_v6_fits(void **state)
{
    (void)state;
    static const char text[] = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
    struct net_addr a;
    char err[256] = "", out[NET_ADDR_STRLEN];
    assert_int_equal(net_parse_addr(text, &a, err, sizeof(err)), 0);
    net_addr_str((struct sockaddr *)&a.ss, out, sizeof(out));
    assert_true(strlen(out) < NET_ADDR_STRLEN);
    assert_int_equal(out[0], '[');
    assert_non_null(strstr(out, "]:65535"));
}

static void test_addr_str_unknown_family_is_question_mark(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char out[NET_ADDR_STRLEN];
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_string_equal(net_addr_str((struct sockaddr *)&ss, out, sizeof(out)), "?");
    assert_string_equal(net_ip_str((struct sockaddr *)&ss, out, sizeof(out)), "?");
}

/* ---- sockets ------------------------------------------------------------------------ */

/* A loopback port nobody listens on right now: bound, read and released. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(fd, -1);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void loopback_addr(struct net_addr *a, uint16_t port)
{
    char text[32], err[256];
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    assert_int_equal(net_parse_addr(text, a, err, sizeof(err)), 0);
}

static int sock_error(int fd)
{
    int e = -1;
    socklen_t len = sizeof(e);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len), 0);
    return e;
}

static void wait_for(int fd, short events)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
}

static void test_listen_then_connect_completes(void **state)
{
    (void)state;
    struct net_addr a;
    char err[256] = "";
    loopback_addr(&a, free_port());

    int lfd = net_listen(&a, 1, 16, err, sizeof(err));
    if (lfd == -1)
        fail_msg("net_listen: %s", err);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);

    int done = -1;
    int cfd = net_connect(&a, &done);
    assert_int_not_equal(cfd, -1);
    assert_true(done == 0 || done == 1);
    assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    int nodelay = 0;
    socklen_t len = sizeof(nodelay);
    assert_int_equal(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    assert_int_not_equal(nodelay, 0);

    wait_for(cfd, POLLOUT);
    assert_int_equal(sock_error(cfd), 0);

    wait_for(lfd, POLLIN);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int afd = accept(lfd, (struct sockaddr *)&peer, &plen);
    assert_int_not_equal(afd, -1);

    /* the two ends are really connected */
    assert_int_equal(write(cfd, "ping", 4), 4);
    char buf[8];
    wait_for(afd, POLLIN);
    assert_int_equal(read(afd, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);

    close(afd);
    close(cfd);
    close(lfd);
}

static void test_connect_to_closed_port_is_refused(void **state)
{
    (void)state;
    struct net_addr a;
    loopback_addr(&a, free_port());
    int done = -1;
    errno = 0;
    int fd = net_connect(&a, &done);
    if (fd == -1) {
        assert_int_equal(errno, ECONNREFUSED);
        return;
    }
    assert_int_equal(done, 0);   /* "completed at once" would be a lie */
    wait_for(fd, POLLOUT);
    assert_int_equal(sock_error(fd), ECONNREFUSED);
    close(fd);
}

static void test_reuseport_lets_two_listeners_share_a_port(void **state)
{
    (void)state;
    struct net_addr a;
    char err[256] = "";
    loopback_addr(&a, free_port());
    int fd1 = net_listen(&a, 1, 16, err, sizeof(err));
    int fd2 = net_listen(&a, 1, 16, err, sizeof(err));
    if (fd1 == -1 || fd2 == -1)
        fail_msg("net_listen with reuseport: %s", err);
    close(fd1);
    close(fd2);
}

static void test_listen_on_busy_port_reports_address(void **state)
{
    (void)state;
    struct net_addr a;
    char err[256] = "", want[64];
    uint16_t port = free_port();
    loopback_addr(&a, port);
    int fd1 = net_listen(&a, 0, 16, err, sizeof(err));
    assert_int_not_equal(fd1, -1);
    assert_int_equal(net_listen(&a, 0, 16, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%u: ", port);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("expected '%s...', got '%s'", want, err);
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    close(fd1);
}

static void test_listen_and_connect_over_ipv6_loopback(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe == -1)
        skip();
    close(probe);

    struct net_addr a;
    char err[256] = "", text[32];
    snprintf(text, sizeof(text), "[::1]:%u", free_port());
    assert_int_equal(net_parse_addr(text, &a, err, sizeof(err)), 0);
    int lfd = net_listen(&a, 1, 16, err, sizeof(err));
    if (lfd == -1) {
        if (strstr(err, strerror(EADDRNOTAVAIL)) != NULL)
            skip();   /* no ::1 in this sandbox */
        fail_msg("net_listen: %s", err);
    }
    int done;
    int cfd = net_connect(&a, &done);
    assert_int_not_equal(cfd, -1);
    wait_for(cfd, POLLOUT);
    assert_int_equal(sock_error(cfd), 0);
    close(cfd);
    close(lfd);
}

/* Starved (pause accepting) is part of local (do not blame the server);
 * a refusal or a reset is neither. */
static void test_error_classes(void **state)
{
    (void)state;
    const int starved[] = { EMFILE, ENFILE, ENOBUFS, ENOMEM };
    for (size_t i = 0; i < sizeof(starved) / sizeof(starved[0]); i++) {
        assert_true(net_error_is_starved(starved[i]));
        assert_true(net_error_is_local(starved[i]));
    }
    assert_false(net_error_is_starved(EADDRNOTAVAIL));
    assert_true(net_error_is_local(EADDRNOTAVAIL));
    assert_false(net_error_is_starved(EAGAIN));
    assert_true(net_error_is_local(EAGAIN));
    const int remote[] = { ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH };
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        assert_false(net_error_is_starved(remote[i]));
        assert_false(net_error_is_local(remote[i]));
    }
}


/* ---- source=IP, keepalive ------------------------------------------------------ */

static void test_parse_ip_alone(void **state)
{
    (void)state;
    struct net_addr a;
    char err[160], buf[NET_ADDR_STRLEN];
    assert_int_equal(net_parse_ip("127.0.0.7", &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_string_equal(net_addr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)), "127.0.0.7:0");
    assert_int_equal(net_parse_ip("::1", &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(net_parse_ip("[::1]", &a, err, sizeof(err)), 0);
    assert_string_equal(net_addr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)), "[::1]:0");
    assert_int_equal(net_parse_ip("127.0.0.1:80", &a, err, sizeof(err)), -1);
    assert_string_equal(err, "'127.0.0.1:80' is not an IPv4 or IPv6 address");
    assert_int_equal(net_parse_ip("localhost", &a, err, sizeof(err)), -1);
    assert_int_equal(net_parse_ip("", &a, err, sizeof(err)), -1);
    assert_int_equal(net_parse_ip("[]", &a, err, sizeof(err)), -1);
    assert_int_equal(net_parse_ip("1.2.3.4.5", &a, err, sizeof(err)), -1);
}

static void test_can_bind_only_local_addresses(void **state)
{
    (void)state;
    struct net_addr a;
    char err[160];
    assert_int_equal(net_parse_ip("127.0.0.9", &a, err, sizeof(err)), 0);
    assert_int_equal(net_can_bind(&a, err, sizeof(err)), 0);
    assert_int_equal(net_parse_ip("192.0.2.1", &a, err, sizeof(err)), 0);
    assert_int_equal(net_can_bind(&a, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot bind it: Cannot assign requested address");
}

static void test_connect_from_a_source_address(void **state)
{
    (void)state;
    struct net_addr a, src;
    char err[256];
    assert_int_equal(net_parse_ip("127.0.0.1", &a, err, sizeof(err)), 0);   /* port 0 */
    int lfd = net_listen(&a, 0, 16, err, sizeof(err));
    if (lfd == -1)
        fail_msg("net_listen: %s", err);
    a.len = sizeof(a.ss);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a.ss, &a.len), 0);
    assert_int_equal(net_parse_ip("127.0.0.7", &src, err, sizeof(err)), 0);

    int done = -1;
    int cfd = net_connect_from(&a, &src, &done);
    assert_int_not_equal(cfd, -1);
    wait_for(cfd, POLLOUT);
    assert_int_equal(sock_error(cfd), 0);
    wait_for(lfd, POLLIN);
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    int afd = accept(lfd, (struct sockaddr *)&peer, &plen);
    assert_int_not_equal(afd, -1);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.7");
    assert_int_not_equal(ntohs(peer.sin_port), 0);
    close(afd);
    close(cfd);

    /* a source the machine does not have: the connect fails at once */
    assert_int_equal(net_parse_ip("192.0.2.1", &src, err, sizeof(err)), 0);
    errno = 0;
    assert_int_equal(net_connect_from(&a, &src, &done), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    close(lfd);
}

static void test_keepalive_settings_reach_the_socket(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(net_set_keepalive(fd, 7, 3, 4), 0);
    int v = 0;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    assert_int_equal(v, 1);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    assert_int_equal(v, 7);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
    assert_int_equal(v, 3);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
    assert_int_equal(v, 4);
    close(fd);
    assert_int_equal(net_set_keepalive(-1, 7, 3, 4), -1);
}

static void test_set_port(void **state)
{
    (void)state;
    struct net_addr a;
    char err[160], buf[NET_ADDR_STRLEN];
    assert_int_equal(net_parse_addr("127.0.0.1:80", &a, err, sizeof(err)), 0);
    net_addr_set_port(&a, 9200);
    assert_string_equal(net_addr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)),
                        "127.0.0.1:9200");
    assert_int_equal(net_parse_addr("[::1]:80", &a, err, sizeof(err)), 0);
    net_addr_set_port(&a, 8008);
    assert_string_equal(net_addr_str((struct sockaddr *)&a.ss, buf, sizeof(buf)),
                        "[::1]:8008");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr_accepts_ip_forms),
        cmocka_unit_test(test_parse_addr_resolves_localhost),
        cmocka_unit_test(test_parse_addr_rejects_malformed),
        cmocka_unit_test(test_parse_addr_overlong_host_is_refused),
        cmocka_unit_test(test_addr_str_round_trips),
        cmocka_unit_test(test_addr_str_longest_v6_fits),
        cmocka_unit_test(test_addr_str_unknown_family_is_question_mark),
        cmocka_unit_test(test_listen_then_connect_completes),
        cmocka_unit_test(test_connect_to_closed_port_is_refused),
        cmocka_unit_test(test_reuseport_lets_two_listeners_share_a_port),
        cmocka_unit_test(test_listen_on_busy_port_reports_address),
        cmocka_unit_test(test_listen_and_connect_over_ipv6_loopback),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_parse_ip_alone),
        cmocka_unit_test(test_can_bind_only_local_addresses),
        cmocka_unit_test(test_connect_from_a_source_address),
        cmocka_unit_test(test_keepalive_settings_reach_the_socket),
        cmocka_unit_test(test_set_port),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL) ? 1 : 0;
}
