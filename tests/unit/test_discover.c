/* test_discover.c — discover.c's pure parsers: the `discover` spec
 * (HOST:PORT, srv:NAME), `[global] resolvers` into c-ares' CSV, and the
 * answers of the name servers, SRV and A/AAAA, built byte by byte here
 * (header, question, answers with compression pointers, CNAME chains,
 * truncated and garbage messages). The lookups themselves (c-ares on the
 * main loop) are left to the integration tests. */
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

#include "discover.h"
#include "membership.h"
#include "pool.h"

/* ---- the spec ------------------------------------------------------------------ */

struct spec_case {
    const char *text;
    enum discover_kind kind;
    const char *name;
    unsigned port;
};

static const struct spec_case spec_good[] = {
    { "backend.example.com:8080", DISCOVER_HOST, "backend.example.com", 8080 },
    { "localhost:1", DISCOVER_HOST, "localhost", 1 },
    { "a:65535", DISCOVER_HOST, "a", 65535 },
    { "web-1.svc.cluster.local:80", DISCOVER_HOST, "web-1.svc.cluster.local", 80 },
    { "_under_score.example:443", DISCOVER_HOST, "_under_score.example", 443 },
    { "10.0.0.5:80", DISCOVER_HOST, "10.0.0.5", 80 },   /* digits and dots: a name */
    { "example.com.:80", DISCOVER_HOST, "example.com.", 80 },   /* fully qualified */
    { "srv:_http._tcp.example.com", DISCOVER_SRV, "_http._tcp.example.com", 0 },
    { "srv:_pg._tcp.db", DISCOVER_SRV, "_pg._tcp.db", 0 },
    { "srv:x", DISCOVER_SRV, "x", 0 },
};

static void test_spec_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(spec_good) / sizeof(spec_good[0]); i++) {
        const struct spec_case *c = &spec_good[i];
        struct discover_spec spec;
        char err[256] = "";
        memset(&spec, 0xa5, sizeof(spec));
        if (discover_parse_spec(c->text, &spec, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", c->text, err);
        assert_int_equal(spec.kind, c->kind);
        assert_string_equal(spec.name, c->name);
        assert_int_equal(spec.port, c->port);
    }
}

static const char *const spec_bad[] = {
    "example.com",              /* no port */
    "example.com:",             /* empty port */
    ":80",                      /* empty host */
    "example.com:0",
    "example.com:65536",
    "example.com:99999999999999999999",
    "example.com:80x",
    "example.com:x80",
    "exa mple.com:80",
    "exa*mple.com:80",
    "exa/mple.com:80",
    "[::1]:80",                 /* an IPv6 literal is no DNS name */
    "user@example.com:80",
    "srv:",                     /* empty SRV name */
    "srv:bad name",
    "srv:a:b",
    "srv:_http._tcp.example.com:80",
    "",
};

static void test_spec_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(spec_bad) / sizeof(spec_bad[0]); i++) {
        struct discover_spec spec;
        char err[256] = "";
        if (discover_parse_spec(spec_bad[i], &spec, err, sizeof(err)) != -1)
            fail_msg("'%s' accepted", spec_bad[i]);
        if (strncmp(err, "discover: ", 10) != 0)
            fail_msg("'%s': message '%s' does not say discover", spec_bad[i], err);
    }
}

/* A name is at most 253 characters, in both forms. */
static void test_spec_name_length(void **state)
{
    (void)state;
    char name[300], text[320], err[512];
    struct discover_spec spec;
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < 253; i += 64)
        name[i] = '.';                      /* labels of at most 63 */
    name[DISCOVER_NAME_MAX] = '\0';

    snprintf(text, sizeof(text), "%s:80", name);
    assert_int_equal(discover_parse_spec(text, &spec, err, sizeof(err)), 0);
    assert_int_equal(strlen(spec.name), DISCOVER_NAME_MAX);
    assert_int_equal(spec.port, 80);
    snprintf(text, sizeof(text), "srv:%s", name);
    assert_int_equal(discover_parse_spec(text, &spec, err, sizeof(err)), 0);
    assert_int_equal(strlen(spec.name), DISCOVER_NAME_MAX);

    name[DISCOVER_NAME_MAX] = 'a';
    name[DISCOVER_NAME_MAX + 1] = '\0';     /* 254 */
    snprintf(text, sizeof(text), "%s:80", name);
    assert_int_equal(discover_parse_spec(text, &spec, err, sizeof(err)), -1);
    snprintf(text, sizeof(text), "srv:%s", name);
    assert_int_equal(discover_parse_spec(text, &spec, err, sizeof(err)), -1);
}

