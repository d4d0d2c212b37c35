/* test_check.c — check.c, which has no I/O and no clock: the rise/fall state
 * machine driven by scripted result sequences (the "injected clock" is the
 * order of results: one letter per check round), and the HTTP check's status
 * line parser fed whole answers, byte-by-byte prefixes, garbage and
 * oversized lines, and health = expect's escapes, prefix match and display.
 * health.c (timers, sockets, admin states) is covered by
 * tests/integration/test_health.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "check.h"

/* ---- the rise/fall state machine ------------------------------------------ */

/* One scripted run: results as letters ('s' success, 'f' failure) and, for
 * each, the change expected ('=' CHECK_SAME, 'U' went up, 'D' went down). */
struct sm_case {
    const char *name;
    unsigned rise, fall;
    const char *results;
    const char *changes;
    int up_after;            /* state after the last result */
};

static const struct sm_case sm_cases[] = {
    /* fresh: the first failure is enough, whatever fall is */
    { "fresh failure, fall=3",         2, 3, "f",          "D",          0 },
    { "fresh failure, fall=1",         2, 1, "f",          "D",          0 },
    { "fresh failure, fall=100",       2, 100, "f",        "D",          0 },
    /* fresh success keeps it up and ends freshness */
    { "fresh success",                 2, 3, "s",          "=",          1 },
    { "fresh success then 2 of fall=3",2, 3, "sff",        "===",        1 },
    { "fall-th failure goes down",     2, 3, "sfff",       "===D",       0 },
    { "fall=2 after a success",        2, 2, "sff",        "==D",        0 },
    { "fall=5 after a success",        2, 5, "sfffff",     "=====D",     0 },
    /* a success between failures resets the failure count */
    { "success resets failures",       2, 3, "sffsfff",    "======D",    0 },
    { "success resets, not enough",    2, 3, "sffsff",     "======",     1 },
    /* rise successes bring it up; a failure in between resets the count */
    { "rise=2 comes back",             2, 3, "fss",        "D=U",        1 },
    { "rise=3 comes back",             3, 3, "fsss",       "D==U",       1 },
    { "rise reset by a failure",       3, 3, "fssfss",     "D=====",     0 },
    { "rise reset then complete",      3, 3, "fssfsss",    "D=====U",    1 },
    { "down again after recovering",   2, 2, "fssff",      "D=U=D",      0 },
    /* no repeated notices while the state holds */
    { "failures while down are SAME",  2, 3, "fffffff",    "D======",    0 },
    { "successes while up are SAME",   2, 3, "sssssss",    "=======",    1 },
    { "successes after rise are SAME", 2, 3, "fsssss",     "D=U===",     1 },
    /* rise=1 / fall=1: every result that differs flips the state */
    { "rise=1 fall=1 flips",           1, 1, "fsfsfs",     "DUDUDU",     1 },
    { "rise=1 fall=1 repeats",         1, 1, "ssffss",     "==D=U=",     1 },
    { "rise=1 fall=1 after success",   1, 1, "sf",         "=D",         0 },
    /* fresh only counts for the very first result */
    { "fresh is spent by a success",   2, 3, "sf",         "==",         1 },
    { "fresh spent by down and up",    1, 3, "fsf",        "DU=",        1 },
};

static void test_state_machine_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sm_cases) / sizeof(sm_cases[0]); i++) {
        const struct sm_case *c = &sm_cases[i];
        size_t n = strlen(c->results);
        assert_int_equal(n, strlen(c->changes));
        struct check_state st;
        check_state_init(&st);
        assert_int_equal(st.up, 1);
        assert_int_equal(st.fresh, 1);
        char got[64];
        assert_true(n < sizeof(got));
        for (size_t k = 0; k < n; k++) {
            enum check_change ch = check_state_result(&st, c->results[k] == 's',
                                                      c->rise, c->fall);
            got[k] = ch == CHECK_WENT_UP ? 'U' : ch == CHECK_WENT_DOWN ? 'D' : '=';
            /* the reported change always agrees with the state */
            if (ch == CHECK_WENT_UP)
                assert_int_equal(st.up, 1);
            if (ch == CHECK_WENT_DOWN)
                assert_int_equal(st.up, 0);
            assert_int_equal(st.fresh, 0);
        }
        got[n] = '\0';
        if (strcmp(got, c->changes) != 0 || st.up != c->up_after)
            fail_msg("case '%s' (rise=%u fall=%u, results %s): changes %s up=%d, "
                     "expected %s up=%d", c->name, c->rise, c->fall, c->results,
                     got, st.up, c->changes, c->up_after);
    }
}

