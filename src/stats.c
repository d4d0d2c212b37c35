/* stats.c — stats command parsing and answers: help, show info, show stat
 * (CSV) and show stat json. Counters are summed over the workers' slots at
 * read time. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "client_table.h"
#include "config.h"
#include "counters.h"
#include "events.h"
#include "explain.h"
#include "health.h"
#include "log.h"
#include "membership.h"
#include "scheduler.h"
#include "stats.h"
#include "stats_fields.h"
#include "util.h"
#include "worker.h"

#define STATS_MAX_WORDS 14      /* add server POOL/NAME ADDR and ten options */
#define STATS_CLIENTS_DEFAULT 20
#define STATS_CLIENTS_MAX 1000
#define STATS_EVENTS_DEFAULT 50

struct stats_command;
typedef void stats_handler(struct stats_ctx *ctx, const struct stats_command *cmd,
                           char **args, size_t nargs, struct buf *out);
/* Defines a handler; a handler need not use every argument. */
#define STATS_HANDLER(name)                                                      \
    static void name(struct stats_ctx *ctx __attribute__((unused)),              \
                     const struct stats_command *cmd __attribute__((unused)),    \
                     char **args __attribute__((unused)),                        \
                     size_t nargs __attribute__((unused)), struct buf *out)

/* One row per command: its fixed words, how many arguments follow, what
 * `help` says of it and the function that answers it. `help` is printed
 * from this table and the dispatcher reads nothing else, so the two cannot
 * disagree. */
struct stats_command {
    const char *words;          /* "show stat json" */
    const char *usage;          /* the arguments, for help and usage errors */
    unsigned min_args, max_args;
    const char *help;
    stats_handler *run;
    int arg;                    /* a handler shared by several rows tells them apart */
};

STATS_HANDLER(stats_show_info)
{
    struct config *c = ctx->config;
    unsigned nw = c->global.workers;
    uint64_t total = 0, rejected = 0;
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_totals t;
        counters_listener_sum(c->listeners[i].counters, nw, &t);
        total += t.total;
        rejected += t.rejected;
    }
    buf_printf(out,
               "version: %s\n"
               "pid: %ld\n"
               "uptime_s: %.0f\n"
               "workers: %u\n"
               "maxconn: %lu\n"
               "active: %lld\n"
               "total: %llu\n"
               "rejected: %llu\n"
               "listeners: %zu\n"
               "pools: %zu\n"
               "log_dropped: %llu\n",
               TCPLB_VERSION, (long)getpid(), ctx->now() - ctx->started, nw,
               c->global.maxconn, (long long)worker_conn_count(),
               (unsigned long long)total, (unsigned long long)rejected,
               c->nlisteners, c->npools, (unsigned long long)log_dropped());
    /* per worker, in worker order: how even the kernel's spread and the
     * hand-offs keep them */
    uint64_t handed = 0;
    buf_printf(out, "workers_active:");
    for (unsigned i = 0; ctx->workers != NULL && i < ctx->nworkers; i++) {
        buf_printf(out, " %lld",
                   (long long)__atomic_load_n(&ctx->workers[i].load, __ATOMIC_RELAXED));
        handed += __atomic_load_n(&ctx->workers[i].handed_out, __ATOMIC_RELAXED);
    }
    buf_printf(out, "\nworkers_total:");
    for (unsigned i = 0; i < nw; i++) {
        uint64_t t = 0;
        for (size_t l = 0; l < c->nlisteners; l++)
            t += counter_read(&c->listeners[l].counters[i].total);
        buf_printf(out, " %llu", (unsigned long long)t);
    }
    buf_printf(out, "\nhanded_off: %llu\n", (unsigned long long)handed);
    struct worker_splice_totals sp;
    worker_splice_sum(ctx->workers, ctx->nworkers, &sp);
    buf_printf(out,
               "splice: %s\n"
               "splice_pipes: %llu\n"
               "pipes_used: %llu\n"
               "pipes_idle: %llu\n"
               "spliced_bytes: %llu\n",
               c->global.splice ? "auto" : "off", (unsigned long long)sp.pipes_limit,
               (unsigned long long)sp.pipes_used, (unsigned long long)sp.pipes_idle,
               (unsigned long long)sp.bytes);
    struct worker_io_totals io;
    worker_io_sum(ctx->workers, ctx->nworkers, &io);
    buf_printf(out,
               "io: %s\n"
               "io_uring_workers: %u\n"
               "io_uring_submits: %llu\n"
               "io_uring_completions: %llu\n"
               "io_uring_buffers: %llu\n",
               c->global.io == CONFIG_IO_URING ? "io_uring" : "epoll", io.uring_workers,
               (unsigned long long)io.submits, (unsigned long long)io.completions,
               (unsigned long long)io.buffers);
    if (io.error != NULL)
        buf_printf(out, "io_uring_error: %s\n", io.error);
}

