/* test_hash.c — hash.c: fixed values (every tcplb must place a key the same
 * way, so the function may never change silently) and a spread of
 * consecutive keys over the range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hash.h"

static void test_fixed_values(void **state)
{
    (void)state;
    assert_int_equal(hash_bytes("", 0, 0), 0xefd01f60ba992926ULL);
    assert_int_equal(hash_bytes("web1", 4, 0x6f666673ULL), 0x60542b6db8fd190eULL);
    assert_int_equal(hash_bytes("\x0a\x00\x00\x01", 4, 0x636c6965ULL),
                     0xff61d5b0ff54d063ULL);
}

/* Consecutive 4-byte keys land evenly in 16 buckets of the top bits. */
static void test_consecutive_keys_spread(void **state)
{
    (void)state;
    unsigned buckets[16] = { 0 };
    for (uint32_t i = 0; i < 16000; i++) {
        uint8_t key[4] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
        buckets[hash_bytes(key, 4, 0) >> 60]++;
    }
    for (int b = 0; b < 16; b++)
        if (buckets[b] < 850 || buckets[b] > 1150)
            fail_msg("bucket %d holds %u of 16000", b, buckets[b]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_values),
        cmocka_unit_test(test_consecutive_keys_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
