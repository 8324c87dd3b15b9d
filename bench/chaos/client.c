/* client: the soak's users. One thread per gateway submits at a steady pace
 * (half the rate each), retries a submit that got 503, and later cancels,
 * pauses (then resumes) or injects into some of what it submitted. Each submit's
 * workflow, phase lengths and control are a function of (seed, its number), so
 * a seed replays the same work whatever the timing. Apart from the submits the
 * clients touch no state: what they were told is what the checker compares the
 * store against. */
#include "bench/chaos/chaos.h"
#include "bench/synload/batch.h"
#include "bench/synload/hclient.h"
#include "bench/synload/localproc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBMIT_TIMEOUT_MS 5000
#define RETRY_503_MAX 5

/* The soak's three workflows. Every prompt steers the mock agent and the
 * command agent (bench/chaos/chaos_agent.sh) alike: "#mock sleep MS" is the
 * phase's length, "#mock fail" fails it, FAIL_TIMES n fails the command agent's
 * first n runs of that phase (retries: 2 then rerun it). chaos-retry's first
 * phase runs only on command workers, the others on any. */
const char *const chaos_workflow_ids[] = {"chaos-chain", "chaos-retry", "chaos-fail", NULL};

static const char *const WORKFLOW_JSON[] = {
    "{\"id\":\"chaos-chain\",\"name\":\"chaos: three phases\",\"phases\":["
    "{\"phase_id\":\"p1\",\"name\":\"one\",\"order\":1,\"max_attempts\":4,"
    "\"prompt_template\":\"#mock sleep {{s1}}\\n$ARGUMENTS|p1\"},"
    "{\"phase_id\":\"p2\",\"name\":\"two\",\"order\":2,\"max_attempts\":4,"
    "\"prompt_template\":\"#mock sleep {{s2}}\\n{{p1}}|p2\"},"
    "{\"phase_id\":\"p3\",\"name\":\"three\",\"order\":3,\"max_attempts\":4,"
    "\"prompt_template\":\"#mock sleep {{s3}}\\n{{p2}}|p3\"}]}",
    "{\"id\":\"chaos-retry\",\"name\":\"chaos: a flaky command phase, retried\",\"phases\":["
    "{\"phase_id\":\"p1\",\"name\":\"flaky\",\"order\":1,\"provider\":\"command\","
    "\"retries\":2,\"retry_backoff_seconds\":0.5,\"max_attempts\":6,"
    "\"prompt_template\":\"#mock sleep {{s1}}\\nFAIL_TIMES {{f}}\\n$ARGUMENTS|p1\"},"
    "{\"phase_id\":\"p2\",\"name\":\"after\",\"order\":2,\"max_attempts\":4,"
    "\"prompt_template\":\"#mock sleep {{s2}}\\n{{p1}}|p2\"}]}",
    "{\"id\":\"chaos-fail\",\"name\":\"chaos: fails on purpose\",\"phases\":["
    "{\"phase_id\":\"p1\",\"name\":\"fine\",\"order\":1,\"max_attempts\":4,"
    "\"prompt_template\":\"#mock sleep {{s1}}\\n$ARGUMENTS|p1\"},"
    "{\"phase_id\":\"p2\",\"name\":\"broken\",\"order\":2,"
    "\"prompt_template\":\"#mock sleep {{s2}}\\n#mock fail planned failure\\n{{p1}}\"}]}",
};

int chaos_register_workflows(chaos_t *self)
{
    char host[64];
    int port;
    if (hclient_parse_url(stack_gateway_url(self->stack, 0), host, sizeof host, &port) != 0)
        return -1;
    hclient_t *hc = hclient_new(host, port);
    int rc = hc ? 0 : -1;
    for (int i = 0; chaos_workflow_ids[i] && rc == 0; i++) {
        int status = hclient_request(hc, "POST", "/workflows", WORKFLOW_JSON[i], 10000);
        if (status != 200 && status != 201) {
            fprintf(stderr, "chaos: POST /workflows %s: %d %s\n", chaos_workflow_ids[i], status,
                    status < 0 ? hclient_error(hc) : hclient_body(hc, NULL));
            rc = -1;
        }
    }
    hclient_destroy(&hc);
    return rc;
}

/* Streams of chaos_rand per submit. */
enum { R_WORKFLOW = 1, R_S1, R_S2, R_S3, R_FAILS, R_ACTION, R_ACTION_AT, R_RESUME_AT };

typedef enum { DUE_RESUBMIT, DUE_ACTION, DUE_RESUME } due_kind_t;

/* Something the thread must do later for submit `index`. */
typedef struct {
    double at;
    due_kind_t kind;
    size_t index;
} due_t;

