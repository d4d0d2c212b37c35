/* listener.c — listening sockets: opened per worker with SO_REUSEPORT so
 * the kernel spreads new connections over the workers, and the accept
 * callback that hands each connection to a new session on that worker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "handoff.h"
#include "listener.h"
#include "log.h"
#include "net.h"
#include "session.h"
#include "worker.h"

#define LISTENER_BACKLOG 4096
/* Accepts per wake-up: enough to drain a burst, few enough to let the
 * worker's established sessions run in between. */
#define LISTENER_ACCEPT_BATCH 64

const char *listener_mode_str(enum listener_mode m)
{
    return m == LISTENER_HTTP ? "http" : "tcp";
}

static void listener_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct listen_sock *ls = container_of(t, struct listen_sock, resume);
    if (!ls->worker->stopping && !ls->worker->accept_paused)
        ev_io_start(loop, &ls->io);
}

/* Counts one more connection on the listener, unless it is at its own
 * maxconn: then this socket alone pauses, the others keep accepting. */
static int listener_admit(struct listen_sock *ls)
{
    struct listener_conf *l = ls->conf;
    if (l->maxconn == 0)
        return 1;
    int64_t n = __atomic_add_fetch(l->active_all, 1, __ATOMIC_RELAXED);
    if (n <= (int64_t)l->maxconn)
        return 1;
    __atomic_sub_fetch(l->active_all, 1, __ATOMIC_RELAXED);
    ev_io_stop(ls->worker->loop, &ls->io);
    ev_timer_set(&ls->resume, 0.02, 0);
    ev_timer_start(ls->worker->loop, &ls->resume);
    return 0;
}

void listener_release(struct listener_conf *l)
{
    if (l->maxconn != 0)
        __atomic_sub_fetch(l->active_all, 1, __ATOMIC_RELAXED);
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct listen_sock *ls = container_of(io, struct listen_sock, io);
    struct worker *w = ls->worker;

    for (int i = 0; i < LISTENER_ACCEPT_BATCH; i++) {
        if (!worker_conn_admit(w->config->global.maxconn)) {
            /* Over maxconn: leave new connections in the backlog. */
            worker_pause_accept(w, 0.02);
            return;
        }
        if (!listener_admit(ls)) {
            worker_conn_release();
            return;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            int err = errno;
            worker_conn_release();
            listener_release(ls->conf);
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (net_error_is_starved(err)) {
                log_msg("worker %u: accept on listener %s: %s; pausing accepts "
                        "for 100ms", w->id, ls->conf->name, strerror(err));
                worker_pause_accept(w, 0.1);
            }
            return;
        }
        struct worker *to = handoff_target(w);
        if (to != NULL && handoff_push(to, ls, fd, (struct sockaddr *)&ss, len) == 0)
            continue;
        session_start(w, ls, fd, (struct sockaddr *)&ss, len);
    }
}

static int listener_same_addr(const struct net_addr *a, const struct net_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The fd of <old>'s socket bound to <addr>, or -1. */
static int listener_find_fd(const struct listen_sock *old, size_t nold,
                            const struct net_addr *addr)
{
    for (size_t i = 0; i < nold; i++) {
        const struct listener_conf *l = old[i].conf;
        if (old[i].fd != -1 && listener_same_addr(&l->binds[old[i].bind], addr))
            return old[i].fd;
    }
    return -1;
}

struct listen_sock *listener_open_all(struct config *c, const struct listen_sock *old,
                                      size_t nold, size_t *n, char *err, size_t errlen)
{
    size_t total = 0;
    for (size_t i = 0; i < c->nlisteners; i++)
        total += c->listeners[i].nbinds;
    struct listen_sock *socks = calloc(total ? total : 1, sizeof(*socks));
    if (socks == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        for (size_t b = 0; b < l->nbinds; b++) {
            char e[256];
            int fd = listener_find_fd(old, nold, &l->binds[b]);
            int taken = fd != -1;
            /* two binds of the new config on one address: only one takes it */
            for (size_t j = 0; taken && j < k; j++)
                if (socks[j].fd == fd)
                    taken = 0, fd = -1;
            if (fd == -1)
                fd = net_listen(&l->binds[b], NET_LISTEN_REUSEPORT |
                                (l->bind_freebind[b] ? NET_LISTEN_FREEBIND : 0),
                                LISTENER_BACKLOG, e, sizeof(e));
            if (fd == -1) {
                snprintf(err, errlen, "listener %s: %s", l->name, e);
                /* close only what this call opened, never a taken-over fd */
                for (size_t j = 0; j < k; j++)
                    if (!socks[j].taken_over)
                        close(socks[j].fd);
                free(socks);
                return NULL;
            }
            socks[k].fd = fd;
            socks[k].taken_over = taken;
            socks[k].bind = b;
            socks[k].conf = l;
            ev_io_init(&socks[k].io, listener_accept_cb, fd, EV_READ);
            ev_init(&socks[k].resume, listener_resume_cb);
            k++;
        }
    }
    *n = k;
    return socks;
}

void listener_close_all(struct listen_sock *socks, size_t n)
{
    if (socks == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (socks[i].fd != -1)
            close(socks[i].fd);
    free(socks);
}

void listener_retire(struct listen_sock *old, size_t nold,
                     const struct listen_sock *now, size_t nnow)
{
    for (size_t i = 0; i < nold; i++) {
        int kept = 0;
        for (size_t j = 0; j < nnow && !kept; j++)
            kept = now[j].fd == old[i].fd;
        if (!kept && old[i].fd != -1)
            close(old[i].fd);
    }
    free(old);
}

void listener_start(struct worker *w)
{
    for (size_t i = 0; i < w->nsocks; i++)
        ev_io_start(w->loop, &w->socks[i].io);
}

void listener_stop(struct worker *w)
{
    for (size_t i = 0; i < w->nsocks; i++) {
        ev_io_stop(w->loop, &w->socks[i].io);
        ev_timer_stop(w->loop, &w->socks[i].resume);
    }
}
