/* test_stats.c — stats.c: the answers of help, show info, show stat and show
 * stat json over a config from config_load_string(), with counters put into
 * the workers' slots by hand and an injected clock; malformed commands answer
 * "error: ..." and every answer ends with an empty line; docs/reference.md
 * and man/tcplb.8 list every command of the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "pool.h"
#include "stats.h"
#include "util.h"

static const char stats_config[] =
    "[global]\n"
    "workers = 2\n"
    "[listener web]\n"
    "bind = 127.0.0.1:8080\n"
    "bind = 127.0.0.1:8081\n"
    "pool = php\n"
    "mode = http\n"
    "[listener api]\n"
    "bind = [::1]:8443\n"
    "pool = api\n"
    "[pool php]\n"
    "server = web1 127.0.0.1:9001\n"
    "server = web2 127.0.0.1:9002 weight=3\n"
    "[pool api]\n"
    "server = api1 [::1]:9100\n";

static double fake_clock;

static double fake_now(void)
{
    return fake_clock;
}

struct fixture {
    struct config *config;
    struct stats_ctx ctx;
    struct buf out;
};

static int fixture_setup(void **state)
{
    char err[CONFIG_ERR_LEN];
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->config = config_load_string("stats.ini", stats_config, err, sizeof(err));
    if (f->config == NULL) {
        fprintf(stderr, "%s\n", err);
        free(f);
        return -1;
    }
    fake_clock = 1000.0;
    f->ctx = (struct stats_ctx){ .config = f->config, .started = 1000.0,
                                 .now = fake_now };
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    buf_free(&f->out);
    config_unref(f->config);
    free(f);
    return 0;
}

/* Runs one command into a fresh answer and returns it ("" when none). */
static const char *run(struct fixture *f, const char *line)
{
    buf_free(&f->out);
    stats_execute(&f->ctx, line, &f->out);
    return f->out.len ? f->out.data : "";
}

static void assert_ends_with_blank_line(const char *answer)
{
    size_t n = strlen(answer);
    if (n < 2 || strcmp(answer + n - 2, "\n\n") != 0)
        fail_msg("answer does not end with an empty line: '%s'", answer);
    /* and that is the only empty line */
    const char *blank = strstr(answer, "\n\n");
    if (blank != answer + n - 2)
        fail_msg("empty line inside the answer: '%s'", answer);
}

/* The value of "key: value" in a show info answer, or NULL. */
static const char *info_value(const char *answer, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *line = answer; *line; ) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > klen + 2 && strncmp(line, key, klen) == 0 && line[klen] == ':' &&
            line[klen + 1] == ' ') {
            snprintf(out, outlen, "%.*s", (int)(len - klen - 2), line + klen + 2);
            return out;
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return NULL;
}

static void assert_info(const char *answer, const char *key, const char *want)
{
    char value[128];
    if (info_value(answer, key, value, sizeof(value)) == NULL)
        fail_msg("no '%s:' line in '%s'", key, answer);
    if (strcmp(value, want) != 0)
        fail_msg("%s: got '%s', want '%s'", key, value, want);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- a small strict JSON checker: 1 if the whole text is one value ---------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
                        return NULL;
                p += 4;
            } else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9')
        return NULL;
    while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
           *p == '+' || *p == '-')
        p++;
    return p > start ? p : NULL;
}

static const char *json_list(const char *p, char close, int members)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (members) {
            p = json_string(json_ws(p));
            if (p == NULL || *(p = json_ws(p)) != ':')
                return NULL;
            p++;
        }
        p = json_value(p);
        if (p == NULL)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    switch (*p) {
    case '{': return json_list(p, '}', 1);
    case '[': return json_list(p, ']', 0);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

static int json_valid(const char *text)
{
    const char *end = json_value(text);
    return end != NULL && *json_ws(end) == '\0';
}

static void test_json_checker_tells_valid_from_invalid(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\":[1,2,{\"b\":\"x\\\"y\"}],\"c\":-0.5}\n"));
    assert_true(json_valid("[]"));
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\" 1}"));
    assert_false(json_valid("{\"a\":1}}"));
    assert_false(json_valid("[1,2"));
    assert_false(json_valid("{\"a\":01}"));
}

/* ---- help ----------------------------------------------------------------------------- */

