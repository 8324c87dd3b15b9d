/* hello: a bare libmicrohttpd server answering every request with one fixed
 * JSON body the size of a status answer: the ceiling a gateway built on the
 * same library can approach, measured in the same run. */
#ifndef SYNLOAD_HELLO_H
#define SYNLOAD_HELLO_H

#include <signal.h>

/* Serves on "HOST:PORT" (IPv4) until *stop is set. One epoll thread, like the
 * gateway. Returns 0, or -1 when it cannot listen. */
int hello_serve(const char *address, volatile sig_atomic_t *stop);

#endif
