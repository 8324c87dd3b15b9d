/* slow_lookup: an LD_PRELOAD library for tests of programs that look up a name.
 * getaddrinfo of "slow.test" waits SYN_TEST_LOOKUP_MS (default 1000) and then
 * answers as for 127.0.0.1, so a test can make DNS as slow as it likes without a
 * network; every other name goes to the C library's (or the sanitizer's) own. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOW_NAME "slow.test"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*next)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    *(void **)&next = dlsym(RTLD_NEXT, "getaddrinfo");
    if (!next)
        return EAI_SYSTEM;
    bool numeric = hints && (hints->ai_flags & AI_NUMERICHOST);
    if (node && !numeric && strcmp(node, SLOW_NAME) == 0) {
        const char *ms_text = getenv("SYN_TEST_LOOKUP_MS");
        long ms = ms_text ? atol(ms_text) : 1000;
        struct timespec wait = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        while (nanosleep(&wait, &wait) != 0) {
        }
        node = "127.0.0.1";
    }
    return next(node, service, hints, res);
}
