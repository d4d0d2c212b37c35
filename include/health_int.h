/* health_int.h — the inside of the health checker, shared by its files:
 * health.c (state, publishing, passive checks, outlier ejection, slow
 * start, admin, start and stop), health_probe.c (the active tcp/http
 * check's I/O) and health_agent.c (agent checks). Main thread only. */
#ifndef TCPLB_HEALTH_INT_H
#define TCPLB_HEALTH_INT_H

#include <ev.h>
#include <stddef.h>

#include "agent.h"
#include "check.h"
#include "counters.h"
#include "health.h"
#include "net.h"
#include "pool.h"
#include "proxy_proto.h"

enum health_phase { PHASE_IDLE, PHASE_CONNECTING, PHASE_SENDING, PHASE_READING };

/* The agent check of one server: its connection and what it said. */
struct health_agent {
    enum health_phase phase;
    ev_timer timer;           /* next check while idle, timeout otherwise */
    ev_io io;
    int fd;                   /* owned, -1 when idle */
    struct net_addr addr;     /* the server's address, the agent's port */
    char line[AGENT_LINE_MAX];
    size_t len;
    int failing;              /* not answering: logged once per outage */
    enum server_admin admin;  /* drain or maint the agent asked for */
    int down;                 /* the agent said down */
    unsigned pct;             /* its weight percentage, 100 */
    char reason[128];         /* of its last answer */
};

/* One server's checks. Owner: its struct health. */
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

    /* slow start */
    ev_timer ramp;            /* steps the weight up while ramping */
    ev_tstamp ramp_since;     /* 0: not ramping */

    /* outlier ejection */
    ev_timer eject;           /* ends the ejection */
    struct check_outlier outlier;

    struct health_agent agent;
    int has_agent;
};

struct health {
    struct ev_loop *loop;
    struct config *config;          /* one reference */
    struct health_check *checks;    /* owned: one per server of every pool */
    size_t nchecks;
    int starting;                   /* inside health_start: no slow start */
};

/* ---- health.c ---------------------------------------------------------- */

/* Recomputes the server's state (maint > down > ejected > drain > up) and
 * weight factors and publishes any change, logged and recorded as an event
 * with <reason>. */
void health_publish(struct health_check *c, const char *reason);
/* A check's verdict, through the rise/fall machine. */
void health_result(struct health_check *c, int ok, const char *what);

/* ---- health_probe.c ------------------------------------------------------ */

/* Fills the request an http check (and a PROXY header) sends. */
void health_probe_prepare(struct health_check *c);
void health_probe_begin(struct health_check *c);
void health_probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
void health_probe_io_cb(struct ev_loop *loop, ev_io *w, int revents);
void health_probe_stop(struct health_check *c);

/* ---- health_agent.c ------------------------------------------------------ */

/* Sets up the agent check when the server or its pool has an agent port,
 * its first check spread over the interval like the health checks. */
void health_agent_start(struct health_check *c, double delay);
void health_agent_stop(struct health_check *c);

#endif
