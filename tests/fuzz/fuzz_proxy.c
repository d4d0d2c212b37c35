/* fuzz_proxy.c — libFuzzer target for the PROXY protocol parser,
 * proxy_proto_parse(), over the first bytes a client sent to an accept_proxy
 * listener. Besides memory errors it checks what session.c relies on: a
 * header that parses is no longer than the input, every shorter read of it
 * (the header arriving in pieces) asks for more instead of calling it bad,
 * and the addresses it carries come back unchanged through proxy_proto_build()
 * and proxy_proto_parse() in both versions. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_proxy_result {
    enum proxy_proto_result r;
    size_t consumed;
    struct sockaddr_storage src, dst;
    int has_addr;
};

/* Parses the first n bytes from a buffer of exactly n bytes, so that the
 * address sanitizer sees any read past them. */
static void fuzz_proxy_parse(const uint8_t *data, size_t n, struct fuzz_proxy_result *res)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, n);
    memset(res, 0, sizeof(*res));
    res->r = proxy_proto_parse(copy, n, &res->consumed, &res->src, &res->dst, &res->has_addr);
    free(copy);
}

/* 1 if a and b hold the same TCP address and port. */
static int fuzz_proxy_same_addr(const struct sockaddr_storage *a,
                                const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port &&
               memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr)) == 0;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static void fuzz_proxy_round_trip(enum proxy_version v, const struct fuzz_proxy_result *got)
{
    uint8_t hdr[PROXY_HEADER_MAX];
    size_t n = proxy_proto_build(v, (const struct sockaddr *)&got->src,
                           (const struct sockaddr *)&got->dst, hdr);
    if (n == 0 || n > PROXY_HEADER_MAX || (v == PROXY_V1 && n > PROXY_V1_MAX))
        abort();
    struct fuzz_proxy_result back;
    fuzz_proxy_parse(hdr, n, &back);
    if (back.r != PROXY_PARSE_DONE || back.consumed != n || !back.has_addr ||
        !fuzz_proxy_same_addr(&back.src, &got->src) ||
        !fuzz_proxy_same_addr(&back.dst, &got->dst))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_proxy_result got;
    memset(&got, 0, sizeof(got));
    got.r = proxy_proto_parse(data, size, &got.consumed, &got.src, &got.dst, &got.has_addr);
    if (got.r != PROXY_PARSE_DONE)
        return 0;
    if (got.consumed == 0 || got.consumed > size || got.consumed > PROXY_HEADER_MAX)
        abort();

    for (size_t n = 0; n < got.consumed; n++) {
        struct fuzz_proxy_result part;
        fuzz_proxy_parse(data, n, &part);
        if (part.r != PROXY_PARSE_MORE)
            abort();
    }
    struct fuzz_proxy_result exact;
    fuzz_proxy_parse(data, got.consumed, &exact);
    if (exact.r != PROXY_PARSE_DONE || exact.consumed != got.consumed ||
        exact.has_addr != got.has_addr)
        abort();

    if (got.has_addr) {
        if (got.src.ss_family != got.dst.ss_family ||
            (got.src.ss_family != AF_INET && got.src.ss_family != AF_INET6))
            abort();
        fuzz_proxy_round_trip(PROXY_V1, &got);
        fuzz_proxy_round_trip(PROXY_V2, &got);
    }
    return 0;
}
