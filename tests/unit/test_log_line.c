/* test_log_line.c — log_line.c: one access line built field by field in
 * both formats, logfmt (name=value, `-` for none) and JSON (the same names
 * in the same order, numbers bare, null for none, strings escaped), and a
 * line that does not fit its buffer is refused whole rather than cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "log_line.h"

static size_t build(enum log_format f, char *buf, size_t cap)
{
    struct log_line l;
    log_line_start(&l, buf, cap, f);
    log_line_str(&l, "ts", "2026-12-03T12:00:00.000Z");
    log_line_str(&l, "server", NULL);
    log_line_num(&l, "bytes_in", "%llu", 78ULL);
    log_line_num(&l, "rt_ms", "%.2f", 14.8);
    log_line_none(&l, "status");
    log_line_str(&l, "term", "ok");
    return log_line_end(&l);
}

static void test_logfmt(void **state)
{
    (void)state;
    char buf[256];
    size_t n = build(LOG_FORMAT_LOGFMT, buf, sizeof(buf));
    const char *want = "ts=2026-12-03T12:00:00.000Z server=- bytes_in=78 rt_ms=14.80 "
                       "status=- term=ok\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_json(void **state)
{
    (void)state;
    char buf[256];
    size_t n = build(LOG_FORMAT_JSON, buf, sizeof(buf));
    const char *want = "{\"ts\":\"2026-12-03T12:00:00.000Z\",\"server\":null,\"bytes_in\":78,"
                       "\"rt_ms\":14.80,\"status\":null,\"term\":\"ok\"}\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_json_escapes_strings(void **state)
{
    (void)state;
    char buf[256];
    struct log_line l;
    log_line_start(&l, buf, sizeof(buf), LOG_FORMAT_JSON);
    log_line_str(&l, "path", "/a\"b\\c\x01\t\x7f\xc3\xa9");
    assert_int_not_equal(log_line_end(&l), 0);
    assert_string_equal(buf, "{\"path\":\"/a\\\"b\\\\c\\u0001\\u0009\x7f\xc3\xa9\"}\n");
}

static void test_empty_line(void **state)
{
    (void)state;
    char buf[8];
    struct log_line l;
    log_line_start(&l, buf, sizeof(buf), LOG_FORMAT_JSON);
    assert_int_equal(log_line_end(&l), 3);
    assert_string_equal(buf, "{}\n");
    log_line_start(&l, buf, sizeof(buf), LOG_FORMAT_LOGFMT);
    assert_int_equal(log_line_end(&l), 1);
    assert_string_equal(buf, "\n");
}

static void test_a_line_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    char buf[256];
    size_t full = build(LOG_FORMAT_JSON, buf, sizeof(buf));
    /* every buffer up to the exact size (line, NUL) refuses; that one takes it */
    for (size_t cap = 0; cap <= full; cap++) {
        char small[256];
        memset(small, 'Z', sizeof(small));
        assert_int_equal(build(LOG_FORMAT_JSON, small, cap), 0);
        for (size_t i = cap; i < sizeof(small); i++)
            assert_int_equal(small[i], 'Z');          /* nothing written past it */
    }
    char exact[256];
    assert_int_equal(build(LOG_FORMAT_JSON, exact, full + 1), full);
    assert_string_equal(exact, buf);
    assert_int_equal(build(LOG_FORMAT_LOGFMT, exact, 10), 0);
}

static void test_whole_numbers(void **state)
{
    (void)state;
    char buf[128];
    struct log_line l;
    log_line_start(&l, buf, sizeof(buf), LOG_FORMAT_JSON);
    log_line_u64(&l, "zero", 0);
    log_line_u64(&l, "n", 1234567890ULL);
    log_line_u64(&l, "max", 18446744073709551615ULL);
    assert_int_not_equal(log_line_end(&l), 0);
    assert_string_equal(buf, "{\"zero\":0,\"n\":1234567890,\"max\":18446744073709551615}\n");
    log_line_start(&l, buf, 12, LOG_FORMAT_LOGFMT);
    log_line_u64(&l, "n", 1234567890ULL);          /* "n=1234567890\n" needs 14 */
    assert_int_equal(log_line_end(&l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_escapes_strings),
        cmocka_unit_test(test_empty_line),
        cmocka_unit_test(test_a_line_that_does_not_fit_is_refused),
        cmocka_unit_test(test_whole_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
