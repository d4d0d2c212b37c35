/* fuzz_config.c — libFuzzer target for the config parser: the input is the
 * INI text given to config_load_string(). A config that loads is released
 * again; one that does not must say why. Host names never reach DNS (see
 * fuzz_resolve.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char err[CONFIG_ERR_LEN] = "";
    struct config *c = config_load_string("fuzz.ini", text, err, sizeof(err));
    /* a refused config always comes with a message */
    if (c == NULL && err[0] == '\0')
        abort();
    config_unref(c);
    free(text);
    return 0;
}
