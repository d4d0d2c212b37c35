/* resp.h — recognising one complete answer in a receive buffer: an HTTP/1.x
 * response (status line, headers, a Content-Length or chunked body, or a
 * body up to EOF), or one line in tcp mode; and the name of the server that
 * gave it. Pure functions over bytes: the load driver owns the buffer. */
#ifndef SKEWLOAD_RESP_H
#define SKEWLOAD_RESP_H

#include <stddef.h>

#define RESP_NAME_MAX 64
/* A response head longer than this is refused as malformed. */
#define RESP_HEAD_MAX 65536

/* What one complete answer says. */
struct resp {
    int status;         /* HTTP status; 0 for a line (tcp mode) */
    int keep_alive;     /* the connection may carry another request */
    size_t len;         /* bytes of the buffer the answer took */
    char name[RESP_NAME_MAX + 1];  /* the server's name, "" if none */
};

/* Looks for one HTTP response at the start of buf[0..len). eof says the
 * peer has closed, which ends a body without Content-Length and makes an
 * incomplete response malformed. The name comes from the X-Backend header,
 * else, for a 2xx answer, from the first line of the body. Interim 1xx
 * answers are skipped. Returns 1 with *r filled, 0 when more bytes are
 * needed, -1 when the bytes cannot become a valid response. */
int resp_parse_http(const char *buf, size_t len, int eof, struct resp *r);

/* Looks for one line ending in LF (an unterminated line counts once eof is
 * set); the line, without CR LF, is the name. Returns 1, 0 or -1 as above;
 * -1 only for eof with nothing at all. */
int resp_parse_line(const char *buf, size_t len, int eof, struct resp *r);

#endif
