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

/* A counter written by exactly one thread and read by others: a relaxed
 * load+store (no locked instruction) keeps the writer cheap and the reader
 * free of torn values. */
static inline void counter_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
                     __ATOMIC_RELAXED);
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
