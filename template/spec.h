/* spec: the one specification of a workflow — its fields, their types, limits and
 * defaults, and the words of every refusal — and the walk that checks a JSON value
 * against it.
 *
 * A workflow comes in three ways: a JSON body (POST /workflows, gateway/validate.c),
 * a YAML document (template/workflow.c, which converts each YAML node by the same
 * field) and the broker's own check of workflow.create / workflow.install
 * (broker/api.c, which trusts no client). All three walk the tables here, so a limit
 * changes in one place and the three give the same verdict
 * (tests/unit/test_template_spec.c walks every boundary through all three). The
 * contract is docs/api.md; the order of the tables is its order, which is the order
 * pydantic-style errors are listed in.
 *
 * The walk is a generic checker of a JSON object against a table, so the gateway's
 * other bodies (execute, control, …) are tables walked by it too. It reports each
 * problem as a spec_violation_t; spec_pydantic_error words it as the HTTP API does
 * ({loc, msg, type}), spec_sentence as the broker does ("phases[0].order must be an
 * integer of at least 0"). The YAML wording (with lines) is template/schema.c's. */
#ifndef SYN_TEMPLATE_SPEC_H
#define SYN_TEMPLATE_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The bounds of a phase's settings (docs/api.md). */
#define SPEC_TIMEOUT_MIN 1
#define SPEC_TIMEOUT_MAX 86400
#define SPEC_MAX_ATTEMPTS_MAX 10
#define SPEC_RETRIES_MAX 10
#define SPEC_MAX_CONCURRENT_MAX 100000 /* a workflow's max_concurrent */
#define SPEC_BACKOFF_MAX 86400
#define SPEC_MAX_TOKENS_MAX 10000000

typedef enum {
    SPEC_STRING,      /* a string of at least min_len characters */
    SPEC_ID,          /* a string matching SYN_ID_PATTERN (common/ids.h) */
    SPEC_INT,         /* an integer within the bounds */
    SPEC_NUMBER,      /* an integer or a float within the bounds */
    SPEC_BOOL,        /* true / false */
    SPEC_STRING_LIST, /* a list of strings */
    SPEC_STRING_MAP,  /* an object of strings */
    SPEC_OBJECT_LIST, /* a list of at least min_len objects of the table items */
    SPEC_OBJECT,      /* one object of the table items (the original's phase `agent`) */
    SPEC_LITERAL,     /* one of choices (a pydantic Literal: type literal_error) */
    SPEC_ENUM,        /* a string, one of choices (a pydantic str Enum: type enum) */
    SPEC_FILE,        /* YAML only: a file holding this object's prompt (prompt_file) */
    SPEC_REPOSITORY,  /* a repository: a URL or owner/repo string, or {url, ref}; stored
                         as {url, ref?} (the original's `repository`) */
} spec_kind_t;

typedef struct spec_object_t spec_object_t;

typedef struct {
    const char *name; /* the HTTP API's key; NULL ends a table */
    const char *yaml; /* the YAML key when it differs (type, inputs, a phase's id) */
    spec_kind_t kind;
    bool required;
    bool has_min, has_max; /* bounds of SPEC_INT / SPEC_NUMBER */
    bool min_exclusive;    /* the value must be greater than min (a budget: > 0) */
    long long min, max;
    size_t min_len;        /* characters of a string, items of an object list */
    const spec_object_t *items;  /* SPEC_OBJECT_LIST, SPEC_OBJECT */
    const char *const *choices;  /* SPEC_LITERAL / SPEC_ENUM, NULL-terminated */
    const char *fallback;  /* JSON text stored when the key is absent; NULL: only when given */
    const char *yaml_or;   /* in YAML this key or that one gives the value (prompt_file) */
    const char *alias;     /* in YAML, another key meaning the same (the original's `tools`) */
} spec_field_t;

struct spec_object_t {
    const spec_field_t *fields; /* ends with a NULL name */
};

/* A workflow (POST /workflows), its input declarations and phases, and the settings
 * a phase edit (PUT /workflows/{id}/phases/{phase_id}) may change. */
extern const spec_object_t spec_workflow;
extern const spec_object_t spec_input;
extern const spec_object_t spec_phase;
extern const spec_object_t spec_phase_update;

/* The values workflow_type and classification may take (NULL-terminated): in JSON
 * bodies, YAML documents, the broker and the ?workflow_type= filter alike. */
