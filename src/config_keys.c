/* config_keys.c — every configuration key, in one table per section, and
 * the parsers of their values (see config_keys.h). A key's row says how its
 * value is parsed, where it is stored, its bounds and its default; the
 * defaults are parsed by the same code as the file, so they live only here.
 * The server line's options have a table of their own. Walking the file is
 * config.c's job. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "discover.h"
#include "proxy_proto.h"
#include "scheduler.h"
#include "util.h"

/* ---- values ------------------------------------------------------------------ */

int config_parse_duration(const char *text, double *seconds)
{
    /* digits, at most one '.', then the unit: strtod alone would also take
     * hex, exponents and "inf" */
    size_t digits = strspn(text, "0123456789.");
    size_t dots = 0;
    for (size_t i = 0; i < digits; i++)
        dots += text[i] == '.';
    if (digits == 0 || !isdigit((unsigned char)text[0]) || dots > 1)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end != text + digits || v < 0)
        return -1;
    double unit;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        unit = 0.001;
    else if (strcmp(end, "s") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60;
    else if (strcmp(end, "h") == 0)
        unit = 3600;
    else
        return -1;
    v *= unit;
    if (v > 365.0 * 24 * 3600)   /* a year: anything longer is a typo */
        return -1;
    *seconds = v;
    return 0;
}

static int config_parse_uint(const char *text, unsigned long min, unsigned long max,
                             unsigned long *out)
{
    if (!isdigit((unsigned char)text[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int config_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CONFIG_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return 0;
    return 1;
}

int config_valid_server_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CONFIG_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && strchr("_-.:[]", *c) == NULL)
            return 0;
    return 1;
}

static int config_set_word(struct config_parse *p, const struct config_key *k,
                           const char *value, int *out)
{
    char known[128] = "";
    size_t n = 0;
    while (k->words[n].word != NULL)
        n++;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(value, k->words[i].word) == 0) {
            *out = k->words[i].value;
            return 1;
        }
        size_t len = strlen(known);
        snprintf(known + len, sizeof(known) - len, "%s%s", i == 0 ? "" :
                 i + 1 == n ? " or " : ", ", k->words[i].word);
    }
    return config_fail(p, "%s: expected %s, got '%s'", k->name, known, value);
}

int config_key_set(struct config_parse *p, const struct config_key *k,
                   const char *value, void *obj)
{
    void *field = (char *)obj + k->offset;
    unsigned long v;
    switch (k->kind) {
    case CONFIG_UINT:
    case CONFIG_ULONG:
        if (config_parse_uint(value, k->min, k->max, &v) == -1)
            return config_fail(p, "%s: '%s' is not a whole number in %lu-%lu",
                               k->name, value, k->min, k->max);
        if (k->kind == CONFIG_UINT)
            *(unsigned *)field = (unsigned)v;
        else
            *(unsigned long *)field = v;
        break;
    case CONFIG_DURATION:
        if (config_parse_duration(value, field) == -1)
            return config_fail(p, "%s: bad duration '%s' (use e.g. 500ms, 2s, 5m, 1h)",
                               k->name, value);
        if (k->min > 0 && *(double *)field <= 0)
            return config_fail(p, "%s: must be above zero", k->name);
        break;
    case CONFIG_WORD:
        if (config_set_word(p, k, value, field) == 0)
            return 0;
        break;
    case CONFIG_STRING: {
        char *copy = strdup(value);
        if (copy == NULL)
            return config_fail(p, "out of memory");
        free(*(char **)field);
        *(char **)field = copy;
        break;
    }
    case CONFIG_CUSTOM:
        break;
    }
    return k->set != NULL ? k->set(p, k, value, field) : 1;
}

/* ---- [global] ------------------------------------------------------------------ */

static int config_set_workers(struct config_parse *p, const struct config_key *k,
                              const char *value, void *field)
{
    if (strcmp(value, "auto") == 0) {
        p->workers_auto = 1;
        return 1;
    }
    p->workers_auto = 0;
    unsigned long v;
    if (config_parse_uint(value, 1, CONFIG_WORKERS_MAX, &v) == -1)
        return config_fail(p, "%s: '%s' is not a whole number in 1-%d", k->name, value,
                           CONFIG_WORKERS_MAX);
    *(unsigned *)field = (unsigned)v;
    return 1;
}