STATS_HANDLER(stats_show_csv)
{
    struct config *c = ctx->config;
    buf_printf(out, "# pool,");
    stats_fields_csv_header(stats_server_fields, stats_server_nfields, out);
    buf_append(out, "\n", 1);
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        uint32_t n = pool_nservers(pool);
        for (uint32_t i = 0; i < n; i++) {
            if (!server_listed(&pool->servers[i]))
                continue;
            struct stats_server_view v;
            stats_server_view_read(&v, &pool->servers[i], c->global.workers, ctx->now());
            buf_printf(out, "%s,", pool->name);
            stats_fields_csv_row(stats_server_fields, stats_server_nfields, &v, &v.t, out);
            buf_append(out, "\n", 1);
        }
    }
}

void stats_write_json(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    unsigned nw = c->global.workers;
    buf_printf(out, "{\"listeners\":[");
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct stats_listener_view v;
        stats_listener_view_read(&v, &c->listeners[i], nw);
        buf_printf(out, "%s{", i ? "," : "");
        stats_fields_json(stats_listener_fields, stats_listener_nfields, &v, &v.t, out);
        buf_append(out, "}", 1);
    }
    buf_printf(out, "],\"pools\":[");
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        buf_printf(out, "%s{\"name\":", p ? "," : "");
        stats_json_string(out, pool->name);
        buf_printf(out, ",\"scheduler\":\"%s\",\"servers\":[", pool->sched->name);
        uint32_t n = pool_nservers(pool);
        int first = 1;
        for (uint32_t i = 0; i < n; i++) {
            if (!server_listed(&pool->servers[i]))
                continue;
            struct stats_server_view v;
            stats_server_view_read(&v, &pool->servers[i], nw, ctx->now());
            buf_printf(out, "%s{", first ? "" : ",");
            first = 0;
            stats_fields_json(stats_server_fields, stats_server_nfields, &v, &v.t, out);
            buf_append(out, "}", 1);
        }
        buf_printf(out, "],\"mapping\":\"%016llx\"}", (unsigned long long)pool_mapping(pool));
    }
    buf_printf(out, "]}\n");
}

void stats_write_explain_json(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    buf_printf(out, "{\"pools\":[");
    for (size_t p = 0; p < c->npools; p++) {
        struct explain e;
        explain_pool(&c->pools[p], c->global.workers, ctx->now(), &e);
        buf_printf(out, "%s{\"name\":", p ? "," : "");
        stats_json_string(out, c->pools[p].name);
        buf_printf(out, ",\"explain\":");
        explain_write_json(&e, out);
        buf_append(out, "}", 1);
    }
    buf_printf(out, "]}\n");
}

#define STATS_PAGE_CLIENTS 10

void stats_write_clients_json(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    buf_printf(out, "{\"pools\":[");
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        struct client_stat top[STATS_PAGE_CLIENTS];
        size_t n = client_table_top_recent(pool->clients, top, STATS_PAGE_CLIENTS,
                                           ctx->now());
        buf_printf(out, "%s{\"name\":", p ? "," : "");
        stats_json_string(out, pool->name);
        buf_printf(out, ",\"clients\":[");
        for (size_t i = 0; i < n; i++) {
            char ip[64];
            client_key_str(&top[i].key, ip, sizeof(ip));
            buf_printf(out, "%s{\"ip\":\"%s\",\"recent\":%llu,\"total\":%llu,"
                       "\"active\":%lld,\"server\":", i ? "," : "", ip,
                       (unsigned long long)top[i].recent, (unsigned long long)top[i].total,
                       (long long)top[i].active);
            stats_json_string(out, top[i].server < pool_nservers(pool)
                                   ? pool->servers[top[i].server].name : "-");
            buf_append(out, "}", 1);
        }
        buf_printf(out, "]}");
    }
    buf_printf(out, "]}\n");
}