/* Regression (found by this file, fixed): discover_parse_spec and discover_parse_resolvers read ports
       * with strtoul(), which skips blanks and takes a sign: "host:+80",
       * "host: 80" and "host:-18446744073709551535" (which wraps to 81)
       * are accepted, and so are "10.0.0.1:+53" and "10.0.0.1:-18446744073709551563"
       * in resolvers, where every other address of the config
       * (net_parse_port) wants digits only. */
static void test_ports_are_digits_only(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "example.com:+80", "example.com: 80", "example.com:-18446744073709551535",
    };
    struct discover_spec spec;
    char err[256], out[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (discover_parse_spec(bad[i], &spec, err, sizeof(err)) != -1)
            fail_msg("'%s' accepted as port %u", bad[i], spec.port);
    static const char *const bad_resolvers[] = {
        "10.0.0.1:+53", "10.0.0.1:-18446744073709551563",
    };
    for (size_t i = 0; i < sizeof(bad_resolvers) / sizeof(bad_resolvers[0]); i++)
        if (discover_parse_resolvers(bad_resolvers[i], out, sizeof(out), err,
                                     sizeof(err)) != -1)
            fail_msg("'%s' accepted as '%s'", bad_resolvers[i], out);
}

/* ---- resolvers ----------------------------------------------------------------- */

struct resolvers_case {
    const char *text, *csv;
};

static const struct resolvers_case resolvers_good[] = {
    { "10.0.0.53", "10.0.0.53:53" },
    { "10.0.0.53:5353", "10.0.0.53:5353" },
    { "[2001:db8::53]", "[2001:db8::53]:53" },
    { "[2001:db8::53]:5353", "[2001:db8::53]:5353" },
    { "[::1]:1", "[::1]:1" },
    { "127.0.0.1:65535", "127.0.0.1:65535" },
    { "10.0.0.1 10.0.0.2", "10.0.0.1:53,10.0.0.2:53" },
    { "10.0.0.1,10.0.0.2", "10.0.0.1:53,10.0.0.2:53" },
    { "10.0.0.1, [::1]:54\t10.0.0.3:55", "10.0.0.1:53,[::1]:54,10.0.0.3:55" },
    { " ,, 10.0.0.1 ,, ", "10.0.0.1:53" },
    { "\t10.0.0.1\t", "10.0.0.1:53" },
};

static void test_resolvers_lists(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resolvers_good) / sizeof(resolvers_good[0]); i++) {
        const struct resolvers_case *c = &resolvers_good[i];
        char out[256], err[256] = "";
        memset(out, 'x', sizeof(out));
        if (discover_parse_resolvers(c->text, out, sizeof(out), err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", c->text, err);
        assert_string_equal(out, c->csv);
    }
}

static const char *const resolvers_bad[] = {
    "",
    " ",
    ",,,",
    "dns.example.com",          /* a name: resolving it would need a resolver */
    "10.0.0.1:0",
    "10.0.0.1:65536",
    "10.0.0.1:",
    "10.0.0.1:x",
    "10.0.0.1:53x",
    "10.0.0.1 dns.example.com",
    "::1",                      /* IPv6 without brackets */
    "2001:db8::53:53",
    "[::1",                     /* unclosed bracket */
    "[::1]x",
    "[::1]:",
    "[::1]:0",
    "[]",
    "[dns.example.com]:53",
    "10.0.0.256",
    "10.0.0.1:53:53",
    /* one word of 80 characters or more */
    "10.0.0.1:53.......................................................................",
};

static void test_resolvers_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resolvers_bad) / sizeof(resolvers_bad[0]); i++) {
        char out[256], err[256] = "";
        if (discover_parse_resolvers(resolvers_bad[i], out, sizeof(out), err,
                                     sizeof(err)) != -1)
            fail_msg("'%s' accepted as '%s'", resolvers_bad[i], out);
        if (strncmp(err, "resolvers: ", 11) != 0)
            fail_msg("'%s': message '%s' does not say resolvers", resolvers_bad[i], err);
    }
}

/* The output buffer bounds the list: exactly enough is enough, one byte
 * less is an error, never an overflow. */
static void test_resolvers_output_bound(void **state)
{
    (void)state;
    const char *text = "10.0.0.1 [2001:db8::1]:5353";
    const char *want = "10.0.0.1:53,[2001:db8::1]:5353";
    size_t need = strlen(want) + 1;
    char err[256];
    char *out = malloc(need);
    assert_non_null(out);
    assert_int_equal(discover_parse_resolvers(text, out, need, err, sizeof(err)), 0);
    assert_string_equal(out, want);
    free(out);
    for (size_t len = 1; len < need; len++) {
        out = malloc(len);          /* exact size: ASan sees a write past it */
        assert_non_null(out);
        assert_int_equal(discover_parse_resolvers(text, out, len, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "too many"));
        free(out);
    }
}

/* ---- DNS messages, byte by byte -------------------------------------------------- */

