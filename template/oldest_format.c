/* oldest_format: what the original's oldest example workflows mean in syn. Its first
 * examples (simple-research, research-and-plan) name phases without ids or orders,
 * declare each phase's inputs (a workflow input, or an earlier phase's output under
 * another name) and outputs on the phase, and list the workflow's deliverables. The
 * YAML loader keeps all of it as written and derives syn's own keys from it here, so
 * the stored workflow runs as the original ran it and exports to YAML that loads back
 * to the same workflow (every derivation is a no-op on its own output). It stands
 * alone because none of it applies to the original's current format or to syn's. */
#include "template/oldest_format.h"

#include <string.h>

/* A phase input that is an earlier phase's output, not a workflow input. */
static bool is_artifact_input(const json_t *input)
{
    const char *type = json_string_value(json_object_get(input, "type"));
    return json_object_get(input, "from_phase") || (type && strcmp(type, "artifact") == 0);
}

static bool declared(const json_t *declarations, const char *name)
{
    size_t i;
    const json_t *d;
    json_array_foreach(declarations, i, d) {
        const char *known = json_string_value(json_object_get(d, "name"));
        if (known && strcmp(known, name) == 0)
            return true;
    }
    return false;
}

/* A phase's string inputs are the workflow's inputs: declared once, the first
 * declaration winning (the original asked for each when the run started). */
static void declare_inputs(json_t *workflow, const json_t *inputs)
{
    json_t *declarations = json_object_get(workflow, "input_declarations");
    size_t i;
    const json_t *input;
    json_array_foreach(inputs, i, input) {
        const char *name = json_string_value(json_object_get(input, "name"));
        if (!name || is_artifact_input(input) || declared(declarations, name))
            continue;
        if (!declarations) {
            declarations = json_array();
            json_object_set_new(workflow, "input_declarations", declarations);
        }
        json_t *declaration = json_pack("{s:s}", "name", name);
        static const char *const copied[] = {"description", "required", "default"};
        for (size_t k = 0; k < sizeof copied / sizeof copied[0]; k++) {
            json_t *value = json_object_get(input, copied[k]);
            if (value)
                json_object_set(declaration, copied[k], value);
        }
        json_array_append_new(declarations, declaration);
    }
}

/* The names of a phase's outputs are its output_artifacts, as the current format says. */
static void name_outputs(json_t *phase)
{
    const json_t *outputs = json_object_get(phase, "outputs");
    if (json_array_size(outputs) == 0 || json_array_size(json_object_get(phase, "output_artifacts")))
        return;
    json_t *names = json_array();
    size_t i;
    const json_t *output;
    json_array_foreach(outputs, i, output)
        json_array_append(names, json_object_get(output, "name"));
    json_object_set_new(phase, "output_artifacts", names);
}

void template_oldest_format(json_t *workflow)
{
    size_t i;
    json_t *phase;
    json_array_foreach(json_object_get(workflow, "phases"), i, phase) {
        declare_inputs(workflow, json_object_get(phase, "inputs"));
        name_outputs(phase);
    }
}

const char *template_oldest_phase_id(const json_t *phase)
{
    const char *name = json_string_value(json_object_get(phase, "name"));
    return name && *name ? name : NULL;
}
