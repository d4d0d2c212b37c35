/* test_config_keys.c — config_keys.c: the key tables themselves (every key
 * has help text, every default parses with the key's own parser and gives
 * the value the docs state), server line options (the option list in
 * messages comes from the table), which [global] changes a reload keeps
 * for a restart, and that docs/configuration.md and man/tcplb.ini.5 name
 * every key and option of the tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "config_keys.h"
#include "net.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

static const char base[] =
    "[listener web]\nbind = 127.0.0.1:8080\npool = p\n[pool p]\nserver = a 127.0.0.1:1\n";

static struct config *load(const char *global)
{
    char text[2048], err[CONFIG_ERR_LEN];
    snprintf(text, sizeof(text), "[global]\n%s%s", global, base);
    struct config *c = config_load_string("t.ini", text, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    return c;
}

static void test_every_key_is_documented_and_unique(void **state)
{
    (void)state;
    static const enum config_section sections[] = {
        SECTION_GLOBAL, SECTION_LISTENER, SECTION_POOL,
    };
    size_t total = 0;
    for (size_t s = 0; s < ARRAY_LEN(sections); s++) {
        size_t n;
        const struct config_key *keys = config_section_keys(sections[s], &n);
        assert_true(n > 0);
        total += n;
        for (size_t i = 0; i < n; i++) {
            assert_non_null(keys[i].help);
            assert_true(strlen(keys[i].help) > 8);
            assert_ptr_equal(config_key_find(sections[s], keys[i].name), &keys[i]);
            if (keys[i].kind == CONFIG_WORD)
                assert_non_null(keys[i].words);
        }
    }
    assert_true(total >= 30);
    assert_null(config_key_find(SECTION_POOL, "colour"));
}

/* The defaults come from the table: what docs/configuration.md states. */
static void test_defaults_are_the_documented_values(void **state)
{
    (void)state;
    struct config *c = load("");
    struct pool *p = &c->pools[0];
    assert_int_equal(c->global.maxconn, 100000);
    assert_true(c->global.shutdown_timeout == 10);
    assert_int_equal(c->global.splice, 1);
    assert_int_equal(c->global.splice_pipes, 64);
    assert_int_equal(c->global.log, LOG_STDERR);
    assert_string_equal(p->sched->name, "roundrobin");
    assert_true(p->persist_timeout == 1800 && p->connect_timeout == 2 &&
                p->server_timeout == 60 && p->idle_timeout == 300 &&
                p->queue_timeout == 5 && p->health_interval == 2 &&
                p->health_timeout == 1);
    assert_int_equal(p->persist_max, 65536);
    assert_int_equal(p->retries, 2);
    assert_int_equal(p->rise, 2);
    assert_int_equal(p->fall, 3);
    assert_int_equal(p->health, HEALTH_TCP);
    assert_string_equal(p->health_path, "/health");
    assert_null(p->health_send);
    assert_null(p->health_expect);
    assert_int_equal(p->tcp_keepalive, 0);
    assert_true(p->tcp_keepalive_idle == 60 && p->tcp_keepalive_interval == 10);
    assert_int_equal(p->tcp_keepalive_count, 6);
    assert_int_equal(c->global.log_format, LOG_FORMAT_LOGFMT);
    assert_int_equal(c->listeners[0].mode, LISTENER_TCP);
    assert_int_equal(c->listeners[0].accept_proxy, 0);
    config_unref(c);
}

