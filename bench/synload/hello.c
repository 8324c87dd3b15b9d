#include "bench/synload/hello.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Same shape and size as a finished execution's status. */
static const char HELLO_BODY[] =
    "{\"execution_id\":\"exec-000000000000\",\"workflow_id\":\"bench-w1\",\"status\":"
    "\"completed\",\"current_phase\":null,\"completed_phases\":3,\"total_phases\":3,"
    "\"started_at\":\"2026-11-28T14:56:19.123456Z\",\"completed_at\":"
    "\"2026-11-28T14:56:19.124456Z\",\"error\":null}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    /* Answering on the first call (headers only) makes libmicrohttpd close the
     * connection; the second call comes once the request is fully read. */
    if (*con_cls == NULL) {
        *con_cls = cls;
        return MHD_YES;
    }
    *upload_data_size = 0;
    return MHD_queue_response(connection, MHD_HTTP_OK, (struct MHD_Response *)cls);
}

int hello_serve(const char *address, volatile sig_atomic_t *stop)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host) {
        fprintf(stderr, "hello: want HOST:PORT, got %s\n", address);
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "hello: not an IPv4 address: %s\n", host);
        return -1;
    }
    struct MHD_Response *response = MHD_create_response_from_buffer(
        sizeof HELLO_BODY - 1, (void *)HELLO_BODY, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return -1;
    MHD_add_response_header(response, "Content-Type", "application/json");
    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, response,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "hello: cannot listen on %s\n", address);
        MHD_destroy_response(response);
        return -1;
    }
    while (!*stop)
        usleep(100000);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(response);
    return 0;
}
