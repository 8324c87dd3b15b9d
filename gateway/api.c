#include "gateway/api.h"
#include "gateway/validate.h"

static int query_args(gateway_query_fn query, void *cls, const char **names, const long *mins,
                      const long *maxs, const long *defaults, size_t count, json_t **args,
                      json_t **error)
{
    json_t *errors = json_array();
    json_t *out = json_object();
    for (size_t i = 0; i < count; i++) {
        long value;
        if (gateway_validate_query_int(names[i], query(cls, names[i]), mins[i], maxs[i],
                                       defaults[i], &value, errors) == 0)
            json_object_set_new(out, names[i], json_integer(value));
    }
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        *args = out;
        return 0;
    }
    json_decref(out);
    *error = gateway_validate_error_body(errors);
    return 422;
}

int gateway_api_request(const gateway_route_t *route, const char *body, size_t len,
                        gateway_query_fn query, void *cls, const char **op, json_t **args,
                        json_t **error)
{
    *args = NULL;
    *error = NULL;
    switch (route->id) {
    case GATEWAY_ROUTE_HEALTH:
        *op = "health";
        *args = json_object();
        return 0;
    case GATEWAY_ROUTE_WORKFLOW_CREATE:
        *op = "workflow.create";
        return gateway_validate_workflow(body, len, args, error);
    case GATEWAY_ROUTE_WORKFLOW_LIST: {
        static const char *names[] = {"page", "page_size"};
        static const long mins[] = {1, 1}, maxs[] = {1000000000, 100}, defaults[] = {1, 20};
        *op = "workflow.list";
        return query_args(query, cls, names, mins, maxs, defaults, 2, args, error);
    }
    case GATEWAY_ROUTE_WORKFLOW_GET:
        *op = "workflow.get";
        *args = json_pack("{s:s}", "id", route->params[0]);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_START:
        *op = "execution.start";
        return gateway_validate_execute(body, len, route->params[0], args, error);
    case GATEWAY_ROUTE_EXECUTION_STATUS:
        *op = "execution.status";
        *args = json_pack("{s:s, s:s}", "workflow_id", route->params[0], "execution_id",
                          route->params[1]);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_ACTIVE: {
        static const char *names[] = {"limit"};
        static const long mins[] = {1}, maxs[] = {100}, defaults[] = {20};
        *op = "execution.active";
        return query_args(query, cls, names, mins, maxs, defaults, 1, args, error);
    }
    }
    *op = NULL;
    *error = json_pack("{s:s}", "detail", "Not Found");
    return 404;
}
