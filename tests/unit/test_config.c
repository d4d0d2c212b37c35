/* test_config.c — config.c: a full config loads with the right values, absent
 * keys take the documented defaults, and every kind of bad config is refused
 * with "FILE:LINE: what is wrong" on the right line. Duration parsing and the
 * reference count are tested here too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <netinet/in.h>

#include "config.h"
#include "pool.h"
#include "scheduler.h"
#include "util.h"

static char config_err[CONFIG_ERR_LEN];

static struct config *load(const char *text)
{
    config_err[0] = '\0';
    return config_load_string("t.ini", text, config_err, sizeof(config_err));
}

/* Fails unless err is exactly "<name>:<line>: ..." (or "<name>: ..." when
 * line is 0) and holds <phrase>. Prints the message it got when it is not. */
static void check_error(const char *err, const char *name, int line,
                        const char *phrase)
{
    char prefix[256];
    if (line > 0)
        snprintf(prefix, sizeof(prefix), "%s:%d: ", name, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", name);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected prefix '%s', got '%s'", prefix, err);
    if (strstr(err + strlen(prefix), phrase) == NULL)
        fail_msg("expected '%s' in '%s'", phrase, err);
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
}

/* ---- a full config --------------------------------------------------------- */

static const char full_config[] =
    "; every documented key, none left to its default\n"
    "[global]\n"
    "workers = 3\n"
    "maxconn = 5000\n"
    "stats_socket = /tmp/tcplb-unit.sock\n"
    "stats_http = 127.0.0.1:9100\n"
    "log = /tmp/tcplb-unit.log\n"
    "shutdown_timeout = 15s\n"
    "\n"
    "[pool other]\n"
    "server = o1 127.0.0.1:9101\n"
    "\n"
    "[listener web]\n"
    "bind = 127.0.0.1:8080\n"
    "bind = [::1]:8080\n"
    "pool = php\n"
    "mode = http\n"
    "\n"
    "[pool php]\n"                                        /* line 19 */
    "scheduler = roundrobin\n"
    "server = web1 127.0.0.1:9001 weight=1\n"            /* line 21 */
    "server = web2 127.0.0.1:9002 weight=2 maxconn=64\n"
    "server = web3 127.0.0.1:9003\n"
    "persist = source\n"
    "persist_timeout = 30m\n"
    "balance_factor = 125\n"
    "connect_timeout = 1500ms\n"
    "server_timeout = 45s\n"
    "idle_timeout = 2m\n"
    "retries = 4\n"
    "queue_timeout = 250\n"
    "health = http\n"
    "health_path = /ping\n"
    "health_interval = 3s\n"
    "health_timeout = 500ms\n"
    "rise = 5\n"
    "fall = 6\n";

static void test_full_config_global_values(void **state)
{
    (void)state;
    struct config *c = load(full_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->path, "t.ini");
    assert_int_equal(c->global.workers, 3);
    assert_int_equal(c->global.maxconn, 5000);
    assert_string_equal(c->global.stats_socket, "/tmp/tcplb-unit.sock");
    assert_string_equal(c->global.stats_http, "127.0.0.1:9100");
    assert_int_equal(c->global.stats_http_addr.ss.ss_family, AF_INET);
    assert_int_equal(c->global.log, LOG_FILE);
    assert_string_equal(c->global.log_path, "/tmp/tcplb-unit.log");
    assert_true(c->global.shutdown_timeout == 15.0);
    config_unref(c);
}

