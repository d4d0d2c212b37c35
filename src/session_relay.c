/* session_relay.c — a session's bytes: the watchers' interest, the relay in
 * both directions with back-pressure and half-closes, splice() for bulk
 * transfers, the error answer's write and linger, and the one io callback
 * and the one timer callback (placement and closing are session.c's).
 *
 * A side is read only while the pipe it feeds is empty, which is the
 * back-pressure; what is read is written on at once. One function derives
 * every watcher's interest from that state (session_update_io). A single
 * lazy timer covers connect, server and idle timeouts: it is re-armed only
 * when it fires or a nearer deadline appears, never per byte. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "net.h"
#include "session_int.h"

/* Adaptive splice: a read that fills a whole relay buffer means a bulk
 * transfer, so the direction switches to splice() (no copy through user
 * memory); a splice() that brings less than this means the burst is over,
 * and the direction goes back to plain buffers, which cost less for small
 * request/response exchanges. */
#define SESSION_SPLICE_MIN (16 * 1024)

/* ---- timer --------------------------------------------------------------- */

void session_timer_arm(struct session *s, ev_tstamp deadline)
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

ev_tstamp session_relay_deadline(const struct session *s)
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

void session_side_want(struct session *s, struct session_side *side, int events)
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

int session_pipe_empty(const struct session_pipe *p)
{
    return p->start == p->end && p->in_kp == 0;
}

/* What the interest below relies on: a pipe holds bytes in its buffer or in
 * its kernel pipe, never both, and each only while it has them; a relaying
 * session has its server; a side without an fd is never watched. */
static void session_assert_pipe(const struct session_pipe *p)
{
    assert(p->start <= p->end);
    assert(p->start == p->end || p->buf != NULL);
    assert(p->in_kp == 0 || p->kp.rd != -1);
    assert(p->start == p->end || p->in_kp == 0);
}

void session_update_io(struct session *s)
{
    if (session_on_ring(s))
        return;   /* its completions drive it (session_uring.c) */
    session_assert_pipe(&s->to_srv);
    session_assert_pipe(&s->to_client);
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
        assert(s->server == NULL && s->srv.fd == -1);
        break;
    case SESSION_CONNECTING:
        assert(s->server != NULL && s->srv.fd != -1);
        sev = EV_READ | EV_WRITE;    /* see session_connect_ready() */
        break;
    case SESSION_RELAYING:
        assert(s->server != NULL && s->srv.fd != -1 && s->client.fd != -1);
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
        assert(s->server == NULL && s->srv.fd == -1);
        cev = EV_WRITE;
        break;
    case SESSION_LINGERING:
        assert(s->server == NULL && s->srv.fd == -1);
        cev = EV_READ;
        break;
    }
    session_side_want(s, &s->client, cev);
    session_side_want(s, &s->srv, sev);
}

/* ---- buffers --------------------------------------------------------------- */

void session_pipe_release(struct session *s, struct session_pipe *p)
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

/* ---- relaying ------------------------------------------------------------------ */

int session_relay_done(const struct session *s)
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
void session_send_fin(struct session *s, struct session_side *to)
{
    to->shut = 1;
    if (to == &s->srv)
        session_observe_eof(s, 0);
    if (session_relay_done(s))
        return;
    if (ev_is_pending(&to->io)) {
        to->fin_deferred = 1;
        return;
    }
    shutdown(to->fd, SHUT_WR);
}

/* ---- what both relays (epoll here, io_uring in session_uring.c) count ---- */

void session_relay_sent(struct session *s, struct session_side *to, const char *data,
                        size_t n)
{
    struct server_counters *sc = &s->server->counters[s->worker->id];
    if (to == &s->srv) {
        if (data != NULL)
            session_observe_sent(s, data, n);
        s->bytes_in += (uint64_t)n;
        counter_add(&sc->bytes_in, (uint64_t)n);
        if (s->awaiting_since == 0) {
            if (s->listener->mode == LISTENER_TCP)
                session_exchange_start(s);
            s->awaiting_since = ev_now(s->worker->loop);
            ev_tstamp d = session_relay_deadline(s);
            if (d < s->timer_at)
                session_timer_arm(s, d);
        }
    } else {
        s->bytes_out += (uint64_t)n;
        counter_add(&sc->bytes_out, (uint64_t)n);
    }
}

void session_relay_received(struct session *s, struct session_side *from, const char *data,
                            size_t n)
{
    s->last_activity = ev_now(s->worker->loop);
    if (from == &s->srv) {
        if (s->awaiting_since > 0 && s->listener->mode == LISTENER_TCP)
            session_exchange_answered(s);
        s->awaiting_since = 0;
        if (data != NULL)
            session_observe_received(s, data, n);
    }
}

