/* tally.h — what a run saw, as it happens: per-server counts, latencies and
 * a per-second timeline, per-client counts with the servers each client was
 * given, and failures by kind. The load driver feeds it; report.c reads it.
 * It does no I/O and reads no clock: callers pass times in. */
#ifndef SKEWLOAD_TALLY_H
#define SKEWLOAD_TALLY_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_NAME_MAX 64
/* A backend that answers with a different "name" every time (an echo in tcp
 * mode, a body with a counter) must not grow the table without bound. */
#define TALLY_SERVERS_MAX 256
#define TALLY_OTHER "(other)"
/* Answers without a server name (tcplb's own 503, an empty body). */
#define TALLY_UNNAMED "-"
#define TALLY_STATUS_MAX 999

/* Why a request got no complete answer. */
enum tally_err {
    TALLY_CONNECT_REFUSED,  /* connect: ECONNREFUSED */
    TALLY_CONNECT_ERROR,    /* connect: anything else (EADDRNOTAVAIL, ...) */
    TALLY_RESET,            /* ECONNRESET or EPIPE after connecting */
    TALLY_TIMEOUT,          /* --timeout passed before the answer was whole */
    TALLY_CLOSED,           /* the peer closed before sending a byte */
    TALLY_BAD_RESPONSE,     /* unparseable, cut short, or too large */
    TALLY_IO_ERROR,         /* any other socket error */
    TALLY_ERR_COUNT
};

struct tally_server {
    char name[TALLY_NAME_MAX + 1];
    uint64_t requests;      /* complete answers it gave, any status */
    uint64_t errors;        /* of those, HTTP status outside 2xx */
    double *lat_ms;         /* owned: one latency per answer */
    size_t nlat, lat_cap;
    uint64_t *per_sec;      /* owned: answers completed in second i of the run */
    size_t nsec;
};

/* How often one client was answered by one server. */
struct tally_pin {
    size_t server;          /* index into tally.servers */
    uint64_t count;
};

struct tally_client {
    uint64_t requests;      /* finished attempts, answered or failed */
    uint64_t errors;        /* failed attempts and non-2xx answers */
    struct tally_pin *pins; /* owned; in order of first answer */
    size_t npins;
};

/* Owned by its creator; free with tally_free. */
struct tally {
    struct tally_server *servers;   /* owned, in order of first answer */
    size_t nservers, servers_cap;
    struct tally_client *clients;   /* owned, nclients of them */
    size_t nclients;
    uint64_t requests;              /* finished attempts */
    uint64_t ok;                    /* answered with 2xx (or a line, tcp mode) */
    uint64_t failures[TALLY_ERR_COUNT];
    uint64_t status[TALLY_STATUS_MAX + 1];  /* non-2xx answers by code */
};

/* A tally for clients 0..nclients-1; NULL when out of memory. */
struct tally *tally_new(size_t nclients);

/* Frees t and all it owns; tally_free(NULL) is a no-op. */
void tally_free(struct tally *t);

const char *tally_err_str(enum tally_err kind);

/* Records a complete answer for client: name is the server that gave it
 * (NULL or "" when unknown), status its HTTP status or 0 when the protocol
 * has none (tcp mode: counted as a success), lat_ms its latency and at_s
 * the seconds since the run began when it completed. Unknown names are
 * recorded under TALLY_UNNAMED only for successes; a failed status without
 * a name is an error of no server. Returns 0, or -1 when out of memory
 * (the answer is then counted without its latency sample). */
int tally_response(struct tally *t, size_t client, const char *name, int status,
                   double lat_ms, double at_s);

/* Records a failed attempt of client. */
void tally_failure(struct tally *t, size_t client, enum tally_err kind);

/* Failed attempts plus non-2xx answers. */
uint64_t tally_errors(const struct tally *t);

/* Sorts every server's latencies ascending, ready for dist_percentile.
 * Call once the run is over; harmless to repeat. */
void tally_sort(struct tally *t);

#endif