#define T_A_ 1
#define T_CNAME_ 5
#define T_AAAA_ 28
#define T_SRV_ 33
#define DNS_QNAME 12            /* the question's name: what answers point to */

struct dns {
    unsigned char b[16384];
    size_t len;
};

static void put8(struct dns *m, unsigned v)
{
    assert_true(m->len < sizeof(m->b));
    m->b[m->len++] = (unsigned char)v;
}

static void put16(struct dns *m, unsigned v)
{
    put8(m, (v >> 8) & 0xff);
    put8(m, v & 0xff);
}

static void put32(struct dns *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void put_bytes(struct dns *m, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(m, ((const unsigned char *)p)[i]);
}

/* The labels of <name> ("a.b.c", "" for none) without the end. */
static void put_labels(struct dns *m, const char *name)
{
    while (*name != '\0') {
        size_t len = strcspn(name, ".");
        assert_true(len > 0 && len < 64);
        put8(m, (unsigned)len);
        put_bytes(m, name, len);
        name += len;
        if (*name == '.')
            name++;
    }
}

/* <name> uncompressed; returns where it starts. */
static size_t put_name(struct dns *m, const char *name)
{
    size_t at = m->len;
    put_labels(m, name);
    put8(m, 0);
    return at;
}

/* The labels of <prefix>, then a pointer to the name at <off>. */
static size_t put_name_ptr(struct dns *m, const char *prefix, size_t off)
{
    size_t at = m->len;
    put_labels(m, prefix);
    put16(m, 0xc000 | (unsigned)off);
    return at;
}

/* A standard answer's header (id, QR RD RA, NOERROR, one question) and the
 * question <qname> of <qtype>. */
static void dns_begin(struct dns *m, const char *qname, unsigned qtype)
{
    m->len = 0;
    put16(m, 0x1234);
    put16(m, 0x8180);
    put16(m, 1);        /* qdcount */
    put16(m, 0);        /* ancount: counted by rr_open */
    put16(m, 0);
    put16(m, 0);
    assert_int_equal(put_name(m, qname), DNS_QNAME);
    put16(m, qtype);
    put16(m, 1);        /* IN */
}

/* An answer record owned by the name at <owner>, up to its RDATA; returns
 * where its RDLENGTH goes (rr_close fills it). */
static size_t rr_open(struct dns *m, size_t owner, unsigned type)
{
    unsigned an = (unsigned)(m->b[6] << 8 | m->b[7]) + 1;
    m->b[6] = (unsigned char)(an >> 8);
    m->b[7] = (unsigned char)an;
    put16(m, 0xc000 | (unsigned)owner);
    put16(m, type);
    put16(m, 1);
    put32(m, 300);
    size_t at = m->len;
    put16(m, 0);
    return at;
}

static void rr_close(struct dns *m, size_t at)
{
    size_t rdlen = m->len - at - 2;
    m->b[at] = (unsigned char)(rdlen >> 8);
    m->b[at + 1] = (unsigned char)rdlen;
}

static void add_a(struct dns *m, size_t owner, const char *ip)
{
    unsigned char a[4];
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    size_t at = rr_open(m, owner, T_A_);
    put_bytes(m, a, 4);
    rr_close(m, at);
}

static void add_aaaa(struct dns *m, size_t owner, const char *ip)
{
    unsigned char a[16];
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    size_t at = rr_open(m, owner, T_AAAA_);
    put_bytes(m, a, 16);
    rr_close(m, at);
}

/* A CNAME from <owner> to <prefix> + the question's name (compressed);
 * returns where the target name is, the owner of what follows. */
static size_t add_cname(struct dns *m, size_t owner, const char *prefix)
{
    size_t at = rr_open(m, owner, T_CNAME_);
    size_t target = put_name_ptr(m, prefix, DNS_QNAME);
    rr_close(m, at);
    return target;
}

/* An SRV record for the question: its target <target> written out in
 * full ("" is the root, "no service"). */
static void add_srv(struct dns *m, unsigned prio, unsigned weight, unsigned port,
                    const char *target)
{
    size_t at = rr_open(m, DNS_QNAME, T_SRV_);
    put16(m, prio);
    put16(m, weight);
    put16(m, port);
    put_name(m, target);
    rr_close(m, at);
}

/* An SRV record whose target is <label> + a pointer to the name at <off>. */
static void add_srv_ptr(struct dns *m, unsigned prio, unsigned weight, unsigned port,
                        const char *label, size_t off)
{
    size_t at = rr_open(m, DNS_QNAME, T_SRV_);
    put16(m, prio);
    put16(m, weight);
    put16(m, port);
    put_name_ptr(m, label, off);
    rr_close(m, at);
}

/* Runs the parser on a heap copy of exactly the message's size, so that
 * ASan reports any read past the end. */
static int parse_srv(const struct dns *m, size_t len, struct discover_srv *out, size_t max)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, m->b, len);
    int r = discover_parse_srv(copy, (int)len, out, max);
    free(copy);
    return r;
}

