/* fuzz_expect.c — libFuzzer target for health = expect: check_unescape()
 * over health_send / health_expect text (from the config file), and
 * check_expect_match() / check_printable() over what a server answers.
 * Input: byte 0 is the length of the escaped text that follows (cut to
 * what is there); the rest is the server's answer. Besides memory errors it
 * checks what health_probe.c relies on:
 *   - unescaped bytes fit the buffer and the length is within it;
 *   - MATCH iff the answer starts with the expected bytes, MORE iff the
 *     answer is a proper prefix of them, MISMATCH otherwise;
 *   - check_printable() writes a NUL-terminated, printable string within
 *     its buffer, and unescaping it gives back the bytes it showed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t tlen = data[0] < size - 1 ? data[0] : size - 1;
    char *text = malloc(tlen + 1);
    if (text == NULL)
        abort();
    memcpy(text, data + 1, tlen);
    text[tlen] = '\0';                 /* the config hands over a C string */
    const uint8_t *answer = data + 1 + tlen;
    size_t alen = size - 1 - tlen;

    unsigned char expect[CHECK_EXPECT_MAX];
    size_t elen = (size_t)-1;
    char err[160];
    if (check_unescape(text, expect, sizeof(expect), &elen, err, sizeof(err)) == 0) {
        if (elen > sizeof(expect))
            abort();
        enum check_expect r = check_expect_match(answer, alen, expect, elen);
        size_t n = alen < elen ? alen : elen;
        int same = memcmp(answer, expect, n) == 0;
        enum check_expect want = !same ? CHECK_EXPECT_MISMATCH
                                 : alen >= elen ? CHECK_EXPECT_MATCH : CHECK_EXPECT_MORE;
        if (r != want)
            abort();
    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }
    free(text);

    /* what an event shows of the answer, and back */
    char shown[80];
    memset(shown, 'Z', sizeof(shown));
    check_printable(answer, alen, shown, sizeof(shown));
    size_t slen = strnlen(shown, sizeof(shown));
    if (slen == sizeof(shown))
        abort();
    for (size_t i = 0; i < slen; i++)
        if (shown[i] < 0x20 || shown[i] >= 0x7f)
            abort();
    unsigned char back[sizeof(shown)];
    size_t blen = 0;
    if (check_unescape(shown, back, sizeof(back), &blen, err, sizeof(err)) != 0)
        abort();
    if (blen > alen || memcmp(back, answer, blen) != 0)
        abort();
    return 0;
}
