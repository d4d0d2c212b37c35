/* test_proxy_proto.c — proxy_proto.c against HAProxy's proxy-protocol.txt: v1 and v2
 * headers byte-exact for IPv4, IPv6 and mixed families, build -> parse round
 * trips, incremental parsing fed a byte at a time (with TLVs and payload
 * after the header), a table of malformed headers that must be BAD, and a
 * fixed-seed random loop that must never crash or overrun its buffer. Every
 * parsed buffer is a heap copy of exactly its length, so ASan sees overreads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxy_proto.h"
#include "util.h"

static const uint8_t v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* ---- helpers ------------------------------------------------------------------ */

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
    } else {
        fail_msg("test address '%s' does not parse", ip);
    }
    return ss;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *ip_of(const struct sockaddr_storage *ss, char *out, size_t size)
{
    const void *raw = ss->ss_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (inet_ntop(ss->ss_family, raw, out, (socklen_t)size) == NULL)
        snprintf(out, size, "?");
    return out;
}

/* proxy_proto_build into a heap buffer of exactly PROXY_HEADER_MAX bytes. */
static size_t build(enum proxy_version v, const struct sockaddr_storage *src,
                    const struct sockaddr_storage *dst, uint8_t *out)
{
    uint8_t *tmp = malloc(PROXY_HEADER_MAX);
    assert_non_null(tmp);
    memset(tmp, 0xAA, PROXY_HEADER_MAX);
    size_t n = proxy_proto_build(v, (const struct sockaddr *)src, (const struct sockaddr *)dst, tmp);
    assert_true(n <= PROXY_HEADER_MAX);
    memcpy(out, tmp, n);
    free(tmp);
    return n;
}

struct parsed {
    enum proxy_proto_result r;
    size_t consumed;
    int has_addr;
    struct sockaddr_storage src, dst;
};

/* proxy_proto_parse over a heap copy of exactly len bytes. */
static struct parsed parse(const void *buf, size_t len)
{
    struct parsed p;
    memset(&p, 0, sizeof(p));
    p.consumed = (size_t)-1;
    p.has_addr = -1;
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    p.r = proxy_proto_parse(copy, len, &p.consumed, &p.src, &p.dst, &p.has_addr);
    free(copy);
    return p;
}

static const char *result_str(enum proxy_proto_result r)
{
    switch (r) {
    case PROXY_PARSE_MORE: return "MORE";
    case PROXY_PARSE_DONE: return "DONE";
    case PROXY_PARSE_BAD: return "BAD";
    }
    return "?";
}

static void dump(const char *what, const uint8_t *b, size_t n)
{
    fprintf(stderr, "%s (%zu bytes):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", b[i]);
    fprintf(stderr, "\n");
}

static void assert_bytes(const uint8_t *got, size_t n, const uint8_t *want, size_t wn)
{
    if (n != wn || memcmp(got, want, n) != 0) {
        dump("got ", got, n);
        dump("want", want, wn);
        fail_msg("header bytes differ");
    }
}

/* Feeds hdr (plus tail) one byte more at a time: MORE for every prefix
 * shorter than the header, then DONE consuming exactly hdr_len, whatever
 * follows. Returns the final parse. */
static struct parsed feed_bytewise(const uint8_t *hdr, size_t hdr_len, const char *tail)
{
    size_t tail_len = strlen(tail);
    uint8_t *all = malloc(hdr_len + tail_len + 1);
    assert_non_null(all);
    memcpy(all, hdr, hdr_len);
    memcpy(all + hdr_len, tail, tail_len);
    struct parsed p;
    for (size_t k = 0; k < hdr_len; k++) {
        p = parse(all, k);
        if (p.r != PROXY_PARSE_MORE) {
            dump("header", hdr, hdr_len);
            fail_msg("prefix of %zu bytes: %s, want MORE", k, result_str(p.r));
        }
    }
    for (size_t k = hdr_len; k <= hdr_len + tail_len; k++) {
        p = parse(all, k);
        if (p.r != PROXY_PARSE_DONE || p.consumed != hdr_len) {
            dump("header", hdr, hdr_len);
            fail_msg("%zu bytes (header %zu): %s consumed %zu, want DONE consumed %zu",
                     k, hdr_len, result_str(p.r), p.consumed, hdr_len);
        }
    }
    free(all);
    return p;
}