static int stats_parse_uint(const char *text, unsigned long min, unsigned long max,
                            unsigned long *n)
{
    if (!isdigit((unsigned char)text[0]) || strlen(text) > 9)
        return -1;
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *n = v;
    return 0;
}

static int stats_parse_count(const char *text, unsigned long *n)
{
    return stats_parse_uint(text, 1, STATS_CLIENTS_MAX, n);
}

/* show clients [POOL] [N]: busiest first. Over all pools the server column
 * reads POOL/SERVER, since one IP may use several pools. */
STATS_HANDLER(stats_show_clients)
{
    struct config *c = ctx->config;
    struct pool *only = NULL;
    unsigned long n = STATS_CLIENTS_DEFAULT;

    if (nargs >= 1) {
        only = config_find_pool(c, args[0]);
        if (only == NULL && (nargs == 2 || stats_parse_count(args[0], &n) == -1)) {
            buf_printf(out, "error: no pool '%.64s'\n", args[0]);
            return;
        }
    }
    if (nargs == 2 && stats_parse_count(args[1], &n) == -1) {
        buf_printf(out, "error: N must be a whole number in 1-%d\n", STATS_CLIENTS_MAX);
        return;
    }

    struct client_stat *top = calloc(n, sizeof(*top));
    struct client_stat *one = calloc(n, sizeof(*one));
    const struct pool **owner = calloc(n, sizeof(*owner));
    if (top == NULL || one == NULL || owner == NULL) {
        buf_printf(out, "error: out of memory\n");
        goto out;
    }
    size_t got = 0;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        if (only != NULL && pool != only)
            continue;
        size_t k = client_table_top(pool->clients, one, n);
        for (size_t i = 0; i < k; i++) {
            /* merge: insert one[i] into top[] keeping it sorted */
            size_t pos = got;
            while (pos > 0 && top[pos - 1].total < one[i].total)
                pos--;
            if (pos >= n)
                continue;
            size_t last = got < n ? got : n - 1;
            memmove(&top[pos + 1], &top[pos], (last - pos) * sizeof(*top));
            memmove(&owner[pos + 1], &owner[pos], (last - pos) * sizeof(*owner));
            top[pos] = one[i];
            owner[pos] = pool;
            if (got < n)
                got++;
        }
    }
    for (size_t i = 0; i < got; i++) {
        char ip[64];
        const struct pool *pool = owner[i];
        const char *server = top[i].server < pool_nservers(pool)
                           ? pool->servers[top[i].server].name : "-";
        client_key_str(&top[i].key, ip, sizeof(ip));
        if (only != NULL)
            buf_printf(out, "%s %llu %lld %s\n", ip, (unsigned long long)top[i].total,
                       (long long)top[i].active, server);
        else
            buf_printf(out, "%s %llu %lld %s/%s\n", ip,
                       (unsigned long long)top[i].total, (long long)top[i].active,
                       pool->name, server);
    }
out:
    free(top);
    free(one);
    free(owner);
}

static struct pool *stats_split_ref(struct stats_ctx *ctx, const char *ref,
                                    const char **name, struct buf *out);

/* "POOL/SERVER" -> the server, or NULL with an error answer written. */
static struct server *stats_find_server(struct stats_ctx *ctx, const char *ref,
                                        struct buf *out)
{
    const char *name;
    struct pool *p = stats_split_ref(ctx, ref, &name, out);
    if (p == NULL)
        return NULL;
    struct server *s = pool_find_server(p, name);
    if (s == NULL)
        buf_printf(out, "error: no server '%.64s' in pool '%s'\n", name, p->name);
    return s;
}

STATS_HANDLER(stats_admin)
{
    struct server *s = stats_find_server(ctx, args[0], out);
    if (s == NULL)
        return;
    if (ctx->health == NULL) {
        buf_printf(out, "error: no health checker to apply it\n");
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "%s from the stats socket", cmd->words);
    health_set_admin(ctx->health, s, (enum server_admin)cmd->arg, why);
    buf_printf(out, "%s/%s %s\n", s->pool->name, s->name,
               server_state_str(server_state(s)));
}

