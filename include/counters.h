/* counters.h — per-worker traffic counters for servers and listeners, and
 * the one table of what tcplb shows about each: the field lists below.
 * Each worker writes only its own slot (one cache line each, so workers never
 * share a written line); readers sum the slots. */
#ifndef TCPLB_COUNTERS_H
#define TCPLB_COUNTERS_H

#include <stdint.h>
#include "recent.h"
#include "util.h"

/* ---- the vocabularies ------------------------------------------------------
 *
 * Every figure shown for a server or a listener is one row of these lists,
 * in the order the views show them. A row is either
 *
 *   C(field, json, csv, metric, label, type, clear, help)
 *       a counter each worker keeps in its slot (`field` is its name in the
 *       slot and in the totals); summed, cleared and shown from this row;
 *   F(field, json, csv, metric, label, type, help)
 *       a figure computed when it is read, by its getter in stats_fields.c
 *       (stats_server_get_<field> or stats_listener_get_<field>: its handler).
 *
 * json:   key in `show stat json` (a dotted "a.b" nests b inside object a);
 *         NULL: not there;
 * csv:    column of `show stat` (servers only), NULL: not there;
 * metric: Prometheus family, NULL: not exported; label: the sample's extra
 *         label (`direction="in"`), NULL: none; rows of one family follow
 *         each other; type: "counter" or "gauge";
 * clear:  COUNTER_CLEARED (zeroed by `clear counters`) or COUNTER_KEPT (an
 *         open-connection gauge that a clear must not touch).
 *
 * Adding a counter is one C row here plus the counter_add() where it
 * happens; adding a computed figure is one F row plus its getter. */

#define SERVER_FIELDS(C, F)                                                          \
    F(name, "name", "server", NULL, NULL, NULL, "Server name")                        \
    F(addr, "addr", "addr", NULL, NULL, NULL, "Address as configured")               \
    F(state, "state", "state", NULL, NULL, NULL, "up, down, drain, maint or ejected") \
    F(up, NULL, NULL, "tcplb_server_up", NULL, "gauge",                               \
      "1 if the server takes new connections (state up), else 0.")                  \
    F(weight, "weight", "weight", "tcplb_server_weight", NULL, "gauge",               \
      "Current weight of the server.")                                              \
    F(active, "active", "active", "tcplb_server_active_connections", NULL, "gauge",   \
      "Connections open to the server now.")                                        \
    C(total, "total", "total", "tcplb_server_connections_total", NULL, "counter",     \
      COUNTER_CLEARED, "Connections handed to the server (connect succeeded).")     \
    C(failed, "failed", "failed", "tcplb_server_connect_failures_total", NULL,        \
      "counter", COUNTER_CLEARED, "Failed connect attempts to the server.")         \
    C(bytes_in, "bytes_in", "bytes_in", "tcplb_server_bytes_total",                   \
      "direction=\"in\"", "counter", COUNTER_CLEARED,                                 \
      "Payload bytes relayed: in = client to server, out = server to client.")      \
    C(bytes_out, "bytes_out", "bytes_out", "tcplb_server_bytes_total",                \
      "direction=\"out\"", "counter", COUNTER_CLEARED,                                \
      "Payload bytes relayed: in = client to server, out = server to client.")      \
    C(retried, "retried", NULL, "tcplb_server_connect_retried_total", NULL,           \
      "counter", COUNTER_CLEARED,                                                     \
      "Failed connects hidden by a retry on another server.")                        \
    C(lost, "lost", NULL, "tcplb_server_connect_lost_total", NULL, "counter",         \
      COUNTER_CLEARED, "Failed connects after which the client got no server.")     \
    C(requests, "requests", "requests", "tcplb_server_requests_total", NULL, "counter", \
      COUNTER_CLEARED,                                                                \
      "Requests (mode http) or exchanges (mode tcp) sent to the server.")           \
    F(rt_p50, "rt_ms.p50", "rt_p50_ms", NULL, NULL, NULL,                             \
      "Median response time of the last minute, ms")                               \
    F(rt_p90, "rt_ms.p90", NULL, NULL, NULL, NULL, "90th percentile, ms")             \
    F(rt_p99, "rt_ms.p99", "rt_p99_ms", NULL, NULL, NULL, "99th percentile, ms")      \
    F(rt_mean, "rt_ms.mean", NULL, NULL, NULL, NULL, "Mean response time, ms")        \
    F(rt_samples, "rt_ms.samples", NULL, NULL, NULL, NULL,                            \
      "Response times measured in the last minute")                                \
    C(resp_1xx, "responses.1xx", NULL, "tcplb_server_responses_total", "class=\"1xx\"", \
      "counter", COUNTER_CLEARED,                                                     \
      "Responses of the server by status class (mode http; 1xx counts interim ones).") \
    C(resp_2xx, "responses.2xx", NULL, "tcplb_server_responses_total", "class=\"2xx\"", \
      "counter", COUNTER_CLEARED, "")                                                \
    C(resp_3xx, "responses.3xx", NULL, "tcplb_server_responses_total", "class=\"3xx\"", \
      "counter", COUNTER_CLEARED, "")                                                \
    C(resp_4xx, "responses.4xx", NULL, "tcplb_server_responses_total", "class=\"4xx\"", \
      "counter", COUNTER_CLEARED, "")                                                \
    C(resp_5xx, "responses.5xx", "http_5xx", "tcplb_server_responses_total",          \
      "class=\"5xx\"", "counter", COUNTER_CLEARED, "")                               \
    C(http_unparsed, "http_unparsed", NULL, "tcplb_server_http_unparsed_total", NULL, \
      "counter", COUNTER_CLEARED,                                                     \
      "Connections in mode http whose stream could not be followed as HTTP/1.x.")   \
    F(lm_connections, "last_minute.connections", NULL, NULL, NULL, NULL,              \
      "Connections handed to it in the last minute")                               \
    F(lm_requests, "last_minute.requests", NULL, NULL, NULL, NULL,                    \
      "Requests in the last minute")                                               \
    F(lm_failed, "last_minute.failed", NULL, NULL, NULL, NULL,                        \
      "Failed connects in the last minute")                                        \
    F(lm_responses, "last_minute.responses", NULL, NULL, NULL, NULL,                  \
      "Final responses in the last minute")                                        \
    F(lm_5xx, "last_minute.5xx", NULL, NULL, NULL, NULL, "Of them 5xx")               \
    F(eweight, "eweight", "eweight", "tcplb_server_eweight", NULL, "gauge",           \
      "Weight in force: the weight lowered by an agent or a slow start.")             \
    F(backup, "backup", "backup", "tcplb_server_backup", NULL, "gauge",               \
      "1 for a backup server: it takes connections only while no other is available.")

