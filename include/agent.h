/* agent.h — the line an agent check reads, in the words of HAProxy's agent
 * protocol, so the agents people already run work unchanged: "75%",
 * "drain", "maint", "up"/"ready", "down", "# free text", in any order and
 * mixed ("up 50%", "drain # deploy"), separated by spaces, tabs or commas.
 * Pure: no I/O, any input is safe. health.c runs the checks and applies
 * the result. */
#ifndef TCPLB_AGENT_H
#define TCPLB_AGENT_H

#include <stddef.h>

/* At most this much of an answer is read; a line longer is refused. */
#define AGENT_LINE_MAX 1024

enum agent_state {
    AGENT_STATE_NONE = 0,   /* the line sets no state */
    AGENT_STATE_READY,      /* up / ready: clear what the agent set */
    AGENT_STATE_DRAIN,
    AGENT_STATE_MAINT,
    AGENT_STATE_DOWN,
};
const char *agent_state_str(enum agent_state s);

struct agent_result {
    int weight_pct;             /* 0..100 (more is capped), -1: not given */
    enum agent_state state;     /* the last state word of the line */
    char reason[128];           /* after '#', trimmed; "" when none */
    int unknown;                /* words it did not know (ignored) */
};

enum agent_parse {
    AGENT_MORE = 0,             /* no line end yet: read more */
    AGENT_DONE,                 /* *out holds the line's result */
    AGENT_BAD,                  /* longer than AGENT_LINE_MAX, or a NUL */
};

/* Parses the first line of buf[0..len) (ending in LF, CRLF, or the
 * connection's end when <eof>). */
enum agent_parse agent_parse(const char *buf, size_t len, int eof,
                             struct agent_result *out);

#endif