/* "POOL/NAME" -> the pool and *name, or NULL with an error answer. */
static struct pool *stats_split_ref(struct stats_ctx *ctx, const char *ref,
                                    const char **name, struct buf *out)
{
    const char *slash = strchr(ref, '/');
    if (slash == NULL || slash == ref || slash[1] == '\0') {
        buf_printf(out, "error: expected POOL/SERVER, got '%.64s'\n", ref);
        return NULL;
    }
    char pool_name[80];
    size_t plen = (size_t)(slash - ref);
    if (plen >= sizeof(pool_name)) {
        buf_printf(out, "error: no pool '%.64s'\n", ref);
        return NULL;
    }
    memcpy(pool_name, ref, plen);
    pool_name[plen] = '\0';
    struct pool *p = config_find_pool(ctx->config, pool_name);
    if (p == NULL)
        buf_printf(out, "error: no pool '%.64s'\n", pool_name);
    *name = slash + 1;
    return p;
}

STATS_HANDLER(stats_add_server)
{
    const char *name;
    struct pool *p = stats_split_ref(ctx, args[0], &name, out);
    if (p == NULL)
        return;
    char opts[256] = "";
    size_t used = 0;
    for (size_t i = 2; i < nargs; i++)
        used += (size_t)snprintf(opts + used, used < sizeof(opts) ? sizeof(opts) - used : 0,
                                 "%s%s", i > 2 ? " " : "", args[i]);
    if (used >= sizeof(opts)) {
        buf_printf(out, "error: options too long\n");
        return;
    }
    char err[320];
    struct server *s = membership_add(ctx->config, ctx->health, p, name, args[1], opts,
                                      SERVER_FROM_SOCKET, "added from the stats socket",
                                      ctx->now(), err, sizeof(err));
    if (s == NULL) {
        buf_printf(out, "error: %s\n", err);
        return;
    }
    buf_printf(out, "%s/%s %s\n", p->name, s->name, server_state_str(server_state(s)));
}

STATS_HANDLER(stats_del_server)
{
    const char *name;
    struct pool *p = stats_split_ref(ctx, args[0], &name, out);
    if (p == NULL)
        return;
    char err[320];
    if (membership_del(ctx->health, p, name, ctx->now(), err, sizeof(err)) == -1) {
        buf_printf(out, "error: %s\n", err);
        return;
    }
    buf_printf(out, "%s/%s deleted\n", p->name, name);
}

/* drain self / enable self: what GET /health says, for the VRRP or load
 * balancer in front; connections are accepted and served either way. */
STATS_HANDLER(stats_self)
{
    ctx->self_drained = cmd->arg;
    log_msg("%s from the stats socket: GET /health answers %s", cmd->words,
            cmd->arg ? "503 draining" : "from the pools again");
    buf_printf(out, "self %s\n", cmd->arg ? "draining" : "enabled");
}

int stats_health(struct stats_ctx *ctx, struct buf *out)
{
    if (ctx->stopping) {
        buf_printf(out, "stopping\n");
        return 503;
    }
    if (ctx->self_drained) {
        buf_printf(out, "draining\n");
        return 503;
    }
    struct config *c = ctx->config;
    for (size_t l = 0; l < c->nlisteners; l++) {
        struct pool *p = c->listeners[l].pool;
        int up = 0;
        uint32_t n = pool_nservers(p);
        for (uint32_t i = 0; i < n && !up; i++)
            up = server_listed(&p->servers[i]) && server_available(&p->servers[i]);
        if (!up) {
            buf_printf(out, "no server up in pool %s (listener %s)\n", p->name,
                       c->listeners[l].name);
            return 503;
        }
    }
    buf_printf(out, "ok\n");
    return 200;
}

