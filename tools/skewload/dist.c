/* dist.c — percentile, imbalance and coefficient of variation. Latency
 * percentiles are exact (sort, then nearest rank), not bucketed: a run keeps
 * at most -n samples, and sorting ten thousand doubles is instantaneous. */

#include <math.h>
#include <stdlib.h>

#include "dist.h"

static int dist_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

void dist_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, dist_cmp_double);
}

int dist_percentile(const double *sorted, size_t n, double p, double *out)
{
    if (n == 0)
        return -1;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* p * n is exact for the usual integer p and n, so ceil() sees 99 and not
     * 99.00000000000001 for p99 of 100 samples (0.99 * 100 would not be). */
    double rank = ceil(p * (double)n / 100.0);
    size_t r = rank < 1 ? 1 : (size_t)rank;
    if (r > n)
        r = n;
    *out = sorted[r - 1];
    return 0;
}

double dist_mean(const uint64_t *counts, size_t n)
{
    double sum = 0;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)counts[i];
    return sum / (double)n;
}

double dist_imbalance(const uint64_t *counts, size_t n)
{
    double mean = dist_mean(counts, n);
    uint64_t max = 0;

    if (mean == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (counts[i] > max)
            max = counts[i];
    return (double)max / mean;
}

double dist_cv(const uint64_t *counts, size_t n)
{
    double mean = dist_mean(counts, n);
    double sq = 0;

    if (mean == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)counts[i] - mean;
        sq += d * d;
    }
    return sqrt(sq / (double)n) / mean;
}
