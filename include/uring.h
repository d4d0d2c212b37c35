/* uring.h — a worker's io_uring (io = io_uring): the ring, the receive
 * buffers the kernel fills (one provided-buffer ring), the slots that name
 * an operation's owner in its completion, and the loop hooks that submit
 * what a loop pass queued in one system call and reap completions without
 * any. Relay semantics are the owner's (session_uring.c); this file knows
 * only rings, buffers and slots. Worker thread only, from uring_init() on:
 * the ring is created by the thread that uses it (IORING_SETUP_SINGLE_ISSUER
 * binds it to that thread). */
#ifndef TCPLB_URING_H
#define TCPLB_URING_H

#include <ev.h>
#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

/* Receive buffers: shared by the worker's connections, so an idle one
 * holds none (memory per idle connection stays what epoll's is); the
 * pages are touched only when the kernel fills them. */
#define URING_BUFS 512            /* a power of two (the kernel's ring) */
#define URING_BUF_SIZE (64 * 1024)
#define URING_BGID 1              /* the provided-buffer group */
#define URING_NO_BUF UINT16_MAX
#define URING_NO_SLOT UINT32_MAX

/* A completion for a live owner: <op> and <bid> as given to uring_ud() (for
 * a receive, <bid> is the buffer the kernel chose when IORING_CQE_F_BUFFER
 * is in <flags>). The owner may queue operations or free its slot. */
typedef void uring_complete_fn(void *owner, unsigned op, unsigned bid, int res,
                               unsigned flags);
/* The owner asked to be called again (uring_wait_buffers, uring_retry_soon)
 * and the time came. */
typedef void uring_retry_fn(void *owner);

struct uring {
    struct io_uring ring;
    int ring_up;                  /* the kernel's ring exists */
    int ready;                    /* all set up: the worker uses it */
    struct ev_loop *loop;         /* not owned */
    ev_io ring_io;                /* completions waiting (the ring fd) */
    ev_prepare prepare;           /* before the loop sleeps: submit, reap */
    ev_check check;               /* after it wakes: reap */
    uring_complete_fn *complete;
    uring_retry_fn *retry;

    struct io_uring_buf_ring *br; /* owned, mmap'd */
    char *bufs;                   /* owned, mmap'd: URING_BUFS * URING_BUF_SIZE */
    uint32_t bufs_out;            /* held by owners (gauge; show info reads) */
    int bufs_returned;            /* one came back since the last prepare */
    int retry_soon;               /* an owner waits for the next pass */
    /* For the owners: a filled buffer's length and a link for their queues
     * of filled buffers. */
    uint32_t len[URING_BUFS];
    uint16_t next[URING_BUFS];

    /* Slots: owner pointer and generation; a completion whose generation
     * is not its slot's any more is stale (its owner left the ring). */
    void **owner;                 /* owned arrays of cap */
    uint32_t *gen;
    uint32_t *free_next;
    uint32_t free_head, cap;

    struct uring_waiter {         /* an owner to call again, if still on */
        uint32_t slot, gen;
    } *waiting;                   /* owned */
    uint32_t nwaiting, waiting_cap;

    uint32_t reaped;              /* reap passes so far: names a batch */
    uint64_t submits;             /* io_uring_enter calls that submitted */
    uint64_t completions;         /* reaped */
};

/* Sets the ring up in the calling (worker) thread and hooks it into <loop>.
 * 0, or -1 with why in <err> (the kernel has no io_uring, it is disabled,
 * a seccomp filter refuses it, or it lacks provided-buffer rings); then
 * nothing is left allocated and the worker relays with epoll. */
int uring_init(struct uring *u, struct ev_loop *loop, uring_complete_fn *complete,
               uring_retry_fn *retry, char *err, size_t errlen);
/* Stops the hooks and frees everything; harmless on one never set up. */
void uring_free(struct uring *u);

/* A submission entry, submitting what is queued first when the queue is
 * full; NULL only if the kernel refuses the submission. */
struct io_uring_sqe *uring_sqe(struct uring *u);
/* The user_data naming <op> of <slot>'s owner, with a buffer id. */
uint64_t uring_ud(const struct uring *u, uint32_t slot, unsigned op, unsigned bid);

/* A slot for <owner>; URING_NO_SLOT when out of memory. */
uint32_t uring_slot_new(struct uring *u, void *owner);
/* Frees <slot>: completions still on their way for it become stale. */
void uring_slot_free(struct uring *u, uint32_t slot);

char *uring_buf(const struct uring *u, unsigned bid);
/* Gives buffer <bid> back to the kernel. */
void uring_buf_put(struct uring *u, unsigned bid);
/* Calls <slot>'s owner's retry once buffers come back. */
void uring_wait_buffers(struct uring *u, uint32_t slot);
/* Calls <slot>'s owner's retry on the next loop pass (no submission entry
 * could be had). */
void uring_retry_soon(struct uring *u, uint32_t slot);


/* Cancels every operation on <fd> and waits until the kernel is done with
 * them (and with their buffers). Their completions arrive later, stale if
 * the slot was freed meanwhile. 0 or -errno. */
int uring_cancel_fd(struct uring *u, int fd);
/* Cancels the one operation named <ud> and waits for the kernel to be done
 * with it: 1 if it was cancelled (its completion says -ECANCELED), 0 if it
 * had completed already (its completion is on its way), or -errno. */
int uring_cancel_ud(struct uring *u, uint64_t ud);

#endif
