/* test_pipe_pool.c — pipe_pool.c: pipes are reused rather than reopened,
 * the limit holds (and 0 means no pipes at all), a pipe that still holds
 * bytes is closed rather than handed out again, and free closes what is
 * kept. Real pipes: every check looks at the descriptors themselves. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pipe_pool.h"

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* Bytes a pipe takes before a non-blocking write would block. */
static size_t pipe_fill(const struct pipe_fds *p)
{
    static char chunk[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(p->wr, chunk, sizeof(chunk));
        if (n == -1) {
            assert_int_equal(errno, EAGAIN);
            return total;
        }
        total += (size_t)n;
    }
}

static void test_limit_zero_gives_no_pipe(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 0);
    struct pipe_fds p = { -1, -1 };
    assert_int_equal(pipe_pool_get(&pp, &p), -1);
    assert_int_equal(p.rd, -1);
    assert_int_equal(pp.open, 0);
    pipe_pool_free(&pp);
}

static void test_put_pipe_is_handed_out_again(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 4);
    struct pipe_fds p;
    assert_int_equal(pipe_pool_get(&pp, &p), 0);
    assert_true(fd_is_open(p.rd) && fd_is_open(p.wr));
    assert_int_equal(pp.open, 1);
    int rd = p.rd, wr = p.wr;
    pipe_pool_put(&pp, &p);
    assert_int_equal(p.rd, -1);
    assert_int_equal(p.wr, -1);
    assert_true(fd_is_open(rd));             /* kept open for the next one */
    assert_int_equal(pipe_pool_get(&pp, &p), 0);
    assert_int_equal(p.rd, rd);
    assert_int_equal(p.wr, wr);
    assert_int_equal(pp.open, 1);            /* no second pipe() */
    pipe_pool_put(&pp, &p);
    pipe_pool_free(&pp);
    assert_false(fd_is_open(rd));
    assert_false(fd_is_open(wr));
    assert_int_equal(pp.open, 0);
}

static void test_limit_holds_until_a_pipe_comes_back(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 2);
    struct pipe_fds a, b, c = { -1, -1 };
    assert_int_equal(pipe_pool_get(&pp, &a), 0);
    assert_int_equal(pipe_pool_get(&pp, &b), 0);
    assert_true(a.rd != b.rd);
    assert_int_equal(pipe_pool_get(&pp, &c), -1);
    assert_int_equal(c.rd, -1);
    pipe_pool_put(&pp, &b);
    assert_int_equal(pipe_pool_get(&pp, &c), 0);
    assert_int_equal(pipe_pool_get(&pp, &b), -1);
    pipe_pool_put(&pp, &a);
    pipe_pool_put(&pp, &c);
    assert_int_equal(pp.open, 2);
    assert_int_equal(pp.nfree, 2);
    pipe_pool_free(&pp);
    assert_int_equal(pp.open, 0);
}

static void test_discard_closes_a_pipe_with_bytes_in_it(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 1);
    struct pipe_fds p;
    assert_int_equal(pipe_pool_get(&pp, &p), 0);
    int rd = p.rd, wr = p.wr;
    assert_int_equal(write(p.wr, "left over", 9), 9);
    pipe_pool_discard(&pp, &p);
    assert_int_equal(p.rd, -1);
    assert_false(fd_is_open(rd));
    assert_false(fd_is_open(wr));
    assert_int_equal(pp.open, 0);
    assert_int_equal(pp.nfree, 0);
    /* the slot it held is free again, and the new pipe is empty */
    assert_int_equal(pipe_pool_get(&pp, &p), 0);
    char c;
    assert_int_equal(read(p.rd, &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
    pipe_pool_discard(&pp, &p);
    pipe_pool_free(&pp);
}

static void test_pipes_are_nonblocking_and_sized(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 1);
    struct pipe_fds p;
    assert_int_equal(pipe_pool_get(&pp, &p), 0);
    assert_true(fcntl(p.rd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.wr, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.rd, F_GETFD) & FD_CLOEXEC);
    /* at least the kernel's default, and what the pool says it is */
    assert_true(pp.pipe_size >= 64 * 1024);
    assert_int_equal(pipe_fill(&p), pp.pipe_size);
    pipe_pool_discard(&pp, &p);
    pipe_pool_free(&pp);
}

static void test_discard_and_put_of_no_pipe_are_harmless(void **state)
{
    (void)state;
    struct pipe_pool pp;
    pipe_pool_init(&pp, 1);
    struct pipe_fds none = { -1, -1 };
    pipe_pool_put(&pp, &none);
    pipe_pool_discard(&pp, &none);
    assert_int_equal(pp.open, 0);
    assert_int_equal(pp.nfree, 0);
    pipe_pool_free(&pp);
    pipe_pool_free(&pp);                    /* twice: still harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_zero_gives_no_pipe),
        cmocka_unit_test(test_put_pipe_is_handed_out_again),
        cmocka_unit_test(test_limit_holds_until_a_pipe_comes_back),
        cmocka_unit_test(test_discard_closes_a_pipe_with_bytes_in_it),
        cmocka_unit_test(test_pipes_are_nonblocking_and_sized),
        cmocka_unit_test(test_discard_and_put_of_no_pipe_are_harmless),
    };
    return cmocka_run_group_tests_name("pipe_pool", tests, NULL, NULL) ? 1 : 0;
}
