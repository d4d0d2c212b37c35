/* skew.c — the client-choice distributions. All three are weight vectors fed
 * to one cumulative table, so uniform, Zipf and hot share the sampler and its
 * tests; the weights are the only thing that differs. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skew.h"

const char *skew_kind_str(enum skew_kind kind)
{
    switch (kind) {
    case SKEW_UNIFORM:
        return "uniform";
    case SKEW_ZIPF:
        return "zipf";
    case SKEW_HOT:
        return "hot";
    }
    return "?";
}

/* A finite number filling all of text, or -1. */
static int skew_parse_number(const char *text, double *out)
{
    char *end;

    if (*text == '\0')
        return -1;
    double v = strtod(text, &end);
    if (*end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int skew_parse(const char *text, struct skew_spec *spec, char *err, size_t errlen)
{
    double v;

    if (strcmp(text, "uniform") == 0) {
        spec->kind = SKEW_UNIFORM;
        spec->param = 0;
        return 0;
    }
    if (strncmp(text, "zipf:", 5) == 0) {
        if (skew_parse_number(text + 5, &v) == -1 || v < 0 || v > SKEW_ZIPF_MAX_S) {
            snprintf(err, errlen, "--skew %s: zipf:S needs 0 <= S <= %g", text,
                     SKEW_ZIPF_MAX_S);
            return -1;
        }
        spec->kind = SKEW_ZIPF;
        spec->param = v;
        return 0;
    }
    if (strncmp(text, "hot:", 4) == 0) {
        if (skew_parse_number(text + 4, &v) == -1 || v <= 0 || v > SKEW_HOT_MAX_K) {
            snprintf(err, errlen, "--skew %s: hot:K needs 0 < K <= %g", text,
                     SKEW_HOT_MAX_K);
            return -1;
        }
        spec->kind = SKEW_HOT;
        spec->param = v;
        return 0;
    }
    snprintf(err, errlen, "--skew %s: expected uniform, zipf:S or hot:K", text);
    return -1;
}

void skew_format(const struct skew_spec *spec, char *buf, size_t buflen)
{
    if (spec->kind == SKEW_UNIFORM)
        snprintf(buf, buflen, "uniform");
    else
        snprintf(buf, buflen, "%s:%g", skew_kind_str(spec->kind), spec->param);
}

static double skew_weight(const struct skew_spec *spec, size_t i)
{
    switch (spec->kind) {
    case SKEW_UNIFORM:
        return 1.0;
    case SKEW_ZIPF:
        return pow((double)(i + 1), -spec->param);
    case SKEW_HOT:
        return i == 0 ? spec->param : 1.0;
    }
    return 1.0;
}

struct skew *skew_new(const struct skew_spec *spec, size_t n)
{
    if (n == 0)
        return NULL;
    struct skew *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cdf = calloc(n, sizeof *s->cdf);
    if (s->cdf == NULL)
        goto fail;
    s->spec = *spec;
    s->n = n;

    double total = 0;
    for (size_t i = 0; i < n; i++) {
        total += skew_weight(spec, i);
        s->cdf[i] = total;
    }
    for (size_t i = 0; i < n; i++)
        s->cdf[i] /= total;
    /* Rounding may leave the last entry a hair under 1; a u that lands in
     * that gap must still find a client. */
    s->cdf[n - 1] = 1.0;
    return s;
fail:
    free(s);
    return NULL;
}

void skew_free(struct skew *s)
{
    if (s == NULL)
        return;
    free(s->cdf);
    free(s);
}

double skew_prob(const struct skew *s, size_t i)
{
    if (i >= s->n)
        return 0;
    return i == 0 ? s->cdf[0] : s->cdf[i] - s->cdf[i - 1];
}

size_t skew_pick(const struct skew *s, double u)
{
    size_t lo = 0, hi = s->n - 1;

    /* Invariant: the answer is in [lo, hi]; cdf[hi] is 1 > u. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < s->cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}
