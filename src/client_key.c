/* client_key.c — client IP keys (see client_key.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "client_key.h"
#include "hash.h"

/* Copies the IP of a v4 address or of a v6 one (its IPv4 client when it is
 * IPv4-mapped): the only place that unwraps mapped addresses. */
static void client_key_set(struct client_key *k, int family, const void *addr)
{
    memset(k, 0, sizeof(*k));
    if (family == AF_INET) {
        k->len = 4;
        memcpy(k->bytes, addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *a = addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            k->len = 4;
            memcpy(k->bytes, &a->s6_addr[12], 4);
        } else {
            k->len = 16;
            memcpy(k->bytes, a->s6_addr, 16);
        }
    }
}

void client_key_from_addr(const struct sockaddr *sa, struct client_key *k)
{
    if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        memset(k, 0, sizeof(*k));
        return;
    }
    if (sa->sa_family == AF_INET)
        client_key_set(k, AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
    else
        client_key_set(k, AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

socklen_t client_key_to_addr(const struct client_key *k, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (k->len == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, k->bytes, 4);
        return sizeof(*sin);
    }
    if (k->len == 16) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, k->bytes, 16);
        return sizeof(*sin6);
    }
    return 0;
}

const char *client_key_str(const struct client_key *k, char *buf, size_t len)
{
    if (k->len == 4)
        inet_ntop(AF_INET, k->bytes, buf, (socklen_t)len);
    else if (k->len == 16)
        inet_ntop(AF_INET6, k->bytes, buf, (socklen_t)len);
    else if (len > 0)
        buf[0] = '\0';
    return buf;
}

int client_key_parse(const char *text, struct client_key *k)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        client_key_set(k, AF_INET, &a4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &a6) == 1) {
        client_key_set(k, AF_INET6, &a6);
        return 0;
    }
    memset(k, 0, sizeof(*k));
    return -1;
}

int client_key_equal(const struct client_key *a, const struct client_key *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

uint64_t client_key_hash(const struct client_key *k, uint64_t salt)
{
    return hash_bytes(k->bytes, k->len, salt);
}
