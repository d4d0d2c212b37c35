/* fuzz_http_check.c — libFuzzer target for the HTTP health check's status
 * line parser, check_http_parse(), over the bytes a server answered.
 * Besides memory errors it checks what health.c relies on: a parsed status
 * is a three-digit code, and every shorter read of an answer that parses
 * (the status line arriving in pieces) asks for more instead of calling it
 * bad. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses the first n bytes from a buffer of exactly n bytes, so that the
 * address sanitizer sees any read past them. */
static enum check_http_parse fuzz_parse_prefix(const uint8_t *data, size_t n, int *status)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, n);
    enum check_http_parse r = check_http_parse(copy, n, status);
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int status = -1;
    if (check_http_parse((const char *)data, size, &status) != CHECK_HTTP_DONE)
        return 0;
    if (status < 100 || status > 999)
        abort();
    (void)check_http_status_ok(status);

    const uint8_t *eol = memchr(data, '\n', size);
    if (eol == NULL)
        abort();
    size_t line = (size_t)(eol - data) + 1;
    for (size_t n = 0; n < line; n++) {
        int s = -1;
        if (fuzz_parse_prefix(data, n, &s) != CHECK_HTTP_MORE)
            abort();
    }
    int again = -1;
    if (fuzz_parse_prefix(data, line, &again) != CHECK_HTTP_DONE || again != status)
        abort();
    return 0;
}
