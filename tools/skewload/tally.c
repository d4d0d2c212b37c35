/* tally.c — the run's counters. Servers are learnt from answers, so the
 * table grows as names appear; a linear search is fine for the handful of
 * servers a pool has, and TALLY_SERVERS_MAX bounds the worst case. */

#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "tally.h"

struct tally *tally_new(size_t nclients)
{
    struct tally *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->clients = calloc(nclients ? nclients : 1, sizeof *t->clients);
    if (t->clients == NULL)
        goto fail;
    t->nclients = nclients;
    return t;
fail:
    free(t);
    return NULL;
}

void tally_free(struct tally *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nservers; i++) {
        free(t->servers[i].lat_ms);
        free(t->servers[i].per_sec);
    }
    for (size_t i = 0; i < t->nclients; i++)
        free(t->clients[i].pins);
    free(t->servers);
    free(t->clients);
    free(t);
}

const char *tally_err_str(enum tally_err kind)
{
    switch (kind) {
    case TALLY_CONNECT_REFUSED:
        return "connect_refused";
    case TALLY_CONNECT_ERROR:
        return "connect_error";
    case TALLY_RESET:
        return "reset";
    case TALLY_TIMEOUT:
        return "timeout";
    case TALLY_CLOSED:
        return "closed";
    case TALLY_BAD_RESPONSE:
        return "bad_response";
    case TALLY_IO_ERROR:
        return "io_error";
    case TALLY_ERR_COUNT:
        break;
    }
    return "?";
}

/* The index of the server called name, added if new; past the cap every
 * new name shares the TALLY_OTHER entry. Returns -1 when out of memory. */
static long tally_server_index(struct tally *t, const char *name)
{
    char clipped[TALLY_NAME_MAX + 1];

    /* Names are compared as stored, so clip before searching. */
    strncpy(clipped, name, TALLY_NAME_MAX);
    clipped[TALLY_NAME_MAX] = '\0';
    for (size_t i = 0; i < t->nservers; i++)
        if (strcmp(t->servers[i].name, clipped) == 0)
            return (long)i;
    /* The last slot is kept for TALLY_OTHER, which the recursion finds or
     * adds; so nservers never passes TALLY_SERVERS_MAX. */
    if (t->nservers >= TALLY_SERVERS_MAX - 1 && strcmp(clipped, TALLY_OTHER) != 0)
        return tally_server_index(t, TALLY_OTHER);
    if (t->nservers == t->servers_cap) {
        size_t cap = t->servers_cap ? t->servers_cap * 2 : 8;
        struct tally_server *s = realloc(t->servers, cap * sizeof *s);
        if (s == NULL)
            return -1;
        t->servers = s;
        t->servers_cap = cap;
    }
    struct tally_server *s = &t->servers[t->nservers];
    memset(s, 0, sizeof *s);
    memcpy(s->name, clipped, sizeof s->name);
    return (long)t->nservers++;
}

static int tally_pin(struct tally_client *c, size_t server)
{
    for (size_t i = 0; i < c->npins; i++) {
        if (c->pins[i].server == server) {
            c->pins[i].count++;
            return 0;
        }
    }
    struct tally_pin *p = realloc(c->pins, (c->npins + 1) * sizeof *p);
    if (p == NULL)
        return -1;
    c->pins = p;
    c->pins[c->npins].server = server;
    c->pins[c->npins].count = 1;
    c->npins++;
    return 0;
}

static int tally_timeline(struct tally_server *s, double at_s)
{
    size_t sec = at_s > 0 ? (size_t)at_s : 0;

    if (sec >= s->nsec) {
        /* Grow in steps of a minute, so a long run reallocates rarely. */
        size_t n = sec + 60;
        uint64_t *p = realloc(s->per_sec, n * sizeof *p);
        if (p == NULL)
            return -1;
        memset(p + s->nsec, 0, (n - s->nsec) * sizeof *p);
        s->per_sec = p;
        s->nsec = n;
    }
    s->per_sec[sec]++;
    return 0;
}

static int tally_latency(struct tally_server *s, double lat_ms)
{
    if (s->nlat == s->lat_cap) {
        size_t cap = s->lat_cap ? s->lat_cap * 2 : 256;
        double *p = realloc(s->lat_ms, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->lat_ms = p;
        s->lat_cap = cap;
    }
    s->lat_ms[s->nlat++] = lat_ms;
    return 0;
}

int tally_response(struct tally *t, size_t client, const char *name, int status,
                   double lat_ms, double at_s)
{
    int good = status == 0 || (status >= 200 && status <= 299);
    int rc = 0;

    t->requests++;
    if (client < t->nclients)
        t->clients[client].requests++;
    if (good) {
        t->ok++;
    } else {
        if (status > 0 && status <= TALLY_STATUS_MAX)
            t->status[status]++;
        if (client < t->nclients)
            t->clients[client].errors++;
    }
    if (name == NULL || name[0] == '\0') {
        /* tcplb's own 503 names no server and belongs to none. */
        if (!good)
            return 0;
        name = TALLY_UNNAMED;
    }
    long i = tally_server_index(t, name);
    if (i == -1)
        return -1;
    struct tally_server *s = &t->servers[i];
    s->requests++;
    if (!good)
        s->errors++;
    if (client < t->nclients && tally_pin(&t->clients[client], (size_t)i) == -1)
        rc = -1;
    if (tally_timeline(s, at_s) == -1)
        rc = -1;
    if (tally_latency(s, lat_ms) == -1)
        rc = -1;
    return rc;
}

void tally_failure(struct tally *t, size_t client, enum tally_err kind)
{
    t->requests++;
    if (kind < TALLY_ERR_COUNT)
        t->failures[kind]++;
    if (client < t->nclients) {
        t->clients[client].requests++;
        t->clients[client].errors++;
    }
}

uint64_t tally_errors(const struct tally *t)
{
    return t->requests - t->ok;
}

void tally_sort(struct tally *t)
{
    for (size_t i = 0; i < t->nservers; i++)
        dist_sort(t->servers[i].lat_ms, t->servers[i].nlat);
}
