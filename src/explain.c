/* explain.c — the diagnosis behind `explain POOL` (see explain.h). It reads
 * each server's window of the last minute (merged over the workers), its
 * state and weight in force, and the pool's client table, then walks the
 * kinds in order: what the states and weights explain by design, what a
 * server does wrong (fails, is slow), what one client does, and only then
 * an imbalance nothing above explains. Every finding carries its numbers,
 * so an operator can check it against show stat. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client_table.h"
#include "explain.h"
#include "pool.h"
#include "recent.h"
#include "scheduler.h"
#include "stats_fields.h"
#include "util.h"

static const char *const explain_kinds[EXPLAIN_KINDS] = {
    [EXPLAIN_DOWN] = "down",
    [EXPLAIN_DRAIN] = "drain",
    [EXPLAIN_WEIGHTS] = "weights",
    [EXPLAIN_FAILING] = "failing_server",
    [EXPLAIN_SLOW] = "slow_server",
    [EXPLAIN_HOT_CLIENT] = "hot_client",
    [EXPLAIN_UNEVEN] = "uneven",
    [EXPLAIN_BALANCED] = "balanced",
};

const char *explain_kind_str(enum explain_kind k)
{
    return k < EXPLAIN_KINDS ? explain_kinds[k] : "?";
}

/* One server as the diagnosis sees it. */
struct explain_server {
    const struct server *srv;
    enum server_state state;
    unsigned weight;
    int up;                         /* up with a weight: takes new connections */
    int failing;                    /* a failing_server finding names it */
    int listed;                     /* not removed (del server, discovery) */
    struct recent_sum r;
    double p50;                     /* seconds, NaN without enough samples */
    int explained;                  /* a finding above names it */
    int slow_starved;               /* slow, but the scheduler already gives it less */
};

static struct explain_finding *explain_add(struct explain *e, enum explain_kind kind,
                                           const char *subject)
{
    if (e->n == EXPLAIN_MAX)
        return NULL;
    struct explain_finding *f = &e->f[e->n++];
    f->kind = kind;
    snprintf(f->subject, sizeof(f->subject), "%s", subject);
    f->detail[0] = '\0';
    return f;
}

static uint64_t explain_count(const struct explain_server *s, enum recent_count c)
{
    return s->r.counts[c];
}

static int explain_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* States that explain a share by design. */
static void explain_states(struct explain_server *ss, uint32_t n, struct explain *e)
{
    for (uint32_t i = 0; i < n; i++) {
        struct explain_finding *f;
        if (!ss[i].listed)
            continue;
        switch (ss[i].state) {
        case SERVER_DOWN:
        case SERVER_MAINT:
            if ((f = explain_add(e, EXPLAIN_DOWN, ss[i].srv->name)) != NULL)
                snprintf(f->detail, sizeof(f->detail), "state %s: takes no new "
                         "connections (show events tells why)",
                         server_state_str(ss[i].state));
            ss[i].explained = 1;
            break;
        case SERVER_EJECTED:
            if ((f = explain_add(e, EXPLAIN_DOWN, ss[i].srv->name)) != NULL)
                snprintf(f->detail, sizeof(f->detail), "state ejected: failed too often "
                         "in a row, out of rotation for a while (show events says what "
                         "was counted)");
            ss[i].explained = 1;
            break;
        case SERVER_DRAIN:
            if ((f = explain_add(e, EXPLAIN_DRAIN, ss[i].srv->name)) != NULL)
                snprintf(f->detail, sizeof(f->detail), "state drain: keeps its "
                         "persistent clients, takes no new ones");
            ss[i].explained = 1;
            break;
        case SERVER_UP:
            break;
        }
    }
}

static void explain_weights(const struct pool *pool, const struct explain_server *ss,
                            uint32_t n, struct explain *e)
{
    unsigned first = 0;
    int differ = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i].up)
            continue;
        if (first == 0)
            first = ss[i].weight;
        else if (ss[i].weight != first)
            differ = 1;
    }
    if (!differ)
        return;
    struct explain_finding *f = explain_add(e, EXPLAIN_WEIGHTS, pool->name);
    if (f == NULL)
        return;
    size_t len = 0;
    for (uint32_t i = 0; i < n && len < sizeof(f->detail); i++)
        if (ss[i].up)
            len += (size_t)snprintf(f->detail + len, sizeof(f->detail) - len, "%s=%g ",
                                    ss[i].srv->name,
                                    (double)ss[i].weight / SERVER_WEIGHT_SCALE);
    if (len < sizeof(f->detail))
        snprintf(f->detail + len, sizeof(f->detail) - len,
                 "in force: shares follow the weights by design");
}

