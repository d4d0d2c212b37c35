/* test_uring.c — uring.c on a real ring and a real libev loop: a receive
 * fills a buffer the kernel picks from the shared ring and reports it to
 * the live owner; a completion for a freed slot is stale and its buffer goes back
 * (none is lost); sends are batched into the prepare hook's one submission;
 * a synchronous cancel ends a receive before it returns; an owner told
 * there are no buffers is called again once one comes back. When the
 * kernel has no usable io_uring, uring_init must say why and leave nothing
 * behind; the tests that need a ring then pass only that check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "uring.h"

struct seen {
    unsigned calls, retries;
    unsigned op, bid;
    int res;
    unsigned flags;
};

static void on_complete(void *owner, unsigned op, unsigned bid, int res, unsigned flags)
{
    struct seen *s = owner;
    s->calls++;
    s->op = op;
    s->bid = bid;
    s->res = res;
    s->flags = flags;
}

static void on_retry(void *owner)
{
    ((struct seen *)owner)->retries++;
}

struct fixture {
    struct ev_loop *loop;
    struct uring u;
    int up;
    char err[160];
    int sv[2];
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f.loop);
    f.up = uring_init(&f.u, f.loop, on_complete, on_retry, f.err, sizeof(f.err)) == 0;
    if (!f.up)
        assert_true(f.err[0] != '\0');   /* a fallback always says why */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f.sv), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    uring_free(&f->u);
    uring_free(&f->u);   /* a repeat is harmless */
    close(f->sv[0]);
    close(f->sv[1]);
    ev_loop_destroy(f->loop);
    return 0;
}

/* Runs loop passes until <seen> counted <calls> completions, for at most
 * about two seconds; never blocks. */
static void run_until(struct fixture *f, const struct seen *seen, unsigned calls)
{
    for (int i = 0; i < 2000 && seen->calls < calls; i++) {
        ev_run(f->loop, EVRUN_NOWAIT);
        if (seen->calls < calls)
            usleep(1000);
    }
}

static void arm_recv(struct fixture *f, uint32_t slot, unsigned op)
{
    struct io_uring_sqe *sqe = uring_sqe(&f->u);
    assert_non_null(sqe);
    io_uring_prep_recv(sqe, f->sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    io_uring_sqe_set_data64(sqe, uring_ud(&f->u, slot, op, 0));
}

static void test_receive_reaches_the_owner(void **state)
{
    struct fixture *f = *state;
    if (!f->up)
        skip();
    struct seen seen = { 0 };
    uint32_t slot = uring_slot_new(&f->u, &seen);
    assert_int_not_equal(slot, URING_NO_SLOT);
    arm_recv(f, slot, 3);
    assert_int_equal(write(f->sv[1], "hello", 5), 5);
    run_until(f, &seen, 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.op, 3);
    assert_int_equal(seen.res, 5);
    assert_true(seen.flags & IORING_CQE_F_BUFFER);
    assert_memory_equal(uring_buf(&f->u, seen.bid), "hello", 5);
    assert_int_equal(f->u.bufs_out, 1);
    unsigned first = seen.bid;

    /* the next receive gets another buffer while the first is held */
    arm_recv(f, slot, 3);
    assert_int_equal(write(f->sv[1], "again!", 6), 6);
    run_until(f, &seen, 2);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.res, 6);
    assert_int_not_equal(seen.bid, first);
    assert_memory_equal(uring_buf(&f->u, seen.bid), "again!", 6);
    assert_int_equal(f->u.bufs_out, 2);
    uring_buf_put(&f->u, first);
    uring_buf_put(&f->u, seen.bid);
    assert_int_equal(f->u.bufs_out, 0);

    /* a synchronous cancel: the receive is over when it returns */
    arm_recv(f, slot, 3);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(uring_cancel_fd(&f->u, f->sv[0]), 0);
    run_until(f, &seen, 3);
    assert_int_equal(seen.calls, 3);
    assert_int_equal(seen.res, -ECANCELED);
    assert_false(seen.flags & IORING_CQE_F_BUFFER);
    /* nothing left on that fd: cancelling again finds nothing */
    assert_int_equal(uring_cancel_fd(&f->u, f->sv[0]), 0);
    uring_slot_free(&f->u, slot);
}

