/* load.h — the libev driver: C concurrent slots, each making requests from
 * the client addresses the skew picks, until -n requests have started or -d
 * seconds have passed, and then until the last one in flight has finished
 * (each is bounded by --timeout). Every outcome goes to a tally. */
#ifndef SKEWLOAD_LOAD_H
#define SKEWLOAD_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "skew.h"

struct tally;

enum load_mode {
    LOAD_HTTP,      /* GET PATH HTTP/1.1, read one response */
    LOAD_TCP,       /* send one line, read one line */
};

/* What to run; main.c fills it from the command line. Strings are
 * borrowed for the duration of load_run. */
struct load_opts {
    struct sockaddr_in target;
    const char *host;           /* the Host header: -t as given */
    const char *path;           /* http mode */
    const char *line;           /* tcp mode, without the LF */
    enum load_mode mode;
    int keepalive;
    unsigned per_conn;          /* keep-alive: requests per connection, 0 = no cap */
    unsigned concurrency;       /* >= 1 */
    uint64_t max_requests;      /* >= 1 */
    double duration_s;          /* > 0 */
    double timeout_s;           /* > 0, per request, connect included */
    struct in_addr client_base;
    size_t nclients;            /* >= 1, checked by addr_check_clients */
    struct skew_spec skew;
    uint64_t seed;
};

/* How the run went, beyond the tally. */
struct load_result {
    double elapsed_s;           /* from the first request to the end */
    int interrupted;            /* SIGINT/SIGTERM cut it short */
};

const char *load_mode_str(enum load_mode mode);

/* Runs the whole load on the default libev loop and returns when it is
 * over, with every socket closed. SIGINT or SIGTERM end it early: requests
 * in flight are dropped uncounted. Returns 0, or -1 with a message in err
 * when it could not start (out of memory, no libev). */
int load_run(const struct load_opts *o, struct tally *t, struct load_result *res,
             char *err, size_t errlen);

#endif