static int config_check_socket_path(struct config_parse *p, const struct config_key *k,
                                    const char *value, void *field)
{
    (void)k;
    (void)field;
    if (value[0] == '\0' || strlen(value) >= 108)
        return config_fail(p, "stats_socket: path must be 1-107 characters");
    return 1;
}

static int config_check_stats_http(struct config_parse *p, const struct config_key *k,
                                   const char *value, void *field)
{
    (void)k;
    (void)field;
    char e[256];
    if (net_parse_addr(value, &p->cfg->global.stats_http_addr, e, sizeof(e)) == -1)
        return config_fail(p, "stats_http: %s", e);
    return 1;
}

/* log_path keeps the value as written; log says what it means. */
static int config_check_log(struct config_parse *p, const struct config_key *k,
                            const char *value, void *field)
{
    (void)k;
    (void)field;
    struct global_conf *g = &p->cfg->global;
    if (strcmp(value, "stderr") == 0)
        g->log = LOG_STDERR;
    else if (strcmp(value, "off") == 0)
        g->log = LOG_OFF;
    else if (value[0] == '/' || value[0] == '.')
        g->log = LOG_FILE;
    else
        return config_fail(p, "log: expected stderr, off or a file path "
                           "(absolute or starting with ./), got '%s'", value);
    return 1;
}

static int config_check_name(struct config_parse *p, const struct config_key *k,
                             const char *value, void *field)
{
    (void)field;
    if (!config_valid_name(value))
        return config_fail(p, "%s: '%s' is not a valid name", k->name, value);
    return 1;
}

static int config_check_resolvers(struct config_parse *p, const struct config_key *k,
                                  const char *value, void *field)
{
    (void)k;
    (void)field;
    char csv[1024], e[256];
    if (discover_parse_resolvers(value, csv, sizeof(csv), e, sizeof(e)) == -1)
        return config_fail(p, "%s", e);
    return 1;
}

static const struct config_word config_auto_off[] = {
    { "auto", 1 }, { "off", 0 }, { NULL, 0 },
};

static const struct config_word config_log_formats[] = {
    { "logfmt", LOG_FORMAT_LOGFMT }, { "json", LOG_FORMAT_JSON }, { NULL, 0 },
};

static const struct config_word config_io_models[] = {
    { "epoll", CONFIG_IO_EPOLL }, { "io_uring", CONFIG_IO_URING }, { NULL, 0 },
};

static const struct config_word config_on_off[] = {
    { "on", 1 }, { "off", 0 }, { NULL, 0 },
};

#define GLOBAL(field) offsetof(struct global_conf, field)