/* Every rise/fall pair in 1..6 x 1..6: after one success, exactly the fall-th
 * consecutive failure goes down; then exactly the rise-th consecutive
 * success comes up, and rise-1 successes followed by a failure do not. */
static void test_state_machine_all_rise_fall_pairs(void **state)
{
    (void)state;
    for (unsigned rise = 1; rise <= 6; rise++) {
        for (unsigned fall = 1; fall <= 6; fall++) {
            struct check_state st;
            check_state_init(&st);
            assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
            for (unsigned k = 1; k < fall; k++)
                assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_SAME);
            assert_int_equal(st.up, 1);
            assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_WENT_DOWN);
            assert_int_equal(st.up, 0);
            /* rise-1 successes, a failure: still down, count starts over */
            for (unsigned k = 1; k < rise; k++)
                assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
            assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_SAME);
            assert_int_equal(st.up, 0);
            for (unsigned k = 1; k < rise; k++)
                assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
            assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_WENT_UP);
            assert_int_equal(st.up, 1);
            assert_int_equal(st.successes, rise);
            assert_int_equal(st.failures, 0);
        }
    }
}

/* Counters stay bounded over long runs and the thresholds still work after:
 * no wrap-around can fake a change. */
static void test_state_machine_counters_saturate(void **state)
{
    (void)state;
    const unsigned rise = 3, fall = 4;
    struct check_state st;
    check_state_init(&st);
    int downs = 0, ups = 0;
    for (int i = 0; i < 10000; i++) {
        enum check_change ch = check_state_result(&st, 0, rise, fall);
        downs += ch == CHECK_WENT_DOWN;
        ups += ch == CHECK_WENT_UP;
        assert_true(st.failures <= fall);
        assert_int_equal(st.successes, 0);
    }
    assert_int_equal(downs, 1);
    assert_int_equal(ups, 0);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.failures, fall);

    /* exactly rise successes to come back, however long it was down */
    assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
    assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
    assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_WENT_UP);

    for (int i = 0; i < 10000; i++) {
        enum check_change ch = check_state_result(&st, 1, rise, fall);
        assert_int_equal(ch, CHECK_SAME);
        assert_true(st.successes <= rise);
        assert_int_equal(st.failures, 0);
    }
    assert_int_equal(st.successes, rise);
    /* and exactly fall failures to go down again */
    for (unsigned k = 1; k < fall; k++)
        assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_SAME);
    assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_WENT_DOWN);

    /* alternating for a long time: with rise=fall=2 nothing ever changes */
    check_state_init(&st);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(check_state_result(&st, i % 2 == 0, 2, 2), CHECK_SAME);
    assert_int_equal(st.up, 1);
    assert_true(st.successes <= 2 && st.failures <= 2);
}

