/* http_obs.c — the request observer (see http_obs.h) over http-parser.
 *
 * Two parsers, one per direction. Requests go into a FIFO when their first
 * byte is parsed; each answer belongs to the request at its head, which
 * leaves the FIFO when its final answer is complete (interim 1xx answers
 * leave it in place). Both parsers pause at the end of every message, so
 * the bytes http_parser_execute() consumed up to there belong to that
 * message alone and pipelined messages are sized one by one; the answer is
 * reported once its bytes are counted. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "http_obs.h"

#define HTTP_OBS_METHOD_UNKNOWN 0xff
/* Spare observers kept per thread for the next request. */
#define HTTP_OBS_SPARES 64

struct http_obs_pending {
    double sent;            /* when its first byte was seen */
    double rt;              /* NaN until its first answer byte */
    uint64_t in, out;
    uint8_t method;
    uint8_t in_query;       /* the URL went past '?' or '#' */
    uint8_t announced;      /* its method parsed: told to the sink */
    uint16_t path_len;
};

struct http_obs {
    http_parser req, resp;                      /* parser.data: the observer */
    const struct http_obs_sink *sink;
    void *ctx;
    double now;                                 /* of the bytes being parsed */
    enum http_obs_stop stopped;
    enum http_obs_stop stop_why;                /* set by a callback that halts */
    int keep_paths;
    int req_open, resp_open;                    /* a message begun, not ended */
    int req_upgraded;                           /* CONNECT or Upgrade sent */
    int req_held;                               /* bytes after it, before its answer */
    int resp_done;                              /* an answer ended in this execute */
    unsigned head, n;                           /* the FIFO */
    struct http_obs_pending q[HTTP_OBS_PIPELINE];
    char paths[HTTP_OBS_PIPELINE][HTTP_OBS_PATH_MAX + 1];
    struct http_obs *next_spare;
};

static __thread struct http_obs *http_obs_spares;
static __thread unsigned http_obs_nspares;

const char *http_obs_stop_str(enum http_obs_stop why)
{
    switch (why) {
    case HTTP_OBS_RUNNING: return "running";
    case HTTP_OBS_UPGRADED: return "upgraded";
    case HTTP_OBS_UNPARSED: return "unparsed";
    case HTTP_OBS_CLOSED: return "closed";
    }
    return "?";
}

/* ---- the FIFO ------------------------------------------------------------- */

static struct http_obs_pending *http_obs_front(struct http_obs *o)
{
    return o->n ? &o->q[o->head] : NULL;
}

static unsigned http_obs_last_index(const struct http_obs *o)
{
    return (o->head + o->n - 1) % HTTP_OBS_PIPELINE;
}

static struct http_obs_pending *http_obs_last(struct http_obs *o)
{
    return o->n ? &o->q[http_obs_last_index(o)] : NULL;
}

static struct http_obs *http_obs_of(http_parser *p)
{
    return p->data;
}

/* Halts the parser from a callback with <why>. */
static int http_obs_halt(struct http_obs *o, enum http_obs_stop why)
{
    o->stop_why = why;
    return 1;
}

/* ---- request callbacks ------------------------------------------------------- */

static int http_obs_req_begin(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    if (o->n == HTTP_OBS_PIPELINE)
        return http_obs_halt(o, HTTP_OBS_UNPARSED);
    unsigned i = (o->head + o->n) % HTTP_OBS_PIPELINE;
    o->q[i] = (struct http_obs_pending){ .sent = o->now, .rt = NAN,
                                         .method = HTTP_OBS_METHOD_UNKNOWN };
    o->paths[i][0] = '\0';
    o->n++;
    o->req_open = 1;
    return 0;
}

/* A request is counted once its head (request line and headers) parsed:
 * a message begins on any letter that may start a method, so "SSH-2.0"
 * would otherwise count one, and the head's end is one byte however the
 * reads were cut (the URL callback is not: http-parser flushes it at the
 * end of each read). Its time is still that of its first byte. */
