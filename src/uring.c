/* uring.c — a worker's io_uring: set-up with its fallbacks, the
 * provided-buffer ring, owner slots with generations, and the libev hooks.
 *
 * libev keeps the loop: the ring's fd is one more descriptor it watches.
 * Operations queued during a loop pass go to the kernel in one
 * io_uring_enter() from the prepare hook, just before the loop would sleep;
 * completions posted by that call (a send that fit in the socket buffer
 * completes at once) are reaped right there, and the ones the kernel posts
 * later (data arriving) wake the loop through the ring's fd and are reaped
 * by the check hook, without a system call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uring.h"
#include "util.h"

/* user_data: op (4 bits) | bid (16) | slot (20) | generation (24). The
 * all-ones value, slot 0xfffff, is never a slot's: kept for operations
 * whose completion needs no answer. */
#define URING_OP_BITS 4
#define URING_BID_SHIFT 4
#define URING_SLOT_SHIFT 20
#define URING_GEN_SHIFT 40
#define URING_SLOT_MAX ((1u << 20) - 1)
#define URING_GEN_MASK ((1u << 24) - 1)
#define URING_UD_NONE UINT64_MAX

#define URING_ENTRIES 1024        /* submission queue */
#define URING_CQ_ENTRIES 8192     /* room for a busy pass's completions */
#define URING_PREPARE_ROUNDS 4    /* submit-reap rounds before sleeping */

static void uring_reap(struct uring *u);

/* The ring's counters: this thread writes, `show info` reads. */
static void uring_count(uint64_t *c)
{
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

uint64_t uring_ud(const struct uring *u, uint32_t slot, unsigned op, unsigned bid)
{
    return (uint64_t)(op & ((1u << URING_OP_BITS) - 1)) |
           ((uint64_t)(bid & 0xffffu) << URING_BID_SHIFT) |
           ((uint64_t)slot << URING_SLOT_SHIFT) |
           ((uint64_t)(u->gen[slot] & URING_GEN_MASK) << URING_GEN_SHIFT);
}

/* ---- slots ---------------------------------------------------------------- */

static int uring_slots_grow(struct uring *u)
{
    uint32_t cap = u->cap ? u->cap * 2 : 256;
    if (cap > URING_SLOT_MAX)
        cap = URING_SLOT_MAX;
    if (cap <= u->cap)
        return -1;
    void **owner = realloc(u->owner, cap * sizeof(*owner));
    if (owner == NULL)
        return -1;
    u->owner = owner;
    uint32_t *gen = realloc(u->gen, cap * sizeof(*gen));
    if (gen == NULL)
        return -1;
    u->gen = gen;
    uint32_t *next = realloc(u->free_next, cap * sizeof(*next));
    if (next == NULL)
        return -1;
    u->free_next = next;
    /* the new slots join the free list in order */
    for (uint32_t i = cap; i-- > u->cap;) {
        u->owner[i] = NULL;
        u->gen[i] = 0;
        u->free_next[i] = u->free_head;
        u->free_head = i;
    }
    u->cap = cap;
    return 0;
}

uint32_t uring_slot_new(struct uring *u, void *owner)
{
    if (u->free_head == URING_NO_SLOT && uring_slots_grow(u) == -1)
        return URING_NO_SLOT;
    uint32_t slot = u->free_head;
    u->free_head = u->free_next[slot];
    u->owner[slot] = owner;
    return slot;
}

void uring_slot_free(struct uring *u, uint32_t slot)
{
    u->owner[slot] = NULL;
    u->gen[slot] = (u->gen[slot] + 1) & URING_GEN_MASK;
    u->free_next[slot] = u->free_head;
    u->free_head = slot;
}

/* ---- buffers --------------------------------------------------------------- */

char *uring_buf(const struct uring *u, unsigned bid)
{
    return u->bufs + (size_t)bid * URING_BUF_SIZE;
}

void uring_buf_put(struct uring *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, uring_buf(u, bid), URING_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(URING_BUFS), 0);
    io_uring_buf_ring_advance(u->br, 1);
    __atomic_store_n(&u->bufs_out, u->bufs_out - 1, __ATOMIC_RELAXED);
    u->bufs_returned = 1;
}

void uring_retry_soon(struct uring *u, uint32_t slot)
{
    uring_wait_buffers(u, slot);
    u->retry_soon = 1;
}

void uring_wait_buffers(struct uring *u, uint32_t slot)
{
    if (u->nwaiting == u->waiting_cap) {
        uint32_t cap = u->waiting_cap ? u->waiting_cap * 2 : 64;
        struct uring_waiter *w = realloc(u->waiting, cap * sizeof(*w));
        if (w == NULL)
            return;   /* the owner's next event retries */
        u->waiting = w;
        u->waiting_cap = cap;
    }
    u->waiting[u->nwaiting++] = (struct uring_waiter){ slot, u->gen[slot] };
}