int session_relay_input_end(struct session *s, struct session_side *from, int err)
{
    /* silent: nothing of the server's reached the client, nor waits to
     * (the io_uring relay may hold its answer while the FIN comes) */
    int server_silent = from == &s->srv && s->bytes_out == 0 && s->to_client.ring_count == 0;
    if (err == 0) {
        from->eof = 1;
        if (from == &s->srv)
            session_observe_eof(s, 1);
        /* in http mode a server that closes before answering is a 502; in
         * tcp mode its FIN is passed on like any other */
        if (server_silent && s->listener->mode == LISTENER_HTTP) {
            session_fail(s, SESSION_502, TERM_SERVER_RESET);
            return -1;
        }
        return 0;
    }
    if (server_silent) {
        session_fail(s, SESSION_502, TERM_SERVER_RESET);
        return -1;
    }
    if (from == &s->srv)
        session_server_reset(s);
    session_close(s, from == &s->client ? TERM_CLIENT_RESET : TERM_SERVER_RESET);
    return -1;
}

void session_relay_output_failed(struct session *s, struct session_side *to)
{
    if (to == &s->srv)
        session_server_reset(s);
    session_close(s, to == &s->client ? TERM_CLIENT_RESET : TERM_SERVER_RESET);
}

int session_flush(struct session *s, struct session_side *to, struct session_pipe *p,
                  struct session_side *from)
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
            session_relay_output_failed(s, to);
            return -1;
        }
        if (p->in_kp > 0) {
            p->in_kp -= (uint32_t)n;
            struct worker *w = s->worker;
            __atomic_store_n(&w->spliced_bytes, w->spliced_bytes + (uint64_t)n,
                             __ATOMIC_RELAXED);
            session_relay_sent(s, to, NULL, (size_t)n);
        } else {
            session_relay_sent(s, to, p->buf + p->start, (size_t)n);
            p->start += (uint32_t)n;
        }
    }
    session_pipe_release(s, p);
    if (from->eof && !to->shut)
        session_send_fin(s, to);
    return 0;
}

int session_pump(struct session *s, struct session_side *from, struct session_pipe *p,
                 struct session_side *to)
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
            /* an observed stream never splices: the observer sees every byte */
            if (n == WORKER_BUF_SIZE && s->config->global.splice && !session_observed(s))
                p->splicing = 1;
        }
    }

    if (n > 0) {
        session_relay_received(s, from, p->in_kp == 0 ? p->buf : NULL, (size_t)n);
        return session_flush(s, to, p, from);
    }
    int read_errno = errno;     /* before the release, which may call libc */
    session_pipe_release(s, p);
    if (n == -1 && (read_errno == EAGAIN || read_errno == EWOULDBLOCK))
        return 0;
    if (session_relay_input_end(s, from, n == 0 ? 0 : read_errno) == -1)
        return -1;
    if (!to->shut)
        session_send_fin(s, to);
    return 0;
}

/* ---- HTTP error answers ---------------------------------------------------- */

static void session_answer_io(struct session *s, int revents)
{
    if (s->state == SESSION_ANSWERING && (revents & EV_WRITE)) {
        size_t len;
        const char *text = session_answer_text(s->answer, &len);
        while (s->answer_off < len) {
            ssize_t n = write(s->client.fd, text + s->answer_off, len - s->answer_off);
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

/* The connect finished. Watching both directions while connecting tells a
 * plain success (writable only) from a failure (libev reports an error as
 * readable and writable): SO_ERROR is asked only in the second case, or when
 * the server spoke first. */
static void session_connect_ready(struct session *s, int revents)
{
    if (revents & EV_READ) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->srv.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            session_connect_failed(s);
            return;
        }
    }
    session_connected(s);
}

void session_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct session *s = w->data;
    switch (s->state) {
    case SESSION_PROXY_WAIT:
        session_proxy_read(s);
        return;
    case SESSION_CONNECTING:
        session_connect_ready(s, revents);
        return;
    case SESSION_ANSWERING:
    case SESSION_LINGERING:
        session_answer_io(s, revents);
        return;
    case SESSION_QUEUED:
    case SESSION_FD_WAIT:
    case SESSION_RELAYING:
        break;
    }
    /* the side that fired, its peer, the pipe toward it and the one it feeds */
    int client = w == &s->client.io;
    struct session_side *side = client ? &s->client : &s->srv;
    struct session_side *peer = client ? &s->srv : &s->client;
    struct session_pipe *toward = client ? &s->to_client : &s->to_srv;
    struct session_pipe *feeds = client ? &s->to_srv : &s->to_client;
    if ((revents & EV_WRITE) && session_flush(s, side, toward, peer) == -1)
        return;
    if ((revents & EV_READ) && session_pump(s, side, feeds, peer) == -1)
        return;
    if (session_relay_done(s)) {
        session_close(s, TERM_OK);
        return;
    }
    session_update_io(s);
}

void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
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
        session_fail(s, SESSION_503, TERM_QUEUE_TIMEOUT);
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
        if (s->bytes_out == 0)
            session_fail(s, SESSION_504, TERM_SERVER_TIMEOUT);
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
