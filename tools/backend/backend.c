/* backend.c — tcplb-backend, a single-threaded libev server that stands in
 * for real servers in the demo and the integration tests. It owns one
 * listening socket and every connection it accepts: in http mode it answers
 * each request with its own name, in echo mode it sends every byte back.
 * It knows nothing of tcplb; tests learn its port from its first stdout line. */

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* A request head (request line + headers + blank line) longer than this is
 * refused with 400. It is also the size of the input buffer, so "buffer full
 * and no blank line yet" is exactly the too-large case. */
#define BACKEND_HEAD_MAX 16384
/* Output buffer: pipelined answers in http mode, in-flight data in echo
 * mode. Echo stops reading while it is full, which is the back-pressure. */
#define BACKEND_OUT_CAP 16384
#define BACKEND_NAME_MAX 64
/* Room one answer (200, 100 Continue, 400 or 501) needs in the output. */
#define BACKEND_ANSWER_MAX (256 + BACKEND_NAME_MAX * 2)
#define BACKEND_DELAY_MAX_MS 3600000
/* How long we wait for the client's FIN after sending our own before a
 * close; see backend_conn_settle for why we wait at all. */
#define BACKEND_LINGER_S 2.0
/* Pause before accepting again after running out of descriptors. */
#define BACKEND_ACCEPT_PAUSE_S 0.1
/* Accepts per callback, so a connection storm cannot starve the others. */
#define BACKEND_ACCEPT_BATCH 64
#define BACKEND_NOFILE_WANT 65536

enum backend_mode { BACKEND_HTTP, BACKEND_ECHO };

/* Where an http connection is within its current request. */
enum backend_http_state {
    BACKEND_HEAD,     /* waiting for a complete request head */
    BACKEND_BODY,     /* discarding body_left bytes of request body */
    BACKEND_READY,    /* request complete, answer not queued yet */
    BACKEND_DELAYED,  /* --delay timer running before the answer */
};

struct backend_conn;

/* The whole process: options, the listening socket and the connection list.
 * Lives on main's stack; strings point into argv. */
struct backend {
    struct ev_loop *loop;
    const char *name;
    size_t name_len;
    enum backend_mode mode;
    int delay_ms;
    const char *pidfile;
    int pidfile_written;
    int listen_fd;
    ev_io accept_io;
    ev_timer accept_pause;      /* re-arms accept_io after EMFILE and co. */
    ev_signal sig_term;
    ev_signal sig_int;
    struct backend_conn *conns; /* owned: every open connection */
};

/* One client connection, owned by backend->conns; freed only by
 * backend_conn_free, which stops its watchers first. */
struct backend_conn {
    struct backend *b;
    struct backend_conn *prev, *next;
    int fd;
    ev_io rd;
    ev_io wr;
    ev_timer timer;       /* --delay before an answer, or the linger */
    int rd_eof;           /* the client sent its FIN */
    int want_close;       /* answer nothing more; close once out is sent */
    int lingering;        /* our FIN is sent; discarding until the client's */
    enum backend_http_state state;
    int keep_alive;       /* of the request being answered */
    int head_only;        /* that request is HEAD: the answer has no body */
    int http_minor;       /* its version, HTTP/1.<minor> */
    uint64_t body_left;
    size_t in_len;
    size_t out_off;
    size_t out_len;
    char in[BACKEND_HEAD_MAX];
    char out[BACKEND_OUT_CAP];
};

/* What backend_http_parse_head learns from a request head. */
struct backend_req {
    int status;           /* on failure: the answer to give, 400 or 501 */
    int http_minor;
    int head_only;
    int keep_alive;
    int expect_continue;
    uint64_t content_length;
};

static void backend_conn_settle(struct backend_conn *c);

static void backend_usage(FILE *out)
{
    fprintf(out,
            "usage: tcplb-backend --name NAME --listen HOST:PORT [--mode http|echo]\n"
            "                     [--pidfile FILE] [--delay MS]\n"
            "  --listen   127.0.0.1:9001, [::1]:9001 or host:port; port 0 picks one\n"
            "  --mode     http (default): answer every request with NAME\n"
            "             echo: send every byte back, pass a half-close on\n"
            "  --delay    wait MS milliseconds before each http answer\n"
            "Prints \"listening NAME HOST:PORT\" once listening; SIGTERM/SIGINT exit 0.\n");
}

/* Parses "IPv4:port", "[IPv6]:port" or "host:port" (port 0..65535) into ss.
 * Returns 0, or -1 with a message in err. */