/* Buffers came back, or an owner asked for the next pass: calls the owners
 * still on the ring that waited. One that must wait again goes on the
 * list taken afresh. */
static void uring_wake_waiting(struct uring *u)
{
    uint32_t n = u->nwaiting;
    struct uring_waiter *w = u->waiting;
    u->waiting = NULL;
    u->nwaiting = u->waiting_cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = w[i].slot;
        if (slot < u->cap && u->owner[slot] != NULL && u->gen[slot] == w[i].gen)
            u->retry(u->owner[slot]);
    }
    free(w);
}

/* ---- submitting and reaping ------------------------------------------------- */

struct io_uring_sqe *uring_sqe(struct uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) {
        if (io_uring_submit(&u->ring) < 0)
            return NULL;
        uring_count(&u->submits);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* Submits what is queued (operations still in the submission queue are not
 * the kernel's yet, and the cancel must find them), then cancels what
 * <reg> names and waits for the kernel to be done with it: how many it
 * cancelled, -ENOENT for none, or another -errno. */
static int uring_sync_cancel(struct uring *u, struct io_uring_sync_cancel_reg *reg)
{
    reg->timeout.tv_sec = -1;
    reg->timeout.tv_nsec = -1;
    if (io_uring_sq_ready(&u->ring) > 0 && io_uring_submit(&u->ring) >= 0)
        uring_count(&u->submits);
    return io_uring_register_sync_cancel(&u->ring, reg);
}

int uring_cancel_fd(struct uring *u, int fd)
{
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.fd = fd;
    reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    int r = uring_sync_cancel(u, &reg);
    return r >= 0 || r == -ENOENT ? 0 : r;
}

int uring_cancel_ud(struct uring *u, uint64_t ud)
{
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.addr = ud;
    reg.fd = -1;
    int r = uring_sync_cancel(u, &reg);
    if (r == -ENOENT)
        return 0;
    return r < 0 ? r : 1;
}

static void uring_dispatch(struct uring *u, uint64_t ud, int res, unsigned flags)
{
    if (ud == URING_UD_NONE)
        return;
    uint32_t slot = (uint32_t)(ud >> URING_SLOT_SHIFT) & URING_SLOT_MAX;
    uint32_t gen = (uint32_t)(ud >> URING_GEN_SHIFT) & URING_GEN_MASK;
    unsigned op = (unsigned)ud & ((1u << URING_OP_BITS) - 1);
    unsigned bid = (unsigned)(ud >> URING_BID_SHIFT) & 0xffffu;
    if (flags & IORING_CQE_F_BUFFER) {
        bid = flags >> IORING_CQE_BUFFER_SHIFT;
        __atomic_store_n(&u->bufs_out, u->bufs_out + 1, __ATOMIC_RELAXED);
    }
    if (slot >= u->cap || u->owner[slot] == NULL || u->gen[slot] != gen) {
        /* its owner left the ring: a buffer the kernel filled goes back */
        if (flags & IORING_CQE_F_BUFFER)
            uring_buf_put(u, bid);
        return;
    }
    u->complete(u->owner[slot], op, bid, res, flags);
}

static void uring_reap(struct uring *u)
{
    struct io_uring_cqe *cqe;
    u->reaped++;
    /* bounded so that a flood of completions cannot starve the loop's
     * other watchers; what is left keeps the ring's fd readable */
    for (unsigned n = 0; n < URING_CQ_ENTRIES && io_uring_peek_cqe(&u->ring, &cqe) == 0; n++) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        unsigned flags = cqe->flags;
        io_uring_cqe_seen(&u->ring, cqe);
        uring_count(&u->completions);
        uring_dispatch(u, ud, res, flags);
    }
}

static void uring_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    struct uring *u = container_of(p, struct uring, prepare);
    if ((u->bufs_returned || u->retry_soon) && u->nwaiting > 0) {
        u->retry_soon = 0;
        uring_wake_waiting(u);
    }
    u->bufs_returned = 0;
    /* Completions of what is submitted here (sends that fit at once) may
     * queue more (the next receive's re-arm, a FIN): a few rounds, then
     * what is left is submitted and its completions wake the loop. */
    for (int round = 0; round < URING_PREPARE_ROUNDS && io_uring_sq_ready(&u->ring) > 0;
         round++) {
        if (io_uring_submit(&u->ring) < 0)
            return;
        uring_count(&u->submits);
        uring_reap(u);
    }
    if (io_uring_sq_ready(&u->ring) > 0 && io_uring_submit(&u->ring) >= 0)
        uring_count(&u->submits);
}

static void uring_check_cb(struct ev_loop *loop, ev_check *c, int revents)
{
    (void)loop;
    (void)revents;
    uring_reap(container_of(c, struct uring, check));
}

static void uring_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    uring_reap(container_of(w, struct uring, ring_io));
}

