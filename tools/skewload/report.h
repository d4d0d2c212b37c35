/* report.h — turns a finished run's tally into what the user reads: a text
 * report, CSV for scripts, or an SVG chart of requests per server over time.
 * Reads the tally; computes nothing that the tally or dist.c do not offer. */
#ifndef SKEWLOAD_REPORT_H
#define SKEWLOAD_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>

struct tally;

/* The run's settings and timing, for headers and titles. */
struct report_info {
    const char *target;         /* -t as given */
    const char *mode;           /* "http" or "tcp" */
    int keepalive;
    unsigned per_conn;          /* requests per connection, 0 = no cap */
    unsigned concurrency;
    size_t nclients;
    struct in_addr client_base;
    const char *skew;           /* in --skew syntax */
    uint64_t seed;
    double elapsed_s;
    int interrupted;
};

/* How many clients the text report lists. */
#define REPORT_TOP_CLIENTS 10

/* Each writes to out and returns 0, or -1 on a write error or when out of
 * memory. t must have been through tally_sort. */
int report_text(FILE *out, const struct tally *t, const struct report_info *ri);
int report_csv(FILE *out, const struct tally *t, const struct report_info *ri);
int report_svg(FILE *out, const struct tally *t, const struct report_info *ri);

#endif
