/* membership.h — servers that join and leave a running pool: `add server`
 * and `del server` from the stats socket, and the set a pool's DNS
 * discovery found (discover.c). Main thread only.
 *
 * A server lives in a slot of pool->servers, which pool_start() sized for
 * the configured servers plus `server_slots` more. A new server takes a free
 * slot and is published by one release store of pool->nservers (workers
 * index below what they read); a removed one keeps its slot, flagged
 * removed, so a worker that still holds its pointer reads a valid server in
 * maint. A later add takes a removed slot again: at once for a server of the
 * same name (the same one coming back), after MEMBERSHIP_REUSE_AFTER for
 * another. */
#ifndef TCPLB_MEMBERSHIP_H
#define TCPLB_MEMBERSHIP_H

#include <stddef.h>

#include "net.h"
#include "pool.h"

struct config;
struct health;

/* Seconds a removed slot rests before another server may take it. */
#define MEMBERSHIP_REUSE_AFTER 60.0

/* Adds server <name> at <addr_text> (an IP address, never a name to
 * resolve) with server-line options <options> (may be NULL; modified) to
 * <pool> of <cfg>, which <h> checks. It starts down until its first health
 * check passes (up at once with health = none; slow start applies). <why>
 * goes to the event. Returns the server, or NULL with the reason in err. */
struct server *membership_add(struct config *cfg, struct health *h, struct pool *pool,
                              const char *name, const char *addr_text, char *options,
                              enum server_origin origin, const char *why, double now,
                              char *err, size_t errlen);

/* Removes <name> from <pool>: only a server in maint with no open
 * connection (else -1 and why in err). 0 when removed. */
int membership_del(struct health *h, struct pool *pool, const char *name, double now,
                   char *err, size_t errlen);

/* One server a discovery found. */
struct membership_entry {
    struct net_addr addr;
    unsigned weight;            /* 1..SERVER_WEIGHT_MAX */
};

/* Makes the pool's discovered servers the <n> of <set>: a new address is
 * added (named "ADDR:PORT"), a weight that changed is set, one that is no
 * longer in the set goes to drain and leaves once empty (see
 * membership_reap), one that comes back before that stays. Servers from
 * the config or the stats socket are never touched. */
void membership_sync(struct config *cfg, struct health *h, struct pool *pool,
                     const struct membership_entry *set, size_t n, double now);

/* Removes the pool's leaving discovered servers that have no open
 * connection left. */
void membership_reap(struct health *h, struct pool *pool, double now);

/* Reload: the discovered servers of <old> (the same pool in the previous
 * config, with the same `discover`) join <pool> before it starts taking
 * connections, so that the new config does not wait for a first lookup.
 * Before pool_adopt(); returns how many. */
size_t membership_carry(struct pool *pool, const struct pool *old, unsigned nworkers);

#endif
