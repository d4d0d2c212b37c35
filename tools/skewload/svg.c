/* svg.c — the grouped bar chart. Fixed canvas, linear y axis from 0 to a
 * "nice" ceiling (1, 2 or 5 times a power of ten) so grid labels read well.
 * Bars carry a <title> so a browser shows the exact count on hover. */

#include <math.h>
#include <stdio.h>

#include "svg.h"

#define SVG_W 960
#define SVG_H 480
#define SVG_LEFT 80         /* room for y tick labels and the y label */
#define SVG_RIGHT 190       /* room for the legend */
#define SVG_TOP 50          /* room for the title */
#define SVG_BOTTOM 70       /* room for x tick labels and the x label */
#define SVG_Y_TICKS 5
#define SVG_X_LABELS_MAX 20 /* more groups than this: label every k-th */
#define SVG_GROUP_FILL 0.8  /* share of a group's width its bars take */
#define SVG_LEGEND_MAX 24   /* legend rows; the rest are summarised */

/* Colour-blind-friendlier categorical palette, cycled when series outnumber it. */
static const char *const svg_palette[] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};
#define SVG_PALETTE_LEN (sizeof svg_palette / sizeof svg_palette[0])

void svg_put_escaped(FILE *out, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            /* XML 1.0 forbids most control characters even when escaped. */
            fputc(*p < ' ' || *p == 0x7f ? '?' : *p, out);
        }
    }
}

/* The smallest 1, 2 or 5 x 10^k at or above v (1 for v <= 0). */
static double svg_nice_ceiling(double v)
{
    if (!(v > 0))
        return 1;
    double mag = pow(10, floor(log10(v)));
    double f = v / mag;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * mag;
}

/* One text element; anchor is "start", "middle" or "end". */
static void svg_text(FILE *out, double x, double y, const char *anchor, int size,
                     const char *extra, const char *text)
{
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s>",
            x, y, anchor, size, extra);
    svg_put_escaped(out, text);
    fputs("</text>\n", out);
}

static void svg_axes(FILE *out, const struct svg_chart *c, double ymax)
{
    const double px = SVG_LEFT, py = SVG_TOP;
    const double pw = SVG_W - SVG_LEFT - SVG_RIGHT, ph = SVG_H - SVG_TOP - SVG_BOTTOM;
    char label[64];

    for (int i = 0; i <= SVG_Y_TICKS; i++) {
        double v = ymax * i / SVG_Y_TICKS;
        double y = py + ph - ph * i / SVG_Y_TICKS;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"%s\"/>\n", px, y, px + pw, y, i == 0 ? "#333" : "#ddd");
        snprintf(label, sizeof label, "%g", v);
        svg_text(out, px - 6, y + 4, "end", 11, "", label);
    }
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
            px, py, px, py + ph);

    size_t every = (c->ngroups + SVG_X_LABELS_MAX - 1) / SVG_X_LABELS_MAX;
    double gw = c->ngroups ? pw / (double)c->ngroups : pw;
    for (size_t g = 0; every > 0 && g < c->ngroups; g += every) {
        snprintf(label, sizeof label, "%g", c->group_start + (double)g * c->group_step);
        svg_text(out, px + gw * ((double)g + 0.5), py + ph + 16, "middle", 11, "", label);
    }

    svg_text(out, px + pw / 2, SVG_H - 20, "middle", 13, "", c->x_label ? c->x_label : "");
    snprintf(label, sizeof label, " transform=\"rotate(-90 %d %.1f)\"", 20, py + ph / 2);
    svg_text(out, 20, py + ph / 2, "middle", 13, label, c->y_label ? c->y_label : "");
}

static void svg_bars(FILE *out, const struct svg_chart *c, double ymax)
{
    const double px = SVG_LEFT, py = SVG_TOP;
    const double pw = SVG_W - SVG_LEFT - SVG_RIGHT, ph = SVG_H - SVG_TOP - SVG_BOTTOM;
    double gw = pw / (double)c->ngroups;
    double bw = gw * SVG_GROUP_FILL / (double)c->nseries;
    char label[64];

    for (size_t g = 0; g < c->ngroups; g++) {
        for (size_t s = 0; s < c->nseries; s++) {
            double v = c->values[g * c->nseries + s];
            if (!(v > 0))
                v = 0;
            double h = ph * (v > ymax ? ymax : v) / ymax;
            double x = px + gw * (double)g + gw * (1 - SVG_GROUP_FILL) / 2 + bw * (double)s;
            fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                    "fill=\"%s\"><title>", x, py + ph - h, bw, h,
                    svg_palette[s % SVG_PALETTE_LEN]);
            svg_put_escaped(out, c->series[s]);
            snprintf(label, sizeof label, " @ %g: %g",
                     c->group_start + (double)g * c->group_step, v);
            svg_put_escaped(out, label);
            fputs("</title></rect>\n", out);
        }
    }
}

static void svg_legend(FILE *out, const struct svg_chart *c)
{
    double x = SVG_W - SVG_RIGHT + 20, y = SVG_TOP + 10;
    char more[64];

    for (size_t s = 0; s < c->nseries && s < SVG_LEGEND_MAX; s++, y += 18) {
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\"/>\n", x, y - 4,
                svg_palette[s % SVG_PALETTE_LEN]);
        svg_text(out, x + 12, y, "start", 12, "", c->series[s]);
    }
    if (c->nseries > SVG_LEGEND_MAX) {
        snprintf(more, sizeof more, "... and %zu more", c->nseries - SVG_LEGEND_MAX);
        svg_text(out, x, y, "start", 12, "", more);
    }
}

int svg_write(FILE *out, const struct svg_chart *c)
{
    double max = 0;

    for (size_t i = 0; i < c->ngroups * c->nseries; i++)
        if (c->values[i] > max)
            max = c->values[i];
    double ymax = svg_nice_ceiling(max);

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_text(out, SVG_W / 2.0, 28, "middle", 16, " font-weight=\"bold\"",
             c->title ? c->title : "");
    svg_axes(out, c, ymax);
    if (c->ngroups > 0 && c->nseries > 0)
        svg_bars(out, c, ymax);
    else
        svg_text(out, SVG_LEFT + (SVG_W - SVG_LEFT - SVG_RIGHT) / 2.0, SVG_H / 2.0,
                 "middle", 14, "", "no data");
    svg_legend(out, c);
    fputs("</svg>\n", out);
    return ferror(out) ? -1 : 0;
}
