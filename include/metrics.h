/* metrics.h — the Prometheus text exposition of tcplb's counters (format
 * 0.0.4): HELP and TYPE for every family, labels pool/server or listener,
 * histograms with cumulative buckets, _sum and _count. Main thread. */
#ifndef TCPLB_METRICS_H
#define TCPLB_METRICS_H

struct buf;
struct stats_ctx;

void metrics_write(struct stats_ctx *ctx, struct buf *out);

#endif
