/* http_obs.h — follows the HTTP/1.x framing of both directions of one
 * connection with a real parser (Node's http-parser, Debian's
 * libhttp-parser) to tell each request and its answer apart: when a
 * request starts, when the first byte of its answer comes back (the
 * response time), the answer's status and size, interim 1xx answers,
 * pipelining, HEAD, chunked and Content-Length bodies, bodies ending at
 * EOF. It only reads: the bytes it is shown are relayed unchanged by the
 * caller. A stream it cannot follow (a parse error, an answer with no
 * request, more than HTTP_OBS_PIPELINE requests in flight) or one that
 * leaves HTTP (101 Switching Protocols, CONNECT) stops it for good.
 *
 * No I/O and no clock: the caller passes `now` with the bytes. An observer
 * is only needed while a request is in flight (http_obs_idle()), so a
 * session can give it back between requests; objects are recycled per
 * thread. */
#ifndef TCPLB_HTTP_OBS_H
#define TCPLB_HTTP_OBS_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_OBS_PIPELINE 8
#define HTTP_OBS_PATH_MAX 256

enum http_obs_dir { HTTP_OBS_REQUEST = 0, HTTP_OBS_RESPONSE };

enum http_obs_stop {
    HTTP_OBS_RUNNING = 0,
    HTTP_OBS_UPGRADED,      /* 101 or CONNECT: the connection left HTTP */
    HTTP_OBS_UNPARSED,      /* not HTTP/1.x as the parser knows it */
    HTTP_OBS_CLOSED,        /* a side closed mid-message, or sent past its close */
};
const char *http_obs_stop_str(enum http_obs_stop why);

/* One answer that ended (an interim 1xx one, or the final one). */
struct http_obs_exchange {
    int status;
    int interim;            /* 1xx other than 101: a final answer follows */
    const char *method;     /* "GET", ...; "-" when unknown */
    const char *path;       /* without the query; "" unless paths are kept */
    double sent;            /* the `now` its request's first byte came with */
    double rt;              /* seconds from the request's first byte to the
                               first byte of its first answer */
    uint64_t bytes_in;      /* of the request (client -> server) */
    uint64_t bytes_out;     /* of this answer (server -> client) */
};

/* What the observer tells its caller, as it happens. <ctx> is the
 * caller's. Every member may be NULL. */
struct http_obs_sink {
    void (*request)(void *ctx);                          /* a request's head parsed */
    void (*first_byte)(void *ctx, double rt);            /* its answer's first byte */
    void (*response)(void *ctx, const struct http_obs_exchange *x);
    void (*stopped)(void *ctx, enum http_obs_stop why);
};

struct http_obs;

/* A fresh observer (from this thread's spare ones when it has any). With
 * keep_paths, each request's path (without query, at most
 * HTTP_OBS_PATH_MAX bytes) is kept for its exchange. NULL on ENOMEM. */
struct http_obs *http_obs_new(const struct http_obs_sink *sink, void *ctx, int keep_paths);
/* Gives it back for reuse by this thread (NULL is a no-op). */
void http_obs_free(struct http_obs *o);
/* Frees this thread's spare observers: a thread that used observers calls
 * it as it ends. */
void http_obs_drop_spares(void);

/* Shows the observer bytes of one direction, in order. Returns the state
 * after them (RUNNING, or why it stopped: then it reports nothing more and
 * may be freed). */
enum http_obs_stop http_obs_feed(struct http_obs *o, enum http_obs_dir dir,
                                 const char *data, size_t len, double now);
/* The direction reached its end (FIN). A body that ends at EOF ends here. */
enum http_obs_stop http_obs_eof(struct http_obs *o, enum http_obs_dir dir, double now);

/* 1 when no request is in flight and both directions are between messages:
 * a new observer would continue exactly where this one is. */
int http_obs_idle(const struct http_obs *o);

#endif
