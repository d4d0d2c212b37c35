/* discover.c — DNS discovery of a pool's servers with c-ares (see
 * discover.h): the spec and answer parsers, then the lookups on the main
 * loop. */
#include <arpa/inet.h>
#include <ctype.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <ares_nameser.h>

#include "config.h"
#include "discover.h"
#include "events.h"
#include "log.h"
#include "util.h"

/* ---- what the config says ------------------------------------------------------ */

static int discover_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DISCOVER_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return 0;
    return 1;
}

int discover_parse_spec(const char *text, struct discover_spec *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(text, "srv:", 4) == 0) {
        if (!discover_valid_name(text + 4)) {
            snprintf(err, errlen, "discover: '%s' is not a DNS name (srv:_SERVICE._PROTO."
                     "NAME)", text + 4);
            return -1;
        }
        out->kind = DISCOVER_SRV;
        snprintf(out->name, sizeof(out->name), "%s", text + 4);
        return 0;
    }
    const char *colon = strrchr(text, ':');
    unsigned port = 0;
    if (colon == NULL || colon == text || net_parse_port(colon + 1, &port) == -1 ||
        (size_t)(colon - text) > DISCOVER_NAME_MAX) {
        snprintf(err, errlen, "discover: expected HOST:PORT or srv:_SERVICE._PROTO.NAME, "
                 "got '%s'", text);
        return -1;
    }
    memcpy(out->name, text, (size_t)(colon - text));
    out->name[colon - text] = '\0';
    if (!discover_valid_name(out->name)) {
        snprintf(err, errlen, "discover: '%s' is not a DNS name", out->name);
        return -1;
    }
    out->kind = DISCOVER_HOST;
    out->port = port;
    return 0;
}

int discover_parse_resolvers(const char *text, char *out, size_t outlen, char *err,
                             size_t errlen)
{
    size_t used = 0;
    out[0] = '\0';
    const char *p = text;
    int count = 0;
    while (*p != '\0') {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == 0)
            break;
        char word[80], host[80];
        if (len >= sizeof(word)) {
            snprintf(err, errlen, "resolvers: '%.*s' is too long", (int)len, p);
            return -1;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        p += len;
        unsigned port = 53;
        const char *port_text = NULL;
        if (word[0] == '[') {
            char *close = strchr(word, ']');
            if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
                snprintf(err, errlen, "resolvers: bad address '%s' (IPv6 as [IP]:PORT)",
                         word);
                return -1;
            }
            *close = '\0';
            snprintf(host, sizeof(host), "%s", word + 1);
            port_text = close[1] == ':' ? close + 2 : NULL;
        } else {
            char *colon = strchr(word, ':');
            if (colon != NULL && strchr(colon + 1, ':') != NULL) {
                snprintf(err, errlen, "resolvers: bad address '%s' (IPv6 as [IP]:PORT)",
                         word);
                return -1;
            }
            if (colon != NULL) {
                *colon = '\0';
                port_text = colon + 1;
            }
            snprintf(host, sizeof(host), "%s", word);
        }
        if (port_text != NULL && net_parse_port(port_text, &port) == -1) {
            snprintf(err, errlen, "resolvers: bad port in '%s'", word);
            return -1;
        }
        struct net_addr ip;
        char e[128];
        if (net_parse_ip(host, &ip, e, sizeof(e)) == -1) {
            snprintf(err, errlen, "resolvers: '%s' is not an IP address", host);
            return -1;
        }
        int v6 = ip.ss.ss_family == AF_INET6;
        int n = snprintf(out + used, outlen - used, "%s%s%s%s:%u", used ? "," : "",
                         v6 ? "[" : "", host, v6 ? "]" : "", port);
        if (n < 0 || (size_t)n >= outlen - used) {
            snprintf(err, errlen, "resolvers: too many name servers");
            return -1;
        }
        used += (size_t)n;
        count++;
    }
    if (count == 0) {
        snprintf(err, errlen, "resolvers: expected IP[:PORT] ...");
        return -1;
    }
    return 0;
}

