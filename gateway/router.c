#include "gateway/router.h"
#include "gateway/validate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Enough for the deepest artifact path under its route's four fixed segments. */
#define MAX_SEGMENTS 40

typedef struct {
    const char *method;
    const char *pattern; /* "/workflows/{}/execute": {} captures one segment */
    gateway_route_id_t id;
} route_entry_t;

static const route_entry_t routes[] = {
    {"GET", "/health", GATEWAY_ROUTE_HEALTH},
    {"GET", "/metrics", GATEWAY_ROUTE_METRICS},
    {"GET", "/workflows", GATEWAY_ROUTE_WORKFLOW_LIST},
    {"POST", "/workflows", GATEWAY_ROUTE_WORKFLOW_CREATE},
    {"GET", "/workflows/executions/active", GATEWAY_ROUTE_EXECUTION_ACTIVE},
    {"POST", "/workflows/from-yaml", GATEWAY_ROUTE_WORKFLOW_FROM_YAML},
    {"POST", "/workflows/validate", GATEWAY_ROUTE_WORKFLOW_VALIDATE},
    {"GET", "/workflows/{}", GATEWAY_ROUTE_WORKFLOW_GET},
    {"DELETE", "/workflows/{}", GATEWAY_ROUTE_WORKFLOW_ARCHIVE},
    {"GET", "/workflows/{}/export", GATEWAY_ROUTE_WORKFLOW_EXPORT},
    {"PUT", "/workflows/{}/phases/{}", GATEWAY_ROUTE_PHASE_UPDATE},
    {"POST", "/workflows/{}/execute", GATEWAY_ROUTE_EXECUTION_START},
    {"GET", "/workflows/{}/executions/{}", GATEWAY_ROUTE_EXECUTION_STATUS},
    {"GET", "/workflows/{}/runs", GATEWAY_ROUTE_WORKFLOW_RUNS},
    {"GET", "/executions", GATEWAY_ROUTE_EXECUTION_LIST},
    {"GET", "/executions/{}", GATEWAY_ROUTE_EXECUTION_GET},
    {"GET", "/executions/{}/state", GATEWAY_ROUTE_EXECUTION_STATE},
    {"POST", "/executions/{}/cancel", GATEWAY_ROUTE_EXECUTION_CANCEL},
    {"POST", "/executions/{}/pause", GATEWAY_ROUTE_EXECUTION_PAUSE},
    {"POST", "/executions/{}/resume", GATEWAY_ROUTE_EXECUTION_RESUME},
    {"POST", "/executions/{}/inject", GATEWAY_ROUTE_EXECUTION_INJECT},
    {"GET", "/executions/{}/phases/{}/output", GATEWAY_ROUTE_PHASE_OUTPUT},
    {"GET", "/executions/{}/timeline.svg", GATEWAY_ROUTE_EXECUTION_TIMELINE},
    {"GET", "/sse/executions/{}", GATEWAY_ROUTE_SSE_EXECUTION},
    {"GET", "/sse/activity", GATEWAY_ROUTE_SSE_ACTIVITY},
    /* the fleet (issue 18) */
    {"GET", "/workers", GATEWAY_ROUTE_WORKERS},
    {"GET", "/ready", GATEWAY_ROUTE_READY},
    /* the team controls (issue 19) */
    {"POST", "/executions/{}/rerun", GATEWAY_ROUTE_EXECUTION_RERUN},
    /* the dashboard (issue 16): its files, and who its caller is */
    {"GET", "/", GATEWAY_ROUTE_UI_REDIRECT},
    {"GET", "/ui", GATEWAY_ROUTE_UI_REDIRECT},
    {"GET", "/ui/", GATEWAY_ROUTE_UI_FILE},
    {"GET", "/ui/{}", GATEWAY_ROUTE_UI_FILE},
    {"GET", "/whoami", GATEWAY_ROUTE_WHOAMI},
    /* the original's clients (issue 17) */
    {"GET", "/costs/summary", GATEWAY_ROUTE_COSTS_SUMMARY},
    {"GET", "/costs/executions", GATEWAY_ROUTE_COSTS_EXECUTIONS},
    {"GET", "/costs/executions/{}", GATEWAY_ROUTE_COSTS_EXECUTION},
    {"GET", "/costs/sessions", GATEWAY_ROUTE_COSTS_SESSIONS},
    {"GET", "/costs/sessions/{}", GATEWAY_ROUTE_COSTS_SESSION},
    /* approval gates (issue 17) */
    {"POST", "/executions/{}/approve", GATEWAY_ROUTE_EXECUTION_APPROVE},
    {"POST", "/executions/{}/reject", GATEWAY_ROUTE_EXECUTION_REJECT},
    /* artifacts (issue 17) */
    {"GET", "/executions/{}/artifacts", GATEWAY_ROUTE_ARTIFACT_LIST},
    {"GET", "/executions/{}/artifacts.tar", GATEWAY_ROUTE_ARTIFACT_TAR},
    {"GET", "/executions/{}/artifacts.zip", GATEWAY_ROUTE_ARTIFACT_ZIP},
    {"GET", "/executions/{}/artifacts/{}/{*}", GATEWAY_ROUTE_ARTIFACT_GET},
    /* the original's CLI 0.25 watches here (its watch.ts) */
    {"GET", "/watch/executions/{}", GATEWAY_ROUTE_SSE_EXECUTION},
    {"GET", "/watch/activity", GATEWAY_ROUTE_SSE_ACTIVITY},
};

