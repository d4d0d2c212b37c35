/* log.c — access log buffering and writing, and operational messages.
 * Each worker owns a buffer guarded by its own mutex, held only for a memcpy;
 * the writer thread swaps a full or aged buffer for an empty one and writes
 * it out with no worker waiting on the disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define LOG_BUF_SIZE (256 * 1024)
#define LOG_FLUSH_MS 100

struct log_worker_buf {
    pthread_mutex_t lock;
    char *data;                 /* owned, LOG_BUF_SIZE */
    size_t len;
} __attribute__((aligned(CACHE_LINE)));

static struct {
    int enabled;
    int fd;                     /* owned unless it is 2 */
    char *path;                 /* owned, LOG_FILE only */
    unsigned nworkers;
    struct log_worker_buf *bufs;   /* owned [nworkers] */
    char *spare;                /* owned: the writer's swap buffer */
    pthread_t writer;
    int writer_running;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    int stop;                   /* under wake_lock */
    int reopen;                 /* atomic */
    int wake_pending;           /* atomic: a worker asked for an early flush */
    uint64_t dropped;           /* atomic */
    uint64_t written;           /* atomic */
} log_state = { .fd = -1 };

void log_msg(const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ tcplb: ",
                  ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;   /* nowhere left to report a failing stderr */
}

static int log_open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void log_write_all(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(log_state.fd, data, len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return;   /* disk full or gone: the lines are lost, not the relay */
        }
        data += n;
        len -= (size_t)n;
    }
}

static void log_flush_all(void)
{
    for (unsigned i = 0; i < log_state.nworkers; i++) {
        struct log_worker_buf *b = &log_state.bufs[i];
        pthread_mutex_lock(&b->lock);
        char *full = b->data;
        size_t len = b->len;
        b->data = log_state.spare;
        b->len = 0;
        pthread_mutex_unlock(&b->lock);
        log_state.spare = full;
        if (len > 0) {
            log_write_all(full, len);
            __atomic_add_fetch(&log_state.written, len, __ATOMIC_RELAXED);
        }
    }
}

static void *log_writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_state.wake_lock);
    for (;;) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += LOG_FLUSH_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        if (!log_state.stop)
            pthread_cond_timedwait(&log_state.wake, &log_state.wake_lock, &deadline);
        int stop = log_state.stop;
        pthread_mutex_unlock(&log_state.wake_lock);
        __atomic_store_n(&log_state.wake_pending, 0, __ATOMIC_RELEASE);

        if (__atomic_exchange_n(&log_state.reopen, 0, __ATOMIC_ACQ_REL) &&
            log_state.path != NULL) {
            int fd = log_open_file(log_state.path);
            if (fd == -1) {
                log_msg("cannot reopen log %s: %s (keeping the old file)",
                        log_state.path, strerror(errno));
            } else {
                close(log_state.fd);
                log_state.fd = fd;
            }
        }
        log_flush_all();
        if (stop)
            return NULL;
        pthread_mutex_lock(&log_state.wake_lock);
    }
}

int log_open(const struct global_conf *g, unsigned nworkers, char *err, size_t errlen)
{
    if (g->log == LOG_OFF)
        return 0;
    if (g->log == LOG_FILE) {
        log_state.fd = log_open_file(g->log_path);
        if (log_state.fd == -1) {
            snprintf(err, errlen, "cannot open log %s: %s", g->log_path,
                     strerror(errno));
            return -1;
        }
        log_state.path = strdup(g->log_path);
    } else {
        log_state.fd = STDERR_FILENO;
    }
    log_state.nworkers = nworkers;
    /* aligned_alloc, not calloc: each worker's buffer header owns a cache
     * line, which malloc's 16-byte alignment would not give */
    log_state.bufs = aligned_alloc(CACHE_LINE, nworkers * sizeof(*log_state.bufs));
    if (log_state.bufs != NULL)
        memset(log_state.bufs, 0, nworkers * sizeof(*log_state.bufs));
    log_state.spare = malloc(LOG_BUF_SIZE);
    if (log_state.bufs == NULL || log_state.spare == NULL)
        goto nomem;
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&log_state.bufs[i].lock, NULL);
        log_state.bufs[i].data = malloc(LOG_BUF_SIZE);
        if (log_state.bufs[i].data == NULL)
            goto nomem;
    }
    pthread_mutex_init(&log_state.wake_lock, NULL);
    pthread_cond_init(&log_state.wake, NULL);
    if (pthread_create(&log_state.writer, NULL, log_writer_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the log writer thread");
        log_close();
        return -1;
    }
    log_state.writer_running = 1;
    log_state.enabled = 1;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory for log buffers");
    log_close();
    return -1;
}

void log_close(void)
{
    if (log_state.writer_running) {
        pthread_mutex_lock(&log_state.wake_lock);
        log_state.stop = 1;
        pthread_cond_signal(&log_state.wake);
        pthread_mutex_unlock(&log_state.wake_lock);
        pthread_join(log_state.writer, NULL);
        log_state.writer_running = 0;
    }
    log_state.enabled = 0;
    if (log_state.bufs != NULL) {
        for (unsigned i = 0; i < log_state.nworkers; i++) {
            free(log_state.bufs[i].data);
            pthread_mutex_destroy(&log_state.bufs[i].lock);
        }
    }
    free(log_state.bufs);
    free(log_state.spare);
    free(log_state.path);
    log_state.bufs = NULL;
    log_state.spare = NULL;
    log_state.path = NULL;
    if (log_state.fd > STDERR_FILENO)
        close(log_state.fd);
    log_state.fd = -1;
}

void log_reopen(void)
{
    __atomic_store_n(&log_state.reopen, 1, __ATOMIC_RELEASE);
}

int log_access_enabled(void)
{
    return log_state.enabled;
}

void log_access(unsigned worker, const char *line, size_t len)
{
    if (!log_state.enabled || worker >= log_state.nworkers)
        return;
    struct log_worker_buf *b = &log_state.bufs[worker];
    pthread_mutex_lock(&b->lock);
    int half = 0;
    if (b->len + len <= LOG_BUF_SIZE) {
        memcpy(b->data + b->len, line, len);
        b->len += len;
        half = b->len > LOG_BUF_SIZE / 2;
        len = 0;
    }
    pthread_mutex_unlock(&b->lock);
    if (len != 0)
        __atomic_add_fetch(&log_state.dropped, 1, __ATOMIC_RELAXED);
    /* Half full: flush now rather than at the next tick. One signal until
     * the writer has run; a missed one is covered by the tick. */
    if ((half || len != 0) && !__atomic_exchange_n(&log_state.wake_pending, 1,
                                                   __ATOMIC_ACQ_REL))
        pthread_cond_signal(&log_state.wake);
}

uint64_t log_dropped(void)
{
    return __atomic_load_n(&log_state.dropped, __ATOMIC_RELAXED);
}

uint64_t log_written(void)
{
    return __atomic_load_n(&log_state.written, __ATOMIC_RELAXED);
}