static const struct config_key config_global_keys[] = {
    { "workers", CONFIG_CUSTOM, GLOBAL(workers), 0, 0, NULL, config_set_workers,
      CONFIG_NO_RELOAD, "auto", "worker threads; auto = one per CPU" },
    { "maxconn", CONFIG_ULONG, GLOBAL(maxconn), 1, 10000000, NULL, NULL, 0, "100000",
      "open client connections over all listeners; over it, accepting pauses" },
    { "stats_socket", CONFIG_STRING, GLOBAL(stats_socket), 0, 0, NULL,
      config_check_socket_path, CONFIG_EMPTY_OK | CONFIG_RESTART, NULL,
      "path of the UNIX stats socket (mode 0600)" },
    { "stats_http", CONFIG_STRING, GLOBAL(stats_http), 0, 0, NULL, config_check_stats_http,
      CONFIG_RESTART, NULL, "ADDR:PORT serving the page, /metrics, /health and the JSON views" },
    { "log", CONFIG_STRING, GLOBAL(log_path), 0, 0, NULL, config_check_log,
      CONFIG_RESTART, "stderr", "access log: stderr, off or a file path" },
    { "log_format", CONFIG_WORD, GLOBAL(log_format), 0, 0, config_log_formats, NULL, 0,
      "logfmt", "access log lines: logfmt or json (one object per line)" },
    { "shutdown_timeout", CONFIG_DURATION, GLOBAL(shutdown_timeout), 0, 0, NULL, NULL, 0,
      "10s", "how long open connections may finish after SIGTERM" },
    { "user", CONFIG_STRING, GLOBAL(user), 0, 0, NULL, config_check_name,
      CONFIG_RESTART, NULL, "user to run as once everything privileged is open" },
    { "group", CONFIG_STRING, GLOBAL(group), 0, 0, NULL, config_check_name,
      CONFIG_RESTART, NULL, "group to run as (default: the user's)" },
    { "splice", CONFIG_WORD, GLOBAL(splice), 0, 0, config_auto_off, NULL, 0, "auto",
      "bulk transfers through splice(): auto or off" },
    { "splice_pipes", CONFIG_UINT, GLOBAL(splice_pipes), 0, 100000, NULL, NULL,
      CONFIG_RESTART, "64", "kernel pipes for splice() over all workers" },
    { "accept_balance", CONFIG_WORD, GLOBAL(accept_balance), 0, 0, config_on_off, NULL,
      0, "on", "hand accepted connections to the least loaded worker" },
    { "io", CONFIG_WORD, GLOBAL(io), 0, 0, config_io_models, NULL, CONFIG_RESTART,
      "io_uring", "how workers relay established connections: io_uring (falls back "
      "to epoll where the kernel refuses it) or epoll" },
    { "resolvers", CONFIG_STRING, GLOBAL(resolvers), 0, 0, NULL, config_check_resolvers, 0,
      NULL, "name servers of discover: IP[:PORT] ... (default: /etc/resolv.conf)" },
};

/* ---- [listener NAME] ----------------------------------------------------------- */

static int config_add_bind(struct config_parse *p, const struct config_key *k,
                           const char *value, void *field)
{
    (void)k;
    (void)field;
    struct listener_conf *l = &p->cfg->listeners[p->index];
    /* "ADDR [freebind]" */
    char text[256];
    size_t len = strcspn(value, " \t");
    if (len >= sizeof(text))
        return config_fail(p, "bind: address too long");
    memcpy(text, value, len);
    text[len] = '\0';
    const char *opt = value + len + strspn(value + len, " \t");
    int freebind = 0;
    if (strcmp(opt, "freebind") == 0)
        freebind = 1;
    else if (*opt != '\0')
        return config_fail(p, "bind: unknown option '%s' (known: freebind)", opt);
    struct net_addr addr;
    char e[256];
    if (net_parse_addr(text, &addr, e, sizeof(e)) == -1)
        return config_fail(p, "bind: %s", e);
    struct net_addr *binds = realloc(l->binds, (l->nbinds + 1) * sizeof(*binds));
    if (binds == NULL)
        return config_fail(p, "out of memory");
    l->binds = binds;
    int *fb = realloc(l->bind_freebind, (l->nbinds + 1) * sizeof(*fb));
    if (fb == NULL)
        return config_fail(p, "out of memory");
    l->bind_freebind = fb;
    char **texts = realloc(l->bind_texts, (l->nbinds + 1) * sizeof(*texts));
    if (texts == NULL)
        return config_fail(p, "out of memory");
    l->bind_texts = texts;
    texts[l->nbinds] = strdup(text);
    if (texts[l->nbinds] == NULL)
        return config_fail(p, "out of memory");
    fb[l->nbinds] = freebind;
    binds[l->nbinds++] = addr;
    return 1;
}

static int config_check_pool_name(struct config_parse *p, const struct config_key *k,
                                  const char *value, void *field)
{
    (void)k;
    (void)field;
    if (!config_valid_name(value))
        return config_fail(p, "pool: '%s' is not a valid pool name", value);
    p->cfg->listeners[p->index].pool_line = p->line;
    return 1;
}

