/* table: columns fitted to a width, colours, and human times (see table.h). */
#include "cli/table.h"

#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TABLE_MAX_COLS 16
#define TABLE_GAP 2
#define TABLE_MIN_COL 3

struct table_t {
    size_t ncols, nrows, cap;
    char *headers[TABLE_MAX_COLS];
    char **cells;                /* nrows * ncols */
    const char **colors;         /* nrows * ncols, static SGR strings or NULL */
    bool right[TABLE_MAX_COLS];
    int flexible;                /* -1: the widest column gives */
};

table_t *table_new(size_t ncols, const char *const *headers)
{
    if (ncols == 0 || ncols > TABLE_MAX_COLS)
        return NULL;
    table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ncols = ncols;
    self->flexible = -1;
    for (size_t i = 0; i < ncols; i++) {
        self->headers[i] = strdup(headers[i] ? headers[i] : "");
        if (!self->headers[i]) {
            table_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void table_destroy(table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    table_t *self = *self_p;
    for (size_t i = 0; i < self->ncols; i++)
        free(self->headers[i]);
    for (size_t i = 0; i < self->nrows * self->ncols; i++)
        free(self->cells[i]);
    free(self->cells);
    free(self->colors);
    free(self);
    *self_p = NULL;
}

void table_set_flexible(table_t *self, size_t col)
{
    if (col < self->ncols)
        self->flexible = (int)col;
}

void table_set_right(table_t *self, size_t col)
{
    if (col < self->ncols)
        self->right[col] = true;
}

size_t table_rows(const table_t *self)
{
    return self->nrows;
}

int table_add(table_t *self, const char *const *cells, const char *const *colors)
{
    if (self->nrows == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        char **grown = realloc(self->cells, cap * self->ncols * sizeof *grown);
        if (!grown)
            return -1;
        self->cells = grown;
        const char **grown_colors = realloc(self->colors, cap * self->ncols * sizeof *grown_colors);
        if (!grown_colors)
            return -1;
        self->colors = grown_colors;
        self->cap = cap;
    }
    size_t base = self->nrows * self->ncols;
    for (size_t i = 0; i < self->ncols; i++) {
        char *copy = strdup(cells[i] ? cells[i] : "");
        if (!copy) {
            while (i-- > 0)
                free(self->cells[base + i]);
            return -1;
        }
        /* one line per cell: a newline would break the columns */
        for (char *p = copy; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        self->cells[base + i] = copy;
        self->colors[base + i] = colors ? colors[i] : NULL;
    }
    self->nrows++;
    return 0;
}

size_t table_text_width(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

char *table_text_fit(const char *text, size_t width, char *out, size_t size)
{
    if (size == 0)
        return out;
    size_t total = table_text_width(text);
    size_t keep = total <= width ? total : (width ? width - 1 : 0);
    size_t o = 0, chars = 0;
    const char *p = text;
    while (*p && chars < keep) {
        size_t n = 1;
        while ((p[n] & 0xC0) == 0x80)
            n++;
        if (o + n + 4 > size) /* room for "…" and the NUL */
            break;
        memcpy(out + o, p, n);
        o += n;
        p += n;
        chars++;
    }
    if (*p && width > 0 && o + 4 <= size) {
        memcpy(out + o, "…", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Widths fitted to width: the flexible (or else the widest) column gives up
 * characters first, down to TABLE_MIN_COL, then the next widest. */
static void fit_widths(const table_t *self, size_t *widths, int width)
{
    for (size_t c = 0; c < self->ncols; c++) {
        widths[c] = table_text_width(self->headers[c]);
        for (size_t r = 0; r < self->nrows; r++) {
            size_t w = table_text_width(self->cells[r * self->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    if (width <= 0)
        return;
    for (;;) {
        size_t total = (self->ncols - 1) * TABLE_GAP;
        for (size_t c = 0; c < self->ncols; c++)
            total += widths[c];
        if (total <= (size_t)width)
            return;
        size_t over = total - (size_t)width;
        int victim = -1;
        if (self->flexible >= 0 && widths[self->flexible] > TABLE_MIN_COL)
            victim = self->flexible;
        else
            for (size_t c = 0; c < self->ncols; c++)
                if (widths[c] > TABLE_MIN_COL && (victim < 0 || widths[c] > widths[victim]))
                    victim = (int)c;
        if (victim < 0)
            return;
        size_t room = widths[victim] - TABLE_MIN_COL;
        widths[victim] -= over < room ? over : room;
    }
}

static void put_spaces(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

static void put_cell(FILE *out, const char *text, size_t width, bool right, bool last,
                     const char *color)
{
    char fitted[1024];
    table_text_fit(text, width, fitted, sizeof fitted);
    size_t pad = width - table_text_width(fitted);
    if (right)
        put_spaces(out, pad);
    if (color)
        fprintf(out, "\033[%sm%s\033[0m", color, fitted);
    else
        fputs(fitted, out);
    if (!right && !last)
        put_spaces(out, pad);
}

char *table_render(const table_t *self, int width, bool color)
{
    size_t widths[TABLE_MAX_COLS];
    fit_widths(self, widths, width);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    for (size_t r = 0; r <= self->nrows; r++) {
        char *line = NULL;
        size_t line_len = 0;
        FILE *row = open_memstream(&line, &line_len);
        if (!row)
            break;
        for (size_t c = 0; c < self->ncols; c++) {
            bool header = r == 0;
            const char *cell = header ? self->headers[c] : self->cells[(r - 1) * self->ncols + c];
            const char *sgr = !color ? NULL
                              : header ? TABLE_BOLD
                                       : self->colors[(r - 1) * self->ncols + c];
            put_cell(row, cell, widths[c], self->right[c], c + 1 == self->ncols, sgr);
            if (c + 1 < self->ncols)
                put_spaces(row, TABLE_GAP);
        }
        fclose(row);
        while (line_len && line[line_len - 1] == ' ') /* an empty last cell */
            line_len--;
        fprintf(out, "%.*s\n", (int)line_len, line);
        free(line);
    }
    fclose(out);
    return text;
}

bool table_use_color(int fd, bool no_color_flag)
{
    const char *env = getenv("NO_COLOR");
    return !no_color_flag && !(env && *env) && isatty(fd);
}

int table_terminal_width(int fd, int fallback)
{
    struct winsize ws;
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return fallback;
}

char *table_duration(double seconds, char *out, size_t size)
{
    if (seconds < 0) {
        snprintf(out, size, "-");
        return out;
    }
    if (seconds < 10) {
        snprintf(out, size, "%.1fs", seconds);
        return out;
    }
    long s = (long)seconds;
    if (s < 60)
        snprintf(out, size, "%lds", s);
    else if (s < 3600)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
    return out;
}

char *table_ago(int64_t then_us, int64_t now_us, char *out, size_t size)
{
    if (then_us == 0) {
        snprintf(out, size, "-");
        return out;
    }
    long long s = (now_us - then_us) / 1000000;
    if (s < 1)
        snprintf(out, size, "just now");
    else if (s < 60)
        snprintf(out, size, "%lld s ago", s);
    else if (s < 3600)
        snprintf(out, size, "%lld min ago", s / 60);
    else if (s < 86400)
        snprintf(out, size, "%lld h ago", s / 3600);
    else
        snprintf(out, size, "%lld d ago", s / 86400);
    return out;
}

int64_t table_parse_time(const char *text)
{
    int64_t at;
    return syn_time_parse(text, &at) == 0 && at >= 0 ? at : 0;
}

char *table_count(long long n, char *out, size_t size)
{
    if (n < 1000)
        snprintf(out, size, "%lld", n);
    else if (n < 1000000)
        snprintf(out, size, "%.1fk", (double)n / 1e3);
    else
        snprintf(out, size, "%.1fM", (double)n / 1e6);
    return out;
}

char *table_bytes(long long n, char *out, size_t size)
{
    if (n < 1024)
        snprintf(out, size, "%lld B", n);
    else if (n < 1024 * 1024)
        snprintf(out, size, "%.1f KiB", (double)n / 1024);
    else if (n < 1024LL * 1024 * 1024)
        snprintf(out, size, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(out, size, "%.1f GiB", (double)n / (1024 * 1024 * 1024));
    return out;
}

char *table_cost(double usd, char *out, size_t size)
{
    snprintf(out, size, usd < 1 ? "$%.4f" : "$%.2f", usd);
    return out;
}
