#include "gateway/timeline.h"

#include "common/clock.h"
#include "common/utf8.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WIDTH 960
#define LABEL_WIDTH 220
#define PLOT_WIDTH (WIDTH - LABEL_WIDTH - 40)
#define ROW_HEIGHT 34
#define TOP 70
#define BOTTOM 60
/* Bounds what a peer-controlled detail can make us draw. */
#define MAX_PHASES 200
#define MAX_ATTEMPTS_PER_PHASE 20

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} svg_t;

static void put(svg_t *svg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(svg_t *svg, const char *fmt, ...)
{
    if (svg->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(svg->data + svg->len, svg->cap - svg->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            svg->failed = true;
            return;
        }
        if ((size_t)n < svg->cap - svg->len) {
            svg->len += (size_t)n;
            return;
        }
        size_t cap = (svg->cap + (size_t)n + 1) * 2;
        char *grown = realloc(svg->data, cap);
        if (!grown) {
            svg->failed = true;
            return;
        }
        svg->data = grown;
        svg->cap = cap;
    }
}

/* Text from the detail (names, ids, errors) goes into XML: escape it, and cut it
 * so one long error cannot stretch the picture. */
static void put_text(svg_t *svg, const char *text, size_t max_chars)
{
    const char *s = text ? text : "";
    size_t len = strlen(s), cut = syn_utf8_byte_offset(s, len, max_chars);
    for (const unsigned char *c = (const unsigned char *)s; c < (const unsigned char *)s + cut;
         c++) {
        switch (*c) {
        case '<': put(svg, "&lt;"); break;
        case '>': put(svg, "&gt;"); break;
        case '&': put(svg, "&amp;"); break;
        case '"': put(svg, "&quot;"); break;
        case '\n': case '\r': case '\t': put(svg, " "); break;
        default:
            if (*c >= 0x20)
                put(svg, "%c", *c);
        }
    }
    if (cut < len)
        put(svg, "…");
}

static const char *status_colour(const char *status)
{
    static const struct {
        const char *status, *colour;
    } colours[] = {
        {"completed", "#2e9d55"}, {"failed", "#d0453b"}, {"timeout", "#8e44ad"},
        {"lost", "#e67e22"},      {"cancelled", "#8a8f98"}, {"running", "#2f7fd1"},
    };
    for (size_t i = 0; status && i < sizeof colours / sizeof *colours; i++)
        if (strcmp(status, colours[i].status) == 0)
            return colours[i].colour;
    return "#b5bac2";
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A time from the detail, or fallback when it is null or unreadable. */
static int64_t time_or(const json_t *obj, const char *key, int64_t fallback)
{
    int64_t t;
    return syn_time_parse(json_string_value(json_object_get(obj, key)), &t) == 0 ? t
                                                                                       : fallback;
}

/* Seconds per axis tick giving about 8 ticks over span_s. */
static double tick_step(double span_s)
{
    static const double steps[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
                                   1,     2,     5,     10,   15,   30,   60,  120, 300,
                                   600,   900,   1800,  3600, 7200, 14400, 43200, 86400};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (span_s / steps[i] <= 8)
            return steps[i];
    return 86400 * ((int)(span_s / 86400 / 8) + 1);
}

static void draw_axis(svg_t *svg, int y, double span_s)
{
    double step = tick_step(span_s);
    put(svg, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#555\"/>\n", LABEL_WIDTH, y,
        LABEL_WIDTH + PLOT_WIDTH, y);
    for (int i = 0; i <= 1000 && i * step <= span_s * 1.0001; i++) {
        double x = LABEL_WIDTH + PLOT_WIDTH * (i * step / span_s);
        put(svg,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e3e6ea\"/>"
            "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
            "fill=\"#555\">%g s</text>\n",
            x, TOP - 6, x, y, x, y + 16, i * step);
    }
}

char *timeline_render_svg(const json_t *detail, int64_t now_us, char *err, size_t errlen)
{
    const json_t *phases = json_object_get(detail, "phases");
    int64_t start;
    if (!json_is_object(detail) || !json_is_array(phases) ||
        syn_time_parse(json_string_value(json_object_get(detail, "started_at")), &start) <
            0) {
        snprintf(err, errlen, "the execution has not started yet");
        return NULL;
    }
    size_t nphases = json_array_size(phases);
    if (nphases > MAX_PHASES)
        nphases = MAX_PHASES;
    int64_t end = time_or(detail, "completed_at", now_us);
    /* A bar may end after the execution (a late result) or before it started
     * (clock skew between records): the axis covers every bar. */
    for (size_t i = 0; i < nphases; i++) {
        const json_t *attempts = json_object_get(json_array_get(phases, i), "attempts");
        for (size_t a = 0; a < json_array_size(attempts); a++) {
            const json_t *at = json_array_get(attempts, a);
            int64_t s = time_or(at, "started_at", start), e = time_or(at, "completed_at", now_us);
            start = s < start ? s : start;
            end = e > end ? e : end;
        }
    }
    double span_s = (double)(end - start) / 1e6;
    if (span_s < 0.001)
        span_s = 0.001;

    svg_t svg = {0};
    int height = TOP + (int)nphases * ROW_HEIGHT + BOTTOM;
    put(&svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        WIDTH, height, WIDTH, height);
    put(&svg, "<text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\">");
    put_text(&svg, str(detail, "execution_id"), 40);
    put(&svg, " · ");
    put_text(&svg, str(detail, "workflow_id"), 40);
    put(&svg, "</text>\n<text x=\"16\" y=\"46\" font-size=\"12\" fill=\"#444\">");
    put_text(&svg, str(detail, "status"), 20);
    put(&svg, ", %.3f s", (double)(end - start) / 1e6);
    if (json_is_string(json_object_get(detail, "error"))) {
        put(&svg, " — ");
        put_text(&svg, str(detail, "error"), 100);
    }
    put(&svg, "</text>\n");
    draw_axis(&svg, TOP + (int)nphases * ROW_HEIGHT + 6, span_s);

    for (size_t i = 0; i < nphases; i++) {
        const json_t *phase = json_array_get(phases, i);
        int y = TOP + (int)i * ROW_HEIGHT;
        put(&svg, "<text x=\"16\" y=\"%d\" font-size=\"12\">", y + 21);
        put_text(&svg, json_is_string(json_object_get(phase, "name")) ? str(phase, "name")
                                                                      : str(phase, "phase_id"),
                 22);
        put(&svg, "</text><text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#777\" "
                  "text-anchor=\"end\">", LABEL_WIDTH - 8, y + 21);
        put_text(&svg, str(phase, "status"), 12);
        put(&svg, "</text>\n");
        const json_t *attempts = json_object_get(phase, "attempts");
        size_t nattempts = json_array_size(attempts);
        if (nattempts > MAX_ATTEMPTS_PER_PHASE)
            nattempts = MAX_ATTEMPTS_PER_PHASE;
        for (size_t a = 0; a < nattempts; a++) {
            const json_t *at = json_array_get(attempts, a);
            int64_t s = time_or(at, "started_at", start), e = time_or(at, "completed_at", now_us);
            double x = LABEL_WIDTH + PLOT_WIDTH * ((double)(s - start) / 1e6 / span_s);
            double w = PLOT_WIDTH * ((double)(e - s) / 1e6 / span_s);
            if (w < 2)
                w = 2;
            put(&svg,
                "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"3\" "
                "fill=\"%s\"><title>",
                x, y + 7, w, ROW_HEIGHT - 14, status_colour(str(at, "status")));
            put(&svg, "attempt %lld on ", (long long)json_integer_value(
                                              json_object_get(at, "attempt")));
            put_text(&svg, str(at, "worker"), 60);
            put(&svg, ": ");
            put_text(&svg, str(at, "status"), 20);
            put(&svg, ", %.3f s", (double)(e - s) / 1e6);
            if (json_is_string(json_object_get(at, "error"))) {
                put(&svg, " — ");
                put_text(&svg, str(at, "error"), 300);
            }
            put(&svg, "</title></rect>\n");
        }
    }
    /* The legend: what each colour means. */
    static const char *legend[] = {"completed", "running", "failed", "timeout", "lost",
                                   "cancelled"};
    int ly = height - 18;
    for (size_t i = 0; i < sizeof legend / sizeof *legend; i++) {
        int lx = LABEL_WIDTH + (int)i * 110;
        put(&svg,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" rx=\"2\" fill=\"%s\"/>"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n",
            lx, ly - 10, status_colour(legend[i]), lx + 16, ly, legend[i]);
    }
    put(&svg, "</svg>\n");
    if (svg.failed) {
        free(svg.data);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return svg.data;
}
