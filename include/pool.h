/* pool.h — pools and their servers: settings from the config, plus the few
 * runtime fields every worker reads (state, weight, active count) and the
 * per-worker counters. Owned by the struct config that holds the pool.
 * Functions on a pool are pool_*, those on one of its servers server_*. */
#ifndef TCPLB_POOL_H
#define TCPLB_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include "counters.h"
#include "check.h"
#include "net.h"

struct sched_ops;
struct client_table;
struct worker;

enum server_state {
    SERVER_UP = 0,   /* takes new connections */
    SERVER_DOWN,     /* failed health checks */
    SERVER_DRAIN,    /* admin: keeps its clients, no new ones */
    SERVER_MAINT,    /* admin: out of service */
    SERVER_EJECTED,  /* outlier ejection: failed too often in a row, for a while */
};
#define SERVER_STATE_LAST SERVER_EJECTED
const char *server_state_str(enum server_state s);

#define SERVER_WEIGHT_MAX 256
/* Schedulers see weights in 1/16ths (as HAProxy's eweight does), so that a
 * slow start or an agent's percentage can lower even a weight of 1. */
#define SERVER_WEIGHT_SCALE 16
#define POOL_RETRIES_MAX 16

struct pool;

struct server {
    char *name;                 /* owned */
    char *addr_text;            /* owned: as written in the config */
    struct net_addr addr;
    unsigned weight;            /* from the config */
    unsigned maxconn;           /* 0 = no cap */
    int send_proxy;             /* enum proxy_version: header sent on connect */
    int backup;                 /* takes connections only while no other
                                   server of the pool is available */
    unsigned check_port;        /* health checks go here, 0: addr's port */
    int has_source;             /* source= given: bind before connecting */
    struct net_addr source;     /* its address, port 0 */
    uint32_t index;             /* position in pool->servers */
    int line;                   /* config line, for messages */
    struct pool *pool;          /* back pointer, not owned */

    /* Runtime, shared by all workers. state and weight are written by the
     * main thread; the active count (in pool->actives) by whichever worker
     * opens or closes a connection to this server (one atomic add per
     * connection, never per byte). */
    int state;                  /* enum server_state, atomic access */
    unsigned cur_weight;        /* the weight set by config or `set weight` */
    unsigned agent_pct;         /* an agent's NN%, 100 without one */
    unsigned ramp_pml;          /* slow start: per mille of the weight, 1000 = all */
    unsigned eweight;           /* in force: cur_weight x agent x ramp, in
                                   1/SERVER_WEIGHT_SCALE; all four atomic */
    unsigned passive_failures;  /* consecutive failed connects by traffic */
    /* Outlier ejection: failures in a row by traffic (connects, resets,
     * 502/504, 5xx), and of them how many of each kind; written by the
     * workers (atomic), read and reset by the health checker. */
    unsigned outlier_run;
    unsigned outlier_kinds[4];  /* enum outlier_kind */
    unsigned agent_port;        /* agent check port of this server, 0: the pool's */
    struct server_counters *counters;   /* owned: [nworkers] */
    /* Membership at run time (membership.c, main thread writes). A slot
     * of pool->servers is never freed while the pool lives: `removed` says
     * it holds no server (a `del server`, or a discovered server that left
     * and emptied); views and schedulers skip it, and a later add may take
     * it again. */
    int removed;                /* atomic */
    int origin;                 /* enum server_origin */
    int leaving;                /* discovered: left the answer, draining */
    double removed_at;          /* monotonic, when removed (slot reuse) */
    /* The same server (by name) in the config a reload replaced this one's
     * with, NULL when it left; set by pool_adopt() on the main thread before
     * the workers get the new config, read by them as they apply it. */
    struct server *successor;
};

enum persist_mode { PERSIST_NONE = 0, PERSIST_SOURCE };

/* Where a server came from: a reload replaces the first kind, carries the
 * third over (the pool's discovery finds them again), drops the second. */
enum server_origin { SERVER_FROM_CONFIG = 0, SERVER_FROM_SOCKET, SERVER_FROM_DISCOVERY };

/* Room for servers added at run time (add server, discover), by default. */
#define POOL_SERVER_SLOTS 64

/* What outlier ejection counts as a failure. */
enum outlier_kind {
    OUTLIER_CONNECT = 0,    /* the connect failed */
    OUTLIER_RESET,          /* the server reset before an exchange ended */
    OUTLIER_ANSWERED,       /* tcplb answered 502 or 504 for it */
    OUTLIER_5XX,            /* mode http: it answered 5xx */
};

/* A connection waiting for a server slot under maxconn. Embedded in the
 * session; the queue links it, the session owns it. */
struct pool_queue_node {
    TAILQ_ENTRY(pool_queue_node) link;
    struct worker *worker;          /* the worker that owns the session */
    int queued;                     /* under the queue's lock */
};

