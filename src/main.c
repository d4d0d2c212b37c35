/* main.c — command line, start-up, signals and shutdown. The main thread
 * owns the config reference in force, the stats socket and the signal
 * watchers; the data path lives in the workers. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"
#include "health.h"
#include "history.h"
#include "listener.h"
#include "log.h"
#include "stats.h"
#include "stats_http.h"
#include "stats_socket.h"
#include "discover.h"
#include "membership.h"
#include "notify.h"
#include "util.h"
#include "worker.h"

/* how often STATUS= is sent under a service manager */
#define MAIN_STATUS_EVERY 5.0

struct main_state {
    struct ev_loop *loop;
    struct config *config;
    struct worker *workers;        /* owned [nworkers] */
    unsigned nworkers;
    unsigned exited;               /* workers whose thread ended (atomic) */
    int stopping;
    unsigned reloads;              /* reloads handed to the workers */
    ev_async worker_exit;
    ev_signal sigterm, sigint, sighup, sigusr1;
    ev_timer history_timer;        /* samples the page's chart */
    ev_timer status_timer;         /* STATUS= to the service manager */
    ev_timer watchdog_timer;       /* WATCHDOG=1, when the manager asks */
    int watchdog_silent;           /* a worker did not answer: logged */
    struct stats_socket *stats;
    struct health *health;
    struct stats_http *http;
    struct stats_ctx stats_ctx;
};

static struct main_state main_state;

static void main_usage(FILE *to)
{
    fprintf(to,
            "usage: tcplb -f FILE        run in the foreground with FILE\n"
            "       tcplb -c -f FILE     check FILE and exit (0 valid)\n"
            "       tcplb -V | -h        version | this help\n");
}

static double main_now(void)
{
    return ev_time();
}

/* Called in each worker thread as it ends. */
static void main_worker_exited(struct worker *w)
{
    (void)w;
    __atomic_add_fetch(&main_state.exited, 1, __ATOMIC_ACQ_REL);
    ev_async_send(main_state.loop, &main_state.worker_exit);
}

static void main_worker_exit_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    if (__atomic_load_n(&main_state.exited, __ATOMIC_ACQUIRE) == main_state.nworkers)
        ev_break(loop, EVBREAK_ALL);
}

/* The one-line STATUS= of the notify protocol: what `systemctl status`
 * shows under the unit. */
static void main_status(struct main_state *m, const char *what, char *out, size_t outlen)
{
    unsigned up = 0, listed = 0;
    for (size_t p = 0; p < m->config->npools; p++) {
        const struct pool *pool = &m->config->pools[p];
        for (uint32_t i = 0; i < pool_nservers(pool); i++) {
            const struct server *s = &pool->servers[i];
            if (!server_listed(s))
                continue;
            listed++;
            up += server_state(s) == SERVER_UP;
        }
    }
    snprintf(out, outlen, "%s%s%lld active connections, %u of %u servers up",
             what != NULL ? what : "", what != NULL ? "; " : "",
             (long long)worker_conn_count(), up, listed);
}

static void main_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    if (main_state.stopping) {
        log_msg("signal %d: already stopping", w->signum);
        return;
    }
    main_state.stopping = 1;
    main_state.stats_ctx.stopping = 1;      /* GET /health answers 503 */
    char status[200];
    main_status(&main_state, "stopping", status, sizeof(status));
    notify_stopping(status);
    log_msg("signal %d: stopping; open connections get up to %.1fs to finish",
            w->signum, main_state.config->global.shutdown_timeout);
    for (unsigned i = 0; i < main_state.nworkers; i++)
        worker_request_stop(&main_state.workers[i]);
}

/* Settings that only a restart changes (flagged so in the key table): a
 * reload keeps the running ones and says so. */
static void main_reload_keep_global(struct config *now, struct config *next)
{
    const char *kept[16];
    size_t nkept = config_restart_changes(now, next, kept, ARRAY_LEN(kept));
    for (size_t i = 0; i < nkept; i++)
        log_msg("reload: %s changed; it takes a restart, the running one stays",
                kept[i]);
}