static void explain_failing(struct explain_server *ss, uint32_t n, struct explain *e)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i].listed)
            continue;
        uint64_t failed = explain_count(&ss[i], RECENT_FAILED);
        uint64_t tries = failed + explain_count(&ss[i], RECENT_CONNS);
        uint64_t bad = explain_count(&ss[i], RECENT_5XX);
        uint64_t answers = explain_count(&ss[i], RECENT_RESPONSES);
        struct explain_finding *f = NULL;
        if (tries >= EXPLAIN_MIN_EVENTS && failed >= EXPLAIN_FAIL_RATIO * tries) {
            if ((f = explain_add(e, EXPLAIN_FAILING, ss[i].srv->name)) != NULL)
                snprintf(f->detail, sizeof(f->detail), "%llu of its %llu connects "
                         "failed (%.1f %%) in the last minute",
                         (unsigned long long)failed, (unsigned long long)tries,
                         100.0 * failed / tries);
        } else if (answers >= EXPLAIN_MIN_EVENTS && bad >= EXPLAIN_FAIL_RATIO * answers) {
            if ((f = explain_add(e, EXPLAIN_FAILING, ss[i].srv->name)) != NULL)
                snprintf(f->detail, sizeof(f->detail), "%llu of its %llu responses "
                         "were 5xx (%.1f %%) in the last minute",
                         (unsigned long long)bad, (unsigned long long)answers,
                         100.0 * bad / answers);
        } else {
            continue;
        }
        ss[i].explained = 1;
        ss[i].failing = 1;
    }
}

/* Requests (or connections) per unit of weight. */
static double explain_per_weight(const struct explain_server *s, enum recent_count what)
{
    return s->weight ? (double)explain_count(s, what) / s->weight : 0;
}

/* 1 when the scheduler gives <i> at least three quarters of what the other
 * up servers get on average per unit of weight, in connections or in
 * requests: then its share is not what makes it slow. Keep-alive clients
 * send a slow server fewer requests over the same connections, so the
 * connections count too. */
static int explain_not_starved(const struct explain_server *ss, uint32_t n, uint32_t i)
{
    static const enum recent_count what[] = { RECENT_REQUESTS, RECENT_CONNS };
    for (size_t w = 0; w < ARRAY_LEN(what); w++) {
        double others = 0;
        uint32_t nothers = 0;
        for (uint32_t j = 0; j < n; j++)
            if (j != i && ss[j].up) {
                others += explain_per_weight(&ss[j], what[w]);
                nothers++;
            }
        if (nothers == 0 || explain_per_weight(&ss[i], what[w]) >= 0.75 * others / nothers)
            return 1;
    }
    return 0;
}

static void explain_slow(struct explain_server *ss, uint32_t n, struct explain *e)
{
    double p50s[n ? n : 1];
    uint32_t k = 0;
    uint64_t requests = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i].up)
            continue;
        requests += explain_count(&ss[i], RECENT_REQUESTS);
        if (!isnan(ss[i].p50))
            p50s[k++] = ss[i].p50;
    }
    if (k < 2)
        return;     /* no server to compare with */
    qsort(p50s, k, sizeof(*p50s), explain_cmp_double);
    double median = p50s[(k - 1) / 2];    /* the lower one when k is even */
    if (!(median > 0))
        return;
    for (uint32_t i = 0; i < n; i++) {
        struct explain_server *s = &ss[i];
        if (!s->up || isnan(s->p50) || s->p50 < EXPLAIN_SLOW_RATIO * median ||
            s->p50 - median < EXPLAIN_SLOW_GAP)
            continue;
        if (!explain_not_starved(ss, n, i)) {
            s->slow_starved = 1;      /* the scheduler avoids it: see uneven */
            continue;
        }
        struct explain_finding *f = explain_add(e, EXPLAIN_SLOW, s->srv->name);
        if (f == NULL)
            return;
        uint64_t mine = explain_count(s, RECENT_REQUESTS);
        uint64_t conns = 0;
        for (uint32_t j = 0; j < n; j++)
            if (ss[j].up)
                conns += explain_count(&ss[j], RECENT_CONNS);
        uint64_t my_conns = explain_count(s, RECENT_CONNS);
        snprintf(f->detail, sizeof(f->detail), "rt p50 %.1f ms, %.1fx the pool's "
                 "median server (%.1f ms), with %.1f %% of the pool's requests (%llu of "
                 "%llu) and %.1f %% of its connections in the last minute: the server "
                 "is slow, not the balancer", s->p50 * 1000, s->p50 / median,
                 median * 1000, requests ? 100.0 * mine / requests : 0.0,
                 (unsigned long long)mine, (unsigned long long)requests,
                 conns ? 100.0 * my_conns / conns : 0.0);
        s->explained = 1;
    }
}

