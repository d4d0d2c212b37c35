/* pipe_pool.c — a worker's kernel pipes for splice(); see pipe_pool.h.
 * Only the owning worker changes a pool; `open` and `nfree` are stored
 * atomically (plain moves on x86) because `show info` reads them from the
 * main thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipe_pool.h"

void pipe_pool_init(struct pipe_pool *pp, unsigned limit)
{
    pp->free = NULL;
    pp->nfree = pp->cap = 0;
    pp->open = 0;
    pp->limit = limit;
    pp->pipe_size = 0;
}

/* Opens one pipe and makes it PIPE_POOL_PIPE_SIZE large when the kernel
 * allows (pipe-max-size, or an unprivileged user over pipe-user-pages-soft
 * keeps the default): a larger pipe moves more per splice() pair. */
static int pipe_pool_open(struct pipe_pool *pp, struct pipe_fds *out)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1)
        return -1;
    int size = fcntl(fds[1], F_SETPIPE_SZ, PIPE_POOL_PIPE_SIZE);
    if (size == -1)
        size = fcntl(fds[1], F_GETPIPE_SZ);
    if (size <= 0) {
        close(fds[0]);
        close(fds[1]);
        errno = EINVAL;
        return -1;
    }
    if (pp->pipe_size == 0 || (size_t)size < pp->pipe_size)
        pp->pipe_size = (size_t)size;
    out->rd = fds[0];
    out->wr = fds[1];
    __atomic_store_n(&pp->open, pp->open + 1, __ATOMIC_RELAXED);
    return 0;
}

int pipe_pool_get(struct pipe_pool *pp, struct pipe_fds *out)
{
    if (pp->nfree > 0) {
        *out = pp->free[pp->nfree - 1];
        __atomic_store_n(&pp->nfree, pp->nfree - 1, __ATOMIC_RELAXED);
        return 0;
    }
    if (pp->open >= pp->limit)
        return -1;
    return pipe_pool_open(pp, out);
}

void pipe_pool_put(struct pipe_pool *pp, struct pipe_fds *p)
{
    if (p->rd == -1)
        return;
    if (pp->nfree == pp->cap) {
        unsigned cap = pp->cap ? pp->cap * 2 : 8;
        struct pipe_fds *f = realloc(pp->free, cap * sizeof(*f));
        if (f == NULL) {
            pipe_pool_discard(pp, p);
            return;
        }
        pp->free = f;
        pp->cap = cap;
    }
    pp->free[pp->nfree] = *p;
    __atomic_store_n(&pp->nfree, pp->nfree + 1, __ATOMIC_RELAXED);
    p->rd = p->wr = -1;
}

void pipe_pool_discard(struct pipe_pool *pp, struct pipe_fds *p)
{
    if (p->rd == -1)
        return;
    close(p->rd);
    close(p->wr);
    p->rd = p->wr = -1;
    __atomic_store_n(&pp->open, pp->open - 1, __ATOMIC_RELAXED);
}

unsigned pipe_pool_used(const struct pipe_pool *pp)
{
    unsigned open = __atomic_load_n(&pp->open, __ATOMIC_RELAXED);
    unsigned idle = __atomic_load_n(&pp->nfree, __ATOMIC_RELAXED);
    return open > idle ? open - idle : 0;
}

unsigned pipe_pool_idle(const struct pipe_pool *pp)
{
    return __atomic_load_n(&pp->nfree, __ATOMIC_RELAXED);
}

void pipe_pool_free(struct pipe_pool *pp)
{
    while (pp->nfree > 0) {
        __atomic_store_n(&pp->nfree, pp->nfree - 1, __ATOMIC_RELAXED);
        pipe_pool_discard(pp, &pp->free[pp->nfree]);
    }
    free(pp->free);
    pp->free = NULL;
    pp->cap = 0;
}
