/* stats_http.c — a deliberately small HTTP/1.1 server for the stats page and
 * metrics (see stats_http.h): reads one request head (at most 8 KiB, within
 * 10 s), answers it in full and closes. It runs on the main loop next to the
 * stats socket and never touches a worker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "events.h"
#include "history.h"
#include "metrics.h"
#include "net.h"
#include "page.h"
#include "stats.h"
#include "stats_http.h"
#include "util.h"

#define HTTP_HEAD_MAX 8192
#define HTTP_CLIENTS_MAX 64
#define HTTP_CLIENT_TIMEOUT 10.0

struct stats_http_client {
    ev_io io;
    ev_timer timer;
    int fd;                          /* owned */
    char head[HTTP_HEAD_MAX];
    size_t head_len;
    int answering;
    struct buf out;                  /* owned */
    struct stats_http *owner;
    LIST_ENTRY(stats_http_client) link;
};

struct stats_http {
    ev_io io;
    ev_timer resume;                 /* accepting paused: out of descriptors */
    int fd;                          /* owned */
    struct ev_loop *loop;
    struct stats_ctx *ctx;
    LIST_HEAD(stats_http_client_list, stats_http_client) clients;   /* owned */
    unsigned nclients;
};

static void stats_http_client_free(struct stats_http_client *c)
{
    struct stats_http *h = c->owner;
    ev_io_stop(h->loop, &c->io);
    ev_timer_stop(h->loop, &c->timer);
    close(c->fd);
    buf_free(&c->out);
    LIST_REMOVE(c, link);
    h->nclients--;
    free(c);
}

static void stats_http_respond(struct stats_http_client *c, int status,
                               const char *reason, const char *type,
                               const char *body, size_t len, int head_only)
{
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
               "Content-Length: %zu\r\nCache-Control: no-store\r\n"
               "Connection: close\r\n\r\n", status, reason, type, len);
    if (!head_only)
        buf_append(&c->out, body, len);
}

static void stats_http_error(struct stats_http_client *c, int status, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    stats_http_respond(c, status, reason, "text/plain; charset=utf-8", body,
                       (size_t)n, 0);
}

static void stats_http_page(struct stats_ctx *ctx, struct buf *out)
{
    (void)ctx;
    buf_append(out, page_html, page_html_len);
}

static void stats_http_history(struct stats_ctx *ctx, struct buf *out)
{
    if (ctx->history != NULL)
        history_write_json(ctx->history, ctx->config, out);
    else
        buf_printf(out, "{\"step_s\":%g,\"servers\":[]}\n", HISTORY_STEP);
}

static void stats_http_events(struct stats_ctx *ctx, struct buf *out)
{
    (void)ctx;
    events_write_json(out, 20);
}

/* What stats_http serves: one row per path. A row's write() gives a 200;
 * answer(), for a path whose status says something, gives its own. */
static const struct {
    const char *path, *type;
    void (*write)(struct stats_ctx *ctx, struct buf *out);
    int (*answer)(struct stats_ctx *ctx, struct buf *out);
} stats_http_routes[] = {
    { "/health", "text/plain; charset=utf-8", NULL, stats_health },
    { "/metrics", "text/plain; version=0.0.4; charset=utf-8", metrics_write, NULL },
    { "/stats.json", "application/json", stats_write_json, NULL },
    { "/explain.json", "application/json", stats_write_explain_json, NULL },
    { "/clients.json", "application/json", stats_write_clients_json, NULL },
    { "/history.json", "application/json", stats_http_history, NULL },
    { "/events.json", "application/json", stats_http_events, NULL },
    { "/", "text/html; charset=utf-8", stats_http_page, NULL },
    { "/index.html", "text/html; charset=utf-8", stats_http_page, NULL },
};

