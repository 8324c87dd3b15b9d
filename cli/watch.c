/* watch: an execution's state from its event frames, and its two renderings (see
 * watch.h). */
#include "cli/watch.h"

#include "cli/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum {
    PHASE_PENDING,
    PHASE_QUEUED,
    PHASE_RUNNING,
    PHASE_RETRYING,
    PHASE_COMPLETED,
    PHASE_FAILED,
    PHASE_CANCELLED,
    PHASE_SKIPPED,
} phase_status_t;

static const struct {
    const char *name, *symbol, *color;
} phase_looks[] = {
    [PHASE_PENDING] = {"pending", "○", TABLE_DIM},
    [PHASE_QUEUED] = {"queued", "◌", TABLE_BLUE},
    [PHASE_RUNNING] = {"running", "●", TABLE_YELLOW},
    [PHASE_RETRYING] = {"retrying", "↻", TABLE_YELLOW},
    [PHASE_COMPLETED] = {"completed", "✓", TABLE_GREEN},
    [PHASE_FAILED] = {"failed", "✗", TABLE_RED},
    [PHASE_CANCELLED] = {"cancelled", "⊘", TABLE_RED},
    [PHASE_SKIPPED] = {"skipped", "–", TABLE_DIM},
};

typedef struct {
    char *id, *name;
    phase_status_t status;
    long long attempt;
    char *worker;
    int64_t started_us, ended_us;
    long long input_tokens, output_tokens;
    double cost;
} phase_t;

struct watch_t {
    char *execution_id, *workflow_id;
    char status[16];
    phase_t *phases;
    size_t nphases;
    long long total_phases;
    long long last_id;
    int64_t started_us, ended_us;
    char *error;
    int exit_code;
    char *tail_phase;               /* the phase whose output the tail shows */
    char *tail[WATCH_TAIL_LINES];   /* complete lines, oldest first */
    char *partial;                  /* the line being written */
};

watch_t *watch_new(void)
{
    watch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->last_id = -1;
    self->exit_code = -1;
    snprintf(self->status, sizeof self->status, "pending");
    return self;
}

static void clear_tail(watch_t *self)
{
    for (int i = 0; i < WATCH_TAIL_LINES; i++) {
        free(self->tail[i]);
        self->tail[i] = NULL;
    }
    free(self->partial);
    self->partial = NULL;
}

void watch_destroy(watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    watch_t *self = *self_p;
    for (size_t i = 0; i < self->nphases; i++) {
        free(self->phases[i].id);
        free(self->phases[i].name);
        free(self->phases[i].worker);
    }
    free(self->phases);
    free(self->execution_id);
    free(self->workflow_id);
    free(self->error);
    free(self->tail_phase);
    clear_tail(self);
    free(self);
    *self_p = NULL;
}

static void set_text(char **slot, const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    if (text && !copy)
        return;
    free(*slot);
    *slot = copy;
}

