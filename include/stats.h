/* stats.h — the stats commands: parse one command line and write its answer.
 * Pure formatting over the config and counters, so tests run it without a
 * socket; stats_socket.c does the I/O. Main thread. */
#ifndef TCPLB_STATS_H
#define TCPLB_STATS_H

#include <stddef.h>

struct buf;
struct config;
struct health;
struct history;

struct stats_ctx {
    struct config *config;      /* the config in force (not owned) */
    struct health *health;      /* for admin states; NULL refuses them */
    double started;             /* monotonic seconds at start */
    double (*now)(void);        /* monotonic clock, injectable for tests */
    struct worker *workers;     /* for splice figures; NULL: none shown as 0 */
    unsigned nworkers;
    struct history *history;    /* the page's chart; NULL: none */
    int self_drained;           /* `drain self`: GET /health answers 503 */
    int stopping;               /* shutting down: GET /health answers 503 */
};

/* GET /health: 200 "ok" while tcplb accepts and every listener's pool has a
 * server up, else 503 and one line saying why (draining, stopping, which
 * pool has none). Returns the status; the body goes to <out>. */
int stats_health(struct stats_ctx *ctx, struct buf *out);

/* Appends the `show stat json` object and a newline (also /stats.json). */
void stats_write_json(struct stats_ctx *ctx, struct buf *out);

/* For the page: every pool's explain findings,
 * {"pools":[{"name","findings":[...],"verdict"}]}, and its busiest clients
 * of the last minute, {"pools":[{"name","clients":[{"ip","recent","total",
 * "active","server"}]}]}, each with a newline. */
void stats_write_explain_json(struct stats_ctx *ctx, struct buf *out);
void stats_write_clients_json(struct stats_ctx *ctx, struct buf *out);

/* Runs one command (no line terminator) and appends its answer, always
 * ending with an empty line. Malformed input answers "error: ...". */
void stats_execute(struct stats_ctx *ctx, const char *line, struct buf *out);

/* The fixed words of the i-th command of the table ("show stat json"), NULL
 * past the last: for tests that walk every command. */
const char *stats_command_words(size_t i);

#endif