static int parse_addrs(const struct dns *m, size_t len, int type, unsigned port,
                       unsigned weight, struct membership_entry *set, size_t *n,
                       size_t max)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, m->b, len);
    int r = discover_parse_addrs(copy, (int)len, type, port, weight, set, n, max);
    free(copy);
    return r;
}

static void assert_srv(const struct discover_srv *s, const char *target, unsigned port,
                       unsigned weight, unsigned prio)
{
    assert_string_equal(s->target, target);
    assert_int_equal(s->port, port);
    assert_int_equal(s->weight, weight);
    assert_int_equal(s->priority, prio);
}

/* ---- SRV answers --------------------------------------------------------------- */

#define SRV_Q "_http._tcp.example.com"

/* Only the lowest priority is followed, in the answer's order. */
static void test_srv_lowest_priority_only(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 20, 5, 8020, "backup.example.com");
    add_srv(&m, 10, 3, 8001, "a.example.com");
    add_srv(&m, 30, 5, 8030, "far.example.com");
    add_srv(&m, 10, 1, 8002, "b.example.com");
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_srv(&out[0], "a.example.com", 8001, 3, 10);
    assert_srv(&out[1], "b.example.com", 8002, 1, 10);

    /* priority 0 is the lowest there is */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 65535, 1, 1, "last.example.com");
    add_srv(&m, 0, 1, 2, "first.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 1);
    assert_srv(&out[0], "first.example.com", 2, 1, 0);

    /* a single priority of 65535 (the highest) is still followed */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 65535, 1, 1, "only.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 1);
    assert_srv(&out[0], "only.example.com", 1, 1, 65535);
}

/* Weights up to 256 are server weights as they are, 0 becomes 1. */
static void test_srv_small_weights_kept_zero_is_one(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 0, 80, "zero.example.com");
    add_srv(&m, 1, 1, 80, "one.example.com");
    add_srv(&m, 1, 17, 80, "seventeen.example.com");
    add_srv(&m, 1, 256, 80, "max.example.com");
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 4);
    assert_int_equal(out[0].weight, 1);
    assert_int_equal(out[1].weight, 1);
    assert_int_equal(out[2].weight, 17);
    assert_int_equal(out[3].weight, 256);

    /* all zero: all 1 (equal shares, as RFC 2782 gives them) */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 0, 80, "a.example.com");
    add_srv(&m, 1, 0, 81, "b.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_int_equal(out[0].weight, 1);
    assert_int_equal(out[1].weight, 1);
}

/* Above 256 the heaviest becomes 256 and the others keep their share,
 * rounded, at least 1. */
static void test_srv_large_weights_scaled(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 65535, 80, "heavy.example.com");
    add_srv(&m, 1, 32768, 80, "half.example.com");
    add_srv(&m, 1, 1, 80, "light.example.com");
    add_srv(&m, 1, 0, 80, "zero.example.com");
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 4);
    assert_int_equal(out[0].weight, 256);
    assert_int_equal(out[1].weight, 128);   /* 32768 x 256 / 65535 = 128.0 */
    assert_int_equal(out[2].weight, 1);
    assert_int_equal(out[3].weight, 1);

    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 300, 80, "a.example.com");
    add_srv(&m, 1, 150, 80, "b.example.com");
    add_srv(&m, 1, 257, 80, "c.example.com");
    add_srv(&m, 1, 100, 80, "d.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 4);
    assert_int_equal(out[0].weight, 256);
    assert_int_equal(out[1].weight, 128);
    assert_int_equal(out[2].weight, 219);   /* 257 x 256 / 300 = 219.3 */
    assert_int_equal(out[3].weight, 85);    /* 85.3 */

    /* only the followed priority's weights count: a heavy backup does not
     * shrink them */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 100, 80, "a.example.com");
    add_srv(&m, 1, 200, 80, "b.example.com");
    add_srv(&m, 2, 60000, 80, "backup.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_int_equal(out[0].weight, 100);
    assert_int_equal(out[1].weight, 200);
}

/* Regression (found by this file, fixed): discover_parse_srv takes `heaviest` over every record of the
       * lowest priority, the ones it then drops (port 0, invalid target)
       * included: one such record with a large weight shrinks the weights
       * of those followed, here 100 and 200 (1:2) to 1 and 1. */
static void test_srv_dropped_records_do_not_scale_weights(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 100, 80, "a.example.com");
    add_srv(&m, 1, 200, 80, "b.example.com");
    add_srv(&m, 1, 60000, 0, "port-zero.example.com");
    add_srv(&m, 1, 60000, 80, "");          /* "." : no service */
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_int_equal(out[0].weight, 100);
    assert_int_equal(out[1].weight, 200);
}

