/* scheduler.h — the scheduler interface: one const ops table per algorithm
 * (sched_rr.c, ...), listed in sched.c. A scheduler chooses a server of a
 * pool for a new connection; it never does I/O nor reads a clock, so tests
 * drive it with any `now` they like. */
#ifndef TCPLB_SCHEDULER_H
#define TCPLB_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct pool;
struct server;
struct client_key;

/* What pick() knows of the connection to place. */
struct sched_request {
    const struct client_key *key;    /* the client's IP (persistence, source
                                        hashing); may be NULL */
    const uint32_t *tried;           /* server indexes already tried */
    size_t ntried;
    double now;                      /* seconds, monotonic */
    uint64_t random;                 /* a fresh random value from the caller */
    int peek;                        /* only tell: move no shared position */
    int *spilled;                    /* out, may be NULL: set to 1 when a
                                        bounded-load cap sent the client past
                                        its own server */
};

/* What sched_ops.observe is told. */
enum sched_observation {
    SCHED_OBSERVE_CONNECT = 0,      /* a connect succeeded after this long */
    SCHED_OBSERVE_RESPONSE,         /* a request's answer began after this long */
};

/* What an algorithm is, for the layers above it. */
enum sched_flags {
    /* Places a client by the hash of its IP (consistent hashing): `which`
     * answers `hash` or `spill` instead of `schedule`, and a spill is
     * reported through sched_request.spilled. */
    SCHED_HASHES_CLIENT = 1 << 0,
};

struct sched_ops {
    const char *name;
    unsigned flags;                  /* enum sched_flags */
    /* Builds the algorithm's state for <pool> (servers known, weights set).
     * Main thread. NULL on ENOMEM. */
    void *(*init)(struct pool *pool);
    /* Returns an available server not in req->tried, or NULL when none.
     * Any worker thread, concurrently. */
    struct server *(*pick)(void *state, struct pool *pool,
                           const struct sched_request *req);
    /* A connection that pick() placed on <srv> has ended. Any worker.
     * May be NULL. */
    void (*release)(void *state, struct server *srv);
    /* What a connection to <srv> measured at <now>: its connect time or a
     * response time (enum sched_observation), in seconds. Any worker, as it
     * happens. May be NULL. */
    void (*observe)(void *state, struct server *srv, int what, double seconds,
                    double now);
    /* <srv>'s state or weight changed. Main thread; a repeat call is
     * harmless. */
    void (*server_changed)(void *state, struct pool *pool, struct server *srv);
    /* A digest of the table that places clients, for the pool's `mapping`
     * (equal digests: the same placement). May be NULL. Any thread. */
    uint64_t (*mapping)(void *state);
    void (*free)(void *state);
};

/* The algorithm registered as <name>, or NULL. */
const struct sched_ops *sched_find(const char *name);

/* Known names, space separated, for error messages. */
const char *sched_names(void);

/* Why sched_pick() chose its server. */
enum sched_why {
    SCHED_WHY_NONE = 0,     /* no server */
    SCHED_WHY_PERSIST,      /* the client's remembered server (persist) */
    SCHED_WHY_HASH,         /* source: the client's own server */
    SCHED_WHY_SPILL,        /* source: a later server, its own was over the cap */
    SCHED_WHY_SCHEDULE,     /* the pool's algorithm */
};
const char *sched_why_str(enum sched_why why);

/* Picks a server for a new connection of <pool>: the client's remembered
 * server when `persist = source` holds one that may take it (up or drain,
 * untried, below maxconn), else the pool's algorithm. Any worker.
 * sched_pick_why() also tells why. */
struct server *sched_pick(struct pool *pool, const struct sched_request *req);
struct server *sched_pick_why(struct pool *pool, const struct sched_request *req,
                              enum sched_why *why);

/* 1 if <index> is in the request's tried set. */
int sched_tried(const struct sched_request *req, uint32_t index);

/* 1 if <srv> may take this request: available, below its maxconn and not
 * tried yet. */
int sched_eligible(const struct sched_request *req, const struct server *srv);

/* Compares load per unit weight: <0 if a is less loaded than b, 0 if equal,
 * >0 if more. Uses the shared active counts. */
int sched_load_cmp(const struct server *a, const struct server *b);

extern const struct sched_ops sched_roundrobin;
extern const struct sched_ops sched_leastconn;
extern const struct sched_ops sched_random2;
extern const struct sched_ops sched_source;
extern const struct sched_ops sched_leasttime;

#endif
