/* check.h — health check primitives with no I/O of their own: the rise/fall
 * state machine and the HTTP check's response parser, so that unit tests
 * drive them with any input and clock. health.c runs the checks. */
#ifndef TCPLB_CHECK_H
#define TCPLB_CHECK_H

#include <stddef.h>

/* Longest status line the HTTP check reads before calling the answer bad. */
#define CHECK_HTTP_LINE_MAX 1024

enum check_http_parse {
    CHECK_HTTP_MORE = 0,     /* no complete status line yet: read more */
    CHECK_HTTP_DONE,         /* status line parsed: *status holds the code */
    CHECK_HTTP_BAD,          /* not HTTP, malformed or overlong */
};

/* Parses the status line at the start of buf[0..len). `HTTP/1.x NNN ...`
 * ending in CRLF (or LF). */
enum check_http_parse check_http_parse(const char *buf, size_t len, int *status);

/* 1 for the statuses a healthy server answers: 2xx and 3xx. */
int check_http_status_ok(int status);

/* ---- health = expect ------------------------------------------------------ */

/* Longest health_send and health_expect, once unescaped. */
#define CHECK_SEND_MAX 256
#define CHECK_EXPECT_MAX 128

/* Unescapes health_send / health_expect text: \r \n \t \\ and \xHH (two hex
 * digits); any other backslash is an error. Writes at most cap bytes into
 * out, its length into *len. 0, or -1 with err filled. */
int check_unescape(const char *text, unsigned char *out, size_t cap, size_t *len,
                   char *err, size_t errlen);

enum check_expect {
    CHECK_EXPECT_MORE = 0,   /* what came so far matches: read more */
    CHECK_EXPECT_MATCH,      /* the answer starts with the expected bytes */
    CHECK_EXPECT_MISMATCH,   /* it does not */
};

/* Compares the first bytes answered, answer[0..len), with expect. */
enum check_expect check_expect_match(const unsigned char *answer, size_t len,
                                     const unsigned char *expect, size_t expect_len);

/* Writes bytes as printable text for a log line (controls and non-ASCII
 * as \xHH, at most about outlen - 1 characters). */
void check_printable(const unsigned char *bytes, size_t len, char *out, size_t outlen);

/* A server's health as seen by its checks. Main thread only. */
struct check_state {
    int up;                  /* 1 up, 0 down */
    unsigned successes;      /* consecutive, since the last failure */
    unsigned failures;       /* consecutive, since the last success */
    int fresh;               /* no check finished yet: one failure is enough */
};

enum check_change { CHECK_SAME = 0, CHECK_WENT_UP, CHECK_WENT_DOWN };

/* Starts in state up and fresh: a server dead at start is down after its
 * first check, a live one stays up. */
void check_state_init(struct check_state *st);

/* Starts in state down and fresh, for a server added at run time: it is up
 * after its first passed check (not `rise` of them), down until then. */
void check_state_init_added(struct check_state *st);

/* Records one check result (active or passive) and says whether the server
 * changed state: down after <fall> consecutive failures (one if fresh), up
 * after <rise> consecutive successes. */
enum check_change check_state_result(struct check_state *st, int ok,
                                     unsigned rise, unsigned fall);

/* Traffic saw <fall> connects in a row fail (passive checks): a server that
 * is up goes down at once, as if its last <fall> checks had failed; one
 * that is down already stays so (CHECK_SAME). */
enum check_change check_state_passive_down(struct check_state *st, unsigned fall);

/* ---- slow start ---------------------------------------------------------- */

#define CHECK_RAMP_STEPS 20

/* The share of its weight a server ramping since <since> has at <now>, in
 * per mille: from 1000 / CHECK_RAMP_STEPS at the start, linearly to 1000
 * at <since> + <length>, and 1000 when not ramping (since 0 or length 0). */
unsigned check_ramp_pml(double since, double now, double length);

/* ---- outlier ejection ------------------------------------------------------ */

#define CHECK_EJECT_MAX_FACTOR 10

/* One server's ejections. */
struct check_outlier {
    int ejected;
    unsigned in_row;          /* ejections in a row */
    double until;             /* when the current (or last) one ends */
    double length;            /* of the current (or last) one, seconds */
};

/* How many of <nservers> may be ejected at once under <max_percent>
 * (rounded down). */
unsigned check_outlier_cap(unsigned max_percent, unsigned nservers);

/* Ejects at <now> for <base> x the ejections in a row (at most
 * CHECK_EJECT_MAX_FACTOR x); an ejection within twice the last one's length
 * after its end counts as in a row, a later one starts the count again.
 * Returns 0 and changes nothing when the server is ejected already or
 * <room> (cap minus those ejected now) is 0. */
int check_outlier_eject(struct check_outlier *o, double now, double base, unsigned room);

/* The ejection is over (its time came). */
void check_outlier_end(struct check_outlier *o);

#endif
