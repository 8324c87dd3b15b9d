#include "gateway/listen.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/log.h"
#include "common/ratelog.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPONENT "gateway"
#define LISTEN_BACKLOG 1024
/* libmicrohttpd's complaints: at most one line per kind this often. */
#define LOG_INTERVAL_MS 10000
#define LOG_CAUSES 64

struct gateway_listen_t {
    struct MHD_Daemon *daemon;
    int epoll_fd;
    int port;
    long max_connections, max_per_ip;
    unsigned header_timeout_s;
    size_t connections;  /* open right now (MHD's notifications) */
    syn_ratelog_t *ratelog;
    char mhd_error[256]; /* MHD's last complaint, to explain a failed start */
};

/* Blanks the value of every access_token= in text (MHD's messages may quote a
 * request), so a token in a URL never reaches the log. */
static void blank_tokens(char *text)
{
    static const char key[] = "access_token=";
    for (char *p = text; (p = strcasestr(p, key));) {
        p += sizeof key - 1;
        size_t n = strcspn(p, "& \t\r\n\"'");
        memset(p, '*', n < 3 ? n : 3);
        if (n > 3)
            memmove(p + 3, p + n, strlen(p + n) + 1);
    }
}

/* MHD's diagnostics go to our log, one line per kind (its format) per interval: a
 * flood of refused connections is one line, then one with a count every interval.
 * The last one also explains a failed start. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gateway_listen_t *self = cls;
    vsnprintf(self->mhd_error, sizeof self->mhd_error, fmt, ap);
    size_t len = strlen(self->mhd_error);
    while (len && (self->mhd_error[len - 1] == '\n' || self->mhd_error[len - 1] == '\r'))
        self->mhd_error[--len] = '\0';
    blank_tokens(self->mhd_error);
    /* An SSE client going away, or one we cut (logged by us), is routine. */
    if (strstr(self->mhd_error, "is no longer available for sending") ||
        strstr(self->mhd_error, "application error generating response")) {
        syn_debug(COMPONENT, "http: %s", self->mhd_error);
        return;
    }
    uint64_t held = 0;
    if (self->ratelog && !syn_ratelog_allow(self->ratelog, fmt, syn_mono_ms(), &held))
        return;
    /* MHD says the same for both limits: name them, so the log says which to raise. */
    char limits[128] = "";
    if (strstr(self->mhd_error, "connection limit"))
        snprintf(limits, sizeof limits, " max_connections=%ld+%d max_per_ip=%ld",
                 self->max_connections, LISTEN_HEADROOM, self->max_per_ip);
    if (held > 0)
        syn_warn(COMPONENT, "http: %s%s (%llu more like it in the last %d s)", self->mhd_error,
                 limits, (unsigned long long)held, LOG_INTERVAL_MS / 1000);
    else
        syn_warn(COMPONENT, "http: %s%s", self->mhd_error, limits);
}

size_t gateway_listen_unescape(char *text)
{
    char *out = text;
    for (const char *in = text; *in;) {
        if (in[0] == '%' && in[1] == '0' && in[2] == '0') {
            *out++ = (char)0xC0;
            *out++ = (char)0x80;
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return MHD_http_unescape(text);
}

static size_t unescape_without_nul(void *cls, struct MHD_Connection *connection, char *text)
{
    (void)cls;
    (void)connection;
    return gateway_listen_unescape(text);
}

/* A whole PEM file, NUL-terminated (MHD wants text), its size in *size; NULL with
 * the reason in err. */
static char *read_pem(const char *flag, const char *path, size_t *size, char *err,
                      size_t errlen)
{
    /* read(2), not stdio: a FILE's buffer would keep a copy of the key after it is
     * freed, where free_secret cannot wipe it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size <= 0 || st.st_size > LISTEN_PEM_MAX)
        why = "empty, or larger than 1 MiB";
    char *text = why ? NULL : calloc(1, (size_t)st.st_size + 1);
    if (!why && !text)
        why = "out of memory";
    for (size_t got = 0; !why && got < (size_t)st.st_size;) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            why = n < 0 ? strerror(errno) : "short read";
        else
            got += (size_t)n;
    }
    close(fd);
    if (why) {
        snprintf(err, errlen, "cannot read %s %s: %s", flag, path, why);
        free(text);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return text;
}

/* Wipes a key read by read_pem, all size bytes of it (a NUL inside would stop a
 * wipe by its string length short), then frees it. */
static void free_secret(char **text_p, size_t size)
{
    if (!*text_p)
        return;
    explicit_bzero(*text_p, size);
    free(*text_p);
    *text_p = NULL;
}

/* Counts connections as MHD opens and closes them: asking MHD for its count would
 * have it clean up closed connections in the middle of a request. */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)connection;
    (void)socket_context;
    gateway_listen_t *self = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        self->connections++;
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED && self->connections > 0)
        self->connections--;
}