/* Clears what a reload attempt linked from the running config to the next
 * one: sessions follow these links when their worker applies the reload. */
static void main_forget_successors(struct config *c)
{
    for (size_t i = 0; i < c->nlisteners; i++)
        c->listeners[i].successor = NULL;
    for (size_t i = 0; i < c->npools; i++)
        pool_forget_successors(&c->pools[i]);
}

/* SIGHUP: load and validate the file completely, then swap. Nothing of the
 * running state changes unless every step that can fail has succeeded. */
static int main_reload(struct main_state *m)
{
    char err[CONFIG_ERR_LEN];
    struct config *old = m->config;

    for (unsigned i = 0; i < m->nworkers; i++)
        if (worker_reload_applied(&m->workers[i]) != m->reloads) {
            log_msg("reload refused: the previous one is still being applied");
            return -1;
        }
    struct config *next = config_load(old->path, err, sizeof(err));
    if (next == NULL) {
        log_msg("reload refused, the running configuration stays: %s", err);
        return -1;
    }
    if (next->global.workers != old->global.workers) {
        log_msg("reload refused: workers %u -> %u takes a restart",
                old->global.workers, next->global.workers);
        config_unref(next);
        return -1;
    }
    main_reload_keep_global(old, next);

    struct listen_sock *socks[CONFIG_WORKERS_MAX];
    size_t nsocks[CONFIG_WORKERS_MAX];
    for (unsigned i = 0; i < m->nworkers; i++) {
        struct worker *w = &m->workers[i];
        socks[i] = listener_open_all(next, w->socks, w->nsocks, &nsocks[i], err,
                                     sizeof(err));
        if (socks[i] == NULL) {
            log_msg("reload refused, the running configuration stays: %s", err);
            for (unsigned j = 0; j < i; j++)
                listener_retire(socks[j], nsocks[j], m->workers[j].socks,
                                m->workers[j].nsocks);
            config_unref(next);
            return -1;
        }
    }

    /* Past this point nothing fails but the health checker's allocation. */
    main_forget_successors(old);
    for (size_t p = 0; p < next->npools; p++) {
        struct pool *was = config_find_pool(old, next->pools[p].name);
        if (was == NULL)
            continue;
        /* what discovery found stays while the new config looks again */
        membership_carry(&next->pools[p], was, next->global.workers);
        pool_adopt(&next->pools[p], was);
    }
    for (size_t l = 0; l < next->nlisteners; l++)
        for (size_t o = 0; o < old->nlisteners; o++)
            if (strcmp(next->listeners[l].name, old->listeners[o].name) == 0) {
                old->listeners[o].successor = &next->listeners[l];
                counters_free(next->listeners[l].counters);
                next->listeners[l].counters = counters_ref(old->listeners[o].counters);
                counters_free(next->listeners[l].active_all);
                next->listeners[l].active_all = counters_ref(old->listeners[o].active_all);
            }
    struct health *health = health_start(m->loop, next, m->health, err, sizeof(err));
    if (health == NULL) {
        log_msg("reload refused, the running configuration stays: %s", err);
        for (unsigned i = 0; i < m->nworkers; i++)
            listener_retire(socks[i], nsocks[i], m->workers[i].socks,
                            m->workers[i].nsocks);
        main_forget_successors(old);
        config_unref(next);
        return -1;
    }
    health_stop(m->health);
    m->health = health;
    m->stats_ctx.health = health;
    m->stats_ctx.config = next;
    m->config = next;
    if (discover_start(m->loop, next, health, err, sizeof(err)) == -1)
        log_msg("reload: %s; the pools keep the servers they have", err);
    m->reloads++;
    for (unsigned i = 0; i < m->nworkers; i++)
        worker_reload(&m->workers[i], config_ref(next), socks[i], nsocks[i]);
    config_unref(old);     /* the main thread's; workers and sessions hold theirs */
    log_msg("reloaded %s: %zu listeners, %zu pools", next->path, next->nlisteners,
            next->npools);
    return 0;
}

static void main_status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    char status[200];
    main_status(&main_state, main_state.stopping ? "stopping" : NULL, status, sizeof(status));
    notify_status(status);
}

