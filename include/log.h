/* log.h — the access log (one logfmt line per client connection) and
 * operational messages. Workers append access lines to their own buffer; a
 * writer thread flushes them, so a slow disk drops lines (counted) instead of
 * stalling a relay. Operational messages go to stderr at once: they are rare
 * and come from the main thread. */
#ifndef TCPLB_LOG_H
#define TCPLB_LOG_H

#include <stddef.h>
#include <stdint.h>

struct global_conf;

int log_open(const struct global_conf *g, unsigned nworkers, char *err, size_t errlen);
/* Flushes what is buffered and stops the writer. */
void log_close(void);
/* Reopens the log file (SIGUSR1); applied by the writer thread. */
void log_reopen(void);

/* 1 when access lines are wanted at all (log != off). */
int log_access_enabled(void);
/* Appends one line (with its '\n') to worker <id>'s buffer; never blocks on
 * I/O. */
void log_access(unsigned worker, const char *line, size_t len);
uint64_t log_dropped(void);
uint64_t log_written(void);

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