static const struct config_word config_modes[] = {
    { "tcp", LISTENER_TCP }, { "http", LISTENER_HTTP }, { NULL, 0 },
};
static const struct config_word config_yes_no[] = {
    { "yes", 1 }, { "no", 0 }, { NULL, 0 },
};

#define LISTENER(field) offsetof(struct listener_conf, field)

static const struct config_key config_listener_keys[] = {
    { "bind", CONFIG_CUSTOM, 0, 0, 0, NULL, config_add_bind, CONFIG_REPEAT, NULL,
      "ADDR:PORT [freebind] to accept on (repeatable)" },
    { "pool", CONFIG_STRING, LISTENER(pool_name), 0, 0, NULL, config_check_pool_name, 0,
      NULL, "the pool its connections go to" },
    { "mode", CONFIG_WORD, LISTENER(mode), 0, 0, config_modes, NULL, 0, "tcp",
      "tcp, or http: error answers and requests observed" },
    { "accept_proxy", CONFIG_WORD, LISTENER(accept_proxy), 0, 0, config_yes_no, NULL, 0,
      "no", "expect a PROXY protocol v1/v2 header first" },
    { "maxconn", CONFIG_ULONG, LISTENER(maxconn), 1, 10000000, NULL, NULL, 0, NULL,
      "open connections of this listener; over it, it pauses" },
    { "log_requests", CONFIG_WORD, LISTENER(log_requests), 0, 0, config_on_off, NULL, 0,
      "off", "mode http: one more access log line per request" },
};

/* ---- [pool NAME] ----------------------------------------------------------------- */

static int config_set_scheduler(struct config_parse *p, const struct config_key *k,
                                const char *value, void *field)
{
    (void)k;
    const struct sched_ops *ops = sched_find(value);
    if (ops == NULL)
        return config_fail(p, "unknown scheduler '%s' (known: %s)", value, sched_names());
    *(const struct sched_ops **)field = ops;
    return 1;
}

static int config_check_balance_factor(struct config_parse *p, const struct config_key *k,
                                       const char *value, void *field)
{
    (void)k;
    (void)value;
    unsigned v = *(unsigned *)field;
    if (v != 0 && v <= 100)
        return config_fail(p, "balance_factor: must be 0 (off) or above 100 "
                           "(percent of the average load), got %u", v);
    return 1;
}

static int config_check_health_path(struct config_parse *p, const struct config_key *k,
                                    const char *value, void *field)
{
    (void)k;
    (void)field;
    if (value[0] != '/' || strpbrk(value, " \t\r\n") != NULL)
        return config_fail(p, "health_path: must start with '/' and hold no "
                           "spaces, got '%s'", value);
    return 1;
}

static int config_add_server(struct config_parse *p, const struct config_key *k,
                             const char *value, void *field);

static const struct config_word config_persist_modes[] = {
    { "none", PERSIST_NONE }, { "source", PERSIST_SOURCE }, { NULL, 0 },
};
static const struct config_word config_health_modes[] = {
    { "tcp", HEALTH_TCP }, { "http", HEALTH_HTTP }, { "expect", HEALTH_EXPECT },
    { "none", HEALTH_NONE }, { NULL, 0 },
};

#define POOL(field) offsetof(struct pool, field)

static int config_check_discover(struct config_parse *p, const struct config_key *k,
                                 const char *value, void *field)
{
    (void)k;
    (void)field;
    struct discover_spec spec;
    char e[256];
    if (discover_parse_spec(value, &spec, e, sizeof(e)) == -1)
        return config_fail(p, "%s", e);
    return 1;
}

/* health_send and health_expect: unescaped into the pool's buffers, so
 * that the checks send and compare bytes, not text. */
static int config_check_health_bytes(struct config_parse *p, const struct config_key *k,
                                     const char *value, void *field)
{
    struct pool *pool = &p->cfg->pools[p->index];
    int send = field == (void *)&pool->health_send;
    unsigned char *out = send ? pool->health_send_bytes : pool->health_expect_bytes;
    size_t cap = send ? sizeof(pool->health_send_bytes) : sizeof(pool->health_expect_bytes);
    size_t *len = send ? &pool->health_send_len : &pool->health_expect_len;
    char e[160];
    if (check_unescape(value, out, cap, len, e, sizeof(e)) == -1)
        return config_fail(p, "%s: %s", k->name, e);
    return 1;
}

