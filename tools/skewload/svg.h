/* svg.h — a small SVG writer for one kind of picture: a grouped bar chart
 * (one group per x step, one bar per series in each group) with a title,
 * axis labels, y grid lines and a legend. It knows nothing of skewload;
 * report.c turns a run into a struct svg_chart. */
#ifndef SKEWLOAD_SVG_H
#define SKEWLOAD_SVG_H

#include <stddef.h>
#include <stdio.h>

/* Everything a chart shows; the writer only reads it. */
struct svg_chart {
    const char *title;
    const char *x_label;
    const char *y_label;
    const char *const *series;  /* nseries names, for the legend */
    size_t nseries;
    size_t ngroups;
    double group_start;         /* group g is labelled group_start + g * group_step */
    double group_step;
    const double *values;       /* values[g * nseries + s], each >= 0 */
};

/* Writes c as a standalone SVG document: it starts with "<svg", ends with
 * "</svg>\n", draws exactly one <rect> per bar (ngroups * nseries, zero
 * heights included; the legend uses circles, so rects count bars) and
 * escapes every text it is given. Returns 0, or -1 on a write error. */
int svg_write(FILE *out, const struct svg_chart *c);

/* Writes text with the five XML special characters escaped and control
 * characters replaced by '?'. */
void svg_put_escaped(FILE *out, const char *text);

#endif
