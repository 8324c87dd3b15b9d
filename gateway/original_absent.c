/* original_absent: the original's features syn does not have (gateway/original_absent.h). */
#include "gateway/original_absent.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *pattern; /* path prefix by segments; "*" is any one segment */
    const char *feature;
    const char *instead; /* syn's way to the same information, or NULL */
} absent_t;

/* The routes of the original's CLI 0.25 (apps/syn-cli-node/src/commands) that syn does not
 * serve, by feature. */
static const absent_t absent[] = {
    {"/organizations", "organizations", NULL},
    {"/systems", "systems", NULL},
    {"/repos", "repository registry",
     "give repositories per execution (`repos` in POST /workflows/{id}/execute)"},
    {"/triggers", "triggers (rules that start workflows on GitHub events)", NULL},
    {"/github", "GitHub App integration", NULL},
    {"/insights", "insights (systems overview, cost by repository, activity heatmap)",
     "use /costs/summary and /api/v1/metrics"},
    {"/observability", "the API latency store", "use /metrics (Prometheus)"},
    {"/sessions", "session records of their own",
     "a session is a phase attempt in syn: /costs/sessions and /costs/sessions/{id}"},
    {"/observe", "tool timelines per session",
     "a session's tokens and cost are at /costs/sessions/{id}"},
    {"/events", "queries over the event store",
     "an execution's events are at /sse/executions/{id} (from the start, then live)"},
    {"/conversations", "conversation logs",
     "a phase's output is at /executions/{id}/phases/{phase_id}/output"},
    {"/artifacts", "artifacts by their own id",
     "an execution's artifacts are at /executions/{id}/artifacts"},
    {"/executions/*/session-inventory", "session inventories",
     "an execution's phases and attempts are in /executions/{id}"},
    {"/session-inventory-jobs", "session inventories",
     "an execution's phases and attempts are in /executions/{id}"},
    {"/executions/*/session-transcripts", "archived session transcripts",
     "a phase's output is at /executions/{id}/phases/{phase_id}/output"},
    {"/workflows/*/history", "workflow version history", NULL},
    {"/sse/health", "health route of its event streams",
     "/health says whether the broker (the streams' source) is up; /metrics counts the open "
     "streams (syn_sse_clients)"},
};

/* True when path starts with the pattern's segments. */
static bool starts_with(const char *path, const char *pattern)
{
    while (*pattern) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        const char *pend = strchr(pattern, '/');
        size_t plen = pend ? (size_t)(pend - pattern) : strlen(pattern);
        const char *send = strchr(path, '/');
        size_t slen = send ? (size_t)(send - path) : strlen(path);
        if (slen == 0 || (!(plen == 1 && *pattern == '*') &&
                          (plen != slen || memcmp(pattern, path, plen) != 0)))
            return false;
        pattern += plen;
        path += slen;
    }
    return *path == '\0' || *path == '/' || *path == '?';
}

json_t *gateway_absent_answer(const char *path)
{
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        if (!starts_with(path, absent[i].pattern))
            continue;
        char text[512];
        snprintf(text, sizeof text, "syn has no %s (the original's %s routes)%s%s",
                 absent[i].feature, absent[i].pattern, absent[i].instead ? ": " : "",
                 absent[i].instead ? absent[i].instead : "");
        return json_pack("{s:s}", "detail", text);
    }
    return NULL;
}
