/* notify.c — the service manager's notify protocol (see notify.h). It is a
 * single datagram per message to a Unix socket, so it is written here
 * rather than linking libsystemd: a few lines instead of a library and its
 * dependencies in a load balancer's address space, and nothing changes on
 * machines without systemd. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct {
    int fd;                    /* owned, -1 when not notifying */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_usec;
    int warned;                /* a failed send was logged */
} notify = { .fd = -1 };

size_t notify_parse_address(const char *value, struct sockaddr_un *out)
{
    size_t n = value != NULL ? strlen(value) : 0;
    memset(out, 0, sizeof(*out));
    out->sun_family = AF_UNIX;
    /* a path must be absolute; '@' names an abstract socket, whose name
     * starts with a NUL byte in place of the '@' */
    if (n < 2 || n >= sizeof(out->sun_path) || (value[0] != '/' && value[0] != '@'))
        return 0;
    memcpy(out->sun_path, value, n);
    if (value[0] == '@') {
        out->sun_path[0] = '\0';
        return offsetof(struct sockaddr_un, sun_path) + n;   /* no trailing NUL */
    }
    return offsetof(struct sockaddr_un, sun_path) + n + 1;
}

static uint64_t notify_parse_u64(const char *text)
{
    if (text == NULL || *text < '0' || *text > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    return v;
}

uint64_t notify_parse_watchdog(const char *usec, const char *pid, long self)
{
    /* WATCHDOG_PID says whom the interval is for: a child that inherited
     * the environment must not ping in its parent's name */
    if (pid != NULL && notify_parse_u64(pid) != (uint64_t)self)
        return 0;
    return notify_parse_u64(usec);
}

int notify_open(char *err, size_t errlen)
{
    const char *value = getenv("NOTIFY_SOCKET");
    if (value == NULL || *value == '\0')
        return 0;
    size_t len = notify_parse_address(value, &notify.addr);
    if (len == 0) {
        snprintf(err, errlen, "NOTIFY_SOCKET=%.100s: not an absolute path or @name", value);
        return -1;
    }
    notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify.fd == -1) {
        snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        return -1;
    }
    notify.addrlen = (socklen_t)len;
    notify.warned = 0;
    notify.watchdog_usec = notify_parse_watchdog(getenv("WATCHDOG_USEC"),
                                                 getenv("WATCHDOG_PID"), (long)getpid());
    return 1;
}

void notify_close(void)
{
    if (notify.fd != -1)
        close(notify.fd);
    notify.fd = -1;
    notify.watchdog_usec = 0;
}

int notify_enabled(void)
{
    return notify.fd != -1;
}

uint64_t notify_watchdog_usec(void)
{
    return notify.fd != -1 ? notify.watchdog_usec : 0;
}

void notify_send(const char *message)
{
    if (notify.fd == -1)
        return;
    ssize_t n = sendto(notify.fd, message, strlen(message), MSG_NOSIGNAL,
                       (const struct sockaddr *)&notify.addr, notify.addrlen);
    if (n == -1 && !notify.warned) {
        notify.warned = 1;
        log_msg("notify: cannot tell the service manager (%s); going on without",
                strerror(errno));
    }
}

static void notify_with_status(const char *first, const char *status)
{
    char msg[300];
    if (status != NULL)
        snprintf(msg, sizeof(msg), "%s%sSTATUS=%.200s", first, *first ? "\n" : "", status);
    else
        snprintf(msg, sizeof(msg), "%s", first);
    notify_send(msg);
}

void notify_ready(const char *status)
{
    notify_with_status("READY=1", status);
}

void notify_reloading(void)
{
    /* MONOTONIC_USEC lets the manager tell this reload from an earlier one */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[80];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    notify_send(msg);
}

void notify_stopping(const char *status)
{
    notify_with_status("STOPPING=1", status);
}

void notify_status(const char *status)
{
    notify_with_status("", status);
}

void notify_watchdog(void)
{
    notify_send("WATCHDOG=1");
}
