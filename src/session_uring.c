/* session_uring.c — the relay of an established connection on the worker's
 * io_uring (io = io_uring): the same bytes, counters, half-closes and
 * back-pressure as the epoll relay in session_relay.c, with other system
 * calls. Placement, connecting, PROXY headers, error answers and timers
 * stay on epoll; a session comes here when it starts relaying and leaves
 * (session_ring_detach) before it answers an error or closes.
 *
 * Each side has at most one receive in flight; the kernel fills a buffer
 * it picks from the worker's shared ring (so an idle connection holds
 * none) and posts it. A filled buffer joins the queue toward the other
 * side, whose head is sent (one send in flight per direction; a short send
 * sends the rest). The back-pressure is epoll's: a side is received from
 * only while fewer than SESSION_RING_QUEUE buffers wait toward its peer,
 * so a slow reader holds at most that many. Not a multishot receive: it
 * keeps filling buffers as fast as the sender sends, and a cancel lands
 * too late (a reader that did not read held 198 buffers, 12 MiB, in the
 * first version's test). Every operation queued in a loop pass goes to the
 * kernel in one io_uring_enter() (uring.c), so re-arming a receive costs
 * no system call of its own. One function (session_ring_update) derives
 * what should be in flight from that state, as session_update_io does for
 * the epoll watchers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"
#include "session_int.h"
#include "uring.h"

/* The operations named in a completion. */
enum session_ring_op {
    SESSION_RING_RECV_CLIENT = 0,
    SESSION_RING_RECV_SRV,
    SESSION_RING_SEND_CLIENT,
    SESSION_RING_SEND_SRV,
};

/* Buffers a direction may hold before its source stops receiving: one
 * being sent and one behind it, as epoll's relay holds at most one. */
#define SESSION_RING_QUEUE 2

/* One direction: where its bytes come from and go, and its operations. */
struct session_ring_dir {
    struct session_side *from, *to;
    struct session_pipe *p;
    unsigned recv_op, send_op;
};

static void session_ring_dirs(struct session *s, struct session_ring_dir d[2])
{
    d[0] = (struct session_ring_dir){ &s->client, &s->srv, &s->to_srv,
                                      SESSION_RING_RECV_CLIENT, SESSION_RING_SEND_SRV };
    d[1] = (struct session_ring_dir){ &s->srv, &s->client, &s->to_client,
                                      SESSION_RING_RECV_SRV, SESSION_RING_SEND_CLIENT };
}

int session_on_ring(const struct session *s)
{
    return s->ring_slot != URING_NO_SLOT;
}

/* ---- a direction's queue of filled buffers ---------------------------------- */

static int session_ring_idle(const struct session *s);
static int session_ring_leave(struct session *s);

static void session_ring_push(struct uring *u, struct session_pipe *p, unsigned bid,
                              uint32_t len)
{
    u->len[bid] = len;
    u->next[bid] = URING_NO_BUF;
    if (p->ring_count == 0)
        p->ring_head = (uint16_t)bid;
    else
        u->next[p->ring_tail] = (uint16_t)bid;
    p->ring_tail = (uint16_t)bid;
    p->ring_count++;
}

static unsigned session_ring_pop(struct uring *u, struct session_pipe *p)
{
    unsigned bid = p->ring_head;
    p->ring_head = u->next[bid];
    p->ring_off = 0;
    if (--p->ring_count == 0)
        p->ring_head = p->ring_tail = URING_NO_BUF;
    return bid;
}

/* ---- operations ---------------------------------------------------------------- */

/* No submission entry (the kernel refused a submission): try again on the
 * next loop pass rather than stall. */
static int session_ring_short(struct session *s)
{
    uring_retry_soon(s->worker->uring, s->ring_slot);
    return -1;
}

static int session_ring_arm(struct session *s, struct session_side *side, unsigned op)
{
    struct uring *u = s->worker->uring;
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return session_ring_short(s);
    /* length 0: the whole buffer the kernel picks */
    io_uring_prep_recv(sqe, side->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    /* the last receive emptied the socket: wait for data rather than try
     * a receive that would find none */
    if (!side->ring_more)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, uring_ud(u, s->ring_slot, op, 0));
    side->ring_recv = 1;
    return 0;
}

static int session_ring_send(struct session *s, const struct session_ring_dir *d)
{
    struct uring *u = s->worker->uring;
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return session_ring_short(s);
    unsigned bid = d->p->ring_head;
    io_uring_prep_send(sqe, d->to->fd, uring_buf(u, bid) + d->p->ring_off,
                       u->len[bid] - d->p->ring_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, uring_ud(u, s->ring_slot, d->send_op, bid));
    d->p->ring_sending = 1;
    return 0;
}

