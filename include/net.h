/* net.h — socket helpers. Each takes a caller's error buffer and returns
 * 0/-1 (or an fd/-1); none of them logs. */
#ifndef TCPLB_NET_H
#define TCPLB_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* recv(2) and send(2) (with MSG_NOSIGNAL) for the relay, minus glibc's
 * thread-cancellation bracket: both are cancellation points, so in a
 * threaded process glibc wraps each call in __pthread_enable_asynccancel /
 * __pthread_disable_asynccancel, about 120 instructions per keep-alive
 * request, 11 % of tcplb's own instructions (callgrind). tcplb never cancels
 * a thread. Same results and errno as the libc calls. */
static inline ssize_t net_recv(int fd, void *buf, size_t len)
{
    return syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL);
}

static inline ssize_t net_send(int fd, const void *buf, size_t len)
{
    return syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
}

/* Longest text net_addr_str() writes: "[v6]:port" plus NUL. */
#define NET_ADDR_STRLEN 64

/* Parses "IPv4:port", "[IPv6]:port" or "host:port" (host resolved now with
 * getaddrinfo, first address wins). Port 1..65535 required. */
int net_parse_addr(const char *text, struct net_addr *out, char *err, size_t errlen);

/* The same without a name lookup: "IPv4:port" or "[IPv6]:port" only, for
 * what runs on an event loop (add server, discovery's answers). */
int net_parse_ip_addr(const char *text, struct net_addr *out, char *err, size_t errlen);

/* A port: 1-65535, digits only (no sign, no blank). 0 or -1. */
int net_parse_port(const char *text, unsigned *port);

/* Writes "a.b.c.d:port" or "[v6]:port" into buf (NET_ADDR_STRLEN bytes). */
const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t buflen);

/* Writes only the IP of sa (no port). */
const char *net_ip_str(const struct sockaddr *sa, char *buf, size_t buflen);

/* What net_listen() sets besides SO_REUSEADDR. */
enum net_listen_flags {
    NET_LISTEN_REUSEPORT = 1 << 0,  /* every worker owns one socket per bind */
    NET_LISTEN_FREEBIND = 1 << 1,   /* IP_FREEBIND: an address not (yet) here,
                                       as a VRRP backup's virtual IP */
};

/* A non-blocking listening socket with SO_REUSEADDR and <flags>. */
int net_listen(const struct net_addr *addr, unsigned flags, int backlog,
               char *err, size_t errlen);

/* Starts a non-blocking connect with TCP_NODELAY set. Returns the fd; *done
 * is 1 when the connect completed at once, 0 when it is in progress. On -1,
 * errno tells why (ECONNREFUSED, ...). */
int net_connect(const struct net_addr *addr, int *done);
/* The same from a local address (source=IP, port 0): bound before the
 * connect with IP_BIND_ADDRESS_NO_PORT, so the port is picked by the
 * connect and the 4-tuple, not the bind, limits how many there are.
 * source NULL: the kernel's choice, as net_connect(). */
int net_connect_from(const struct net_addr *addr, const struct net_addr *source, int *done);

/* An IP literal alone (IPv4 or IPv6, brackets allowed) as an address with
 * port 0: source=IP. 0, or -1 with err filled. */
int net_parse_ip(const char *text, struct net_addr *out, char *err, size_t errlen);

/* 0 when this machine may bind <source> (port 0): one of its addresses. */
int net_can_bind(const struct net_addr *source, char *err, size_t errlen);

/* TCP keepalive on fd: SO_KEEPALIVE with the first probe after idle
 * seconds, then every interval seconds, giving up after count. */
int net_set_keepalive(int fd, unsigned idle, unsigned interval, unsigned count);

/* addr with its port replaced. */
void net_addr_set_port(struct net_addr *addr, unsigned port);

int net_set_nodelay(int fd);

/* 1 if errno says this process or host ran out of descriptors or memory:
 * an accept() that fails so leaves the client in the backlog, and the
 * caller should pause accepting a little rather than spin on it. */
int net_error_is_starved(int err);

/* 1 if a failed socket()/connect() errno is this host's shortage (no
 * descriptor, no local port, no memory) rather than the peer's answer. */
int net_error_is_local(int err);

#endif