static phase_t *add_phase(watch_t *self, const char *id, const char *name)
{
    phase_t *grown = realloc(self->phases, (self->nphases + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    self->phases = grown;
    phase_t *p = &self->phases[self->nphases];
    memset(p, 0, sizeof *p);
    p->id = strdup(id);
    p->name = strdup(name ? name : id);
    if (!p->id || !p->name) {
        free(p->id);
        free(p->name);
        return NULL;
    }
    self->nphases++;
    return p;
}

/* The phase an event names, added when the execution's list did not have it. */
static phase_t *phase_of(watch_t *self, const json_t *data)
{
    const char *id = json_string_value(json_object_get(data, "phase_id"));
    if (!id)
        return NULL;
    for (size_t i = 0; i < self->nphases; i++)
        if (!strcmp(self->phases[i].id, id))
            return &self->phases[i];
    return add_phase(self, id, NULL);
}

int watch_load(watch_t *self, const json_t *execution)
{
    const char *id = json_string_value(json_object_get(execution, "execution_id"));
    const json_t *phases = json_object_get(execution, "phases");
    if (!id)
        return -1;
    set_text(&self->execution_id, id);
    set_text(&self->workflow_id, json_string_value(json_object_get(execution, "workflow_id")));
    json_int_t total = json_integer_value(json_object_get(execution, "total_phases"));
    if (total > 0)
        self->total_phases = total;
    size_t i;
    const json_t *phase;
    json_array_foreach(phases, i, phase)
    {
        const char *phase_id = json_string_value(json_object_get(phase, "phase_id"));
        if (phase_id && !phase_of(self, phase) &&
            !add_phase(self, phase_id, json_string_value(json_object_get(phase, "name"))))
            return -1;
        if (phase_id) {
            phase_t *p = phase_of(self, phase);
            if (p)
                set_text(&p->name, json_string_value(json_object_get(phase, "name")));
        }
    }
    return 0;
}

bool watch_done(const watch_t *self)
{
    return self->exit_code >= 0;
}

int watch_exit_code(const watch_t *self)
{
    return self->exit_code;
}

const char *watch_execution_id(const watch_t *self)
{
    return self->execution_id;
}

static long long int_of(const json_t *data, const char *key)
{
    return (long long)json_integer_value(json_object_get(data, key));
}

/* Appends output text to the tail: complete lines roll, the rest waits. */
static void add_output(watch_t *self, const char *phase_id, const char *text)
{
    if (!self->tail_phase || strcmp(self->tail_phase, phase_id) != 0) {
        clear_tail(self);
        set_text(&self->tail_phase, phase_id);
    }
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, "\n");
        size_t old = self->partial ? strlen(self->partial) : 0;
        char *line = realloc(self->partial, old + n + 1);
        if (!line)
            return;
        memcpy(line + old, p, n);
        line[old + n] = '\0';
        self->partial = line;
        p += n;
        if (*p == '\n') {
            p++;
            free(self->tail[0]);
            memmove(self->tail, self->tail + 1, (WATCH_TAIL_LINES - 1) * sizeof *self->tail);
            self->tail[WATCH_TAIL_LINES - 1] = self->partial;
            self->partial = NULL;
        }
    }
}

static void finish(watch_t *self, const char *status, int code, const json_t *data,
                   int64_t at_us)
{
    snprintf(self->status, sizeof self->status, "%s", status);
    self->exit_code = code;
    self->ended_us = at_us;
    set_text(&self->error, json_string_value(json_object_get(data, "error")));
    long long total = int_of(data, "total_phases");
    if (total > 0)
        self->total_phases = total;
    /* phases left unfinished: cancelled where running, skipped after */
    for (size_t i = 0; i < self->nphases; i++) {
        phase_t *p = &self->phases[i];
        if (p->status == PHASE_RUNNING || p->status == PHASE_QUEUED ||
            p->status == PHASE_RETRYING)
            p->status = code == 0 ? PHASE_COMPLETED : PHASE_CANCELLED;
        else if (p->status == PHASE_PENDING && code != 0)
            p->status = PHASE_SKIPPED;
        if (p->started_us && !p->ended_us)
            p->ended_us = at_us;
    }
}

