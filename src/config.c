/* config.c — reads the INI file with inih into a struct config, validates
 * every key and reports the first error as "FILE:LINE: what is wrong".
 * Resolving references (listener -> pool) and allocating runtime parts
 * (counters, scheduler state) happen here too, so a config that loads is a
 * config that runs. Listening and connecting are left to the workers. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"

int config_fail(struct config_parse *p, const char *fmt, ...)
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

/* ---- section handling ------------------------------------------------ */

/* A listener_conf and a pool both begin with their name and line. */
struct config_named {
    char *name;
    int line;
};
_Static_assert(offsetof(struct listener_conf, name) == offsetof(struct config_named, name) &&
               offsetof(struct listener_conf, line) == offsetof(struct config_named, line) &&
               offsetof(struct pool, name) == offsetof(struct config_named, name) &&
               offsetof(struct pool, line) == offsetof(struct config_named, line),
               "listener_conf and pool begin with name and line");

/* Appends a zeroed, named element of <size> bytes to the array *items (of
 * *n) for a new [KIND NAME] section, refusing a name already used. Returns
 * it, or NULL after config_fail(). */
static void *config_add_named(struct config_parse *p, void **items, size_t *n,
                              size_t size, const char *kind, const char *ident)
{
    for (size_t i = 0; i < *n; i++) {
        const struct config_named *e = (const void *)((char *)*items + i * size);
        if (strcmp(e->name, ident) == 0) {
            config_fail(p, "duplicate %s '%s' (first at line %d)", kind, ident, e->line);
            return NULL;
        }
    }
    void *grown = realloc(*items, (*n + 1) * size);
    if (grown == NULL)
        goto nomem;
    *items = grown;
    struct config_named *e = (void *)((char *)grown + *n * size);
    memset(e, 0, size);
    e->name = strdup(ident);
    if (e->name == NULL)
        goto nomem;
    e->line = p->line;
    (*n)++;
    return e;
nomem:
    config_fail(p, "out of memory");
    return NULL;
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
    void *obj = is_listener
        ? config_add_named(p, (void **)&c->listeners, &c->nlisteners,
                           sizeof(struct listener_conf), "listener", ident)
        : config_add_named(p, (void **)&c->pools, &c->npools, sizeof(struct pool),
                           "pool", ident);
    if (obj == NULL)
        return;
    p->section = is_listener ? SECTION_LISTENER : SECTION_POOL;
    p->index = (is_listener ? c->nlisteners : c->npools) - 1;
    config_section_defaults(p, p->section, obj);
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

/* ---- the inih callback ------------------------------------------------------ */

static int config_handler(void *user, const char *section, const char *name,
                          const char *value)
{
    struct config_parse *p = user;
    (void)section;   /* tracked by config_section_begin, which sees every header */
    if (p->failed)
        return 1;
    if (p->section == SECTION_NONE) {
        config_fail(p, "key '%s' outside of any section", name);
        return 0;
    }
    const struct config_key *k = config_key_find(p->section, name);
    if (k == NULL) {
        config_fail(p, "unknown key '%s' in %s", name, config_section_label(p->section));
        return 0;
    }
    if (!(k->flags & CONFIG_REPEAT) && config_key_once(p, k->name) == -1)
        return 0;
    if (value[0] == '\0' && !(k->flags & CONFIG_EMPTY_OK)) {
        config_fail(p, "%s: empty value", name);
        return 0;
    }
    void *obj = p->section == SECTION_GLOBAL ? (void *)&p->cfg->global
              : p->section == SECTION_LISTENER ? (void *)&p->cfg->listeners[p->index]
                                               : (void *)&p->cfg->pools[p->index];
    return config_key_set(p, k, value, obj) == 1;
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
        if (l->log_requests && l->mode != LISTENER_HTTP)
            return config_fail(p, "listener '%s': log_requests = on needs mode = http",
                               l->name), -1;
        l->counters = counters_listener_new(c->global.workers);
        l->active_all = counters_block_new(sizeof(int64_t));
        if (l->counters == NULL || l->active_all == NULL)
            return config_fail(p, "out of memory"), -1;
    }
    for (size_t i = 0; i < c->npools; i++) {
        struct pool *pool = &c->pools[i];
        p->line = pool->line;
        if (pool->health_timeout == 0)     /* unset */
            pool->health_timeout = pool->health_interval < 1 ? pool->health_interval : 1;
        if (pool->health_timeout > pool->health_interval)
            return config_fail(p, "pool '%s': health_timeout must not exceed "
                               "health_interval", pool->name), -1;
        if (pool->health == HEALTH_EXPECT && pool->health_expect_len == 0)
            return config_fail(p, "pool '%s': health = expect needs health_expect "
                               "(what the answer starts with)", pool->name), -1;
        if (pool->health != HEALTH_EXPECT &&
            (pool->health_send != NULL || pool->health_expect != NULL))
            return config_fail(p, "pool '%s': health_send and health_expect need "
                               "health = expect", pool->name), -1;
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
    c->path = strdup(p->file);
    p->cfg = c;
    config_section_defaults(p, SECTION_GLOBAL, &c->global);

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
        free(l->bind_freebind);
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
    free(c->global.resolvers);
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
