/* events.c — the ring of recent server state changes (see events.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "events.h"
#include "stats_fields.h"

struct event {
    struct timespec when;
    char pool[72];
    char server[72];
    char old[16], now[16];      /* states, or "none" / "ok" / "failed" */
    char reason[256];
};

static struct event events_ring[EVENTS_MAX];
static size_t events_next;     /* slot of the next record */
static size_t events_total;    /* records ever made */

void events_note(const char *pool, const char *server, const char *old, const char *now,
                 const char *reason)
{
    struct event *e = &events_ring[events_next];
    clock_gettime(CLOCK_REALTIME, &e->when);
    snprintf(e->pool, sizeof(e->pool), "%s", pool);
    snprintf(e->server, sizeof(e->server), "%s", server);
    snprintf(e->old, sizeof(e->old), "%s", old);
    snprintf(e->now, sizeof(e->now), "%s", now);
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    events_next = (events_next + 1) % EVENTS_MAX;
    events_total++;
}

void events_record(const struct server *srv, enum server_state old,
                   enum server_state now, const char *reason)
{
    events_note(srv->pool->name, srv->name, server_state_str(old), server_state_str(now),
                reason);
}

static const struct event *events_nth(size_t n, size_t i);
static size_t events_have(size_t n);
static void events_ts(const struct event *e, char *ts, size_t len);

void events_show(struct buf *out, size_t n)
{
    n = events_have(n);
    for (size_t i = 0; i < n; i++) {
        const struct event *e = events_nth(n, i);
        char ts[40];
        events_ts(e, ts, sizeof(ts));
        buf_printf(out, "%s %s/%s %s->%s %s\n", ts, e->pool, e->server, e->old, e->now,
                   e->reason);
    }
}

/* The i-th of the last n events, oldest first. */
static const struct event *events_nth(size_t n, size_t i)
{
    return &events_ring[(events_next + EVENTS_MAX - n + i) % EVENTS_MAX];
}

static size_t events_have(size_t n)
{
    size_t have = events_total < EVENTS_MAX ? events_total : EVENTS_MAX;
    return n > have ? have : n;
}

static void events_ts(const struct event *e, char *ts, size_t len)
{
    struct tm tm;
    gmtime_r(&e->when.tv_sec, &tm);
    size_t k = strftime(ts, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, len - k, ".%03ldZ", e->when.tv_nsec / 1000000);
}

void events_write_json(struct buf *out, size_t n)
{
    n = events_have(n);
    buf_printf(out, "{\"events\":[");
    for (size_t i = 0; i < n; i++) {
        const struct event *e = events_nth(n, i);
        char ts[40];
        events_ts(e, ts, sizeof(ts));
        buf_printf(out, "%s{\"ts\":\"%s\",\"pool\":", i ? "," : "", ts);
        stats_json_string(out, e->pool);
        buf_printf(out, ",\"server\":");
        stats_json_string(out, e->server);
        buf_printf(out, ",\"from\":\"%s\",\"to\":\"%s\",\"reason\":", e->old, e->now);
        stats_json_string(out, e->reason);
        buf_append(out, "}", 1);
    }
    buf_printf(out, "]}\n");
}

void events_clear(void)
{
    events_next = 0;
    events_total = 0;
}
