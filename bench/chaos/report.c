/* report: what a soak prints and leaves behind — the summary table (stdout and
 * <out>/chaos-<seed>.md, with the fault timeline and the checker's first
 * violations), and a chart of throughput and faults over time
 * (<out>/chaos-<seed>.png), drawn by gnuplot as bench/plots.gp draws the
 * benchmarks' charts; without gnuplot the data files stay and the run says so. */
#include "bench/chaos/chaos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void summary(const chaos_t *self, const chaos_findings_t *f, FILE *out)
{
    const chaos_config_t *c = &self->cfg;
    bool failed = chaos_findings_fail(f, self->unexpected_exits);
    fprintf(out, "| what | count |\n| --- | ---: |\n");
    fprintf(out, "| submits answered (of %zu made) | %ld |\n", self->nsubs, f->answered);
    fprintf(out, "| accepted (200) | %ld |\n", f->accepted);
    fprintf(out, "| 503 answers (allowed) | %ld |\n", f->answered_503);
    fprintf(out, "| submits retried after a 503 / accepted on a retry / 503 to the last "
                 "of 5 tries | %ld / %ld / %ld |\n",
            f->retried_503, f->accepted_after_503, f->gave_up_503);
    fprintf(out, "| 503 answers whose execution was committed all the same | %ld |\n",
            f->committed_503);
    fprintf(out, "| no answer (timeout, connection) / of those in the store | %ld / %ld |\n",
            f->no_answer, f->no_answer_in_store);
    fprintf(out, "| executions in the store | %ld |\n", f->executions_in_store);
    fprintf(out, "| seconds from the soak's end until every execution ended (the settle) | "
                 "%.0f |\n",
            self->settle_s);
    fprintf(out, "| completed | %ld |\n", f->completed);
    fprintf(out, "| failed | %ld |\n", f->failed);
    fprintf(out, "| cancelled | %ld |\n", f->cancelled);
    fprintf(out, "| command agent runs recorded | %ld |\n", f->agent_runs);
    fprintf(out, "| paused executions the settle resumed (a pause after its resume) | %ld |\n",
            self->resumed_at_settle);
    fprintf(out, "| **lost** (accepted, not in the store) | **%ld** |\n", f->lost);
    fprintf(out, "| **phase results recorded twice** | **%ld** |\n", f->duplicate_results);
    fprintf(out, "| **terminal states recorded twice** | **%ld** |\n", f->duplicate_terminals);
    fprintf(out, "| **phases run more often than their attempts** | **%ld** |\n",
            f->runs_over_attempts);
    fprintf(out, "| **one attempt run twice** | **%ld** |\n", f->attempts_run_twice);
    fprintf(out, "| **stuck (not terminal) after the settle** | **%ld** |\n", f->stuck);
    fprintf(out, "| **inconsistent (completed with unfinished phases, no terminal event)** | "
                 "**%ld** |\n",
            f->inconsistent);
    fprintf(out, "| broker in the storage-full mode (a failed commit) / resumed, same process | "
                 "%d / %d |\n",
            chaos_broker_log_count(self, "storage full: "),
            chaos_broker_log_count(self, "storage writable again"));
    fprintf(out, "| **processes that died without a fault** | **%d** |\n",
            self->unexpected_exits);
    int per_kind[FAULT_KINDS] = {0};
    for (size_t i = 0; i < self->nfaults; i++)
        per_kind[self->faults[i].kind]++;
    fprintf(out, "\nfaults: %zu (", self->nfaults);
    for (int k = 0; k < FAULT_KINDS; k++)
        fprintf(out, "%s%s %d%s", k ? ", " : "", chaos_fault_name(k), per_kind[k],
                c->faults[k] ? "" : " (off)");
    fprintf(out, ")\n");
    if (c->faults[FAULT_DISK] && !self->tmpfs)
        fprintf(out, "DISK FAULT SKIPPED: %s\n", self->tmpfs_error);
    if (f->failed_why[0])
        fprintf(out, "\nfailed executions, by error:\n\n```\n%s```\n", f->failed_why);
    if (self->unexpected[0])
        fprintf(out, "\nunexpected exits: %s\n", self->unexpected);
    if (f->problems[0])
        fprintf(out, "\nviolations (first few):\n\n```\n%s```\n", f->problems);
    fprintf(out, "\nresult: %s\n", failed ? "FAILED" : "passed");
}

static void timeline(const chaos_t *self, FILE *out)
{
    fprintf(out, "\n## Fault timeline\n\n| start s | end s | kind | target | what |\n"
                 "| ---: | ---: | --- | --- | --- |\n");
    for (size_t i = 0; i < self->nfaults; i++) {
        const chaos_fault_t *f = &self->faults[i];
        fprintf(out, "| %.1f | %.1f | %s | %s | %s |\n", f->t, f->until > f->t ? f->until : f->t,
                chaos_fault_name(f->kind), f->target, f->note);
    }
}

/* Buckets of accepted submits and ended executions per second. */
static int write_rates(const chaos_t *self, const chaos_findings_t *f, const char *path,
                       double length_s)
{
    double width = length_s > 300 ? 10 : 5;
    int n = (int)(length_s / width) + 40; /* the settle may run past the soak */
    long *acc = calloc((size_t)n, sizeof *acc), *end = calloc((size_t)n, sizeof *end);
    FILE *out = fopen(path, "w");
    if (!acc || !end || !out) {
        free(acc);
        free(end);
        if (out)
            fclose(out);
        return -1;
    }
    for (size_t i = 0; i < self->nsubs; i++) {
        int b = (int)(self->subs[i].t_answer / width);
        if (self->subs[i].status == 200 && b >= 0 && b < n)
            acc[b]++;
    }
    int last = 0;
    for (size_t i = 0; i < f->nend; i++) {
        int b = (int)(f->end_t[i] / width);
        if (b >= 0 && b < n) {
            end[b]++;
            if (b > last)
                last = b;
        }
    }
    fprintf(out, "# t_s accepted_per_s ended_per_s\n");
    for (int b = 0; b <= last || b * width < length_s; b++)
        fprintf(out, "%.1f %.2f %.2f\n", b * width + width / 2, acc[b] / width, end[b] / width);
    fclose(out);
    free(acc);
    free(end);
    return 0;
}