typedef struct {
    chaos_t *chaos;
    int gateway;
    hclient_t *hc;
    due_t *due;
    size_t ndue, capdue;
} client_t;

static void schedule(client_t *c, double at, due_kind_t kind, size_t index)
{
    if (c->ndue == c->capdue) {
        size_t cap = c->capdue ? c->capdue * 2 : 64;
        due_t *grown = realloc(c->due, cap * sizeof *grown);
        if (!grown)
            return;
        c->due = grown;
        c->capdue = cap;
    }
    c->due[c->ndue++] = (due_t){at, kind, index};
}

/* A copy of submit index's record (the array may move under other threads). */
static chaos_submit_t submit_get(chaos_t *self, size_t index)
{
    pthread_mutex_lock(&self->lock);
    chaos_submit_t s = self->subs[index];
    pthread_mutex_unlock(&self->lock);
    return s;
}

static void submit_put(chaos_t *self, size_t index, const chaos_submit_t *s)
{
    pthread_mutex_lock(&self->lock);
    self->subs[index] = *s;
    pthread_mutex_unlock(&self->lock);
}

/* A new submit record numbered n; its index, or (size_t)-1. */
static size_t submit_new(client_t *c, long n)
{
    chaos_t *self = c->chaos;
    uint64_t seed = self->cfg.seed;
    chaos_submit_t s = {0};
    snprintf(s.tag, sizeof s.tag, "chaos-%llu-%ld", (unsigned long long)seed, n);
    double w = chaos_uniform(chaos_rand(seed, R_WORKFLOW, (uint64_t)n), 0, 1);
    s.workflow = w < 0.6 ? 0 : w < 0.85 ? 1 : 2;
    s.gateway = c->gateway;
    s.t_submit = chaos_now(self);
    double a = chaos_uniform(chaos_rand(seed, R_ACTION, (uint64_t)n), 0, 1);
    s.action = a < 0.1 ? ACT_CANCEL : a < 0.2 ? ACT_PAUSE : a < 0.3 ? ACT_INJECT : ACT_NONE;
    pthread_mutex_lock(&self->lock);
    size_t index = (size_t)-1;
    if (self->nsubs == self->capsubs) {
        size_t cap = self->capsubs ? self->capsubs * 2 : 1024;
        chaos_submit_t *grown = realloc(self->subs, cap * sizeof *grown);
        if (grown) {
            self->subs = grown;
            self->capsubs = cap;
        }
    }
    if (self->nsubs < self->capsubs) {
        index = self->nsubs++;
        self->subs[index] = s;
    }
    pthread_mutex_unlock(&self->lock);
    return index;
}

/* The submit's POST body: its tag as the task, phase lengths 0-2 s, how often
 * the flaky phase fails (0-2: within its retries). */
static void submit_body(const chaos_t *self, long n, char *buf, size_t size, const char *tag)
{
    uint64_t seed = self->cfg.seed;
    int s1 = (int)chaos_uniform(chaos_rand(seed, R_S1, (uint64_t)n), 0, 2000);
    int s2 = (int)chaos_uniform(chaos_rand(seed, R_S2, (uint64_t)n), 0, 2000);
    int s3 = (int)chaos_uniform(chaos_rand(seed, R_S3, (uint64_t)n), 0, 2000);
    int f = (int)chaos_uniform(chaos_rand(seed, R_FAILS, (uint64_t)n), 0, 3);
    snprintf(buf, size,
             "{\"task\":\"%s\",\"inputs\":{\"s1\":\"%d\",\"s2\":\"%d\",\"s3\":\"%d\",\"f\":\"%d\"}}",
             tag, s1, s2, s3, f);
}

static long tag_number(const char *tag)
{
    const char *dash = strrchr(tag, '-');
    return dash ? strtol(dash + 1, NULL, 10) : 0;
}

/* One POST of submit index; schedules its retry (503) or its control (200). */
static void do_submit(client_t *c, size_t index)
{
    chaos_t *self = c->chaos;
    chaos_submit_t s = submit_get(self, index);
    long n = tag_number(s.tag);
    char path[128], body[256];
    snprintf(path, sizeof path, "/workflows/%s/execute", chaos_workflow_ids[s.workflow]);
    submit_body(self, n, body, sizeof body, s.tag);
    int status = hclient_request(c->hc, "POST", path, body, SUBMIT_TIMEOUT_MS);
    s.tries++;
    s.status = status;
    s.t_answer = chaos_now(self);
    if (status == 200 &&
        batch_json_string(hclient_body(c->hc, NULL), "execution_id", s.id, sizeof s.id) != 0)
        s.status = -2; /* a 200 without an id: counted as no answer */
    if (status == 503) {
        s.got_503++;
        if (s.tries < RETRY_503_MAX && !self->stop_submits)
            schedule(c, s.t_answer + 1.0, DUE_RESUBMIT, index);
    }
    if (s.status == 200 && s.action != ACT_NONE) {
        uint64_t seed = self->cfg.seed;
        double after = chaos_uniform(chaos_rand(seed, R_ACTION_AT, (uint64_t)n), 0, 3);
        schedule(c, s.t_answer + after, DUE_ACTION, index);
    }
    submit_put(self, index, &s);
}

