/* session.c — one proxied connection, from accept to close, on one worker.
 *
 * A session has two sides (client, server), each with an fd and one io
 * watcher, and two one-way pipes of bytes (toward the server, toward the
 * client). A pipe holds a buffer only while bytes are in flight; a side is
 * read only while the pipe it feeds is empty, which is the back-pressure. One
 * function derives every watcher's interest from that state
 * (session_update_io), and one function ends a session (session_close),
 * counting and logging why. A single lazy timer covers connect, server and
 * idle timeouts: it is re-armed only when it fires or a nearer deadline
 * appears, never per byte. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_table.h"
#include "config.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "net.h"
#include "pipe_pool.h"
#include "pool.h"
#include "proxy_proto.h"
#include "scheduler.h"
#include "session.h"
#include "util.h"
#include "worker.h"

/* How long an HTTP error answer waits for the client to close after the
 * answer, so that unread request bytes never turn our close into a RST. */
#define SESSION_LINGER 2.0
/* How long a listener with accept_proxy waits for the PROXY header. */
#define SESSION_PROXY_TIMEOUT 3.0
/* Adaptive splice: a read that fills a whole relay buffer means a bulk
 * transfer, so the direction switches to splice() (no copy through user
 * memory); a splice() that brings less than this means the burst is over,
 * and the direction goes back to plain buffers, which cost less for small
 * request/response exchanges. */
#define SESSION_SPLICE_MIN (16 * 1024)

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
    ev_io io;
    int fd;                 /* owned, -1 when closed */
    int events;             /* what io is registered for */
    int eof;                /* this side sent FIN */
    int shut;               /* we sent FIN to this side (or it is deferred) */
    int fin_deferred;       /* shut, but shutdown() waits for this side's
                               own event queued in the same loop pass */
};

struct session_pipe {       /* bytes flowing toward one side */
    char *buf;              /* from the worker's pool while non-empty */
    uint32_t start, end;
    struct pipe_fds kp;     /* a kernel pipe while splice() moves bytes */
    uint32_t in_kp;         /* bytes waiting in kp */
    int splicing;           /* a bulk transfer: read with splice() */
};

struct session {
    struct worker_member member;   /* on the worker's list */
    struct worker *worker;
    struct config *config;         /* one reference */
    struct listener_conf *listener;
    struct pool *pool;
    struct server *server;         /* holds one `active` while set */
    struct server *served_by;      /* the server whose connect succeeded */
    struct server *retried_from;   /* last failed server, counted `retried` */
    enum session_state state;
    enum session_term term;

    struct session_side client, srv;
    struct session_pipe to_srv, to_client;

    ev_timer timer;
    ev_tstamp timer_at;            /* absolute deadline the timer is set for */
    ev_tstamp started, connect_started, connected_at, last_activity;
    ev_tstamp awaiting_since;      /* client bytes sent, no answer yet; 0 = no */
    double connect_ms;             /* of the successful connect, <0 = none */
    struct timespec wall_start;

    uint64_t bytes_in, bytes_out;
    uint32_t tried[POOL_RETRIES_MAX + 1];
    uint32_t ntried;

    struct client_key key;         /* the client's IP, for the client table */
    int placed;                    /* counted in the pool's client table */
    int placed_early;              /* counted open by client_maxconn's admit */
    struct pool_queue_node qnode;  /* in the pool's queue while QUEUED */
    ev_tstamp queued_since;
    ev_tstamp fd_wait_since;       /* first failed attempt for want of an fd */
    int dispatching;               /* taken from the queue head: no re-queue */

    const char *answer;            /* static HTTP error answer */
    size_t answer_len, answer_off;

    union session_addr client_addr;        /* from the PROXY header if any */
    union session_addr local_addr;         /* where the client connected to */
    int local_known;
};

const char *session_term_str(enum session_term t)
{
    switch (t) {
    case TERM_OK: return "ok";
    case TERM_CLIENT_RESET: return "client_reset";
    case TERM_SERVER_RESET: return "server_reset";
    case TERM_NO_SERVER: return "no_server";
    case TERM_CONNECT_FAIL: return "connect_fail";
    case TERM_QUEUE_TIMEOUT: return "queue_timeout";
    case TERM_SERVER_TIMEOUT: return "server_timeout";
    case TERM_IDLE_TIMEOUT: return "idle_timeout";
    case TERM_SHUTDOWN: return "shutdown";
    case TERM_BAD_PROXY: return "bad_proxy";
    case TERM_CLIENT_LIMIT: return "client_limit";
    }
    return "?";
}

