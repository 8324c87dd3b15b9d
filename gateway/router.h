/* router: matches an HTTP method and (already URL-decoded) path against the
 * gateway's route table, capturing the path parameters.
 *
 * The table is ordered: the first pattern that matches both path and method wins,
 * so literal routes (/workflows/executions/active) sit before parameter routes
 * (/workflows/{id}). A path some pattern matches with another method is a 405 and
 * the match names the allowed methods for the Allow header. */
#ifndef SYN_GATEWAY_ROUTER_H
#define SYN_GATEWAY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define GATEWAY_ROUTE_PARAMS 4
/* Longest path parameter accepted: ids are at most 100 characters, so anything
 * longer cannot name a thing and is answered 404 without asking the broker. */
#define GATEWAY_PARAM_MAX 128
/* Longest "{*}" capture (an artifact's path, at most 1024 bytes at the broker). */
#define GATEWAY_REST_MAX 1024

typedef enum {
    GATEWAY_ROUTE_HEALTH,
    GATEWAY_ROUTE_WORKFLOW_CREATE,
    GATEWAY_ROUTE_WORKFLOW_LIST,
    GATEWAY_ROUTE_WORKFLOW_GET,
    GATEWAY_ROUTE_EXECUTION_START,
    GATEWAY_ROUTE_EXECUTION_STATUS,
    GATEWAY_ROUTE_EXECUTION_ACTIVE,
    GATEWAY_ROUTE_EXECUTION_LIST,
    GATEWAY_ROUTE_EXECUTION_GET,
    GATEWAY_ROUTE_EXECUTION_STATE,
    GATEWAY_ROUTE_EXECUTION_CANCEL,
    GATEWAY_ROUTE_EXECUTION_PAUSE,
    GATEWAY_ROUTE_EXECUTION_RESUME,
    GATEWAY_ROUTE_EXECUTION_INJECT,
    GATEWAY_ROUTE_PHASE_OUTPUT,
    GATEWAY_ROUTE_WORKFLOW_RUNS,
    GATEWAY_ROUTE_SSE_EXECUTION, /* answered by the gateway's event stream, not one reply */
    GATEWAY_ROUTE_SSE_ACTIVITY,
    GATEWAY_ROUTE_WORKFLOW_FROM_YAML,
    GATEWAY_ROUTE_WORKFLOW_VALIDATE, /* answered by the gateway alone */
    GATEWAY_ROUTE_WORKFLOW_EXPORT,
    GATEWAY_ROUTE_WORKFLOW_ARCHIVE,
    GATEWAY_ROUTE_PHASE_UPDATE,
    GATEWAY_ROUTE_EXECUTION_TIMELINE, /* the detail, drawn by the gateway as SVG */
    GATEWAY_ROUTE_METRICS, /* the broker's metrics.get, with the gateway's own, as text */
    /* the fleet (issue 18) */
    GATEWAY_ROUTE_WORKERS,
    GATEWAY_ROUTE_READY,
    /* the team controls (issue 19) */
    GATEWAY_ROUTE_EXECUTION_RERUN,
    /* the dashboard (issue 16), answered by the gateway alone */
    GATEWAY_ROUTE_UI_REDIRECT, /* "/" and "/ui": to /ui/ */
    GATEWAY_ROUTE_UI_FILE,     /* "/ui/" (index.html) and "/ui/NAME": a file built in */
    GATEWAY_ROUTE_WHOAMI,      /* the caller's token name and scope */
    /* the original's clients (issue 17): costs.report, shaped by gateway/original_compat.c */
    GATEWAY_ROUTE_COSTS_SUMMARY,
    GATEWAY_ROUTE_COSTS_EXECUTIONS,
    GATEWAY_ROUTE_COSTS_EXECUTION,
    GATEWAY_ROUTE_COSTS_SESSIONS,
    GATEWAY_ROUTE_COSTS_SESSION,
    /* approval gates (issue 17) */
    GATEWAY_ROUTE_EXECUTION_APPROVE,
    GATEWAY_ROUTE_EXECUTION_REJECT,
    /* artifacts (issue 17) */
    GATEWAY_ROUTE_ARTIFACT_LIST,
    GATEWAY_ROUTE_ARTIFACT_GET, /* streamed by gateway/download.c */
    GATEWAY_ROUTE_ARTIFACT_TAR, /* streamed by gateway/download.c */
    GATEWAY_ROUTE_ARTIFACT_ZIP, /* streamed by gateway/download.c */
} gateway_route_id_t;

typedef enum {
    GATEWAY_MATCH_OK,
    GATEWAY_MATCH_NOT_FOUND,
    GATEWAY_MATCH_METHOD_NOT_ALLOWED,
} gateway_match_t;

typedef struct {
    gateway_route_id_t id;
    size_t param_count;
    char params[GATEWAY_ROUTE_PARAMS][GATEWAY_PARAM_MAX + 1]; /* in path order */
    char allow[64]; /* "GET, POST" when the method was not allowed */
    /* A pattern ending in "{*}": the rest of the path ("dir/file.txt"), each of its
     * segments checked as a parameter is. */
    char rest[GATEWAY_REST_MAX + 1];
} gateway_route_t;

/* Fills route and returns how the request matched. An empty, over-long, non-UTF-8
 * or control-character path parameter never matches (404). */
gateway_match_t gateway_route_match(const char *method, const char *path,
                                    gateway_route_t *route);

/* The path the routes know for url: url itself, or what follows the original
 * service's "/api/v1" ("/api/v1/health" → "/health"; its nginx maps /api/v1/... to its
 * API), with *original set so the answer can take the original's shape where the two
 * differ (GET /api/v1/metrics). */
const char *gateway_route_path(const char *url, bool *original);

/* The path pattern of a route ("/workflows/{}/execute"), for metric labels. */
const char *gateway_route_pattern(gateway_route_id_t id);

#endif
