/* load.c — the slots and their state machine: pick a client, bind to its
 * address, connect without blocking, send the request, read until resp.c
 * says the answer is whole, tally it, then reuse the connection or close
 * it. One teardown path per outcome (load_slot_answered, load_slot_fail),
 * both ending in load_slot_next, which decides whether the run goes on. */

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "load.h"
#include "resp.h"
#include "rng.h"
#include "skew.h"
#include "tally.h"

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* An answer larger than this is counted as bad_response: skewload measures
 * distribution, not bulk transfer, and this bounds its memory per slot. */
#define LOAD_IN_MAX (1u << 20)
#define LOAD_IN_FIRST 4096
#define LOAD_NOFILE_WANT 65536

enum load_slot_state {
    LOAD_IDLE,          /* no request in flight (fd may be a kept connection) */
    LOAD_CONNECTING,
    LOAD_SENDING,
    LOAD_READING,
};

struct load;

/* One unit of concurrency. Owned by load.slots; its fd and buffer are its
 * own and released by load_slot_close / load_free. */
struct load_slot {
    struct load *load;
    int fd;                     /* -1 when no connection */
    ev_io io;
    ev_timer timer;             /* the request's --timeout */
    enum load_slot_state state;
    size_t client;              /* whose address fd is bound to */
    double t_start;             /* when the request began (connect included) */
    size_t out_off;             /* bytes of load.req sent */
    char *in;                   /* owned: the answer so far */
    size_t in_len, in_cap;
    int eof;                    /* the peer has closed */
    unsigned answered;          /* answers on this connection */
};

/* The run. Lives on load_run's stack. */
struct load {
    struct ev_loop *loop;
    const struct load_opts *o;
    struct tally *tally;        /* borrowed from the caller */
    struct skew *skew;          /* owned */
    struct rng rng;
    struct load_slot *slots;    /* owned, o->concurrency of them */
    char *req;                  /* owned: the request every slot sends */
    size_t req_len;
    uint64_t started;
    unsigned busy;              /* slots with a request in flight */
    double t0, deadline, t_end;
    int stopping;               /* no new requests */
    int interrupted;
    ev_timer stop_timer;
    ev_signal sig_int;
    ev_signal sig_term;
};

static void load_slot_next(struct load_slot *s);

const char *load_mode_str(enum load_mode mode)
{
    return mode == LOAD_HTTP ? "http" : "tcp";
}

/* Monotonic seconds. Not ev_now(): that is the time the loop woke up, and
 * latencies below a millisecond would drown in its staleness. */
static double load_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* So that -c in the thousands fits under the default soft limit of 1024
 * descriptors; failure only means fewer connections. */
static void load_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = LOAD_NOFILE_WANT;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        want = rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void load_slot_watch(struct load_slot *s, int events)
{
    ev_io_stop(s->load->loop, &s->io);
    ev_io_set(&s->io, s->fd, events);
    ev_io_start(s->load->loop, &s->io);
}

/* Closes the slot's connection, if any; the slot may start a new one. */
static void load_slot_close(struct load_slot *s)
{
    ev_io_stop(s->load->loop, &s->io);
    if (s->fd != -1) {
        close(s->fd);
        s->fd = -1;
    }
    s->in_len = 0;
    s->eof = 0;
}

/* The request is over, one way or the other. */
static void load_slot_finish(struct load_slot *s)
{
    ev_timer_stop(s->load->loop, &s->timer);
    s->state = LOAD_IDLE;
    s->load->busy--;
    load_slot_next(s);
}

static enum tally_err load_classify(int err, int connecting)
{
    switch (err) {
    case ECONNREFUSED:
        return TALLY_CONNECT_REFUSED;
    case ETIMEDOUT:
        return TALLY_TIMEOUT;
    case ECONNRESET:
    case EPIPE:
        return connecting ? TALLY_CONNECT_ERROR : TALLY_RESET;
    default:
        return connecting ? TALLY_CONNECT_ERROR : TALLY_IO_ERROR;
    }
}

static void load_slot_fail(struct load_slot *s, enum tally_err kind)
{
    tally_failure(s->load->tally, s->client, kind);
    load_slot_close(s);
    load_slot_finish(s);
}

static void load_slot_answered(struct load_slot *s, const struct resp *r)
{
    struct load *l = s->load;
    double now = load_clock();

    /* Out of memory loses a latency sample, not the count: go on. */
    tally_response(l->tally, s->client, r->name, r->status, (now - s->t_start) * 1000.0,
                   now - l->t0);
    /* Bytes past the answer were never asked for: the connection is out of
     * step, so it is not reused. */
    s->answered++;
    int more = l->o->per_conn == 0 || s->answered < l->o->per_conn;
    if (l->o->keepalive && more && r->keep_alive && !s->eof && r->len == s->in_len) {
        ev_io_stop(l->loop, &s->io);
        s->in_len = 0;
    } else {
        load_slot_close(s);
    }
    load_slot_finish(s);
}

