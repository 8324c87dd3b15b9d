/* Fuzz-style tests of the template loader: every truncation of valid documents,
 * thousands of seeded random mutations, garbage, deep nesting, alias bombs and
 * size limits. The property each time: a workflow or at least one error (with a
 * summary and a JSON list), never a crash or a leak (run under ASan); and whatever
 * does parse exports to YAML that parses back to the same workflow. */
#include "template/export.h"
#include "template/frontmatter.h"
#include "template/workflow.h"

#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MUTATION_ROUNDS 6000
#define GARBAGE_ROUNDS 3000

typedef struct {
    const char *path;
    bool package; /* reads prompt files: parse with its directory */
    char *text;
    size_t len;
} sample_t;

static sample_t samples[] = {
    {SYN_SOURCE_DIR "/workflows/research.yaml", false, NULL, 0},
    {SYN_SOURCE_DIR "/workflows/pr-review.yaml", false, NULL, 0},
    {SYN_SOURCE_DIR "/workflows/implement-and-review/workflow.yaml", true, NULL, 0},
    {SYN_SOURCE_DIR "/tests/fixtures/templates/triage/workflow.yaml", true, NULL, 0},
};
#define SAMPLES (sizeof samples / sizeof samples[0])

static const char *prompt_files[] = {
    SYN_SOURCE_DIR "/workflows/implement-and-review/prompts/plan.md",
    SYN_SOURCE_DIR "/workflows/implement-and-review/prompts/implement.md",
    SYN_SOURCE_DIR "/tests/fixtures/templates/triage/prompts/plan.md",
};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < SAMPLES; i++)
        samples[i].text = read_all(samples[i].path, &samples[i].len);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < SAMPLES; i++)
        free(samples[i].text);
    return 0;
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Checks the loader's contract on one input; returns whether it parsed. */
static bool check_input(const char *text, size_t len, const char *dir)
{
    template_errors_t *errors = template_errors_new();
    json_t *w = template_workflow_parse(text, len, "fuzz.yaml", dir, errors);
    bool parsed = w != NULL;
    if (w) {
        assert_int_equal(template_errors_total(errors), 0);
        char why[256];
        char *yaml = template_export_yaml(w, NULL, why, sizeof why);
        if (!yaml)
            fail_msg("a parsed workflow does not export: %s", why);
        template_errors_t *again = template_errors_new();
        json_t *back = template_workflow_parse(yaml, strlen(yaml), "export.yaml", NULL, again);
        if (!back || !json_equal(back, w)) {
            print_error("export does not round-trip:\n%s\n", yaml);
            fail();
        }
        json_decref(back);
        template_errors_destroy(&again);
        free(yaml);
        json_decref(w);
    } else {
        assert_true(template_errors_count(errors) > 0);
        char *summary = template_errors_summary(errors);
        assert_non_null(summary);
        assert_true(summary[0] != '\0');
        json_t *as_json = json_string(summary); /* valid UTF-8 */
        assert_non_null(as_json);
        json_decref(as_json);
        free(summary);
        json_t *list = template_errors_json(errors);
        assert_int_equal(json_array_size(list), template_errors_count(errors) +
                                                    (template_errors_total(errors) >
                                                     template_errors_count(errors)));
        json_decref(list);
    }
    template_errors_destroy(&errors);
    return parsed;
}

static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    char *dir = strdup(dirname(copy));
    free(copy);
    return dir;
}

static void test_every_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < SAMPLES; i++) {
        char *dir = samples[i].package ? dir_of(samples[i].path) : NULL;
        assert_true(check_input(samples[i].text, samples[i].len, dir));
        size_t parsed = 0;
        for (size_t len = 0; len < samples[i].len; len++) {
            /* a copy of exactly len bytes, so ASan sees any over-read */
            char *cut = malloc(len ? len : 1);
            memcpy(cut, samples[i].text, len);
            parsed += check_input(cut, len, dir);
            free(cut);
        }
        /* cuts inside the last prompt still parse; most others do not */
        assert_true(parsed > 0);
        assert_true(parsed < samples[i].len);
        free(dir);
    }
}

