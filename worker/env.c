#include "worker/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* SYN_WORKSPACE last: the only one set only when there is a workspace. */
static const char *const job_vars[] = {"SYN_EXECUTION_ID",    "SYN_WORKFLOW_ID",
                                       "SYN_PHASE_ID",        "SYN_ATTEMPT",
                                       "SYN_MODEL",           "SYN_INPUT_ARTIFACTS",
                                       "SYN_OUTPUT_ARTIFACTS", "SYN_WORKSPACE"};
#define JOB_VARS (sizeof job_vars / sizeof job_vars[0])

typedef struct {
    char **items;
    size_t count, cap;
    bool failed;
} vec_t;

static void push(vec_t *v, char *entry)
{
    if (!entry) {
        v->failed = true;
        return;
    }
    if (v->count + 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        char **grown = realloc(v->items, cap * sizeof *grown);
        if (!grown) {
            free(entry);
            v->failed = true;
            return;
        }
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->count++] = entry;
    v->items[v->count] = NULL;
}

static char *pair(const char *name, size_t name_len, const char *value)
{
    char *entry = NULL;
    if (asprintf(&entry, "%.*s=%s", (int)name_len, name, value) < 0)
        return NULL;
    return entry;
}

/* Whether the entry "NAME=..." names one of the first n names in list. */
static bool named(const char *entry, const char *name, size_t len)
{
    return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

static bool is_job_var(const char *entry)
{
    for (size_t i = 0; i < JOB_VARS; i++)
        if (named(entry, job_vars[i], strlen(job_vars[i])))
            return true;
    return false;
}

/* Drops an earlier entry for the same name, so each name appears once. */
static void unset(vec_t *v, const char *name, size_t len)
{
    for (size_t i = 0; i < v->count; i++)
        if (named(v->items[i], name, len)) {
            free(v->items[i]);
            memmove(&v->items[i], &v->items[i + 1], (v->count - i) * sizeof(char *));
            v->count--;
            return;
        }
}

static void copy_from_worker(vec_t *v, const char *name, size_t len)
{
    char key[256];
    if (len == 0 || len >= sizeof key)
        return;
    memcpy(key, name, len);
    key[len] = '\0';
    const char *value = getenv(key);
    if (value) {
        unset(v, name, len);
        push(v, pair(name, len, value));
    }
}

/* The strings of names ([str] or NULL) joined by commas: a new string, "" for none. */
static char *joined(const json_t *names)
{
    size_t len = 1;
    for (size_t i = 0; i < json_array_size(names); i++)
        len += json_string_length(json_array_get(names, i)) + 1;
    char *text = malloc(len);
    if (!text)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(names); i++) {
        const json_t *name = json_array_get(names, i);
        if (!json_is_string(name))
            continue;
        if (n > 0)
            text[n++] = ',';
        memcpy(text + n, json_string_value(name), json_string_length(name));
        n += json_string_length(name);
    }
    text[n] = '\0';
    return text;
}

char **worker_env_build(const worker_job_t *job, const char *home, const char *const *secrets,
                        const char *pass_env, const char *const *extra)
{
    vec_t v = {0};
    const char *path = getenv("PATH");
    push(&v, pair("PATH", 4, path ? path : "/usr/local/bin:/usr/bin:/bin"));
    if (home)
        push(&v, pair("HOME", 4, home));
    copy_from_worker(&v, "LANG", 4);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "SYN_", 4) == 0 && strchr(*e, '=') && !(job && is_job_var(*e)))
            push(&v, strdup(*e));
    if (job) {
        char attempt[32];
        snprintf(attempt, sizeof attempt, "%llu", (unsigned long long)job->attempt);
        char *reads = joined(job->input_artifacts), *writes = joined(job->output_artifacts);
        const char *values[JOB_VARS] = {job->execution_id, job->workflow_id, job->phase_id,
                                        attempt, job->model ? job->model : "",
                                        reads ? reads : "", writes ? writes : "",
                                        job->cwd ? job->cwd : ""};
        v.failed |= !reads || !writes;
        for (size_t i = 0; i < JOB_VARS; i++)
            if (i < JOB_VARS - 1 || job->cwd)
                push(&v, pair(job_vars[i], strlen(job_vars[i]), values[i]));
        free(reads);
        free(writes);
    }
    for (size_t i = 0; secrets && secrets[i]; i++)
        copy_from_worker(&v, secrets[i], strlen(secrets[i]));
    for (const char *p = pass_env; p && *p;) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t len = strcspn(p, ", \t");
        copy_from_worker(&v, p, len);
        p += len;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        const char *eq = strchr(extra[i], '=');
        if (eq)
            unset(&v, extra[i], (size_t)(eq - extra[i]));
        push(&v, strdup(extra[i]));
    }
    if (v.failed) {
        worker_env_free(v.items);
        return NULL;
    }
    return v.items;
}

void worker_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

const char *worker_env_get(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (named(env[i], name, len))
            return env[i] + len + 1;
    return NULL;
}