/* Opens a connection from a freshly picked client; on success the slot
 * waits for writability. Returns 0, or -1 with the failure tallied. */
static int load_slot_connect(struct load_slot *s)
{
    struct load *l = s->load;
    const struct load_opts *o = l->o;
    int one = 1;

    s->client = skew_pick(l->skew, rng_unit(&l->rng));
    s->answered = 0;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd == -1) {
        tally_failure(l->tally, s->client, TALLY_CONNECT_ERROR);
        return -1;
    }
    /* Choose the source port at connect(), not bind(): the kernel may then
     * reuse a port towards other destinations, and a busy client address
     * does not run out of ports as soon. */
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr = addr_client(o->client_base, s->client);
    src.sin_port = 0;
    if (bind(s->fd, (struct sockaddr *)&src, sizeof src) == -1)
        goto fail;
    if (connect(s->fd, (const struct sockaddr *)&o->target, sizeof o->target) == -1
        && errno != EINPROGRESS)
        goto fail;
    s->state = LOAD_CONNECTING;
    load_slot_watch(s, EV_WRITE);
    return 0;
fail:
    tally_failure(l->tally, s->client, load_classify(errno, 1));
    load_slot_close(s);
    return -1;
}

/* Starts one request on s. Returns 0 when it is under way, -1 when it
 * failed at once (already tallied). */
static int load_slot_start(struct load_slot *s)
{
    struct load *l = s->load;

    s->t_start = load_clock();
    s->out_off = 0;
    s->in_len = 0;
    if (s->fd == -1) {
        if (load_slot_connect(s) == -1)
            return -1;
    } else {
        s->state = LOAD_SENDING;
        load_slot_watch(s, EV_WRITE);
    }
    ev_timer_set(&s->timer, l->o->timeout_s, 0.0);
    ev_timer_start(l->loop, &s->timer);
    return 0;
}

/* True when no new request may start: -n reached, -d passed or stopped. */
static int load_exhausted(struct load *l)
{
    if (!l->stopping && (l->started >= l->o->max_requests || load_clock() >= l->deadline))
        l->stopping = 1;
    return l->stopping;
}

/* Gives s its next request, or retires it and ends the run after the last
 * busy slot. A loop, not recursion: against a refusing target, thousands of
 * connects may fail at once, and the clock check in load_exhausted keeps
 * -d honoured even then. */
static void load_slot_next(struct load_slot *s)
{
    struct load *l = s->load;

    for (;;) {
        if (load_exhausted(l)) {
            load_slot_close(s);
            if (l->busy == 0) {
                l->t_end = load_clock();
                ev_break(l->loop, EVBREAK_ALL);
            }
            return;
        }
        l->started++;
        l->busy++;
        if (load_slot_start(s) == 0)
            return;
        l->busy--;
    }
}

/* Grows the input buffer so that a read has room. Returns -1 when the
 * answer has reached LOAD_IN_MAX, or memory ran out. */
static int load_slot_room(struct load_slot *s)
{
    if (s->in_len < s->in_cap)
        return 0;
    if (s->in_cap >= LOAD_IN_MAX)
        return -1;
    size_t cap = s->in_cap ? s->in_cap * 2 : LOAD_IN_FIRST;
    char *p = realloc(s->in, cap);
    if (p == NULL)
        return -1;
    s->in = p;
    s->in_cap = cap;
    return 0;
}

static void load_slot_read(struct load_slot *s)
{
    struct resp r;

    if (load_slot_room(s) == -1) {
        load_slot_fail(s, TALLY_BAD_RESPONSE);
        return;
    }
    ssize_t n = recv(s->fd, s->in + s->in_len, s->in_cap - s->in_len, 0);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        load_slot_fail(s, load_classify(errno, 0));
        return;
    }
    if (n == 0)
        s->eof = 1;
    s->in_len += (size_t)n;
    if (s->eof && s->in_len == 0) {
        load_slot_fail(s, TALLY_CLOSED);
        return;
    }
    int rc = s->load->o->mode == LOAD_HTTP ? resp_parse_http(s->in, s->in_len, s->eof, &r)
                                           : resp_parse_line(s->in, s->in_len, s->eof, &r);
    if (rc == 1)
        load_slot_answered(s, &r);
    else if (rc == -1 || s->eof)
        load_slot_fail(s, TALLY_BAD_RESPONSE);
}

static void load_slot_send(struct load_slot *s)
{
    struct load *l = s->load;

    while (s->out_off < l->req_len) {
        ssize_t n = send(s->fd, l->req + s->out_off, l->req_len - s->out_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            load_slot_fail(s, load_classify(errno, 0));
            return;
        }
        s->out_off += (size_t)n;
    }
    s->state = LOAD_READING;
    load_slot_watch(s, EV_READ);
}

