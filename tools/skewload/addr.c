/* addr.c — target resolution and the client address plan. Client addresses
 * are computed, not stored, so --clients 65536 costs no memory here. */

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"

/* Usable last octets per /24: 2..254. */
#define ADDR_PER_24 253

int addr_parse_target(const char *text, struct sockaddr_in *out, char *err,
                      size_t errlen)
{
    char host[256];
    const char *colon = strrchr(text, ':');

    if (text[0] == '[') {
        snprintf(err, errlen, "%s: IPv6 targets are not supported (the client "
                 "addresses are IPv4)", text);
        return -1;
    }
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof host) {
        snprintf(err, errlen, "%s: expected HOST:PORT", text);
        return -1;
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || atoi(port) < 1
        || atoi(port) > 65535) {
        snprintf(err, errlen, "%s: bad port", text);
        return -1;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';

    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", text, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, sizeof *out);
    freeaddrinfo(res);
    return 0;
}

int addr_is_loopback(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

struct in_addr addr_client(struct in_addr base, size_t i)
{
    uint32_t b = ntohl(base.s_addr);
    /* Position in the sequence of usable addresses, counted from the start
     * of base's /24. */
    uint64_t pos = (uint64_t)((b & 0xff) - 2) + i;
    uint64_t net = (uint64_t)(b >> 8) + pos / ADDR_PER_24;
    struct in_addr a;

    a.s_addr = htonl((uint32_t)((net << 8) | (2 + pos % ADDR_PER_24)));
    return a;
}

int addr_check_clients(struct in_addr base, size_t n, char *err, size_t errlen)
{
    uint32_t b = ntohl(base.s_addr);
    char text[INET_ADDRSTRLEN];

    if ((b & 0xff) < 2 || (b & 0xff) > 254) {
        snprintf(err, errlen, "--client-base %s: the last octet must be 2..254",
                 addr_str(base, text, sizeof text));
        return -1;
    }
    if (n == 0)
        return 0;
    uint64_t pos = (uint64_t)((b & 0xff) - 2) + (n - 1);
    uint64_t net = (uint64_t)(b >> 8) + pos / ADDR_PER_24;
    if ((net >> 16) != (b >> 24)) {
        snprintf(err, errlen, "--clients %zu from %s: the addresses leave %u.0.0.0/8",
                 n, addr_str(base, text, sizeof text), (unsigned)(b >> 24));
        return -1;
    }
    return 0;
}

const char *addr_str(struct in_addr a, char *buf, size_t buflen)
{
    if (inet_ntop(AF_INET, &a, buf, (socklen_t)buflen) == NULL)
        snprintf(buf, buflen, "?");
    return buf;
}
