/* proxy_proto.c — PROXY protocol v1 (text) and v2 (binary) headers (see
 * proxy_proto.h). The parser is strict: anything the spec does not allow is BAD, so a
 * listener that expects the header never mistakes a client's bytes for one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

static const uint8_t proxy_v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

static int proxy_same_ip_family(const struct sockaddr *a, const struct sockaddr *b)
{
    return a != NULL && b != NULL && a->sa_family == b->sa_family &&
           (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

static size_t proxy_build_v1(const struct sockaddr *src, const struct sockaddr *dst,
                             uint8_t *out)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    int n;
    if (!proxy_same_ip_family(src, dst)) {
        n = snprintf((char *)out, PROXY_V1_MAX + 1, "PROXY UNKNOWN\r\n");
    } else if (src->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
        n = snprintf((char *)out, PROXY_V1_MAX + 1, "PROXY TCP4 %s %s %u %u\r\n", s, d,
                     ntohs(a->sin_port), ntohs(b->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
        n = snprintf((char *)out, PROXY_V1_MAX + 1, "PROXY TCP6 %s %s %u %u\r\n", s, d,
                     ntohs(a->sin6_port), ntohs(b->sin6_port));
    }
    return n > 0 ? (size_t)n : 0;
}

static size_t proxy_build_v2(const struct sockaddr *src, const struct sockaddr *dst,
                             uint8_t *out)
{
    memcpy(out, proxy_v2_sig, sizeof(proxy_v2_sig));
    uint8_t *p = out + PROXY_V2_FIXED;
    uint16_t len = 0;
    if (!proxy_same_ip_family(src, dst)) {
        out[12] = 0x20;          /* version 2, LOCAL */
        out[13] = 0x00;          /* UNSPEC */
    } else if (src->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        out[12] = 0x21;          /* version 2, PROXY */
        out[13] = 0x11;          /* AF_INET, STREAM */
        memcpy(p, &a->sin_addr, 4);
        memcpy(p + 4, &b->sin_addr, 4);
        memcpy(p + 8, &a->sin_port, 2);
        memcpy(p + 10, &b->sin_port, 2);
        len = 12;
    } else {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        out[12] = 0x21;
        out[13] = 0x21;          /* AF_INET6, STREAM */
        memcpy(p, &a->sin6_addr, 16);
        memcpy(p + 16, &b->sin6_addr, 16);
        memcpy(p + 32, &a->sin6_port, 2);
        memcpy(p + 34, &b->sin6_port, 2);
        len = 36;
    }
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    return PROXY_V2_FIXED + len;
}

size_t proxy_proto_build(enum proxy_version v, const struct sockaddr *src,
                   const struct sockaddr *dst, uint8_t *out)
{
    if (v == PROXY_V1)
        return proxy_build_v1(src, dst, out);
    if (v == PROXY_V2)
        return proxy_build_v2(src, dst, out);
    return 0;
}

/* ---- parsing ---------------------------------------------------------------- */

