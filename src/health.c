/* health.c — the health checker (see health.h). One check per server at a
 * time: connect (and for http, send a GET and read the status line) within
 * health_timeout, then the next one health_interval after this one began.
 * Results go through check.c's rise/fall machine; a change of state is
 * published to the workers at once and logged with its reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "events.h"
#include "health.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "proxy_proto.h"
#include "util.h"

enum health_phase { PHASE_IDLE, PHASE_CONNECTING, PHASE_SENDING, PHASE_READING };

struct health_check {
    struct health *owner;
    struct server *srv;
    struct pool *pool;
    struct check_state st;
    enum server_admin admin;
    enum health_phase phase;
    ev_timer timer;           /* next check while idle, timeout otherwise */
    ev_io io;
    int fd;                   /* owned, -1 when idle */
    ev_tstamp started;
    char request[PROXY_HEADER_MAX + 320];
    size_t request_len, request_off;
    size_t proxy_len;         /* PROXY header at the start of request */
    char answer[CHECK_HTTP_LINE_MAX];
    size_t answer_len;
    struct server_totals at_up;   /* counters when it last went up (or start) */
    ev_tstamp left_up;            /* when it last stopped being up, 0 = is up */
};

struct health {
    struct ev_loop *loop;
    struct config *config;          /* one reference */
    struct health_check *checks;    /* owned: one per server of every pool */
    size_t nchecks;
};

/* Workers wake the checker through this watcher, which lives as long as
 * the process: a reload replaces the checker, never the watcher, so a worker
 * can never signal a freed one. */
static ev_async health_passive;
static int health_passive_started;
static struct health *health_current;   /* main thread only */

static void health_check_begin(struct health_check *c);

/* ---- state --------------------------------------------------------------- */

static enum server_state health_effective(const struct health_check *c)
{
    if (c->admin == ADMIN_MAINT)
        return SERVER_MAINT;
    if (!c->st.up)
        return SERVER_DOWN;
    if (c->admin == ADMIN_DRAIN)
        return SERVER_DRAIN;
    return SERVER_UP;
}

/* What failing connects to this server cost clients since it last went up:
 * attempts that failed, and of those how many were hidden by a retry on
 * another server and how many left the client with no server. */
static void health_cost(struct health_check *c, char *out, size_t len)
{
    struct server_totals t;
    counters_server_sum(c->srv->counters, c->owner->config->global.workers, &t);
    snprintf(out, len, "failed=%llu retried=%llu lost=%llu",
             (unsigned long long)(t.failed - c->at_up.failed),
             (unsigned long long)(t.retried - c->at_up.retried),
             (unsigned long long)(t.lost - c->at_up.lost));
}

static void health_publish(struct health_check *c, const char *reason)
{
    enum server_state old = server_state(c->srv);
    enum server_state now = health_effective(c);
    if (old == now)
        return;
    pool_set_server_state(c->srv, now);
    log_msg("server %s/%s is %s: %s", c->pool->name, c->srv->name,
            server_state_str(now), reason);

    char cost[128], line[400];
    health_cost(c, cost, sizeof(cost));
    ev_tstamp t = ev_now(c->owner->loop);
    if (now == SERVER_UP && c->left_up > 0)
        snprintf(line, sizeof(line), "%s; after %.1fs; cost: %s", reason,
                 t - c->left_up, cost);
    else
        snprintf(line, sizeof(line), "%s; cost: %s", reason, cost);
    events_record(c->srv, old, now, line);
    if (now == SERVER_UP) {
        counters_server_sum(c->srv->counters, c->owner->config->global.workers,
                            &c->at_up);
        c->left_up = 0;
    } else if (old == SERVER_UP) {
        c->left_up = t;
    }
}

void health_counters_cleared(struct health *h)
{
    for (size_t i = 0; i < h->nchecks; i++)
        memset(&h->checks[i].at_up, 0, sizeof(h->checks[i].at_up));
}

static void health_result(struct health_check *c, int ok, const char *what)
{
    int fresh = c->st.fresh;
    enum check_change ch = check_state_result(&c->st, ok, c->pool->rise, c->pool->fall);
    if (ch == CHECK_SAME)
        return;
    /* a new state starts a new run of traffic failures */
    __atomic_store_n(&c->srv->passive_failures, 0, __ATOMIC_RELAXED);
    char reason[200];
    if (ch == CHECK_WENT_UP)
        snprintf(reason, sizeof(reason), "%s, %u/%u", what, c->st.successes,
                 c->pool->rise);
    else if (fresh)
        snprintf(reason, sizeof(reason), "%s, first check", what);
    else
        snprintf(reason, sizeof(reason), "%s, %u/%u", what, c->st.failures,
                 c->pool->fall);
    health_publish(c, reason);
}

