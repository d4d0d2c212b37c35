/* session.c — one proxied connection, from accept to close, on one worker:
 * start, the PROXY header of accept_proxy, placement under client_maxconn
 * and server maxconn (the pool's queue), connect with retries, the error
 * answers of mode = http, moving onto a reloaded config, and the single
 * close path that counts and logs why the session ended. The bytes
 * themselves are session_relay.c's.
 *
 * A session has two sides (client, server), each with an fd and one io
 * watcher, and two one-way pipes of bytes (toward the server, toward the
 * client), described in session_int.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_table.h"
#include "config.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "log_line.h"
#include "net.h"
#include "proxy_proto.h"
#include "scheduler.h"
#include "session_int.h"
#include "uring.h"
#include "util.h"

/* How long an HTTP error answer waits for the client to close after the
 * answer, so that unread request bytes never turn our close into a RST. */
#define SESSION_LINGER 2.0
/* How long a listener with accept_proxy waits for the PROXY header. */
#define SESSION_PROXY_TIMEOUT 3.0

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

/* ---- error answers ------------------------------------------------------- */

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

const char *session_answer_text(enum session_answer a, size_t *len)
{
    switch (a) {
    case SESSION_502:
        *len = sizeof(session_502) - 1;
        return session_502;
    case SESSION_504:
        *len = sizeof(session_504) - 1;
        return session_504;
    case SESSION_503:
        break;
    }
    *len = sizeof(session_503) - 1;
    return session_503;
}

/* ---- the server slot --------------------------------------------------------- */

/* Wakes the worker whose connection heads the pool's queue. Any worker. */
static void session_queue_kick(struct pool *pool)
{
    struct worker *owner = pool_queue_head_owner(pool);
    if (owner != NULL)
        worker_wake_queue(owner);
}

/* tcp_keepalive: the kernel probes an idle peer, so a client or server
 * that vanished without a FIN or RST (a powered-off host, a NAT or
 * firewall that forgot the flow) ends the connection instead of holding it
 * until idle_timeout. */