int watch_apply(watch_t *self, long long id, const json_t *frame)
{
    const char *type = json_string_value(json_object_get(frame, "type"));
    const char *event = json_string_value(json_object_get(frame, "event_type"));
    if (!type || !strcmp(type, "connected") || !event)
        return 0;
    if (id >= 0 && id <= self->last_id)
        return 0;
    const json_t *data = json_object_get(frame, "data");
    int64_t at = table_parse_time(json_string_value(json_object_get(frame, "timestamp")));
    if (!self->execution_id)
        set_text(&self->execution_id,
                 json_string_value(json_object_get(frame, "execution_id")));
    phase_t *p = NULL;
    if (!strcmp(event, "ExecutionStarted")) {
        snprintf(self->status, sizeof self->status, "running");
        self->started_us = at;
        if (int_of(data, "total_phases") > 0)
            self->total_phases = int_of(data, "total_phases");
        if (!self->workflow_id)
            set_text(&self->workflow_id, json_string_value(json_object_get(data, "workflow_id")));
    } else if (!strcmp(event, "PhaseQueued") && (p = phase_of(self, data))) {
        p->status = PHASE_QUEUED;
    } else if (!strcmp(event, "PhaseStarted") && (p = phase_of(self, data))) {
        p->status = PHASE_RUNNING;
        p->attempt = int_of(data, "attempt");
        set_text(&p->worker, json_string_value(json_object_get(data, "worker")));
        if (!p->started_us)
            p->started_us = at;
        p->ended_us = 0;
        if (!strcmp(self->status, "pending"))
            snprintf(self->status, sizeof self->status, "running");
    } else if (!strcmp(event, "PhaseOutput") && (p = phase_of(self, data))) {
        const char *text = json_string_value(json_object_get(data, "text"));
        if (text)
            add_output(self, p->id, text);
    } else if (!strcmp(event, "PhaseCompleted") && (p = phase_of(self, data))) {
        p->status = PHASE_COMPLETED;
        p->ended_us = at;
        p->input_tokens += int_of(data, "input_tokens");
        p->output_tokens += int_of(data, "output_tokens");
        p->cost += json_number_value(json_object_get(data, "cost_usd"));
    } else if (!strcmp(event, "PhaseFailed") && (p = phase_of(self, data))) {
        p->status = PHASE_FAILED;
        p->ended_us = at;
        p->input_tokens += int_of(data, "input_tokens");
        p->output_tokens += int_of(data, "output_tokens");
        p->cost += json_number_value(json_object_get(data, "cost_usd"));
    } else if (!strcmp(event, "PhaseRetrying") && (p = phase_of(self, data))) {
        p->status = PHASE_RETRYING;
    } else if (!strcmp(event, "ExecutionPaused")) {
        snprintf(self->status, sizeof self->status, "paused");
    } else if (!strcmp(event, "ExecutionResumed")) {
        const char *status = json_string_value(json_object_get(data, "status"));
        snprintf(self->status, sizeof self->status, "%s", status ? status : "running");
    } else if (!strcmp(event, "ExecutionCompleted")) {
        finish(self, "completed", 0, data, at);
    } else if (!strcmp(event, "ExecutionFailed")) {
        finish(self, "failed", 1, data, at);
    } else if (!strcmp(event, "ExecutionCancelled")) {
        finish(self, "cancelled", 3, data, at);
    } else if (strcmp(event, "MessageInjected") != 0) {
        return 0; /* a type this CLI does not know: ignored, as the API asks */
    }
    if (id >= 0)
        self->last_id = id;
    return 1;
}

/* ---- plain lines ---- */

static void clock_of(const json_t *frame, char out[16])
{
    int64_t at = table_parse_time(json_string_value(json_object_get(frame, "timestamp")));
    time_t seconds = (time_t)(at / 1000000);
    struct tm tm;
    if (!at || !gmtime_r(&seconds, &tm))
        snprintf(out, 16, "--:--:--");
    else
        strftime(out, 16, "%H:%M:%S", &tm);
}

static const char *str(const json_t *data, const char *key)
{
    const char *s = json_string_value(json_object_get(data, key));
    return s ? s : "";
}