static void load_slot_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct load_slot *s = container_of(w, struct load_slot, io);
    int err = 0;
    socklen_t len = sizeof err;

    (void)loop;
    (void)revents;
    switch (s->state) {
    case LOAD_CONNECTING:
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            load_slot_fail(s, load_classify(err, 1));
            return;
        }
        s->state = LOAD_SENDING;
        load_slot_send(s);
        return;
    case LOAD_SENDING:
        load_slot_send(s);
        return;
    case LOAD_READING:
        load_slot_read(s);
        return;
    case LOAD_IDLE:
        /* A kept connection is not watched while idle; nothing to do. */
        return;
    }
}

static void load_slot_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    load_slot_fail(container_of(w, struct load_slot, timer), TALLY_TIMEOUT);
}

static void load_stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct load *l = container_of(w, struct load, stop_timer);

    (void)revents;
    l->stopping = 1;
    if (l->busy == 0) {
        l->t_end = load_clock();
        ev_break(loop, EVBREAK_ALL);
    }
}

/* Ctrl-C: report what was measured so far instead of losing it. */
static void load_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct load *l = w->signum == SIGINT ? container_of(w, struct load, sig_int)
                                         : container_of(w, struct load, sig_term);

    (void)revents;
    l->stopping = 1;
    l->interrupted = 1;
    l->t_end = load_clock();
    ev_break(loop, EVBREAK_ALL);
}

static int load_build_request(struct load *l)
{
    const struct load_opts *o = l->o;
    int n;

    if (o->mode == LOAD_HTTP)
        n = snprintf(NULL, 0, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: skewload\r\n"
                     "Connection: %s\r\n\r\n", o->path, o->host,
                     o->keepalive ? "keep-alive" : "close");
    else
        n = snprintf(NULL, 0, "%s\n", o->line);
    l->req = malloc((size_t)n + 1);
    if (l->req == NULL)
        return -1;
    if (o->mode == LOAD_HTTP)
        snprintf(l->req, (size_t)n + 1, "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: skewload\r\nConnection: %s\r\n\r\n", o->path, o->host,
                 o->keepalive ? "keep-alive" : "close");
    else
        snprintf(l->req, (size_t)n + 1, "%s\n", o->line);
    l->req_len = (size_t)n;
    return 0;
}

/* Stops every watcher, then closes and frees; safe on a half-built load. */
static void load_free(struct load *l)
{
    if (l->slots != NULL) {
        for (unsigned i = 0; i < l->o->concurrency; i++) {
            ev_timer_stop(l->loop, &l->slots[i].timer);
            load_slot_close(&l->slots[i]);
            free(l->slots[i].in);
        }
    }
    ev_timer_stop(l->loop, &l->stop_timer);
    ev_signal_stop(l->loop, &l->sig_int);
    ev_signal_stop(l->loop, &l->sig_term);
    free(l->slots);
    free(l->req);
    skew_free(l->skew);
}

int load_run(const struct load_opts *o, struct tally *t, struct load_result *res,
             char *err, size_t errlen)
{
    struct load l;

    memset(&l, 0, sizeof l);
    memset(res, 0, sizeof *res);
    l.o = o;
    l.tally = t;
    l.loop = ev_default_loop(EVFLAG_AUTO);
    if (l.loop == NULL) {
        snprintf(err, errlen, "cannot start libev");
        return -1;
    }
    ev_init(&l.stop_timer, load_stop_cb);
    ev_signal_init(&l.sig_int, load_signal_cb, SIGINT);
    ev_signal_init(&l.sig_term, load_signal_cb, SIGTERM);
    l.slots = calloc(o->concurrency, sizeof *l.slots);
    /* Slots are made valid at once, so load_free may close them. */
    for (unsigned i = 0; l.slots != NULL && i < o->concurrency; i++) {
        struct load_slot *s = &l.slots[i];
        s->load = &l;
        s->fd = -1;
        ev_init(&s->io, load_slot_io_cb);
        ev_init(&s->timer, load_slot_timer_cb);
    }
    l.skew = skew_new(&o->skew, o->nclients);
    if (l.skew == NULL || l.slots == NULL || load_build_request(&l) == -1) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rng_seed(&l.rng, o->seed);
    load_raise_nofile();
    ev_signal_start(l.loop, &l.sig_int);
    ev_signal_start(l.loop, &l.sig_term);

    ev_now_update(l.loop);
    l.t0 = load_clock();
    l.deadline = l.t0 + o->duration_s;
    ev_timer_set(&l.stop_timer, o->duration_s, 0.0);
    ev_timer_start(l.loop, &l.stop_timer);
    for (unsigned i = 0; i < o->concurrency; i++)
        load_slot_next(&l.slots[i]);
    /* Every first request may have failed at once and ended the run. */
    if (l.busy > 0)
        ev_run(l.loop, 0);
    if (l.t_end == 0)
        l.t_end = load_clock();

    res->elapsed_s = l.t_end - l.t0;
    res->interrupted = l.interrupted;
    load_free(&l);
    return 0;
fail:
    load_free(&l);
    return -1;
}