static void http_obs_announce(struct http_obs *o, struct http_obs_pending *r)
{
    if (r == NULL || r->announced)
        return;
    r->announced = 1;
    if (o->sink->request)
        o->sink->request(o->ctx);
}

static int http_obs_req_url(http_parser *p, const char *at, size_t len)
{
    struct http_obs *o = http_obs_of(p);
    struct http_obs_pending *r = http_obs_last(o);
    if (!o->keep_paths || r == NULL || r->in_query)
        return 0;
    char *path = o->paths[http_obs_last_index(o)];
    for (size_t i = 0; i < len && r->path_len < HTTP_OBS_PATH_MAX; i++) {
        if (at[i] == '?' || at[i] == '#') {
            r->in_query = 1;
            break;
        }
        path[r->path_len++] = at[i];
    }
    path[r->path_len] = '\0';
    return 0;
}

/* "http://host:port/a/b" -> "/a/b": the absolute form a proxy-style client
 * sends names the same path. */
static void http_obs_strip_authority(char *path, uint16_t *len)
{
    const char *rest;
    if (strncasecmp(path, "http://", 7) == 0)
        rest = path + 7;
    else if (strncasecmp(path, "https://", 8) == 0)
        rest = path + 8;
    else
        return;
    const char *slash = strchr(rest, '/');
    if (slash == NULL) {
        strcpy(path, "/");
        *len = 1;
        return;
    }
    size_t n = strlen(slash);
    memmove(path, slash, n + 1);
    *len = (uint16_t)n;
}

static int http_obs_req_headers(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    struct http_obs_pending *r = http_obs_last(o);
    if (r == NULL)
        return 0;
    r->method = (uint8_t)p->method;
    http_obs_announce(o, r);
    if (o->keep_paths)
        http_obs_strip_authority(o->paths[http_obs_last_index(o)], &r->path_len);
    return 0;
}

static int http_obs_req_complete(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    o->req_open = 0;
    http_parser_pause(p, 1);    /* size this request alone */
    return 0;
}

/* ---- response callbacks ------------------------------------------------------ */

static int http_obs_resp_begin(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    struct http_obs_pending *r = http_obs_front(o);
    if (r == NULL)
        return http_obs_halt(o, HTTP_OBS_UNPARSED);   /* an answer to nothing */
    http_obs_announce(o, r);    /* answered before its method was whole */
    o->resp_open = 1;
    if (isnan(r->rt)) {
        r->rt = o->now - r->sent;
        if (r->rt < 0)
            r->rt = 0;
        if (o->sink->first_byte)
            o->sink->first_byte(o->ctx, r->rt);
    }
    return 0;
}

static int http_obs_resp_headers(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    struct http_obs_pending *r = http_obs_front(o);
    if (r == NULL)
        return 0;
    if (r->method == HTTP_CONNECT && p->status_code / 100 == 2)
        return 2;                                   /* a tunnel from here on */
    /* no body, whatever Content-Length says: an answer to HEAD, and 1xx,
     * 204 and 304 answers (RFC 9110 6.4.1) */
    int status = p->status_code;
    if (r->method == HTTP_HEAD || (status / 100 == 1 && status != 101) ||
        status == 204 || status == 304)
        return p->upgrade ? 2 : 1;
    return 0;
}

static int http_obs_resp_complete(http_parser *p)
{
    struct http_obs *o = http_obs_of(p);
    o->resp_open = 0;
    o->resp_done = 1;
    http_parser_pause(p, 1);    /* size this answer alone, then report it */
    return 0;
}

static const http_parser_settings http_obs_req_settings = {
    .on_message_begin = http_obs_req_begin,
    .on_url = http_obs_req_url,
    .on_headers_complete = http_obs_req_headers,
    .on_message_complete = http_obs_req_complete,
};

static const http_parser_settings http_obs_resp_settings = {
    .on_message_begin = http_obs_resp_begin,
    .on_headers_complete = http_obs_resp_headers,
    .on_message_complete = http_obs_resp_complete,
};