/* A v2 header: signature, ver/cmd, family, then body_len bytes of body. */
static size_t v2_header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                        size_t body_len)
{
    memcpy(out, v2_sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    if (body_len)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

/* ---- building: v1 ------------------------------------------------------------- */

static void test_build_v1_ipv4_is_byte_exact(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("192.0.2.1", 56324), dst = addr("198.51.100.2", 443);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V1, &src, &dst, out);
    static const char want[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
}

static void test_build_v1_ipv6_is_byte_exact(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("2001:db8::1", 56324), dst = addr("2001:db8::2", 443);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V1, &src, &dst, out);
    static const char want[] = "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n";
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
}

static void test_build_v1_longest_ipv6_line_is_104_bytes(void **state)
{
    (void)state;
    const char *ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    struct sockaddr_storage src = addr(ff, 65535), dst = addr(ff, 65535);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V1, &src, &dst, out);
    char want[128];
    snprintf(want, sizeof(want), "PROXY TCP6 %s %s 65535 65535\r\n", ff, ff);
    assert_int_equal(strlen(want), 104);
    assert_bytes(out, n, (const uint8_t *)want, strlen(want));
}

static void test_build_v1_extreme_ipv4_values(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("0.0.0.0", 0), dst = addr("255.255.255.255", 65535);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V1, &src, &dst, out);
    static const char want[] = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
}

static void test_build_v1_mixed_or_non_ip_families_say_unknown(void **state)
{
    (void)state;
    static const char want[] = "PROXY UNKNOWN\r\n";
    struct sockaddr_storage v4 = addr("192.0.2.1", 56324), v6 = addr("2001:db8::2", 443);
    struct sockaddr_storage un;
    memset(&un, 0, sizeof(un));
    ((struct sockaddr_un *)&un)->sun_family = AF_UNIX;
    uint8_t out[PROXY_HEADER_MAX];

    size_t n = build(PROXY_V1, &v4, &v6, out);
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
    n = build(PROXY_V1, &v6, &v4, out);
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
    n = build(PROXY_V1, &un, &un, out);
    assert_bytes(out, n, (const uint8_t *)want, sizeof(want) - 1);
}

/* ---- building: v2 ------------------------------------------------------------- */

static void test_build_v2_ipv4_is_byte_exact(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("192.0.2.1", 56324), dst = addr("198.51.100.2", 443);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V2, &src, &dst, out);
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21,                   /* version 2, PROXY */
        0x11,                   /* AF_INET, STREAM */
        0x00, 0x0C,             /* 12 bytes of addresses */
        192, 0, 2, 1,           /* source */
        198, 51, 100, 2,        /* destination */
        0xDC, 0x04,             /* 56324 */
        0x01, 0xBB,             /* 443 */
    };
    assert_bytes(out, n, want, sizeof(want));
}

static void test_build_v2_ipv6_is_byte_exact(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("2001:db8::1", 56324), dst = addr("2001:db8::2", 443);
    uint8_t out[PROXY_HEADER_MAX];
    size_t n = build(PROXY_V2, &src, &dst, out);
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21,                   /* version 2, PROXY */
        0x21,                   /* AF_INET6, STREAM */
        0x00, 0x24,             /* 36 bytes of addresses */
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0xDC, 0x04,             /* 56324 */
        0x01, 0xBB,             /* 443 */
    };
    assert_bytes(out, n, want, sizeof(want));
}

static void test_build_v2_mixed_families_is_local(void **state)
{
    (void)state;
    struct sockaddr_storage v4 = addr("192.0.2.1", 56324), v6 = addr("2001:db8::2", 443);
    uint8_t out[PROXY_HEADER_MAX];
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x20,                   /* version 2, LOCAL */
        0x00,                   /* UNSPEC */
        0x00, 0x00,             /* no addresses */
    };
    size_t n = build(PROXY_V2, &v4, &v6, out);
    assert_bytes(out, n, want, sizeof(want));
    n = build(PROXY_V2, &v6, &v4, out);
    assert_bytes(out, n, want, sizeof(want));
}

static void test_build_none_writes_nothing(void **state)
{
    (void)state;
    struct sockaddr_storage src = addr("192.0.2.1", 1), dst = addr("192.0.2.2", 2);
    uint8_t out[PROXY_HEADER_MAX];
    assert_int_equal(build(PROXY_NONE, &src, &dst, out), 0);
}

/* ---- round trips ---------------------------------------------------------------- */

static const struct {
    const char *src, *dst;
    uint16_t sport, dport;
} trips[] = {
    { "192.0.2.1", "198.51.100.2", 56324, 443 },
    { "0.0.0.0", "255.255.255.255", 0, 65535 },
    { "127.0.0.7", "127.0.0.1", 1, 8080 },
    { "10.9.8.7", "10.0.0.1", 5555, 80 },
    { "2001:db8::1", "2001:db8::2", 56324, 443 },
    { "::", "::1", 0, 65535 },
    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1:2:3:4", 65535, 1 },
    { "::ffff:192.0.2.1", "2001:db8:0:1:1:1:1:1", 40000, 22 },
};

