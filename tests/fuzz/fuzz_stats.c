/* fuzz_stats.c — libFuzzer target for the stats commands: the input is what
 * a client writes to the stats socket, cut into commands the way
 * stats_socket.c does (newline or ';', at most STATS_LINE_MAX - 1 bytes, no
 * control bytes) and run by stats_execute() against one config loaded once,
 * with two pools (persistence by source; the source hash with a balance
 * factor), known clients and events, and a fixed clock. The state a command
 * may change (weights, client totals) is put back before every input, so an
 * input does the same whatever ran before it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client_table.h"
#include "config.h"
#include "events.h"
#include "pool.h"
#include "stats.h"

#define STATS_LINE_MAX 1024          /* as in stats_socket.c */
#define FUZZ_STATS_NOW 1000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_stats_config[] =
    "[global]\n"
    "workers = 2\n"
    "[listener web]\n"
    "bind = 127.0.0.1:8080\n"
    "bind = [::1]:8080\n"
    "pool = p\n"
    "mode = http\n"
    "[listener api]\n"
    "bind = 127.0.0.1:8443\n"
    "pool = h\n"
    "accept_proxy = yes\n"
    "[pool p]\n"
    "persist = source\n"
    "persist_timeout = 10m\n"
    "server = a 127.0.0.1:9001 weight=2\n"
    "server = b 127.0.0.1:9002 maxconn=5\n"
    "server = c [::1]:9003 weight=0\n"
    "[pool h]\n"
    "scheduler = source\n"
    "balance_factor = 150\n"
    "server = x 127.0.0.1:9101\n"
    "server = y 127.0.0.1:9102 weight=3\n"
    "server = z [::1]:9103 send-proxy\n";

/* Clients already seen by a pool: `which` finds them stuck to a server and
 * `show clients` lists them. */
static const struct {
    const char *pool, *ip;
    uint32_t server;
    unsigned total;
} fuzz_stats_clients[] = {
    { "p", "10.0.0.1", 0, 7 },
    { "p", "10.0.0.2", 1, 3 },
    { "p", "2001:db8::1", 0, 1 },
    { "h", "10.0.0.1", 2, 5 },
    { "h", "192.168.1.9", 1, 2 },
};

static struct config *fuzz_stats_cfg;   /* loaded once, never freed */

static double fuzz_stats_now(void)
{
    return FUZZ_STATS_NOW;
}

/* Sets the clients' totals (active counts are left as the set-up made
 * them) and every server's weight back to what the set-up made them. */
static void fuzz_stats_reset(void)
{
    struct config *c = fuzz_stats_cfg;
    for (size_t p = 0; p < c->npools; p++) {
        struct pool *pool = &c->pools[p];
        for (uint32_t i = 0; i < pool->nservers; i++)
            if (server_weight(&pool->servers[i]) != pool->servers[i].weight)
                pool_set_server_weight(&pool->servers[i], pool->servers[i].weight);
        client_table_clear(pool->clients);
    }
    for (size_t i = 0; i < sizeof(fuzz_stats_clients) / sizeof(fuzz_stats_clients[0]); i++) {
        struct pool *pool = config_find_pool(c, fuzz_stats_clients[i].pool);
        struct client_key key;
        if (pool == NULL || client_key_parse(fuzz_stats_clients[i].ip, &key) == -1)
            abort();
        for (unsigned n = 0; n < fuzz_stats_clients[i].total; n++)
            client_table_placed(pool->clients, &key, fuzz_stats_clients[i].server,
                                FUZZ_STATS_NOW, 1);
    }
}

static void fuzz_stats_setup(void)
{
    char err[CONFIG_ERR_LEN];
    fuzz_stats_cfg = config_load_string("fuzz_stats.ini", fuzz_stats_config, err,
                                        sizeof(err));
    if (fuzz_stats_cfg == NULL)
        abort();
    /* each known client holds one open connection */
    for (size_t i = 0; i < sizeof(fuzz_stats_clients) / sizeof(fuzz_stats_clients[0]); i++) {
        struct pool *pool = config_find_pool(fuzz_stats_cfg, fuzz_stats_clients[i].pool);
        struct client_key key;
        if (pool == NULL || client_key_parse(fuzz_stats_clients[i].ip, &key) == -1)
            abort();
        client_table_placed(pool->clients, &key, fuzz_stats_clients[i].server,
                            FUZZ_STATS_NOW, 0);
    }
    struct pool *p = config_find_pool(fuzz_stats_cfg, "p");
    events_record(&p->servers[1], SERVER_UP, SERVER_DOWN, "connect refused");
    events_record(&p->servers[1], SERVER_DOWN, SERVER_UP, "check passed");
    events_record(&p->servers[2], SERVER_UP, SERVER_MAINT, "disabled");
}

static void fuzz_stats_run(struct stats_ctx *ctx, const char *line)
{
    struct buf out = { 0 };
    stats_execute(ctx, line, &out);
    /* an answer, when there is one, ends with an empty line */
    if (out.len > 0 && (out.data[out.len - 1] != '\n' || out.data[out.len] != '\0'))
        abort();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_stats_cfg == NULL)
        fuzz_stats_setup();
    fuzz_stats_reset();
    struct stats_ctx ctx = { .config = fuzz_stats_cfg, .health = NULL,
                             .started = FUZZ_STATS_NOW - 100, .now = fuzz_stats_now };

    char line[STATS_LINE_MAX];
    size_t len = 0;
    int overlong = 0, garbage = 0;
    /* one past the end stands for the end of input, which ends a last line */
    for (size_t i = 0; i <= size; i++) {
        char ch = i < size ? (char)data[i] : '\n';
        if (ch == '\n' || ch == ';') {
            if (i == size && len == 0 && !overlong && !garbage)
                break;
            if (!overlong && !garbage) {
                line[len] = '\0';
                fuzz_stats_run(&ctx, line);
            }
            len = 0;
            overlong = garbage = 0;
            continue;
        }
        if ((unsigned char)ch < 0x20 && ch != '\t' && ch != '\r')
            garbage = 1;
        if (overlong)
            continue;
        if (len == STATS_LINE_MAX - 1) {
            overlong = 1;
            continue;
        }
        line[len++] = ch;
    }
    return 0;
}
