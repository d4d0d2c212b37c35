/* test_stats_fields.c — stats_fields.c: the CSV and JSON writers over a
 * field table (columns only where a row names them, dotted JSON names as one
 * nested object, unknown doubles as null / an empty cell, string lists,
 * escaping), counter rows read from the totals, and the real server and
 * listener tables keeping the documented columns in order. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "stats_fields.h"
#include "util.h"

struct fake_totals {
    uint64_t hits, misses;
};

static char *const fake_list[] = { "a:1", "b\"2" };

static void get_name(const void *view, struct stats_value *out)
{
    (void)view;
    out->type = STATS_STR;
    out->v.s = "web\"1";
}

static void get_p50(const void *view, struct stats_value *out)
{
    (void)view;
    out->type = STATS_DOUBLE;
    out->v.d = 1.5;
}

static void get_p99(const void *view, struct stats_value *out)
{
    (void)view;
    out->type = STATS_DOUBLE;
    out->v.d = NAN;
}

static void get_list(const void *view, struct stats_value *out)
{
    (void)view;
    out->type = STATS_STRLIST;
    out->v.list = fake_list;
    out->nlist = 2;
}

static const struct stats_field fake_fields[] = {
    { "name", "server", NULL, NULL, NULL, "", 0, get_name },
    { "hits", "hits", NULL, NULL, NULL, "", offsetof(struct fake_totals, hits), NULL },
    { "rt.p50", "rt_p50", NULL, NULL, NULL, "", 0, get_p50 },
    { "rt.p99", "rt_p99", NULL, NULL, NULL, "", 0, get_p99 },
    { "misses", NULL, NULL, NULL, NULL, "", offsetof(struct fake_totals, misses), NULL },
    { NULL, "hidden", NULL, NULL, NULL, "", 0, get_p50 },
    { "list", NULL, NULL, NULL, NULL, "", 0, get_list },
};

static void test_json_nests_dotted_names_and_writes_null(void **state)
{
    (void)state;
    struct fake_totals t = { 7, 9 };
    struct buf b = { 0 };
    stats_fields_json(fake_fields, ARRAY_LEN(fake_fields), NULL, &t, &b);
    assert_string_equal(b.data, "\"name\":\"web\\\"1\",\"hits\":7,"
                        "\"rt\":{\"p50\":1.500,\"p99\":null},\"misses\":9,"
                        "\"list\":[\"a:1\",\"b\\\"2\"]");
    buf_free(&b);
}

static void test_csv_has_only_named_columns_and_empty_unknowns(void **state)
{
    (void)state;
    struct fake_totals t = { 7, 9 };
    struct buf b = { 0 };
    stats_fields_csv_header(fake_fields, ARRAY_LEN(fake_fields), &b);
    buf_append(&b, "\n", 1);
    stats_fields_csv_row(fake_fields, ARRAY_LEN(fake_fields), NULL, &t, &b);
    assert_string_equal(b.data, "server,hits,rt_p50,rt_p99,hidden\n"
                        "web\"1,7,1.500,,1.500");
    buf_free(&b);
}

/* The documented CSV columns, in order, lead the server table; the JSON
 * keys docs/reference.md names are all there. */
static void test_real_tables_keep_the_documented_columns(void **state)
{
    (void)state;
    struct buf b = { 0 };
    stats_fields_csv_header(stats_server_fields, stats_server_nfields, &b);
    const char *want = "server,addr,state,weight,active,total,failed,bytes_in,bytes_out";
    assert_memory_equal(b.data, want, strlen(want));
    buf_free(&b);
    static const char *const server_json[] = {
        "name", "addr", "state", "weight", "active", "total", "failed", "bytes_in",
        "bytes_out", "retried", "lost",
    };
    for (size_t i = 0; i < ARRAY_LEN(server_json); i++) {
        int found = 0;
        for (size_t f = 0; f < stats_server_nfields; f++)
            found |= stats_server_fields[f].json != NULL &&
                     strcmp(stats_server_fields[f].json, server_json[i]) == 0;
        if (!found)
            fail_msg("server JSON lacks '%s'", server_json[i]);
    }
    static const char *const listener_json[] = {
        "name", "bind", "mode", "pool", "active", "total", "rejected",
    };
    for (size_t i = 0; i < ARRAY_LEN(listener_json); i++) {
        int found = 0;
        for (size_t f = 0; f < stats_listener_nfields; f++)
            found |= stats_listener_fields[f].json != NULL &&
                     strcmp(stats_listener_fields[f].json, listener_json[i]) == 0;
        if (!found)
            fail_msg("listener JSON lacks '%s'", listener_json[i]);
    }
    /* every exported row has a type, and the first row of each family the
     * family's help text */
    for (size_t f = 0; f < stats_server_nfields; f++) {
        const struct stats_field *r = &stats_server_fields[f];
        if (r->metric == NULL)
            continue;
        assert_non_null(r->type);
        int first = f == 0 || stats_server_fields[f - 1].metric == NULL ||
                    strcmp(stats_server_fields[f - 1].metric, r->metric) != 0;
        if (first && r->help[0] == '\0')
            fail_msg("family %s has no help", r->metric);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_nests_dotted_names_and_writes_null),
        cmocka_unit_test(test_csv_has_only_named_columns_and_empty_unknowns),
        cmocka_unit_test(test_real_tables_keep_the_documented_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
