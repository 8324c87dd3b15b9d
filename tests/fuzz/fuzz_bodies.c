/* fuzz_bodies: the JSON request bodies (gateway/validate.c): workflow create,
 * execute, phase update, the four controls (cancel, pause, resume, inject) and
 * POST /workflows/validate's {content}.
 *
 * The first byte picks the entry (gateway_validate_workflow,
 * gateway_validate_execute, gateway_validate_phase_update,
 * gateway_validate_control with each gateway_control_t,
 * gateway_validate_content), the rest is the body. Beyond "no crash": an
 * accepted body's arguments, written back as a body (less the ids the path
 * gives), are accepted again with the same arguments; they travel in a broker
 * request (syn_msg_encode accepts them); a refusal is a 4xx whose body is JSON
 * with a detail, each pydantic item having loc, msg and type. */
#include "gateway/validate.h"
#include "proto/msg.h"
#include "tests/fuzz/fuzz_check.h"

enum { ENTRY_WORKFLOW, ENTRY_EXECUTE, ENTRY_PHASE_UPDATE, ENTRY_CANCEL, ENTRY_PAUSE,
       ENTRY_RESUME, ENTRY_INJECT, ENTRY_CONTENT, ENTRIES };

static int validate(int entry, const char *body, size_t len, json_t **args, json_t **error)
{
    switch (entry) {
    case ENTRY_WORKFLOW:
        return gateway_validate_workflow(body, len, args, error);
    case ENTRY_EXECUTE:
        return gateway_validate_execute(body, len, "wf-1", args, error);
    case ENTRY_PHASE_UPDATE:
        return gateway_validate_phase_update(body, len, "wf-1", "plan", args, error);
    case ENTRY_CANCEL:
        return gateway_validate_control(GATEWAY_CONTROL_CANCEL, body, len, "ex-1", args, error);
    case ENTRY_PAUSE:
        return gateway_validate_control(GATEWAY_CONTROL_PAUSE, body, len, "ex-1", args, error);
    case ENTRY_RESUME:
        return gateway_validate_control(GATEWAY_CONTROL_RESUME, body, len, "ex-1", args, error);
    case ENTRY_INJECT:
        return gateway_validate_control(GATEWAY_CONTROL_INJECT, body, len, "ex-1", args, error);
    default: {
        json_t *content = NULL;
        int status = gateway_validate_content(body, len, &content, error);
        *args = status == 0 ? json_pack("{s:o}", "content", content) : NULL;
        return status;
    }
    }
}

static void check_refusal(int status, const json_t *args, const json_t *error)
{
    FUZZ_CHECK(status >= 400 && status <= 499 && args == NULL && json_is_object(error));
    const json_t *detail = json_object_get(error, "detail");
    FUZZ_CHECK(json_is_string(detail) || (json_is_array(detail) && json_array_size(detail) > 0));
    size_t i;
    const json_t *item;
    json_array_foreach(detail, i, item) {
        FUZZ_CHECK(json_is_array(json_object_get(item, "loc")));
        FUZZ_CHECK(json_is_string(json_object_get(item, "msg")));
        FUZZ_CHECK(json_is_string(json_object_get(item, "type")));
    }
    char *text = json_dumps(error, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
}

static void check_travels(const json_t *args)
{
    syn_msg_t *request = syn_msg_new(SYN_MSG_REQUEST);
    json_object_set_new(syn_msg_fields(request), "id", json_integer(1));
    json_object_set_new(syn_msg_fields(request), "op", json_string("op"));
    json_object_set_new(syn_msg_fields(request), "args", json_deep_copy(args));
    char *data, err[256];
    size_t size;
    if (syn_msg_encode(request, &data, &size, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_bodies: arguments the codec refuses: %s\n", err);
        abort();
    }
    free(data);
    syn_msg_destroy(&request);
}

static void check_again(int entry, const json_t *args)
{
    json_t *body = json_deep_copy(args);
    if (entry != ENTRY_WORKFLOW) { /* the ids the path gives; a workflow is its body */
        json_object_del(body, "workflow_id");
        json_object_del(body, "phase_id");
        json_object_del(body, "execution_id");
    }
    char *text = json_dumps(body, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_t *again = NULL, *error = NULL;
    int status = validate(entry, text, strlen(text), &again, &error);
    if (status != 0 || !json_equal(again, args)) {
        char *was = json_dumps(args, JSON_COMPACT);
        fprintf(stderr, "fuzz_bodies: entry %d: accepted arguments %s, written back as %s, "
                "give status %d\n", entry, was, text, status);
        abort();
    }
    json_decref(again);
    json_decref(body);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int entry = data[0] % ENTRIES;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    json_t *args = NULL, *error = NULL;
    int status = validate(entry, body, len, &args, &error);
    if (status == 0) {
        FUZZ_CHECK(json_is_object(args) && error == NULL);
        check_travels(args);
        check_again(entry, args);
    } else {
        check_refusal(status, args, error);
    }
    json_decref(args);
    json_decref(error);
    return 0;
}
