/* check.c — the rise/fall state machine and the HTTP check parser (see
 * check.h). No I/O, no clock. */
#include <stdio.h>
#include <string.h>

#include "check.h"

enum check_http_parse check_http_parse(const char *buf, size_t len, int *status)
{
    static const char prefix[] = "HTTP/1.";
    size_t plen = sizeof(prefix) - 1;
    size_t cmp = len < plen ? len : plen;
    if (memcmp(buf, prefix, cmp) != 0)
        return CHECK_HTTP_BAD;

    const char *eol = memchr(buf, '\n', len);
    if (eol == NULL)
        return len >= CHECK_HTTP_LINE_MAX ? CHECK_HTTP_BAD : CHECK_HTTP_MORE;
    size_t line = (size_t)(eol - buf);
    if (line >= CHECK_HTTP_LINE_MAX)
        return CHECK_HTTP_BAD;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    /* "HTTP/1.x NNN" then end of line or a space and a reason */
    if (line < plen + 5 || (buf[plen] != '0' && buf[plen] != '1') || buf[plen + 1] != ' ')
        return CHECK_HTTP_BAD;
    const char *code = buf + plen + 2;
    int v = 0;
    for (int i = 0; i < 3; i++) {
        if (code[i] < '0' || code[i] > '9')
            return CHECK_HTTP_BAD;
        v = v * 10 + (code[i] - '0');
    }
    if (line > plen + 5 && code[3] != ' ')
        return CHECK_HTTP_BAD;
    if (v < 100)
        return CHECK_HTTP_BAD;
    *status = v;
    return CHECK_HTTP_DONE;
}

int check_http_status_ok(int status)
{
    return status >= 200 && status < 400;
}

void check_state_init(struct check_state *st)
{
    memset(st, 0, sizeof(*st));
    st->up = 1;
    st->fresh = 1;
}

void check_state_init_added(struct check_state *st)
{
    memset(st, 0, sizeof(*st));
    st->fresh = 1;
}

enum check_change check_state_result(struct check_state *st, int ok,
                                     unsigned rise, unsigned fall)
{
    int fresh = st->fresh;
    st->fresh = 0;
    if (ok) {
        st->failures = 0;
        if (st->successes < rise)
            st->successes++;
        if (!st->up && (fresh || st->successes >= rise)) {
            st->up = 1;
            return CHECK_WENT_UP;
        }
        return CHECK_SAME;
    }
    st->successes = 0;
    if (st->failures < fall)
        st->failures++;
    if (st->up && (fresh || st->failures >= fall)) {
        st->up = 0;
        return CHECK_WENT_DOWN;
    }
    return CHECK_SAME;
}

unsigned check_ramp_pml(double since, double now, double length)
{
    if (since == 0 || length <= 0)
        return 1000;
    double f = (now - since) / length;
    if (f >= 1)
        return 1000;
    unsigned first = 1000 / CHECK_RAMP_STEPS;
    unsigned pml = first + (unsigned)((1000 - first) * (f > 0 ? f : 0));
    return pml < 1000 ? pml : 1000;
}

unsigned check_outlier_cap(unsigned max_percent, unsigned nservers)
{
    return (unsigned)((unsigned long)max_percent * nservers / 100);
}

int check_outlier_eject(struct check_outlier *o, double now, double base, unsigned room)
{
    if (o->ejected || room == 0)
        return 0;
    if (o->in_row > 0 && now - o->until > 2 * o->length)
        o->in_row = 0;
    o->in_row++;
    unsigned factor = o->in_row < CHECK_EJECT_MAX_FACTOR ? o->in_row : CHECK_EJECT_MAX_FACTOR;
    o->length = base * factor;
    o->until = now + o->length;
    o->ejected = 1;
    return 1;
}

void check_outlier_end(struct check_outlier *o)
{
    o->ejected = 0;
}

enum check_change check_state_passive_down(struct check_state *st, unsigned fall)
{
    if (!st->up)
        return CHECK_SAME;
    st->up = 0;
    st->fresh = 0;
    st->successes = 0;
    st->failures = fall;
    return CHECK_WENT_DOWN;
}

/* ---- health = expect ------------------------------------------------------ */

static int check_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int check_unescape(const char *text, unsigned char *out, size_t cap, size_t *len,
                   char *err, size_t errlen)
{
    size_t n = 0;
    for (const char *c = text; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if (*c == '\\') {
            c++;
            switch (*c) {
            case 'r': b = '\r'; break;
            case 'n': b = '\n'; break;
            case 't': b = '\t'; break;
            case '\\': b = '\\'; break;
            case 'x': {
                int hi = check_hex(c[1]), lo = hi >= 0 ? check_hex(c[2]) : -1;
                if (lo < 0) {
                    snprintf(err, errlen, "\\x needs two hex digits at offset %zu",
                             (size_t)(c - 1 - text));
                    return -1;
                }
                b = (unsigned char)(hi << 4 | lo);
                c += 2;
                break;
            }
            case '\0':
                snprintf(err, errlen, "a lone backslash at the end");
                return -1;
            default:
                snprintf(err, errlen, "unknown escape \\%c at offset %zu (known: "
                         "\\r \\n \\t \\\\ \\xHH)", *c, (size_t)(c - 1 - text));
                return -1;
            }
        }
        if (n == cap) {
            snprintf(err, errlen, "longer than %zu bytes", cap);
            return -1;
        }
        out[n++] = b;
    }
    *len = n;
    return 0;
}

enum check_expect check_expect_match(const unsigned char *answer, size_t len,
                                     const unsigned char *expect, size_t expect_len)
{
    size_t n = len < expect_len ? len : expect_len;
    if (memcmp(answer, expect, n) != 0)
        return CHECK_EXPECT_MISMATCH;
    return len >= expect_len ? CHECK_EXPECT_MATCH : CHECK_EXPECT_MORE;
}

void check_printable(const unsigned char *bytes, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = bytes[i];
        if (b >= 0x20 && b < 0x7f && b != '\\') {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)b;
        } else {
            if (o + 4 >= outlen)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 15];
        }
    }
    out[o] = '\0';
}
