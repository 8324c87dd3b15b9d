/* curl_loader: libcurl, loaded only when the anthropic provider or a credential proxy needs it.
 *
 * A worker with any other provider never maps libcurl nor the TLS, LDAP, SSH
 * and HTTP/2 libraries it brings (most of an idle worker's resident memory).
 * The anthropic provider asks for the table below, which dlopen()s
 * WORKER_CURL_LIBRARY and resolves the handful of curl_* functions it calls;
 * <curl/curl.h> is still used at compile time for the types and constants. */
#ifndef SYN_WORKER_CURL_LOADER_H
#define SYN_WORKER_CURL_LOADER_H

#include <curl/curl.h>
#include <stddef.h>

/* libcurl's run-time name (Debian: package libcurl4). */
#define WORKER_CURL_LIBRARY "libcurl.so.4"

/* The libcurl functions the anthropic provider and the credential proxy call, each named after its
 * curl_ function (curl_easy_init is easy_init). */
typedef struct {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_cleanup)(CURL *easy);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
    CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int ev_bitmask,
                                     int *running);
    CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
    const char *(*multi_strerror)(CURLMcode code);
    CURLMcode (*multi_cleanup)(CURLM *multi);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
    CURLcode (*easy_pause)(CURL *easy, int bitmask);
} worker_curl_t;

/* The process's libcurl: loaded by the first call, the same table after that.
 * NULL with the reason in err (the loader's own message, e.g. that the file
 * is missing) when the library or one of its functions cannot be found; a
 * later call tries again. The library stays loaded until the process ends.
 * Call from the worker's one thread. */
const worker_curl_t *worker_curl_load(char *err, size_t errlen);

/* Fills table from the named library (a file name the dynamic loader looks
 * up, or a path): 0, or -1 with the reason in err and nothing left loaded.
 * On success the library stays loaded until the process ends.
 * worker_curl_load uses it with WORKER_CURL_LIBRARY. */
int worker_curl_open(const char *library, worker_curl_t *table, char *err, size_t errlen);

#endif
