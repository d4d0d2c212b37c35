/* log_line.c — one access log line, logfmt or JSON (see log_line.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log_line.h"

void log_line_start(struct log_line *l, char *buf, size_t cap, enum log_format format)
{
    l->buf = buf;
    l->cap = cap;
    l->len = 0;
    l->format = format;
    l->fields = 0;
    l->overflow = cap < 3;
    if (!l->overflow && format == LOG_FORMAT_JSON)
        l->buf[l->len++] = '{';
}

static void log_line_put(struct log_line *l, const char *data, size_t n)
{
    /* room is kept for the closing "}\n" */
    if (l->overflow || l->len + n + 2 >= l->cap) {
        l->overflow = 1;
        return;
    }
    memcpy(l->buf + l->len, data, n);
    l->len += n;
}

static void log_line_name(struct log_line *l, const char *name)
{
    if (l->fields++ > 0)
        log_line_put(l, l->format == LOG_FORMAT_JSON ? "," : " ", 1);
    if (l->format == LOG_FORMAT_JSON) {
        log_line_put(l, "\"", 1);
        log_line_put(l, name, strlen(name));
        log_line_put(l, "\":", 2);
    } else {
        log_line_put(l, name, strlen(name));
        log_line_put(l, "=", 1);
    }
}

static void log_line_json_string(struct log_line *l, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    log_line_put(l, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = { '\\', (char)*c };
            log_line_put(l, esc, 2);
        } else if (*c < 0x20) {
            char esc[6] = { '\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15] };
            log_line_put(l, esc, 6);
        } else {
            log_line_put(l, (const char *)c, 1);
        }
    }
    log_line_put(l, "\"", 1);
}

void log_line_str(struct log_line *l, const char *name, const char *value)
{
    if (value == NULL) {
        log_line_none(l, name);
        return;
    }
    log_line_name(l, name);
    if (l->format == LOG_FORMAT_JSON)
        log_line_json_string(l, value);
    else
        log_line_put(l, value, strlen(value));
}

void log_line_num(struct log_line *l, const char *name, const char *fmt, ...)
{
    char num[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(num, sizeof(num), fmt, ap);
    va_end(ap);
    log_line_name(l, name);
    if (n < 0 || (size_t)n >= sizeof(num))
        l->overflow = 1;
    else
        log_line_put(l, num, (size_t)n);
}

void log_line_u64(struct log_line *l, const char *name, unsigned long long v)
{
    char digits[24];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    log_line_name(l, name);
    log_line_put(l, digits + i, sizeof(digits) - i);
}

void log_line_none(struct log_line *l, const char *name)
{
    log_line_name(l, name);
    if (l->format == LOG_FORMAT_JSON)
        log_line_put(l, "null", 4);
    else
        log_line_put(l, "-", 1);
}

size_t log_line_end(struct log_line *l)
{
    if (l->overflow)
        return 0;
    /* log_line_put kept the room */
    if (l->format == LOG_FORMAT_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    l->buf[l->len] = '\0';
    return l->len;
}
