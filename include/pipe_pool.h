/* pipe_pool.h — kernel pipes for splice(): a bulk transfer moves socket ->
 * pipe -> socket inside the kernel instead of being copied through a user
 * buffer. Each worker owns one pool (no locking). A session holds a pipe only
 * while the pipe holds bytes; empty pipes go back to the pool and stay open
 * for the next transfer, so the pipe() system call is paid once per pipe, not
 * once per transfer. A pool never has more than `limit` pipes open, which
 * bounds the descriptors splicing can take (two per pipe). */
#ifndef TCPLB_PIPE_POOL_H
#define TCPLB_PIPE_POOL_H

#include <stddef.h>

/* What one pipe holds (F_SETPIPE_SZ; the kernel default is 64 KiB). */
#define PIPE_POOL_PIPE_SIZE (256 * 1024)

struct pipe_fds {
    int rd, wr;                 /* both -1 when no pipe is held */
};

struct pipe_pool {
    struct pipe_fds *free;      /* owned array of empty, open pipes */
    unsigned nfree, cap;        /* nfree: written atomically, see .c */
    unsigned open;              /* pipes open: free ones + those held */
    unsigned limit;
    size_t pipe_size;           /* what each pipe holds, in bytes */
};

/* An empty pool allowing <limit> pipes (0: splicing is off). Never fails:
 * pipes are opened on demand. */
void pipe_pool_init(struct pipe_pool *pp, unsigned limit);

/* Puts an empty pipe in <out>: a free one, or a new one. Returns 0, or -1
 * when the pool is at its limit or the process is out of descriptors or
 * memory; the caller then moves its bytes through a buffer instead. */
int pipe_pool_get(struct pipe_pool *pp, struct pipe_fds *out);

/* Takes back a pipe that holds no bytes and sets <p> to {-1, -1}. A pipe
 * that cannot be kept (no memory for the free list) is closed. */
void pipe_pool_put(struct pipe_pool *pp, struct pipe_fds *p);

/* Closes a pipe that may still hold bytes (its session ended before they
 * were sent; they are dropped) and sets <p> to {-1, -1}. */
void pipe_pool_discard(struct pipe_pool *pp, struct pipe_fds *p);

/* Pipes held by sessions now and free pipes kept open, as another thread
 * sees them (relaxed reads: a snapshot, not a consistent pair). */
unsigned pipe_pool_used(const struct pipe_pool *pp);
unsigned pipe_pool_idle(const struct pipe_pool *pp);

/* Closes the free pipes. Pipes still held must have been discarded or put
 * back first. The pool can be used again afterwards. */
void pipe_pool_free(struct pipe_pool *pp);

#endif
