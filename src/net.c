/* net.c — socket helpers: address parsing and printing, listening sockets,
 * non-blocking connects. Callers get errors through their own buffers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

int net_parse_port(const char *text, unsigned *port)
{
    if (*text == '\0' || strlen(text) > 5)
        return -1;
    unsigned v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* An IP literal of <family> into out, port 0. */
static int net_ip_literal(const char *host, int family, struct net_addr *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (family == AF_INET) {
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        out->len = sizeof(*sin);
    } else {
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        out->len = sizeof(*sin6);
    }
    return 0;
}

static int net_parse_addr_as(const char *text, struct net_addr *out, int resolve,
                             char *err, size_t errlen)
{
    char host[256];
    const char *port_text;
    size_t hostlen;

    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || end[1] != ':') {
            snprintf(err, errlen, "bad address '%s': expected [IPv6]:port", text);
            return -1;
        }
        hostlen = (size_t)(end - text - 1);
        port_text = end + 2;
        if (hostlen == 0 || hostlen >= sizeof(host)) {
            snprintf(err, errlen, "bad address '%s': empty or overlong host", text);
            return -1;
        }
        memcpy(host, text + 1, hostlen);
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon) {
            snprintf(err, errlen, "bad address '%s': expected host:port "
                     "(IPv6 as [addr]:port)", text);
            return -1;
        }
        hostlen = (size_t)(colon - text);
        port_text = colon + 1;
        if (hostlen == 0 || hostlen >= sizeof(host)) {
            snprintf(err, errlen, "bad address '%s': empty or overlong host", text);
            return -1;
        }
        memcpy(host, text, hostlen);
    }
    host[hostlen] = '\0';

    unsigned port;
    if (net_parse_port(port_text, &port) == -1) {
        snprintf(err, errlen, "bad address '%s': port must be 1-65535", text);
        return -1;
    }

    if (text[0] != '[' && net_ip_literal(host, AF_INET, out) == 0) {
        net_addr_set_port(out, port);
        return 0;
    }
    if (text[0] == '[') {
        if (net_ip_literal(host, AF_INET6, out) == -1) {
            snprintf(err, errlen, "bad address '%s': '%s' is not an IPv6 address",
                     text, host);
            return -1;
        }
        net_addr_set_port(out, port);
        return 0;
    }

    if (!resolve) {
        snprintf(err, errlen, "bad address '%s': '%s' is not an IP address", text, host);
        return -1;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "bad address '%s': cannot resolve '%s': %s",
                 text, host, rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    net_addr_set_port(out, port);
    freeaddrinfo(res);
    return 0;
}

int net_parse_addr(const char *text, struct net_addr *out, char *err, size_t errlen)
{
    return net_parse_addr_as(text, out, 1, err, errlen);
}

int net_parse_ip_addr(const char *text, struct net_addr *out, char *err, size_t errlen)
{
    return net_parse_addr_as(text, out, 0, err, errlen);
}

const char *net_ip_str(const struct sockaddr *sa, char *buf, size_t buflen)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)buflen);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)buflen);
    } else {
        snprintf(buf, buflen, "?");
    }
    return buf;
}

const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];
    net_ip_str(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        snprintf(buf, buflen, "%s:%u", ip,
                 ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else if (sa->sa_family == AF_INET6)
        snprintf(buf, buflen, "[%s]:%u", ip,
                 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else
        snprintf(buf, buflen, "?");
    return buf;
}

int net_error_is_starved(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int net_error_is_local(int err)
{
    return net_error_is_starved(err) || err == EADDRNOTAVAIL || err == EAGAIN;
}

int net_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_listen(const struct net_addr *addr, unsigned flags, int backlog,
               char *err, size_t errlen)
{
    char text[NET_ADDR_STRLEN];
    int one = 1;
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
        goto fail;
    if ((flags & NET_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
        goto fail;
    if ((flags & NET_LISTEN_FREEBIND) &&
        setsockopt(fd, addr->ss.ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                   addr->ss.ss_family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND,
                   &one, sizeof(one)) == -1)
        goto fail;
    if (addr->ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* accepted sockets inherit it: relayed bytes go out at once */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1)
        goto fail;
    if (listen(fd, backlog) == -1)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "cannot listen on %s: %s",
             net_addr_str((const struct sockaddr *)&addr->ss, text, sizeof(text)),
             strerror(errno));
    if (fd != -1)
        close(fd);
    return -1;
}

int net_connect(const struct net_addr *addr, int *done)
{
    return net_connect_from(addr, NULL, done);
}

static int net_bind_source(int fd, const struct net_addr *source)
{
    int one = 1;
    /* not fatal where the kernel lacks it (before 4.2): the bind then
     * reserves a port itself */
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    return bind(fd, (const struct sockaddr *)&source->ss, source->len);
}

int net_connect_from(const struct net_addr *addr, const struct net_addr *source, int *done)
{
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    (void)net_set_nodelay(fd);
    if (source != NULL && net_bind_source(fd, source) == -1) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0) {
        *done = 1;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *done = 0;
        return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int net_parse_ip(const char *text, struct net_addr *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(host)) {
        snprintf(err, errlen, "expected an IPv4 or IPv6 address");
        return -1;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    if (net_ip_literal(host, AF_INET, out) == 0 || net_ip_literal(host, AF_INET6, out) == 0)
        return 0;
    snprintf(err, errlen, "'%.64s' is not an IPv4 or IPv6 address", host);
    return -1;
}

int net_can_bind(const struct net_addr *source, char *err, size_t errlen)
{
    int fd = socket(source->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = net_bind_source(fd, source);
    int saved = errno;
    close(fd);
    if (rc == -1) {
        snprintf(err, errlen, "cannot bind it: %s", strerror(saved));
        return -1;
    }
    return 0;
}

int net_set_keepalive(int fd, unsigned idle, unsigned interval, unsigned count)
{
    int on = 1, i = (int)idle, v = (int)interval, c = (int)count;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &i, sizeof(i)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &c, sizeof(c)) == -1)
        return -1;
    return 0;
}

void net_addr_set_port(struct net_addr *addr, unsigned port)
{
    struct sockaddr *sa = (struct sockaddr *)&addr->ss;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}
