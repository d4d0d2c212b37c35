/* test_buf.c — buf.c: appends and printf grow the buffer and keep it
 * NUL-terminated, consume drops a prefix, free resets to a reusable state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "util.h"

static void test_append_to_empty_buffer(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_true(b.cap >= 6);
    assert_string_equal(b.data, "hello");
    buf_free(&b);
}

static void test_appends_concatenate(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(buf_append(&b, "cdef", 3), 0);   /* only len bytes count */
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    buf_free(&b);
}

static void test_append_grows_and_keeps_content(void **state)
{
    (void)state;
    struct buf b = { 0 };
    char chunk[37];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('A' + i % 26);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
        assert_true(b.cap >= b.len + 1);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_int_equal(b.len, 1000 * sizeof(chunk));
    for (int i = 0; i < 1000; i++)
        assert_memory_equal(b.data + i * sizeof(chunk), chunk, sizeof(chunk));
    buf_free(&b);
}

static void test_append_one_large_block(void **state)
{
    (void)state;
    struct buf b = { 0 };
    size_t n = 1 << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'z', n);
    assert_int_equal(buf_append(&b, "<", 1), 0);
    assert_int_equal(buf_append(&b, big, n), 0);
    assert_int_equal(b.len, n + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[n], 'z');
    assert_int_equal(b.data[n + 1], '\0');
    free(big);
    buf_free(&b);
}

static void test_append_keeps_embedded_nul_bytes(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);
    buf_free(&b);
}

static void test_printf_formats_and_appends(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_printf(&b, "%s=%d", "x", 42), 0);
    assert_int_equal(buf_printf(&b, ",%llu\n", (unsigned long long)UINT64_MAX), 0);
    assert_string_equal(b.data, "x=42,18446744073709551615\n");
    assert_int_equal(b.len, strlen(b.data));
    buf_free(&b);
}

static void test_printf_grows_past_initial_capacity(void **state)
{
    (void)state;
    struct buf b = { 0 };
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.data[0], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    /* many small printfs across several growths */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%04d", i), 0);
    assert_int_equal(b.len, sizeof(big) + 1 + 4000);
    assert_memory_equal(b.data + sizeof(big) + 1, "000000010002", 12);
    assert_memory_equal(b.data + b.len - 4, "0999", 4);
    buf_free(&b);
}

static void test_printf_exactly_filling_capacity(void **state)
{
    (void)state;
    /* the first allocation is 256 bytes: fill it to the last byte before NUL */
    struct buf b = { 0 };
    char text[256];
    memset(text, 'f', 255);
    text[255] = '\0';
    assert_int_equal(buf_printf(&b, "%s", text), 0);
    assert_int_equal(b.len, 255);
    assert_true(b.cap >= 256);
    assert_int_equal(buf_printf(&b, "g"), 0);
    assert_int_equal(b.len, 256);
    assert_int_equal(b.data[255], 'g');
    assert_int_equal(b.data[256], '\0');
    buf_free(&b);
}

static void test_printf_of_nothing_leaves_empty_string(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

static void test_consume_drops_a_prefix(void **state)
{
    (void)state;
    static const struct { size_t n; const char *left; } cases[] = {
        { 0, "0123456789" }, { 1, "123456789" }, { 4, "456789" },
        { 9, "9" }, { 10, "" }, { 11, "" }, { (size_t)-1, "" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct buf b = { 0 };
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
        buf_consume(&b, cases[i].n);
        assert_int_equal(b.len, strlen(cases[i].left));
        assert_string_equal(b.data, cases[i].left);
        buf_free(&b);
    }
}

static void test_consume_then_append_continues(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 4);
    assert_int_equal(buf_append(&b, "gh", 2), 0);
    assert_string_equal(b.data, "efgh");
    buf_consume(&b, 4);
    assert_int_equal(buf_printf(&b, "%d", 7), 0);
    assert_string_equal(b.data, "7");
    buf_free(&b);
}

static void test_consume_on_never_used_buffer_is_harmless(void **state)
{
    (void)state;
    struct buf b = { 0 };
    buf_consume(&b, 0);
    buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    assert_null(b.data);
}

static void test_free_resets_and_buffer_is_reusable(void **state)
{
    (void)state;
    struct buf b = { 0 };
    assert_int_equal(buf_append(&b, "x", 1), 0);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_free(&b);                   /* twice is harmless */
    assert_int_equal(buf_append(&b, "y", 1), 0);
    assert_string_equal(b.data, "y");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_to_empty_buffer),
        cmocka_unit_test(test_appends_concatenate),
        cmocka_unit_test(test_append_grows_and_keeps_content),
        cmocka_unit_test(test_append_one_large_block),
        cmocka_unit_test(test_append_keeps_embedded_nul_bytes),
        cmocka_unit_test(test_printf_formats_and_appends),
        cmocka_unit_test(test_printf_grows_past_initial_capacity),
        cmocka_unit_test(test_printf_exactly_filling_capacity),
        cmocka_unit_test(test_printf_of_nothing_leaves_empty_string),
        cmocka_unit_test(test_consume_drops_a_prefix),
        cmocka_unit_test(test_consume_then_append_continues),
        cmocka_unit_test(test_consume_on_never_used_buffer_is_harmless),
        cmocka_unit_test(test_free_resets_and_buffer_is_reusable),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL) ? 1 : 0;
}