/* The kernel takes whole seconds, at most 32767, for both timings. */
static int config_check_keepalive_time(struct config_parse *p, const struct config_key *k,
                                       const char *value, void *field)
{
    double v = *(double *)field;
    if (v < 1 || v > 32767 || v != (double)(long)v)
        return config_fail(p, "%s: must be whole seconds from 1s to 32767s, got '%s'",
                           k->name, value);
    return 1;
}

static const struct config_key config_pool_keys[] = {
    { "scheduler", CONFIG_CUSTOM, POOL(sched), 0, 0, NULL, config_set_scheduler, 0,
      "roundrobin", "roundrobin, leastconn, random2, leasttime or source" },
    { "server", CONFIG_CUSTOM, 0, 0, 0, NULL, config_add_server, CONFIG_REPEAT, NULL,
      "NAME ADDR [OPTION ...] (repeatable)" },
    { "persist", CONFIG_WORD, POOL(persist), 0, 0, config_persist_modes, NULL, 0, "none",
      "none, or source: a client IP sticks to its server" },
    { "persist_timeout", CONFIG_DURATION, POOL(persist_timeout), 1, 0, NULL, NULL, 0,
      "30m", "how long an idle client IP keeps its server" },
    { "persist_max", CONFIG_UINT, POOL(persist_max), 1, 10000000, NULL, NULL, 0, "65536",
      "client IPs remembered; the least recently used goes" },
    { "balance_factor", CONFIG_UINT, POOL(balance_factor), 0, 10000, NULL,
      config_check_balance_factor, 0, "0",
      "source: bounded loads cap, percent of the average (0 = off)" },
    { "client_maxconn", CONFIG_UINT, POOL(client_maxconn), 0, 1000000, NULL, NULL, 0, "0",
      "open connections per client IP (0 = no cap)" },
    { "connect_timeout", CONFIG_DURATION, POOL(connect_timeout), 1, 0, NULL, NULL, 0,
      "2s", "a connect to a server taking longer has failed" },
    { "server_timeout", CONFIG_DURATION, POOL(server_timeout), 1, 0, NULL, NULL, 0,
      "60s", "no answer byte for this long while one is owed: give up" },
    { "idle_timeout", CONFIG_DURATION, POOL(idle_timeout), 1, 0, NULL, NULL, 0, "5m",
      "no byte either way for this long: close" },
    { "retries", CONFIG_UINT, POOL(retries), 0, POOL_RETRIES_MAX, NULL, NULL, 0, "2",
      "other servers tried after a failed connect" },
    { "queue_timeout", CONFIG_DURATION, POOL(queue_timeout), 0, 0, NULL, NULL, 0, "5s",
      "how long a connection waits for a server under maxconn" },
    { "health", CONFIG_WORD, POOL(health), 0, 0, config_health_modes, NULL, 0, "tcp",
      "active checks: tcp, http, expect or none" },
    { "health_send", CONFIG_STRING, POOL(health_send), 0, 0, NULL, config_check_health_bytes,
      CONFIG_EMPTY_OK, NULL, "health = expect: bytes sent first (\\r \\n \\t \\\\ \\xHH)" },
    { "health_expect", CONFIG_STRING, POOL(health_expect), 0, 0, NULL,
      config_check_health_bytes, 0, NULL,
      "health = expect: what the answer must start with (same escapes)" },
    { "health_path", CONFIG_STRING, POOL(health_path), 0, 0, NULL,
      config_check_health_path, 0, "/health", "path of the http check's GET" },
    { "health_interval", CONFIG_DURATION, POOL(health_interval), 1, 0, NULL, NULL, 0,
      "2s", "time between two checks of a server" },
    { "health_timeout", CONFIG_DURATION, POOL(health_timeout), 1, 0, NULL, NULL, 0, NULL,
      "a check taking longer failed (default: 1s, at most health_interval)" },
    { "slowstart", CONFIG_DURATION, POOL(slowstart), 0, 0, NULL, NULL, 0, "0",
      "a server that becomes available ramps from 1/20 of its weight over this" },
    { "outlier_consecutive", CONFIG_UINT, POOL(outlier_consecutive), 0, 1000, NULL, NULL,
      0, "0", "failures in a row that eject a server (0 = off)" },
    { "outlier_ejection", CONFIG_DURATION, POOL(outlier_ejection), 1, 0, NULL, NULL, 0,
      "30s", "how long an ejection lasts, times the ejections in a row (at most 10)" },
    { "outlier_max_percent", CONFIG_UINT, POOL(outlier_max_percent), 0, 100, NULL, NULL,
      0, "50", "at most this share of a pool's servers ejected at once" },
    { "agent_port", CONFIG_UINT, POOL(agent_port), 0, 65535, NULL, NULL, 0, "0",
      "TCP port of the servers' agents (HAProxy's agent protocol; 0 = none)" },
    { "agent_interval", CONFIG_DURATION, POOL(agent_interval), 1, 0, NULL, NULL, 0, "2s",
      "time between two agent checks of a server" },
    { "server_slots", CONFIG_UINT, POOL(server_slots), 0, 100000, NULL, NULL, 0, "64",
      "room for servers added at run time (add server, discover)" },
    { "discover", CONFIG_STRING, POOL(discover), 0, 0, NULL, config_check_discover, 0,
      NULL, "servers from DNS: HOST:PORT (A, AAAA) or srv:_SERVICE._PROTO.NAME" },
    { "discover_interval", CONFIG_DURATION, POOL(discover_interval), 1, 0, NULL, NULL, 0,
      "10s", "time between two lookups of discover" },
    { "tcp_keepalive", CONFIG_WORD, POOL(tcp_keepalive), 0, 0, config_on_off, NULL, 0, "off",
      "TCP keepalive probes on the client's and the server's connection" },
    { "tcp_keepalive_idle", CONFIG_DURATION, POOL(tcp_keepalive_idle), 1, 0, NULL,
      config_check_keepalive_time, 0, "60s", "idle time before the first probe" },
    { "tcp_keepalive_interval", CONFIG_DURATION, POOL(tcp_keepalive_interval), 1, 0, NULL,
      config_check_keepalive_time, 0, "10s", "time between two probes" },
    { "tcp_keepalive_count", CONFIG_UINT, POOL(tcp_keepalive_count), 1, 127, NULL, NULL, 0,
      "6", "unanswered probes before the connection is dropped" },
    { "rise", CONFIG_UINT, POOL(rise), 1, 100, NULL, NULL, 0, "2",
      "consecutive passed checks that bring a server up" },
    { "fall", CONFIG_UINT, POOL(fall), 1, 100, NULL, NULL, 0, "3",
      "consecutive failed checks that take it down" },
};

