/* session_int.h — the inside of a session, shared by the files that make
 * one up and by nothing else: session.c (start, placement, connect with
 * retries, error answers, reload, close and log), session_relay.c (io
 * interest, the epoll relay, half-closes, the watcher and timer callbacks),
 * session_uring.c (the relay on the worker's io_uring) and session_obs.c
 * (requests and their cost). Everyone else holds a struct session only as
 * a pointer. */
#ifndef TCPLB_SESSION_INT_H
#define TCPLB_SESSION_INT_H

#include <ev.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>

#include "client_key.h"
#include "pipe_pool.h"
#include "pool.h"
#include "session.h"
#include "worker.h"

struct config;
struct listener_conf;

/* An IPv4 or IPv6 address: 28 bytes instead of sockaddr_storage's 128,
 * two of them in every session. */
union session_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

enum session_state {
    SESSION_PROXY_WAIT,  /* accept_proxy: reading the PROXY header */
    SESSION_QUEUED,      /* waiting for a slot under server maxconn */
    SESSION_FD_WAIT,     /* out of descriptors: retrying the connect shortly */
    SESSION_CONNECTING,
    SESSION_RELAYING,
    SESSION_ANSWERING,   /* writing an HTTP error answer */
    SESSION_LINGERING,   /* answer sent, reading until the client closes */
};

struct session_side {
    ev_io io;               /* io.data: the session */
    int fd;                 /* owned, -1 when closed */
    int events;             /* what io is registered for */
    int eof;                /* this side sent FIN */
    int shut;               /* we sent FIN to this side (or it is deferred) */
    int fin_deferred;       /* shut, but shutdown() waits for this side's
                               own event queued in the same loop pass */
    /* io = io_uring (session_uring.c) */
    uint8_t ring_recv;      /* a receive is in flight on fd */
    uint8_t ring_more;      /* the last one left bytes in the socket */
    uint8_t ring_starved;   /* it found no buffer: waits for one back */
};

struct session_pipe {       /* bytes flowing toward one side */
    char *buf;              /* from the worker's pool while non-empty */
    uint32_t start, end;
    struct pipe_fds kp;     /* a kernel pipe while splice() moves bytes */
    uint32_t in_kp;         /* bytes waiting in kp */
    int splicing;           /* a bulk transfer: read with splice() */
    /* io = io_uring: received ring buffers waiting to be sent, oldest
     * first, linked through the ring's next[] (session_uring.c) */
    uint16_t ring_head, ring_tail, ring_count;
    uint8_t ring_sending;   /* a send of the head is in flight */
    uint32_t ring_off;      /* of the head, bytes sent */
};

/* The error answers of mode = http, and what answering each counts. */
enum session_answer { SESSION_503 = 0, SESSION_502, SESSION_504 };

/* Owner: the worker that accepted it (on its list through `member`); freed
 * by session_close() only. */
struct session {
    struct worker_member member;   /* on the worker's list */
    struct worker *worker;
    struct config *config;         /* one reference: listener, pool, servers */
    struct listener_conf *listener;
    struct pool *pool;
    struct server *server;         /* holds one `active` while set */
    struct server *served_by;      /* the server whose connect succeeded */
    struct server *retried_from;   /* last failed server, counted `retried` */
    enum session_state state;
    enum session_term term;

    struct session_side client, srv;
    struct session_pipe to_srv, to_client;
    uint32_t ring_slot;            /* on the worker's io_uring while RELAYING,
                                      URING_NO_SLOT otherwise */
    uint8_t ring_leaving;          /* bulk: moves to epoll's splice() once
                                      what is in flight is done */
    uint32_t ring_sent_batch;      /* the reap batch of the last send to the
                                      server (uring.reaped) */

    ev_timer timer;
    ev_tstamp timer_at;            /* absolute deadline the timer is set for */
    ev_tstamp started, connect_started, last_activity;
    ev_tstamp awaiting_since;      /* client bytes sent, no answer yet; 0 = no */
    double connect_ms;             /* of the successful connect, <0 = none */
    struct timespec wall_start;

    uint64_t bytes_in, bytes_out;
    struct http_obs *obs;          /* mode http: while a request is in flight */
    double rt_sum;                 /* response times of its exchanges, seconds */
    uint32_t requests;             /* requests (http) or exchanges (tcp) sent */
    uint32_t rt_n;                 /* of them, answered */
    uint16_t last_status;          /* last final HTTP status, 0: none yet */
    uint8_t obs_off;               /* mode http: no longer observed */
    uint32_t tried[POOL_RETRIES_MAX + 1];
    uint32_t ntried;

    struct client_key key;         /* the client's IP, for the client table */
    int placed;                    /* counted in the pool's client table */
    int placed_early;              /* counted open by client_maxconn's admit */
    struct pool_queue_node qnode;  /* in the pool's queue while QUEUED */
    ev_tstamp queued_since;
    ev_tstamp fd_wait_since;       /* first failed attempt for want of an fd */
    int dispatching;               /* taken from the queue head: no re-queue */