static void test_server_options_come_from_the_table(void **state)
{
    (void)state;
    assert_string_equal(config_server_option_names(),
                        "weight=N, maxconn=N, agent_port=N, check_port=N, source=IP, backup, "
                        "send-proxy, send-proxy-v2");
    struct server s = { .weight = 1 };
    char opts[] = "weight=7 send-proxy-v2 maxconn=9";
    char err[256];
    assert_int_equal(config_server_options("a", opts, &s, err, sizeof(err)), 0);
    assert_int_equal(s.weight, 7);
    assert_int_equal(s.maxconn, 9);
    assert_int_equal(s.send_proxy, 2);

    /* the three options of issue 16: a flag, a port, an address */
    struct server t = { .weight = 1 };
    char err2[256];
    assert_int_equal(net_parse_addr("127.0.0.1:80", &t.addr, err2, sizeof(err2)), 0);
    char more[] = "backup check_port=9200 source=127.0.0.3";
    assert_int_equal(config_server_options("b", more, &t, err2, sizeof(err2)), 0);
    assert_int_equal(t.backup, 1);
    assert_int_equal(t.check_port, 9200);
    assert_int_equal(t.has_source, 1);
    char ip[NET_ADDR_STRLEN];
    assert_string_equal(net_ip_str((struct sockaddr *)&t.source.ss, ip, sizeof(ip)),
                        "127.0.0.3");
    static const char *const bad[][2] = {
        { "weight=257", "server a: weight must be 0-256, got '257'" },
        { "maxconn=-1", "server a: maxconn must be 0-1000000, got '-1'" },
        { "weight", "server a: unknown option 'weight' (known: weight=N" },
        { "send-proxy=1", "server a: unknown option 'send-proxy' (known: " },
        { "heavy", "server a: unknown option 'heavy' (known: " },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char copy[64];
        snprintf(copy, sizeof(copy), "%s", bad[i][0]);
        assert_int_equal(config_server_options("a", copy, &s, err, sizeof(err)), -1);
        if (strncmp(err, bad[i][1], strlen(bad[i][1])) != 0)
            fail_msg("'%s' gave '%s'", bad[i][0], err);
    }
}

static void test_restart_keys_that_changed_are_named(void **state)
{
    (void)state;
    struct config *a = load("stats_socket = /tmp/a.sock\nlog = stderr\nsplice = auto\n"
                            "splice_pipes = 64\nmaxconn = 10\n");
    struct config *same = load("stats_socket = /tmp/a.sock\nlog = stderr\n"
                               "splice = off\nsplice_pipes = 64\nmaxconn = 20\n");
    struct config *other = load("stats_socket = /tmp/b.sock\nlog = off\n"
                                "splice_pipes = 8\nstats_http = 127.0.0.1:9100\n");
    const char *names[16];
    /* splice and maxconn are reloadable: nothing to keep */
    assert_int_equal(config_restart_changes(a, same, names, 16), 0);
    size_t n = config_restart_changes(a, other, names, 16);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "stats_socket");
    assert_string_equal(names[1], "stats_http");
    assert_string_equal(names[2], "log");
    assert_string_equal(names[3], "splice_pipes");
    config_unref(a);
    config_unref(same);
    config_unref(other);
}

/* The documentation names every key of the table (as `key`), so the two
 * cannot drift apart. The tests run from the repository's top. */
static void test_configuration_md_names_every_key(void **state)
{
    (void)state;
    FILE *f = fopen("docs/configuration.md", "r");
    if (f == NULL)
        fail_msg("docs/configuration.md not readable from the current directory");
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    static const enum config_section sections[] = {
        SECTION_GLOBAL, SECTION_LISTENER, SECTION_POOL,
    };
    for (size_t s = 0; s < ARRAY_LEN(sections); s++) {
        size_t nkeys;
        const struct config_key *keys = config_section_keys(sections[s], &nkeys);
        for (size_t i = 0; i < nkeys; i++) {
            char needle[80];
            snprintf(needle, sizeof(needle), "`%s`", keys[i].name);
            if (strstr(doc, needle) == NULL)
                fail_msg("docs/configuration.md does not document %s %s",
                         config_section_label(sections[s]), keys[i].name);
        }
    }
}

/* Reads <path> (relative to the repository's top) into a static buffer. */
static const char *read_doc(const char *path)
{
    static char doc[256 * 1024];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s not readable from the current directory", path);
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    return doc;
}