static void test_help_lists_the_four_commands(void **state)
{
    struct fixture *f = *state;
    const char *a = run(f, "help");
    static const char *const commands[] = {
        "help", "show info", "show stat ", "show stat json",
    };
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\n%s", commands[i]);
        if (strncmp(a, commands[i], strlen(commands[i])) != 0 &&
            strstr(a, needle) == NULL)
            fail_msg("help does not list '%s': '%s'", commands[i], a);
    }
    assert_ends_with_blank_line(a);
}

/* help is printed from the command table: one line per command, each
 * command it lists is one the dispatcher knows (never "unknown command",
 * at worst a usage error for missing arguments), and the commands of the
 * reference (docs/reference.md) are all there. */
static void test_help_lists_every_command_and_each_is_accepted(void **state)
{
    struct fixture *f = *state;
    char help[4096];
    snprintf(help, sizeof(help), "%s", run(f, "help"));
    size_t ncommands = 0;
    for (; stats_command_words(ncommands) != NULL; ncommands++) {
        const char *words = stats_command_words(ncommands);
        char needle[80];
        snprintf(needle, sizeof(needle), "\n%s ", words);
        if (strncmp(help, words, strlen(words)) != 0 && strstr(help, needle) == NULL)
            fail_msg("help does not list '%s': '%s'", words, help);
        const char *a = run(f, words);
        if (strncmp(a, "error: unknown command", 22) == 0)
            fail_msg("'%s' from help is unknown: '%s'", words, a);
    }
    assert_int_equal(count_lines(help), ncommands + 1);   /* + the empty line */
    static const char *const documented[] = {
        "help", "show info", "show stat", "show stat json", "show clients", "which",
        "show events", "disable server", "drain server", "enable server", "set weight",
        "clear counters",
    };
    for (size_t i = 0; i < ARRAY_LEN(documented); i++) {
        size_t k = 0;
        while (stats_command_words(k) != NULL && strcmp(stats_command_words(k),
                                                        documented[i]) != 0)
            k++;
        if (stats_command_words(k) == NULL)
            fail_msg("no command '%s' in the table", documented[i]);
    }
}

/* docs/reference.md lists every command of the table (as `words ...`). */
static void test_reference_md_lists_every_command(void **state)
{
    (void)state;
    FILE *fp = fopen("docs/reference.md", "r");
    if (fp == NULL)
        fail_msg("docs/reference.md not readable from the current directory");
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    for (size_t i = 0; stats_command_words(i) != NULL; i++) {
        char needle[80];
        snprintf(needle, sizeof(needle), "| `%s", stats_command_words(i));
        if (strstr(doc, needle) == NULL)
            fail_msg("docs/reference.md does not list '%s'", stats_command_words(i));
    }
}

/* man/tcplb.8 names every command of the table under ".SH STATS SOCKET",
 * each as its own item: a line ".TP" and then a tag line that starts with
 * \fBWORDS\fR (a '-' written "\-"), arguments after it. */
static void test_man_page_lists_every_command(void **state)
{
    (void)state;
    FILE *fp = fopen("man/tcplb.8", "r");
    if (fp == NULL)
        fail_msg("man/tcplb.8 not readable from the current directory");
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    char *section = strstr(doc, "\n.SH STATS SOCKET\n");
    if (section == NULL)
        fail_msg("man/tcplb.8 has no section '.SH STATS SOCKET'");
    char *end = strstr(section + 1, "\n.SH ");
    if (end != NULL)
        *end = '\0';
    for (size_t i = 0; stats_command_words(i) != NULL; i++) {
        char needle[160] = "\n.TP\n\\fB";
        size_t len = strlen(needle);
        for (const char *c = stats_command_words(i); *c != '\0' && len + 8 < sizeof(needle);
             c++) {
            if (*c == '-')
                needle[len++] = '\\';
            needle[len++] = *c;
        }
        snprintf(needle + len, sizeof(needle) - len, "\\fR");
        if (strstr(section, needle) == NULL)
            fail_msg("man/tcplb.8 does not list '%s' under .SH STATS SOCKET",
                     stats_command_words(i));
    }
}

static void test_missing_arguments_answer_the_usage(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(run(f, "which php"), "error: usage: which POOL IP\n\n");
    assert_string_equal(run(f, "set weight php/web1"),
                        "error: usage: set weight POOL/SERVER N\n\n");
    assert_string_equal(run(f, "show events 1 2"), "error: usage: show events [N]\n\n");
}

static void test_help_tolerates_spaces_and_cr(void **state)
{
    struct fixture *f = *state;
    char help[4096];
    snprintf(help, sizeof(help), "%s", run(f, "help"));
    assert_string_equal(run(f, "  help\t"), help);
    assert_string_equal(run(f, "help\r"), help);
}

