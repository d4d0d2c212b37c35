/* proxy_proto.h — the PROXY protocol (HAProxy's spec, versions 1 and 2): building
 * the header tcplb sends to a server before the client's bytes
 * (`send-proxy`, `send-proxy-v2`), and parsing the header a listener with
 * `accept_proxy = yes` expects from the balancer in front of it. Pure
 * functions over caller buffers: no I/O. */
#ifndef TCPLB_PROXY_PROTO_H
#define TCPLB_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107          /* longest v1 line, CRLF included */
#define PROXY_V2_FIXED 16         /* signature, version/command, family, length */
#define PROXY_HEADER_MAX 536      /* v2 fixed part plus up to 520 bytes of addresses and TLVs */

enum proxy_version { PROXY_NONE = 0, PROXY_V1 = 1, PROXY_V2 = 2 };

/* Writes the header announcing a connection from <src> to <dst> into out
 * (at least PROXY_HEADER_MAX bytes). Mixed or non-IP families give
 * "UNKNOWN" (v1) or a LOCAL command (v2). Returns the length. */
size_t proxy_proto_build(enum proxy_version v, const struct sockaddr *src,
                   const struct sockaddr *dst, uint8_t *out);

enum proxy_proto_result {
    PROXY_PARSE_MORE = 0,   /* a valid start: read more */
    PROXY_PARSE_DONE,       /* *consumed bytes are the header */
    PROXY_PARSE_BAD,        /* not a PROXY header, or malformed */
};

/* Parses a header at the start of buf[0..len). On DONE, *consumed is its
 * length and, when it carries TCP addresses, *src (and *dst) hold them and
 * *has_addr is 1; UNKNOWN / LOCAL / other families leave *has_addr 0 (the
 * connection's own addresses stand). */
enum proxy_proto_result proxy_proto_parse(const uint8_t *buf, size_t len, size_t *consumed,
                                    struct sockaddr_storage *src,
                                    struct sockaddr_storage *dst, int *has_addr);

#endif