static unsigned header_timeout_s(long ms)
{
    if (ms <= 0)
        return LISTEN_IDLE_TIMEOUT_S;
    return (unsigned)((ms + 999) / 1000);
}

gateway_listen_t *gateway_listen_new(const gateway_config_t *config,
                                     MHD_AccessHandlerCallback on_request,
                                     MHD_RequestCompletedCallback on_completed, void *cls,
                                     char *err, size_t errlen)
{
    gateway_listen_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->epoll_fd = -1;
    self->max_connections = config->max_connections;
    self->max_per_ip = config->max_per_ip;
    self->header_timeout_s = header_timeout_s(config->header_timeout_ms);
    self->ratelog = syn_ratelog_new(LOG_INTERVAL_MS, LOG_CAUSES);
    char *cert = NULL, *key = NULL;
    size_t cert_size = 0, key_size = 0;
    struct sockaddr_storage addr;
    if (!self->ratelog) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (syn_http_address_parse("--http", config->http, &addr, err, errlen) != 0)
        goto fail;
    bool tls = config->tls_cert && config->tls_cert[0];
    if (tls && (!(cert = read_pem("--tls-cert", config->tls_cert, &cert_size, err, errlen)) ||
                !(key = read_pem("--tls-key", config->tls_key, &key_size, err, errlen))))
        goto fail;

    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, cls, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, cls, MHD_OPTION_NOTIFY_CONNECTION, on_connection, self,
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(config->max_connections + LISTEN_HEADROOM), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(config->max_per_ip > 0 ? config->max_per_ip : 0),
        MHD_OPTION_CONNECTION_TIMEOUT, self->header_timeout_s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)LISTEN_BACKLOG, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_without_nul, NULL, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
    /* GnuTLS holds its own copy of the certificate and key from here on. */
    free(cert);
    cert = NULL;
    free_secret(&key, key_size);
    if (!self->daemon) {
        /* MHD says "Failed to bind to port 0: <reason>" (we bind by address): keep the
         * reason, which is what the user can act on. */
        const char *reason = strrchr(self->mhd_error, ':');
        if (reason && reason[1] == ' ' && reason[2])
            reason += 2;
        else
            reason = self->mhd_error[0] ? self->mhd_error : "libmicrohttpd refused to start";
        snprintf(err, errlen, "cannot listen on %s%s: %s", config->http,
                 tls ? " with TLS" : "", reason);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    if (self->epoll_fd < 0) {
        snprintf(err, errlen, "libmicrohttpd gave no epoll descriptor");
        goto fail;
    }
    return self;
fail:
    free(cert);
    free_secret(&key, key_size);
    gateway_listen_destroy(&self);
    return NULL;
}

void gateway_listen_destroy(gateway_listen_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_listen_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    syn_ratelog_destroy(&self->ratelog);
    free(self);
    *self_p = NULL;
}

struct MHD_Daemon *gateway_listen_daemon(const gateway_listen_t *self)
{
    return self->daemon;
}

int gateway_listen_port(const gateway_listen_t *self)
{
    return self->port;
}

int gateway_listen_epoll_fd(const gateway_listen_t *self)
{
    return self->epoll_fd;
}

size_t gateway_listen_connections(const gateway_listen_t *self)
{
    return self->connections;
}

bool gateway_listen_full(const gateway_listen_t *self)
{
    return gateway_listen_connections(self) > (size_t)self->max_connections;
}

void gateway_listen_request_in(struct MHD_Connection *connection)
{
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)LISTEN_IDLE_TIMEOUT_S);
}

void gateway_listen_request_done(const gateway_listen_t *self,
                                 struct MHD_Connection *connection)
{
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT,
                              self->header_timeout_s);
}
