/* fuzz_resolve.c — keeps the fuzz targets off the network. They are linked
 * with -Wl,--wrap=getaddrinfo, so net.c's getaddrinfo() lands here: numeric
 * addresses and "localhost" resolve as usual, any other name fails at once
 * (EAI_NONAME) instead of asking DNS, which costs about 175 ms a name on the
 * build machine and would make an input's outcome depend on the network. */
#include <netdb.h>
#include <stddef.h>
#include <string.h>

int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);

int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo h;
    if (hints != NULL)
        h = *hints;
    else
        memset(&h, 0, sizeof(h));
    if (node == NULL || strcmp(node, "localhost") != 0)
        h.ai_flags |= AI_NUMERICHOST;
    return __real_getaddrinfo(node, service, &h, res);
}
