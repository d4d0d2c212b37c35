/* worker.h — a worker thread owns one libev loop, its listening sockets (one
 * per bind, SO_REUSEPORT) and every session it accepted, from accept to
 * close. Other threads reach it only through worker_request_stop(). */
#ifndef TCPLB_WORKER_H
#define TCPLB_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "handoff.h"
#include "pipe_pool.h"

struct config;
struct session;
struct listen_sock;
struct uring;

/* Relay buffers: one per direction in flight, taken from a per-worker free
 * list so that idle connections hold none and the relay path never calls
 * malloc once warm. */
#define WORKER_BUF_SIZE (64 * 1024)
#define WORKER_FREE_BUFS_MAX 64

struct worker_buf {
    struct worker_buf *next;
};

/* A session's place on its worker's list, embedded in struct session and
 * linked and unlinked only by worker.c. */
struct worker_member {
    LIST_ENTRY(worker_member) link;
};

struct worker {
    unsigned id;
    pthread_t thread;
    int started;
    struct ev_loop *loop;          /* owned */
    struct config *config;         /* one reference */

    struct listen_sock *socks;     /* owned array: one per listener bind */
    size_t nsocks;

    ev_async wakeup;               /* another thread asked something */
    ev_async queue_wake;           /* a server slot freed for our queued */
    int stop_requested;            /* atomic */
    int stopping;
    ev_timer shutdown_timer;       /* shutdown_timeout once stopping */
    ev_timer resume_timer;         /* accepting paused: maxconn or EMFILE */
    int accept_paused;

    LIST_HEAD(worker_members, worker_member) sessions;   /* owned: live ones */
    size_t nsessions;

    struct worker_buf *free_bufs;  /* owned free list */
    unsigned nfree_bufs;
    struct pipe_pool pipes;        /* kernel pipes for splice(), owned */
    struct uring *uring;           /* owned: io = io_uring, NULL on epoll */
    char io_error[160];            /* why io_uring could not be used, "" */
    int io_ready;                  /* the thread chose its io (inbox_lock) */
    pthread_cond_t io_ready_cond;
    uint64_t spliced_bytes;        /* moved by splice(); this worker writes */
    uint64_t rng;                  /* xorshift state for schedulers */

    void (*on_exit)(struct worker *w);   /* called in the worker thread */

    /* Reload inbox: a new config and its sockets, taken by the worker. */
    pthread_mutex_t inbox_lock;
    struct config *next_config;    /* one reference, handed over */
    struct listen_sock *next_socks;
    size_t next_nsocks;
    unsigned applied;              /* reloads applied (atomic) */
    /* Balancing accepted connections (handoff.c): this worker's sessions
     * plus those handed to it and not started yet (atomic, any thread
     * reads); the other workers (not owned); the inbox and its wake-up. */
    int64_t load;
    struct worker *peers;
    unsigned npeers;
    struct handoff_inbox handoff;
    ev_async handoff_wake;
    uint64_t handed_out, handed_in;    /* connections given, taken (atomic) */
    unsigned pings_sent;           /* the watchdog's questions (atomic) */
    unsigned pings_answered;       /* answered by the loop (atomic) */
};

/* Prepares a worker (loop, sockets already opened by the caller). */
int worker_init(struct worker *w, unsigned id, struct config *config,
                struct listen_sock *socks, size_t nsocks);
/* Starts the thread and waits until it has set up its io (its ring, or why
 * not), so that `show info` and the log are right from the start. 0/-1. */
int worker_start(struct worker *w);
/* Asks the worker to stop accepting and finish its sessions within the
 * config's shutdown_timeout. Any thread; repeat calls are harmless. */
void worker_request_stop(struct worker *w);
void worker_join(struct worker *w);

/* Hands the worker a new config (taking over one reference) and its new
 * listening sockets (from listener_open_all with the worker's current ones
 * as <old>). The worker switches between events: new connections use the
 * new config, established ones keep theirs. Main thread; call again only
 * once worker_reload_applied() has counted the previous one. */
void worker_reload(struct worker *w, struct config *c, struct listen_sock *socks,
                   size_t nsocks);
unsigned worker_reload_applied(struct worker *w);
/* Tells <w> that a queued connection of its may get a slot. Any thread. */
void worker_wake_queue(struct worker *w);
/* The watchdog's question: is this worker's loop still turning? ping asks
 * (main thread), answered() says whether the last ping came back. */
void worker_ping(struct worker *w);
int worker_ping_answered(struct worker *w);
void worker_free(struct worker *w);

/* Session bookkeeping, worker thread only: a new session joins the list, a
 * closing one leaves it (the last one ends a stopping worker's loop). */
void worker_session_add(struct worker *w, struct worker_member *m);
void worker_session_remove(struct worker *w, struct worker_member *m);

/* A random 64-bit value from the worker's own generator (xorshift64*). */
uint64_t worker_random(struct worker *w);

char *worker_buf_get(struct worker *w);   /* NULL on ENOMEM */
void worker_buf_put(struct worker *w, char *buf);

/* Stops accepting for `seconds` (maxconn reached, or out of descriptors)
 * instead of spinning on a listener the worker cannot serve. Worker thread. */
void worker_pause_accept(struct worker *w, double seconds);

/* Splicing over all workers, for `show info`. Any thread. */
struct worker_splice_totals {
    uint64_t pipes_limit;   /* in force: splice_pipes as at start */
    uint64_t pipes_used, pipes_idle, bytes;
};
void worker_splice_sum(struct worker *ws, unsigned n, struct worker_splice_totals *out);

/* The relay's io over all workers, for `show info`. Any thread. */
struct worker_io_totals {
    unsigned uring_workers;          /* relaying on an io_uring */
    uint64_t submits, completions;   /* io_uring_enter calls, completions */
    uint64_t buffers;                /* receive buffers filled, not yet sent */
    const char *error;               /* a worker's reason for epoll, or NULL */
};
void worker_io_sum(struct worker *ws, unsigned n, struct worker_io_totals *out);

/* Global count of open client connections, for maxconn. */
int worker_conn_admit(unsigned long maxconn);   /* 1 = admitted and counted */
void worker_conn_release(void);
int64_t worker_conn_count(void);

#endif