static void test_build_then_parse_round_trips(void **state)
{
    (void)state;
    for (int v = PROXY_V1; v <= PROXY_V2; v++) {
        for (size_t i = 0; i < ARRAY_LEN(trips); i++) {
            struct sockaddr_storage src = addr(trips[i].src, trips[i].sport);
            struct sockaddr_storage dst = addr(trips[i].dst, trips[i].dport);
            uint8_t out[PROXY_HEADER_MAX];
            size_t n = build((enum proxy_version)v, &src, &dst, out);
            struct parsed p = parse(out, n);
            if (p.r != PROXY_PARSE_DONE || p.consumed != n || p.has_addr != 1)
                fail_msg("v%d %s -> %s: %s consumed %zu/%zu has_addr %d", v, trips[i].src,
                         trips[i].dst, result_str(p.r), p.consumed, n, p.has_addr);
            char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
            assert_int_equal(p.src.ss_family, src.ss_family);
            assert_int_equal(p.dst.ss_family, dst.ss_family);
            assert_string_equal(ip_of(&p.src, a, sizeof(a)), ip_of(&src, b, sizeof(b)));
            assert_string_equal(ip_of(&p.dst, a, sizeof(a)), ip_of(&dst, b, sizeof(b)));
            assert_int_equal(port_of(&p.src), trips[i].sport);
            assert_int_equal(port_of(&p.dst), trips[i].dport);
        }
    }
}

static void test_mixed_families_round_trip_without_address(void **state)
{
    (void)state;
    struct sockaddr_storage v4 = addr("192.0.2.1", 56324), v6 = addr("2001:db8::2", 443);
    for (int v = PROXY_V1; v <= PROXY_V2; v++) {
        uint8_t out[PROXY_HEADER_MAX];
        size_t n = build((enum proxy_version)v, &v4, &v6, out);
        struct parsed p = parse(out, n);
        assert_int_equal(p.r, PROXY_PARSE_DONE);
        assert_int_equal(p.consumed, n);
        assert_int_equal(p.has_addr, 0);
    }
}

/* ---- incremental parsing ----------------------------------------------------------- */