#define LISTENER_FIELDS(C, F)                                                        \
    F(name, "name", NULL, NULL, NULL, NULL, "Listener name")                          \
    F(bind, "bind", NULL, NULL, NULL, NULL, "First bind address")                     \
    F(binds, "binds", NULL, NULL, NULL, NULL, "Every bind address")                   \
    F(mode, "mode", NULL, NULL, NULL, NULL, "tcp or http")                            \
    F(pool, "pool", NULL, NULL, NULL, NULL, "The pool it feeds")                      \
    C(active, "active", NULL, "tcplb_listener_active_connections", NULL, "gauge",     \
      COUNTER_KEPT, "Client connections open now.")                                 \
    C(total, "total", NULL, "tcplb_listener_connections_total", NULL, "counter",      \
      COUNTER_CLEARED, "Client connections accepted.")                              \
    C(rejected, "rejected", NULL, "tcplb_listener_rejected_total", NULL, "counter",   \
      COUNTER_CLEARED, "Client connections answered 503 or closed for want of a server.") \
    C(http_502, "http_502", NULL, "tcplb_listener_http_errors_total", "code=\"502\"", \
      "counter", COUNTER_CLEARED, "Error answers of mode=http listeners by status code.") \
    C(http_504, "http_504", NULL, "tcplb_listener_http_errors_total", "code=\"504\"", \
      "counter", COUNTER_CLEARED, "Error answers of mode=http listeners by status code.") \
    F(accept_proxy, "accept_proxy", NULL, NULL, NULL, NULL,                           \
      "Expects a PROXY header first")                                                \
    C(proxy_errors, "proxy_errors", NULL, "tcplb_listener_proxy_errors_total", NULL,  \
      "counter", COUNTER_CLEARED,                                                     \
      "Client connections closed for a missing or malformed PROXY header.")

