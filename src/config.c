/* config.c — reads the INI file with inih into a struct config, validates
 * every key and reports the first error as "FILE:LINE: what is wrong".
 * Resolving references (listener -> pool) and allocating runtime parts
 * (counters, scheduler state) happen here too, so a config that loads is a
 * config that runs. Listening and connecting are left to the workers. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "proxy_proto.h"
#include "scheduler.h"

#define CONFIG_NAME_MAX 64
#define CONFIG_KEYS_MAX 32

enum config_section { SECTION_NONE, SECTION_GLOBAL, SECTION_LISTENER, SECTION_POOL };

/* The parser's state while inih walks the file. The reader callbacks count
 * lines, so `line` is always the line the handler is looking at. */
struct config_parse {
    const char *file;
    struct config *cfg;
    int line;
    int failed;
    int fail_line;              /* line of the recorded error */
    char *err;
    size_t errlen;

    enum config_section section;
    size_t index;               /* listener or pool being filled */
    int section_line;
    int global_seen;
    int workers_auto;
    struct { const char *key; int line; } keys[CONFIG_KEYS_MAX];
    size_t nkeys;

    /* input: either a FILE or a string */
    FILE *fp;
    const char *text;
};

static int config_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first error only: later ones are usually its echoes. */
static int config_fail(struct config_parse *p, const char *fmt, ...)
{
    if (p->failed)
        return 0;
    p->failed = 1;
    p->fail_line = p->line;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, p->line);
    if (n < 0 || (size_t)n >= p->errlen)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return 0;
}

const char *listener_mode_str(enum listener_mode m)
{
    return m == LISTENER_HTTP ? "http" : "tcp";
}

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

static int config_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CONFIG_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return 0;
    return 1;
}

/* ---- section handling ------------------------------------------------ */

static struct listener_conf *config_cur_listener(struct config_parse *p)
{
    return &p->cfg->listeners[p->index];
}

static struct pool *config_cur_pool(struct config_parse *p)
{
    return &p->cfg->pools[p->index];
}

static void config_pool_defaults(struct pool *pool)
{
    pool->sched = &sched_roundrobin;
    pool->persist = PERSIST_NONE;
    pool->persist_timeout = 30 * 60;
    pool->persist_max = POOL_PERSIST_MAX_DEFAULT;
    pool->connect_timeout = 2;
    pool->server_timeout = 60;
    pool->idle_timeout = 5 * 60;
    pool->queue_timeout = 5;
    pool->retries = 2;
    pool->health = HEALTH_TCP;
    pool->health_interval = 2;
    pool->health_timeout = -1;      /* unset: min(1s, health_interval) */
    pool->rise = 2;
    pool->fall = 3;
}

/* Called by the reader when it meets a "[...]" line, before inih parses
 * it, so that empty sections and repeated headers are seen too. */
