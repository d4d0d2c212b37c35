/* fuzz_http_obs.c — libFuzzer target for the HTTP/1.x observer,
 * http_obs.c, fed both directions of a connection as a script:
 *
 *   byte 0        bit 0: keep_paths
 *   then chunks   one header byte: bit 7 the direction (0 client -> server,
 *                 1 server -> client), bit 6 an EOF of that direction after
 *                 the chunk, bits 0-5 the length; 63 means 63 + the next
 *                 byte (up to 318). Then that many bytes (fewer at the end
 *                 of the input).
 *
 * Each chunk is one read at a `now` 0.125 s after the one before. As on a
 * TCP connection, a direction carries nothing after its EOF: the script's
 * later chunks of that direction (and a second EOF) are left out.
 *
 * Besides memory errors it checks what session_obs.c relies on: nothing is
 * reported after "stopped", which comes at most once and agrees with what
 * the feeds return; no more final answers than requests (nor than first
 * answer bytes); response times within [0, time elapsed] and request
 * starts within the reads so far; statuses 0-999 (http-parser reads one to
 * three digits), interim exactly for 1xx but 101; paths at most
 * HTTP_OBS_PATH_MAX bytes with no query (and "" unless kept); sizes adding
 * up to no more than was fed each way; idle only with every request
 * answered. With FUZZ_HTTP_OBS_CUTS (the default) the script also runs
 * byte by byte, and whole again but with the observer given back whenever
 * it is idle and a new one taken for the next read (as session_obs.c does),
 * and all three must report exactly the same: http_obs_idle() promises that
 * a new observer continues where the old one was, and TCP cuts reads
 * anywhere. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_obs.h"

#ifndef FUZZ_HTTP_OBS_CUTS
#define FUZZ_HTTP_OBS_CUTS 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_T0 1000.0
#define FZ_STEP 0.125

struct fz {
    int keep_paths;
    double now;                      /* of the read being fed */
    unsigned requests, first_bytes, finals, stops;
    enum http_obs_stop why;
    uint64_t fed[2];                 /* bytes fed so far, each direction */
    uint64_t in_sum, out_sum;        /* reported: final answers' requests, all answers */
    uint64_t hash;                   /* FNV-1a of every report, in order */
    unsigned events;
};

static void fz_hash(struct fz *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        f->hash ^= b[i];
        f->hash *= 1099511628211ULL;
    }
}

static void fz_event(struct fz *f, char c)
{
    if (f->stops != 0)
        abort();                     /* a report after "stopped" */
    f->events++;
    fz_hash(f, &c, 1);
}

static void fz_check_rt(const struct fz *f, double rt)
{
    /* NaN fails both */
    if (!(rt >= 0) || !(rt <= f->now - FZ_T0 + 1e-9))
        abort();
}

static void fz_request(void *ctx)
{
    struct fz *f = ctx;
    fz_event(f, 'R');
    f->requests++;
}

static void fz_first_byte(void *ctx, double rt)
{
    struct fz *f = ctx;
    fz_event(f, 'F');
    fz_check_rt(f, rt);
    f->first_bytes++;
    if (f->first_bytes > f->requests)
        abort();
    fz_hash(f, &rt, sizeof(rt));
}

static void fz_response(void *ctx, const struct http_obs_exchange *x)
{
    struct fz *f = ctx;
    fz_event(f, 'X');
    /* http-parser takes one to three digits: "HTTP/1.1 0 OK" is status 0 */
    if (x->status < 0 || x->status > 999)
        abort();
    if (x->interim != (x->status / 100 == 1 && x->status != 101))
        abort();
    fz_check_rt(f, x->rt);
    /* its request began at one of the reads so far, and was answered after */
    if (!(x->sent > FZ_T0 && x->sent <= f->now && x->sent + x->rt <= f->now + 1e-9))
        abort();
    if (x->method == NULL || x->method[0] == '\0' || x->path == NULL)
        abort();
    size_t plen = strlen(x->path);
    if (plen > HTTP_OBS_PATH_MAX || memchr(x->path, '?', plen) != NULL ||
        memchr(x->path, '#', plen) != NULL)
        abort();
    if (!f->keep_paths && plen != 0)
        abort();
    if (!x->interim) {
        f->finals++;
        f->in_sum += x->bytes_in;
        if (f->finals > f->requests || f->finals > f->first_bytes)
            abort();
    }
    f->out_sum += x->bytes_out;
    if (f->in_sum > f->fed[HTTP_OBS_REQUEST] || f->out_sum > f->fed[HTTP_OBS_RESPONSE])
        abort();
    int v[2] = { x->status, x->interim };
    uint64_t sz[2] = { x->bytes_in, x->bytes_out };
    fz_hash(f, v, sizeof(v));
    fz_hash(f, &x->rt, sizeof(x->rt));
    fz_hash(f, &x->sent, sizeof(x->sent));
    fz_hash(f, sz, sizeof(sz));
    fz_hash(f, x->method, strlen(x->method) + 1);
    fz_hash(f, x->path, plen + 1);
}