static void test_front_matter_truncations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prompt_files / sizeof prompt_files[0]; i++) {
        size_t len;
        char *text = read_all(prompt_files[i], &len);
        for (size_t n = 0; n <= len; n++) {
            char *cut = malloc(n ? n : 1);
            memcpy(cut, text, n);
            template_errors_t *errors = template_errors_new();
            json_t *settings = NULL, *body = NULL;
            int rc = template_frontmatter_parse(cut, n, "p.md", "phases[0]", errors, &settings,
                                                &body);
            if (rc == 0) {
                assert_true(json_is_object(settings));
                assert_true(json_is_string(body));
                assert_int_equal(template_errors_count(errors), 0);
            } else {
                assert_null(settings);
                assert_null(body);
                assert_true(template_errors_count(errors) > 0);
            }
            json_decref(settings);
            json_decref(body);
            template_errors_destroy(&errors);
            free(cut);
        }
        free(text);
    }
}

static void test_random_mutations(void **state)
{
    (void)state;
    static const char *tokens[] = {":",    ": ",   "- ",   "\n",  "\n  ", "&a ", "*a",
                                   "!!",   "!!int ", "{",  "}",   "[",    "]",   ",",
                                   "\t",   "'",    "\"",   "|",   "|-\n", ">",   "---\n",
                                   "...\n", "#",   "? ",   "~",   "\xff", "\xc3", "\0",
                                   "%YAML 1.1\n", "<<: ", "prompt_file: x.md\n", "0x", "1e9",
                                   "\xe2\x80\xa8", "\r", "\\", "null", "true"};
    size_t token_count = sizeof tokens / sizeof tokens[0];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char *dirs[SAMPLES];
    for (size_t i = 0; i < SAMPLES; i++)
        dirs[i] = samples[i].package ? dir_of(samples[i].path) : NULL;
    size_t parsed = 0;
    for (int round = 0; round < MUTATION_ROUNDS; round++) {
        size_t which = next_random(&seed) % SAMPLES;
        size_t len = samples[which].len;
        size_t cap = len + 256;
        char *buf = malloc(cap);
        memcpy(buf, samples[which].text, len);
        int edits = 1 + (int)(next_random(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = len ? next_random(&seed) % (len + 1) : 0;
            switch (next_random(&seed) % 4) {
            case 0: /* flip a byte */
                if (at < len)
                    buf[at] = (char)(next_random(&seed) & 0xFF);
                break;
            case 1: /* delete a run */
                if (at < len) {
                    size_t n = 1 + next_random(&seed) % 8;
                    if (n > len - at)
                        n = len - at;
                    memmove(buf + at, buf + at + n, len - at - n);
                    len -= n;
                }
                break;
            default: { /* insert a token YAML cares about */
                size_t t = next_random(&seed) % token_count;
                size_t n = strlen(tokens[t]) ? strlen(tokens[t]) : 1; /* "\0" inserts a NUL */
                if (len + n <= cap) {
                    memmove(buf + at + n, buf + at, len - at);
                    memcpy(buf + at, tokens[t], n);
                    len += n;
                }
                break;
            }
            }
        }
        char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        parsed += check_input(exact, len, dirs[which]);
        free(exact);
    }
    /* the mutations hit both sides of the contract */
    assert_true(parsed > MUTATION_ROUNDS / 20);
    assert_true(parsed < MUTATION_ROUNDS);
    for (size_t i = 0; i < SAMPLES; i++)
        free(dirs[i]);
}

static void test_garbage(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    for (int round = 0; round < GARBAGE_ROUNDS; round++) {
        size_t len = next_random(&seed) % 2048;
        char *buf = malloc(len ? len : 1);
        bool printable = round % 2 == 0;
        for (size_t i = 0; i < len; i++) {
            uint64_t r = next_random(&seed);
            buf[i] = printable ? (char)(" \n\t:-[]{}#&*!|>'\"%@`,?abcXYZ012"[r % 32]) : (char)r;
        }
        check_input(buf, len, NULL);
        free(buf);
    }
}

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *text = malloc(hl + ul * times + tl + 1);
    memcpy(text, head, hl);
    for (size_t i = 0; i < times; i++)
        memcpy(text + hl + i * ul, unit, ul);
    memcpy(text + hl + ul * times, tail, tl + 1);
    return text;
}