static const char http_tail[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

static void test_v1_fed_bytewise_is_more_until_crlf(void **state)
{
    (void)state;
    static const char hdr[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    struct parsed p = feed_bytewise((const uint8_t *)hdr, sizeof(hdr) - 1, http_tail);
    assert_int_equal(p.has_addr, 1);
    char a[INET6_ADDRSTRLEN];
    assert_string_equal(ip_of(&p.src, a, sizeof(a)), "192.0.2.1");
    assert_string_equal(ip_of(&p.dst, a, sizeof(a)), "198.51.100.2");
    assert_int_equal(port_of(&p.src), 56324);
    assert_int_equal(port_of(&p.dst), 443);
}

static void test_v1_ipv6_fed_bytewise(void **state)
{
    (void)state;
    static const char hdr[] = "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n";
    struct parsed p = feed_bytewise((const uint8_t *)hdr, sizeof(hdr) - 1, "\r\n\r\nPROXY x");
    assert_int_equal(p.has_addr, 1);
    assert_int_equal(p.src.ss_family, AF_INET6);
    assert_int_equal(port_of(&p.src), 56324);
}

static void test_v2_fed_bytewise_is_more_until_complete(void **state)
{
    (void)state;
    static const uint8_t body[] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    uint8_t hdr[64];
    size_t n = v2_header(hdr, 0x21, 0x11, body, sizeof(body));
    struct parsed p = feed_bytewise(hdr, n, http_tail);
    assert_int_equal(p.has_addr, 1);
    char a[INET6_ADDRSTRLEN];
    assert_string_equal(ip_of(&p.src, a, sizeof(a)), "10.9.8.7");
    assert_string_equal(ip_of(&p.dst, a, sizeof(a)), "10.0.0.1");
    assert_int_equal(port_of(&p.src), 5555);
    assert_int_equal(port_of(&p.dst), 80);
}

static void test_v2_tlvs_after_addresses_are_consumed(void **state)
{
    (void)state;
    static const uint8_t body[] = {
        192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB,
        0x02, 0x00, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', /* AUTHORITY */
        0x04, 0x00, 0x03, 0x00, 0x00, 0x00,                                      /* NOOP */
        0x01, 0x00, 0x02, 'h', '2',                                              /* ALPN */
    };
    uint8_t hdr[128];
    size_t n = v2_header(hdr, 0x21, 0x11, body, sizeof(body));
    assert_int_equal(n, 16 + 12 + 14 + 6 + 5);
    struct parsed p = feed_bytewise(hdr, n, http_tail);
    assert_int_equal(p.has_addr, 1);
    char a[INET6_ADDRSTRLEN];
    assert_string_equal(ip_of(&p.src, a, sizeof(a)), "192.0.2.1");
    assert_int_equal(port_of(&p.src), 56324);
    assert_int_equal(port_of(&p.dst), 443);
}

static void test_v2_ipv6_with_tlv_fed_bytewise(void **state)
{
    (void)state;
    uint8_t body[36 + 7];
    struct sockaddr_storage s = addr("2001:db8::1", 56324), d = addr("2001:db8::2", 443);
    memcpy(body, &((struct sockaddr_in6 *)&s)->sin6_addr, 16);
    memcpy(body + 16, &((struct sockaddr_in6 *)&d)->sin6_addr, 16);
    memcpy(body + 32, &((struct sockaddr_in6 *)&s)->sin6_port, 2);
    memcpy(body + 34, &((struct sockaddr_in6 *)&d)->sin6_port, 2);
    static const uint8_t tlv[7] = { 0xE0, 0x00, 0x04, 't', 'e', 's', 't' };
    memcpy(body + 36, tlv, sizeof(tlv));
    uint8_t hdr[128];
    size_t n = v2_header(hdr, 0x21, 0x21, body, sizeof(body));
    struct parsed p = feed_bytewise(hdr, n, http_tail);
    assert_int_equal(p.has_addr, 1);
    char a[INET6_ADDRSTRLEN];
    assert_string_equal(ip_of(&p.src, a, sizeof(a)), "2001:db8::1");
    assert_string_equal(ip_of(&p.dst, a, sizeof(a)), "2001:db8::2");
}

static void test_v2_largest_allowed_header_is_done(void **state)
{
    (void)state;
    size_t body_len = PROXY_HEADER_MAX - 16;
    uint8_t *body = calloc(1, body_len);
    assert_non_null(body);
    static const uint8_t addrs[12] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    memcpy(body, addrs, sizeof(addrs));
    body[12] = 0x04;                                    /* one NOOP TLV fills the rest */
    body[13] = (uint8_t)((body_len - 15) >> 8);
    body[14] = (uint8_t)(body_len - 15);
    uint8_t hdr[PROXY_HEADER_MAX];
    size_t n = v2_header(hdr, 0x21, 0x11, body, body_len);
    assert_int_equal(n, PROXY_HEADER_MAX);
    struct parsed p = parse(hdr, n);
    assert_int_equal(p.r, PROXY_PARSE_DONE);
    assert_int_equal(p.consumed, PROXY_HEADER_MAX);
    assert_int_equal(p.has_addr, 1);
    free(body);
}

/* ---- headers without an address ----------------------------------------------------- */

static void test_v2_local_is_done_without_address(void **state)
{
    (void)state;
    uint8_t hdr[64];
    size_t n = v2_header(hdr, 0x20, 0x00, NULL, 0);
    struct parsed p = feed_bytewise(hdr, n, http_tail);
    assert_int_equal(p.has_addr, 0);

    /* LOCAL may still carry a family and addresses: skipped, not used */
    static const uint8_t body[] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    n = v2_header(hdr, 0x20, 0x11, body, sizeof(body));
    p = feed_bytewise(hdr, n, http_tail);
    assert_int_equal(p.has_addr, 0);
}

static void test_v2_proxy_unspec_is_done_without_address(void **state)
{
    (void)state;
    uint8_t hdr[64];
    size_t n = v2_header(hdr, 0x21, 0x00, NULL, 0);
    struct parsed p = feed_bytewise(hdr, n, "");
    assert_int_equal(p.has_addr, 0);
}

static void test_v1_unknown_is_done_without_address(void **state)
{
    (void)state;
    static const char shortform[] = "PROXY UNKNOWN\r\n";
    struct parsed p = feed_bytewise((const uint8_t *)shortform, sizeof(shortform) - 1,
                                    http_tail);
    assert_int_equal(p.has_addr, 0);
    /* the spec's long form: whatever follows UNKNOWN is ignored */
    static const char longform[] = "PROXY UNKNOWN 192.0.2.1 198.51.100.2 56324 443\r\n";
    p = feed_bytewise((const uint8_t *)longform, sizeof(longform) - 1, http_tail);
    assert_int_equal(p.has_addr, 0);
}

/* ---- malformed headers ---------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
} bad_v1[] = {
    { "http request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n" },
    { "lower-case proxy", "proxy TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "PROXY without space", "PROXYTCP4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "TCP5", "PROXY TCP5 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "lower-case tcp4", "PROXY tcp4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "UDP4", "PROXY UDP4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "two spaces after PROXY", "PROXY  TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "two spaces between addresses", "PROXY TCP4 192.0.2.1  198.51.100.2 56324 443\r\n" },
    { "two spaces between ports", "PROXY TCP4 192.0.2.1 198.51.100.2 56324  443\r\n" },
    { "leading space", " PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "trailing space", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n" },
    { "tab separator", "PROXY TCP4 192.0.2.1\t198.51.100.2 56324 443\r\n" },
    { "missing dst port", "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n" },
    { "missing address", "PROXY TCP4 192.0.2.1 56324 443\r\n" },
    { "protocol only", "PROXY TCP4\r\n" },
    { "nothing after PROXY", "PROXY \r\n" },
    { "extra field", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 1\r\n" },
    { "port 65536", "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n" },
    { "dst port 99999", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 99999\r\n" },
    { "port with plus", "PROXY TCP4 192.0.2.1 198.51.100.2 +56324 443\r\n" },
    { "port with minus", "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n" },
    { "port with leading zero", "PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n" },
    { "dst port with leading zero", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 0443\r\n" },
    { "port 00", "PROXY TCP4 192.0.2.1 198.51.100.2 00 443\r\n" },
    { "hex port", "PROXY TCP4 192.0.2.1 198.51.100.2 0x50 443\r\n" },
    { "port with letters", "PROXY TCP4 192.0.2.1 198.51.100.2 80a 443\r\n" },
    { "very long port", "PROXY TCP4 192.0.2.1 198.51.100.2 000000000080 443\r\n" },
    { "octet 256", "PROXY TCP4 1.2.3.256 198.51.100.2 56324 443\r\n" },
    { "three octets", "PROXY TCP4 1.2.3 198.51.100.2 56324 443\r\n" },
    { "five octets", "PROXY TCP4 1.2.3.4.5 198.51.100.2 56324 443\r\n" },
    { "host name", "PROXY TCP4 localhost 198.51.100.2 56324 443\r\n" },
    { "bad dst address", "PROXY TCP4 192.0.2.1 198.51.100.x 56324 443\r\n" },
    { "v6 address in TCP4", "PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n" },
    { "v4 address in TCP6", "PROXY TCP6 192.0.2.1 198.51.100.2 56324 443\r\n" },
    { "v4 dst in TCP6", "PROXY TCP6 2001:db8::1 198.51.100.2 56324 443\r\n" },
    { "bad v6 address", "PROXY TCP6 2001:db8:::1 2001:db8::2 56324 443\r\n" },
    { "LF without CR", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\nGET / HTTP/1.1\r\n\r\n" },
    { "CR not followed by LF", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\rGET / HTTP/1.1\r\n" },
    { "CR CR LF", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\r\n" },
    { "control byte inside", "PROXY TCP4 192.0.2.1 198.51.100.2 56324\x01 443\r\n" },
    { "escape inside", "PROXY TCP4 192.0.2.1 198.51.100.2 \x1b 443\r\n" },
    { "DEL inside", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\x7f\r\n" },
    { "high byte inside", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 44\xc3\xa9\r\n" },
    { "control byte in UNKNOWN", "PROXY UNKNOWN \x02\r\n" },
    { "UNKNOWNX", "PROXY UNKNOWNX\r\n" },
    { "blank lines", "\r\n\r\n\r\n" },
    { "TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" },
};

static void assert_bad(const char *name, const uint8_t *buf, size_t len)
{
    struct parsed p = parse(buf, len);
    if (p.r != PROXY_PARSE_BAD) {
        dump(name, buf, len);
        fail_msg("'%s': %s (consumed %zu), want BAD", name, result_str(p.r), p.consumed);
    }
}

static void test_malformed_v1_is_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_v1); i++) {
        const char *t = bad_v1[i].text;
        size_t len = strlen(t);
        assert_bad(bad_v1[i].name, (const uint8_t *)t, len);
    }
}

/* No prefix of a malformed header may ever be taken for a complete one. */
static void test_malformed_v1_is_never_done_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_v1); i++) {
        const char *t = bad_v1[i].text;
        size_t len = strlen(t);
        for (size_t k = 0; k <= len; k++) {
            struct parsed p = parse(t, k);
            if (p.r == PROXY_PARSE_DONE)
                fail_msg("'%s': DONE after %zu bytes", bad_v1[i].name, k);
        }
    }
}