/* ---- what the name servers answer ------------------------------------------------- */

int discover_parse_srv(const unsigned char *abuf, int alen, struct discover_srv *out,
                       size_t max)
{
    struct ares_srv_reply *list = NULL;
    if (ares_parse_srv_reply(abuf, alen, &list) != ARES_SUCCESS)
        return -1;
    unsigned best = 65536, heaviest = 0;
    for (struct ares_srv_reply *r = list; r != NULL; r = r->next)
        if (r->port > 0 && discover_valid_name(r->host) && r->priority < best)
            best = r->priority;
    /* the scale comes from the records kept, not from those dropped */
    for (struct ares_srv_reply *r = list; r != NULL; r = r->next)
        if (r->priority == best && r->port > 0 && discover_valid_name(r->host) &&
            r->weight > heaviest)
            heaviest = r->weight;
    size_t n = 0;
    for (struct ares_srv_reply *r = list; r != NULL && n < max; r = r->next) {
        if (r->priority != best || r->port == 0 || !discover_valid_name(r->host))
            continue;
        /* SRV weights are 0..65535; server weights 1..256, kept in
         * proportion when the answer's are larger */
        unsigned w = r->weight;
        if (heaviest > SERVER_WEIGHT_MAX)
            w = (unsigned)(((unsigned long)w * SERVER_WEIGHT_MAX + heaviest / 2) / heaviest);
        if (w < 1)
            w = 1;
        snprintf(out[n].target, sizeof(out[n].target), "%s", r->host);
        out[n].port = r->port;
        out[n].weight = w;
        out[n].priority = r->priority;
        n++;
    }
    ares_free_data(list);
    return (int)n;
}

static void discover_add_entry(struct membership_entry *set, size_t *n, size_t max,
                               const struct net_addr *a, unsigned weight)
{
    for (size_t i = 0; i < *n; i++)
        if (set[i].addr.len == a->len && memcmp(&set[i].addr.ss, &a->ss, a->len) == 0)
            return;
    if (*n >= max)
        return;
    set[*n].addr = *a;
    set[*n].weight = weight;
    (*n)++;
}

int discover_parse_addrs(const unsigned char *abuf, int alen, int type, unsigned port,
                         unsigned weight, struct membership_entry *set, size_t *n,
                         size_t max)
{
    enum { RECORDS = DISCOVER_MAX };
    int count = RECORDS;
    struct net_addr a;
    if (type == T_A) {
        struct ares_addrttl ttls[RECORDS];
        if (ares_parse_a_reply(abuf, alen, NULL, ttls, &count) != ARES_SUCCESS)
            return -1;
        for (int i = 0; i < count; i++) {
            memset(&a, 0, sizeof(a));
            struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            sin->sin_addr = ttls[i].ipaddr;
            a.len = sizeof(*sin);
            discover_add_entry(set, n, max, &a, weight);
        }
        return count;
    }
    if (type == T_AAAA) {
        struct ares_addr6ttl ttls[RECORDS];
        if (ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &count) != ARES_SUCCESS)
            return -1;
        for (int i = 0; i < count; i++) {
            memset(&a, 0, sizeof(a));
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            memcpy(&sin6->sin6_addr, &ttls[i].ip6addr, sizeof(sin6->sin6_addr));
            a.len = sizeof(*sin6);
            discover_add_entry(set, n, max, &a, weight);
        }
        return count;
    }
    return -1;
}

/* ---- the lookups ------------------------------------------------------------------ */

#define DISCOVER_SOCKS 32
#define DISCOVER_SRV_TARGETS 64

/* A name a round looks up addresses of (the host, or one SRV target). */
struct discover_name {
    int answered;               /* some query of it found an address */
    int failed;                 /* some query of it failed (not "no record") */
};

