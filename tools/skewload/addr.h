/* addr.h — the addresses skewload uses: the target HOST:PORT, whether an
 * address is loopback (this tool refuses remote targets by default), and the
 * source address of client i. IPv4 only: the client population lives in
 * 127.0.0.0/8, which Linux treats as local in its entirety. */
#ifndef SKEWLOAD_ADDR_H
#define SKEWLOAD_ADDR_H

#include <stddef.h>
#include <netinet/in.h>

/* Resolves "IPv4:PORT" or "host:PORT" (port 1..65535) to an IPv4 address.
 * Returns 0, or -1 with a message in err. */
int addr_parse_target(const char *text, struct sockaddr_in *out, char *err,
                      size_t errlen);

/* True for 127.0.0.0/8. */
int addr_is_loopback(struct in_addr a);

/* Checks that base can start a run of n client addresses: its last octet
 * is 2..254 and the n-th address stays in base's /8. Returns 0, or -1 with a
 * message in err. */
int addr_check_clients(struct in_addr base, size_t n, char *err, size_t errlen);

/* Client i's source address: base, then upwards through last octets 2..254
 * of each /24 (127.0.0.2 .. 127.0.0.254, 127.0.1.2, ...), skipping .0, .1
 * and .255 so no client looks like a network, gateway or broadcast address.
 * Only meaningful within what addr_check_clients accepted. */
struct in_addr addr_client(struct in_addr base, size_t i);

/* "a.b.c.d" of a into buf (at least INET_ADDRSTRLEN bytes). */
const char *addr_str(struct in_addr a, char *buf, size_t buflen);

#endif
