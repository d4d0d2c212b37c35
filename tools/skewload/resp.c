/* resp.c — just enough HTTP/1.1 to find where an answer ends (RFC 9112
 * section 6.3) and who sent it. The body is never interpreted beyond its
 * first line. Anything ambiguous (conflicting lengths, a bad chunk size) is
 * refused rather than guessed, since a guess would miscount requests. */

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "resp.h"

/* Copies the first line of p[0..len) (up to LF or the end, without CR and
 * surrounding blanks) into name, clipped to RESP_NAME_MAX; control
 * characters become '?' so a name is always printable. */
static void resp_copy_name(char *name, const char *p, size_t len)
{
    const char *nl = memchr(p, '\n', len);
    if (nl != NULL)
        len = (size_t)(nl - p);
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    if (len > RESP_NAME_MAX)
        len = RESP_NAME_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        name[i] = ch < ' ' || ch == 0x7f ? '?' : (char)ch;
    }
    name[len] = '\0';
}

/* True when the comma-separated list v[0..len) holds token (any case). */
static int resp_has_token(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);

    while (len > 0) {
        const char *comma = memchr(v, ',', len);
        size_t item = comma != NULL ? (size_t)(comma - v) : len;
        const char *t = v;
        size_t n = item;
        while (n > 0 && (*t == ' ' || *t == '\t')) {
            t++;
            n--;
        }
        while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        if (n == tlen && strncasecmp(t, token, n) == 0)
            return 1;
        if (comma == NULL)
            break;
        len -= item + 1;
        v = comma + 1;
    }
    return 0;
}

/* What the head of one response says. */
struct resp_head {
    int status;
    int minor;              /* HTTP/1.<minor> */
    int chunked;
    int has_length;
    uint64_t length;
    int conn_close;
    int conn_keep;
    int has_name;
    char name[RESP_NAME_MAX + 1];
};

/* "HTTP/1.d SP ddd" followed by SP or the end of the line. */
static int resp_status_line(const char *p, size_t len, struct resp_head *h)
{
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9'
        || p[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    if (len > 12 && p[12] != ' ')
        return -1;
    h->minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return h->status >= 100 ? 0 : -1;
}

static int resp_header(const char *p, size_t len, struct resp_head *h)
{
    const char *colon = memchr(p, ':', len);
    if (colon == NULL || colon == p)
        return -1;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;

    if (nlen == 14 && strncasecmp(p, "content-length", nlen) == 0) {
        uint64_t n = 0;
        if (vlen == 0 || vlen > 15)
            return -1;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            n = n * 10 + (uint64_t)(v[i] - '0');
        }
        /* Two different lengths: which one frames the body is anyone's guess. */
        if (h->has_length && h->length != n)
            return -1;
        h->has_length = 1;
        h->length = n;
    } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", nlen) == 0) {
        h->chunked = resp_has_token(v, vlen, "chunked");
    } else if (nlen == 10 && strncasecmp(p, "connection", nlen) == 0) {
        h->conn_close |= resp_has_token(v, vlen, "close");
        h->conn_keep |= resp_has_token(v, vlen, "keep-alive");
    } else if (nlen == 9 && strncasecmp(p, "x-backend", nlen) == 0) {
        resp_copy_name(h->name, v, vlen);
        h->has_name = h->name[0] != '\0';
    }
    return 0;
}

/* Parses the head in buf[0..head_len) (which ends in CRLF CRLF). */
static int resp_head_parse(const char *buf, size_t head_len, struct resp_head *h)
{
    const char *p = buf, *end = buf + head_len - 2;

    memset(h, 0, sizeof *h);
    for (int first = 1; p < end; first = 0) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r')
            return -1;
        size_t len = (size_t)(eol - 1 - p);
        if (first ? resp_status_line(p, len, h) == -1 : resp_header(p, len, h) == -1)
            return -1;
        p = eol + 1;
    }
    return 0;
}

/* Finds the end of a chunked body starting at buf[pos]. Returns 1 with *end
 * just past it (and the first bytes of data in *first, *first_len), 0 when
 * more bytes are needed, -1 when malformed. */