/* One pool's discovery. */
struct discover_pool {
    struct pool *pool;
    struct discover_spec spec;
    ev_timer round;             /* the next lookup */
    unsigned pending;           /* queries of this round still out */
    unsigned generation;        /* of the round, so stale answers are dropped */
    struct membership_entry set[DISCOVER_MAX];
    size_t n;
    int error;                  /* first ares status of the round, 0: none */
    int srv_failed;             /* the SRV query itself failed */
    struct discover_name names[DISCOVER_SRV_TARGETS];
    unsigned nnames;
    int failing;                /* the last round found nothing */
};

/* One query in flight; freed by its callback. */
struct discover_query {
    struct discover_pool *dp;
    unsigned generation;
    int type;                   /* T_A, T_AAAA or T_SRV */
    unsigned port, weight;
    unsigned name;              /* in dp->names, for address queries */
};

/* A socket c-ares asked to watch. */
struct discover_sock {
    ev_io io;
    int used;
};


static struct {
    struct ev_loop *loop;
    struct config *cfg;         /* not owned: the running one */
    struct health *health;      /* not owned */
    ares_channel channel;
    int ready, library;
    struct discover_sock socks[DISCOVER_SOCKS];
    ev_timer timeout;           /* c-ares' next timeout */
    ev_timer reap;              /* leaving servers that emptied */
    struct discover_pool *pools;
    size_t npools;
} dsc;

static void discover_arm_timeout(void)
{
    if (!dsc.ready)
        return;
    struct timeval tv, *t = ares_timeout(dsc.channel, NULL, &tv);
    ev_timer_stop(dsc.loop, &dsc.timeout);
    if (t != NULL) {
        ev_timer_set(&dsc.timeout, t->tv_sec + t->tv_usec / 1e6 + 0.001, 0);
        ev_timer_start(dsc.loop, &dsc.timeout);
    }
}

static void discover_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    ares_process_fd(dsc.channel, (revents & EV_READ) ? w->fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? w->fd : ARES_SOCKET_BAD);
    discover_arm_timeout();
}

static void discover_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    ares_process_fd(dsc.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    discover_arm_timeout();
}

