/* hash.h — the one 64-bit hash tcplb uses for placement: client IPs in the
 * client table and Maglev's slots, server names in Maglev's permutations.
 * Fixed (no per-process seed), so every tcplb maps a key the same way. */
#ifndef TCPLB_HASH_H
#define TCPLB_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over <len> bytes, started from <salt>, then a murmur3 finaliser
 * so that nearby keys (consecutive IPs) spread over the whole range. */
uint64_t hash_bytes(const void *data, size_t len, uint64_t salt);

#endif
