/* test_agent.c — agent.c: every word of HAProxy's agent protocol and its
 * synonyms, percentages (capped, and what is not one), several words on a
 * line, reasons, unknown words ignored and counted, line ends (LF, CRLF,
 * EOF), partial reads (MORE until the line ends, whatever the cut), over-long
 * lines and NUL bytes refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"
#include "util.h"

static struct agent_result parse_line(const char *line)
{
    struct agent_result r;
    assert_int_equal(agent_parse(line, strlen(line), 0, &r), AGENT_DONE);
    return r;
}

static void test_every_word(void **state)
{
    (void)state;
    static const struct { const char *line; int pct; enum agent_state st; } cases[] = {
        { "75%\n", 75, AGENT_STATE_NONE },
        { "0%\n", 0, AGENT_STATE_NONE },
        { "100%\n", 100, AGENT_STATE_NONE },
        { "250%\n", 100, AGENT_STATE_NONE },
        { "up\n", -1, AGENT_STATE_READY },
        { "ready\n", -1, AGENT_STATE_READY },
        { "READY\n", -1, AGENT_STATE_READY },
        { "drain\n", -1, AGENT_STATE_DRAIN },
        { "maint\n", -1, AGENT_STATE_MAINT },
        { "down\n", -1, AGENT_STATE_DOWN },
        { "fail\n", -1, AGENT_STATE_DOWN },
        { "stopped\n", -1, AGENT_STATE_DOWN },
        { "up 50%\n", 50, AGENT_STATE_READY },
        { "50%,drain\r\n", 50, AGENT_STATE_DRAIN },
        { "\t drain ,  20% \n", 20, AGENT_STATE_DRAIN },
        { "drain up\n", -1, AGENT_STATE_READY },     /* the last state word wins */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct agent_result r = parse_line(cases[i].line);
        if (r.weight_pct != cases[i].pct || r.state != cases[i].st)
            fail_msg("'%s': pct %d state %s", cases[i].line, r.weight_pct,
                     agent_state_str(r.state));
        assert_int_equal(r.unknown, 0);
        assert_string_equal(r.reason, "");
    }
}

static void test_reasons_and_unknown_words(void **state)
{
    (void)state;
    struct agent_result r = parse_line("drain # deploy 42 in progress  \r\n");
    assert_int_equal(r.state, AGENT_STATE_DRAIN);
    assert_string_equal(r.reason, "deploy 42 in progress");
    r = parse_line("#only a reason\n");
    assert_int_equal(r.state, AGENT_STATE_NONE);
    assert_int_equal(r.weight_pct, -1);
    assert_string_equal(r.reason, "only a reason");
    r = parse_line("maxconn:30 75% banana\n");
    assert_int_equal(r.weight_pct, 75);
    assert_int_equal(r.unknown, 2);
    /* not percentages */
    static const char *const odd[] = { "%\n", "x%\n", "-5%\n", "5.5%\n", "1234567%\n",
                                       "50\n" };
    for (size_t i = 0; i < ARRAY_LEN(odd); i++) {
        r = parse_line(odd[i]);
        if (r.weight_pct != -1 || r.unknown != 1)
            fail_msg("'%s' read as pct %d", odd[i], r.weight_pct);
    }
    /* an empty line sets nothing */
    r = parse_line("\n");
    assert_int_equal(r.weight_pct, -1);
    assert_int_equal(r.state, AGENT_STATE_NONE);
    /* a long reason is cut, control bytes become spaces */
    char line[400];
    memset(line, 'r', sizeof(line));
    memcpy(line, "up #", 4);
    line[10] = '\x01';
    line[sizeof(line) - 1] = '\n';
    assert_int_equal(agent_parse(line, sizeof(line), 0, &r), AGENT_DONE);
    assert_int_equal(strlen(r.reason), sizeof(r.reason) - 1);
    assert_int_equal(r.reason[6], ' ');
}

static void test_partial_reads_wait_for_the_line(void **state)
{
    (void)state;
    const char *line = "drain 40% # backup running\r\n";
    size_t n = strlen(line);
    struct agent_result r;
    for (size_t k = 0; k < n; k++)
        if (agent_parse(line, k, 0, &r) != AGENT_MORE)
            fail_msg("a line cut at %zu is not MORE", k);
    assert_int_equal(agent_parse(line, n, 0, &r), AGENT_DONE);
    assert_int_equal(r.weight_pct, 40);
    /* without a line end, the connection's end ends the line */
    assert_int_equal(agent_parse("75%", 3, 1, &r), AGENT_DONE);
    assert_int_equal(r.weight_pct, 75);
    assert_int_equal(agent_parse("", 0, 1, &r), AGENT_DONE);
    assert_int_equal(r.weight_pct, -1);
    /* bytes after the first line are not read */
    assert_int_equal(agent_parse("up\ndown\n", 8, 0, &r), AGENT_DONE);
    assert_int_equal(r.state, AGENT_STATE_READY);
}

static void test_overlong_and_nul_are_bad(void **state)
{
    (void)state;
    static char big[AGENT_LINE_MAX + 10];
    memset(big, 'a', sizeof(big));
    struct agent_result r;
    assert_int_equal(agent_parse(big, AGENT_LINE_MAX - 1, 0, &r), AGENT_MORE);
    assert_int_equal(agent_parse(big, AGENT_LINE_MAX, 0, &r), AGENT_BAD);
    assert_int_equal(agent_parse(big, sizeof(big), 1, &r), AGENT_BAD);
    big[AGENT_LINE_MAX - 1] = '\n';      /* 1023 bytes and the end: fine */
    assert_int_equal(agent_parse(big, AGENT_LINE_MAX, 0, &r), AGENT_DONE);
    assert_int_equal(r.unknown, 1);
    assert_int_equal(agent_parse("up\0\n", 4, 0, &r), AGENT_BAD);
    assert_int_equal(agent_parse("up\n\0", 4, 0, &r), AGENT_DONE);   /* after the line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_word),
        cmocka_unit_test(test_reasons_and_unknown_words),
        cmocka_unit_test(test_partial_reads_wait_for_the_line),
        cmocka_unit_test(test_overlong_and_nul_are_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
