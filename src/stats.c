/* stats.c — stats command parsing and answers: help, show info, show stat
 * (CSV) and show stat json. Counters are summed over the workers' slots at
 * read time. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "log.h"
#include "scheduler.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

#define STATS_MAX_WORDS 8

static const char stats_help[] =
    "help                  this list\n"
    "show info             process information (key: value)\n"
    "show stat             per-server counters (CSV)\n"
    "show stat json        listeners and pools with their counters (JSON)\n";

static void stats_json_string(struct buf *out, const char *s)
{
    buf_append(out, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            buf_printf(out, "\\u%04x", c);
        else
            buf_append(out, s, 1);
    }
    buf_append(out, "\"", 1);
}

static void stats_show_info(struct stats_ctx *ctx, struct buf *out)
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
}

static void stats_show_csv(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    buf_printf(out, "# pool,server,addr,state,weight,active,total,failed,"
               "bytes_in,bytes_out\n");
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        for (uint32_t i = 0; i < pool->nservers; i++) {
            struct server *s = &pool->servers[i];
            struct server_totals t;
            counters_server_sum(s->counters, c->global.workers, &t);
            buf_printf(out, "%s,%s,%s,%s,%u,%lld,%llu,%llu,%llu,%llu\n",
                       pool->name, s->name, s->addr_text,
                       server_state_str(server_state(s)), server_weight(s),
                       (long long)server_active(s), (unsigned long long)t.total,
                       (unsigned long long)t.failed, (unsigned long long)t.bytes_in,
                       (unsigned long long)t.bytes_out);
        }
    }
}

static void stats_show_json(struct stats_ctx *ctx, struct buf *out)
{
    struct config *c = ctx->config;
    unsigned nw = c->global.workers;
    buf_printf(out, "{\"listeners\":[");
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        struct listener_totals t;
        counters_listener_sum(l->counters, nw, &t);
        buf_printf(out, "%s{\"name\":", i ? "," : "");
        stats_json_string(out, l->name);
        buf_printf(out, ",\"bind\":");
        stats_json_string(out, l->bind_texts[0]);
        buf_printf(out, ",\"binds\":[");
        for (size_t b = 0; b < l->nbinds; b++) {
            if (b)
                buf_append(out, ",", 1);
            stats_json_string(out, l->bind_texts[b]);
        }
        buf_printf(out, "],\"mode\":\"%s\",\"pool\":", listener_mode_str(l->mode));
        stats_json_string(out, l->pool_name);
        buf_printf(out, ",\"active\":%llu,\"total\":%llu,\"rejected\":%llu}",
                   (unsigned long long)t.active, (unsigned long long)t.total,
                   (unsigned long long)t.rejected);
    }
    buf_printf(out, "],\"pools\":[");
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        buf_printf(out, "%s{\"name\":", p ? "," : "");
        stats_json_string(out, pool->name);
        buf_printf(out, ",\"scheduler\":\"%s\",\"servers\":[", pool->sched->name);
        for (uint32_t i = 0; i < pool->nservers; i++) {
            struct server *s = &pool->servers[i];
            struct server_totals t;
            counters_server_sum(s->counters, nw, &t);
            buf_printf(out, "%s{\"name\":", i ? "," : "");
            stats_json_string(out, s->name);
            buf_printf(out, ",\"addr\":");
            stats_json_string(out, s->addr_text);
            buf_printf(out, ",\"state\":\"%s\",\"weight\":%u,\"active\":%lld,"
                       "\"total\":%llu,\"failed\":%llu,\"bytes_in\":%llu,"
                       "\"bytes_out\":%llu}",
                       server_state_str(server_state(s)), server_weight(s),
                       (long long)server_active(s), (unsigned long long)t.total,
                       (unsigned long long)t.failed, (unsigned long long)t.bytes_in,
                       (unsigned long long)t.bytes_out);
        }
        buf_printf(out, "]}");
    }
    buf_printf(out, "]}\n");
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

    if (n == 1 && strcmp(words[0], "help") == 0)
        buf_append(out, stats_help, sizeof(stats_help) - 1);
    else if (n == 2 && strcmp(words[0], "show") == 0 && strcmp(words[1], "info") == 0)
        stats_show_info(ctx, out);
    else if (n == 2 && strcmp(words[0], "show") == 0 && strcmp(words[1], "stat") == 0)
        stats_show_csv(ctx, out);
    else if (n == 3 && strcmp(words[0], "show") == 0 && strcmp(words[1], "stat") == 0 &&
             strcmp(words[2], "json") == 0)
        stats_show_json(ctx, out);
    else
        buf_printf(out, "error: unknown command '%.64s'; try 'help'\n", line);
    buf_append(out, "\n", 1);
}
