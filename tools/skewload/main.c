/* main.c — skewload's command line: parses and checks the options, runs the
 * load (load.c) and prints the report (report.c). Everything it decides is
 * about arguments; it never touches a socket. */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "load.h"
#include "report.h"
#include "skew.h"
#include "tally.h"

#define MAIN_CONCURRENCY_MAX 10000
#define MAIN_REQUESTS_MAX 1000000000ULL
#define MAIN_DURATION_MAX 86400.0
#define MAIN_CLIENTS_MAX 65536
#define MAIN_TIMEOUT_MAX_MS 3600000
#define MAIN_TEXT_MAX 2048

/* The parsed command line; strings point into argv. */
struct main_args {
    struct load_opts load;
    const char *target_text;
    const char *svg_path;
    int csv;
    int allow_remote;
    int seed_given;
};

static void main_usage(FILE *out)
{
    fprintf(out,
"usage: skewload -t HOST:PORT [-c CONCURRENCY] [-n REQUESTS] [-d SECONDS]\n"
"                [--clients N] [--client-base IP] [--skew uniform|zipf:S|hot:K]\n"
"                [--mode http|tcp] [--keepalive] [-k N] [--path /] [--line TEXT]\n"
"                [--seed N] [--timeout MS] [--csv] [--svg FILE] [--allow-remote]\n"
"\n"
"Load through a TCP target from many client source addresses with a chosen\n"
"skew, and report how the requests were spread over the servers behind it.\n"
"\n"
"  -t, --target HOST:PORT  where to connect (IPv4; loopback unless --allow-remote)\n"
"  -c, --concurrency N     requests in flight at once (default 8, max %d)\n"
"  -n, --requests N        stop after N requests (default 10000)\n"
"  -d, --duration S        or after S seconds, whichever comes first (default 30);\n"
"                          requests in flight then finish, each within --timeout\n"
"      --clients N         client addresses (default 100, max %d)\n"
"      --client-base IP    the first one (default 127.0.0.2); then upwards through\n"
"                          last octets 2..254 of each /24: .0.2-.0.254, .1.2, ...\n"
"      --skew SPEC         who makes each request: uniform (default), zipf:S\n"
"                          (client i weighs 1/i^S) or hot:K (the first client\n"
"                          weighs K, each other 1)\n"
"      --mode MODE         http (default): GET PATH, one response; the server is\n"
"                          its X-Backend header, else the body's first line.\n"
"                          tcp: send TEXT and a newline, read one line back,\n"
"                          which names the server\n"
"      --keepalive         each of the C slots keeps its connection (its client\n"
"                          picked by the skew when it connects); default is a\n"
"                          new connection, from a newly picked client, per request\n"
"  -k, --per-connection N  keep-alive with N requests per connection: after its\n"
"                          Nth answer a slot closes and connects again from a\n"
"                          newly picked client (implies --keepalive)\n"
"      --path PATH         http request path (default /)\n"
"      --line TEXT         tcp mode line (default hello)\n"
"      --seed N            the client sequence's seed (default: from the clock,\n"
"                          printed so the run can be repeated)\n"
"      --timeout MS        per request, connect included (default 5000)\n"
"      --csv               print CSV instead of the text report\n"
"      --svg FILE          also write a chart of requests per server per second\n"
"      --allow-remote      permit a target (and client base) outside 127.0.0.0/8\n"
"  -h, --help              this text\n"
"\n"
"CSV columns: kind,name,value,share_pct,p50_ms,p99_ms,errors,servers\n"
"  kind=summary  name is requests, ok, errors, elapsed_s, req_per_s, servers,\n"
"                clients (that made requests), imbalance (max/mean of server\n"
"                requests), cv (stddev/mean of the same), p50_ms, p99_ms (all\n"
"                answers), interrupted (1 if SIGINT/SIGTERM cut the run);\n"
"                value holds the number, the other columns are empty\n"
"  kind=server   name is the server, value its answers (any status),\n"
"                share_pct its share of answers, p50_ms/p99_ms its latency\n"
"                (nearest rank), errors its non-2xx answers\n"
"  kind=client   name is the client IP, value its requests, share_pct its share\n"
"                of all requests, errors its failures and non-2xx answers,\n"
"                servers NAME:COUNT pairs (busiest first, space separated);\n"
"                every client that made a request, busiest first\n"
"  kind=error    name is connect_refused, connect_error, reset, timeout, closed\n"
"                (EOF before any byte), bad_response, io_error or status_NNN\n"
"                (an answer outside 2xx); value is the count\n"
"\n"
"Exit status: 0 when the run completed (request errors are reported, not fatal),\n"
"1 when it could not run, 2 for bad arguments.\n",
            MAIN_CONCURRENCY_MAX, MAIN_CLIENTS_MAX);
}

