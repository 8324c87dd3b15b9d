/* ops: the operations a gateway may ask the broker for in a `request` message
 * (docs/protocol.md, "Request operations"), and each one's arguments.
 *
 * The names cross processes, so they are defined once here: the gateway names an op
 * by its syn_op_t (a misspelt op does not compile), the broker finds its handler by
 * the same table (broker/api.c), and both read the argument schema below: the broker
 * checks a request's arguments against it before the op's handler runs, and the
 * gateway's tests check that every request it builds passes that check.
 *
 * An argument schema lists the top-level fields of `args`, in the order they are
 * checked: type, whether required, and an integer's range. null counts as absent.
 * Fields not listed are ignored (the gateway may send more), except where an op
 * says `more`: then its handler checks further fields itself (workflow.create: the
 * workflow specification in template/). Rules the table cannot say (a non-empty
 * text, an id's pattern, the choices of a status) are the handler's. */
#ifndef SYN_PROTO_OPS_H
#define SYN_PROTO_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SYN_OP_HEALTH,
    SYN_OP_WORKFLOW_CREATE,
    SYN_OP_WORKFLOW_LIST,
    SYN_OP_WORKFLOW_GET,
    SYN_OP_WORKFLOW_INSTALL,
    SYN_OP_WORKFLOW_ARCHIVE,
    SYN_OP_WORKFLOW_PHASE_UPDATE,
    SYN_OP_EXECUTION_START,
    SYN_OP_EXECUTION_STATUS,
    SYN_OP_EXECUTION_ACTIVE,
    SYN_OP_EXECUTION_CANCEL,
    SYN_OP_EXECUTION_PAUSE,
    SYN_OP_EXECUTION_RESUME,
    SYN_OP_EXECUTION_INJECT,
    SYN_OP_EXECUTION_STATE,
    SYN_OP_EXECUTION_LIST,
    SYN_OP_EXECUTION_GET,
    SYN_OP_EXECUTION_OUTPUT,
    SYN_OP_WORKFLOW_RUNS,
    SYN_OP_EVENTS_REPLAY,
    SYN_OP_METRICS_GET, /* the broker's counters as metric families (common/metrics.h) */
    /* the fleet (issue 18): GET /workers, GET /ready */
    SYN_OP_WORKERS_LIST,
    SYN_OP_READY,
    /* the team controls (issue 19): POST /executions/{id}/rerun */
    SYN_OP_EXECUTION_RERUN,
    /* the original's clients (issue 17): the cost routes, GET /api/v1/metrics */
    SYN_OP_COSTS_REPORT,
    /* approval gates (issue 17): POST /executions/{id}/approve, /reject */
    SYN_OP_EXECUTION_APPROVE,
    SYN_OP_EXECUTION_REJECT,
    /* artifacts (issue 17): an execution's list; a range of one file's bytes */
    SYN_OP_EXECUTION_ARTIFACTS,
    SYN_OP_EXECUTION_ARTIFACT,
    SYN_OP_COUNT
} syn_op_t;

/* execution.start's idempotency_key (the Idempotency-Key header) is 1 to this many
 * printable ASCII characters; an answer replayed for it carries SYN_OP_REPLAYED:
 * true, which the gateway turns into the Idempotent-Replayed header. */
#define SYN_OP_IDEMPOTENCY_KEY_MAX 255
#define SYN_OP_REPLAYED "idempotent_replayed"
/* execution.start's priority: higher runs first among waiting phases. */
#define SYN_OP_PRIORITY_MIN (-1000000)
#define SYN_OP_PRIORITY_MAX 1000000
/* Whether key is such a key. */
bool syn_op_idempotency_key_ok(const char *key);

/* events.replay answers at most this many events per page. */
#define SYN_OP_REPLAY_LIMIT_MAX 1000
/* The most bytes one execution.artifact reply carries (base64 in a reply well under
 * SYN_MSG_MAX_SIZE). */
#define SYN_OP_ARTIFACT_READ_MAX (1024 * 1024)

typedef enum {
    SYN_ARG_STRING,     /* text */
    SYN_ARG_INTEGER,    /* within [min, max] */
    SYN_ARG_BOOLEAN,
    SYN_ARG_OBJECT,     /* any object */
    SYN_ARG_STRINGS,    /* array of strings */
    SYN_ARG_STRING_MAP, /* object whose values are strings */
    SYN_ARG_NUMBER,     /* a number (integer or float) greater than min, at most max */
} syn_arg_type_t;

typedef struct {
    const char *name;
    syn_arg_type_t type;
    bool required;
    int64_t min, max; /* SYN_ARG_INTEGER (inclusive), SYN_ARG_NUMBER (min exclusive) */
} syn_op_arg_t;

/* At most this many arguments per op. */
#define SYN_OP_ARGS_MAX 8

typedef struct {
    const char *name;
    syn_op_arg_t args[SYN_OP_ARGS_MAX];
    size_t arg_count;
    const char *more; /* further fields its handler checks, or NULL */
} syn_op_spec_t;

/* The op's name on the wire ("execution.start"); op must be one of syn_op_t. */
const char *syn_op_name(syn_op_t op);
/* The op's name and argument schema. */
const syn_op_spec_t *syn_op_spec(syn_op_t op);
/* 0 with *op set when name is an op, else -1 (NULL included). */
int syn_op_find(const char *name, syn_op_t *op);

/* 0 when args is an object whose listed fields have their types and ranges, else -1
 * with the first fault in why (the broker's wording: "phase_id is required",
 * "limit must be an integer from 1 to 100", ...). */
int syn_op_check_args(syn_op_t op, const json_t *args, char *why, size_t whylen);

#endif