#define HTTP_ANSWER(code, reason, body)                                     \
    "HTTP/1.1 " code " " reason "\r\n"                                      \
    "Content-Type: text/plain\r\n"                                          \
    "Content-Length: " #body "\r\n"                                         \
    "Cache-Control: no-cache\r\n"                                           \
    "Connection: close\r\n\r\n"

static const char session_503[] =
    HTTP_ANSWER("503", "Service Unavailable", 24) "503 Service Unavailable\n";
static const char session_502[] =
    HTTP_ANSWER("502", "Bad Gateway", 16) "502 Bad Gateway\n";
static const char session_504[] =
    HTTP_ANSWER("504", "Gateway Timeout", 20) "504 Gateway Timeout\n";

static void session_client_cb(struct ev_loop *loop, ev_io *w, int revents);
static void session_server_cb(struct ev_loop *loop, ev_io *w, int revents);
static void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void session_close(struct session *s, enum session_term term);
static int session_connect(struct session *s);

/* ---- timer --------------------------------------------------------------- */

static void session_timer_arm(struct session *s, ev_tstamp deadline)
{
    struct ev_loop *loop = s->worker->loop;
    if (ev_is_active(&s->timer) && s->timer_at == deadline)
        return;
    ev_timer_stop(loop, &s->timer);
    ev_tstamp after = deadline - ev_now(loop);
    ev_timer_set(&s->timer, after > 0 ? after : 0, 0);
    ev_timer_start(loop, &s->timer);
    s->timer_at = deadline;
}

/* The nearest deadline while relaying: idle, or the server's if it owes an
 * answer. */
static ev_tstamp session_relay_deadline(const struct session *s)
{
    ev_tstamp d = s->last_activity + s->pool->idle_timeout;
    if (s->awaiting_since > 0) {
        ev_tstamp sd = s->awaiting_since + s->pool->server_timeout;
        if (sd < d)
            d = sd;
    }
    return d;
}

/* ---- io interest: the one place that derives it ---------------------------- */

/* Sends a FIN that session_send_fin() deferred. */
static void session_fin_flush(struct session_side *side)
{
    if (side->fin_deferred) {
        side->fin_deferred = 0;
        shutdown(side->fd, SHUT_WR);
    }
}

static void session_side_want(struct session *s, struct session_side *side, int events)
{
    if (side->fd == -1 || side->events == events)
        return;
    session_fin_flush(side);   /* stopping the watcher drops its queued event */
    struct ev_loop *loop = s->worker->loop;
    ev_io_stop(loop, &side->io);
    side->events = events;
    if (events) {
        ev_io_set(&side->io, side->fd, events);
        ev_io_start(loop, &side->io);
    }
}

static int session_pipe_empty(const struct session_pipe *p)
{
    return p->start == p->end && p->in_kp == 0;
}

static void session_update_io(struct session *s)
{
    int cev = 0, sev = 0;
    /* A deferred FIN waits only while its side's event is still queued. */
    if (!ev_is_pending(&s->client.io))
        session_fin_flush(&s->client);
    if (!ev_is_pending(&s->srv.io))
        session_fin_flush(&s->srv);
    switch (s->state) {
    case SESSION_PROXY_WAIT:
        cev = EV_READ;
        break;
    case SESSION_QUEUED:
    case SESSION_FD_WAIT:
        break;
    case SESSION_CONNECTING:
        sev = EV_READ | EV_WRITE;    /* see session_connect_ready() */
        break;
    case SESSION_RELAYING:
        if (!s->client.eof && session_pipe_empty(&s->to_srv))
            cev |= EV_READ;
        if (!session_pipe_empty(&s->to_client))
            cev |= EV_WRITE;
        if (!s->srv.eof && session_pipe_empty(&s->to_client))
            sev |= EV_READ;
        if (!session_pipe_empty(&s->to_srv))
            sev |= EV_WRITE;
        break;
    case SESSION_ANSWERING:
        cev = EV_WRITE;
        break;
    case SESSION_LINGERING:
        cev = EV_READ;
        break;
    }
    session_side_want(s, &s->client, cev);
    session_side_want(s, &s->srv, sev);
}

/* ---- buffers --------------------------------------------------------------- */

/* Gives back the buffer and the kernel pipe; bytes still in a kernel pipe
 * (the session is ending) are dropped with it. */
static void session_pipe_release(struct session *s, struct session_pipe *p)
{
    if (p->buf != NULL)
        worker_buf_put(s->worker, p->buf);
    p->buf = NULL;
    p->start = p->end = 0;
    if (p->kp.rd == -1)
        return;
    if (p->in_kp > 0)
        pipe_pool_discard(&s->worker->pipes, &p->kp);
    else
        pipe_pool_put(&s->worker->pipes, &p->kp);
    p->in_kp = 0;
}

