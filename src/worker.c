/* worker.c — a worker thread: its loop, its sessions, its relay buffers, and
 * the graceful stop (stop accepting, let sessions finish for up to
 * shutdown_timeout, then end the rest). Accepting itself is listener.c's. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http_obs.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "uring.h"
#include "worker.h"

/* Open client connections over all workers: one atomic add per connection,
 * the price of a global maxconn. */
static int64_t worker_conns_all;

int worker_conn_admit(unsigned long maxconn)
{
    int64_t n = __atomic_add_fetch(&worker_conns_all, 1, __ATOMIC_RELAXED);
    if (n > (int64_t)maxconn) {
        __atomic_sub_fetch(&worker_conns_all, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
}

void worker_conn_release(void)
{
    __atomic_sub_fetch(&worker_conns_all, 1, __ATOMIC_RELAXED);
}

int64_t worker_conn_count(void)
{
    return __atomic_load_n(&worker_conns_all, __ATOMIC_RELAXED);
}

uint64_t worker_random(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

char *worker_buf_get(struct worker *w)
{
    struct worker_buf *b = w->free_bufs;
    if (b != NULL) {
        w->free_bufs = b->next;
        w->nfree_bufs--;
        return (char *)b;
    }
    return malloc(WORKER_BUF_SIZE);
}

void worker_buf_put(struct worker *w, char *buf)
{
    if (w->nfree_bufs >= WORKER_FREE_BUFS_MAX) {
        free(buf);
        return;
    }
    struct worker_buf *b = (struct worker_buf *)(void *)buf;
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->nfree_bufs++;
}

void worker_splice_sum(struct worker *ws, unsigned n, struct worker_splice_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; ws != NULL && i < n; i++) {
        out->pipes_limit += ws[i].pipes.limit;
        out->pipes_used += pipe_pool_used(&ws[i].pipes);
        out->pipes_idle += pipe_pool_idle(&ws[i].pipes);
        out->bytes += __atomic_load_n(&ws[i].spliced_bytes, __ATOMIC_RELAXED);
    }
}

void worker_io_sum(struct worker *ws, unsigned n, struct worker_io_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; ws != NULL && i < n; i++) {
        /* set once by the worker's thread as it starts */
        struct uring *u = __atomic_load_n(&ws[i].uring, __ATOMIC_ACQUIRE);
        if (u != NULL) {
            out->uring_workers++;
            out->submits += __atomic_load_n(&u->submits, __ATOMIC_RELAXED);
            out->completions += __atomic_load_n(&u->completions, __ATOMIC_RELAXED);
            out->buffers += __atomic_load_n(&u->bufs_out, __ATOMIC_RELAXED);
        } else if (out->error == NULL && __atomic_load_n(&ws[i].io_error[0], __ATOMIC_ACQUIRE)) {
            out->error = ws[i].io_error;
        }
    }
}

void worker_session_add(struct worker *w, struct worker_member *m)
{
    LIST_INSERT_HEAD(&w->sessions, m, link);
    w->nsessions++;
    __atomic_add_fetch(&w->load, 1, __ATOMIC_RELAXED);
}

void worker_session_remove(struct worker *w, struct worker_member *m)
{
    LIST_REMOVE(m, link);
    w->nsessions--;
    __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);
    if (w->stopping && w->nsessions == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

static void worker_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = container_of(t, struct worker, resume_timer);
    w->accept_paused = 0;
    if (!w->stopping)
        listener_start(w);
}

void worker_pause_accept(struct worker *w, double seconds)
{
    if (w->accept_paused)
        return;
    w->accept_paused = 1;
    listener_stop(w);
    ev_timer_set(&w->resume_timer, seconds, 0);
    ev_timer_start(w->loop, &w->resume_timer);
}

static void worker_shutdown_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct worker *w = container_of(t, struct worker, shutdown_timer);
    (void)w;
    ev_break(loop, EVBREAK_ALL);
}

static void worker_handoff_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    handoff_run(container_of(a, struct worker, handoff_wake));
}

static void worker_queue_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    session_queue_run(container_of(a, struct worker, queue_wake));
}

void worker_wake_queue(struct worker *w)
{
    ev_async_send(w->loop, &w->queue_wake);
}

void worker_reload(struct worker *w, struct config *c, struct listen_sock *socks,
                   size_t nsocks)
{
    pthread_mutex_lock(&w->inbox_lock);
    w->next_config = c;
    w->next_socks = socks;
    w->next_nsocks = nsocks;
    pthread_mutex_unlock(&w->inbox_lock);
    ev_async_send(w->loop, &w->wakeup);
}

unsigned worker_reload_applied(struct worker *w)
{
    return __atomic_load_n(&w->applied, __ATOMIC_ACQUIRE);
}

/* Switches to the config waiting in the inbox, if any. */
static void worker_apply_reload(struct worker *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    struct config *c = w->next_config;
    struct listen_sock *socks = w->next_socks;
    size_t nsocks = w->next_nsocks;
    w->next_config = NULL;
    w->next_socks = NULL;
    w->next_nsocks = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    if (c == NULL)
        return;

    listener_stop(w);
    listener_retire(w->socks, w->nsocks, socks, nsocks);
    w->socks = socks;
    w->nsocks = nsocks;
    for (size_t i = 0; i < nsocks; i++)
        socks[i].worker = w;
    struct config *old = w->config;
    w->config = c;
    /* open connections move onto the new config where they can; one may
     * close while moving (placed anew and refused), so the next is taken
     * first */
    struct worker_member *m = LIST_FIRST(&w->sessions), *next;
    for (; m != NULL; m = next) {
        next = LIST_NEXT(m, link);
        session_reload(session_of(m), old);
    }
    config_unref(old);
    if (w->stopping) {
        listener_close_all(w->socks, w->nsocks);
        w->socks = NULL;
        w->nsocks = 0;
    } else if (!w->accept_paused) {
        listener_start(w);
    }
    __atomic_add_fetch(&w->applied, 1, __ATOMIC_RELEASE);
}

