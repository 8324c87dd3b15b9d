/* fuzz_route: the HTTP path router and the query parameters (gateway/router.c,
 * gateway/api.c with gateway/validate.c's query checks, gateway/listen.c's
 * unescaping).
 *
 * The input is a request line's "METHOD URL" (GET when there is no space). The
 * URL is split and decoded as libmicrohttpd does with the gateway's callback:
 * the path and each query key and value through gateway_listen_unescape, the
 * query split at '&' and '='. Then gateway_route_match and, for a match,
 * gateway_api_request with those parameters. Beyond "no crash": a match's
 * parameters are non-empty, within GATEWAY_PARAM_MAX and found in the path in
 * order; a 405 names the allowed methods; an operation's arguments travel in a
 * broker request (syn_msg_encode accepts them: valid UTF-8, no NUL), and an
 * error body is JSON with a detail. */
#include "gateway/api.h"
#include "gateway/listen.h"
#include "gateway/router.h"
#include "proto/msg.h"
#include "tests/fuzz/fuzz_check.h"

#define QUERY_MAX 64

typedef struct {
    size_t count;
    const char *keys[QUERY_MAX];
    const char *values[QUERY_MAX];
} query_t;

/* libmicrohttpd's lookup: the first parameter of that name; a key given without
 * '=' has no value (NULL), as MHD reports it. */
static const char *lookup(void *cls, const char *name)
{
    const query_t *query = cls;
    for (size_t i = 0; i < query->count; i++)
        if (strcmp(query->keys[i], name) == 0)
            return query->values[i];
    return NULL;
}

static void parse_query(char *text, query_t *query)
{
    query->count = 0;
    while (text && *text && query->count < QUERY_MAX) {
        char *next = strchr(text, '&');
        if (next)
            *next++ = '\0';
        char *equals = strchr(text, '=');
        if (equals)
            *equals++ = '\0';
        gateway_listen_unescape(text);
        if (equals)
            gateway_listen_unescape(equals);
        query->keys[query->count] = text;
        query->values[query->count] = equals;
        query->count++;
        text = next;
    }
}

static void check_match(const char *path, const gateway_route_t *route)
{
    FUZZ_CHECK(route->param_count <= GATEWAY_ROUTE_PARAMS);
    const char *at = path;
    for (size_t i = 0; i < route->param_count; i++) {
        size_t len = strlen(route->params[i]);
        FUZZ_CHECK(len > 0 && len <= GATEWAY_PARAM_MAX);
        at = strstr(at, route->params[i]);
        FUZZ_CHECK(at != NULL);
        at += len;
    }
}

static void check_request(const gateway_route_t *route, query_t *query)
{
    syn_op_t op = SYN_OP_COUNT;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(route, NULL, "", 0, lookup, query, &op, &args, &error);
    if (status == 0) {
        FUZZ_CHECK(op < SYN_OP_COUNT && json_is_object(args) && error == NULL);
        /* What the gateway sends, the broker's table of ops accepts. */
        char why[256];
        FUZZ_CHECK(syn_op_check_args(op, args, why, sizeof why) == 0);
        syn_msg_t *request = syn_msg_new(SYN_MSG_REQUEST);
        json_object_set_new(syn_msg_fields(request), "id", json_integer(1));
        json_object_set_new(syn_msg_fields(request), "op", json_string(syn_op_name(op)));
        json_object_set(syn_msg_fields(request), "args", args);
        char *data, err[256];
        size_t size;
        if (syn_msg_encode(request, &data, &size, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_route: %s arguments the codec refuses: %s\n", syn_op_name(op),
                    err);
            abort();
        }
        free(data);
        syn_msg_destroy(&request);
    } else {
        FUZZ_CHECK(status >= 200 && status <= 599 && args == NULL && json_is_object(error));
        FUZZ_CHECK(json_object_get(error, "detail") != NULL);
        char *text = json_dumps(error, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        free(text);
    }
    json_decref(args);
    json_decref(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_text(data, size);
    char *space = strchr(line, ' ');
    const char *method = "GET";
    char *url = line;
    if (space) {
        *space = '\0';
        method = line;
        url = space + 1;
    }
    char *question = strchr(url, '?');
    if (question)
        *question++ = '\0';
    gateway_listen_unescape(url);
    query_t query;
    parse_query(question, &query);

    gateway_route_t route;
    gateway_match_t match = gateway_route_match(method, url, &route);
    if (match == GATEWAY_MATCH_OK) {
        check_match(url, &route);
        check_request(&route, &query);
    } else if (match == GATEWAY_MATCH_METHOD_NOT_ALLOWED) {
        FUZZ_CHECK(route.allow[0] != '\0');
    } else {
        FUZZ_CHECK(match == GATEWAY_MATCH_NOT_FOUND);
    }
    free(line);
    return 0;
}
