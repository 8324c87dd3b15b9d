/* prompt: an attempt's prompt (prompt.h). It stands alone, pure, so what an
 * agent is told can be checked without a dispatch. */
#include "broker/prompt.h"

#include "common/repo_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends "## Operator messages" with every message bound to phase_id. */
static char *add_operator_messages(char *prompt, const json_t *messages, const char *phase_id,
                                   char *err, size_t errlen)
{
    size_t i, extra = 0;
    const json_t *m;
    json_array_foreach(messages, i, m)
        if (json_is_string(json_object_get(m, "phase_id")) &&
            strcmp(json_string_value(json_object_get(m, "phase_id")), phase_id) == 0)
            extra += strlen(json_string_value(json_object_get(m, "message"))) + 16;
    if (extra == 0)
        return prompt;
    size_t len = strlen(prompt);
    static const char heading[] = "\n\n## Operator messages\n\n";
    if (len + sizeof heading + extra > BROKER_PROMPT_MAX) {
        snprintf(err, errlen, "operator messages make the prompt too large");
        free(prompt);
        return NULL;
    }
    char *out = realloc(prompt, len + sizeof heading + extra);
    if (!out) {
        snprintf(err, errlen, "out of memory adding operator messages");
        free(prompt);
        return NULL;
    }
    memcpy(out + len, heading, sizeof heading);
    len += sizeof heading - 1;
    json_array_foreach(messages, i, m)
    {
        const char *bound = json_string_value(json_object_get(m, "phase_id"));
        if (!bound || strcmp(bound, phase_id) != 0)
            continue;
        len += (size_t)sprintf(out + len, "- [%s] %s\n",
                               json_string_value(json_object_get(m, "role")),
                               json_string_value(json_object_get(m, "message")));
    }
    return out;
}

/* Renders the current phase's prompt from the execution's inputs, task and the
 * outputs of the phases before it, then the operator messages meant for it. */
char *broker_prompt_render(broker_execution_t *exec, broker_phase_t *phase, char *err,
                           size_t errlen)
{
    size_t ninputs = json_object_size(exec->inputs);
    size_t index = (size_t)(phase - exec->phases);
    broker_render_var_t *inputs = calloc(ninputs + 1, sizeof *inputs);
    size_t named = json_object_size(phase->output_names);
    broker_render_var_t *outputs = calloc(index + named + 1, sizeof *outputs);
    char *prompt = NULL;
    if (!inputs || !outputs) {
        snprintf(err, errlen, "out of memory rendering the prompt");
        goto done;
    }
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(exec->inputs, key, value)
        if (json_is_string(value))
            inputs[n++] = (broker_render_var_t){key, json_string_value(value)};
    size_t m = 0;
    for (size_t i = 0; i < index; i++)
        if (exec->phases[i].status == BROKER_PHASE_COMPLETED && exec->phases[i].output)
            outputs[m++] = (broker_render_var_t){exec->phases[i].phase_id, exec->phases[i].output};
    /* the oldest format's artifact inputs: an earlier phase's output by another name */
    json_object_foreach(phase->output_names, key, value)
        for (size_t i = 0; i < index; i++)
            if (strcmp(exec->phases[i].phase_id, json_string_value(value)) == 0 &&
                exec->phases[i].status == BROKER_PHASE_COMPLETED && exec->phases[i].output)
                outputs[m++] = (broker_render_var_t){key, exec->phases[i].output};
    /* The original's builtins: the execution's (first) repository as given, and the
     * URL git clones; "" when it has none. */
    syn_repo_spec_t repo = {0};
    const char *first = json_string_value(json_array_get(exec->repos, 0));
    char ignored[256];
    if (first && syn_repo_spec_parse(first, &repo, ignored, sizeof ignored) != 0)
        repo = (syn_repo_spec_t){0};
    broker_render_var_t run_vars[] = {
        {"repository", repo.base ? repo.base : ""},
        {"repo_url", repo.url ? repo.url : ""},
        {"repo_ref", repo.ref ? repo.ref : ""},
    };
    broker_render_ctx_t ctx = {
        .execution_id = exec->id,
        .workflow_id = exec->workflow_id,
        .inputs = inputs,
        .input_count = n,
        .run_vars = run_vars,
        .run_var_count = sizeof run_vars / sizeof run_vars[0],
        .outputs = outputs,
        .output_count = m,
        .task = exec->task,
    };
    prompt = broker_render(phase->prompt_template, &ctx, NULL, err, errlen);
    syn_repo_spec_clear(&repo);
    if (prompt)
        prompt = add_operator_messages(prompt, exec->messages, phase->phase_id, err, errlen);
done:
    free(inputs);
    free(outputs);
    return prompt;
}