/* c-ares opens, closes and wants to read or write its sockets. */
static void discover_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    struct discover_sock *free_slot = NULL;
    for (size_t i = 0; i < DISCOVER_SOCKS; i++) {
        struct discover_sock *s = &dsc.socks[i];
        if (!s->used) {
            if (free_slot == NULL)
                free_slot = s;
            continue;
        }
        if (s->io.fd != fd)
            continue;
        ev_io_stop(dsc.loop, &s->io);
        if (!readable && !writable) {
            s->used = 0;
            return;
        }
        ev_io_set(&s->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
        ev_io_start(dsc.loop, &s->io);
        return;
    }
    if ((!readable && !writable) || free_slot == NULL)
        return;                 /* more sockets than slots: c-ares times it out */
    free_slot->used = 1;
    ev_io_init(&free_slot->io, discover_io_cb, fd,
               (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(dsc.loop, &free_slot->io);
}

static void discover_query(struct discover_pool *dp, const char *name, int type,
                           unsigned port, unsigned weight, unsigned index);

/* A round's answer is whole when every name it looked up answered with an
 * address or said it has none; a name whose queries only failed (a timeout,
 * a refusal) leaves the round partial, and a partial round changes nothing.
 * One family may fail while the other answers: many name servers refuse
 * AAAA for a name they hold only an A record for. */
static int discover_round_whole(const struct discover_pool *dp)
{
    if (dp->srv_failed || dp->n == 0)
        return 0;
    for (unsigned i = 0; i < dp->nnames; i++)
        if (dp->names[i].failed && !dp->names[i].answered)
            return 0;
    return 1;
}

static void discover_round_done(struct discover_pool *dp)
{
    double now = ev_now(dsc.loop);
    struct pool *pool = dp->pool;
    if (!discover_round_whole(dp)) {
        unsigned have = 0;
        uint32_t ns = pool_nservers(pool);
        for (uint32_t i = 0; i < ns; i++)
            have += server_listed(&pool->servers[i]) &&
                    pool->servers[i].origin == SERVER_FROM_DISCOVERY;
        if (!dp->failing) {
            char why[320];
            snprintf(why, sizeof(why), "lookup of %s %s%s; keeping the %u servers found "
                     "before", dp->spec.name, dp->error ? "failed: " : "found no address",
                     dp->error ? ares_strerror(dp->error) : "", have);
            log_msg("pool %s: discover: %s", pool->name, why);
            events_note(pool->name, "discover", "ok", "failed", why);
            dp->failing = 1;
        }
    } else {
        if (dp->failing) {
            char why[320];
            snprintf(why, sizeof(why), "lookup of %s answers again: %zu addresses",
                     dp->spec.name, dp->n);
            log_msg("pool %s: discover: %s", pool->name, why);
            events_note(pool->name, "discover", "failed", "ok", why);
            dp->failing = 0;
        }
        membership_sync(dsc.cfg, dsc.health, pool, dp->set, dp->n, now);
    }
    ev_timer_set(&dp->round, pool->discover_interval, 0);
    ev_timer_start(dsc.loop, &dp->round);
}

static void discover_answer_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                               int alen)
{
    (void)timeouts;
    struct discover_query *q = arg;
    struct discover_pool *dp = q->dp;
    if (status == ARES_EDESTRUCTION || q->generation != dp->generation) {
        free(q);
        return;
    }
    if (status != ARES_SUCCESS && q->type == T_SRV)
        dp->srv_failed = 1;
    if (status == ARES_SUCCESS && q->type == T_SRV) {
        struct discover_srv srv[DISCOVER_SRV_TARGETS];
        int k = discover_parse_srv(abuf, alen, srv, DISCOVER_SRV_TARGETS);
        if (k < 0 && dp->error == 0)
            dp->error = ARES_EBADRESP;
        for (int i = 0; i < k && dp->nnames < DISCOVER_SRV_TARGETS; i++) {
            unsigned idx = dp->nnames++;
            dp->names[idx] = (struct discover_name){ 0, 0 };
            discover_query(dp, srv[i].target, T_A, srv[i].port, srv[i].weight, idx);
            discover_query(dp, srv[i].target, T_AAAA, srv[i].port, srv[i].weight, idx);
        }
    } else if (status == ARES_SUCCESS) {
        size_t before = dp->n;
        int records = discover_parse_addrs(abuf, alen, q->type, q->port, q->weight,
                                           dp->set, &dp->n, DISCOVER_MAX);
        if (records < 0) {
            dp->names[q->name].failed = 1;
            if (dp->error == 0)
                dp->error = ARES_EBADRESP;
        } else if (records > 0 || dp->n > before) {
            dp->names[q->name].answered = 1;
        }
    } else if (status != ARES_ENODATA) {
        if (q->type != T_SRV)
            dp->names[q->name].failed = 1;  /* "no such record" is an answer */
        if (dp->error == 0)
            dp->error = status;
    }
    free(q);
    if (--dp->pending == 0)
        discover_round_done(dp);
}

static void discover_query(struct discover_pool *dp, const char *name, int type,
                           unsigned port, unsigned weight, unsigned index)
{
    struct discover_query *q = malloc(sizeof(*q));
    if (q == NULL) {
        if (type == T_SRV)
            dp->srv_failed = 1;
        else
            dp->names[index].failed = 1;
        if (dp->error == 0)
            dp->error = ARES_ENOMEM;
        return;
    }
    *q = (struct discover_query){ dp, dp->generation, type, port, weight, index };
    dp->pending++;
    ares_search(dsc.channel, name, C_IN, type, discover_answer_cb, q);
    discover_arm_timeout();
}

static void discover_round_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct discover_pool *dp = container_of(w, struct discover_pool, round);
    dp->generation++;
    dp->n = 0;
    dp->error = 0;
    dp->srv_failed = 0;
    dp->nnames = 0;
    dp->pending = 1;            /* held until every query of the round is out */
    if (dp->spec.kind == DISCOVER_SRV) {
        discover_query(dp, dp->spec.name, T_SRV, 0, 1, 0);
    } else {
        dp->names[0] = (struct discover_name){ 0, 0 };
        dp->nnames = 1;
        discover_query(dp, dp->spec.name, T_A, dp->spec.port, 1, 0);
        discover_query(dp, dp->spec.name, T_AAAA, dp->spec.port, 1, 0);
    }
    if (--dp->pending == 0)
        discover_round_done(dp);
}