/* Routes a complete request head. */
static void stats_http_route(struct stats_http_client *c)
{
    char method[8], target[512], version[16];
    c->head[c->head_len < sizeof(c->head) ? c->head_len : sizeof(c->head) - 1] = '\0';
    if (sscanf(c->head, "%7s %511s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        stats_http_error(c, 400, "Bad Request");
        return;
    }
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        stats_http_error(c, 405, "Method Not Allowed");
        return;
    }
    char *query = strchr(target, '?');
    if (query != NULL)
        *query = '\0';

    for (size_t i = 0; i < ARRAY_LEN(stats_http_routes); i++) {
        if (strcmp(target, stats_http_routes[i].path) != 0)
            continue;
        struct buf body = { 0 };
        int status = 200;
        if (stats_http_routes[i].answer != NULL)
            status = stats_http_routes[i].answer(c->owner->ctx, &body);
        else
            stats_http_routes[i].write(c->owner->ctx, &body);
        stats_http_respond(c, status, status == 200 ? "OK" : "Service Unavailable",
                           stats_http_routes[i].type, body.data ? body.data : "",
                           body.len, head_only);
        buf_free(&body);
        return;
    }
    stats_http_error(c, 404, "Not Found");
}

static void stats_http_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct stats_http_client *c = container_of(w, struct stats_http_client, io);
    (void)revents;
    if (!c->answering) {
        ssize_t n = read(c->fd, c->head + c->head_len, sizeof(c->head) - 1 - c->head_len);
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            stats_http_client_free(c);
            return;
        }
        if (n > 0)
            c->head_len += (size_t)n;
        c->head[c->head_len] = '\0';
        if (strstr(c->head, "\r\n\r\n") == NULL && strstr(c->head, "\n\n") == NULL) {
            if (c->head_len < sizeof(c->head) - 1)
                return;
            stats_http_error(c, 431, "Request Header Fields Too Large");
        } else {
            stats_http_route(c);
        }
        c->answering = 1;
        ev_io_stop(loop, &c->io);
        ev_io_set(&c->io, c->fd, EV_WRITE);
        ev_io_start(loop, &c->io);
    }
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            break;
        }
        buf_consume(&c->out, (size_t)n);
    }
    /* All written: FIN first, so the client reads the whole answer. */
    shutdown(c->fd, SHUT_WR);
    stats_http_client_free(c);
}

static void stats_http_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    stats_http_client_free(container_of(t, struct stats_http_client, timer));
}

static void stats_http_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct stats_http *h = container_of(w, struct stats_http, io);
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (net_error_is_starved(errno)) {
                ev_io_stop(loop, &h->io);
                ev_timer_set(&h->resume, 0.1, 0);
                ev_timer_start(loop, &h->resume);
            }
            return;
        }
        struct stats_http_client *c = NULL;
        if (h->nclients >= HTTP_CLIENTS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->owner = h;
        LIST_INSERT_HEAD(&h->clients, c, link);
        h->nclients++;
        ev_io_init(&c->io, stats_http_client_cb, fd, EV_READ);
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, stats_http_timeout_cb, HTTP_CLIENT_TIMEOUT, 0);
        ev_timer_start(loop, &c->timer);
    }
}

static void stats_http_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct stats_http *h = container_of(t, struct stats_http, resume);
    ev_io_start(loop, &h->io);
}

struct stats_http *stats_http_open(struct ev_loop *loop, const struct net_addr *addr,
                                   struct stats_ctx *ctx, char *err, size_t errlen)
{
    struct stats_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char e[256];
    h->fd = net_listen(addr, 0, 64, e, sizeof(e));
    if (h->fd == -1) {
        snprintf(err, errlen, "stats_http: %s", e);
        free(h);
        return NULL;
    }
    h->loop = loop;
    h->ctx = ctx;
    ev_io_init(&h->io, stats_http_accept_cb, h->fd, EV_READ);
    ev_io_start(loop, &h->io);
    ev_init(&h->resume, stats_http_resume_cb);
    return h;
}

void stats_http_close(struct stats_http *h)
{
    if (h == NULL)
        return;
    while (!LIST_EMPTY(&h->clients))
        stats_http_client_free(LIST_FIRST(&h->clients));
    ev_io_stop(h->loop, &h->io);
    ev_timer_stop(h->loop, &h->resume);
    close(h->fd);
    free(h);
}
