/* config.h — the parsed configuration: a read-only, reference-counted object.
 * Sessions hold a reference for their lifetime, so a reload can publish a new
 * config while old connections finish on the one they started with. Only the
 * runtime fields documented in pool.h (state, weight, active, counters)
 * change after config_load() returns. */
#ifndef TCPLB_CONFIG_H
#define TCPLB_CONFIG_H

#include <stddef.h>
#include "counters.h"
#include "log_line.h"
#include "net.h"
#include "pool.h"

enum listener_mode { LISTENER_TCP = 0, LISTENER_HTTP };
const char *listener_mode_str(enum listener_mode m);

enum log_target { LOG_STDERR = 0, LOG_OFF, LOG_FILE };

#define CONFIG_WORKERS_MAX 64
#define CONFIG_ERR_LEN 512

/* io: how a worker relays established connections. */
enum config_io { CONFIG_IO_EPOLL = 0, CONFIG_IO_URING };

struct global_conf {
    unsigned workers;           /* resolved: "auto" -> CPU count */
    unsigned long maxconn;
    char *stats_socket;         /* owned, NULL if none */
    char *stats_http;           /* owned, NULL if none */
    struct net_addr stats_http_addr;
    enum log_target log;
    enum log_format log_format; /* access lines: logfmt or JSON */
    char *log_path;             /* owned: the log key as written (the path
                                   when log is LOG_FILE) */
    double shutdown_timeout;
    char *user;                 /* owned, NULL: keep the starting user */
    char *group;                /* owned, NULL: the user's primary group */
    int splice;                 /* 1: bulk transfers go through splice() */
    unsigned splice_pipes;      /* kernel pipes over all workers */
    int accept_balance;         /* hand accepted connections to a less
                                   loaded worker (handoff.c) */
    char *resolvers;            /* owned: discover's name servers, NULL:
                                   /etc/resolv.conf */
    enum config_io io;          /* the relay's system calls (session_uring.c) */
};

struct listener_conf {
    char *name;                 /* owned */
    int line;
    char **bind_texts;          /* owned array of owned strings */
    struct net_addr *binds;     /* owned array */
    int *bind_freebind;         /* owned array: `bind = ADDR freebind` */
    size_t nbinds;
    char *pool_name;            /* owned */
    int pool_line;
    struct pool *pool;          /* resolved, points into config->pools */
    enum listener_mode mode;
    int accept_proxy;           /* expects a PROXY v1/v2 header first */
    int log_requests;           /* mode http: one access log line per request */
    unsigned long maxconn;      /* 0 = only the global maxconn */
    int64_t *active_all;        /* owned: open connections, all workers (atomic) */
    struct listener_counters *counters;  /* owned: [workers] */
    /* The listener of the same name in the config a reload brought, NULL
     * when there is none (see server.successor). */
    struct listener_conf *successor;
};

struct config {
    int refs;                   /* atomic */
    char *path;                 /* owned */
    struct global_conf global;
    struct listener_conf *listeners;     /* owned array */
    size_t nlisteners;
    struct pool *pools;                  /* owned array */
    size_t npools;
};

/* Parses and validates FILE. On error returns NULL and writes
 * "FILE:LINE: what is wrong" (or "FILE: ...") into err. The result has one
 * reference, counters allocated and schedulers initialised. */
struct config *config_load(const char *path, char *err, size_t errlen);

/* The same for text in memory; `name` stands for FILE in messages. */
struct config *config_load_string(const char *name, const char *text,
                                  char *err, size_t errlen);

struct config *config_ref(struct config *c);
void config_unref(struct config *c);   /* frees at zero; NULL is a no-op */

struct pool *config_find_pool(struct config *c, const char *name);

/* Durations: "500ms", "2s", "5m", "1h", bare number = ms. Stores seconds.
 * Returns 0/-1. */
int config_parse_duration(const char *text, double *seconds);

#endif