static void config_section_begin(struct config_parse *p, const char *header)
{
    char name[160];
    const char *close = strchr(header, ']');
    if (close == NULL)
        return;                 /* inih reports the syntax error */
    size_t len = (size_t)(close - header - 1);
    if (len >= sizeof(name)) {
        config_fail(p, "section name too long");
        return;
    }
    memcpy(name, header + 1, len);
    name[len] = '\0';

    p->nkeys = 0;
    p->section = SECTION_NONE;
    p->section_line = p->line;
    char kind[16], ident[CONFIG_NAME_MAX + 2], extra[2];
    int fields = sscanf(name, " %15s %65s %1s", kind, ident, extra);

    if (fields == 1 && strcmp(kind, "global") == 0) {
        if (p->global_seen) {
            config_fail(p, "duplicate [global] section");
            return;
        }
        p->global_seen = 1;
        p->section = SECTION_GLOBAL;
        return;
    }
    int is_listener = fields >= 1 && strcmp(kind, "listener") == 0;
    int is_pool = fields >= 1 && strcmp(kind, "pool") == 0;
    if (!is_listener && !is_pool) {
        config_fail(p, "unknown section [%s]: expected [global], [listener NAME] "
                    "or [pool NAME]", name);
        return;
    }
    if (fields != 2 || !config_valid_name(ident)) {
        config_fail(p, "[%s] needs one name of letters, digits, '_', '-', '.' "
                    "(at most %d)", name, CONFIG_NAME_MAX);
        return;
    }

    struct config *c = p->cfg;
    if (is_listener) {
        for (size_t i = 0; i < c->nlisteners; i++)
            if (strcmp(c->listeners[i].name, ident) == 0) {
                config_fail(p, "duplicate listener '%s' (first at line %d)",
                            ident, c->listeners[i].line);
                return;
            }
        struct listener_conf *l = realloc(c->listeners,
                                          (c->nlisteners + 1) * sizeof(*l));
        if (l == NULL)
            goto nomem;
        c->listeners = l;
        l = &c->listeners[c->nlisteners];
        memset(l, 0, sizeof(*l));
        l->name = strdup(ident);
        if (l->name == NULL)
            goto nomem;
        l->line = p->line;
        p->index = c->nlisteners++;
        p->section = SECTION_LISTENER;
    } else {
        for (size_t i = 0; i < c->npools; i++)
            if (strcmp(c->pools[i].name, ident) == 0) {
                config_fail(p, "duplicate pool '%s' (first at line %d)",
                            ident, c->pools[i].line);
                return;
            }
        struct pool *pl = realloc(c->pools, (c->npools + 1) * sizeof(*pl));
        if (pl == NULL)
            goto nomem;
        c->pools = pl;
        pl = &c->pools[c->npools];
        memset(pl, 0, sizeof(*pl));
        config_pool_defaults(pl);
        pl->name = strdup(ident);
        if (pl->name == NULL)
            goto nomem;
        pl->line = p->line;
        p->index = c->npools++;
        p->section = SECTION_POOL;
    }
    return;
nomem:
    config_fail(p, "out of memory");
}

/* Refuses a second occurrence of a key that is not repeatable. */
static int config_key_once(struct config_parse *p, const char *key)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (strcmp(p->keys[i].key, key) == 0) {
            config_fail(p, "duplicate key '%s' (first at line %d)", key,
                        p->keys[i].line);
            return -1;
        }
    if (p->nkeys < CONFIG_KEYS_MAX) {
        p->keys[p->nkeys].key = key;   /* points at a static key table entry */
        p->keys[p->nkeys].line = p->line;
        p->nkeys++;
    }
    return 0;
}

/* ---- value parsers shared by the sections ---------------------------- */

static int config_set_duration(struct config_parse *p, const char *key,
                               const char *value, double *out)
{
    if (config_parse_duration(value, out) == -1)
        return config_fail(p, "%s: bad duration '%s' (use e.g. 500ms, 2s, 5m, 1h)",
                           key, value);
    return 1;
}

static int config_set_uint(struct config_parse *p, const char *key, const char *value,
                           unsigned long min, unsigned long max, unsigned *out)
{
    unsigned long v;
    if (config_parse_uint(value, min, max, &v) == -1)
        return config_fail(p, "%s: '%s' is not a whole number in %lu-%lu",
                           key, value, min, max);
    *out = (unsigned)v;
    return 1;
}

/* A key that takes one of a few words. */
struct config_word {
    const char *word;
    int value;
};

static int config_set_word(struct config_parse *p, const char *key, const char *value,
                           const struct config_word *words, size_t n, int *out)
{
    char known[128] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(value, words[i].word) == 0) {
            *out = words[i].value;
            return 1;
        }
        size_t len = strlen(known);
        snprintf(known + len, sizeof(known) - len, "%s%s", i == 0 ? "" :
                 i + 1 == n ? " or " : ", ", words[i].word);
    }
    return config_fail(p, "%s: expected %s, got '%s'", key, known, value);
}