static int write_faults(const chaos_t *self, const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return -1;
    fprintf(out, "# mid_s half_width_s level kind target\n");
    for (size_t i = 0; i < self->nfaults; i++) {
        const chaos_fault_t *f = &self->faults[i];
        double end = f->until > f->t ? f->until : f->t + 0.3;
        fprintf(out, "%.2f %.2f %d %s %s\n", (f->t + end) / 2, (end - f->t) / 2,
                (int)f->kind + 1, chaos_fault_name(f->kind), f->target);
    }
    fclose(out);
    return 0;
}

static const char CHART_GP[] =
    "set terminal pngcairo size 900,420 font \"DejaVu Sans,10\"\n"
    "set output png\n"
    "set grid\n"
    "set key outside bottom center horizontal\n"
    "set xlabel \"seconds since the soak started\"\n"
    "set ylabel \"per second\"\n"
    "set y2range [0:5]\n"
    "set y2tics (\"kill -9\" 1, \"SIGSTOP\" 2, \"link cut\" 3, \"disk full\" 4)\n"
    "set yrange [0:*]\n"
    "plot rates using 1:2 with steps lw 2 lc rgb \"#1f77b4\" title \"accepted submits\", \\\n"
    "     rates using 1:3 with steps lw 2 lc rgb \"#2ca02c\" title \"executions ended\", \\\n"
    "     faults using 1:3:2 axes x1y2 with xerrorbars pt 7 ps 0.6 lw 3 lc rgb \"#d62728\" "
    "title \"faults (span = how long)\"\n";

static void chart(const chaos_t *self, const chaos_findings_t *f, const char *base,
                  double length_s)
{
    char rates[700], faults[700], png[700], gp[700];
    snprintf(rates, sizeof rates, "%s-rate.dat", base);
    snprintf(faults, sizeof faults, "%s-faults.dat", base);
    snprintf(png, sizeof png, "%s.png", base);
    snprintf(gp, sizeof gp, "%s.gp", base);
    if (write_rates(self, f, rates, length_s) != 0 || write_faults(self, faults) != 0) {
        printf("chaos: cannot write the chart's data under %s\n", base);
        return;
    }
    FILE *out = fopen(gp, "w");
    if (!out)
        return;
    fprintf(out, "rates = \"%s\"\nfaults = \"%s\"\npng = \"%s\"\n"
                 "set title \"syn chaos soak, seed %llu: throughput and faults\"\n%s",
            rates, faults, png, (unsigned long long)self->cfg.seed, CHART_GP);
    fclose(out);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", gp);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        printf("chart: gnuplot not found; the data is in %s and %s\n", rates, faults);
    else if (system(cmd) != 0)
        printf("chart: gnuplot failed on %s\n", gp);
    else
        printf("chart: %s\n", png);
}

/* Every submit, one line each: what it was and what the client was told. */
static void write_submits(const chaos_t *self, const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return;
    static const char *const actions[] = {"", "cancel", "pause", "inject"};
    fprintf(out, "tag,workflow,gateway,t_submit_s,t_answer_s,status,tries,answers_503,"
                 "execution_id,action,action_status\n");
    for (size_t i = 0; i < self->nsubs; i++) {
        const chaos_submit_t *s = &self->subs[i];
        fprintf(out, "%s,%s,%d,%.3f,%.3f,%d,%d,%d,%s,%s,%d\n", s->tag,
                chaos_workflow_ids[s->workflow], s->gateway + 1, s->t_submit, s->t_answer,
                s->status, s->tries, s->got_503, s->id, actions[s->action], s->action_status);
    }
    fclose(out);
}

int chaos_report(chaos_t *self, const chaos_findings_t *f)
{
    mkdir(self->cfg.out_dir, 0755);
    char base[600], md[620];
    snprintf(base, sizeof base, "%s/chaos-%llu", self->cfg.out_dir,
             (unsigned long long)self->cfg.seed);
    snprintf(md, sizeof md, "%s.md", base);
    double length_s = self->cfg.seconds > 0 ? self->cfg.seconds : self->cfg.minutes * 60.0;
    printf("\n");
    summary(self, f, stdout);
    FILE *out = fopen(md, "w");
    if (out) {
        fprintf(out, "# syn chaos soak, seed %llu\n\n%.0f s at %.1f submits/s through %d gateways, "
                     "%d workers (%d mock, %d command), a fault every %.0f s on average\n\n",
                (unsigned long long)self->cfg.seed, length_s, self->cfg.rate, CHAOS_GATEWAYS,
                CHAOS_WORKERS, CHAOS_WORKERS / 2, CHAOS_WORKERS / 2, self->cfg.fault_every);
        summary(self, f, out);
        timeline(self, out);
        fclose(out);
        printf("report: %s\n", md);
    }
    chart(self, f, base, length_s);
    char csv[620];
    snprintf(csv, sizeof csv, "%s-submits.csv", base);
    write_submits(self, csv);
    printf("submits: %s\n", csv);
    return 0;
}
