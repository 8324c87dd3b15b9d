#include "worker/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const job_vars[] = {"SYN_EXECUTION_ID", "SYN_WORKFLOW_ID", "SYN_PHASE_ID",
                                       "SYN_ATTEMPT", "SYN_MODEL", "SYN_WORKSPACE"};
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
        const char *values[JOB_VARS] = {job->execution_id, job->workflow_id, job->phase_id,
                                        attempt, job->model ? job->model : "",
                                        job->cwd ? job->cwd : ""};
        for (size_t i = 0; i < JOB_VARS; i++)
            if (i < JOB_VARS - 1 || job->cwd)
                push(&v, pair(job_vars[i], strlen(job_vars[i]), values[i]));
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