/* WATCHDOG=1 only while every loop turns: the main loop sends it, each
 * worker's loop must have answered the previous tick's ping. A stuck worker
 * silences it, and the manager restarts tcplb. */
static void main_watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    struct main_state *m = &main_state;
    unsigned silent = m->nworkers;
    for (unsigned i = 0; i < m->nworkers; i++)
        if (!worker_ping_answered(&m->workers[i])) {
            silent = i;
            break;
        }
    /* stopping workers end their loops: nothing left to ask */
    if (silent == m->nworkers || m->stopping) {
        notify_watchdog();
        m->watchdog_silent = 0;
    } else if (!m->watchdog_silent) {
        m->watchdog_silent = 1;
        log_msg("watchdog: worker %u did not answer within %.1fs; not telling the "
                "service manager", silent, w->repeat);
    }
    if (!m->stopping)
        for (unsigned i = 0; i < m->nworkers; i++)
            worker_ping(&m->workers[i]);
}

static void main_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (main_state.stopping) {
        log_msg("SIGHUP while stopping: no reload");
        return;
    }
    /* the manager hears of every reload, refused ones too: it waits for
     * READY=1 after RELOADING=1 */
    notify_reloading();
    int applied = main_reload(&main_state) == 0;
    char status[200];
    main_status(&main_state, applied ? "reloaded" : "reload refused (see the log)", status,
                sizeof(status));
    notify_ready(status);
}

static void main_history_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    history_sample(main_state.stats_ctx.history, main_state.config, ev_time());
}

static void main_usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    log_reopen();
}

/* Each worker holds two descriptors per connection and two per splice
 * pipe; ask for what maxconn and splice_pipes need, as far as the hard limit
 * allows, and say so if it falls short. */
static void main_raise_nofile(unsigned long maxconn, unsigned splice_pipes)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = (rlim_t)maxconn * 2 + (rlim_t)splice_pipes * 2 + 256;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    if (rl.rlim_cur >= want)
        return;
    /* a small limit leaves a smaller reserve for the rest */
    rlim_t reserve = (rl.rlim_cur > 512 ? 256 : rl.rlim_cur / 4) + (rlim_t)splice_pipes * 2;
    rlim_t fit = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) / 2 : 0;
    log_msg("open files limited to %llu (hard limit): about %llu connections "
            "fit, below maxconn %lu", (unsigned long long)rl.rlim_cur,
            (unsigned long long)fit, maxconn);
}

/* Root with a stats socket in a directory others may write to (without
 * the sticky bit) would let anyone swap the socket for their own: refuse. */
static int main_check_socket_dir(const char *path, char *err, size_t errlen)
{
    if (path == NULL || geteuid() != 0)
        return 0;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen, "refusing to run as root with the stats socket in %s, "
                 "which others may write to", dir);
        return -1;
    }
    return 0;
}

/* Every listener is bound and every worker runs: READY=1, then the
 * periodic STATUS= and, when the manager set WATCHDOG_USEC, WATCHDOG=1 at
 * half its interval (sd_watchdog_enabled(3)'s advice). */
static void main_notify_start(struct main_state *m)
{
    if (!notify_enabled())
        return;
    char status[200];
    main_status(m, "ready", status, sizeof(status));
    notify_ready(status);
    ev_timer_init(&m->status_timer, main_status_cb, MAIN_STATUS_EVERY, MAIN_STATUS_EVERY);
    ev_timer_start(m->loop, &m->status_timer);
    uint64_t usec = notify_watchdog_usec();
    if (usec == 0)
        return;
    double every = (double)usec / 2e6;
    notify_watchdog();
    for (unsigned i = 0; i < m->nworkers; i++)
        worker_ping(&m->workers[i]);
    ev_timer_init(&m->watchdog_timer, main_watchdog_cb, every, every);
    ev_timer_start(m->loop, &m->watchdog_timer);
    log_msg("watchdog: telling the service manager every %.3fs", every);
}

/* user/group: everything privileged (binding, the stats socket, the log) is
 * open; give up root before any worker starts. */
