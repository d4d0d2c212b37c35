/* rng.c — SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter run through
 * a bijective mixer. One add and three multiply-xorshifts per draw; it passes
 * BigCrush, which is far more than choosing client IPs needs. */

#include "rng.h"

/* The golden-ratio increment: odd, so the counter visits all 2^64 states. */
#define RNG_GAMMA 0x9e3779b97f4a7c15ULL

void rng_seed(struct rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->state += RNG_GAMMA);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double rng_unit(struct rng *r)
{
    /* The top 53 bits fill a double's mantissa exactly. */
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}