/* What follows the event's name on its line. */
static void describe(FILE *out, const char *event, const json_t *data)
{
    char a[32], b[32], c[32], d[32];
    const char *phase = str(data, "phase_id");
    if (!strcmp(event, "ExecutionStarted"))
        fprintf(out, " %s, %lld phases", str(data, "workflow_id"), int_of(data, "total_phases"));
    else if (!strcmp(event, "PhaseQueued"))
        fprintf(out, " %s", phase);
    else if (!strcmp(event, "PhaseStarted"))
        fprintf(out, " %s attempt %lld on %s", phase, int_of(data, "attempt"),
                str(data, "worker"));
    else if (!strcmp(event, "PhaseOutput"))
        fprintf(out, " %s +%zu bytes", phase, strlen(str(data, "text")));
    else if (!strcmp(event, "PhaseToolCall"))
        fprintf(out, " %s %s %s", phase, str(data, "name"), str(data, "detail"));
    else if (!strcmp(event, "PhaseCompleted"))
        fprintf(out, " %s in %s, tokens %s in / %s out, %s", phase,
                table_duration((double)int_of(data, "duration_ms") / 1000.0, a, sizeof a),
                table_count(int_of(data, "input_tokens"), b, sizeof b),
                table_count(int_of(data, "output_tokens"), c, sizeof c),
                table_cost(json_number_value(json_object_get(data, "cost_usd")), d, sizeof d));
    else if (!strcmp(event, "PhaseCost")) /* spending, against the budget when there is one */
        fprintf(out, " %s %s spent%s%s", phase,
                table_cost(json_number_value(json_object_get(data, "execution_cost_usd")), a,
                           sizeof a),
                json_is_number(json_object_get(data, "max_budget_usd")) ? " of " : "",
                json_is_number(json_object_get(data, "max_budget_usd"))
                    ? table_cost(json_number_value(json_object_get(data, "max_budget_usd")), b,
                                 sizeof b)
                    : "");
    else if (!strcmp(event, "PhaseFailed"))
        fprintf(out, " %s attempt %lld: %s", phase, int_of(data, "attempt"), str(data, "error"));
    else if (!strcmp(event, "PhaseRetrying"))
        fprintf(out, " %s attempt %lld -> %lld in %gs (%s): %s", phase, int_of(data, "attempt"),
                int_of(data, "next_attempt"),
                json_number_value(json_object_get(data, "retry_in_seconds")), str(data, "cause"),
                str(data, "reason"));
    else if (!strcmp(event, "ExecutionPaused"))
        fprintf(out, "%s%s", json_is_string(json_object_get(data, "reason")) ? " " : "",
                str(data, "reason"));
    else if (!strcmp(event, "ExecutionResumed"))
        fprintf(out, " %s", str(data, "status"));
    else if (!strcmp(event, "MessageInjected"))
        fprintf(out, " [%s] %s", str(data, "role"), str(data, "message"));
    else if (!strcmp(event, "ExecutionCompleted"))
        fprintf(out, " %lld/%lld phases", int_of(data, "completed_phases"),
                int_of(data, "total_phases"));
    else if (!strcmp(event, "ExecutionFailed") || !strcmp(event, "ExecutionCancelled"))
        fprintf(out, " %lld/%lld phases: %s", int_of(data, "completed_phases"),
                int_of(data, "total_phases"), str(data, "error"));
}

