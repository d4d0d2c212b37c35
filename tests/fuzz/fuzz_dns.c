/* fuzz_dns.c — libFuzzer target for discover.c's answer parsers: what a
 * name server answers a pool's discovery. Byte 0 picks the parser (byte 0
 * % 3: discover_parse_srv(), discover_parse_addrs() for A, for AAAA) and
 * the limit (byte 0 / 3 % 6 into 0, 1, 2, 3, 8, 64); the rest is the DNS
 * message. Besides memory errors, checks against c-ares' own parse of the
 * same message: SRV: at most max, the records of the lowest priority among
 * those worth following (port above 0, a valid target) and only them, in
 * the answer's order, weights 1..256 that keep the order of the answer's
 * and are the answer's when none of that priority is above 256; A/AAAA: the
 * records counted, then deduplicated into the set up to max with the port,
 * weight and family asked, the set untouched when the answer does not
 * parse, and a second parse into the same set adds nothing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "discover.h"
#include "membership.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_T_A 1
#define FUZZ_T_AAAA 28
#define FUZZ_SET 64             /* the largest max below */

static const size_t fuzz_max[] = { 0, 1, 2, 3, 8, FUZZ_SET };

/* What discover.c follows: 1..DISCOVER_NAME_MAX of letters, digits, '-',
 * '.', '_' (written again here, so that a change there is noticed). */
static int fuzz_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DISCOVER_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return 0;
    return 1;
}

static int fuzz_followed(const struct ares_srv_reply *r)
{
    return r->port > 0 && fuzz_valid_name(r->host);
}

static void fuzz_srv(const unsigned char *msg, int len, size_t max)
{
    struct discover_srv out[FUZZ_SET + 1];
    memset(out, 0x5a, sizeof(out));
    int r = discover_parse_srv(msg, len, out, max);

    struct ares_srv_reply *list = NULL;
    int parsed = ares_parse_srv_reply(msg, len, &list) == ARES_SUCCESS;
    if (!parsed) {
        if (r != -1)
            abort();
        return;
    }
    if (r < 0 || (size_t)r > max)
        abort();
    /* the record beyond max was not written */
    struct discover_srv untouched;
    memset(&untouched, 0x5a, sizeof(untouched));
    if (memcmp(&out[r], &untouched, sizeof(untouched)) != 0)
        abort();

    unsigned best = 65536;
    for (const struct ares_srv_reply *s = list; s != NULL; s = s->next)
        if (fuzz_followed(s) && s->priority < best)
            best = s->priority;
    unsigned all_small = 1;
    for (const struct ares_srv_reply *s = list; s != NULL; s = s->next)
        if (s->priority == best && s->weight > SERVER_WEIGHT_MAX)
            all_small = 0;

    unsigned raw[FUZZ_SET];
    size_t k = 0;
    for (const struct ares_srv_reply *s = list; s != NULL && k < max; s = s->next) {
        if (s->priority != best || !fuzz_followed(s))
            continue;
        if (k >= (size_t)r)
            abort();            /* one worth following is missing */
        const struct discover_srv *o = &out[k];
        if (strnlen(o->target, sizeof(o->target)) == sizeof(o->target) ||
            strcmp(o->target, s->host) != 0 || !fuzz_valid_name(o->target))
            abort();
        if (o->port != s->port || o->port < 1 || o->port > 65535)
            abort();
        if (o->priority != best)
            abort();
        if (o->weight < 1 || o->weight > SERVER_WEIGHT_MAX)
            abort();
        if (all_small && o->weight != (s->weight ? s->weight : 1u))
            abort();
        raw[k] = s->weight;
        k++;
    }
    if (k != (size_t)r)
        abort();
    /* scaling keeps the order of the answer's weights */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            if (raw[i] >= raw[j] && out[i].weight < out[j].weight)
                abort();
    ares_free_data(list);
}

static int fuzz_same_addr(const struct net_addr *a, const struct net_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static void fuzz_addrs(const unsigned char *msg, int len, int type, size_t max,
                       unsigned port, unsigned weight)
{
    struct membership_entry set[FUZZ_SET + 1];
    memset(set, 0x5a, sizeof(set));
    const struct membership_entry before = set[0];
    size_t n = 0;
    int r = discover_parse_addrs(msg, len, type, port, weight, set, &n, max);

    /* c-ares' reading of the same message */
    struct ares_addrttl v4[64];
    struct ares_addr6ttl v6[64];
    int count = 64;
    int parsed = type == FUZZ_T_A
                     ? ares_parse_a_reply(msg, len, NULL, v4, &count) == ARES_SUCCESS
                     : ares_parse_aaaa_reply(msg, len, NULL, v6, &count) == ARES_SUCCESS;
    if (!parsed) {
        if (r != -1 || n != 0 || memcmp(&set[0], &before, sizeof(before)) != 0)
            abort();
        return;
    }
    if (r != count || n > max || n > (size_t)count)
        abort();

    /* the expected set: the records in order, the first of each address */
    size_t want = 0;
    for (int i = 0; i < count; i++) {
        struct net_addr a;
        memset(&a, 0, sizeof(a));
        if (type == FUZZ_T_A) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            sin->sin_addr = v4[i].ipaddr;
            a.len = sizeof(*sin);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            memcpy(&sin6->sin6_addr, &v6[i].ip6addr, sizeof(sin6->sin6_addr));
            a.len = sizeof(*sin6);
        }
        int seen = 0;
        for (size_t j = 0; j < want && !seen; j++)
            seen = fuzz_same_addr(&set[j].addr, &a);
        if (seen)
            continue;
        if (want == max)
            break;
        if (want >= n || !fuzz_same_addr(&set[want].addr, &a) || set[want].weight != weight)
            abort();
        want++;
    }
    if (want != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&set[i].addr.ss;
        if (sa->sa_family != (type == FUZZ_T_A ? AF_INET : AF_INET6))
            abort();
        for (size_t j = i + 1; j < n; j++)
            if (fuzz_same_addr(&set[i].addr, &set[j].addr))
                abort();
    }
    /* nothing past n was written */
    if (memcmp(&set[n], &before, sizeof(before)) != 0)
        abort();

    /* the same answer again (a second SRV target with these addresses):
     * nothing new */
    size_t again = n;
    if (discover_parse_addrs(msg, len, type, port, weight, set, &again, max) != r ||
        again != n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned pick = data[0] % 3;
    size_t max = fuzz_max[(data[0] / 3) % (sizeof(fuzz_max) / sizeof(fuzz_max[0]))];
    const unsigned char *msg = data + 1;
    int len = (int)(size - 1);
    /* a port 1..65535 and a weight 1..256 of what byte 0 was */
    unsigned port = 1u + (unsigned)data[0] * 257u % 65535u;
    unsigned weight = 1u + data[0];
    switch (pick) {
    case 0:
        fuzz_srv(msg, len, max);
        break;
    case 1:
        fuzz_addrs(msg, len, FUZZ_T_A, max, port, weight);
        break;
    default:
        fuzz_addrs(msg, len, FUZZ_T_AAAA, max, port, weight);
        break;
    }
    return 0;
}