/* Sends the control (or the resume after a pause); retried while the stack
 * answers 503 or not at all, so a pause is always followed by a resume. */
static void do_control(client_t *c, const due_t *due)
{
    chaos_t *self = c->chaos;
    chaos_submit_t s = submit_get(self, due->index);
    char path[160];
    const char *verb = due->kind == DUE_RESUME         ? "resume"
                       : s.action == ACT_CANCEL        ? "cancel"
                       : s.action == ACT_PAUSE         ? "pause"
                                                       : "inject";
    const char *body = s.action == ACT_INJECT && due->kind == DUE_ACTION
                           ? "{\"message\":\"chaos says hello\",\"role\":\"user\"}"
                           : "{}";
    snprintf(path, sizeof path, "/executions/%s/%s", s.id, verb);
    int status = hclient_request(c->hc, "POST", path, body, SUBMIT_TIMEOUT_MS);
    double now = chaos_now(self);
    if (due->kind == DUE_RESUME) {
        if (status == 200 || status == 400)
            s.resumed = true;
        else
            schedule(c, now + 1.0, DUE_RESUME, due->index);
    } else {
        s.action_status = status;
        if (s.action == ACT_PAUSE) {
            s.pause_sent = true;
            double later = chaos_uniform(
                chaos_rand(self->cfg.seed, R_RESUME_AT, (uint64_t)tag_number(s.tag)), 0.5, 3);
            schedule(c, now + later, DUE_RESUME, due->index);
        } else if ((status < 0 || status == 503) && !self->stop_submits) {
            schedule(c, now + 1.0, DUE_ACTION, due->index);
        }
    }
    submit_put(self, due->index, &s);
}

/* Runs (and removes) the earliest due item when its time has come; 1 when one
 * ran. Resubmits stop with the soak; controls and resumes run to the end. */
static int run_due(client_t *c)
{
    if (!c->ndue)
        return 0;
    size_t first = 0;
    for (size_t i = 1; i < c->ndue; i++)
        if (c->due[i].at < c->due[first].at)
            first = i;
    if (c->due[first].at > chaos_now(c->chaos))
        return 0;
    due_t due = c->due[first];
    c->due[first] = c->due[--c->ndue];
    if (due.kind == DUE_RESUBMIT) {
        if (!c->chaos->stop_submits)
            do_submit(c, due.index);
    } else {
        do_control(c, &due);
    }
    return 1;
}

void *chaos_client_main(void *arg)
{
    chaos_client_arg_t *a = arg;
    chaos_t *self = a->chaos;
    client_t c = {.chaos = self, .gateway = a->gateway};
    char host[64];
    int port;
    if (hclient_parse_url(stack_gateway_url(self->stack, a->gateway), host, sizeof host, &port) ==
        0)
        c.hc = hclient_new(host, port);
    if (!c.hc) {
        fprintf(stderr, "chaos: no client for gateway %d\n", a->gateway + 1);
        *self->interrupted = 1;
    }
    double interval = CHAOS_GATEWAYS / self->cfg.rate;
    double next = chaos_now(self) + interval * a->gateway / CHAOS_GATEWAYS;
    /* After the soak the controls still due (resumes above all) run on until
     * none is left or the settle deadline (stop_clients); a resume never
     * answered leaves a paused execution, which the checker finds stuck. */
    while (!*self->interrupted) {
        if (run_due(&c))
            continue;
        double now = chaos_now(self);
        if (self->stop_submits) {
            if (!c.ndue || self->stop_clients)
                break;
        } else if (now >= next) {
            pthread_mutex_lock(&self->lock);
            long n = self->next_submit++;
            pthread_mutex_unlock(&self->lock);
            size_t index = submit_new(&c, n);
            if (index != (size_t)-1)
                do_submit(&c, index);
            next += interval;
            if (next < chaos_now(self) - 5 * interval)
                next = chaos_now(self); /* fell behind (a frozen gateway): no burst */
            continue;
        }
        localproc_sleep_ms(10);
    }
    pthread_mutex_lock(&self->lock);
    self->clients_done++;
    pthread_mutex_unlock(&self->lock);
    hclient_destroy(&c.hc);
    free(c.due);
    return NULL;
}
