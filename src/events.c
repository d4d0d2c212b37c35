/* events.c — the ring of recent server state changes (see events.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "events.h"

struct event {
    struct timespec when;
    char pool[72];
    char server[72];
    enum server_state old, now;
    char reason[256];
};

static struct event events_ring[EVENTS_MAX];
static size_t events_next;     /* slot of the next record */
static size_t events_total;    /* records ever made */

void events_record(const struct server *srv, enum server_state old,
                   enum server_state now, const char *reason)
{
    struct event *e = &events_ring[events_next];
    clock_gettime(CLOCK_REALTIME, &e->when);
    snprintf(e->pool, sizeof(e->pool), "%s", srv->pool->name);
    snprintf(e->server, sizeof(e->server), "%s", srv->name);
    e->old = old;
    e->now = now;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    events_next = (events_next + 1) % EVENTS_MAX;
    events_total++;
}

void events_show(struct buf *out, size_t n)
{
    size_t have = events_total < EVENTS_MAX ? events_total : EVENTS_MAX;
    if (n > have)
        n = have;
    for (size_t i = 0; i < n; i++) {
        const struct event *e = &events_ring[(events_next + EVENTS_MAX - n + i) % EVENTS_MAX];
        struct tm tm;
        char ts[32];
        gmtime_r(&e->when.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        buf_printf(out, "%s.%03ldZ %s/%s %s->%s %s\n", ts, e->when.tv_nsec / 1000000,
                   e->pool, e->server, server_state_str(e->old),
                   server_state_str(e->now), e->reason);
    }
}

void events_clear(void)
{
    events_next = 0;
    events_total = 0;
}
