/* handoff.h — evening out the workers' connections. SO_REUSEPORT spreads
 * new connections by a hash of their addresses, so a few dozen long-lived
 * ones (keep-alive clients, a connection pool) can land 30/20 on two
 * workers, and one core does half again the work of the other. A worker
 * that accepts a connection while holding more than the least loaded
 * worker plus HANDOFF_SLACK hands it over instead: the descriptor goes into
 * that worker's inbox and an ev_async wakes it. Short connections rarely
 * tip the balance, so they stay where they landed and cost nothing. */
#ifndef TCPLB_HANDOFF_H
#define TCPLB_HANDOFF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct listen_sock;
struct listener_conf;
struct worker;

/* Connections a worker may hold above the least loaded one before it hands
 * new ones over: 2 keeps 50 connections on two workers within 24-26. */
#define HANDOFF_SLACK 2

struct handoff_item {
    int fd;
    socklen_t addrlen;
    struct sockaddr_storage addr;
    const struct listener_conf *listener;   /* in <config> */
    struct config *config;                  /* one reference, for listener */
};

/* A worker's inbox of connections other workers accepted for it. */
struct handoff_inbox {
    pthread_mutex_t lock;
    struct handoff_item *items;     /* owned array */
    size_t n, cap;
};

void handoff_inbox_init(struct handoff_inbox *in);
/* Closes what is still in it (a stop), giving back each one's counts. */
void handoff_inbox_free(struct handoff_inbox *in);

/* The worker that should take a connection <w> just accepted: a less
 * loaded one when w is over it by more than HANDOFF_SLACK, else NULL (keep
 * it). Any worker thread. */
struct worker *handoff_target(struct worker *w);

/* Hands <fd> (accepted on <ls> by the calling worker) to <to>: counted in
 * its load at once, started by its own loop. 0, or -1 (out of memory: the
 * caller keeps the connection). */
int handoff_push(struct worker *to, struct listen_sock *ls, int fd,
                 const struct sockaddr *addr, socklen_t addrlen);

/* In <w>'s loop: starts every connection waiting in its inbox. */
void handoff_run(struct worker *w);

#endif