/* A record with port 0 is dropped, and its priority does not hide those
 * of a higher one. */
static void test_srv_port_zero_dropped(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 5, 1, 0, "zero.example.com");
    add_srv(&m, 10, 2, 8080, "a.example.com");
    add_srv(&m, 10, 3, 0, "zero2.example.com");
    add_srv(&m, 10, 4, 65535, "b.example.com");
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_srv(&out[0], "a.example.com", 8080, 2, 10);
    assert_srv(&out[1], "b.example.com", 65535, 4, 10);

    /* nothing but port 0: nothing to follow, and no error */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 1, 0, "zero.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 0);
}

/* Targets that are no name tcplb could look up are dropped: the root
 * ("." = no service), a label with a dot or a blank or a '*' in it (c-ares
 * escapes them). Compressed targets are whole names. */
static void test_srv_invalid_target_dropped(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 1, 80, "");                              /* "." */
    size_t at = rr_open(&m, DNS_QNAME, T_SRV_);             /* "we.ird.example.com" */
    put16(&m, 1);
    put16(&m, 1);
    put16(&m, 81);
    put8(&m, 6);
    put_bytes(&m, "we.ird", 6);
    put_name(&m, "example.com");
    rr_close(&m, at);
    at = rr_open(&m, DNS_QNAME, T_SRV_);                    /* "sp ace.example.com" */
    put16(&m, 1);
    put16(&m, 1);
    put16(&m, 82);
    put8(&m, 6);
    put_bytes(&m, "sp ace", 6);
    put_name(&m, "example.com");
    rr_close(&m, at);
    add_srv(&m, 1, 1, 83, "*.example.com");
    add_srv_ptr(&m, 1, 7, 84, "node1", DNS_QNAME + 11);    /* node1.example.com */
    add_srv(&m, 0, 1, 85, "");                              /* a lower priority, but void */
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 1);
    assert_srv(&out[0], "node1.example.com", 84, 7, 1);
}

/* Targets compressed against the question or an earlier target. */
static void test_srv_compressed_targets(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    /* "example.com" of the question starts after "_http" and "_tcp" */
    size_t example = DNS_QNAME + 1 + 5 + 1 + 4;
    add_srv_ptr(&m, 1, 1, 80, "a", example);
    size_t first_target = m.len - 4;                        /* "a" + pointer */
    add_srv_ptr(&m, 1, 2, 81, "b.c", first_target);         /* b.c.a.example.com */
    struct discover_srv out[8];
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    assert_srv(&out[0], "a.example.com", 80, 1, 1);
    assert_srv(&out[1], "b.c.a.example.com", 81, 2, 1);
}

/* At most <max>, the first ones of the answer; max 0 takes none. */
static void test_srv_max_respected(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, SRV_Q, T_SRV_);
    char name[32];
    for (unsigned i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "n%u.example.com", i);
        add_srv(&m, i == 4 ? 9 : 1, 1, 1000 + i, name);    /* n4 is a backup */
    }
    struct discover_srv out[10];
    memset(out, 0, sizeof(out));
    assert_int_equal(parse_srv(&m, m.len, out, 3), 3);
    assert_string_equal(out[0].target, "n0.example.com");
    assert_string_equal(out[2].target, "n2.example.com");
    assert_int_equal(out[3].port, 0);       /* not written past max */
    assert_int_equal(parse_srv(&m, m.len, out, 5), 5);
    assert_string_equal(out[4].target, "n5.example.com");
    assert_int_equal(parse_srv(&m, m.len, out, 10), 9);
    assert_int_equal(parse_srv(&m, m.len, out, 0), 0);
}

