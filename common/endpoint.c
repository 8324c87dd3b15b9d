#include "common/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* host is the text between the scheme and the port, brackets removed. */
static bool host_is_loopback(const char *host, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, buf, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) ||
               (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return false;
}

/* "HOST:PORT" or "[HOST]:PORT": is HOST loopback? */
static bool host_port_is_loopback(const char *text)
{
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        return end && end[1] == ':' && host_is_loopback(text + 1, (size_t)(end - text - 1));
    }
    const char *colon = strrchr(text, ':');
    if (!colon || strchr(text, ':') != colon) /* a bare IPv6 address needs brackets */
        return false;
    return host_is_loopback(text, (size_t)(colon - text));
}

bool syn_endpoint_is_local(const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *address = endpoint + 6;
    const char *source_end = strchr(address, ';');
    if (source_end) /* "source;destination": where it goes is what matters */
        address = source_end + 1;
    return host_port_is_loopback(address);
}

bool syn_http_address_is_local(const char *address)
{
    return address && host_port_is_loopback(address);
}

int syn_endpoint_check(const char *what, const char *endpoint, bool is_http, bool allowed,
                       const char *why, const char *remedy, char *err, size_t errlen)
{
    bool local = is_http ? syn_http_address_is_local(endpoint) : syn_endpoint_is_local(endpoint);
    if (local || allowed)
        return 0;
    snprintf(err, errlen, "%s %s is not a loopback address and %s: %s", what,
             endpoint ? endpoint : "(none)", why, remedy);
    return -1;
}

int syn_http_address_parse(const char *flag, const char *text, struct sockaddr_storage *addr,
                           char *err, size_t errlen)
{
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "bad %s address '%s': want HOST:PORT", flag, text);
        return -1;
    }
    char host[256];
    size_t host_len = (size_t)(colon - text);
    if (host_len >= sizeof host) {
        snprintf(err, errlen, "bad %s address '%s': host too long", flag, text);
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad %s address '%s': port must be 0..65535", flag, text);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "bad %s address '%s': %s", flag, text, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}

/* The kernel's ephemeral range, from /proc; false when it cannot be read. */
static bool ephemeral_range(int *low, int *high)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f)
        return false;
    bool ok = fscanf(f, "%d %d", low, high) == 2 && *low > 0 && *low <= *high;
    fclose(f);
    return ok;
}

bool syn_endpoint_port_is_ephemeral(const char *endpoint, int *low, int *high)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *colon = strrchr(endpoint, ':');
    if (!colon || colon < endpoint + 6)
        return false;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return false; /* "*", "!" or a name: the system's choice, not ours */
    return ephemeral_range(low, high) && port >= *low && port <= *high;
}