/* init makes a fresh, up state whatever the memory held before. */
static void test_state_init_resets(void **state)
{
    (void)state;
    struct check_state st;
    memset(&st, 0xa5, sizeof(st));
    check_state_init(&st);
    assert_int_equal(st.up, 1);
    assert_int_equal(st.fresh, 1);
    assert_int_equal(st.successes, 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(check_state_result(&st, 0, 2, 3), CHECK_WENT_DOWN);
}

/* ---- a server added at run time ------------------------------------------- */

/* check_state_init_added(): down and fresh. The fresh first result decides
 * alone only to bring it up: one pass is enough whatever rise is. A failure
 * first keeps it down (SAME: it was down), spends freshness, and from
 * then on it needs rise passes in a row like any server that is down. */
static const struct sm_case added_cases[] = {
    { "added: first pass is up, rise=3",     3, 3, "s",          "U",          1 },
    { "added: first pass is up, rise=100",   100, 3, "s",        "U",          1 },
    { "added: first pass is up, rise=1",     1, 1, "s",          "U",          1 },
    { "added: passes after up are SAME",     3, 3, "ssss",       "U===",       1 },
    { "added: failures keep it down",        3, 3, "ffff",       "====",       0 },
    { "added: fall=1 failure is SAME",       2, 1, "f",          "=",          0 },
    { "added: after a failure, rise=3",      3, 3, "fsss",       "===U",       1 },
    { "added: after a failure, 2 of 3",      3, 3, "fss",        "===",        0 },
    { "added: after a failure, rise=1",      1, 3, "fs",         "=U",         1 },
    { "added: after a failure, rise=2",      2, 3, "fss",        "==U",        1 },
    { "added: a failure resets the run",     3, 3, "fssfsss",    "======U",    1 },
    { "added: up, then fall to go down",     3, 3, "sfff",       "U==D",       0 },
    { "added: up, fall=1",                   3, 1, "sf",         "UD",         0 },
    { "added: up, down, rise again",         2, 2, "sffss",      "U=D=U",      1 },
};

static void test_added_state_machine_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(added_cases) / sizeof(added_cases[0]); i++) {
        const struct sm_case *c = &added_cases[i];
        size_t n = strlen(c->results);
        assert_int_equal(n, strlen(c->changes));
        struct check_state st;
        check_state_init_added(&st);
        char got[64];
        assert_true(n < sizeof(got));
        for (size_t k = 0; k < n; k++) {
            enum check_change ch = check_state_result(&st, c->results[k] == 's',
                                                      c->rise, c->fall);
            got[k] = ch == CHECK_WENT_UP ? 'U' : ch == CHECK_WENT_DOWN ? 'D' : '=';
            if (ch == CHECK_WENT_UP)
                assert_int_equal(st.up, 1);
            if (ch == CHECK_WENT_DOWN)
                assert_int_equal(st.up, 0);
            assert_int_equal(st.fresh, 0);
        }
        got[n] = '\0';
        if (strcmp(got, c->changes) != 0 || st.up != c->up_after)
            fail_msg("case '%s' (rise=%u fall=%u, results %s): changes %s up=%d, "
                     "expected %s up=%d", c->name, c->rise, c->fall, c->results,
                     got, st.up, c->changes, c->up_after);
    }
}

/* Down and fresh whatever the memory held; counters zero. */
static void test_added_init_is_down_and_fresh(void **state)
{
    (void)state;
    struct check_state st;
    memset(&st, 0xa5, sizeof(st));
    check_state_init_added(&st);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.fresh, 1);
    assert_int_equal(st.successes, 0);
    assert_int_equal(st.failures, 0);
}

/* Every rise/fall pair: one pass brings it up at once; a failure first
 * leaves it down with the counts of a server that failed once, so it then
 * takes exactly rise passes. */
static void test_added_all_rise_fall_pairs(void **state)
{
    (void)state;
    for (unsigned rise = 1; rise <= 6; rise++) {
        for (unsigned fall = 1; fall <= 6; fall++) {
            struct check_state st;
            check_state_init_added(&st);
            assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_WENT_UP);
            assert_int_equal(st.up, 1);
            assert_int_equal(st.fresh, 0);
            assert_int_equal(st.successes, 1);

            check_state_init_added(&st);
            assert_int_equal(check_state_result(&st, 0, rise, fall), CHECK_SAME);
            assert_int_equal(st.up, 0);
            assert_int_equal(st.fresh, 0);
            assert_int_equal(st.failures, 1);
            assert_int_equal(st.successes, 0);
            for (unsigned k = 1; k < rise; k++)
                assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_SAME);
            assert_int_equal(st.up, 0);
            assert_int_equal(check_state_result(&st, 1, rise, fall), CHECK_WENT_UP);
            assert_int_equal(st.up, 1);
            assert_int_equal(st.failures, 0);
        }
    }
}

/* Traffic's run of failures on a server still down since it was added
 * changes nothing, freshness included: its first passed check still brings
 * it up at once. */
static void test_added_passive_down_while_down(void **state)
{
    (void)state;
    struct check_state st;
    check_state_init_added(&st);
    assert_int_equal(check_state_passive_down(&st, 3), CHECK_SAME);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.fresh, 1);
    assert_int_equal(check_state_result(&st, 1, 3, 3), CHECK_WENT_UP);
}

/* ---- the HTTP status line parser ------------------------------------------ */