static int config_set_string(struct config_parse *p, const char *value, char **out)
{
    free(*out);
    *out = strdup(value);
    if (*out == NULL)
        return config_fail(p, "out of memory");
    return 1;
}

/* ---- [global] ---------------------------------------------------------- */

static const char *const config_global_keys[] = {
    "workers", "maxconn", "stats_socket", "stats_http", "log", "shutdown_timeout",
    "user", "group", "splice", "splice_pipes",
};

static int config_global_key(struct config_parse *p, const char *key, const char *value)
{
    struct global_conf *g = &p->cfg->global;

    if (strcmp(key, "workers") == 0) {
        if (strcmp(value, "auto") == 0) {
            p->workers_auto = 1;
            return 1;
        }
        p->workers_auto = 0;
        return config_set_uint(p, key, value, 1, CONFIG_WORKERS_MAX, &g->workers);
    }
    if (strcmp(key, "maxconn") == 0) {
        unsigned long v;
        if (config_parse_uint(value, 1, 10000000, &v) == -1)
            return config_fail(p, "maxconn: '%s' is not a whole number in 1-10000000",
                               value);
        g->maxconn = v;
        return 1;
    }
    if (strcmp(key, "stats_socket") == 0) {
        if (value[0] == '\0' || strlen(value) >= 108)
            return config_fail(p, "stats_socket: path must be 1-107 characters");
        return config_set_string(p, value, &g->stats_socket);
    }
    if (strcmp(key, "stats_http") == 0) {
        char e[256];
        if (net_parse_addr(value, &g->stats_http_addr, e, sizeof(e)) == -1)
            return config_fail(p, "stats_http: %s", e);
        return config_set_string(p, value, &g->stats_http);
    }
    if (strcmp(key, "log") == 0) {
        free(g->log_path);
        g->log_path = NULL;
        if (strcmp(value, "stderr") == 0) {
            g->log = LOG_STDERR;
        } else if (strcmp(value, "off") == 0) {
            g->log = LOG_OFF;
        } else if (value[0] == '/' || value[0] == '.') {
            g->log = LOG_FILE;
            return config_set_string(p, value, &g->log_path);
        } else {
            return config_fail(p, "log: expected stderr, off or a file path "
                               "(absolute or starting with ./), got '%s'", value);
        }
        return 1;
    }
    if (strcmp(key, "shutdown_timeout") == 0)
        return config_set_duration(p, key, value, &g->shutdown_timeout);
    if (strcmp(key, "splice") == 0) {
        static const struct config_word auto_off[] = { { "auto", 1 }, { "off", 0 } };
        return config_set_word(p, key, value, auto_off, ARRAY_LEN(auto_off), &g->splice);
    }
    if (strcmp(key, "splice_pipes") == 0)
        return config_set_uint(p, key, value, 0, 100000, &g->splice_pipes);
    if (strcmp(key, "user") == 0 || strcmp(key, "group") == 0) {
        if (!config_valid_name(value))
            return config_fail(p, "%s: '%s' is not a valid name", key, value);
        return config_set_string(p, value, key[0] == 'u' ? &g->user : &g->group);
    }
    return -1;
}

/* ---- [listener NAME] ----------------------------------------------------- */

static const char *const config_listener_keys[] = { "bind", "pool", "mode",
                                                    "accept_proxy", "maxconn" };