static int backend_parse_listen(const char *text, struct sockaddr_storage *ss,
                                socklen_t *len, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    size_t host_len;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "%s: expected [IPv6]:port", text);
            return -1;
        }
        host_len = (size_t)(close - text - 1);
        memcpy(host, text + 1, host_len < sizeof host ? host_len : 0);
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "%s: expected HOST:PORT", text);
            return -1;
        }
        host_len = (size_t)(colon - text);
        if (memchr(text, ':', host_len) != NULL) {
            snprintf(err, errlen, "%s: an IPv6 address needs brackets", text);
            return -1;
        }
        memcpy(host, text, host_len < sizeof host ? host_len : 0);
        port = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof host) {
        snprintf(err, errlen, "%s: bad host", text);
        return -1;
    }
    host[host_len] = '\0';

    size_t port_len = strlen(port);
    if (port_len == 0 || port_len > 5 || strspn(port, "0123456789") != port_len
        || atoi(port) > 65535) {
        snprintf(err, errlen, "%s: bad port", text);
        return -1;
    }

    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", text, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Writes "a.b.c.d:port" or "[v6]:port" for sa into buf. */
static const char *backend_addr_str(const struct sockaddr_storage *ss,
                                    char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, buflen, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, buflen, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
    return buf;
}

/* Binds and listens on text; on success fills actual with the bound
 * address (the real port when 0 was asked). Returns the fd or -1. */