/* Parses a copy of s[0..len) in a heap block of exactly len bytes (plain
 * malloc, not cmocka's guarded test_malloc), so that under ASan any read
 * past what "has arrived" is reported. */
static enum check_http_parse parse_n(const char *s, size_t len, int *status)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, s, len);
    enum check_http_parse r = check_http_parse(len ? buf : buf + 1, len, status);
    free(buf);
    return r;
}

static enum check_http_parse parse_str(const char *s, int *status)
{
    return parse_n(s, strlen(s), status);
}

static const char *parse_name(enum check_http_parse r)
{
    switch (r) {
    case CHECK_HTTP_MORE: return "MORE";
    case CHECK_HTTP_DONE: return "DONE";
    case CHECK_HTTP_BAD: return "BAD";
    }
    return "?";
}

struct status_case {
    const char *answer;
    int status;
    int ok;                  /* check_http_status_ok(status) */
};

static const struct status_case status_cases[] = {
    { "HTTP/1.1 200 OK\r\n", 200, 1 },
    { "HTTP/1.1 200 OK\n", 200, 1 },
    { "HTTP/1.0 200 OK\r\n", 200, 1 },
    { "HTTP/1.1 204\r\n", 204, 1 },
    { "HTTP/1.1 204\n", 204, 1 },
    { "HTTP/1.1 299 Whatever\r\n", 299, 1 },
    { "HTTP/1.1 301 Moved Permanently\r\n", 301, 1 },
    { "HTTP/1.1 302 Found\r\n", 302, 1 },
    { "HTTP/1.1 399 Odd\r\n", 399, 1 },
    { "HTTP/1.1 100 Continue\r\n", 100, 0 },
    { "HTTP/1.1 199 Info\r\n", 199, 0 },
    { "HTTP/1.1 400 Bad Request\r\n", 400, 0 },
    { "HTTP/1.1 404 Not Found\r\n", 404, 0 },
    { "HTTP/1.1 500 Internal Server Error\r\n", 500, 0 },
    { "HTTP/1.1 503 Service Unavailable\r\n", 503, 0 },
    { "HTTP/1.1 999 Custom\r\n", 999, 0 },
    /* headers and body after the status line do not matter */
    { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 1 },
    { "HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n", 404, 0 },
    /* a reason phrase may hold anything but a line end */
    { "HTTP/1.1 200 all  good \t here\r\n", 200, 1 },
};

static void test_http_status_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const struct status_case *c = &status_cases[i];
        int status = -1;
        enum check_http_parse r = parse_str(c->answer, &status);
        if (r != CHECK_HTTP_DONE || status != c->status)
            fail_msg("'%s': %s status %d, expected DONE %d", c->answer,
                     parse_name(r), status, c->status);
        if (check_http_status_ok(status) != c->ok)
            fail_msg("'%s': status_ok(%d) = %d, expected %d", c->answer, status,
                     check_http_status_ok(status), c->ok);
    }
}

static void test_http_status_ok_ranges(void **state)
{
    (void)state;
    for (int s = 0; s < 1000; s++)
        assert_int_equal(check_http_status_ok(s) != 0, s >= 200 && s <= 399);
}

/* Fed one more byte at a time, as a slow server would send it: MORE for
 * every prefix without the LF, DONE with the status once the LF arrives. */
static void test_http_partial_reads(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.0 302 Found\n",
        "HTTP/1.1 204\r\n",
        "HTTP/1.1 503 Service Unavailable\r\n",
    };
    static const int statuses[] = { 200, 302, 204, 503 };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        const char *a = answers[i];
        size_t n = strlen(a);
        for (size_t len = 0; len < n; len++) {
            int status = -1;
            enum check_http_parse r = parse_n(a, len, &status);
            if (r != CHECK_HTTP_MORE)
                fail_msg("'%s' cut at %zu: %s, expected MORE", a, len, parse_name(r));
        }
        int status = -1;
        assert_int_equal(parse_n(a, n, &status), CHECK_HTTP_DONE);
        assert_int_equal(status, statuses[i]);
    }
}

/* Headers following the status line in the same reads: DONE as soon as the
 * status line's LF is in, and it stays DONE with the same status as the
 * rest of the head arrives. */
