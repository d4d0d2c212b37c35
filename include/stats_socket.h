/* stats_socket.h — the UNIX stream socket that serves stats commands on the
 * main thread's loop: line protocol, ';' separated commands, answer per
 * command, close once the client has shut down its side and all is sent. */
#ifndef TCPLB_STATS_SOCKET_H
#define TCPLB_STATS_SOCKET_H

#include <ev.h>
#include <stddef.h>

struct stats_ctx;
struct stats_socket;

/* Creates the socket at <path> with mode 0600 (a stale socket file left by a
 * dead process is replaced; one still answering is not). NULL with err. */
struct stats_socket *stats_socket_open(struct ev_loop *loop, const char *path,
                                       struct stats_ctx *ctx, char *err,
                                       size_t errlen);
/* Closes every connection and the socket, and unlinks the path. NULL ok. */
void stats_socket_close(struct stats_socket *ss);

#endif
