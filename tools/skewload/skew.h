/* skew.h — which client makes the next request: a distribution over clients
 * 0..n-1 (uniform, Zipf with exponent s, or one hot client at K times the
 * weight of each other), sampled through an exact inverse-CDF table. It
 * knows nothing of addresses or randomness sources: callers pass u in [0,1). */
#ifndef SKEWLOAD_SKEW_H
#define SKEWLOAD_SKEW_H

#include <stddef.h>

enum skew_kind {
    SKEW_UNIFORM,   /* every client alike */
    SKEW_ZIPF,      /* client i (0-based) weighs 1 / (i + 1)^s */
    SKEW_HOT,       /* client 0 weighs K, every other client 1 */
};

/* What --skew says. param is s for zipf, K for hot, unused for uniform. */
struct skew_spec {
    enum skew_kind kind;
    double param;
};

/* The sampler. Owned by its creator; free with skew_free. */
struct skew {
    struct skew_spec spec;
    size_t n;
    double *cdf;    /* cdf[i] = P(client <= i); cdf[n - 1] is exactly 1 */
};

#define SKEW_ZIPF_MAX_S 20.0
#define SKEW_HOT_MAX_K 1e6

const char *skew_kind_str(enum skew_kind kind);

/* Parses "uniform", "zipf:S" (0 <= S <= 20) or "hot:K" (0 < K <= 1e6).
 * Returns 0, or -1 with a message in err. */
int skew_parse(const char *text, struct skew_spec *spec, char *err, size_t errlen);

/* Writes the spec back in --skew syntax ("zipf:1.1", "hot:10"). */
void skew_format(const struct skew_spec *spec, char *buf, size_t buflen);

/* Builds the table for n >= 1 clients; NULL if n is 0 or memory runs out. */
struct skew *skew_new(const struct skew_spec *spec, size_t n);

/* Frees s; skew_free(NULL) is a no-op. */
void skew_free(struct skew *s);

/* The exact probability of client i (0 when i >= n). */
double skew_prob(const struct skew *s, size_t i);

/* The client for u in [0, 1): the smallest i with u < cdf[i], found by
 * binary search, so a pick costs O(log n) whatever the skew. */
size_t skew_pick(const struct skew *s, double u);

#endif