static int config_listener_key(struct config_parse *p, const char *key,
                               const char *value)
{
    struct listener_conf *l = config_cur_listener(p);

    if (strcmp(key, "bind") == 0) {
        struct net_addr addr;
        char e[256];
        if (net_parse_addr(value, &addr, e, sizeof(e)) == -1)
            return config_fail(p, "bind: %s", e);
        struct net_addr *binds = realloc(l->binds, (l->nbinds + 1) * sizeof(*binds));
        if (binds == NULL)
            return config_fail(p, "out of memory");
        l->binds = binds;
        char **texts = realloc(l->bind_texts, (l->nbinds + 1) * sizeof(*texts));
        if (texts == NULL)
            return config_fail(p, "out of memory");
        l->bind_texts = texts;
        texts[l->nbinds] = strdup(value);
        if (texts[l->nbinds] == NULL)
            return config_fail(p, "out of memory");
        binds[l->nbinds++] = addr;
        return 1;
    }
    if (strcmp(key, "pool") == 0) {
        if (!config_valid_name(value))
            return config_fail(p, "pool: '%s' is not a valid pool name", value);
        l->pool_line = p->line;
        return config_set_string(p, value, &l->pool_name);
    }
    if (strcmp(key, "maxconn") == 0) {
        unsigned v = 0;
        if (config_set_uint(p, key, value, 1, 10000000, &v) == 0)
            return 0;
        l->maxconn = v;
        return 1;
    }
    if (strcmp(key, "accept_proxy") == 0) {
        static const struct config_word yes_no[] = { { "yes", 1 }, { "no", 0 } };
        return config_set_word(p, key, value, yes_no, ARRAY_LEN(yes_no), &l->accept_proxy);
    }
    if (strcmp(key, "mode") == 0) {
        static const struct config_word modes[] = {
            { "tcp", LISTENER_TCP }, { "http", LISTENER_HTTP },
        };
        int v = 0;
        int rc = config_set_word(p, key, value, modes, ARRAY_LEN(modes), &v);
        l->mode = (enum listener_mode)v;
        return rc;
    }
    return -1;
}

/* ---- [pool NAME] --------------------------------------------------------- */

static const char *const config_pool_keys[] = {
    "scheduler", "server", "persist", "persist_timeout", "persist_max",
    "balance_factor", "client_maxconn",
    "connect_timeout", "server_timeout", "idle_timeout", "retries",
    "queue_timeout", "health", "health_path", "health_interval",
    "health_timeout", "rise", "fall",
};

/* "NAME ADDR [weight=N] [maxconn=N]" */
static int config_pool_server(struct config_parse *p, struct pool *pool,
                              const char *value)
{
    char copy[512];
    if (strlen(value) >= sizeof(copy))
        return config_fail(p, "server: line too long");
    strcpy(copy, value);

    char *save = NULL;
    char *name = strtok_r(copy, " \t", &save);
    char *addr_text = name ? strtok_r(NULL, " \t", &save) : NULL;
    if (name == NULL || addr_text == NULL)
        return config_fail(p, "server: expected 'NAME ADDRESS [weight=N] [maxconn=N] "
                           "[send-proxy|send-proxy-v2]'");
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

    for (char *opt; (opt = strtok_r(NULL, " \t", &save)) != NULL;) {
        if (strcmp(opt, "send-proxy") == 0) {
            s.send_proxy = PROXY_V1;
            continue;
        }
        if (strcmp(opt, "send-proxy-v2") == 0) {
            s.send_proxy = PROXY_V2;
            continue;
        }
        char *eq = strchr(opt, '=');
        if (eq == NULL)
            return config_fail(p, "server %s: unknown option '%s' (known: weight=N, "
                               "maxconn=N, send-proxy, send-proxy-v2)", name, opt);
        *eq = '\0';
        unsigned long v;
        if (strcmp(opt, "weight") == 0) {
            if (config_parse_uint(eq + 1, 0, SERVER_WEIGHT_MAX, &v) == -1)
                return config_fail(p, "server %s: weight must be 0-%d, got '%s'",
                                   name, SERVER_WEIGHT_MAX, eq + 1);
            s.weight = (unsigned)v;
        } else if (strcmp(opt, "maxconn") == 0) {
            if (config_parse_uint(eq + 1, 0, 1000000, &v) == -1)
                return config_fail(p, "server %s: maxconn must be 0-1000000, got '%s'",
                                   name, eq + 1);
            s.maxconn = (unsigned)v;
        } else {
            return config_fail(p, "server %s: unknown option '%s' (known: weight=N, "
                               "maxconn=N, send-proxy, send-proxy-v2)", name, opt);
        }
    }

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
    s.state = SERVER_UP;
    servers[pool->nservers++] = s;
    return 1;
}