static void test_http_partial_reads_with_headers(void **state)
{
    (void)state;
    const char *a = "HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n";
    size_t n = strlen(a);
    size_t done_at = 0;
    for (size_t len = 1; len <= n; len++) {
        int status = -1;
        enum check_http_parse r = parse_n(a, len, &status);
        assert_int_not_equal(r, CHECK_HTTP_BAD);
        if (r == CHECK_HTTP_DONE) {
            assert_int_equal(status, 301);
            if (done_at == 0)
                done_at = len;
        } else {
            assert_int_equal(done_at, 0);   /* never back to MORE */
        }
    }
    assert_int_equal(done_at, strlen("HTTP/1.1 301 Moved\r\n"));
}

/* Answers that are not an HTTP/1.x status line. */
static const char *const garbage[] = {
    "SSH-2.0-OpenSSH_9.2\r\n",
    "hello\n",
    "hello",
    "\n",
    "\r\n",
    "http/1.1 200 OK\r\n",          /* the version is case sensitive */
    "HTTP/2 200\r\n",
    "HTTP/2.0 200 OK\r\n",
    "HTTP/1.2 200 OK\r\n",
    "HTTP/1.1 20\r\n",
    "HTTP/1.1 20 OK\r\n",
    "HTTP/1.1 2000\r\n",
    "HTTP/1.1 2000 OK\r\n",
    "HTTP/1.1 200OK\r\n",
    "HTTP/1.1 abc\r\n",
    "HTTP/1.1 2x0 OK\r\n",
    "HTTP/1.1  200 OK\r\n",         /* two spaces */
    "HTTP/1.1\t200 OK\r\n",
    "HTTP/1.1 -20 OK\r\n",
    "HTTP/1.1 099 Low\r\n",
    "HTTP/1.1 000\r\n",
    "HTTP/1.1\r\n",
    "HTTP/1.1 \r\n",
    "HTTP/1.\r\n",
    "HTTP/1.1200 OK\r\n",
    " HTTP/1.1 200 OK\r\n",
    "<html><body>hi</body></html>\n",
};

static void test_http_garbage_is_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int status = -1;
        enum check_http_parse r = parse_str(garbage[i], &status);
        if (r != CHECK_HTTP_BAD)
            fail_msg("garbage '%s': %s (status %d), expected BAD", garbage[i],
                     parse_name(r), status);
    }
}

/* Binary bytes, including NULs, are BAD: the parser uses the length, not a
 * terminator. Nothing at all yet is MORE (a read that got nothing). */
static void test_http_empty_then_binary(void **state)
{
    (void)state;
    int status = -1;
    assert_int_equal(parse_n("", 0, &status), CHECK_HTTP_MORE);
    static const char bin[] = { '\0', '\x01', '\xff', '\n', 'H', 'T' };
    assert_int_equal(parse_n(bin, sizeof(bin), &status), CHECK_HTTP_BAD);
    assert_int_equal(parse_n(bin, 1, &status), CHECK_HTTP_BAD);
    static const char nul_in_prefix[] = { 'H', 'T', 'T', 'P', '\0', '1', '.', '1' };
    assert_int_equal(parse_n(nul_in_prefix, sizeof(nul_in_prefix), &status),
                     CHECK_HTTP_BAD);
    /* a NUL inside the reason phrase does not hide the line end */
    static const char nul_reason[] = "HTTP/1.1 200 O\0K\r\n";
    assert_int_equal(parse_n(nul_reason, sizeof(nul_reason) - 1, &status),
                     CHECK_HTTP_DONE);
    assert_int_equal(status, 200);
}

/* A prefix that cannot become "HTTP/1." is BAD on the byte that diverges,
 * without waiting for a line end or the line limit. */
static void test_http_early_divergence(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bad_at;       /* first length that parses BAD */
    } cases[] = {
        { "SSH-2.0-OpenSSH_9.2", 1 },
        { "hello world", 1 },
        { "HTTX/1.1 200", 4 },
        { "HTTP/2 200 OK", 6 },
        { "HTTP 200", 5 },
        { "HTTP/1,1 200", 7 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        for (size_t len = 0; len <= strlen(t); len++) {
            int status = -1;
            enum check_http_parse r = parse_n(t, len, &status);
            enum check_http_parse want = len < cases[i].bad_at ? CHECK_HTTP_MORE
                                                               : CHECK_HTTP_BAD;
            if (r != want)
                fail_msg("'%s' cut at %zu: %s, expected %s", t, len, parse_name(r),
                         parse_name(want));
        }
    }
    /* What comes after "HTTP/1." (the minor version, the code) is judged
     * only once the line is complete: "HTTP/1.2 200" waits for its LF. The
     * line limit and the check's timeout bound the wait. */
    int status = -1;
    assert_int_equal(parse_str("HTTP/1.2 200", &status), CHECK_HTTP_MORE);
    assert_int_equal(parse_str("HTTP/1.2 200\n", &status), CHECK_HTTP_BAD);
}

