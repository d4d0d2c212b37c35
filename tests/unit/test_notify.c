/* test_notify.c — notify.c: NOTIFY_SOCKET's forms (absolute path, @name
 * for an abstract socket, the rest refused), WATCHDOG_USEC only for the pid
 * WATCHDOG_PID names, and the datagrams themselves as a service manager
 * reads them from its socket (READY=1 with STATUS=, RELOADING=1 with
 * MONOTONIC_USEC, STOPPING=1, WATCHDOG=1, STATUS= cut at 200 bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify.h"

static void test_addresses(void **state)
{
    (void)state;
    struct sockaddr_un sun;
    size_t len = notify_parse_address("/run/systemd/notify", &sun);
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
    assert_string_equal(sun.sun_path, "/run/systemd/notify");
    assert_int_equal(sun.sun_family, AF_UNIX);

    len = notify_parse_address("@abc", &sun);
    /* the abstract name: a NUL for the '@', no NUL after */
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 4);
    assert_int_equal(sun.sun_path[0], '\0');
    assert_memory_equal(sun.sun_path + 1, "abc", 3);

    assert_int_equal(notify_parse_address("relative", &sun), 0);
    assert_int_equal(notify_parse_address("", &sun), 0);
    assert_int_equal(notify_parse_address("/", &sun), 0);
    assert_int_equal(notify_parse_address("@", &sun), 0);
    assert_int_equal(notify_parse_address(NULL, &sun), 0);
    char longpath[sizeof(sun.sun_path) + 2];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(notify_parse_address(longpath, &sun), 0);
    longpath[sizeof(sun.sun_path) - 1] = '\0';     /* the longest that fits */
    assert_int_not_equal(notify_parse_address(longpath, &sun), 0);
}

static void test_watchdog_values(void **state)
{
    (void)state;
    assert_int_equal(notify_parse_watchdog("30000000", NULL, 42), 30000000);
    assert_int_equal(notify_parse_watchdog("30000000", "42", 42), 30000000);
    assert_int_equal(notify_parse_watchdog("30000000", "41", 42), 0);
    assert_int_equal(notify_parse_watchdog("30000000", "x", 42), 0);
    assert_int_equal(notify_parse_watchdog(NULL, NULL, 42), 0);
    assert_int_equal(notify_parse_watchdog("", NULL, 42), 0);
    assert_int_equal(notify_parse_watchdog("-5", NULL, 42), 0);
    assert_int_equal(notify_parse_watchdog("12s", NULL, 42), 0);
    assert_int_equal(notify_parse_watchdog("99999999999999999999999", NULL, 42), 0);
}

struct manager {
    char dir[64];
    char path[96];
    int fd;
};

static int manager_setup(void **state)
{
    struct manager *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    snprintf(m->dir, sizeof(m->dir), "/tmp/tcplb-notify-XXXXXX");
    assert_non_null(mkdtemp(m->dir));
    snprintf(m->path, sizeof(m->path), "%s/notify", m->dir);
    m->fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(m->fd >= 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", m->path);
    assert_int_equal(bind(m->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", m->path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = m;
    return 0;
}

static int manager_teardown(void **state)
{
    struct manager *m = *state;
    notify_close();
    close(m->fd);
    unlink(m->path);
    rmdir(m->dir);
    unsetenv("NOTIFY_SOCKET");
    free(m);
    return 0;
}

static void manager_expect(struct manager *m, const char *want)
{
    char got[512];
    ssize_t n = recv(m->fd, got, sizeof(got) - 1, 0);
    assert_true(n >= 0);
    got[n] = '\0';
    assert_string_equal(got, want);
}

static void test_messages(void **state)
{
    struct manager *m = *state;
    char err[200];
    setenv("WATCHDOG_USEC", "2000000", 1);
    assert_int_equal(notify_open(err, sizeof(err)), 1);
    assert_true(notify_enabled());
    assert_int_equal(notify_watchdog_usec(), 2000000);

    notify_ready("ready; 0 active connections, 2 of 2 servers up");
    manager_expect(m, "READY=1\nSTATUS=ready; 0 active connections, 2 of 2 servers up");
    notify_ready(NULL);
    manager_expect(m, "READY=1");
    notify_status("5 active connections");
    manager_expect(m, "STATUS=5 active connections");
    notify_stopping("stopping; 1 active connections");
    manager_expect(m, "STOPPING=1\nSTATUS=stopping; 1 active connections");
    notify_watchdog();
    manager_expect(m, "WATCHDOG=1");
    notify_send("EXTEND_TIMEOUT_USEC=5000000");
    manager_expect(m, "EXTEND_TIMEOUT_USEC=5000000");

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
    notify_reloading();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long after = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
    char got[128];
    ssize_t n = recv(m->fd, got, sizeof(got) - 1, 0);
    assert_true(n > 0);
    got[n] = '\0';
    unsigned long long usec = 0;
    assert_int_equal(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
    assert_true(usec >= before && usec <= after);

}

static void test_status_cut(void **state)
{
    struct manager *m = *state;
    char err[200];
    assert_int_equal(notify_open(err, sizeof(err)), 1);
    char longstatus[400];
    memset(longstatus, 'x', sizeof(longstatus) - 1);
    longstatus[sizeof(longstatus) - 1] = '\0';
    notify_status(longstatus);
    char want[300];
    snprintf(want, sizeof(want), "STATUS=%.200s", longstatus);
    manager_expect(m, want);
}

static void test_without_manager(void **state)
{
    struct manager *m = *state;
    char err[200];
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_open(err, sizeof(err)), 0);
    assert_false(notify_enabled());
    assert_int_equal(notify_watchdog_usec(), 0);
    notify_ready("nobody hears this");          /* harmless */
    char got[64];
    assert_int_equal(recv(m->fd, got, sizeof(got), MSG_DONTWAIT), -1);

    setenv("NOTIFY_SOCKET", "not/absolute", 1);
    assert_int_equal(notify_open(err, sizeof(err)), -1);
    assert_string_equal(err, "NOTIFY_SOCKET=not/absolute: not an absolute path or @name");
    assert_false(notify_enabled());
}

static void test_watchdog_for_another_process(void **state)
{
    (void)state;
    char err[200], pid[32];
    setenv("WATCHDOG_USEC", "1000000", 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_open(err, sizeof(err)), 1);
    assert_int_equal(notify_watchdog_usec(), 0);
    notify_close();
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_open(err, sizeof(err)), 1);
    assert_int_equal(notify_watchdog_usec(), 1000000);
}

static void test_manager_gone(void **state)
{
    struct manager *m = *state;
    char err[200];
    assert_int_equal(notify_open(err, sizeof(err)), 1);
    unlink(m->path);
    notify_ready(NULL);          /* ECONNREFUSED or ENOENT: logged, ignored */
    notify_watchdog();
    assert_true(notify_enabled());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_watchdog_values),
        cmocka_unit_test_setup_teardown(test_messages, manager_setup, manager_teardown),
        cmocka_unit_test_setup_teardown(test_status_cut, manager_setup, manager_teardown),
        cmocka_unit_test_setup_teardown(test_without_manager, manager_setup, manager_teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_for_another_process, manager_setup,
                                        manager_teardown),
        cmocka_unit_test_setup_teardown(test_manager_gone, manager_setup, manager_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