/* A buffer that can no longer become a valid header is BAD at once, not
 * MORE: the listener should close it now rather than wait out its timer. */
static void test_impossible_v1_prefix_is_bad_at_once(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text;
    } cases[] = {
        { "G", "G" },
        { "PROXZ", "PROXZ" },
        { "LF without CR, nothing after", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n" },
        { "control byte, no CR yet", "PROXY TCP4 192.0.2.1\x01" },
        { "tab, no CR yet", "PROXY\tTCP4" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        assert_bad(cases[i].name, (const uint8_t *)cases[i].text, strlen(cases[i].text));
}

/* "PROXY UNKNOWN " padded with 'x' to total bytes, with or without CRLF. */
static size_t unknown_line(char *out, size_t total, int crlf)
{
    size_t body = crlf ? total - 2 : total;
    memcpy(out, "PROXY UNKNOWN ", 14);
    memset(out + 14, 'x', body - 14);
    if (crlf)
        memcpy(out + body, "\r\n", 2);
    return total;
}

static void test_v1_line_of_107_bytes_is_the_longest_accepted(void **state)
{
    (void)state;
    char line[256];
    size_t n = unknown_line(line, 107, 1);
    struct parsed p = parse(line, n);
    assert_int_equal(p.r, PROXY_PARSE_DONE);
    assert_int_equal(p.consumed, 107);
    assert_int_equal(p.has_addr, 0);
    /* 105 bytes without CR may still end in CRLF at 107 */
    n = unknown_line(line, 105, 0);
    assert_int_equal(parse(line, n).r, PROXY_PARSE_MORE);
}

static void test_v1_no_crlf_in_108_bytes_is_bad(void **state)
{
    (void)state;
    char line[256];
    for (size_t total = 108; total <= 200; total++) {
        size_t n = unknown_line(line, total, 0);
        struct parsed p = parse(line, n);
        if (p.r != PROXY_PARSE_BAD)
            fail_msg("%zu bytes without CRLF: %s, want BAD", total, result_str(p.r));
    }
}

/* The spec: a CRLF not found in the first 107 characters makes the line
 * invalid, so 107 bytes without CR are already BAD and a longer line is BAD
 * even once its CRLF arrives. */
static void test_v1_crlf_must_end_within_107_bytes(void **state)
{
    (void)state;
    char line[256];
    size_t n = unknown_line(line, 107, 0);
    struct parsed p = parse(line, n);
    if (p.r != PROXY_PARSE_BAD)
        fail_msg("107 bytes without CRLF: %s, want BAD", result_str(p.r));
    for (size_t total = 108; total <= 200; total++) {
        n = unknown_line(line, total, 1);
        p = parse(line, n);
        if (p.r != PROXY_PARSE_BAD)
            fail_msg("%zu-byte line with CRLF: %s (consumed %zu), want BAD", total,
                     result_str(p.r), p.consumed);
    }
}

static void test_valid_prefixes_are_more(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len;
    } cases[] = {
        { "", 0 }, { "P", 1 }, { "PROXY", 5 }, { "PROXY ", 6 }, { "PROXY TCP4 1", 12 },
        { "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r", 44 },
        { "\r", 1 }, { "\r\n\r\n\0", 5 }, { "\r\n\r\n\0\r\nQUIT\n", 12 },
        { "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00", 15 },
        { "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct parsed p = parse(cases[i].text, cases[i].len);
        if (p.r != PROXY_PARSE_MORE) {
            dump("prefix", (const uint8_t *)cases[i].text, cases[i].len);
            fail_msg("case %zu: %s, want MORE", i, result_str(p.r));
        }
    }
}

static void test_v2_bad_version_is_bad(void **state)
{
    (void)state;
    static const uint8_t body[] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    static const uint8_t ver_cmd[] = { 0x01, 0x11, 0x10, 0x31, 0x30, 0xF1, 0x00 };
    for (size_t i = 0; i < ARRAY_LEN(ver_cmd); i++) {
        uint8_t hdr[64];
        size_t n = v2_header(hdr, ver_cmd[i], 0x11, body, sizeof(body));
        char name[32];
        snprintf(name, sizeof(name), "ver/cmd 0x%02x", ver_cmd[i]);
        assert_bad(name, hdr, n);
        assert_bad(name, hdr, 16);      /* known from the fixed part alone */
    }
}

static void test_v2_unknown_command_is_bad(void **state)
{
    (void)state;
    static const uint8_t body[] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    for (unsigned cmd = 2; cmd <= 15; cmd++) {
        uint8_t hdr[64];
        size_t n = v2_header(hdr, (uint8_t)(0x20 | cmd), 0x11, body, sizeof(body));
        char name[32];
        snprintf(name, sizeof(name), "command %u", cmd);
        assert_bad(name, hdr, n);
        assert_bad(name, hdr, 16);
    }
}

static void test_v2_unknown_family_is_bad(void **state)
{
    (void)state;
    static const uint8_t body[36] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    static const uint8_t fam[] = { 0x41, 0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x33, 0xFF };
    for (size_t i = 0; i < ARRAY_LEN(fam); i++) {
        uint8_t hdr[64];
        size_t n = v2_header(hdr, 0x21, fam[i], body, sizeof(body));
        char name[32];
        snprintf(name, sizeof(name), "family 0x%02x", fam[i]);
        assert_bad(name, hdr, n);
    }
}

static void test_v2_length_over_max_is_bad(void **state)
{
    (void)state;
    uint8_t hdr[16];
    size_t lens[] = { PROXY_HEADER_MAX - 16 + 1, 1000, 0xFFFF };
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        memcpy(hdr, v2_sig, 12);
        hdr[12] = 0x21;
        hdr[13] = 0x11;
        hdr[14] = (uint8_t)(lens[i] >> 8);
        hdr[15] = (uint8_t)lens[i];
        char name[32];
        snprintf(name, sizeof(name), "length %zu", lens[i]);
        assert_bad(name, hdr, sizeof(hdr));   /* no need to wait for the body */
    }
}

static void test_v2_length_too_short_for_addresses_is_bad(void **state)
{
    (void)state;
    static const uint8_t body[36];
    static const struct {
        uint8_t fam;
        size_t len;
    } cases[] = {
        { 0x11, 0 }, { 0x11, 11 }, { 0x21, 0 }, { 0x21, 12 }, { 0x21, 35 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint8_t hdr[64];
        size_t n = v2_header(hdr, 0x21, cases[i].fam, body, cases[i].len);
        char name[48];
        snprintf(name, sizeof(name), "family 0x%02x length %zu", cases[i].fam, cases[i].len);
        assert_bad(name, hdr, n);
    }
}

static void test_v2_bad_signature_is_bad_at_first_wrong_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < 12; i++) {
        uint8_t hdr[16];
        memcpy(hdr, v2_sig, 12);
        hdr[i] ^= 0x20;
        char name[32];
        snprintf(name, sizeof(name), "signature byte %zu", i);
        assert_bad(name, hdr, i + 1);
    }
    /* "QUIX": a whole fixed part that is one byte off */
    static const uint8_t body[] = { 10, 9, 8, 7, 10, 0, 0, 1, 0x15, 0xB3, 0x00, 0x50 };
    uint8_t hdr[64];
    size_t n = v2_header(hdr, 0x21, 0x11, body, sizeof(body));
    hdr[10] = 'X';
    assert_bad("QUIX", hdr, n);
}

