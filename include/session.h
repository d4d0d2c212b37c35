/* session.h — one client connection and its server connection: connect with
 * retries, relay both ways, timeouts, HTTP error answers, and the single
 * close path that counts and logs why the session ended. Worker thread only. */
#ifndef TCPLB_SESSION_H
#define TCPLB_SESSION_H

#include <sys/socket.h>

struct worker;
struct listen_sock;

enum session_term {
    TERM_OK = 0,
    TERM_CLIENT_RESET,
    TERM_SERVER_RESET,
    TERM_NO_SERVER,
    TERM_CONNECT_FAIL,
    TERM_QUEUE_TIMEOUT,
    TERM_SERVER_TIMEOUT,
    TERM_IDLE_TIMEOUT,
    TERM_SHUTDOWN,
    TERM_BAD_PROXY,      /* accept_proxy: no valid PROXY header in time */
    TERM_CLIENT_LIMIT,   /* the client IP has client_maxconn open already */
};
const char *session_term_str(enum session_term t);

/* Takes ownership of the accepted fd and starts placing the connection.
 * On ENOMEM the fd is closed. */
void session_start(struct worker *w, struct listen_sock *ls, int fd,
                   const struct sockaddr *addr, socklen_t addrlen);

/* Gives queued connections of this worker the server slots that freed up,
 * in FIFO order over all workers. Worker thread, on its queue wake-up. */
void session_queue_run(struct worker *w);

struct session;
struct worker;
struct worker_member;

/* io = io_uring: gives <w> its ring (session_uring.c), in the worker's own
 * thread. 0, or -1 with why in <err>; the worker then relays with epoll. */
int session_ring_setup(struct worker *w, char *err, size_t errlen);
/* Frees it once the worker's thread ended; harmless without one. */
void session_ring_teardown(struct worker *w);

/* The session that holds <m> (its place on the worker's list). */
struct session *session_of(struct worker_member *m);

/* The worker applied a reload from <old>: a session of <old> whose listener,
 * pool and servers all remain (by name) moves onto their successors, so it
 * keeps counting on its server (active, maxconn, the schedulers' loads and
 * its client's entry) and uses the new pool's settings from now on; any
 * other session finishes on the config it started with. Worker thread. */
struct config;
void session_reload(struct session *s, struct config *old);

/* Ends a session now with <term> (used by shutdown). */
void session_abort(struct session *s, enum session_term term);

#endif