/* The one place that derives what is in flight: a send for every
 * direction with bytes waiting, a FIN where a side ended and its bytes are
 * out, a receive on every side whose output has room. -1 if the session
 * closed (its relay is done). */
static int session_ring_update(struct session *s)
{
    struct session_ring_dir d[2];
    session_ring_dirs(s, d);
    for (int i = 0; i < 2; i++) {
        if (d[i].p->ring_count > 0 && !d[i].p->ring_sending)
            (void)session_ring_send(s, &d[i]);
        else if (d[i].p->ring_count == 0 && d[i].from->eof && !d[i].to->shut)
            session_send_fin(s, d[i].to);
    }
    if (session_relay_done(s)) {
        session_close(s, TERM_OK);
        return -1;
    }
    /* leaving: no new receive; the move waits for the sends (a FIN that a
     * side's end made due has gone above: epoll's relay would not send it) */
    if (s->ring_leaving)
        return session_ring_idle(s) ? session_ring_leave(s) : 0;
    for (int i = 0; i < 2; i++) {
        struct session_side *side = d[i].from;
        if (!side->eof && !side->ring_starved && !side->ring_recv &&
            d[i].p->ring_count < SESSION_RING_QUEUE)
            (void)session_ring_arm(s, side, d[i].recv_op);
    }
    return 0;
}

/* ---- completions ------------------------------------------------------------------ */

/* A receive posted: bytes in buffer <bid>, the side's FIN, or an error. */
static void session_ring_received(struct session *s, const struct session_ring_dir *d,
                                  unsigned bid, int res, unsigned flags)
{
    struct uring *u = s->worker->uring;
    struct session_side *side = d->from;
    side->ring_recv = 0;
    side->ring_more = (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
        /* The server answered within the io_uring_enter() that sent its
         * request: both completions came in one batch, under one loop
         * time, which would make the response time 0. The clock is read
         * again, so it counts at most the length of that call, as epoll's
         * relay counts up to its next loop pass. */
        if (side == &s->srv && s->ring_sent_batch == u->reaped)
            ev_now_update(s->worker->loop);
        session_relay_received(s, side, uring_buf(u, bid), (size_t)res);
        session_ring_push(u, d->p, bid, (uint32_t)res);
        /* a full buffer is a bulk transfer: as on epoll, it goes through
         * splice(), which moves pages instead of copying them twice; the
         * session finishes what is in flight here and moves to epoll */
        if (res == URING_BUF_SIZE && s->config->global.splice && !session_observed(s)) {
            s->ring_leaving = 1;
            d->p->splicing = 1;
        }
        (void)session_ring_update(s);
        return;
    }
    if (flags & IORING_CQE_F_BUFFER)
        uring_buf_put(u, bid);
    if (res == -ENOBUFS) {
        /* every buffer of the worker is waiting for a slow reader: this
         * side resumes once some come back */
        side->ring_starved = 1;
        uring_wait_buffers(u, s->ring_slot);
    } else if (res == 0 || (res < 0 && res != -ECANCELED)) {
        if (session_relay_input_end(s, side, -res) == -1)
            return;
    }
    (void)session_ring_update(s);
}

/* A send posted: <res> bytes of the direction's head went out, or an error. */
static void session_ring_sent(struct session *s, const struct session_ring_dir *d,
                              unsigned bid, int res)
{
    struct uring *u = s->worker->uring;
    struct session_pipe *p = d->p;
    p->ring_sending = 0;
    if (res < 0) {
        session_relay_output_failed(s, d->to);
        return;
    }
    if (d->to == &s->srv)
        s->ring_sent_batch = u->reaped;
    session_relay_sent(s, d->to, uring_buf(u, bid) + p->ring_off, (size_t)res);
    p->ring_off += (uint32_t)res;
    if (p->ring_off >= u->len[bid]) {
        (void)session_ring_pop(u, p);
        uring_buf_put(u, bid);
    }
    (void)session_ring_update(s);
}

static void session_ring_complete(void *owner, unsigned op, unsigned bid, int res,
                                  unsigned flags)
{
    struct session *s = owner;
    struct session_ring_dir d[2];
    session_ring_dirs(s, d);
    switch ((enum session_ring_op)op) {
    case SESSION_RING_RECV_CLIENT:
        session_ring_received(s, &d[0], bid, res, flags);
        return;
    case SESSION_RING_RECV_SRV:
        session_ring_received(s, &d[1], bid, res, flags);
        return;
    case SESSION_RING_SEND_SRV:
        session_ring_sent(s, &d[0], bid, res);
        return;
    case SESSION_RING_SEND_CLIENT:
        session_ring_sent(s, &d[1], bid, res);
        return;
    }
}

