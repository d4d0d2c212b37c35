/* stats_socket.c — I/O for the stats socket on the main loop: accepts
 * clients, splits their input into commands (newline or ';'), queues the
 * answers from stats_execute() and closes a client once it has shut down its
 * side and every answer is written. Overlong lines are refused and skipped
 * without harming the connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "net.h"
#include "stats.h"
#include "stats_socket.h"
#include "util.h"

#define STATS_LINE_MAX 1024
#define STATS_CLIENTS_MAX 64
/* A client that does not read its answers is cut off past this. */
#define STATS_OUT_MAX (16 * 1024 * 1024)

struct stats_client {
    ev_io io;
    int fd;                         /* owned */
    char line[STATS_LINE_MAX];
    size_t line_len;
    int overlong;                   /* skipping the rest of a too long line */
    int garbage;                    /* the line holds a control byte */
    int read_closed;
    struct buf out;                 /* owned */
    struct stats_socket *owner;
    LIST_ENTRY(stats_client) link;
};

struct stats_socket {
    ev_io io;
    ev_timer resume;                /* accepting paused: out of descriptors */
    int fd;                         /* owned */
    char *path;                     /* owned */
    struct ev_loop *loop;
    struct stats_ctx *ctx;
    LIST_HEAD(stats_client_list, stats_client) clients;   /* owned */
    unsigned nclients;
};

static void stats_client_free(struct stats_client *c)
{
    struct stats_socket *ss = c->owner;
    ev_io_stop(ss->loop, &c->io);
    close(c->fd);
    buf_free(&c->out);
    LIST_REMOVE(c, link);
    ss->nclients--;
    free(c);
}

static void stats_client_command(struct stats_client *c)
{
    c->line[c->line_len] = '\0';
    stats_execute(c->owner->ctx, c->line, &c->out);
    c->line_len = 0;
}

static void stats_client_input(struct stats_client *c, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (ch == '\n' || ch == ';') {
            if (c->overlong) {
                buf_printf(&c->out, "error: line longer than %d bytes refused\n\n",
                           STATS_LINE_MAX - 1);
            } else if (c->garbage) {
                buf_printf(&c->out, "error: control characters in a command\n\n");
            } else {
                stats_client_command(c);
            }
            c->overlong = c->garbage = 0;
            c->line_len = 0;
            continue;
        }
        if ((unsigned char)ch < 0x20 && ch != '\t' && ch != '\r')
            c->garbage = 1;
        if (c->overlong)
            continue;
        if (c->line_len == STATS_LINE_MAX - 1) {
            c->overlong = 1;
            continue;
        }
        c->line[c->line_len++] = ch;
    }
}

/* Sets the watcher from what is left to do; frees the client when done. */
static void stats_client_update(struct stats_client *c)
{
    struct ev_loop *loop = c->owner->loop;
    if (c->read_closed && c->out.len == 0) {
        stats_client_free(c);
        return;
    }
    int events = 0;
    if (!c->read_closed && c->out.len < STATS_OUT_MAX)
        events |= EV_READ;
    if (c->out.len > 0)
        events |= EV_WRITE;
    if ((c->io.events & (EV_READ | EV_WRITE)) != events) {
        ev_io_stop(loop, &c->io);
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(loop, &c->io);
    }
}

static void stats_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct stats_client *c = container_of(w, struct stats_client, io);

    if (revents & EV_READ) {
        char data[4096];
        ssize_t n = read(c->fd, data, sizeof(data));
        if (n > 0) {
            stats_client_input(c, data, (size_t)n);
        } else if (n == 0) {
            c->read_closed = 1;
            if (c->overlong || c->garbage || c->line_len > 0)
                stats_client_input(c, "\n", 1);
        } else if (errno != EAGAIN && errno != EINTR) {
            stats_client_free(c);
            return;
        }
    }
    if (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
        } else if (n == -1 && errno != EAGAIN && errno != EINTR) {
            stats_client_free(c);
            return;
        }
    }
    stats_client_update(c);
}

static void stats_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct stats_socket *ss = container_of(w, struct stats_socket, io);
    for (;;) {
        int fd = accept4(ss->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (net_error_is_starved(errno)) {
                /* the client stays in the backlog: retry later, do not spin */
                ev_io_stop(loop, &ss->io);
                ev_timer_set(&ss->resume, 0.1, 0);
                ev_timer_start(loop, &ss->resume);
            }
            return;
        }
        if (ss->nclients >= STATS_CLIENTS_MAX) {
            close(fd);
            continue;
        }
        struct stats_client *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->owner = ss;
        LIST_INSERT_HEAD(&ss->clients, c, link);
        ss->nclients++;
        ev_io_init(&c->io, stats_client_cb, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void stats_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct stats_socket *ss = container_of(t, struct stats_socket, resume);
    ev_io_start(loop, &ss->io);
}

/* 1 if something answers on <path>: another tcplb still uses it. */
static int stats_socket_in_use(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return 0;
    int used = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    close(fd);
    return used;
}

struct stats_socket *stats_socket_open(struct ev_loop *loop, const char *path,
                                       struct stats_ctx *ctx, char *err,
                                       size_t errlen)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path)) {
        snprintf(err, errlen, "stats socket path too long: %s", path);
        return NULL;
    }
    strcpy(addr.sun_path, path);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "stats socket %s exists and is not a socket", path);
            return NULL;
        }
        if (stats_socket_in_use(&addr)) {
            snprintf(err, errlen, "stats socket %s is in use by another process", path);
            return NULL;
        }
        unlink(path);
    }

    struct stats_socket *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ss->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ss->fd == -1)
        goto fail;
    /* The umask makes the file 0600 from birth: no window where others can
     * connect. */
    mode_t old = umask(0177);
    int rc = bind(ss->fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (rc == -1 || listen(ss->fd, 64) == -1)
        goto fail;
    ss->path = strdup(path);
    if (ss->path == NULL)
        goto fail;
    ss->loop = loop;
    ss->ctx = ctx;
    ev_io_init(&ss->io, stats_accept_cb, ss->fd, EV_READ);
    ev_io_start(loop, &ss->io);
    ev_init(&ss->resume, stats_resume_cb);
    return ss;
fail:
    snprintf(err, errlen, "stats socket %s: %s", path, strerror(errno));
    if (ss->fd != -1)
        close(ss->fd);
    free(ss);
    return NULL;
}

void stats_socket_close(struct stats_socket *ss)
{
    if (ss == NULL)
        return;
    while (!LIST_EMPTY(&ss->clients))
        stats_client_free(LIST_FIRST(&ss->clients));
    ev_io_stop(ss->loop, &ss->io);
    ev_timer_stop(ss->loop, &ss->resume);
    close(ss->fd);
    unlink(ss->path);
    free(ss->path);
    free(ss);
}