char *watch_event_line(long long id, const json_t *frame)
{
    const char *type = json_string_value(json_object_get(frame, "type"));
    const char *event = json_string_value(json_object_get(frame, "event_type"));
    if (!type || !strcmp(type, "connected") || !event)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    char clock[16];
    clock_of(frame, clock);
    const json_t *data = json_object_get(frame, "data");
    fprintf(out, "%s #%lld %s", clock, id, event);
    describe(out, event, data);
    fputc('\n', out);
    if (!strcmp(event, "PhaseOutput")) {
        const char *p = str(data, "text");
        while (*p) {
            size_t n = strcspn(p, "\n");
            fprintf(out, "    | %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
    fclose(out);
    return text;
}

/* ---- the live screen ---- */

/* One screen line, cut to width; color wraps it in an SGR code. */
static void screen_line(FILE *out, const char *text, int width, const char *color)
{
    char fitted[2048];
    table_text_fit(text, width > 0 ? (size_t)width : 2000, fitted, sizeof fitted);
    if (color)
        fprintf(out, "\033[%sm%s\033[0m\n", color, fitted);
    else
        fprintf(out, "%s\n", fitted);
}

/* "[████░░░░]": cells wide, green and dim on a colour terminal. */
static void progress_bar(FILE *out, long long done, long long total, int cells, bool color)
{
    int full = total > 0 ? (int)(done * cells / total) : 0;
    fputs(color ? "[\033[" TABLE_GREEN "m" : "[", out);
    for (int i = 0; i < full; i++)
        fputs("█", out);
    fputs(color ? "\033[0;" TABLE_DIM "m" : "", out);
    for (int i = full; i < cells; i++)
        fputs("░", out);
    fputs(color ? "\033[0m]" : "]", out);
}

static const char *status_color(const char *status)
{
    if (!strcmp(status, "completed"))
        return TABLE_GREEN;
    if (!strcmp(status, "failed") || !strcmp(status, "cancelled"))
        return TABLE_RED;
    if (!strcmp(status, "paused"))
        return TABLE_BLUE;
    return TABLE_YELLOW;
}

char *watch_render(const watch_t *self, int width, bool color, int64_t now_us)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    char line[2048], a[32], b[32], c[32], d[32];
    snprintf(line, sizeof line, "%s  %s  %s", self->execution_id ? self->execution_id : "?",
             self->workflow_id ? self->workflow_id : "", self->status);
    screen_line(out, line, width, color ? status_color(self->status) : NULL);

    long long total = self->total_phases > 0 ? self->total_phases : (long long)self->nphases;
    long long done = 0, in = 0, outt = 0;
    double cost = 0;
    for (size_t i = 0; i < self->nphases; i++) {
        done += self->phases[i].status == PHASE_COMPLETED;
        in += self->phases[i].input_tokens;
        outt += self->phases[i].output_tokens;
        cost += self->phases[i].cost;
    }
    int percent = total > 0 ? (int)(done * 100 / total) : 0;
    int64_t end = self->ended_us ? self->ended_us : now_us;
    /* the bar when the line has room for it, then the rest cut to what is left */
    const int bar_cells = 24;
    bool with_bar = width <= 0 || width >= bar_cells + 2 + 20;
    if (with_bar)
        progress_bar(out, done, total, bar_cells, color);
    snprintf(line, sizeof line, "%s%3d%%  %lld/%lld phases  %s  tokens %s in / %s out  %s",
             with_bar ? " " : "", percent, done, total,
             table_duration(self->started_us ? (double)(end - self->started_us) / 1e6 : 0, a,
                            sizeof a),
             table_count(in, b, sizeof b), table_count(outt, c, sizeof c),
             table_cost(cost, d, sizeof d));
    screen_line(out, line, with_bar && width > 0 ? width - bar_cells - 2 : width, NULL);

    size_t id_width = 5, name_width = 4;
    for (size_t i = 0; i < self->nphases; i++) {
        size_t w = table_text_width(self->phases[i].id);
        id_width = w > id_width ? w : id_width;
        w = table_text_width(self->phases[i].name);
        name_width = w > name_width ? w : name_width;
    }
    id_width = id_width > 24 ? 24 : id_width;
    name_width = name_width > 24 ? 24 : name_width;
    const char *running = NULL;
    for (size_t i = 0; i < self->nphases; i++) {
        const phase_t *p = &self->phases[i];
        char id[128], name[128], extra[160] = "";
        table_text_fit(p->id, id_width, id, sizeof id);
        table_text_fit(p->name, name_width, name, sizeof name);
        if (p->started_us) {
            int64_t stop = p->ended_us ? p->ended_us : now_us;
            table_duration((double)(stop - p->started_us) / 1e6, a, sizeof a);
            snprintf(extra, sizeof extra, "%7s  %s%s", a, p->worker ? p->worker : "",
                     p->attempt > 1 ? "" : "");
            if (p->attempt > 1) {
                size_t used = strlen(extra);
                snprintf(extra + used, sizeof extra - used, " (attempt %lld)", p->attempt);
            }
        }
        if (p->status == PHASE_RUNNING)
            running = p->id;
        snprintf(line, sizeof line, "  %s %-*s  %-*s  %-9s  %s", phase_looks[p->status].symbol,
                 (int)(id_width + strlen(id) - table_text_width(id)), id,
                 (int)(name_width + strlen(name) - table_text_width(name)), name,
                 phase_looks[p->status].name, extra);
        screen_line(out, line, width, color ? phase_looks[p->status].color : NULL);
    }
    if (self->error && *self->error) {
        snprintf(line, sizeof line, "error: %s", self->error);
        screen_line(out, line, width, color ? TABLE_RED : NULL);
    }
    bool any_tail = self->partial && *self->partial;
    for (int i = 0; i < WATCH_TAIL_LINES; i++)
        any_tail = any_tail || self->tail[i];
    if (self->tail_phase && any_tail) {
        snprintf(line, sizeof line, "── output of %s%s ──", self->tail_phase,
                 running && !strcmp(running, self->tail_phase) ? " (live)" : "");
        screen_line(out, line, width, color ? TABLE_DIM : NULL);
        int shown = 0;
        bool partial = self->partial && *self->partial;
        for (int i = 0; i < WATCH_TAIL_LINES; i++) {
            if (!self->tail[i] || (partial && shown == 0 && i == 0))
                continue;
            snprintf(line, sizeof line, "  %s", self->tail[i]);
            screen_line(out, line, width, NULL);
            shown++;
        }
        if (partial) {
            snprintf(line, sizeof line, "  %s", self->partial);
            screen_line(out, line, width, NULL);
        }
    }
    fclose(out);
    return text;
}