#define ORIGINAL_PREFIX "/api/v1"

const char *gateway_route_path(const char *url, bool *original)
{
    size_t len = strlen(ORIGINAL_PREFIX);
    *original = strncmp(url, ORIGINAL_PREFIX, len) == 0 && (url[len] == '/' || !url[len]);
    if (!*original)
        return url;
    return url[len] ? url + len : "/";
}

typedef struct {
    const char *start;
    size_t len;
} segment_t;

/* Splits "/a/b/c" into segments; -1 when the path does not start with '/' or has
 * more segments than any route. "/a/" gives a trailing empty segment. */
static int split(const char *path, segment_t *segments, size_t *count)
{
    if (path[0] != '/')
        return -1;
    *count = 0;
    const char *p = path + 1;
    for (;;) {
        if (*count == MAX_SEGMENTS)
            return -1;
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        segments[(*count)++] = (segment_t){p, len};
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* True when the path's segments fit the pattern; captures parameters into route. */
static bool fits(const char *pattern, const segment_t *segments, size_t count,
                 gateway_route_t *route)
{
    segment_t want[MAX_SEGMENTS];
    size_t want_count;
    if (split(pattern, want, &want_count) != 0)
        return false;
    bool rest = want[want_count - 1].len == 3 && memcmp(want[want_count - 1].start, "{*}", 3) == 0;
    if (rest ? count < want_count : want_count != count)
        return false;
    route->param_count = 0;
    if (rest) {
        size_t used = 0;
        for (size_t i = want_count - 1; i < count; i++) {
            const segment_t *seg = &segments[i];
            if (seg->len == 0 || used + seg->len + 1 > GATEWAY_REST_MAX ||
                !gateway_validate_text(seg->start, seg->len))
                return false;
            if (used)
                route->rest[used++] = '/';
            memcpy(route->rest + used, seg->start, seg->len);
            used += seg->len;
        }
        route->rest[used] = '\0';
        want_count--;
    }
    for (size_t i = 0; i < want_count; i++) {
        if (want[i].len == 2 && memcmp(want[i].start, "{}", 2) == 0) {
            if (segments[i].len == 0 || segments[i].len > GATEWAY_PARAM_MAX ||
                route->param_count == GATEWAY_ROUTE_PARAMS ||
                !gateway_validate_text(segments[i].start, segments[i].len))
                return false;
            char *param = route->params[route->param_count++];
            memcpy(param, segments[i].start, segments[i].len);
            param[segments[i].len] = '\0';
        } else if (want[i].len != segments[i].len ||
                   memcmp(want[i].start, segments[i].start, segments[i].len) != 0) {
            return false;
        }
    }
    return true;
}

static void allow_add(gateway_route_t *route, const char *method)
{
    if (strstr(route->allow, method))
        return;
    size_t used = strlen(route->allow);
    snprintf(route->allow + used, sizeof route->allow - used, "%s%s", used ? ", " : "", method);
}

gateway_match_t gateway_route_match(const char *method, const char *path,
                                    gateway_route_t *route)
{
    memset(route, 0, sizeof *route);
    segment_t segments[MAX_SEGMENTS];
    size_t count;
    if (split(path, segments, &count) != 0)
        return GATEWAY_MATCH_NOT_FOUND;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        gateway_route_t candidate;
        memset(&candidate, 0, sizeof candidate);
        if (!fits(routes[i].pattern, segments, count, &candidate))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            *route = candidate;
            route->id = routes[i].id;
            return GATEWAY_MATCH_OK;
        }
        path_known = true;
        allow_add(route, routes[i].method);
    }
    return path_known ? GATEWAY_MATCH_METHOD_NOT_ALLOWED : GATEWAY_MATCH_NOT_FOUND;
}

const char *gateway_route_pattern(gateway_route_id_t id)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == id)
            return routes[i].pattern;
    return "unknown";
}