static int config_pool_key(struct config_parse *p, const char *key, const char *value)
{
    struct pool *pool = config_cur_pool(p);

    if (strcmp(key, "server") == 0)
        return config_pool_server(p, pool, value);
    if (strcmp(key, "scheduler") == 0) {
        const struct sched_ops *ops = sched_find(value);
        if (ops == NULL)
            return config_fail(p, "unknown scheduler '%s' (known: %s)", value,
                               sched_names());
        pool->sched = ops;
        return 1;
    }
    if (strcmp(key, "persist") == 0) {
        static const struct config_word modes[] = {
            { "none", PERSIST_NONE }, { "source", PERSIST_SOURCE },
        };
        int v = 0;
        int rc = config_set_word(p, key, value, modes, ARRAY_LEN(modes), &v);
        pool->persist = (enum persist_mode)v;
        return rc;
    }
    if (strcmp(key, "balance_factor") == 0) {
        unsigned v = 0;
        if (config_set_uint(p, key, value, 0, 10000, &v) == 0)
            return 0;
        if (v != 0 && v <= 100)
            return config_fail(p, "balance_factor: must be 0 (off) or above 100 "
                               "(percent of the average load), got %u", v);
        pool->balance_factor = v;
        return 1;
    }
    if (strcmp(key, "health") == 0) {
        static const struct config_word modes[] = {
            { "tcp", HEALTH_TCP }, { "http", HEALTH_HTTP }, { "none", HEALTH_NONE },
        };
        int v = 0;
        int rc = config_set_word(p, key, value, modes, ARRAY_LEN(modes), &v);
        pool->health = (enum health_mode)v;
        return rc;
    }
    if (strcmp(key, "health_path") == 0) {
        if (value[0] != '/' || strpbrk(value, " \t\r\n") != NULL)
            return config_fail(p, "health_path: must start with '/' and hold no "
                               "spaces, got '%s'", value);
        return config_set_string(p, value, &pool->health_path);
    }
    if (strcmp(key, "client_maxconn") == 0)
        return config_set_uint(p, key, value, 0, 1000000, &pool->client_maxconn);
    if (strcmp(key, "persist_max") == 0)
        return config_set_uint(p, key, value, 1, 10000000, &pool->persist_max);
    if (strcmp(key, "retries") == 0)
        return config_set_uint(p, key, value, 0, POOL_RETRIES_MAX, &pool->retries);
    if (strcmp(key, "rise") == 0)
        return config_set_uint(p, key, value, 1, 100, &pool->rise);
    if (strcmp(key, "fall") == 0)
        return config_set_uint(p, key, value, 1, 100, &pool->fall);

    static const struct { const char *key; size_t offset; int nonzero; } durations[] = {
        { "persist_timeout", offsetof(struct pool, persist_timeout), 1 },
        { "connect_timeout", offsetof(struct pool, connect_timeout), 1 },
        { "server_timeout", offsetof(struct pool, server_timeout), 1 },
        { "idle_timeout", offsetof(struct pool, idle_timeout), 1 },
        { "queue_timeout", offsetof(struct pool, queue_timeout), 0 },
        { "health_interval", offsetof(struct pool, health_interval), 1 },
        { "health_timeout", offsetof(struct pool, health_timeout), 1 },
    };
    for (size_t i = 0; i < ARRAY_LEN(durations); i++) {
        if (strcmp(key, durations[i].key) != 0)
            continue;
        double *field = (double *)(void *)((char *)pool + durations[i].offset);
        if (config_set_duration(p, key, value, field) == 0)
            return 0;
        if (durations[i].nonzero && *field <= 0)
            return config_fail(p, "%s: must be above zero", key);
        return 1;
    }
    return -1;
}