static int main_drop_privileges(const struct global_conf *g, char *err, size_t errlen)
{
    if (g->user == NULL && g->group == NULL)
        return 0;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (g->user != NULL) {
        struct passwd *pw = getpwnam(g->user);
        if (pw == NULL) {
            snprintf(err, errlen, "user %s: no such user", g->user);
            return -1;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (g->group != NULL) {
        struct group *gr = getgrnam(g->group);
        if (gr == NULL) {
            snprintf(err, errlen, "group %s: no such group", g->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (g->stats_socket != NULL && chown(g->stats_socket, uid, gid) == -1) {
        snprintf(err, errlen, "chown %s: %s", g->stats_socket, strerror(errno));
        return -1;
    }
    if (setgroups(1, &gid) == -1 || setgid(gid) == -1 || setuid(uid) == -1) {
        snprintf(err, errlen, "cannot switch to uid %u gid %u: %s", (unsigned)uid,
                 (unsigned)gid, strerror(errno));
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {     /* must not be able to come back */
        snprintf(err, errlen, "privileges were not dropped");
        return -1;
    }
    log_msg("running as uid %u gid %u", (unsigned)uid, (unsigned)gid);
    return 0;
}

static int main_run(struct config *config)
{
    char err[CONFIG_ERR_LEN];
    struct main_state *m = &main_state;
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    m->config = config;
    m->nworkers = config->global.workers;
    m->loop = ev_default_loop(EVFLAG_AUTO);
    if (m->loop == NULL) {
        fprintf(stderr, "tcplb: cannot create the main event loop\n");
        config_unref(config);
        return 1;
    }
    main_raise_nofile(config->global.maxconn, config->global.splice_pipes);
    if (log_open(&config->global, m->nworkers, err, sizeof(err)) == -1) {
        fprintf(stderr, "tcplb: %s\n", err);
        ev_loop_destroy(m->loop);
        config_unref(config);
        return 1;
    }

    /* before privileges go: the manager's socket may be root's */
    if (notify_open(err, sizeof(err)) == -1)
        log_msg("%s; the service manager will not hear from tcplb", err);

    m->workers = calloc(m->nworkers, sizeof(*m->workers));
    if (m->workers == NULL)
        goto fail;
    for (unsigned i = 0; i < m->nworkers; i++) {
        size_t nsocks = 0;
        struct listen_sock *socks = listener_open_all(config, NULL, 0, &nsocks, err,
                                                      sizeof(err));
        if (socks == NULL) {
            fprintf(stderr, "tcplb: %s\n", err);
            goto fail;
        }
        if (worker_init(&m->workers[i], i, config, socks, nsocks) == -1) {
            listener_close_all(socks, nsocks);
            fprintf(stderr, "tcplb: cannot create worker %u's event loop\n", i);
            goto fail;
        }
        m->workers[i].on_exit = main_worker_exited;
    }

    /* every worker may hand an accepted connection to another (handoff.c) */
    for (unsigned i = 0; i < m->nworkers; i++) {
        m->workers[i].peers = m->workers;
        m->workers[i].npeers = m->nworkers;
    }

    m->health = health_start(m->loop, config, NULL, err, sizeof(err));
    if (m->health == NULL) {
        fprintf(stderr, "tcplb: %s\n", err);
        goto fail;
    }
    if (discover_start(m->loop, config, m->health, err, sizeof(err)) == -1) {
        fprintf(stderr, "tcplb: %s\n", err);
        goto fail;
    }
    m->stats_ctx.config = config;
    m->stats_ctx.health = m->health;
    m->stats_ctx.started = ev_time();
    m->stats_ctx.now = main_now;
    m->stats_ctx.workers = m->workers;
    m->stats_ctx.nworkers = m->nworkers;
    m->stats_ctx.history = history_new();
    if (m->stats_ctx.history != NULL) {
        ev_timer_init(&m->history_timer, main_history_cb, HISTORY_STEP, HISTORY_STEP);
        ev_timer_start(m->loop, &m->history_timer);
        history_sample(m->stats_ctx.history, config, ev_time());
    }
    if (main_check_socket_dir(config->global.stats_socket, err, sizeof(err)) == -1) {
        fprintf(stderr, "tcplb: %s\n", err);
        goto fail;
    }
    if (config->global.stats_socket != NULL) {
        m->stats = stats_socket_open(m->loop, config->global.stats_socket,
                                     &m->stats_ctx, err, sizeof(err));
        if (m->stats == NULL) {
            fprintf(stderr, "tcplb: %s\n", err);
            goto fail;
        }
    }

    if (config->global.stats_http != NULL) {
        m->http = stats_http_open(m->loop, &config->global.stats_http_addr,
                                  &m->stats_ctx, err, sizeof(err));
        if (m->http == NULL) {
            fprintf(stderr, "tcplb: %s\n", err);
            goto fail;
        }
    }

    if (main_drop_privileges(&config->global, err, sizeof(err)) == -1) {
        fprintf(stderr, "tcplb: %s\n", err);
        goto fail;
    }

    ev_async_init(&m->worker_exit, main_worker_exit_cb);
    ev_async_start(m->loop, &m->worker_exit);
    ev_signal_init(&m->sigterm, main_stop_cb, SIGTERM);
    ev_signal_init(&m->sigint, main_stop_cb, SIGINT);
    ev_signal_init(&m->sighup, main_hup_cb, SIGHUP);
    ev_signal_init(&m->sigusr1, main_usr1_cb, SIGUSR1);
    ev_signal_start(m->loop, &m->sigterm);
    ev_signal_start(m->loop, &m->sigint);
    ev_signal_start(m->loop, &m->sighup);
    ev_signal_start(m->loop, &m->sigusr1);

    /* Workers inherit a mask that blocks the signals the main loop handles,
     * so the kernel always delivers them to the main thread. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; i < m->nworkers; i++) {
        if (worker_start(&m->workers[i]) == -1) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            fprintf(stderr, "tcplb: cannot start worker thread %u\n", i);
            for (unsigned j = 0; j < i; j++)
                worker_request_stop(&m->workers[j]);
            for (unsigned j = 0; j < i; j++)
                worker_join(&m->workers[j]);
            goto fail;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    log_msg("started: version %s, %u workers, %zu listeners, %zu pools, pid %ld",
            TCPLB_VERSION, m->nworkers, config->nlisteners, config->npools,
            (long)getpid());
    main_notify_start(m);
    ev_run(m->loop, 0);

    for (unsigned i = 0; i < m->nworkers; i++)
        worker_join(&m->workers[i]);
    log_msg("stopped");
    rc = 0;
fail:
    stats_socket_close(m->stats);
    m->stats = NULL;
    stats_http_close(m->http);
    m->http = NULL;
    discover_stop();
    /* after the workers are joined: none of them can wake it any more */
    health_stop(m->health);
    history_free(m->stats_ctx.history);
    m->stats_ctx.history = NULL;
    m->health = NULL;
    if (m->workers != NULL)
        for (unsigned i = 0; i < m->nworkers; i++)
            worker_free(&m->workers[i]);
    free(m->workers);
    m->workers = NULL;
    notify_close();
    log_close();
    ev_loop_destroy(m->loop);
    config_unref(m->config);   /* after reloads, not the one main() loaded */
    m->config = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    int check = 0;
    int opt;

    /* Until the main loop's watchers are installed, a reload or log-reopen
     * request must not kill the process with the default action (a
     * supervisor may send SIGHUP while tcplb is still starting). */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);

    while ((opt = getopt(argc, argv, "f:cVh")) != -1) {
        switch (opt) {
        case 'f':
            file = optarg;
            break;
        case 'c':
            check = 1;
            break;
        case 'V':
            printf("tcplb %s\n", TCPLB_VERSION);
            return 0;
        case 'h':
            main_usage(stdout);
            return 0;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (file == NULL || optind != argc) {
        main_usage(stderr);
        return 2;
    }

    char err[CONFIG_ERR_LEN];
    struct config *config = config_load(file, err, sizeof(err));
    if (config == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (check) {
        printf("%s: configuration is valid\n", file);
        config_unref(config);
        return 0;
    }
    return main_run(config);   /* takes over the reference */
}