extern const char *const spec_workflow_types[];
extern const char *const spec_classifications[];
extern const char *const spec_networks[];
/* A phase's execution_type (the original's) and approval: human_in_loop or
 * approval: required make the phase an approval gate (docs/templates.md). */
extern const char *const spec_execution_types[];
extern const char *const spec_approvals[];

/* The original's phase `agent` ({provider, model, agent_id, allow_delegation}). */
extern const spec_object_t spec_agent;

/* The provider a stored phase runs on: its own `provider`, else the one its `agent`
 * names (`claude-interactive` is syn's headless `claude`, or the agent its agent_id
 * names), else NULL (any worker). Points into phase. */
const char *spec_phase_provider(const json_t *phase);

/* The model of a stored phase: its own `model`, else its agent's (as the original's
 * top-level model wins over agent.model), else NULL. Points into phase. */
const char *spec_phase_model(const json_t *phase);

/* What a stored workflow asks for that syn does differently or cannot do (its
 * agents' interactive terminals, delegation): one sentence each, naming the phase.
 * A new array, empty when there is nothing to say. */
json_t *spec_workflow_warnings(const json_t *workflow);

/* Whether a stored phase is an approval gate: the execution stops before it until a
 * person approves (POST /executions/{id}/approve). */
bool spec_phase_is_gate(const json_t *phase);

typedef enum {
    SPEC_MISSING,         /* a required key is absent */
    SPEC_EXTRA,           /* a key the table does not declare */
    SPEC_NOT_OBJECT,      /* the value (or a list item) is not an object */
    SPEC_WRONG_TYPE,      /* the value is not of the field's kind */
    SPEC_ITEM_NOT_STRING, /* an item of a SPEC_STRING_LIST / _MAP is not a string */
    SPEC_TOO_SMALL,       /* below the field's min (or at it, when min_exclusive) */
    SPEC_TOO_LARGE,       /* above the field's max */
    SPEC_TOO_SHORT,       /* fewer than min_len characters / items */
    SPEC_PATTERN,         /* a SPEC_ID that does not match the pattern */
    SPEC_NOT_CHOICE,      /* not one of the field's choices */
} spec_problem_t;

typedef struct {
    const json_t *loc;          /* where: keys and indexes, as a JSON array */
    spec_problem_t problem;
    const spec_field_t *field;  /* the field broken; NULL for SPEC_EXTRA / a whole object */
    size_t count;               /* SPEC_TOO_SHORT: the items given */
} spec_violation_t;

typedef void (*spec_report_fn)(void *ctx, const spec_violation_t *violation);

/* Checks value against object: declared fields in table order, then unknown keys in
 * the order given (as pydantic does); an optional key given as null counts as absent.
 * Returns the declared fields given (null-valued optional keys left out), in table
 * order, as a new object; or NULL after reporting every violation found. loc is
 * where value is (["body"] for an HTTP body, [] for broker arguments). */
json_t *spec_check(const spec_object_t *object, json_t *value, const json_t *loc,
                   spec_report_fn report, void *ctx);

/* The HTTP API's error item {loc, msg, type} (docs/api.md, "Request-shape errors"). */
json_t *spec_pydantic_error(const spec_violation_t *violation);

/* The broker's sentence: "<field path> <what is wrong>", e.g. "phases[0].timeout_seconds
 * must be an integer from 1 to 86400". */
void spec_sentence(const spec_violation_t *violation, char *buf, size_t size);

/* pydantic's wording of a set of choices: "Input should be 'a', 'b' or 'c'". */
void spec_choices_message(const char *const *choices, char *msg, size_t size);

/* The stored form of a checked object: fields with a fallback (or required) first,
 * in table order, absent ones filled; then the optional settings kept only when
 * given. Object lists are filled item by item. A new object. */
json_t *spec_with_defaults(const spec_object_t *object, const json_t *checked);

/* The content rule after the shape: the first repeated phase_id, else the first
 * repeated order, as the 422 body {"detail":"Duplicate phase_id 'x' in phases[0] and
 * phases[2]"} (a new reference), or NULL when every phase is unique. phases must
 * have passed spec_check. */
json_t *spec_duplicate_phase(const json_t *phases);

/* The field of object with this HTTP API name, or NULL. */
const spec_field_t *spec_field(const spec_object_t *object, const char *name);

/* The key of field in YAML. */
const char *spec_yaml_key(const spec_field_t *field);

#endif
