/* dist.h — the numbers skewload reports about a distribution: nearest-rank
 * percentiles of latency samples, and imbalance (max/mean) and coefficient
 * of variation of request counts. Pure functions: no state, no I/O. */
#ifndef SKEWLOAD_DIST_H
#define SKEWLOAD_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Sorts v ascending in place. */
void dist_sort(double *v, size_t n);

/* The p-th percentile (0 <= p <= 100) of the n ascending samples in sorted,
 * by the nearest-rank method: the smallest sample with at least p % of all
 * samples at or below it, i.e. sorted[ceil(p * n / 100) - 1] (rank at least
 * 1). Always one of the samples, never an interpolation: the p50 of 1..100
 * is 50, its p99 is 99, and any percentile of one sample is that sample.
 * Returns 0 with the value in *out, or -1 when n is 0 (no samples, no
 * percentile) leaving *out alone. */
int dist_percentile(const double *sorted, size_t n, double p, double *out);

/* The arithmetic mean of counts (0 when n is 0). */
double dist_mean(const uint64_t *counts, size_t n);

/* max / mean over the n counts: 1 is perfectly even, k means the busiest
 * got k times its fair share. Zero counts take part (a server that got
 * nothing raises the imbalance). 0 when n is 0 or every count is 0. */
double dist_imbalance(const uint64_t *counts, size_t n);

/* Coefficient of variation: population standard deviation / mean, so 0 is
 * perfectly even. 0 when n is 0 or every count is 0. */
double dist_cv(const uint64_t *counts, size_t n);

#endif