/* FIFO of waiting connections, shared by all workers of the pool. */
struct pool_queue {
    pthread_mutex_t lock;
    TAILQ_HEAD(pool_queue_list, pool_queue_node) nodes;   /* head: first served */
    size_t len;                     /* atomic read outside the lock */
};
enum health_mode { HEALTH_TCP = 0, HEALTH_HTTP, HEALTH_NONE, HEALTH_EXPECT };

struct pool {
    char *name;                 /* owned */
    int line;
    const struct sched_ops *sched;
    void *sched_state;          /* owned by sched->free */
    struct server *servers;     /* owned array of cap_servers slots */
    /* Slots in use, removed ones included: grows at run time (a release
     * store once the new slot is whole), so readers take pool_nservers()
     * once and index below it. */
    uint32_t nservers;
    uint32_t cap_servers;       /* from pool_start(): nservers + server_slots */
    unsigned server_slots;      /* config: room for run-time additions */
    char *discover;             /* owned: "HOST:PORT" or "srv:NAME", NULL: none */
    double discover_interval;
    char **kept;                /* owned: names a removed server's slot gave up */
    size_t nkept;
    /* Active connections per server, side by side: leastconn, random2 and
     * bounded loads read them all on every pick, so a 300-server pool is
     * 19 cache lines to read, not 300. Owned; atomic access. */
    int32_t *actives;
    /* Each server's weight while it is available, else 0: what the scans
     * of leastconn and bounded loads need, in one small array. Written by
     * the main thread with the state and weight. Owned; atomic access. */
    uint32_t *live_weights;
    uint64_t live_weight_total;  /* sum of live_weights; main thread writes */
    /* 1 while the pool has backup servers and no other server is
     * available: then (only) the backups take connections. Main thread
     * writes (pool_refresh_backups), atomic access. */
    int using_backups;
    /* Active connections over all servers of the pool, for bounded loads:
     * kept with the per-server counts so a pick need not sum them. Lives in
     * the same reference-counted block as `actives`. */
    int64_t *active_total;

    enum persist_mode persist;
    double persist_timeout;
    unsigned persist_max;       /* client table capacity */
    struct client_table *clients;   /* owned: stick table and client counts */
    int has_maxconn;            /* some server has a maxconn */
    int started;                /* pool_start() ran: queue lock exists */
    struct pool_queue queue;
    unsigned balance_factor;
    unsigned client_maxconn;    /* per client IP open connections, 0 = no cap */
    double connect_timeout, server_timeout, idle_timeout, queue_timeout;
    unsigned retries;
    double slowstart;           /* seconds; 0 = off */
    unsigned outlier_consecutive;   /* 0 = no ejection */
    double outlier_ejection;
    unsigned outlier_max_percent;
    unsigned agent_port;        /* 0 = no agent check */
    double agent_interval;
    enum health_mode health;
    char *health_path;          /* owned */
    char *health_send;          /* owned: health = expect's bytes, as written */
    char *health_expect;        /* owned: what the answer starts with, as written */
    unsigned char health_send_bytes[CHECK_SEND_MAX];      /* unescaped */
    size_t health_send_len;
    unsigned char health_expect_bytes[CHECK_EXPECT_MAX];  /* unescaped */
    size_t health_expect_len;
    int tcp_keepalive;          /* SO_KEEPALIVE on both sides */
    double tcp_keepalive_idle, tcp_keepalive_interval;    /* whole seconds */
    unsigned tcp_keepalive_count;
    double health_interval, health_timeout;
    unsigned rise, fall;
    struct pool *successor;     /* as server.successor, for the pool */
};

/* The slots in use now (removed ones included). Any thread. */
static inline uint32_t pool_nservers(const struct pool *p)
{
    return __atomic_load_n(&p->nservers, __ATOMIC_ACQUIRE);
}
/* Slots the pool may ever use: what per-server arrays are sized for. */
static inline uint32_t pool_capacity(const struct pool *p)
{
    return p->cap_servers > p->nservers ? p->cap_servers : p->nservers;
}
/* 0 once `del server` (or discovery) took it out: skip it in every view. */
static inline int server_listed(const struct server *s)
{
    return !__atomic_load_n(&s->removed, __ATOMIC_ACQUIRE);
}

/* Current state and weight as workers see them. Any thread. */
static inline enum server_state server_state(const struct server *s)
{
    return (enum server_state)__atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}
/* The weight an operator set (config or `set weight`), 0..256. */
static inline unsigned server_weight(const struct server *s)
{
    return __atomic_load_n(&s->cur_weight, __ATOMIC_RELAXED);
}
/* The weight in force, what schedulers use: in 1/SERVER_WEIGHT_SCALE. */
static inline unsigned server_eweight(const struct server *s)
{
    return __atomic_load_n(&s->eweight, __ATOMIC_RELAXED);
}
/* Up with a weight in force above zero: may take a new scheduled
 * connection. */
/* Not a backup, or a backup while its pool uses them (pool_refresh_backups):
 * may be in rotation at all. */
