/* discover.h — DNS discovery of a pool's servers (`discover = HOST:PORT`,
 * `discover = srv:_SERVICE._PROTO.NAME`) with c-ares on the main loop.
 *
 * Every `discover_interval` a pool's lookup asks the name servers of
 * `[global] resolvers` (default: /etc/resolv.conf) for A and AAAA records
 * (HOST:PORT), or for SRV records and then each target's A and AAAA; the
 * addresses found become the pool's discovered servers through
 * membership_sync(). A lookup that fails or finds nothing keeps the servers
 * it had, and says so once in the log and in `show events` (server
 * "discover", ok->failed), and again when it recovers. Nothing blocks: c-ares
 * sockets are libev watchers, its timeouts one timer.
 *
 * The spec and answer parsers are pure and have unit tests and a fuzz
 * target (tests/fuzz/fuzz_dns.c). */
#ifndef TCPLB_DISCOVER_H
#define TCPLB_DISCOVER_H

#include <stddef.h>

#include "membership.h"

struct config;
struct health;
struct ev_loop;

#define DISCOVER_NAME_MAX 253       /* a DNS name, as text */
#define DISCOVER_MAX 256            /* addresses kept from one lookup */

enum discover_kind { DISCOVER_HOST = 0, DISCOVER_SRV };

struct discover_spec {
    enum discover_kind kind;
    char name[DISCOVER_NAME_MAX + 1];
    unsigned port;                  /* DISCOVER_HOST; SRV records bring theirs */
};

/* "HOST:PORT" or "srv:NAME" into <out>; 0, or -1 with why in err. */
int discover_parse_spec(const char *text, struct discover_spec *out, char *err,
                        size_t errlen);

/* "IP[:PORT] ..." (IPv6 as [IP]:PORT; port default 53) into c-ares' form
 * "IP:PORT,[IP]:PORT" in <out>; 0, or -1 with why in err. */
int discover_parse_resolvers(const char *text, char *out, size_t outlen, char *err,
                             size_t errlen);

/* One SRV record of an answer. */
struct discover_srv {
    char target[DISCOVER_NAME_MAX + 1];
    unsigned port, weight, priority;
};

/* The SRV records of DNS answer <abuf> worth following: those of the
 * lowest priority (the others are backups tcplb does not use), weights
 * 0..65535 mapped to server weights 1..256, at most <max>. Returns how
 * many, or -1 when the answer does not parse. */
int discover_parse_srv(const unsigned char *abuf, int alen, struct discover_srv *out,
                       size_t max);

/* The A (<type> 1) or AAAA (28) records of answer <abuf>, each added to
 * set[*n] with <port> and <weight> unless already there, while *n < max.
 * Returns how many records the answer had, or -1 when it does not parse. */
int discover_parse_addrs(const unsigned char *abuf, int alen, int type, unsigned port,
                         unsigned weight, struct membership_entry *set, size_t *n,
                         size_t max);

/* Starts discovery for every pool of <cfg> with `discover`, on <loop>,
 * resolving through cfg's resolvers; a previous instance (reload) is
 * replaced. 0, or -1 with why in err (c-ares would not start). */
int discover_start(struct ev_loop *loop, struct config *cfg, struct health *h,
                   char *err, size_t errlen);

/* Stops every lookup and frees the resolver. */
void discover_stop(void);

#endif