/* A decimal port 0-65535 without sign or leading zeros. */
static int proxy_parse_port(const char *text, uint16_t *port)
{
    size_t n = strlen(text);
    if (n == 0 || n > 5 || (n > 1 && text[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static enum proxy_proto_result proxy_parse_v1(const uint8_t *buf, size_t len,
                                              size_t *consumed,
                                              struct sockaddr_storage *src,
                                              struct sockaddr_storage *dst, int *has_addr)
{
    /* The CR must come within the first PROXY_V1_MAX - 1 bytes, and only
     * printable bytes may come before it: anything else can never become a
     * header, so it is BAD at once rather than after a timeout. */
    size_t scan = len < PROXY_V1_MAX - 1 ? len : PROXY_V1_MAX - 1;
    const uint8_t *cr = NULL;
    for (size_t i = 0; i < scan; i++) {
        if (buf[i] == '\r') {
            cr = buf + i;
            break;
        }
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return PROXY_PARSE_BAD;
    }
    if (cr == NULL)
        return len >= PROXY_V1_MAX - 1 ? PROXY_PARSE_BAD : PROXY_PARSE_MORE;
    size_t line = (size_t)(cr - buf);
    if (line + 1 >= len)
        return PROXY_PARSE_MORE;
    if (cr[1] != '\n')
        return PROXY_PARSE_BAD;

    char text[PROXY_V1_MAX + 1];
    memcpy(text, buf, line);
    text[line] = '\0';
    for (size_t i = 0; i < line; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            return PROXY_PARSE_BAD;
    *consumed = line + 2;
    *has_addr = 0;
    if (strcmp(text, "PROXY UNKNOWN") == 0 || strncmp(text, "PROXY UNKNOWN ", 14) == 0)
        return PROXY_PARSE_DONE;

    char *words[7];
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(text, " ", &save); w != NULL && n < 7;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    /* exactly single spaces: the rebuilt length must match */
    if (n != 6 || strcmp(words[0], "PROXY") != 0)
        return PROXY_PARSE_BAD;
    size_t rebuilt = 5;
    for (size_t i = 0; i < n; i++)
        rebuilt += strlen(words[i]);
    if (rebuilt != line)
        return PROXY_PARSE_BAD;

    uint16_t sport, dport;
    if (proxy_parse_port(words[4], &sport) == -1 || proxy_parse_port(words[5], &dport) == -1)
        return PROXY_PARSE_BAD;
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    if (strcmp(words[1], "TCP4") == 0) {
        struct sockaddr_in *a = (void *)src, *b = (void *)dst;
        if (inet_pton(AF_INET, words[2], &a->sin_addr) != 1 ||
            inet_pton(AF_INET, words[3], &b->sin_addr) != 1)
            return PROXY_PARSE_BAD;
        a->sin_family = b->sin_family = AF_INET;
        a->sin_port = htons(sport);
        b->sin_port = htons(dport);
    } else if (strcmp(words[1], "TCP6") == 0) {
        struct sockaddr_in6 *a = (void *)src, *b = (void *)dst;
        if (inet_pton(AF_INET6, words[2], &a->sin6_addr) != 1 ||
            inet_pton(AF_INET6, words[3], &b->sin6_addr) != 1)
            return PROXY_PARSE_BAD;
        a->sin6_family = b->sin6_family = AF_INET6;
        a->sin6_port = htons(sport);
        b->sin6_port = htons(dport);
    } else {
        return PROXY_PARSE_BAD;
    }
    *has_addr = 1;
    return PROXY_PARSE_DONE;
}

static enum proxy_proto_result proxy_parse_v2(const uint8_t *buf, size_t len,
                                              size_t *consumed,
                                              struct sockaddr_storage *src,
                                              struct sockaddr_storage *dst, int *has_addr)
{
    if (len < PROXY_V2_FIXED)
        return PROXY_PARSE_MORE;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = ((size_t)buf[14] << 8) | buf[15];
    if ((ver_cmd >> 4) != 2 || (ver_cmd & 0x0F) > 1)
        return PROXY_PARSE_BAD;
    if (PROXY_V2_FIXED + body > PROXY_HEADER_MAX)
        return PROXY_PARSE_BAD;
    if (len < PROXY_V2_FIXED + body)
        return PROXY_PARSE_MORE;
    *consumed = PROXY_V2_FIXED + body;
    *has_addr = 0;
    if ((ver_cmd & 0x0F) == 0)      /* LOCAL: health check of the proxy */
        return PROXY_PARSE_DONE;

    const uint8_t *p = buf + PROXY_V2_FIXED;
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    switch (fam) {
    case 0x11: {                    /* TCP over IPv4 */
        if (body < 12)
            return PROXY_PARSE_BAD;
        struct sockaddr_in *a = (void *)src, *b = (void *)dst;
        a->sin_family = b->sin_family = AF_INET;
        memcpy(&a->sin_addr, p, 4);
        memcpy(&b->sin_addr, p + 4, 4);
        memcpy(&a->sin_port, p + 8, 2);
        memcpy(&b->sin_port, p + 10, 2);
        *has_addr = 1;
        return PROXY_PARSE_DONE;
    }
    case 0x21: {                    /* TCP over IPv6 */
        if (body < 36)
            return PROXY_PARSE_BAD;
        struct sockaddr_in6 *a = (void *)src, *b = (void *)dst;
        a->sin6_family = b->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, p, 16);
        memcpy(&b->sin6_addr, p + 16, 16);
        memcpy(&a->sin6_port, p + 32, 2);
        memcpy(&b->sin6_port, p + 34, 2);
        *has_addr = 1;
        return PROXY_PARSE_DONE;
    }
    case 0x00:                      /* UNSPEC */
    case 0x12: case 0x22:           /* UDP */
    case 0x31: case 0x32:           /* UNIX */
        return PROXY_PARSE_DONE;    /* valid, but no TCP address to use */
    default:
        return PROXY_PARSE_BAD;
    }
}

enum proxy_proto_result proxy_proto_parse(const uint8_t *buf, size_t len, size_t *consumed,
                                    struct sockaddr_storage *src,
                                    struct sockaddr_storage *dst, int *has_addr)
{
    static const char v1[] = "PROXY ";
    if (len == 0)
        return PROXY_PARSE_MORE;
    if (buf[0] == 'P') {
        size_t n = len < 6 ? len : 6;
        if (memcmp(buf, v1, n) != 0)
            return PROXY_PARSE_BAD;
        if (len < 6)
            return PROXY_PARSE_MORE;
        return proxy_parse_v1(buf, len, consumed, src, dst, has_addr);
    }
    size_t n = len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig);
    if (memcmp(buf, proxy_v2_sig, n) != 0)
        return PROXY_PARSE_BAD;
    if (len < sizeof(proxy_v2_sig))
        return PROXY_PARSE_MORE;
    return proxy_parse_v2(buf, len, consumed, src, dst, has_addr);
}