/* ---- the server connection ---------------------------------------------------- */

/* Wakes the worker whose connection heads the pool's queue. Any worker. */
static void session_queue_kick(struct pool *pool)
{
    struct worker *owner = pool_queue_head_owner(pool);
    if (owner != NULL)
        worker_wake_queue(owner);
}

/* Gives back the server slot (active count, scheduler) and closes its fd. */
static void session_drop_server(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
    ev_io_stop(loop, &s->srv.io);
    s->srv.events = 0;
    if (s->srv.fd != -1) {
        close(s->srv.fd);
        s->srv.fd = -1;
    }
    if (s->server != NULL) {
        struct server *srv = s->server;
        server_active_add(srv, -1);
        if (s->pool->sched->release)
            s->pool->sched->release(s->pool->sched_state, srv);
        s->server = NULL;
        if (srv->maxconn > 0 && pool_queue_len(s->pool) > 0)
            session_queue_kick(s->pool);
    }
    s->srv.eof = s->srv.shut = s->srv.fin_deferred = 0;
}

/* ---- close and log ------------------------------------------------------------ */

static void session_log(struct session *s)
{
    char line[512], client[NET_ADDR_STRLEN], ts[40], connect_ms[32];
    struct tm tm;
    gmtime_r(&s->wall_start.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", s->wall_start.tv_nsec / 1000000);
    if (s->connect_ms >= 0)
        snprintf(connect_ms, sizeof(connect_ms), "%.2f", s->connect_ms);
    else
        snprintf(connect_ms, sizeof(connect_ms), "-");
    /* the contract: `-` unless a server was reached (its connect succeeded) */
    const char *server = s->served_by != NULL ? s->served_by->name : "-";

    int len = snprintf(line, sizeof(line),
        "ts=%s client=%s listener=%s pool=%s server=%s connect_ms=%s "
        "duration_ms=%.1f bytes_in=%llu bytes_out=%llu term=%s\n",
        ts, net_addr_str((struct sockaddr *)&s->client_addr, client, sizeof(client)),
        s->listener->name, s->pool->name, server, connect_ms,
        (ev_now(s->worker->loop) - s->started) * 1000.0,
        (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
        session_term_str(s->term));
    if (len > 0)
        log_access(s->worker->id, line, (size_t)len < sizeof(line) ? (size_t)len
                                                                    : sizeof(line) - 1);
}

/* The only way a session ends: stops every watcher before freeing. */
static void session_close(struct session *s, enum session_term term)
{
    struct worker *w = s->worker;
    struct ev_loop *loop = w->loop;
    unsigned wid = w->id;

    if (s->term == TERM_OK)
        s->term = term;
    if (s->state == SESSION_QUEUED)
        pool_queue_remove(s->pool, &s->qnode);
    if (s->placed || s->placed_early)
        client_table_ended(s->pool->clients, &s->key);
    ev_timer_stop(loop, &s->timer);
    ev_io_stop(loop, &s->client.io);
    session_drop_server(s);
    if (s->client.fd != -1)
        close(s->client.fd);
    session_pipe_release(s, &s->to_srv);
    session_pipe_release(s, &s->to_client);

    counter_add(&s->listener->counters[wid].active, (uint64_t)-1);
    listener_release(s->listener);
    if (s->served_by != NULL)
        counters_hist_add(&s->served_by->counters[wid].duration,
                          counters_duration_bounds, ev_now(loop) - s->started);
    if (log_access_enabled())
        session_log(s);
    worker_conn_release();
    worker_session_remove(w, &s->member);
    config_unref(s->config);
    free(s);
}

struct session *session_of(struct worker_member *m)
{
    return container_of(m, struct session, member);
}

void session_abort(struct session *s, enum session_term term)
{
    session_close(s, term);
}

/* No server could be had: 503 in http mode, a silent close in tcp mode. */
static void session_reject(struct session *s, enum session_term term)
{
    if (s->retried_from != NULL) {
        /* the retry it was counted for found no other server: lost after all */
        struct server_counters *c = &s->retried_from->counters[s->worker->id];
        counter_add(&c->retried, (uint64_t)-1);
        counter_add(&c->lost, 1);
        s->retried_from = NULL;
    }
    counter_add(&s->listener->counters[s->worker->id].rejected, 1);
    if (s->listener->mode != LISTENER_HTTP) {
        session_close(s, term);
        return;
    }
    s->term = term;
    s->answer = session_503;
    s->answer_len = sizeof(session_503) - 1;
    s->answer_off = 0;
    s->state = SESSION_ANSWERING;
    session_timer_arm(s, ev_now(s->worker->loop) + SESSION_LINGER);
    session_update_io(s);
}

/* An HTTP error after the server was reached but before any byte of its
 * answer reached the client (502, 504). */
static void session_answer_error(struct session *s, const char *answer, size_t len,
                                 enum session_term term)
{
    struct listener_counters *lc = &s->listener->counters[s->worker->id];
    counter_add(answer == session_504 ? &lc->http_504 : &lc->http_502, 1);
    session_drop_server(s);
    session_pipe_release(s, &s->to_srv);
    session_pipe_release(s, &s->to_client);
    s->term = term;
    s->answer = answer;
    s->answer_len = len;
    s->answer_off = 0;
    s->state = SESSION_ANSWERING;
    session_timer_arm(s, ev_now(s->worker->loop) + SESSION_LINGER);
    session_update_io(s);
}

/* ---- connect with retries --------------------------------------------------- */

/* Counts a failed connect on <srv>: retried when the connection will try
 * another server, lost when it gives up. */
static void session_count_failure(struct session *s, struct server *srv)
{
    struct server_counters *c = &srv->counters[s->worker->id];
    counter_add(&c->failed, 1);
    if (s->ntried > s->pool->retries) {
        counter_add(&c->lost, 1);
        s->retried_from = NULL;
    } else {
        counter_add(&c->retried, 1);
        s->retried_from = srv;
    }
    health_passive_result(srv, 0);
}

static void session_connect_failed(struct session *s)
{
    session_count_failure(s, s->server);
    session_drop_server(s);
    ev_timer_stop(s->worker->loop, &s->timer);
    if (s->ntried > s->pool->retries) {
        session_reject(s, TERM_CONNECT_FAIL);
        return;
    }
    (void)session_connect(s);
}

static void session_connect_failed(struct session *s);
static int session_flush(struct session *s, struct session_side *to,
                         struct session_pipe *p, struct session_side *from);
static int session_pump(struct session *s, struct session_side *from,
                        struct session_pipe *p, struct session_side *to);

/* Sends the PROXY header to a server that wants one, before any client byte.
 * The socket has just connected, so its send buffer is empty and the header
 * (at most 52 bytes here) goes out whole; anything else is a failed connect. */
static int session_send_proxy(struct session *s)
{
    uint8_t hdr[PROXY_HEADER_MAX];
    if (!s->local_known) {
        socklen_t len = sizeof(s->local_addr);
        if (getsockname(s->client.fd, (struct sockaddr *)&s->local_addr, &len) == -1)
            memset(&s->local_addr, 0, sizeof(s->local_addr));
        s->local_known = 1;
    }
    size_t n = proxy_proto_build((enum proxy_version)s->server->send_proxy,
                           (const struct sockaddr *)&s->client_addr,
                           (const struct sockaddr *)&s->local_addr, hdr);
    ssize_t w = send(s->srv.fd, hdr, n, MSG_NOSIGNAL);
    return w == (ssize_t)n ? 0 : -1;
}

static void session_connected(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
    ev_tstamp now = ev_now(loop);
    if (s->server->send_proxy && session_send_proxy(s) == -1) {
        session_connect_failed(s);
        return;
    }
    struct server_counters *sc = &s->server->counters[s->worker->id];
    counter_add(&sc->total, 1);
    s->served_by = s->server;
    s->retried_from = NULL;
    health_passive_result(s->server, 1);
    if (!s->placed) {
        client_table_placed(s->pool->clients, &s->key, s->server->index, now,
                            s->placed_early);
        s->placed = 1;
    }
    double connect_s = ev_time() - s->connect_started;
    s->connect_ms = connect_s * 1000.0;
    counters_hist_add(&sc->connect, counters_connect_bounds, connect_s);
    s->connected_at = now;
    s->last_activity = now;
    s->state = SESSION_RELAYING;
    session_timer_arm(s, session_relay_deadline(s));
    /* A client usually has sent its first bytes by now (an HTTP request
     * leaves with the handshake's last ACK, and the server's handshake took
     * a round trip): read and forward them at once rather than one loop pass
     * later, when the client's event would say so. A client that has not
     * costs one recv() that finds nothing. */
    int r = session_pipe_empty(&s->to_srv)
                ? session_pump(s, &s->client, &s->to_srv, &s->srv)
                : session_flush(s, &s->srv, &s->to_srv, &s->client);
    if (r == -1)
        return;
    session_update_io(s);
}

/* Puts the session in the pool's queue. Back at the head when it was just
 * taken from there and lost the slot to a race; then it keeps its first
 * deadline and does not wake anyone (it would only lose again). */
static int session_enqueue(struct session *s, int at_head)
{
    struct ev_loop *loop = s->worker->loop;
    if (!at_head || s->queued_since == 0)
        s->queued_since = ev_now(loop);
    s->dispatching = 0;
    s->state = SESSION_QUEUED;
    pool_queue_push(s->pool, &s->qnode, at_head);
    session_timer_arm(s, s->queued_since + s->pool->queue_timeout);
    session_update_io(s);
    /* A slot may have freed between the pick and the push: its worker saw
     * an empty queue and kicked nobody. */
    if (!at_head && pool_has_room(s->pool))
        session_queue_kick(s->pool);
    return 1;
}

/* 1 if some server could take the request but for its maxconn. */
static int session_pool_full(const struct session *s, const struct sched_request *req)
{
    for (uint32_t i = 0; i < s->pool->nservers; i++) {
        const struct server *srv = &s->pool->servers[i];
        if (server_available(srv) && !server_has_room(srv) &&
            !sched_tried(req, srv->index))
            return 1;
    }
    return 0;
}

/* Places the session: picks a server and starts connecting, retrying on
 * immediate failures. Returns 1 if the session went to the queue, 0
 * otherwise (connecting, relaying or already closed). */
static int session_connect(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
    for (;;) {
        /* First come, first served: while others wait, newcomers queue. */
        if (s->pool->has_maxconn && !s->dispatching && pool_queue_len(s->pool) > 0 &&
            s->pool->queue_timeout > 0)
            return session_enqueue(s, 0);
        struct sched_request req = {
            .key = &s->key,
            .tried = s->tried,
            .ntried = s->ntried,
            .now = ev_now(loop),
            .random = worker_random(s->worker),
        };
        struct server *srv = sched_pick(s->pool, &req);
        if (srv == NULL) {
            if (s->pool->has_maxconn && s->pool->queue_timeout > 0 &&
                session_pool_full(s, &req))
                return session_enqueue(s, s->dispatching);
            session_reject(s, s->ntried ? TERM_CONNECT_FAIL : TERM_NO_SERVER);
            return 0;
        }
        s->dispatching = 0;
        s->tried[s->ntried++] = srv->index;
        s->server = srv;
        server_active_add(srv, 1);

        int done = 0;
        s->connect_started = ev_time();
        int fd = net_connect(&srv->addr, &done);
        if (fd == -1 && net_error_is_local(errno)) {
            /* Our shortage (descriptors, ports), not the server's: no blame.
             * The client is accepted already; rather than close it, wait a
             * little and try again, up to connect_timeout, while the worker
             * takes no new clients. */
            session_drop_server(s);
            s->ntried--;
            ev_tstamp now = ev_now(loop);
            if (s->fd_wait_since == 0)
                s->fd_wait_since = now;
            if (now - s->fd_wait_since >= s->pool->connect_timeout) {
                session_reject(s, TERM_CONNECT_FAIL);
                return 0;
            }
            worker_pause_accept(s->worker, 0.1);
            s->state = SESSION_FD_WAIT;
            session_timer_arm(s, now + 0.05);
            session_update_io(s);
            return 0;
        }
        if (fd == -1) {
            /* refused at once: count it and try another */
            session_count_failure(s, srv);
            session_drop_server(s);
            if (s->ntried > s->pool->retries) {
                session_reject(s, TERM_CONNECT_FAIL);
                return 0;
            }
            continue;
        }
        s->srv.fd = fd;
        s->srv.events = 0;
        if (done) {
            session_connected(s);
            return 0;
        }
        s->state = SESSION_CONNECTING;
        session_timer_arm(s, ev_now(loop) + s->pool->connect_timeout);
        session_update_io(s);
        return 0;
    }
}

void session_queue_run(struct worker *w)
{
    struct config *c = w->config;
    for (size_t i = 0; i < c->npools; i++) {
        struct pool *pool = &c->pools[i];
        if (!pool->has_maxconn)
            continue;
        while (pool_queue_len(pool) > 0 && pool_has_room(pool)) {
            struct worker *owner = NULL;
            struct pool_queue_node *n = pool_queue_take(pool, w, &owner);
            if (n == NULL) {
                if (owner != NULL && owner != w)
                    worker_wake_queue(owner);
                break;
            }
            struct session *s = container_of(n, struct session, qnode);
            s->dispatching = 1;
            if (session_connect(s) == 1)
                break;      /* lost the slot: back at the head, wait */
        }
    }
}

/* The connect finished. Watching both directions while connecting tells a
 * plain success (writable only) from a failure (libev reports an error as
 * readable and writable): SO_ERROR is asked only in the second case, or when
 * the server spoke first. */
static void session_connect_ready(struct session *s, int revents)
{
    if (!(revents & EV_READ)) {
        session_connected(s);
        return;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->srv.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    if (err != 0) {
        session_connect_failed(s);
        return;
    }
    session_connected(s);
}

/* ---- relaying ------------------------------------------------------------------ */

static int session_relay_done(const struct session *s)
{
    return s->client.eof && s->srv.shut && session_pipe_empty(&s->to_srv) &&
           s->srv.eof && s->client.shut && session_pipe_empty(&s->to_client);
}

/* Passes a FIN on to <to>. When that finishes the relay, the caller closes
 * both sockets at once and close() sends the FIN: no shutdown() call. When
 * <to>'s own event is already queued in this loop pass (both peers closed
 * at once, as with one HTTP request per connection), the FIN waits for it:
 * if it is <to>'s EOF the session closes and no shutdown() is needed at all;
 * otherwise session_update_io() sends the FIN at the end of that event. */
static void session_send_fin(struct session *s, struct session_side *to)
{
    to->shut = 1;
    if (session_relay_done(s))
        return;
    if (ev_is_pending(&to->io)) {
        to->fin_deferred = 1;
        return;
    }
    shutdown(to->fd, SHUT_WR);
}

/* Writes what `p` holds to `to`. Returns -1 if the session was closed. */
static int session_flush(struct session *s, struct session_side *to,
                         struct session_pipe *p, struct session_side *from)
{
    while (!session_pipe_empty(p)) {
        ssize_t n;
        if (p->in_kp > 0)
            n = splice(p->kp.rd, NULL, to->fd, NULL, p->in_kp,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
            n = net_send(to->fd, p->buf + p->start, p->end - p->start);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            session_close(s, to == &s->client ? TERM_CLIENT_RESET : TERM_SERVER_RESET);
            return -1;
        }
        if (p->in_kp > 0) {
            p->in_kp -= (uint32_t)n;
            struct worker *w = s->worker;
            __atomic_store_n(&w->spliced_bytes, w->spliced_bytes + (uint64_t)n,
                             __ATOMIC_RELAXED);
        } else {
            p->start += (uint32_t)n;
        }
        if (to == &s->srv) {
            s->bytes_in += (uint64_t)n;
            counter_add(&s->server->counters[s->worker->id].bytes_in, (uint64_t)n);
            if (s->awaiting_since == 0) {
                s->awaiting_since = ev_now(s->worker->loop);
                ev_tstamp d = session_relay_deadline(s);
                if (d < s->timer_at)
                    session_timer_arm(s, d);
            }
        } else {
            s->bytes_out += (uint64_t)n;
            counter_add(&s->server->counters[s->worker->id].bytes_out, (uint64_t)n);
        }
    }
    session_pipe_release(s, p);
    if (from->eof && !to->shut)
        session_send_fin(s, to);
    return 0;
}

/* Reads from `from` into the empty pipe `p`, then writes on to `to` at once.
 * Returns -1 if the session was closed. */
static int session_pump(struct session *s, struct session_side *from,
                        struct session_pipe *p, struct session_side *to)
{
    if (!session_pipe_empty(p))
        return 0;
    ssize_t n;
    if (p->splicing &&
        (p->kp.rd != -1 || pipe_pool_get(&s->worker->pipes, &p->kp) == 0)) {
        do {
            n = splice(from->fd, NULL, p->kp.wr, NULL, s->worker->pipes.pipe_size,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        } while (n == -1 && errno == EINTR);
        if (n > 0) {
            p->in_kp = (uint32_t)n;
            if (n < SESSION_SPLICE_MIN)
                p->splicing = 0;
        }
    } else {
        if (p->buf == NULL && (p->buf = worker_buf_get(s->worker)) == NULL)
            return 0;   /* out of memory: try again on the next event */
        do {
            n = net_recv(from->fd, p->buf, WORKER_BUF_SIZE);
        } while (n == -1 && errno == EINTR);
        if (n > 0) {
            p->start = 0;
            p->end = (uint32_t)n;
            if (n == WORKER_BUF_SIZE && s->config->global.splice)
                p->splicing = 1;
        }
    }

    if (n > 0) {
        s->last_activity = ev_now(s->worker->loop);
        if (from == &s->srv)
            s->awaiting_since = 0;
        return session_flush(s, to, p, from);
    }
    int read_errno = errno;     /* before the release, which may call libc */
    session_pipe_release(s, p);
    if (n == -1) {
        if (read_errno == EAGAIN || read_errno == EWOULDBLOCK)
            return 0;
        goto reset;
    }
    /* EOF */
    from->eof = 1;
    if (from == &s->srv && s->bytes_out == 0 && s->listener->mode == LISTENER_HTTP) {
        session_answer_error(s, session_502, sizeof(session_502) - 1,
                             TERM_SERVER_RESET);
        return -1;
    }
    if (!to->shut)
        session_send_fin(s, to);
    return 0;
reset:
    if (from == &s->srv && s->bytes_out == 0 && s->listener->mode == LISTENER_HTTP) {
        session_answer_error(s, session_502, sizeof(session_502) - 1,
                             TERM_SERVER_RESET);
        return -1;
    }
    session_close(s, from == &s->client ? TERM_CLIENT_RESET : TERM_SERVER_RESET);
    return -1;
}

/* ---- accept_proxy ------------------------------------------------------------ */

/* Reads the PROXY header into the pipe toward the server (so nothing is
 * left unread to wake the loop again, and bytes after the header are simply
 * the first ones relayed), then places the connection. */
static void session_place(struct session *s);

static void session_proxy_read(struct session *s)
{
    struct session_pipe *p = &s->to_srv;
    if (p->buf == NULL && (p->buf = worker_buf_get(s->worker)) == NULL)
        return;
    ssize_t n;
    do {
        n = read(s->client.fd, p->buf + p->end, PROXY_HEADER_MAX - p->end);
    } while (n == -1 && errno == EINTR);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        session_close(s, TERM_CLIENT_RESET);
        return;
    }
    p->end += (uint32_t)n;

    size_t consumed = 0;
    int has_addr = 0;
    struct sockaddr_storage src, dst;
    enum proxy_proto_result r = proxy_proto_parse((const uint8_t *)p->buf, p->end, &consumed,
                                            &src, &dst, &has_addr);
    if (r == PROXY_PARSE_MORE && p->end < PROXY_HEADER_MAX)
        return;
    if (r != PROXY_PARSE_DONE) {   /* malformed, or longer than any header */
        counter_add(&s->listener->counters[s->worker->id].proxy_errors, 1);
        session_close(s, TERM_BAD_PROXY);
        return;
    }
    p->start = (uint32_t)consumed;
    if (p->start == p->end)
        session_pipe_release(s, p);
    if (has_addr) {
        memcpy(&s->client_addr, &src, sizeof(s->client_addr));
        memcpy(&s->local_addr, &dst, sizeof(s->local_addr));
        s->local_known = 1;
        client_key_from_addr((const struct sockaddr *)&src, &s->key);
    }
    ev_timer_stop(s->worker->loop, &s->timer);
    session_side_want(s, &s->client, 0);
    session_place(s);
}

/* ---- HTTP error answers ---------------------------------------------------- */

static void session_answer_io(struct session *s, int revents)
{
    if (s->state == SESSION_ANSWERING && (revents & EV_WRITE)) {
        while (s->answer_off < s->answer_len) {
            ssize_t n = write(s->client.fd, s->answer + s->answer_off,
                              s->answer_len - s->answer_off);
            if (n == -1) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                session_close(s, s->term);
                return;
            }
            s->answer_off += (size_t)n;
        }
        shutdown(s->client.fd, SHUT_WR);
        s->client.shut = 1;
        s->state = SESSION_LINGERING;
        session_update_io(s);
        return;
    }
    if (s->state == SESSION_LINGERING && (revents & EV_READ)) {
        char sink[4096];
        for (int rounds = 0; rounds < 16; rounds++) {
            ssize_t n = read(s->client.fd, sink, sizeof(sink));
            if (n > 0)
                continue;
            if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            session_close(s, s->term);   /* EOF or error: the client is done */
            return;
        }
    }
}

/* ---- watchers ------------------------------------------------------------------ */

static void session_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct session *s = container_of(w, struct session, client.io);
    if (s->state == SESSION_PROXY_WAIT) {
        session_proxy_read(s);
        return;
    }
    if (s->state == SESSION_ANSWERING || s->state == SESSION_LINGERING) {
        session_answer_io(s, revents);
        return;
    }
    if ((revents & EV_WRITE) && session_flush(s, &s->client, &s->to_client, &s->srv) == -1)
        return;
    if ((revents & EV_READ) && session_pump(s, &s->client, &s->to_srv, &s->srv) == -1)
        return;
    if (session_relay_done(s)) {
        session_close(s, TERM_OK);
        return;
    }
    session_update_io(s);
}

static void session_server_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct session *s = container_of(w, struct session, srv.io);
    if (s->state == SESSION_CONNECTING) {
        session_connect_ready(s, revents);
        return;
    }
    if ((revents & EV_WRITE) && session_flush(s, &s->srv, &s->to_srv, &s->client) == -1)
        return;
    if ((revents & EV_READ) && session_pump(s, &s->srv, &s->to_client, &s->client) == -1)
        return;
    if (session_relay_done(s)) {
        session_close(s, TERM_OK);
        return;
    }
    session_update_io(s);
}