    enum session_answer answer;    /* while ANSWERING */
    size_t answer_off;

    union session_addr client_addr;        /* from the PROXY header if any */
    union session_addr local_addr;         /* where the client connected to */
    int local_known;
};

/* ---- session.c ---------------------------------------------------------- */

/* The only way a session ends: stops every watcher before freeing. */
void session_close(struct session *s, enum session_term term);
/* The connect to s->server finished well; the relay starts. */
void session_connected(struct session *s);
/* The connect to s->server failed (refused, reset, timed out, or the PROXY
 * header could not be sent): counted, and the next server tried. */
void session_connect_failed(struct session *s);
/* Places the session: picks a server and starts connecting. 1 if it went
 * to the queue, 0 otherwise (connecting, relaying or closed). */
int session_connect(struct session *s);
/* In http mode answers <a> and closes, in tcp mode just closes; counts the
 * answer (503: rejected, 502/504 on their own). */
void session_fail(struct session *s, enum session_answer a, enum session_term term);
/* Reads the PROXY header (accept_proxy) and places the connection. */
void session_proxy_read(struct session *s);
/* The answer's bytes. */
const char *session_answer_text(enum session_answer a, size_t *len);

/* ---- session_obs.c -------------------------------------------------------- */

/* Requests and their cost. Client bytes are observed as they are forwarded
 * to the server, server bytes as they are received; a direction of an
 * observed stream never splices (the observer must see every byte). */
void session_observe_sent(struct session *s, const char *data, size_t n);
void session_observe_received(struct session *s, const char *data, size_t n);
/* The client's FIN went on to the server, or the server's came. */
void session_observe_eof(struct session *s, int from_server);
/* mode tcp: the client sent after the server (or first): a new exchange;
 * the server's first byte since: its response time. */
void session_exchange_start(struct session *s);
void session_exchange_answered(struct session *s);
/* The server reset the connection: a failure for outlier ejection when an
 * exchange was under way (a request sent, its answer not ended). */
void session_server_reset(struct session *s);
/* 1 while mode http still follows this connection's requests. */
int session_observed(const struct session *s);
/* Gives the observer back (session end). */
void session_observe_end(struct session *s);

/* ---- session_uring.c ------------------------------------------------------ */

/* 1 while the session relays on the worker's io_uring (its watchers are
 * stopped; completions drive it). */
int session_on_ring(const struct session *s);
/* A session that starts relaying moves onto the worker's ring when it has
 * one: 1 if it did (and may have closed since), 0 if it stays on epoll. */
int session_ring_attach(struct session *s);
/* Takes the session off the ring (before it answers an error or closes):
 * cancels what is in flight, gives its buffers back. Harmless if not on. */
void session_ring_detach(struct session *s);

/* ---- session_relay.c ----------------------------------------------------- */

void session_timer_arm(struct session *s, ev_tstamp deadline);
/* The nearest deadline while relaying: idle, or the server's if it owes an
 * answer. */
ev_tstamp session_relay_deadline(const struct session *s);
/* Derives every watcher's interest from the state: the one place. */
void session_update_io(struct session *s);
/* Stops watching <side> (and flushes a deferred FIN). */
void session_side_want(struct session *s, struct session_side *side, int events);
/* Gives back a pipe's buffer and kernel pipe (bytes still in it are
 * dropped with it). */
void session_pipe_release(struct session *s, struct session_pipe *p);
int session_pipe_empty(const struct session_pipe *p);
/* Reads from <from> into the empty pipe <p> and writes on to <to>; writes
 * what <p> holds to <to>. Both return -1 if the session was closed. */
int session_pump(struct session *s, struct session_side *from, struct session_pipe *p,
                 struct session_side *to);
int session_flush(struct session *s, struct session_side *to, struct session_pipe *p,
                  struct session_side *from);
/* What both relays count and decide. <n> bytes went out to <to> (<data>
 * them, NULL when spliced): counters, the observer, the server's deadline. */
void session_relay_sent(struct session *s, struct session_side *to, const char *data,
                        size_t n);
/* <n> bytes came from <from> (<data>, NULL when spliced). */
void session_relay_received(struct session *s, struct session_side *from, const char *data,
                            size_t n);
/* <from> sent its FIN (<err> 0) or failed (errno <err>): 0 to go on (the
 * caller passes the FIN on once what <from> sent is out), -1 if the session
 * was closed or answers an error. */
int session_relay_input_end(struct session *s, struct session_side *from, int err);
/* A write to <to> failed: counted and closed. */
void session_relay_output_failed(struct session *s, struct session_side *to);
/* Passes a FIN on to <to> (sets shut). */
void session_send_fin(struct session *s, struct session_side *to);
/* Both directions ended and everything was written. */
int session_relay_done(const struct session *s);
/* The libev callbacks. */
void session_io_cb(struct ev_loop *loop, ev_io *w, int revents);
void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

#endif