STATS_HANDLER(stats_set_weight)
{
    const char *ref = args[0], *value = args[1];
    unsigned long w;
    if (stats_parse_uint(value, 0, SERVER_WEIGHT_MAX, &w) == -1) {
        buf_printf(out, "error: weight must be a whole number in 0-%d\n",
                   SERVER_WEIGHT_MAX);
        return;
    }
    struct server *s = stats_find_server(ctx, ref, out);
    if (s == NULL)
        return;
    unsigned old = server_weight(s);
    pool_set_server_weight(s, (unsigned)w);
    if (old != w)
        log_msg("server %s/%s weight %u -> %lu from the stats socket", s->pool->name,
                s->name, old, w);
    buf_printf(out, "%s/%s weight %lu\n", s->pool->name, s->name, w);
}

STATS_HANDLER(stats_clear_counters)
{
    struct config *c = ctx->config;
    unsigned nw = c->global.workers;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        for (uint32_t i = 0; i < pool_nservers(pool); i++)
            counters_server_clear(pool->servers[i].counters, nw);
        client_table_clear(pool->clients);
    }
    for (size_t i = 0; i < c->nlisteners; i++)
        counters_listener_clear(c->listeners[i].counters, nw);
    if (ctx->health != NULL)
        health_counters_cleared(ctx->health);
    buf_printf(out, "counters cleared\n");
}

/* which POOL IP: a dry run of the placement, moving no shared position. */
STATS_HANDLER(stats_which)
{
    const char *pool_name = args[0], *ip = args[1];
    struct pool *pool = config_find_pool(ctx->config, pool_name);
    if (pool == NULL) {
        buf_printf(out, "error: no pool '%.64s'\n", pool_name);
        return;
    }
    struct client_key key;
    if (client_key_parse(ip, &key) == -1) {
        buf_printf(out, "error: '%.64s' is not an IPv4 or IPv6 address\n", ip);
        return;
    }
    struct sched_request req = {
        .key = &key,
        .now = ctx->now(),
        .random = (uint64_t)(ctx->now() * 1e6),
        .peek = 1,
    };
    enum sched_why why;
    struct server *s = sched_pick_why(pool, &req, &why);
    if (s == NULL)
        buf_printf(out, "none");
    else
        buf_printf(out, "%s %s", s->name, sched_why_str(why));
    /* a client remembered on a server that cannot have it now: say which
     * and why, so an ejected or full server explains the move */
    uint32_t index;
    if (pool->persist == PERSIST_SOURCE && pool->clients != NULL &&
        client_table_peek(pool->clients, &key, req.now, pool->persist_timeout, &index) &&
        index < pool_nservers(pool) && (s == NULL || index != s->index)) {
        const struct server *was = &pool->servers[index];
        buf_printf(out, " (remembered on %s, which is %s%s)", was->name,
                   server_state_str(server_state(was)),
                   server_has_room(was) ? "" : " and full");
    }
    buf_printf(out, "\n");
}

STATS_HANDLER(stats_show_json)
{
    stats_write_json(ctx, out);
}

STATS_HANDLER(stats_show_events)
{
    unsigned long k = STATS_EVENTS_DEFAULT;
    if (nargs == 1 && stats_parse_uint(args[0], 1, EVENTS_MAX, &k) == -1) {
        buf_printf(out, "error: N must be a whole number in 1-%d\n", EVENTS_MAX);
        return;
    }
    events_show(out, k);
}

/* explain POOL: the diagnosis of its last minute. */
STATS_HANDLER(stats_explain)
{
    struct pool *pool = config_find_pool(ctx->config, args[0]);
    if (pool == NULL) {
        buf_printf(out, "error: no pool '%.64s'\n", args[0]);
        return;
    }
    struct explain e;
    explain_pool(pool, ctx->config->global.workers, ctx->now(), &e);
    explain_write_text(&e, out);
}

STATS_HANDLER(stats_help);