static void worker_wakeup_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct worker *w = container_of(a, struct worker, wakeup);
    __atomic_store_n(&w->pings_answered, __atomic_load_n(&w->pings_sent, __ATOMIC_ACQUIRE),
                     __ATOMIC_RELEASE);
    worker_apply_reload(w);
    if (!__atomic_load_n(&w->stop_requested, __ATOMIC_ACQUIRE) || w->stopping)
        return;
    w->stopping = 1;
    ev_timer_stop(loop, &w->resume_timer);
    listener_stop(w);
    listener_close_all(w->socks, w->nsocks);
    w->socks = NULL;
    w->nsocks = 0;
    if (w->nsessions == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_timer_set(&w->shutdown_timer, w->config->global.shutdown_timeout, 0);
    ev_timer_start(loop, &w->shutdown_timer);
}

void worker_ping(struct worker *w)
{
    __atomic_add_fetch(&w->pings_sent, 1, __ATOMIC_ACQ_REL);
    ev_async_send(w->loop, &w->wakeup);
}

int worker_ping_answered(struct worker *w)
{
    return __atomic_load_n(&w->pings_answered, __ATOMIC_ACQUIRE) ==
           __atomic_load_n(&w->pings_sent, __ATOMIC_ACQUIRE);
}

int worker_init(struct worker *w, unsigned id, struct config *config,
                struct listen_sock *socks, size_t nsocks)
{
    memset(w, 0, sizeof(*w));
    LIST_INIT(&w->sessions);
    w->id = id;
    w->rng = ((uint64_t)ev_time() * 1000003u) ^ ((uint64_t)(id + 1) << 32) ^
             0x9e3779b97f4a7c15ULL;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        return -1;
    w->config = config_ref(config);
    /* splice_pipes is shared out over the workers; it takes a restart, so
     * the descriptors it may take were counted in the open-files limit. */
    unsigned nw = config->global.workers ? config->global.workers : 1;
    pipe_pool_init(&w->pipes, (config->global.splice_pipes + nw - 1) / nw);
    pthread_mutex_init(&w->inbox_lock, NULL);
    pthread_cond_init(&w->io_ready_cond, NULL);
    w->socks = socks;
    w->nsocks = nsocks;
    for (size_t i = 0; i < nsocks; i++)
        socks[i].worker = w;
    ev_async_init(&w->wakeup, worker_wakeup_cb);
    ev_async_start(w->loop, &w->wakeup);
    ev_async_init(&w->queue_wake, worker_queue_cb);
    ev_async_start(w->loop, &w->queue_wake);
    handoff_inbox_init(&w->handoff);
    ev_async_init(&w->handoff_wake, worker_handoff_cb);
    ev_async_start(w->loop, &w->handoff_wake);
    ev_init(&w->resume_timer, worker_resume_cb);
    ev_init(&w->shutdown_timer, worker_shutdown_cb);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* the ring is made by the thread that submits to it; io is a restart
     * key, so this worker's choice holds for its life */
    if (w->config->global.io == CONFIG_IO_URING &&
        session_ring_setup(w, w->io_error, sizeof(w->io_error)) == -1)
        log_msg("worker %u: io = io_uring unavailable (%s): relaying with epoll", w->id,
                w->io_error);
    pthread_mutex_lock(&w->inbox_lock);
    w->io_ready = 1;
    pthread_cond_signal(&w->io_ready_cond);
    pthread_mutex_unlock(&w->inbox_lock);
    listener_start(w);
    ev_run(w->loop, 0);
    /* Out of the loop: a shutdown. End what is left, each logged as such. */
    while (!LIST_EMPTY(&w->sessions))
        session_abort(session_of(LIST_FIRST(&w->sessions)), TERM_SHUTDOWN);
    http_obs_drop_spares();
    if (w->on_exit)
        w->on_exit(w);
    return NULL;
}

int worker_start(struct worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    pthread_mutex_lock(&w->inbox_lock);
    while (!w->io_ready)
        pthread_cond_wait(&w->io_ready_cond, &w->inbox_lock);
    pthread_mutex_unlock(&w->inbox_lock);
    return 0;
}

void worker_request_stop(struct worker *w)
{
    __atomic_store_n(&w->stop_requested, 1, __ATOMIC_RELEASE);
    ev_async_send(w->loop, &w->wakeup);
}

void worker_join(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = 0;
}

void worker_free(struct worker *w)
{
    if (w->next_config != NULL) {        /* a reload it never took */
        listener_retire(w->next_socks, w->next_nsocks, w->socks, w->nsocks);
        config_unref(w->next_config);
        w->next_config = NULL;
    }
    listener_close_all(w->socks, w->nsocks);
    w->socks = NULL;
    if (w->loop != NULL) {
        pthread_mutex_destroy(&w->inbox_lock);
        pthread_cond_destroy(&w->io_ready_cond);
        handoff_inbox_free(&w->handoff);
    }
    while (w->free_bufs != NULL) {
        struct worker_buf *b = w->free_bufs;
        w->free_bufs = b->next;
        free(b);
    }
    pipe_pool_free(&w->pipes);
    /* here, after the thread ended, so that `show info` never reads a
     * freed ring */
    session_ring_teardown(w);
    if (w->loop != NULL)
        ev_loop_destroy(w->loop);
    w->loop = NULL;
    config_unref(w->config);
    w->config = NULL;
}
