/* table: how the command line shows things to people — aligned columns fitted to
 * the terminal's width, colour only where it helps (a TTY, and never with NO_COLOR
 * or --no-color), times as "3 s ago" and durations as "1m12s". Every function is
 * pure (text in, text out), so the layout rules are unit-tested without a terminal;
 * scripts get --json or -q instead and never parse these tables. */
#ifndef SYN_CLI_TABLE_H
#define SYN_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SGR colour codes for table cells and the watch view. */
#define TABLE_GREEN "32"
#define TABLE_RED "31"
#define TABLE_YELLOW "33"
#define TABLE_BLUE "34"
#define TABLE_DIM "2"
#define TABLE_BOLD "1"

typedef struct table_t table_t;

/* A table with ncols columns (at most 16) and these headers. */
table_t *table_new(size_t ncols, const char *const *headers);
void table_destroy(table_t **self_p);

/* Marks the column that gives up width first when the table is too wide (an
 * error, a name); without one, the widest column does. */
void table_set_flexible(table_t *self, size_t col);
/* Right-aligns a column (numbers). */
void table_set_right(table_t *self, size_t col);

/* Adds a row of ncols cells (NULL is ""), each copied; colors may be NULL, or
 * hold one SGR code (or NULL) per cell. 0, or -1 when out of memory. */
int table_add(table_t *self, const char *const *cells, const char *const *colors);
size_t table_rows(const table_t *self);

/* The table as text, each line ending in '\n', two spaces between columns, no line
 * wider than width (0: no limit) as long as every column can keep 3 characters:
 * cells cut to fit end in "…". color adds the SGR codes (headers bold). Caller
 * frees. */
char *table_render(const table_t *self, int width, bool color);

/* Characters (code points) in UTF-8 text: what a terminal gives each one column. */
size_t table_text_width(const char *text);
/* text cut to at most width columns, "…" marking the cut; into out (size bytes). */
char *table_text_fit(const char *text, size_t width, char *out, size_t size);

/* Whether output to fd gets colours: a TTY, NO_COLOR unset or empty, and no
 * --no-color (no_color_flag). */
bool table_use_color(int fd, bool no_color_flag);
/* The terminal width of fd, or fallback when fd is not a terminal. */
int table_terminal_width(int fd, int fallback);

/* "0.4s", "12s", "1m12s", "2h03m", "3d04h"; "-" for a negative duration. */
char *table_duration(double seconds, char *out, size_t size);
/* "3 s ago", "5 min ago", "2 h ago", "4 d ago"; "just now" under a second;
 * "-" when then is 0 (unknown). */
char *table_ago(int64_t then_us, int64_t now_us, char *out, size_t size);
/* RFC 3339 UTC ("2026-11-28T14:56:19.123456Z", fraction optional) → microseconds
 * since the epoch; 0 (unknown) for NULL or anything else. */
int64_t table_parse_time(const char *text);
/* "1.2k", "34", "5.6M": token counts in a narrow column. */
char *table_count(long long n, char *out, size_t size);
/* "512 B", "700.0 KiB", "16.0 MiB", "4.2 GiB": file sizes. */
char *table_bytes(long long n, char *out, size_t size);
/* "$0.0123" with 4 decimals under a dollar, 2 above. */
char *table_cost(double usd, char *out, size_t size);

#endif