static void test_full_config_listener_values(void **state)
{
    (void)state;
    struct config *c = load(full_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    assert_int_equal(c->nlisteners, 1);
    struct listener_conf *l = &c->listeners[0];
    assert_string_equal(l->name, "web");
    assert_int_equal(l->line, 13);
    assert_int_equal(l->nbinds, 2);
    assert_string_equal(l->bind_texts[0], "127.0.0.1:8080");
    assert_string_equal(l->bind_texts[1], "[::1]:8080");
    assert_int_equal(l->binds[0].ss.ss_family, AF_INET);
    assert_int_equal(l->binds[1].ss.ss_family, AF_INET6);
    assert_int_equal(l->mode, LISTENER_HTTP);
    assert_string_equal(listener_mode_str(l->mode), "http");
    assert_string_equal(l->pool_name, "php");
    assert_int_equal(l->pool_line, 16);
    assert_non_null(l->counters);
    config_unref(c);
}

static void test_full_config_listener_pool_is_resolved(void **state)
{
    (void)state;
    struct config *c = load(full_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    assert_int_equal(c->npools, 2);
    /* "php" is the second pool: resolution is by name, not by position */
    assert_ptr_equal(c->listeners[0].pool, &c->pools[1]);
    assert_ptr_equal(config_find_pool(c, "php"), &c->pools[1]);
    assert_ptr_equal(config_find_pool(c, "other"), &c->pools[0]);
    assert_null(config_find_pool(c, "nope"));
    config_unref(c);
}

static void test_full_config_pool_values(void **state)
{
    (void)state;
    struct config *c = load(full_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    struct pool *p = config_find_pool(c, "php");
    assert_non_null(p);
    assert_int_equal(p->line, 19);
    assert_ptr_equal(p->sched, &sched_roundrobin);
    assert_non_null(p->sched_state);
    assert_int_equal(p->persist, PERSIST_SOURCE);
    assert_true(p->persist_timeout == 1800.0);
    assert_int_equal(p->balance_factor, 125);
    assert_true(p->connect_timeout == 1.5);
    assert_true(p->server_timeout == 45.0);
    assert_true(p->idle_timeout == 120.0);
    assert_int_equal(p->retries, 4);
    assert_true(p->queue_timeout == 0.25);
    assert_int_equal(p->health, HEALTH_HTTP);
    assert_string_equal(p->health_path, "/ping");
    assert_true(p->health_interval == 3.0);
    assert_true(p->health_timeout == 0.5);
    assert_int_equal(p->rise, 5);
    assert_int_equal(p->fall, 6);
    config_unref(c);
}

static void test_full_config_server_values(void **state)
{
    (void)state;
    static const struct {
        const char *name, *addr;
        unsigned weight, maxconn;
        uint16_t port;
    } want[] = {
        { "web1", "127.0.0.1:9001", 1, 0, 9001 },
        { "web2", "127.0.0.1:9002", 2, 64, 9002 },
        { "web3", "127.0.0.1:9003", 1, 0, 9003 },
    };
    struct config *c = load(full_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    struct pool *p = config_find_pool(c, "php");
    assert_int_equal(p->nservers, ARRAY_LEN(want));
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->addr.ss;
        assert_string_equal(s->name, want[i].name);
        assert_string_equal(s->addr_text, want[i].addr);
        assert_int_equal(sin->sin_family, AF_INET);
        assert_int_equal(ntohs(sin->sin_port), want[i].port);
        assert_int_equal(s->weight, want[i].weight);
        assert_int_equal(server_weight(s), want[i].weight);
        assert_int_equal(s->maxconn, want[i].maxconn);
        assert_int_equal(s->index, i);
        assert_int_equal(s->line, 21 + (int)i);
        assert_ptr_equal(s->pool, p);
        assert_int_equal(server_state(s), SERVER_UP);
        assert_int_equal(server_active(s), 0);
        assert_non_null(s->counters);
        assert_ptr_equal(pool_find_server(p, want[i].name), s);
    }
    assert_null(pool_find_server(p, "web4"));
    config_unref(c);
}

/* ---- defaults ------------------------------------------------------------------ */

static const char minimal_config[] =
    "[listener web]\n"
    "bind = 127.0.0.1:8080\n"
    "pool = p\n"
    "[pool p]\n"
    "server = a 127.0.0.1:9001\n";

static void test_absent_keys_take_defaults(void **state)
{
    (void)state;
    struct config *c = load(minimal_config);
    if (c == NULL)
        fail_msg("%s", config_err);
    assert_int_equal(c->global.workers, cpu_count());
    assert_int_equal(c->global.maxconn, 100000);
    assert_null(c->global.stats_socket);
    assert_null(c->global.stats_http);
    assert_int_equal(c->global.log, LOG_STDERR);
    assert_string_equal(c->global.log_path, "stderr");   /* the default, as written */
    assert_true(c->global.shutdown_timeout == 10.0);
    assert_int_equal(c->listeners[0].mode, LISTENER_TCP);
    assert_string_equal(listener_mode_str(c->listeners[0].mode), "tcp");

    struct pool *p = &c->pools[0];
    assert_ptr_equal(p->sched, &sched_roundrobin);
    assert_true(p->connect_timeout == 2.0);
    assert_true(p->server_timeout == 60.0);
    assert_true(p->idle_timeout == 300.0);
    assert_int_equal(p->retries, 2);
    assert_true(p->queue_timeout == 5.0);
    assert_int_equal(p->rise, 2);
    assert_int_equal(p->fall, 3);
    assert_int_equal(p->health, HEALTH_TCP);
    assert_string_equal(p->health_path, "/health");
    assert_int_equal(p->persist, PERSIST_NONE);
    assert_true(p->persist_timeout == 1800.0);
    assert_int_equal(p->balance_factor, 0);
    assert_int_equal(p->servers[0].weight, 1);
    assert_int_equal(p->servers[0].maxconn, 0);
    config_unref(c);
}

static void test_workers_auto_resolves_to_cpu_count(void **state)
{
    (void)state;
    struct config *c = load("[global]\n"
                            "workers = auto\n"
                            "[listener web]\n"
                            "bind = 127.0.0.1:8080\n"
                            "pool = p\n"
                            "[pool p]\n");
    if (c == NULL)
        fail_msg("%s", config_err);
    assert_true(c->global.workers >= 1);
    assert_int_equal(c->global.workers, cpu_count());
    config_unref(c);
}

/* ---- configs that load --------------------------------------------------------- */

struct good_case {
    const char *name;
    const char *text;
};

#define LISTENER_WEB "[listener web]\nbind = 127.0.0.1:8080\npool = p\n"

static const struct good_case good_cases[] = {
    { "bind is repeatable: two binds load",
      "[listener web]\nbind = 127.0.0.1:8080\nbind = 127.0.0.1:8081\npool = p\n[pool p]\n" },
    { "bind [::1]:80 loads",
      "[listener web]\nbind = [::1]:80\npool = p\n[pool p]\n" },
    { "bind localhost:80 loads",
      "[listener web]\nbind = localhost:80\npool = p\n[pool p]\n" },
    { "server [::1]:9001 and localhost:9002 load",
      LISTENER_WEB "[pool p]\nserver = a [::1]:9001\nserver = b localhost:9002\n" },
    { "port 65535 loads",
      "[listener web]\nbind = 127.0.0.1:65535\npool = p\n[pool p]\n" },
    { "server is repeatable",
      LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1\nserver = b 127.0.0.1:2\n" },
    { "the same key in two sections is not a duplicate",
      LISTENER_WEB "[pool p]\nretries = 1\n[pool q]\nretries = 1\n" },
    { "a pool without servers loads", LISTENER_WEB "[pool p]\n" },
    { "comments, blank lines and inline comments are ignored",
      "; a comment\n# another\n\n[listener web] ; inline\nbind = 127.0.0.1:8080 ; inline\n"
      "pool = p\n\n[pool p]\nserver = a 127.0.0.1:1 weight=2 ; inline\n" },
    { "CRLF line ends load",
      "[listener web]\r\nbind = 127.0.0.1:8080\r\npool = p\r\n[pool p]\r\n"
      "server = a 127.0.0.1:1\r\n" },
    { "weight 0 and weight 256 load",
      LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 weight=0\n"
      "server = b 127.0.0.1:2 weight=256\n" },
    { "retries 0 and 16 load",
      LISTENER_WEB "[pool p]\nretries = 0\n[pool q]\nretries = 16\n" },
    { "balance_factor 0 and 101 load",
      LISTENER_WEB "[pool p]\nbalance_factor = 0\n[pool q]\nbalance_factor = 101\n" },
    { "queue_timeout 0 loads", LISTENER_WEB "[pool p]\nqueue_timeout = 0\n" },
    { "log stderr and off load", "[global]\nlog = off\n" LISTENER_WEB "[pool p]\n" },
    { "log relative ./path loads", "[global]\nlog = ./tcplb.log\n" LISTENER_WEB "[pool p]\n" },
    { "workers 64 loads", "[global]\nworkers = 64\n" LISTENER_WEB "[pool p]\n" },
    { "a line of 198 characters loads",
      LISTENER_WEB "[pool p]\n;"
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
      "1234567890123456789012345678901234567\n" },
};

static void run_good_case(void **state)
{
    const struct good_case *gc = *state;
    struct config *c = load(gc->text);
    if (c == NULL)
        fail_msg("'%s' refused: %s", gc->name, config_err);
    config_unref(c);
}

static void test_log_stderr_then_off_values(void **state)
{
    (void)state;
    struct config *c = load("[global]\nlog = stderr\n" LISTENER_WEB "[pool p]\n");
    assert_non_null(c);
    assert_int_equal(c->global.log, LOG_STDERR);
    config_unref(c);
    c = load("[global]\nlog = off\n" LISTENER_WEB "[pool p]\n");
    assert_non_null(c);
    assert_int_equal(c->global.log, LOG_OFF);
    assert_string_equal(c->global.log_path, "off");
    config_unref(c);
}

/* ---- configs that are refused ----------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    int line;               /* 0: the message is "t.ini: ..." */
    const char *phrase;
};

static const struct bad_case bad_cases[] = {
    /* keys and sections */
    { "unknown key in [global]", "[global]\ncolour = blue\n",
      2, "unknown key 'colour' in [global]" },
    { "unknown key in [listener]", "[listener web]\nport = 80\n",
      2, "unknown key 'port' in [listener]" },
    { "unknown key in [pool]", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1\nstickiness = 1\n",
      6, "unknown key 'stickiness' in [pool]" },
    { "key outside any section", "workers = 2\n[global]\n",
      1, "key 'workers' outside of any section" },
    { "unknown section", "[global]\nworkers = 1\n[frontend web]\n",
      3, "unknown section [frontend web]" },
    { "section without a name", "[global]\n[pool]\n", 2, "needs one name" },
    { "section with two names", "[pool a b]\n", 1, "needs one name" },
    { "section name with a bad character", "[pool a/b]\n", 1, "needs one name" },
    { "duplicate [global]", "[global]\nworkers = 1\n[global]\n", 3, "duplicate [global]" },
    { "duplicate listener names the first line",
      LISTENER_WEB "[pool p]\n[listener web]\n", 5,
      "duplicate listener 'web' (first at line 1)" },
    { "duplicate pool names the first line",
      LISTENER_WEB "[pool p]\nretries = 1\n[pool p]\n", 6,
      "duplicate pool 'p' (first at line 4)" },
    { "duplicate server names the first line",
      LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1\nserver = a 127.0.0.1:2\n", 6,
      "duplicate server 'a' in pool 'p' (first at line 5)" },
    { "duplicate key in [global]", "[global]\nmaxconn = 10\nworkers = 1\nmaxconn = 20\n",
      4, "duplicate key 'maxconn' (first at line 2)" },
    { "duplicate key in [listener]", "[listener web]\npool = p\nbind = 127.0.0.1:1\npool = q\n",
      4, "duplicate key 'pool' (first at line 2)" },
    { "duplicate key in [pool]", LISTENER_WEB "[pool p]\nretries = 1\nretries = 2\n",
      6, "duplicate key 'retries' (first at line 5)" },
    { "empty value", "[global]\nmaxconn =\n", 2, "maxconn: empty value" },

    /* addresses */
    { "bind port 0", "[listener web]\nbind = 127.0.0.1:0\n", 2, "port must be 1-65535" },
    { "bind port 65536", "[listener web]\nbind = 127.0.0.1:65536\n", 2, "port must be 1-65535" },
    { "bind without port", "[listener web]\nbind = 127.0.0.1\n", 2, "expected host:port" },
    { "bind with empty port", "[listener web]\nbind = 127.0.0.1:\n", 2, "port must be 1-65535" },
    { "bind [::1 unterminated", "[listener web]\nbind = [::1\n", 2, "expected [IPv6]:port" },
    { "bind unresolvable host", "[listener web]\nbind = no-such-host.invalid:80\n",
      2, "cannot resolve 'no-such-host.invalid'" },
    { "server bad address", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:0\n",
      5, "server a: bad address" },
    { "server without address", LISTENER_WEB "[pool p]\nserver = a\n",
      5, "expected 'NAME ADDRESS" },
    { "server unknown option", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 weigth=2\n",
      5, "unknown option 'weigth'" },
    { "server option without =", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 heavy\n",
      5, "unknown option 'heavy'" },
    { "stats_http bad address", "[global]\nstats_http = 127.0.0.1\n",
      2, "stats_http: bad address" },

    /* values */
    { "unknown scheduler", LISTENER_WEB "[pool p]\nscheduler = fastest\n",
      5, "unknown scheduler 'fastest' (known: " },
    { "weight 257", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 weight=257\n",
      5, "weight must be 0-256" },
    { "weight not a number", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 weight=x\n",
      5, "weight must be 0-256" },
    { "server maxconn negative", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1 maxconn=-1\n",
      5, "maxconn must be 0-1000000" },
    { "retries 17", LISTENER_WEB "[pool p]\nretries = 17\n",
      5, "retries: '17' is not a whole number in 0-16" },
    { "balance_factor 50", LISTENER_WEB "[pool p]\nbalance_factor = 50\n",
      5, "balance_factor: must be 0 (off) or above 100" },
    { "balance_factor 100", LISTENER_WEB "[pool p]\nbalance_factor = 100\n",
      5, "balance_factor: must be 0 (off) or above 100" },
    { "bad duration", LISTENER_WEB "[pool p]\nconnect_timeout = 2x\n",
      5, "connect_timeout: bad duration '2x'" },
    { "zero server_timeout", LISTENER_WEB "[pool p]\nserver_timeout = 0s\n",
      5, "server_timeout: must be above zero" },
    { "bad shutdown_timeout", "[global]\nshutdown_timeout = soon\n",
      2, "shutdown_timeout: bad duration 'soon'" },
    { "bad mode", "[listener web]\nmode = udp\n", 2, "mode: expected tcp or http, got 'udp'" },
    { "bad log", "[global]\nlog = syslog\n", 2, "log: expected stderr, off or a file path" },
    { "bad persist", LISTENER_WEB "[pool p]\npersist = cookie\n",
      5, "persist: expected none or source" },
    { "bad health", LISTENER_WEB "[pool p]\nhealth = icmp\n",
      5, "health: expected tcp, http, expect or none" },
    { "health_path without /", LISTENER_WEB "[pool p]\nhealth_path = health\n",
      5, "health_path: must start with '/'" },
    { "bad escape in health_send", LISTENER_WEB "[pool p]\nhealth = expect\nhealth_send = a\\q\n",
      6, "health_send: unknown escape \\q at offset 1" },
    { "half a \\x in health_expect", LISTENER_WEB "[pool p]\nhealth_expect = \\x4\n",
      5, "health_expect: \\x needs two hex digits" },
    { "log_format", "[global]\nlog_format = xml\n", 2,
      "log_format: expected logfmt or json, got 'xml'" },
    { "tcp_keepalive_idle under a second", LISTENER_WEB "[pool p]\ntcp_keepalive_idle = 500ms\n",
      5, "tcp_keepalive_idle: must be whole seconds from 1s to 32767s, got '500ms'" },
    { "tcp_keepalive_interval over the kernel's", LISTENER_WEB
      "[pool p]\ntcp_keepalive_interval = 40000s\n",
      5, "tcp_keepalive_interval: must be whole seconds from 1s to 32767s" },
    { "tcp_keepalive_idle not whole", LISTENER_WEB "[pool p]\ntcp_keepalive_idle = 1.5s\n",
      5, "tcp_keepalive_idle: must be whole seconds" },
    { "tcp_keepalive_count 0", LISTENER_WEB "[pool p]\ntcp_keepalive_count = 0\n",
      5, "tcp_keepalive_count: '0' is not a whole number in 1-127" },
    { "tcp_keepalive_count 128", LISTENER_WEB "[pool p]\ntcp_keepalive_count = 128\n",
      5, "tcp_keepalive_count: '128' is not a whole number in 1-127" },
    { "tcp_keepalive maybe", LISTENER_WEB "[pool p]\ntcp_keepalive = maybe\n",
      5, "tcp_keepalive: expected" },
    { "check_port 0", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:80 check_port=0\n",
      5, "server a: check_port must be 1-65535, got '0'" },
    { "source not an IP", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:80 source=here\n",
      5, "server a: source=here: 'here' is not an IPv4 or IPv6 address" },
    { "source not of this machine", LISTENER_WEB
      "[pool p]\nserver = a 127.0.0.1:80 source=192.0.2.1\n",
      5, "server a: source=192.0.2.1: cannot bind it" },
    { "source of the other family", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:80 source=::1\n",
      5, "server a: source is IPv6 but the server's address is IPv4" },
    { "backup=1", LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:80 backup=1\n",
      5, "server a: unknown option 'backup'" },
    { "rise 0", LISTENER_WEB "[pool p]\nrise = 0\n", 5, "rise: '0' is not a whole number in 1-100" },
    { "workers 0", "[global]\nworkers = 0\n", 2, "workers: '0' is not a whole number in 1-64" },
    { "workers 65", "[global]\nworkers = 65\n", 2, "workers: '65' is not a whole number in 1-64" },
    { "maxconn 0", "[global]\nmaxconn = 0\n", 2, "maxconn: '0' is not a whole number" },
    { "pool name with a bad character", "[listener web]\npool = a/b\n",
      2, "pool: 'a/b' is not a valid pool name" },
    { "health_timeout above health_interval is reported on the pool line",
      LISTENER_WEB "[pool p]\nhealth_interval = 1s\nhealth_timeout = 2s\n",
      4, "health_timeout must not exceed health_interval" },

    /* whole-file checks */
    { "listener without pool", "[listener web]\nbind = 127.0.0.1:8080\n[pool p]\n",
      1, "listener 'web' has no 'pool'" },
    { "listener without bind", "[listener web]\npool = p\n[pool p]\n",
      1, "listener 'web' has no 'bind' address" },
    { "listener naming an undefined pool is reported on its pool line",
      LISTENER_WEB "[listener api]\nbind = 127.0.0.1:8081\npool = nope\n[pool p]\n",
      6, "listener 'api': pool 'nope' does not exist" },
    { "no listener at all", "[global]\nworkers = 1\n[pool p]\n",
      0, "no [listener NAME] section" },
    { "empty file", "", 0, "no [listener NAME] section" },

    /* syntax */
    { "a line without =", LISTENER_WEB "garbage\n", 4, "syntax error" },
    { "an unterminated section header", LISTENER_WEB "[pool p\n", 4, "syntax error" },
};

static void run_bad_case(void **state)
{
    const struct bad_case *bc = *state;
    struct config *c = load(bc->text);
    if (c != NULL) {
        config_unref(c);
        fail_msg("'%s' loaded but should be refused", bc->name);
    }
    check_error(config_err, "t.ini", bc->line, bc->phrase);
}

/* A line longer than inih's buffer: reported on its own line, whatever
 * follows. Built at run time to keep the table readable. */
static void test_line_over_200_chars_is_refused_on_its_line(void **state)
{
    (void)state;
    static const size_t lengths[] = { 200, 201, 250, 1000 };
    for (size_t i = 0; i < ARRAY_LEN(lengths); i++) {
        char *text = malloc(lengths[i] + 256);
        assert_non_null(text);
        int n = sprintf(text, LISTENER_WEB "[pool p]\n;");        /* line 5 */
        memset(text + n, 'x', lengths[i] - 1);
        strcpy(text + n + lengths[i] - 1, "\nserver = a 127.0.0.1:1\n");
        struct config *c = load(text);
        free(text);
        if (c != NULL) {
            config_unref(c);
            fail_msg("a line of %zu characters loaded", lengths[i]);
        }
        check_error(config_err, "t.ini", 5, "line too long");
    }
}

/* ---- regressions: indentation, BOM, which error wins, line limits ------------------ */

/* inih (built with INI_ALLOW_MULTILINE) reads an indented line as the
 * continuation of the previous key, so indented keys are misread. */
static void test_indented_keys_load(void **state)
{
    (void)state;
    struct config *c = load("[global]\n"
                            "    workers = 2\n"
                            "    maxconn = 50\n"
                            "[listener web]\n"
                            "    bind = 127.0.0.1:8080\n"
                            "    pool = p\n"
                            "  [pool p]\n"
                            "    server = a 127.0.0.1:9001\n"
                            "    server = b 127.0.0.1:9002\n");
    if (c == NULL)
        fail_msg("indented config refused: %s", config_err);
    assert_int_equal(c->global.maxconn, 50);
    assert_int_equal(c->pools[0].nservers, 2);
    config_unref(c);
}

/* The first error in the file is the one to report: a syntax error must not
 * be hidden by a later semantic error. */
static void test_syntax_error_is_reported_before_a_later_error(void **state)
{
    (void)state;
    struct config *c = load(LISTENER_WEB "[pool p]\ngarbage\nretries = 99\n");
    assert_null(c);
    check_error(config_err, "t.ini", 5, "syntax error");
}

static void test_unterminated_header_is_reported_before_a_later_error(void **state)
{
    (void)state;
    struct config *c = load("[listener a]\n"
                            "bind = 127.0.0.1:8080\n"
                            "pool = p\n"
                            "[listener b\n"          /* line 4: the real error */
                            "bind = 127.0.0.1:8081\n"
                            "pool = p\n"
                            "[pool p]\n");
    assert_null(c);
    check_error(config_err, "t.ini", 4, "syntax error");
}

/* An overlong key line is cut before the handler sees it; the handler's
 * complaint about the cut value hides the real problem. */
static void test_overlong_key_line_says_line_too_long(void **state)
{
    (void)state;
    char text[512];
    int n = sprintf(text, "[listener web]\nbind = 127.0.0.1:8080\npool = ");
    memset(text + n, 'p', 250);
    strcpy(text + n + 250, "\n");
    struct config *c = load(text);
    assert_null(c);
    check_error(config_err, "t.ini", 3, "line too long");
}

/* The reader accepts 199 characters (INI_MAX_LINE - 1) but the message
 * promises 198. */
static void test_line_limit_in_message_is_the_limit_applied(void **state)
{
    (void)state;
    char text[512];
    int n = sprintf(text, LISTENER_WEB "[pool p]\n;");
    memset(text + n, 'x', 198);                  /* a line of 199: loads */
    strcpy(text + n + 198, "\n");
    struct config *c = load(text);
    if (c == NULL)
        fail_msg("199 characters refused: %s", config_err);
    config_unref(c);
    memset(text + n, 'x', 199);                  /* a line of 200: refused */
    strcpy(text + n + 199, "\n");
    assert_null(load(text));
    check_error(config_err, "t.ini", 5, "at most 199 characters");
}

/* inih skips a UTF-8 byte order mark; the reader's own section detection
 * does not, so the first section header is missed. */
static void test_utf8_bom_is_ignored(void **state)
{
    (void)state;
    struct config *c = load("\xEF\xBB\xBF" LISTENER_WEB "[pool p]\n");
    if (c == NULL)
        fail_msg("config with a BOM refused: %s", config_err);
    config_unref(c);
}

/* ---- config_load (files) ------------------------------------------------------------ */

static void test_config_load_missing_file(void **state)
{
    (void)state;
    char err[CONFIG_ERR_LEN];
    struct config *c = config_load("/nonexistent-dir/tcplb.ini", err, sizeof(err));
    assert_null(c);
    check_error(err, "/nonexistent-dir/tcplb.ini", 0, "cannot open");
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/tcplb-unit-XXXXXX.ini");
    assert_non_null(path);
    int fd = mkstemps(path, 4);
    assert_int_not_equal(fd, -1);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_config_load_file_values(void **state)
{
    (void)state;
    char err[CONFIG_ERR_LEN];
    char *path = write_temp(full_config);
    struct config *c = config_load(path, err, sizeof(err));
    unlink(path);
    if (c == NULL)
        fail_msg("%s", err);
    assert_string_equal(c->path, path);
    assert_int_equal(c->global.workers, 3);
    assert_int_equal(config_find_pool(c, "php")->nservers, 3);
    config_unref(c);
    free(path);
}

static void test_config_load_file_error_names_file_and_line(void **state)
{
    (void)state;
    char err[CONFIG_ERR_LEN];
    char *path = write_temp(LISTENER_WEB "[pool p]\nserver = a 127.0.0.1:1\nretries = 99\n");
    struct config *c = config_load(path, err, sizeof(err));
    unlink(path);
    assert_null(c);
    check_error(err, path, 6, "retries");
    free(path);
}

static void test_config_load_file_line_too_long(void **state)
{
    (void)state;
    char err[CONFIG_ERR_LEN];
    char text[600];
    int n = sprintf(text, LISTENER_WEB ";");
    memset(text + n, 'y', 300);
    strcpy(text + n + 300, "\n[pool p]\n");
    char *path = write_temp(text);
    struct config *c = config_load(path, err, sizeof(err));
    unlink(path);
    assert_null(c);
    check_error(err, path, 4, "line too long");
    free(path);
}

/* ---- durations --------------------------------------------------------------------- */

static void test_parse_duration_accepts_units(void **state)
{
    (void)state;
    static const struct { const char *text; double seconds; } cases[] = {
        { "500ms", 0.5 }, { "2s", 2 }, { "5m", 300 }, { "1h", 3600 },
        { "250", 0.25 }, { "1.5s", 1.5 }, { "0", 0 }, { "0s", 0 },
        { "30m", 1800 }, { "100ms", 0.1 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        double v = -1;
        if (config_parse_duration(cases[i].text, &v) != 0)
            fail_msg("'%s' refused", cases[i].text);
        if (v < cases[i].seconds - 1e-9 || v > cases[i].seconds + 1e-9)
            fail_msg("'%s' gave %g, want %g", cases[i].text, v, cases[i].seconds);
    }
}

static void test_parse_duration_rejects_malformed(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "", "s", "-1s", "5parsecs", "2 s", "10d", "0x10s", "1e3", "1.5.5s", "infs", " 2s", "2s ", "ms", ".5s",
        "2ms5", "9000h",
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        double v = 42;
        if (config_parse_duration(cases[i], &v) != -1)
            fail_msg("'%s' accepted as %g", cases[i], v);
        assert_true(v == 42);   /* untouched on error */
    }
}

/* ---- reference count ------------------------------------------------------------------ */

/* Run under ASan this proves the second unref frees once and the first does
 * not free at all. */
static void test_ref_then_two_unrefs_frees_once(void **state)
{
    (void)state;
    struct config *c = load(minimal_config);
    assert_non_null(c);
    assert_ptr_equal(config_ref(c), c);
    assert_int_equal(c->refs, 2);
    config_unref(c);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->pools[0].servers[0].name, "a");   /* still alive */
    config_unref(c);
}

static void test_unref_null_is_harmless(void **state)
{
    (void)state;
    config_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config_global_values),
        cmocka_unit_test(test_full_config_listener_values),
        cmocka_unit_test(test_full_config_listener_pool_is_resolved),
        cmocka_unit_test(test_full_config_pool_values),
        cmocka_unit_test(test_full_config_server_values),
        cmocka_unit_test(test_absent_keys_take_defaults),
        cmocka_unit_test(test_workers_auto_resolves_to_cpu_count),
        cmocka_unit_test(test_log_stderr_then_off_values),
        cmocka_unit_test(test_line_over_200_chars_is_refused_on_its_line),
        cmocka_unit_test(test_config_load_missing_file),
        cmocka_unit_test(test_config_load_file_values),
        cmocka_unit_test(test_config_load_file_error_names_file_and_line),
        cmocka_unit_test(test_config_load_file_line_too_long),
        cmocka_unit_test(test_parse_duration_accepts_units),
        cmocka_unit_test(test_parse_duration_rejects_malformed),
        cmocka_unit_test(test_ref_then_two_unrefs_frees_once),
        cmocka_unit_test(test_unref_null_is_harmless),
    };
    /* One named cmocka case per table row, so a failure names its row. */
    struct CMUnitTest good[ARRAY_LEN(good_cases)];
    for (size_t i = 0; i < ARRAY_LEN(good_cases); i++)
        good[i] = (struct CMUnitTest){ .name = good_cases[i].name,
                                       .test_func = run_good_case,
                                       .initial_state = (void *)&good_cases[i] };
    struct CMUnitTest bad[ARRAY_LEN(bad_cases)];
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++)
        bad[i] = (struct CMUnitTest){ .name = bad_cases[i].name,
                                      .test_func = run_bad_case,
                                      .initial_state = (void *)&bad_cases[i] };

    const struct CMUnitTest known_bugs[] = {
        cmocka_unit_test(test_indented_keys_load),
        cmocka_unit_test(test_syntax_error_is_reported_before_a_later_error),
        cmocka_unit_test(test_unterminated_header_is_reported_before_a_later_error),
        cmocka_unit_test(test_overlong_key_line_says_line_too_long),
        cmocka_unit_test(test_line_limit_in_message_is_the_limit_applied),
        cmocka_unit_test(test_utf8_bom_is_ignored),
    };

    int failed = cmocka_run_group_tests_name("config", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("config loads", good, NULL, NULL);
    failed += cmocka_run_group_tests_name("config refused", bad, NULL, NULL);
    failed += cmocka_run_group_tests_name("config known bugs", known_bugs, NULL, NULL);
    return failed ? 1 : 0;
}