/* ---- set-up ------------------------------------------------------------------- */

/* The features the relay needs, asked of the kernel rather than assumed
 * from its version: the opcodes, and synchronous cancel (6.0, the same
 * release as multishot receive). */
static int uring_probe(struct uring *u, char *err, size_t errlen)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    if (probe == NULL) {
        snprintf(err, errlen, "the kernel cannot list its io_uring operations");
        return -1;
    }
    static const struct { int op; const char *name; } need[] = {
        { IORING_OP_RECV, "recv" },
        { IORING_OP_SEND, "send" },
        { IORING_OP_ASYNC_CANCEL, "cancel" },
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!io_uring_opcode_supported(probe, need[i].op)) {
            snprintf(err, errlen, "the kernel's io_uring has no %s", need[i].name);
            io_uring_free_probe(probe);
            return -1;
        }
    }
    io_uring_free_probe(probe);
    /* a kernel with it checks the descriptor (EBADF); one without refuses
     * the register opcode (EINVAL) */
    int r = uring_cancel_fd(u, -1);
    if (r != 0 && r != -EBADF) {
        snprintf(err, errlen, "the kernel's io_uring has no synchronous cancel (%s)",
                 strerror(-r));
        return -1;
    }
    return 0;
}

static int uring_setup_bufs(struct uring *u, char *err, size_t errlen)
{
    size_t ring_bytes = URING_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                    -1, 0);
    if (br == MAP_FAILED) {
        snprintf(err, errlen, "buffer ring: %s", strerror(errno));
        return -1;
    }
    u->br = br;
    io_uring_buf_ring_init(u->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)u->br;
    reg.ring_entries = URING_BUFS;
    reg.bgid = URING_BGID;
    int r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        snprintf(err, errlen, "the kernel has no provided-buffer rings (%s)", strerror(-r));
        return -1;
    }
    /* reserved, not committed: pages are touched as the kernel fills them */
    void *bufs = mmap(NULL, (size_t)URING_BUFS * URING_BUF_SIZE, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    if (bufs == MAP_FAILED) {
        snprintf(err, errlen, "receive buffers: %s", strerror(errno));
        return -1;
    }
    u->bufs = bufs;
    for (unsigned i = 0; i < URING_BUFS; i++)
        io_uring_buf_ring_add(u->br, uring_buf(u, i), URING_BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(URING_BUFS), (int)i);
    io_uring_buf_ring_advance(u->br, URING_BUFS);
    return 0;
}

int uring_init(struct uring *u, struct ev_loop *loop, uring_complete_fn *complete,
               uring_retry_fn *retry, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->free_head = URING_NO_SLOT;
    u->loop = loop;
    u->complete = complete;
    u->retry = retry;
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    /* COOP_TASKRUN: the kernel does not interrupt the running worker to
     * post a completion; it runs at the worker's next system call, which
     * comes soon on a busy loop and at once on a sleeping one (its
     * epoll_wait returns). Not DEFER_TASKRUN: with it, completions wait for
     * an io_uring_enter() and the ring's fd does not wake epoll. */
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    params.cq_entries = URING_CQ_ENTRIES;
    int r = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
    if (r == -EINVAL) {   /* an older kernel without the flags: plain */
        memset(&params, 0, sizeof(params));
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = URING_CQ_ENTRIES;
        r = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
    }
    if (r < 0) {
        snprintf(err, errlen, "io_uring_setup: %s", strerror(-r));
        return -1;
    }
    u->ring_up = 1;
    if (uring_probe(u, err, errlen) == -1 || uring_setup_bufs(u, err, errlen) == -1) {
        uring_free(u);
        return -1;
    }
    ev_io_init(&u->ring_io, uring_io_cb, u->ring.ring_fd, EV_READ);
    ev_io_start(loop, &u->ring_io);
    ev_prepare_init(&u->prepare, uring_prepare_cb);
    ev_prepare_start(loop, &u->prepare);
    ev_check_init(&u->check, uring_check_cb);
    ev_check_start(loop, &u->check);
    u->ready = 1;
    return 0;
}

void uring_free(struct uring *u)
{
    if (u->ready) {
        ev_io_stop(u->loop, &u->ring_io);
        ev_prepare_stop(u->loop, &u->prepare);
        ev_check_stop(u->loop, &u->check);
        u->ready = 0;
    }
    if (u->ring_up)
        io_uring_queue_exit(&u->ring);   /* the kernel lets go of the buffers */
    if (u->bufs != NULL)
        munmap(u->bufs, (size_t)URING_BUFS * URING_BUF_SIZE);
    if (u->br != NULL)
        munmap(u->br, URING_BUFS * sizeof(struct io_uring_buf));
    free(u->owner);
    free(u->gen);
    free(u->free_next);
    free(u->waiting);
    memset(u, 0, sizeof(*u));
    u->free_head = URING_NO_SLOT;
}
