/* stats_fields.h — the field tables built from counters.h's lists, and the
 * writers every view shares: a `show stat` CSV row, a `show stat json`
 * object, the values the metrics read. A view walks a table; it never names
 * a field itself, so a new row shows everywhere its names say. Main thread
 * (readers of the counters). */
#ifndef TCPLB_STATS_FIELDS_H
#define TCPLB_STATS_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"

struct buf;
struct server;
struct listener_conf;

enum stats_type {
    STATS_U64,
    STATS_S64,
    STATS_DOUBLE,       /* NaN: unknown (JSON null, empty CSV cell) */
    STATS_STR,
    STATS_BOOL,
    STATS_STRLIST,      /* JSON array of strings */
};

struct stats_value {
    enum stats_type type;
    union {
        uint64_t u;
        int64_t i;
        double d;
        const char *s;
        int b;
        char *const *list;
    } v;
    size_t nlist;
};

/* What a getter reads: the object, its summed counters and, for a server,
 * its merged window of the last minute. */
struct stats_server_view {
    const struct server *srv;
    struct server_totals t;
    struct recent_sum recent;
};
struct stats_listener_view {
    const struct listener_conf *l;
    struct listener_totals t;
};

struct stats_field {
    const char *json, *csv, *metric, *label, *type, *help;
    size_t offset;                  /* counter rows: in the totals */
    /* computed rows: fills *out from the view (a stats_server_view or a
     * stats_listener_view); NULL for counter rows */
    void (*get)(const void *view, struct stats_value *out);
};

extern const struct stats_field stats_server_fields[];
extern const size_t stats_server_nfields;
extern const struct stats_field stats_listener_fields[];
extern const size_t stats_listener_nfields;

/* Reads the server's or listener's state and sums its counters (and the
 * server's window as of <now>). */
void stats_server_view_read(struct stats_server_view *v, const struct server *s,
                            unsigned nworkers, double now);
void stats_listener_view_read(struct stats_listener_view *v,
                              const struct listener_conf *l, unsigned nworkers);

/* The value of field <f> for <view>, whose totals are at <totals>. */
void stats_field_value(const struct stats_field *f, const void *view,
                       const void *totals, struct stats_value *out);

/* The CSV header cells (each row's csv name, comma separated, no line end)
 * and one row of values. */
void stats_fields_csv_header(const struct stats_field *fields, size_t n, struct buf *out);
void stats_fields_csv_row(const struct stats_field *fields, size_t n, const void *view,
                          const void *totals, struct buf *out);

/* The members of one JSON object ("k":v,...; no braces), dotted names as
 * nested objects. */
void stats_fields_json(const struct stats_field *fields, size_t n, const void *view,
                       const void *totals, struct buf *out);

/* Appends s as a JSON string. */
void stats_json_string(struct buf *out, const char *s);

/* Appends a value as JSON, or as a CSV cell / metric sample value (text). */
void stats_value_json(const struct stats_value *v, struct buf *out);
void stats_value_text(const struct stats_value *v, struct buf *out);

#endif