/* Answers that do not parse: -1, never a crash or a read past the end. */
static void test_srv_garbage(void **state)
{
    (void)state;
    struct discover_srv out[8];
    struct dns m;

    /* empty, and shorter than a header */
    m.len = 0;
    assert_int_equal(parse_srv(&m, 0, out, 8), -1);
    memset(m.b, 0, 11);
    assert_int_equal(parse_srv(&m, 11, out, 8), -1);

    /* a header alone, no answer */
    dns_begin(&m, SRV_Q, T_SRV_);
    assert_int_equal(parse_srv(&m, m.len, out, 8), -1);

    /* an answer of A records to an SRV question parses, with no SRV in it
     * (c-ares skips records of other types) */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_a(&m, DNS_QNAME, "10.0.0.1");
    assert_int_equal(parse_srv(&m, m.len, out, 8), 0);

    /* every prefix of a good answer is truncated */
    dns_begin(&m, SRV_Q, T_SRV_);
    add_srv(&m, 1, 1, 80, "a.example.com");
    add_srv_ptr(&m, 1, 1, 81, "b", DNS_QNAME + 11);
    assert_int_equal(parse_srv(&m, m.len, out, 8), 2);
    for (size_t len = 0; len < m.len; len++)
        if (parse_srv(&m, len, out, 8) != -1)
            fail_msg("a cut at %zu of %zu parsed", len, m.len);

    /* an SRV RDATA too short for its fields */
    dns_begin(&m, SRV_Q, T_SRV_);
    size_t at = rr_open(&m, DNS_QNAME, T_SRV_);
    put16(&m, 1);
    put16(&m, 1);
    rr_close(&m, at);
    assert_int_equal(parse_srv(&m, m.len, out, 8), -1);

    /* a compression pointer to itself, and one past the end */
    dns_begin(&m, SRV_Q, T_SRV_);
    at = rr_open(&m, DNS_QNAME, T_SRV_);
    put16(&m, 1);
    put16(&m, 1);
    put16(&m, 80);
    put16(&m, 0xc000 | (unsigned)m.len);
    rr_close(&m, at);
    assert_int_equal(parse_srv(&m, m.len, out, 8), -1);
    dns_begin(&m, SRV_Q, T_SRV_);
    at = rr_open(&m, DNS_QNAME, T_SRV_);
    put16(&m, 1);
    put16(&m, 1);
    put16(&m, 80);
    put16(&m, 0xc000 | 0x3fff);
    rr_close(&m, at);
    assert_int_equal(parse_srv(&m, m.len, out, 8), -1);

    /* random bytes */
    srand(7);
    for (int round = 0; round < 2000; round++) {
        m.len = (size_t)(rand() % 200);
        for (size_t i = 0; i < m.len; i++)
            m.b[i] = (unsigned char)rand();
        int r = parse_srv(&m, m.len, out, 8);
        assert_true(r >= -1 && r <= 8);
    }
}

/* ---- A and AAAA answers ---------------------------------------------------------- */

#define HOST_Q "backend.example.com"

static void assert_entry_v4(const struct membership_entry *e, const char *ip,
                            unsigned port, unsigned weight)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&e->addr.ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(e->addr.len, sizeof(*sin));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_int_equal(e->weight, weight);
}

static void assert_entry_v6(const struct membership_entry *e, const char *ip,
                            unsigned port, unsigned weight)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&e->addr.ss;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(e->addr.len, sizeof(*sin6));
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(sin6->sin6_port), port);
    assert_int_equal(e->weight, weight);
}

/* Several A records, each an entry with the port and weight asked for. */
static void test_a_records(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    add_a(&m, DNS_QNAME, "10.0.0.1");
    add_a(&m, DNS_QNAME, "10.0.0.2");
    add_a(&m, DNS_QNAME, "192.168.1.255");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 8080, 7, set, &n, 8), 3);
    assert_int_equal(n, 3);
    assert_entry_v4(&set[0], "10.0.0.1", 8080, 7);
    assert_entry_v4(&set[1], "10.0.0.2", 8080, 7);
    assert_entry_v4(&set[2], "192.168.1.255", 8080, 7);
    /* entries are whole sockaddrs: what membership_sync compares */
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&set[0].addr.ss;
    static const char zero[8];
    assert_memory_equal(sin->sin_zero, zero, sizeof(sin->sin_zero));
}

static void test_aaaa_records(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_AAAA_);
    add_aaaa(&m, DNS_QNAME, "2001:db8::1");
    add_aaaa(&m, DNS_QNAME, "fd00::5");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_AAAA_, 443, 256, set, &n, 8), 2);
    assert_int_equal(n, 2);
    assert_entry_v6(&set[0], "2001:db8::1", 443, 256);
    assert_entry_v6(&set[1], "fd00::5", 443, 256);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&set[0].addr.ss;
    assert_int_equal(sin6->sin6_flowinfo, 0);
    assert_int_equal(sin6->sin6_scope_id, 0);
}

/* The same address twice is one entry, within an answer and across
 * answers into the same set (two SRV targets with one address, or the A
 * then the AAAA answer of a round); the return counts records. */
