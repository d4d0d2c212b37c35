/* pick_bench.c — micro-benchmark (not a test): nanoseconds per sched_pick()
 * for every scheduler with 3, 30 and 300 servers, single thread, printed as
 * a Markdown table. See tools/bench/README.md.
 *
 * Build (from the repository root, no Makefile needed; the flags are the
 * Makefile's, -fno-strict-aliasing included):
 *   mkdir -p build && gcc -std=c11 -D_GNU_SOURCE -O2 -fno-strict-aliasing \
 *       -Iinclude -o build/pick_bench tools/bench/pick_bench.c \
 *       src/config.c src/pool.c src/sched*.c src/client_table.c \
 *       src/counters.c src/net.c -linih -lm -pthread
 * Run:
 *   build/pick_bench [picks per cell, default 2000000]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_table.h"
#include "config.h"
#include "pool.h"
#include "scheduler.h"

#define BENCH_KEYS 16384            /* distinct client IPs, cycled */
#define BENCH_WARMUP 200000
#define BENCH_ROUNDS 5              /* the best round is reported: VM noise */

struct bench_case {
    const char *label;
    const char *pool_lines;          /* scheduler and options */
    int persist;                     /* emulate the session's placed() calls */
};

static const struct bench_case bench_cases[] = {
    { "roundrobin", "scheduler = roundrobin\n", 0 },
    { "leastconn", "scheduler = leastconn\n", 0 },
    { "random2", "scheduler = random2\n", 0 },
    { "source (Maglev)", "scheduler = source\n", 0 },
    { "source, balance_factor=125", "scheduler = source\nbalance_factor = 125\n", 0 },
    { "roundrobin, persist=source",
      "scheduler = roundrobin\npersist = source\npersist_timeout = 1h\n", 1 },
    /* 16,384 clients through a table of 1,024: every pick misses, and every
     * placement evicts the least recently used entry */
    { "roundrobin, persist=source, full table",
      "scheduler = roundrobin\npersist = source\npersist_timeout = 1h\n"
      "persist_max = 1024\n", 1 },
};

static const unsigned bench_sizes[] = { 3, 30, 300 };

struct bench_client {
    struct sockaddr_in sin;
    struct client_key key;
};

static uint64_t bench_rng(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A config with one pool of <n> servers (weights 1-4) under <c>. NULL on
 * error, reported on stderr. */
static struct config *bench_config(const struct bench_case *c, unsigned n)
{
    size_t cap = 512 + (size_t)n * 64;
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    int len = snprintf(text, cap,
                       "[global]\nworkers = 1\n"
                       "[listener l]\nbind = 127.0.0.1:18080\npool = p\n"
                       "[pool p]\n%s", c->pool_lines);
    for (unsigned i = 0; i < n; i++)
        len += snprintf(text + len, cap - (size_t)len,
                        "server = srv%u 10.1.%u.%u:80 weight=%u\n",
                        i, i / 250, 1 + i % 250, 1 + i % 4);
    char err[CONFIG_ERR_LEN];
    struct config *cfg = config_load_string("bench.ini", text, err, sizeof(err));
    if (cfg == NULL)
        fprintf(stderr, "pick_bench: %s\n", err);
    free(text);
    return cfg;
}

/* Runs <picks> picks over the clients in turn, after a warm-up, in
 * BENCH_ROUNDS timed rounds; returns ns per pick of the fastest round. */
static double bench_run(struct pool *p, const struct bench_client *clients, int persist,
                        long picks, uint64_t *sink)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    double now = 1000.0;
    double t0 = 0, best = 0;
    long round_len = picks / BENCH_ROUNDS > 0 ? picks / BENCH_ROUNDS : 1;
    for (long i = -BENCH_WARMUP; i < round_len * BENCH_ROUNDS; i++) {
        if (i >= 0 && i % round_len == 0) {
            double t = bench_now();
            if (i > 0 && (best == 0 || t - t0 < best))
                best = t - t0;
            t0 = t;
        }
        const struct bench_client *cl = &clients[(unsigned long)i % BENCH_KEYS];
        struct sched_request req = {
            .key = &cl->key,
            .now = now,
            .random = bench_rng(&x),
        };
        enum sched_why why;
        struct server *s = sched_pick_why(p, &req, &why);
        if (s == NULL) {
            fprintf(stderr, "pick_bench: no server\n");
            exit(1);
        }
        /* the session remembers a scheduled client once connected */
        if (persist && why == SCHED_WHY_SCHEDULE)
            client_table_placed(p->clients, &cl->key, s->index, now, 0);
        *sink += s->index;
        now += 1e-6;
    }
    double t = bench_now() - t0;
    if (best == 0 || t < best)
        best = t;
    return best * 1e9 / (double)round_len;
}

int main(int argc, char **argv)
{
    long picks = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    if (picks <= 0) {
        fprintf(stderr, "usage: %s [picks per cell]\n", argv[0]);
        return 2;
    }
    struct bench_client *clients = calloc(BENCH_KEYS, sizeof(*clients));
    if (clients == NULL)
        return 1;
    uint64_t x = 12345;
    for (unsigned i = 0; i < BENCH_KEYS; i++) {
        clients[i].sin.sin_family = AF_INET;
        clients[i].sin.sin_addr.s_addr = (uint32_t)bench_rng(&x);
        client_key_from_addr((const struct sockaddr *)&clients[i].sin, &clients[i].key);
    }

    const size_t nsizes = sizeof(bench_sizes) / sizeof(bench_sizes[0]);
    const size_t ncases = sizeof(bench_cases) / sizeof(bench_cases[0]);
    uint64_t sink = 0;
    printf("ns per pick (best of %d rounds of %ld picks, after %d warm-up picks), "
           "%d client IPs, single thread\n\n", BENCH_ROUNDS, picks / BENCH_ROUNDS,
           BENCH_WARMUP, BENCH_KEYS);
    printf("| scheduler |");
    for (size_t s = 0; s < nsizes; s++)
        printf(" %u servers |", bench_sizes[s]);
    printf("\n|---|");
    for (size_t s = 0; s < nsizes; s++)
        printf("---:|");
    printf("\n");
    fflush(stdout);

    for (size_t c = 0; c < ncases; c++) {
        printf("| %s |", bench_cases[c].label);
        for (size_t s = 0; s < nsizes; s++) {
            struct config *cfg = bench_config(&bench_cases[c], bench_sizes[s]);
            if (cfg == NULL)
                return 1;
            struct pool *p = &cfg->pools[0];
            /* a fixed spread of open connections, 0-99 per server, so that
             * leastconn and random2 compare real loads and balance_factor
             * has servers over its cap to skip */
            uint64_t y = 777;
            for (uint32_t i = 0; i < p->nservers; i++)
                server_active_add(&p->servers[i], (int64_t)(bench_rng(&y) % 100));
            double ns = bench_run(p, clients, bench_cases[c].persist, picks, &sink);
            printf(" %.1f |", ns);
            fflush(stdout);
            config_unref(cfg);
        }
        printf("\n");
        fflush(stdout);
    }
    /* keeps the picks from being optimised away */
    fprintf(stderr, "(checksum %llu)\n", (unsigned long long)sink);
    free(clients);
    return 0;
}