/* ---- the inih callbacks --------------------------------------------------- */

static const char *config_known_key(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return keys[i];
    return NULL;
}

static int config_handler(void *user, const char *section, const char *key,
                          const char *value)
{
    struct config_parse *p = user;
    (void)section;   /* tracked by config_section_begin, which sees every header */
    if (p->failed)
        return 1;

    const char *const *keys;
    size_t nkeys;
    const char *where;
    int (*set)(struct config_parse *, const char *, const char *);
    switch (p->section) {
    case SECTION_GLOBAL:
        keys = config_global_keys;
        nkeys = ARRAY_LEN(config_global_keys);
        set = config_global_key;
        where = "[global]";
        break;
    case SECTION_LISTENER:
        keys = config_listener_keys;
        nkeys = ARRAY_LEN(config_listener_keys);
        set = config_listener_key;
        where = "[listener]";
        break;
    case SECTION_POOL:
        keys = config_pool_keys;
        nkeys = ARRAY_LEN(config_pool_keys);
        set = config_pool_key;
        where = "[pool]";
        break;
    default:
        config_fail(p, "key '%s' outside of any section", key);
        return 0;
    }

    const char *known = config_known_key(keys, nkeys, key);
    if (known == NULL) {
        config_fail(p, "unknown key '%s' in %s", key, where);
        return 0;
    }
    if (strcmp(key, "server") != 0 && strcmp(key, "bind") != 0 &&
        config_key_once(p, known) == -1)
        return 0;
    if (value[0] == '\0' && strcmp(key, "stats_socket") != 0) {
        config_fail(p, "%s: empty value", key);
        return 0;
    }
    int rc = set(p, key, value);
    return rc == 1;
}

/* inih's reader: one line per call, counted, so that the handler knows the
 * line it is on. A line longer than inih's buffer is cut and reported. */
static char *config_reader(char *str, int num, void *stream)
{
    struct config_parse *p = stream;
    size_t n = 0, max = (size_t)num - 1;
    int c, truncated = 0;

    if (p->fp != NULL) {
        if (feof(p->fp))
            return NULL;
        while ((c = fgetc(p->fp)) != EOF) {
            if (n < max)
                str[n++] = (char)c;
            else if (c != '\n')
                truncated = 1;
            if (c == '\n')
                break;
        }
        if (c == EOF && n == 0 && !truncated)
            return NULL;
    } else {
        if (*p->text == '\0')
            return NULL;
        while ((c = (unsigned char)*p->text) != '\0') {
            p->text++;
            if (n < max)
                str[n++] = (char)c;
            else if (c != '\n')
                truncated = 1;
            if (c == '\n')
                break;
        }
    }
    str[n] = '\0';
    p->line++;
    if (truncated)
        config_fail(p, "line too long (at most %d characters)", INI_MAX_LINE - 1);

    /* inih reads an indented line as the continuation of the previous value
     * (tcplb has no multi-line values), and skips a UTF-8 BOM that the
     * section detection below would not: hand it the line without either. */
    char *s = str;
    if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (*s == ' ' || *s == '\t')
        s++;
    if (s != str)
        memmove(str, s, strlen(s) + 1);
    if (*str == '[' && !p->failed)
        config_section_begin(p, str);
    return str;
}

/* ---- whole-file checks and set-up ------------------------------------------ */

static unsigned config_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
}