/* ---- random buffers -------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;     /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

/* One random buffer: pure noise, a v1-ish line from a small alphabet, a v2
 * fixed part with random fields, or a valid header with a few bytes changed. */
static size_t fuzz_buffer(uint8_t *buf, size_t cap)
{
    static const char alpha[] = "PROXY TCP46UNKOWN0123456789abcdef.: \r\n";
    size_t len = rng_below(cap + 1);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rng();
    switch (rng_below(5)) {
    case 0:
        break;
    case 1:
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)alpha[rng_below(sizeof(alpha) - 1)];
        if (len >= 6)
            memcpy(buf, "PROXY ", 6);
        if (len >= 11)
            memcpy(buf + 6, rng() & 1 ? "TCP4 " : "TCP6 ", 5);
        break;
    case 2: {
        size_t n = len < 16 ? len : 16;
        uint8_t fixed[16];
        memcpy(fixed, v2_sig, 12);
        fixed[12] = (uint8_t)(rng() & 1 ? 0x21 : rng());
        fixed[13] = (uint8_t)(rng() & 1 ? 0x11 : rng() & 1 ? 0x21 : rng());
        size_t body = rng() & 1 ? rng_below(64) : rng_below(0x10000);
        fixed[14] = (uint8_t)(body >> 8);
        fixed[15] = (uint8_t)body;
        memcpy(buf, fixed, n);
        break;
    }
    default: {
        struct sockaddr_storage s = addr(rng() & 1 ? "192.0.2.1" : "2001:db8::1",
                                         (uint16_t)rng());
        struct sockaddr_storage d = addr(s.ss_family == AF_INET ? "198.51.100.2"
                                                                : "2001:db8::2",
                                         (uint16_t)rng());
        uint8_t hdr[PROXY_HEADER_MAX];
        size_t n = proxy_proto_build(rng() & 1 ? PROXY_V1 : PROXY_V2, (struct sockaddr *)&s,
                               (struct sockaddr *)&d, hdr);
        size_t flips = rng_below(4);
        for (size_t f = 0; f < flips && n > 0; f++)
            hdr[rng_below(n)] = (uint8_t)rng();
        if (len < n)
            len = n + rng_below(cap - n + 1);
        memcpy(buf, hdr, n);
        break;
    }
    }
    return len;
}