/* A server's share of <what> among the up servers, over the mean share. */
static double explain_share_ratio(const struct explain_server *ss, uint32_t n,
                                  uint32_t i, enum recent_count what)
{
    uint64_t total = 0;
    uint32_t up = 0;
    for (uint32_t j = 0; j < n; j++)
        if (ss[j].up) {
            total += explain_count(&ss[j], what);
            up++;
        }
    if (total == 0 || up == 0)
        return 0;
    return (double)explain_count(&ss[i], what) * up / (double)total;
}

static void explain_hot_client(struct pool *pool, struct explain_server *ss, uint32_t n,
                               double now, struct explain *e)
{
    int pinned = pool->persist == PERSIST_SOURCE ||
                 (pool->sched->flags & SCHED_HASHES_CLIENT);
    if (!pinned || pool->clients == NULL)
        return;
    uint64_t conns = 0;
    for (uint32_t i = 0; i < n; i++)
        conns += explain_count(&ss[i], RECENT_CONNS);
    struct client_stat top;
    if (conns < EXPLAIN_MIN_EVENTS ||
        client_table_top_recent(pool->clients, &top, 1, now) == 0 ||
        top.recent < EXPLAIN_HOT_SHARE * conns || top.server >= n)
        return;
    uint32_t i = top.server;
    double ratio = explain_share_ratio(ss, n, i, RECENT_CONNS);
    double by_requests = explain_share_ratio(ss, n, i, RECENT_REQUESTS);
    if (by_requests > ratio)
        ratio = by_requests;
    if (!ss[i].up || ratio < EXPLAIN_UNEVEN_RATIO)
        return;
    char ip[64], subject[96];
    client_key_str(&top.key, ip, sizeof(ip));
    snprintf(subject, sizeof(subject), "%s %s", ip, ss[i].srv->name);
    struct explain_finding *f = explain_add(e, EXPLAIN_HOT_CLIENT, subject);
    if (f == NULL)
        return;
    snprintf(f->detail, sizeof(f->detail), "sent %.1f %% of the pool's %llu connections "
             "in the last minute (%llu); %s keeps it on %s, whose share is %.2fx the mean",
             100.0 * top.recent / conns, (unsigned long long)conns,
             (unsigned long long)top.recent,
             pool->persist == PERSIST_SOURCE ? "persist = source" : "scheduler = source",
             ss[i].srv->name, ratio);
    ss[i].explained = 1;
}

/* What an uneven share may owe to a slow server the scheduler steers
 * around (its share is lower, so it is no slow_server finding). */
static void explain_steered(const struct explain_server *ss, uint32_t n, char *out,
                            size_t len)
{
    snprintf(out, len, "with no cause found above");
    for (uint32_t i = 0; i < n; i++)
        if (ss[i].slow_starved) {
            snprintf(out, len, "while %s, rt p50 %.1f ms, gets less: the scheduler "
                     "steers around a slow server", ss[i].srv->name, ss[i].p50 * 1000);
            return;
        }
}

static void explain_uneven(struct explain_server *ss, uint32_t n, struct explain *e)
{
    char why[160];
    explain_steered(ss, n, why, sizeof(why));
    static const enum recent_count what[] = { RECENT_CONNS, RECENT_REQUESTS };
    static const char *const what_str[] = { "connections", "requests" };
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i].up || ss[i].explained)
            continue;
        for (size_t w = 0; w < ARRAY_LEN(what); w++) {
            /* among the up servers of its weight; a failing one takes
             * little because the others get its retries, which is named */
            uint64_t total = 0;
            uint32_t peers = 0;
            for (uint32_t j = 0; j < n; j++)
                if (ss[j].up && !ss[j].failing && ss[j].weight == ss[i].weight) {
                    total += explain_count(&ss[j], what[w]);
                    peers++;
                }
            if (peers < 2 || total < (uint64_t)EXPLAIN_MIN_EVENTS * peers)
                continue;
            uint64_t mine = explain_count(&ss[i], what[w]);
            double ratio = (double)mine * peers / (double)total;
            if (ratio < EXPLAIN_UNEVEN_RATIO)
                continue;
            struct explain_finding *f = explain_add(e, EXPLAIN_UNEVEN, ss[i].srv->name);
            if (f == NULL)
                return;
            snprintf(f->detail, sizeof(f->detail), "%.1f %% of the %s of the %u up "
                     "servers of weight %g (%llu of %llu, %.2fx the mean) in the last "
                     "minute, %s", 100.0 * mine / total, what_str[w], peers,
                     (double)ss[i].weight / SERVER_WEIGHT_SCALE, (unsigned long long)mine,
                     (unsigned long long)total, ratio, why);
            break;
        }
    }
}