/* ---- show info --------------------------------------------------------------------------- */

static void test_show_info_has_the_documented_keys(void **state)
{
    struct fixture *f = *state;
    struct config *c = f->config;
    counter_add(&c->listeners[0].counters[0].total, 5);
    counter_add(&c->listeners[0].counters[1].total, 6);
    counter_add(&c->listeners[1].counters[1].total, 4);
    counter_add(&c->listeners[1].counters[0].rejected, 2);
    fake_clock = 1042.4;
    const char *a = run(f, "show info");
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    assert_info(a, "version", TCPLB_VERSION);
    assert_info(a, "uptime_s", "42");
    assert_info(a, "workers", "2");
    assert_info(a, "active", "0");
    assert_info(a, "total", "15");
    assert_info(a, "rejected", "2");
    assert_info(a, "workers_total", "5 10");     /* per worker, over the listeners */
    assert_info(a, "handed_off", "0");
    assert_info(a, "pid", pid);
    assert_ends_with_blank_line(a);
}

static void test_show_info_uptime_follows_the_clock(void **state)
{
    struct fixture *f = *state;
    static const struct { double now; const char *uptime; } cases[] = {
        { 1000.0, "0" }, { 1001.0, "1" }, { 1059.6, "60" }, { 1000.0 + 86400, "86400" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        fake_clock = cases[i].now;
        assert_info(run(f, "show info"), "uptime_s", cases[i].uptime);
    }
}

/* ---- show stat (CSV) ---------------------------------------------------------------------- */

static const char csv_header[] =
    "# pool,server,addr,state,weight,active,total,failed,bytes_in,bytes_out,"
    "requests,rt_p50_ms,rt_p99_ms,http_5xx,eweight,backup\n";

static void test_show_stat_header_is_exact(void **state)
{
    struct fixture *f = *state;
    const char *a = run(f, "show stat");
    assert_int_equal(strncmp(a, csv_header, strlen(csv_header)), 0);
}

static void test_show_stat_has_one_line_per_server_with_summed_counters(void **state)
{
    struct fixture *f = *state;
    struct pool *php = config_find_pool(f->config, "php");
    struct server *web1 = &php->servers[0];
    counter_add(&web1->counters[0].total, 3);
    counter_add(&web1->counters[1].total, 4);
    counter_add(&web1->counters[1].failed, 2);
    counter_add(&web1->counters[0].bytes_in, 100);
    counter_add(&web1->counters[1].bytes_in, 20);
    counter_add(&web1->counters[0].bytes_out, 5000);
    counter_add(&web1->counters[0].requests, 5);
    counter_add(&web1->counters[1].requests, 6);
    counter_add(&web1->counters[1].resp_5xx, 2);
    /* rt: nine answers in 10 ms, one in 1 s, over both workers */
    for (int i = 0; i < 9; i++)
        recent_rt(&web1->counters[i % 2].recent, fake_clock, 0.010);
    recent_rt(&web1->counters[0].recent, fake_clock, 1.0);
    server_active_add(web1, 2);

    const char *a = run(f, "show stat");
    char want[1024];
    snprintf(want, sizeof(want), "%s"
             "php,web1,127.0.0.1:9001,up,1,2,7,2,120,5000,11,%.3f,%.3f,2,1.000,0\n"
             "php,web2,127.0.0.1:9002,up,3,0,0,0,0,0,0,,,0,3.000,0\n"
             "api,api1,[::1]:9100,up,1,0,0,0,0,0,0,,,0,1.000,0\n"
             "\n", csv_header,
             recent_rt_bucket_value(recent_rt_bucket(0.010)) * 1000,
             recent_rt_bucket_value(recent_rt_bucket(1.0)) * 1000);
    assert_string_equal(a, want);
    assert_int_equal(count_lines(a), 1 + 3 + 1);
    server_active_add(web1, -2);
}

static void test_show_stat_shows_state_and_weight_changes(void **state)
{
    struct fixture *f = *state;
    struct pool *php = config_find_pool(f->config, "php");
    pool_set_server_state(&php->servers[0], SERVER_DOWN);
    pool_set_server_state(&php->servers[1], SERVER_MAINT);
    assert_int_equal(pool_set_server_weight(&php->servers[1], 0), 0);
    const char *a = run(f, "show stat");
    assert_non_null(strstr(a, "\nphp,web1,127.0.0.1:9001,down,1,"));
    assert_non_null(strstr(a, "\nphp,web2,127.0.0.1:9002,maint,0,"));
}

static void test_show_stat_after_clear_shows_zeroes(void **state)
{
    struct fixture *f = *state;
    struct server *api1 = &config_find_pool(f->config, "api")->servers[0];
    counter_add(&api1->counters[1].total, 9);
    counter_add(&api1->counters[1].requests, 4);
    recent_rt(&api1->counters[1].recent, fake_clock, 0.5);
    assert_non_null(strstr(run(f, "show stat"), "\napi,api1,[::1]:9100,up,1,0,9,0,0,0,4,"));
    counters_server_clear(api1->counters, f->config->global.workers);
    assert_non_null(strstr(run(f, "show stat"),
                           "\napi,api1,[::1]:9100,up,1,0,0,0,0,0,0,,,0,1.000,0\n"));
}

/* ---- show stat json -------------------------------------------------------------------------- */

static void test_show_stat_json_is_one_valid_object(void **state)
{
    struct fixture *f = *state;
    const char *a = run(f, "show stat json");
    assert_ends_with_blank_line(a);
    assert_int_equal(a[0], '{');
    if (!json_valid(a))
        fail_msg("not valid JSON: '%s'", a);
}

static void test_show_stat_json_has_listener_fields(void **state)
{
    struct fixture *f = *state;
    struct listener_conf *web = &f->config->listeners[0];
    counter_add(&web->counters[0].total, 3);
    counter_add(&web->counters[1].total, 4);
    counter_add(&web->counters[1].rejected, 1);
    counter_add(&web->counters[0].active, 2);
    counter_add(&web->counters[1].http_502, 5);
    counter_add(&web->counters[0].http_504, 6);
    counter_add(&web->counters[1].proxy_errors, 8);
    const char *a = run(f, "show stat json");
    static const char *const want[] = {
        "{\"listeners\":[{\"name\":\"web\",\"bind\":\"127.0.0.1:8080\",",
        "\"mode\":\"http\",\"pool\":\"php\",\"active\":2,\"total\":7,\"rejected\":1,"
        "\"http_502\":5,\"http_504\":6,\"accept_proxy\":false,\"proxy_errors\":8}",
        "{\"name\":\"api\",\"bind\":\"[::1]:8443\",",
        "\"mode\":\"tcp\",\"pool\":\"api\",\"active\":0,\"total\":0,\"rejected\":0,",
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        if (strstr(a, want[i]) == NULL)
            fail_msg("'%s' not in '%s'", want[i], a);
}

static void test_show_stat_json_has_pool_and_server_fields(void **state)
{
    struct fixture *f = *state;
    struct server *web2 = &config_find_pool(f->config, "php")->servers[1];
    counter_add(&web2->counters[0].total, 3);
    counter_add(&web2->counters[1].total, 4);
    counter_add(&web2->counters[0].failed, 1);
    counter_add(&web2->counters[1].bytes_in, 10);
    counter_add(&web2->counters[1].bytes_out, 11);
    counter_add(&web2->counters[0].retried, 2);
    counter_add(&web2->counters[1].lost, 1);
    server_active_add(web2, 1);
    const char *a = run(f, "show stat json");
    static const char *const want[] = {
        "\"pools\":[{\"name\":\"php\",\"scheduler\":\"roundrobin\",\"servers\":[",
        "{\"name\":\"web2\",\"addr\":\"127.0.0.1:9002\",\"state\":\"up\",\"weight\":3,"
        "\"active\":1,\"total\":7,\"failed\":1,\"bytes_in\":10,\"bytes_out\":11,"
        "\"retried\":2,\"lost\":1,\"requests\":0,\"rt_ms\":{\"p50\":null,\"p90\":null,"
        "\"p99\":null,\"mean\":null,\"samples\":0},\"responses\":{\"1xx\":0,\"2xx\":0,"
        "\"3xx\":0,\"4xx\":0,\"5xx\":0},\"http_unparsed\":0,\"last_minute\":{"
        "\"connections\":0,\"requests\":0,\"failed\":0,\"responses\":0,\"5xx\":0},"
        "\"eweight\":3.000,\"backup\":0}",
        "{\"name\":\"api\",\"scheduler\":\"roundrobin\",\"servers\":[{\"name\":\"api1\","
        "\"addr\":\"[::1]:9100\"",
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        if (strstr(a, want[i]) == NULL)
            fail_msg("'%s' not in '%s'", want[i], a);
    server_active_add(web2, -1);
}

/* ---- malformed input ------------------------------------------------------------------------- */

static void test_unknown_commands_answer_error(void **state)
{
    struct fixture *f = *state;
    static const char *const lines[] = {
        "frobnicate", "show", "show stats", "show stat xml", "help me",
        "show info now", "SHOW INFO", "show json stat", "stat",
    };
    for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
        const char *a = run(f, lines[i]);
        if (strncmp(a, "error:", 6) != 0)
            fail_msg("'%s' answered '%s'", lines[i], a);
        assert_ends_with_blank_line(a);
        assert_int_equal(count_lines(a), 2);
    }
}

static void test_overlong_command_answers_error(void **state)
{
    struct fixture *f = *state;
    static const size_t lengths[] = { 1024, 1025, 5000 };
    for (size_t i = 0; i < ARRAY_LEN(lengths); i++) {
        char *line = malloc(lengths[i] + 1);
        assert_non_null(line);
        memset(line, 'x', lengths[i]);
        line[lengths[i]] = '\0';
        const char *a = run(f, line);
        free(line);
        assert_int_equal(strncmp(a, "error:", 6), 0);
        assert_non_null(strstr(a, "too long"));
        assert_ends_with_blank_line(a);
    }
}

static void test_longest_command_is_read_and_its_echo_is_bounded(void **state)
{
    struct fixture *f = *state;
    char line[1024];
    memset(line, 'y', 1023);
    line[1023] = '\0';
    const char *a = run(f, line);
    assert_int_equal(strncmp(a, "error: unknown command", 22), 0);
    assert_true(strlen(a) < 200);
    assert_ends_with_blank_line(a);
}

static void test_too_many_words_answers_error(void **state)
{
    struct fixture *f = *state;
    const char *a = run(f, "show stat json a b c d e f g h");
    assert_int_equal(strncmp(a, "error:", 6), 0);
    assert_ends_with_blank_line(a);
}

static void test_empty_line_gets_no_answer(void **state)
{
    struct fixture *f = *state;
    static const char *const lines[] = { "", " ", "\t", "  \t \r" };
    for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
        assert_string_equal(run(f, lines[i]), "");
        assert_int_equal(f->out.len, 0);
    }
}

static void test_answers_append_to_the_buffer(void **state)
{
    struct fixture *f = *state;
    buf_free(&f->out);
    assert_int_equal(buf_append(&f->out, "before\n", 7), 0);
    stats_execute(&f->ctx, "help", &f->out);
    stats_execute(&f->ctx, "nope", &f->out);
    assert_int_equal(strncmp(f->out.data, "before\nhelp", 11), 0);
    assert_non_null(strstr(f->out.data, "\n\nerror:"));
    assert_int_equal(strcmp(f->out.data + f->out.len - 2, "\n\n"), 0);
}

#define FIXTURE_TEST(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_checker_tells_valid_from_invalid),
        FIXTURE_TEST(test_help_lists_the_four_commands),
        FIXTURE_TEST(test_help_tolerates_spaces_and_cr),
        FIXTURE_TEST(test_help_lists_every_command_and_each_is_accepted),
        FIXTURE_TEST(test_missing_arguments_answer_the_usage),
        FIXTURE_TEST(test_reference_md_lists_every_command),
        FIXTURE_TEST(test_man_page_lists_every_command),
        FIXTURE_TEST(test_show_info_has_the_documented_keys),
        FIXTURE_TEST(test_show_info_uptime_follows_the_clock),
        FIXTURE_TEST(test_show_stat_header_is_exact),
        FIXTURE_TEST(test_show_stat_has_one_line_per_server_with_summed_counters),
        FIXTURE_TEST(test_show_stat_shows_state_and_weight_changes),
        FIXTURE_TEST(test_show_stat_after_clear_shows_zeroes),
        FIXTURE_TEST(test_show_stat_json_is_one_valid_object),
        FIXTURE_TEST(test_show_stat_json_has_listener_fields),
        FIXTURE_TEST(test_show_stat_json_has_pool_and_server_fields),
        FIXTURE_TEST(test_unknown_commands_answer_error),
        FIXTURE_TEST(test_overlong_command_answers_error),
        FIXTURE_TEST(test_longest_command_is_read_and_its_echo_is_bounded),
        FIXTURE_TEST(test_too_many_words_answers_error),
        FIXTURE_TEST(test_empty_line_gets_no_answer),
        FIXTURE_TEST(test_answers_append_to_the_buffer),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL) ? 1 : 0;
}