/* Called back from the list of session_ring_short and the buffers' wait. */
static void session_ring_retry(void *owner)
{
    struct session *s = owner;
    s->client.ring_starved = s->srv.ring_starved = 0;
    (void)session_ring_update(s);
}

/* ---- on and off the ring -------------------------------------------------------------- */

/* Nothing waits to be sent and no send is in flight. */
static int session_ring_idle(const struct session *s)
{
    return s->to_srv.ring_count == 0 && s->to_client.ring_count == 0 &&
           !s->to_srv.ring_sending && !s->to_client.ring_sending;
}

/* A bulk transfer leaves the ring for epoll and splice() once its sends are
 * done. A receive still in flight is cancelled first; one that completed
 * meanwhile still brings its bytes here (its completion is on its way), and
 * the move waits for them to be sent. 0, or -1 if the session closed. */
static int session_ring_leave(struct session *s)
{
    struct uring *u = s->worker->uring;
    struct session_ring_dir d[2];
    session_ring_dirs(s, d);
    for (int i = 0; i < 2; i++) {
        struct session_side *side = d[i].from;
        if (!side->ring_recv)
            continue;
        int r = uring_cancel_ud(u, uring_ud(u, s->ring_slot, d[i].recv_op, 0));
        if (r == 0)
            return 0;          /* completed: wait for its bytes */
        if (r < 0) {           /* cannot tell: stay on the ring */
            s->ring_leaving = 0;
            return session_ring_update(s);
        }
        side->ring_recv = 0;
    }
    session_ring_detach(s);
    s->ring_leaving = 0;
    session_update_io(s);
    return 0;
}

int session_ring_attach(struct session *s)
{
    struct uring *u = s->worker->uring;
    if (u == NULL || s->state != SESSION_RELAYING || !session_pipe_empty(&s->to_srv) ||
        !session_pipe_empty(&s->to_client))
        return 0;   /* bytes read before the relay (rare): epoll relays them */
    uint32_t slot = uring_slot_new(u, s);
    if (slot == URING_NO_SLOT)
        return 0;
    session_side_want(s, &s->client, 0);
    session_side_want(s, &s->srv, 0);
    s->ring_slot = slot;
    (void)session_ring_update(s);
    return 1;
}

void session_ring_detach(struct session *s)
{
    if (!session_on_ring(s))
        return;
    struct uring *u = s->worker->uring;
    struct session_ring_dir d[2];
    session_ring_dirs(s, d);
    for (int i = 0; i < 2; i++) {
        /* d[i].from's receive and the send of the direction toward it */
        struct session_side *side = d[i].from;
        struct session_pipe *toward = d[1 - i].p;
        int busy = side->ring_recv || toward->ring_sending;
        if (busy && uring_cancel_fd(u, side->fd) != 0 && toward->ring_sending) {
            /* the kernel may still read that buffer: it is not given back
             * (one buffer fewer for the worker's life) */
            log_msg("worker %u: io_uring cancel failed; one relay buffer kept",
                    s->worker->id);
            (void)session_ring_pop(u, toward);
        }
        side->ring_recv = side->ring_more = side->ring_starved = 0;
        toward->ring_sending = 0;
    }
    for (int i = 0; i < 2; i++)
        while (d[i].p->ring_count > 0)
            uring_buf_put(u, session_ring_pop(u, d[i].p));
    uring_slot_free(u, s->ring_slot);
    s->ring_slot = URING_NO_SLOT;
    s->ring_leaving = 0;
}

/* ---- the worker's ring ---------------------------------------------------------------- */

int session_ring_setup(struct worker *w, char *err, size_t errlen)
{
    struct uring *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (uring_init(u, w->loop, session_ring_complete, session_ring_retry, err, errlen) == -1) {
        free(u);
        return -1;
    }
    __atomic_store_n(&w->uring, u, __ATOMIC_RELEASE);   /* show info reads it */
    return 0;
}

void session_ring_teardown(struct worker *w)
{
    if (w->uring == NULL)
        return;
    struct uring *u = w->uring;
    __atomic_store_n(&w->uring, NULL, __ATOMIC_RELEASE);
    uring_free(u);
    free(u);
}
