/* events.h — the recent server state changes, for `show events`: a ring of
 * the last EVENTS_MAX changes with their reason and what they cost clients.
 * Written and read on the main thread only (the health checker and the
 * stats socket both live there), so it needs no lock. */
#ifndef TCPLB_EVENTS_H
#define TCPLB_EVENTS_H

#include <stddef.h>

#include "pool.h"

#define EVENTS_MAX 256

struct buf;

/* Records what is no state change of a server: one added (old "none"),
 * removed (now "none"), or a pool's discovery failing and recovering
 * (server "discover", "ok" <-> "failed"). */
void events_note(const char *pool, const char *server, const char *old, const char *now,
                 const char *reason);

/* Records a change of <srv> from <old> to <now>. */
void events_record(const struct server *srv, enum server_state old,
                   enum server_state now, const char *reason);

/* Appends the last <n> events, oldest first, one per line:
 * "TIME POOL/SERVER OLD->NEW reason". */
void events_show(struct buf *out, size_t n);

/* The same as {"events":[{"ts","pool","server","from","to","reason"}]} and a
 * newline, for the page. */
void events_write_json(struct buf *out, size_t n);

/* Forgets every event (tests). */
void events_clear(void);

#endif