static void discover_reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    for (size_t i = 0; i < dsc.npools; i++)
        membership_reap(dsc.health, dsc.pools[i].pool, ev_now(loop));
}

void discover_stop(void)
{
    if (!dsc.ready)
        return;
    for (size_t i = 0; i < dsc.npools; i++)
        ev_timer_stop(dsc.loop, &dsc.pools[i].round);
    ev_timer_stop(dsc.loop, &dsc.timeout);
    ev_timer_stop(dsc.loop, &dsc.reap);
    ares_destroy(dsc.channel);  /* answers ARES_EDESTRUCTION to what is out */
    for (size_t i = 0; i < DISCOVER_SOCKS; i++)
        if (dsc.socks[i].used) {
            ev_io_stop(dsc.loop, &dsc.socks[i].io);
            dsc.socks[i].used = 0;
        }
    free(dsc.pools);
    dsc.pools = NULL;
    dsc.npools = 0;
    dsc.ready = 0;
}

int discover_start(struct ev_loop *loop, struct config *cfg, struct health *h,
                   char *err, size_t errlen)
{
    discover_stop();
    size_t want = 0;
    for (size_t p = 0; p < cfg->npools; p++)
        want += cfg->pools[p].discover != NULL;
    if (want == 0)
        return 0;
    if (!dsc.library) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "discover: c-ares: %s", ares_strerror(rc));
            return -1;
        }
        dsc.library = 1;
    }
    struct ares_options opts = { 0 };
    opts.sock_state_cb = discover_sock_state_cb;
    opts.timeout = 1000;        /* ms per try; three tries */
    opts.tries = 3;
    int rc = ares_init_options(&dsc.channel, &opts, ARES_OPT_SOCK_STATE_CB |
                               ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "discover: c-ares: %s", ares_strerror(rc));
        return -1;
    }
    if (cfg->global.resolvers != NULL) {
        char csv[1024];
        if (discover_parse_resolvers(cfg->global.resolvers, csv, sizeof(csv), err,
                                     errlen) == -1 ||
            (rc = ares_set_servers_ports_csv(dsc.channel, csv)) != ARES_SUCCESS) {
            if (rc != ARES_SUCCESS)
                snprintf(err, errlen, "discover: resolvers: %s", ares_strerror(rc));
            ares_destroy(dsc.channel);
            return -1;
        }
    }
    dsc.pools = calloc(want, sizeof(*dsc.pools));
    if (dsc.pools == NULL) {
        ares_destroy(dsc.channel);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dsc.loop = loop;
    dsc.cfg = cfg;
    dsc.health = h;
    dsc.ready = 1;
    ev_init(&dsc.timeout, discover_timeout_cb);
    ev_timer_init(&dsc.reap, discover_reap_cb, 1.0, 1.0);
    ev_timer_start(loop, &dsc.reap);
    for (size_t p = 0; p < cfg->npools; p++) {
        struct pool *pool = &cfg->pools[p];
        if (pool->discover == NULL)
            continue;
        struct discover_pool *dp = &dsc.pools[dsc.npools++];
        dp->pool = pool;
        /* checked when the config was read */
        (void)discover_parse_spec(pool->discover, &dp->spec, err, errlen);
        ev_timer_init(&dp->round, discover_round_cb, 0.0, 0);   /* the first at once */
        ev_timer_start(loop, &dp->round);
    }
    return 0;
}
