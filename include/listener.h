/* listener.h — listening sockets: opened on the main thread (so bind errors
 * stop the start), one per worker per bind with SO_REUSEPORT, then accepted
 * from inside the owning worker's loop. */
#ifndef TCPLB_LISTENER_H
#define TCPLB_LISTENER_H

#include <ev.h>
#include <stddef.h>

struct listener_conf;
struct config;
struct worker;

struct listen_sock {
    ev_io io;                       /* read watcher on fd */
    ev_timer resume;                /* listener maxconn reached: retry later */
    int fd;                         /* owned */
    int taken_over;                 /* fd came from the previous config's socket */
    size_t bind;                    /* index in conf->binds */
    struct listener_conf *conf;     /* points into the worker's config */
    struct worker *worker;
};

/* Opens every bind of every listener once for one worker. Returns an owned
 * array (*n entries) or NULL with err filled. With <old> (a reload: the
 * worker's current sockets), a bind whose address is already open takes
 * over that socket's fd instead of opening a new one, so its accept queue
 * is never closed. Main thread. */
struct listen_sock *listener_open_all(struct config *c, const struct listen_sock *old,
                                      size_t nold, size_t *n, char *err, size_t errlen);
void listener_close_all(struct listen_sock *socks, size_t n);

/* Reload, in the worker: closes the fds of <old> that <now> did not take
 * over and frees <old>. */
void listener_retire(struct listen_sock *old, size_t nold,
                     const struct listen_sock *now, size_t nnow);

/* A connection counted against its listener's maxconn has closed. Any
 * worker. */
void listener_release(struct listener_conf *l);

/* Start/stop accepting on the worker's loop. Worker thread. */
void listener_start(struct worker *w);
void listener_stop(struct worker *w);

#endif