static int resp_chunked(const char *buf, size_t len, size_t pos, size_t *end,
                        const char **first, size_t *first_len)
{
    *first = NULL;
    *first_len = 0;
    for (;;) {
        const char *eol = memchr(buf + pos, '\n', len - pos);
        if (eol == NULL)
            return len - pos > 1024 ? -1 : 0;
        size_t line_end = (size_t)(eol - buf);
        uint64_t size = 0;
        size_t i = pos, digits = 0;
        for (; i < line_end; i++, digits++) {
            char c = buf[i];
            int d = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                break;
            if (size > (UINT64_C(1) << 40))
                return -1;
            size = size * 16 + (uint64_t)d;
        }
        /* After the digits only a chunk extension (";...") or CR may follow. */
        if (digits == 0 || (i < line_end && buf[i] != ';' && buf[i] != '\r'))
            return -1;
        pos = line_end + 1;
        if (size == 0)
            break;
        if ((uint64_t)(len - pos) < size + 2)
            return 0;
        if (buf[pos + size] != '\r' || buf[pos + size + 1] != '\n')
            return -1;
        if (*first == NULL) {
            *first = buf + pos;
            *first_len = (size_t)size;
        }
        pos += (size_t)size + 2;
    }
    /* Trailer fields, then an empty line. */
    for (;;) {
        const char *eol = memchr(buf + pos, '\n', len - pos);
        if (eol == NULL)
            return len - pos > RESP_HEAD_MAX ? -1 : 0;
        size_t line_end = (size_t)(eol - buf);
        int empty = line_end == pos || (line_end == pos + 1 && buf[pos] == '\r');
        pos = line_end + 1;
        if (empty) {
            *end = pos;
            return 1;
        }
    }
}

int resp_parse_http(const char *buf, size_t len, int eof, struct resp *r)
{
    size_t off = 0;
    struct resp_head h;

    for (;;) {
        const char *p = buf + off;
        size_t avail = len - off;
        /* Refuse what is plainly not HTTP at once, not after 64 KiB. */
        size_t cmp = avail < 5 ? avail : 5;
        if (memcmp(p, "HTTP/", cmp) != 0)
            return -1;
        const char *blank = memmem(p, avail, "\r\n\r\n", 4);
        if (blank == NULL) {
            if (avail > RESP_HEAD_MAX || eof)
                return -1;
            return 0;
        }
        size_t head_len = (size_t)(blank - p) + 4;
        if (head_len > RESP_HEAD_MAX || resp_head_parse(p, head_len, &h) == -1)
            return -1;
        /* 101 switches protocols: there is no more HTTP to frame. */
        if (h.status == 101)
            return -1;
        if (h.status < 200) {
            off += head_len;
            if (off == len)
                return eof ? -1 : 0;
            continue;
        }

        size_t body = off + head_len, end;
        const char *first = p + head_len;
        size_t first_len;
        int until_eof = 0;
        if (h.status == 204 || h.status == 304) {
            end = body;
            first_len = 0;
        } else if (h.chunked) {
            int rc = resp_chunked(buf, len, body, &end, &first, &first_len);
            if (rc != 1)
                return rc == 0 && eof ? -1 : rc;
        } else if (h.has_length) {
            if ((uint64_t)(len - body) < h.length)
                return eof ? -1 : 0;
            end = body + (size_t)h.length;
            first_len = (size_t)h.length;
        } else {
            /* No framing: the body runs to the end of the connection. */
            if (!eof)
                return 0;
            end = len;
            first_len = len - body;
            until_eof = 1;
        }

        memset(r, 0, sizeof *r);
        r->status = h.status;
        r->len = end;
        r->keep_alive = !until_eof && !h.conn_close && (h.minor >= 1 || h.conn_keep);
        if (h.has_name)
            memcpy(r->name, h.name, sizeof r->name);
        else if (h.status >= 200 && h.status <= 299 && first != NULL)
            resp_copy_name(r->name, first, first_len);
        return 1;
    }
}

int resp_parse_line(const char *buf, size_t len, int eof, struct resp *r)
{
    const char *nl = memchr(buf, '\n', len);

    if (nl == NULL && !eof)
        return 0;
    if (nl == NULL && len == 0)
        return -1;
    memset(r, 0, sizeof *r);
    r->len = nl != NULL ? (size_t)(nl - buf) + 1 : len;
    r->keep_alive = nl != NULL && !eof;
    resp_copy_name(r->name, buf, r->len);
    return 1;
}
