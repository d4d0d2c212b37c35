/* rng.h — a small seeded pseudo-random generator (SplitMix64), so that a
 * run with --seed N draws the same client sequence on every machine; the C
 * library's rand() differs between libcs and has too few bits. */
#ifndef SKEWLOAD_RNG_H
#define SKEWLOAD_RNG_H

#include <stdint.h>

/* Owned by whoever embeds it; no heap. */
struct rng {
    uint64_t state;
};

/* Starts the sequence for seed; any value, 0 included, is a good seed. */
void rng_seed(struct rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* A double uniform in [0, 1), with 53 random bits: never 1.0. */
double rng_unit(struct rng *r);

#endif