/* A line of exactly n bytes, LF included: "HTTP/1.1 200 " then padding. */
static char *long_line(size_t n, int with_lf, int crlf)
{
    char *b = test_malloc(n);
    assert_non_null(b);
    static const char head[] = "HTTP/1.1 200 ";
    memcpy(b, head, sizeof(head) - 1);
    memset(b + sizeof(head) - 1, 'x', n - (sizeof(head) - 1));
    if (with_lf) {
        b[n - 1] = '\n';
        if (crlf)
            b[n - 2] = '\r';
    }
    return b;
}

/* The limit, as it behaves: the LF must be among the first
 * CHECK_HTTP_LINE_MAX bytes (health.c reads into a buffer of exactly that
 * size). So a status line of 1024 bytes counting its LF (1022 + CRLF, or
 * 1023 + LF) parses; 1025 bytes do not; 1024 bytes without an LF yet are
 * BAD at once, 1023 are still MORE. */
static void test_http_line_limit(void **state)
{
    (void)state;
    const size_t max = CHECK_HTTP_LINE_MAX;
    assert_int_equal(max, 1024);
    int status;
    char *b;

    /* no LF yet */
    b = long_line(max - 1, 0, 0);
    status = -1;
    assert_int_equal(parse_n(b, max - 1, &status), CHECK_HTTP_MORE);
    test_free(b);
    b = long_line(max, 0, 0);
    assert_int_equal(parse_n(b, max, &status), CHECK_HTTP_BAD);
    test_free(b);
    b = long_line(4 * max, 0, 0);
    assert_int_equal(parse_n(b, 4 * max, &status), CHECK_HTTP_BAD);
    test_free(b);

    /* exactly at the limit, LF included: accepted */
    b = long_line(max, 1, 0);
    status = -1;
    assert_int_equal(parse_n(b, max, &status), CHECK_HTTP_DONE);
    assert_int_equal(status, 200);
    test_free(b);
    b = long_line(max, 1, 1);
    status = -1;
    assert_int_equal(parse_n(b, max, &status), CHECK_HTTP_DONE);
    assert_int_equal(status, 200);
    test_free(b);

    /* one byte over: BAD, LF or CRLF */
    b = long_line(max + 1, 1, 0);
    assert_int_equal(parse_n(b, max + 1, &status), CHECK_HTTP_BAD);
    test_free(b);
    b = long_line(max + 1, 1, 1);
    assert_int_equal(parse_n(b, max + 1, &status), CHECK_HTTP_BAD);
    test_free(b);

    /* a long line that would have been fine but for its length, fed the
     * way health.c feeds it: MORE up to max - 1 bytes, BAD at max */
    b = long_line(2 * max, 1, 1);
    enum check_http_parse r = CHECK_HTTP_MORE;
    size_t len;
    for (len = 1; len <= 2 * max && r == CHECK_HTTP_MORE; len++)
        r = parse_n(b, len, &status);
    assert_int_equal(r, CHECK_HTTP_BAD);
    assert_int_equal(len - 1, max);
    test_free(b);
}

/* Passive checks go through the same machine: traffic's run of failures
 * takes an up server down at once, as <fall> failed checks would, and it
 * then needs <rise> passed checks to come back; a down server is left as
 * it is. */
static void test_passive_down_is_a_state_change_of_the_machine(void **state)
{
    (void)state;
    struct check_state st;
    check_state_init(&st);
    assert_int_equal(check_state_result(&st, 1, 2, 3), CHECK_SAME);
    assert_int_equal(check_state_passive_down(&st, 3), CHECK_WENT_DOWN);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.failures, 3);
    assert_int_equal(st.fresh, 0);
    assert_int_equal(check_state_passive_down(&st, 3), CHECK_SAME);
    assert_int_equal(check_state_result(&st, 1, 2, 3), CHECK_SAME);
    assert_int_equal(check_state_result(&st, 1, 2, 3), CHECK_WENT_UP);
    assert_int_equal(st.up, 1);
}

