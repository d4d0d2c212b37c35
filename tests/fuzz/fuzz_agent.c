/* fuzz_agent.c — libFuzzer target for the agent check's line parser,
 * agent_parse(): the bytes an agent answers. Besides memory errors, checks
 * that a result is in range (weight -1..100, a known state, a bounded
 * reason without control bytes) and that every shorter read of a line that
 * parses says MORE (the checker can trust MORE to mean "read on"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct agent_result r;
    for (int eof = 0; eof < 2; eof++) {
        enum agent_parse p = agent_parse(buf, size, eof, &r);
        if (p != AGENT_DONE)
            continue;
        if (r.weight_pct < -1 || r.weight_pct > 100 || r.state > AGENT_STATE_DOWN ||
            r.unknown < 0)
            abort();
        size_t n = strnlen(r.reason, sizeof(r.reason));
        if (n == sizeof(r.reason))
            abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)r.reason[i] < 0x20)
                abort();
        const char *nl = memchr(buf, '\n', size);
        if (!eof && nl != NULL) {
            /* every cut before the line end waits for more */
            size_t line = (size_t)(nl - buf);
            for (size_t k = 0; k < line; k++)
                if (agent_parse(buf, k, 0, &r) != AGENT_MORE)
                    abort();
        }
    }
    return 0;
}
