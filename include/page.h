/* page.h — the live stats page (src/web/page.html, compiled in by the
 * Makefile): one self-contained HTML document that polls /stats.json. */
#ifndef TCPLB_PAGE_H
#define TCPLB_PAGE_H

extern const char page_html[];
extern const unsigned long page_html_len;

#endif