/* ---- server lines ------------------------------------------------------------------ */

/* An option is NAME=N (a number in min..max, stored as unsigned), NAME=IP
 * (an address literal, port 0, into a struct net_addr; sets has_source) or
 * a bare flag NAME (stores <value> in an int). */
enum config_opt_kind { OPT_FLAG = 0, OPT_UINT, OPT_IP };

struct config_server_opt {
    const char *name;
    enum config_opt_kind kind;
    size_t offset;                  /* in struct server */
    unsigned long min, max;
    int value;                      /* flags */
};

#define SERVER(field) offsetof(struct server, field)

static const struct config_server_opt config_server_opts[] = {
    { "weight", OPT_UINT, SERVER(weight), 0, SERVER_WEIGHT_MAX, 0 },
    { "maxconn", OPT_UINT, SERVER(maxconn), 0, 1000000, 0 },
    { "agent_port", OPT_UINT, SERVER(agent_port), 0, 65535, 0 },
    { "check_port", OPT_UINT, SERVER(check_port), 1, 65535, 0 },
    { "source", OPT_IP, SERVER(source), 0, 0, 0 },
    { "backup", OPT_FLAG, SERVER(backup), 0, 0, 1 },
    { "send-proxy", OPT_FLAG, SERVER(send_proxy), 0, 0, PROXY_V1 },
    { "send-proxy-v2", OPT_FLAG, SERVER(send_proxy), 0, 0, PROXY_V2 },
};