/* ---- feeding ------------------------------------------------------------------- */

static enum http_obs_stop http_obs_stop(struct http_obs *o, enum http_obs_stop why)
{
    if (o->stopped == HTTP_OBS_RUNNING) {
        o->stopped = why;
        if (o->sink->stopped)
            o->sink->stopped(o->ctx, why);
    }
    return o->stopped;
}

/* The answer at the head ended: report it; a final one takes its request
 * out of the FIFO. */
static void http_obs_answer_done(struct http_obs *o)
{
    struct http_obs_pending *r = http_obs_front(o);
    o->resp_done = 0;
    if (r == NULL)
        return;
    int status = o->resp.status_code;
    int interim = status / 100 == 1 && status != 101;
    struct http_obs_exchange x = {
        .status = status,
        .interim = interim,
        .method = r->method == HTTP_OBS_METHOD_UNKNOWN
                      ? "-" : http_method_str((enum http_method)r->method),
        .path = o->keep_paths ? o->paths[o->head] : "",
        .sent = r->sent,
        .rt = r->rt,
        .bytes_in = r->in,
        .bytes_out = r->out,
    };
    if (o->sink->response)
        o->sink->response(o->ctx, &x);
    if (interim) {
        r->out = 0;             /* the final answer is sized on its own */
        return;
    }
    o->head = (o->head + 1) % HTTP_OBS_PIPELINE;
    o->n--;
}

/* The final answer to a request that asked to leave HTTP has ended. If
 * it agreed (101, a CONNECT's 2xx) the rest is a tunnel. If it refused
 * (what a server without h2c does: 200 to "Upgrade: h2c"), the connection
 * stays HTTP and is watched on, unless the client already sent bytes we did
 * not parse while the answer was awaited. */
static enum http_obs_stop http_obs_upgrade_answered(struct http_obs *o)
{
    int agreed = o->resp.upgrade || o->resp.status_code == 101;
    if (agreed)
        return http_obs_stop(o, HTTP_OBS_UPGRADED);
    o->req_upgraded = 0;
    if (o->req_held)
        return http_obs_stop(o, HTTP_OBS_UNPARSED);
    http_parser_init(&o->req, HTTP_REQUEST);    /* past the upgrade request */
    o->req.data = o;
    return HTTP_OBS_RUNNING;
}

/* Runs one parser over data (len 0: its EOF), attributing consumed bytes to
 * the message they belong to. */