/* ---- one check ------------------------------------------------------------ */

static void health_check_end(struct health_check *c, int ok, const char *what)
{
    struct ev_loop *loop = c->owner->loop;
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
    c->phase = PHASE_IDLE;
    health_result(c, ok, what);

    ev_tstamp next = c->started + c->pool->health_interval - ev_now(loop);
    ev_timer_set(&c->timer, next > 0.001 ? next : 0.001, 0);
    ev_timer_start(loop, &c->timer);
}

static void health_io_want(struct health_check *c, int events)
{
    struct ev_loop *loop = c->owner->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(loop, &c->io);
}

static void health_io_cb(struct ev_loop *loop, ev_io *w, int revents)
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
            health_check_end(c, 0, what);
            return;
        }
        if (c->pool->health == HEALTH_TCP && c->proxy_len == 0) {
            health_check_end(c, 1, "connect ok");
            return;
        }
        c->phase = PHASE_SENDING;
    }
    if (c->phase == PHASE_SENDING) {
        ssize_t n = send(c->fd, c->request + c->request_off,
                         c->request_len - c->request_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            snprintf(what, sizeof(what), "send: %s", strerror(errno));
            health_check_end(c, 0, what);
            return;
        }
        c->request_off += (size_t)n;
        size_t want = c->pool->health == HEALTH_TCP ? c->proxy_len : c->request_len;
        if (c->request_off < want)
            return;
        if (c->pool->health == HEALTH_TCP) {
            health_check_end(c, 1, "connect ok");
            return;
        }
        c->phase = PHASE_READING;
        health_io_want(c, EV_READ);
        return;
    }
    /* PHASE_READING */
    ssize_t n = read(c->fd, c->answer + c->answer_len, sizeof(c->answer) - c->answer_len);
    if (n == -1) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        snprintf(what, sizeof(what), "read: %s", strerror(errno));
        health_check_end(c, 0, what);
        return;
    }
    if (n == 0) {
        health_check_end(c, 0, "closed before a status line");
        return;
    }
    c->answer_len += (size_t)n;
    int status = 0;
    switch (check_http_parse(c->answer, c->answer_len, &status)) {
    case CHECK_HTTP_MORE:
        if (c->answer_len == sizeof(c->answer))
            health_check_end(c, 0, "status line too long");
        return;
    case CHECK_HTTP_BAD:
        health_check_end(c, 0, "not an HTTP answer");
        return;
    case CHECK_HTTP_DONE:
        snprintf(what, sizeof(what), "HTTP status %d", status);
        health_check_end(c, check_http_status_ok(status), what);
        return;
    }
}

static void health_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_check *c = container_of(w, struct health_check, timer);
    if (c->phase == PHASE_IDLE) {
        health_check_begin(c);
        return;
    }
    char what[96];
    snprintf(what, sizeof(what), "no answer within %.0fms",
             c->pool->health_timeout * 1000);
    health_check_end(c, 0, what);
}

static void health_check_begin(struct health_check *c)
{
    struct ev_loop *loop = c->owner->loop;
    char what[160];
    c->started = ev_now(loop);
    c->answer_len = 0;
    c->request_off = 0;
    int done = 0;
    c->fd = net_connect(&c->srv->addr, &done);
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
        health_check_end(c, 0, what);
        return;
    }
    c->phase = PHASE_CONNECTING;
    ev_timer_set(&c->timer, c->pool->health_timeout, 0);
    ev_timer_start(loop, &c->timer);
    health_io_want(c, EV_WRITE);
}

/* ---- passive checks ------------------------------------------------------- */

void health_passive_result(struct server *srv, int ok)
{
    if (ok) {
        if (__atomic_load_n(&srv->passive_failures, __ATOMIC_RELAXED) != 0)
            __atomic_store_n(&srv->passive_failures, 0, __ATOMIC_RELAXED);
        return;
    }
    if (srv->pool->health == HEALTH_NONE)
        return;   /* nothing would ever bring it back up */
    unsigned n = __atomic_add_fetch(&srv->passive_failures, 1, __ATOMIC_RELAXED);
    if (n >= srv->pool->fall && __atomic_load_n(&health_passive_started, __ATOMIC_ACQUIRE))
        ev_async_send(ev_default_loop(0), &health_passive);
}

static void health_passive_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    struct health *h = health_current;
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nchecks; i++) {
        struct health_check *c = &h->checks[i];
        unsigned n = __atomic_load_n(&c->srv->passive_failures, __ATOMIC_RELAXED);
        if (n < c->pool->fall)
            continue;
        __atomic_store_n(&c->srv->passive_failures, 0, __ATOMIC_RELAXED);
        if (check_state_passive_down(&c->st, c->pool->fall) == CHECK_SAME)
            continue;         /* down already: this run counts for nothing */
        char reason[128];
        snprintf(reason, sizeof(reason), "%u consecutive connects by traffic failed, "
                 "%u/%u", n, c->pool->fall, c->pool->fall);
        health_publish(c, reason);
    }
}