enum counter_clear { COUNTER_CLEARED = 0, COUNTER_KEPT };

/* Histograms kept per server, each bucket a per-worker counter:
 * H(field, metric, help, bounds). */
#define SERVER_HISTOGRAMS(H)                                                         \
    H(connect, "tcplb_server_connect_seconds", "Time to connect to the server.",      \
      counters_connect_bounds)                                                      \
    H(duration, "tcplb_server_session_seconds",                                       \
      "Duration of client connections that reached the server.",                     \
      counters_duration_bounds)                                                     \
    H(response, "tcplb_server_response_seconds",                                      \
      "Response time: a request's first byte sent to its answer's first byte.",      \
      counters_response_bounds)

/* Histogram bucket upper bounds, in seconds (a last +Inf bucket follows). */
#define COUNTERS_HIST_BUCKETS 12
extern const double counters_connect_bounds[COUNTERS_HIST_BUCKETS];
extern const double counters_duration_bounds[COUNTERS_HIST_BUCKETS];
extern const double counters_response_bounds[COUNTERS_HIST_BUCKETS];

struct counters_hist {
    uint64_t buckets[COUNTERS_HIST_BUCKETS + 1];   /* not cumulative */
    uint64_t sum_us;                               /* sum of observations */
};

/* ---- storage, generated from the lists ------------------------------------ */

#define COUNTERS_FIELD_U64(field, ...) uint64_t field;
#define COUNTERS_FIELD_NONE(...)
#define COUNTERS_FIELD_HIST(field, ...) struct counters_hist field;

/* One worker's slot of a server's counters, and its window of the last
 * minute (recent.h). */
struct server_counters {
    SERVER_FIELDS(COUNTERS_FIELD_U64, COUNTERS_FIELD_NONE)
    SERVER_HISTOGRAMS(COUNTERS_FIELD_HIST)
    struct recent recent;
} __attribute__((aligned(CACHE_LINE)));

/* One worker's slot of a listener's counters. */
struct listener_counters {
    LISTENER_FIELDS(COUNTERS_FIELD_U64, COUNTERS_FIELD_NONE)
} __attribute__((aligned(CACHE_LINE)));

/* Sums of all workers' slots, as read by the stats thread. */
struct server_totals {
    SERVER_FIELDS(COUNTERS_FIELD_U64, COUNTERS_FIELD_NONE)
    SERVER_HISTOGRAMS(COUNTERS_FIELD_HIST)
};
struct listener_totals {
    LISTENER_FIELDS(COUNTERS_FIELD_U64, COUNTERS_FIELD_NONE)
};

/* A histogram of the totals, for the metrics: which one and its bounds. */
struct counters_hist_desc {
    const char *metric, *help;
    const double *bounds;
    size_t offset;               /* of its struct counters_hist in server_totals */
};
extern const struct counters_hist_desc counters_server_hists[];
extern const size_t counters_server_nhists;

/* Allocates nworkers zeroed slots (cache-line aligned) with one reference.
 * NULL on ENOMEM. A reload shares the slots of a server or listener that
 * stays between the old and the new config (counters_ref), so connections
 * still running on the old config count into the same totals; each holder
 * drops its reference with counters_free(). */
struct server_counters *counters_server_new(unsigned nworkers);
struct listener_counters *counters_listener_new(unsigned nworkers);
void *counters_ref(void *slots);
/* <bytes> of zeroed, cache-line-aligned, reference-counted memory, for a
 * shared atomic (a listener's open connections over all workers). */
void *counters_block_new(size_t bytes);
void counters_free(void *slots);    /* NULL is a no-op */

void counters_server_sum(const struct server_counters *slots, unsigned nworkers,
                         struct server_totals *out);
void counters_listener_sum(const struct listener_counters *slots,
                           unsigned nworkers, struct listener_totals *out);

/* Adds one observation of <seconds> to a worker's own histogram. */
void counters_hist_add(struct counters_hist *h, const double *bounds, double seconds);

/* Zeroes the counters a `clear counters` clears (not the COUNTER_KEPT
 * ones). Racy by design against a worker's concurrent add: an increment in
 * flight may survive the clear. */
void counters_server_clear(struct server_counters *slots, unsigned nworkers);
void counters_listener_clear(struct listener_counters *slots, unsigned nworkers);

#endif
