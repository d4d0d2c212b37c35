/* agent.c — the agent check's line parser (see agent.h). Words are
 * case-insensitive, as HAProxy reads them; an unknown word is counted and
 * ignored, so an agent newer than tcplb does not break its checks. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "agent.h"
#include "util.h"

const char *agent_state_str(enum agent_state s)
{
    switch (s) {
    case AGENT_STATE_NONE: return "none";
    case AGENT_STATE_READY: return "ready";
    case AGENT_STATE_DRAIN: return "drain";
    case AGENT_STATE_MAINT: return "maint";
    case AGENT_STATE_DOWN: return "down";
    }
    return "?";
}

/* The state words, with HAProxy's synonyms. */
static const struct {
    const char *word;
    enum agent_state state;
} agent_words[] = {
    { "up", AGENT_STATE_READY },
    { "ready", AGENT_STATE_READY },
    { "drain", AGENT_STATE_DRAIN },
    { "maint", AGENT_STATE_MAINT },
    { "down", AGENT_STATE_DOWN },
    { "fail", AGENT_STATE_DOWN },
    { "stopped", AGENT_STATE_DOWN },
};

static int agent_separator(char c)
{
    return c == ' ' || c == '\t' || c == ',';
}

/* "75%" -> 75 (capped at 100); -1 when the word is not a percentage. */
static int agent_percent(const char *w, size_t n)
{
    if (n < 2 || w[n - 1] != '%')
        return -1;
    int v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (!isdigit((unsigned char)w[i]) || i >= 6)
            return -1;
        v = v * 10 + (w[i] - '0');
    }
    return v > 100 ? 100 : v;
}

static void agent_word(const char *w, size_t n, struct agent_result *out)
{
    int pct = agent_percent(w, n);
    if (pct >= 0) {
        out->weight_pct = pct;
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(agent_words); i++)
        if (strlen(agent_words[i].word) == n && strncasecmp(w, agent_words[i].word, n) == 0) {
            out->state = agent_words[i].state;
            return;
        }
    out->unknown++;
}

enum agent_parse agent_parse(const char *buf, size_t len, int eof,
                             struct agent_result *out)
{
    size_t scan = len < AGENT_LINE_MAX ? len : AGENT_LINE_MAX;
    const char *nl = memchr(buf, '\n', scan);
    if (memchr(buf, '\0', nl ? (size_t)(nl - buf) : scan) != NULL)
        return AGENT_BAD;
    if (nl == NULL) {
        if (len >= AGENT_LINE_MAX)
            return AGENT_BAD;
        if (!eof)
            return AGENT_MORE;
    }
    size_t end = nl ? (size_t)(nl - buf) : len;
    if (end > 0 && buf[end - 1] == '\r')
        end--;

    memset(out, 0, sizeof(*out));
    out->weight_pct = -1;
    size_t i = 0;
    while (i < end) {
        while (i < end && agent_separator(buf[i]))
            i++;
        if (i == end)
            break;
        if (buf[i] == '#') {
            /* the rest of the line is the reason */
            i++;
            while (i < end && isspace((unsigned char)buf[i]))
                i++;
            size_t r = end;
            while (r > i && isspace((unsigned char)buf[r - 1]))
                r--;
            size_t n = r - i < sizeof(out->reason) - 1 ? r - i : sizeof(out->reason) - 1;
            for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char)buf[i + k];
                out->reason[k] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
            }
            out->reason[n] = '\0';
            break;
        }
        size_t start = i;
        while (i < end && !agent_separator(buf[i]) && buf[i] != '#')
            i++;
        agent_word(buf + start, i - start, out);
    }
    return AGENT_DONE;
}