static enum http_obs_stop http_obs_run(struct http_obs *o, enum http_obs_dir dir,
                                       const char *data, size_t len, double now)
{
    if (o->stopped != HTTP_OBS_RUNNING)
        return o->stopped;
    if (dir == HTTP_OBS_REQUEST && o->req_upgraded) {
        /* a tunnel's bytes, if the answer agrees; not parsed either way */
        o->req_held |= len > 0;
        return HTTP_OBS_RUNNING;
    }
    o->now = now;
    http_parser *p = dir == HTTP_OBS_REQUEST ? &o->req : &o->resp;
    const http_parser_settings *set = dir == HTTP_OBS_REQUEST ? &http_obs_req_settings
                                                              : &http_obs_resp_settings;
    int eof = len == 0;
    static const char none[1] = "";
    if (eof)
        data = none;                /* http-parser's EOF: length 0, never NULL */
    for (;;) {
        /* Line ends between messages (RFC 9112 2.2 lets a peer send them)
         * belong to no message: skipped, so how reads were cut cannot move
         * them from one message's size to another's. */
        int open = dir == HTTP_OBS_REQUEST ? o->req_open : o->resp_open;
        while (!open && len > 0 && (*data == '\r' || *data == '\n')) {
            data++;
            len--;
        }
        if (!eof && len == 0)
            return HTTP_OBS_RUNNING;
        size_t n = http_parser_execute(p, set, data, len);
        struct http_obs_pending *owner = dir == HTTP_OBS_REQUEST ? http_obs_last(o)
                                                                 : http_obs_front(o);
        if (owner != NULL) {
            if (dir == HTTP_OBS_REQUEST)
                owner->in += n;
            else
                owner->out += n;
        }
        if (n > len)
            n = len;                /* http-parser counts an EOF as a byte */
        data += n;
        len -= n;
        if (o->resp_done) {
            http_obs_answer_done(o);
            if (o->req_upgraded && o->n == 0) {
                enum http_obs_stop st = http_obs_upgrade_answered(o);
                if (st != HTTP_OBS_RUNNING)
                    return st;
            }
        }
        enum http_errno err = HTTP_PARSER_ERRNO(p);
        if (o->stop_why != HTTP_OBS_RUNNING)
            return http_obs_stop(o, o->stop_why);
        /* http-parser raises `upgrade` as soon as the headers ask for it;
         * the message (its body, if it has one) still ends first */
        int open_now = dir == HTTP_OBS_REQUEST ? o->req_open : o->resp_open;
        if (err == HPE_PAUSED) {
            http_parser_pause(p, 0);
            if (p->upgrade && !open_now)
                goto upgraded;
            if (len > 0)
                continue;
            return HTTP_OBS_RUNNING;
        }
        if (err == HPE_CLOSED_CONNECTION || err == HPE_INVALID_EOF_STATE)
            return http_obs_stop(o, HTTP_OBS_CLOSED);
        if (err != HPE_OK)
            return http_obs_stop(o, HTTP_OBS_UNPARSED);
        if (p->upgrade && !open_now)
            goto upgraded;
        if (len == 0 || eof)
            return HTTP_OBS_RUNNING;
    }
upgraded:
    /* A request asking to leave HTTP: watch for its answer, which decides.
     * An answer that leaves HTTP (101, a CONNECT's 2xx): stop now. */
    if (dir == HTTP_OBS_REQUEST) {
        o->req_upgraded = 1;
        o->req_held = len > 0;
        if (o->n == 0)                  /* answered before it ended */
            return http_obs_upgrade_answered(o);
        return HTTP_OBS_RUNNING;
    }
    return http_obs_stop(o, HTTP_OBS_UPGRADED);
}

enum http_obs_stop http_obs_feed(struct http_obs *o, enum http_obs_dir dir,
                                 const char *data, size_t len, double now)
{
    if (len == 0)
        return o->stopped;
    return http_obs_run(o, dir, data, len, now);
}

enum http_obs_stop http_obs_eof(struct http_obs *o, enum http_obs_dir dir, double now)
{
    return http_obs_run(o, dir, NULL, 0, now);
}

int http_obs_idle(const struct http_obs *o)
{
    return o->stopped == HTTP_OBS_RUNNING && o->n == 0 && !o->req_open &&
           !o->resp_open && !o->req_upgraded;
}

struct http_obs *http_obs_new(const struct http_obs_sink *sink, void *ctx, int keep_paths)
{
    struct http_obs *o = http_obs_spares;
    if (o != NULL) {
        http_obs_spares = o->next_spare;
        http_obs_nspares--;
    } else if ((o = malloc(sizeof(*o))) == NULL) {
        return NULL;
    }
    memset(o, 0, offsetof(struct http_obs, paths));
    http_parser_init(&o->req, HTTP_REQUEST);
    http_parser_init(&o->resp, HTTP_RESPONSE);
    o->req.data = o->resp.data = o;
    o->sink = sink;
    o->ctx = ctx;
    o->keep_paths = keep_paths;
    return o;
}

void http_obs_free(struct http_obs *o)
{
    if (o == NULL)
        return;
    if (http_obs_nspares >= HTTP_OBS_SPARES) {
        free(o);
        return;
    }
    o->next_spare = http_obs_spares;
    http_obs_spares = o;
    http_obs_nspares++;
}

void http_obs_drop_spares(void)
{
    while (http_obs_spares != NULL) {
        struct http_obs *o = http_obs_spares;
        http_obs_spares = o->next_spare;
        free(o);
    }
    http_obs_nspares = 0;
}