/* ---- admin ------------------------------------------------------------------ */

void health_set_admin(struct health *h, struct server *srv, enum server_admin admin,
                      const char *why)
{
    for (size_t i = 0; i < h->nchecks; i++) {
        struct health_check *c = &h->checks[i];
        if (c->srv != srv)
            continue;
        c->admin = admin;
        health_publish(c, why);
        return;
    }
}

/* ---- start / stop ------------------------------------------------------------ */

/* Reload: starts a server from its state in the previous checker. */
static void health_inherit(struct health_check *c, struct health *previous)
{
    for (size_t i = 0; i < previous->nchecks; i++) {
        struct health_check *o = &previous->checks[i];
        if (strcmp(o->pool->name, c->pool->name) != 0 ||
            strcmp(o->srv->name, c->srv->name) != 0)
            continue;
        c->st = o->st;
        c->admin = o->admin;
        c->at_up = o->at_up;
        c->left_up = o->left_up;
        /* it starts where it was; what the new settings change from there
         * is a state change like any other, with its event */
        pool_set_server_state(c->srv, server_state(o->srv));
        if (c->pool->health == HEALTH_NONE && !c->st.up) {
            check_state_init(&c->st);      /* no checks any more: health says up */
            health_publish(c, "reload: health = none");
        } else {
            health_publish(c, "reload");
        }
        return;
    }
}

struct health *health_start(struct ev_loop *loop, struct config *cfg,
                            struct health *previous, char *err, size_t errlen)
{
    struct health *h = calloc(1, sizeof(*h));
    size_t n = 0;
    for (size_t p = 0; p < cfg->npools; p++)
        n += cfg->pools[p].nservers;
    if (h == NULL || (h->checks = calloc(n ? n : 1, sizeof(*h->checks))) == NULL) {
        free(h);
        snprintf(err, errlen, "out of memory for health checks");
        return NULL;
    }
    h->loop = loop;
    h->config = config_ref(cfg);
    h->nchecks = n;
    if (!health_passive_started) {
        /* workers send to ev_default_loop(0): the checker must run there */
        ev_async_init(&health_passive, health_passive_cb);
        ev_async_start(loop, &health_passive);
        __atomic_store_n(&health_passive_started, 1, __ATOMIC_RELEASE);
    }

    size_t k = 0;
    for (size_t p = 0; p < cfg->npools; p++) {
        struct pool *pool = &cfg->pools[p];
        for (uint32_t i = 0; i < pool->nservers; i++, k++) {
            struct health_check *c = &h->checks[k];
            c->owner = h;
            c->srv = &pool->servers[i];
            c->pool = pool;
            c->fd = -1;
            check_state_init(&c->st);
            ev_init(&c->io, health_io_cb);
            ev_init(&c->timer, health_timer_cb);
            /* A server that wants the PROXY header gets one with its checks
             * too (UNKNOWN / LOCAL: the check is the proxy's own). */
            size_t hdr = proxy_proto_build((enum proxy_version)c->srv->send_proxy, NULL, NULL,
                                     (uint8_t *)c->request);
            int len = snprintf(c->request + hdr, sizeof(c->request) - hdr,
                               "GET %s HTTP/1.1\r\nHost: %s\r\n"
                               "User-Agent: tcplb-health/%s\r\n"
                               "Connection: close\r\n\r\n",
                               pool->health_path, c->srv->addr_text, TCPLB_VERSION);
            c->request_len = len > 0 && (size_t)len < sizeof(c->request) - hdr
                           ? hdr + (size_t)len : 0;
            c->proxy_len = hdr;
            if (previous != NULL)
                health_inherit(c, previous);
            if (pool->health == HEALTH_NONE)
                continue;
            /* First round spread over the interval: no thundering herd. */
            double delay = pool->health_interval * i / (pool->nservers ? pool->nservers : 1);
            ev_timer_set(&c->timer, delay > 0 ? delay : 0.001, 0);
            ev_timer_start(loop, &c->timer);
        }
    }
    health_current = h;
    return h;
}

void health_stop(struct health *h)
{
    if (h == NULL)
        return;
    if (health_current == h)
        health_current = NULL;
    for (size_t i = 0; i < h->nchecks; i++) {
        struct health_check *c = &h->checks[i];
        ev_io_stop(h->loop, &c->io);
        ev_timer_stop(h->loop, &c->timer);
        if (c->fd != -1)
            close(c->fd);
    }
    config_unref(h->config);
    free(h->checks);
    free(h);
}
