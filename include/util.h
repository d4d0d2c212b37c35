/* util.h — small helpers shared by every module: container_of, min/max,
 * relaxed per-worker counter updates. Nothing here allocates. */
#ifndef TCPLB_UTIL_H
#define TCPLB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CACHE_LINE 64

#define TCPLB_VERSION "0.1.0"

/* A counter written by one worker and read (or cleared) by the stats
 * thread: one relaxed atomic add on a cache line no other worker writes, so
 * it costs a few cycles and a concurrent `clear counters` cannot be undone
 * by an add that read the value before the clear. */
static inline void counter_add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t counter_read(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static inline void counter_zero(uint64_t *c)
{
    __atomic_store_n(c, 0, __ATOMIC_RELAXED);
}

#endif