static void session_keepalive(struct session *s, int fd)
{
    const struct pool *p = s->pool;
    /* on a TCP socket of ours these cannot fail with values the config
     * table bounded */
    (void)net_set_keepalive(fd, (unsigned)p->tcp_keepalive_idle,
                            (unsigned)p->tcp_keepalive_interval, p->tcp_keepalive_count);
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
    /* room for the longest names and the JSON quoting: nothing is cut */
    char line[1024], client[NET_ADDR_STRLEN], ts[40];
    struct tm tm;
    gmtime_r(&s->wall_start.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", s->wall_start.tv_nsec / 1000000);

    struct log_line l;
    log_line_start(&l, line, sizeof(line), s->worker->config->global.log_format);
    log_line_str(&l, "ts", ts);
    log_line_str(&l, "client",
                 net_addr_str((struct sockaddr *)&s->client_addr, client, sizeof(client)));
    log_line_str(&l, "listener", s->listener->name);
    log_line_str(&l, "pool", s->pool->name);
    /* no value unless a server was reached (its connect succeeded) */
    log_line_str(&l, "server", s->served_by != NULL ? s->served_by->name : NULL);
    if (s->connect_ms >= 0)
        log_line_num(&l, "connect_ms", "%.2f", s->connect_ms);
    else
        log_line_none(&l, "connect_ms");
    log_line_num(&l, "duration_ms", "%.1f", (ev_now(s->worker->loop) - s->started) * 1000.0);
    log_line_u64(&l, "bytes_in", s->bytes_in);
    log_line_u64(&l, "bytes_out", s->bytes_out);
    log_line_str(&l, "term", session_term_str(s->term));
    log_line_u64(&l, "requests", s->requests);
    if (s->rt_n > 0)
        log_line_num(&l, "rt_ms", "%.2f", s->rt_sum / s->rt_n * 1000.0);
    else
        log_line_none(&l, "rt_ms");
    if (s->listener->mode == LISTENER_HTTP) {
        if (s->last_status)
            log_line_u64(&l, "status", s->last_status);
        else
            log_line_none(&l, "status");
    }
    size_t len = log_line_end(&l);
    if (len > 0)
        log_access(s->worker->id, line, len);
}

void session_close(struct session *s, enum session_term term)
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
    session_ring_detach(s);
    ev_io_stop(loop, &s->client.io);
    session_drop_server(s);
    if (s->client.fd != -1)
        close(s->client.fd);
    session_pipe_release(s, &s->to_srv);
    session_pipe_release(s, &s->to_client);
    session_observe_end(s);

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

void session_fail(struct session *s, enum session_answer a, enum session_term term)
{
    session_ring_detach(s);   /* the answer and the linger are epoll's */
    struct listener_counters *lc = &s->listener->counters[s->worker->id];
    if (a == SESSION_503) {
        if (s->retried_from != NULL) {
            /* the retry it was counted for found no other server: lost */
            struct server_counters *c = &s->retried_from->counters[s->worker->id];
            counter_add(&c->retried, (uint64_t)-1);
            counter_add(&c->lost, 1);
            s->retried_from = NULL;
        }
        counter_add(&lc->rejected, 1);
    }
    if (s->listener->mode != LISTENER_HTTP) {
        /* no answer to give; a reset before the server's first byte is
         * still a failure of an exchange under way */
        if (a == SESSION_502)
            session_server_reset(s);
        session_close(s, term);
        return;
    }
    if (a != SESSION_503 && s->server != NULL)
        health_outlier_failure(s->server, OUTLIER_ANSWERED);
    if (a == SESSION_502)
        counter_add(&lc->http_502, 1);
    else if (a == SESSION_504)
        counter_add(&lc->http_504, 1);
    session_drop_server(s);
    session_pipe_release(s, &s->to_srv);
    session_pipe_release(s, &s->to_client);
    s->term = term;
    s->answer = a;
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
    recent_count(&c->recent, ev_now(s->worker->loop), RECENT_FAILED);
    health_outlier_failure(srv, OUTLIER_CONNECT);
    if (s->ntried > s->pool->retries) {
        counter_add(&c->lost, 1);
        s->retried_from = NULL;
    } else {
        counter_add(&c->retried, 1);
        s->retried_from = srv;
    }
    health_passive_result(srv, 0);
}

/* The one "try the next server" path, for a connect refused at once and one
 * that failed later alike. Returns session_connect()'s answer. */
static int session_try_next(struct session *s)
{
    session_count_failure(s, s->server);
    session_drop_server(s);
    ev_timer_stop(s->worker->loop, &s->timer);
    if (s->ntried > s->pool->retries) {
        session_fail(s, SESSION_503, TERM_CONNECT_FAIL);
        return 0;
    }
    return session_connect(s);
}

void session_connect_failed(struct session *s)
{
    (void)session_try_next(s);
}

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

void session_connected(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
    ev_tstamp now = ev_now(loop);
    if (s->server->send_proxy && session_send_proxy(s) == -1) {
        session_connect_failed(s);
        return;
    }
    struct server_counters *sc = &s->server->counters[s->worker->id];
    counter_add(&sc->total, 1);
    recent_count(&sc->recent, now, RECENT_CONNS);
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
    if (s->pool->sched->observe != NULL)
        s->pool->sched->observe(s->pool->sched_state, s->server, SCHED_OBSERVE_CONNECT,
                                connect_s, now);
    s->last_activity = now;
    s->state = SESSION_RELAYING;
    session_timer_arm(s, session_relay_deadline(s));
    if (session_ring_attach(s))
        return;
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
    for (uint32_t i = 0; i < pool_nservers(s->pool); i++) {
        const struct server *srv = &s->pool->servers[i];
        if (server_available(srv) && !server_has_room(srv) &&
            !sched_tried(req, srv->index))
            return 1;
    }
    return 0;
}

/* Out of descriptors or local ports: our shortage, not the server's, so no
 * blame. The client is accepted already; rather than close it, wait a
 * little and try again, up to connect_timeout, while the worker takes no
 * new clients. */
static int session_wait_for_fd(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
    session_drop_server(s);
    s->ntried--;
    ev_tstamp now = ev_now(loop);
    if (s->fd_wait_since == 0)
        s->fd_wait_since = now;
    if (now - s->fd_wait_since >= s->pool->connect_timeout) {
        session_fail(s, SESSION_503, TERM_CONNECT_FAIL);
        return 0;
    }
    worker_pause_accept(s->worker, 0.1);
    s->state = SESSION_FD_WAIT;
    session_timer_arm(s, now + 0.05);
    session_update_io(s);
    return 0;
}

int session_connect(struct session *s)
{
    struct ev_loop *loop = s->worker->loop;
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
        session_fail(s, SESSION_503, s->ntried ? TERM_CONNECT_FAIL : TERM_NO_SERVER);
        return 0;
    }
    s->dispatching = 0;
    s->tried[s->ntried++] = srv->index;
    s->server = srv;
    server_active_add(srv, 1);

    int done = 0;
    s->connect_started = ev_time();
    int fd = net_connect_from(&srv->addr, srv->has_source ? &srv->source : NULL, &done);
    if (fd == -1)
        return net_error_is_local(errno) ? session_wait_for_fd(s) : session_try_next(s);
    if (s->pool->tcp_keepalive)
        session_keepalive(s, fd);
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

/* ---- reload ----------------------------------------------------------------------- */

/* <srv>'s successor, or NULL; NULL in, NULL out (*ok cleared when a server
 * has none). */
static struct server *session_successor(struct server *srv, int *ok)
{
    if (srv == NULL)
        return NULL;
    if (srv->successor == NULL)
        *ok = 0;
    return srv->successor;
}

void session_reload(struct session *s, struct config *old)
{
    /* only sessions of the config just replaced: the links of older ones
     * may point into configs freed since */
    if (s->config != old)
        return;
    struct listener_conf *listener = s->listener->successor;
    struct pool *pool = s->pool->successor;
    int ok = listener != NULL && pool != NULL && listener->pool == pool;
    struct server *server = session_successor(s->server, &ok);
    struct server *served_by = session_successor(s->served_by, &ok);
    struct server *retried_from = session_successor(s->retried_from, &ok);
    if (!ok)
        return;

    int queued = s->state == SESSION_QUEUED;
    if (queued)
        pool_queue_remove(s->pool, &s->qnode);
    if (server != NULL) {
        /* the same cell when the reload kept the server list: no change */
        server_active_add(server, 1);
        server_active_add(s->server, -1);
    }
    if ((s->placed || s->placed_early) && pool->clients != s->pool->clients) {
        client_table_ended(s->pool->clients, &s->key);
        client_table_moved_in(pool->clients, &s->key);
    }
    uint32_t ntried = 0;
    for (uint32_t i = 0; i < s->ntried; i++) {
        struct server *t = s->pool->servers[s->tried[i]].successor;
        if (t != NULL)
            s->tried[ntried++] = t->index;
    }
    s->ntried = ntried;
    s->listener = listener;
    s->pool = pool;
    s->server = server;
    s->served_by = served_by;
    s->retried_from = retried_from;
    config_unref(s->config);
    s->config = config_ref(s->worker->config);
    if (!queued)
        return;
    if (pool->has_maxconn) {
        pool_queue_push(pool, &s->qnode, 0);
        if (pool_has_room(pool))
            session_queue_kick(pool);
        return;
    }
    s->dispatching = 1;    /* no cap any more: place it now */
    (void)session_connect(s);
}

/* ---- start ------------------------------------------------------------------------ */

/* The client's IP is final (after a PROXY header): admit it under
 * client_maxconn, then place it. */
static void session_place(struct session *s)
{
    if (s->pool->client_maxconn > 0) {
        if (!client_table_admit(s->pool->clients, &s->key, s->pool->client_maxconn)) {
            session_fail(s, SESSION_503, TERM_CLIENT_LIMIT);
            return;
        }
        s->placed_early = 1;
    }
    (void)session_connect(s);
}

/* Reads the PROXY header into the pipe toward the server (so nothing is
 * left unread to wake the loop again, and bytes after the header are simply
 * the first ones relayed), then places the connection. */
void session_proxy_read(struct session *s)
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
    enum proxy_proto_result r = proxy_proto_parse((const uint8_t *)p->buf, p->end,
                                                  &consumed, &src, &dst, &has_addr);
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
    s->ring_slot = URING_NO_SLOT;
    s->to_srv.ring_head = s->to_srv.ring_tail = URING_NO_BUF;
    s->to_client.ring_head = s->to_client.ring_tail = URING_NO_BUF;
    ev_io_init(&s->client.io, session_io_cb, fd, 0);
    ev_io_init(&s->srv.io, session_io_cb, -1, 0);
    s->client.io.data = s->srv.io.data = s;
    ev_init(&s->timer, session_timer_cb);
    /* TCP_NODELAY comes from the listening socket (Linux copies it to
     * accepted ones): no setsockopt per connection. Keepalive is the
     * pool's, which a reload may change under the same listening socket. */
    if (s->pool->tcp_keepalive)
        session_keepalive(s, fd);

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