static void expect_message(const char *text, const char *needle)
{
    template_errors_t *errors = template_errors_new();
    json_t *w = template_workflow_parse(text, strlen(text), NULL, NULL, errors);
    assert_null(w);
    char *summary = template_errors_summary(errors);
    if (!strstr(summary, needle))
        fail_msg("wanted '%s' in: %s", needle, summary);
    free(summary);
    template_errors_destroy(&errors);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char *flow = repeat("name: x\nphases: ", "[", 200000, "");
    expect_message(flow, "nesting deeper than 32 levels");
    free(flow);
    char *maps = repeat("name: x\nphases: ", "{a: ", 100000, "1");
    expect_message(maps, "nesting deeper than 32 levels");
    free(maps);
    char *dashes = repeat("phases:\n  ", "- ", 50000, "x\n");
    expect_message(dashes, "nesting deeper than 32 levels");
    free(dashes);
    /* block mappings, each one level further in */
    size_t levels = 300;
    char *block = malloc(levels * (levels + 4) + 64);
    size_t at = 0;
    for (size_t i = 0; i < levels; i++) {
        memset(block + at, ' ', i);
        at += i;
        memcpy(block + at, "a:\n", 3);
        at += 3;
    }
    block[at] = '\0';
    expect_message(block, "nesting deeper than 32 levels");
    free(block);
    /* 32 levels are fine for the parser (and then wrong for a workflow) */
    char *ok = repeat("name: x\nphases: ", "[", 31, "");
    char *closed = repeat(ok, "]", 31, "\n");
    expect_message(closed, "phases[0]");
    free(ok);
    free(closed);
}

static void test_alias_bombs(void **state)
{
    (void)state;
    const char *laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                         "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                         "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                         "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                         "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                         "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                         "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    expect_message(laughs, "line 2, column 8: YAML aliases (*name) are not supported");
    expect_message("name: &n x\nphases: [*n]\n", "YAML aliases (*name) are not supported");
    expect_message("base: &b {id: a}\nphases:\n  - <<: *b\n", "YAML aliases");
    /* a self-referencing anchor */
    expect_message("a: &a [*a]\n", "YAML aliases");
}

static void test_size_limits(void **state)
{
    (void)state;
    /* 200,000 scalars fit in 1 MiB but exceed the node budget */
    char *wide = repeat("name: x\nphases: [", "1,", 200000, "1]\n");
    assert_true(strlen(wide) <= TEMPLATE_MAX_DOCUMENT);
    expect_message(wide, "document too complex: more than 100000 YAML nodes");
    free(wide);
    /* too many keys in one mapping */
    size_t keys = 300;
    char *many = malloc(keys * 16 + 16);
    size_t at = 0;
    for (size_t i = 0; i < keys; i++)
        at += (size_t)sprintf(many + at, "k%zu: 1\n", i);
    expect_message(many, "too many keys in one mapping");
    free(many);
    /* one huge scalar inside the limit: parsed, then judged as a workflow */
    char *huge = repeat("name: ", "x", TEMPLATE_MAX_DOCUMENT - 16, "\n");
    expect_message(huge, "missing required key 'phases'");
    free(huge);
    /* and one byte over the limit */
    char *over = repeat("#", "x", TEMPLATE_MAX_DOCUMENT, "");
    expect_message(over, "the limit is 1048576 (1 MiB)");
    free(over);
    /* thousands of phases: checked for repeats in linear time */
    size_t phases = 10000;
    char *long_list = malloc(phases * 64 + 128);
    at = (size_t)sprintf(long_list, "name: x\nphases:\n");
    for (size_t i = 0; i < phases; i++)
        at += (size_t)sprintf(long_list + at,
                              "- {id: p%zu, name: P, order: %zu, prompt_template: x}\n", i, i);
    sprintf(long_list + at, "- {id: p7, name: P, order: 7, prompt_template: x}\n");
    expect_message(long_list,
                   "phases[10000].id: duplicate phase id 'p7' (also phases[7] at line 10)");
    free(long_list);
    /* the error list is bounded too */
    char *typos = malloc(200 * 20 + 64);
    at = (size_t)sprintf(typos, "name: x\n");
    for (int i = 0; i < 200; i++)
        at += (size_t)sprintf(typos + at, "zz%d: 1\n", i);
    template_errors_t *errors = template_errors_new();
    assert_null(template_workflow_parse(typos, at, NULL, NULL, errors));
    assert_int_equal(template_errors_count(errors), TEMPLATE_MAX_ERRORS);
    assert_int_equal(template_errors_total(errors), 201); /* 200 keys + missing phases */
    json_t *list = template_errors_json(errors);
    assert_int_equal(json_array_size(list), TEMPLATE_MAX_ERRORS + 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, TEMPLATE_MAX_ERRORS),
                                                          "message")),
                        "101 more errors not shown");
    json_decref(list);
    char *summary = template_errors_summary(errors);
    assert_non_null(strstr(summary, "(and 200 more errors)"));
    free(summary);
    template_errors_destroy(&errors);
    free(typos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_front_matter_truncations),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_alias_bombs),
        cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
