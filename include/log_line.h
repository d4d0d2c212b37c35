/* log_line.h — builds one access log line in the configured format:
 * logfmt (name=value, space separated, `-` for no value) or JSON (one
 * object per line, numbers as numbers, null for no value). Callers add the
 * fields in order; both formats carry the same names and values. */
#ifndef TCPLB_LOG_LINE_H
#define TCPLB_LOG_LINE_H

#include <stddef.h>

enum log_format {
    LOG_FORMAT_LOGFMT = 0,
    LOG_FORMAT_JSON = 1,
};

struct log_line {
    char *buf;              /* the caller's */
    size_t cap, len;
    enum log_format format;
    int fields;
    int overflow;           /* a field did not fit: the line is dropped */
};

void log_line_start(struct log_line *l, char *buf, size_t cap, enum log_format format);
/* A text value (JSON-escaped in JSON; in logfmt written as is, so callers
 * pass values without spaces or quotes). NULL: no value. */
void log_line_str(struct log_line *l, const char *name, const char *value);
/* A number, printf-formatted (must print a JSON number: no nan/inf). */
void log_line_num(struct log_line *l, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A whole number, without printf's machinery: most fields are counts. */
void log_line_u64(struct log_line *l, const char *name, unsigned long long v);
/* No value: `-` in logfmt, null in JSON. */
void log_line_none(struct log_line *l, const char *name);
/* Closes the line with its '\n'; its length, or 0 when it did not fit. */
size_t log_line_end(struct log_line *l);

#endif