/* ---- slow start and outlier ejection ------------------------------------ */

static void test_ramp_is_linear_from_a_twentieth(void **state)
{
    (void)state;
    assert_int_equal(check_ramp_pml(0, 100, 30), 1000);       /* not ramping */
    assert_int_equal(check_ramp_pml(100, 100, 0), 1000);      /* no slowstart */
    assert_int_equal(check_ramp_pml(100, 100, 30), 50);       /* 1/20 at once */
    assert_int_equal(check_ramp_pml(100, 115, 30), 525);      /* half way */
    assert_int_equal(check_ramp_pml(100, 127, 30), 905);
    assert_int_equal(check_ramp_pml(100, 130, 30), 1000);
    assert_int_equal(check_ramp_pml(100, 500, 30), 1000);
    assert_int_equal(check_ramp_pml(100, 90, 30), 50);        /* clock behind */
    unsigned last = 0;
    for (double t = 100; t <= 131; t += 0.5) {
        unsigned pml = check_ramp_pml(100, t, 30);
        assert_true(pml >= last && pml >= 50 && pml <= 1000);
        last = pml;
    }
}

static void test_ejections_grow_in_a_row_and_are_capped(void **state)
{
    (void)state;
    struct check_outlier o = { 0 };
    assert_int_equal(check_outlier_eject(&o, 100, 30, 1), 1);
    assert_true(o.ejected && o.length == 30 && o.until == 130 && o.in_row == 1);
    assert_int_equal(check_outlier_eject(&o, 101, 30, 1), 0);   /* ejected already */
    check_outlier_end(&o);
    /* again soon after: twice as long */
    assert_int_equal(check_outlier_eject(&o, 140, 30, 1), 1);
    assert_true(o.length == 60 && o.in_row == 2);
    for (unsigned k = 3; k <= 14; k++) {
        check_outlier_end(&o);
        assert_int_equal(check_outlier_eject(&o, o.until + 1, 30, 1), 1);
        assert_int_equal(o.length, 30 * (k < 10 ? k : 10));    /* at most 10x */
    }
    /* a long good spell (more than twice the last length) starts again */
    check_outlier_end(&o);
    assert_int_equal(check_outlier_eject(&o, o.until + 2 * o.length + 1, 30, 1), 1);
    assert_true(o.length == 30 && o.in_row == 1);
    /* no room under the cap: nothing changes */
    struct check_outlier p = { 0 };
    assert_int_equal(check_outlier_eject(&p, 100, 30, 0), 0);
    assert_false(p.ejected);
    assert_int_equal(p.in_row, 0);
}

static void test_outlier_cap_rounds_down(void **state)
{
    (void)state;
    assert_int_equal(check_outlier_cap(50, 1), 0);    /* never the only server */
    assert_int_equal(check_outlier_cap(50, 2), 1);
    assert_int_equal(check_outlier_cap(50, 3), 1);
    assert_int_equal(check_outlier_cap(50, 10), 5);
    assert_int_equal(check_outlier_cap(100, 3), 3);
    assert_int_equal(check_outlier_cap(0, 10), 0);
    assert_int_equal(check_outlier_cap(34, 3), 1);
}


/* ---- health = expect ----------------------------------------------------------- */