const char *config_server_option_names(void)
{
    static char names[256];
    if (names[0] == '\0') {
        size_t len = 0;
        for (size_t i = 0; i < ARRAY_LEN(config_server_opts) && len < sizeof(names); i++)
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s%s",
                                    i ? ", " : "", config_server_opts[i].name,
                                    config_server_opts[i].kind == OPT_UINT ? "=N"
                                    : config_server_opts[i].kind == OPT_IP ? "=IP" : "");
    }
    return names;
}

const char *config_server_option_name(size_t i)
{
    return i < ARRAY_LEN(config_server_opts) ? config_server_opts[i].name : NULL;
}

int config_server_options(const char *name, char *opts, struct server *s,
                          char *err, size_t errlen)
{
    char *save = NULL;
    for (char *opt = strtok_r(opts, " \t", &save); opt != NULL;
         opt = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(opt, '=');
        if (eq != NULL)
            *eq = '\0';
        const struct config_server_opt *o = NULL;
        for (size_t i = 0; i < ARRAY_LEN(config_server_opts) && o == NULL; i++)
            if (strcmp(opt, config_server_opts[i].name) == 0 &&
                (config_server_opts[i].kind != OPT_FLAG) == (eq != NULL))
                o = &config_server_opts[i];
        if (o == NULL) {
            snprintf(err, errlen, "server %s: unknown option '%s' (known: %s)", name, opt,
                     config_server_option_names());
            return -1;
        }
        void *field = (char *)s + o->offset;
        if (o->kind == OPT_FLAG) {
            *(int *)field = o->value;
            continue;
        }
        if (o->kind == OPT_IP) {
            char e[160];
            if (net_parse_ip(eq + 1, (struct net_addr *)field, e, sizeof(e)) == -1 ||
                net_can_bind((struct net_addr *)field, e, sizeof(e)) == -1) {
                snprintf(err, errlen, "server %s: %s=%s: %s", name, o->name, eq + 1, e);
                return -1;
            }
            s->has_source = 1;
            continue;
        }
        unsigned long v;
        if (config_parse_uint(eq + 1, o->min, o->max, &v) == -1) {
            snprintf(err, errlen, "server %s: %s must be %lu-%lu, got '%s'", name,
                     o->name, o->min, o->max, eq + 1);
            return -1;
        }
        *(unsigned *)field = (unsigned)v;
    }
    if (s->has_source && s->source.ss.ss_family != s->addr.ss.ss_family) {
        snprintf(err, errlen, "server %s: source is IPv%d but the server's address is IPv%d",
                 name, s->source.ss.ss_family == AF_INET ? 4 : 6,
                 s->addr.ss.ss_family == AF_INET ? 4 : 6);
        return -1;
    }
    return 0;
}

