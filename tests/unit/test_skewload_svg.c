/* test_skewload_svg.c — tools/skewload svg.c: the document is well-formed
 * (starts with <svg, ends with </svg>, tags nest, every & starts an entity),
 * draws exactly one rect per bar, and escapes names holding < & " '. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "svg.h"

/* Renders c into a malloc'ed string. */
static char *render(const struct svg_chart *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(svg_write(f, c), 0);
    assert_int_equal(fclose(f), 0);
    assert_non_null(buf);
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A small well-formedness check: tags nest and close in order, attribute
 * values are quoted, text holds no raw '<' and every '&' opens one of the
 * five predefined entities or a numeric one. */
static void assert_well_formed(const char *doc)
{
    char stack[64][32];
    int depth = 0, seen_root = 0;

    for (const char *p = doc; *p != '\0';) {
        if (*p == '&') {
            const char *semi = strchr(p, ';');
            assert_non_null(semi);
            size_t len = (size_t)(semi - p + 1);
            int ok = (len == 5 && strncmp(p, "&amp;", 5) == 0)
                  || (len == 4 && (strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0))
                  || (len == 6 && (strncmp(p, "&quot;", 6) == 0 || strncmp(p, "&apos;", 6) == 0))
                  || (len >= 4 && p[1] == '#');
            if (!ok)
                fail_msg("bad entity at: %.20s", p);
            p = semi + 1;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && *p != '\n')
                fail_msg("text outside the root: %.20s", p);
            p++;
            continue;
        }
        /* A tag: find its end, skipping quoted attribute values. */
        const char *q = p + 1;
        int quoted = 0;
        while (*q != '\0' && (quoted || *q != '>')) {
            if (*q == '"')
                quoted = !quoted;
            else if (*q == '<' && !quoted)
                fail_msg("'<' inside a tag at: %.30s", p);
            q++;
        }
        assert_true(*q == '>');
        char name[32];
        size_t n = 0;
        const char *s = p[1] == '/' ? p + 2 : p + 1;
        while (n < sizeof name - 1 && s[n] != ' ' && s[n] != '>' && s[n] != '/' && s[n] != '\n') {
            name[n] = s[n];
            n++;
        }
        name[n] = '\0';
        assert_true(n > 0);
        if (p[1] == '/') {
            assert_true(depth > 0);
            assert_string_equal(stack[depth - 1], name);
            depth--;
        } else if (q[-1] != '/') {
            if (depth == 0) {
                assert_false(seen_root);
                seen_root = 1;
            }
            assert_true(depth < 64);
            strcpy(stack[depth++], name);
        }
        p = q + 1;
    }
    assert_int_equal(depth, 0);
    assert_true(seen_root);
}

static void test_one_rect_per_bar_and_well_formed(void **state)
{
    const char *const series[] = { "a", "b", "c" };
    double values[5 * 3];
    struct svg_chart c = {
        .title = "requests per server", .x_label = "seconds", .y_label = "requests",
        .series = series, .nseries = 3, .ngroups = 5, .group_start = 0, .group_step = 1,
        .values = values,
    };

    (void)state;
    for (size_t i = 0; i < 15; i++)
        values[i] = (double)(i * 37 % 11);
    values[4] = 0;      /* a zero bar is still a bar */
    char *doc = render(&c);
    assert_memory_equal(doc, "<svg", 4);
    size_t len = strlen(doc);
    assert_true(len > 7);
    assert_string_equal(doc + len - 7, "</svg>\n");
    assert_int_equal(count(doc, "<rect"), 15);
    assert_int_equal(count(doc, "</rect>"), 15);
    assert_int_equal(count(doc, "<svg"), 1);
    assert_non_null(strstr(doc, "xmlns=\"http://www.w3.org/2000/svg\""));
    /* Title, axis labels and legend entries are all there. */
    assert_non_null(strstr(doc, ">requests per server</text>"));
    assert_non_null(strstr(doc, ">seconds</text>"));
    assert_non_null(strstr(doc, ">requests</text>"));
    assert_non_null(strstr(doc, ">b</text>"));
    assert_int_equal(count(doc, "<circle"), 3);
    assert_well_formed(doc);
    free(doc);
}

static void test_names_are_escaped(void **state)
{
    const char *const series[] = { "a<b & \"c\"", "d'e>f" };
    const double values[] = { 1, 2 };
    struct svg_chart c = {
        .title = "t <&> \"q\"", .x_label = "x&y", .y_label = "<y>",
        .series = series, .nseries = 2, .ngroups = 1, .group_step = 1, .values = values,
    };

    (void)state;
    char *doc = render(&c);
    assert_null(strstr(doc, "a<b"));
    assert_null(strstr(doc, "& \""));
    assert_null(strstr(doc, "\"c\""));
    assert_non_null(strstr(doc, "a&lt;b &amp; &quot;c&quot;"));
    assert_non_null(strstr(doc, "d&#39;e&gt;f"));
    assert_non_null(strstr(doc, "t &lt;&amp;&gt; &quot;q&quot;"));
    assert_non_null(strstr(doc, "x&amp;y"));
    assert_int_equal(count(doc, "<rect"), 2);
    assert_well_formed(doc);
    free(doc);
}

static void test_control_characters_are_replaced(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    (void)state;
    assert_non_null(f);
    svg_put_escaped(f, "a\x01" "b\tc&");
    fclose(f);
    assert_string_equal(buf, "a?b?c&amp;");
    free(buf);
}

static void test_empty_chart_is_still_a_document(void **state)
{
    struct svg_chart c = { .title = "nothing", .group_step = 1 };

    (void)state;
    char *doc = render(&c);
    assert_memory_equal(doc, "<svg", 4);
    assert_string_equal(doc + strlen(doc) - 7, "</svg>\n");
    assert_int_equal(count(doc, "<rect"), 0);
    assert_non_null(strstr(doc, "no data"));
    assert_well_formed(doc);
    free(doc);
}

static void test_many_groups_label_a_subset(void **state)
{
    const char *const series[] = { "a", "b" };
    double values[120 * 2];
    struct svg_chart c = {
        .title = "long", .series = series, .nseries = 2, .ngroups = 120,
        .group_start = 0, .group_step = 1, .values = values,
    };

    (void)state;
    for (size_t i = 0; i < 240; i++)
        values[i] = (double)i;
    char *doc = render(&c);
    assert_int_equal(count(doc, "<rect"), 240);
    /* 20 x labels at most (every 6th group) plus 6 y labels, title, 2 axis
     * labels and 2 legend entries. */
    assert_true(count(doc, "<text") <= 20 + 6 + 1 + 2 + 2);
    assert_well_formed(doc);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rect_per_bar_and_well_formed),
        cmocka_unit_test(test_names_are_escaped),
        cmocka_unit_test(test_control_characters_are_replaced),
        cmocka_unit_test(test_empty_chart_is_still_a_document),
        cmocka_unit_test(test_many_groups_label_a_subset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
