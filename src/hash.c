/* hash.c — see hash.h. A leaf: includes nothing of tcplb's but its header. */
#include "hash.h"

uint64_t hash_bytes(const void *data, size_t len, uint64_t salt)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ salt;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}