/* "NAME ADDR [OPTION ...]" */
static int config_add_server(struct config_parse *p, const struct config_key *k,
                             const char *value, void *field)
{
    (void)k;
    (void)field;
    struct pool *pool = &p->cfg->pools[p->index];
    char copy[512];
    if (strlen(value) >= sizeof(copy))
        return config_fail(p, "server: line too long");
    strcpy(copy, value);

    char *save = NULL;
    char *name = strtok_r(copy, " \t", &save);
    char *addr_text = name ? strtok_r(NULL, " \t", &save) : NULL;
    if (name == NULL || addr_text == NULL)
        return config_fail(p, "server: expected 'NAME ADDRESS [OPTION ...]' with options "
                           "%s", config_server_option_names());
    if (!config_valid_name(name))
        return config_fail(p, "server: '%s' is not a valid server name "
                           "(letters, digits, '_', '-', '.')", name);
    for (uint32_t i = 0; i < pool->nservers; i++)
        if (strcmp(pool->servers[i].name, name) == 0)
            return config_fail(p, "duplicate server '%s' in pool '%s' "
                               "(first at line %d)", name, pool->name,
                               pool->servers[i].line);

    struct server s = { .weight = 1, .line = p->line };
    char e[256];
    if (net_parse_addr(addr_text, &s.addr, e, sizeof(e)) == -1)
        return config_fail(p, "server %s: %s", name, e);
    if (config_server_options(name, save, &s, e, sizeof(e)) == -1)
        return config_fail(p, "%s", e);

    struct server *servers = realloc(pool->servers,
                                     (pool->nservers + 1) * sizeof(*servers));
    if (servers == NULL)
        return config_fail(p, "out of memory");
    pool->servers = servers;
    s.name = strdup(name);
    s.addr_text = strdup(addr_text);
    if (s.name == NULL || s.addr_text == NULL) {
        free(s.name);
        free(s.addr_text);
        return config_fail(p, "out of memory");
    }
    s.index = pool->nservers;
    s.cur_weight = s.weight;
    s.agent_pct = 100;
    s.ramp_pml = 1000;
    s.eweight = s.weight * SERVER_WEIGHT_SCALE;
    s.state = SERVER_UP;
    servers[pool->nservers++] = s;
    return 1;
}

/* ---- sections ------------------------------------------------------------------------ */

const struct config_key *config_section_keys(enum config_section sec, size_t *n)
{
    switch (sec) {
    case SECTION_GLOBAL:
        *n = ARRAY_LEN(config_global_keys);
        return config_global_keys;
    case SECTION_LISTENER:
        *n = ARRAY_LEN(config_listener_keys);
        return config_listener_keys;
    case SECTION_POOL:
        *n = ARRAY_LEN(config_pool_keys);
        return config_pool_keys;
    case SECTION_NONE:
        break;
    }
    *n = 0;
    return NULL;
}

const struct config_key *config_key_find(enum config_section sec, const char *name)
{
    size_t n;
    const struct config_key *keys = config_section_keys(sec, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

const char *config_section_label(enum config_section sec)
{
    switch (sec) {
    case SECTION_GLOBAL: return "[global]";
    case SECTION_LISTENER: return "[listener]";
    case SECTION_POOL: return "[pool]";
    case SECTION_NONE: break;
    }
    return "?";
}

void config_section_defaults(struct config_parse *p, enum config_section sec, void *obj)
{
    size_t n;
    const struct config_key *keys = config_section_keys(sec, &n);
    for (size_t i = 0; i < n; i++)
        if (keys[i].def != NULL)
            (void)config_key_set(p, &keys[i], keys[i].def, obj);
}

/* 1 when key <k> holds the same value in the two [global] sections. */
static int config_global_same(const struct config_key *k, const struct global_conf *a,
                              const struct global_conf *b)
{
    const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    switch (k->kind) {
    case CONFIG_UINT:
        return *(const unsigned *)(const void *)fa == *(const unsigned *)(const void *)fb;
    case CONFIG_ULONG:
        return *(const unsigned long *)(const void *)fa ==
               *(const unsigned long *)(const void *)fb;
    case CONFIG_DURATION:
        return *(const double *)(const void *)fa == *(const double *)(const void *)fb;
    case CONFIG_WORD:
        return *(const int *)(const void *)fa == *(const int *)(const void *)fb;
    case CONFIG_STRING: {
        const char *sa = *(char *const *)(const void *)fa;
        const char *sb = *(char *const *)(const void *)fb;
        return (sa == NULL) == (sb == NULL) && (sa == NULL || strcmp(sa, sb) == 0);
    }
    case CONFIG_CUSTOM:
        break;
    }
    return 1;    /* custom keys say nothing here: none is flagged CONFIG_RESTART */
}

size_t config_restart_changes(const struct config *now, const struct config *next,
                              const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(config_global_keys) && n < max; i++) {
        const struct config_key *k = &config_global_keys[i];
        if ((k->flags & CONFIG_RESTART) && !config_global_same(k, &now->global,
                                                               &next->global))
            names[n++] = k->name;
    }
    return n;
}
