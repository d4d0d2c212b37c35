/* health_probe.c — the active health check of one server (see
 * health_int.h): connect and, for health = http, send a GET and read the
 * status line, all within health_timeout, then the next check
 * health_interval after this one began. Its verdict goes to health.c's
 * rise/fall machine. A server that wants the PROXY header gets one with its
 * checks too (UNKNOWN / LOCAL: the check is the proxy's own). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health_int.h"
#include "log.h"
#include "util.h"

void health_probe_prepare(struct health_check *c)
{
    size_t hdr = proxy_proto_build((enum proxy_version)c->srv->send_proxy, NULL, NULL,
                                   (uint8_t *)c->request);
    c->proxy_len = hdr;
    if (c->pool->health == HEALTH_EXPECT) {
        /* the table bounds health_send to fit after the longest header */
        memcpy(c->request + hdr, c->pool->health_send_bytes, c->pool->health_send_len);
        c->request_len = hdr + c->pool->health_send_len;
        return;
    }
    int len = snprintf(c->request + hdr, sizeof(c->request) - hdr,
                       "GET %s HTTP/1.1\r\nHost: %s\r\n"
                       "User-Agent: tcplb-health/%s\r\n"
                       "Connection: close\r\n\r\n",
                       c->pool->health_path, c->srv->addr_text, TCPLB_VERSION);
    c->request_len = len > 0 && (size_t)len < sizeof(c->request) - hdr
                   ? hdr + (size_t)len : 0;
}

void health_probe_stop(struct health_check *c)
{
    struct ev_loop *loop = c->owner->loop;
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
}

/* ---- one check ------------------------------------------------------------ */

static void health_probe_end(struct health_check *c, int ok, const char *what)
{
    struct ev_loop *loop = c->owner->loop;
    health_probe_stop(c);
    c->phase = PHASE_IDLE;
    health_result(c, ok, what);

    ev_tstamp next = c->started + c->pool->health_interval - ev_now(loop);
    ev_timer_set(&c->timer, next > 0.001 ? next : 0.001, 0);
    ev_timer_start(loop, &c->timer);
}

static void health_probe_want(struct health_check *c, int events)
{
    struct ev_loop *loop = c->owner->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(loop, &c->io);
}

/* health = expect: the first bytes answered against health_expect. */
static void health_probe_expect(struct health_check *c)
{
    const struct pool *p = c->pool;
    char seen[80], what[160];
    switch (check_expect_match((const unsigned char *)c->answer, c->answer_len,
                               p->health_expect_bytes, p->health_expect_len)) {
    case CHECK_EXPECT_MORE:
        return;
    case CHECK_EXPECT_MATCH:
        health_probe_end(c, 1, "expected answer");
        return;
    case CHECK_EXPECT_MISMATCH:
        break;
    }
    /* the first line, or its first 48 bytes, is what an operator needs */
    size_t n = 0, shown = c->answer_len < 48 ? c->answer_len : 48;
    while (n < shown && c->answer[n] != '\r' && c->answer[n] != '\n')
        n++;
    check_printable((const unsigned char *)c->answer, n, seen, sizeof(seen));
    snprintf(what, sizeof(what), "unexpected answer \"%s%s\"", seen,
             n == shown && c->answer_len > n ? "..." : "");
    health_probe_end(c, 0, what);
}

void health_probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_check *c = container_of(w, struct health_check, io);
    char what[160];

    if (c->phase == PHASE_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            snprintf(what, sizeof(what), "connect: %s", strerror(err));
            health_probe_end(c, 0, what);
            return;
        }
        if (c->pool->health == HEALTH_TCP && c->proxy_len == 0) {
            health_probe_end(c, 1, "connect ok");
            return;
        }
        c->phase = PHASE_SENDING;
        if (c->request_len == 0) {      /* expect, nothing to send: a banner */
            c->phase = PHASE_READING;
            health_probe_want(c, EV_READ);
            return;
        }
    }
    if (c->phase == PHASE_SENDING) {
        ssize_t n = send(c->fd, c->request + c->request_off,
                         c->request_len - c->request_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            snprintf(what, sizeof(what), "send: %s", strerror(errno));
            health_probe_end(c, 0, what);
            return;
        }
        c->request_off += (size_t)n;
        size_t want = c->pool->health == HEALTH_TCP ? c->proxy_len : c->request_len;
        if (c->request_off < want)
            return;
        if (c->pool->health == HEALTH_TCP) {
            health_probe_end(c, 1, "connect ok");
            return;
        }
        c->phase = PHASE_READING;
        health_probe_want(c, EV_READ);
        return;
    }
    /* PHASE_READING */
    ssize_t n = read(c->fd, c->answer + c->answer_len, sizeof(c->answer) - c->answer_len);
    if (n == -1) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        snprintf(what, sizeof(what), "read: %s", strerror(errno));
        health_probe_end(c, 0, what);
        return;
    }
    if (n == 0) {
        health_probe_end(c, 0, c->pool->health == HEALTH_EXPECT
                                   ? "closed before the expected answer"
                                   : "closed before a status line");
        return;
    }
    c->answer_len += (size_t)n;
    if (c->pool->health == HEALTH_EXPECT) {
        health_probe_expect(c);
        return;
    }
    int status = 0;
    switch (check_http_parse(c->answer, c->answer_len, &status)) {
    case CHECK_HTTP_MORE:
        if (c->answer_len == sizeof(c->answer))
            health_probe_end(c, 0, "status line too long");
        return;
    case CHECK_HTTP_BAD:
        health_probe_end(c, 0, "not an HTTP answer");
        return;
    case CHECK_HTTP_DONE:
        snprintf(what, sizeof(what), "HTTP status %d", status);
        health_probe_end(c, check_http_status_ok(status), what);
        return;
    }
}

void health_probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_check *c = container_of(w, struct health_check, timer);
    if (c->phase == PHASE_IDLE) {
        health_probe_begin(c);
        return;
    }
    char what[96];
    snprintf(what, sizeof(what), "no answer within %.0fms",
             c->pool->health_timeout * 1000);
    health_probe_end(c, 0, what);
}

void health_probe_begin(struct health_check *c)
{
    struct ev_loop *loop = c->owner->loop;
    char what[160];
    c->started = ev_now(loop);
    c->answer_len = 0;
    c->request_off = 0;
    int done = 0;
    /* check_port=N: the same host, another port (an admin or status
     * port); source=IP: from the address the traffic comes from */
    struct net_addr to = c->srv->addr;
    if (c->srv->check_port != 0)
        net_addr_set_port(&to, c->srv->check_port);
    c->fd = net_connect_from(&to, c->srv->has_source ? &c->srv->source : NULL, &done);
    if (c->fd == -1 && net_error_is_local(errno)) {
        /* our own shortage (descriptors, ports, memory), not the server's:
         * no verdict this round */
        log_msg("health check of %s/%s skipped: %s", c->pool->name, c->srv->name,
                strerror(errno));
        c->phase = PHASE_IDLE;
        ev_timer_set(&c->timer, c->pool->health_interval, 0);
        ev_timer_start(loop, &c->timer);
        return;
    }
    if (c->fd == -1) {
        snprintf(what, sizeof(what), "connect: %s", strerror(errno));
        c->phase = PHASE_CONNECTING;   /* so that end() re-arms as usual */
        health_probe_end(c, 0, what);
        return;
    }
    c->phase = PHASE_CONNECTING;
    ev_timer_set(&c->timer, c->pool->health_timeout, 0);
    ev_timer_start(loop, &c->timer);
    health_probe_want(c, EV_WRITE);
}

