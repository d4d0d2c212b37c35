/* client_table.h — per-pool table of client IPs: the server each one was last
 * placed on and when (the stick table behind `persist = source`), and how
 * many connections it made and has open (the `show clients` view). Bounded:
 * at capacity the least recently used entry is evicted. Shared by all
 * workers through striped locks held for a lookup, never for I/O. */
#ifndef TCPLB_CLIENT_TABLE_H
#define TCPLB_CLIENT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "client_key.h"

#define CLIENT_NONE UINT32_MAX

struct client_stat {
    struct client_key key;
    uint64_t total;             /* connections handed to a server */
    int64_t active;             /* open now */
    uint32_t server;            /* index of its last server, or CLIENT_NONE */
    double last_use;
    uint64_t recent;            /* connections in the last minute (as of the
                                   `now` of the read that filled it) */
};

struct client_table;

/* Room for <capacity> clients (at least one per stripe). NULL on ENOMEM.
 * Owner: the pool. */
struct client_table *client_table_new(size_t capacity);
/* Reference counting, so that a reload can hand the same table to the new
 * config of an unchanged pool; free drops one reference. */
struct client_table *client_table_ref(struct client_table *t);
void client_table_free(struct client_table *t);    /* NULL is a no-op */

/* Copies every entry of <from> into <to>, its server index passed through
 * map[index] (entries whose map is CLIENT_NONE forget their server), with
 * its total but no open connection: each open one is moved in by its own
 * session (client_table_moved_in) once its worker applies the reload, so
 * the count stays exact. For a reload that changed a pool's servers. Main
 * thread; <to> is not in use yet. */
void client_table_copy(struct client_table *from, struct client_table *to,
                       const uint32_t *map, uint32_t map_len);

/* The server <k> was last placed on, if that was less than <timeout>
 * seconds before <now>; refreshes its last use. 1 = found. Any thread. */
int client_table_sticky(struct client_table *t, const struct client_key *k,
                        double now, double timeout, uint32_t *server);

/* Like client_table_sticky() but only looks: no refresh. */
int client_table_peek(struct client_table *t, const struct client_key *k,
                      double now, double timeout, uint32_t *server);

/* A connection from <k> was handed to <server>: remembers the server, counts
 * the connection (total and active), refreshes last use; creates the entry,
 * evicting the least recently used one at capacity. <already_active>: the
 * connection was counted open by client_table_admit(). Any thread. */
void client_table_placed(struct client_table *t, const struct client_key *k,
                         uint32_t server, double now, int already_active);

/* client_maxconn: counts one more open connection for <k> unless it has
 * <limit> already. 1 = admitted (its client_table_ended() is due). */
int client_table_admit(struct client_table *t, const struct client_key *k,
                       unsigned limit);

/* Persistence at pick time: remembers <server> for <k> unless another
 * worker remembered one within <timeout> meanwhile, and returns the server
 * now remembered, so two first connections racing from one IP agree. No
 * connection is counted (client_table_placed() does that on connect). */
uint32_t client_table_claim(struct client_table *t, const struct client_key *k,
                            uint32_t server, double now, double timeout);

/* A connection counted by client_table_placed() has ended. Harmless if the
 * entry was evicted in between. */
void client_table_ended(struct client_table *t, const struct client_key *k);

/* A connection counted open in another table (the pool before a reload)
 * counts open here now: one more active for <k>, created if need be, its
 * total unchanged. Any thread. */
void client_table_moved_in(struct client_table *t, const struct client_key *k);

/* Copies the <n> clients with the most connections, busiest first. Returns
 * how many were copied. */
size_t client_table_top(struct client_table *t, struct client_stat *out, size_t n);

/* The same, busiest over the last minute as of <now> (recent.h's window),
 * clients with none left out. */
size_t client_table_top_recent(struct client_table *t, struct client_stat *out, size_t n,
                               double now);

/* Zeroes every client's total (active stays: those are open connections). */
void client_table_clear(struct client_table *t);

size_t client_table_size(struct client_table *t);

#endif