/* The part of the man page <doc> under ".SH <heading>", up to the next
 * ".SH", copied into <out>. */
static void man_section(const char *doc, const char *heading, char *out, size_t outlen)
{
    char needle[80];
    snprintf(needle, sizeof(needle), "\n.SH %s\n", heading);
    const char *start = strstr(doc, needle);
    if (start == NULL)
        fail_msg("man/tcplb.ini.5 has no section '.SH %s'", heading);
    start += strlen(needle) - 1;
    const char *end = strstr(start, "\n.SH ");
    size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
    if (len >= outlen)
        fail_msg("section %s of man/tcplb.ini.5 is too long for the test", heading);
    memcpy(out, start, len);
    out[len] = '\0';
}

/* 1 when <text> holds an item for <name>: a line ".TP" and then a tag line
 * that starts with \fBNAME\fR, NAME's '-' written "\-" as roff wants. */
static int man_has_item(const char *text, const char *name)
{
    char needle[160] = "\n.TP\n\\fB";
    size_t len = strlen(needle);
    for (const char *c = name; *c != '\0' && len + 8 < sizeof(needle); c++) {
        if (*c == '-')
            needle[len++] = '\\';
        needle[len++] = *c;
    }
    snprintf(needle + len, sizeof(needle) - len, "\\fR");
    return strstr(text, needle) != NULL;
}

/* man/tcplb.ini.5 documents every key of each section's table under that
 * section's heading, and every server line option under SERVER OPTIONS,
 * each as its own .TP item (see man_has_item), so that page and tables
 * cannot drift apart. */
static void test_man_page_names_every_key_and_server_option(void **state)
{
    (void)state;
    const char *doc = read_doc("man/tcplb.ini.5");
    static char text[128 * 1024];
    static const struct {
        enum config_section sec;
        const char *heading;
    } sections[] = {
        { SECTION_GLOBAL, "GLOBAL SECTION" },
        { SECTION_LISTENER, "LISTENER SECTIONS" },
        { SECTION_POOL, "POOL SECTIONS" },
    };
    for (size_t s = 0; s < ARRAY_LEN(sections); s++) {
        man_section(doc, sections[s].heading, text, sizeof(text));
        size_t nkeys;
        const struct config_key *keys = config_section_keys(sections[s].sec, &nkeys);
        for (size_t i = 0; i < nkeys; i++)
            if (!man_has_item(text, keys[i].name))
                fail_msg("man/tcplb.ini.5 does not document %s %s under .SH %s",
                         config_section_label(sections[s].sec), keys[i].name,
                         sections[s].heading);
    }
    man_section(doc, "SERVER OPTIONS", text, sizeof(text));
    size_t nopts = 0;
    for (const char *name; (name = config_server_option_name(nopts)) != NULL; nopts++)
        if (!man_has_item(text, name))
            fail_msg("man/tcplb.ini.5 does not document the server option %s "
                     "under .SH SERVER OPTIONS", name);
    assert_true(nopts >= 5);
    /* the check itself: a key mentioned in passing is not an item */
    assert_false(man_has_item("\n.TP\n\\fBhealth_path\\fR = x\n", "health"));
    assert_false(man_has_item("\n.PP\n\\fBhealth\\fR\n", "health"));
    assert_true(man_has_item("\n.TP\n\\fBsend\\-proxy\\fR\n", "send-proxy"));
    assert_false(man_has_item("\n.TP\n\\fBsend\\-proxy\\-v2\\fR\n", "send-proxy"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_is_documented_and_unique),
        cmocka_unit_test(test_defaults_are_the_documented_values),
        cmocka_unit_test(test_server_options_come_from_the_table),
        cmocka_unit_test(test_restart_keys_that_changed_are_named),
        cmocka_unit_test(test_configuration_md_names_every_key),
        cmocka_unit_test(test_man_page_names_every_key_and_server_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
