/* metrics_http: the broker's GET /metrics listener (broker/metrics_http.h). */
#include "broker/metrics_http.h"
#include "common/endpoint.h"
#include "common/metrics.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct broker_metrics_http_t {
    struct MHD_Daemon *daemon;
    broker_metrics_text_fn text;
    void *arg;
    const bool *standby; /* NULL: always active */
};

static enum MHD_Result queue_text(struct MHD_Connection *connection, unsigned status,
                                  char *text, const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    broker_metrics_http_t *self = cls;
    if (!*con_cls) { /* headers only: answer once they are all in */
        *con_cls = self;
        return MHD_YES;
    }
    *upload_data_size = 0;
    bool health = !strcmp(url, "/health"), ready = !strcmp(url, "/ready");
    if (!health && !ready && strcmp(url, "/metrics") != 0)
        return queue_text(connection, MHD_HTTP_NOT_FOUND, strdup("not found\n"), "text/plain");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("GET only\n"),
                          "text/plain");
    /* Answered from the loop's thread: an answer says the loop is turning (a
     * container's health check, `syn health --live --url` at this address). */
    bool standby = self->standby && *self->standby;
    if (health || ready) {
        char text[96];
        snprintf(text, sizeof text, "{\"status\": \"%s\", \"broker\": \"ok\", \"role\": \"%s\"}\n",
                 health ? "ok" : standby ? "not ready" : "ready", standby ? "standby" : "active");
        return queue_text(connection, ready && standby ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                          strdup(text), "application/json");
    }
    char *text = self->text(self->arg);
    if (!text)
        return queue_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, strdup("no metrics\n"),
                          "text/plain");
    return queue_text(connection, MHD_HTTP_OK, text, SYN_METRICS_CONTENT_TYPE);
}

broker_metrics_http_t *broker_metrics_http_new(const char *address, broker_metrics_text_fn text,
                                               void *arg, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    if (syn_http_address_parse("--metrics", address, &addr, err, errlen) != 0)
        return NULL;
    broker_metrics_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->text = text;
    self->arg = arg;
    unsigned flags = MHD_USE_EPOLL | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, self,
                                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                    MHD_OPTION_CONNECTION_LIMIT, 16u,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "--metrics %s: cannot listen there", address);
        free(self);
        return NULL;
    }
    return self;
}

void broker_metrics_http_destroy(broker_metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}

int broker_metrics_http_fd(const broker_metrics_http_t *self)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

unsigned broker_metrics_http_port(const broker_metrics_http_t *self)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void broker_metrics_http_watch_standby(broker_metrics_http_t *self, const bool *standby)
{
    self->standby = standby;
}

void broker_metrics_http_run(broker_metrics_http_t *self)
{
    MHD_run(self->daemon);
}