static inline int server_in_rotation(const struct server *s)
{
    return !s->backup || __atomic_load_n(&s->pool->using_backups, __ATOMIC_ACQUIRE);
}
static inline int server_available(const struct server *s)
{
    return server_state(s) == SERVER_UP && server_eweight(s) > 0 && server_in_rotation(s);
}
static inline int64_t server_active(const struct server *s)
{
    return __atomic_load_n(&s->pool->actives[s->index], __ATOMIC_RELAXED);
}
static inline void server_active_add(struct server *s, int64_t n)
{
    /* seq_cst: a freed slot and a newly queued connection must see each
     * other (see pool_queue_push). */
    __atomic_add_fetch(&s->pool->actives[s->index], (int32_t)n, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(s->pool->active_total, n, __ATOMIC_RELAXED);
}
/* Below its maxconn (or has none). */
static inline int server_has_room(const struct server *s)
{
    return s->maxconn == 0 || server_active(s) < (int64_t)s->maxconn;
}

/* The weight of server <i> if it takes new connections, else 0. */
static inline uint32_t pool_live_weight(const struct pool *p, uint32_t i)
{
    return __atomic_load_n(&p->live_weights[i], __ATOMIC_RELAXED);
}
static inline int64_t pool_active(const struct pool *p, uint32_t i)
{
    return __atomic_load_n(&p->actives[i], __ATOMIC_RELAXED);
}

/* Sets the state and tells the scheduler. Main thread only; a repeat call
 * with the same state is harmless. */
void pool_set_server_state(struct server *s, enum server_state st);
/* Recomputes using_backups (main thread); the setters above call it. */
void pool_refresh_backups(struct pool *p);

/* Sets the weight (0..SERVER_WEIGHT_MAX) and tells the scheduler. Main
 * thread only. Returns -1 when out of range. */
int pool_set_server_weight(struct server *s, unsigned weight);

/* Sets what lowers the weight in force: an agent's percentage (0..100) and
 * the slow start's ramp (per mille, 1..1000), and tells the scheduler when
 * the weight in force changed. Main thread; a repeat call is harmless. */
void pool_set_server_factors(struct server *s, unsigned agent_pct, unsigned ramp_pml);

/* The listed server named <name>, or NULL. */
struct server *pool_find_server(struct pool *p, const char *name);

/* The pool's `mapping`: a digest of what decides placement, equal in two
 * tcplb that place every client the same way: the scheduler, the listed
 * servers in name order with their address, state and weight in force,
 * balance_factor, and the scheduler's own table (source's lookup table).
 * Main thread. */
uint64_t pool_mapping(struct pool *p);

/* Slot <s> was just filled (membership.c): its weight and the scheduler's
 * tables follow. Main thread. */
void pool_server_published(struct pool *p, struct server *s);

/* Keeps <text> (owned) until the pool goes: a worker may still read a
 * string a reused slot replaced. -1 on ENOMEM (text not taken). */
int pool_keep_text(struct pool *p, char *text);

/* Queue of connections waiting under maxconn. Any worker. push puts a node
 * at the tail (or back at the head after a lost race for a slot); remove
 * returns 1 if the node was queued; take pops the head if it belongs to
 * <w>, else tells in *head_owner whose it is (NULL when empty). */
void pool_queue_push(struct pool *p, struct pool_queue_node *n, int at_head);
int pool_queue_remove(struct pool *p, struct pool_queue_node *n);
struct pool_queue_node *pool_queue_take(struct pool *p, struct worker *w,
                                        struct worker **head_owner);
size_t pool_queue_len(struct pool *p);
/* The worker whose connection heads the queue, or NULL when it is empty. */
struct worker *pool_queue_head_owner(struct pool *p);

/* 1 if some available server has a free slot now. */
int pool_has_room(struct pool *p);

/* Allocates counters and scheduler state once nworkers is known.
 * Returns 0/-1 with err filled. */
int pool_start(struct pool *p, unsigned nworkers, char *err, size_t errlen);

/* Reload: takes over from <old> (the same pool in the running config) what
 * must outlive the swap, and links <old> and its servers to their
 * successors in <p> (matched by name). Servers with the same name share
 * their counters; if the server list is the same (names, in order), active
 * counts and the client table are shared too, else the client table is
 * copied (without open connections) with its server indexes remapped by
 * name, and each open connection moves its active count and client entry
 * over when its worker applies the reload (session_reload). Server states
 * are set from <old>'s by the caller (the health checker). Main thread,
 * before <p> is published. */
void pool_adopt(struct pool *p, struct pool *old);

/* Forgets the successors a reload attempt set (one that failed after
 * pool_adopt must not leave them pointing into a config it freed). */
void pool_forget_successors(struct pool *p);

/* Frees everything the pool owns (not the struct itself, which lives in the
 * config's array). Harmless on a zeroed pool. */
void pool_release(struct pool *p);

#endif