static void test_addrs_duplicates_folded(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    add_a(&m, DNS_QNAME, "10.0.0.1");
    add_a(&m, DNS_QNAME, "10.0.0.2");
    add_a(&m, DNS_QNAME, "10.0.0.1");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 3);
    assert_int_equal(n, 2);
    /* again: nothing new */
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 3);
    assert_int_equal(n, 2);
    /* the same address on another port is another server */
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 81, 1, set, &n, 8), 3);
    assert_int_equal(n, 4);
    assert_entry_v4(&set[2], "10.0.0.1", 81, 1);
    /* the first weight stays: a duplicate does not overwrite it */
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 9, set, &n, 8), 3);
    assert_int_equal(set[0].weight, 1);
    /* AAAA into the same set */
    dns_begin(&m, HOST_Q, T_AAAA_);
    add_aaaa(&m, DNS_QNAME, "2001:db8::1");
    add_aaaa(&m, DNS_QNAME, "2001:db8:0:0::1");     /* the same, written otherwise */
    assert_int_equal(parse_addrs(&m, m.len, T_AAAA_, 80, 1, set, &n, 8), 2);
    assert_int_equal(n, 5);
    assert_entry_v6(&set[4], "2001:db8::1", 80, 1);
}

/* A CNAME chain is followed to the addresses at its end. */
static void test_addrs_cname_chain(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, "www.example.com", T_A_);
    size_t example = DNS_QNAME + 4;                 /* "example.com" of the question */
    size_t at = rr_open(&m, DNS_QNAME, T_CNAME_);   /* www -> edge.example.com */
    size_t edge = put_name_ptr(&m, "edge", example);
    rr_close(&m, at);
    size_t pool = add_cname(&m, edge, "pool.edge"); /* -> pool.edge.www.example.com */
    add_a(&m, pool, "10.1.0.1");
    add_a(&m, pool, "10.1.0.2");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 2, set, &n, 8), 2);
    assert_int_equal(n, 2);
    assert_entry_v4(&set[0], "10.1.0.1", 80, 2);
    assert_entry_v4(&set[1], "10.1.0.2", 80, 2);

    /* the same for AAAA */
    dns_begin(&m, "www.example.com", T_AAAA_);
    size_t target = add_cname(&m, DNS_QNAME, "v6");
    add_aaaa(&m, target, "2001:db8::7");
    n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_AAAA_, 80, 1, set, &n, 8), 1);
    assert_entry_v6(&set[0], "2001:db8::7", 80, 1);

    /* a CNAME and no address at its end: no record (the round then finds
     * no address and keeps its servers) */
    dns_begin(&m, "www.example.com", T_A_);
    add_cname(&m, DNS_QNAME, "nowhere");
    n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 0);
    assert_int_equal(n, 0);
}

/* At most <max> entries in the set (what was there counts), the records
 * still counted. */
static void test_addrs_max_respected(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    char ip[32];
    for (unsigned i = 1; i <= 6; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%u", i);
        add_a(&m, DNS_QNAME, ip);
    }
    struct membership_entry set[8];
    memset(set, 0, sizeof(set));
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 4), 6);
    assert_int_equal(n, 4);
    assert_entry_v4(&set[3], "10.0.0.4", 80, 1);
    assert_int_equal(set[4].addr.len, 0);       /* nothing written past max */
    /* full already: nothing more */
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 81, 1, set, &n, 4), 6);
    assert_int_equal(n, 4);
    /* max 0 */
    n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 0), 6);
    assert_int_equal(n, 0);
}

/* A type that is neither A nor AAAA: -1. An answer of the other family
 * parses and holds no record of the type asked: 0 (c-ares reads A and AAAA
 * alike, then keeps one family); one with no address record at all, SRV
 * records or nothing: -1. Either way the set stays as it was. */
static void test_addrs_wrong_type(void **state)
{
    (void)state;
    struct dns m;
    struct membership_entry set[8];
    size_t n = 0;
    dns_begin(&m, HOST_Q, T_A_);
    add_a(&m, DNS_QNAME, "10.0.0.1");
    assert_int_equal(parse_addrs(&m, m.len, T_SRV_, 80, 1, set, &n, 8), -1);
    assert_int_equal(parse_addrs(&m, m.len, T_CNAME_, 80, 1, set, &n, 8), -1);
    assert_int_equal(parse_addrs(&m, m.len, 0, 80, 1, set, &n, 8), -1);
    assert_int_equal(parse_addrs(&m, m.len, -1, 80, 1, set, &n, 8), -1);
    assert_int_equal(n, 0);
    assert_int_equal(parse_addrs(&m, m.len, T_AAAA_, 80, 1, set, &n, 8), 0);
    assert_int_equal(n, 0);
    dns_begin(&m, HOST_Q, T_AAAA_);
    add_aaaa(&m, DNS_QNAME, "2001:db8::1");
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 0);
    assert_int_equal(n, 0);
    dns_begin(&m, HOST_Q, T_A_);
    add_srv(&m, 1, 1, 80, "a.example.com");
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), -1);
    assert_int_equal(parse_addrs(&m, m.len, T_AAAA_, 80, 1, set, &n, 8), -1);
    assert_int_equal(n, 0);
    /* no answer at all (NOERROR, NODATA) */
    dns_begin(&m, HOST_Q, T_A_);
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), -1);
    assert_int_equal(n, 0);
}