static void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct session *s = container_of(w, struct session, timer);
    ev_tstamp now = ev_now(loop);

    switch (s->state) {
    case SESSION_PROXY_WAIT:
        counter_add(&s->listener->counters[s->worker->id].proxy_errors, 1);
        session_close(s, TERM_BAD_PROXY);
        return;
    case SESSION_FD_WAIT:
        (void)session_connect(s);
        return;
    case SESSION_QUEUED:
        pool_queue_remove(s->pool, &s->qnode);
        session_reject(s, TERM_QUEUE_TIMEOUT);
        return;
    case SESSION_CONNECTING:
        session_connect_failed(s);
        return;
    case SESSION_ANSWERING:
    case SESSION_LINGERING:
        session_close(s, s->term);
        return;
    case SESSION_RELAYING:
        break;
    }
    if (s->awaiting_since > 0 && now >= s->awaiting_since + s->pool->server_timeout) {
        if (s->bytes_out == 0 && s->listener->mode == LISTENER_HTTP)
            session_answer_error(s, session_504, sizeof(session_504) - 1,
                                 TERM_SERVER_TIMEOUT);
        else
            session_close(s, TERM_SERVER_TIMEOUT);
        return;
    }
    if (now >= s->last_activity + s->pool->idle_timeout) {
        session_close(s, TERM_IDLE_TIMEOUT);
        return;
    }
    s->timer_at = 0;    /* expired: force a re-arm */
    session_timer_arm(s, session_relay_deadline(s));
}

