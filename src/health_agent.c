/* health_agent.c — agent checks (see health_int.h): every agent_interval,
 * connect to the server's address on its agent port, read one line of at
 * most AGENT_LINE_MAX bytes within health_timeout and apply its words as
 * HAProxy's agent-check does: NN% sets the weight in force to NN % of the
 * weight, drain and maint set those states, up/ready clears what the agent
 * set, down marks the server down, `#` gives the reason shown in the
 * events. An agent that does not answer changes nothing; its outage is
 * logged once, and its return. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health_int.h"
#include "log.h"
#include "util.h"

static void health_agent_begin(struct health_check *c);

static void health_agent_close(struct health_check *c)
{
    struct health_agent *a = &c->agent;
    ev_io_stop(c->owner->loop, &a->io);
    ev_timer_stop(c->owner->loop, &a->timer);
    if (a->fd != -1) {
        close(a->fd);
        a->fd = -1;
    }
    a->phase = PHASE_IDLE;
}

/* The next check, agent_interval after the start of this one. */
static void health_agent_next(struct health_check *c, ev_tstamp began)
{
    struct ev_loop *loop = c->owner->loop;
    ev_tstamp next = began + c->pool->agent_interval - ev_now(loop);
    ev_timer_set(&c->agent.timer, next > 0.001 ? next : 0.001, 0);
    ev_timer_start(loop, &c->agent.timer);
}

static void health_agent_failed(struct health_check *c, const char *what)
{
    struct health_agent *a = &c->agent;
    if (!a->failing)
        log_msg("agent of %s/%s not answering (%s): nothing changes until it does",
                c->pool->name, c->srv->name, what);
    a->failing = 1;
}

/* What the agent said, applied. */
static void health_agent_apply(struct health_check *c, const struct agent_result *r)
{
    struct health_agent *a = &c->agent;
    if (a->failing)
        log_msg("agent of %s/%s answers again", c->pool->name, c->srv->name);
    a->failing = 0;
    if (r->weight_pct >= 0)
        a->pct = (unsigned)r->weight_pct;
    switch (r->state) {
    case AGENT_STATE_READY:
        a->admin = ADMIN_NONE;
        a->down = 0;
        break;
    case AGENT_STATE_DRAIN:
        a->admin = ADMIN_DRAIN;
        break;
    case AGENT_STATE_MAINT:
        a->admin = ADMIN_MAINT;
        break;
    case AGENT_STATE_DOWN:
        a->down = 1;
        break;
    case AGENT_STATE_NONE:
        break;
    }
    snprintf(a->reason, sizeof(a->reason), "%s", r->reason);
    char why[220];
    if (r->weight_pct >= 0)
        snprintf(why, sizeof(why), "agent says %s%s%d%%%s%s",
                 r->state != AGENT_STATE_NONE ? agent_state_str(r->state) : "",
                 r->state != AGENT_STATE_NONE ? " " : "", r->weight_pct,
                 r->reason[0] ? " # " : "", r->reason);
    else
        snprintf(why, sizeof(why), "agent says %s%s%s", agent_state_str(r->state),
                 r->reason[0] ? " # " : "", r->reason);
    health_publish(c, why);
}

static void health_agent_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_agent *a = container_of(w, struct health_agent, io);
    struct health_check *c = container_of(a, struct health_check, agent);
    ev_tstamp began = ev_now(c->owner->loop);
    char what[160];
    if (a->phase == PHASE_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            snprintf(what, sizeof(what), "connect: %s", strerror(err));
            goto failed;
        }
        a->phase = PHASE_READING;
        ev_io_stop(c->owner->loop, &a->io);
        ev_io_set(&a->io, a->fd, EV_READ);
        ev_io_start(c->owner->loop, &a->io);
        return;
    }
    ssize_t n = read(a->fd, a->line + a->len, sizeof(a->line) - a->len);
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n == -1) {
        snprintf(what, sizeof(what), "read: %s", strerror(errno));
        goto failed;
    }
    a->len += (size_t)n;
    struct agent_result r;
    switch (agent_parse(a->line, a->len, n == 0, &r)) {
    case AGENT_MORE:
        if (n == 0) {
            snprintf(what, sizeof(what), "closed before a line");
            goto failed;
        }
        return;
    case AGENT_BAD:
        snprintf(what, sizeof(what), "not an agent line (over %d bytes, or a NUL)",
                 AGENT_LINE_MAX - 1);
        goto failed;
    case AGENT_DONE:
        if (n == 0 && a->len == 0) {
            snprintf(what, sizeof(what), "closed without a word");
            goto failed;
        }
        health_agent_close(c);
        health_agent_apply(c, &r);
        health_agent_next(c, began);
        return;
    }
failed:
    health_agent_close(c);
    health_agent_failed(c, what);
    health_agent_next(c, began);
}

static void health_agent_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct health_agent *a = container_of(w, struct health_agent, timer);
    struct health_check *c = container_of(a, struct health_check, agent);
    if (a->phase == PHASE_IDLE) {
        health_agent_begin(c);
        return;
    }
    char what[64];
    snprintf(what, sizeof(what), "no line within %.0fms", c->pool->health_timeout * 1000);
    health_agent_close(c);
    health_agent_failed(c, what);
    health_agent_next(c, ev_now(c->owner->loop));
}

static void health_agent_begin(struct health_check *c)
{
    struct health_agent *a = &c->agent;
    struct ev_loop *loop = c->owner->loop;
    ev_tstamp began = ev_now(loop);
    a->len = 0;
    int done = 0;
    a->fd = net_connect_from(&a->addr, c->srv->has_source ? &c->srv->source : NULL, &done);
    if (a->fd == -1) {
        char what[160];
        snprintf(what, sizeof(what), "connect: %s", strerror(errno));
        if (!net_error_is_local(errno))
            health_agent_failed(c, what);
        health_agent_next(c, began);
        return;
    }
    a->phase = PHASE_CONNECTING;
    ev_io_set(&a->io, a->fd, done ? EV_READ : EV_WRITE);
    if (done)
        a->phase = PHASE_READING;
    ev_io_start(loop, &a->io);
    ev_timer_set(&a->timer, c->pool->health_timeout, 0);
    ev_timer_start(loop, &a->timer);
}

void health_agent_start(struct health_check *c, double delay)
{
    struct health_agent *a = &c->agent;
    unsigned port = c->srv->agent_port ? c->srv->agent_port : c->pool->agent_port;
    ev_init(&a->io, health_agent_io_cb);
    ev_init(&a->timer, health_agent_timer_cb);
    if (port == 0)
        return;
    a->addr = c->srv->addr;
    net_addr_set_port(&a->addr, port);
    c->has_agent = 1;
    ev_timer_set(&a->timer, delay > 0 ? delay : 0.001, 0);
    ev_timer_start(c->owner->loop, &a->timer);
}

void health_agent_stop(struct health_check *c)
{
    if (c->has_agent)
        health_agent_close(c);
}