/* Addresses of another name than the question's (or its CNAME's) are
 * not the question's: c-ares skips them. */
static void test_addrs_other_names_skipped(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    size_t other = DNS_QNAME + 8;                   /* "example.com" */
    add_a(&m, other, "10.9.9.9");
    add_a(&m, DNS_QNAME, "10.0.0.1");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 1);
    assert_int_equal(n, 1);
    assert_entry_v4(&set[0], "10.0.0.1", 80, 1);
}

/* A truncated answer: every prefix of a good one is -1 and leaves the
 * set alone. */
static void test_addrs_truncated(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    size_t target = add_cname(&m, DNS_QNAME, "real");
    add_a(&m, target, "10.0.0.1");
    add_a(&m, target, "10.0.0.2");
    struct membership_entry set[8];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), 2);
    for (size_t len = 0; len < m.len; len++) {
        n = 0;
        if (parse_addrs(&m, len, T_A_, 80, 1, set, &n, 8) != -1)
            fail_msg("a cut at %zu of %zu parsed", len, m.len);
        assert_int_equal(n, 0);
    }
    dns_begin(&m, HOST_Q, T_AAAA_);
    add_aaaa(&m, DNS_QNAME, "2001:db8::1");
    for (size_t len = 0; len < m.len; len++) {
        n = 0;
        if (parse_addrs(&m, len, T_AAAA_, 80, 1, set, &n, 8) != -1)
            fail_msg("a cut at %zu of %zu parsed", len, m.len);
        assert_int_equal(n, 0);
    }
    /* an A RDATA of 3 bytes */
    dns_begin(&m, HOST_Q, T_A_);
    size_t at = rr_open(&m, DNS_QNAME, T_A_);
    put8(&m, 10);
    put8(&m, 0);
    put8(&m, 0);
    rr_close(&m, at);
    n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, 8), -1);
    assert_int_equal(n, 0);
}

static void test_addrs_garbage(void **state)
{
    (void)state;
    struct dns m;
    struct membership_entry set[8];
    srand(11);
    for (int round = 0; round < 2000; round++) {
        m.len = (size_t)(rand() % 200);
        for (size_t i = 0; i < m.len; i++)
            m.b[i] = (unsigned char)rand();
        size_t n = 0;
        int r = parse_addrs(&m, m.len, round % 2 ? T_A_ : T_AAAA_, 80, 1, set, &n, 8);
        assert_true(r >= -1);
        assert_true(n <= 8);
        if (r == -1)
            assert_int_equal(n, 0);
    }
}

/* Regression (found by this file, fixed): discover_parse_addrs hands c-ares a table of 64 records
       * (RECORDS), so an answer of more than 64 addresses gives 64 servers
       * and returns 64, though the set has room for DISCOVER_MAX (256) and
       * the contract says it returns how many records the answer had. */
static void test_addrs_more_than_64_records(void **state)
{
    (void)state;
    struct dns m;
    dns_begin(&m, HOST_Q, T_A_);
    char ip[32];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 200, i % 200 + 1);
        add_a(&m, DNS_QNAME, ip);
    }
    static struct membership_entry set[DISCOVER_MAX];
    size_t n = 0;
    assert_int_equal(parse_addrs(&m, m.len, T_A_, 80, 1, set, &n, DISCOVER_MAX), 100);
    assert_int_equal(n, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_forms),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_spec_name_length),
        cmocka_unit_test(test_ports_are_digits_only),
        cmocka_unit_test(test_resolvers_lists),
        cmocka_unit_test(test_resolvers_errors),
        cmocka_unit_test(test_resolvers_output_bound),
        cmocka_unit_test(test_srv_lowest_priority_only),
        cmocka_unit_test(test_srv_small_weights_kept_zero_is_one),
        cmocka_unit_test(test_srv_large_weights_scaled),
        cmocka_unit_test(test_srv_dropped_records_do_not_scale_weights),
        cmocka_unit_test(test_srv_port_zero_dropped),
        cmocka_unit_test(test_srv_invalid_target_dropped),
        cmocka_unit_test(test_srv_compressed_targets),
        cmocka_unit_test(test_srv_max_respected),
        cmocka_unit_test(test_srv_garbage),
        cmocka_unit_test(test_a_records),
        cmocka_unit_test(test_aaaa_records),
        cmocka_unit_test(test_addrs_duplicates_folded),
        cmocka_unit_test(test_addrs_cname_chain),
        cmocka_unit_test(test_addrs_max_respected),
        cmocka_unit_test(test_addrs_wrong_type),
        cmocka_unit_test(test_addrs_other_names_skipped),
        cmocka_unit_test(test_addrs_truncated),
        cmocka_unit_test(test_addrs_garbage),
        cmocka_unit_test(test_addrs_more_than_64_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
