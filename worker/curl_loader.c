#include "worker/curl_loader.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* dlsym hands back an object pointer; POSIX guarantees a function pointer has
 * the same size and representation, which the copy below relies on. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

typedef struct {
    const char *name;
    size_t offset;
} slot_t;

#define SLOT(field) {"curl_" #field, offsetof(worker_curl_t, field)}

static const slot_t slots[] = {
    SLOT(global_init),     SLOT(global_cleanup),      SLOT(easy_init),
    SLOT(easy_setopt),     SLOT(easy_getinfo),        SLOT(easy_strerror),
    SLOT(easy_cleanup),    SLOT(multi_init),          SLOT(multi_setopt),
    SLOT(multi_add_handle), SLOT(multi_remove_handle), SLOT(multi_socket_action),
    SLOT(multi_info_read), SLOT(multi_strerror),      SLOT(multi_cleanup),
    SLOT(slist_append),    SLOT(slist_free_all),      SLOT(easy_pause),
};

_Static_assert(sizeof slots / sizeof slots[0] == sizeof(worker_curl_t) / sizeof(void *),
               "every function of worker_curl_t has a slot");

int worker_curl_open(const char *library, worker_curl_t *table, char *err, size_t errlen)
{
    /* RTLD_LOCAL: nothing else in the process binds to libcurl's symbols by
     * accident; RTLD_NOW: a broken library is found here, not mid-request. */
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        snprintf(err, errlen, "%s", why ? why : library);
        return -1;
    }
    worker_curl_t loaded;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        dlerror();
        void *fn = dlsym(handle, slots[i].name);
        if (!fn) {
            snprintf(err, errlen, "%s has no %s", library, slots[i].name);
            dlclose(handle);
            return -1;
        }
        memcpy((char *)&loaded + slots[i].offset, &fn, sizeof fn);
    }
    *table = loaded;
    return 0;
}

const worker_curl_t *worker_curl_load(char *err, size_t errlen)
{
    static worker_curl_t table;
    static bool loaded = false;
    if (!loaded && worker_curl_open(WORKER_CURL_LIBRARY, &table, err, errlen) == 0)
        loaded = true;
    return loaded ? &table : NULL;
}