static void test_random_buffers_never_crash_or_overrun(void **state)
{
    (void)state;
    enum { CAP = PROXY_HEADER_MAX + 64 };
    uint8_t buf[CAP];
    size_t counts[3] = { 0, 0, 0 };
    for (unsigned iter = 0; iter < 100000; iter++) {
        size_t len = fuzz_buffer(buf, CAP);
        struct parsed p = parse(buf, len);
        if (p.r != PROXY_PARSE_MORE && p.r != PROXY_PARSE_DONE && p.r != PROXY_PARSE_BAD)
            fail_msg("iteration %u: result %d", iter, (int)p.r);
        counts[p.r == PROXY_PARSE_DONE ? 1 : p.r == PROXY_PARSE_BAD ? 2 : 0]++;
        if (p.r != PROXY_PARSE_DONE)
            continue;
        if (p.consumed > len || p.consumed < 15 || p.consumed > PROXY_HEADER_MAX) {
            dump("buffer", buf, len);
            fail_msg("iteration %u: DONE consumed %zu of %zu", iter, p.consumed, len);
        }
        if (p.has_addr != 0 && p.has_addr != 1)
            fail_msg("iteration %u: has_addr %d", iter, p.has_addr);
        if (p.has_addr == 1) {
            assert_true(p.src.ss_family == AF_INET || p.src.ss_family == AF_INET6);
            assert_int_equal(p.src.ss_family, p.dst.ss_family);
        }
        /* the header alone parses the same; a shorter prefix is incomplete */
        struct parsed q = parse(buf, p.consumed);
        if (q.r != PROXY_PARSE_DONE || q.consumed != p.consumed || q.has_addr != p.has_addr) {
            dump("buffer", buf, len);
            fail_msg("iteration %u: header alone gives %s consumed %zu", iter,
                     result_str(q.r), q.consumed);
        }
        size_t k = rng_below(p.consumed);
        q = parse(buf, k);
        if (q.r != PROXY_PARSE_MORE) {
            dump("buffer", buf, len);
            fail_msg("iteration %u: %zu-byte prefix of a %zu-byte header gives %s", iter, k,
                     p.consumed, result_str(q.r));
        }
    }
    /* the generator must reach every outcome, or the loop proves little */
    assert_true(counts[0] > 100);       /* MORE */
    assert_true(counts[1] > 1000);      /* DONE */
    assert_true(counts[2] > 1000);      /* BAD */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_v1_ipv4_is_byte_exact),
        cmocka_unit_test(test_build_v1_ipv6_is_byte_exact),
        cmocka_unit_test(test_build_v1_longest_ipv6_line_is_104_bytes),
        cmocka_unit_test(test_build_v1_extreme_ipv4_values),
        cmocka_unit_test(test_build_v1_mixed_or_non_ip_families_say_unknown),
        cmocka_unit_test(test_build_v2_ipv4_is_byte_exact),
        cmocka_unit_test(test_build_v2_ipv6_is_byte_exact),
        cmocka_unit_test(test_build_v2_mixed_families_is_local),
        cmocka_unit_test(test_build_none_writes_nothing),
        cmocka_unit_test(test_build_then_parse_round_trips),
        cmocka_unit_test(test_mixed_families_round_trip_without_address),
        cmocka_unit_test(test_v1_fed_bytewise_is_more_until_crlf),
        cmocka_unit_test(test_v1_ipv6_fed_bytewise),
        cmocka_unit_test(test_v2_fed_bytewise_is_more_until_complete),
        cmocka_unit_test(test_v2_tlvs_after_addresses_are_consumed),
        cmocka_unit_test(test_v2_ipv6_with_tlv_fed_bytewise),
        cmocka_unit_test(test_v2_largest_allowed_header_is_done),
        cmocka_unit_test(test_v2_local_is_done_without_address),
        cmocka_unit_test(test_v2_proxy_unspec_is_done_without_address),
        cmocka_unit_test(test_v1_unknown_is_done_without_address),
        cmocka_unit_test(test_malformed_v1_is_bad),
        cmocka_unit_test(test_malformed_v1_is_never_done_bytewise),
        cmocka_unit_test(test_impossible_v1_prefix_is_bad_at_once),
        cmocka_unit_test(test_v1_line_of_107_bytes_is_the_longest_accepted),
        cmocka_unit_test(test_v1_no_crlf_in_108_bytes_is_bad),
        cmocka_unit_test(test_v1_crlf_must_end_within_107_bytes),
        cmocka_unit_test(test_valid_prefixes_are_more),
        cmocka_unit_test(test_v2_bad_version_is_bad),
        cmocka_unit_test(test_v2_unknown_command_is_bad),
        cmocka_unit_test(test_v2_unknown_family_is_bad),
        cmocka_unit_test(test_v2_length_over_max_is_bad),
        cmocka_unit_test(test_v2_length_too_short_for_addresses_is_bad),
        cmocka_unit_test(test_v2_bad_signature_is_bad_at_first_wrong_byte),
        cmocka_unit_test(test_random_buffers_never_crash_or_overrun),
    };
    return cmocka_run_group_tests_name("proxy", tests, NULL, NULL) ? 1 : 0;
}