static void explain_balanced(const struct pool *pool, const struct explain_server *ss,
                             uint32_t n, struct explain *e)
{
    struct explain_finding *f = explain_add(e, EXPLAIN_BALANCED, pool->name);
    if (f == NULL)
        return;
    uint32_t up = 0;
    uint64_t conns = 0, requests = 0;
    double worst = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i].up)
            continue;
        up++;
        conns += explain_count(&ss[i], RECENT_CONNS);
        requests += explain_count(&ss[i], RECENT_REQUESTS);
        double r = explain_share_ratio(ss, n, i, RECENT_CONNS);
        if (r > worst)
            worst = r;
    }
    snprintf(f->detail, sizeof(f->detail), "%u servers up; in the last minute %llu "
             "connections and %llu requests, the busiest at %.2fx the mean share",
             up, (unsigned long long)conns, (unsigned long long)requests, worst);
}

void explain_pool(struct pool *pool, unsigned nworkers, double now, struct explain *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t n = pool_nservers(pool);
    struct explain_server *ss = calloc(n ? n : 1, sizeof(*ss));
    if (ss == NULL) {
        struct explain_finding *f = explain_add(out, EXPLAIN_BALANCED, pool->name);
        if (f != NULL)
            snprintf(f->detail, sizeof(f->detail), "out of memory: no diagnosis");
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct server *s = &pool->servers[i];
        ss[i].srv = s;
        ss[i].listed = server_listed(s);
        ss[i].state = server_state(s);
        ss[i].weight = server_eweight(s);         /* in force, in 1/16ths */
        ss[i].up = server_available(s);
        for (unsigned w = 0; w < nworkers; w++)
            recent_merge(&s->counters[w].recent, now, &ss[i].r);
        ss[i].p50 = ss[i].r.rt_samples >= EXPLAIN_MIN_EVENTS
                        ? recent_rt_quantile(&ss[i].r, 0.5) : NAN;
    }
    explain_states(ss, n, out);
    explain_weights(pool, ss, n, out);
    explain_failing(ss, n, out);
    explain_slow(ss, n, out);
    explain_hot_client(pool, ss, n, now, out);
    explain_uneven(ss, n, out);
    if (out->n == 0)
        explain_balanced(pool, ss, n, out);
    free(ss);
}

/* The kinds found, each once, in order: "slow_server,uneven". */
static void explain_verdict(const struct explain *e, struct buf *out)
{
    int seen[EXPLAIN_KINDS] = { 0 };
    int first = 1;
    for (size_t i = 0; i < e->n; i++) {
        if (seen[e->f[i].kind]++)
            continue;
        buf_printf(out, "%s%s", first ? "" : ",", explain_kind_str(e->f[i].kind));
        first = 0;
    }
}

void explain_write_text(const struct explain *e, struct buf *out)
{
    for (size_t i = 0; i < e->n; i++)
        buf_printf(out, "finding: %s %s %s\n", explain_kind_str(e->f[i].kind),
                   e->f[i].subject, e->f[i].detail);
    buf_printf(out, "verdict: ");
    explain_verdict(e, out);
    buf_printf(out, "\n");
}

void explain_write_json(const struct explain *e, struct buf *out)
{
    buf_printf(out, "{\"findings\":[");
    for (size_t i = 0; i < e->n; i++) {
        buf_printf(out, "%s{\"kind\":\"%s\",\"subject\":", i ? "," : "",
                   explain_kind_str(e->f[i].kind));
        stats_json_string(out, e->f[i].subject);
        buf_printf(out, ",\"detail\":");
        stats_json_string(out, e->f[i].detail);
        buf_printf(out, "}");
    }
    buf_printf(out, "],\"verdict\":\"");
    explain_verdict(e, out);
    buf_printf(out, "\"}");
}
