/* handoff.c — connections accepted on one worker, started on another (see
 * handoff.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "handoff.h"
#include "listener.h"
#include "session.h"
#include "worker.h"

void handoff_inbox_init(struct handoff_inbox *in)
{
    memset(in, 0, sizeof(*in));
    pthread_mutex_init(&in->lock, NULL);
}

/* Gives back what an accepted connection holds before it has a session:
 * the global and the listener's counts, and the listener's config. */
static void handoff_drop(struct handoff_item *it)
{
    close(it->fd);
    worker_conn_release();
    listener_release((struct listener_conf *)it->listener);
    config_unref(it->config);
}

void handoff_inbox_free(struct handoff_inbox *in)
{
    for (size_t i = 0; i < in->n; i++)
        handoff_drop(&in->items[i]);
    free(in->items);
    in->items = NULL;
    in->n = in->cap = 0;
    pthread_mutex_destroy(&in->lock);
}

struct worker *handoff_target(struct worker *w)
{
    if (w->peers == NULL || w->npeers < 2 || !w->config->global.accept_balance)
        return NULL;
    int64_t mine = __atomic_load_n(&w->load, __ATOMIC_RELAXED);
    struct worker *best = NULL;
    int64_t least = mine - HANDOFF_SLACK;
    for (unsigned i = 0; i < w->npeers; i++) {
        struct worker *p = &w->peers[i];
        if (p == w || __atomic_load_n(&p->stop_requested, __ATOMIC_RELAXED))
            continue;
        int64_t l = __atomic_load_n(&p->load, __ATOMIC_RELAXED);
        if (l < least) {
            least = l;
            best = p;
        }
    }
    return best;
}

int handoff_push(struct worker *to, struct listen_sock *ls, int fd,
                 const struct sockaddr *addr, socklen_t addrlen)
{
    struct handoff_inbox *in = &to->handoff;
    pthread_mutex_lock(&in->lock);
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 16;
        struct handoff_item *grown = realloc(in->items, cap * sizeof(*grown));
        if (grown == NULL) {
            pthread_mutex_unlock(&in->lock);
            return -1;
        }
        in->items = grown;
        in->cap = cap;
    }
    struct handoff_item *it = &in->items[in->n++];
    it->fd = fd;
    it->addrlen = addrlen <= sizeof(it->addr) ? addrlen : sizeof(it->addr);
    memcpy(&it->addr, addr, it->addrlen);
    it->listener = ls->conf;
    it->config = config_ref(ls->worker->config);
    /* counted at once, so that the next accepts see it */
    __atomic_add_fetch(&to->load, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&in->lock);
    __atomic_add_fetch(&ls->worker->handed_out, 1, __ATOMIC_RELAXED);
    ev_async_send(to->loop, &to->handoff_wake);
    return 0;
}

/* <w>'s listening socket for the listener of <it>: the same one when the
 * configs agree, else the one of the same name and bind (a reload came in
 * between), else NULL (the listener is gone). */
static struct listen_sock *handoff_sock(struct worker *w, const struct handoff_item *it)
{
    for (size_t i = 0; i < w->nsocks; i++)
        if (w->socks[i].conf == it->listener)
            return &w->socks[i];
    for (size_t i = 0; i < w->nsocks; i++)
        if (strcmp(w->socks[i].conf->name, it->listener->name) == 0)
            return &w->socks[i];
    return NULL;
}

void handoff_run(struct worker *w)
{
    struct handoff_inbox *in = &w->handoff;
    pthread_mutex_lock(&in->lock);
    struct handoff_item *items = in->items;
    size_t n = in->n;
    in->items = NULL;
    in->n = in->cap = 0;
    pthread_mutex_unlock(&in->lock);

    for (size_t i = 0; i < n; i++) {
        struct handoff_item *it = &items[i];
        __atomic_sub_fetch(&w->load, 1, __ATOMIC_RELAXED);   /* the session counts it */
        struct listen_sock *ls = w->stopping ? NULL : handoff_sock(w, it);
        if (ls == NULL) {
            handoff_drop(it);
            continue;
        }
        /* a listener kept by a reload keeps its count (active_all is
         * shared by name), so the count taken at accept stays valid */
        config_unref(it->config);
        __atomic_add_fetch(&w->handed_in, 1, __ATOMIC_RELAXED);
        session_start(w, ls, it->fd, (const struct sockaddr *)&it->addr, it->addrlen);
    }
    free(items);
}