/* An unsigned integer in [min, max] filling all of text. */
static int main_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A finite number in (min, max] filling all of text. */
static int main_parse_double(const char *text, double min, double max, double *out)
{
    char *end;

    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v <= min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Printable ASCII without spaces (a request path) or with them (a line). */
static int main_check_text(const char *text, int spaces_ok)
{
    size_t len = strlen(text);

    if (len == 0 || len > MAIN_TEXT_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < ' ' || ch >= 0x7f || (ch == ' ' && !spaces_ok))
            return -1;
    }
    return 0;
}

static int main_bad(const char *opt, const char *why)
{
    fprintf(stderr, "skewload: %s: %s\n", opt, why);
    return -1;
}

static int main_parse_args(struct main_args *a, int argc, char **argv)
{
    enum {
        OPT_CLIENTS = 256, OPT_CLIENT_BASE, OPT_SKEW, OPT_MODE, OPT_KEEPALIVE, OPT_PATH,
        OPT_LINE, OPT_SEED, OPT_CSV, OPT_SVG, OPT_TIMEOUT, OPT_ALLOW_REMOTE,
    };
    static const struct option opts[] = {
        { "target", required_argument, NULL, 't' },
        { "concurrency", required_argument, NULL, 'c' },
        { "requests", required_argument, NULL, 'n' },
        { "duration", required_argument, NULL, 'd' },
        { "clients", required_argument, NULL, OPT_CLIENTS },
        { "client-base", required_argument, NULL, OPT_CLIENT_BASE },
        { "skew", required_argument, NULL, OPT_SKEW },
        { "mode", required_argument, NULL, OPT_MODE },
        { "keepalive", no_argument, NULL, OPT_KEEPALIVE },
        { "per-connection", required_argument, NULL, 'k' },
        { "path", required_argument, NULL, OPT_PATH },
        { "line", required_argument, NULL, OPT_LINE },
        { "seed", required_argument, NULL, OPT_SEED },
        { "csv", no_argument, NULL, OPT_CSV },
        { "svg", required_argument, NULL, OPT_SVG },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct load_opts *o = &a->load;
    char err[256];
    uint64_t u;
    double d;
    int ch;

    while ((ch = getopt_long(argc, argv, "t:c:n:d:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            a->target_text = optarg;
            break;
        case 'c':
            if (main_parse_u64(optarg, 1, MAIN_CONCURRENCY_MAX, &u) == -1)
                return main_bad("-c", "expected 1..10000");
            o->concurrency = (unsigned)u;
            break;
        case 'n':
            if (main_parse_u64(optarg, 1, MAIN_REQUESTS_MAX, &u) == -1)
                return main_bad("-n", "expected 1..1000000000");
            o->max_requests = u;
            break;
        case 'd':
            if (main_parse_double(optarg, 0, MAIN_DURATION_MAX, &d) == -1)
                return main_bad("-d", "expected seconds, 0 < S <= 86400");
            o->duration_s = d;
            break;
        case OPT_CLIENTS:
            if (main_parse_u64(optarg, 1, MAIN_CLIENTS_MAX, &u) == -1)
                return main_bad("--clients", "expected 1..65536");
            o->nclients = (size_t)u;
            break;
        case OPT_CLIENT_BASE:
            if (inet_pton(AF_INET, optarg, &o->client_base) != 1)
                return main_bad("--client-base", "expected an IPv4 address");
            break;
        case OPT_SKEW:
            if (skew_parse(optarg, &o->skew, err, sizeof err) == -1) {
                fprintf(stderr, "skewload: %s\n", err);
                return -1;
            }
            break;
        case OPT_MODE:
            if (strcmp(optarg, "http") == 0)
                o->mode = LOAD_HTTP;
            else if (strcmp(optarg, "tcp") == 0)
                o->mode = LOAD_TCP;
            else
                return main_bad("--mode", "expected http or tcp");
            break;
        case OPT_KEEPALIVE:
            o->keepalive = 1;
            break;
        case 'k':
            if (main_parse_u64(optarg, 1, 1000000000, &u) == -1)
                return main_bad("-k", "expected 1..1000000000 requests per connection");
            o->keepalive = 1;
            o->per_conn = (unsigned)u;
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || main_check_text(optarg, 0) == -1)
                return main_bad("--path", "expected /..., printable, no spaces");
            o->path = optarg;
            break;
        case OPT_LINE:
            if (main_check_text(optarg, 1) == -1)
                return main_bad("--line", "expected printable text");
            o->line = optarg;
            break;
        case OPT_SEED:
            if (main_parse_u64(optarg, 0, UINT64_MAX, &u) == -1)
                return main_bad("--seed", "expected an unsigned integer");
            o->seed = u;
            a->seed_given = 1;
            break;
        case OPT_CSV:
            a->csv = 1;
            break;
        case OPT_SVG:
            a->svg_path = optarg;
            break;
        case OPT_TIMEOUT:
            if (main_parse_u64(optarg, 1, MAIN_TIMEOUT_MAX_MS, &u) == -1)
                return main_bad("--timeout", "expected milliseconds, 1..3600000");
            o->timeout_s = (double)u / 1000.0;
            break;
        case OPT_ALLOW_REMOTE:
            a->allow_remote = 1;
            break;
        case 'h':
            main_usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc)
        return main_bad(argv[optind], "unexpected argument");
    if (a->target_text == NULL)
        return main_bad("-t", "a target HOST:PORT is required");
    if (addr_parse_target(a->target_text, &o->target, err, sizeof err) == -1)
        return main_bad("-t", err);
    if (!a->allow_remote && !addr_is_loopback(o->target.sin_addr))
        return main_bad("-t", "not a loopback address; this tool is for local labs "
                        "(--allow-remote to override)");
    if (!a->allow_remote && !addr_is_loopback(o->client_base))
        return main_bad("--client-base", "not in 127.0.0.0/8 (--allow-remote to override)");
    if (addr_check_clients(o->client_base, o->nclients, err, sizeof err) == -1) {
        fprintf(stderr, "skewload: %s\n", err);
        return -1;
    }
    o->host = a->target_text;
    return 0;
}

static void main_defaults(struct main_args *a)
{
    struct load_opts *o = &a->load;

    memset(a, 0, sizeof *a);
    o->concurrency = 8;
    o->max_requests = 10000;
    o->duration_s = 30;
    o->timeout_s = 5;
    o->nclients = 100;
    inet_pton(AF_INET, "127.0.0.2", &o->client_base);
    o->skew.kind = SKEW_UNIFORM;
    o->mode = LOAD_HTTP;
    o->path = "/";
    o->line = "hello";
}

int main(int argc, char **argv)
{
    struct main_args a;
    struct load_result res;
    char err[256], skew_text[64];
    FILE *svg = NULL;
    struct tally *t = NULL;
    int status = 1;

    main_defaults(&a);
    if (main_parse_args(&a, argc, argv) == -1) {
        fprintf(stderr, "(skewload -h for help)\n");
        return 2;
    }
    if (!a.seed_given)
        a.load.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    /* Sends use MSG_NOSIGNAL; this covers anything else. */
    signal(SIGPIPE, SIG_IGN);

    /* Open the chart file first: a typo should not cost a whole run. */
    if (a.svg_path != NULL && (svg = fopen(a.svg_path, "w")) == NULL) {
        fprintf(stderr, "skewload: %s: %s\n", a.svg_path, strerror(errno));
        return 1;
    }
    t = tally_new(a.load.nclients);
    if (t == NULL) {
        fprintf(stderr, "skewload: out of memory\n");
        goto out;
    }
    if (load_run(&a.load, t, &res, err, sizeof err) == -1) {
        fprintf(stderr, "skewload: %s\n", err);
        goto out;
    }
    tally_sort(t);

    skew_format(&a.load.skew, skew_text, sizeof skew_text);
    struct report_info ri = {
        .target = a.target_text,
        .mode = load_mode_str(a.load.mode),
        .keepalive = a.load.keepalive,
        .per_conn = a.load.per_conn,
        .concurrency = a.load.concurrency,
        .nclients = a.load.nclients,
        .client_base = a.load.client_base,
        .skew = skew_text,
        .seed = a.load.seed,
        .elapsed_s = res.elapsed_s,
        .interrupted = res.interrupted,
    };
    if ((a.csv ? report_csv(stdout, t, &ri) : report_text(stdout, t, &ri)) == -1
        || fflush(stdout) == EOF) {
        fprintf(stderr, "skewload: writing the report failed\n");
        goto out;
    }
    if (svg != NULL) {
        int rc = report_svg(svg, t, &ri);
        FILE *f = svg;
        svg = NULL;
        if (fclose(f) == EOF || rc == -1) {
            fprintf(stderr, "skewload: %s: writing the chart failed\n", a.svg_path);
            goto out;
        }
    }
    status = 0;
out:
    if (svg != NULL)
        fclose(svg);
    tally_free(t);
    return status;
}
