/* buf.h — a growable byte buffer for answers built on the main thread
 * (stats, messages). Not used on the relay path. */
#ifndef TCPLB_BUF_H
#define TCPLB_BUF_H

#include <stddef.h>

struct buf {
    char *data;     /* owned; NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
};

/* Appends; on ENOMEM the buffer is left as it was and -1 returned. */
int buf_append(struct buf *b, const char *data, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (consumed by a write). */
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

#endif
