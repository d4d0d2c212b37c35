/* history.h — the last ten minutes of every server, for the page's chart:
 * every HISTORY_STEP seconds the main thread samples each server's
 * requests and connections totals into a ring, kept by pool and server name
 * so a reload does not lose it. Main thread only. */
#ifndef TCPLB_HISTORY_H
#define TCPLB_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HISTORY_STEP 10.0          /* seconds between samples */
#define HISTORY_SAMPLES 61         /* ten minutes of steps, and the first */

struct buf;
struct config;
struct history;

struct history *history_new(void);      /* NULL on ENOMEM */
void history_free(struct history *h);   /* NULL is a no-op */

/* Takes one sample of every server of <c> at <now>; forgets the servers
 * that have not been in a sample for HISTORY_SAMPLES steps. */
void history_sample(struct history *h, struct config *c, double now);

/* {"step_s":10,"servers":[{"pool","server","requests_per_s":[...],
 * "connections_per_s":[...]}]}: one rate per step, oldest first, for the
 * servers of <c>. */
void history_write_json(const struct history *h, struct config *c, struct buf *out);

#endif
