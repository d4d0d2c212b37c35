/* stats_http.h — the `stats_http` listener on the main loop: GET /metrics
 * (Prometheus text), /stats.json (the `show stat json` object) and / (the
 * live page). One request per connection, answered with Connection: close. */
#ifndef TCPLB_STATS_HTTP_H
#define TCPLB_STATS_HTTP_H

#include <ev.h>
#include <stddef.h>

struct net_addr;
struct stats_ctx;
struct stats_http;

struct stats_http *stats_http_open(struct ev_loop *loop, const struct net_addr *addr,
                                   struct stats_ctx *ctx, char *err, size_t errlen);
void stats_http_close(struct stats_http *h);   /* NULL is a no-op */

#endif