static void fz_stopped(void *ctx, enum http_obs_stop why)
{
    struct fz *f = ctx;
    fz_event(f, 'S');
    if (why == HTTP_OBS_RUNNING)
        abort();
    f->stops++;
    f->why = why;
    fz_hash(f, &why, sizeof(why));
}

static const struct http_obs_sink fz_sink = {
    .request = fz_request,
    .first_byte = fz_first_byte,
    .response = fz_response,
    .stopped = fz_stopped,
};

enum fz_mode { FZ_WHOLE, FZ_BYTES, FZ_RECYCLE };

/* What a feed or an EOF returned must be what the sink heard. */
static void fz_check_state(const struct fz *f, enum http_obs_stop st)
{
    if (st != (f->stops ? f->why : HTTP_OBS_RUNNING))
        abort();
}

static void fz_check_idle(const struct fz *f, const struct http_obs *o)
{
    if (http_obs_idle(o) && f->finals != f->requests)
        abort();
}

/* Feeds one read, each from a buffer of exactly its size so that the
 * address sanitizer sees a read past it. */
static enum http_obs_stop fz_feed(struct http_obs *o, enum http_obs_dir dir,
                                  const uint8_t *p, size_t n, double now)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    enum http_obs_stop st = http_obs_feed(o, dir, copy, n, now);
    free(copy);
    return st;
}

static void fz_run(const uint8_t *data, size_t size, enum fz_mode mode, struct fz *f)
{
    memset(f, 0, sizeof(*f));
    f->hash = 14695981039346656037ULL;
    f->keep_paths = data[0] & 1;
    f->now = FZ_T0;
    struct http_obs *o = NULL;
    if (mode != FZ_RECYCLE && (o = http_obs_new(&fz_sink, f, f->keep_paths)) == NULL)
        abort();
    int closed[2] = { 0, 0 };
    size_t i = 1;
    while (i < size) {
        uint8_t h = data[i++];
        enum http_obs_dir dir = h & 0x80 ? HTTP_OBS_RESPONSE : HTTP_OBS_REQUEST;
        size_t len = h & 0x3f;
        if (len == 0x3f && i < size)
            len += data[i++];
        if (len > size - i)
            len = size - i;
        const uint8_t *chunk = data + i;
        i += len;
        f->now += FZ_STEP;
        if (closed[dir])
            continue;
        f->fed[dir] += len;
        if (len > 0) {
            if (mode == FZ_RECYCLE && o == NULL &&
                (o = http_obs_new(&fz_sink, f, f->keep_paths)) == NULL)
                abort();
            unsigned before = f->events;
            int was_stopped = f->stops != 0;
            for (size_t k = 0; k < len; k += mode == FZ_BYTES ? 1 : len) {
                size_t n = mode == FZ_BYTES ? 1 : len;
                enum http_obs_stop st = fz_feed(o, dir, chunk + k, n, f->now);
                fz_check_state(f, st);
            }
            if (was_stopped && f->events != before)
                abort();
            fz_check_idle(f, o);
        }
        if (h & 0x40) {
            closed[dir] = 1;
            if (o != NULL) {
                fz_check_state(f, http_obs_eof(o, dir, f->now));
                fz_check_idle(f, o);
            }
        }
        /* as session_obs.c: an idle observer goes back between requests */
        if (mode == FZ_RECYCLE && o != NULL && http_obs_idle(o)) {
            http_obs_free(o);
            o = NULL;
        }
    }
    if (f->stops > 1)
        abort();
    http_obs_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fz whole;
    fz_run(data, size, FZ_WHOLE, &whole);
#if FUZZ_HTTP_OBS_CUTS
    struct fz bytes, recycled;
    fz_run(data, size, FZ_BYTES, &bytes);
    fz_run(data, size, FZ_RECYCLE, &recycled);
    if (bytes.hash != whole.hash || bytes.events != whole.events ||
        recycled.hash != whole.hash || recycled.events != whole.events)
        abort();
#endif
    http_obs_drop_spares();      /* the replay build checks for leaks */
    return 0;
}