/* ---- start ------------------------------------------------------------------------ */

/* The client's IP is final (after a PROXY header): admit it under
 * client_maxconn, then place it. */
static void session_place(struct session *s)
{
    if (s->pool->client_maxconn > 0) {
        if (!client_table_admit(s->pool->clients, &s->key, s->pool->client_maxconn)) {
            session_reject(s, TERM_CLIENT_LIMIT);
            return;
        }
        s->placed_early = 1;
    }
    (void)session_connect(s);
}

void session_start(struct worker *w, struct listen_sock *ls, int fd,
                   const struct sockaddr *addr, socklen_t addrlen)
{
    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        worker_conn_release();
        listener_release(ls->conf);
        return;
    }
    s->worker = w;
    s->config = config_ref(w->config);
    s->listener = ls->conf;
    s->pool = ls->conf->pool;
    s->started = ev_now(w->loop);
    s->connect_ms = -1;
    if (log_access_enabled())          /* only the log line needs it */
        clock_gettime(CLOCK_REALTIME, &s->wall_start);
    if (addrlen > sizeof(s->client_addr))
        addrlen = sizeof(s->client_addr);
    memcpy(&s->client_addr, addr, addrlen);
    client_key_from_addr(addr, &s->key);
    s->qnode.worker = w;

    s->client.fd = fd;
    s->srv.fd = -1;
    s->to_srv.kp.rd = s->to_srv.kp.wr = -1;
    s->to_client.kp.rd = s->to_client.kp.wr = -1;
    ev_io_init(&s->client.io, session_client_cb, fd, 0);
    ev_io_init(&s->srv.io, session_server_cb, -1, 0);
    ev_init(&s->timer, session_timer_cb);
    /* TCP_NODELAY comes from the listening socket (Linux copies it to
     * accepted ones): no setsockopt per connection. */

    counter_add(&s->listener->counters[w->id].total, 1);
    counter_add(&s->listener->counters[w->id].active, 1);
    worker_session_add(w, &s->member);
    if (s->listener->accept_proxy) {
        s->state = SESSION_PROXY_WAIT;
        session_timer_arm(s, ev_now(w->loop) + SESSION_PROXY_TIMEOUT);
        session_update_io(s);
        return;
    }
    session_place(s);
}
