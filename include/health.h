/* health.h — the health checker: runs every pool's active checks (tcp or
 * http) on the main thread's loop without blocking it, takes passive
 * results from workers, combines health with the admin state set from the
 * stats socket, and publishes each server's state (pool_set_server_state),
 * logging every change with its reason. */
#ifndef TCPLB_HEALTH_H
#define TCPLB_HEALTH_H

#include <ev.h>
#include <stddef.h>

#include "pool.h"

struct config;
struct server;
struct health;

enum server_admin {
    ADMIN_NONE = 0,     /* health decides up/down */
    ADMIN_DRAIN,        /* keeps its persistent clients, no new ones */
    ADMIN_MAINT,        /* out of service */
};

/* Starts checks for every server of <c>; the first round is spread over
 * each pool's interval. With <previous> (a reload), each server that was in
 * the previous config (same pool and server name) starts from its previous
 * health and admin state, published at once. Main thread. NULL with err on
 * ENOMEM. */
struct health *health_start(struct ev_loop *loop, struct config *c,
                            struct health *previous, char *err, size_t errlen);
/* Stops every check and frees the checker. NULL is a no-op. */
void health_stop(struct health *h);

/* Sets a server's admin state; its published state follows (maint, else
 * down if unhealthy, else drain, else up). Main thread. Repeat calls are
 * harmless. */
void health_set_admin(struct health *h, struct server *srv, enum server_admin admin,
                      const char *why);

/* `clear counters` zeroed the servers' counters: outage costs restart from
 * zero. Main thread. */
void health_counters_cleared(struct health *h);

/* A server added at run time (membership.c): its checks start now, and it
 * is down until the first one passes (up at once with health = none, then
 * ramping under slowstart); the change is an event with <why>. */
void health_server_added(struct health *h, struct server *srv, const char *why);
/* A server removed at run time: its checks stop. */
void health_server_removed(struct health *h, struct server *srv);

/* A live connection's connect to <srv> failed (ok = 0) or succeeded. Enough
 * consecutive failures (the pool's `fall`) mark the server down before its
 * next active check. Any worker thread; costs one atomic on failure and a
 * read on success. */
void health_passive_result(struct server *srv, int ok);

/* Outlier ejection's view of traffic: a failure of <kind> on <srv> (one
 * atomic; the checker is woken when the run reaches outlier_consecutive),
 * or a success that ends the run (a read, and a write only to end a run).
 * Any worker thread; nothing when the pool has no ejection. */
void health_outlier_failure(struct server *srv, enum outlier_kind kind);
void health_outlier_success(struct server *srv);

#endif