static int backend_listen(const char *text, struct sockaddr_storage *actual,
                          char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    if (backend_parse_listen(text, &ss, &len, err, errlen) == -1)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* Tests restart backends on the same port; TIME_WAIT must not stop them. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1) {
        snprintf(err, errlen, "SO_REUSEADDR: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
        snprintf(err, errlen, "bind %s: %s", text, strerror(errno));
        goto fail;
    }
    if (listen(fd, SOMAXCONN) == -1) {
        snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
        goto fail;
    }
    len = sizeof *actual;
    if (getsockname(fd, (struct sockaddr *)actual, &len) == -1) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

static int backend_write_pidfile(const char *path)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1)
        return -1;
    if (write(fd, text, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return close(fd);
}

/* So that a thousand and more connections fit under the default soft limit
 * of 1024 descriptors; failure only means fewer connections. */
static void backend_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = BACKEND_NOFILE_WANT;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        want = rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- connections ---- */

static void backend_conn_free(struct backend_conn *c)
{
    struct ev_loop *loop = c->b->loop;

    ev_io_stop(loop, &c->rd);
    ev_io_stop(loop, &c->wr);
    ev_timer_stop(loop, &c->timer);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->b->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    close(c->fd);
    free(c);
}

static void backend_conn_consume(struct backend_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Free contiguous space at the end of out, compacting it first if that is
 * what it takes; a write pointer is c->out + c->out_off + c->out_len. */
static size_t backend_conn_out_room(struct backend_conn *c)
{
    if (c->out_len == 0)
        c->out_off = 0;
    if (c->out_off > 0 && sizeof c->out - c->out_off - c->out_len < BACKEND_ANSWER_MAX) {
        memmove(c->out, c->out + c->out_off, c->out_len);
        c->out_off = 0;
    }
    return sizeof c->out - c->out_off - c->out_len;
}

/* Appends a formatted answer; the caller has checked for BACKEND_ANSWER_MAX
 * of room, which every answer fits in. */
static void backend_conn_printf(struct backend_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void backend_conn_printf(struct backend_conn *c, const char *fmt, ...)
{
    size_t room = backend_conn_out_room(c);
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->out_off + c->out_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->out_len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Sends what out holds until it is empty or the socket is full.
 * Returns -1 when the connection is dead (reset, broken pipe). */
static int backend_conn_flush(struct backend_conn *c)
{
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->out_off += (size_t)n;
        c->out_len -= (size_t)n;
    }
    c->out_off = 0;
    return 0;
}

static void backend_conn_watch(struct backend_conn *c, int rd, int wr)
{
    struct ev_loop *loop = c->b->loop;

    if (rd && !ev_is_active(&c->rd))
        ev_io_start(loop, &c->rd);
    else if (!rd && ev_is_active(&c->rd))
        ev_io_stop(loop, &c->rd);
    if (wr && !ev_is_active(&c->wr))
        ev_io_start(loop, &c->wr);
    else if (!wr && ev_is_active(&c->wr))
        ev_io_stop(loop, &c->wr);
}

/* ---- http ---- */

/* RFC 9110 token characters, for methods and header names. */
static int backend_is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Checks "METHOD SP target SP HTTP/1.d" (p, len without the CRLF). */
static int backend_http_check_line(const char *p, size_t len, struct backend_req *req)
{
    size_t i = 0;

    while (i < len && backend_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == len || p[i] != ' ')
        return -1;
    req->head_only = i == 4 && memcmp(p, "HEAD", 4) == 0;
    size_t target = ++i;
    while (i < len && (unsigned char)p[i] > ' ' && p[i] != 0x7f)
        i++;
    if (i == target || i == len || p[i] != ' ')
        return -1;
    i++;
    if (len - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
        return -1;
    req->http_minor = p[i + 7] - '0';
    return 0;
}

/* Early refusal of what can never become a request, so garbage gets its
 * 400 at once instead of after 16 KiB or the client's FIN: a method with
 * non-token bytes (TLS, binary) or a complete first line that is wrong. */
static int backend_http_partial_bad(const struct backend_conn *c)
{
    struct backend_req scratch;
    size_t i = 0;

    while (i < c->in_len && c->in[i] != ' ') {
        if (!backend_is_tchar((unsigned char)c->in[i]))
            return 1;
        i++;
    }
    const char *nl = memchr(c->in, '\n', c->in_len);
    if (nl == NULL)
        return 0;
    if (nl == c->in || nl[-1] != '\r')
        return 1;
    return backend_http_check_line(c->in, (size_t)(nl - 1 - c->in), &scratch) == -1;
}

static int backend_token_eq(const char *p, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

/* Trims spaces and tabs around [*p, *p + *len). */
static void backend_trim(const char **p, size_t *len)
{
    while (*len > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
        (*len)--;
}

static void backend_http_connection_tokens(const char *v, size_t vlen, int *has_close,
                                           int *has_keep)
{
    while (vlen > 0) {
        const char *comma = memchr(v, ',', vlen);
        size_t tlen = comma != NULL ? (size_t)(comma - v) : vlen;
        const char *t = v;
        size_t trimmed = tlen;
        backend_trim(&t, &trimmed);
        if (backend_token_eq(t, trimmed, "close"))
            *has_close = 1;
        else if (backend_token_eq(t, trimmed, "keep-alive"))
            *has_keep = 1;
        if (comma == NULL)
            break;
        v += tlen + 1;
        vlen -= tlen + 1;
    }
}

static int backend_http_content_length(const char *v, size_t vlen, uint64_t *out)
{
    uint64_t n = 0;

    /* 18 digits keep the sum far from overflow and are more than any test sends. */
    if (vlen == 0 || vlen > 18)
        return -1;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* Parses a head of len bytes ending in the first CRLFCRLF. Returns 0, or -1
 * with req->status set to the answer to give. */
static int backend_http_parse_head(const char *p, size_t len, struct backend_req *req)
{
    const char *stop = p + len - 2; /* where the blank line starts */
    int has_close = 0, has_keep = 0, has_length = 0;

    memset(req, 0, sizeof *req);
    req->status = 400;
    const char *nl = memchr(p, '\n', len);
    if (nl == p || nl[-1] != '\r' || backend_http_check_line(p, (size_t)(nl - 1 - p), req) == -1)
        return -1;

    for (const char *line = nl + 1; line < stop; line = nl + 1) {
        /* Found: the CRLF ending the last header lies just before stop. */
        nl = memchr(line, '\n', (size_t)(stop - line));
        if (nl == line || nl[-1] != '\r')
            return -1;
        size_t llen = (size_t)(nl - 1 - line);
        /* Obsolete line folding: refused, as RFC 9112 5.2 allows. */
        if (line[0] == ' ' || line[0] == '\t')
            return -1;
        const char *colon = memchr(line, ':', llen);
        if (colon == NULL || colon == line)
            return -1;
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < nlen; i++)
            if (!backend_is_tchar((unsigned char)line[i]))
                return -1;
        const char *v = colon + 1;
        size_t vlen = llen - nlen - 1;
        backend_trim(&v, &vlen);

        if (backend_token_eq(line, nlen, "content-length")) {
            uint64_t n;
            if (backend_http_content_length(v, vlen, &n) == -1)
                return -1;
            if (has_length && n != req->content_length)
                return -1;
            req->content_length = n;
            has_length = 1;
        } else if (backend_token_eq(line, nlen, "transfer-encoding")) {
            /* Chunked bodies are not needed by any test; say so honestly. */
            req->status = 501;
            return -1;
        } else if (backend_token_eq(line, nlen, "connection")) {
            backend_http_connection_tokens(v, vlen, &has_close, &has_keep);
        } else if (backend_token_eq(line, nlen, "expect")) {
            req->expect_continue = backend_token_eq(v, vlen, "100-continue");
        }
    }
    if (has_close)
        req->keep_alive = 0;
    else
        req->keep_alive = req->http_minor >= 1 || has_keep;
    return 0;
}

static void backend_http_answer(struct backend_conn *c)
{
    const struct backend *b = c->b;
    const char *conn_hdr = "";

    if (!c->keep_alive)
        conn_hdr = "Connection: close\r\n";
    else if (c->http_minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    backend_conn_printf(c,
                        "HTTP/1.1 200 OK\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n"
                        "X-Backend: %s\r\n"
                        "%s"
                        "\r\n"
                        "%s%s",
                        b->name_len + 1, b->name, conn_hdr,
                        c->head_only ? "" : b->name, c->head_only ? "" : "\n");
}

/* Queues a 400 or 501 and ends the connection after it. */
static void backend_http_refuse(struct backend_conn *c, int status)
{
    const char *reason = status == 501 ? "Not Implemented" : "Bad Request";
    const char *body = status == 501 ? "transfer-encoding not supported\n" : "bad request\n";

    backend_conn_printf(c,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n"
                        "X-Backend: %s\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "%s",
                        status, reason, strlen(body), c->b->name, body);
    c->want_close = 1;
}

/* Moves requests through head -> body -> answer for as long as input and
 * output room allow. Returns 1 when it stopped only for want of output
 * room (the caller flushes and calls again), else 0. */
static int backend_http_process(struct backend_conn *c)
{
    struct backend_req req;

    while (!c->want_close) {
        switch (c->state) {
        case BACKEND_HEAD: {
            /* RFC 9112 2.2: empty lines before a request line are ignored. */
            size_t skip = 0;
            while (skip + 1 < c->in_len && c->in[skip] == '\r' && c->in[skip + 1] == '\n')
                skip += 2;
            backend_conn_consume(c, skip);
            if (c->in_len == 0) {
                if (c->rd_eof)
                    c->want_close = 1;
                return 0;
            }
            if (backend_conn_out_room(c) < BACKEND_ANSWER_MAX)
                return 1;
            const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (end == NULL) {
                if (c->rd_eof || c->in_len == sizeof c->in || backend_http_partial_bad(c))
                    backend_http_refuse(c, 400);
                return 0;
            }
            size_t head_len = (size_t)(end - c->in) + 4;
            if (backend_http_parse_head(c->in, head_len, &req) == -1) {
                backend_http_refuse(c, req.status);
                return 0;
            }
            backend_conn_consume(c, head_len);
            c->keep_alive = req.keep_alive;
            c->head_only = req.head_only;
            c->http_minor = req.http_minor;
            c->body_left = req.content_length;
            /* curl waits a second for this before sending a large body. */
            if (req.expect_continue && req.http_minor >= 1 && c->body_left > 0)
                backend_conn_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
            c->state = BACKEND_BODY;
            break;
        }
        case BACKEND_BODY: {
            size_t n = c->in_len;
            if ((uint64_t)n > c->body_left)
                n = (size_t)c->body_left;
            backend_conn_consume(c, n);
            c->body_left -= n;
            if (c->body_left > 0) {
                /* A body cut short by the client's FIN gets no answer. */
                if (c->rd_eof)
                    c->want_close = 1;
                return 0;
            }
            if (c->b->delay_ms > 0) {
                ev_timer_set(&c->timer, c->b->delay_ms / 1000.0, 0.0);
                ev_timer_start(c->b->loop, &c->timer);
                c->state = BACKEND_DELAYED;
                return 0;
            }
            c->state = BACKEND_READY;
            break;
        }
        case BACKEND_READY:
            if (backend_conn_out_room(c) < BACKEND_ANSWER_MAX)
                return 1;
            backend_http_answer(c);
            if (!c->keep_alive)
                c->want_close = 1;
            c->state = BACKEND_HEAD;
            break;
        case BACKEND_DELAYED:
            return 0;
        }
    }
    return 0;
}

/* After any event: advance the protocol, send, then settle the watchers. */
static void backend_conn_run(struct backend_conn *c)
{
    for (;;) {
        int starved = c->b->mode == BACKEND_HTTP ? backend_http_process(c) : 0;
        if (backend_conn_flush(c) == -1) {
            backend_conn_free(c);
            return;
        }
        /* Everything sent and requests still waiting for room: go on. */
        if (!starved || c->out_len > 0)
            break;
    }
    backend_conn_settle(c);
}

/* The one place that derives read/write interest from the connection's
 * state, and that decides when it ends. May free c. */
static void backend_conn_settle(struct backend_conn *c)
{
    int rd, wr;

    if (c->lingering) {
        backend_conn_watch(c, 1, 0);
        return;
    }
    if (c->b->mode == BACKEND_ECHO && c->rd_eof)
        c->want_close = 1;
    if (c->want_close && c->out_len == 0) {
        shutdown(c->fd, SHUT_WR);
        if (c->rd_eof) {
            backend_conn_free(c);
            return;
        }
        /* Closing while the client still sends would make the kernel answer
         * with RST, which can destroy our last answer before the client reads
         * it. So after our FIN, read and discard until the client's FIN. */
        c->lingering = 1;
        ev_timer_stop(c->b->loop, &c->timer);
        ev_timer_set(&c->timer, BACKEND_LINGER_S, 0.0);
        ev_timer_start(c->b->loop, &c->timer);
        backend_conn_watch(c, 1, 0);
        return;
    }
    if (c->b->mode == BACKEND_ECHO)
        rd = !c->rd_eof && c->out_len < sizeof c->out;
    else
        rd = !c->rd_eof && !c->want_close && c->in_len < sizeof c->in;
    wr = c->out_len > 0;
    backend_conn_watch(c, rd, wr);
}

static void backend_conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct backend_conn *c = container_of(w, struct backend_conn, rd);
    char *dst;
    size_t cap;

    (void)loop;
    (void)revents;
    if (c->lingering) {
        dst = c->in;
        cap = sizeof c->in;
    } else if (c->b->mode == BACKEND_ECHO) {
        cap = backend_conn_out_room(c);
        dst = c->out + c->out_off + c->out_len;
    } else {
        dst = c->in + c->in_len;
        cap = sizeof c->in - c->in_len;
    }
    if (cap == 0) {
        backend_conn_settle(c);
        return;
    }
    ssize_t n = recv(c->fd, dst, cap, 0);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        backend_conn_free(c);
        return;
    }
    if (c->lingering) {
        if (n == 0)
            backend_conn_free(c);
        return;
    }
    if (n == 0)
        c->rd_eof = 1;
    else if (c->b->mode == BACKEND_ECHO)
        c->out_len += (size_t)n;
    else
        c->in_len += (size_t)n;
    backend_conn_run(c);
}

static void backend_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    backend_conn_run(container_of(w, struct backend_conn, wr));
}

static void backend_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct backend_conn *c = container_of(w, struct backend_conn, timer);

    (void)loop;
    (void)revents;
    if (c->lingering) {
        backend_conn_free(c);
        return;
    }
    c->state = BACKEND_READY;
    backend_conn_run(c);
}

static struct backend_conn *backend_conn_new(struct backend *b, int fd)
{
    struct backend_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->b = b;
    c->fd = fd;
    c->state = BACKEND_HEAD;
    ev_io_init(&c->rd, backend_conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wr, backend_conn_write_cb, fd, EV_WRITE);
    ev_init(&c->timer, backend_conn_timer_cb);
    c->next = b->conns;
    if (b->conns != NULL)
        b->conns->prev = c;
    b->conns = c;
    ev_io_start(b->loop, &c->rd);
    return c;
}

/* ---- accepting, signals, main ---- */

static void backend_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct backend *b = container_of(w, struct backend, accept_io);
    int one = 1;

    (void)revents;
    for (int i = 0; i < BACKEND_ACCEPT_BATCH; i++) {
        int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered accept would spin on a full table: pause. */
                fprintf(stderr, "tcplb-backend: accept: %s; pausing\n", strerror(errno));
                ev_io_stop(loop, &b->accept_io);
                ev_timer_set(&b->accept_pause, BACKEND_ACCEPT_PAUSE_S, 0.0);
                ev_timer_start(loop, &b->accept_pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, "tcplb-backend: accept: %s\n", strerror(errno));
            }
            return;
        }
        /* Answers are written whole; Nagle would only delay pipelined ones. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (backend_conn_new(b, fd) == NULL)
            close(fd);
    }
}

static void backend_accept_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct backend *b = container_of(w, struct backend, accept_pause);

    (void)revents;
    ev_io_start(loop, &b->accept_io);
}

static void backend_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int backend_parse_args(struct backend *b, const char **listen_text, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "listen", required_argument, NULL, 'l' },
        { "mode", required_argument, NULL, 'm' },
        { "pidfile", required_argument, NULL, 'p' },
        { "delay", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "n:l:m:p:d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            b->name = optarg;
            break;
        case 'l':
            *listen_text = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "http") == 0) {
                b->mode = BACKEND_HTTP;
            } else if (strcmp(optarg, "echo") == 0) {
                b->mode = BACKEND_ECHO;
            } else {
                fprintf(stderr, "tcplb-backend: --mode: expected http or echo\n");
                return -1;
            }
            break;
        case 'p':
            b->pidfile = optarg;
            break;
        case 'd': {
            size_t len = strlen(optarg);
            if (len == 0 || len > 7 || strspn(optarg, "0123456789") != len
                || atoi(optarg) > BACKEND_DELAY_MAX_MS) {
                fprintf(stderr, "tcplb-backend: --delay: milliseconds, 0..%d\n",
                        BACKEND_DELAY_MAX_MS);
                return -1;
            }
            b->delay_ms = atoi(optarg);
            break;
        }
        case 'h':
            backend_usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || b->name == NULL || *listen_text == NULL) {
        fprintf(stderr, "tcplb-backend: --name and --listen are required\n");
        return -1;
    }
    /* The name goes into a header line: printable, no spaces, bounded. */
    b->name_len = strlen(b->name);
    if (b->name_len == 0 || b->name_len > BACKEND_NAME_MAX) {
        fprintf(stderr, "tcplb-backend: --name: 1..%d characters\n", BACKEND_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < b->name_len; i++) {
        if ((unsigned char)b->name[i] <= ' ' || (unsigned char)b->name[i] >= 0x7f) {
            fprintf(stderr, "tcplb-backend: --name: printable ASCII without spaces\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct backend b;
    const char *listen_text = NULL;
    struct sockaddr_storage actual;
    char err[512], addr[128];
    int status = 1;

    memset(&b, 0, sizeof b);
    b.listen_fd = -1;
    if (backend_parse_args(&b, &listen_text, argc, argv) == -1) {
        backend_usage(stderr);
        return 2;
    }
    /* send() uses MSG_NOSIGNAL, but a stray write must not kill a test either. */
    signal(SIGPIPE, SIG_IGN);
    backend_raise_nofile();

    b.loop = ev_default_loop(EVFLAG_AUTO);
    if (b.loop == NULL) {
        fprintf(stderr, "tcplb-backend: cannot start libev\n");
        return 1;
    }
    b.listen_fd = backend_listen(listen_text, &actual, err, sizeof err);
    if (b.listen_fd == -1) {
        fprintf(stderr, "tcplb-backend: %s\n", err);
        goto out;
    }
    if (b.pidfile != NULL) {
        if (backend_write_pidfile(b.pidfile) == -1) {
            fprintf(stderr, "tcplb-backend: %s: %s\n", b.pidfile, strerror(errno));
            goto out;
        }
        b.pidfile_written = 1;
    }

    ev_io_init(&b.accept_io, backend_accept_cb, b.listen_fd, EV_READ);
    ev_io_start(b.loop, &b.accept_io);
    ev_init(&b.accept_pause, backend_accept_pause_cb);
    ev_signal_init(&b.sig_term, backend_signal_cb, SIGTERM);
    ev_signal_start(b.loop, &b.sig_term);
    ev_signal_init(&b.sig_int, backend_signal_cb, SIGINT);
    ev_signal_start(b.loop, &b.sig_int);

    /* The pidfile exists before this line, so a test that waits for the
     * line may rely on both. */
    printf("listening %s %s\n", b.name, backend_addr_str(&actual, addr, sizeof addr));
    fflush(stdout);

    ev_run(b.loop, 0);
    status = 0;

    while (b.conns != NULL)
        backend_conn_free(b.conns);
    ev_io_stop(b.loop, &b.accept_io);
    ev_timer_stop(b.loop, &b.accept_pause);
    ev_signal_stop(b.loop, &b.sig_term);
    ev_signal_stop(b.loop, &b.sig_int);
out:
    if (b.listen_fd != -1)
        close(b.listen_fd);
    if (b.pidfile_written)
        unlink(b.pidfile);
    ev_loop_destroy(b.loop);
    return status;
}