static const struct stats_command stats_commands[] = {
    { "help", "", 0, 0, "this list", stats_help, 0 },
    { "show info", "", 0, 0, "process information (key: value)", stats_show_info, 0 },
    { "show stat", "", 0, 0, "per-server counters (CSV)", stats_show_csv, 0 },
    { "show stat json", "", 0, 0, "listeners and pools with their counters (JSON)",
      stats_show_json, 0 },
    { "show clients", "[POOL] [N]", 0, 2,
      "the N (default 20) busiest client IPs: ip total active server",
      stats_show_clients, 0 },
    { "show events", "[N]", 0, 1, "the last N (default 50) server state changes",
      stats_show_events, 0 },
    { "which", "POOL IP", 2, 2,
      "where a new connection from IP goes now, and why (persist, hash, spill, schedule)",
      stats_which, 0 },
    { "disable server", "POOL/SERVER", 1, 1, "state maint: out of service",
      stats_admin, ADMIN_MAINT },
    { "drain server", "POOL/SERVER", 1, 1,
      "state drain: keeps its persistent clients, no new ones", stats_admin, ADMIN_DRAIN },
    { "enable server", "POOL/SERVER", 1, 1, "leaves maint/drain; health decides up/down",
      stats_admin, ADMIN_NONE },
    { "set weight", "POOL/SERVER N", 2, 2, "new weight, 0-256", stats_set_weight, 0 },
    { "clear counters", "", 0, 0, "zeroes the servers' and listeners' counters and the client counts",
      stats_clear_counters, 0 },
    { "explain", "POOL", 1, 1, "why the pool's load is what it is: findings and a verdict",
      stats_explain, 0 },
    { "add server", "POOL/NAME ADDR [OPTION ...]", 2, 12,
      "a new server (until reload); down until its check passes", stats_add_server, 0 },
    { "del server", "POOL/NAME", 1, 1, "removes a server in maint with no connection",
      stats_del_server, 0 },
    { "drain self", "", 0, 0, "GET /health answers 503 draining; traffic goes on",
      stats_self, 1 },
    { "enable self", "", 0, 0, "GET /health answers from the pools again", stats_self, 0 },
};

STATS_HANDLER(stats_help)
{
    for (size_t i = 0; i < ARRAY_LEN(stats_commands); i++) {
        const struct stats_command *c = &stats_commands[i];
        char head[64];
        snprintf(head, sizeof(head), "%s%s%s", c->words, c->usage[0] ? " " : "", c->usage);
        buf_printf(out, "%-28s %s\n", head, c->help);
    }
}

/* How many leading words of the line are <cmd>'s fixed words, or 0. */
static size_t stats_command_match(const struct stats_command *cmd, char **words, size_t n)
{
    const char *w = cmd->words;
    size_t k = 0;
    while (*w != '\0') {
        size_t len = strcspn(w, " ");
        if (k == n || strlen(words[k]) != len || strncmp(words[k], w, len) != 0)
            return 0;
        k++;
        w += len;
        w += *w == ' ';
    }
    return k;
}

const char *stats_command_words(size_t i)
{
    return i < ARRAY_LEN(stats_commands) ? stats_commands[i].words : NULL;
}

void stats_execute(struct stats_ctx *ctx, const char *line, struct buf *out)
{
    char copy[1024];
    char *words[STATS_MAX_WORDS];
    size_t n = 0;

    if (strlen(line) >= sizeof(copy)) {
        buf_printf(out, "error: command too long\n\n");
        return;
    }
    strcpy(copy, line);
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t\r", &save); w != NULL;
         w = strtok_r(NULL, " \t\r", &save)) {
        if (n == STATS_MAX_WORDS) {
            buf_printf(out, "error: too many words; try 'help'\n\n");
            return;
        }
        words[n++] = w;
    }
    if (n == 0)
        return;   /* an empty command gets no answer, not even a blank line */

    /* the row whose fixed words are the longest prefix of the line */
    const struct stats_command *cmd = NULL;
    size_t fixed = 0;
    for (size_t i = 0; i < ARRAY_LEN(stats_commands); i++) {
        size_t k = stats_command_match(&stats_commands[i], words, n);
        if (k > fixed) {
            cmd = &stats_commands[i];
            fixed = k;
        }
    }
    if (cmd == NULL)
        buf_printf(out, "error: unknown command '%.64s'; try 'help'\n", line);
    else if (n - fixed < cmd->min_args || n - fixed > cmd->max_args)
        buf_printf(out, "error: usage: %s%s%s\n", cmd->words, cmd->usage[0] ? " " : "",
                   cmd->usage);
    else
        cmd->run(ctx, cmd, words + fixed, n - fixed, out);
    buf_append(out, "\n", 1);
}