static int config_finish(struct config_parse *p)
{
    struct config *c = p->cfg;
    char e[256];

    if (c->global.workers == 0 || p->workers_auto)
        c->global.workers = config_cpu_count();

    if (c->nlisteners == 0) {
        snprintf(p->err, p->errlen, "%s: no [listener NAME] section: nothing to serve",
                 p->file);
        return -1;
    }
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        p->line = l->line;
        if (l->nbinds == 0)
            return config_fail(p, "listener '%s' has no 'bind' address", l->name), -1;
        if (l->pool_name == NULL)
            return config_fail(p, "listener '%s' has no 'pool'", l->name), -1;
        l->pool = config_find_pool(c, l->pool_name);
        if (l->pool == NULL) {
            p->line = l->pool_line;
            return config_fail(p, "listener '%s': pool '%s' does not exist",
                               l->name, l->pool_name), -1;
        }
        l->counters = counters_listener_new(c->global.workers);
        l->active_all = counters_block_new(sizeof(int64_t));
        if (l->counters == NULL || l->active_all == NULL)
            return config_fail(p, "out of memory"), -1;
    }
    for (size_t i = 0; i < c->npools; i++) {
        struct pool *pool = &c->pools[i];
        p->line = pool->line;
        if (pool->health_path == NULL && config_set_string(p, "/health",
                                                           &pool->health_path) == 0)
            return -1;
        if (pool->health_timeout < 0)
            pool->health_timeout = pool->health_interval < 1 ? pool->health_interval : 1;
        if (pool->health_timeout > pool->health_interval)
            return config_fail(p, "pool '%s': health_timeout must not exceed "
                               "health_interval", pool->name), -1;
        for (uint32_t s = 0; s < pool->nservers; s++)
            pool->servers[s].pool = pool;
        if (pool_start(pool, c->global.workers, e, sizeof(e)) == -1)
            return config_fail(p, "pool '%s': %s", pool->name, e), -1;
    }
    return 0;
}

static struct config *config_parse(struct config_parse *p)
{
    struct config *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(p->err, p->errlen, "%s: out of memory", p->file);
        return NULL;
    }
    c->refs = 1;
    c->global.maxconn = 100000;
    c->global.shutdown_timeout = 10;
    c->global.log = LOG_STDERR;
    c->global.splice = 1;
    c->global.splice_pipes = CONFIG_SPLICE_PIPES;
    c->path = strdup(p->file);
    p->cfg = c;

    int rc = ini_parse_stream(config_reader, p, config_handler, p);
    /* inih only tells the first syntax error at the end: it wins over a
     * recorded error only when it comes first in the file. */
    if (rc > 0 && (!p->failed || rc < p->fail_line)) {
        p->failed = 0;
        p->line = rc;
        config_fail(p, "syntax error: expected '[section]', 'key = value' or a "
                    "comment");
    }
    if (!p->failed && rc < 0)
        snprintf(p->err, p->errlen, "%s: out of memory while parsing", p->file);
    if (p->failed || rc < 0 || config_finish(p) == -1) {
        config_unref(c);
        return NULL;
    }
    return c;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    struct config_parse p = { .file = path, .err = err, .errlen = errlen };
    p.fp = fopen(path, "r");
    if (p.fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct config *c = config_parse(&p);
    fclose(p.fp);
    return c;
}

struct config *config_load_string(const char *name, const char *text,
                                  char *err, size_t errlen)
{
    struct config_parse p = { .file = name, .err = err, .errlen = errlen, .text = text };
    return config_parse(&p);
}

struct config *config_ref(struct config *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void config_unref(struct config *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        free(l->name);
        for (size_t b = 0; b < l->nbinds; b++)
            free(l->bind_texts[b]);
        free(l->bind_texts);
        free(l->binds);
        free(l->pool_name);
        counters_free(l->counters);
        counters_free(l->active_all);
    }
    free(c->listeners);
    for (size_t i = 0; i < c->npools; i++)
        pool_release(&c->pools[i]);
    free(c->pools);
    free(c->global.stats_socket);
    free(c->global.stats_http);
    free(c->global.log_path);
    free(c->global.user);
    free(c->global.group);
    free(c->path);
    free(c);
}

struct pool *config_find_pool(struct config *c, const char *name)
{
    for (size_t i = 0; i < c->npools; i++)
        if (strcmp(c->pools[i].name, name) == 0)
            return &c->pools[i];
    return NULL;
}
