/* recent.c — the sliding window of recent figures (see recent.h). A slot
 * belongs to the 10 seconds its epoch names; a writer that finds its slot
 * holding an older epoch empties it first. Readers skip slots outside the
 * window, so a worker that saw no traffic for a while leaves nothing stale
 * behind. Writes and reads are relaxed atomics: a reader may see a slot
 * half reset, which costs a few samples of accuracy, never a crash. */
#include <math.h>
#include <string.h>

#include "recent.h"

static uint64_t recent_epoch(double now)
{
    return now > 0 ? (uint64_t)(now / RECENT_SLOT_SECONDS) : 0;
}

/* The slot for <now>, emptied if it held an older epoch. Writer only. */
static struct recent_slot *recent_slot_for(struct recent *r, double now)
{
    uint64_t epoch = recent_epoch(now);
    struct recent_slot *s = &r->slots[epoch % RECENT_SLOTS];
    if (__atomic_load_n(&s->epoch, __ATOMIC_RELAXED) != epoch) {
        for (unsigned i = 0; i < RECENT_COUNTS; i++)
            __atomic_store_n(&s->counts[i], 0, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < RECENT_RT_BUCKETS; i++)
            __atomic_store_n(&s->rt[i], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->rt_sum_us, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->epoch, epoch, __ATOMIC_RELEASE);
    }
    return s;
}

static void recent_inc32(uint32_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void recent_count(struct recent *r, double now, enum recent_count what)
{
    recent_inc32(&recent_slot_for(r, now)->counts[what]);
}

unsigned recent_rt_bucket(double seconds)
{
    if (!(seconds > RECENT_RT_MIN))
        return 0;
    double b = 4.0 * log2(seconds / RECENT_RT_MIN);
    if (b >= RECENT_RT_BUCKETS - 1)
        return RECENT_RT_BUCKETS - 1;
    return (unsigned)b;
}

double recent_rt_bucket_value(unsigned bucket)
{
    return RECENT_RT_MIN * exp2((bucket + 0.5) / 4.0);
}

void recent_rt(struct recent *r, double now, double seconds)
{
    struct recent_slot *s = recent_slot_for(r, now);
    recent_inc32(&s->rt[recent_rt_bucket(seconds)]);
    uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6 + 0.5) : 0;
    __atomic_store_n(&s->rt_sum_us, __atomic_load_n(&s->rt_sum_us, __ATOMIC_RELAXED) + us,
                     __ATOMIC_RELAXED);
}

void recent_clear(struct recent *r)
{
    for (unsigned i = 0; i < RECENT_SLOTS; i++)
        __atomic_store_n(&r->slots[i].epoch, 0, __ATOMIC_RELEASE);
}

void recent_merge(const struct recent *r, double now, struct recent_sum *sum)
{
    uint64_t epoch = recent_epoch(now);
    for (unsigned i = 0; i < RECENT_SLOTS; i++) {
        const struct recent_slot *s = &r->slots[i];
        uint64_t e = __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
        if (e == 0 || e > epoch || epoch - e >= RECENT_SLOTS)
            continue;
        for (unsigned k = 0; k < RECENT_COUNTS; k++)
            sum->counts[k] += __atomic_load_n(&s->counts[k], __ATOMIC_RELAXED);
        for (unsigned b = 0; b < RECENT_RT_BUCKETS; b++) {
            uint32_t n = __atomic_load_n(&s->rt[b], __ATOMIC_RELAXED);
            sum->rt[b] += n;
            sum->rt_samples += n;
        }
        sum->rt_sum_us += __atomic_load_n(&s->rt_sum_us, __ATOMIC_RELAXED);
    }
}

double recent_rt_quantile(const struct recent_sum *sum, double q)
{
    if (sum->rt_samples == 0)
        return NAN;
    /* the smallest bucket whose cumulative count reaches q of the samples */
    uint64_t want = (uint64_t)ceil(q * (double)sum->rt_samples);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < RECENT_RT_BUCKETS; b++) {
        seen += sum->rt[b];
        if (seen >= want)
            return recent_rt_bucket_value(b);
    }
    return recent_rt_bucket_value(RECENT_RT_BUCKETS - 1);
}

double recent_rt_mean(const struct recent_sum *sum)
{
    if (sum->rt_samples == 0)
        return NAN;
    return (double)sum->rt_sum_us / 1e6 / (double)sum->rt_samples;
}