static void test_stale_completion_gives_its_buffer_back(void **state)
{
    struct fixture *f = *state;
    if (!f->up)
        skip();
    struct seen seen = { 0 };
    uint32_t slot = uring_slot_new(&f->u, &seen);
    arm_recv(f, slot, 1);
    ev_run(f->loop, EVRUN_NOWAIT);            /* submitted */
    uint32_t gen = f->u.gen[slot];
    uring_slot_free(&f->u, slot);             /* the owner leaves */
    assert_int_not_equal(f->u.gen[slot], gen);
    /* a new owner takes the same slot: the old receive's bytes are not its */
    struct seen other = { 0 };
    assert_int_equal(uring_slot_new(&f->u, &other), slot);
    assert_int_equal(write(f->sv[1], "stale", 5), 5);
    for (int i = 0; i < 50; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(other.calls, 0);
    assert_int_equal(f->u.bufs_out, 0);       /* the buffer went back */
    assert_int_equal(uring_cancel_fd(&f->u, f->sv[0]), 0);
    for (int i = 0; i < 10; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    uring_slot_free(&f->u, slot);
    char sink[16];
    (void)read(f->sv[0], sink, sizeof(sink));
}

static void test_sends_go_in_one_submission(void **state)
{
    struct fixture *f = *state;
    if (!f->up)
        skip();
    struct seen seen = { 0 };
    uint32_t slot = uring_slot_new(&f->u, &seen);
    uint64_t before = f->u.submits;
    static const char msg[] = "abc";
    for (int i = 0; i < 3; i++) {
        struct io_uring_sqe *sqe = uring_sqe(&f->u);
        io_uring_prep_send(sqe, f->sv[1], msg + i, 1, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, uring_ud(&f->u, slot, 2, (unsigned)i));
    }
    run_until(f, &seen, 3);
    assert_int_equal(seen.calls, 3);
    assert_int_equal(seen.op, 2);
    assert_int_equal(seen.bid, 2);          /* the bid given in user_data */
    assert_int_equal(f->u.submits - before, 1);
    char got[4] = { 0 };
    assert_int_equal(read(f->sv[0], got, 3), 3);
    assert_string_equal(got, "abc");
    uring_slot_free(&f->u, slot);
}

static void test_waiting_owner_is_called_once_a_buffer_returns(void **state)
{
    struct fixture *f = *state;
    if (!f->up)
        skip();
    struct seen seen = { 0 }, gone = { 0 };
    uint32_t slot = uring_slot_new(&f->u, &seen);
    uint32_t left = uring_slot_new(&f->u, &gone);
    uring_wait_buffers(&f->u, slot);
    uring_wait_buffers(&f->u, left);
    uring_slot_free(&f->u, left);           /* left the ring meanwhile */
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(seen.retries, 0);      /* no buffer came back yet */
    /* a buffer comes back (taken by hand from the kernel's ring first) */
    arm_recv(f, slot, 0);
    assert_int_equal(write(f->sv[1], "x", 1), 1);
    run_until(f, &seen, 1);
    assert_int_equal(seen.res, 1);
    uring_buf_put(&f->u, seen.bid);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(seen.retries, 1);
    assert_int_equal(gone.retries, 0);      /* a stale wait is dropped */
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(seen.retries, 1);      /* once */
    uring_slot_free(&f->u, slot);
}

static void test_slots_grow_and_reuse(void **state)
{
    struct fixture *f = *state;
    if (!f->up)
        skip();
    static struct seen owners[600];
    static uint32_t slots[600];
    for (int i = 0; i < 600; i++) {
        slots[i] = uring_slot_new(&f->u, &owners[i]);
        assert_int_not_equal(slots[i], URING_NO_SLOT);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(slots[i], slots[j]);
    }
    for (int i = 0; i < 600; i++)
        uring_slot_free(&f->u, slots[i]);
    /* freed slots are taken again before the table grows */
    uint32_t cap = f->u.cap;
    for (int i = 0; i < 600; i++)
        slots[i] = uring_slot_new(&f->u, &owners[i]);
    assert_int_equal(f->u.cap, cap);
    for (int i = 0; i < 600; i++)
        uring_slot_free(&f->u, slots[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receive_reaches_the_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_completion_gives_its_buffer_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sends_go_in_one_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_owner_is_called_once_a_buffer_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_grow_and_reuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