static void test_unescape(void **state)
{
    (void)state;
    unsigned char out[CHECK_SEND_MAX];
    size_t len = 99;
    char err[160];
    assert_int_equal(check_unescape("PING\\r\\n", out, sizeof(out), &len, err, sizeof(err)), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "PING\r\n", 6);
    assert_int_equal(check_unescape("\\x50ING\\t\\\\\\x00\\xfF", out, sizeof(out), &len, err,
                                    sizeof(err)), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(out, "PING\t\\\0\xff", 8);
    assert_int_equal(check_unescape("", out, sizeof(out), &len, err, sizeof(err)), 0);
    assert_int_equal(len, 0);

    assert_int_equal(check_unescape("a\\q", out, sizeof(out), &len, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown escape \\q at offset 1 (known: \\r \\n \\t \\\\ \\xHH)");
    assert_int_equal(check_unescape("\\x4", out, sizeof(out), &len, err, sizeof(err)), -1);
    assert_string_equal(err, "\\x needs two hex digits at offset 0");
    assert_int_equal(check_unescape("\\xg1", out, sizeof(out), &len, err, sizeof(err)), -1);
    assert_int_equal(check_unescape("ab\\", out, sizeof(out), &len, err, sizeof(err)), -1);
    assert_string_equal(err, "a lone backslash at the end");
    /* the buffer's size is the limit, escapes counted once unescaped */
    assert_int_equal(check_unescape("abcd", out, 4, &len, err, sizeof(err)), 0);
    assert_int_equal(check_unescape("abcde", out, 4, &len, err, sizeof(err)), -1);
    assert_string_equal(err, "longer than 4 bytes");
    assert_int_equal(check_unescape("\\x41\\x42\\x43\\x44", out, 4, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 4);
}

static void test_expect_match(void **state)
{
    (void)state;
    const unsigned char *pong = (const unsigned char *)"+PONG";
    assert_int_equal(check_expect_match((const unsigned char *)"+PONG\r\n", 7, pong, 5),
                     CHECK_EXPECT_MATCH);
    assert_int_equal(check_expect_match((const unsigned char *)"+PONG", 5, pong, 5),
                     CHECK_EXPECT_MATCH);
    /* arriving in pieces: each proper prefix asks for more */
    for (size_t n = 0; n < 5; n++)
        assert_int_equal(check_expect_match(pong, n, pong, 5), CHECK_EXPECT_MORE);
    /* the first byte that differs decides, however short the answer */
    assert_int_equal(check_expect_match((const unsigned char *)"-", 1, pong, 5),
                     CHECK_EXPECT_MISMATCH);
    assert_int_equal(check_expect_match((const unsigned char *)"+PANG", 5, pong, 5),
                     CHECK_EXPECT_MISMATCH);
    assert_int_equal(check_expect_match((const unsigned char *)"+pong", 5, pong, 5),
                     CHECK_EXPECT_MISMATCH);
    /* binary bytes compare as bytes */
    const unsigned char bin[] = { 0x00, 0xff, 0x0a };
    assert_int_equal(check_expect_match(bin, 3, bin, 2), CHECK_EXPECT_MATCH);
}

static void test_printable(void **state)
{
    (void)state;
    char out[80];
    check_printable((const unsigned char *)"-ERR x\r\n", 8, out, sizeof(out));
    assert_string_equal(out, "-ERR x\\x0d\\x0a");
    check_printable((const unsigned char *)"a\\b\x7f\x80", 5, out, sizeof(out));
    assert_string_equal(out, "a\\x5cb\\x7f\\x80");
    /* cut before a character that does not fit whole */
    check_printable((const unsigned char *)"abc\x01", 4, out, 6);
    assert_string_equal(out, "abc");
    check_printable((const unsigned char *)"abcdef", 6, out, 4);
    assert_string_equal(out, "abc");
    check_printable((const unsigned char *)"", 0, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_machine_table),
        cmocka_unit_test(test_state_machine_all_rise_fall_pairs),
        cmocka_unit_test(test_state_machine_counters_saturate),
        cmocka_unit_test(test_state_init_resets),
        cmocka_unit_test(test_added_state_machine_table),
        cmocka_unit_test(test_added_init_is_down_and_fresh),
        cmocka_unit_test(test_added_all_rise_fall_pairs),
        cmocka_unit_test(test_added_passive_down_while_down),
        cmocka_unit_test(test_http_status_lines),
        cmocka_unit_test(test_http_status_ok_ranges),
        cmocka_unit_test(test_http_partial_reads),
        cmocka_unit_test(test_http_partial_reads_with_headers),
        cmocka_unit_test(test_http_garbage_is_bad),
        cmocka_unit_test(test_http_empty_then_binary),
        cmocka_unit_test(test_http_early_divergence),
        cmocka_unit_test(test_http_line_limit),
        cmocka_unit_test(test_passive_down_is_a_state_change_of_the_machine),
        cmocka_unit_test(test_ramp_is_linear_from_a_twentieth),
        cmocka_unit_test(test_ejections_grow_in_a_row_and_are_capped),
        cmocka_unit_test(test_outlier_cap_rounds_down),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_expect_match),
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
